// Package newsroom is what readers and editors do with Broadsheet:
// subscribe, confirm, choose, unsubscribe; submit articles, build, preview,
// test and send digests; manage the list. It holds the rules and calls the
// store, the renderer, the mailer and the delivery engine through their
// ports; it imports no AWS package and no HTTP.
package newsroom

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/render"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// Mailer sends transactional and test emails.
type Mailer interface {
	Send(ctx context.Context, m *eml.Message) (messageID string, err error)
}

// Transactional builds the transactional emails (package transactional).
// It is an interface so that the digest and sender functions, which hold a
// newsroom but never email readers one by one, do not link hermes.
type Transactional interface {
	Confirmation(confirmURL string) (*render.Mail, error)
	Welcome(preferencesURL, unsubscribeURL string) (*render.Mail, error)
	Goodbye(resubscribeURL string) (*render.Mail, error)
}

// Dispatcher starts sending a digest that is marked sending: the
// in-process queue on a laptop, the digest function on AWS. It must be
// idempotent: a digest may be dispatched more than once.
type Dispatcher interface {
	Dispatch(ctx context.Context, digestID string) error
}

// Config is the newsroom's settings; zero fields take the defaults shown.
type Config struct {
	Site render.Site // name, public URL, postal address, sections, time zone
	// From is the sender of every email, "Name <address>".
	From string
	// ConfirmTTL is how long a confirmation link works: 7 days.
	ConfirmTTL time.Duration
	// LinkTTL is how long preferences and unsubscribe links work: 400 days.
	LinkTTL time.Duration
	// ConfirmationInterval is the least time between two confirmation
	// emails to one address: 24 hours.
	ConfirmationInterval time.Duration
	// MaxArticles caps the articles in one digest: 50.
	MaxArticles int
	// MailWorkers is how many transactional emails (confirmations) may
	// be sent at once in the background, after the sign-up that asked for
	// them has been answered, so that the answer takes as long whatever
	// the address's state. Zero sends them inline, before Subscribe
	// returns: what a Lambda function must do, since it is frozen once it
	// has answered. A long-running server sets it (4 is plenty) and calls
	// Close before it exits.
	MailWorkers int
	// MailTimeout bounds one background email: 30 seconds.
	MailTimeout time.Duration
	// InstantMaxAge is how old an article may be, by its publication
	// time, when Broadsheet first hears of it and still mails it to
	// instant readers: 6 hours. Older ones (an archive backfilled by a
	// first pull from the site, an old story submitted again) go to the
	// digests only.
	InstantMaxAge time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
}

func (c *Config) defaults() {
	if c.ConfirmTTL <= 0 {
		c.ConfirmTTL = 7 * 24 * time.Hour
	}
	if c.LinkTTL <= 0 {
		c.LinkTTL = 400 * 24 * time.Hour
	}
	if c.ConfirmationInterval <= 0 {
		c.ConfirmationInterval = 24 * time.Hour
	}
	if c.MaxArticles <= 0 {
		c.MaxArticles = 50
	}
	if c.MailTimeout <= 0 {
		c.MailTimeout = 30 * time.Second
	}
	if c.InstantMaxAge <= 0 {
		c.InstantMaxAge = 6 * time.Hour
	}
	if c.Site.Location == nil {
		c.Site.Location = time.UTC
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Service is the newsroom.
type Service struct {
	store    newsletter.Store
	signer   *token.Signer
	renderer *render.Renderer
	mails    Transactional
	mailer   Mailer
	engine   *delivery.Engine
	dispatch Dispatcher
	post     *postman
	cfg      Config
}

// New returns a newsroom. The engine builds digest emails (for tests and
// previews); d starts sends. t may be nil in a process that never emails
// readers one by one (the digest and sender functions): signing up,
// confirming and unsubscribing then fail with an internal error.
func New(store newsletter.Store, signer *token.Signer, r *render.Renderer, t Transactional, m Mailer, engine *delivery.Engine, d Dispatcher, cfg Config) *Service {
	cfg.defaults()
	if t == nil {
		t = noTransactional{}
	}
	return &Service{
		store: store, signer: signer, renderer: r, mails: t, mailer: m, engine: engine, dispatch: d,
		post: newPostman(cfg.MailWorkers, cfg.MailTimeout, cfg.Logger), cfg: cfg,
	}
}

// WaitForMail blocks until every email sent in the background so far has
// been sent or has failed (and been logged), or ctx is done. A server calls
// it before closing the store and the mailer.
func (s *Service) WaitForMail(ctx context.Context) error {
	return s.post.wait(ctx)
}

// noTransactional is the Transactional of a newsroom given none.
type noTransactional struct{}

var errNoTransactional = errors.New("no transactional emails in this process")

func (noTransactional) Confirmation(string) (*render.Mail, error)    { return nil, errNoTransactional }
func (noTransactional) Welcome(string, string) (*render.Mail, error) { return nil, errNoTransactional }
func (noTransactional) Goodbye(string) (*render.Mail, error)         { return nil, errNoTransactional }

// Sections returns the sections readers can choose from.
func (s *Service) Sections() []newsletter.Section { return s.cfg.Site.Sections }

// Location returns the publication's time zone, which its pages show
// times in.
func (s *Service) Location() *time.Location { return s.cfg.Site.Location }

// SiteName returns the publication's name.
func (s *Service) SiteName() string { return s.cfg.Site.Name }

// link returns an absolute link to a Broadsheet page carrying a token.
func (s *Service) link(path string, p token.Purpose, subscriberID string, ttl time.Duration) string {
	tok := s.signer.Sign(p, subscriberID, s.cfg.Now().Add(ttl))
	return strings.TrimRight(s.cfg.Site.URL, "/") + path + "?token=" + tok
}

// sendMail sends a transactional email to one address.
func (s *Service) sendMail(ctx context.Context, to string, m *render.Mail) error {
	msg := &eml.Message{
		From:    s.cfg.From,
		To:      to,
		Subject: m.Subject,
		Date:    s.cfg.Now(),
		HTML:    m.HTML,
		Text:    m.Text,
	}
	if _, err := s.mailer.Send(ctx, msg); err != nil {
		return fmt.Errorf("send %q email: %w", m.Subject, err)
	}
	return nil
}
