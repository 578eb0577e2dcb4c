package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/eml"
)

func testMessage(to string) *eml.Message {
	return &eml.Message{
		From:    "The Daily Bugle <news@bugle.example>",
		To:      to,
		Subject: "Your daily digest: élections & more",
		Date:    time.Date(2025, 3, 1, 7, 0, 0, 0, time.UTC),
		Headers: []eml.Header{
			{Name: "List-Unsubscribe", Value: "<https://bugle.example/u/TOKEN>, <mailto:unsubscribe@bugle.example?subject=TOKEN>"},
			{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
			{Name: "List-Id", Value: "Daily Bugle <daily.bugle.example>"},
		},
		Text: []byte("Hello reader,\n\nToday's stories.\n"),
		HTML: []byte("<p>Hello reader,</p><p>Today's <b>stories</b>.</p>"),
	}
}

func mustNew(t *testing.T) *Mailer {
	t.Helper()
	m, err := New(filepath.Join(t.TempDir(), "outbox"))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func emlFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestNewCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "outbox")
	if _, err := New(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("outbox dir mode = %v, want 0700", got)
	}
	if _, err := New(""); err == nil {
		t.Error(`New("") error = nil, want error`)
	}
}

func TestSendWritesParsableFile(t *testing.T) {
	m := mustNew(t)
	at := time.Date(2025, 3, 1, 7, 0, 1, 123456789, time.FixedZone("CET", 3600))
	m.Now = func() time.Time { return at }
	msg := testMessage("Reader One <reader/one@example.org>")
	id, err := m.Send(context.Background(), msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if msg.MessageID != "" {
		t.Errorf("Send changed the caller's message: MessageID = %q", msg.MessageID)
	}
	if !regexp.MustCompile(`^<[0-9a-f]{32}@bugle\.example>$`).MatchString(id) {
		t.Errorf("message ID = %q, want <hex@bugle.example>", id)
	}

	names := emlFiles(t, m.Dir())
	want := "20250301T060001.123456789Z-reader_one@example.org.eml"
	if len(names) != 1 || names[0] != want {
		t.Fatalf("outbox holds %q, want [%q]", names, want)
	}
	path := filepath.Join(m.Dir(), names[0])
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode = %v, want 0600", got)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("net/mail cannot parse the file: %v", err)
	}
	h := parsed.Header
	for name, want := range map[string]string{
		"Message-Id":            id,
		"List-Unsubscribe":      msg.Headers[0].Value,
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		"List-Id":               "Daily Bugle <daily.bugle.example>",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	if from, err := h.AddressList("From"); err != nil || len(from) != 1 || from[0].Address != "news@bugle.example" {
		t.Errorf("From = %v (err %v), want news@bugle.example", from, err)
	}
	if to, err := h.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != "reader/one@example.org" {
		t.Errorf("To = %v (err %v), want reader/one@example.org", to, err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subject != msg.Subject {
		t.Errorf("Subject = %q (err %v), want %q", subject, err, msg.Subject)
	}
	if d, err := h.Date(); err != nil || !d.Equal(msg.Date) {
		t.Errorf("Date = %v (err %v), want %v", d, err, msg.Date)
	}

	parts := readParts(t, parsed)
	// The text part travels with CRLF line ends.
	if got := strings.ReplaceAll(string(parts["text/plain"]), "\r\n", "\n"); got != string(msg.Text) {
		t.Errorf("text part = %q, want %q", got, msg.Text)
	}
	if got := string(parts["text/html"]); got != string(msg.HTML) {
		t.Errorf("HTML part = %q, want %q", got, msg.HTML)
	}
}

// readParts returns the decoded body of each part of a multipart/alternative
// message, by media type.
func readParts(t *testing.T, msg *mail.Message) map[string][]byte {
	t.Helper()
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	if mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %q, want multipart/alternative", mt)
	}
	parts := map[string][]byte{}
	r := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := r.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		pt, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("part Content-Type: %v", err)
		}
		var body io.Reader = p
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(p)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("read %s part: %v", pt, err)
		}
		parts[pt] = b
	}
	if len(parts) != 2 {
		t.Errorf("message has parts %v, want text/plain and text/html", len(parts))
	}
	return parts
}

func TestSendKeepsGivenMessageID(t *testing.T) {
	m := mustNew(t)
	msg := testMessage("reader@example.org")
	msg.MessageID = "<given-1@bugle.example>"
	id, err := m.Send(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	if id != msg.MessageID {
		t.Errorf("message ID = %q, want %q", id, msg.MessageID)
	}
	raw, err := os.ReadFile(filepath.Join(m.Dir(), emlFiles(t, m.Dir())[0]))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got := parsed.Header.Get("Message-Id"); got != msg.MessageID {
		t.Errorf("file Message-Id = %q, want %q", got, msg.MessageID)
	}
}

func TestSendInvalidMessage(t *testing.T) {
	m := mustNew(t)
	tests := []struct {
		name string
		edit func(*eml.Message)
	}{
		{"bad to", func(msg *eml.Message) { msg.To = "not an address" }},
		{"bad from", func(msg *eml.Message) { msg.From = "" }},
		{"no text", func(msg *eml.Message) { msg.Text = nil }},
		{"header injection", func(msg *eml.Message) { msg.Subject = "hi\r\nBcc: x@example.org" }},
		{"bad header name", func(msg *eml.Message) { msg.Headers = append(msg.Headers, eml.Header{Name: "X Bad", Value: "v"}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := testMessage("reader@example.org")
			tt.edit(msg)
			_, err := m.Send(context.Background(), msg)
			if !errors.Is(err, eml.ErrRejected) {
				t.Errorf("Send error = %v, want eml.ErrRejected", err)
			}
		})
	}
	if _, err := m.Send(context.Background(), nil); !errors.Is(err, eml.ErrRejected) {
		t.Errorf("Send(nil) error = %v, want eml.ErrRejected", err)
	}
	if names := emlFiles(t, m.Dir()); len(names) != 0 {
		t.Errorf("invalid messages left files %q", names)
	}
}

func TestSendCancelledContext(t *testing.T) {
	m := mustNew(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := m.Send(ctx, testMessage("reader@example.org"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Send error = %v, want context.Canceled", err)
	}
	if names := emlFiles(t, m.Dir()); len(names) != 0 {
		t.Errorf("cancelled send left files %q", names)
	}
}

func TestConcurrentSendsDistinctFiles(t *testing.T) {
	m := mustNew(t)
	// A frozen clock makes every send want the same name for one reader.
	at := time.Date(2025, 3, 1, 7, 0, 0, 0, time.UTC)
	m.Now = func() time.Time { return at }
	const n = 40
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			to := "same@example.org"
			if i%2 == 1 {
				to = fmt.Sprintf("reader%d@example.org", i)
			}
			ids[i], errs[i] = m.Send(context.Background(), testMessage(to))
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if seen[ids[i]] {
			t.Errorf("message ID %q returned twice", ids[i])
		}
		seen[ids[i]] = true
	}
	names := emlFiles(t, m.Dir())
	if len(names) != n {
		t.Fatalf("outbox holds %d files, want %d: %q", len(names), n, names)
	}
	fileIDs := map[string]bool{}
	for _, name := range names {
		if !strings.HasSuffix(name, ".eml") || strings.HasPrefix(name, ".") {
			t.Errorf("stray file %q (temporary file left?)", name)
			continue
		}
		raw, err := os.ReadFile(filepath.Join(m.Dir(), name))
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fileIDs[parsed.Header.Get("Message-Id")] = true
	}
	for id := range seen {
		if !fileIDs[id] {
			t.Errorf("no file carries message ID %q", id)
		}
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"reader@example.org", "reader@example.org"},
		{"Reader <a.b+tag@example.org>", "a.b+tag@example.org"},
		{"../../etc/passwd@example.org", "_.._etc_passwd@example.org"},
		{"..hidden@example.org", "hidden@example.org"},
		{"ünï@example.org", "_n_@example.org"},
		{"", "unknown"},
		{strings.Repeat("a", 100) + "@example.org", strings.Repeat("a", maxRecipientLen)},
	}
	for _, tt := range tests {
		if got := sanitize(tt.in); got != tt.want {
			t.Errorf("sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkSend(b *testing.B) {
	m, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	msg := testMessage("reader@example.org")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Send(context.Background(), msg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// TestSentFindsDigestEmails: the outbox is the record the delivery engine
// reconciles against: a digest email is found by its digest and reader
// tags, with its Message-ID; other readers, other digests and untagged
// mail are not.
func TestSentFindsDigestEmails(t *testing.T) {
	m := mustNew(t)
	at := time.Date(2025, 3, 1, 7, 0, 0, 0, time.UTC)
	m.Now = func() time.Time { return at }
	ctx := context.Background()
	if _, found, err := m.Sent(ctx, "daily-2026-11-26", "r1"); err != nil || found {
		t.Fatalf("Sent on an empty outbox: %v, %v; want not found", found, err)
	}
	plain := testMessage("reader@example.org")
	if _, err := m.Send(ctx, plain); err != nil {
		t.Fatal(err)
	}
	msg := testMessage("reader@example.org")
	msg.MessageID = "<daily-2026-11-26.r1@bugle.example>"
	msg.Tags = map[string]string{TagDigest: "daily-2026-11-26", TagSubscriber: "r1"}
	// Two sends in the same nanosecond take a collision suffix; the
	// second must still be found by its key.
	for range 2 {
		if _, err := m.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	id, found, err := m.Sent(ctx, "daily-2026-11-26", "r1")
	if err != nil || !found || id != msg.MessageID {
		t.Errorf("Sent = %q, %v, %v; want %q, true", id, found, err, msg.MessageID)
	}
	for _, k := range [][2]string{{"daily-2026-11-26", "r2"}, {"daily-2026-11-27", "r1"}, {"daily-2026-11-26", "r"}} {
		if _, found, err := m.Sent(ctx, k[0], k[1]); err != nil || found {
			t.Errorf("Sent(%s, %s) = %v, %v; want not found", k[0], k[1], found, err)
		}
	}
	// After a restart a new Mailer finds, by listing the folder, what the
	// old one wrote, the copy with a collision suffix included.
	msg.Tags = map[string]string{TagDigest: "daily-2026-11-26", TagSubscriber: "r2"}
	msg.MessageID = "<daily-2026-11-26.r2@bugle.example>"
	for range 2 {
		if _, err := m.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	// Only r2's copy with the suffix is left.
	unsuffixed, _ := filepath.Glob(filepath.Join(m.Dir(), "*-"+ledgerKey("daily-2026-11-26", "r2")+".eml"))
	if len(unsuffixed) != 1 {
		t.Fatalf("r2's first copy: %v", unsuffixed)
	}
	os.Remove(unsuffixed[0])
	restarted, err := New(m.Dir())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"r1", "r2"} {
		id, found, err := restarted.Sent(ctx, "daily-2026-11-26", r)
		if err != nil || !found || id != "<daily-2026-11-26."+r+"@bugle.example>" {
			t.Errorf("after a restart, Sent(%s) = %q, %v, %v", r, id, found, err)
		}
	}
	if _, found, _ := restarted.Sent(ctx, "daily-2026-11-26", "r3"); found {
		t.Error("after a restart, r3 found")
	}
}
