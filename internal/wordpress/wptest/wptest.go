// Package wptest is a WordPress site for tests: it serves
// /wp-json/wp/v2/posts as WordPress does (after, modified_after, orderby,
// order, per_page, page, the X-WP-Total and X-WP-TotalPages headers) from
// posts in the REST API's own shape, on 127.0.0.1, and pushes posts as
// the plugin does.
package wptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/wordpress"
)

// Site is the fake site. Its posts are JSON objects as the REST API
// writes them with _embed; the fake reads only the fields it filters on.
type Site struct {
	*httptest.Server

	mu       sync.Mutex
	posts    []json.RawMessage
	requests []string // the query strings asked for, in order
	// Fail, when set, answers the next request with it instead (a
	// status and a body), then clears itself.
	fail *failure
}

type failure struct {
	status int
	body   []byte
}

// meta is what the fake reads of a post.
type meta struct {
	ID       int64  `json:"id"`
	Date     string `json:"date"`
	Modified string `json:"modified"`
}

// New starts a site on 127.0.0.1 serving the posts; it stops with the
// test.
func New(tb testing.TB, posts ...json.RawMessage) *Site {
	tb.Helper()
	s := Start(posts...)
	tb.Cleanup(s.Close)
	return s
}

// Start starts a site on 127.0.0.1 serving the posts, outside a test (the
// benchmark's Lambda functions pull from it); the caller closes it.
func Start(posts ...json.RawMessage) *Site {
	s := &Site{posts: posts}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Load reads a JSON array of posts from a file.
func Load(tb testing.TB, path string) []json.RawMessage {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var posts []json.RawMessage
	if err := json.Unmarshal(data, &posts); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return posts
}

// Publish adds a post, or replaces the one with its ID.
func (s *Site) Publish(tb testing.TB, post json.RawMessage) {
	tb.Helper()
	id := read(tb, post).ID
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.posts {
		if read(tb, p).ID == id {
			s.posts[i] = post
			return
		}
	}
	s.posts = append(s.posts, post)
}

// FailNext makes the next request answer status with body.
func (s *Site) FailNext(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = &failure{status, body}
}

// Requests returns the query strings of the requests served so far.
func (s *Site) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func read(tb testing.TB, post json.RawMessage) meta {
	tb.Helper()
	var m meta
	if err := json.Unmarshal(post, &m); err != nil {
		tb.Fatalf("wptest: post: %v", err)
	}
	return m
}

func (s *Site) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/wp-json/wp/v2/posts" || r.Method != http.MethodGet {
		http.Error(w, `{"code":"rest_no_route","message":"No route was found matching the URL and request method.","data":{"status":404}}`, http.StatusNotFound)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.URL.RawQuery)
	if f := s.fail; f != nil {
		s.fail = nil
		w.WriteHeader(f.status)
		w.Write(f.body)
		return
	}
	q := r.URL.Query()
	perPage, _ := strconv.Atoi(q.Get("per_page"))
	if perPage < 1 || perPage > 100 {
		perPage = 10
	}
	page, _ := strconv.Atoi(q.Get("page"))
	if page < 1 {
		page = 1
	}
	type item struct {
		m   meta
		raw json.RawMessage
	}
	var match []item
	for _, p := range s.posts {
		var m meta
		if json.Unmarshal(p, &m) != nil {
			continue
		}
		if a := q.Get("after"); a != "" && !after(m.Date, a) {
			continue
		}
		if a := q.Get("modified_after"); a != "" && !after(m.Modified, a) {
			continue
		}
		match = append(match, item{m, p})
	}
	key := func(it item) string {
		if q.Get("orderby") == "modified" {
			return it.m.Modified
		}
		return it.m.Date
	}
	slices.SortStableFunc(match, func(a, b item) int { return strings.Compare(key(a), key(b)) })
	if q.Get("order") != "asc" {
		slices.Reverse(match)
	}
	total := len(match)
	pages := (total + perPage - 1) / perPage
	if page > max(pages, 1) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"code":"rest_post_invalid_page_number","message":"The page number requested is larger than the number of pages available.","data":{"status":400}}`)
		return
	}
	var body bytes.Buffer
	body.WriteByte('[')
	for i, it := range match[min((page-1)*perPage, total):min(page*perPage, total)] {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(it.raw)
	}
	body.WriteByte(']')
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("X-WP-Total", strconv.Itoa(total))
	w.Header().Set("X-WP-TotalPages", strconv.Itoa(pages))
	w.Write(body.Bytes())
}

// after reports whether the API time t is after the API time ref.
func after(t, ref string) bool {
	tt, err1 := time.Parse("2006-01-02T15:04:05", t)
	rt, err2 := time.Parse("2006-01-02T15:04:05", ref)
	return err1 == nil && err2 == nil && tt.After(rt)
}

// PushRequest returns a push of post as the plugin sends it, signed with
// secret at ts.
func PushRequest(tb testing.TB, url string, secret []byte, event string, post json.RawMessage, ts time.Time) *http.Request {
	tb.Helper()
	body, err := json.Marshal(map[string]any{"event": event, "post": post})
	if err != nil {
		tb.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	stamp := strconv.FormatInt(ts.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(wordpress.TimestampHeader, stamp)
	req.Header.Set(wordpress.SignatureHeader, wordpress.Sign(secret, stamp, body))
	return req
}

// Post returns a copy of post with fields replaced: a way to make new
// posts and revisions from the ones in testdata.
func Post(tb testing.TB, post json.RawMessage, set map[string]any) json.RawMessage {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(post, &m); err != nil {
		tb.Fatal(err)
	}
	for k, v := range set {
		m[k] = v
	}
	out, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// Redate returns copies of posts moved in time so that the newest
// publication is at newest, each post keeping its distance from it: the
// fixture's posts as if published just before a clock that is not the
// day they were written (a benchmark's real one). It moves date,
// date_gmt, modified and modified_gmt, the times the API filters on.
func Redate(posts []json.RawMessage, newest time.Time) ([]json.RawMessage, error) {
	const layout = "2006-01-02T15:04:05"
	fields := []string{"date", "date_gmt", "modified", "modified_gmt"}
	decoded := make([]map[string]any, len(posts))
	var latest time.Time
	for i, p := range posts {
		if err := json.Unmarshal(p, &decoded[i]); err != nil {
			return nil, fmt.Errorf("post %d: %w", i, err)
		}
		gmt, _ := decoded[i]["date_gmt"].(string)
		t, err := time.Parse(layout, gmt)
		if err != nil {
			return nil, fmt.Errorf("post %d: date_gmt %q: %w", i, gmt, err)
		}
		if t.After(latest) {
			latest = t
		}
	}
	by := newest.UTC().Sub(latest)
	out := make([]json.RawMessage, len(posts))
	for i, m := range decoded {
		for _, f := range fields {
			s, _ := m[f].(string)
			t, err := time.Parse(layout, s)
			if err != nil {
				return nil, fmt.Errorf("post %d: %s %q: %w", i, f, s, err)
			}
			m[f] = t.Add(by).Format(layout)
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}
