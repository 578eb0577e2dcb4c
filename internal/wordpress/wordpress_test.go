package wordpress_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/bolt"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/render"
	"github.com/broadsheet-news/broadsheet/internal/wordpress"
	"github.com/broadsheet-news/broadsheet/internal/wordpress/wptest"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// fixture is a real newsroom on a bbolt store, and a fake site.
type fixture struct {
	store *bolt.Store
	svc   *newsroom.Service
	site  *wptest.Site
	ing   *wordpress.Ingester
	path  string
}

func newFixture(t *testing.T, posts ...json.RawMessage) *fixture {
	t.Helper()
	f := &fixture{path: filepath.Join(t.TempDir(), "broadsheet.db"), site: wptest.New(t, posts...)}
	f.open(t)
	return f
}

func (f *fixture) open(t *testing.T) {
	t.Helper()
	store, err := bolt.Open(f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f.store = store
	f.svc = newsroom.New(store, nil, nil, nil, nil, nil, noDispatch{}, newsroom.Config{
		Site: render.Site{Name: "The Ledger", Sections: newsletter.DefaultSections}, Now: func() time.Time { return now },
		Logger: slog.New(slog.DiscardHandler),
	})
	client, err := wordpress.NewClient(f.site.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.ing = &wordpress.Ingester{Client: client, Newsroom: f.svc, Checkpoints: store, Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)}
}

// noDispatch starts no sends: these tests look at articles only.
type noDispatch struct{}

func (noDispatch) Dispatch(context.Context, string) error { return nil }

func (f *fixture) articles(t *testing.T) []*newsletter.Article {
	t.Helper()
	var all []*newsletter.Article
	cursor := ""
	for {
		as, next, err := f.store.Articles(t.Context(), newsletter.ArticleFilter{}, newsletter.Page{Cursor: cursor, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, as...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

func TestPullTestdata(t *testing.T) {
	f := newFixture(t, wptest.Load(t, "testdata/posts.json")...)
	rep, err := f.ing.Run(t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Created != 3 || rep.Rejected != 0 {
		t.Fatalf("Run: got %+v, want 3 created", rep)
	}
	byPost := map[string]*newsletter.Article{}
	for _, a := range f.articles(t) {
		byPost[a.Source] = a
	}
	budget := byPost["https://ledger.example.com/?p=4101"]
	if budget == nil {
		t.Fatalf("post 4101 not ingested under its shortlink; got %v", byPost)
	}
	for _, c := range []struct{ what, got, want string }{
		{"title", budget.Title, "Assembly passes the 2027 budget – “a fair deal”, says Speaker"},
		{"summary", budget.Summary, "<p>After an all-night sitting, members voted 61\u00a0to\u00a038. The opposition’s amendments &amp; motions fell one by one…</p>"},
		{"author", budget.Author, "Ada Obi"},
		{"image", budget.ImageURL, "https://ledger.example.com/wp-content/uploads/2026/11/budget-vote.jpg"},
		{"url", budget.URL, "https://ledger.example.com/2026/11/26/assembly-passes-budget/"},
		{"sections", strings.Join(budget.Sections, ","), "politics"},
		{"published", budget.PublishedAt.UTC().Format(time.RFC3339), "2026-11-26T07:30:00Z"},
	} {
		if c.got != c.want {
			t.Errorf("post 4101 %s: got %q, want %q", c.what, c.got, c.want)
		}
	}
	derby := byPost["https://ledger.example.com/?p=4102"]
	if derby == nil {
		t.Fatal("post 4102 not ingested")
	}
	if derby.Title != "Derby ends level in the rain" || strings.Contains(derby.Summary, "script") || strings.Contains(derby.Summary, "javascript") {
		t.Errorf("post 4102: got title %q summary %q, want tags stripped and the script and javascript link gone", derby.Title, derby.Summary)
	}
	if derby.Author != "" || derby.ImageURL != "" {
		t.Errorf("post 4102: got author %q image %q, want the embedded errors ignored", derby.Author, derby.ImageURL)
	}
	// "Arts & Culture" is no section of the paper's: the first section.
	if gallery := byPost["https://ledger.example.com/?p=4103"]; gallery == nil || strings.Join(gallery.Sections, ",") != "news" || gallery.Author != "Chidi O’Neil" {
		t.Errorf("post 4103: got %+v, want section news and the author's entity decoded", gallery)
	}
	for _, q := range f.site.Requests() {
		for _, want := range []string{"per_page=100", "_embed=author%2Cwp%3Aterm%2Cwp%3Afeaturedmedia", "_fields=", "_embedded", "order=asc"} {
			if !strings.Contains(q, want) {
				t.Errorf("request %q: want %s in it", q, want)
			}
		}
	}
}

// manyPosts returns n posts a minute apart, made from a testdata post.
func manyPosts(t *testing.T, n int) []json.RawMessage {
	t.Helper()
	tmpl := wptest.Load(t, "testdata/posts.json")[0]
	out := make([]json.RawMessage, n)
	for i := range n {
		at := now.Add(-time.Duration(n-i) * time.Minute)
		out[i] = wptest.Post(t, tmpl, map[string]any{
			"id": 5000 + i, "link": fmt.Sprintf("https://ledger.example.com/2026/11/26/story-%d/", i),
			"date": at.Format("2006-01-02T15:04:05"), "date_gmt": at.Format("2006-01-02T15:04:05"),
			"modified": at.Format("2006-01-02T15:04:05"), "modified_gmt": at.Format("2006-01-02T15:04:05"),
		})
	}
	return out
}

func TestPullPagesAndCheckpoint(t *testing.T) {
	f := newFixture(t, manyPosts(t, 250)...)
	rep, err := f.ing.Run(t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Three pages of published posts; the modified ones then start where
	// those left the checkpoint, one page of the overlap.
	if rep.Created != 250 || rep.Pages != 4 || rep.Updated != 0 {
		t.Fatalf("first run: got %+v, want 250 created from 4 pages", rep)
	}
	if got := len(f.articles(t)); got != 250 {
		t.Fatalf("articles: got %d, want 250", got)
	}

	// A restart: the checkpoint is in the store, so the next run reads
	// only the overlap, and that changes nothing.
	f.store.Close()
	f.open(t)
	writes := &countingCheckpoints{Checkpoints: f.ing.Checkpoints}
	f.ing.Checkpoints = writes
	rep, err = f.ing.Run(t.Context())
	if err != nil {
		t.Fatalf("second Run: %v", err)
	}
	// Both queries return the overlap's posts; each is handed over once.
	if rep.Created != 0 || rep.Updated != 0 || rep.Unchanged == 0 || rep.Unchanged > 2 || rep.Pages != 2 {
		t.Fatalf("second run: got %+v, want only the overlap, unchanged, each post once, one page a query", rep)
	}
	if writes.puts != 0 {
		t.Errorf("second run wrote the checkpoint %d times, want 0: it did not move", writes.puts)
	}

	// A correction in WordPress: the post's modified time moves on.
	tmpl := manyPosts(t, 250)[10]
	later := now.Add(time.Minute).Format("2006-01-02T15:04:05")
	f.site.Publish(t, wptest.Post(t, tmpl, map[string]any{"title": map[string]any{"rendered": "Corrected headline"}, "modified": later, "modified_gmt": later}))
	rep, err = f.ing.Run(t.Context())
	if err != nil || rep.Updated != 1 || rep.Created != 0 {
		t.Fatalf("run after a correction: got %+v, %v, want 1 updated", rep, err)
	}
	if got := len(f.articles(t)); got != 250 {
		t.Errorf("articles after a correction: got %d, want still 250", got)
	}
}

func TestPullBadResponses(t *testing.T) {
	huge := append([]byte(`[{"id":1,"title":{"rendered":"`), bytes.Repeat([]byte("x"), wordpress.MaxResponseBytes)...)
	huge = append(huge, `"}}]`...)
	for _, c := range []struct {
		name   string
		status int
		body   []byte
	}{
		{"500", http.StatusInternalServerError, []byte(`<html><body>Error establishing a database connection</body></html>`)},
		{"malformed JSON", http.StatusOK, []byte(`[{"id": 4101, "title": {"rendered": "cut short`)},
		{"not a list", http.StatusOK, []byte(`{"code":"rest_forbidden"}`)},
		{"huge", http.StatusOK, huge},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, wptest.Load(t, "testdata/posts.json")...)
			f.site.FailNext(c.status, c.body)
			_, err := f.ing.Run(t.Context())
			if !errors.Is(err, wordpress.ErrResponse) {
				t.Fatalf("Run: got %v, want ErrResponse", err)
			}
			if strings.Contains(err.Error(), "database connection") || len(err.Error()) > 300 {
				t.Errorf("error %q: want it short, without the body", err)
			}
			if got := len(f.articles(t)); got != 0 {
				t.Errorf("articles: got %d, want none", got)
			}
			if _, err := f.store.Checkpoint(t.Context(), wordpress.CheckpointName); newsletter.ErrorCode(err) != newsletter.ENOTFOUND {
				t.Errorf("checkpoint: got %v, want none written", err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"event":"publish","post":{"id":1}}`)
	ts := fmt.Sprint(now.Unix())
	good := wordpress.Sign(secret, ts, body)
	for _, c := range []struct {
		name     string
		ts, sig  string
		body     []byte
		wantCode string
	}{
		{"good", ts, good, body, ""},
		{"clock a little behind", fmt.Sprint(now.Add(-4 * time.Minute).Unix()), wordpress.Sign(secret, fmt.Sprint(now.Add(-4*time.Minute).Unix()), body), body, ""},
		{"no signature", ts, "", body, newsletter.EUNAUTHORIZED},
		{"no timestamp", "", good, body, newsletter.EUNAUTHORIZED},
		{"bad signature", ts, "sha256=" + strings.Repeat("0", 64), body, newsletter.EUNAUTHORIZED},
		{"other secret", ts, wordpress.Sign([]byte("another secret entirely, 32 bytes"), ts, body), body, newsletter.EUNAUTHORIZED},
		{"body changed", ts, good, []byte(`{"event":"publish","post":{"id":2}}`), newsletter.EUNAUTHORIZED},
		{"stale", fmt.Sprint(now.Add(-6 * time.Minute).Unix()), wordpress.Sign(secret, fmt.Sprint(now.Add(-6*time.Minute).Unix()), body), body, newsletter.EUNAUTHORIZED},
		{"from the future", fmt.Sprint(now.Add(6 * time.Minute).Unix()), wordpress.Sign(secret, fmt.Sprint(now.Add(6*time.Minute).Unix()), body), body, newsletter.EUNAUTHORIZED},
		{"timestamp not a number", "+" + ts, wordpress.Sign(secret, "+"+ts, body), body, newsletter.EUNAUTHORIZED},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := wordpress.Verify(secret, c.ts, c.sig, c.body, now)
			if got := newsletter.ErrorCode(err); got != c.wantCode {
				t.Errorf("Verify: got code %q (%v), want %q", got, err, c.wantCode)
			}
		})
	}
}

// countingCheckpoints counts the checkpoint writes of a run.
type countingCheckpoints struct {
	wordpress.Checkpoints
	puts int
}

func (c *countingCheckpoints) PutCheckpoint(ctx context.Context, cp *newsletter.Checkpoint) error {
	c.puts++
	return c.Checkpoints.PutCheckpoint(ctx, cp)
}

// TestRedate checks the fake's re-dating, which the benchmark uses to
// serve the fixture's posts as published just before its real clock: the
// newest publication lands where asked, every time keeps its distance
// from it, and a first pull at that clock finds every post.
func TestRedate(t *testing.T) {
	posts := wptest.Load(t, "testdata/posts.json")
	newest := time.Date(2031, 3, 9, 18, 45, 0, 0, time.UTC)
	moved, err := wptest.Redate(posts, newest)
	if err != nil {
		t.Fatal(err)
	}
	parse := func(raw json.RawMessage) (ts [4]time.Time) {
		var p struct {
			Date        string `json:"date"`
			DateGMT     string `json:"date_gmt"`
			Modified    string `json:"modified"`
			ModifiedGMT string `json:"modified_gmt"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		for i, s := range []string{p.Date, p.DateGMT, p.Modified, p.ModifiedGMT} {
			v, err := time.Parse("2006-01-02T15:04:05", s)
			if err != nil {
				t.Fatalf("time %q: %v", s, err)
			}
			ts[i] = v
		}
		return ts
	}
	var latest time.Time
	var shift time.Duration
	for i := range posts {
		before, after := parse(posts[i]), parse(moved[i])
		for j := range before {
			d := after[j].Sub(before[j])
			if i == 0 && j == 0 {
				shift = d
			}
			if d != shift {
				t.Errorf("post %d time %d moved by %v, want %v like the others", i, j, d, shift)
			}
		}
		if after[1].After(latest) {
			latest = after[1]
		}
	}
	if !latest.Equal(newest) {
		t.Errorf("newest date_gmt %v, want %v", latest, newest)
	}
	if _, err := wptest.Redate([]json.RawMessage{json.RawMessage(`{"id":1,"date_gmt":"yesterday"}`)}, newest); err == nil {
		t.Error("a post with an unreadable date_gmt was re-dated; want an error")
	}

	f := newFixture(t, moved...)
	clock := newest.Add(time.Hour)
	f.ing.Now = func() time.Time { return clock }
	rep, err := f.ing.Run(context.Background())
	if err != nil || rep.Created != len(posts) {
		t.Fatalf("first pull at %v: %+v, %v; want all %d posts new", clock, rep, err, len(posts))
	}
}
