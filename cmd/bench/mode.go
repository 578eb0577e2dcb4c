package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/broadsheet-news/broadsheet/internal/bolt"
	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/gctune"
	"github.com/broadsheet-news/broadsheet/internal/harness"
	"github.com/broadsheet-news/broadsheet/internal/journal"
	"github.com/broadsheet-news/broadsheet/internal/memqueue"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/ses"
	"github.com/broadsheet-news/broadsheet/internal/smtp"
)

// discard is the discard mode's mailer: it builds the message's MIME bytes,
// as the SMTP mailer does (into a buffer it reuses), and drops them.
type discard struct{}

var discardBuffers = sync.Pool{New: func() any { return new([]byte) }}

func (discard) Send(_ context.Context, m *eml.Message) (string, error) {
	buf := discardBuffers.Get().(*[]byte)
	defer discardBuffers.Put(buf)
	b, err := m.AppendBytes((*buf)[:0])
	if err != nil {
		return "", fmt.Errorf("discard: %v: %w", err, eml.ErrRejected)
	}
	*buf = b
	return m.MessageID, nil
}

// logger returns the application's logger: silent unless -v.
func logger(cfg *config, stderr io.Writer) *slog.Logger {
	w := io.Discard
	if cfg.Verbose {
		w = stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// cpuTime returns the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// status returns a field of /proc/self/status given in kB, in MB:
// VmHWM is the peak resident set; RssAnon and RssFile split the resident
// set now into the heap and stacks, and mapped files (bbolt maps its
// whole data file, and the pages it touched count as resident).
func status(field string) float64 { return statusFields(field)[0] }

// statusFields is status for several fields, from one read of the file.
func statusFields(fields ...string) []float64 {
	out := make([]float64, len(fields))
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return out
	}
	for line := range strings.Lines(string(b)) {
		for i, field := range fields {
			if v, ok := strings.CutPrefix(line, field+":"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				out[i] = kb / 1024
			}
		}
	}
	return out
}

// profile starts a CPU profile when path is set; the function it returns
// stops it.
func profile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// memPeaks samples the resident set's two parts every 50 ms, to tell which
// one VmHWM's peak came from: the heap and stacks (RssAnon) or mapped
// files (RssFile, bbolt's data file).
type memPeaks struct {
	mu         sync.Mutex
	anon, file float64
	fileAt     time.Duration // when the file peak was seen, from the start
	stop       chan struct{}
}

func watchMemory() *memPeaks {
	p := &memPeaks{stop: make(chan struct{})}
	start := time.Now()
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			v := statusFields("RssAnon", "RssFile")
			a, f := v[0], v[1]
			p.mu.Lock()
			if f > p.file {
				p.file, p.fileAt = f, time.Since(start)
			}
			p.anon = max(p.anon, a)
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// fields stops the sampling and returns its peaks as key=value fields.
func (p *memPeaks) fields() string {
	close(p.stop)
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("peak_anon_mb=%.1f peak_file_mb=%.1f peak_file_at_s=%.2f", p.anon, p.file, p.fileAt.Seconds())
}

// figures are what a mode measured.
type figures struct {
	mode       string
	recipients int
	elapsed    time.Duration
	cpu        time.Duration
	renders    int64
	extra      []string // more key=value fields
}

func (f figures) line() string {
	n := float64(max(f.recipients, 1))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := fmt.Sprintf("BENCH mode=%s recipients=%d seconds=%.2f msgs_per_s=%.0f cpu_us_per_msg=%.1f peak_rss_mb=%.1f renders=%d rss_anon_mb=%.1f rss_file_mb=%.1f go_sys_mb=%.1f",
		f.mode, f.recipients, f.elapsed.Seconds(), float64(f.recipients)/f.elapsed.Seconds(),
		float64(f.cpu.Microseconds())/n, status("VmHWM"), f.renders, status("RssAnon"), status("RssFile"), float64(ms.Sys)/(1<<20))
	if len(f.extra) > 0 {
		s += " " + strings.Join(f.extra, " ")
	}
	return s
}

// runMode runs one mode at cfg.N readers in this process and prints its
// line.
func runMode(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	// The collector as the laptop binary and the functions set it.
	gctune.Apply(os.Getenv)
	if cfg.Mode == "aws" {
		return runAWS(ctx, cfg, stdout, stderr)
	}
	peaks := watchMemory()
	dir, err := os.MkdirTemp(cfg.Dir, "bench-"+cfg.Mode+"-")
	if err != nil {
		return fmt.Errorf("temporary folder: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "broadsheet.db")
	if cfg.Seed != "" {
		err = copyFile(path, cfg.Seed)
	} else {
		err = seedFile(ctx, path, cfg.N)
	}
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	// The store as the laptop opens it: a sync per transaction.
	store, err := bolt.Open(path)
	if err != nil {
		return err
	}
	defer store.Close()
	p, err := harness.NewParts(site)
	if err != nil {
		return err
	}

	var m delivery.Mailer
	var reconciler delivery.Reconciler
	var sk *sinkProc
	switch cfg.Mode {
	case "discard":
		m = discard{}
	case "smtp":
		if sk, err = startSink(ctx, "smtp"); err != nil {
			return err
		}
		defer sk.kill()
		// As serve wires SMTP: every accepted message is journalled
		// before the next goes on its connection.
		jl, err := journal.Open(filepath.Join(dir, "journal"), time.Now())
		if err != nil {
			return err
		}
		defer jl.Close()
		sm, err := smtp.New("smtp://"+sk.addr, smtp.WithPoolSize(cfg.Workers), smtp.WithRecorder(jl))
		if err != nil {
			return err
		}
		defer sm.Close()
		m, reconciler = sm, jl
	case "ses":
		if sk, err = startSink(ctx, "ses"); err != nil {
			return err
		}
		defer sk.kill()
		// Each worker's SendBulk makes up to ses.MaxParallelCalls calls at once.
		m = ses.New(sesClient("http://"+sk.addr, cfg.Workers*ses.MaxParallelCalls), "broadsheet")
	}

	log := logger(cfg, stderr)
	engine := p.Engine(store, m, nil, delivery.Config{Logger: log, FanoutPages: memqueue.FanoutPages, BatchSize: bolt.SendTaskSize, Reconciler: reconciler, Sole: true})
	q := memqueue.New(engine, memqueue.Options{Workers: cfg.Workers, Logger: log})
	engine.SetQueue(q)
	svc := p.Service(store, noMail{}, engine, engine, log)
	q.Start(ctx)
	defer q.Close()

	f, err := timedSend(ctx, cfg, svc, store)
	if err != nil {
		return err
	}
	f.renders = p.Renderer.Renders()
	if sk != nil {
		cpu, msgs, bytes, err := sk.stop()
		if err != nil {
			return err
		}
		f.extra = append(f.extra, fmt.Sprintf("sink_cpu_us_per_msg=%.1f sink_msgs=%d sink_mb=%.0f", float64(cpu.Microseconds())/float64(max(msgs, 1)), msgs, float64(bytes)/(1<<20)))
		if msgs > 0 {
			f.extra = append(f.extra, fmt.Sprintf("bytes_per_msg=%d", bytes/msgs))
		}
	}
	f.extra = append(f.extra, peaks.fields())
	fmt.Fprintln(stdout, f.line())
	if f.recipients != cfg.N {
		return fmt.Errorf("mode %s: %d of %d readers sent", cfg.Mode, f.recipients, cfg.N)
	}
	return nil
}

// timedSend creates the digest, sending at once, and waits until it is
// sent: the part that is timed, its CPU counted and, with -cpuprofile,
// profiled.
func timedSend(ctx context.Context, cfg *config, svc *newsroom.Service, store newsletter.Store) (figures, error) {
	f := figures{mode: cfg.Mode}
	stopProfile, err := profile(cfg.CPUProfile)
	if err != nil {
		return f, err
	}
	cpu0, t0 := cpuTime(), time.Now()
	st, _, err := svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "daily", Intro: "Good morning.", Send: true})
	if err != nil {
		stopProfile()
		return f, fmt.Errorf("digest: %w", err)
	}
	deadline := time.Now().Add(time.Duration(cfg.N)*10*time.Millisecond + 5*time.Minute)
	for {
		d, err := store.Digest(ctx, st.ID)
		if err != nil {
			stopProfile()
			return f, err
		}
		if d.Status == newsletter.DigestSent {
			break
		}
		if d.Status == newsletter.DigestPaused || time.Now().After(deadline) {
			stopProfile()
			return f, fmt.Errorf("digest %s: %s (%s) after %s", st.ID, d.Status, d.PausedReason, time.Since(t0).Round(time.Second))
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.elapsed, f.cpu = time.Since(t0), cpuTime()-cpu0
	stopProfile()
	c, err := store.DeliveryCounts(ctx, st.ID)
	if err != nil {
		return f, err
	}
	f.recipients = int(c.Sent)
	return f, nil
}

// awsConfig is the SDK configuration for the stand-ins: a region and
// dummy credentials.
func awsConfig() aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
}

// sesClient returns an SES v2 client for endpoint whose HTTP client keeps
// a connection per worker.
func sesClient(endpoint string, conns int) *sesv2.Client {
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = max(conns, t.MaxIdleConnsPerHost)
	})
	return sesv2.NewFromConfig(awsConfig(), func(o *sesv2.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.HTTPClient = hc
	})
}
