// Package render turns digests into email bodies. The transactional emails
// (confirmation, welcome, goodbye) are package transactional's.
//
// A digest is rendered once per Variant (the sections and the format a group
// of readers chose), never once per reader: the per-reader links are
// alphanumeric placeholders in the rendered Edition, and Personalize splices
// each reader's links into the bytes at send time. Splicing must happen
// before quoted-printable encoding, which may wrap a placeholder across lines;
// eml.Message encodes later, so callers pass Personalize's output straight to
// it.
package render

import (
	"bytes"
	"errors"
	"fmt"
	htmlpkg "html"
	htmltemplate "html/template"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	texttemplate "text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/templates"
)

// Placeholders that a rendered Edition holds where each reader's links go.
// They are plain letters because html/template escapes '%' and other
// punctuation inside href attributes; Personalize replaces them.
const (
	PlaceholderUnsubscribe = "BSxUNSUBSCRIBExURL"
	PlaceholderPreferences = "BSxPREFERENCESxURL"
)

// placeholderPrefix is what both placeholders start with, so one scan finds
// either.
const placeholderPrefix = "BSx"

// Site is what the emails and pages say about the publication.
type Site struct {
	Name          string // "The Daily Ledger"
	URL           string // public base URL of Broadsheet, e.g. "http://127.0.0.1:8080" (links: /archive/{id} etc.)
	HomeURL       string // the newspaper's own homepage; URL when empty
	PostalAddress string // publisher's postal address, shown in every digest footer
	Sections      []newsletter.Section
	Location      *time.Location // for dates shown in emails; UTC when nil
}

// Normalize returns the site as the renderers use it: the name and postal
// address on one line, URL without a trailing slash, HomeURL defaulting to
// URL, Location to UTC. Name and an absolute http(s) URL are required.
func (s Site) Normalize() (Site, error) {
	s.Name = oneLine(s.Name)
	if s.Name == "" {
		return Site{}, errors.New("site name is required")
	}
	s.URL = strings.TrimRight(strings.TrimSpace(s.URL), "/")
	if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Site{}, fmt.Errorf("site URL %q must be an absolute http or https address", s.URL)
	}
	if s.HomeURL = strings.TrimSpace(s.HomeURL); s.HomeURL == "" {
		s.HomeURL = s.URL
	}
	s.PostalAddress = joinLines(s.PostalAddress)
	if s.Location == nil {
		s.Location = time.UTC
	}
	s.Sections = slices.Clone(s.Sections)
	return s, nil
}

// Renderer renders digests for one site. It parses its templates once, in
// New, and is safe for concurrent use.
type Renderer struct {
	site    Site
	html    *htmltemplate.Template
	text    *texttemplate.Template
	renders atomic.Int64
}

// New checks the site (see Site.Normalize) and parses the embedded digest
// templates.
func New(site Site) (*Renderer, error) {
	site, err := site.Normalize()
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	r := &Renderer{site: site}
	r.html, err = htmltemplate.New("digest.html.tmpl").Funcs(htmlFuncs).ParseFS(templates.FS, "email/digest.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("render: parse HTML digest template: %w", err)
	}
	r.text, err = texttemplate.New("digest.txt.tmpl").Funcs(textFuncs).ParseFS(templates.FS, "email/digest.txt.tmpl")
	if err != nil {
		return nil, fmt.Errorf("render: parse text digest template: %w", err)
	}
	return r, nil
}

// htmlFuncs' msoOpen and msoClose wrap the 600px column in a fixed-width table for Outlook on
// Windows, which ignores max-width. html/template drops comments written in
// a template, so the conditional comments come from functions.
var htmlFuncs = htmltemplate.FuncMap{
	"msoOpen": func() htmltemplate.HTML {
		return `<!--[if mso]><table role="presentation" width="600" align="center" cellpadding="0" cellspacing="0" border="0"><tr><td><![endif]-->`
	},
	"msoClose": func() htmltemplate.HTML { return `<!--[if mso]></td></tr></table><![endif]-->` },
}

var textFuncs = texttemplate.FuncMap{
	"upper":  strings.ToUpper,
	"indent": func(s string) string { return strings.ReplaceAll(s, "\n", "\n  ") },
	// rule underlines s with c, as wide as s and at most 72 columns.
	"rule": func(s, c string) string { return strings.Repeat(c, min(utf8.RuneCountInString(s), 72)) },
}

// Variant is what a group of readers get of a digest: the sections they
// follow and the format they read. Readers with equal variants get
// byte-identical emails apart from their personal links.
type Variant struct {
	Sections []string          // the digest sections this reader gets, sorted; nil or empty means all
	Format   newsletter.Format // "" means full
	// After, when set, leaves out the articles published at or before it:
	// those reached this group of readers already (see
	// newsletter.Subscriber.ArticlesAfter). It is the newest article left
	// out, so readers who miss the same articles share a variant.
	After time.Time
}

// VariantFor returns the canonical variant of d that reader s gets: the
// sections s chose that d covers, sorted, with nil standing for all of d's
// sections (also when s chose none), and s's format. Two readers who would
// get the same content get equal variants (reflect.DeepEqual, and equal
// Keys).
//
// A reader whose sections d does not cover at all gets a variant with no
// articles; Subscriber.Receives tells the caller not to send it.
func VariantFor(d *newsletter.Digest, s *newsletter.Subscriber) Variant {
	if s == nil || d == nil {
		return Variant{Format: newsletter.FormatFull}
	}
	v := Variant{Format: canonicalFormat(s.Format)}
	if !s.ArticlesAfter.IsZero() {
		for _, a := range d.Articles {
			if !a.PublishedAt.After(s.ArticlesAfter) && a.PublishedAt.After(v.After) && !d.IsUpdated(a.ID) {
				v.After = a.PublishedAt
			}
		}
	}
	if len(s.Sections) == 0 {
		return v
	}
	all := d.Sections()
	var got []string
	for _, sec := range all {
		if slices.Contains(s.Sections, sec) {
			got = append(got, sec)
		}
	}
	if len(got) == len(all) && len(got) > 0 {
		return v
	}
	if len(got) == 0 {
		// Nothing in common: keep the reader's own choice so that the
		// variant does not read as "all".
		got = slices.Clone(s.Sections)
	}
	slices.Sort(got)
	v.Sections = slices.Compact(got)
	return v
}

// Key returns a stable string naming the variant, such as "full|all" or
// "lite|business,sport", for use as a map or cache key.
func (v Variant) Key() string {
	k := string(canonicalFormat(v.Format)) + "|all"
	if len(v.Sections) > 0 {
		secs := v.Sections
		if !slices.IsSorted(secs) {
			secs = slices.Sorted(slices.Values(secs))
		}
		k = string(canonicalFormat(v.Format)) + "|" + strings.Join(slices.Compact(slices.Clone(secs)), ",")
	}
	if !v.After.IsZero() {
		k += "|after=" + strconv.FormatInt(v.After.UnixNano(), 10)
	}
	return k
}

// includes reports whether the variant carries section sec.
func (v Variant) includes(sec string) bool {
	return len(v.Sections) == 0 || slices.Contains(v.Sections, sec)
}

// canonicalFormat maps "" and unknown formats to FormatFull, as
// newsletter.ParseFormat treats "".
func canonicalFormat(f newsletter.Format) newsletter.Format {
	switch f {
	case newsletter.FormatLite, newsletter.FormatText:
		return f
	}
	return newsletter.FormatFull
}

// Edition is a digest rendered for one variant. Its bodies hold the
// placeholders; Personalize makes a reader's copy. HTML is nil for the text
// format. Do not modify HTML or Text after Digest returns.
type Edition struct {
	Subject string
	HTML    []byte
	Text    []byte

	// Where the placeholders are in HTML and Text, found once by Digest so
	// that Personalize only copies. An Edition made some other way (loaded
	// from storage) has none, and Personalize finds them itself.
	htmlSlots, textSlots []slot
}

// Links are one reader's absolute URLs, spliced into an Edition by
// Personalize. They must be absolute http(s) or mailto URLs built by
// Broadsheet: they are HTML-escaped in the HTML part and copied as they are
// into the text part, but not otherwise checked.
type Links struct {
	Unsubscribe string
	Preferences string
}

// slot is one placeholder in a rendered body: where it starts and which one.
type slot struct {
	off  int
	kind int // index into placeholders
}

var placeholders = [...]string{PlaceholderUnsubscribe, PlaceholderPreferences}

// Personalize returns a reader's copy of the edition's bodies, with the
// placeholders replaced by the reader's links (HTML-escaped in the HTML
// part). It copies the bytes once, into one allocation, and never runs a
// template; e is not modified, so one Edition serves many goroutines. html
// is nil when the edition has no HTML part.
func (e *Edition) Personalize(l Links) (html, text []byte) {
	htmlSlots, textSlots := e.htmlSlots, e.textSlots
	if !slotsMatch(e.HTML, htmlSlots) {
		htmlSlots = findSlots(e.HTML)
	}
	if !slotsMatch(e.Text, textSlots) {
		textSlots = findSlots(e.Text)
	}
	htmlRepl := [2]string{htmlpkg.EscapeString(l.Unsubscribe), htmlpkg.EscapeString(l.Preferences)}
	textRepl := [2]string{l.Unsubscribe, l.Preferences}

	buf := make([]byte, 0, splicedLen(e.HTML, htmlSlots, htmlRepl)+splicedLen(e.Text, textSlots, textRepl))
	if e.HTML != nil {
		buf = appendSpliced(buf, e.HTML, htmlSlots, htmlRepl)
		html = buf[:len(buf):len(buf)]
	}
	n := len(buf)
	buf = appendSpliced(buf, e.Text, textSlots, textRepl)
	return html, buf[n:len(buf):len(buf)]
}

// findSlots returns where the placeholders are in b.
func findSlots(b []byte) []slot {
	var slots []slot
	for off := 0; ; {
		i := bytes.Index(b[off:], []byte(placeholderPrefix))
		if i < 0 {
			return slots
		}
		off += i
		for k, p := range placeholders {
			if bytes.HasPrefix(b[off:], []byte(p)) {
				slots = append(slots, slot{off, k})
				off += len(p) - 1
				break
			}
		}
		off++
	}
}

// splicedLen returns the length of src once appendSpliced replaced its
// placeholders.
func splicedLen(src []byte, slots []slot, repl [2]string) int {
	n := len(src)
	for _, s := range slots {
		n += len(repl[s.kind]) - len(placeholders[s.kind])
	}
	return n
}

// appendSpliced appends src to dst with each slot's placeholder replaced by
// repl[kind].
func appendSpliced(dst, src []byte, slots []slot, repl [2]string) []byte {
	last := 0
	for _, s := range slots {
		dst = append(dst, src[last:s.off]...)
		dst = append(dst, repl[s.kind]...)
		last = s.off + len(placeholders[s.kind])
	}
	return append(dst, src[last:]...)
}

// slotsMatch reports whether every slot points at its placeholder in b.
// Nil slots match only when b holds no placeholder at all, which Digest
// never produces, so nil means "not indexed".
func slotsMatch(b []byte, slots []slot) bool {
	if slots == nil {
		return false
	}
	for _, s := range slots {
		p := placeholders[s.kind]
		if s.off+len(p) > len(b) || string(b[s.off:s.off+len(p)]) != p {
			return false
		}
	}
	return true
}

// Renders returns how many times a digest was rendered (a run of the digest
// templates by Digest or ArchiveHTML) since New, so that a test can prove
// that rendering runs per variant and not per reader.
func (r *Renderer) Renders() int64 { return r.renders.Load() }

// ArchiveURL returns the public web address of digest id.
func (r *Renderer) ArchiveURL(id string) string {
	return r.site.URL + "/archive/" + url.PathEscape(id)
}

// SubscribeURL returns the public address of the subscription form.
func (r *Renderer) SubscribeURL() string { return r.site.URL + "/" }

// Subject returns the digest's subject line: the editor's subject, or the
// site name and the digest's date. It is one line of text.
func (r *Renderer) Subject(d *newsletter.Digest) string {
	if s := oneLine(d.Subject); s != "" {
		return s
	}
	// The site's name comes from configuration, but a subject is a
	// header: it too must be one line.
	if date := r.dateLabel(d); date != "" {
		return oneLine(r.site.Name + ": " + date)
	}
	return oneLine(r.site.Name)
}

// Digest renders d for variant v: the HTML part (nil for the text format)
// and the text part, with the placeholders where each reader's links go.
// Only the articles of v's sections appear, each once, under the first of
// its sections that v includes. Digest returns an EINVALID error when the
// digest's text holds a placeholder, which would receive a reader's link.
func (r *Renderer) Digest(d *newsletter.Digest, v Variant) (*Edition, error) {
	if d == nil {
		return nil, errors.New("render digest: no digest")
	}
	if err := checkNoPlaceholders(d); err != nil {
		return nil, fmt.Errorf("render digest %s: %w", d.ID, err)
	}
	view := r.view(d, v)
	view.Unsubscribe, view.Preferences = PlaceholderUnsubscribe, PlaceholderPreferences
	r.renders.Add(1)

	e := &Edition{Subject: view.Subject}
	var buf bytes.Buffer
	if canonicalFormat(v.Format) != newsletter.FormatText {
		buf.Grow(16 << 10)
		if err := r.html.Execute(&buf, view); err != nil {
			return nil, fmt.Errorf("render digest %s HTML (%s): %w", d.ID, v.Key(), err)
		}
		e.HTML = bytes.Clone(buf.Bytes())
		e.htmlSlots = findSlots(e.HTML)
		buf.Reset()
	}
	if err := r.text.Execute(&buf, view); err != nil {
		return nil, fmt.Errorf("render digest %s text (%s): %w", d.ID, v.Key(), err)
	}
	e.Text = bytes.Clone(buf.Bytes())
	e.textSlots = findSlots(e.Text)
	return e, nil
}

// ArchiveHTML renders the web copy of d ("view in browser"): every section,
// with images, and no personal links; its footer points to the subscription
// form and tells readers to manage their subscription from any digest email.
func (r *Renderer) ArchiveHTML(d *newsletter.Digest) ([]byte, error) {
	if d == nil {
		return nil, errors.New("render archive: no digest")
	}
	view := r.view(d, Variant{Format: newsletter.FormatFull})
	view.Web = true
	r.renders.Add(1)
	var buf bytes.Buffer
	if err := r.html.Execute(&buf, view); err != nil {
		return nil, fmt.Errorf("render archive of digest %s: %w", d.ID, err)
	}
	return buf.Bytes(), nil
}

// ArchiveText renders the plain-text web copy of d, like ArchiveHTML.
func (r *Renderer) ArchiveText(d *newsletter.Digest) ([]byte, error) {
	if d == nil {
		return nil, errors.New("render text archive: no digest")
	}
	view := r.view(d, Variant{Format: newsletter.FormatFull})
	view.Web = true
	r.renders.Add(1)
	var buf bytes.Buffer
	if err := r.text.Execute(&buf, view); err != nil {
		return nil, fmt.Errorf("render text archive of digest %s: %w", d.ID, err)
	}
	return buf.Bytes(), nil
}

// checkNoPlaceholders refuses a digest whose text holds a placeholder, so
// that a reader's link can only land where the template put it.
func checkNoPlaceholders(d *newsletter.Digest) error {
	fields := []string{d.Subject, d.Intro, d.ID}
	for _, a := range d.Articles {
		fields = append(fields, a.Title, a.Summary, a.Author, a.URL, a.ImageURL)
		fields = append(fields, a.Sections...)
	}
	for _, f := range fields {
		if strings.Contains(f, placeholderPrefix) {
			for _, p := range placeholders {
				if strings.Contains(f, p) {
					return newsletter.Errorf(newsletter.EINVALID, "Digest text must not contain %q.", p)
				}
			}
		}
	}
	return nil
}

// digestView is what the digest templates see.
type digestView struct {
	SiteName      string
	HomeURL       string
	PostalAddress string
	Subject       string
	Date          string
	Preheader     string     // inbox preview text
	Intro         [][]string // paragraphs of lines
	Groups        []group
	Images        bool // the full format
	ArchiveURL    string
	SubscribeURL  string
	Unsubscribe   string // placeholders in an Edition
	Preferences   string
	Web           bool // the archive copy: no personal links
}

// group is one section of the digest with its articles.
type group struct {
	Name     string
	Articles []articleView
}

type articleView struct {
	Title, URL, Author, ImageURL string
	// Summary is the plain text of the summary, for the text part;
	// SummaryHTML its sanitised HTML, for the HTML part and the archive.
	Summary     string
	SummaryHTML htmltemplate.HTML
	// Updated marks a correction: a story an earlier digest carried,
	// carried again because it changed since.
	Updated bool
}

// view builds the template data of d for v.
func (r *Renderer) view(d *newsletter.Digest, v Variant) *digestView {
	view := &digestView{
		SiteName:      r.site.Name,
		HomeURL:       r.site.HomeURL,
		PostalAddress: r.site.PostalAddress,
		Subject:       r.Subject(d),
		Date:          r.dateLabel(d),
		Intro:         paragraphs(d.Intro),
		Groups:        r.groups(d, v),
		Images:        canonicalFormat(v.Format) == newsletter.FormatFull,
		ArchiveURL:    r.ArchiveURL(d.ID),
		SubscribeURL:  r.SubscribeURL(),
	}
	view.Preheader = preheader(d.Intro, view.Groups)
	return view
}

// groups places each article of d that v includes under the first of its
// sections that v includes. Sections come in Site.Sections order, then the
// others in order of first appearance. Articles without a section appear
// only in the all-sections variant, last, under "More stories".
func (r *Renderer) groups(d *newsletter.Digest, v Variant) []group {
	order := make([]string, 0, len(r.site.Sections))
	for _, s := range r.site.Sections {
		order = append(order, s.Slug)
	}
	for _, s := range d.Sections() {
		if !slices.Contains(order, s) {
			order = append(order, s)
		}
	}
	bySection := map[string][]articleView{}
	var loose []articleView
	for _, a := range d.Articles {
		if !v.After.IsZero() && !a.PublishedAt.After(v.After) && !d.IsUpdated(a.ID) {
			continue // reached these readers already (a correction comes again)
		}
		av := articleView{
			Title:       oneLine(a.Title),
			URL:         a.URL,
			Summary:     a.SummaryText(),
			SummaryHTML: a.SummaryHTML(),
			Author:      oneLine(a.Author),
			ImageURL:    a.ImageURL,
			Updated:     d.IsUpdated(a.ID),
		}
		if len(a.Sections) == 0 {
			if len(v.Sections) == 0 {
				loose = append(loose, av)
			}
			continue
		}
		for _, s := range a.Sections {
			if v.includes(s) {
				bySection[s] = append(bySection[s], av)
				break
			}
		}
	}
	var out []group
	for _, s := range order {
		if arts := bySection[s]; len(arts) > 0 {
			out = append(out, group{Name: newsletter.SectionName(r.site.Sections, s), Articles: arts})
		}
	}
	if len(loose) > 0 {
		out = append(out, group{Name: "More stories", Articles: loose})
	}
	return out
}

// dateLabel is the digest's date as readers see it: "Thursday 26 November
// 2026" for a daily digest, "Week of 23 November 2026" for a weekly one.
// It comes from the period, or from Until (then CreatedAt) when the period
// does not parse.
func (r *Renderer) dateLabel(d *newsletter.Digest) string {
	const day = "Monday 2 January 2006"
	switch d.Frequency {
	case newsletter.Weekly:
		var y, w int
		if n, err := fmt.Sscanf(d.Period, "%04d-W%02d", &y, &w); err == nil && n == 2 && w >= 1 && w <= 53 {
			return "Week of " + isoWeekMonday(y, w).Format("2 January 2006")
		}
	default:
		if t, err := time.ParseInLocation("2006-01-02", d.Period, r.site.Location); err == nil {
			return t.Format(day)
		}
	}
	t := d.Until
	if t.IsZero() {
		t = d.CreatedAt
	}
	if t.IsZero() {
		return ""
	}
	return t.In(r.site.Location).Format(day)
}

// isoWeekMonday returns the Monday of ISO week w of year y.
func isoWeekMonday(y, w int) time.Time {
	jan4 := time.Date(y, time.January, 4, 0, 0, 0, 0, time.UTC) // always in week 1
	sinceMonday := (int(jan4.Weekday()) + 6) % 7
	return jan4.AddDate(0, 0, -sinceMonday+(w-1)*7)
}

// paragraphs splits plain text into paragraphs at blank lines, and each
// paragraph into its trimmed lines.
func paragraphs(s string) [][]string {
	var out [][]string
	var para []string
	for _, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			if para != nil {
				out, para = append(out, para), nil
			}
			continue
		}
		para = append(para, line)
	}
	if para != nil {
		out = append(out, para)
	}
	return out
}

// preheader is the inbox preview line: the start of the intro, or the
// headlines.
func preheader(intro string, groups []group) string {
	text := oneLine(intro)
	if text == "" {
		var titles []string
		for _, g := range groups {
			for _, a := range g.Articles {
				titles = append(titles, a.Title)
			}
		}
		text = strings.Join(titles, " · ")
	}
	const max = 140
	if utf8.RuneCountInString(text) > max {
		text = string([]rune(text)[:max-1]) + "…"
	}
	return text
}

// oneLine collapses every run of white space and control characters in s
// into one space, so that s fits on one line (and in a header).
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
}

// joinLines turns a multi-line postal address into one line.
func joinLines(s string) string {
	var parts []string
	for _, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		if line = oneLine(strings.TrimRight(strings.TrimSpace(line), ",")); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, ", ")
}
