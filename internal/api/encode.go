package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// codeMethod is the error code of a 405 answer. It is not a newsletter code
// because no service ever returns it: only the router knows a method is
// wrong.
const codeMethod = "method_not_allowed"

// apiCSP is the Content-Security-Policy of JSON and other non-page answers:
// nothing may load and nothing may frame them.
const apiCSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// digestCSP is the Content-Security-Policy of a digest shown on the web (the
// archive copy and the editors' preview). Email HTML is styled with style
// attributes, which a hash cannot allow, so styles are 'unsafe-inline'; no
// script may run whatever the digest holds, and images load from anywhere
// an email's images could.
const digestCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"

// statusOf maps an error code to its HTTP status. It is the one place that
// does so.
func statusOf(code string) int {
	switch code {
	case newsletter.EINVALID:
		return http.StatusBadRequest
	case newsletter.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case newsletter.EFORBIDDEN:
		return http.StatusForbidden
	case newsletter.ENOTFOUND:
		return http.StatusNotFound
	case codeMethod:
		return http.StatusMethodNotAllowed
	case newsletter.ECONFLICT:
		return http.StatusConflict
	case newsletter.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case newsletter.ERATELIMITED:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError answers with err: its code decides the status, its message is
// shown, except for internal errors, which are logged and shown as
// "Internal error.". JSON clients get errorBody, browsers an HTML page.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := newsletter.ErrorCode(err)
	status := statusOf(code)
	msg := newsletter.ErrorMessage(err)
	if status == http.StatusInternalServerError {
		code, msg = newsletter.EINTERNAL, "Internal error."
		h.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	hdr := w.Header()
	switch status {
	case http.StatusUnauthorized:
		hdr.Set("WWW-Authenticate", `Bearer realm="broadsheet"`)
	case http.StatusTooManyRequests:
		hdr.Set("Retry-After", strconv.Itoa(retryAfterSeconds(err)))
	}
	hdr.Set("Cache-Control", "no-store")
	if wantsJSON(r) {
		h.writeJSON(w, r, status, errorBody{errorDetail{code, msg}})
		return
	}
	h.renderErrorPage(w, r, status, msg)
}

// rateLimitError is an ERATELIMITED error that knows when to try again.
type rateLimitError struct {
	err   *newsletter.Error
	after time.Duration
}

func (e *rateLimitError) Error() string { return e.err.Error() }
func (e *rateLimitError) Unwrap() error { return e.err }

// retryAfterSeconds returns how long a rate-limited client should wait: the
// limiter's own estimate when it gave one, else a minute.
func retryAfterSeconds(err error) int {
	var rl *rateLimitError
	if errors.As(err, &rl) {
		return max(1, int(math.Ceil(rl.after.Seconds())))
	}
	return 60
}

func notFound() error {
	return newsletter.Errorf(newsletter.ENOTFOUND, "There is nothing at this address.")
}

func methodNotAllowed() error {
	return &newsletter.Error{Code: codeMethod, Message: "This address does not accept that method."}
}

// writeJSON answers with v as JSON. It encodes into a buffer first so that
// an encoding failure still becomes a clean 500.
func (h *handler) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		if _, isErr := v.(errorBody); isErr {
			http.Error(w, "Internal error.", http.StatusInternalServerError)
			return
		}
		h.writeError(w, r, fmt.Errorf("encode JSON answer: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// listBody is the JSON shape of every list answer.
type listBody[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

// writeList answers with one page of a listing.
func writeList[T any](h *handler, w http.ResponseWriter, r *http.Request, items []T, next string) {
	if items == nil {
		items = []T{}
	}
	h.writeJSON(w, r, http.StatusOK, listBody[T]{Items: items, Next: next})
}

// mediaType returns the lower-case media type of a Content-Type header, or
// "" when there is none or it does not parse.
func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return strings.ToLower(mt)
}

// isJSONType reports whether the media type is JSON.
func isJSONType(mt string) bool {
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// isFormType reports whether the media type is an HTML form's.
func isFormType(mt string) bool {
	return mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data"
}

// wantsJSON reports whether r comes from a program rather than a browser:
// everything under /api/, a JSON body, or an Accept header that asks for
// JSON and not HTML.
func wantsJSON(r *http.Request) bool {
	p := r.URL.Path
	if p == "/api" || strings.HasPrefix(p, "/api/") || p == "/healthz" {
		return true
	}
	if isJSONType(mediaType(r.Header.Get("Content-Type"))) {
		return true
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "json") && !strings.Contains(accept, "text/html")
}

// decodeJSON reads r's body, at most MaxBodyBytes, into v. It insists on a
// JSON content type, one JSON value, and no fields v does not know, and
// answers every failure with a client-safe EINVALID or ETOOLARGE error.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if !isJSONType(mediaType(r.Header.Get("Content-Type"))) {
		return newsletter.Errorf(newsletter.EINVALID, "Content-Type must be application/json.")
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if tooLarge(err) {
			return jsonError(err)
		}
		return newsletter.Errorf(newsletter.EINVALID, "The body must hold a single JSON object and nothing after it.")
	}
	return nil
}

// jsonError turns a decoding error into a client-safe message.
func jsonError(err error) error {
	var (
		syntax    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		timeErr   *time.ParseError
		maxBytes  *http.MaxBytesError
		unknownPf = "json: unknown field "
	)
	switch {
	case errors.As(err, &maxBytes):
		return newsletter.Errorf(newsletter.ETOOLARGE, "The body is too large: the limit is %d bytes.", maxBytes.Limit)
	case errors.Is(err, io.EOF):
		return newsletter.Errorf(newsletter.EINVALID, "The body is empty: send a JSON object.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return newsletter.Errorf(newsletter.EINVALID, "Malformed JSON: the body ends too early.")
	case errors.As(err, &syntax):
		return newsletter.Errorf(newsletter.EINVALID, "Malformed JSON at byte %d.", syntax.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" || typeErr.Type == nil {
			return newsletter.Errorf(newsletter.EINVALID, "The body must be a JSON object.")
		}
		return newsletter.Errorf(newsletter.EINVALID, "Field %q must be %s.", typeErr.Field, jsonKind(typeErr.Type.Kind().String()))
	case errors.As(err, &timeErr):
		return newsletter.Errorf(newsletter.EINVALID, "Times must be RFC 3339, such as 2026-11-26T07:00:00Z.")
	case strings.HasPrefix(err.Error(), unknownPf):
		return newsletter.Errorf(newsletter.EINVALID, "Unknown field %s.", strings.TrimPrefix(err.Error(), unknownPf))
	}
	return newsletter.Errorf(newsletter.EINVALID, "Malformed JSON.")
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	}
	return "of another type"
}

// tooLarge reports whether err says the body went over its limit.
func tooLarge(err error) bool {
	var maxBytes *http.MaxBytesError
	return errors.As(err, &maxBytes)
}

// parseForm parses r's query and its form body (URL-encoded or multipart),
// reading at most MaxBodyBytes.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	var err error
	if mediaType(r.Header.Get("Content-Type")) == "multipart/form-data" {
		err = r.ParseMultipartForm(MaxBodyBytes)
	} else {
		err = r.ParseForm()
	}
	if err != nil {
		if tooLarge(err) {
			return newsletter.Errorf(newsletter.ETOOLARGE, "The form is too large: the limit is %d bytes.", MaxBodyBytes)
		}
		return newsletter.Errorf(newsletter.EINVALID, "The form or the address could not be read.")
	}
	return nil
}

// pageParam reads ?cursor= and ?limit= into a newsletter.Page.
func pageParam(r *http.Request, defaultLimit int) (newsletter.Page, error) {
	q := r.URL.Query()
	p := newsletter.Page{Cursor: q.Get("cursor"), Limit: defaultLimit}
	if len(p.Cursor) > 1024 {
		return p, newsletter.Errorf(newsletter.EINVALID, "The cursor is not valid.")
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > newsletter.MaxPageSize {
			return p, newsletter.Errorf(newsletter.EINVALID, "Limit must be a whole number from 1 to %d.", newsletter.MaxPageSize)
		}
		p.Limit = n
	}
	return p, nil
}
