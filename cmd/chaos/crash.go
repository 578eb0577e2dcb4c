package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/broadsheet-news/broadsheet/internal/awsapp"
	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/feedback"
	"github.com/broadsheet-news/broadsheet/internal/harness"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/ses"
	"github.com/broadsheet-news/broadsheet/internal/sqs"
)

// Settings of the crash scenarios. Leases and the grace period are short
// so that crashed work comes back within the run; production's are
// minutes.
const (
	crashLease        = 2 * time.Second
	crashUnknownGrace = 5 * time.Second
	crashPageSize     = 100 // readers per fan-out page, so fan-out has steps to crash at
	crashBatchSize    = 10  // readers per send task
)

// killPlan injects crashes through delivery.Config.Fault: a budget per
// step, spent at random calls of that step until it is used up. Fan-out
// steps come once per page and each of their crashes costs a visibility
// timeout, so they get a twentieth of the kills each; the three send
// steps share the rest.
type killPlan struct {
	mu     sync.Mutex
	rng    *rand.Rand
	budget map[delivery.Step]int
	prob   map[delivery.Step]float64
	kills  map[delivery.Step]int
}

func newKillPlan(rng *rand.Rand, kills, readers int) *killPlan {
	k := &killPlan{rng: rng, budget: map[delivery.Step]int{}, prob: map[delivery.Step]float64{}, kills: map[delivery.Step]int{}}
	fan := max(1, kills/20)
	k.budget[delivery.StepLedgerWritten], k.budget[delivery.StepEnqueued] = fan, fan
	rest := kills - 2*fan
	for i, s := range []delivery.Step{delivery.StepClaimed, delivery.StepMailed, delivery.StepSettled} {
		k.budget[s] = rest / 3
		if i < rest%3 {
			k.budget[s]++
		}
		// Spend the budget over about the first third of the readers, so that
		// it is spent whole.
		k.prob[s] = min(1, 3*float64(k.budget[s])/float64(readers))
	}
	k.prob[delivery.StepLedgerWritten], k.prob[delivery.StepEnqueued] = 0.4, 0.4
	return k
}

// fault is the engine's Config.Fault.
func (k *killPlan) fault(step delivery.Step, _, _ string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.budget[step] > 0 && k.rng.Float64() < k.prob[step] {
		k.budget[step]--
		k.kills[step]++
		return fmt.Errorf("%w at %s", errInjected, step)
	}
	return nil
}

// report returns the kills in all, and per step in the order of Steps.
func (k *killPlan) report() (total int, perStep string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var parts []string
	for _, s := range delivery.Steps {
		total += k.kills[s]
		parts = append(parts, fmt.Sprint(k.kills[s]))
	}
	return total, strings.Join(parts, "/")
}

// runCrashLaptop crashes the laptop path: bbolt, the outbox mailer (whose
// record is the engine's Reconciler) and an at-least-once queue that works
// as SQS does — a task whose handler crashed is not acknowledged and comes
// back after a visibility timeout, a tenth of the tasks are delivered
// twice, and tasks are taken in random order.
func runCrashLaptop(ctx context.Context, env *runEnv, r *result) error {
	r.set("scenario", "crash")
	r.set("path", "laptop")
	readers := env.pick(10000, 2000)
	rng := env.rng("crash-laptop")
	plan := newKillPlan(env.rng("crash-laptop-kills"), env.pick(500, 100), readers)

	lp, err := openLaptop(env, "crash")
	if err != nil {
		return err
	}
	defer lp.close()
	store, box, p := lp.store, lp.box, lp.parts
	var reconciledSent, reconciledUnsent atomic.Int64
	cfg := engineConfig(env)
	cfg.Lease, cfg.PageSize, cfg.BatchSize = crashLease, crashPageSize, crashBatchSize
	cfg.Reconciler = box
	cfg.OnReconciled = func(_, _ string, sent bool) {
		if sent {
			reconciledSent.Add(1)
		} else {
			reconciledUnsent.Add(1)
		}
	}
	cfg.Fault = plan.fault
	q := &atLeastOnce{visibility: 300 * time.Millisecond, dupShare: 0.1, rng: rng}
	engine := p.Engine(store, box, q, cfg)
	svc := p.Service(store, box, engine, engine, env.log)
	if _, err := seedAll(ctx, store, svc, readers, 4); err != nil {
		return err
	}

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.work(wctx, engine)
		}()
	}
	st, _, err := svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "daily", Send: true})
	if err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	deadline := time.Now().Add(time.Duration(readers)*10*time.Millisecond + 3*time.Minute)
	for {
		done, err := crashDone(ctx, store, st.ID, readers)
		if err != nil {
			return err
		}
		if done && q.size() == 0 {
			break
		}
		if time.Now().After(deadline) {
			r.want(false, "not finished by the deadline (%d messages left)", q.size())
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	wg.Wait()

	mails, err := countOutbox(box.Dir(), st.ID)
	if err != nil {
		return err
	}
	return crashFigures(ctx, r, store, st.ID, readers, plan, mails.perReader, func() {
		r.set("unknown_resolved", reconciledSent.Load()+reconciledUnsent.Load())
		r.set("reconciled_sent", reconciledSent.Load())
		r.set("redelivered", q.redelivered.Load())
		r.set("duplicated_messages", q.dups.Load())
	})
}

// crashDone reports whether fan-out is done and every reader's row is
// settled sent, skipped or failed.
func crashDone(ctx context.Context, store newsletter.Store, digestID string, readers int) (bool, error) {
	d, err := store.Digest(ctx, digestID)
	if err != nil {
		return false, err
	}
	c, err := store.DeliveryCounts(ctx, digestID)
	if err != nil {
		return false, err
	}
	return d.FanoutDone && c.Total == int64(readers) && c.Sent+c.Skipped+c.Failed == int64(readers), nil
}

// crashFigures checks the ledger and the mail delivered, and prints the
// crash line: recipients, kills, missing, duplicates, then extra.
func crashFigures(ctx context.Context, r *result, store newsletter.Store, digestID string, readers int, plan *killPlan, delivered map[string]int, extra func()) error {
	rows, err := ledger(ctx, store, digestID)
	if err != nil {
		return err
	}
	missing, dups, failed := 0, 0, 0
	for i := range readers {
		id := readerID(i)
		row := rows[id]
		switch {
		case row == nil || !settledFinal(row.Status):
			missing++
		case row.Status == newsletter.DeliverySent && delivered[id] == 0:
			missing++ // the ledger says sent, the provider has nothing
		case row.Status == newsletter.DeliveryFailed:
			failed++
		}
		if delivered[id] > 1 {
			dups++
		}
	}
	total, perStep := plan.report()
	r.set("recipients", readers)
	r.set("kills", total)
	r.set("kills_by_step", perStep)
	r.zero("missing", missing)
	r.zero("duplicates", dups)
	extra()
	r.set("failed", failed)
	return nil
}

// atLeastOnce is an in-process queue that delivers as SQS does: a
// received task is hidden for the visibility timeout and comes back unless
// acknowledged; some tasks are enqueued twice; tasks are received in
// random order; a task for another attempt is delayed.
type atLeastOnce struct {
	visibility time.Duration
	dupShare   float64

	mu     sync.Mutex
	rng    *rand.Rand
	msgs   map[int]*queued
	nextID int

	dups, redelivered atomic.Int64
}

type queued struct {
	id        int
	task      delivery.Task
	visibleAt time.Time
	receives  int
}

// Enqueue adds tasks, a tenth of them twice.
func (q *atLeastOnce) Enqueue(_ context.Context, tasks ...delivery.Task) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.msgs == nil {
		q.msgs = map[int]*queued{}
	}
	now := time.Now()
	for _, t := range tasks {
		delay := time.Duration(0)
		if t.Attempt > 0 {
			delay = min(2*time.Second, 100*time.Millisecond<<min(t.Attempt-1, 5))
		}
		copies := 1
		if q.rng.Float64() < q.dupShare {
			copies = 2
			q.dups.Add(1)
		}
		for c := range copies {
			q.nextID++
			q.msgs[q.nextID] = &queued{id: q.nextID, task: t, visibleAt: now.Add(delay + time.Duration(c)*time.Duration(q.rng.IntN(200))*time.Millisecond)}
		}
	}
	return nil
}

// receive takes a visible task at random and hides it.
func (q *atLeastOnce) receive() (queued, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	var visible []*queued
	for _, m := range q.msgs {
		if !m.visibleAt.After(now) {
			visible = append(visible, m)
		}
	}
	if len(visible) == 0 {
		return queued{}, false
	}
	m := visible[q.rng.IntN(len(visible))]
	m.visibleAt = now.Add(q.visibility)
	m.receives++
	if m.receives > 1 {
		q.redelivered.Add(1)
	}
	return *m, true
}

func (q *atLeastOnce) ack(id int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.msgs, id)
}

func (q *atLeastOnce) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

// work is one worker: it runs tasks on the engine until ctx ends. A task
// whose run crashed is left unacknowledged, as is a fan-out that failed;
// a send task's readers to retry go back on the queue as a new task.
func (q *atLeastOnce) work(ctx context.Context, e *delivery.Engine) {
	for ctx.Err() == nil {
		m, ok := q.receive()
		if !ok {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		retry, err := e.Handle(ctx, m.task)
		switch {
		case errors.Is(err, errInjected):
			continue // crashed: no clean-up, no acknowledgement
		case m.task.Kind == delivery.KindFanout && err != nil:
			continue // comes back after the visibility timeout
		}
		if len(retry) > 0 {
			_ = q.Enqueue(ctx, delivery.Task{Kind: m.task.Kind, DigestID: m.task.DigestID, SubscriberIDs: retry, Attempt: m.task.Attempt + 1})
		}
		q.ack(m.id)
	}
}

// runCrashAWS crashes the AWS path: DynamoDB Local, the SQS stand-in
// (visibility timeout 1 s) consumed by an event source that calls
// sqs.Handle as the sender function does and deletes only what
// succeeded — a crashed invocation deletes nothing — and the SES stand-in
// through internal/ses. SES's record of sends is its event stream: a
// proxy in front of the stand-in notes each accepted SendEmail with its
// EmailTags and, a moment later, hands a Send event for it to the feedback
// function (awsapp.HandleSNS), which is how an unknown row is settled on
// AWS. A tenth of the fan-out's tasks go on the queue twice, and every
// batch is handled in a shuffled order.
//
// The digest function's fan-out is retried after a crash, as EventBridge
// Scheduler retries a failed target. When the queue has been empty for a
// few seconds the harness runs what the digest function's scheduled sweep
// ({"sweep":true}) runs, Engine.Resume, which sends again a row still
// unknown after the grace period (5 s here, 15 minutes in production): one
// whose message never left (a crash after the claim, before the send).
func runCrashAWS(ctx context.Context, env *runEnv, r *result) error {
	r.set("scenario", "crash")
	r.set("path", "aws")
	readers := env.pick(10000, 2000)
	plan := newKillPlan(env.rng("crash-aws-kills"), env.pick(500, 100), readers)
	c, err := startAWS()
	if err != nil {
		return err
	}
	store, err := newTable(ctx, c, "chaos-crash")
	if err != nil {
		return err
	}
	queueURL, dlqURL, err := sendQueue(ctx, c, "chaos-crash", time.Second, 100)
	if err != nil {
		return err
	}
	queue := sqs.NewQueue(c.sqs, queueURL)
	queue.Logger = env.log

	// SES event publishing: each accepted send becomes a Send event for
	// the feedback function, 10–300 ms later.
	fbLogs := &logWatch{}
	fb := &awsapp.App{Function: awsapp.FeedbackFunction, Log: env.log, Store: store, Feedback: feedback.New(store, nil)}
	fb.Feedback.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(fbLogs, logWriter(env)), nil))
	proxy, err := newSESProxy(c.sesURL, 0, 0)
	if err != nil {
		return err
	}
	defer proxy.Close()
	events := publishLater(ctx, proxy, fb, env.rng("crash-aws-events"))

	p, err := harness.NewParts(site)
	if err != nil {
		return err
	}
	engineLogs := &logWatch{}
	cfg := engineConfig(env)
	cfg.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(engineLogs, logWriter(env)), nil))
	cfg.Lease, cfg.PageSize, cfg.BatchSize, cfg.UnknownGrace = crashLease, crashPageSize, crashBatchSize, crashUnknownGrace
	cfg.Fault = plan.fault
	dq := &dupQueue{inner: queue, share: 0.1, delay: 50 * time.Millisecond, rng: env.rng("crash-aws-dups")}
	engine := p.Engine(store, ses.New(sesClient(proxy.URL, nil), "broadsheet"), dq, cfg)
	svc := p.Service(store, noMailer{}, engine, retriedFanout{engine}, env.log)
	if _, err := seedAll(ctx, store, svc, readers, 8); err != nil {
		return err
	}

	sctx, stopSenders := context.WithCancel(ctx)
	defer stopSenders()
	src := &eventSource{client: c.sqs, url: queueURL, queue: queue, engine: engine, batch: 2, workers: 6, rng: env.rng("crash-aws")}
	senders := src.start(sctx)

	st, _, err := svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "daily", Send: true})
	if err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	sweeps, err := awaitAWS(ctx, r, store, st.ID, readers, c, queueURL, &src.lastReceive, engine)
	if err != nil {
		return err
	}
	stopSenders()
	<-senders
	events.pending.Wait()

	dlq, err := queueDepth(ctx, c, dlqURL)
	if err != nil {
		return err
	}
	sends := proxy.sent()
	return crashFigures(ctx, r, store, st.ID, readers, plan, sends.perReader, func() {
		r.set("unknown_resolved", fbLogs.count("ledger row settled"))
		r.set("requeued_after_grace", engineLogs.count("unknown outcome not reconciled within the grace period"))
		r.set("sweeps", sweeps)
		r.set("crashed_invocations", src.crashed.Load())
		r.set("duplicated_messages", func() int { _, d := dq.counts(); return d }())
		r.zero("dlq", dlq)
		r.zero("event_errors", int(events.errs.Load()))
	})
}

// publishSend hands the feedback function the Send event SES would
// publish for an accepted send, wrapped in SNS.
func publishSend(ctx context.Context, fb *awsapp.App, rec sendRecord) error {
	tags := map[string][]string{"ses:configuration-set": {"broadsheet"}}
	for k, v := range rec.Tags {
		tags[k] = []string{v}
	}
	msg, err := json.Marshal(map[string]any{
		"eventType": "Send",
		"mail": map[string]any{
			"timestamp": rec.At.UTC().Format(time.RFC3339Nano), "source": letterhead.From,
			"messageId": rec.MessageID, "destination": []string{rec.To}, "tags": tags,
		},
		"send": map[string]any{},
	})
	if err != nil {
		return err
	}
	return fb.HandleSNS(ctx, events.SNSEvent{Records: []events.SNSEventRecord{{
		EventSource: "aws:sns", SNS: events.SNSEntity{MessageID: rec.MessageID, Type: "Notification", Message: string(msg)},
	}}})
}

// retriedFanout is the digest function as its schedule runs it: a fan-out
// that crashed is run again a second later, until it finishes.
type retriedFanout struct{ engine *delivery.Engine }

// Dispatch fans the digest out, retrying after crashes.
func (d retriedFanout) Dispatch(ctx context.Context, digestID string) error {
	for {
		err := d.engine.Fanout(ctx, digestID)
		if !errors.Is(err, errInjected) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// awaitAWS waits until every reader's row is settled and the queue is
// empty, or a deadline passes (counted as a failure in r). When nothing
// has been received (lastReceive, Unix ns) for a few seconds and rows are
// still unsettled, it runs what the digest function's scheduled sweep runs
// (engine.Resume). It returns how many sweeps it ran.
func awaitAWS(ctx context.Context, r *result, store newsletter.Store, digestID string, readers int, c *awsClients, queueURL string, lastReceive *atomic.Int64, engine interface{ Resume(context.Context) error }) (int, error) {
	deadline := time.Now().Add(time.Duration(readers)*50*time.Millisecond + 3*time.Minute)
	sweeps, idle := 0, 0
	for {
		done, err := crashDone(ctx, store, digestID, readers)
		if err != nil {
			return sweeps, err
		}
		depth, err := queueDepth(ctx, c, queueURL)
		if err != nil {
			return sweeps, err
		}
		if done && depth == 0 {
			return sweeps, nil
		}
		if time.Now().After(deadline) {
			r.want(false, "not finished by the deadline (%d messages left)", depth)
			return sweeps, nil
		}
		if depth == 0 && time.Since(time.Unix(0, lastReceive.Load())) > 2*time.Second {
			idle++
		} else {
			idle = 0
		}
		if idle >= 3 {
			if err := engine.Resume(ctx); err != nil {
				return sweeps, err
			}
			sweeps++
			idle = 0
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return sweeps, err
		}
	}
}

// sendEvents is SES's Send events as publishLater delivers them: pending
// counts those not yet handled, errs those the feedback function refused.
type sendEvents struct {
	pending sync.WaitGroup
	errs    atomic.Int64
}

// publishLater hands each send the proxy accepts to the feedback function
// as its Send event, 10 to 300 ms later (a delay drawn from rng), as SES
// publishes them through SNS: late, and in no particular order.
func publishLater(ctx context.Context, proxy *sesProxy, fb *awsapp.App, rng *rand.Rand) *sendEvents {
	ev := &sendEvents{}
	var mu sync.Mutex
	proxy.onSend = func(rec sendRecord) {
		mu.Lock()
		delay := time.Duration(10+rng.IntN(290)) * time.Millisecond
		mu.Unlock()
		ev.pending.Add(1)
		time.AfterFunc(delay, func() {
			defer ev.pending.Done()
			if err := publishSend(context.WithoutCancel(ctx), fb, rec); err != nil {
				ev.errs.Add(1)
			}
		})
	}
	return ev
}
