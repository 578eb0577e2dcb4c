package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// config is what the flags chose.
type config struct {
	N          int // readers of the largest run
	Modes      []string
	Mode       string // set in a child: the one mode it runs
	Sink       string // set in a sink child: smtp or ses
	Seed       string // a child's seeded store to copy
	Dir        string // where stores go
	Workers    int    // queue workers
	AWSN       int    // readers of the aws mode
	Functions  bool   // measure the Lambda functions
	CPUProfile string // a child writes its CPU profile here
	Verbose    bool
}

// allModes are the modes, in the order they run.
var allModes = []string{"discard", "smtp", "ses", "aws"}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{}
	fs.IntVar(&c.N, "n", 100000, "readers: each of discard, smtp and ses runs at 10000 and at n (at n only when n ≤ 10000)")
	modes := fs.String("modes", strings.Join(allModes, ","), "comma-separated modes to run, of: "+strings.Join(allModes, ", "))
	fs.StringVar(&c.Mode, "mode", "", "run one mode in this process (what the benchmark re-executes itself with)")
	fs.StringVar(&c.Sink, "sink", "", "run a sink (smtp or ses) until standard input closes, then print its CPU")
	fs.StringVar(&c.Seed, "seed", "", "with -mode: the seeded store to copy (made when empty)")
	fs.StringVar(&c.Dir, "dir", "", "folder for the stores (bbolt syncs every transaction: its disk matters); the system's temporary folder when empty")
	fs.IntVar(&c.Workers, "workers", 4, "queue workers (the laptop default)")
	fs.IntVar(&c.AWSN, "aws-n", 0, "readers of the aws mode: 10000, or 500 when -n is under 10000")
	fs.BoolVar(&c.Functions, "functions", true, "measure each Lambda function's bootstrap size and start-to-ready time")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the send (one file per mode and size: the name gets -<mode>-<n> before its extension)")
	fs.BoolVar(&c.Verbose, "v", false, "the application's logs to stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.N < 1 || c.N > 10_000_000 {
		return nil, fmt.Errorf("-n %d: want 1 to 10000000", c.N)
	}
	if c.Workers < 1 || c.Workers > 256 {
		return nil, fmt.Errorf("-workers %d: want 1 to 256", c.Workers)
	}
	for _, m := range strings.Split(*modes, ",") {
		if m = strings.TrimSpace(m); m == "" {
			continue
		}
		if !slices.Contains(allModes, m) {
			return nil, fmt.Errorf("mode %q: want one of %s", m, strings.Join(allModes, ", "))
		}
		c.Modes = append(c.Modes, m)
	}
	if c.Mode != "" && !slices.Contains(allModes, c.Mode) {
		return nil, fmt.Errorf("mode %q: want one of %s", c.Mode, strings.Join(allModes, ", "))
	}
	if c.Sink != "" && c.Sink != "smtp" && c.Sink != "ses" {
		return nil, fmt.Errorf("sink %q: want smtp or ses", c.Sink)
	}
	if c.AWSN <= 0 {
		c.AWSN = 10000
		if c.N < 10000 {
			c.AWSN = 500
		}
	}
	if c.Dir == "" {
		c.Dir = os.TempDir()
	}
	return c, nil
}

// sizes returns the reader counts a laptop mode runs at: 10000 and N, so
// that growth with N shows.
func (c *config) sizes() []int {
	if c.N <= 10000 {
		return []int{c.N}
	}
	return []int{10000, c.N}
}

// runAll runs every chosen mode at every size, each in a child process,
// then measures the functions.
func runAll(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(cfg.Dir, "bench-")
	if err != nil {
		return fmt.Errorf("temporary folder: %w", err)
	}
	defer os.RemoveAll(work)
	fmt.Fprintf(stderr, "bench: stores in %s, %d queue workers\n", work, cfg.Workers)

	for _, n := range cfg.sizes() {
		var laptop []string
		for _, m := range cfg.Modes {
			if m != "aws" {
				laptop = append(laptop, m)
			}
		}
		if len(laptop) == 0 {
			continue
		}
		// One seeded store per size, copied fresh for every mode: seeding
		// is setup, not what is measured.
		seed := filepath.Join(work, "seed-"+strconv.Itoa(n)+".db")
		if err := seedFile(ctx, seed, n); err != nil {
			return err
		}
		for _, m := range laptop {
			if err := child(ctx, self, cfg, m, n, seed, work, stdout, stderr); err != nil {
				return err
			}
		}
		os.Remove(seed)
	}
	if slices.Contains(cfg.Modes, "aws") {
		if err := child(ctx, self, cfg, "aws", cfg.AWSN, "", work, stdout, stderr); err != nil {
			return err
		}
	}
	if cfg.Functions {
		if err := runFunctions(ctx, work, stdout, stderr); err != nil {
			return err
		}
	}
	return nil
}

// child runs one mode at n readers in a fresh process and copies its
// BENCH lines to stdout.
func child(ctx context.Context, self string, cfg *config, mode string, n int, seed, work string, stdout, stderr io.Writer) error {
	args := []string{"-mode", mode, "-n", strconv.Itoa(n), "-dir", work, "-workers", strconv.Itoa(cfg.Workers)}
	if seed != "" {
		args = append(args, "-seed", seed)
	}
	if cfg.CPUProfile != "" {
		ext := filepath.Ext(cfg.CPUProfile)
		args = append(args, "-cpuprofile", fmt.Sprintf("%s-%s-%d%s", strings.TrimSuffix(cfg.CPUProfile, ext), mode, n, ext))
	}
	if cfg.Verbose {
		args = append(args, "-v")
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mode %s: %w", mode, err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		fmt.Fprintln(stdout, sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("mode %s at %d readers: %w", mode, n, err)
	}
	return nil
}
