package api_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/broadsheet-news/broadsheet/internal/api"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

func TestHealthz(t *testing.T) {
	e := MustEnv(t)
	r := e.Do(req{Method: "GET", Path: "/healthz"})
	want(t, r, http.StatusOK)
	if got, want := strings.TrimSpace(r.String()), `{"status":"ok"}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("got Content-Type %q, want JSON", ct)
	}
}

var styleElement = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

func TestSignupPage(t *testing.T) {
	e := MustEnv(t)
	r := e.Get("/")
	want(t, r, http.StatusOK)
	body := r.String()
	for _, s := range []string{
		`<meta name="viewport"`, `action="/subscribe"`, `method="post"`,
		`<label for="email">`, `id="email" name="email"`, `type="email"`,
		`name="website"`, // the honeypot
		`value="daily" checked`, `value="weekly"`, `value="full" checked`, `value="lite"`, `value="text"`,
		`The Daily Ledger`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("sign-up page lacks %q", s)
		}
	}
	for _, sec := range newsletter.DefaultSections {
		if !strings.Contains(body, `name="sections" value="`+sec.Slug+`"`) || !strings.Contains(body, sec.Name) {
			t.Errorf("sign-up page lacks section %s", sec.Slug)
		}
	}
	if strings.Contains(body, "<script") || strings.Contains(body, " style=") {
		t.Error("page has a script or a style attribute, which the CSP blocks")
	}
	wantPageHeaders(t, r)
}

// wantPageHeaders checks the security headers of an HTML page, and that its
// CSP allows its own stylesheet and nothing inline besides.
func wantPageHeaders(t *testing.T, r response) {
	t.Helper()
	if got := r.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("got Content-Type %q", got)
	}
	if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("got X-Content-Type-Options %q", got)
	}
	if got := r.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("got Referrer-Policy %q", got)
	}
	csp := r.Header.Get("Content-Security-Policy")
	m := styleElement.FindSubmatch(r.Body)
	if m == nil {
		t.Fatal("page has no <style> element")
	}
	sum := sha256.Sum256(m[1])
	hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if !strings.Contains(csp, "style-src "+hash) {
		t.Errorf("CSP %q does not allow the page's stylesheet %s", csp, hash)
	}
	for _, bad := range []string{"unsafe-inline", "script-src"} {
		if strings.Contains(csp, bad) {
			t.Errorf("CSP %q holds %s", csp, bad)
		}
	}
	if !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q does not default to none", csp)
	}
}

func TestSubscribeJSONAndForm(t *testing.T) {
	e := MustEnv(t)
	r := e.Do(req{Method: "POST", Path: "/subscribe", Type: "application/json",
		Body: `{"email":"Ada@Example.COM","sections":["sport","Culture"],"frequency":"weekly","format":"lite"}`})
	want(t, r, http.StatusAccepted)
	var b struct{ Status, Message string }
	r.JSON(t, &b)
	if b.Status != "pending" || !strings.Contains(b.Message, "inbox") {
		t.Errorf("got %+v, want pending and a check-your-inbox message", b)
	}
	s := e.subscriber("ada@example.com")
	if s.Status != newsletter.StatusPending || s.Frequency != newsletter.Weekly || s.Format != newsletter.FormatLite ||
		strings.Join(s.Sections, ",") != "sport,culture" || s.Consent.Source != "api" || s.Consent.IP != "127.0.0.1" {
		t.Errorf("got %+v", s)
	}
	if len(e.mailsTo("Ada@example.com")) != 1 {
		t.Errorf("got %d confirmation mails, want 1", len(e.mailsTo("Ada@example.com")))
	}

	r = e.Form("/subscribe", "email=bo%40example.com&sections=news&sections=business&frequency=daily&format=text&website=")
	want(t, r, http.StatusAccepted)
	wantPageHeaders(t, r)
	if !strings.Contains(r.String(), "Check your inbox") {
		t.Errorf("form answer is not the check-your-inbox page: %s", r.Body)
	}
	s = e.subscriber("bo@example.com")
	if s.Format != newsletter.FormatText || strings.Join(s.Sections, ",") != "news,business" || s.Consent.Source != "form" {
		t.Errorf("got %+v", s)
	}

	// Multipart forms work too.
	r = e.Do(req{Method: "POST", Path: "/subscribe", Accept: "text/html",
		Type: "multipart/form-data; boundary=XX",
		Body: "--XX\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\ncy@example.com\r\n--XX--\r\n"})
	want(t, r, http.StatusAccepted)
	e.subscriber("cy@example.com")
	e.noServerErrors()
}

// TestSubscribeSameAnswer checks that the answer to a sign-up tells nothing
// about the address: new, pending, confirmed and unsubscribed addresses get
// byte-identical bodies, for JSON and for forms.
func TestSubscribeSameAnswer(t *testing.T) {
	e := MustEnv(t)
	e.mustSubscribe("pending@example.com")
	e.mustConfirmed("confirmed@example.com")
	gone := e.mustConfirmed("gone@example.com")
	want(t, e.Do(req{Method: "POST", Path: "/unsubscribe?token=" + e.sign(token.Unsubscribe, gone.ID, time.Hour),
		Type: "application/x-www-form-urlencoded", Body: "List-Unsubscribe=One-Click"}), http.StatusOK)

	for _, kind := range []struct {
		name string
		do   func(email string) response
	}{
		{"json", func(email string) response {
			return e.Do(req{Method: "POST", Path: "/subscribe", Type: "application/json", Body: `{"email":"` + email + `"}`})
		}},
		{"form", func(email string) response { return e.Form("/subscribe", "email="+url.QueryEscape(email)) }},
		{"honeypot", func(email string) response {
			return e.Form("/subscribe", "email="+url.QueryEscape(email)+"&website=http%3A%2F%2Fspam.example")
		}},
	} {
		t.Run(kind.name, func(t *testing.T) {
			var first response
			for i, email := range []string{"new-" + kind.name + "@example.com", "pending@example.com", "confirmed@example.com", "gone@example.com"} {
				r := kind.do(email)
				want(t, r, http.StatusAccepted)
				if i == 0 {
					first = r
					continue
				}
				if string(r.Body) != string(first.Body) {
					t.Errorf("answer for %s differs from a new address's:\n%s\nvs\n%s", email, r.Body, first.Body)
				}
				for _, h := range []string{"Content-Type", "Content-Length", "Set-Cookie", "Location"} {
					if r.Header.Get(h) != first.Header.Get(h) {
						t.Errorf("header %s for %s: got %q, want %q", h, email, r.Header.Get(h), first.Header.Get(h))
					}
				}
			}
		})
	}
	// A human's form and a bot's honeypot form get the same page.
	human := e.Form("/subscribe", "email=human%40example.com")
	bot := e.Form("/subscribe", "email=bot%40example.com&website=x")
	if string(human.Body) != string(bot.Body) || human.Status != bot.Status {
		t.Error("the honeypot answer differs from a human's")
	}
	if _, err := e.store.SubscriberByEmail(t.Context(), "bot@example.com"); newsletter.ErrorCode(err) != newsletter.ENOTFOUND {
		t.Errorf("honeypot sign-up was stored: %v", err)
	}
	if _, err := e.store.SubscriberByEmail(t.Context(), "new-honeypot@example.com"); newsletter.ErrorCode(err) != newsletter.ENOTFOUND {
		t.Errorf("honeypot sign-up was stored: %v", err)
	}
	if n := len(e.mailsTo("bot@example.com")); n != 0 {
		t.Errorf("honeypot sign-up was mailed %d times", n)
	}
	e.noServerErrors()
}

func TestSubscribeBadInput(t *testing.T) {
	e := MustEnv(t)
	e.mustConfirmed("reader@example.com")
	huge := `{"email":"` + strings.Repeat("a", api.MaxBodyBytes) + `@example.com"}`
	for _, tc := range []struct {
		name   string
		rq     req
		status int
		code   string
	}{
		{"malformed JSON", req{Type: "application/json", Body: `{"email":`}, 400, newsletter.EINVALID},
		{"JSON syntax", req{Type: "application/json", Body: `{email: "a@example.com"}`}, 400, newsletter.EINVALID},
		{"not an object", req{Type: "application/json", Body: `["a@example.com"]`}, 400, newsletter.EINVALID},
		{"empty body", req{Type: "application/json"}, 400, newsletter.EINVALID},
		{"unknown field", req{Type: "application/json", Body: `{"email":"x@example.com","admin":true}`}, 400, newsletter.EINVALID},
		{"trailing data", req{Type: "application/json", Body: `{"email":"x@example.com"}{"email":"y@example.com"}`}, 400, newsletter.EINVALID},
		{"trailing junk", req{Type: "application/json", Body: `{"email":"x@example.com"} junk`}, 400, newsletter.EINVALID},
		{"wrong type", req{Type: "application/json", Body: `{"email":42}`}, 400, newsletter.EINVALID},
		{"wrong content type", req{Type: "text/plain", Body: `{"email":"x@example.com"}`}, 400, newsletter.EINVALID},
		{"no content type", req{Body: `{"email":"x@example.com"}`}, 400, newsletter.EINVALID},
		{"invalid email", req{Type: "application/json", Body: `{"email":"not-an-address"}`}, 400, newsletter.EINVALID},
		{"named email", req{Type: "application/json", Body: `{"email":"Eve <eve@example.com>"}`}, 400, newsletter.EINVALID},
		{"two emails", req{Type: "application/json", Body: `{"email":"eve@example.com,bob@example.com"}`}, 400, newsletter.EINVALID},
		{"CRLF in email", req{Type: "application/json", Body: `{"email":"eve@example.com\r\nBcc: all@example.com"}`}, 400, newsletter.EINVALID},
		{"CRLF in form email", req{Type: "application/x-www-form-urlencoded", Body: `email=eve%40example.com%0D%0ABcc%3A+x%40example.com`}, 400, newsletter.EINVALID},
		{"NUL in email", req{Type: "application/json", Body: `{"email":"eve\u0000@example.com"}`}, 400, newsletter.EINVALID},
		{"unknown section", req{Type: "application/json", Body: `{"email":"eve@example.com","sections":["gossip"]}`}, 400, newsletter.EINVALID},
		{"CRLF in section", req{Type: "application/json", Body: `{"email":"eve@example.com","sections":["news\r\nX: y"]}`}, 400, newsletter.EINVALID},
		{"bad frequency", req{Type: "application/json", Body: `{"email":"eve@example.com","frequency":"hourly"}`}, 400, newsletter.EINVALID},
		{"bad format", req{Type: "application/json", Body: `{"email":"eve@example.com","format":"pdf"}`}, 400, newsletter.EINVALID},
		{"huge JSON", req{Type: "application/json", Body: huge}, 413, newsletter.ETOOLARGE},
		{"huge form", req{Type: "application/x-www-form-urlencoded", Body: "email=" + strings.Repeat("a", api.MaxBodyBytes+10)}, 413, newsletter.ETOOLARGE},
		{"bad form encoding", req{Type: "application/x-www-form-urlencoded", Body: "email=%zz"}, 400, newsletter.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot()
			tc.rq.Method, tc.rq.Path = "POST", "/subscribe"
			tc.rq.Accept = "application/json"
			r := e.Do(tc.rq)
			wantError(t, r, tc.status, tc.code)
			e.unchanged(before, tc.name)
		})
	}

	// A browser's bad form gets the form back, filled in, with the error.
	before := e.snapshot()
	r := e.Form("/subscribe", "email=nope&sections=sport&frequency=weekly&format=lite")
	want(t, r, http.StatusBadRequest)
	body := r.String()
	for _, s := range []string{"not valid", `value="nope"`, `value="sport" checked`, `value="weekly" checked`, `value="lite" checked`} {
		if !strings.Contains(body, s) {
			t.Errorf("sign-up form lacks %q after a bad post", s)
		}
	}
	e.unchanged(before, "bad form")
	e.noServerErrors()
}

func TestConfirm(t *testing.T) {
	e := MustEnv(t)
	e.mustSubscribe("reader@example.com")
	tok := e.tokenFor("reader@example.com", "confirm")

	// A link scanner's GET shows a page and changes nothing.
	before := e.snapshot()
	for range 3 {
		r := e.Get("/confirm?token=" + tok)
		want(t, r, http.StatusOK)
		wantPageHeaders(t, r)
		if got := r.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("got Cache-Control %q, want no-store", got)
		}
		for _, s := range []string{`method="post" action="/confirm"`, `name="token" value="` + tok + `"`, "reader@example.com", "<button"} {
			if !strings.Contains(r.String(), s) {
				t.Errorf("confirm page lacks %q", s)
			}
		}
	}
	e.unchanged(before, "GET /confirm")

	// The button confirms; again is fine.
	r := e.Form("/confirm", "token="+tok)
	want(t, r, http.StatusOK)
	wantPageHeaders(t, r)
	if !strings.Contains(r.String(), "confirmed") {
		t.Errorf("confirmed page: %s", r.Body)
	}
	if s := e.subscriber("reader@example.com"); s.Status != newsletter.StatusConfirmed {
		t.Fatalf("got status %s, want confirmed", s.Status)
	}
	welcomes := len(e.mailsTo("reader@example.com"))
	// Token in the query, JSON answer.
	r = e.Do(req{Method: "POST", Path: "/confirm?token=" + tok, Accept: "application/json"})
	want(t, r, http.StatusOK)
	if strings.TrimSpace(r.String()) != `{"status":"confirmed"}` {
		t.Errorf("got %s", r.Body)
	}
	// Token in a JSON body.
	r = e.Do(req{Method: "POST", Path: "/confirm", Type: "application/json", Body: `{"token":"` + tok + `"}`})
	want(t, r, http.StatusOK)
	if n := len(e.mailsTo("reader@example.com")); n != welcomes {
		t.Errorf("confirming again sent %d more mails", n-welcomes)
	}
	e.noServerErrors()
}

// TestBadTokens sends every token page bad, expired and wrong-purpose
// tokens and checks that each gets a 400 and changes nothing.
func TestBadTokens(t *testing.T) {
	e := MustEnv(t)
	e.mustSubscribe("pending@example.com")
	pending := e.subscriber("pending@example.com")
	reader := e.mustConfirmed("reader@example.com")
	goodUnsub := e.sign(token.Unsubscribe, reader.ID, time.Hour)
	tampered := []byte(goodUnsub)
	tampered[len(tampered)/2] ^= 1
	if tampered[len(tampered)/2] == '-' || tampered[len(tampered)/2] == '_' {
		tampered[len(tampered)/2] = 'A'
	}

	tokens := map[string]func(p token.Purpose) string{
		"garbage":        func(token.Purpose) string { return "not-a-token" },
		"long":           func(token.Purpose) string { return strings.Repeat("A", 5000) },
		"expired":        func(p token.Purpose) string { return e.sign(p, reader.ID, -time.Second) },
		"tampered":       func(token.Purpose) string { return string(tampered) },
		"unknown reader": func(p token.Purpose) string { return e.sign(p, "nobody", time.Hour) },
		"wrong purpose": func(p token.Purpose) string {
			if p == token.Confirm {
				return e.sign(token.Preferences, pending.ID, time.Hour)
			}
			return e.sign(token.Confirm, reader.ID, time.Hour)
		},
		"other key": func(p token.Purpose) string {
			k, _ := token.NewKey()
			s, _ := token.NewSigner(k)
			return s.Sign(p, reader.ID, e.clock.Now().Add(time.Hour))
		},
		"CRLF": func(token.Purpose) string { return "abc\r\nSet-Cookie: x=y" },
	}
	pages := map[string]token.Purpose{"/confirm": token.Confirm, "/unsubscribe": token.Unsubscribe, "/preferences": token.Preferences}
	for page, purpose := range pages {
		for name, mk := range tokens {
			t.Run(page+" "+name, func(t *testing.T) {
				tok := mk(purpose)
				before := e.snapshot()
				q := "?token=" + url.QueryEscape(tok)
				r := e.Get(page + q)
				want(t, r, http.StatusBadRequest)
				if !strings.Contains(r.String(), "not valid or has expired") {
					t.Errorf("GET page: %s", r.Body)
				}
				wantPageHeaders(t, r)
				if r.Header.Get("Cache-Control") != "no-store" {
					t.Error("error page for a token is cacheable")
				}
				form := "List-Unsubscribe=One-Click&frequency=weekly"
				wantError(t, e.Do(req{Method: "POST", Path: page + q, Type: "application/x-www-form-urlencoded", Body: form, Accept: "application/json"}), 400, newsletter.EINVALID)
				wantError(t, e.Do(req{Method: "POST", Path: page, Type: "application/x-www-form-urlencoded", Body: "token=" + url.QueryEscape(tok) + "&frequency=weekly", Accept: "application/json"}), 400, newsletter.EINVALID)
				e.unchanged(before, "bad token")
			})
		}
		t.Run(page+" missing", func(t *testing.T) {
			before := e.snapshot()
			want(t, e.Get(page), http.StatusBadRequest)
			want(t, e.Get(page+"?token="), http.StatusBadRequest)
			wantError(t, e.Do(req{Method: "POST", Path: page, Type: "application/x-www-form-urlencoded", Body: "frequency=weekly", Accept: "application/json"}), 400, newsletter.EINVALID)
			e.unchanged(before, "missing token")
		})
	}
	if s := e.subscriber("reader@example.com"); s.Status != newsletter.StatusConfirmed || s.Frequency != newsletter.Daily {
		t.Errorf("reader changed: %+v", s)
	}
	e.noServerErrors()
}

// TestOneClickUnsubscribe holds the RFC 8058 contract: a POST with exactly
// List-Unsubscribe=One-Click and the token in the URL, no cookie, no login,
// answered 200 without a redirect, as often as it comes.
func TestOneClickUnsubscribe(t *testing.T) {
	e := MustEnv(t)
	reader := e.mustConfirmed("reader@example.com")
	tok := e.sign(token.Unsubscribe, reader.ID, 400*24*time.Hour)

	// The page's GET changes nothing.
	before := e.snapshot()
	r := e.Get("/unsubscribe?token=" + tok)
	want(t, r, http.StatusOK)
	wantPageHeaders(t, r)
	for _, s := range []string{`method="post" action="/unsubscribe?token=` + tok + `"`, "<button", "reader@example.com"} {
		if !strings.Contains(r.String(), s) {
			t.Errorf("unsubscribe page lacks %q", s)
		}
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Error("unsubscribe page is cacheable")
	}
	e.unchanged(before, "GET /unsubscribe")

	for i := range 2 {
		hr, err := http.NewRequest("POST", e.srv.URL+"/unsubscribe?token="+tok, strings.NewReader("List-Unsubscribe=One-Click"))
		if err != nil {
			t.Fatal(err)
		}
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r := e.send(hr)
		if r.Status != http.StatusOK {
			t.Fatalf("one-click POST #%d: got %d, want 200; %s", i+1, r.Status, r.Body)
		}
		for _, h := range []string{"Location", "Set-Cookie", "Refresh"} {
			if v := r.Header.Get(h); v != "" {
				t.Errorf("one-click answer has %s: %q", h, v)
			}
		}
		if s := e.subscriber("reader@example.com"); s.Status != newsletter.StatusUnsubscribed {
			t.Fatalf("after one-click #%d: got status %s", i+1, s.Status)
		}
	}

	// The page's button works the same way, and RFC 8058 allows multipart.
	other := e.mustConfirmed("other@example.com")
	r = e.Form("/unsubscribe?token="+e.sign(token.Unsubscribe, other.ID, time.Hour), "token="+e.sign(token.Unsubscribe, other.ID, time.Hour))
	want(t, r, http.StatusOK)
	wantPageHeaders(t, r)
	if !strings.Contains(r.String(), "unsubscribed") {
		t.Errorf("goodbye page: %s", r.Body)
	}
	third := e.mustConfirmed("third@example.com")
	r = e.Do(req{Method: "POST", Path: "/unsubscribe?token=" + e.sign(token.Unsubscribe, third.ID, time.Hour),
		Type: "multipart/form-data; boundary=b", Body: "--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--\r\n"})
	want(t, r, http.StatusOK)
	if s := e.subscriber("third@example.com"); s.Status != newsletter.StatusUnsubscribed {
		t.Errorf("multipart one-click: got status %s", s.Status)
	}
	e.noServerErrors()
}

func TestPreferences(t *testing.T) {
	e := MustEnv(t)
	reader := e.mustConfirmed("reader@example.com")
	tok := e.sign(token.Preferences, reader.ID, time.Hour)

	before := e.snapshot()
	r := e.Get("/preferences?token=" + tok)
	want(t, r, http.StatusOK)
	wantPageHeaders(t, r)
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Error("preferences page is cacheable")
	}
	for _, s := range []string{`action="/preferences?token=` + tok + `"`, `value="daily" checked`, `value="full" checked`, "reader@example.com"} {
		if !strings.Contains(r.String(), s) {
			t.Errorf("preferences page lacks %q", s)
		}
	}
	e.unchanged(before, "GET /preferences")

	r = e.Form("/preferences?token="+tok, "token="+tok+"&sections=sport&sections=opinion&frequency=weekly&format=lite")
	want(t, r, http.StatusOK)
	for _, s := range []string{"preferences are saved", `value="sport" checked`, `value="opinion" checked`, `value="weekly" checked`, `value="lite" checked`} {
		if !strings.Contains(r.String(), s) {
			t.Errorf("saved preferences page lacks %q", s)
		}
	}
	s := e.subscriber("reader@example.com")
	if s.Frequency != newsletter.Weekly || s.Format != newsletter.FormatLite || strings.Join(s.Sections, ",") != "sport,opinion" || s.Status != newsletter.StatusConfirmed {
		t.Errorf("got %+v", s)
	}

	r = e.Do(req{Method: "POST", Path: "/preferences?token=" + tok, Type: "application/json", Body: `{"sections":[],"frequency":"daily","format":"text"}`})
	want(t, r, http.StatusOK)
	var got struct {
		Sections  []string
		Frequency string
		Format    string
	}
	r.JSON(t, &got)
	if len(got.Sections) != 0 || got.Frequency != "daily" || got.Format != "text" {
		t.Errorf("got %+v", got)
	}

	before = e.snapshot()
	for _, tc := range []req{
		{Type: "application/json", Body: `{"frequency":"hourly"}`},
		{Type: "application/json", Body: `{"format":"pdf"}`},
		{Type: "application/json", Body: `{"sections":["gossip"]}`},
		{Type: "application/json", Body: `{"frequency":"daily","status":"confirmed"}`},
		{Type: "application/json", Body: `{"frequency":`},
		{Type: "text/plain", Body: `frequency=weekly`},
		{Type: "application/x-www-form-urlencoded", Body: `frequency=week%0D%0Aly`},
	} {
		tc.Method, tc.Path, tc.Accept = "POST", "/preferences?token="+tok, "application/json"
		wantError(t, e.Do(tc), 400, newsletter.EINVALID)
	}
	r = e.Do(req{Method: "POST", Path: "/preferences?token=" + tok, Type: "application/json", Body: `{"frequency":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`})
	wantError(t, r, 413, newsletter.ETOOLARGE)
	e.unchanged(before, "bad preferences")
	e.noServerErrors()
}

func TestArchive(t *testing.T) {
	e := MustEnv(t)
	r := e.Get("/archive")
	want(t, r, http.StatusOK)
	wantPageHeaders(t, r)
	if !strings.Contains(r.String(), "No editions have been sent yet") {
		t.Errorf("empty archive: %s", r.Body)
	}

	e.mustConfirmed("reader@example.com")
	e.mustArticle("https://ledger.example.com/a", "First story", "news")
	var d struct{ ID string }
	r = e.API("POST", "/api/digests", `{"frequency":"daily"}`)
	want(t, r, http.StatusCreated)
	r.JSON(t, &d)

	// A draft is not in the archive yet.
	wantError(t, e.Do(req{Method: "GET", Path: "/archive/" + d.ID, Accept: "application/json"}), 404, newsletter.ENOTFOUND)
	want(t, e.Get("/archive/"+d.ID), http.StatusNotFound)

	want(t, e.API("POST", "/api/digests/"+d.ID+"/send", ""), http.StatusAccepted)
	r = e.Get("/archive")
	want(t, r, http.StatusOK)
	if !strings.Contains(r.String(), `href="/archive/`+d.ID+`"`) {
		t.Errorf("archive does not list %s: %s", d.ID, r.Body)
	}
	r = e.Do(req{Method: "GET", Path: "/archive", Accept: "application/json"})
	want(t, r, http.StatusOK)
	var list struct {
		Items []struct{ ID string }
		Next  string
	}
	r.JSON(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != d.ID {
		t.Errorf("got %+v", list)
	}

	r = e.Get("/archive/" + d.ID)
	want(t, r, http.StatusOK)
	if r.Header.Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(r.String(), "First story") {
		t.Errorf("web copy: %s %.300s", r.Header.Get("Content-Type"), r.Body)
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script") {
		t.Errorf("web copy CSP %q", csp)
	}

	for _, id := range []string{"daily-1999-01-01", "nope", "..%2F..%2Fetc", "daily-2026-11-26%0D%0A"} {
		want(t, e.Get("/archive/"+id), http.StatusNotFound, http.StatusBadRequest)
	}
	want(t, e.Get("/archive?limit=0"), http.StatusBadRequest)
	want(t, e.Get("/archive?limit=abc"), http.StatusBadRequest)
	e.noServerErrors()
}

func TestRoutingErrors(t *testing.T) {
	e := MustEnv(t)
	for _, tc := range []struct {
		method, path string
		accept       string
		status       int
		allow        string
		json         bool
	}{
		{"GET", "/nope", "text/html", 404, "", false},
		{"GET", "/api/nope", "", 404, "", true},
		{"GET", "/nope", "application/json", 404, "", true},
		{"DELETE", "/healthz", "", 405, "GET, HEAD", true},
		{"PUT", "/subscribe", "text/html", 405, "POST", false},
		{"GET", "/subscribe", "text/html", 405, "POST", false},
		{"DELETE", "/confirm", "text/html", 405, "GET, HEAD, POST", false},
		{"PUT", "/api/articles", "", 405, "GET, HEAD, POST", true},
		{"POST", "/api/articles/x", "", 405, "DELETE, GET, HEAD, PATCH", true},
		{"GET", "/api/digests/x/send", "", 405, "POST", true},
		{"POST", "/archive", "text/html", 405, "GET, HEAD", false},
	} {
		r := e.Do(req{Method: tc.method, Path: tc.path, Accept: tc.accept})
		if r.Status != tc.status {
			t.Errorf("%s %s: got %d, want %d", tc.method, tc.path, r.Status, tc.status)
			continue
		}
		if got := r.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: got Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
		isJSON := strings.HasPrefix(r.Header.Get("Content-Type"), "application/json")
		if isJSON != tc.json {
			t.Errorf("%s %s: got Content-Type %q", tc.method, tc.path, r.Header.Get("Content-Type"))
		}
		if tc.json {
			code := map[int]string{404: newsletter.ENOTFOUND, 405: "method_not_allowed"}[tc.status]
			if r.ErrorCode() != code {
				t.Errorf("%s %s: got %s", tc.method, tc.path, r.Body)
			}
		} else if !strings.Contains(r.String(), "<h1>") {
			t.Errorf("%s %s: no error page: %s", tc.method, tc.path, r.Body)
		}
	}
}

func TestRateLimits(t *testing.T) {
	e := MustEnv(t, func(o *api.Options) {
		o.SubscribeLimit, o.SubscribeBurst = rate.Every(time.Minute), 2
		o.AuthFailureLimit, o.AuthFailureBurst = rate.Every(time.Minute), 2
	})
	for i := range 2 {
		want(t, e.Do(req{Method: "POST", Path: "/subscribe", Type: "application/json", Body: `{"email":"r` + string(rune('a'+i)) + `@example.com"}`}), http.StatusAccepted)
	}
	before := e.snapshot()
	r := e.Do(req{Method: "POST", Path: "/subscribe", Type: "application/json", Body: `{"email":"rc@example.com"}`})
	wantError(t, r, http.StatusTooManyRequests, newsletter.ERATELIMITED)
	if got := r.Header.Get("Retry-After"); got != "60" {
		t.Errorf("got Retry-After %q, want 60", got)
	}
	e.unchanged(before, "rate-limited sign-up")
	// The clock refills the bucket.
	e.clock.Add(time.Minute)
	want(t, e.Do(req{Method: "POST", Path: "/subscribe", Type: "application/json", Body: `{"email":"rc@example.com"}`}), http.StatusAccepted)

	// Good tokens are not counted; bad ones are, and then even a good one
	// waits.
	for range 5 {
		want(t, e.API("GET", "/api/articles", ""), http.StatusOK)
	}
	for range 2 {
		wantError(t, e.Do(req{Method: "GET", Path: "/api/articles", Auth: "bs_wrong"}), 401, newsletter.EUNAUTHORIZED)
	}
	r = e.Do(req{Method: "GET", Path: "/api/articles", Auth: "bs_wrong"})
	wantError(t, r, 429, newsletter.ERATELIMITED)
	if r.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	wantError(t, e.API("GET", "/api/articles", ""), 429, newsletter.ERATELIMITED)
	e.clock.Add(time.Minute)
	want(t, e.API("GET", "/api/articles", ""), http.StatusOK)
}

func TestTrustProxy(t *testing.T) {
	for _, trust := range []bool{false, true} {
		e := MustEnv(t, func(o *api.Options) { o.TrustProxy = trust })
		want(t, e.Do(req{Method: "POST", Path: "/subscribe", Type: "application/json", Body: `{"email":"p@example.com"}`,
			Header: map[string]string{"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}}), http.StatusAccepted)
		wantIP := "127.0.0.1"
		if trust {
			wantIP = "198.51.100.7"
		}
		if got := e.subscriber("p@example.com").Consent.IP; got != wantIP {
			t.Errorf("TrustProxy %v: got IP %q, want %q", trust, got, wantIP)
		}
	}
}
