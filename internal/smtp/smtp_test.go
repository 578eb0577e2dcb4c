package smtp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/smtp"
	"github.com/broadsheet-news/broadsheet/internal/smtp/smtptest"
)

func testMessage(to string) *eml.Message {
	return &eml.Message{
		From:    "The Daily Bugle <news@bugle.example>",
		To:      to,
		Subject: "Your daily digest",
		Date:    time.Date(2025, 3, 1, 7, 0, 0, 0, time.UTC),
		Headers: []eml.Header{
			{Name: "List-Unsubscribe", Value: "<https://bugle.example/u/TOKEN>"},
			{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
		},
		Text: []byte("Hello reader,\r\n.\r\nA line that is only a dot, and one that starts with one:\r\n.hidden\r\n"),
		HTML: []byte("<p>Hello reader,</p>\n.\n<p>Today's stories.</p>"),
	}
}

func mustMailer(t testing.TB, url string, opts ...smtp.Option) *smtp.Mailer {
	t.Helper()
	m, err := smtp.New(url, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// parse parses a received message and returns it with its decoded parts.
func parse(t *testing.T, data []byte) (*mail.Message, map[string]string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("net/mail: %v", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q (err %v), want multipart/alternative", mt, err)
	}
	parts := map[string]string{}
	r := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := r.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		var body io.Reader = p
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(p)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("read part %s: %v", pt, err)
		}
		parts[pt] = strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	return msg, parts
}

func TestNew(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"smtp://127.0.0.1:2525", true},
		{"smtp://user:pass@mail.example.com:587", true},
		{"smtp://mail.example.com", true},
		{"smtps://mail.example.com:465", false},
		{"http://mail.example.com", false},
		{"smtp://", false},
		{"smtp:mail.example.com", false},
		{"", false},
		{"smtp://user:p%zzss@host:25", false},
	}
	for _, tt := range tests {
		m, err := smtp.New(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("New(%q) error = %v, want ok = %v", tt.url, err, tt.ok)
		}
		if err != nil && strings.Contains(err.Error(), "p%zzss") {
			t.Errorf("New error %q repeats the password", err)
		}
		if m != nil {
			m.Close()
		}
	}
}

// mode is a kind of server the client must handle.
type mode struct {
	name                 string
	opts                 []smtptest.Option
	pipelining, chunking bool
}

// modes are the servers with and without PIPELINING and CHUNKING.
var modes = []mode{
	{"pipelining+chunking", nil, true, true},
	{"pipelining", []smtptest.Option{smtptest.WithoutChunking()}, true, false},
	{"chunking", []smtptest.Option{smtptest.WithoutPipelining()}, false, true},
	{"plain", []smtptest.Option{smtptest.WithoutPipelining(), smtptest.WithoutChunking()}, false, false},
}

// forModes runs f as a subtest against a server of each mode.
func forModes(t *testing.T, f func(t *testing.T, mode mode)) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) { f(t, mode) })
	}
}

func TestSendArrivesComplete(t *testing.T) { forModes(t, testSendArrivesComplete) }

func testSendArrivesComplete(t *testing.T, mode mode) {
	srv := smtptest.NewServer(t, mode.opts...)
	m := mustMailer(t, srv.URL())
	msg := testMessage("Reader <reader@example.org>")
	// A large HTML part with many dot-led lines exercises dot-stuffing and
	// buffered writes.
	var html strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&html, ".line %d <b>stuffed</b>\n", i)
	}
	msg.HTML = []byte(html.String())

	id, err := m.Send(context.Background(), msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.WaitFor(1, 5*time.Second)
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	r := got[0]
	if r.From != "news@bugle.example" {
		t.Errorf("MAIL FROM = %q, want news@bugle.example", r.From)
	}
	if len(r.To) != 1 || r.To[0] != "reader@example.org" {
		t.Errorf("RCPT TO = %q, want [reader@example.org]", r.To)
	}
	if _, bytesIn := srv.Count(); bytesIn != int64(len(r.Data)) || bytesIn < int64(len(msg.HTML)) {
		t.Errorf("server counted %d bytes, recorded %d, HTML alone is %d", bytesIn, len(r.Data), len(msg.HTML))
	}
	parsed, parts := parse(t, r.Data)
	if got := parsed.Header.Get("Message-Id"); got != id || id == "" {
		t.Errorf("Message-Id = %q, Send returned %q", got, id)
	}
	if !strings.HasSuffix(id, "@bugle.example>") {
		t.Errorf("generated message ID %q is not at the From domain", id)
	}
	if got := parsed.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post = %q", got)
	}
	if got := parsed.Header.Get("List-Unsubscribe"); got != "<https://bugle.example/u/TOKEN>" {
		t.Errorf("List-Unsubscribe = %q", got)
	}
	if want := strings.ReplaceAll(string(msg.Text), "\r\n", "\n"); parts["text/plain"] != want {
		t.Errorf("text part = %q, want %q", parts["text/plain"], want)
	}
	if parts["text/html"] != string(msg.HTML) {
		t.Errorf("HTML part differs: got %d bytes, want %d", len(parts["text/html"]), len(msg.HTML))
	}
	if msg.MessageID != "" {
		t.Errorf("Send changed the caller's message ID to %q", msg.MessageID)
	}
}

func TestSendKeepsMessageID(t *testing.T) {
	srv := smtptest.NewServer(t)
	m := mustMailer(t, srv.URL())
	msg := testMessage("reader@example.org")
	msg.MessageID = "<edition-1.reader-2@bugle.example>"
	id, err := m.Send(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	if id != msg.MessageID {
		t.Errorf("message ID = %q, want %q", id, msg.MessageID)
	}
	got := srv.WaitFor(1, 5*time.Second)
	if len(got) != 1 {
		t.Fatalf("received %d messages, want 1", len(got))
	}
	parsed, _ := parse(t, got[0].Data)
	if h := parsed.Header.Get("Message-Id"); h != msg.MessageID {
		t.Errorf("Message-Id header = %q, want %q", h, msg.MessageID)
	}
}

func TestConnectionReuse(t *testing.T) { forModes(t, testConnectionReuse) }

func testConnectionReuse(t *testing.T, mode mode) {
	const n = 50
	t.Run("sequential", func(t *testing.T) {
		srv := smtptest.NewServer(t, mode.opts...)
		m := mustMailer(t, srv.URL())
		for i := range n {
			if _, err := m.Send(context.Background(), testMessage(fmt.Sprintf("r%d@example.org", i))); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		if got := len(srv.WaitFor(n, 5*time.Second)); got != n {
			t.Errorf("received %d messages, want %d", got, n)
		}
		if got := srv.Connections(); got != 1 {
			t.Errorf("sequential sends used %d connections, want 1", got)
		}
		if got := srv.Resets(); got != 0 {
			t.Errorf("sequential sends sent %d RSETs, want none", got)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		srv := smtptest.NewServer(t, mode.opts...)
		const pool = 3
		m := mustMailer(t, srv.URL(), smtp.WithPoolSize(pool))
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				_, err := m.Send(context.Background(), testMessage(fmt.Sprintf("r%d@example.org", i)))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("send: %v", err)
			}
		}
		got := srv.WaitFor(n, 5*time.Second)
		if len(got) != n {
			t.Fatalf("received %d messages, want %d", len(got), n)
		}
		seen := map[string]bool{}
		for _, r := range got {
			parse(t, r.Data)
			seen[r.To[0]] = true
		}
		if len(seen) != n {
			t.Errorf("received %d distinct recipients, want %d", len(seen), n)
		}
		if c := srv.Connections(); c < 1 || c > pool {
			t.Errorf("%d concurrent sends used %d connections, want 1..%d", n, c, pool)
		}
	})
}

func TestRedialBrokenPooledConnection(t *testing.T) { forModes(t, testRedialBrokenPooledConnection) }

func testRedialBrokenPooledConnection(t *testing.T, mode mode) {
	srv := smtptest.NewServer(t, mode.opts...)
	m := mustMailer(t, srv.URL())
	if _, err := m.Send(context.Background(), testMessage("a@example.org")); err != nil {
		t.Fatal(err)
	}
	srv.WaitFor(1, 5*time.Second)
	srv.CloseConnections()
	if _, err := m.Send(context.Background(), testMessage("b@example.org")); err != nil {
		t.Fatalf("send after the server dropped the idle connection: %v", err)
	}
	if got := len(srv.WaitFor(2, 5*time.Second)); got != 2 {
		t.Errorf("received %d messages, want 2", got)
	}
	if got := srv.Connections(); got != 2 {
		t.Errorf("connections = %d, want 2 (one redial)", got)
	}
}

func TestErrorClasses(t *testing.T) { forModes(t, testErrorClasses) }

func testErrorClasses(t *testing.T, mode mode) {
	sentinels := []error{eml.ErrThrottled, eml.ErrRejected, eml.ErrUnknownOutcome}
	tests := []struct {
		name    string
		inject  func(*smtptest.Server)
		want    error // nil: none of the sentinels
		arrives bool  // the server kept the message
	}{
		// A 421 to the first command on a pooled connection is taken for a
		// server that hung up an idle session and tried once more on a
		// new one: a server that means it says it twice.
		{"MAIL 421", func(s *smtptest.Server) { s.FailNextAt(smtptest.StageMail, 421, 2) }, eml.ErrThrottled, false},
		{"MAIL 451", func(s *smtptest.Server) { s.FailNextAt(smtptest.StageMail, 451, 1) }, eml.ErrThrottled, false},
		{"RCPT 450", func(s *smtptest.Server) { s.FailNextAt(smtptest.StageRcpt, 450, 1) }, eml.ErrThrottled, false},
		{"RCPT 452", func(s *smtptest.Server) { s.FailNextAt(smtptest.StageRcpt, 452, 1) }, eml.ErrThrottled, false},
		{"DATA 451", func(s *smtptest.Server) { s.FailNext(451, 1) }, eml.ErrThrottled, false},
		{"MAIL 550", func(s *smtptest.Server) { s.FailNextAt(smtptest.StageMail, 550, 1) }, eml.ErrRejected, false},
		{"RCPT 550", func(s *smtptest.Server) { s.FailNextAt(smtptest.StageRcpt, 550, 1) }, eml.ErrRejected, false},
		{"RCPT 553", func(s *smtptest.Server) { s.FailNextAt(smtptest.StageRcpt, 553, 1) }, eml.ErrRejected, false},
		{"DATA 554", func(s *smtptest.Server) { s.FailNext(554, 1) }, eml.ErrRejected, false},
		{"DATA 552", func(s *smtptest.Server) { s.FailNext(552, 1) }, eml.ErrRejected, false},
		{"RCPT 455", func(s *smtptest.Server) { s.FailNextAt(smtptest.StageRcpt, 455, 1) }, nil, false},
		{"dropped after DATA", func(s *smtptest.Server) { s.DropNext(1) }, eml.ErrUnknownOutcome, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.NewServer(t, mode.opts...)
			m := mustMailer(t, srv.URL())
			// Warm the pool so that the failure also hits a reused
			// connection.
			if _, err := m.Send(context.Background(), testMessage("warm@example.org")); err != nil {
				t.Fatal(err)
			}
			tt.inject(srv)
			id, err := m.Send(context.Background(), testMessage("reader@example.org"))
			if err == nil {
				t.Fatalf("Send succeeded (ID %q), want an error", id)
			}
			if id != "" {
				t.Errorf("failed Send returned ID %q", id)
			}
			for _, s := range sentinels {
				if got, want := errors.Is(err, s), s == tt.want; got != want {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", err, s, got, want)
				}
			}
			wantN := 1
			if tt.arrives {
				wantN = 2
			}
			if got, _ := srv.Count(); got != int64(wantN) {
				t.Errorf("server kept %d messages, want %d", got, wantN)
			}
			// The mailer recovers: the next send goes through.
			if _, err := m.Send(context.Background(), testMessage("next@example.org")); err != nil {
				t.Errorf("send after the failure: %v", err)
			}
			if got, _ := srv.Count(); got != int64(wantN+1) {
				t.Errorf("after recovery the server kept %d messages, want %d", got, wantN+1)
			}
			// A transaction left open (MAIL accepted, then a failure) is
			// reset before the next, and so is one whose BDAT chunk was
			// refused (RFC 3030 leaves it to the server whether that ends
			// the transaction); no other send needs RSET.
			wantResets := 0
			if strings.HasPrefix(tt.name, "RCPT") || strings.HasPrefix(tt.name, "DATA") && mode.chunking {
				wantResets = 1
			}
			if got := srv.Resets(); got != wantResets {
				t.Errorf("RSETs: got %d, want %d", got, wantResets)
			}
		})
	}
}

func TestDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	m := mustMailer(t, "smtp://"+addr)
	_, err = m.Send(context.Background(), testMessage("reader@example.org"))
	if err == nil {
		t.Fatal("Send to a closed port succeeded")
	}
	for _, s := range []error{eml.ErrThrottled, eml.ErrRejected, eml.ErrUnknownOutcome} {
		if errors.Is(err, s) {
			t.Errorf("dial failure %v wraps %v, want a plain error", err, s)
		}
	}
}

func TestInvalidMessage(t *testing.T) {
	srv := smtptest.NewServer(t)
	m := mustMailer(t, srv.URL())
	msg := testMessage("not an address")
	if _, err := m.Send(context.Background(), msg); !errors.Is(err, eml.ErrRejected) {
		t.Errorf("Send(invalid) error = %v, want eml.ErrRejected", err)
	}
	if _, err := m.Send(context.Background(), nil); !errors.Is(err, eml.ErrRejected) {
		t.Errorf("Send(nil) error = %v, want eml.ErrRejected", err)
	}
	if got := srv.Connections(); got != 0 {
		t.Errorf("invalid messages opened %d connections, want 0", got)
	}
}

func TestContext(t *testing.T) { forModes(t, testContext) }

func testContext(t *testing.T, mode mode) {
	t.Run("cancelled before send", func(t *testing.T) {
		srv := smtptest.NewServer(t, mode.opts...)
		m := mustMailer(t, srv.URL())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := m.Send(ctx, testMessage("reader@example.org"))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Send error = %v, want context.Canceled", err)
		}
		if errors.Is(err, eml.ErrUnknownOutcome) {
			t.Errorf("Send error = %v claims an unknown outcome; nothing left", err)
		}
		if got, _ := srv.Count(); got != 0 {
			t.Errorf("server received %d messages, want 0", got)
		}
	})
	t.Run("deadline while waiting for the reply", func(t *testing.T) {
		srv := smtptest.NewServer(t, mode.opts...)
		m := mustMailer(t, srv.URL())
		srv.SetDataDelay(10 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := m.Send(ctx, testMessage("reader@example.org"))
		if elapsed := time.Since(start); elapsed > 3*time.Second {
			t.Errorf("Send took %v after a 300ms deadline", elapsed)
		}
		if !errors.Is(err, eml.ErrUnknownOutcome) {
			t.Errorf("Send error = %v, want eml.ErrUnknownOutcome", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send error = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("cancel while waiting for the reply", func(t *testing.T) {
		srv := smtptest.NewServer(t, mode.opts...)
		m := mustMailer(t, srv.URL())
		held, release := srv.HoldData()
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-held; cancel() }() // once the message is in, waiting for its reply
		_, err := m.Send(ctx, testMessage("reader@example.org"))
		if !errors.Is(err, eml.ErrUnknownOutcome) || !errors.Is(err, context.Canceled) {
			t.Errorf("Send error = %v, want eml.ErrUnknownOutcome and context.Canceled", err)
		}
		// The poisoned connection was dropped: a new send dials afresh.
		release()
		if _, err := m.Send(context.Background(), testMessage("next@example.org")); err != nil {
			t.Fatalf("send after cancel: %v", err)
		}
		if got := srv.Connections(); got != 2 {
			t.Errorf("connections = %d, want 2", got)
		}
	})
	t.Run("deadline while waiting for a connection", func(t *testing.T) {
		srv := smtptest.NewServer(t, mode.opts...)
		m := mustMailer(t, srv.URL(), smtp.WithPoolSize(1))
		held, release := srv.HoldData()
		done := make(chan error, 1)
		go func() {
			_, err := m.Send(context.Background(), testMessage("first@example.org"))
			done <- err
		}()
		// The first send holds the only connection until its reply,
		// which waits for release: the second can only wait, until its
		// deadline.
		waitHeld(t, held)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := m.Send(ctx, testMessage("second@example.org"))
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, eml.ErrUnknownOutcome) {
			t.Errorf("Send error = %v, want context.DeadlineExceeded without an unknown outcome", err)
		}
		release()
		if err := <-done; err != nil {
			t.Errorf("first send: %v", err)
		}
		if got := srv.Connections(); got != 1 {
			t.Errorf("connections = %d, want 1", got)
		}
	})
}

func TestSTARTTLSAndAuth(t *testing.T) {
	t.Run("STARTTLS", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.WithTLS())
		m := mustMailer(t, srv.URL(), smtp.WithTLSConfig(srv.ClientTLSConfig()))
		if _, err := m.Send(context.Background(), testMessage("reader@example.org")); err != nil {
			t.Fatal(err)
		}
		got := srv.WaitFor(1, 5*time.Second)
		if len(got) != 1 || !got[0].TLS {
			t.Fatalf("received %+v, want one message over TLS", got)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.WithTLS())
		m := mustMailer(t, srv.URL())
		_, err := m.Send(context.Background(), testMessage("reader@example.org"))
		if err == nil {
			t.Fatal("Send over an untrusted certificate succeeded")
		}
		if got, _ := srv.Count(); got != 0 {
			t.Errorf("server received %d messages, want 0 (no plain-text fallback)", got)
		}
	})
	t.Run("AUTH over TLS", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.WithTLS(), smtptest.WithAuth("editor", "s3cret"))
		m := mustMailer(t, srv.URL(), smtp.WithTLSConfig(srv.ClientTLSConfig()))
		if _, err := m.Send(context.Background(), testMessage("reader@example.org")); err != nil {
			t.Fatal(err)
		}
		got := srv.WaitFor(1, 5*time.Second)
		if len(got) != 1 || got[0].User != "editor" || !got[0].TLS {
			t.Fatalf("received %+v, want one message from user editor over TLS", got)
		}
	})
	t.Run("AUTH to loopback without TLS", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.WithAuth("editor", "s3cret"))
		m := mustMailer(t, srv.URL())
		if _, err := m.Send(context.Background(), testMessage("reader@example.org")); err != nil {
			t.Fatal(err)
		}
		if got := srv.WaitFor(1, 5*time.Second); len(got) != 1 || got[0].User != "editor" {
			t.Fatalf("received %+v, want one message from user editor", got)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.WithAuth("editor", "s3cret"))
		m := mustMailer(t, "smtp://editor:wrong@"+srv.Addr())
		_, err := m.Send(context.Background(), testMessage("reader@example.org"))
		if err == nil {
			t.Fatal("Send with a wrong password succeeded")
		}
		if errors.Is(err, eml.ErrRejected) {
			t.Errorf("auth failure %v blames the message (ErrRejected)", err)
		}
		if got, _ := srv.Count(); got != 0 {
			t.Errorf("server received %d messages, want 0", got)
		}
	})
}

func TestClose(t *testing.T) {
	srv := smtptest.NewServer(t)
	m, err := smtp.New(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Send(context.Background(), testMessage("reader@example.org")); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := m.Send(context.Background(), testMessage("reader@example.org")); err == nil {
		t.Error("Send after Close succeeded")
	}
	if got, _ := srv.Count(); got != 1 {
		t.Errorf("server received %d messages, want 1", got)
	}
}

func TestPipelining(t *testing.T) {
	const n = 20
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			srv := smtptest.NewServer(t, mode.opts...)
			m := mustMailer(t, srv.URL())
			for i := range n {
				if _, err := m.Send(context.Background(), testMessage(fmt.Sprintf("r%d@example.org", i))); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			if got := len(srv.WaitFor(n, 5*time.Second)); got != n {
				t.Fatalf("received %d messages, want %d", got, n)
			}
			// With PIPELINING, MAIL, RCPT and DATA arrive together once per
			// message; without, never more than one command at a time.
			want := n
			if !mode.pipelining {
				want = 0
			}
			if got := srv.PipelinedReads(); got != want {
				t.Errorf("reads holding more than one command: got %d, want %d", got, want)
			}
		})
	}
}

func TestMidPipelineFailureKeepsSessionInStep(t *testing.T) {
	// A RCPT refused in the middle of a pipelined group: DATA is refused
	// too, both replies are read, and the next message on the same
	// connection (after RSET) arrives whole, to the right recipient.
	forModes(t, func(t *testing.T, mode mode) {
		srv := smtptest.NewServer(t, mode.opts...)
		m := mustMailer(t, srv.URL())
		for i, code := range []int{550, 452, 0, 554, 0} {
			switch {
			case i == 3:
				srv.FailNext(code, 1) // at the end of the data
			case code != 0:
				srv.FailNextAt(smtptest.StageRcpt, code, 1)
			}
			_, err := m.Send(context.Background(), testMessage(fmt.Sprintf("r%d@example.org", i)))
			if (err != nil) != (code != 0) {
				t.Fatalf("send %d with failure %d: got %v", i, code, err)
			}
		}
		got := srv.WaitFor(2, 5*time.Second)
		if len(got) != 2 || got[0].To[0] != "r2@example.org" || got[1].To[0] != "r4@example.org" {
			t.Fatalf("received %+v, want the messages to r2 and r4", got)
		}
		for _, r := range got {
			if len(r.To) != 1 || r.From != "news@bugle.example" {
				t.Errorf("envelope %q -> %q, want one recipient from news@bugle.example", r.From, r.To)
			}
			parse(t, r.Data)
		}
		if c := srv.Connections(); c != 1 {
			t.Errorf("connections: got %d, want 1 (refusals keep the session)", c)
		}
	})
}

func TestDotStuffedBody(t *testing.T) {
	// Lines that start with dots, a line that is only a dot, one that
	// looks like the end of data, and dots after soft line breaks of the
	// quoted-printable body arrive as they were written.
	forModes(t, func(t *testing.T, mode mode) {
		srv := smtptest.NewServer(t, mode.opts...)
		m := mustMailer(t, srv.URL())
		msg := testMessage("reader@example.org")
		msg.Text = []byte(".\r\n..\r\n.\r\n.\r\n...x\r\n" + strings.Repeat("a", 75) + ".b\r\n" + "\r\n.\r\nend")
		msg.HTML = []byte(strings.Repeat("<p>"+strings.Repeat("x", 72)+".class</p>\n.\n", 50))
		if _, err := m.Send(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		got := srv.WaitFor(1, 5*time.Second)
		if len(got) != 1 {
			t.Fatalf("received %d messages, want 1", len(got))
		}
		want, err := msg.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		// The server received the message's bytes exactly (Message-ID
		// aside, which Send made).
		_, wantBody, _ := bytes.Cut(want, []byte("\r\n\r\n"))
		_, gotBody, _ := bytes.Cut(got[0].Data, []byte("\r\n\r\n"))
		msgP, _ := mail.ReadMessage(bytes.NewReader(want))
		gotP, _ := mail.ReadMessage(bytes.NewReader(got[0].Data))
		_, wp, _ := mime.ParseMediaType(msgP.Header.Get("Content-Type"))
		_, gp, _ := mime.ParseMediaType(gotP.Header.Get("Content-Type"))
		if !bytes.Equal(gotBody, bytes.ReplaceAll(wantBody, []byte(wp["boundary"]), []byte(gp["boundary"]))) {
			t.Errorf("body differs from the message's bytes")
		}
		_, parts := parse(t, got[0].Data)
		if want := strings.ReplaceAll(string(msg.Text), "\r\n", "\n"); parts["text/plain"] != want {
			t.Errorf("text part: got %q, want %q", parts["text/plain"], want)
		}
		if parts["text/html"] != string(msg.HTML) {
			t.Errorf("HTML part differs")
		}
	})
}

// waitHeld waits until the server holds the reply to a message (see
// smtptest.Server.HoldData), failing the test if that takes 10 s.
func waitHeld(t *testing.T, held <-chan struct{}) {
	t.Helper()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("no message reached the server within 10 s")
	}
}
