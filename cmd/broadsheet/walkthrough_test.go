package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWalkthrough is the README's walkthrough, run against the real binary's
// wiring: HTTP server on loopback, bbolt file and .eml outbox in a temp
// folder, in-process queue and sender. Only the clock is the test's.
func TestWalkthrough(t *testing.T) {
	lagos, err := time.LoadLocation("Africa/Lagos")
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: time.Date(2026, 11, 26, 6, 0, 0, 0, lagos)}
	dir := t.TempDir()
	srv := startServer(t, clock, "--data", dir)
	base, editor, outbox := srv.base, srv.editor, filepath.Join(dir, "outbox")

	// A reader subscribes, and another signs up but never confirms.
	for _, email := range []string{"ada@example.com", "bola@example.com"} {
		res := do(t, "POST", base+"/subscribe", "", "application/json", `{"email":"`+email+`","frequency":"daily"}`)
		wantStatus(t, res, http.StatusAccepted)
	}
	confirmations := srv.mail(t, 2, func(m *letter) bool { return strings.Contains(m.Subject, "Confirm") })
	confirmURL := findURL(t, confirmationFor(t, confirmations, "ada@example.com").Text, "/confirm?token=")

	// A link scanner's GET shows the page and confirms nothing.
	wantStatus(t, do(t, "GET", confirmURL, "", "", ""), http.StatusOK)
	if got := subscriberStatus(t, base, editor, "ada@example.com"); got != "pending" {
		t.Fatalf("after GET /confirm: status %q, want pending", got)
	}
	tok := mustQuery(t, confirmURL, "token")
	wantStatus(t, do(t, "POST", base+"/confirm", "", "application/x-www-form-urlencoded", "token="+url.QueryEscape(tok)), http.StatusOK)
	if got := subscriberStatus(t, base, editor, "ada@example.com"); got != "confirmed" {
		t.Fatalf("after POST /confirm: status %q, want confirmed", got)
	}

	// The editor submits two articles; a second submission of a URL updates it.
	for i, body := range []string{
		`{"url":"https://ledger.example.com/2026/11/26/budget","title":"Budget passes","summary":"The assembly passed the budget.","sections":["politics"]}`,
		`{"url":"https://ledger.example.com/2026/11/26/derby","title":"Derby ends level","summary":"Two goals each.","sections":["sport"]}`,
	} {
		res := do(t, "POST", base+"/api/articles", editor, "application/json", body)
		wantStatus(t, res, http.StatusCreated)
		if i == 0 {
			res := do(t, "POST", base+"/api/articles", editor, "application/json", strings.Replace(body, "Budget passes", "Budget passes after all-night sitting", 1))
			wantStatus(t, res, http.StatusOK)
		}
	}

	// At seven the editor sends the daily digest.
	clock.Add(time.Hour)
	res := do(t, "POST", base+"/api/digests", editor, "application/json", `{"frequency":"daily","intro":"Good morning.","send":true}`)
	wantStatus(t, res, http.StatusCreated)
	var digest struct {
		ID string `json:"id"`
	}
	decode(t, res, &digest)
	if digest.ID != "daily-2026-11-26" {
		t.Fatalf("digest ID %q, want daily-2026-11-26", digest.ID)
	}
	counters := srv.sent(t, digest.ID)
	if counters["total"] != 1 || counters["sent"] != 1 {
		t.Fatalf("counters %v, want total 1, sent 1 (the pending reader gets nothing)", counters)
	}
	digests := srv.mail(t, 1, isDigest)
	m := digests[0]
	if m.To != "ada@example.com" {
		t.Fatalf("digest went to %q, want ada@example.com only", m.To)
	}
	for _, want := range []string{"Budget passes after all-night sitting", "Derby ends level", "Good morning."} {
		if !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, want) {
			t.Errorf("digest text or HTML part lacks %q", want)
		}
	}
	unsubscribeURL := checkListHeaders(t, m, base)
	if !strings.Contains(m.Text, unsubscribeURL) {
		t.Errorf("text part lacks the visible unsubscribe link %s", unsubscribeURL)
	}

	// Asking again for the same period gives the same digest and sends nothing.
	res = do(t, "POST", base+"/api/digests", editor, "application/json", `{"frequency":"daily","send":true}`)
	wantStatus(t, res, http.StatusOK)
	decode(t, res, &digest)
	if digest.ID != "daily-2026-11-26" {
		t.Fatalf("second request made digest %q, want the same daily-2026-11-26", digest.ID)
	}

	// One-click unsubscribe (RFC 8058): 200, no redirect, idempotent.
	for range 2 {
		res := do(t, "POST", unsubscribeURL, "", "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click")
		wantStatus(t, res, http.StatusOK)
		if loc := res.Header.Get("Location"); loc != "" {
			t.Fatalf("one-click unsubscribe redirected to %q", loc)
		}
	}
	if got := subscriberStatus(t, base, editor, "ada@example.com"); got != "unsubscribed" {
		t.Fatalf("after one-click: status %q, want unsubscribed", got)
	}

	// The next day's digest skips the reader who left.
	clock.Add(24 * time.Hour)
	wantStatus(t, do(t, "POST", base+"/api/articles", editor, "application/json",
		`{"url":"https://ledger.example.com/2026/11/27/rain","title":"Rain at last","sections":["news"]}`), http.StatusCreated)
	res = do(t, "POST", base+"/api/digests", editor, "application/json", `{"frequency":"daily","send":true}`)
	wantStatus(t, res, http.StatusCreated)
	decode(t, res, &digest)
	if counters := srv.sent(t, digest.ID); counters["total"] != 0 {
		t.Fatalf("second digest counters %v, want nobody queued", counters)
	}
	if got := len(readOutbox(t, outbox, isDigest)); got != 1 {
		t.Fatalf("%d digest emails in the outbox, want still 1 (nothing sent twice, nothing after unsubscribe)", got)
	}

	// "broadsheet outbox" lists what was sent; --last shows the newest
	// email (the goodbye) decoded.
	var list, last bytes.Buffer
	if err := run(context.Background(), []string{"outbox", "--data", dir}, testEnviron(clock.Now()), nil, &list, io.Discard); err != nil {
		t.Fatal(err)
	}
	all := readOutbox(t, outbox, func(*letter) bool { return true })
	if got := strings.Count(list.String(), "\n"); got != len(all) {
		t.Errorf("outbox listed %d lines, want %d:\n%s", got, len(all), list.String())
	}
	if err := run(context.Background(), []string{"outbox", "--last", "--data", dir}, testEnviron(clock.Now()), nil, &last, io.Discard); err != nil {
		t.Fatal(err)
	}
	newest := all[len(all)-1]
	for _, want := range []string{"To: " + newest.Header.Get("To"), "Subject: " + newest.Subject, strings.TrimSpace(newest.Text)[:20]} {
		if !strings.Contains(last.String(), want) {
			t.Errorf("outbox --last lacks %q:\n%s", want, last.String())
		}
	}
}

// checkListHeaders checks the bulk-sender headers and returns the https
// (here http, on loopback) one-click unsubscribe URL.
func checkListHeaders(t *testing.T, m *letter, base string) string {
	t.Helper()
	lu := m.Header.Get("List-Unsubscribe")
	re := regexp.MustCompile(`<(` + regexp.QuoteMeta(base) + `/unsubscribe\?token=[^>]+)>`)
	match := re.FindStringSubmatch(lu)
	if match == nil || !strings.Contains(lu, "<mailto:") {
		t.Fatalf("List-Unsubscribe %q lacks the one-click URL or the mailto", lu)
	}
	for name, want := range map[string]string{"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"} {
		if got := m.Header.Get(name); got != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"List-Id", "Message-Id", "Date"} {
		if m.Header.Get(name) == "" {
			t.Errorf("digest has no %s header", name)
		}
	}
	if _, err := m.Header.Date(); err != nil {
		t.Errorf("Date header: %v", err)
	}
	if m.Text == "" || m.HTML == "" {
		t.Errorf("digest parts: text %d bytes, HTML %d bytes; want both", len(m.Text), len(m.HTML))
	}
	return match[1]
}

// server is "broadsheet serve" running in-process for a test.
type server struct {
	base   string // http://127.0.0.1:port
	editor string // the first editor token it printed
	outbox string
	app    *app
}

// startServer runs "broadsheet serve" in-process on a free loopback port
// and returns once it takes requests; it is stopped when the test ends.
func startServer(t *testing.T, clock *testClock, args ...string) *server {
	t.Helper()
	args = append([]string{"--addr", "127.0.0.1:0", "--daily-at", "off", "--weekly-at", "off"}, args...)
	cfg, _, err := parseConfig("serve", args, environ{getenv: func(string) string { return "" }, now: clock.Now}, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan *app, 1)
	cfg.started = func(a *app) { started <- a }
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- serveConfig(ctx, cfg, out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	var a *app
	select {
	case a = <-started:
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("serve stopped early: %v\n%s", err, out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start within 30 s:\n%s", out.String())
	}
	// Everything serve prints at start is out by now.
	s := out.String()
	m := regexp.MustCompile(`running at (http://\S+)`).FindStringSubmatch(s)
	tok := regexp.MustCompile(`\n\s+(bs_\S+)\n`).FindStringSubmatch(s)
	if m == nil || tok == nil {
		t.Fatalf("server did not print its URL and first token:\n%s", s)
	}
	return &server{base: m[1], editor: tok[1], outbox: filepath.Join(cfg.Data, "outbox"), app: a}
}

// settle waits until the server has nothing left to do: every queued task
// run (retries included) and every email sent in the background gone.
func (s *server) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.app.queue.WaitIdle(ctx); err != nil {
		t.Fatalf("queue: %v", err)
	}
	if err := s.app.service.WaitForMail(ctx); err != nil {
		t.Fatal(err)
	}
}

// mail lets the server settle and returns the emails in its outbox that
// match, failing the test unless there are n.
func (s *server) mail(t *testing.T, n int, match func(*letter) bool) []*letter {
	t.Helper()
	s.settle(t)
	ms := readOutbox(t, s.outbox, match)
	if len(ms) != n {
		t.Fatalf("%d matching emails in the outbox, want %d", len(ms), n)
	}
	return ms
}

// sent lets the server settle and returns the digest's counters, failing
// the test unless it is sent.
func (s *server) sent(t *testing.T, id string) map[string]int {
	t.Helper()
	s.settle(t)
	res := do(t, "GET", s.base+"/api/digests/"+id, s.editor, "", "")
	wantStatus(t, res, http.StatusOK)
	var st struct {
		Status   string         `json:"status"`
		Counters map[string]int `json:"counters"`
	}
	decode(t, res, &st)
	if st.Status != "sent" {
		t.Fatalf("digest %s %s with counters %v once the queue is idle, want sent", id, st.Status, st.Counters)
	}
	return st.Counters
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

func do(t *testing.T, method, u, bearer, contentType, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(b))
	return res
}

func wantStatus(t *testing.T, res *http.Response, want int) {
	t.Helper()
	if res.StatusCode != want {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("%s %s: status %d, want %d; body: %s", res.Request.Method, res.Request.URL, res.StatusCode, want, b)
	}
}

func decode(t *testing.T, res *http.Response, v any) {
	t.Helper()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("decode %s: %v", res.Request.URL, err)
	}
}

func subscriberStatus(t *testing.T, base, editor, address string) string {
	t.Helper()
	res := do(t, "GET", base+"/api/subscribers?limit=1000", editor, "", "")
	wantStatus(t, res, http.StatusOK)
	var list struct {
		Items []struct{ Email, Status string } `json:"items"`
	}
	decode(t, res, &list)
	for _, s := range list.Items {
		if s.Email == address {
			return s.Status
		}
	}
	t.Fatalf("%s is not in the subscriber list", address)
	return ""
}

func isDigest(m *letter) bool { return m.Header.Get("List-Unsubscribe-Post") != "" }

func readOutbox(t *testing.T, dir string, match func(*letter) bool) []*letter {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var out []*letter
	for _, f := range files {
		m, err := readLetter(f)
		if err != nil {
			t.Fatal(err)
		}
		if match(m) {
			out = append(out, m)
		}
	}
	return out
}

func confirmationFor(t *testing.T, ms []*letter, to string) *letter {
	t.Helper()
	for _, m := range ms {
		if m.To == to {
			return m
		}
	}
	t.Fatalf("no confirmation email to %s", to)
	return nil
}

func findURL(t *testing.T, text, contains string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(text))
	re := regexp.MustCompile(`https?://[^\s<>"()]+`)
	for sc.Scan() {
		for _, u := range re.FindAllString(sc.Text(), -1) {
			if strings.Contains(u, contains) {
				return u
			}
		}
	}
	t.Fatalf("no URL with %q in:\n%s", contains, text)
	return ""
}

func mustQuery(t *testing.T, raw, key string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	v := u.Query().Get(key)
	if v == "" {
		t.Fatalf("%s has no %s", raw, key)
	}
	return v
}
