package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/broadsheet-news/broadsheet/internal/api"
	"github.com/broadsheet-news/broadsheet/internal/bolt"
	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/memqueue"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/outbox"
	"github.com/broadsheet-news/broadsheet/internal/render"
	"github.com/broadsheet-news/broadsheet/internal/render/transactional"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// start is the test clock's first reading: 07:00 UTC on a Thursday.
var start = time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)

// clock is a settable clock shared by every part of the stack.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer is a log sink safe for the handler's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is the real stack behind an httptest server on loopback: bbolt store,
// token signer, renderer, outbox mailer, delivery engine, in-process queue
// and newsroom.
type env struct {
	t       testing.TB
	srv     *httptest.Server
	handler http.Handler // what srv serves, for httptest.NewRecorder
	client  *http.Client // no cookie jar, never follows redirects
	svc     *newsroom.Service
	store   *bolt.Store
	signer  *token.Signer
	queue   *memqueue.Queue
	outbox  string
	clock   *clock
	logs    *syncBuffer

	full     string // editor secret with edit and send scopes
	editOnly string // edit scope only
	sendOnly string // send scope only
}

// MustEnv builds the stack; opt may change the handler's options.
func MustEnv(tb testing.TB, opt ...func(*api.Options)) *env {
	tb.Helper()
	dir := tb.TempDir()
	clk := &clock{t: start}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))

	store, err := bolt.Open(filepath.Join(dir, "broadsheet.db"))
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { _ = store.Close() })
	key, err := token.NewKey()
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := token.NewSigner(key)
	if err != nil {
		tb.Fatal(err)
	}
	site := render.Site{
		Name:          "The Daily Ledger",
		URL:           "http://127.0.0.1:8080",
		PostalAddress: "The Daily Ledger Ltd\n1 Printing House Square\nLagos",
		Sections:      newsletter.DefaultSections,
		Location:      time.UTC,
	}
	renderer, err := render.New(site)
	if err != nil {
		tb.Fatalf("renderer: %v", err)
	}
	mails, err := transactional.New(site)
	if err != nil {
		tb.Fatalf("transactional emails: %v", err)
	}
	outDir := filepath.Join(dir, "outbox")
	mailer, err := outbox.New(outDir)
	if err != nil {
		tb.Fatal(err)
	}
	mailer.Now = clk.Now
	engine := delivery.New(store, signer, renderer, mailer, nil, delivery.Config{
		Letterhead: delivery.Letterhead{
			From:              "The Daily Ledger <news@ledger.example.com>",
			UnsubscribeMailto: "unsubscribe@ledger.example.com",
			ListID:            "<daily.ledger.example.com>",
			BaseURL:           site.URL,
		},
		Now:    clk.Now,
		Logger: logger,
	})
	q := memqueue.New(engine, memqueue.Options{Logger: logger, RetryDelay: 10 * time.Millisecond})
	engine.SetQueue(q)
	ctx, cancel := context.WithCancel(context.Background())
	q.Start(ctx)
	tb.Cleanup(func() { cancel(); q.Close() })

	svc := newsroom.New(store, signer, renderer, mails, mailer, engine, engine, newsroom.Config{
		Site:        site,
		From:        "The Daily Ledger <news@ledger.example.com>",
		Now:         clk.Now,
		Logger:      logger,
		MailWorkers: 4, // as the laptop server: confirmations in the background
	})
	opts := api.Options{
		Logger:           logger,
		Now:              clk.Now,
		SubscribeLimit:   rate.Inf,
		AuthFailureLimit: rate.Inf,
	}
	for _, o := range opt {
		o(&opts)
	}
	h, err := api.NewHandler(svc, opts)
	if err != nil {
		tb.Fatalf("NewHandler: %v", err)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	tb.Cleanup(func() { _ = svc.WaitForMail(context.Background()) })

	e := &env{
		t: tb, srv: srv, handler: h, svc: svc, store: store, signer: signer, queue: q,
		outbox: outDir, clock: clk, logs: logs,
		client: &http.Client{
			Timeout: 20 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	e.full = e.mustToken("full", nil)
	e.editOnly = e.mustToken("edit only", []string{newsletter.ScopeEdit})
	e.sendOnly = e.mustToken("send only", []string{newsletter.ScopeSend})
	return e
}

func (e *env) mustToken(name string, scopes []string) string {
	e.t.Helper()
	secret, _, err := e.svc.CreateEditorToken(context.Background(), name, scopes)
	if err != nil {
		e.t.Fatalf("create editor token: %v", err)
	}
	return secret
}

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) String() string { return string(r.Body) }

// JSON decodes the body into v.
func (r response) JSON(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %q: %v", r.Body, err)
	}
}

// ErrorCode returns the code of a JSON error body, or "".
func (r response) ErrorCode() string {
	var b struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(r.Body, &b)
	return b.Error.Code
}

// req describes a request to send.
type req struct {
	Method string
	Path   string
	Body   string
	Type   string // Content-Type
	Auth   string // bearer secret
	Accept string
	Header map[string]string
}

// Do sends rq and reads the whole answer.
func (e *env) Do(rq req) response {
	e.t.Helper()
	var body io.Reader
	if rq.Body != "" {
		body = strings.NewReader(rq.Body)
	}
	hr, err := http.NewRequest(rq.Method, e.srv.URL+rq.Path, body)
	if err != nil {
		e.t.Fatalf("new request %s %s: %v", rq.Method, rq.Path, err)
	}
	if rq.Type != "" {
		hr.Header.Set("Content-Type", rq.Type)
	}
	if rq.Auth != "" {
		hr.Header.Set("Authorization", "Bearer "+rq.Auth)
	}
	if rq.Accept != "" {
		hr.Header.Set("Accept", rq.Accept)
	}
	for k, v := range rq.Header {
		hr.Header.Set(k, v)
	}
	return e.send(hr)
}

func (e *env) send(hr *http.Request) response {
	e.t.Helper()
	res, err := e.client.Do(hr)
	if err != nil {
		e.t.Fatalf("%s %s: %v", hr.Method, hr.URL.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("read answer to %s %s: %v", hr.Method, hr.URL.Path, err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// Get is a GET as a browser sends it.
func (e *env) Get(path string) response {
	e.t.Helper()
	return e.Do(req{Method: "GET", Path: path, Accept: "text/html"})
}

// API sends JSON to the editors' API with the full-scope token.
func (e *env) API(method, path, body string) response {
	e.t.Helper()
	rq := req{Method: method, Path: path, Auth: e.full, Body: body}
	if body != "" {
		rq.Type = "application/json"
	}
	return e.Do(rq)
}

// Form posts an URL-encoded form as a browser does.
func (e *env) Form(path, body string) response {
	e.t.Helper()
	return e.Do(req{Method: "POST", Path: path, Body: body, Type: "application/x-www-form-urlencoded", Accept: "text/html"})
}

// want fails unless the status is one of codes.
func want(tb testing.TB, r response, codes ...int) {
	tb.Helper()
	if !slices.Contains(codes, r.Status) {
		tb.Fatalf("got status %d, want %v; body: %.400s", r.Status, codes, r.Body)
	}
}

// wantError fails unless r is a JSON error with the status and code.
func wantError(tb testing.TB, r response, status int, code string) {
	tb.Helper()
	want(tb, r, status)
	if got := r.ErrorCode(); got != code {
		tb.Fatalf("got error code %q, want %q; body: %s", got, code, r.Body)
	}
}

// snapshot is everything a request could change: subscribers (the CSV
// export), articles, digests, and the mails written.
func (e *env) snapshot() string {
	e.t.Helper()
	if err := e.queue.WaitIdle(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	for _, path := range []string{"/api/subscribers/export", "/api/articles?limit=1000", "/api/digests?limit=1000"} {
		r := e.API("GET", path, "")
		want(e.t, r, http.StatusOK)
		b.Write(r.Body)
		b.WriteString("\n---\n")
	}
	b.WriteString(strings.Join(e.mails(), "\n"))
	return b.String()
}

// unchanged fails if the store or the outbox differ from before.
func (e *env) unchanged(before string, what string) {
	e.t.Helper()
	if after := e.snapshot(); after != before {
		e.t.Fatalf("%s changed the store:\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
}

// mails lists the outbox's files, oldest first, once the emails being
// sent in the background have gone.
func (e *env) mails() []string {
	e.t.Helper()
	if err := e.svc.WaitForMail(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	entries, err := os.ReadDir(e.outbox)
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		if strings.HasSuffix(en.Name(), ".eml") {
			names = append(names, en.Name())
		}
	}
	slices.Sort(names)
	return names
}

// mailsTo returns the decoded text of every mail to addr, oldest first.
func (e *env) mailsTo(addr string) []string {
	e.t.Helper()
	var out []string
	for _, name := range e.mails() {
		b, err := os.ReadFile(filepath.Join(e.outbox, name))
		if err != nil {
			e.t.Fatal(err)
		}
		s := unQP(string(b))
		if strings.Contains(strings.ToLower(s), "to: "+strings.ToLower(addr)) || strings.Contains(strings.ToLower(s), "<"+strings.ToLower(addr)+">") {
			out = append(out, s)
		}
	}
	return out
}

// unQP undoes enough quoted-printable for links to be read: soft line
// breaks and the escaped equals sign.
func unQP(s string) string {
	s = strings.ReplaceAll(s, "=\r\n", "")
	s = strings.ReplaceAll(s, "=\n", "")
	return strings.ReplaceAll(s, "=3D", "=")
}

var linkToken = regexp.MustCompile(`/(confirm|unsubscribe|preferences)\?token=([A-Za-z0-9_-]+)`)

// tokenFor returns the token of a link to page in any mail to email (the
// outbox names files by the test clock, so their order is not reliable).
func (e *env) tokenFor(email, page string) string {
	e.t.Helper()
	for _, m := range e.mailsTo(email) {
		if strings.Contains(m, "/"+page+"?token=") {
			return tokenIn(e.t, m, page)
		}
	}
	e.t.Fatalf("no mail to %s with a /%s link", email, page)
	return ""
}

// tokenIn returns the token of the first link to page in mail.
func tokenIn(tb testing.TB, mail, page string) string {
	tb.Helper()
	for _, m := range linkToken.FindAllStringSubmatch(mail, -1) {
		if m[1] == page {
			return m[2]
		}
	}
	tb.Fatalf("no /%s link in mail:\n%.2000s", page, mail)
	return ""
}

// subscriber returns the stored reader with the address.
func (e *env) subscriber(email string) *newsletter.Subscriber {
	e.t.Helper()
	s, err := e.store.SubscriberByEmail(context.Background(), email)
	if err != nil {
		e.t.Fatalf("subscriber %s: %v", email, err)
	}
	return s
}

// mustSubscribe signs email up through the JSON API.
func (e *env) mustSubscribe(email string) {
	e.t.Helper()
	r := e.Do(req{Method: "POST", Path: "/subscribe", Type: "application/json", Body: `{"email":"` + email + `"}`})
	want(e.t, r, http.StatusAccepted)
}

// mustConfirmed signs email up and confirms it through the HTTP handler,
// and returns the reader.
func (e *env) mustConfirmed(email string) *newsletter.Subscriber {
	e.t.Helper()
	e.mustSubscribe(email)
	tok := e.tokenFor(email, "confirm")
	want(e.t, e.Form("/confirm", "token="+tok), http.StatusOK)
	s := e.subscriber(email)
	if s.Status != newsletter.StatusConfirmed {
		e.t.Fatalf("got status %s, want confirmed", s.Status)
	}
	return s
}

// sign makes a reader token for purpose p that expires after ttl.
func (e *env) sign(p token.Purpose, subscriberID string, ttl time.Duration) string {
	return e.signer.Sign(p, subscriberID, e.clock.Now().Add(ttl))
}

// mustArticle submits an article and returns its ID.
func (e *env) mustArticle(url, title string, sections ...string) string {
	e.t.Helper()
	secs, _ := json.Marshal(sections)
	body := `{"url":"` + url + `","title":"` + title + `","summary":"A summary of ` + title + `.","sections":` + string(secs) +
		`,"publishedAt":"` + e.clock.Now().Add(-time.Hour).Format(time.RFC3339) + `"}`
	r := e.API("POST", "/api/articles", body)
	want(e.t, r, http.StatusCreated, http.StatusOK)
	var a newsletter.Article
	r.JSON(e.t, &a)
	return a.ID
}

// noServerErrors fails if the log holds a panic or an internal error.
func (e *env) noServerErrors() {
	e.t.Helper()
	logs := e.logs.String()
	for _, bad := range []string{"http handler panic", "internal error"} {
		if strings.Contains(logs, bad) {
			e.t.Fatalf("log holds %q:\n%s", bad, logs)
		}
	}
}
