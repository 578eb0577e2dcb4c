package awsapp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/broadsheet-news/broadsheet/internal/wordpress"
)

// EnvWordPressURL is the WordPress site the ingest function pulls from:
// ingest only.
const EnvWordPressURL = "BROADSHEET_WORDPRESS_URL"

// IngestFunction is the scheduled pull from WordPress.
const IngestFunction Function = "ingest"

// Ingest is the ingest function's app: the digest function's parts (a
// newsroom that fans out inline onto the send queue, so that a new post
// can go to instant readers at once) and the pull.
type Ingest struct {
	*App
	Ingester *wordpress.Ingester
}

// LoadIngest builds the ingest function's app.
func LoadIngest(ctx context.Context, getenv func(string) string, stdout io.Writer) (*Ingest, error) {
	site, err := need(IngestFunction, getenv, EnvWordPressURL)
	if err != nil {
		return nil, err
	}
	client, err := wordpress.NewClient(site, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", IngestFunction, err)
	}
	a, err := LoadDigest(ctx, getenv, stdout)
	if err != nil {
		return nil, err
	}
	a.Function = IngestFunction
	a.Log = NewLogger(getenv, stdout).With("function", string(IngestFunction))
	return &Ingest{App: a, Ingester: &wordpress.Ingester{
		Client: client, Newsroom: a.Service, Checkpoints: a.Store, Logger: a.Log,
	}}, nil
}

// HandleIngest runs one pull, whatever the scheduled event holds. A
// failed pull returns its error so that the schedule's retry tries again;
// the checkpoint keeps what it got.
func (a *Ingest) HandleIngest(ctx context.Context, _ json.RawMessage) (*wordpress.Report, error) {
	rep, err := a.Ingester.Run(ctx)
	if err != nil {
		a.Log.ErrorContext(ctx, "wordpress pull failed", "err", err, "pages", rep.Pages)
		return nil, fmt.Errorf("ingest: %w", err)
	}
	a.Log.InfoContext(ctx, "wordpress pull", "pages", rep.Pages, "created", rep.Created, "updated", rep.Updated, "unchanged", rep.Unchanged, "rejected", rep.Rejected)
	return &rep, nil
}
