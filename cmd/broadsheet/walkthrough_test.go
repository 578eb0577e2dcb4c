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
	base, editor := startServer(t, clock, "--data", dir)
	outbox := filepath.Join(dir, "outbox")

	// A reader subscribes, and another signs up but never confirms.
	for _, email := range []string{"ada@example.com", "bola@example.com"} {
		res := do(t, "POST", base+"/subscribe", "", "application/json", `{"email":"`+email+`","frequency":"daily"}`)
		wantStatus(t, res, http.StatusAccepted)
	}
	confirmations := waitMail(t, outbox, 2, func(m *letter) bool { return strings.Contains(m.Subject, "Confirm") })
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
	counters := waitSent(t, base, editor, digest.ID)
	if counters["total"] != 1 || counters["sent"] != 1 {
		t.Fatalf("counters %v, want total 1, sent 1 (the pending reader gets nothing)", counters)
	}
	digests := waitMail(t, outbox, 1, isDigest)
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
	if counters := waitSent(t, base, editor, digest.ID); counters["total"] != 0 {
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

// startServer runs "broadsheet serve" in-process on a free loopback port
// and returns its URL and the first-run editor token.
func startServer(t *testing.T, clock *testClock, args ...string) (base, editorToken string) {
	t.Helper()
	args = append([]string{"--addr", "127.0.0.1:0", "--daily-at", "off", "--weekly-at", "off"}, args...)
	cfg, _, err := parseConfig("serve", args, environ{getenv: func(string) string { return "" }, now: clock.Now}, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
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
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s := out.String()
		if m := regexp.MustCompile(`running at (http://\S+)`).FindStringSubmatch(s); m != nil {
			if tok := regexp.MustCompile(`\n\s+(bs_\S+)\n`).FindStringSubmatch(s); tok != nil {
				return m[1], tok[1]
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve stopped early: %v\n%s", err, s)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("server did not print its URL and first token:\n%s", out.String())
	return "", ""
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

// waitSent polls the digest until it is sent and returns its counters.
func waitSent(t *testing.T, base, editor, id string) map[string]int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		res := do(t, "GET", base+"/api/digests/"+id, editor, "", "")
		wantStatus(t, res, http.StatusOK)
		var st struct {
			Status   string         `json:"status"`
			Counters map[string]int `json:"counters"`
		}
		decode(t, res, &st)
		if st.Status == "sent" {
			return st.Counters
		}
		if time.Now().After(deadline) {
			t.Fatalf("digest %s still %s with counters %v", id, st.Status, st.Counters)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isDigest(m *letter) bool { return m.Header.Get("List-Unsubscribe-Post") != "" }

func waitMail(t *testing.T, dir string, n int, match func(*letter) bool) []*letter {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ms := readOutbox(t, dir, match)
		if len(ms) >= n || time.Now().After(deadline) {
			if len(ms) != n {
				t.Fatalf("%d matching emails in the outbox, want %d", len(ms), n)
			}
			return ms
		}
		time.Sleep(20 * time.Millisecond)
	}
}

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
