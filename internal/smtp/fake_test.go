package smtp_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/eml"
)

// fakeServer is a scripted SMTP server for what smtptest's cannot do: odd
// but lawful replies, and replies that depend on the recipient. It offers
// PIPELINING, answers each command with reply(command, line) (250 unless it
// says otherwise; DATA 354; "." is the end of a message, whose line is its
// RCPT TO line; "close" hangs up without a reply), and records the
// commands, one string per connection.
type fakeServer struct {
	ln           net.Listener
	noPipelining bool // leave PIPELINING out of the EHLO reply
	chunking     bool // offer CHUNKING: BDAT n LAST gets the "." reply
	reply        func(cmd, line string) string
	mu           sync.Mutex
	log          []*strings.Builder
	conns        []net.Conn
}

func newFakeServer(t *testing.T, reply func(cmd, line string) string) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{ln: ln, reply: reply}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *fakeServer) serve(c net.Conn) {
	defer c.Close()
	log := &strings.Builder{}
	s.mu.Lock()
	s.log = append(s.log, log)
	s.conns = append(s.conns, c)
	s.mu.Unlock()
	r := bufio.NewReader(c)
	c.Write([]byte("220 fake\r\n"))
	var rcpt string
	var mailOK, rcptOK bool
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.Fields(line + " x")[0])
		s.mu.Lock()
		log.WriteString(cmd + " ")
		s.mu.Unlock()
		if cmd == "RCPT" {
			rcpt = line
		}
		var out string
		switch cmd {
		case "EHLO":
			s.mu.Lock()
			noPipelining, chunking := s.noPipelining, s.chunking
			s.mu.Unlock()
			out = "250-fake\r\n"
			if !noPipelining {
				out += "250-PIPELINING\r\n"
			}
			if chunking {
				out += "250-CHUNKING\r\n"
			}
			out += "250 8BITMIME\r\n"
		case "BDAT":
			// The chunk follows the command, whatever the reply.
			var size int
			fmt.Sscanf(strings.Fields(line)[1], "%d", &size)
			if _, err := io.CopyN(io.Discard, r, int64(size)); err != nil {
				return
			}
			switch {
			case !mailOK:
				out = "503 no MAIL\r\n"
			case !rcptOK:
				out = "554 no valid recipients\r\n"
			default:
				if out = s.reply(".", rcpt); out == "" {
					out = "250 queued\r\n"
				}
			}
			mailOK, rcptOK = false, false
		case "QUIT":
			c.Write([]byte("221 bye\r\n"))
			return
		default:
			if out = s.reply(cmd, line); out == "" {
				out = "250 ok\r\n"
				if cmd == "DATA" {
					out = "354 go\r\n"
				}
			}
			switch ok := strings.HasPrefix(out, "25"); cmd {
			case "MAIL":
				mailOK, rcptOK = ok, false
			case "RCPT":
				rcptOK = rcptOK || ok
			case "RSET":
				mailOK, rcptOK = false, false
			}
		}
		if out == "close" {
			return
		}
		c.Write([]byte(out))
		if strings.HasPrefix(out, "354") {
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			s.mu.Lock()
			log.WriteString(". ")
			s.mu.Unlock()
			if out = s.reply(".", rcpt); out == "" {
				out = "250 queued\r\n"
			}
			if out == "close" {
				return
			}
			c.Write([]byte(out))
		}
	}
}

func (s *fakeServer) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.log {
		out = append(out, strings.TrimSpace(l.String()))
	}
	return out
}

func TestOddReplies(t *testing.T) {
	t.Run("multi-line replies", func(t *testing.T) {
		srv := newFakeServer(t, func(cmd, _ string) string {
			switch cmd {
			case "MAIL":
				return "250-sender\r\n250 ok\r\n"
			case "RCPT":
				return "251-will forward\r\n251 ok\r\n"
			case ".":
				return "250-queued as\r\n250 1234\r\n"
			}
			return ""
		})
		m := mustMailer(t, "smtp://"+srv.ln.Addr().String())
		for range 2 {
			if _, err := m.Send(context.Background(), testMessage("reader@example.org")); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := srv.commands(), []string{"EHLO MAIL RCPT DATA . MAIL RCPT DATA ."}; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("commands: got %q, want %q", got, want)
		}
	})
	t.Run("DATA taken after a refused RCPT", func(t *testing.T) {
		// RFC 2920 says the server refuses DATA then, but one that does
		// not gets an empty message ended, and the next transaction
		// starts with RSET.
		var n int
		srv := newFakeServer(t, func(cmd, _ string) string {
			if cmd == "RCPT" {
				if n++; n == 1 {
					return "550-no such user\r\n550 really\r\n"
				}
			}
			return ""
		})
		m := mustMailer(t, "smtp://"+srv.ln.Addr().String())
		_, err := m.Send(context.Background(), testMessage("nobody@example.org"))
		var te *textproto.Error
		if !errors.Is(err, eml.ErrRejected) || !errors.As(err, &te) || te.Code != 550 || te.Msg != "no such user\nreally" {
			t.Errorf("refused RCPT: got %v, want eml.ErrRejected and the server's 550 with both lines", err)
		}
		if _, err := m.Send(context.Background(), testMessage("reader@example.org")); err != nil {
			t.Fatal(err)
		}
		if got, want := srv.commands(), []string{"EHLO MAIL RCPT DATA . RSET MAIL RCPT DATA ."}; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("commands: got %q, want %q", got, want)
		}
	})
	t.Run("421 while idle", func(t *testing.T) {
		srv := newFakeServer(t, func(string, string) string { return "" })
		m := mustMailer(t, "smtp://"+srv.ln.Addr().String())
		if _, err := m.Send(context.Background(), testMessage("a@example.org")); err != nil {
			t.Fatal(err)
		}
		// The server gives up on the idle connection, as servers do.
		srv.mu.Lock()
		srv.conns[0].Write([]byte("421 idle too long\r\n"))
		srv.conns[0].Close()
		srv.mu.Unlock()
		if _, err := m.Send(context.Background(), testMessage("b@example.org")); err != nil {
			t.Fatalf("send after the server closed the idle connection: %v", err)
		}
		if got := srv.commands(); len(got) != 2 || got[1] != "EHLO MAIL RCPT DATA ." {
			t.Errorf("commands: got %q, want a second connection that sends the message", got)
		}
	})
}
