package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
)

// The editors' console at /console is the JSON API's twin for people: it
// signs an editor in with an editor token, keeps them signed in with a
// cookie, and calls the same newsroom methods the API calls.
//
// The cookie holds a session the newsroom signed (StartEditorSession): it
// names the token, expires, and is checked against the store on every
// request, so nothing about sessions is kept here. It is HttpOnly, limited
// to /console, SameSite=Lax, and Secure whenever the request came over
// https. Every POST needs the session's CSRF token, and besides that
// http.CrossOriginProtection refuses POSTs a browser marks as cross-origin.

const (
	// sessionCookie is the name of the console's session cookie.
	sessionCookie = "broadsheet_console"
	// csrfField is the form field that carries the session's CSRF token.
	csrfField = "csrf"
	// consoleListSize is how many articles and digests the console lists.
	consoleListSize = 20
	// sendingRefresh is how often, in seconds, the frame with a sending
	// digest's counters reloads itself.
	sendingRefresh = 2
)

// consoleView is what the console pages show.
type consoleView struct {
	Editor  string // the editor token's name; "" on the sign-in page
	CSRF    string
	CanSend bool
	Notice  string // what the last action did

	Articles    []*newsletter.Article
	Digests     []*newsletter.Digest
	Frequencies []choice
	Intro       string

	Article *articleForm

	Digest   *newsroom.DigestStatus
	Progress int64 // readers settled (sent, skipped or failed)
	// Failures are the first failed copies of a digest that is not
	// sending, with why each failed.
	Failures []*newsletter.Delivery
	Variants []variantGroup
	Preview  string // the preview frame's address
	Showing  string // which variant the frame shows
	TestTo   string
}

// articleForm is the article editor's form.
type articleForm struct {
	ID, URL, Title, Summary, Author, ImageURL string
	Sections                                  []choice
}

// variantGroup lists the preview links of one format.
type variantGroup struct {
	Format string
	Links  []variantLink
}

// variantLink is one variant a digest can be previewed as.
type variantLink struct {
	Label, URL string
	Current    bool
}

// consoleNotices are the messages a redirect after a successful POST can
// name with ?done=. The page shows only these fixed texts, so the query
// cannot put words of an attacker's choosing on an editor's screen.
var consoleNotices = map[string]string{
	"signedout":         "You are signed out.",
	"article-created":   "Article added. It goes into the next digest of each frequency.",
	"article-updated":   "Article saved.",
	"article-withdrawn": "Article withdrawn: no further digest will carry it.",
	"test-sent":         "Test sent. Check your inbox.",
	"sending":           "Sending has started.",
}

// session is a signed-in editor.
type session struct {
	tok  *newsletter.EditorToken
	csrf string
}

// consoleFunc is a handler for a signed-in editor.
type consoleFunc func(w http.ResponseWriter, r *http.Request, s *session)

// consoleRoutes registers the console's routes on m.
func (h *handler) consoleRoutes(m *http.ServeMux) {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.renderErrorPage(w, r, http.StatusForbidden, "This form was sent from another site, so nothing was done.")
	}))
	guard := func(next consoleFunc) http.Handler { return cop.Handler(h.console(next)) }

	m.HandleFunc("GET /console", h.consoleHome)
	m.Handle("POST /console/signin", cop.Handler(http.HandlerFunc(h.consoleSignIn)))
	m.Handle("POST /console/signout", guard(h.consoleSignOut))
	m.Handle("GET /console/articles/new", guard(h.consoleNewArticle))
	m.Handle("POST /console/articles", guard(h.consoleSubmitArticle))
	m.Handle("GET /console/articles/{id}", guard(h.consoleArticle))
	m.Handle("POST /console/articles/{id}", guard(h.consoleSaveArticle))
	m.Handle("POST /console/articles/{id}/withdraw", guard(h.consoleWithdrawArticle))
	m.Handle("POST /console/digests", guard(h.consoleBuildDigest))
	m.Handle("GET /console/digests/{id}", guard(h.consoleDigest))
	m.Handle("GET /console/digests/{id}/counters", guard(h.consoleCounters))
	m.Handle("GET /console/digests/{id}/preview", guard(h.consolePreview))
	m.Handle("POST /console/digests/{id}/test", guard(h.consoleTest))
	m.Handle("POST /console/digests/{id}/send", guard(h.consoleSend))
}

// console wraps next so that it runs only for a signed-in editor, and a
// POST only with the session's CSRF token. A page asked for without a
// session sends the browser to the sign-in form; a POST without one is
// refused, with nothing done.
func (h *handler) console(next consoleFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := h.consoleSession(r)
		if err != nil {
			if newsletter.ErrorCode(err) != newsletter.EUNAUTHORIZED {
				h.writeError(w, r, err)
				return
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console", http.StatusSeeOther)
				return
			}
			h.renderSignIn(w, r, http.StatusUnauthorized, newsletter.ErrorMessage(err))
			return
		}
		if r.Method == http.MethodPost {
			if err := parseForm(w, r); err != nil {
				h.writeError(w, r, err)
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostForm.Get(csrfField)), []byte(s.csrf)) != 1 {
				h.renderErrorPage(w, r, http.StatusForbidden, "This form has expired, so nothing was done. Go back, reload the page and try again.")
				return
			}
		}
		next(w, r, s)
	})
}

// consoleSession returns the editor whose session cookie r carries.
// EUNAUTHORIZED when there is none or it has ended.
func (h *handler) consoleSession(r *http.Request) (*session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > maxSecretLen {
		return nil, newsletter.Errorf(newsletter.EUNAUTHORIZED, "Please sign in with your editor token.")
	}
	tok, err := h.svc.EditorSession(r.Context(), c.Value)
	if err != nil {
		return nil, err
	}
	if !tok.Can(newsletter.ScopeEdit) {
		return nil, newsletter.Errorf(newsletter.EUNAUTHORIZED, "This token may not edit, so it cannot use the console.")
	}
	return &session{tok: tok, csrf: csrfToken(c.Value)}, nil
}

// csrfToken derives a session's CSRF token from the session itself. The
// session is unguessable and HttpOnly, so another site can neither read
// nor compute the token; deriving it keeps the server free of state.
func csrfToken(session string) string {
	sum := sha256.Sum256([]byte("broadsheet console csrf\x00" + session))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// secureRequest reports whether the browser reached us over https: by TLS
// here, or through a proxy (API Gateway, a load balancer) that says so. A
// client lying in X-Forwarded-Proto only denies itself its own cookie.
func secureRequest(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// setSession sets (or, with an empty value, clears) the session cookie.
func setSession(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/console", MaxAge: maxAge,
		HttpOnly: true, Secure: secureRequest(r), SameSite: http.SameSiteLaxMode,
	})
}

// consoleHome is the sign-in form, or for a signed-in editor the list of
// articles and digests.
func (h *handler) consoleHome(w http.ResponseWriter, r *http.Request) {
	s, err := h.consoleSession(r)
	switch {
	case newsletter.ErrorCode(err) == newsletter.EUNAUTHORIZED:
		msg := ""
		if _, cerr := r.Cookie(sessionCookie); cerr == nil {
			msg = newsletter.ErrorMessage(err)
		}
		h.renderSignInNotice(w, r, http.StatusOK, msg, consoleNotices[r.URL.Query().Get("done")])
		return
	case err != nil:
		h.writeError(w, r, err)
		return
	}
	h.renderHome(w, r, s, http.StatusOK, "", "")
}

func (h *handler) renderSignIn(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.renderSignInNotice(w, r, status, msg, "")
}

func (h *handler) renderSignInNotice(w http.ResponseWriter, r *http.Request, status int, msg, notice string) {
	h.render(w, r, status, "console-signin", &pageData{Message: msg, Console: &consoleView{Notice: notice}})
}

// renderHome shows the console's front page with status, an error message
// msg (or a notice) and the intro the editor typed, if any.
func (h *handler) renderHome(w http.ResponseWriter, r *http.Request, s *session, status int, msg, intro string) {
	v := h.view(r, s)
	v.Intro = intro
	var err error
	if v.Articles, _, err = h.svc.Articles(r.Context(), newsletter.Page{Limit: consoleListSize}); err != nil {
		h.writeError(w, r, err)
		return
	}
	if v.Digests, _, err = h.svc.Digests(r.Context(), newsletter.DigestFilter{}, newsletter.Page{Limit: consoleListSize}); err != nil {
		h.writeError(w, r, err)
		return
	}
	// Instant emails go out per article on their own: an editor builds
	// daily and weekly digests only.
	for i, f := range newsletter.DigestFrequencies {
		v.Frequencies = append(v.Frequencies, choice{string(f), frequencyLabel(f), i == 0})
	}
	h.render(w, r, status, "console", &pageData{Message: msg, Console: v})
}

// view starts a console page for s.
func (h *handler) view(r *http.Request, s *session) *consoleView {
	return &consoleView{
		Editor: s.tok.Name, CSRF: s.csrf, CanSend: s.tok.Can(newsletter.ScopeSend),
		Notice: consoleNotices[r.URL.Query().Get("done")],
	}
}

// consoleSignIn checks an editor token and starts a session. Failures are
// rate-limited per client IP, as the API's are.
func (h *handler) consoleSignIn(w http.ResponseWriter, r *http.Request) {
	ip := h.clientIP(r)
	if err := h.authFails.check(ip); err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := parseForm(w, r); err != nil {
		h.writeError(w, r, err)
		return
	}
	secret := strings.TrimSpace(r.PostForm.Get("token"))
	if secret == "" {
		h.renderSignIn(w, r, http.StatusBadRequest, "Paste your editor token (it starts with bs_).")
		return
	}
	var (
		value string
		tok   *newsletter.EditorToken
		err   error
	)
	if len(secret) > maxSecretLen {
		err = newsletter.Errorf(newsletter.EUNAUTHORIZED, "That editor token is not valid.")
	} else {
		value, tok, _, err = h.svc.StartEditorSession(r.Context(), secret)
	}
	if err != nil {
		if newsletter.ErrorCode(err) != newsletter.EUNAUTHORIZED {
			h.writeError(w, r, err)
			return
		}
		h.authFails.spend(ip)
		h.renderSignIn(w, r, http.StatusUnauthorized, "That editor token is not valid.")
		return
	}
	if !tok.Can(newsletter.ScopeEdit) {
		h.renderSignIn(w, r, http.StatusForbidden, "This token may not edit, so it cannot use the console.")
		return
	}
	setSession(w, r, value, int(newsroom.EditorSessionTTL.Seconds()))
	http.Redirect(w, r, "/console", http.StatusSeeOther)
}

// consoleSignOut forgets the session in this browser.
func (h *handler) consoleSignOut(w http.ResponseWriter, r *http.Request, _ *session) {
	setSession(w, r, "", -1)
	http.Redirect(w, r, "/console?done=signedout", http.StatusSeeOther)
}

// consoleNewArticle shows an empty article form.
func (h *handler) consoleNewArticle(w http.ResponseWriter, r *http.Request, s *session) {
	h.renderArticle(w, r, s, http.StatusOK, "", &articleForm{}, nil)
}

// consoleArticle shows an article in the form, to edit.
func (h *handler) consoleArticle(w http.ResponseWriter, r *http.Request, s *session) {
	a, err := h.svc.Article(r.Context(), r.PathValue("id"))
	if err != nil {
		h.consoleError(w, r, err)
		return
	}
	f := &articleForm{ID: a.ID, URL: a.URL, Title: a.Title, Summary: a.Summary, Author: a.Author, ImageURL: a.ImageURL}
	h.renderArticle(w, r, s, http.StatusOK, "", f, a.Sections)
}

func (h *handler) renderArticle(w http.ResponseWriter, r *http.Request, s *session, status int, msg string, f *articleForm, sections []string) {
	for _, sec := range h.svc.Sections() {
		f.Sections = append(f.Sections, choice{sec.Slug, sec.Name, slices.Contains(sections, sec.Slug)})
	}
	v := h.view(r, s)
	v.Article = f
	h.render(w, r, status, "console-article", &pageData{Message: msg, Console: v})
}

// postedArticle reads the article form.
func postedArticle(r *http.Request) (*articleForm, []string) {
	f := r.PostForm
	return &articleForm{
		URL: f.Get("url"), Title: f.Get("title"), Summary: f.Get("summary"),
		Author: f.Get("author"), ImageURL: f.Get("imageUrl"),
	}, f["sections"]
}

// consoleSubmitArticle adds an article, or updates the one at its URL, as
// POST /api/articles does.
func (h *handler) consoleSubmitArticle(w http.ResponseWriter, r *http.Request, s *session) {
	in, sections := postedArticle(r)
	_, created, err := h.svc.SubmitArticle(r.Context(), newsroom.ArticleInput{
		URL: in.URL, Title: in.Title, Summary: in.Summary, Author: in.Author, ImageURL: in.ImageURL, Sections: sections,
	})
	if err != nil {
		h.refuseArticle(w, r, s, err, in, sections)
		return
	}
	done := "article-updated"
	if created {
		done = "article-created"
	}
	http.Redirect(w, r, "/console?done="+done, http.StatusSeeOther)
}

// consoleSaveArticle saves an edited article; its URL stays.
func (h *handler) consoleSaveArticle(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	in, sections := postedArticle(r)
	if sections == nil {
		sections = []string{}
	}
	_, err := h.svc.UpdateArticle(r.Context(), id, newsroom.ArticlePatch{
		Title: &in.Title, Summary: &in.Summary, Author: &in.Author, ImageURL: &in.ImageURL, Sections: &sections,
	})
	if err != nil {
		// The form shows the URL the article has, not one a crafted
		// request claimed.
		if a, aerr := h.svc.Article(r.Context(), id); aerr == nil {
			in.ID, in.URL = a.ID, a.URL
		} else {
			h.consoleError(w, r, aerr)
			return
		}
		h.refuseArticle(w, r, s, err, in, sections)
		return
	}
	http.Redirect(w, r, "/console?done=article-updated", http.StatusSeeOther)
}

// refuseArticle shows the article form again, as filled in, with what to
// fix; nothing was saved.
func (h *handler) refuseArticle(w http.ResponseWriter, r *http.Request, s *session, err error, in *articleForm, sections []string) {
	if status := statusOf(newsletter.ErrorCode(err)); status == http.StatusInternalServerError || status == http.StatusNotFound {
		h.consoleError(w, r, err)
		return
	}
	h.renderArticle(w, r, s, statusOf(newsletter.ErrorCode(err)), newsletter.ErrorMessage(err), in, sections)
}

// consoleWithdrawArticle withdraws an article from future digests.
func (h *handler) consoleWithdrawArticle(w http.ResponseWriter, r *http.Request, _ *session) {
	if err := h.svc.DeleteArticle(r.Context(), r.PathValue("id")); err != nil {
		h.consoleError(w, r, err)
		return
	}
	http.Redirect(w, r, "/console?done=article-withdrawn", http.StatusSeeOther)
}

// consoleBuildDigest builds this period's digest of a frequency, as a
// draft to preview and test before sending.
func (h *handler) consoleBuildDigest(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	st, _, err := h.svc.CreateDigest(r.Context(), newsroom.DigestRequest{Frequency: f.Get("frequency"), Intro: f.Get("intro")})
	if err != nil {
		if statusOf(newsletter.ErrorCode(err)) == http.StatusInternalServerError {
			h.writeError(w, r, err)
			return
		}
		h.renderHome(w, r, s, statusOf(newsletter.ErrorCode(err)), newsletter.ErrorMessage(err), f.Get("intro"))
		return
	}
	http.Redirect(w, r, digestPath(st.ID), http.StatusSeeOther)
}

func digestPath(id string) string { return "/console/digests/" + url.PathEscape(id) }

// consoleDigest shows a digest: its counters, which move while it goes
// out, a preview as any variant, and the test and send buttons.
func (h *handler) consoleDigest(w http.ResponseWriter, r *http.Request, s *session) {
	h.renderDigest(w, r, s, http.StatusOK, "", "")
}

// consoleFailures is how many failed copies the digest page lists.
const consoleFailures = 10

// renderDigest shows the digest page with status and an error message.
func (h *handler) renderDigest(w http.ResponseWriter, r *http.Request, s *session, status int, msg, testTo string) {
	st, err := h.svc.Digest(r.Context(), r.PathValue("id"))
	if err != nil {
		h.consoleError(w, r, err)
		return
	}
	v := h.view(r, s)
	v.Digest, v.TestTo = st, testTo
	if st.Status == newsletter.DigestSent && r.URL.Query().Get("done") == "sending" {
		// The page kept reloading the address the send redirected to.
		v.Notice = "Sent: every reader is accounted for."
	}
	c := st.Counters
	v.Progress = c.Sent + c.Skipped + c.Failed
	if c.Failed > 0 && st.Status != newsletter.DigestSending {
		// Not while sending: the counts still move, and the rows are
		// found by reading the digest's ledger.
		rows, _, err := h.svc.Deliveries(r.Context(), st.ID, newsletter.DeliveryFilter{Status: newsletter.DeliveryFailed}, newsletter.Page{Limit: consoleFailures})
		if err != nil {
			h.consoleError(w, r, err)
			return
		}
		v.Failures = rows
	}
	q := r.URL.Query()
	format, ferr := newsletter.ParseFormat(q.Get("format"))
	if ferr != nil && msg == "" {
		status, msg = http.StatusBadRequest, newsletter.ErrorMessage(ferr)
	}
	if ferr != nil {
		format = newsletter.FormatFull
	}
	section := q.Get("section")
	if section != "" && !slices.Contains(st.Sections(), section) {
		if msg == "" {
			status, msg = http.StatusBadRequest, "This digest has no such section."
		}
		section = ""
	}
	v.Variants, v.Showing = variants(st.Digest, format, section)
	pq := url.Values{"format": {string(format)}}
	if section != "" {
		pq.Set("sections", section)
	}
	v.Preview = digestPath(st.ID) + "/preview?" + pq.Encode()
	h.render(w, r, status, "console-digest", &pageData{Message: msg, Console: v})
}

// consoleCounters is a digest's counters alone, for the frame on its page:
// while the digest goes out it reloads itself, and the page around it, with
// the test form an editor may be typing in, stays put.
func (h *handler) consoleCounters(w http.ResponseWriter, r *http.Request, s *session) {
	st, err := h.svc.Digest(r.Context(), r.PathValue("id"))
	if err != nil {
		h.consoleError(w, r, err)
		return
	}
	v := h.view(r, s)
	v.Digest = st
	c := st.Counters
	v.Progress = c.Sent + c.Skipped + c.Failed
	d := &pageData{Console: v, Frame: true}
	if st.Status == newsletter.DigestSending {
		d.Refresh = sendingRefresh
	}
	h.render(w, r, http.StatusOK, "console-counters", d)
}

// variants lists the variants a digest can be previewed as: each format,
// for every section and for a reader of each one section the digest
// covers. It also names the one being shown.
func variants(d *newsletter.Digest, format newsletter.Format, section string) ([]variantGroup, string) {
	showing := ""
	var groups []variantGroup
	for _, f := range newsletter.Formats {
		g := variantGroup{Format: formatLabel(f)}
		for _, sec := range append([]string{""}, d.Sections()...) {
			label := "All sections"
			if sec != "" {
				label = "Only " + sec
			}
			q := url.Values{"format": {string(f)}}
			if sec != "" {
				q.Set("section", sec)
			}
			cur := f == format && sec == section
			if cur {
				showing = g.Format + ", " + strings.ToLower(label[:1]) + label[1:]
			}
			g.Links = append(g.Links, variantLink{Label: label, URL: digestPath(d.ID) + "?" + q.Encode() + "#preview", Current: cur})
		}
		groups = append(groups, g)
	}
	return groups, showing
}

// consolePreview is the digest exactly as a reader of a variant gets it,
// for the console's preview frame.
func (h *handler) consolePreview(w http.ResponseWriter, r *http.Request, _ *session) {
	h.writePreview(w, r)
}

// consoleTest sends the editor a test copy.
func (h *handler) consoleTest(w http.ResponseWriter, r *http.Request, s *session) {
	to := r.PostForm.Get("to")
	if err := requireSend(s.tok); err != nil {
		h.refuseDigest(w, r, s, err, to)
		return
	}
	if err := h.svc.SendTest(r.Context(), r.PathValue("id"), to); err != nil {
		h.refuseDigest(w, r, s, err, to)
		return
	}
	http.Redirect(w, r, digestPath(r.PathValue("id"))+"?done=test-sent", http.StatusSeeOther)
}

// consoleSend starts sending the digest; it needs the send scope.
func (h *handler) consoleSend(w http.ResponseWriter, r *http.Request, s *session) {
	if err := requireSend(s.tok); err != nil {
		h.refuseDigest(w, r, s, err, "")
		return
	}
	if _, err := h.svc.Send(r.Context(), r.PathValue("id")); err != nil {
		h.refuseDigest(w, r, s, err, "")
		return
	}
	http.Redirect(w, r, digestPath(r.PathValue("id"))+"?done=sending", http.StatusSeeOther)
}

// refuseDigest shows the digest page again with why the action was
// refused.
func (h *handler) refuseDigest(w http.ResponseWriter, r *http.Request, s *session, err error, testTo string) {
	if status := statusOf(newsletter.ErrorCode(err)); status == http.StatusInternalServerError || status == http.StatusNotFound {
		h.consoleError(w, r, err)
		return
	}
	h.renderDigest(w, r, s, statusOf(newsletter.ErrorCode(err)), newsletter.ErrorMessage(err), testTo)
}

// consoleError answers a console request that cannot show its page.
func (h *handler) consoleError(w http.ResponseWriter, r *http.Request, err error) {
	h.writeError(w, r, err)
}
