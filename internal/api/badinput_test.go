package api_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/api"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// badInputRequests is how many malformed requests TestGeneratedBadInput
// sends.
const badInputRequests = 1200

// TestGeneratedBadInput is the malformed-input suite: it sends 1,200
// generated requests, from a fixed seed so that a failure repeats, to every
// route, each carrying at least one defect that must make it change
// nothing — a missing, forged or under-scoped editor token; a reader token
// forged, expired, for another page or for nobody; a body that is not
// JSON, holds an unknown field or a wrong type, is too large or has the
// wrong content type; an invalid address, choice, URL or title; a CSV file
// with a bad row; an unknown ID; a wrong method or path; the honeypot
// filled in — with random noise on top. Requests that only read (GET)
// carry junk queries and headers. It checks that no answer is a 5xx, that
// no error code is internal, that nothing panics or logs an internal error,
// and that the subscribers (the CSV export), articles, digests and outbox
// are exactly as before.
func TestGeneratedBadInput(t *testing.T) {
	e := MustEnv(t)
	confirmed := e.mustConfirmed("reader@example.com")
	e.mustSubscribe("pending@example.com")
	pending := e.subscriber("pending@example.com")
	articleID := e.mustArticle("https://ledger.example.com/a", "A story", "news")
	var d struct{ ID string }
	r := e.API("POST", "/api/digests", `{"frequency":"daily"}`)
	want(t, r, http.StatusCreated)
	r.JSON(t, &d)
	g := &badInputs{e: e, rng: rand.New(rand.NewPCG(1, 2)), digestID: d.ID, articleID: articleID, confirmed: confirmed, pending: pending}

	before := e.snapshot()
	statuses := map[int]int{}
	hits := map[string]int{}
	var fivexx int
	for i := range badInputRequests {
		rt := g.routes()[g.rng.IntN(len(g.routes()))]
		rq := rt.gen()
		g.noise(&rq)
		hits[rt.name]++
		res := e.Do(rq)
		statuses[res.Status]++
		if res.Status >= 500 {
			fivexx++
			t.Errorf("request %d (%s): %s %s (%s) %.200q: got %d %.300s", i, rt.name, rq.Method, rq.Path, rq.Type, rq.Body, res.Status, res.Body)
		}
		if res.Status < 300 && !rt.mayAccept {
			t.Errorf("request %d (%s): %s %s %.200q: got %d, want a refusal", i, rt.name, rq.Method, rq.Path, rq.Body, res.Status)
		}
		if code := res.ErrorCode(); code == newsletter.EINTERNAL {
			t.Errorf("request %d (%s): internal error code: %s", i, rt.name, res.Body)
		}
		if i%200 == 199 {
			// Check as we go, to name the window a change happened in.
			e.unchanged(before, fmt.Sprintf("requests %d to %d", i-199, i))
		}
	}
	changes := 0
	if after := e.snapshot(); after != before {
		changes = 1
	}
	panics := strings.Count(e.logs.String(), "http handler panic")
	for _, rt := range g.routes() {
		if hits[rt.name] == 0 {
			t.Errorf("route %s got no request", rt.name)
		}
	}
	t.Logf("FAULTS scenario=inputs requests=%d status_5xx=%d panics=%d changes=%d routes=%d statuses=%v", badInputRequests, fivexx, panics, changes, len(hits), statuses)
	e.unchanged(before, "the malformed requests")
	e.noServerErrors()
}

// badInputs generates malformed requests against the fixture's data.
type badInputs struct {
	e         *env
	rng       *rand.Rand
	digestID  string
	articleID string
	confirmed *newsletter.Subscriber
	pending   *newsletter.Subscriber
	n         int // a counter to make fresh addresses
	all       []badRoute
}

// badRoute is one route and a generator of malformed requests to it.
// mayAccept marks routes where a 2xx is a fine answer to the defect: the
// pages that only read, and the honeypot.
type badRoute struct {
	name      string
	mayAccept bool
	gen       func() req
}

func (g *badInputs) pick(xs ...string) string { return xs[g.rng.IntN(len(xs))] }

func (g *badInputs) routes() []badRoute {
	if g.all != nil {
		return g.all
	}
	e := g.e
	digest := "/api/digests/" + g.digestID
	article := "/api/articles/" + g.articleID
	get := func(name, path string) badRoute {
		return badRoute{name: name, mayAccept: true, gen: func() req {
			return req{Method: "GET", Path: path + g.junkQuery(), Accept: g.pick("", "text/html", "application/json", "*/*"), Auth: e.full}
		}}
	}
	g.all = []badRoute{
		get("GET /", "/"),
		get("GET /archive", "/archive"),
		get("GET /healthz", "/healthz"),
		get("GET /api/articles", "/api/articles"),
		get("GET /api/articles/{id}", article),
		get("GET /api/digests", "/api/digests"),
		get("GET /api/digests/{id}", digest),
		get("GET /api/digests/{id}/preview", digest+"/preview"),
		get("GET /api/subscribers", "/api/subscribers"),
		get("GET /api/subscribers/export", "/api/subscribers/export"),
		{name: "GET /archive/{id}", gen: func() req {
			return req{Method: "GET", Path: "/archive/" + url.PathEscape(g.junkID()) + g.junkQuery()}
		}},
		{name: "GET /confirm", mayAccept: true, gen: func() req {
			return req{Method: "GET", Path: "/confirm?token=" + url.QueryEscape(g.anyToken(token.Confirm)), Accept: "text/html"}
		}},
		{name: "GET /unsubscribe", mayAccept: true, gen: func() req {
			return req{Method: "GET", Path: "/unsubscribe?token=" + url.QueryEscape(g.anyToken(token.Unsubscribe)), Accept: "text/html"}
		}},
		{name: "GET /preferences", mayAccept: true, gen: func() req {
			return req{Method: "GET", Path: "/preferences?token=" + url.QueryEscape(g.anyToken(token.Preferences)), Accept: "text/html"}
		}},
		{name: "POST /subscribe", mayAccept: true, gen: g.subscribe},
		{name: "POST /confirm", gen: func() req { return g.tokenPost("/confirm", token.Confirm) }},
		{name: "POST /unsubscribe", gen: func() req { return g.tokenPost("/unsubscribe", token.Unsubscribe) }},
		{name: "POST /preferences", gen: g.preferences},
		{name: "POST /api/articles", gen: func() req {
			return g.editorJSON("POST", "/api/articles", g.badArticle())
		}},
		{name: "PATCH /api/articles/{id}", gen: func() req {
			if g.rng.IntN(4) == 0 {
				return g.editorJSON("PATCH", "/api/articles/"+url.PathEscape(g.junkID()), `{"title":"New title"}`)
			}
			return g.editorJSON("PATCH", article, g.badPatch())
		}},
		{name: "DELETE /api/articles/{id}", gen: func() req {
			if g.rng.IntN(3) == 0 {
				return req{Method: "DELETE", Path: article, Auth: g.badAuth()}
			}
			return req{Method: "DELETE", Path: "/api/articles/" + url.PathEscape(g.junkID()), Auth: e.full}
		}},
		{name: "POST /api/digests", gen: func() req {
			if g.rng.IntN(4) == 0 {
				return req{Method: "POST", Path: "/api/digests", Type: "application/json", Auth: e.editOnly, Body: `{"frequency":"weekly","send":true}`}
			}
			return g.editorJSON("POST", "/api/digests", g.badJSON(
				`{"frequency":"`+g.pick("hourly", "DAILY!", "", "monthly", "\u0000")+`"}`,
				`{"frequency":"daily","intro":"Hi","send":false}`,
				`{"frequency":"weekly","intro":`+g.pick("1", "[]", "{}", "true")+`}`,
			))
		}},
		{name: "POST /api/digests/{id}/test", gen: func() req {
			switch g.rng.IntN(3) {
			case 0:
				return g.editorJSON("POST", "/api/digests/"+url.PathEscape(g.junkID())+"/test", `{"to":"editor@example.com"}`)
			case 1:
				return g.editorJSON("POST", digest+"/test", `{"to":`+jsonString(g.badEmail())+`}`)
			}
			return g.editorJSON("POST", digest+"/test", g.badJSON(`{"to":"editor@example.com"}`))
		}},
		{name: "POST /api/digests/{id}/send", gen: func() req {
			switch g.rng.IntN(3) {
			case 0:
				return req{Method: "POST", Path: digest + "/send", Auth: e.editOnly, Body: g.pick("", "{}", "x")}
			case 1:
				return req{Method: "POST", Path: "/api/digests/" + url.PathEscape(g.junkID()) + "/send", Auth: e.full}
			}
			return req{Method: "POST", Path: digest + "/send", Auth: g.badAuth()}
		}},
		{name: "POST /api/subscribers/import", gen: g.badImport},
		{name: "DELETE /api/subscribers/{email}", gen: func() req {
			if g.rng.IntN(3) == 0 {
				return req{Method: "DELETE", Path: "/api/subscribers/reader@example.com", Auth: g.badAuth()}
			}
			addr := g.badEmail()
			if g.rng.IntN(2) == 0 {
				g.n++
				addr = fmt.Sprintf("nobody-%d@example.com", g.n) // valid, but not on the list
			}
			return req{Method: "DELETE", Path: "/api/subscribers/" + url.PathEscape(addr), Auth: e.full}
		}},
		{name: "wrong method", gen: func() req {
			for {
				rq := req{Method: g.pick("PUT", "PATCH", "DELETE", "POST"), Path: g.pick("/", "/subscribe", "/confirm", "/archive", "/healthz", "/api/articles", "/api/digests", digest, digest+"/send", "/api/subscribers/export"), Auth: e.full, Body: g.pick("", "{}", "email=a%40example.com")}
				if !g.routeExists(rq.Method, rq.Path) {
					return rq
				}
			}
		}},
		{name: "no such path", gen: func() req {
			return req{Method: g.pick("GET", "POST", "DELETE"), Path: g.pick("/nope", "/api", "/api/", "/api/digests/"+g.digestID+"/sendx", "/api/articles/"+g.articleID+"/x", "/archive/x/y", "/%2e%2e/etc/passwd", "/api//articles", "/subscribe/", "/.env"), Auth: e.full}
		}},
		{name: "editor without a valid token", gen: func() req {
			rq := g.routes()[g.rng.IntN(len(g.routes()))].gen()
			if !strings.HasPrefix(rq.Path, "/api/") {
				rq.Path, rq.Method = "/api/articles", "POST"
			}
			rq.Auth = g.badAuth()
			return rq
		}},
	}
	return g.all
}

// routeExists reports whether method and path name a real route.
func (g *badInputs) routeExists(method, path string) bool {
	real := map[string][]string{
		"/": {"GET"}, "/subscribe": {"POST"}, "/confirm": {"GET", "POST"}, "/archive": {"GET"}, "/healthz": {"GET"},
		"/api/articles": {"GET", "POST"}, "/api/digests": {"GET", "POST"}, "/api/digests/" + g.digestID: {"GET"},
		"/api/digests/" + g.digestID + "/send": {"POST"}, "/api/subscribers/export": {"GET"},
	}
	return slices.Contains(real[path], method)
}

// subscribe is a sign-up that must change nothing: a bad address, a bad
// choice, a malformed body, or a bot's form with the honeypot filled in.
func (g *badInputs) subscribe() req {
	g.n++
	fresh := fmt.Sprintf("new-%d@example.com", g.n)
	form := func(v url.Values) req {
		return req{Method: "POST", Path: "/subscribe", Type: g.pick("application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8"), Accept: g.pick("", "text/html", "application/json"), Body: v.Encode()}
	}
	js := func(body string) req {
		return req{Method: "POST", Path: "/subscribe", Type: g.pick("application/json", "application/json; charset=utf-8", "application/merge-patch+json"), Body: body}
	}
	switch g.rng.IntN(7) {
	case 0:
		return form(url.Values{"email": {g.badEmail()}, "frequency": {"daily"}})
	case 1:
		return js(`{"email":` + jsonString(g.badEmail()) + `}`)
	case 2: // a bad choice with a good address
		v := url.Values{"email": {fresh}}
		switch g.rng.IntN(3) {
		case 0:
			v.Set("frequency", "x-"+g.junk(8))
		case 1:
			v.Set("format", "x-"+g.junk(8))
		default:
			v["sections"] = []string{"news", "x-" + g.junk(8)}
		}
		return form(v)
	case 3: // the honeypot: accepted, nothing stored, nothing sent
		return form(url.Values{"email": {fresh}, "website": {g.pick("http://spam.example", "x", g.junk(20))}})
	case 4:
		return js(g.badJSON(`{"email":"`+fresh+`","frequency":"weekly"}`, `{"email":"`+fresh+`","sections":["news"]}`))
	case 5:
		return req{Method: "POST", Path: "/subscribe", Type: g.pick("", "text/plain", "text/csv", ";;;", "multipart/form-data", "application/json; charset=\""), Body: "email=" + url.QueryEscape(fresh)}
	}
	return js(`{"email":"` + fresh + `","junk":"` + strings.Repeat("A", api.MaxBodyBytes+1) + `"}`) // too large
}

// tokenPost posts to a page that acts on a reader's token, with a token
// that must not work there.
func (g *badInputs) tokenPost(path string, p token.Purpose) req {
	tok := g.badToken(p)
	switch g.rng.IntN(4) {
	case 0:
		return req{Method: "POST", Path: path, Type: "application/x-www-form-urlencoded", Accept: "text/html", Body: "token=" + url.QueryEscape(tok)}
	case 1:
		return req{Method: "POST", Path: path, Type: "application/json", Body: `{"token":` + jsonString(tok) + `}`}
	case 2:
		return req{Method: "POST", Path: path + "?token=" + url.QueryEscape(tok), Type: "application/x-www-form-urlencoded", Body: "List-Unsubscribe=One-Click"}
	}
	return req{Method: "POST", Path: path, Type: "application/json", Body: g.badJSON(`{"token":"abc"}`)}
}

// preferences saves preferences with a token that must not work, or with a
// good token and bad choices.
func (g *badInputs) preferences() req {
	if g.rng.IntN(2) == 0 {
		return g.tokenPost("/preferences", token.Preferences)
	}
	tok := g.e.sign(token.Preferences, g.confirmed.ID, time.Hour)
	body := url.Values{"token": {tok}, "frequency": {"daily"}}
	switch g.rng.IntN(3) {
	case 0:
		body.Set("frequency", "x-"+g.junk(6))
	case 1:
		body.Set("format", "x-"+g.junk(6))
	default:
		body["sections"] = []string{"x-" + g.junk(6)}
	}
	if g.rng.IntN(2) == 0 {
		return req{Method: "POST", Path: "/preferences?token=" + url.QueryEscape(tok), Type: "application/json", Body: `{"frequency":` + jsonString(body.Get("frequency")) + `,"format":` + jsonString(body.Get("format")) + `,"sections":` + mustMarshal(body["sections"]) + `}`}
	}
	return req{Method: "POST", Path: "/preferences", Type: "application/x-www-form-urlencoded", Accept: "text/html", Body: body.Encode()}
}

// badToken returns a token that must not act on page p: forged, cut,
// expired, for another page, for a reader who does not exist, or junk.
func (g *badInputs) badToken(p token.Purpose) string {
	other := map[token.Purpose][]token.Purpose{
		token.Confirm:     {token.Unsubscribe, token.Preferences},
		token.Unsubscribe: {token.Confirm, token.Preferences},
		token.Preferences: {token.Confirm, token.Unsubscribe},
	}[p]
	sub := g.pending
	if g.rng.IntN(2) == 0 {
		sub = g.confirmed
	}
	good := g.e.sign(p, sub.ID, time.Hour)
	switch g.rng.IntN(7) {
	case 0:
		return g.e.sign(other[g.rng.IntN(len(other))], sub.ID, time.Hour)
	case 1:
		return g.e.sign(p, sub.ID, -time.Minute)
	case 2:
		return g.e.sign(p, "nobody-"+g.junk(6), time.Hour)
	case 3: // one character changed
		b := []byte(good)
		i := g.rng.IntN(len(b))
		b[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[(strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", b[i])+1+g.rng.IntN(63))%64]
		return string(b)
	case 4:
		return good[:g.rng.IntN(len(good))]
	case 5:
		return good + g.pick("A", "=", "%00", "\r\n", " ")
	}
	return g.pick("", "x", "\x00", strings.Repeat("A", 600), "bs_"+g.junk(30), g.junk(g.rng.IntN(200)))
}

// anyToken returns a token for a GET page: good or bad, since showing a
// page changes nothing.
func (g *badInputs) anyToken(p token.Purpose) string {
	if g.rng.IntN(3) == 0 {
		return g.e.sign(p, g.pending.ID, time.Hour)
	}
	return g.badToken(p)
}

// badAuth is an Authorization a request must be refused with.
func (g *badInputs) badAuth() string {
	return g.pick("", "bs_nope", "bs_"+g.junk(40), g.e.full+"x", g.e.full[:len(g.e.full)-1], strings.Repeat("a", 600), "b\xe9s", g.e.sendOnly)
}

// editorJSON sends body to an editor route with the full token, or with a
// token that must be refused.
func (g *badInputs) editorJSON(method, path, body string) req {
	return req{Method: method, Path: path, Type: g.pick("application/json", "application/json; charset=utf-8"), Auth: g.e.full, Body: body}
}

// badArticle is an article that must be refused.
func (g *badInputs) badArticle() string {
	a := map[string]any{"url": "https://ledger.example.com/new-" + g.junk(6), "title": "Title", "summary": "<p>S</p>", "sections": []string{"news"}}
	switch g.rng.IntN(7) {
	case 0:
		a["url"] = g.pick("javascript:alert(1)", "ftp://x.example/", "/relative", "", "https://u:p@x.example/", "http://", "https://x.example/\n")
	case 1:
		a["title"] = g.pick("", " ", "Line\r\nBcc: x@example.com", "Tab\there", strings.Repeat("é", 301))
	case 2:
		a["summary"] = strings.Repeat("word ", 401) // 2,005 characters of text
	case 3:
		a["publishedAt"] = g.pick("yesterday", "2026-13-01T00:00:00Z", "1")
	case 4:
		a["imageUrl"] = g.pick("javascript:x", "data:image/png;base64,AAAA", "//x.example/i.png")
	case 5:
		a[g.pick("id", "createdAt", "extra", "Url ")] = "x"
	default:
		return g.badJSON(mustMarshal(a))
	}
	if g.rng.IntN(4) == 0 {
		a["title"] = 42 // and a wrong type on top
	}
	return mustMarshal(a)
}

// badPatch is an article patch that must be refused.
func (g *badInputs) badPatch() string {
	switch g.rng.IntN(4) {
	case 0:
		return `{"title":` + jsonString(g.pick("", "A\nB", strings.Repeat("x", 301))) + `}`
	case 1:
		return `{"url":"https://ledger.example.com/moved"}` // the URL is the identity: not patchable
	case 2:
		return `{"sections":` + g.pick(`"news"`, `[1]`, `{}`) + `}`
	}
	return g.badJSON(`{"title":"New title"}`, `{"summary":"<p>New</p>"}`)
}

// badImport is a subscriber import that must be refused whole.
func (g *badInputs) badImport() req {
	var rows []string
	for range g.rng.IntN(5) {
		g.n++
		rows = append(rows, fmt.Sprintf("imp-%d@example.com,%s", g.n, g.pick("daily", "weekly", "")))
	}
	bad := g.pick("not-an-email,daily", "x@example.com,hourly", "@,daily", `"unterminated,daily`, "a@example.com\x00,daily")
	rows = slices.Insert(rows, g.rng.IntN(len(rows)+1), bad)
	body := "email,frequency\n" + strings.Join(rows, "\n") + "\n"
	switch g.rng.IntN(5) {
	case 0:
		body = "email,shoe_size\nok@example.com,9\n"
	case 1:
		return req{Method: "POST", Path: "/api/subscribers/import", Type: g.pick("application/json", "text/plain", ""), Auth: g.e.full, Body: "email\nok@example.com\n"}
	case 2:
		return req{Method: "POST", Path: "/api/subscribers/import", Type: "multipart/form-data; boundary=x", Auth: g.e.full,
			Body: "--x\r\nContent-Disposition: form-data; name=\"notfile\"; filename=\"a.csv\"\r\n\r\nemail\nok@example.com\r\n--x--\r\n"}
	}
	return req{Method: "POST", Path: "/api/subscribers/import", Type: g.pick("text/csv", "application/csv"), Auth: g.e.full, Body: body}
}

// badJSON returns one of the seeds made malformed: mutated and then given
// trailing bytes, an unknown field or a wrong type, so that it can never
// decode.
func (g *badInputs) badJSON(seeds ...string) string {
	s := seeds[g.rng.IntN(len(seeds))]
	if g.rng.IntN(2) == 0 {
		s = g.mutate(s)
	}
	switch g.rng.IntN(4) {
	case 0:
		return s + g.pick("x", "}", "{}", ",", "\x00", "[")
	case 1:
		if i := strings.IndexByte(s, '{'); i >= 0 {
			return s[:i+1] + `"unknown` + g.junk(4) + `":1,` + s[i+1:]
		}
		return "{" + s
	case 2:
		return g.pick(`[]`, `"x"`, `1`, `true`, `[{}]`) + g.pick("", " ", "\n")
	}
	return g.pick("", "{", `{"`, `{"email"`, `{"email":`, `{"a":1`, "\xff\xfe{}", "{'a':1}")
}

// badEmail is an address that NormalizeEmail refuses.
func (g *badInputs) badEmail() string {
	local := g.junk(1 + g.rng.IntN(10))
	switch g.rng.IntN(6) {
	case 0:
		return strings.ReplaceAll(local, "@", "") + ".example.com"
	case 1:
		return local + "@example.com\r\nBcc: victim@example.com"
	case 2:
		return strings.Repeat("a", 250) + "@example.com"
	case 3:
		return "@example.com"
	case 4:
		return "a@@example.com"
	}
	return g.pick("", " ", "a@b", "a@-b.com", "a@b..com", "a@\x00.com")
}

// junkID is an ID that names nothing: wrong shape, or the right shape for
// an article that does not exist.
func (g *badInputs) junkID() string {
	if g.rng.IntN(2) == 0 {
		return fmt.Sprintf("%024x", g.rng.Uint64())
	}
	return g.pick("x", "0", strings.Repeat("f", 25), "daily-2026-13-40", "weekly-2026-W99", "../etc", "a b", "%00", g.junk(12))
}

// junkQuery is a query string of junk, and sometimes the paging
// parameters set wrong.
func (g *badInputs) junkQuery() string {
	q := url.Values{}
	for range g.rng.IntN(3) {
		q.Add(g.pick("limit", "cursor", "format", "sections", "status", "frequency", "x", "token"), g.pick("-1", "0", "99999999999999999999", strings.Repeat("z", 2000), "%ff", "text", "lite", "\r\n", "news,,sport", g.junk(10)))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// noise adds defects that must not matter: odd headers and accept types.
func (g *badInputs) noise(rq *req) {
	if g.rng.IntN(3) != 0 {
		return
	}
	rq.Header = map[string]string{}
	switch g.rng.IntN(4) {
	case 0:
		rq.Header["X-Forwarded-For"] = g.pick("1.2.3.4, ::1", "garbage", "")
	case 1:
		rq.Header["User-Agent"] = g.junk(300)
	case 2:
		rq.Header["Accept-Language"] = g.junk(20)
	default:
		rq.Accept = g.pick("application/json, text/html", "*/*;q=0", "text/html;q=0.1")
	}
}

// junk returns n random printable bytes.
func (g *badInputs) junk(n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~é"
	r := []rune(chars)
	b := make([]rune, n)
	for i := range b {
		b[i] = r[g.rng.IntN(len(r))]
	}
	return string(b)
}

// mutate changes a few bytes of s at random.
func (g *badInputs) mutate(s string) string {
	b := []byte(s)
	for range 1 + g.rng.IntN(4) {
		if len(b) == 0 {
			b = append(b, byte(g.rng.IntN(256)))
			continue
		}
		i := g.rng.IntN(len(b))
		switch g.rng.IntN(5) {
		case 0:
			b[i] = byte(g.rng.IntN(256))
		case 1:
			b = append(b[:i], b[i+1:]...)
		case 2:
			b = append(b[:i], append([]byte(g.pick("\r\n", "\x00", `"`, "{", "}", "]", ",", "\\", "%", "\xff", "=", "&")), b[i:]...)...)
		case 3:
			b = append(b, b[:i]...)
		case 4:
			b = b[:i]
		}
	}
	return string(b)
}

func jsonString(s string) string { return mustMarshal(s) }

// mustMarshal encodes test data: strings, string slices and maps of them,
// which always encode.
func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
