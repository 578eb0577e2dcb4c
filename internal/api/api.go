// Package api is Broadsheet's HTTP interface: the reader pages (sign up,
// confirm, unsubscribe, preferences, archive) and the editors' JSON API. It
// is one net/http handler, served as is by the laptop server and behind an
// adapter by the Lambda function.
//
// The package decodes requests, calls newsroom.Service and encodes the
// answer; every rule lives in the service. Errors are mapped to HTTP
// statuses in one place (see writeError) and only internal errors are
// logged, never shown.
package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/broadsheet-news/broadsheet/internal/newsroom"
)

// Body limits.
const (
	// MaxBodyBytes is the largest JSON or form body accepted.
	MaxBodyBytes = 64 << 10
	// MaxImportBytes is the largest CSV accepted by the subscriber import.
	MaxImportBytes = 10 << 20
)

// Default rate limits, per client IP.
const (
	// DefaultSubscribeLimit lets a client sign up about once every twelve
	// seconds after a burst of DefaultSubscribeBurst.
	DefaultSubscribeLimit = rate.Limit(1.0 / 12)
	// DefaultSubscribeBurst is how many sign-ups a client may make at once.
	DefaultSubscribeBurst = 5
	// DefaultAuthFailureLimit allows a failed editor login about every six
	// seconds after a burst of DefaultAuthFailureBurst.
	DefaultAuthFailureLimit = rate.Limit(1.0 / 6)
	// DefaultAuthFailureBurst is how many failed editor logins a client may
	// make before it is slowed down.
	DefaultAuthFailureBurst = 10
)

// Options configures the handler. The zero value is usable: defaults are
// noted on each field.
type Options struct {
	// Logger receives internal errors and recovered panics; slog.Default
	// when nil.
	Logger *slog.Logger
	// SiteName is the newsletter's name shown on every page; the
	// service's SiteName when empty.
	SiteName string
	// TrustProxy makes the handler take the client IP from the last entry
	// of X-Forwarded-For, which is the one the proxy in front of us added.
	// Leave it off unless such a proxy is always there, or clients can
	// choose their own IP and dodge the rate limits.
	TrustProxy bool
	// SubscribeLimit and SubscribeBurst rate-limit POST /subscribe per
	// client IP; DefaultSubscribeLimit and DefaultSubscribeBurst when zero.
	// rate.Inf turns the limit off.
	SubscribeLimit rate.Limit
	SubscribeBurst int
	// AuthFailureLimit and AuthFailureBurst rate-limit failed editor
	// authentications per client IP; DefaultAuthFailureLimit and
	// DefaultAuthFailureBurst when zero. rate.Inf turns the limit off.
	AuthFailureLimit rate.Limit
	AuthFailureBurst int
	// Now is the clock the rate limiters read; time.Now when nil.
	Now func() time.Time
	// WordPressSecret is the secret the WordPress plugin signs pushes to
	// POST /hooks/wordpress with (see hooks.go); empty turns the hook off.
	WordPressSecret []byte
}

// handler serves every route. It holds no mutable state of its own apart
// from the rate limiters, which lock.
type handler struct {
	svc         *newsroom.Service
	log         *slog.Logger
	now         func() time.Time
	trustProxy  bool
	pages       *pages
	subscribers *ipLimiter // POST /subscribe
	authFails   *ipLimiter // failed editor authentications
	mux         *http.ServeMux
	wpSecret    []byte // POST /hooks/wordpress; nil when off
}

// NewHandler returns the HTTP handler for svc. It parses the page templates
// once, here, and fails if they are broken.
func NewHandler(svc *newsroom.Service, opts Options) (http.Handler, error) {
	if svc == nil {
		return nil, errors.New("api: nil service")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SiteName == "" {
		opts.SiteName = svc.SiteName()
	}
	if opts.SiteName == "" {
		opts.SiteName = "Broadsheet"
	}
	if opts.SubscribeLimit == 0 {
		opts.SubscribeLimit = DefaultSubscribeLimit
	}
	if opts.SubscribeBurst <= 0 {
		opts.SubscribeBurst = DefaultSubscribeBurst
	}
	if opts.AuthFailureLimit == 0 {
		opts.AuthFailureLimit = DefaultAuthFailureLimit
	}
	if opts.AuthFailureBurst <= 0 {
		opts.AuthFailureBurst = DefaultAuthFailureBurst
	}
	p, err := parsePages(opts.SiteName, svc.Location())
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	h := &handler{
		svc:         svc,
		log:         opts.Logger,
		now:         opts.Now,
		trustProxy:  opts.TrustProxy,
		pages:       p,
		subscribers: newIPLimiter(opts.SubscribeLimit, opts.SubscribeBurst, opts.Now),
		authFails:   newIPLimiter(opts.AuthFailureLimit, opts.AuthFailureBurst, opts.Now),
		mux:         http.NewServeMux(),
		wpSecret:    opts.WordPressSecret,
	}
	h.routes()
	return h, nil
}

// routes registers every route on h.mux.
func (h *handler) routes() {
	m := h.mux
	// Reader pages.
	m.HandleFunc("GET /{$}", h.signupPage)
	m.HandleFunc("POST /subscribe", h.subscribe)
	m.HandleFunc("GET /confirm", h.confirmPage)
	m.HandleFunc("POST /confirm", h.confirm)
	m.HandleFunc("GET /unsubscribe", h.unsubscribePage)
	m.HandleFunc("POST /unsubscribe", h.unsubscribe)
	m.HandleFunc("POST /unsubscribe/undo", h.undoUnsubscribe)
	m.HandleFunc("GET /preferences", h.preferencesPage)
	m.HandleFunc("POST /preferences", h.savePreferences)
	m.HandleFunc("GET /archive", h.archive)
	m.HandleFunc("GET /archive/{id}", h.archivedDigest)
	m.HandleFunc("GET /healthz", h.healthz)
	m.HandleFunc("POST /hooks/wordpress", h.wordpressHook)

	// The editors' console: pages behind a cookie session.
	h.consoleRoutes(m)

	// Editors' API: every route needs the edit scope; sending also needs
	// the send scope, checked where it applies.
	m.Handle("POST /api/articles", h.editor(h.submitArticle))
	m.Handle("GET /api/articles", h.editor(h.listArticles))
	m.Handle("GET /api/articles/{id}", h.editor(h.getArticle))
	m.Handle("PATCH /api/articles/{id}", h.editor(h.patchArticle))
	m.Handle("DELETE /api/articles/{id}", h.editor(h.deleteArticle))
	m.Handle("POST /api/digests", h.editor(h.createDigest))
	m.Handle("GET /api/digests", h.editor(h.listDigests))
	m.Handle("GET /api/digests/{id}", h.editor(h.getDigest))
	m.Handle("GET /api/digests/{id}/deliveries", h.editor(h.listDeliveries))
	m.Handle("GET /api/digests/{id}/preview", h.editor(h.previewDigest))
	m.Handle("POST /api/digests/{id}/test", h.editor(h.testDigest))
	m.Handle("POST /api/digests/{id}/send", h.editor(h.sendDigest))
	m.Handle("GET /api/subscribers", h.editor(h.listSubscribers))
	m.Handle("GET /api/subscribers/export", h.editor(h.exportSubscribers))
	m.Handle("POST /api/subscribers/import", h.editor(h.importSubscribers))
	m.Handle("DELETE /api/subscribers/{email}", h.editor(h.eraseSubscriber))
}

// ServeHTTP sets the security headers, recovers from panics and routes the
// request. Requests that match no route, or match one with another method,
// get Broadsheet's own 404 and 405 answers instead of the mux's plain text.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	defer h.recoverPanic(sw, r)

	hdr := sw.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Content-Security-Policy", apiCSP)
	// Most answers are private to one reader or editor; the archive, which
	// is not, says so itself.
	hdr.Set("Cache-Control", "no-store")

	next, pattern := h.mux.Handler(r)
	if pattern != "" {
		// The mux itself serves matched requests: only its ServeHTTP
		// fills in the path values ({id}) that the handlers read.
		h.mux.ServeHTTP(sw, r)
		return
	}
	// No route matched: let the mux say why (404, 405 with Allow, or a
	// redirect to the clean path) into a buffer, then answer in our words.
	rec := &recorder{header: http.Header{}}
	next.ServeHTTP(rec, r)
	switch rec.status {
	case http.StatusNotFound:
		h.writeError(sw, r, notFound())
	case http.StatusMethodNotAllowed:
		hdr.Set("Allow", rec.header.Get("Allow"))
		h.writeError(sw, r, methodNotAllowed())
	default:
		for k, v := range rec.header {
			hdr[k] = v
		}
		sw.WriteHeader(rec.status)
		_, _ = sw.Write(rec.body)
	}
}

// recoverPanic turns a panic in a handler into a logged 500, so that one bad
// request cannot take the server down. Handlers are written not to panic;
// this is defence in depth.
func (h *handler) recoverPanic(w *statusWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		return
	}
	h.log.ErrorContext(r.Context(), "http handler panic", "method", r.Method, "path", r.URL.Path, "panic", v)
	if !w.wroteHeader {
		h.writeError(w, r, fmt.Errorf("panic: %v", v))
	}
}

// healthz answers load balancers and uptime checks.
func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	h.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// statusWriter remembers whether the header was written, so that a recovered
// panic does not write a second one.
type statusWriter struct {
	http.ResponseWriter
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recorder captures what the mux's own not-found, method-not-allowed and
// redirect handlers would write.
type recorder struct {
	header http.Header
	status int
	body   []byte
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body = append(r.body, p...)
	return len(p), nil
}

var _ http.ResponseWriter = (*recorder)(nil)
