package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/broadsheet-news/broadsheet/internal/api"
	"github.com/broadsheet-news/broadsheet/internal/memqueue"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// runInputs sends generated malformed requests to the real HTTP handler
// (api.NewHandler on bbolt, the outbox, the in-process queue and the
// newsroom) through a loopback server: malformed and oversized JSON, forms
// and CSV imports; bad, expired, tampered and misused tokens; CR, LF and
// NUL in fields, headers and request lines; unknown IDs; methods a route
// does not take; bad bearer tokens. Every request is built to be refused,
// so none may change anything: after each one the subscriber export, the
// article and digest lists and the outbox are compared with before. No
// answer may be a 5xx, and nothing may panic.
//
// The sign-up and failed-login rate limits are off, as in the package's
// own tests, so that requests reach the parsers instead of a 429.
func runInputs(ctx context.Context, env *runEnv, r *result) error {
	r.set("scenario", "inputs")
	n := env.pick(3000, 1000)
	rng := env.rng("inputs")

	lp, err := openLaptop(env, "inputs")
	if err != nil {
		return err
	}
	defer lp.close()
	store, box, p := lp.store, lp.box, lp.parts
	logs := &logWatch{}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(logs, logWriter(env)), &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := engineConfig(env)
	cfg.Logger = logger
	_, mq, svc := lp.start(ctx, env, laptopRun{config: &cfg, queue: &memqueue.Options{Workers: 2, RetryDelay: 20 * time.Millisecond, Logger: logger}})
	h, err := api.NewHandler(svc, api.Options{Logger: logger, SubscribeLimit: rate.Inf, AuthFailureLimit: rate.Inf})
	if err != nil {
		return err
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(logs, "", 0)
	srv.Start()
	defer srv.Close()

	// What the requests aim at: a reader, an article, a draft digest and
	// editor tokens of every scope.
	ids, err := seedAll(ctx, store, svc, 3, 1)
	if err != nil {
		return err
	}
	st, _, err := svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "daily"})
	if err != nil {
		return err
	}
	as, _, err := svc.Articles(ctx, newsletter.Page{})
	if err != nil || len(as) == 0 {
		return fmt.Errorf("articles: %v", err)
	}
	full, _, err := svc.CreateEditorToken(ctx, "full", nil)
	if err != nil {
		return err
	}
	editOnly, _, err := svc.CreateEditorToken(ctx, "edit", []string{newsletter.ScopeEdit})
	if err != nil {
		return err
	}
	sendOnly, _, err := svc.CreateEditorToken(ctx, "send", []string{newsletter.ScopeSend})
	if err != nil {
		return err
	}
	g := &inputGen{
		rng: rng, digestID: st.ID, articleID: as[0].ID, reader: ids[0], readerEmail: readerEmail(0),
		full: full, editOnly: editOnly, sendOnly: sendOnly,
		sign: func(pp token.Purpose, id string, ttl time.Duration) string {
			return p.Signer.Sign(pp, id, time.Now().Add(ttl))
		},
	}
	c := &inputClient{srv: srv, http: &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	snap := func() (string, error) {
		ictx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := mq.WaitIdle(ictx); err != nil {
			return "", err
		}
		var b strings.Builder
		for _, path := range []string{"/api/subscribers/export", "/api/articles?limit=1000", "/api/digests?limit=1000"} {
			res, err := c.do(genReq{method: "GET", path: path, auth: "Bearer " + full})
			if err != nil || res.status != http.StatusOK {
				return "", fmt.Errorf("snapshot %s: %d %v", path, res.status, err)
			}
			b.Write(res.body)
		}
		entries, err := os.ReadDir(box.Dir())
		if err != nil {
			return "", err
		}
		for _, e := range entries {
			b.WriteString(e.Name() + "\n")
		}
		return b.String(), nil
	}

	before, err := snap()
	if err != nil {
		return err
	}
	statuses := map[int]int{}
	kinds := map[string]int{}
	fiveXX, changes, failedReqs := 0, 0, 0
	for i := range n {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rq := g.next()
		kinds[rq.kind]++
		res, err := c.do(rq)
		if err != nil {
			// The server hung up on a request it could not parse: fine,
			// as long as nothing changed and it did not panic.
			failedReqs++
		} else {
			statuses[res.status]++
			if res.status >= 500 {
				fiveXX++
				fmt.Fprintf(env.stderr, "chaos: inputs: request %d (%s) %s %.120q: %d %.200s\n", i, rq.kind, rq.method, rq.path, res.status, res.body)
			}
		}
		after, err := snap()
		if err != nil {
			return err
		}
		if after != before {
			changes++
			fmt.Fprintf(env.stderr, "chaos: inputs: request %d (%s) %s %.120q %.200q changed the store\n", i, rq.kind, rq.method, rq.path, rq.body)
			before = after
		}
	}
	panics := logs.count("http handler panic") + logs.count("panic serving")
	r.set("requests", n)
	r.set("kinds", len(kinds))
	r.set("status_4xx", sumStatus(statuses, 400, 499))
	r.set("dropped", failedReqs)
	r.zero("status_5xx", fiveXX)
	r.zero("panics", panics)
	r.zero("changes", changes)
	r.zero("internal_errors", logs.count("internal error"))
	return nil
}

func sumStatus(m map[int]int, lo, hi int) int {
	n := 0
	for s, k := range m {
		if s >= lo && s <= hi {
			n += k
		}
	}
	return n
}

// logWriter is where the application's logs go: stderr with -v.
func logWriter(env *runEnv) io.Writer {
	if env.cfg.Verbose {
		return env.stderr
	}
	return io.Discard
}

// logWatch counts log lines by what they say.
type logWatch struct {
	mu    sync.Mutex
	lines []string
}

func (l *logWatch) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) < 100000 {
		l.lines = append(l.lines, string(p))
	}
	return len(p), nil
}

func (l *logWatch) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// genReq is one generated request. raw, when set, is written to the
// connection as it is (for what net/http's client refuses to send).
type genReq struct {
	kind   string
	method string
	path   string
	body   string
	ctype  string
	auth   string // the whole Authorization value
	accept string
	raw    string
}

type inputResp struct {
	status int
	body   []byte
}

type inputClient struct {
	srv  *httptest.Server
	http *http.Client
}

func (c *inputClient) do(rq genReq) (inputResp, error) {
	if rq.raw != "" {
		return c.raw(rq.raw)
	}
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	hr, err := http.NewRequest(rq.method, c.srv.URL+rq.path, body)
	if err != nil {
		return inputResp{}, err
	}
	if rq.ctype != "" {
		hr.Header.Set("Content-Type", rq.ctype)
	}
	if rq.auth != "" {
		hr.Header.Set("Authorization", rq.auth)
	}
	if rq.accept != "" {
		hr.Header.Set("Accept", rq.accept)
	}
	res, err := c.http.Do(hr)
	if err != nil {
		return inputResp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return inputResp{status: res.StatusCode, body: b}, err
}

// raw writes a request as bytes and reads the answer's status.
func (c *inputClient) raw(s string) (inputResp, error) {
	conn, err := net.DialTimeout("tcp", c.srv.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		return inputResp{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, s); err != nil {
		return inputResp{}, err
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return inputResp{}, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return inputResp{status: res.StatusCode, body: b}, nil
}

// inputGen makes requests that must all be refused.
type inputGen struct {
	rng                      *rand.Rand
	digestID, articleID      string
	reader, readerEmail      string
	full, editOnly, sendOnly string
	sign                     func(token.Purpose, string, time.Duration) string
	newEmails                int
}

func (g *inputGen) pick(xs ...string) string { return xs[g.rng.IntN(len(xs))] }

// freshEmail is an address no reader has.
func (g *inputGen) freshEmail() string {
	g.newEmails++
	return fmt.Sprintf("new-%d-%d@example.org", g.newEmails, g.rng.IntN(1e6))
}

// junk returns a string of bytes that belong in no field: controls,
// CR/LF, NUL, invalid UTF-8, quotes and markup.
func (g *inputGen) junk() string {
	parts := []string{"\r\n", "\x00", "\r", "\n", "\xff\xfe", "\"", "<script>", "%0d%0a", "\t", "\u2028", "\\", "Bcc: x@evil.example", "{{", "'; --", "\x1b[0m"}
	var b strings.Builder
	for range 1 + g.rng.IntN(4) {
		b.WriteString(g.pick(parts...))
	}
	return b.String()
}

// badEmail is an address every parser must refuse.
func (g *inputGen) badEmail() string {
	e := g.freshEmail()
	at := strings.IndexByte(e, '@')
	switch g.rng.IntN(10) {
	case 0:
		return e + "\r\nBcc: victim@example.com"
	case 1:
		return e[:at] + "\x00" + e[at:]
	case 2:
		return strings.ReplaceAll(e, "@", "")
	case 3:
		return strings.Repeat("a", 250) + e
	case 4:
		return "Eve <" + e + ">"
	case 5:
		return e + "," + g.freshEmail()
	case 6:
		return e[:at] + "@localhost"
	case 7:
		return e[:at] + "@exa mple.org"
	case 8:
		return e + "\n"[:0] + "@@"
	default:
		return e[:at] + "@" + "-bad-.org"
	}
}

// badToken is a reader token that must not work for purpose p.
func (g *inputGen) badToken(p token.Purpose) string {
	good := g.sign(p, g.reader, time.Hour)
	mid := len(good) / 2
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	other := token.Confirm
	if p == token.Confirm {
		other = token.Unsubscribe
	}
	switch g.rng.IntN(10) {
	case 0:
		return flip(good, g.rng.IntN(len(good)-2)) // not the last characters, whose low bits may not count
	case 1:
		return g.sign(p, g.reader, -time.Hour) // expired
	case 2:
		return g.sign(other, g.reader, time.Hour) // another purpose
	case 3:
		return g.sign(p, "no-such-reader", time.Hour) // a reader that does not exist
	case 4:
		return good[:mid] + g.pick("\r\n", "\x00", "%00", " ", "\n") + good[mid:]
	case 5:
		return strings.Repeat(good, 20)
	case 6:
		return good[:mid]
	case 7:
		return ""
	case 8:
		return "../../etc/passwd"
	default:
		return g.junk()
	}
}

// badAuth is an Authorization value that must not let anyone edit.
func (g *inputGen) badAuth() string {
	switch g.rng.IntN(9) {
	case 0:
		return ""
	case 1:
		return "Bearer"
	case 2:
		return "Bearer bs_" + fmt.Sprintf("%x", g.rng.Uint64())
	case 3:
		return "Basic " + g.full
	case 4:
		return "Bearer " + g.full[:len(g.full)-1]
	case 5:
		return "Bearer " + strings.Repeat("x", 600)
	case 6:
		return "Bearer " + g.full + "x"
	case 7:
		return "Bearer b\xe9s" + g.full
	default:
		return "Bearer " + g.sendOnly // may send, may not edit
	}
}

var jsonTypes = []string{"application/json", "application/json; charset=utf-8", "application/merge-patch+json"}

// breakJSON returns a JSON object that decodeJSON must refuse, built from
// a valid one.
func (g *inputGen) breakJSON(s string) string {
	switch g.rng.IntN(8) {
	case 0:
		return s[:g.rng.IntN(len(s)-1)] // a proper prefix is never a whole object
	case 1:
		i := g.rng.IntN(len(s))
		return s[:i] + "\x00" + s[i:] // NUL is never valid JSON
	case 2:
		return s + g.pick("{}", "x", "[]", `"`, "\x00", "}")
	case 3:
		return strings.Replace(s, "{", `{"unknownField":1,`, 1)
	case 4:
		return strings.Replace(s, "{", `{"`+g.junk()+`":1,`, 1)
	case 5:
		return g.pick("[]", `""`, "0", "true", `[{}]`, "")
	case 6:
		return `{"x":"` + strings.Repeat("A", 70<<10) + `"}` // over the body limit
	default:
		return strings.Repeat("[", 10000) // deep nesting
	}
}

// next returns the next request.
func (g *inputGen) next() genReq {
	switch g.rng.IntN(11) {
	case 0:
		return g.badAuthRequest()
	case 1:
		return g.badJSONRequest()
	case 2:
		return g.badFieldRequest()
	case 3:
		return g.badSignup()
	case 4:
		return g.badTokenRequest()
	case 5:
		return g.badImport()
	case 6:
		return g.unknownID()
	case 7:
		return g.badMethod()
	case 8:
		return g.rawRequest()
	case 9:
		return g.badPreferences()
	default:
		return g.junkQuery()
	}
}

// editorRoutes are the editors' routes that change something, with a
// valid body.
func (g *inputGen) editorRoutes() []genReq {
	article := `{"url":"https://ledger.example.com/new-` + fmt.Sprint(g.rng.IntN(1e6)) + `","title":"T","summary":"S","sections":["news"]}`
	return []genReq{
		{method: "POST", path: "/api/articles", body: article, ctype: "application/json"},
		{method: "PATCH", path: "/api/articles/" + g.articleID, body: `{"title":"Changed"}`, ctype: "application/json"},
		{method: "DELETE", path: "/api/articles/" + g.articleID},
		{method: "POST", path: "/api/digests", body: `{"frequency":"weekly","send":true}`, ctype: "application/json"},
		{method: "POST", path: "/api/digests/" + g.digestID + "/send"},
		{method: "POST", path: "/api/digests/" + g.digestID + "/test", body: `{"to":"editor@example.com"}`, ctype: "application/json"},
		{method: "POST", path: "/api/subscribers/import", body: "email\n" + g.freshEmail() + "\n", ctype: "text/csv"},
		{method: "DELETE", path: "/api/subscribers/" + url.PathEscape(g.readerEmail)},
	}
}

func (g *inputGen) badAuthRequest() genReq {
	rs := g.editorRoutes()
	rq := rs[g.rng.IntN(len(rs))]
	rq.kind, rq.auth = "bad-bearer", g.badAuth()
	if rq.path == "/api/digests/"+g.digestID+"/send" && g.rng.IntN(2) == 0 {
		rq.kind, rq.auth = "no-send-scope", "Bearer "+g.editOnly
	}
	return rq
}

func (g *inputGen) badJSONRequest() genReq {
	rs := []genReq{
		{method: "POST", path: "/api/articles", body: `{"url":"https://ledger.example.com/x","title":"T","summary":"S","sections":["news"],"publishedAt":"2026-11-26T06:00:00Z"}`},
		{method: "PATCH", path: "/api/articles/" + g.articleID, body: `{"title":"New title","sections":["sport"]}`},
		{method: "POST", path: "/api/digests", body: `{"frequency":"weekly","intro":"Hi","send":true}`},
		{method: "POST", path: "/api/digests/" + g.digestID + "/test", body: `{"to":"editor@example.com"}`},
		{method: "POST", path: "/subscribe", body: `{"email":"` + g.freshEmail() + `","sections":["news"],"frequency":"daily"}`},
		{method: "POST", path: "/unsubscribe", body: `{"token":"` + g.sign(token.Unsubscribe, g.reader, time.Hour) + `"}`},
		{method: "POST", path: "/confirm", body: `{"token":"` + g.sign(token.Confirm, g.reader, time.Hour) + `"}`},
	}
	rq := rs[g.rng.IntN(len(rs))]
	rq.kind, rq.auth, rq.ctype = "malformed-json", "Bearer "+g.full, g.pick(jsonTypes...)
	rq.body = g.breakJSON(rq.body)
	if g.rng.IntN(6) == 0 && strings.HasPrefix(rq.path, "/api/") {
		// Valid JSON, but not said to be JSON.
		rq.kind, rq.body, rq.ctype = "wrong-content-type", `{"title":"x","frequency":"weekly"}`, g.pick("text/plain", "", "application/x-www-form-urlencoded", "application/json; charset=\"", ";;;")
	}
	return rq
}

// badFieldRequest sends well-formed JSON whose values the rules refuse.
func (g *inputGen) badFieldRequest() genReq {
	q := func(s string) string { b, _ := jsonString(s); return b }
	rq := genReq{kind: "bad-field", auth: "Bearer " + g.full, ctype: "application/json"}
	switch g.rng.IntN(7) {
	case 0:
		rq.method, rq.path = "POST", "/api/articles"
		rq.body = `{"url":"https://ledger.example.com/f` + fmt.Sprint(g.rng.IntN(1e6)) + `","title":` + q("Title"+g.pick("\r\nBcc: x@y.z", "\x00", "\n", "\u0085", "\x1b")+"end") + `,"summary":"S","sections":["news"]}`
	case 1:
		rq.method, rq.path = "POST", "/api/articles"
		rq.body = `{"url":` + q(g.pick("javascript:alert(1)", "ftp://ledger.example.com/a", "http://", "//ledger.example.com/a", "https://ledger.example.com/a\r\nb", "https://exa mple.com/", strings.Repeat("h", 9000))) + `,"title":"T","summary":"S","sections":["news"]}`
	case 2:
		rq.method, rq.path = "POST", "/api/articles"
		rq.body = `{"url":"https://ledger.example.com/g","title":"T","summary":"S","sections":` + g.pick(`"news"`, `[1]`, `[`+strings.Repeat(`"news",`, 30)+`"news"]`, `{}`) + `}`
	case 3:
		rq.method, rq.path = "POST", "/api/articles"
		rq.body = `{"url":"https://ledger.example.com/h","title":"T","summary":"S","sections":["news"],"publishedAt":` + q(g.pick("yesterday", "2026-13-45T00:00:00Z", "26/11/2026", "")) + `}`
	case 4:
		rq.method, rq.path = "POST", "/api/digests"
		rq.body = g.pick(`{"frequency":"hourly","send":true}`, `{"frequency":"weekly","intro":`+q(strings.Repeat("é", 2100))+`,"send":true}`, `{"frequency":`+q("dai\r\nly")+`,"send":true}`, `{"frequency":"weekly","send":"yes"}`)
	case 5:
		rq.method, rq.path = "POST", "/api/digests/"+g.digestID+"/test"
		rq.body = `{"to":` + q(g.badEmail()) + `}`
	default:
		rq.method, rq.path = "PATCH", "/api/articles/"+g.articleID
		rq.body = g.pick(`{"title":""}`, `{"title":`+q("a\r\nb")+`}`, `{"sections":"news"}`, `{"title":`+q(strings.Repeat("t", 1000))+`}`, `{"imageUrl":"javascript:x"}`, `{"publishedAt":"never"}`)
	}
	return rq
}

func jsonString(s string) (string, error) {
	var b bytes.Buffer
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

// badSignup is a sign-up that must create no reader and send no email.
func (g *inputGen) badSignup() genReq {
	rq := genReq{kind: "bad-signup", method: "POST", path: "/subscribe", accept: g.pick("", "text/html", "application/json")}
	form := url.Values{}
	switch g.rng.IntN(5) {
	case 0: // a bot fills in the honeypot
		rq.kind = "honeypot"
		form.Set("email", g.freshEmail())
		form.Set("website", g.pick("http://spam.example", "x", g.junk()))
	case 1:
		form.Set("email", g.badEmail())
	case 2:
		form.Set("email", g.freshEmail())
		form.Set("frequency", g.pick("hourly", "da\r\nily", "\x00", strings.Repeat("d", 300)))
	case 3:
		form.Set("email", g.freshEmail())
		form.Add("sections", g.pick("nope", "news\r\nX", "\x00", strings.Repeat("s", 300)))
	default:
		form.Set("email", g.freshEmail())
		form.Set("format", g.pick("pdf", "fu\nll", "\xff"))
	}
	rq.body, rq.ctype = form.Encode(), "application/x-www-form-urlencoded"
	switch g.rng.IntN(6) {
	case 0:
		rq.kind, rq.ctype = "multipart", "multipart/form-data; boundary=x"
		rq.body = "--x\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\n" + g.badEmail() + "\r\n--x--\r\n"
	case 1:
		rq.kind, rq.body = "oversized-form", "email="+url.QueryEscape(g.freshEmail())+"&pad="+strings.Repeat("p", 70<<10)
	case 2:
		rq.kind, rq.ctype = "form-no-type", g.pick("", "text/plain", "multipart/form-data", "multipart/form-data; boundary=")
	}
	return rq
}

// badTokenRequest posts a bad token to a reader action.
func (g *inputGen) badTokenRequest() genReq {
	var p token.Purpose
	rq := genReq{kind: "bad-token", method: "POST", accept: g.pick("", "text/html", "application/json")}
	switch g.rng.IntN(3) {
	case 0:
		p, rq.path = token.Confirm, "/confirm"
	case 1:
		p, rq.path = token.Unsubscribe, "/unsubscribe"
	default:
		p, rq.path = token.Preferences, "/preferences"
	}
	tok := g.badToken(p)
	switch g.rng.IntN(3) {
	case 0:
		rq.body, rq.ctype = "token="+url.QueryEscape(tok)+"&frequency=weekly", "application/x-www-form-urlencoded"
	case 1:
		s, _ := jsonString(tok)
		rq.body, rq.ctype = `{"token":`+s+`}`, "application/json"
	default:
		rq.path += "?token=" + url.QueryEscape(tok)
		rq.body, rq.ctype = "List-Unsubscribe=One-Click", "application/x-www-form-urlencoded"
	}
	if p == token.Preferences && rq.ctype == "application/json" {
		rq.body = strings.Replace(rq.body, "{", `{"frequency":"weekly",`, 1)
	}
	if g.rng.IntN(4) == 0 {
		rq.method, rq.kind = "GET", "bad-token-page" // GET never changes anything
		rq.body, rq.ctype = "", ""
		if !strings.Contains(rq.path, "?") {
			rq.path += "?token=" + url.QueryEscape(tok)
		}
	}
	return rq
}

// badPreferences carries a valid preferences token with choices the rules
// refuse.
func (g *inputGen) badPreferences() genReq {
	tok := g.sign(token.Preferences, g.reader, time.Hour)
	form := url.Values{"token": {tok}}
	switch g.rng.IntN(3) {
	case 0:
		form.Set("frequency", g.pick("hourly", "week\r\nly", "\x00"))
	case 1:
		form.Add("sections", g.pick("nope", "news\r\nBcc: x", "\x00"))
		form.Set("frequency", "weekly")
	default:
		form.Set("format", g.pick("pdf", "\xff", "li\nte"))
		form.Set("frequency", "weekly")
	}
	return genReq{kind: "bad-preferences", method: "POST", path: "/preferences", body: form.Encode(), ctype: "application/x-www-form-urlencoded"}
}

// badImport is a CSV import that must import nothing: one bad line fails
// the whole file.
func (g *inputGen) badImport() genReq {
	good := func() string { return g.freshEmail() + ",daily,full\n" }
	head := "email,frequency,format\n"
	var bad string
	switch g.rng.IntN(10) {
	case 0:
		bad = `"` + g.freshEmail() + "\r\nBcc: x@y.z\",daily,full\n"
	case 1:
		bad = g.freshEmail()[:3] + "\x00" + "@example.org,daily,full\n"
	case 2:
		bad = g.freshEmail() + ",hourly,full\n"
	case 3:
		bad = `"unterminated,daily,full` + "\n"
	case 4:
		bad = `a"b@example.org,daily,full` + "\n"
	case 5:
		head = "email,frequency,format,favourite_colour\n"
		bad = good()
	case 6:
		head = "name\n"
		bad = "Ada\n"
	case 7:
		e := g.freshEmail()
		bad = e + ",daily,full\n" + strings.ToUpper(e) + ",daily,full\n"
	case 8:
		head = "email,status\n"
		bad = g.freshEmail() + ",deleted\n"
	default:
		head = "email,created_at\n"
		bad = g.freshEmail() + ",yesterday\n"
	}
	var b strings.Builder
	b.WriteString(head)
	lines := g.rng.IntN(5)
	at := g.rng.IntN(lines + 1)
	for i := 0; i <= lines; i++ {
		if i == at {
			b.WriteString(bad)
		} else if !strings.HasPrefix(head, "name") {
			b.WriteString(good())
		}
	}
	rq := genReq{kind: "bad-csv", method: "POST", path: "/api/subscribers/import", auth: "Bearer " + g.full, body: b.String(), ctype: g.pick("text/csv", "application/csv")}
	switch g.rng.IntN(8) {
	case 0:
		rq.kind, rq.ctype = "csv-multipart", "multipart/form-data; boundary=b"
		rq.body = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"r.csv\"\r\n\r\n" + b.String() + "\r\n--b--\r\n"
	case 1:
		rq.kind, rq.ctype = "csv-multipart-no-file", "multipart/form-data; boundary=b"
		rq.body = "--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nemail\n" + g.freshEmail() + "\r\n--b--\r\n"
	case 2:
		rq.kind, rq.ctype = "csv-wrong-type", g.pick("application/json", "text/plain", "")
		rq.body = "email\n" + g.freshEmail() + "\n"
	case 3:
		rq.kind, rq.body = "csv-empty", ""
	}
	if g.rng.IntN(300) == 0 {
		rq.kind, rq.body = "csv-oversized", "email\n"+strings.Repeat(g.freshEmail()+"\n", (11<<20)/30)
	}
	return rq
}

// unknownID names records that do not exist, or IDs no record could have.
func (g *inputGen) unknownID() genReq {
	id := g.pick(fmt.Sprintf("%032x", g.rng.Uint64()), "..%2f..%2fetc", "%00", "%0d%0a", strings.Repeat("z", 3000), "daily-2020-01-01", "weekly-2020-W99", "%ff%fe")
	digest := g.pick("daily-2020-01-01", "weekly-2019-W01", "hourly-2026-11-26", "daily-2026-02-30", "%0d%0a", "daily-2026-11-26%00")
	rs := []genReq{
		{method: "GET", path: "/api/articles/" + id},
		{method: "PATCH", path: "/api/articles/" + id, body: `{"title":"x"}`, ctype: "application/json"},
		{method: "DELETE", path: "/api/articles/" + id},
		{method: "GET", path: "/api/digests/" + digest},
		{method: "POST", path: "/api/digests/" + digest + "/send"},
		{method: "POST", path: "/api/digests/" + digest + "/test", body: `{"to":"editor@example.com"}`, ctype: "application/json"},
		{method: "GET", path: "/api/digests/" + digest + "/preview"},
		{method: "DELETE", path: "/api/subscribers/" + url.PathEscape(g.freshEmail())},
		{method: "DELETE", path: "/api/subscribers/" + g.pick("%0d%0a", "%00", "not-an-address", "a%40b")},
		{method: "GET", path: "/archive/" + digest},
		{method: "GET", path: "/archive/" + g.digestID}, // a draft is not in the archive
	}
	rq := rs[g.rng.IntN(len(rs))]
	rq.kind, rq.auth = "unknown-id", "Bearer "+g.full
	return rq
}

// routes and the methods each takes; badMethod uses any other.
var routeMethods = map[string][]string{
	"/":                       {"GET", "HEAD"},
	"/subscribe":              {"POST"},
	"/confirm":                {"GET", "HEAD", "POST"},
	"/unsubscribe":            {"GET", "HEAD", "POST"},
	"/preferences":            {"GET", "HEAD", "POST"},
	"/archive":                {"GET", "HEAD"},
	"/healthz":                {"GET", "HEAD"},
	"/api/articles":           {"GET", "HEAD", "POST"},
	"/api/articles/ID":        {"GET", "HEAD", "PATCH", "DELETE"},
	"/api/digests":            {"GET", "HEAD", "POST"},
	"/api/digests/D":          {"GET", "HEAD"},
	"/api/digests/D/send":     {"POST"},
	"/api/digests/D/test":     {"POST"},
	"/api/digests/D/preview":  {"GET", "HEAD"},
	"/api/subscribers":        {"GET", "HEAD"},
	"/api/subscribers/export": {"GET", "HEAD"},
	"/api/subscribers/import": {"POST"},
	"/api/subscribers/E":      {"DELETE"},
}

func (g *inputGen) badMethod() genReq {
	var paths []string
	for p := range routeMethods {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	p := paths[g.rng.IntN(len(paths))]
	var m string
	for {
		m = g.pick("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "FOO")
		if !slices.Contains(routeMethods[p], m) {
			break
		}
	}
	p = strings.NewReplacer("ID", g.articleID, "/D", "/"+g.digestID, "/E", "/"+url.PathEscape(g.readerEmail)).Replace(p)
	return genReq{kind: "bad-method", method: m, path: p, auth: "Bearer " + g.full, body: `{"frequency":"weekly","send":true}`, ctype: "application/json"}
}

// rawRequest writes bytes net/http's client would refuse to: CR/LF and
// NUL in the request line and headers, broken framing, huge headers.
func (g *inputGen) rawRequest() genReq {
	host := "Host: 127.0.0.1\r\n"
	tok := g.sign(token.Unsubscribe, g.reader, time.Hour)
	digest := `{"frequency":"weekly","send":true}`
	length := func(body string) string { return fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body }
	var s string
	switch g.rng.IntN(10) {
	case 0: // CR/LF in the request line
		s = "POST /unsubscribe?token=" + tok[:10] + "\r\nX: " + tok[10:] + " HTTP/1.1\r\n" + host + length("")
	case 1: // NUL in the request line
		s = "GET /api/articles\x00 HTTP/1.1\r\n" + host + "\r\n"
	case 2: // a folded header line
		s = "POST /api/digests HTTP/1.1\r\n" + host + "Authorization: Bearer " + g.full[:5] + "\r\n\t" + g.full[5:] + "\r\nContent-Type: application/json\r\n" + length(digest)
	case 3: // NUL in a header value
		s = "POST /api/digests HTTP/1.1\r\n" + host + "Authorization: Bearer " + g.full + "\x00\r\nContent-Type: application/json\r\n" + length(digest)
	case 4: // two lengths
		s = "POST /subscribe HTTP/1.1\r\n" + host + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nemail"
	case 5: // a chunk size that is not hex
		s = "POST /subscribe HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nzz\r\nemail=x\r\n0\r\n\r\n"
	case 6: // headers over the server's limit
		s = "GET / HTTP/1.1\r\n" + host + "X-Big: " + strings.Repeat("b", 1<<20+100) + "\r\n\r\n"
	case 7: // no protocol
		s = "GET /\r\n\r\n"
	case 8: // raw CR/LF inside a JSON string
		s = "POST /subscribe HTTP/1.1\r\n" + host + "Content-Type: application/json\r\n" + length("{\"email\":\"a\r\nBcc: b@example.org\"}")
	default: // a broken escape
		s = "POST /unsubscribe HTTP/1.1\r\n" + host + "Content-Type: application/x-www-form-urlencoded\r\n" + length("token=%ZZ%")
	}
	s = strings.Replace(s, host, host+"Connection: close\r\n", 1)
	return genReq{kind: "raw", method: "RAW", path: strings.SplitN(s, "\r\n", 2)[0], raw: s}
}

// junkQuery sends GETs (which never change anything) with junk queries.
func (g *inputGen) junkQuery() genReq {
	paths := []string{"/", "/confirm", "/unsubscribe", "/preferences", "/archive", "/api/articles", "/api/digests", "/api/subscribers",
		"/api/subscribers/export", "/api/digests/" + g.digestID + "/preview", "/archive/" + g.digestID}
	qs := []string{"?cursor=" + strings.Repeat("z", 2000), "?cursor=%ff%fe&limit=5", "?limit=99999999999999999999", "?limit=-5",
		"?format=text&sections=,,,", "?sections=" + strings.Repeat("a,", 500), "?status=%0a&frequency=weekly", "?%zz",
		"?format=lite&sections=news", "?token=%00%0d%0a", "?status=bogus", "?frequency=hourly", "?limit=0", "?cursor=..%2F"}
	return genReq{kind: "junk-query", method: "GET", path: g.pick(paths...) + g.pick(qs...), auth: g.pick("Bearer "+g.full, "", g.badAuth()), accept: g.pick("", "text/html", "application/json")}
}
