package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/bolt"
	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/harness"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/smtp"
	"github.com/broadsheet-news/broadsheet/internal/smtp/smtptest"
)

// Settings of the kill scenarios.
const (
	// killLease is serve's --lease. With the laptop's sole sender a
	// restart takes up a dead process's claims at once, so the lease
	// only has to outlast one send task (500 readers, well under a
	// second here).
	killLease = 10 * time.Second
	// killConnections is how many SMTP connections serve keeps: each can
	// have one message on the wire when the process dies.
	killConnections = smtp.DefaultPoolSize
)

// runKillSMTP kills the real `broadsheet serve`, sending through SMTP to a
// server in another process that records every message it accepts.
func runKillSMTP(ctx context.Context, env *runEnv, r *result) error {
	return runKill(ctx, env, r, true)
}

// runKillOutbox kills the real `broadsheet serve`, writing to its outbox.
func runKillOutbox(ctx context.Context, env *runEnv, r *result) error {
	return runKill(ctx, env, r, false)
}

// runKill builds the real binary, seeds a data folder with N readers, an
// editor token and the articles, starts `serve` on it, triggers the daily
// digest through the API, and SIGKILLs the server K times at random
// moments of fan-out and send, restarting it at once each time (once
// after a pause longer than the lease). Then it waits for the digest to
// finish with no further restart, and counts per reader what the SMTP
// server (or the outbox) holds against the ledger.
//
// A kill can cost a second copy only to a reader whose message was on an
// SMTP connection at that moment (the journal records the rest), so
// duplicates may reach connections × kills over SMTP and must be 0 for
// the outbox, whose files are the engine's record.
func runKill(ctx context.Context, env *runEnv, r *result, viaSMTP bool) error {
	path := "laptop-outbox"
	if viaSMTP {
		path = "laptop-smtp"
	}
	r.exact = true
	r.set("scenario", "kill")
	r.set("path", path)
	readers, kills := env.pick(20000, 3000), env.pick(20, 5)
	rng := env.rng("kill-" + path)

	bin, err := env.broadsheetBinary(ctx)
	if err != nil {
		return err
	}
	dir, cleanup, err := env.tempDir("kill")
	if err != nil {
		return err
	}
	defer cleanup()
	secret, err := seedDataFolder(ctx, env, dir, readers)
	if err != nil {
		return err
	}

	addr, err := freeAddr()
	if err != nil {
		return err
	}
	args := []string{"serve", "--data", dir, "--addr", addr, "--lease", killLease.String(),
		"--daily-at", "off", "--weekly-at", "off", "--base-url", "http://" + addr}
	var delivered func() int
	var rec *recorderProc
	if viaSMTP {
		if rec, err = startRecorder(ctx, env); err != nil {
			return err
		}
		defer rec.stop()
		args = append(args, "--smtp", "smtp://"+rec.addr)
		delivered = rec.count
	} else {
		delivered = func() int { return countFiles(filepath.Join(dir, "outbox")) }
	}
	srv := &serveProc{bin: bin, args: args, log: filepath.Join(dir, "serve.log")}
	if err := srv.start(ctx); err != nil {
		return err
	}
	defer srv.kill()
	api := &apiClient{base: "http://" + addr, token: secret}

	t0 := time.Now()
	digestID, err := api.createDigest(ctx)
	if err != nil {
		return err
	}
	// The moments to kill at: K counts of delivered mail, drawn from the
	// first nine tenths of the send (fan-out runs two pages ahead of the
	// senders until the end), each with up to 100 ms more; a count that
	// is reached already when the server is back kills it while it
	// recovers.
	at := make([]int, kills)
	for i := range at {
		at[i] = rng.IntN(readers * 9 / 10)
	}
	slices.Sort(at)
	pauseAfter := rng.IntN(kills)
	for i, n := range at {
		deadline := time.Now().Add(2 * time.Minute)
		for delivered() < n && time.Now().Before(deadline) {
			if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
				return err
			}
		}
		if err := sleepCtx(ctx, time.Duration(rng.IntN(100))*time.Millisecond); err != nil {
			return err
		}
		srv.kill()
		if i == pauseAfter {
			// Long enough for every lease the dead process held to run out.
			if err := sleepCtx(ctx, killLease+time.Second); err != nil {
				return err
			}
		}
		if err := srv.start(ctx); err != nil {
			return fmt.Errorf("restart %d: %w", i+1, err)
		}
	}

	// No restart from here on: the running server has to finish alone.
	lastRestart := time.Now()
	finished := false
	deadline := time.Now().Add(3*killLease + time.Duration(readers)*2*time.Millisecond + time.Minute)
	for time.Now().Before(deadline) {
		st, err := api.digest(ctx, digestID)
		if err == nil && st.Status == newsletter.DigestSent && st.Counters.Queued+st.Counters.Sending+st.Counters.Unknown == 0 {
			finished = true
			break
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	seconds := time.Since(t0)
	if finished {
		fmt.Fprintf(env.stderr, "chaos: kill path=%s: finished %.1fs after the last restart (lease %s)\n", path, time.Since(lastRestart).Seconds(), killLease)
	}
	if err := srv.stop(); err != nil {
		return err
	}

	copies := map[string]int{}
	if viaSMTP {
		copies = rec.perReader()
	} else {
		mails, err := countOutbox(filepath.Join(dir, "outbox"), digestID)
		if err != nil {
			return err
		}
		copies = mails.perReader
	}
	missing, dups, err := killFigures(ctx, dir, digestID, readers, copies)
	if err != nil {
		return err
	}
	maxDups := 0
	if viaSMTP {
		maxDups = killConnections * kills
	}
	r.set("recipients", readers)
	r.set("kills", kills)
	r.zero("missing", missing)
	r.set("duplicates", dups)
	r.set("max_duplicates", maxDups)
	r.want(dups <= maxDups, "duplicates=%d, want at most %d", dups, maxDups)
	yes := "no"
	if finished {
		yes = "yes"
	}
	r.set("finished_without_restart", yes)
	r.want(finished, "the digest did not finish without another restart (serve's log: %s)", srv.log)
	r.set("seconds", fmt.Sprintf("%.1f", seconds.Seconds()))
	if !finished || missing > 0 || dups > maxDups {
		// Keep the folder for a look.
		keep := dir + "-kept"
		if err := os.Rename(dir, keep); err == nil {
			fmt.Fprintf(env.stderr, "chaos: kill path=%s: data folder kept in %s\n", path, keep)
		}
	}
	return nil
}

// killFigures opens the stopped server's store and counts the readers
// missing (no final ledger row, or sent with no copy delivered) and those
// with more than one copy.
func killFigures(ctx context.Context, dir, digestID string, readers int, copies map[string]int) (missing, dups int, err error) {
	store, err := bolt.Open(filepath.Join(dir, "broadsheet.db"))
	if err != nil {
		return 0, 0, err
	}
	defer store.Close()
	rows, err := ledger(ctx, store, digestID)
	if err != nil {
		return 0, 0, err
	}
	for i := range readers {
		id := readerID(i)
		row := rows[id]
		switch {
		case row == nil || !settledFinal(row.Status):
			missing++
		case row.Status == newsletter.DeliverySent && copies[id] == 0:
			missing++
		}
		if copies[id] > 1 {
			dups++
		}
	}
	return missing, dups, nil
}

// seedDataFolder writes what a laptop install holds before the send into
// dir's store: n confirmed daily readers, the articles, and an editor
// token, whose secret it returns.
func seedDataFolder(ctx context.Context, env *runEnv, dir string, n int) (string, error) {
	store, err := bolt.Open(filepath.Join(dir, "broadsheet.db"))
	if err != nil {
		return "", err
	}
	defer store.Close()
	p, err := harness.NewParts(site)
	if err != nil {
		return "", err
	}
	engine := p.Engine(store, noMailer{}, dropQueue{}, engineConfig(env))
	svc := p.Service(store, noMailer{}, engine, engine, env.log)
	if _, err := seedAll(ctx, store, svc, n, 4); err != nil {
		return "", err
	}
	secret, _, err := svc.CreateEditorToken(ctx, "chaos", []string{"edit", "send"})
	if err != nil {
		return "", fmt.Errorf("editor token: %w", err)
	}
	return secret, nil
}

// dropQueue is the queue of an engine that must send nothing.
type dropQueue struct{}

func (dropQueue) Enqueue(context.Context, ...delivery.Task) error { return nil }

// broadsheetBinary builds the laptop binary once per run and returns its
// path.
func (e *runEnv) broadsheetBinary(ctx context.Context) (string, error) {
	e.buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "chaos-bin-")
		if err != nil {
			e.buildErr = err
			return
		}
		e.binDir = dir
		out := filepath.Join(dir, "broadsheet")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/broadsheet-news/broadsheet/cmd/broadsheet")
		cmd.Stdout, cmd.Stderr = e.stderr, e.stderr
		if err := cmd.Run(); err != nil {
			e.buildErr = fmt.Errorf("build broadsheet: %w", err)
			return
		}
		e.binary = out
	})
	return e.binary, e.buildErr
}

// freeAddr returns a 127.0.0.1 address with a port free at the moment.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// countFiles returns how many .eml files dir holds.
func countFiles(dir string) int {
	f, err := os.Open(dir)
	if err != nil {
		return 0
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	n := 0
	for _, name := range names {
		if strings.HasSuffix(name, ".eml") {
			n++
		}
	}
	return n
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// serveProc is `broadsheet serve` as a process the scenario starts, kills
// and starts again on the same data folder; its output goes to log.
type serveProc struct {
	bin  string
	args []string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
}

// start starts the server and waits until it listens.
func (s *serveProc) start(ctx context.Context) error {
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- chaos: start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start serve: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.HasPrefix(sc.Text(), "Broadsheet is running at") {
				close(ready)
				signalled = true
			}
		}
		if !signalled {
			close(ready)
		}
		cmd.Wait()
		close(s.done)
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		s.kill()
		return ctx.Err()
	case <-time.After(time.Minute):
		s.kill()
		return errors.New("serve did not start within a minute")
	}
	select {
	case <-s.done:
		return fmt.Errorf("serve exited at start-up: %v (see %s)", cmd.ProcessState, s.log)
	default:
	}
	return nil
}

// kill SIGKILLs the server and waits for it to be gone.
func (s *serveProc) kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// stop asks the server to shut down, as Ctrl-C does, and waits.
func (s *serveProc) stop() error {
	if s.cmd == nil {
		return nil
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		s.kill()
		return errors.New("serve did not stop within a minute of SIGINT")
	}
	s.cmd = nil
	return nil
}

// apiClient calls the editors' API of a running server.
type apiClient struct {
	base, token string
}

type digestStatus struct {
	ID       string                  `json:"id"`
	Status   newsletter.DigestStatus `json:"status"`
	Counters newsletter.Counters     `json:"counters"`
}

func (c *apiClient) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	return json.Unmarshal(b, out)
}

// createDigest builds and sends the daily digest, and returns its ID.
func (c *apiClient) createDigest(ctx context.Context) (string, error) {
	var st digestStatus
	if err := c.do(ctx, http.MethodPost, "/api/digests", map[string]any{"frequency": "daily", "send": true}, &st); err != nil {
		return "", err
	}
	if st.ID == "" {
		return "", errors.New("POST /api/digests: no digest ID in the answer")
	}
	return st.ID, nil
}

func (c *apiClient) digest(ctx context.Context, id string) (*digestStatus, error) {
	var st digestStatus
	if err := c.do(ctx, http.MethodGet, "/api/digests/"+id, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// recorderProc is the SMTP server of the kill scenario, in a child
// process (this binary again, with -smtp-recorder) so that it lives
// through the kills. It prints a line for every message it accepts, as it
// accepts it.
type recorderProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	done  chan struct{}

	n  atomic.Int64
	mu sync.Mutex
	to map[string]int // copies per recipient address
}

func startRecorder(ctx context.Context, env *runEnv) (*recorderProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, "-smtp-recorder")
	cmd.Stderr = env.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the SMTP recorder: %w", err)
	}
	p := &recorderProc{cmd: cmd, stdin: stdin, done: make(chan struct{}), to: map[string]int{}}
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "ADDR "); ok {
				addr <- a
				continue
			}
			if to, ok := strings.CutPrefix(line, "RCPT "); ok {
				p.mu.Lock()
				p.to[to]++
				p.mu.Unlock()
				p.n.Add(1)
			}
		}
		cmd.Wait()
	}()
	select {
	case p.addr = <-addr:
		return p, nil
	case <-p.done:
		return nil, errors.New("the SMTP recorder exited before listening")
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		return nil, errors.New("the SMTP recorder did not listen within 30 s")
	}
}

// count returns how many messages the recorder has accepted.
func (p *recorderProc) count() int { return int(p.n.Load()) }

// perReader returns the copies per reader ID.
func (p *recorderProc) perReader() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.to))
	for to, n := range p.to {
		id, _, _ := strings.Cut(to, "@")
		out[id] += n
	}
	return out
}

// stop closes the recorder's standard input, which ends it.
func (p *recorderProc) stop() {
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// runRecorder is the recorder child: an SMTP server on 127.0.0.1 that
// prints "ADDR host:port", then "RCPT address" for every recipient of
// every message it accepts — once the whole message has arrived, before
// its 250 is sent, which is when a real server has taken it — until its
// standard input closes.
func runRecorder(stdin io.Reader, stdout io.Writer) error {
	out := bufio.NewWriter(stdout)
	var mu sync.Mutex
	srv, err := harness.StandIn("chaos", func(tb testing.TB) *smtptest.Server {
		return smtptest.NewServer(tb, smtptest.CountOnly(), smtptest.WithNotify(func(m smtptest.Received) {
			mu.Lock()
			defer mu.Unlock()
			for _, to := range m.To {
				out.WriteString("RCPT " + to + "\n")
			}
			out.Flush()
		}))
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	mu.Lock()
	out.WriteString("ADDR " + srv.Addr() + "\n")
	out.Flush()
	mu.Unlock()
	_, _ = io.Copy(io.Discard, stdin)
	return nil
}
