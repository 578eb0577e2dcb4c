package api

import (
	"context"
	"net/http"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// honeypotField is a form field hidden from people; a bot that fills it in
// gets the usual answer and nothing is done.
const honeypotField = "website"

// checkInbox is the message of every accepted sign-up, whatever the state of
// the address, so the answer tells nobody whether an address is on the list.
const checkInbox = "Check your inbox: we have sent you an email to confirm your subscription."

// subscribeBody is the JSON answer to every accepted sign-up.
type subscribeBody struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// signupPage shows the sign-up form.
func (h *handler) signupPage(w http.ResponseWriter, r *http.Request) {
	d := &pageData{}
	h.choices(d, nil, "", "")
	h.render(w, r, http.StatusOK, "signup", d)
}

// subscribe signs a reader up from the form or from JSON, and answers 202
// with the same body whatever the address's state.
func (h *handler) subscribe(w http.ResponseWriter, r *http.Request) {
	ip := h.clientIP(r)
	if err := h.subscribers.allow(ip); err != nil {
		h.writeError(w, r, err)
		return
	}
	var req newsroom.SubscribeRequest
	form := false
	switch mt := mediaType(r.Header.Get("Content-Type")); {
	case isJSONType(mt):
		var in struct {
			Email     string   `json:"email"`
			Sections  []string `json:"sections"`
			Frequency string   `json:"frequency"`
			Format    string   `json:"format"`
		}
		if err := decodeJSON(w, r, &in); err != nil {
			h.writeError(w, r, err)
			return
		}
		req = newsroom.SubscribeRequest{Email: in.Email, Sections: in.Sections, Frequency: in.Frequency, Format: in.Format, Source: "api"}
	case isFormType(mt):
		form = true
		if err := parseForm(w, r); err != nil {
			h.writeError(w, r, err)
			return
		}
		if r.PostForm.Get(honeypotField) != "" {
			h.accepted(w, r)
			return
		}
		f := r.PostForm
		req = newsroom.SubscribeRequest{Email: f.Get("email"), Sections: f["sections"], Frequency: f.Get("frequency"), Format: f.Get("format"), Source: "form"}
	default:
		h.writeError(w, r, newsletter.Errorf(newsletter.EINVALID, "Send the sign-up form, or JSON with Content-Type: application/json."))
		return
	}
	req.IP = ip
	req.UserAgent = r.UserAgent()
	if err := h.svc.Subscribe(r.Context(), req); err != nil {
		if form && !wantsJSON(r) && newsletter.ErrorCode(err) == newsletter.EINVALID {
			// Show the form again, filled in, with what to fix.
			d := &pageData{Message: newsletter.ErrorMessage(err), Email: req.Email}
			freq, _ := newsletter.ParseFrequency(req.Frequency)
			format, _ := newsletter.ParseFormat(req.Format)
			h.choices(d, req.Sections, freq, format)
			h.render(w, r, http.StatusBadRequest, "signup", d)
			return
		}
		h.writeError(w, r, err)
		return
	}
	h.accepted(w, r)
}

// accepted is the one answer to a sign-up that was not refused.
func (h *handler) accepted(w http.ResponseWriter, r *http.Request) {
	if wantsJSON(r) {
		h.writeJSON(w, r, http.StatusAccepted, subscribeBody{Status: "pending", Message: checkInbox})
		return
	}
	h.render(w, r, http.StatusAccepted, "inbox", &pageData{Message: checkInbox})
}

// requestToken reads the token of a POST: a "token" field of the form or
// JSON body, else ?token= in the address (where RFC 8058 one-click
// unsubscribe puts it).
func requestToken(w http.ResponseWriter, r *http.Request) (string, error) {
	var tok string
	if isJSONType(mediaType(r.Header.Get("Content-Type"))) {
		var in struct {
			Token string `json:"token"`
		}
		if err := decodeJSON(w, r, &in); err != nil {
			return "", err
		}
		tok = in.Token
	} else {
		if err := parseForm(w, r); err != nil {
			return "", err
		}
		tok = r.PostForm.Get("token")
	}
	if tok == "" {
		tok = r.URL.Query().Get("token")
	}
	if tok == "" {
		return "", missingToken()
	}
	return tok, nil
}

// queryToken reads ?token= for a GET page.
func queryToken(r *http.Request) (string, error) {
	tok := r.URL.Query().Get("token")
	if tok == "" {
		return "", missingToken()
	}
	return tok, nil
}

func missingToken() error {
	return newsletter.Errorf(newsletter.EINVALID, "This link is incomplete. Please open it again from the email.")
}

// tokenPage marks an answer to a request that carries a reader's token:
// nothing may keep a copy of it.
func tokenPage(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}

// confirmPage shows the confirm button. It changes nothing, so a link
// scanner that follows the email's link does not confirm the address.
func (h *handler) confirmPage(w http.ResponseWriter, r *http.Request) {
	tokenPage(w)
	tok, err := queryToken(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	s, err := h.svc.ReaderByToken(r.Context(), tok, token.Confirm)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "confirm", &pageData{Email: s.Email, Token: tok})
}

// readerAction is a reader's POST with a token (in the form, a JSON body
// or the address): it calls act with it, then answers the reader's new
// status as JSON, or the page page returns. Errors get the error page or
// JSON, as every reader route's do.
func (h *handler) readerAction(w http.ResponseWriter, r *http.Request, act func(ctx context.Context, tok string) (*newsletter.Subscriber, error), page func(tok string, s *newsletter.Subscriber) (string, *pageData)) {
	tokenPage(w)
	tok, err := requestToken(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	s, err := act(r.Context(), tok)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if wantsJSON(r) {
		h.writeJSON(w, r, http.StatusOK, map[string]string{"status": string(s.Status)})
		return
	}
	name, data := page(tok, s)
	h.render(w, r, http.StatusOK, name, data)
}

// confirm confirms the reader named by the token; confirming twice is fine.
func (h *handler) confirm(w http.ResponseWriter, r *http.Request) {
	h.readerAction(w, r, h.svc.Confirm, func(_ string, s *newsletter.Subscriber) (string, *pageData) {
		return "confirmed", &pageData{Frequency: string(s.Frequency)}
	})
}

// unsubscribePage shows the unsubscribe button. It changes nothing.
func (h *handler) unsubscribePage(w http.ResponseWriter, r *http.Request) {
	tokenPage(w)
	tok, err := queryToken(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	s, err := h.svc.ReaderByToken(r.Context(), tok, token.Unsubscribe)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "unsubscribe", &pageData{Email: s.Email, Token: tok})
}

// unsubscribe unsubscribes the reader named by the token. It is the RFC 8058
// one-click endpoint as well as the page's button: a POST with the token in
// the address and the body List-Unsubscribe=One-Click, no cookie and no
// login, answered 200 without a redirect, as often as it comes.
func (h *handler) unsubscribe(w http.ResponseWriter, r *http.Request) {
	h.readerAction(w, r, h.svc.Unsubscribe, func(tok string, _ *newsletter.Subscriber) (string, *pageData) {
		// The goodbye page offers to undo, with the same token: a reader
		// who pressed the button by mistake gets back in one more press.
		return "unsubscribed", &pageData{Message: "You will get no more emails from us.", Token: tok}
	})
}

// undoUnsubscribe is the goodbye page's "undo": it puts the reader back on
// the list with the unsubscribe link's token, and only with it. Pressing it
// twice is fine.
func (h *handler) undoUnsubscribe(w http.ResponseWriter, r *http.Request) {
	h.readerAction(w, r, h.svc.Resubscribe, func(_ string, s *newsletter.Subscriber) (string, *pageData) {
		return "resubscribed", &pageData{Email: s.Email, Frequency: string(s.Frequency), Saved: s.Status == newsletter.StatusConfirmed}
	})
}

// preferencesPage shows the reader's choices in a form.
func (h *handler) preferencesPage(w http.ResponseWriter, r *http.Request) {
	tokenPage(w)
	tok, err := queryToken(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	s, err := h.svc.ReaderByToken(r.Context(), tok, token.Preferences)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.renderPreferences(w, r, s, tok, false)
}

func (h *handler) renderPreferences(w http.ResponseWriter, r *http.Request, s *newsletter.Subscriber, tok string, saved bool) {
	d := &pageData{Email: s.Email, Token: tok, Saved: saved}
	h.choices(d, s.Sections, s.Frequency, s.Format)
	h.render(w, r, http.StatusOK, "preferences", d)
}

// refusePreferences shows the preferences form again, as the reader filled
// it in, with what to fix; nothing was saved. When the token itself is bad
// there is no form to show, and the error page says so.
func (h *handler) refusePreferences(w http.ResponseWriter, r *http.Request, tok string, p newsroom.Preferences, refusal error) {
	s, err := h.svc.ReaderByToken(r.Context(), tok, token.Preferences)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	d := &pageData{Email: s.Email, Token: tok, Message: newsletter.ErrorMessage(refusal)}
	freq, _ := newsletter.ParseFrequency(p.Frequency)
	format, _ := newsletter.ParseFormat(p.Format)
	h.choices(d, p.Sections, freq, format)
	h.render(w, r, statusOf(newsletter.ErrorCode(refusal)), "preferences", d)
}

// preferencesBody is the JSON shape of a reader's preferences.
type preferencesBody struct {
	Sections  []string `json:"sections"`
	Frequency string   `json:"frequency"`
	Format    string   `json:"format"`
}

// savePreferences saves the reader's choices from the form or JSON.
func (h *handler) savePreferences(w http.ResponseWriter, r *http.Request) {
	tokenPage(w)
	var (
		p    newsroom.Preferences
		tok  = r.URL.Query().Get("token")
		form bool
	)
	switch mt := mediaType(r.Header.Get("Content-Type")); {
	case isJSONType(mt):
		var in preferencesBody
		if err := decodeJSON(w, r, &in); err != nil {
			h.writeError(w, r, err)
			return
		}
		p = newsroom.Preferences{Sections: in.Sections, Frequency: in.Frequency, Format: in.Format}
	case isFormType(mt):
		if err := parseForm(w, r); err != nil {
			h.writeError(w, r, err)
			return
		}
		form = true
		f := r.PostForm
		if t := f.Get("token"); t != "" {
			tok = t
		}
		p = newsroom.Preferences{Sections: f["sections"], Frequency: f.Get("frequency"), Format: f.Get("format")}
	default:
		h.writeError(w, r, newsletter.Errorf(newsletter.EINVALID, "Send the preferences form, or JSON with Content-Type: application/json."))
		return
	}
	if tok == "" {
		h.writeError(w, r, missingToken())
		return
	}
	s, err := h.svc.UpdatePreferences(r.Context(), tok, p)
	if err != nil {
		if form && !wantsJSON(r) && newsletter.ErrorCode(err) == newsletter.EINVALID {
			h.refusePreferences(w, r, tok, p, err)
			return
		}
		h.writeError(w, r, err)
		return
	}
	if wantsJSON(r) {
		sections := s.Sections
		if sections == nil {
			sections = []string{}
		}
		h.writeJSON(w, r, http.StatusOK, preferencesBody{Sections: sections, Frequency: string(s.Frequency), Format: string(s.Format)})
		return
	}
	h.renderPreferences(w, r, s, tok, true)
}

// archivePageSize is how many editions the archive page lists.
const archivePageSize = 30

// archive lists the sent editions, newest first.
func (h *handler) archive(w http.ResponseWriter, r *http.Request) {
	p, err := pageParam(r, archivePageSize)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	digests, next, err := h.svc.Archive(r.Context(), p)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if wantsJSON(r) {
		writeList(h, w, r, digests, next)
		return
	}
	h.render(w, r, http.StatusOK, "archive", &pageData{Digests: digests, Next: next})
}

// archivedDigest shows the web copy of a sent edition, the email's "view in
// browser" link.
func (h *handler) archivedDigest(w http.ResponseWriter, r *http.Request) {
	html, err := h.svc.ArchivedDigest(r.Context(), r.PathValue("id"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Security-Policy", digestCSP)
	hdr.Set("X-Frame-Options", "SAMEORIGIN")
	hdr.Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(html)
}
