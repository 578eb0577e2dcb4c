package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/broadsheet-news/broadsheet/internal/awsapp"
	"github.com/broadsheet-news/broadsheet/internal/feedback"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
)

// runFeedback replays SES event notifications — permanent and transient
// bounces, complaints, deliveries, sends, event types Broadsheet ignores,
// several recipients per notification, fields no version of the code
// knows — with a fifth of them duplicated and all shuffled, through the
// feedback function's SNS handler on the real store, from four goroutines.
// The readers and the previous digest's ledger must end where a model
// that ignores order says, and the next digest must reach no suppressed
// reader.
func runFeedback(ctx context.Context, env *runEnv, r *result) error {
	r.set("scenario", "feedback")
	count := env.pick(10000, 2000)
	readers := env.pick(4000, 800)
	rng := env.rng("feedback")

	lp, err := openLaptop(env, "feedback")
	if err != nil {
		return err
	}
	defer lp.close()
	store, box := lp.store, lp.box
	_, mq, svc := lp.start(ctx, env, laptopRun{})

	ids, err := seedReaders(ctx, store, readers, 4)
	if err != nil {
		return err
	}
	// Yesterday's digest, already sent, with a ledger row per reader in
	// every state a row can be in when SES reports on it.
	yesterday := time.Now().UTC().Add(-24 * time.Hour)
	prev := &newsletter.Digest{
		ID: newsletter.DigestID(newsletter.Daily, newsletter.Period(newsletter.Daily, yesterday, time.UTC)), Frequency: newsletter.Daily,
		Period: newsletter.Period(newsletter.Daily, yesterday, time.UTC), Subject: "Yesterday",
		Since: yesterday.Add(-24 * time.Hour), Until: yesterday.Add(-2 * time.Hour), Status: newsletter.DigestSent,
		FanoutDone: true, CreatedAt: yesterday, SendStartedAt: yesterday, SentAt: yesterday,
	}
	if err := store.CreateDigest(ctx, prev); err != nil {
		return fmt.Errorf("previous digest: %w", err)
	}
	m := &feedbackModel{reader: map[string]newsletter.SubscriberStatus{}, row: map[string]newsletter.DeliveryStatus{}}
	for _, id := range ids {
		st := newsletter.DeliverySent
		switch x := rng.Float64(); {
		case x < 0.15:
			st = newsletter.DeliveryUnknown
		case x < 0.25:
			st = newsletter.DeliverySending
		}
		row := &newsletter.Delivery{DigestID: prev.ID, SubscriberID: id, Status: st, Attempts: 1, UpdatedAt: yesterday}
		if st == newsletter.DeliverySending {
			row.LeaseUntil = yesterday.Add(time.Minute)
		}
		if err := store.CreateDelivery(ctx, row); err != nil {
			return fmt.Errorf("ledger row: %w", err)
		}
		m.reader[id] = newsletter.StatusConfirmed
		m.row[id] = st
	}

	notes := make([][]byte, 0, count)
	for range count {
		notes = append(notes, m.generate(rng, prev.ID, readers))
	}
	replay := append([][]byte(nil), notes...)
	for range count / 5 {
		replay = append(replay, notes[rng.IntN(len(notes))])
	}
	rng.Shuffle(len(replay), func(i, j int) { replay[i], replay[j] = replay[j], replay[i] })

	app := &awsapp.App{Function: awsapp.FeedbackFunction, Log: env.log, Store: store, Feedback: feedback.New(store, nil)}
	app.Feedback.Logger = env.log
	jobs := make(chan int)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				ev := events.SNSEvent{Records: []events.SNSEventRecord{{
					EventSource: "aws:sns",
					SNS:         events.SNSEntity{MessageID: fmt.Sprintf("sns-%d", i), Type: "Notification", Message: string(replay[i])},
				}}}
				if err := app.HandleSNS(ctx, ev); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var runErr error
feed:
	for i := range replay {
		select {
		case jobs <- i:
		case runErr = <-errs:
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if runErr != nil {
		return fmt.Errorf("feedback: %w", runErr)
	}

	wrong := 0
	suppressed := map[string]bool{}
	for _, id := range ids {
		s, err := store.Subscriber(ctx, id)
		if err != nil {
			return err
		}
		if s.Status != m.reader[id] {
			wrong++
			fmt.Fprintf(env.stderr, "chaos: feedback: reader %s is %s, want %s\n", id, s.Status, m.reader[id])
		}
		if s.Suppressed() {
			suppressed[id] = true
		}
		row, err := store.Delivery(ctx, prev.ID, id)
		if err != nil {
			return err
		}
		if row.Status != m.row[id] {
			wrong++
			fmt.Fprintf(env.stderr, "chaos: feedback: ledger row of %s is %s, want %s\n", id, row.Status, m.row[id])
		}
	}

	// The next digest.
	if err := seedArticles(ctx, svc); err != nil {
		return err
	}
	st, _, err := svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "daily", Send: true})
	if err != nil {
		return fmt.Errorf("next digest: %w", err)
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := mq.WaitIdle(ictx); err != nil {
		return fmt.Errorf("wait for the queue: %w", err)
	}
	mails, err := countOutbox(box.Dir(), st.ID)
	if err != nil {
		return err
	}
	toSuppressed, missing := 0, 0
	for _, id := range ids {
		switch {
		case suppressed[id] && mails.perReader[id] > 0:
			toSuppressed++
		case !suppressed[id] && mails.perReader[id] != 1:
			missing++
		}
	}
	r.set("notifications", count)
	r.set("replayed", len(replay))
	r.set("readers", readers)
	r.set("bounced", m.count(newsletter.StatusBounced))
	r.set("complained", m.count(newsletter.StatusComplained))
	r.zero("wrong", wrong)
	r.zero("sends_to_suppressed", toSuppressed)
	r.zero("next_digest_missing", missing)
	return nil
}

// feedbackModel is what the notifications should leave behind, whatever
// their order: a complaint outranks a permanent bounce, which outranks a
// Reject or a Rendering Failure (the row failed), which outranks
// everything else; a Send, a Delivery or a transient bounce settles a row
// still in flight as sent.
type feedbackModel struct {
	reader map[string]newsletter.SubscriberStatus
	row    map[string]newsletter.DeliveryStatus
}

func (m *feedbackModel) count(s newsletter.SubscriberStatus) int {
	n := 0
	for _, v := range m.reader {
		if v == s {
			n++
		}
	}
	return n
}

func (m *feedbackModel) suppress(id string, s newsletter.SubscriberStatus) {
	if m.reader[id] != newsletter.StatusComplained {
		m.reader[id] = s
	}
}

func (m *feedbackModel) settle(id string, s newsletter.DeliveryStatus) {
	switch cur := m.row[id]; {
	case cur == newsletter.DeliveryComplained:
	case s == newsletter.DeliverySent && cur != newsletter.DeliveryQueued && cur != newsletter.DeliverySending && cur != newsletter.DeliveryUnknown:
	case s == newsletter.DeliveryFailed && cur != newsletter.DeliveryQueued && cur != newsletter.DeliverySending && cur != newsletter.DeliveryUnknown && cur != newsletter.DeliverySent:
	default:
		m.row[id] = s
	}
}

// generate returns one notification, as SES event publishing writes it,
// and applies it to the model. The mail is tagged with the digest and its
// first recipient; a few are mail without tags (a confirmation email) or
// to addresses no reader has.
func (m *feedbackModel) generate(rng *rand.Rand, digestID string, readers int) []byte {
	n := 1
	if rng.IntN(4) == 0 {
		n = 2 + rng.IntN(3)
	}
	recips := make([]int, n)
	for i := range recips {
		recips[i] = rng.IntN(readers + readers/20) // some beyond the list: unknown addresses
	}
	addr := func(i int) string {
		a := readerEmail(i)
		switch rng.IntN(4) {
		case 0:
			a = strings.ToUpper(a) // providers report the case they like
		case 1:
			a = " " + a
		}
		return a
	}
	var dest []string
	for _, i := range recips {
		dest = append(dest, addr(i))
	}
	tagged := rng.IntN(20) != 0 && recips[0] < readers
	tags := map[string][]string{
		"ses:configuration-set": {"broadsheet"},
		"ses:from-domain":       {"ledger.example.com"},
	}
	if tagged {
		tags[feedback.TagDigest] = []string{digestID}
		tags[feedback.TagSubscriber] = []string{readerID(recips[0])}
	}
	mail := map[string]any{
		"timestamp":        time.Now().UTC().Format(time.RFC3339Nano),
		"source":           letterhead.From,
		"sendingAccountId": "123456789012",
		"messageId":        fmt.Sprintf("0100019a-%016x-000000", rng.Uint64()),
		"destination":      dest,
		"headersTruncated": false,
		"tags":             tags,
		"futureMailField":  map[string]any{"x": rng.IntN(9)},
	}
	ev := map[string]any{"mail": mail, "someFutureTopLevelField": []int{1, 2, 3}}
	known := func(i int) bool { return i < readers }
	row := func(s newsletter.DeliveryStatus) {
		if tagged {
			m.settle(readerID(recips[0]), s)
		}
	}
	switch x := rng.IntN(100); {
	case x < 12: // permanent bounce
		var br []map[string]any
		for i, r := range recips {
			br = append(br, map[string]any{"emailAddress": strings.TrimSpace(dest[i]), "action": "failed", "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"})
			if known(r) {
				m.suppress(readerID(r), newsletter.StatusBounced)
			}
		}
		ev["eventType"] = feedback.EventBounce
		ev["bounce"] = map[string]any{"bounceType": feedback.BouncePermanent, "bounceSubType": "General", "bouncedRecipients": br,
			"timestamp": time.Now().UTC().Format(time.RFC3339), "feedbackId": fmt.Sprintf("fb-%x", rng.Uint64()), "futureBounceField": true}
		row(newsletter.DeliveryBounced)
	case x < 24: // transient bounce: recorded only
		var br []map[string]any
		for i := range recips {
			br = append(br, map[string]any{"emailAddress": strings.TrimSpace(dest[i]), "status": "4.2.2"})
		}
		kind := feedback.BounceTransient
		if rng.IntN(4) == 0 {
			kind = feedback.BounceUndetermined
		}
		ev["eventType"] = feedback.EventBounce
		ev["bounce"] = map[string]any{"bounceType": kind, "bounceSubType": "MailboxFull", "bouncedRecipients": br, "feedbackId": fmt.Sprintf("fb-%x", rng.Uint64())}
		row(newsletter.DeliverySent) // the bounce shows the message left
	case x < 30: // complaint
		var cr []map[string]any
		for i, r := range recips {
			cr = append(cr, map[string]any{"emailAddress": strings.TrimSpace(dest[i])})
			if known(r) {
				m.suppress(readerID(r), newsletter.StatusComplained)
			}
		}
		ev["eventType"] = feedback.EventComplaint
		ev["complaint"] = map[string]any{"complainedRecipients": cr, "complaintFeedbackType": "abuse", "feedbackId": fmt.Sprintf("fb-%x", rng.Uint64()), "userAgent": "Yahoo!-Mail-Feedback/2.0"}
		row(newsletter.DeliveryComplained)
	case x < 60:
		ev["eventType"] = feedback.EventDelivery
		ev["delivery"] = map[string]any{"timestamp": time.Now().UTC().Format(time.RFC3339), "processingTimeMillis": 546, "recipients": dest, "smtpResponse": "250 ok"}
		row(newsletter.DeliverySent)
	case x < 88:
		ev["eventType"] = feedback.EventSend
		ev["send"] = map[string]any{}
		row(newsletter.DeliverySent)
	case x < 92: // SES accepted the message, then did not send it
		if rng.IntN(2) == 0 {
			ev["eventType"] = feedback.EventReject
			ev["reject"] = map[string]any{"reason": "Bad content"}
		} else {
			ev["eventType"] = feedback.EventRenderingFailure
			ev["failure"] = map[string]any{"templateName": "inline", "errorMessage": "Attribute 'lb' is not present in the rendering data."}
		}
		row(newsletter.DeliveryFailed)
	default: // types Broadsheet does not act on
		t := []string{"Open", "Click", "DeliveryDelay", "Subscription"}[rng.IntN(4)]
		ev["eventType"] = t
		ev[strings.ToLower(t)] = map[string]any{"timestamp": time.Now().UTC().Format(time.RFC3339)}
	}
	b, _ := json.Marshal(ev) // maps of strings and numbers always encode
	return b
}
