package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/bolt"
	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/journal"
	"github.com/broadsheet-news/broadsheet/internal/memqueue"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/outbox"
	"github.com/broadsheet-news/broadsheet/internal/render"
	"github.com/broadsheet-news/broadsheet/internal/render/transactional"
	"github.com/broadsheet-news/broadsheet/internal/smtp"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// app is Broadsheet wired on embedded defaults: every part built once.
type app struct {
	cfg     *config
	log     *slog.Logger
	store   *bolt.Store
	mailer  mailer
	journal *journal.Log // with SMTP: what the server accepted
	engine  *delivery.Engine
	queue   *memqueue.Queue
	service *newsroom.Service
}

// mailer is what the app sends through: the outbox folder or SMTP.
type mailer interface {
	delivery.Mailer
	newsroom.Mailer
}

// openApp builds the app from its settings. The caller must Close it.
func openApp(cfg *config, stderr io.Writer) (*app, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	key, err := token.LoadOrCreateKey(filepath.Join(cfg.Data, "signing.key"))
	if err != nil {
		return nil, err
	}
	signer, err := token.NewSigner(key)
	if err != nil {
		return nil, err
	}
	renderer, err := render.New(cfg.Site())
	if err != nil {
		return nil, err
	}
	mails, err := transactional.New(cfg.Site())
	if err != nil {
		return nil, err
	}
	var m mailer
	// The engine reconciles a copy whose outcome it did not record (its
	// sender died) against the mailer's own record of what left: the
	// outbox is one; SMTP keeps none, so the journal records each message
	// the server accepted, as it does.
	var reconciler delivery.Reconciler
	var jl *journal.Log
	if cfg.SMTP != "" {
		if jl, err = journal.Open(filepath.Join(cfg.Data, "journal"), cfg.clock()); err != nil {
			return nil, err
		}
		if m, err = smtp.New(cfg.SMTP, smtp.WithRecorder(jl)); err != nil {
			jl.Close()
			return nil, err
		}
		reconciler = jl
	} else {
		ob, err := outbox.New(filepath.Join(cfg.Data, "outbox"))
		if err != nil {
			return nil, err
		}
		m, reconciler = ob, ob
	}
	store, err := bolt.Open(filepath.Join(cfg.Data, "broadsheet.db"))
	if err != nil {
		closeMailer(m)
		if jl != nil {
			jl.Close()
		}
		return nil, err
	}
	engine := delivery.New(store, signer, renderer, m, nil, delivery.Config{
		Letterhead:  cfg.Letterhead(),
		Logger:      log,
		Now:         cfg.now,
		Reconciler:  reconciler,
		FanoutPages: memqueue.FanoutPages,
		BatchSize:   bolt.SendTaskSize,
		Lease:       cfg.Lease,
		// bbolt's file lock keeps any other process off the data folder.
		Sole: true,
	})
	queue := memqueue.New(engine, memqueue.Options{Workers: cfg.Workers, Logger: log})
	engine.SetQueue(queue)
	svc := newsroom.New(store, signer, renderer, mails, m, engine, engine, newsroom.Config{
		Site:   cfg.Site(),
		From:   cfg.From,
		Logger: log,
		Now:    cfg.now,
		// A sign-up's confirmation goes out in the background, so the
		// answer does not tell a new address from a known one.
		MailWorkers: 4,
	})
	return &app{cfg: cfg, log: log, store: store, mailer: m, journal: jl, engine: engine, queue: queue, service: svc}, nil
}

// recoverWhileRunning runs again, on a timer, what the engine's Resume did
// at start-up, so that copies whose sender died are taken up once their
// lease runs out. The function it returns stops it and waits.
func (a *app) recoverWhileRunning(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(a.engine.RecoverEvery())
		defer t.Stop()
		a.engine.Watch(ctx, t.C)
	}()
	return func() { cancel(); <-done }
}

// Close stops the queue, lets the confirmation emails still going out
// finish (for up to a minute), and closes the store, the mailer and the
// journal.
func (a *app) Close() error {
	a.queue.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mailErr := a.service.WaitForMail(ctx)
	err := errors.Join(mailErr, a.store.Close(), closeMailer(a.mailer))
	if a.journal != nil {
		err = errors.Join(err, a.journal.Close())
	}
	return err
}

func closeMailer(m mailer) error {
	if c, ok := m.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// firstToken creates an editor token when there is none yet, so that a
// fresh install can be used at once. It returns "" when tokens exist.
func (a *app) firstToken(ctx context.Context) (string, error) {
	ts, err := a.service.EditorTokens(ctx)
	if err != nil || len(ts) > 0 {
		return "", err
	}
	secret, _, err := a.service.CreateEditorToken(ctx, "first editor", nil)
	return secret, err
}
