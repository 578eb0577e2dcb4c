package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/wordpress"
)

// ingestCmd pulls, once, the posts the WordPress site published or
// changed since the last pull, and says what it did.
func ingestCmd(ctx context.Context, args []string, env environ, stdout, stderr io.Writer) error {
	var site string
	cfg, _, err := parseConfig("ingest", args, env, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&site, "site", "", "the WordPress site, as --wordpress-url")
	})
	if err != nil {
		return ignoreHelp(err)
	}
	if site != "" {
		cfg.WordPress = site
	}
	if cfg.WordPress == "" {
		return fmt.Errorf("ingest: give the WordPress site with --site URL (or BROADSHEET_WORDPRESS_URL)")
	}
	a, err := openApp(cfg, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	ing := a.ingester()
	if ing == nil {
		return fmt.Errorf("ingest: site URL %q is not valid", cfg.WordPress)
	}
	rep, err := ing.Run(ctx)
	fmt.Fprintf(stdout, "%s: %d pages, %d new, %d updated, %d unchanged, %d skipped\n",
		ing.Client.Site(), rep.Pages, rep.Created, rep.Updated, rep.Unchanged, rep.Rejected)
	return err
}

// ingester returns the pull from the configured WordPress site, nil when
// none is set.
func (a *app) ingester() *wordpress.Ingester {
	if a.cfg.WordPress == "" {
		return nil
	}
	client, err := wordpress.NewClient(a.cfg.WordPress, nil)
	if err != nil {
		return nil // config.check refused it already
	}
	return &wordpress.Ingester{Client: client, Newsroom: a.service, Checkpoints: a.store, Now: a.cfg.now, Logger: a.log}
}

// pullEvery runs the pull at once and then every interval until ctx ends.
// A failed run is logged; the next starts from the checkpoint it left.
func (a *app) pullEvery(ctx context.Context, ing *wordpress.Ingester, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		rep, err := ing.Run(ctx)
		if err != nil && ctx.Err() == nil {
			a.log.Error("wordpress pull failed", "site", ing.Client.Site(), "err", err)
		} else if rep.Created+rep.Updated > 0 {
			a.log.Info("wordpress pull", "site", ing.Client.Site(), "created", rep.Created, "updated", rep.Updated)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
