package api_test

import (
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

var csrfValue = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// editor is a browser signed in to the console.
type editor struct {
	e      *env
	cookie string // "name=value"
	csrf   string
}

// signIn signs in to the console with secret and reads the CSRF token off
// the front page.
func (e *env) signIn(secret string) *editor {
	e.t.Helper()
	r := e.Form("/console/signin", "token="+url.QueryEscape(secret))
	want(e.t, r, http.StatusSeeOther)
	cs := (&http.Response{Header: r.Header}).Cookies()
	if len(cs) != 1 || cs[0].Value == "" {
		e.t.Fatalf("sign-in set cookies %v, want one session cookie", cs)
	}
	ed := &editor{e: e, cookie: cs[0].Name + "=" + cs[0].Value}
	home := ed.get("/console")
	want(e.t, home, http.StatusOK)
	m := csrfValue.FindStringSubmatch(home.String())
	if m == nil {
		e.t.Fatalf("console page has no CSRF field:\n%.1000s", home.Body)
	}
	ed.csrf = m[1]
	return ed
}

func (ed *editor) get(path string) response {
	ed.e.t.Helper()
	return ed.e.Do(req{Method: "GET", Path: path, Accept: "text/html", Header: map[string]string{"Cookie": ed.cookie}})
}

// post sends a console form with the session and its CSRF token.
func (ed *editor) post(path string, form url.Values) response {
	ed.e.t.Helper()
	form.Set("csrf", ed.csrf)
	return ed.postRaw(path, form.Encode(), nil)
}

func (ed *editor) postRaw(path, body string, header map[string]string) response {
	ed.e.t.Helper()
	h := map[string]string{"Cookie": ed.cookie}
	for k, v := range header {
		h[k] = v
	}
	return ed.e.Do(req{Method: "POST", Path: path, Body: body, Type: "application/x-www-form-urlencoded", Accept: "text/html", Header: h})
}

func wantBody(tb testing.TB, r response, subs ...string) {
	tb.Helper()
	for _, s := range subs {
		if !strings.Contains(r.String(), s) {
			tb.Fatalf("page lacks %q:\n%.3000s", s, r.Body)
		}
	}
}

func TestConsoleSignIn(t *testing.T) {
	e := MustEnv(t)
	r := e.Get("/console")
	want(t, r, http.StatusOK)
	wantBody(t, r, `action="/console/signin"`, `<label for="token">`)

	for _, bad := range []string{"", "bs_nope", strings.Repeat("x", 5000)} {
		r := e.Form("/console/signin", "token="+url.QueryEscape(bad))
		want(t, r, http.StatusBadRequest, http.StatusUnauthorized)
		if len((&http.Response{Header: r.Header}).Cookies()) != 0 {
			t.Fatalf("a failed sign-in with %.20q set a cookie", bad)
		}
		wantBody(t, r, `role="alert"`)
	}
	// A token that may only send cannot use the console.
	want(t, e.Form("/console/signin", "token="+e.sendOnly), http.StatusForbidden)

	r = e.Form("/console/signin", "token="+e.full)
	want(t, r, http.StatusSeeOther)
	c := (&http.Response{Header: r.Header}).Cookies()[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/console" || c.Secure || c.MaxAge <= 0 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/console, expiring, not Secure over http", c)
	}
	// Behind an https proxy the cookie is Secure.
	r = e.Do(req{Method: "POST", Path: "/console/signin", Body: "token=" + e.full, Type: "application/x-www-form-urlencoded", Header: map[string]string{"X-Forwarded-Proto": "https"}})
	if c := (&http.Response{Header: r.Header}).Cookies()[0]; !c.Secure {
		t.Fatalf("session cookie over https %+v: want Secure", c)
	}

	ed := e.signIn(e.full)
	wantBody(t, ed.get("/console"), "Signed in as <strong>full</strong>", `action="/console/signout"`)
	// A forged or tampered cookie is no session.
	forged := &editor{e: e, cookie: ed.cookie + "A"}
	if r := forged.get("/console/articles/new"); r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/console" {
		t.Fatalf("forged session: status %d to %q, want 303 to /console", r.Status, r.Header.Get("Location"))
	}

	r = ed.post("/console/signout", url.Values{})
	want(t, r, http.StatusSeeOther)
	if c := (&http.Response{Header: r.Header}).Cookies()[0]; c.MaxAge >= 0 || c.Value != "" {
		t.Fatalf("sign-out cookie %+v: want it cleared", c)
	}

	// The session ends with its expiry.
	e.clock.Add(13 * time.Hour)
	if r := ed.get("/console/articles/new"); r.Status != http.StatusSeeOther {
		t.Fatalf("expired session: status %d, want 303 to sign in", r.Status)
	}
	e.noServerErrors()
}

// TestConsoleRefusesForgedPosts: without the session's CSRF token, or from
// another site, a console POST changes nothing.
func TestConsoleRefusesForgedPosts(t *testing.T) {
	e := MustEnv(t)
	ed := e.signIn(e.full)
	article := url.Values{"url": {"https://ledger.example.com/a"}, "title": {"A"}, "sections": {"news"}}
	before := e.snapshot()
	for name, try := range map[string]func() response{
		"no CSRF token":    func() response { return ed.postRaw("/console/articles", article.Encode(), nil) },
		"wrong CSRF token": func() response { return ed.postRaw("/console/articles", article.Encode()+"&csrf=abc", nil) },
		"another session's token": func() response {
			other := e.signIn(e.full)
			return ed.postRaw("/console/articles", article.Encode()+"&csrf="+other.csrf, nil)
		},
		"cross-site": func() response {
			return ed.postRaw("/console/articles", article.Encode()+"&csrf="+ed.csrf, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
		},
		"other origin": func() response {
			return ed.postRaw("/console/articles", article.Encode()+"&csrf="+ed.csrf, map[string]string{"Origin": "https://evil.example"})
		},
		"cross-site sign-in": func() response {
			return e.Do(req{Method: "POST", Path: "/console/signin", Body: "token=" + e.full, Type: "application/x-www-form-urlencoded", Header: map[string]string{"Sec-Fetch-Site": "cross-site"}})
		},
	} {
		if r := try(); r.Status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", name, r.Status)
		}
	}
	// No session at all.
	r := e.Do(req{Method: "POST", Path: "/console/articles", Body: article.Encode() + "&csrf=" + ed.csrf, Type: "application/x-www-form-urlencoded", Accept: "text/html"})
	want(t, r, http.StatusUnauthorized)
	wantBody(t, r, `action="/console/signin"`)
	e.unchanged(before, "forged console posts")
	e.noServerErrors()
}

// TestConsoleArticleDigestSend walks an editor through the console: bad
// input first, then an article, a digest, its previews, a test and the
// send, as the JSON API would do it.
func TestConsoleArticleDigestSend(t *testing.T) {
	e := MustEnv(t)
	e.mustConfirmed("ada@example.com")
	ed := e.signIn(e.full)

	// Building a digest with nothing in it is refused on the page.
	before := e.snapshot()
	r := ed.post("/console/digests", url.Values{"frequency": {"daily"}, "intro": {"Morning."}})
	want(t, r, http.StatusConflict)
	wantBody(t, r, "No new articles", ">Morning.</textarea>")
	r = ed.post("/console/digests", url.Values{"frequency": {"hourly"}})
	want(t, r, http.StatusBadRequest)
	wantBody(t, r, "Frequency must be one of")

	// Bad articles: the form comes back filled in, with what to fix.
	for _, bad := range []url.Values{
		{"url": {"not a url"}, "title": {"Budget"}},
		{"url": {"https://ledger.example.com/budget"}, "title": {""}},
		{"url": {"https://ledger.example.com/budget"}, "title": {"Budget"}, "author": {strings.Repeat("x", 300)}},
		{"url": {"https://ledger.example.com/budget"}, "title": {"Budget"}, "imageUrl": {"javascript:alert(1)"}},
	} {
		r := ed.post("/console/articles", bad)
		want(t, r, http.StatusBadRequest)
		wantBody(t, r, `role="alert"`, `value="`+bad.Get("title")+`"`)
	}
	e.unchanged(before, "refused console forms")

	r = ed.post("/console/articles", url.Values{
		"url": {"https://ledger.example.com/budget"}, "title": {"Budget passes"},
		"summary": {"Members voted <b>61 to 38</b>.<script>x()</script>"}, "sections": {"politics"},
	})
	want(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/console?done=article-created" {
		t.Fatalf("after submitting: redirect to %q", loc)
	}
	home := ed.get("/console?done=article-created")
	wantBody(t, home, "Article added", "Budget passes")
	id := newsletter.ArticleID("https://ledger.example.com/budget")

	// Edit it; an empty headline is refused and the URL shown stays the
	// article's own.
	r = ed.post("/console/articles/"+id, url.Values{"title": {""}, "url": {"https://evil.example"}})
	want(t, r, http.StatusBadRequest)
	wantBody(t, r, `value="https://ledger.example.com/budget" readonly`)
	want(t, ed.post("/console/articles/"+id, url.Values{"title": {"Budget passes at dawn"}, "summary": {"Members voted."}, "sections": {"politics"}}), http.StatusSeeOther)
	a, err := e.svc.Article(t.Context(), id)
	if err != nil || a.Title != "Budget passes at dawn" {
		t.Fatalf("after editing: %+v, %v", a, err)
	}
	want(t, ed.get("/console/articles/nope"), http.StatusNotFound)

	// Build the digest: a draft, shown with its variants.
	r = ed.post("/console/digests", url.Values{"frequency": {"daily"}, "intro": {"Morning."}})
	want(t, r, http.StatusSeeOther)
	page := r.Header.Get("Location")
	if !strings.HasPrefix(page, "/console/digests/daily-") {
		t.Fatalf("after building: redirect to %q", page)
	}
	r = ed.get(page)
	want(t, r, http.StatusOK)
	wantBody(t, r, "Budget passes at dawn", "Send to every reader", "Only politics", "Plain text", `<iframe src="`+page+`/preview?format=full"`)
	if strings.Contains(r.String(), `http-equiv="refresh"`) {
		t.Fatal("a draft's page refreshes itself")
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-src 'self'") {
		t.Fatalf("console CSP %q does not allow the preview frame", csp)
	}
	want(t, ed.get(page+"?format=huge"), http.StatusBadRequest)
	pr := ed.get(page + "/preview?format=text&sections=politics")
	want(t, pr, http.StatusOK)
	if ct := pr.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || !strings.Contains(pr.String(), "Budget passes at dawn") {
		t.Fatalf("text preview: %s\n%s", ct, pr.Body)
	}
	for _, f := range []string{"full", "lite", "text"} {
		if got := ed.get(page + "/preview?format=" + f).Header.Get("X-Frame-Options"); got != "SAMEORIGIN" {
			t.Errorf("%s preview: X-Frame-Options %q, want SAMEORIGIN: the console frame shows it blank", f, got)
		}
	}

	// A test to a bad address is refused; to a good one it goes.
	r = ed.post(page+"/test", url.Values{"to": {"nobody"}})
	want(t, r, http.StatusBadRequest)
	wantBody(t, r, `role="alert"`, `value="nobody"`)
	want(t, ed.post(page+"/test", url.Values{"to": {"desk@ledger.example.com"}}), http.StatusSeeOther)
	if len(e.mailsTo("desk@ledger.example.com")) != 1 {
		t.Fatal("no test copy in the outbox")
	}

	// An editor who may not send is told so; nothing goes.
	noSend := e.signIn(e.editOnly)
	r = noSend.post(page+"/send", url.Values{})
	want(t, r, http.StatusForbidden)
	want(t, noSend.post(page+"/test", url.Values{"to": {"stranger@example.com"}}), http.StatusForbidden)
	if n := len(e.mailsTo("stranger@example.com")); n != 0 {
		t.Fatalf("edit-only test send: %d mails, want 0", n)
	}
	if st, _ := e.svc.Digest(t.Context(), strings.TrimPrefix(page, "/console/digests/")); st.Status != newsletter.DigestDraft {
		t.Fatalf("edit-only send: digest %s, want draft", st.Status)
	}

	// A sending digest's page frames its counters, which refresh
	// themselves; the page, with its test form, does not. The queue may have sent
	// the one reader's copy before any request looks, so the digest is set
	// sending here, as Send sets it, and the Send below resumes it.
	digestID := strings.TrimPrefix(page, "/console/digests/")
	if _, err := e.store.UpdateDigest(t.Context(), digestID, func(d *newsletter.Digest) error {
		d.Status, d.SendStartedAt = newsletter.DigestSending, e.clock.Now()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r = ed.get(page)
	want(t, r, http.StatusOK)
	if strings.Contains(r.String(), `http-equiv="refresh"`) {
		t.Fatalf("a sending digest's page reloads itself, test form and all:\n%.2000s", r.Body)
	}
	wantBody(t, r, `<span class="badge sending">`, `<iframe src="`+page+`/counters"`, `<a href="`+page+`">Reload the whole page</a>`)
	cr := ed.get(page + "/counters")
	want(t, cr, http.StatusOK)
	wantBody(t, cr, `http-equiv="refresh"`, "<dt>Sent</dt>", "readers settled")
	if strings.Contains(cr.String(), "<form") {
		t.Fatalf("the counters frame holds a form:\n%.2000s", cr.Body)
	}
	if got := cr.Header.Get("X-Frame-Options"); got != "SAMEORIGIN" {
		t.Errorf("counters frame: X-Frame-Options %q, want SAMEORIGIN", got)
	}
	if csp := cr.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'self'") {
		t.Errorf("counters frame: CSP %q does not allow the console to frame it", csp)
	}

	want(t, ed.post(page+"/send", url.Values{}), http.StatusSeeOther)
	if err := e.queue.WaitIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
	r = ed.get(page)
	if !strings.Contains(r.String(), `<span class="badge sent">`) {
		t.Fatalf("digest not sent once the queue is idle:\n%.2000s", r.Body)
	}
	if strings.Contains(r.String(), `http-equiv="refresh"`) {
		t.Fatal("a sent digest's page refreshes itself")
	}
	if cr := ed.get(page + "/counters"); strings.Contains(cr.String(), `http-equiv="refresh"`) {
		t.Fatal("a sent digest's counters frame still refreshes itself")
	}
	wantBody(t, r, "<dt>Sent</dt><dd>1</dd>", "1 of 1 readers settled", "The archive copy")
	e.noServerErrors()
}

// TestUndoUnsubscribe: the goodbye page's undo works with the unsubscribe
// link's token only, and twice.
func TestUndoUnsubscribe(t *testing.T) {
	e := MustEnv(t)
	s := e.mustConfirmed("ada@example.com")
	tok := e.sign(token.Unsubscribe, s.ID, time.Hour)
	r := e.Form("/unsubscribe?token="+tok, "")
	want(t, r, http.StatusOK)
	wantBody(t, r, `action="/unsubscribe/undo"`, `name="token" value="`+tok+`"`)

	before := e.snapshot()
	for _, bad := range []string{"", e.sign(token.Preferences, s.ID, time.Hour), e.sign(token.Confirm, s.ID, time.Hour), tok + "x"} {
		r := e.Form("/unsubscribe/undo", "token="+bad)
		want(t, r, http.StatusBadRequest)
	}
	e.unchanged(before, "undo with the wrong token")

	for range 2 {
		r := e.Form("/unsubscribe/undo", "token="+tok)
		want(t, r, http.StatusOK)
		wantBody(t, r, "Welcome back", "subscribed again")
		if got := e.subscriber("ada@example.com").Status; got != newsletter.StatusConfirmed {
			t.Fatalf("after undo: status %s, want confirmed", got)
		}
	}
	e.noServerErrors()
}

// TestPreferencesFormBadInput: a refused choice shows the form again with
// the reason, and saves nothing.
func TestPreferencesFormBadInput(t *testing.T) {
	e := MustEnv(t)
	s := e.mustConfirmed("ada@example.com")
	tok := e.sign(token.Preferences, s.ID, time.Hour)
	before := e.snapshot()
	for _, body := range []string{"frequency=hourly", "format=huge", "sections=gardening", "sections=politics&frequency=" + strings.Repeat("x", 100)} {
		r := e.Form("/preferences?token="+tok, body)
		want(t, r, http.StatusBadRequest)
		wantBody(t, r, `role="alert"`, `action="/preferences?token=`, "ada@example.com")
	}
	e.unchanged(before, "refused preferences")
}

// TestSignupFromAnotherSite: the sign-up form embedded in the newspaper's
// WordPress theme posts from another site; that is allowed (the worst a
// forged post can do is send one confirmation email), and the answer is
// the usual one.
func TestSignupFromAnotherSite(t *testing.T) {
	e := MustEnv(t)
	snippet, err := os.ReadFile("../../infra/wordpress/signup-form.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`action="https://broadsheet.example.com/subscribe"`, `method="post"`, `name="email"`, `name="website"`, `name="frequency"`} {
		if !strings.Contains(string(snippet), s) {
			t.Fatalf("the WordPress snippet lacks %s", s)
		}
	}
	r := e.Do(req{
		Method: "POST", Path: "/subscribe", Type: "application/x-www-form-urlencoded", Accept: "text/html",
		Body:   "email=ada%40example.com&frequency=weekly&format=lite&website=",
		Header: map[string]string{"Origin": "https://news.example.com", "Sec-Fetch-Site": "cross-site", "Referer": "https://news.example.com/"},
	})
	want(t, r, http.StatusAccepted)
	wantBody(t, r, "Check your inbox")
	if s := e.subscriber("ada@example.com"); s.Status != newsletter.StatusPending || s.Frequency != newsletter.Weekly {
		t.Fatalf("cross-site sign-up stored %+v, want a pending weekly reader", s)
	}
	if h := r.Header.Get("Access-Control-Allow-Origin"); h != "" {
		t.Fatalf("sign-up answered Access-Control-Allow-Origin %q: another site's script must not read it", h)
	}
}

// TestRevokeEndsAccess: revoking a token stops its secret in the API and
// ends its console sessions on their next request, while other tokens go
// on working.
func TestRevokeEndsAccess(t *testing.T) {
	e := MustEnv(t)
	secret := e.mustToken("night desk", nil)
	ed := e.signIn(secret)
	want(t, e.Do(req{Method: "GET", Path: "/api/articles", Auth: secret}), http.StatusOK)

	if _, err := e.svc.RevokeEditorToken(t.Context(), "night desk"); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	wantError(t, e.Do(req{Method: "GET", Path: "/api/articles", Auth: secret}), http.StatusUnauthorized, newsletter.EUNAUTHORIZED)
	if r := ed.get("/console/articles/new"); r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/console" {
		t.Fatalf("session of a revoked token: status %d to %q, want 303 to /console", r.Status, r.Header.Get("Location"))
	}
	want(t, e.Do(req{Method: "GET", Path: "/api/articles", Auth: e.full}), http.StatusOK)
	if _, err := e.svc.RevokeEditorToken(t.Context(), "night desk"); newsletter.ErrorCode(err) != newsletter.ENOTFOUND {
		t.Fatalf("second revoke: %v, want %s", err, newsletter.ENOTFOUND)
	}
	// A name two tokens share is refused; the ID picks one.
	e.mustToken("twin", nil)
	twin := e.mustToken("twin", nil)
	if _, err := e.svc.RevokeEditorToken(t.Context(), "twin"); newsletter.ErrorCode(err) != newsletter.ECONFLICT {
		t.Fatalf("revoke a shared name: %v, want %s", err, newsletter.ECONFLICT)
	}
	tok, err := e.svc.Authenticate(t.Context(), twin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RevokeEditorToken(t.Context(), tok.ID); err != nil {
		t.Fatalf("revoke by ID: %v", err)
	}
	wantError(t, e.Do(req{Method: "GET", Path: "/api/articles", Auth: twin}), http.StatusUnauthorized, newsletter.EUNAUTHORIZED)
	e.noServerErrors()
}
