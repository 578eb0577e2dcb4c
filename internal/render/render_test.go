package render_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/render"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testLinks contain '&' so that the goldens show them escaped in HTML and
// raw in text.
var testLinks = render.Links{
	Unsubscribe: "https://news.example.com/unsubscribe?t=tok123&s=abc",
	Preferences: "https://news.example.com/preferences?t=tok123&s=abc",
}

func testSite() render.Site {
	return render.Site{
		Name:          "The Daily Ledger",
		URL:           "http://127.0.0.1:8080/",
		HomeURL:       "https://ledger.example.com/",
		PostalAddress: "The Daily Ledger Ltd\n1 Printing House Square\nLondon EC4V 1AA, United Kingdom",
		Sections:      newsletter.DefaultSections,
		Location:      time.FixedZone("GMT", 0),
	}
}

// MustRenderer returns a renderer for testSite.
func MustRenderer(tb testing.TB) *render.Renderer {
	tb.Helper()
	r, err := render.New(testSite())
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return r
}

// testDigest is the fixed digest every golden file is built from.
func testDigest() *newsletter.Digest {
	at := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	art := func(slug, title, summary, author, image string, sections ...string) newsletter.Article {
		u := "https://ledger.example.com/2026/11/26/" + slug + "/"
		return newsletter.Article{
			ID: newsletter.ArticleID(u), URL: u, Title: title, Summary: summary, Author: author,
			ImageURL: image, Sections: sections, PublishedAt: at, CreatedAt: at, UpdatedAt: at,
		}
	}
	return &newsletter.Digest{
		ID:        "daily-2026-11-26",
		Frequency: newsletter.Daily,
		Period:    "2026-11-26",
		Subject:   "Storm closes the harbour; council passes its budget",
		Intro: "Good morning. The storm that closed the harbour overnight is moving east, & the ferries resume at noon.\n" +
			"Our reporters were on the quay until dawn.\n\nThe council's budget passed by one vote: here is what it means for you.",
		Articles: []newsletter.Article{
			art("storm-closes-harbour", "Storm closes the harbour for the first time in 40 years",
				"Gusts of 90 mph forced the harbour master to shut the port overnight. Ferries resume at noon.",
				"Ann Reporter", "https://ledger.example.com/img/harbour.jpg", "news"),
			art("council-budget", "Council passes its budget by a single vote",
				// Stored summaries are HTML, as WordPress excerpts are.
				"<p>The \"difficult but fair\" budget raises <strong>parking charges</strong> &amp; cuts <a href=\"https://ledger.example.com/buses/\">two bus routes</a>.</p>\n<p>Charges rise in April.</p>",
				"Ben Politico", "https://ledger.example.com/img/council.jpg", "politics", "news"),
			art("bakery-expands", "Family bakery opens its third shop",
				"After 60 years on the high street, Crumb & Sons is hiring.",
				"", "", "business"),
			art("cup-final", "Rovers reach the cup final",
				"A late header sends Rovers to Wembley for the first time.",
				"Cat Sportswriter", "", "sport", "news"),
			art("gallery-reopens", "The town gallery reopens", "", "Dan Critic",
				"https://ledger.example.com/img/gallery.jpg", "culture"),
			art("letters", "Letters: the bypass, the bins and the bells",
				"Readers write about the week's news.", "", "", "opinion"),
			art("tide-tables", "Tide tables for the week ahead", "High and low water at the harbour.", "", "", "weather"),
		},
		Since:     at.Add(-24 * time.Hour),
		Until:     at,
		Status:    newsletter.DigestDraft,
		CreatedAt: at,
	}
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range max(len(gl), len(wl)) {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Errorf("%s differs at line %d (run go test -update and review the diff):\ngot  %q\nwant %q", path, i+1, g, w)
				return
			}
		}
	}
}

func TestDigestGolden(t *testing.T) {
	r := MustRenderer(t)
	d := testDigest()
	for _, tt := range []struct {
		name   string
		format newsletter.Format
	}{
		{"digest_full", newsletter.FormatFull},
		{"digest_lite", newsletter.FormatLite},
		{"digest_text", newsletter.FormatText},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, err := r.Digest(d, render.Variant{Format: tt.format})
			if err != nil {
				t.Fatalf("Digest: %v", err)
			}
			html, text := e.Personalize(testLinks)
			if tt.format != newsletter.FormatText {
				golden(t, tt.name+".golden.html", html)
			}
			if tt.format != newsletter.FormatLite {
				golden(t, tt.name+".golden.txt", text)
			}
		})
	}
}

func TestArchiveGolden(t *testing.T) {
	r := MustRenderer(t)
	html, err := r.ArchiveHTML(testDigest())
	if err != nil {
		t.Fatalf("ArchiveHTML: %v", err)
	}
	golden(t, "archive.golden.html", html)
	for _, p := range []string{render.PlaceholderUnsubscribe, render.PlaceholderPreferences, "View in browser"} {
		if bytes.Contains(html, []byte(p)) {
			t.Errorf("archive holds %q, want no personal links", p)
		}
	}
	if !bytes.Contains(html, []byte(`href="http://127.0.0.1:8080/"`)) {
		t.Errorf("archive has no link to the subscription form")
	}
	text, err := r.ArchiveText(testDigest())
	if err != nil {
		t.Fatalf("ArchiveText: %v", err)
	}
	if bytes.Contains(text, []byte("BSx")) || !bytes.Contains(text, []byte("Subscribe: http://127.0.0.1:8080/\n")) {
		t.Errorf("text archive holds a placeholder or lacks the subscribe link")
	}
	if _, err := r.Digest(nil, render.Variant{}); err == nil {
		t.Errorf("Digest(nil) = no error, want one")
	}
}

func TestVariantFor(t *testing.T) {
	d := testDigest() // sections: news, politics, business, sport, culture, opinion, weather
	all := d.Sections()
	for _, tt := range []struct {
		name     string
		reader   []string
		format   newsletter.Format
		wantKey  string
		wantSecs []string
	}{
		{"no choice is all", nil, newsletter.FormatFull, "full|all", nil},
		{"empty choice is all", []string{}, newsletter.FormatLite, "lite|all", nil},
		{"empty format is full", nil, "", "full|all", nil},
		{"every digest section is all", all, newsletter.FormatFull, "full|all", nil},
		{"every section and more is all", append([]string{"science"}, all...), newsletter.FormatText, "text|all", nil},
		{"subset is sorted", []string{"sport", "business"}, newsletter.FormatLite, "lite|business,sport", []string{"business", "sport"}},
		{"sections the digest lacks are dropped", []string{"sport", "science", "business"}, newsletter.FormatLite, "lite|business,sport", []string{"business", "sport"}},
		{"one section", []string{"news"}, newsletter.FormatFull, "full|news", []string{"news"}},
		{"nothing in common keeps the choice", []string{"science", "motoring"}, newsletter.FormatFull, "full|motoring,science", []string{"motoring", "science"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := render.VariantFor(d, &newsletter.Subscriber{Sections: tt.reader, Format: tt.format})
			if got := v.Key(); got != tt.wantKey {
				t.Errorf("Key() = %q, want %q", got, tt.wantKey)
			}
			if !reflect.DeepEqual(v.Sections, tt.wantSecs) {
				t.Errorf("Sections = %#v, want %#v", v.Sections, tt.wantSecs)
			}
		})
	}

	// Two readers who get the same content get equal variants.
	a := render.VariantFor(d, &newsletter.Subscriber{Sections: []string{"sport", "news", "science"}})
	b := render.VariantFor(d, &newsletter.Subscriber{Sections: []string{"news", "sport"}, Format: newsletter.FormatFull})
	if !reflect.DeepEqual(a, b) {
		t.Errorf("VariantFor: %#v and %#v differ, want equal", a, b)
	}
	// Key canonicalises a variant built by hand.
	if got, want := (render.Variant{Sections: []string{"sport", "business", "sport"}}).Key(), "full|business,sport"; got != want {
		t.Errorf("Key() = %q, want %q", got, want)
	}
}

func TestLiteHasNoImages(t *testing.T) {
	r := MustRenderer(t)
	full, err := r.Digest(testDigest(), render.Variant{Format: newsletter.FormatFull})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(full.HTML, []byte("<img")) {
		t.Errorf("full digest has no <img>, want the article images")
	}
	lite, err := r.Digest(testDigest(), render.Variant{Format: newsletter.FormatLite})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(lite.HTML, []byte("<img")) || bytes.Contains(lite.HTML, []byte("img/harbour.jpg")) {
		t.Errorf("lite digest has an image, want none")
	}
	for _, a := range testDigest().Articles {
		if !bytes.Contains(lite.HTML, []byte(`href="`+a.URL+`"`)) {
			t.Errorf("lite digest lacks a link to %s", a.URL)
		}
	}
}

func TestTextFormatHasNoHTML(t *testing.T) {
	r := MustRenderer(t)
	e, err := r.Digest(testDigest(), render.Variant{Format: newsletter.FormatText})
	if err != nil {
		t.Fatal(err)
	}
	if e.HTML != nil {
		t.Errorf("text edition HTML = %d bytes, want nil", len(e.HTML))
	}
	if len(e.Text) == 0 {
		t.Errorf("text edition has no text part")
	}
	html, text := e.Personalize(testLinks)
	if html != nil {
		t.Errorf("Personalize HTML = %d bytes, want nil", len(html))
	}
	if !bytes.Contains(text, []byte(testLinks.Unsubscribe)) {
		t.Errorf("personalised text lacks the unsubscribe link")
	}
}

func TestOnlyVariantSections(t *testing.T) {
	r := MustRenderer(t)
	d := testDigest()
	for _, tt := range []struct {
		sections []string
		want     []string // article slugs in the edition
		headings []string
	}{
		// cup-final is in sport and news: it goes under sport, its first
		// included section, and appears once.
		{[]string{"sport"}, []string{"cup-final"}, []string{"Sport"}},
		{[]string{"business", "culture"}, []string{"bakery-expands", "gallery-reopens"}, []string{"Business", "Culture"}},
		// council-budget is politics first; without politics it falls to news.
		{[]string{"news"}, []string{"storm-closes-harbour", "council-budget", "cup-final"}, []string{"News"}},
	} {
		t.Run(strings.Join(tt.sections, ","), func(t *testing.T) {
			for _, f := range newsletter.Formats {
				e, err := r.Digest(d, render.Variant{Sections: tt.sections, Format: f})
				if err != nil {
					t.Fatal(err)
				}
				for _, body := range [][]byte{e.HTML, e.Text} {
					if body == nil {
						continue
					}
					for _, a := range d.Articles {
						n := bytes.Count(body, []byte(a.Title))
						wantN := 0
						if slicesContainSuffix(tt.want, a.URL) {
							wantN = 1
							if f != newsletter.FormatText && body[0] == '<' && a.ImageURL != "" && f == newsletter.FormatFull {
								wantN = 2 // also the image's alt text
							}
						}
						if n != wantN {
							t.Errorf("%s: %q appears %d times, want %d", f, a.Title, n, wantN)
						}
					}
				}
				for _, h := range tt.headings {
					if !bytes.Contains(e.Text, []byte(strings.ToUpper(h))) {
						t.Errorf("%s: text lacks heading %q", f, h)
					}
				}
			}
		})
	}
}

func slicesContainSuffix(slugs []string, url string) bool {
	for _, s := range slugs {
		if strings.HasSuffix(url, "/"+s+"/") {
			return true
		}
	}
	return false
}

func TestSectionOrder(t *testing.T) {
	r := MustRenderer(t)
	e, err := r.Digest(testDigest(), render.Variant{Format: newsletter.FormatText})
	if err != nil {
		t.Fatal(err)
	}
	// Site order (news, politics, business, sport, culture, opinion), then
	// the others.
	want := []string{"\nNEWS\n", "\nPOLITICS\n", "\nBUSINESS\n", "\nSPORT\n", "\nCULTURE\n", "\nOPINION\n", "\nWEATHER\n"}
	last := -1
	for _, h := range want {
		i := bytes.Index(e.Text, []byte(h))
		if i < 0 {
			t.Fatalf("text lacks heading %q", h)
		}
		if i < last {
			t.Errorf("heading %q is out of order", h)
		}
		last = i
	}

	// A section left empty because its articles went to an earlier one
	// gets no heading: cup-final (sport, news) goes under news here.
	e, err = r.Digest(testDigest(), render.Variant{Sections: []string{"news", "politics"}, Format: newsletter.FormatText})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"\nSPORT\n", "\nBUSINESS\n"} {
		if bytes.Contains(e.Text, []byte(h)) {
			t.Errorf("text has heading %q, want only news and politics", h)
		}
	}
}

func TestPlaceholdersAndPersonalize(t *testing.T) {
	r := MustRenderer(t)
	d := testDigest()
	escaped := func(s string) string { return strings.ReplaceAll(s, "&", "&amp;") }
	for _, v := range []render.Variant{
		{Format: newsletter.FormatFull},
		{Format: newsletter.FormatLite, Sections: []string{"sport"}},
		{Format: newsletter.FormatText, Sections: []string{"business", "news"}},
	} {
		t.Run(v.Key(), func(t *testing.T) {
			e, err := r.Digest(d, v)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{render.PlaceholderUnsubscribe, render.PlaceholderPreferences} {
				if !bytes.Contains(e.Text, []byte(p)) {
					t.Errorf("text lacks placeholder %q before Personalize", p)
				}
				if e.HTML != nil && !bytes.Contains(e.HTML, []byte(`href="`+p+`"`)) {
					t.Errorf("HTML lacks href=%q before Personalize (html/template altered it?)", p)
				}
			}
			html, text := e.Personalize(testLinks)
			for _, l := range []string{testLinks.Unsubscribe, testLinks.Preferences} {
				if !bytes.Contains(text, []byte(l)) {
					t.Errorf("text lacks %q after Personalize", l)
				}
				if html != nil && !bytes.Contains(html, []byte(`href="`+escaped(l)+`"`)) {
					t.Errorf("HTML lacks href=%q after Personalize", escaped(l))
				}
				if html != nil && bytes.Contains(html, []byte(l)) {
					t.Errorf("HTML holds the unescaped link %q", l)
				}
			}
			for _, body := range [][]byte{html, text} {
				if bytes.Contains(body, []byte("BSx")) {
					t.Errorf("a placeholder remains after Personalize")
				}
			}
		})
	}
}

func TestPersonalizeDoesNotMutate(t *testing.T) {
	r := MustRenderer(t)
	e, err := r.Digest(testDigest(), render.Variant{Format: newsletter.FormatFull})
	if err != nil {
		t.Fatal(err)
	}
	html0, text0 := bytes.Clone(e.HTML), bytes.Clone(e.Text)
	h1, t1 := e.Personalize(testLinks)
	h2, t2 := e.Personalize(render.Links{Unsubscribe: "https://x.example/u", Preferences: "https://x.example/p"})
	if !bytes.Equal(e.HTML, html0) || !bytes.Equal(e.Text, text0) {
		t.Fatalf("Personalize modified the edition")
	}
	if bytes.Equal(h1, h2) || bytes.Equal(t1, t2) {
		t.Errorf("two readers got the same bytes")
	}
	h1[0], t1[0] = 'X', 'X' // a reader's copy does not share memory with the edition
	if !bytes.Equal(e.HTML, html0) || !bytes.Equal(e.Text, text0) {
		t.Errorf("Personalize's output aliases the edition")
	}
}

func TestPersonalizeStoredEdition(t *testing.T) {
	r := MustRenderer(t)
	e, err := r.Digest(testDigest(), render.Variant{Format: newsletter.FormatLite})
	if err != nil {
		t.Fatal(err)
	}
	wantHTML, wantText := e.Personalize(testLinks)
	// An edition loaded from storage has only its exported fields.
	stored := &render.Edition{Subject: e.Subject, HTML: bytes.Clone(e.HTML), Text: bytes.Clone(e.Text)}
	gotHTML, gotText := stored.Personalize(testLinks)
	if !bytes.Equal(gotHTML, wantHTML) || !bytes.Equal(gotText, wantText) {
		t.Errorf("Personalize of a stored edition differs from the rendered one")
	}
}

func TestIntroIsEscaped(t *testing.T) {
	r := MustRenderer(t)
	d := testDigest()
	d.Intro = "Hello <script>alert(1)</script>\n<b>bold</b> & \"quoted\""
	e, err := r.Digest(d, render.Variant{Format: newsletter.FormatFull})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script>", "<b>bold"} {
		if bytes.Contains(e.HTML, []byte(bad)) {
			t.Errorf("HTML holds %q unescaped", bad)
		}
	}
	if !bytes.Contains(e.HTML, []byte("Hello &lt;script&gt;alert(1)&lt;/script&gt;<br>&lt;b&gt;bold&lt;/b&gt; &amp; &#34;quoted&#34;")) {
		t.Errorf("HTML lacks the escaped intro with a line break")
	}
	if !bytes.Contains(e.Text, []byte("Hello <script>alert(1)</script>\n<b>bold</b>")) {
		t.Errorf("text lacks the intro as written")
	}
}

func TestEmptyFields(t *testing.T) {
	r := MustRenderer(t)
	for _, d := range []*newsletter.Digest{
		{},
		{ID: "daily-2026-11-26", Frequency: newsletter.Daily, Period: "2026-11-26"},
		{ID: "weekly-2026-W48", Frequency: newsletter.Weekly, Period: "2026-W48", Articles: []newsletter.Article{
			{URL: "https://ledger.example.com/a/", Title: "Only a title"},
			{URL: "https://ledger.example.com/b/", Sections: []string{"news"}},
		}},
	} {
		for _, f := range newsletter.Formats {
			e, err := r.Digest(d, render.Variant{Format: f})
			if err != nil {
				t.Fatalf("Digest(%q, %s): %v", d.ID, f, err)
			}
			if len(e.Text) == 0 || e.Subject == "" {
				t.Errorf("Digest(%q, %s): empty text or subject", d.ID, f)
			}
		}
		if _, err := r.ArchiveHTML(d); err != nil {
			t.Errorf("ArchiveHTML(%q): %v", d.ID, err)
		}
	}
}

func TestSubject(t *testing.T) {
	r := MustRenderer(t)
	for _, tt := range []struct {
		d    newsletter.Digest
		want string
	}{
		{newsletter.Digest{Subject: "  Big\r\nnews  "}, "Big news"},
		{newsletter.Digest{Frequency: newsletter.Daily, Period: "2026-11-26"}, "The Daily Ledger: Thursday 26 November 2026"},
		{newsletter.Digest{Frequency: newsletter.Weekly, Period: "2026-W48"}, "The Daily Ledger: Week of 23 November 2026"},
		{newsletter.Digest{Frequency: newsletter.Weekly, Period: "2027-W01"}, "The Daily Ledger: Week of 4 January 2027"},
		{newsletter.Digest{Until: time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)}, "The Daily Ledger: Friday 27 November 2026"},
		{newsletter.Digest{}, "The Daily Ledger"},
	} {
		if got := r.Subject(&tt.d); got != tt.want {
			t.Errorf("Subject(%+v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestPlaceholderInContentIsRefused(t *testing.T) {
	r := MustRenderer(t)
	d := testDigest()
	d.Articles[0].Summary = "click " + render.PlaceholderUnsubscribe
	_, err := r.Digest(d, render.Variant{})
	if code := newsletter.ErrorCode(err); code != newsletter.EINVALID {
		t.Errorf("Digest with a placeholder in a summary: code %q (%v), want %q", code, err, newsletter.EINVALID)
	}
}

func TestRendersCountsExecutions(t *testing.T) {
	r := MustRenderer(t)
	d := testDigest()
	readers := []*newsletter.Subscriber{
		{Format: newsletter.FormatFull},
		{Format: newsletter.FormatFull, Sections: d.Sections()},
		{Format: newsletter.FormatLite, Sections: []string{"sport", "news"}},
		{Format: newsletter.FormatLite, Sections: []string{"news", "sport", "science"}},
		{Format: newsletter.FormatText},
		{Format: newsletter.FormatText, Sections: nil},
	}
	editions := map[string]*render.Edition{}
	for _, s := range readers {
		v := render.VariantFor(d, s)
		e, ok := editions[v.Key()]
		if !ok {
			var err error
			if e, err = r.Digest(d, v); err != nil {
				t.Fatal(err)
			}
			editions[v.Key()] = e
		}
		e.Personalize(testLinks)
	}
	if got := r.Renders(); got != 3 {
		t.Errorf("Renders() = %d after 6 readers in 3 variants, want 3", got)
	}
}

func TestNew(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*render.Site)
		ok   bool
	}{
		{"valid", func(*render.Site) {}, true},
		{"no location", func(s *render.Site) { s.Location = nil }, true},
		{"no name", func(s *render.Site) { s.Name = " " }, false},
		{"no URL", func(s *render.Site) { s.URL = "" }, false},
		{"relative URL", func(s *render.Site) { s.URL = "/news" }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := testSite()
			tt.edit(&s)
			r, err := render.New(s)
			if (err == nil) != tt.ok {
				t.Errorf("New: err = %v, want ok = %v", err, tt.ok)
			}
			if err == nil && r == nil {
				t.Errorf("New returned nil and no error")
			}
		})
	}
}

// benchDigest is a digest of n articles with images, summaries and authors.
func benchDigest(n int) *newsletter.Digest {
	d := testDigest()
	base := d.Articles
	d.Articles = nil
	for i := range n {
		a := base[i%len(base)]
		a.Title = fmt.Sprintf("%s (%d)", a.Title, i)
		a.URL = fmt.Sprintf("%s%d/", a.URL, i)
		a.ImageURL = "https://ledger.example.com/img/harbour.jpg"
		d.Articles = append(d.Articles, a)
	}
	return d
}

func BenchmarkDigestRender(b *testing.B) {
	r := MustRenderer(b)
	d := benchDigest(10)
	var size int
	for b.Loop() {
		e, err := r.Digest(d, render.Variant{Format: newsletter.FormatFull})
		if err != nil {
			b.Fatal(err)
		}
		size = len(e.HTML) + len(e.Text)
	}
	b.ReportMetric(float64(size), "bytes/edition")
}

func BenchmarkPersonalize(b *testing.B) {
	r := MustRenderer(b)
	e, err := r.Digest(benchDigest(10), render.Variant{Format: newsletter.FormatFull})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(e.HTML) + len(e.Text)))
	for b.Loop() {
		e.Personalize(testLinks)
	}
}

// TestVariantAfter: a reader whose ArticlesAfter falls among the digest's
// articles gets a variant without those published at or before it; its
// After is the newest article left out, so readers who miss the same
// articles share it; a reader whose ArticlesAfter is older than every
// article gets the plain variant.
func TestVariantAfter(t *testing.T) {
	d := testDigest()
	times := make([]time.Time, len(d.Articles))
	for i := range d.Articles {
		d.Articles[i].PublishedAt = d.Since.Add(time.Duration(i+1) * time.Minute)
		times[i] = d.Articles[i].PublishedAt
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	plain := render.VariantFor(d, &newsletter.Subscriber{ArticlesAfter: times[0].Add(-time.Hour)})
	if !plain.After.IsZero() || plain.Key() != "full|all" {
		t.Errorf("ArticlesAfter before every article: got %#v (%s), want the plain variant", plain, plain.Key())
	}
	a := render.VariantFor(d, &newsletter.Subscriber{ArticlesAfter: times[0]})
	b := render.VariantFor(d, &newsletter.Subscriber{ArticlesAfter: times[0].Add(time.Nanosecond)})
	if !a.After.Equal(times[0]) || a.Key() != b.Key() || a.Key() == "full|all" {
		t.Errorf("ArticlesAfter at the oldest article: got %s and %s, want one variant after %v", a.Key(), b.Key(), times[0])
	}
	r, err := render.New(testSite())
	if err != nil {
		t.Fatal(err)
	}
	ed, err := r.Digest(d, a)
	if err != nil {
		t.Fatal(err)
	}
	for _, art := range d.Articles {
		in := bytes.Contains(ed.Text, []byte(art.Title))
		if want := art.PublishedAt.After(times[0]); in != want {
			t.Errorf("%q (published %v) in the variant: %v, want %v", art.Title, art.PublishedAt, in, want)
		}
	}

	// A correction of an article the reader had comes through, marked.
	oldest := d.Articles[0]
	d.Updated = []string{oldest.ID}
	c := render.VariantFor(d, &newsletter.Subscriber{ArticlesAfter: times[1]})
	if ed, err = r.Digest(d, c); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ed.Text, []byte(oldest.Title)) || bytes.Contains(ed.Text, []byte(d.Articles[1].Title)) {
		t.Errorf("variant %s: want the corrected %q and not %q", c.Key(), oldest.Title, d.Articles[1].Title)
	}
}
