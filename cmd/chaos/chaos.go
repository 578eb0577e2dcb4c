package main

import (
	"context"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
)

// config is what the flags chose.
type config struct {
	Size      string   // "full" or "small"
	Small     bool     // Size == "small"
	Seed      uint64   // the seed every scenario's randomness derives from
	Scenarios []string // in order
	Verbose   bool     // application logs to stderr
	Dir       string   // where temporary data folders go
	Recorder  bool     // run as the kill scenario's SMTP recorder, nothing else
}

// scenario is one fault scenario. It reports figures on r and checks them
// with r.want; an error means it could not run at all.
type scenario struct {
	name string
	run  func(ctx context.Context, env *runEnv, r *result) error
}

// scenarios lists every scenario in the order they run: those that need no
// engine fault hooks first, the crashes last.
var scenarios = []scenario{
	{"triggers", runTriggers},
	{"unsubscribe", runUnsubscribe},
	{"feedback", runFeedback},
	{"inputs", runInputs},
	{"throttle", runThrottle},
	{"crash-laptop", runCrashLaptop},
	{"crash-aws", runCrashAWS},
	{"kill-smtp", runKillSMTP},
	{"kill-outbox", runKillOutbox},
	{"kill-import", runKillImport},
	{"kill-aws", runKillAWS},
}

func scenarioNames() []string {
	var names []string
	for _, s := range scenarios {
		names = append(names, s.name)
	}
	return names
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	size := fs.String("size", "full", "full (the figures the README quotes) or small (CI)")
	seed := fs.Uint64("seed", 0, "seed for every random choice; 0 picks one from the clock (printed on each line)")
	only := fs.String("scenario", "", "comma-separated scenarios to run, of: "+strings.Join(scenarioNames(), ", ")+"; all when empty")
	verbose := fs.Bool("v", false, "write the application's logs to stderr")
	recorder := fs.Bool("smtp-recorder", false, "run as the SMTP server of the kill scenarios (they start it so), nothing else")
	dir := fs.String("dir", "", "folder for temporary data (bbolt files, outboxes); /dev/shm when it exists, else the system's temporary folder")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg := &config{Size: *size, Seed: *seed, Verbose: *verbose, Dir: *dir, Recorder: *recorder}
	switch cfg.Size {
	case "full":
	case "small":
		cfg.Small = true
	default:
		return nil, fmt.Errorf("size %q: want full or small", cfg.Size)
	}
	if cfg.Dir == "" {
		// bbolt syncs every transaction: on a RAM-backed folder the
		// figures measure Broadsheet, not the disk.
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			cfg.Dir = "/dev/shm"
		}
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	if *only == "" {
		cfg.Scenarios = scenarioNames()
	} else {
		for _, name := range strings.Split(*only, ",") {
			name = strings.TrimSpace(name)
			if !slices.Contains(scenarioNames(), name) {
				return nil, fmt.Errorf("unknown scenario %q: want one of %s", name, strings.Join(scenarioNames(), ", "))
			}
			cfg.Scenarios = append(cfg.Scenarios, name)
		}
	}
	return cfg, nil
}

// runEnv is what every scenario gets: the settings, a logger and a
// place for temporary files.
type runEnv struct {
	cfg    *config
	log    *slog.Logger
	stderr io.Writer

	// The laptop binary, built once for the kill scenarios.
	buildOnce sync.Once
	binDir    string
	binary    string
	buildErr  error
}

// pick returns the full-size or the small-size value.
func (e *runEnv) pick(full, small int) int {
	if e.cfg.Small {
		return small
	}
	return full
}

// rng returns the random source of a scenario: the run's seed mixed with
// the scenario's name, so that scenarios do not share a sequence.
func (e *runEnv) rng(name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(e.cfg.Seed, h.Sum64()))
}

// tempDir makes a temporary folder that cleanup removes.
func (e *runEnv) tempDir(name string) (dir string, cleanup func(), err error) {
	dir, err = os.MkdirTemp(e.cfg.Dir, "chaos-"+name+"-")
	if err != nil {
		return "", nil, fmt.Errorf("temporary folder: %w", err)
	}
	return dir, func() { _ = os.RemoveAll(dir) }, nil
}

func runScenarios(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	logOut := io.Discard
	if cfg.Verbose {
		logOut = stderr
	}
	env := &runEnv{cfg: cfg, log: slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo})), stderr: stderr}
	defer awstest.StopAll()
	defer func() {
		if env.binDir != "" {
			os.RemoveAll(env.binDir)
		}
	}()

	start := time.Now()
	var failed []string
	for _, s := range scenarios {
		if !slices.Contains(cfg.Scenarios, s.name) {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r := &result{}
		t0 := time.Now()
		err := s.run(ctx, env, r)
		if r.exact {
			fmt.Fprintf(stderr, "chaos: %s seed=%d elapsed=%.1fs\n", r.name(), cfg.Seed, time.Since(t0).Seconds())
		} else {
			r.set("seed", cfg.Seed)
			r.set("elapsed", fmt.Sprintf("%.1fs", time.Since(t0).Seconds()))
		}
		if err != nil {
			r.problems = append(r.problems, "did not finish: "+err.Error())
		}
		fmt.Fprintln(stdout, r.line())
		for _, p := range r.problems {
			fmt.Fprintf(stderr, "chaos: %s: %s\n", r.name(), p)
		}
		if len(r.problems) > 0 {
			failed = append(failed, r.name())
		}
	}
	fmt.Fprintf(stderr, "chaos: size=%s seed=%d finished in %.1fs\n", cfg.Size, cfg.Seed, time.Since(start).Seconds())
	if len(failed) > 0 {
		return fmt.Errorf("figures off in %s (seed %d; repeat with -seed %d)", strings.Join(failed, ", "), cfg.Seed, cfg.Seed)
	}
	return nil
}

// result is one scenario's line: ordered key=value figures, and what was
// off.
type result struct {
	// exact: the line holds the scenario's own figures only, in the form
	// its issue asked for; the seed and the time go to stderr.
	exact bool

	mu       sync.Mutex
	keys     []string
	values   map[string]string
	problems []string
}

// set records a figure; setting a key again replaces its value in place.
func (r *result) set(key string, v any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.values == nil {
		r.values = map[string]string{}
	}
	if _, ok := r.values[key]; !ok {
		r.keys = append(r.keys, key)
	}
	r.values[key] = fmt.Sprint(v)
}

// want records a problem unless ok.
func (r *result) want(ok bool, format string, args ...any) {
	if ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// zero sets a figure that must be zero, and checks it.
func (r *result) zero(key string, n int) {
	r.set(key, n)
	r.want(n == 0, "%s=%d, want 0", key, n)
}

// name is the scenario and path, for messages.
func (r *result) name() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.values["scenario"]
	if p := r.values["path"]; p != "" {
		n += " path=" + p
	}
	return n
}

func (r *result) line() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	b.WriteString("FAULTS")
	for _, k := range r.keys {
		fmt.Fprintf(&b, " %s=%s", k, r.values[k])
	}
	return b.String()
}
