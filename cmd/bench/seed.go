package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/broadsheet-news/broadsheet/internal/bolt"
	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/harness"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
)

// site is the publication the benchmark sends for.
var site = harness.Site("https://ledger.example.com")

// variants are the choices readers are spread over, reader i taking
// variants[i%len]: six variants of the digest, each rendered once.
var variants = []struct {
	sections []string
	format   newsletter.Format
}{
	{nil, newsletter.FormatFull},
	{nil, newsletter.FormatLite},
	{nil, newsletter.FormatText},
	{[]string{"news", "politics"}, newsletter.FormatFull},
	{[]string{"business"}, newsletter.FormatFull},
	{[]string{"sport", "culture"}, newsletter.FormatText},
}

// noMail refuses the transactional emails, which the benchmark never sends.
type noMail struct{}

func (noMail) Send(context.Context, *eml.Message) (string, error) {
	return "", fmt.Errorf("the benchmark sends no transactional email")
}

// noSync opens bbolt without a sync per transaction: for seeding only,
// which is setup, not what is measured.
func noSync(o *bbolt.Options) { o.NoSync = true }

// seedFile makes a bbolt store at path with n readers and the articles.
func seedFile(ctx context.Context, path string, n int) error {
	store, err := bolt.Open(path, noSync)
	if err != nil {
		return err
	}
	p, err := harness.NewParts(site)
	if err != nil {
		store.Close()
		return err
	}
	err = seed(ctx, store, p.Service(store, noMail{}, nil, nil, slog.New(slog.DiscardHandler)), n, 2)
	return errors.Join(err, store.Close())
}

// seed adds n confirmed daily readers, spread over the variants, from
// several goroutines, and ten articles over every section.
func seed(ctx context.Context, store newsletter.Store, svc *newsroom.Service, n, workers int) error {
	if err := seedArticles(ctx, svc); err != nil {
		return err
	}
	now := time.Now().UTC()
	return harness.SeedReaders(ctx, store, n, workers, func(i int) *newsletter.Subscriber {
		v := variants[i%len(variants)]
		s := harness.Confirmed(fmt.Sprintf("reader-%07d", i), fmt.Sprintf("reader-%07d@example.com", i), now)
		s.Sections, s.Format = v.sections, v.format
		return s
	})
}

// summary is an article's summary: two short paragraphs, so that the
// digest of ten comes to about 16 KB, like listmonk's reference campaign.
var summary = strings.Repeat("What happened, in a few sentences, and why it matters to the readers of the Ledger. ", 3) +
	"\n\n" + strings.Repeat("What comes next, and who decides it. ", 3)

// seedArticles submits ten articles published an hour ago, over every
// section, so that the digest of the current period carries them.
func seedArticles(ctx context.Context, svc *newsroom.Service) error {
	now := time.Now()
	return harness.SubmitArticles(ctx, svc, 10, func(i int) newsroom.ArticleInput {
		sec := site.Sections[i%len(site.Sections)].Slug
		return newsroom.ArticleInput{
			URL:         fmt.Sprintf("https://ledger.example.com/2026/%s/story-%d", sec, i),
			Title:       fmt.Sprintf("Story %d: the %s desk's lead", i, sec),
			Summary:     summary,
			Author:      "A. Reporter",
			Sections:    []string{sec},
			PublishedAt: now.Add(-time.Hour - time.Duration(i)*time.Minute),
		}
	})
}

// copyFile copies the seeded store to a fresh path.
func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
