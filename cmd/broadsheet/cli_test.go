package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
	"github.com/broadsheet-news/broadsheet/internal/dynamo"
	"github.com/broadsheet-news/broadsheet/internal/smtp/smtptest"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// cliNow is the clock of the commands the tests run: the morning the
// WordPress fixture's posts were published (internal/wordpress/testdata),
// so that a first pull's week back finds them on whatever day the suite
// runs.
var cliNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// runCLI runs the program as a user would, with no environment variables
// and the clock stopped at cliNow.
func runCLI(t *testing.T, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, testEnviron(cliNow), stdin, &out, io.Discard)
	return out.String(), err
}

// testEnviron is an environment with no variables and a clock stopped at
// now.
func testEnviron(now time.Time) environ {
	return environ{getenv: func(string) string { return "" }, now: func() time.Time { return now }}
}

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")

	secret, err := runCLI(t, nil, "token", "create", "--name", "Night desk", "--scopes", "edit", "--data", data)
	if err != nil || !strings.HasPrefix(secret, "bs_") {
		t.Fatalf("token create: %q, %v", secret, err)
	}
	if _, err := runCLI(t, nil, "token", "create", "--data", data); err == nil || !strings.Contains(err.Error(), "name") {
		t.Fatalf("token create without a name: %v, want an error about the name", err)
	}
	list, err := runCLI(t, nil, "token", "list", "--data", data)
	if err != nil || !strings.Contains(list, "Night desk\tedit") || strings.Contains(list, strings.TrimSpace(secret)) {
		t.Fatalf("token list: %q, %v; want the token's name and scope but never its secret", list, err)
	}

	// Revoking: the token is gone from the list and its secret no longer
	// signs in.
	if _, err := runCLI(t, nil, "token", "create", "--name", "Day desk", "--data", data); err != nil {
		t.Fatalf("token create: %v", err)
	}
	if _, err := runCLI(t, nil, "token", "revoke", "--data", data, "Night desk"); err != nil {
		t.Fatalf("token revoke: %v", err)
	}
	list, err = runCLI(t, nil, "token", "list", "--data", data)
	if err != nil || strings.Contains(list, "Night desk") || !strings.Contains(list, "Day desk") {
		t.Fatalf("token list after revoke: %q, %v; want Day desk only", list, err)
	}
	if _, err := runCLI(t, nil, "token", "revoke", "--data", data, "Night desk"); err == nil || !strings.Contains(err.Error(), "No editor token") {
		t.Fatalf("second revoke: %v, want a not-found error", err)
	}
	if _, err := runCLI(t, nil, "token", "revoke", "--data", data); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("revoke without a name: %v, want usage", err)
	}

	csvPath := filepath.Join(dir, "readers.csv")
	os.WriteFile(csvPath, []byte("email,sections\nada@example.com,politics\nbola@example.com,\n"), 0o600)
	out, err := runCLI(t, nil, "subscribers", "import", csvPath, "--data", data)
	if err == nil {
		// flags after the file are not parsed by Go's flag package: the
		// data folder must come first, as the usage says.
		t.Fatalf("import with flags after the file: %q; want a usage error", out)
	}
	out, err = runCLI(t, nil, "subscribers", "import", "--data", data, csvPath)
	if err != nil || out != "Imported: 2 added, 0 updated, 0 unchanged\n" {
		t.Fatalf("import: %q, %v", out, err)
	}
	out, err = runCLI(t, strings.NewReader("email\nnot-an-address\n"), "subscribers", "import", "--data", data, "-")
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("import of a bad file from stdin: %q, %v; want an error naming line 2", out, err)
	}
	out, err = runCLI(t, nil, "subscribers", "export", "--data", data)
	if err != nil || !strings.HasPrefix(out, "email,status,") || strings.Count(out, "\n") != 3 || !strings.Contains(out, "ada@example.com,confirmed,daily,full,politics") {
		t.Fatalf("export: %q, %v", out, err)
	}

	if _, err := runCLI(t, nil, "digest", "send", "--frequency", "daily", "--data", data); err == nil || !strings.Contains(err.Error(), "No new articles") {
		t.Fatalf("digest send with no articles: %v, want the no-articles message", err)
	}
	if _, err := runCLI(t, nil, "digest", "send", "--frequency", "hourly", "--data", data); err == nil || !strings.Contains(err.Error(), "Frequency") {
		t.Fatalf("digest send hourly: %v, want a frequency error", err)
	}
	if _, err := runCLI(t, nil, "serve", "--timezone", "Mars/Olympus", "--data", data); err == nil {
		t.Fatal("serve with an unknown time zone started")
	}
	if _, err := runCLI(t, nil, "nonsense"); err == nil {
		t.Fatal("an unknown command succeeded")
	}
}

// TestDataFolderInUse: a second process on the same data folder stops with
// a clear message instead of waiting for the lock for ever.
func TestDataFolderInUse(t *testing.T) {
	dir := t.TempDir()
	startServer(t, &testClock{t: time.Now()}, "--data", dir)
	_, err := runCLI(t, nil, "token", "list", "--data", dir)
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("token list while serving: %v, want an in-use error", err)
	}
}

// TestTokenOnDynamoDB: "token create --table" writes to a deployed stack's
// table (here DynamoDB Local) and the token authenticates there.
func TestTokenOnDynamoDB(t *testing.T) {
	client := awstest.DynamoDBClient(t)
	table := awstest.UniqueName(t, "tokens")
	if err := dynamo.CreateTable(awstest.Context(t), client, table); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", awstest.DynamoDB(t).Endpoint)
	t.Setenv("AWS_REGION", awstest.Region)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	secret, err := runCLI(t, nil, "token", "create", "--name", "Web desk", "--table", table, "--data", t.TempDir())
	if err != nil || !strings.HasPrefix(secret, "bs_") {
		t.Fatalf("token create --table: %q, %v", secret, err)
	}
	store := dynamo.New(client, table)
	tok, err := store.EditorTokenByHash(awstest.Context(t), token.HashEditorSecret(strings.TrimSpace(secret)))
	if err != nil || tok.Name != "Web desk" {
		t.Fatalf("token in the table: %+v, %v", tok, err)
	}
	list, err := runCLI(t, nil, "token", "list", "--table", table)
	if err != nil || !strings.Contains(list, "Web desk") {
		t.Fatalf("token list --table: %q, %v", list, err)
	}
}

// TestServeOverSMTP: with --smtp, "serve" hands mail to a real SMTP server
// on loopback instead of the outbox folder.
func TestServeOverSMTP(t *testing.T) {
	sink := smtptest.NewServer(t)
	dir := t.TempDir()
	base := startServer(t, &testClock{t: time.Now()}, "--data", dir, "--smtp", sink.URL()).base
	res := do(t, "POST", base+"/subscribe", "", "application/json", `{"email":"ada@example.com"}`)
	wantStatus(t, res, 202)
	got := sink.WaitFor(1, 10*time.Second)
	if len(got) != 1 || len(got[0].To) != 1 || got[0].To[0] != "ada@example.com" {
		t.Fatalf("SMTP server received %+v, want one message to ada@example.com", got)
	}
	// Decode what arrived, as a mail client would, and find the link.
	raw := filepath.Join(t.TempDir(), "received.eml")
	if err := os.WriteFile(raw, got[0].Data, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := readLetter(raw)
	if err != nil {
		t.Fatal(err)
	}
	findURL(t, l.Text, base+"/confirm?token=")
	if files, _ := filepath.Glob(filepath.Join(dir, "outbox", "*.eml")); len(files) != 0 {
		t.Errorf("%d files in the outbox, want none when sending over SMTP", len(files))
	}
}
