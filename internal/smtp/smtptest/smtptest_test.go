package smtptest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

func send(t *testing.T, addr, body string) error {
	t.Helper()
	return smtp.SendMail(addr, nil, "from@example.org", []string{"to@example.org"}, []byte(body))
}

func TestServerRecordsMessages(t *testing.T) {
	s := NewServer(t)
	if !strings.HasPrefix(s.URL(), "smtp://127.0.0.1:") {
		t.Errorf("URL = %q, want smtp://127.0.0.1:port", s.URL())
	}
	body := "Subject: hi\r\n\r\n.a line the client dot-stuffs\r\nend\r\n"
	if err := send(t, s.Addr(), body); err != nil {
		t.Fatal(err)
	}
	got := s.WaitFor(1, 5*time.Second)
	if len(got) != 1 {
		t.Fatalf("got %d messages, want 1", len(got))
	}
	// The client stuffs the leading dot; the server must unstuff it.
	if string(got[0].Data) != body {
		t.Errorf("data = %q, want %q", got[0].Data, body)
	}
	if got[0].From != "from@example.org" || len(got[0].To) != 1 || got[0].To[0] != "to@example.org" {
		t.Errorf("envelope = %q -> %q", got[0].From, got[0].To)
	}
	if n, b := s.Count(); n != 1 || b != int64(len(got[0].Data)) {
		t.Errorf("Count = %d, %d; want 1, %d", n, b, len(got[0].Data))
	}
	if c := s.Connections(); c != 1 {
		t.Errorf("Connections = %d, want 1", c)
	}
}

func TestServerFailNext(t *testing.T) {
	s := NewServer(t)
	s.FailNextAt(StageRcpt, 452, 2)
	for i := range 2 {
		err := send(t, s.Addr(), "Subject: x\r\n\r\nx\r\n")
		var te *textproto.Error
		if !errors.As(err, &te) || te.Code != 452 {
			t.Errorf("send %d error = %v, want a 452 reply", i, err)
		}
	}
	if err := send(t, s.Addr(), "Subject: x\r\n\r\nx\r\n"); err != nil {
		t.Errorf("third send = %v, want success once the failures are used up", err)
	}
	if n, _ := s.Count(); n != 1 {
		t.Errorf("Count = %d, want 1", n)
	}
}

func TestServerHoldData(t *testing.T) {
	s := NewServer(t)
	held, release := s.HoldData()
	done := make(chan error, 1)
	go func() { done <- send(t, s.Addr(), "Subject: x\r\n\r\nx\r\n") }()
	<-held
	select {
	case err := <-done:
		t.Fatalf("send returned (%v) while its reply was held", err)
	default:
	}
	if n, _ := s.Count(); n != 0 {
		t.Errorf("Count while held = %d, want 0 (recorded once answered)", n)
	}
	release()
	release() // a second call is harmless
	if err := <-done; err != nil {
		t.Fatalf("send after release: %v", err)
	}
	if err := send(t, s.Addr(), "Subject: y\r\n\r\ny\r\n"); err != nil {
		t.Fatalf("send after the hold: %v", err)
	}
	if n, _ := s.Count(); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
}

func TestServerCountOnly(t *testing.T) {
	s := NewServer(t, CountOnly())
	if err := send(t, s.Addr(), "Subject: x\r\n\r\nbody\r\n"); err != nil {
		t.Fatal(err)
	}
	if n, b := s.Count(); n != 1 || b != int64(len("Subject: x\r\n\r\nbody\r\n")) {
		t.Errorf("Count = %d, %d", n, b)
	}
	if got := s.Messages(); len(got) != 0 {
		t.Errorf("CountOnly kept %d messages", len(got))
	}
}

func TestWaitForTimesOut(t *testing.T) {
	s := NewServer(t)
	start := time.Now()
	if got := s.WaitFor(1, 50*time.Millisecond); len(got) != 0 {
		t.Errorf("WaitFor returned %d messages, want 0", len(got))
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("WaitFor returned after %v, before its timeout", d)
	}
}

func TestServerPipelining(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []Option
		want bool
	}{{"default", nil, true}, {"WithoutPipelining", []Option{WithoutPipelining()}, false}} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(t, tt.opts...)
			c, err := smtp.Dial(s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Hello("localhost"); err != nil {
				t.Fatal(err)
			}
			if got, _ := c.Extension("PIPELINING"); got != tt.want {
				t.Errorf("PIPELINING offered: got %v, want %v", got, tt.want)
			}
			if ok, _ := c.Extension("8BITMIME"); !ok {
				t.Errorf("8BITMIME not offered: the EHLO reply lost more than PIPELINING")
			}
		})
	}
}

func TestServerPipelinedReadsAndReplies(t *testing.T) {
	s := NewServer(t)
	// net/smtp waits for every reply.
	if err := send(t, s.Addr(), "Subject: x\r\n\r\nx\r\n"); err != nil {
		t.Fatal(err)
	}
	if got := s.PipelinedReads(); got != 0 {
		t.Fatalf("PipelinedReads after net/smtp: got %d, want 0", got)
	}
	// A pipelining client sends the envelope in one write; the replies
	// come back together.
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	tp := textproto.NewReader(r)
	if _, _, err := tp.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "EHLO localhost\r\n")
	if _, _, err := tp.ReadResponse(250); err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "RSET\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
	for _, code := range []int{250, 250, 250, 354} {
		if _, _, err := tp.ReadResponse(code); err != nil {
			t.Fatalf("reply %d: %v", code, err)
		}
		if code == 250 && r.Buffered() == 0 {
			t.Errorf("a reply came alone: the server flushed before the next pipelined command")
		}
	}
	io.WriteString(c, "Subject: y\r\n\r\n..dot\r\n.\r\n")
	if _, _, err := tp.ReadResponse(250); err != nil {
		t.Fatal(err)
	}
	if got := s.PipelinedReads(); got != 1 {
		t.Errorf("PipelinedReads: got %d, want 1", got)
	}
	if got := s.Resets(); got != 1 {
		t.Errorf("Resets: got %d, want 1", got)
	}
	if got := s.WaitFor(2, 5*time.Second); len(got) != 2 || string(got[1].Data) != "Subject: y\r\n\r\n.dot\r\n" {
		t.Errorf("messages: got %+v, want the second unstuffed", got)
	}
}
