package awsapp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/bolt"
	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/render"
	"github.com/broadsheet-news/broadsheet/internal/settings"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

func TestParseDigestEvent(t *testing.T) {
	for _, tc := range []struct {
		file string
		want DigestEvent
	}{
		{"schedule-daily.json", DigestEvent{Frequency: "daily"}},
		{"schedule-weekly-extra.json", DigestEvent{Frequency: "weekly"}},
		{"invocation.json", DigestEvent{DigestID: "daily-2026-11-26"}},
		{"../../../events/digest.json", DigestEvent{Frequency: "daily"}},
		{"../../../events/digest-send.json", DigestEvent{DigestID: "daily-2026-11-26"}},
		{"../../../events/digest-sweep.json", DigestEvent{Sweep: true}},
	} {
		raw, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseDigestEvent(raw)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v", tc.file, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		``, `null`, `{}`, `[]`, `"daily"`, `{"frequency":"hourly"}`, `{"digestId":"../etc/passwd"}`,
		`{"frequency":"daily","digestId":"daily-2026-11-26"}`, `{"frequency":7}`, `{"digestId":"daily-2026-13-45"}`,
		`{"sweep":true,"frequency":"daily"}`, `{"sweep":"yes"}`, `{"sweep":false}`,
	} {
		if ev, err := ParseDigestEvent([]byte(bad)); !errors.Is(err, ErrBadEvent) {
			t.Errorf("ParseDigestEvent(%s) = %+v, %v; want ErrBadEvent", bad, ev, err)
		}
	}
}

// The api function sends what the digest function reads.
func TestDigestInvocationRoundTrip(t *testing.T) {
	b, err := json.Marshal(DigestInvocation{DigestID: "weekly-2026-W48"})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := ParseDigestEvent(b)
	if err != nil || ev.DigestID != "weekly-2026-W48" || ev.Frequency != "" {
		t.Errorf("%s decoded as %+v, %v", b, ev, err)
	}
}

// The digest function's mailer refuses: the function only enqueues.
func TestNoMail(t *testing.T) {
	if id, err := (noMail{}).Send(context.Background(), &eml.Message{}); !errors.Is(err, ErrNoMail) || id != "" {
		t.Errorf("noMail.Send = %q, %v; want ErrNoMail", id, err)
	}
}

// recordingQueue keeps what fan-out enqueues.
type recordingQueue struct {
	mu    sync.Mutex
	tasks []delivery.Task
}

func (q *recordingQueue) Enqueue(_ context.Context, ts ...delivery.Task) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.tasks = append(q.tasks, ts...)
	return nil
}

func (q *recordingQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.tasks)
}

// digestApp is the digest function's app on a bbolt store, with a clock on
// 26 November 2026, a queue that records what fan-out sends it and, as
// LoadDigest gives it, a mailer that refuses.
func digestApp(t *testing.T) (*App, *recordingQueue) {
	t.Helper()
	s, err := settings.FromEnv(func(k string) string {
		return map[string]string{settings.EnvBaseURL: "https://news.example", settings.EnvFrom: "The Ledger <news@ledger.example>"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return time.Date(2026, 11, 26, 7, 0, 0, 0, s.Location()) }
	store, err := bolt.Open(filepath.Join(t.TempDir(), "broadsheet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key, err := token.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := token.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	renderer, err := render.New(s.Site())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	q := &recordingQueue{}
	engine := delivery.New(store, signer, renderer, noMail{}, q, delivery.Config{Letterhead: s.Letterhead(), Logger: log, Now: now})
	svc := newsroom.New(store, signer, renderer, nil, noMail{}, engine, inlineFanout{engine}, newsroom.Config{
		Site: s.Site(), From: s.From, Logger: log, Now: now,
	})
	return &App{Function: DigestFunction, Settings: s, Log: log, Store: store, Engine: engine, Service: svc}, q
}

func invokeDigest(t *testing.T, a *App, event string) *DigestResult {
	t.Helper()
	res, err := a.HandleDigest(context.Background(), json.RawMessage(event))
	if err != nil {
		t.Fatalf("HandleDigest(%s): %v", event, err)
	}
	return res
}

func TestHandleDigest(t *testing.T) {
	a, q := digestApp(t)
	ctx := context.Background()

	if res := invokeDigest(t, a, `{"frequency":"daily"}`); res.Status != OutcomeSkipped || res.DigestID != "" {
		t.Errorf("no articles: %+v, want skipped", res)
	}

	if _, _, err := a.Service.SubmitArticle(ctx, newsroom.ArticleInput{
		URL: "https://ledger.example/2026/11/26/budget", Title: "Budget passes", Summary: "The assembly passed the budget.",
		Sections: []string{"news"}, PublishedAt: time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC),
	}); err != nil {
		t.Fatal(err)
	}
	for i, email := range []string{"ada@example.com", "bola@example.com"} {
		if err := a.Store.CreateSubscriber(ctx, &newsletter.Subscriber{
			ID: []string{"reader-ada", "reader-bola"}[i], Email: email, Status: newsletter.StatusConfirmed,
			Frequency: newsletter.Daily, Format: newsletter.FormatFull,
		}); err != nil {
			t.Fatal(err)
		}
	}

	res := invokeDigest(t, a, `{"frequency":"daily"}`)
	if res.DigestID != "daily-2026-11-26" || !res.Created || res.Status != string(newsletter.DigestSending) ||
		res.Counters == nil || res.Counters.Total != 2 || res.Counters.Queued != 2 {
		t.Errorf("scheduled digest: %+v %+v, want daily-2026-11-26 created, sending, 2 readers queued", res, res.Counters)
	}
	if q.len() != 1 || len(q.tasks[0].SubscriberIDs) != 2 || q.tasks[0].Kind != delivery.KindSend {
		t.Errorf("queue got %+v, want one send task for both readers", q.tasks)
	}

	// A retried schedule and a redelivered invocation make no second
	// digest and enqueue nothing more.
	if res := invokeDigest(t, a, `{"frequency":"daily"}`); res.DigestID != "daily-2026-11-26" || res.Created {
		t.Errorf("second schedule: %+v, want the same digest, not created", res)
	}
	if res := invokeDigest(t, a, `{"digestId":"daily-2026-11-26"}`); res.DigestID != "daily-2026-11-26" || res.Status != string(newsletter.DigestSending) {
		t.Errorf("invocation: %+v, want the digest, sending", res)
	}
	if q.len() != 1 {
		t.Errorf("%d tasks enqueued after retries, want 1", q.len())
	}

	// The sweep schedule: the queue lost both messages (as if a crash had
	// eaten them, which on SQS would take a DLQ), the rows stay queued, and
	// a sweep puts them back.
	q.tasks = nil
	if res := invokeDigest(t, a, `{"sweep":true}`); res.Status != OutcomeSwept {
		t.Errorf("sweep: %+v, want swept", res)
	}
	if q.len() != 1 || len(q.tasks[0].SubscriberIDs) != 2 {
		t.Errorf("sweep enqueued %+v, want the two queued readers again", q.tasks)
	}

	if res := invokeDigest(t, a, `{"digestId":"daily-2026-11-27"}`); res.Status != OutcomeNotFound {
		t.Errorf("missing digest: %+v, want not_found", res)
	}
	for _, bad := range []string{`{}`, `{"frequency":"hourly"}`, `not json`} {
		if res := invokeDigest(t, a, bad); res.Status != OutcomeInvalid || res.Message == "" {
			t.Errorf("%s: %+v, want invalid with a message", bad, res)
		}
	}
}

// A store that fails makes the handler return an error, so that the
// scheduler retries.
func TestHandleDigestStoreErrorIsRetried(t *testing.T) {
	a, _ := digestApp(t)
	a.Store.(*bolt.Store).Close()
	if _, err := a.HandleDigest(context.Background(), json.RawMessage(`{"frequency":"daily"}`)); err == nil {
		t.Error("HandleDigest on a closed store returned no error")
	}
	if _, err := a.HandleDigest(context.Background(), json.RawMessage(`{"digestId":"daily-2026-11-26"}`)); err == nil {
		t.Error("fan-out on a closed store returned no error")
	}
}
