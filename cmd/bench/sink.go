package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/harness"
	"github.com/broadsheet-news/broadsheet/internal/smtp/smtptest"
)

// runSink is a sink child: it listens on 127.0.0.1, prints "ADDR host:port",
// reads every byte it is sent until its standard input closes, then prints
// "SINK cpu_us=… messages=… bytes=…" — its own CPU, so that the mode's
// process reports Broadsheet's alone.
func runSink(ctx context.Context, kind string, stdin io.Reader, stdout io.Writer) error {
	var addr string
	var count func() (msgs, bytes int64)
	switch kind {
	case "smtp":
		srv, err := harness.StandIn("bench", func(tb testing.TB) *smtptest.Server { return smtptest.NewServer(tb, smtptest.CountOnly()) })
		if err != nil {
			return err
		}
		defer srv.Close()
		addr, count = srv.Addr(), srv.Count
	case "ses":
		s, err := startSESSink()
		if err != nil {
			return err
		}
		defer s.srv.Close()
		addr, count = s.addr, func() (int64, int64) { return s.msgs.Load(), s.bytes.Load() }
	}
	fmt.Fprintln(stdout, "ADDR "+addr)
	_, _ = io.Copy(io.Discard, stdin)
	msgs, bytes := count()
	fmt.Fprintf(stdout, "SINK cpu_us=%d messages=%d bytes=%d\n", cpuTime().Microseconds(), msgs, bytes)
	return nil
}

// sesSink speaks as much of the SES v2 API as the SES mailer needs, once
// the whole request body was read: POST /v2/email/outbound-emails
// (SendEmail) answers 200 with a MessageId, POST
// /v2/email/outbound-bulk-emails (SendBulkEmail) with a SUCCESS result and
// a MessageId for each entry. It counts messages by recipient entry.
type sesSink struct {
	srv         *http.Server
	addr        string
	msgs, bytes atomic.Int64
}

func startSESSink() (*sesSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sesSink{addr: ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/email/outbound-emails", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id := s.msgs.Add(1)
		s.bytes.Add(n)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"MessageId": "bench-" + strconv.FormatInt(id, 10)})
	})
	mux.HandleFunc("POST /v2/email/outbound-bulk-emails", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// One "Destination" key per entry, and no other in the request:
		// counting them is exact (a quote inside a JSON string is
		// escaped) and costs the sink, which shares the machine with the
		// pipeline, far less than decoding 50 entries.
		n := int64(bytes.Count(body, []byte(`"Destination":`)))
		if n == 0 || body[0] != '{' {
			w.Header().Set("X-Amzn-Errortype", "BadRequestException")
			http.Error(w, `{"message":"no entries"}`, http.StatusBadRequest)
			return
		}
		last := s.msgs.Add(n)
		s.bytes.Add(int64(len(body)))
		out := make([]byte, 0, 32+64*n)
		out = append(out, `{"BulkEmailEntryResults":[`...)
		for id := last - n + 1; id <= last; id++ {
			if id > last-n+1 {
				out = append(out, ',')
			}
			out = append(out, `{"Status":"SUCCESS","MessageId":"bench-`...)
			out = strconv.AppendInt(out, id, 10)
			out = append(out, `"}`...)
		}
		out = append(out, "]}"...)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// sinkProc is a sink child as its parent sees it.
type sinkProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	addr  string
}

// startSink starts a sink child of this binary and waits for its address.
func startSink(ctx context.Context, kind string) (*sinkProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, "-sink", kind)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s sink: %w", kind, err)
	}
	s := &sinkProc{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	if !s.out.Scan() {
		s.kill()
		return nil, fmt.Errorf("%s sink: no address", kind)
	}
	addr, ok := strings.CutPrefix(s.out.Text(), "ADDR ")
	if !ok {
		s.kill()
		return nil, fmt.Errorf("%s sink: %q, want its address", kind, s.out.Text())
	}
	s.addr = addr
	return s, nil
}

// stop ends the sink and returns the CPU it used and what it received.
func (s *sinkProc) stop() (cpu time.Duration, msgs, bytes int64, err error) {
	s.stdin.Close()
	if !s.out.Scan() {
		return 0, 0, 0, fmt.Errorf("sink: no figures")
	}
	var us int64
	if _, err := fmt.Sscanf(s.out.Text(), "SINK cpu_us=%d messages=%d bytes=%d", &us, &msgs, &bytes); err != nil {
		return 0, 0, 0, fmt.Errorf("sink: %q: %w", s.out.Text(), err)
	}
	_ = s.cmd.Wait()
	return time.Duration(us) * time.Microsecond, msgs, bytes, nil
}

// kill ends the sink if it still runs.
func (s *sinkProc) kill() {
	if s.cmd.ProcessState == nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}
