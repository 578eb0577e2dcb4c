package smtp_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/harness"
	"github.com/broadsheet-news/broadsheet/internal/smtp"
	"github.com/broadsheet-news/broadsheet/internal/smtp/smtptest"
)

// sinkEnv, set in the environment of this test binary, makes it an SMTP
// sink instead (see runSink) that offers PIPELINING and CHUNKING
// ("pipelining+chunking"), PIPELINING alone ("pipelining") or neither
// ("plain"). With
// sinkEnv_CPUPROFILE=file too, the sink writes its CPU profile there.
const sinkEnv = "BROADSHEET_SMTP_SINK"

func TestMain(m *testing.M) {
	if kind := os.Getenv(sinkEnv); kind != "" {
		if err := runSink(kind, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runSink serves smtptest in CountOnly mode (it reads every byte), prints
// "ADDR host:port", then answers each line on stdin with "CPU µs
// messages": its own CPU time, so that the benchmark's process measures
// the client's alone.
func runSink(kind string, stdin io.Reader, stdout io.Writer) error {
	opts := []smtptest.Option{smtptest.CountOnly()}
	switch kind {
	case "pipelining":
		opts = append(opts, smtptest.WithoutChunking())
	case "plain":
		opts = append(opts, smtptest.WithoutPipelining(), smtptest.WithoutChunking())
	}
	srv, err := harness.StandIn("smtp-sink", func(tb testing.TB) *smtptest.Server { return smtptest.NewServer(tb, opts...) })
	if err != nil {
		return err
	}
	defer srv.Close()
	if path := os.Getenv(sinkEnv + "_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	fmt.Fprintln(stdout, "ADDR "+srv.Addr())
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		n, _ := srv.Count()
		fmt.Fprintf(stdout, "CPU %d %d\n", cpuTime().Microseconds(), n)
	}
	return nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sink is a sink child as the benchmark sees it.
type sink struct {
	addr string
	in   io.WriteCloser
	out  *bufio.Scanner
}

func startSink(b *testing.B, kind string) *sink {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), sinkEnv+"="+kind)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s := &sink{in: in, out: bufio.NewScanner(outPipe)}
	b.Cleanup(func() { in.Close(); cmd.Wait() })
	if !s.out.Scan() || !strings.HasPrefix(s.out.Text(), "ADDR ") {
		b.Fatalf("sink: no address (%v)", s.out.Err())
	}
	s.addr = strings.TrimPrefix(s.out.Text(), "ADDR ")
	return s
}

// cpu returns the sink's CPU time so far and the messages it counted.
func (s *sink) cpu(b *testing.B) (time.Duration, int64) {
	fmt.Fprintln(s.in)
	if !s.out.Scan() {
		b.Fatalf("sink: no answer (%v)", s.out.Err())
	}
	f := strings.Fields(s.out.Text())
	us, _ := strconv.ParseInt(f[1], 10, 64)
	n, _ := strconv.ParseInt(f[2], 10, 64)
	return time.Duration(us) * time.Microsecond, n
}

// benchMessage is a reader's copy of a real edition (13 KB of HTML, 2 KB
// of text: eml's test layout), as the delivery engine makes it.
func benchMessage(b *testing.B) *eml.Message {
	htmlBody, err := os.ReadFile("../eml/testdata/edition.html")
	if err != nil {
		b.Fatal(err)
	}
	text, err := os.ReadFile("../eml/testdata/edition.txt")
	if err != nil {
		b.Fatal(err)
	}
	l, err := eml.NewLayout("The Daily Ledger: Thursday 26 November 2026", htmlBody, text, "BSxUNSUBSCRIBExURL", "BSxPREFERENCESxURL")
	if err != nil {
		b.Fatal(err)
	}
	unsub := "https://ledger.example/unsubscribe?token=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEfGhIjKlMnOpQrSt"
	return &eml.Message{
		From:      "The Daily Ledger <news@ledger.example>",
		To:        "reader@example.org",
		ReplyTo:   "editors@ledger.example",
		MessageID: "<daily-2026-11-26.s1@ledger.example>",
		Date:      time.Now(),
		Headers: []eml.Header{
			{Name: "List-Unsubscribe", Value: "<" + unsub + ">, <mailto:unsubscribe@ledger.example?subject=unsubscribe%20tok>"},
			{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
			{Name: "List-Id", Value: "The Daily Ledger <daily.ledger.example>"},
			{Name: "Precedence", Value: "bulk"},
		},
		Layout: l,
		Values: []string{unsub, strings.Replace(unsub, "unsubscribe", "preferences", 1)},
	}
}

// BenchmarkSend sends a reader's copy of an edition through the real
// client to smtptest (CountOnly, reading every byte) in a child process on
// loopback, from pool goroutines at once. It reports messages per second
// and the CPU per message of the client's process and of the sink's.
func BenchmarkSend(b *testing.B) {
	sinks := map[string]*sink{} // one for all the rounds of a sub-benchmark
	parent := b
	for _, bc := range []struct {
		kind string
		pool int
		bulk int // messages a SendBulk call; 0: Send
	}{
		{"pipelining+chunking", 1, 0}, {"pipelining+chunking", 4, 0}, {"pipelining+chunking", 4, 50},
		{"pipelining", 4, 0}, {"pipelining", 4, 50},
		{"plain", 4, 0},
	} {
		name := fmt.Sprintf("server=%s/pool=%d", bc.kind, bc.pool)
		if bc.bulk > 0 {
			name += fmt.Sprintf("/bulk=%d", bc.bulk)
		}
		b.Run(name, func(b *testing.B) {
			s := sinks[bc.kind]
			if s == nil {
				s = startSink(parent, bc.kind)
				sinks[bc.kind] = s
			}
			m, err := smtp.New("smtp://"+s.addr, smtp.WithPoolSize(bc.pool))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			msg := benchMessage(b)
			if _, err := m.Send(context.Background(), msg); err != nil {
				b.Fatal(err)
			}
			sinkCPU0, n0 := s.cpu(b)
			cpu0 := cpuTime()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			batch := make([]*eml.Message, max(bc.bulk, 1))
			for i := range batch {
				batch[i] = msg
			}
			for range bc.pool {
				wg.Go(func() {
					if bc.bulk == 0 {
						for next.Add(1) <= int64(b.N) {
							if _, err := m.Send(context.Background(), msg); err != nil {
								b.Error(err)
								return
							}
						}
						return
					}
					for {
						k := next.Add(int64(bc.bulk))
						n := min(int64(bc.bulk), int64(b.N)-(k-int64(bc.bulk)))
						if n <= 0 {
							return
						}
						for _, r := range m.SendBulk(context.Background(), batch[:n]) {
							if r.Err != nil {
								b.Error(r.Err)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			cpu := cpuTime() - cpu0
			sinkCPU, n := s.cpu(b)
			if n-n0 != int64(b.N) {
				b.Errorf("sink counted %d messages, want %d", n-n0, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "client-cpu-µs/msg")
			b.ReportMetric(float64((sinkCPU-sinkCPU0).Microseconds())/float64(b.N), "sink-cpu-µs/msg")
		})
	}
}
