package api

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/render"
)

// maxSecretLen is the longest bearer secret passed to the service; anything
// longer is no secret Broadsheet made.
const maxSecretLen = 512

// editorFunc is a handler for an authenticated editor.
type editorFunc func(w http.ResponseWriter, r *http.Request, tok *newsletter.EditorToken)

// editor wraps next so that it runs only for a bearer token with the edit
// scope. Failed attempts are rate-limited per client IP, so secrets cannot
// be guessed at speed.
func (h *handler) editor(next editorFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := h.clientIP(r)
		if err := h.authFails.check(ip); err != nil {
			h.writeError(w, r, err)
			return
		}
		secret, ok := bearer(r)
		if !ok {
			h.writeError(w, r, newsletter.Errorf(newsletter.EUNAUTHORIZED, "Send an editor token: Authorization: Bearer <token>."))
			return
		}
		var (
			tok *newsletter.EditorToken
			err error
		)
		if len(secret) > maxSecretLen {
			err = newsletter.Errorf(newsletter.EUNAUTHORIZED, "The editor token is not valid.")
		} else {
			tok, err = h.svc.Authenticate(r.Context(), secret)
		}
		if err != nil {
			if newsletter.ErrorCode(err) == newsletter.EUNAUTHORIZED {
				h.authFails.spend(ip)
			}
			h.writeError(w, r, err)
			return
		}
		if !tok.Can(newsletter.ScopeEdit) {
			h.writeError(w, r, newsletter.Errorf(newsletter.EFORBIDDEN, "This token may not edit."))
			return
		}
		next(w, r, tok)
	})
}

// bearer returns the secret of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	secret = strings.TrimSpace(secret)
	return secret, secret != ""
}

// requireSend refuses a token without the send scope.
func requireSend(tok *newsletter.EditorToken) error {
	if !tok.Can(newsletter.ScopeSend) {
		return newsletter.Errorf(newsletter.EFORBIDDEN, "This token may not send digests: it needs the %s scope.", newsletter.ScopeSend)
	}
	return nil
}

// articleBody is the JSON an editor submits for an article.
type articleBody struct {
	URL         string    `json:"url"`
	Title       string    `json:"title"`
	Summary     string    `json:"summary"`
	Author      string    `json:"author"`
	ImageURL    string    `json:"imageUrl"`
	Sections    []string  `json:"sections"`
	PublishedAt time.Time `json:"publishedAt"`
}

// submitArticle adds an article, or updates the one at the same URL:
// 201 for a new article, 200 for an update.
func (h *handler) submitArticle(w http.ResponseWriter, r *http.Request, _ *newsletter.EditorToken) {
	var in articleBody
	if err := decodeJSON(w, r, &in); err != nil {
		h.writeError(w, r, err)
		return
	}
	a, created, err := h.svc.SubmitArticle(r.Context(), newsroom.ArticleInput{
		URL: in.URL, Title: in.Title, Summary: in.Summary, Author: in.Author,
		ImageURL: in.ImageURL, Sections: in.Sections, PublishedAt: in.PublishedAt,
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/articles/"+url.PathEscape(a.ID))
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	h.writeJSON(w, r, status, a)
}

// listArticles lists articles, newest first.
func (h *handler) listArticles(w http.ResponseWriter, r *http.Request, _ *newsletter.EditorToken) {
	p, err := pageParam(r, newsletter.DefaultPageSize)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	items, next, err := h.svc.Articles(r.Context(), p)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeList(h, w, r, items, next)
}

func (h *handler) getArticle(w http.ResponseWriter, r *http.Request, _ *newsletter.EditorToken) {
	a, err := h.svc.Article(r.Context(), r.PathValue("id"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, r, http.StatusOK, a)
}

// articlePatch is the JSON of a PATCH: absent or null fields stay as they
// are.
type articlePatch struct {
	Title       *string    `json:"title"`
	Summary     *string    `json:"summary"`
	Author      *string    `json:"author"`
	ImageURL    *string    `json:"imageUrl"`
	Sections    *[]string  `json:"sections"`
	PublishedAt *time.Time `json:"publishedAt"`
}

func (h *handler) patchArticle(w http.ResponseWriter, r *http.Request, _ *newsletter.EditorToken) {
	var in articlePatch
	if err := decodeJSON(w, r, &in); err != nil {
		h.writeError(w, r, err)
		return
	}
	a, err := h.svc.UpdateArticle(r.Context(), r.PathValue("id"), newsroom.ArticlePatch{
		Title: in.Title, Summary: in.Summary, Author: in.Author, ImageURL: in.ImageURL,
		Sections: in.Sections, PublishedAt: in.PublishedAt,
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, r, http.StatusOK, a)
}

func (h *handler) deleteArticle(w http.ResponseWriter, r *http.Request, _ *newsletter.EditorToken) {
	if err := h.svc.DeleteArticle(r.Context(), r.PathValue("id")); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// digestBody is the JSON an editor sends to build a digest.
type digestBody struct {
	Frequency string `json:"frequency"`
	Intro     string `json:"intro"`
	Send      bool   `json:"send"`
}

// createDigest builds the digest of the current period, or returns the one
// already built: 201 when new, 200 when it existed. With send it also
// starts sending, which needs the send scope.
func (h *handler) createDigest(w http.ResponseWriter, r *http.Request, tok *newsletter.EditorToken) {
	var in digestBody
	if err := decodeJSON(w, r, &in); err != nil {
		h.writeError(w, r, err)
		return
	}
	if in.Send {
		if err := requireSend(tok); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	st, created, err := h.svc.CreateDigest(r.Context(), newsroom.DigestRequest{Frequency: in.Frequency, Intro: in.Intro, Send: in.Send})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/digests/"+url.PathEscape(st.ID))
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	h.writeJSON(w, r, status, st)
}

// listDigests lists digests, newest first, by ?frequency= and ?status=.
func (h *handler) listDigests(w http.ResponseWriter, r *http.Request, _ *newsletter.EditorToken) {
	p, err := pageParam(r, newsletter.DefaultPageSize)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var f newsletter.DigestFilter
	q := r.URL.Query()
	if s := q.Get("frequency"); s != "" {
		if f.Frequency, err = newsletter.ParseFrequency(s); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	switch st := newsletter.DigestStatus(q.Get("status")); st {
	case "", newsletter.DigestDraft, newsletter.DigestSending, newsletter.DigestPaused, newsletter.DigestSent:
		f.Status = st
	default:
		h.writeError(w, r, newsletter.Errorf(newsletter.EINVALID, "Status must be one of: draft, sending, paused, sent."))
		return
	}
	items, next, err := h.svc.Digests(r.Context(), f, p)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeList(h, w, r, items, next)
}

// getDigest returns a digest with its delivery counters.
func (h *handler) getDigest(w http.ResponseWriter, r *http.Request, _ *newsletter.EditorToken) {
	st, err := h.svc.Digest(r.Context(), r.PathValue("id"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, r, http.StatusOK, st)
}

// listDeliveries lists a digest's ledger rows, ?status=failed (or any
// other status) for those only: each row says why a copy failed or was
// skipped.
func (h *handler) listDeliveries(w http.ResponseWriter, r *http.Request, _ *newsletter.EditorToken) {
	p, err := pageParam(r, newsletter.DefaultPageSize)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	f := newsletter.DeliveryFilter{Status: newsletter.DeliveryStatus(r.URL.Query().Get("status"))}
	items, next, err := h.svc.Deliveries(r.Context(), r.PathValue("id"), f, p)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeList(h, w, r, items, next)
}

// previewDigest returns the digest exactly as a reader of ?format= who chose
// ?sections=a,b gets it: HTML, or plain text for format=text.
func (h *handler) previewDigest(w http.ResponseWriter, r *http.Request, _ *newsletter.EditorToken) {
	h.writePreview(w, r)
}

// writePreview answers with the preview that ?format= and ?sections= ask
// for, of the digest named in the path; the API and the console share it.
func (h *handler) writePreview(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format, err := newsletter.ParseFormat(q.Get("format"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var sections []string
	if s := q.Get("sections"); s != "" {
		sections = strings.Split(s, ",")
	}
	html, text, err := h.svc.Preview(r.Context(), r.PathValue("id"), render.Variant{Sections: sections, Format: format})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	hdr := w.Header()
	// The console shows every variant in a frame of its own pages, the
	// plain-text one too.
	hdr.Set("X-Frame-Options", "SAMEORIGIN")
	body := html
	if format == newsletter.FormatText {
		hdr.Set("Content-Type", "text/plain; charset=utf-8")
		body = text
	} else {
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		hdr.Set("Content-Security-Policy", digestCSP)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// testDigest sends one copy of the digest to an editor's address. It
// needs the send scope: a test goes to any address it is given, so an
// edit-only token could otherwise mail strangers. What an edit-only token
// may see is the preview.
func (h *handler) testDigest(w http.ResponseWriter, r *http.Request, tok *newsletter.EditorToken) {
	if err := requireSend(tok); err != nil {
		h.writeError(w, r, err)
		return
	}
	var in struct {
		To string `json:"to"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := h.svc.SendTest(r.Context(), r.PathValue("id"), in.To); err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, r, http.StatusAccepted, map[string]string{"status": "accepted"})
}

// sendDigest starts sending a digest to its readers; asking again is fine.
func (h *handler) sendDigest(w http.ResponseWriter, r *http.Request, tok *newsletter.EditorToken) {
	if err := requireSend(tok); err != nil {
		h.writeError(w, r, err)
		return
	}
	st, err := h.svc.Send(r.Context(), r.PathValue("id"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, r, http.StatusAccepted, st)
}

// listSubscribers lists readers by ?status= and ?frequency=.
func (h *handler) listSubscribers(w http.ResponseWriter, r *http.Request, _ *newsletter.EditorToken) {
	p, err := pageParam(r, newsletter.DefaultPageSize)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var f newsletter.SubscriberFilter
	q := r.URL.Query()
	if s := q.Get("status"); s != "" {
		if f.Status = newsletter.SubscriberStatus(s); !f.Status.Valid() {
			h.writeError(w, r, newsletter.Errorf(newsletter.EINVALID, "Status must be one of: pending, confirmed, unsubscribed, bounced, complained."))
			return
		}
	}
	if s := q.Get("frequency"); s != "" {
		if f.Frequency, err = newsletter.ParseFrequency(s); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	items, next, err := h.svc.Subscribers(r.Context(), f, p)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeList(h, w, r, items, next)
}

// exportSubscribers downloads every reader as CSV. The CSV is built in
// memory first so that a failure half-way is a clean 500, not a truncated
// file that looks complete.
func (h *handler) exportSubscribers(w http.ResponseWriter, r *http.Request, _ *newsletter.EditorToken) {
	var buf bytes.Buffer
	if err := h.svc.ExportSubscribers(r.Context(), &buf); err != nil {
		h.writeError(w, r, err)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/csv; charset=utf-8")
	hdr.Set("Content-Disposition", `attachment; filename="subscribers-`+h.now().UTC().Format("2006-01-02")+`.csv"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// importBody is the JSON answer to an import.
type importBody struct {
	Added     int `json:"added"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
}

// importSubscribers adds or updates readers from a CSV sent as the body
// (text/csv) or as the "file" field of a multipart form. The whole file is
// read first, so a file over the limit is refused before anything is
// written.
func (h *handler) importSubscribers(w http.ResponseWriter, r *http.Request, _ *newsletter.EditorToken) {
	data, err := readCSV(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	res, err := h.svc.ImportSubscribers(r.Context(), bytes.NewReader(data))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, r, http.StatusOK, importBody{Added: res.Added, Updated: res.Updated, Unchanged: res.Unchanged})
}

// readCSV reads an import's CSV, at most MaxImportBytes.
func readCSV(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxImportBytes)
	tooBig := newsletter.Errorf(newsletter.ETOOLARGE, "The file is too large: the limit is %d bytes.", MaxImportBytes)
	switch mediaType(r.Header.Get("Content-Type")) {
	case "text/csv", "application/csv":
		data, err := io.ReadAll(r.Body)
		if tooLarge(err) {
			return nil, tooBig
		} else if err != nil {
			return nil, newsletter.Errorf(newsletter.EINVALID, "The body could not be read.")
		}
		return data, nil
	case "multipart/form-data":
		mr, err := r.MultipartReader()
		if err != nil {
			return nil, newsletter.Errorf(newsletter.EINVALID, "The form could not be read.")
		}
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil, newsletter.Errorf(newsletter.EINVALID, "Upload the CSV in a form field named file.")
			}
			if tooLarge(err) {
				return nil, tooBig
			} else if err != nil {
				return nil, newsletter.Errorf(newsletter.EINVALID, "The form could not be read.")
			}
			if part.FormName() != "file" {
				continue
			}
			data, err := io.ReadAll(part)
			if tooLarge(err) {
				return nil, tooBig
			} else if err != nil {
				return nil, newsletter.Errorf(newsletter.EINVALID, "The form could not be read.")
			}
			return data, nil
		}
	}
	return nil, newsletter.Errorf(newsletter.EINVALID, "Content-Type must be text/csv or multipart/form-data.")
}

// eraseSubscriber removes every trace of a reader, for erasure requests.
func (h *handler) eraseSubscriber(w http.ResponseWriter, r *http.Request, _ *newsletter.EditorToken) {
	if err := h.svc.EraseSubscriber(r.Context(), r.PathValue("email")); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
