package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/broadsheet-news/broadsheet/internal/bolt"
	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/render"
	"github.com/broadsheet-news/broadsheet/internal/render/transactional"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// site is the publication the benchmark sends for.
var site = render.Site{
	Name:          "The Daily Ledger",
	URL:           "https://ledger.example.com",
	PostalAddress: "The Daily Ledger Ltd\n1 Printing House Square\nLagos",
	Sections:      newsletter.DefaultSections,
	Location:      time.UTC,
}

// letterhead is what every digest email says about its sender.
var letterhead = delivery.Letterhead{
	From:              "The Daily Ledger <news@ledger.example.com>",
	UnsubscribeMailto: "unsubscribe@ledger.example.com",
	ListID:            "<daily.ledger.example.com>",
	BaseURL:           site.URL,
}

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

// parts are what every pipeline shares: a fresh signing key, the digest
// renderer and the transactional emails.
type parts struct {
	signer   *token.Signer
	renderer *render.Renderer
	mails    newsroom.Transactional
}

func newParts() (*parts, error) {
	key, err := token.NewKey()
	if err != nil {
		return nil, err
	}
	signer, err := token.NewSigner(key)
	if err != nil {
		return nil, err
	}
	renderer, err := render.New(site)
	if err != nil {
		return nil, err
	}
	mails, err := transactional.New(site)
	if err != nil {
		return nil, err
	}
	return &parts{signer: signer, renderer: renderer, mails: mails}, nil
}

// service builds the newsroom on the parts; d starts a digest's sends.
func (p *parts) service(store newsletter.Store, e *delivery.Engine, d newsroom.Dispatcher, log *slog.Logger) *newsroom.Service {
	return newsroom.New(store, p.signer, p.renderer, p.mails, noMail{}, e, d, newsroom.Config{Site: site, From: letterhead.From, Logger: log})
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
	p, err := newParts()
	if err != nil {
		store.Close()
		return err
	}
	err = seed(ctx, store, p.service(store, nil, nil, slog.New(slog.DiscardHandler)), n, 2)
	return errors.Join(err, store.Close())
}

// seed adds n confirmed daily readers, spread over the variants, from
// several goroutines, and ten articles over every section.
func seed(ctx context.Context, store newsletter.Store, svc *newsroom.Service, n, workers int) error {
	if err := seedArticles(ctx, svc); err != nil {
		return err
	}
	now := time.Now().UTC()
	jobs := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				v := variants[i%len(variants)]
				s := &newsletter.Subscriber{
					ID: fmt.Sprintf("reader-%07d", i), Email: fmt.Sprintf("reader-%07d@example.com", i),
					Status: newsletter.StatusConfirmed, Sections: v.sections,
					Frequency: newsletter.Daily, Format: v.format,
					Consent:   newsletter.Consent{Time: now, Source: "import"},
					CreatedAt: now, UpdatedAt: now, ConfirmedAt: now,
				}
				if err := store.CreateSubscriber(ctx, s); err != nil {
					errs <- fmt.Errorf("seed reader %d: %w", i, err)
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := range n {
		select {
		case jobs <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

// summary is an article's summary: two short paragraphs, so that the
// digest of ten comes to about 16 KB, like listmonk's reference campaign.
var summary = strings.Repeat("What happened, in a few sentences, and why it matters to the readers of the Ledger. ", 3) +
	"\n\n" + strings.Repeat("What comes next, and who decides it. ", 3)

// seedArticles submits ten articles published an hour ago, over every
// section, so that the digest of the current period carries them.
func seedArticles(ctx context.Context, svc *newsroom.Service) error {
	now := time.Now()
	for i := range 10 {
		sec := site.Sections[i%len(site.Sections)].Slug
		_, _, err := svc.SubmitArticle(ctx, newsroom.ArticleInput{
			URL:         fmt.Sprintf("https://ledger.example.com/2026/%s/story-%d", sec, i),
			Title:       fmt.Sprintf("Story %d: the %s desk's lead", i, sec),
			Summary:     summary,
			Author:      "A. Reporter",
			Sections:    []string{sec},
			PublishedAt: now.Add(-time.Hour - time.Duration(i)*time.Minute),
		})
		if err != nil {
			return fmt.Errorf("seed article: %w", err)
		}
	}
	return nil
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
