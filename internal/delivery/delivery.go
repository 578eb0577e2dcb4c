// Package delivery sends a digest to its readers by the ledger protocol of
// DESIGN.md: fan-out writes a queued ledger row per eligible reader and
// enqueues it; the sender claims each row under a lease, re-reads the
// reader, sends the variant rendered once for the reader's choices with the
// reader's own links spliced in, and records the outcome. The same code runs
// behind the in-process queue on a laptop and behind SQS on AWS.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/render"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// Mailer sends one message. It wraps eml.ErrThrottled, eml.ErrRejected,
// eml.ErrUnknownOutcome or eml.ErrPaused to say what became of a failed
// send; any other error means the message did not leave.
type Mailer interface {
	Send(ctx context.Context, m *eml.Message) (messageID string, err error)
}

// BulkMailer is a Mailer that can also hand many messages to the provider
// in as few calls as it allows (SES SendBulkEmail takes 50). The engine
// uses it, when the mailer is one, for the readers of a send task; msgs
// come from Engine.Message and share the few layouts of the task's
// variants (a task is a run of readers in ID order), so a mailer groups
// them by layout, as SES's one template per call needs. It
// returns one Sent per message, in order, each meaning what Send's
// result would.
type BulkMailer interface {
	Mailer
	SendBulk(ctx context.Context, msgs []*eml.Message) []eml.Sent
}

// Queue carries tasks from fan-out to the sender. Delivery may be at least
// once and in any order: every step is idempotent.
type Queue interface {
	Enqueue(ctx context.Context, tasks ...Task) error
}

// Limiter paces sends; *rate.Limiter from golang.org/x/time/rate is one.
type Limiter interface {
	Wait(ctx context.Context) error
}

// TaskKind says what a task asks for.
type TaskKind string

// Task kinds.
const (
	KindFanout TaskKind = "fanout" // walk the readers and write the ledger
	KindSend   TaskKind = "send"   // send to the listed readers
)

// Task is one message on the queue.
type Task struct {
	Kind          TaskKind `json:"kind"`
	DigestID      string   `json:"digestId"`
	SubscriberIDs []string `json:"subscriberIds,omitempty"`
	Attempt       int      `json:"attempt,omitempty"` // how often the queue has delivered it before
}

// Letterhead is what every digest email says about who sends it.
type Letterhead struct {
	From              string // "The Daily Ledger <news@example.com>"
	ReplyTo           string // optional
	UnsubscribeMailto string // mailbox for the mailto: List-Unsubscribe entry; optional
	ListID            string // "<daily.example.com>"-style List-Id value
	BaseURL           string // public URL of Broadsheet, for reader links
}

// Reconciler is the mail provider's own record of what it sent: it tells
// whether the message of a digest to a reader left, and its message ID.
// The engine asks it before sending again a row whose outcome is unknown
// (a send that timed out, or a sender that died between claim and
// settle). (*outbox.Mailer) is one; SMTP has no record, and on AWS the
// record is SES's Send event, which reaches the ledger through package
// feedback instead.
type Reconciler interface {
	Sent(ctx context.Context, digestID, subscriberID string) (messageID string, found bool, err error)
}

// Step names a point in fan-out or send where a test can crash the process.
type Step string

// The steps at which Config.Fault is called.
const (
	StepLedgerWritten Step = "fanout.ledger-written" // a page's ledger rows written, not yet enqueued
	StepEnqueued      Step = "fanout.enqueued"       // the page enqueued, cursor not yet saved
	StepClaimed       Step = "send.claimed"          // row claimed (sending, leased), reader not yet re-read
	StepMailed        Step = "send.mailed"           // the mailer returned, the outcome not yet recorded
	StepSettled       Step = "send.settled"          // outcome recorded, task not yet acknowledged
)

// Steps lists every Step, in the order a reader's copy passes them.
var Steps = []Step{StepLedgerWritten, StepEnqueued, StepClaimed, StepMailed, StepSettled}

// Config tunes the engine; zero fields take the defaults shown.
type Config struct {
	Letterhead Letterhead
	LinkTTL    time.Duration // lifetime of links in emails: 400 days
	Lease      time.Duration // how long a claim holds a row: 2 minutes
	BatchSize  int           // readers per send task: 100
	PageSize   int           // readers read per fan-out page: 1000
	// FanoutPages, when positive, is how many pages one fan-out task
	// walks before it hands the rest of the walk to a new fan-out task at
	// the back of the queue, behind the send tasks it enqueued: on a queue
	// that holds its backlog in memory, fan-out then stays that many pages
	// ahead of the senders instead of queueing the whole list at once.
	// Zero walks every page in one task (SQS holds the backlog).
	FanoutPages int
	MaxAttempts int // sends tried per reader before the row fails: 8
	// Now is the engine's clock: for leases, dates and link expiry, and
	// for how old a shared read may be (RecheckAfter). time.Now by default.
	Now     func() time.Time
	Logger  *slog.Logger
	Limiter Limiter // optional

	// Reconciler, when set, is asked before a row whose outcome is unknown
	// is sent again. Without one, such a row stays unknown until a
	// provider event settles it (package feedback) or, after
	// UnknownGrace, Sweep queues it again.
	Reconciler Reconciler
	// OnReconciled, optional, is called for every row whose unknown
	// outcome was reconciled with the Reconciler: sent is true when the
	// provider had the message (the row is settled sent), false when it
	// never left (the row is sent now).
	OnReconciled func(digestID, subscriberID string, sent bool)
	// UnknownGrace is how long a row may stay unknown, with no Reconciler,
	// before Sweep decides that the message never left and queues it
	// again: 15 minutes. SES Send events arrive within seconds.
	UnknownGrace time.Duration

	// MaxBounceRate and MaxComplaintRate pause a digest whose rates go
	// over them (see newsletter.RateLimits; defaults 0.02 and 0.0005),
	// judged once MinRateSample copies (default 200) have gone out.
	MaxBounceRate    float64
	MaxComplaintRate float64
	MinRateSample    int64

	// Sole says this engine is the only sender on its store while it
	// runs — the laptop, where bbolt's file lock keeps a second process
	// off the data folder. A row claimed before the engine started then
	// belongs to a process that has died: its lease is not waited out,
	// and the row is reconciled at once. Never on AWS, where many sender
	// invocations share the table.
	Sole bool

	// Fault, when set (tests only), is called at each Step; a non-nil
	// error makes the engine stop at once and return it wrapped — doing no
	// clean-up, as a crashed process would. subscriberID is "" for fan-out
	// steps. StepSettled fires after each row the task settles (sent,
	// skipped, failed, unknown, or reconciled), so a task of n readers
	// has n points at which it can die after recording an outcome. A
	// crash inside Send stops the whole task: Send returns every reader
	// of the task to retry, as a queue redelivers the whole message.
	Fault func(step Step, digestID, subscriberID string) error
}

// RateLimits returns the bounce and complaint limits the engine pauses
// digests at.
func (c *Config) RateLimits() newsletter.RateLimits {
	return newsletter.RateLimits{MaxBounceRate: c.MaxBounceRate, MaxComplaintRate: c.MaxComplaintRate, MinSample: c.MinRateSample}.WithDefaults()
}

func (c *Config) defaults() {
	if c.LinkTTL <= 0 {
		c.LinkTTL = 400 * 24 * time.Hour
	}
	if c.Lease <= 0 {
		c.Lease = 2 * time.Minute
	}
	if c.BatchSize <= 0 {
		// A task's store work is three calls whatever its size, and on
		// DynamoDB each call also costs two counter writes: 100 readers
		// keep that under 0.05 units a reader, and a task well inside a
		// sender Lambda's time and the lease at a modest SES rate. A crash
		// leaves a task's rows uncertain, so this is also the most readers
		// one crash can. The laptop's store takes bigger tasks
		// (bolt.SendTaskSize).
		c.BatchSize = 100
	}
	if c.PageSize <= 0 {
		c.PageSize = newsletter.MaxPageSize
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.UnknownGrace <= 0 {
		c.UnknownGrace = 15 * time.Minute
	}
}

// crash is the error an injected fault makes the engine stop with.
type crash struct {
	step Step
	err  error
}

func (c *crash) Error() string { return "injected crash at " + string(c.step) + ": " + c.err.Error() }
func (c *crash) Unwrap() error { return c.err }

// fault calls Config.Fault at a step; the error it returns, if any, is a
// crash that the engine passes up without cleaning up.
func (e *Engine) fault(step Step, digestID, subscriberID string) error {
	if e.cfg.Fault == nil {
		return nil
	}
	if err := e.cfg.Fault(step, digestID, subscriberID); err != nil {
		return &crash{step: step, err: err}
	}
	return nil
}

// isCrash reports whether err is an injected crash.
func isCrash(err error) bool {
	var c *crash
	return errors.As(err, &c)
}

// Engine fans digests out and sends them.
type Engine struct {
	store    newsletter.Store
	signer   *token.Signer
	renderer *render.Renderer
	mailer   Mailer
	queue    Queue
	cfg      Config
	domain   string    // of the letterhead's From, for Message-IDs
	started  time.Time // by cfg.Now, when New made the engine

	mu       sync.Mutex
	editions map[string]*edition     // by digest ID + variant key
	digests  map[string]recentDigest // by ID: reads the send tasks share
	fanouts  map[string]time.Time    // by digest ID: when its fan-out was last dispatched or walked here
}

// recentDigest is a digest as read at a time.
type recentDigest struct {
	d    *newsletter.Digest
	read time.Time
}

// edition is a digest rendered for one variant, shared by every reader of
// that variant. once makes concurrent senders render it a single time.
type edition struct {
	once   sync.Once
	ed     *render.Edition
	layout *eml.Layout
	err    error
}

// maxEditions bounds the rendered-edition cache; digests have a handful
// of variants each, so this holds several digests at once.
const maxEditions = 256

// New returns an engine. The queue may be set later with SetQueue when the
// queue itself needs the engine as its handler.
func New(store newsletter.Store, signer *token.Signer, r *render.Renderer, m Mailer, q Queue, cfg Config) *Engine {
	cfg.defaults()
	return &Engine{store: store, signer: signer, renderer: r, mailer: m, queue: q, cfg: cfg, started: cfg.Now(),
		domain: eml.Domain(cfg.Letterhead.From), editions: map[string]*edition{}, digests: map[string]recentDigest{}, fanouts: map[string]time.Time{}}
}

// leased reports whether r is held by a live sender's lease at now: it is
// sending, its lease has not run out, and (with Config.Sole) it was
// claimed by this engine, not by a process that died before it started.
func (e *Engine) leased(r *newsletter.Delivery, now time.Time) bool {
	if r.Status != newsletter.DeliverySending || !r.LeaseUntil.After(now) {
		return false
	}
	return !e.cfg.Sole || !r.UpdatedAt.Before(e.started)
}

// SetQueue sets the queue fan-out writes to.
func (e *Engine) SetQueue(q Queue) { e.queue = q }

// Dispatch asks for a digest to be fanned out, through the queue. For a
// digest resumed after a pause, the fan-out task also puts its queued rows
// back on the queue (see Fanout).
func (e *Engine) Dispatch(ctx context.Context, digestID string) error {
	e.noteFanout(digestID)
	return e.queue.Enqueue(ctx, Task{Kind: KindFanout, DigestID: digestID})
}

// Handle runs one task and returns the readers to try again later (for a
// send task) — the partial batch failure an SQS consumer reports. A fan-out
// task that fails returns an error and is retried whole; fan-out resumes
// from its cursor.
func (e *Engine) Handle(ctx context.Context, t Task) (retry []string, err error) {
	switch t.Kind {
	case KindFanout:
		return nil, e.Fanout(ctx, t.DigestID)
	case KindSend:
		return e.Send(ctx, t.DigestID, t.SubscriberIDs)
	}
	return nil, fmt.Errorf("unknown task kind %q", t.Kind)
}

// Links returns a reader's personal unsubscribe and preferences links.
func (e *Engine) Links(subscriberID string) render.Links {
	exp := e.cfg.Now().Add(e.cfg.LinkTTL)
	base := strings.TrimRight(e.cfg.Letterhead.BaseURL, "/")
	return render.Links{
		Unsubscribe: base + "/unsubscribe?token=" + url.QueryEscape(e.signer.Sign(token.Unsubscribe, subscriberID, exp)),
		Preferences: base + "/preferences?token=" + url.QueryEscape(e.signer.Sign(token.Preferences, subscriberID, exp)),
	}
}

// Message builds a digest email for one reader from a variant's edition:
// the reader's links are spliced in and the bulk-sender headers added
// (List-Unsubscribe with https and mailto, List-Unsubscribe-Post, List-Id).
// The message is made from a layout of its own; the send path shares one
// layout per variant instead (see variant).
func (e *Engine) Message(d *newsletter.Digest, ed *render.Edition, to, subscriberID string, links render.Links) *eml.Message {
	l, err := layoutOf(ed)
	if err != nil {
		// The edition's placeholders are render's constants: this cannot
		// fail, but an edition made elsewhere still mails its bodies.
		html, text := ed.Personalize(links)
		m := e.message(d, nil, to, subscriberID, links)
		m.Subject, m.HTML, m.Text = ed.Subject, html, text
		return m
	}
	return e.message(d, l, to, subscriberID, links)
}

// layoutOf returns the eml layout of an edition: its subject and bodies
// with the placeholders that Links fill.
func layoutOf(ed *render.Edition) (*eml.Layout, error) {
	return eml.NewLayout(ed.Subject, ed.HTML, ed.Text, render.PlaceholderUnsubscribe, render.PlaceholderPreferences)
}

// message builds one reader's message on layout l; the bodies are spliced
// from the layout by the mailer (eml.Message.Bodies, Bytes).
func (e *Engine) message(d *newsletter.Digest, l *eml.Layout, to, subscriberID string, links render.Links) *eml.Message {
	lh := e.cfg.Letterhead
	// Built in one buffer: this runs once per reader.
	var b strings.Builder
	b.Grow(2*len(links.Unsubscribe) + len(lh.UnsubscribeMailto) + 40)
	b.WriteString("<")
	b.WriteString(links.Unsubscribe)
	b.WriteString(">")
	if lh.UnsubscribeMailto != "" {
		// The subject carries the reader's unsubscribe token, so whatever
		// reads that mailbox can act on it without trusting the sender.
		// Tokens are base64url, so the one in the link is the raw token:
		// cutting it out costs nothing per reader, unlike parsing the URL.
		b.WriteString(", <mailto:")
		b.WriteString(lh.UnsubscribeMailto)
		b.WriteString("?subject=unsubscribe")
		if _, tok, ok := strings.Cut(links.Unsubscribe, "?token="); ok {
			b.WriteString("%20")
			b.WriteString(tok)
		}
		b.WriteString(">")
	}
	unsub := b.String()
	headers := make([]eml.Header, 0, 4)
	headers = append(headers,
		eml.Header{Name: "List-Unsubscribe", Value: unsub},
		eml.Header{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"})
	if lh.ListID != "" {
		headers = append(headers, eml.Header{Name: "List-Id", Value: lh.ListID})
	}
	headers = append(headers, eml.Header{Name: "Precedence", Value: "bulk"})
	m := &eml.Message{
		From:      lh.From,
		To:        to,
		ReplyTo:   lh.ReplyTo,
		MessageID: messageID(d.ID, subscriberID, e.domain),
		Date:      e.cfg.Now(),
		Headers:   headers,
		Tags:      map[string]string{"digest": d.ID, "subscriber": subscriberID},
	}
	if l != nil {
		m.Layout, m.Values = l, []string{links.Unsubscribe, links.Preferences}
	}
	return m
}

// messageID is deterministic per digest and reader, so a copy that is sent
// twice (after an unknown outcome) carries the same Message-ID and mail
// clients can fold the two.
func messageID(digestID, subscriberID, domain string) string {
	return "<" + digestID + "." + subscriberID + "@" + domain + ">"
}

// Edition returns the digest rendered for variant v, rendering it on first
// use only.
func (e *Engine) Edition(d *newsletter.Digest, v render.Variant) (*render.Edition, error) {
	ed, err := e.variant(d, v)
	if err != nil {
		return nil, err
	}
	return ed.ed, nil
}

// variant returns the digest's edition for variant v and its layout,
// rendering it on first use only: every reader of the variant shares both.
func (e *Engine) variant(d *newsletter.Digest, v render.Variant) (*edition, error) {
	key := d.ID + "\x00" + v.Key()
	e.mu.Lock()
	ed, ok := e.editions[key]
	if !ok {
		if len(e.editions) >= maxEditions {
			clear(e.editions)
		}
		ed = &edition{}
		e.editions[key] = ed
	}
	e.mu.Unlock()
	ed.once.Do(func() {
		if ed.ed, ed.err = e.renderer.Digest(d, v); ed.err == nil {
			ed.layout, ed.err = layoutOf(ed.ed)
		}
	})
	return ed, ed.err
}
