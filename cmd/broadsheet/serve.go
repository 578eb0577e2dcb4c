package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/api"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/schedule"
)

// serve runs the HTTP server, the queue workers and the schedule until ctx
// ends, then shuts down gracefully.
func serve(ctx context.Context, args []string, env environ, stdout, stderr io.Writer) error {
	cfg, _, err := parseConfig("serve", args, env, stderr, nil)
	if err != nil {
		return ignoreHelp(err)
	}
	return serveConfig(ctx, cfg, stdout, stderr)
}

// serveConfig is serve with its settings parsed.
func serveConfig(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	if cfg.baseURLDefaulted {
		// With port 0 the real port is known only now.
		cfg.BaseURL = "http://" + ln.Addr().String()
		if cfg.HomeURL == "" || cfg.homeURLDefaulted {
			cfg.HomeURL = cfg.BaseURL
		}
	}
	a, err := openApp(cfg, stderr)
	if err != nil {
		return err
	}
	defer a.Close()

	handler, err := api.NewHandler(a.service, api.Options{Logger: a.log, SiteName: cfg.SiteName, Now: cfg.now, WordPressSecret: []byte(cfg.WordPressSecret)})
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.queue.Start(ctx)
	if err := a.engine.Resume(ctx); err != nil {
		return err
	}
	stopRecovering := a.recoverWhileRunning(ctx)
	defer stopRecovering() // before the store closes
	sched := &schedule.Scheduler{
		Entries: cfg.schedules, Location: cfg.location, Logger: a.log, Now: cfg.now,
		Fire: func(ctx context.Context, f newsletter.Frequency) error {
			_, _, err := a.service.CreateDigest(ctx, newsroom.DigestRequest{Frequency: string(f), Send: true})
			return err
		},
	}
	go sched.Run(ctx)
	if ing := a.ingester(); ing != nil && cfg.IngestEvery > 0 {
		pulling := make(chan struct{})
		go func() { defer close(pulling); a.pullEvery(ctx, ing, cfg.IngestEvery) }()
		defer func() { cancel(); <-pulling }() // before the store closes
	}

	secret, err := a.firstToken(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Broadsheet is running at http://%s (public URL %s)\n", ln.Addr(), cfg.BaseURL)
	fmt.Fprintf(stdout, "Data: %s   Mail: %s\n", cfg.Data, a.mailDescription())
	if secret != "" {
		fmt.Fprintf(stdout, "\nFirst run: your editor token (shown once, keep it):\n\n    %s\n\n", secret)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if cfg.started != nil {
		cfg.started(a)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintln(stdout, "Broadsheet stopped.")
	return nil
}

func (a *app) mailDescription() string {
	if a.cfg.SMTP != "" {
		return "SMTP " + a.cfg.SMTP
	}
	return ".eml files in " + a.cfg.Data + "/outbox"
}

// ignoreHelp turns -h into a clean exit: the usage is already printed.
func ignoreHelp(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}
