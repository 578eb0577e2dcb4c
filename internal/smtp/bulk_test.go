package smtp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/smtp"
	"github.com/broadsheet-news/broadsheet/internal/smtp/smtptest"
)

// bulk returns n messages to r0@example.org … r(n-1)@example.org.
func bulk(n int) []*eml.Message {
	msgs := make([]*eml.Message, n)
	for i := range msgs {
		msgs[i] = testMessage(fmt.Sprintf("r%d@example.org", i))
		msgs[i].MessageID = fmt.Sprintf("<m%d@bugle.example>", i)
	}
	return msgs
}

func TestSendBulk(t *testing.T) {
	forModes(t, func(t *testing.T, mode mode) {
		srv := smtptest.NewServer(t, mode.opts...)
		m := mustMailer(t, srv.URL())
		const n = 30
		msgs := bulk(n)
		msgs[7].To = "not an address"
		msgs[12].MessageID = "" // made by SendBulk
		results := m.SendBulk(context.Background(), msgs)
		if len(results) != n {
			t.Fatalf("got %d results, want %d", len(results), n)
		}
		for i, r := range results {
			switch {
			case i == 7:
				if !errors.Is(r.Err, eml.ErrRejected) || r.MessageID != "" {
					t.Errorf("invalid message: got %+v, want eml.ErrRejected", r)
				}
			case r.Err != nil:
				t.Errorf("message %d: %v", i, r.Err)
			case i == 12:
				if !strings.HasSuffix(r.MessageID, "@bugle.example>") {
					t.Errorf("message 12: made Message-ID %q", r.MessageID)
				}
			case r.MessageID != msgs[i].MessageID:
				t.Errorf("message %d: Message-ID %q, want %q", i, r.MessageID, msgs[i].MessageID)
			}
		}
		got := srv.WaitFor(n-1, 5*time.Second)
		if len(got) != n-1 {
			t.Fatalf("received %d messages, want %d", len(got), n-1)
		}
		for k, r := range got {
			i := k
			if k >= 7 {
				i++
			}
			if len(r.To) != 1 || r.To[0] != fmt.Sprintf("r%d@example.org", i) {
				t.Errorf("message %d went to %q, want r%d@example.org, in order", k, r.To, i)
			}
			parsed, _ := parse(t, r.Data)
			if id := parsed.Header.Get("Message-Id"); id != results[i].MessageID {
				t.Errorf("message %d: Message-Id %q, result says %q", i, id, results[i].MessageID)
			}
		}
		if c := srv.Connections(); c != 1 {
			t.Errorf("connections: got %d, want 1", c)
		}
		// With PIPELINING, each message's data is followed in the same
		// write by the next message's envelope.
		if want := n - 1; mode.pipelining && srv.PipelinedReads() < want {
			t.Errorf("pipelined reads: got %d, want at least %d", srv.PipelinedReads(), want)
		}
		if !mode.pipelining && srv.PipelinedReads() != 0 {
			t.Errorf("pipelined reads to a server without PIPELINING: got %d", srv.PipelinedReads())
		}
	})
}

func TestSendBulkFailures(t *testing.T) {
	t.Run("pipelining", func(t *testing.T) {
		// (This server takes DATA even after refusing the only recipient;
		// the client ends that empty message at once and resets. The
		// envelope after the 421 was already written, pipelined.)
		testSendBulkFailures(t, false, false, []string{
			"EHLO MAIL RCPT DATA . MAIL RCPT DATA . MAIL RCPT DATA . RSET MAIL RCPT DATA . MAIL RCPT DATA . MAIL RCPT DATA . MAIL RCPT DATA .",
			"EHLO MAIL RCPT DATA . MAIL RCPT DATA . MAIL RCPT DATA",
		})
	})
	t.Run("pipelining+chunking", func(t *testing.T) {
		// A refused chunk is followed by RSET, as a refused recipient.
		testSendBulkFailures(t, false, true, []string{
			"EHLO MAIL RCPT BDAT MAIL RCPT BDAT MAIL RCPT BDAT RSET MAIL RCPT BDAT MAIL RCPT BDAT RSET MAIL RCPT BDAT RSET MAIL RCPT BDAT",
			"EHLO MAIL RCPT BDAT MAIL RCPT BDAT MAIL RCPT BDAT",
		})
	})
	t.Run("chunking", func(t *testing.T) {
		testSendBulkFailures(t, true, true, []string{
			"EHLO MAIL RCPT BDAT MAIL RCPT BDAT MAIL RCPT RSET MAIL RCPT BDAT MAIL RCPT BDAT RSET MAIL RCPT BDAT RSET MAIL RCPT BDAT",
			"EHLO MAIL RCPT BDAT MAIL RCPT BDAT MAIL",
		})
	})
	t.Run("no pipelining", func(t *testing.T) {
		testSendBulkFailures(t, true, false, []string{
			"EHLO MAIL RCPT DATA . MAIL RCPT DATA . MAIL RCPT RSET MAIL RCPT DATA . MAIL RCPT DATA . MAIL RCPT DATA . MAIL RCPT DATA .",
			"EHLO MAIL RCPT DATA . MAIL RCPT DATA . MAIL",
		})
	})
}

func testSendBulkFailures(t *testing.T, noPipelining, chunking bool, wantCmds []string) {
	// Recipient by recipient: refused at RCPT (the next goes after RSET),
	// refused and deferred at the end of data, the connection dropped
	// after a message's data (its outcome unknown; the rest go on a new
	// connection), and a 421 at MAIL (the server is closing: it and the
	// rest are throttled, unsent).
	rcpt := func(line string) int {
		var i int
		fmt.Sscanf(line[strings.Index(line, "<r")+2:], "%d", &i)
		return i
	}
	var mailNo int
	srv := newFakeServer(t, func(cmd, line string) string {
		switch cmd {
		case "MAIL":
			if mailNo++; mailNo == 10 {
				return "421 closing\r\n"
			}
		case "RCPT":
			if rcpt(line) == 2 {
				return "550 no such user\r\n"
			}
		case ".":
			switch rcpt(line) {
			case 4:
				return "554 spam\r\n"
			case 5:
				return "451 try later\r\n"
			case 6:
				return "close"
			}
		}
		return ""
	})
	srv.mu.Lock()
	srv.noPipelining, srv.chunking = noPipelining, chunking
	srv.mu.Unlock()
	m := mustMailer(t, "smtp://"+srv.ln.Addr().String())
	results := m.SendBulk(context.Background(), bulk(12))
	want := []error{nil, nil, eml.ErrRejected, nil, eml.ErrRejected, eml.ErrThrottled, eml.ErrUnknownOutcome,
		nil, nil, eml.ErrThrottled, eml.ErrThrottled, eml.ErrThrottled}
	for i, r := range results {
		for _, s := range []error{eml.ErrRejected, eml.ErrThrottled, eml.ErrUnknownOutcome} {
			if errors.Is(r.Err, s) != (want[i] == s) {
				t.Errorf("message %d: got %v, want %v", i, r.Err, want[i])
				break
			}
		}
		if (r.Err == nil) != (want[i] == nil) {
			t.Errorf("message %d: got %v, want %v", i, r.Err, want[i])
		}
		if (r.MessageID != "") != (r.Err == nil) {
			t.Errorf("message %d: Message-ID %q with error %v", i, r.MessageID, r.Err)
		}
	}
	if got := srv.commands(); strings.Join(got, "|") != strings.Join(wantCmds, "|") {
		t.Errorf("commands:\n got %q\nwant %q", got, wantCmds)
	}
}

func TestSendBulkContext(t *testing.T) {
	srv := smtptest.NewServer(t)
	m := mustMailer(t, srv.URL())
	if _, err := m.Send(context.Background(), testMessage("warm@example.org")); err != nil {
		t.Fatal(err)
	}
	srv.SetDataDelay(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	results := m.SendBulk(ctx, bulk(3))
	if err := results[0].Err; !errors.Is(err, eml.ErrUnknownOutcome) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("message in flight at the deadline: got %v, want an unknown outcome and context.DeadlineExceeded", err)
	}
	for _, r := range results[1:] {
		if !errors.Is(r.Err, context.DeadlineExceeded) || errors.Is(r.Err, eml.ErrUnknownOutcome) {
			t.Errorf("message after the deadline: got %v, want context.DeadlineExceeded, unsent", r.Err)
		}
	}
	// The cut connection was dropped; the next send works.
	srv.SetDataDelay(0)
	if res := m.SendBulk(context.Background(), bulk(2)); res[0].Err != nil || res[1].Err != nil {
		t.Errorf("bulk after the deadline: %+v", res)
	}
}

func TestSendBulkEmpty(t *testing.T) {
	m, err := smtp.New("smtp://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.SendBulk(context.Background(), nil); len(got) != 0 {
		t.Errorf("SendBulk(nil): got %v", got)
	}
}
