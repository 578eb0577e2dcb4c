package harness

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/render"
	"github.com/broadsheet-news/broadsheet/internal/render/transactional"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// Site returns the publication the harnesses send for, The Daily Ledger,
// at url.
func Site(url string) render.Site {
	return render.Site{
		Name:          "The Daily Ledger",
		URL:           url,
		PostalAddress: "The Daily Ledger Ltd\n1 Printing House Square\nLagos",
		Sections:      newsletter.DefaultSections,
		Location:      time.UTC,
	}
}

// Letterhead returns what every digest email of site says about its
// sender.
func Letterhead(site render.Site) delivery.Letterhead {
	return delivery.Letterhead{
		From:              "The Daily Ledger <news@ledger.example.com>",
		UnsubscribeMailto: "unsubscribe@ledger.example.com",
		ListID:            "<daily.ledger.example.com>",
		BaseURL:           site.URL,
	}
}

// Parts are what every stack of a harness shares: the site and its
// letterhead, a fresh signing key, the digest renderer and the
// transactional emails.
type Parts struct {
	Site       render.Site
	Letterhead delivery.Letterhead
	Signer     *token.Signer
	Renderer   *render.Renderer
	Mails      newsroom.Transactional
}

// NewParts makes the parts for site, with a fresh signing key.
func NewParts(site render.Site) (*Parts, error) {
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
	return &Parts{Site: site, Letterhead: Letterhead(site), Signer: signer, Renderer: renderer, Mails: mails}, nil
}

// Engine builds a delivery engine on the parts; cfg's letterhead is the
// parts' own.
func (p *Parts) Engine(store newsletter.Store, m delivery.Mailer, q delivery.Queue, cfg delivery.Config) *delivery.Engine {
	cfg.Letterhead = p.Letterhead
	return delivery.New(store, p.Signer, p.Renderer, m, q, cfg)
}

// Service builds the newsroom on the parts: m sends the transactional
// emails, e is the engine and d starts a digest's sends.
func (p *Parts) Service(store newsletter.Store, m newsroom.Mailer, e *delivery.Engine, d newsroom.Dispatcher, log *slog.Logger) *newsroom.Service {
	return newsroom.New(store, p.Signer, p.Renderer, p.Mails, m, e, d, newsroom.Config{
		Site: p.Site, From: p.Letterhead.From, Logger: log,
	})
}

// InlineFanout fans a digest out when it is sent, as the digest function
// does.
type InlineFanout struct {
	Engine interface {
		Fanout(context.Context, string) error
	}
}

// Dispatch fans the digest out now.
func (d InlineFanout) Dispatch(ctx context.Context, digestID string) error {
	return d.Engine.Fanout(ctx, digestID)
}

// Confirmed returns a reader confirmed at now, with consent from an
// import: daily, every section, the full format.
func Confirmed(id, email string, now time.Time) *newsletter.Subscriber {
	return &newsletter.Subscriber{
		ID: id, Email: email, Status: newsletter.StatusConfirmed,
		Frequency: newsletter.Daily, Format: newsletter.FormatFull,
		Consent:   newsletter.Consent{Time: now, Source: "import"},
		CreatedAt: now, UpdatedAt: now, ConfirmedAt: now,
	}
}

// SeedReaders adds reader(i) to store for every i below n, from workers
// goroutines, and returns the first error.
func SeedReaders(ctx context.Context, store newsletter.Store, n, workers int, reader func(i int) *newsletter.Subscriber) error {
	jobs := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := store.CreateSubscriber(ctx, reader(i)); err != nil {
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

// SubmitArticles submits article(i) through the newsroom for every i
// below n.
func SubmitArticles(ctx context.Context, svc *newsroom.Service, n int, article func(i int) newsroom.ArticleInput) error {
	for i := range n {
		if _, _, err := svc.SubmitArticle(ctx, article(i)); err != nil {
			return fmt.Errorf("seed article: %w", err)
		}
	}
	return nil
}

// DeleteHandled deletes from the queue at url the records of ev that res
// does not report as failures, as Lambda's SQS event source mapping does
// after an invocation. A delete that fails leaves the message to come
// back: harmless.
func DeleteHandled(ctx context.Context, client *awssqs.Client, url string, ev events.SQSEvent, res events.SQSEventResponse) {
	failed := map[string]bool{}
	for _, f := range res.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var del []sqstypes.DeleteMessageBatchRequestEntry
	for _, r := range ev.Records {
		if !failed[r.MessageId] {
			del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(r.MessageId), ReceiptHandle: aws.String(r.ReceiptHandle)})
		}
	}
	if len(del) > 0 {
		_, _ = client.DeleteMessageBatch(context.WithoutCancel(ctx), &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: del})
	}
}
