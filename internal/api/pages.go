package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/templates"
)

// pages holds the parsed page templates and the Content-Security-Policy
// they are served with.
type pages struct {
	site string
	css  template.CSS
	csp  string
	// consoleCSP is csp plus frame-src 'self': the console shows a
	// digest's preview and its moving counters in frames.
	consoleCSP string
	// frameCSP is consoleCSP for a page that the console frames.
	frameCSP string
	byName   map[string]*template.Template
}

// parsePages parses every page with the layout from templates.FS.
//
// The stylesheet is inlined in a <style> element, so a page is one request
// and works offline from a saved copy. The policy allows exactly that
// stylesheet by its SHA-256 hash rather than 'unsafe-inline': the hash is
// computed here from the embedded file, so it cannot drift, and a style
// smuggled into a page (say through a crafted email address) cannot apply.
//
// Pages show times in the publication's zone, labelled with its
// abbreviation ("07:00 WAT"), through the template function local.
func parsePages(site string, loc *time.Location) (*pages, error) {
	if loc == nil {
		loc = time.UTC
	}
	funcs := template.FuncMap{
		"local":  func(t time.Time) time.Time { return t.In(loc) },
		"plural": plural,
	}
	css, err := fs.ReadFile(templates.FS, "pages/style.css")
	if err != nil {
		return nil, fmt.Errorf("read page stylesheet: %w", err)
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templates.FS, "pages/layout.html", "pages/choices.html", "pages/counters.html")
	if err != nil {
		return nil, fmt.Errorf("parse page layout: %w", err)
	}
	p := &pages{site: site, css: template.CSS(css), byName: map[string]*template.Template{}}
	// Each page is a file NAME.html that defines "title" and "content" for
	// the shared layout.
	for _, name := range []string{
		"signup", "inbox", "confirm", "confirmed", "unsubscribe", "unsubscribed",
		"preferences", "archive", "error", "resubscribed",
		"console-signin", "console", "console-article", "console-digest", "console-counters",
	} {
		t, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("clone page layout: %w", err)
		}
		if t, err = t.ParseFS(templates.FS, "pages/"+name+".html"); err != nil {
			return nil, fmt.Errorf("parse page %s: %w", name, err)
		}
		if t.Lookup("title") == nil || t.Lookup("content") == nil {
			return nil, fmt.Errorf("page %s must define title and content", name)
		}
		p.byName[name] = t
	}
	sum := sha256.Sum256(css)
	p.csp = "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
	p.consoleCSP = p.csp + "; frame-src 'self'"
	p.frameCSP = strings.Replace(p.consoleCSP, "frame-ancestors 'none'", "frame-ancestors 'self'", 1)
	return p, nil
}

// plural is "1 article" or "n articles": n and the noun, with an s unless
// n is one.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// pageData is what every page template sees; each page uses some fields.
type pageData struct {
	Site string
	CSS  template.CSS

	Heading   string // error page
	Message   string // a notice or an error
	Email     string
	Token     string
	Frequency string
	Saved     bool

	Sections    []choice
	Frequencies []choice
	Formats     []choice

	Digests []*newsletter.Digest
	Next    string

	// Refresh, in seconds, makes the page reload itself: only the small
	// counters page that a sending digest's page frames does, so that the
	// counters move without JavaScript while no form is ever reloaded.
	Refresh int
	// Frame marks a page shown in a console frame: no masthead, bar or
	// footer, and framing allowed from the console's own pages.
	Frame bool
	// Console is what the editors' console pages show; nil on reader pages.
	Console *consoleView
}

// choice is one checkbox or radio button.
type choice struct {
	Value, Label string
	Checked      bool
}

// formatLabel describes a format on the forms.
func formatLabel(f newsletter.Format) string {
	switch f {
	case newsletter.FormatFull:
		return "Full, with pictures"
	case newsletter.FormatLite:
		return "Lite: headlines and links"
	case newsletter.FormatText:
		return "Plain text"
	}
	return string(f)
}

// frequencyLabel describes a frequency on the forms. Frequencies come from
// newsletter.Frequencies, so one added there shows up here with its name
// capitalised until it is given a description.
func frequencyLabel(f newsletter.Frequency) string {
	switch f {
	case newsletter.Daily:
		return "Daily: one email a day"
	case newsletter.Weekly:
		return "Weekly: one email a week"
	case newsletter.Instant:
		return "Instant: an email as each story is published"
	}
	label := string(f)
	if label != "" {
		label = strings.ToUpper(label[:1]) + label[1:]
	}
	return label
}

// choices fills the section, frequency and format choices of a form.
func (h *handler) choices(d *pageData, sections []string, freq newsletter.Frequency, format newsletter.Format) {
	for _, s := range h.svc.Sections() {
		d.Sections = append(d.Sections, choice{s.Slug, s.Name, slices.Contains(sections, s.Slug)})
	}
	if freq == "" {
		freq = newsletter.Daily
	}
	for _, f := range newsletter.Frequencies {
		d.Frequencies = append(d.Frequencies, choice{string(f), frequencyLabel(f), f == freq})
	}
	if format == "" {
		format = newsletter.FormatFull
	}
	for _, f := range newsletter.Formats {
		d.Formats = append(d.Formats, choice{string(f), formatLabel(f), f == format})
	}
}

// render executes page name into a buffer and writes it with status. A
// template error becomes a logged 500 instead of half a page.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name string, d *pageData) {
	d.Site, d.CSS = h.pages.site, h.pages.css
	var buf bytes.Buffer
	t := h.pages.byName[name]
	if t == nil {
		h.writeError(w, r, fmt.Errorf("no page %q", name))
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		if name == "error" {
			h.log.ErrorContext(r.Context(), "render error page", "path", r.URL.Path, "err", err)
			http.Error(w, d.Message, status)
			return
		}
		h.writeError(w, r, fmt.Errorf("render page %s: %w", name, err))
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	csp := h.pages.csp
	if d.Console != nil {
		csp = h.pages.consoleCSP
	}
	if d.Frame {
		csp = h.pages.frameCSP
		hdr.Set("X-Frame-Options", "SAMEORIGIN")
	}
	hdr.Set("Content-Security-Policy", csp)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorHeading titles the error page for a status.
func errorHeading(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "Something is not right"
	case http.StatusUnauthorized:
		return "Please sign in"
	case http.StatusForbidden, http.StatusMethodNotAllowed:
		return "Not allowed"
	case http.StatusNotFound:
		return "Page not found"
	case http.StatusConflict:
		return "That cannot be done now"
	case http.StatusRequestEntityTooLarge:
		return "Too much at once"
	case http.StatusTooManyRequests:
		return "Slow down a little"
	}
	return "Something went wrong"
}

// renderErrorPage shows a browser the error page.
func (h *handler) renderErrorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	heading := errorHeading(status)
	h.render(w, r, status, "error", &pageData{Heading: heading, Message: msg})
}
