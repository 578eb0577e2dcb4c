package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/api"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/token"
	"github.com/broadsheet-news/broadsheet/internal/wordpress"
	"github.com/broadsheet-news/broadsheet/internal/wordpress/wptest"
)

var hookSecret = []byte("wordpress push secret, 32 bytes!")

func withHook(o *api.Options) { o.WordPressSecret = hookSecret }

// wpPost is post 4101 of the wordpress package's testdata, published an
// hour before the test clock, with fields replaced.
func (e *env) wpPost(set map[string]any) json.RawMessage {
	e.t.Helper()
	at := e.clock.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05")
	base := map[string]any{"date": at, "date_gmt": at, "modified": at, "modified_gmt": at}
	for k, v := range set {
		base[k] = v
	}
	return wptest.Post(e.t, wptest.Load(e.t, "../wordpress/testdata/posts.json")[0], base)
}

// push sends a post to the hook as the plugin does, signed now.
func (e *env) push(event string, post json.RawMessage) response {
	e.t.Helper()
	return e.send(wptest.PushRequest(e.t, e.srv.URL+"/hooks/wordpress", hookSecret, event, post, e.clock.Now()))
}

func TestWordPressHookBadInput(t *testing.T) {
	e := MustEnv(t, withHook)
	post := e.wpPost(nil)
	body, _ := json.Marshal(map[string]any{"event": "publish", "post": post})
	now := strconv.FormatInt(e.clock.Now().Unix(), 10)
	stale := strconv.FormatInt(e.clock.Now().Add(-10*time.Minute).Unix(), 10)
	signed := func(ts string, b []byte) map[string]string {
		return map[string]string{wordpress.TimestampHeader: ts, wordpress.SignatureHeader: wordpress.Sign(hookSecret, ts, b)}
	}
	draft, _ := json.Marshal(map[string]any{"event": "publish", "post": wptest.Post(t, post, map[string]any{"status": "draft"})})
	noLink, _ := json.Marshal(map[string]any{"event": "update", "post": wptest.Post(t, post, map[string]any{"link": "/relative"})})
	huge := append(append([]byte(`{"event":"publish","post":{"id":1,"title":{"rendered":"`), bytes.Repeat([]byte("x"), wordpress.MaxPushBytes)...), `"}}}`...)
	before := e.snapshot()
	for _, c := range []struct {
		name   string
		body   []byte
		header map[string]string
		status int
		code   string
	}{
		{"unsigned", body, nil, http.StatusUnauthorized, "unauthorized"},
		{"bad signature", body, map[string]string{wordpress.TimestampHeader: now, wordpress.SignatureHeader: "sha256=" + strings.Repeat("ab", 32)}, http.StatusUnauthorized, "unauthorized"},
		{"signed with another secret", body, map[string]string{wordpress.TimestampHeader: now, wordpress.SignatureHeader: wordpress.Sign([]byte("not the secret"), now, body)}, http.StatusUnauthorized, "unauthorized"},
		{"stale timestamp", body, signed(stale, body), http.StatusUnauthorized, "unauthorized"},
		{"malformed JSON", []byte(`{"event":"publish","post":{"id":`), signed(now, []byte(`{"event":"publish","post":{"id":`)), http.StatusBadRequest, "invalid"},
		{"unknown event", []byte(`{"event":"trash","post":{"id":1}}`), signed(now, []byte(`{"event":"trash","post":{"id":1}}`)), http.StatusBadRequest, "invalid"},
		{"draft", draft, signed(now, draft), http.StatusBadRequest, "invalid"},
		{"no absolute link", noLink, signed(now, noLink), http.StatusBadRequest, "invalid"},
		{"huge", huge, signed(now, huge), http.StatusRequestEntityTooLarge, "too_large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.Do(req{Method: "POST", Path: "/hooks/wordpress", Type: "application/json", Body: string(c.body), Header: c.header})
			wantError(t, r, c.status, c.code)
			if strings.Contains(r.String(), "hmac") || strings.Contains(r.String(), "Internal") {
				t.Errorf("answer %s: want no internal detail", r)
			}
		})
	}
	e.unchanged(before, "a refused push")

	// A good push, then the same request again: the replay is answered
	// and changes nothing.
	req := wptest.PushRequest(t, e.srv.URL+"/hooks/wordpress", hookSecret, "publish", post, e.clock.Now())
	r := e.send(req)
	want(t, r, http.StatusOK)
	if !strings.Contains(r.String(), `"status":"created"`) {
		t.Fatalf("first push: got %s, want created", r)
	}
	before = e.snapshot()
	sent, _ := json.Marshal(map[string]any{"event": "publish", "post": post})
	replay, _ := http.NewRequest("POST", e.srv.URL+"/hooks/wordpress", bytes.NewReader(sent))
	for k, v := range req.Header {
		replay.Header[k] = v
	}
	r = e.send(replay)
	want(t, r, http.StatusOK)
	if !strings.Contains(r.String(), `"status":"unchanged"`) {
		t.Errorf("replay: got %s, want unchanged", r)
	}
	e.unchanged(before, "a replayed push")
	e.noServerErrors()
}

func TestWordPressHookOff(t *testing.T) {
	e := MustEnv(t)
	r := e.send(wptest.PushRequest(t, e.srv.URL+"/hooks/wordpress", hookSecret, "publish", e.wpPost(nil), e.clock.Now()))
	wantError(t, r, http.StatusNotFound, "not_found")
}

// TestWordPressToDailyAndInstantReaders publishes posts in a fake WordPress and
// checks that each reaches a daily reader exactly once, in the digest, and
// an instant reader exactly once, as it arrives, whether it is pushed,
// pulled or both; and that a correction is marked once in the digest.
func TestWordPressToDailyAndInstantReaders(t *testing.T) {
	e := MustEnv(t, withHook)
	reader := "daily@example.com"
	e.mustConfirmed(reader)
	instant := "instant@example.com"
	sub := e.mustConfirmed(instant)
	want(t, e.Form("/preferences?token="+e.sign(token.Preferences, sub.ID, time.Hour), "frequency=instant&format=full"), http.StatusOK)
	if got := e.subscriber(instant).Frequency; got != newsletter.Instant {
		t.Fatalf("instant reader's frequency: got %s", got)
	}
	// The confirmation and the welcome email.
	readerMails, instantMails := len(e.mailsTo(reader)), len(e.mailsTo(instant))
	site := wptest.New(t)
	client, err := wordpress.NewClient(site.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ing := &wordpress.Ingester{Client: client, Newsroom: e.svc, Checkpoints: e.store, Now: e.clock.Now}
	pull := func(want wordpress.Report) {
		t.Helper()
		got, err := ing.Run(context.Background())
		if err != nil {
			t.Fatalf("pull: %v", err)
		}
		if got.Created != want.Created || got.Updated != want.Updated {
			t.Fatalf("pull: got %+v, want %d created, %d updated", got, want.Created, want.Updated)
		}
	}

	// Pushed, then seen again by the pull.
	pushed := e.wpPost(nil)
	site.Publish(t, pushed)
	r := e.push("publish", pushed)
	want(t, r, http.StatusOK)
	pull(wordpress.Report{})
	// Pulled first, then pushed as well.
	pulled := e.wpPost(map[string]any{"id": 4200, "link": "https://ledger.example.com/2026/11/26/pulled/", "title": map[string]any{"rendered": "Pulled &amp; pushed"}})
	site.Publish(t, pulled)
	pull(wordpress.Report{Created: 1})
	want(t, e.push("update", pulled), http.StatusOK)
	// Pulled only.
	site.Publish(t, e.wpPost(map[string]any{"id": 4300, "link": "https://ledger.example.com/2026/11/26/only-pulled/", "title": map[string]any{"rendered": "Only pulled"}}))
	pull(wordpress.Report{Created: 1})

	digest := func() response {
		t.Helper()
		r := e.API("POST", "/api/digests", `{"frequency":"daily","send":true}`)
		if err := e.queue.WaitIdle(context.Background()); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if err := e.queue.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	titles := []string{"Assembly passes the 2027 budget", "Pulled & pushed", "Only pulled"}
	if n := len(e.mailsTo(reader)) - readerMails; n != 0 {
		t.Errorf("emails to the daily reader before the digest: got %d, want 0", n)
	}
	want(t, digest(), http.StatusCreated, http.StatusOK)
	for _, title := range titles {
		if n := countMails(e.mailsTo(reader), title); n != 1 {
			t.Errorf("emails to the daily reader with %q: got %d, want 1", title, n)
		}
		if n := countMails(e.mailsTo(instant), title); n != 1 {
			t.Errorf("emails to the instant reader with %q: got %d, want 1", title, n)
		}
	}
	if n := len(e.mailsTo(instant)) - instantMails; n != len(titles) {
		t.Errorf("emails to the instant reader: got %d, want %d (one per post, no digest)", n, len(titles))
	}

	// The next day: a correction in WordPress, pulled, is carried again
	// marked Updated, and only once.
	e.clock.Add(24 * time.Hour)
	revised := e.clock.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05")
	site.Publish(t, wptest.Post(t, pushed, map[string]any{
		"title": map[string]any{"rendered": "Assembly passes the 2027 budget, amended"}, "modified": revised, "modified_gmt": revised,
	}))
	pull(wordpress.Report{Updated: 1})
	want(t, digest(), http.StatusCreated)
	mails := e.mailsTo(reader)
	if n := countMails(mails, "[Updated] Assembly passes the 2027 budget, amended"); n != 1 {
		t.Errorf("emails marking the correction: got %d, want 1", n)
	}
	if n := countMails(mails, "Only pulled"); n != 1 {
		t.Errorf("emails with an unchanged story after the correction: got %d, want still 1", n)
	}
	e.clock.Add(24 * time.Hour)
	pull(wordpress.Report{})
	wantError(t, digest(), http.StatusConflict, "conflict")
	e.noServerErrors()
}

// countMails counts the mails that hold s.
func countMails(mails []string, s string) int {
	n := 0
	for _, m := range mails {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}
