package newsletter_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

func TestCanonicalURL(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("a", newsletter.MaxURLLength)
	tests := []struct {
		name string
		in   string
		want string // "" when EINVALID is expected
	}{
		{"already canonical", "https://example.com/news/1", "https://example.com/news/1"},
		{"scheme and host lower-cased, path kept", "HTTPS://News.Example.COM/World/Story", "https://news.example.com/World/Story"},
		{"surrounding space", "  https://example.com/a \n", "https://example.com/a"},
		{"empty path gets slash", "https://example.com", "https://example.com/"},
		{"http default port dropped", "http://example.com:80/a", "http://example.com/a"},
		{"https default port dropped", "https://example.com:443", "https://example.com/"},
		{"http port 443 kept", "http://example.com:443/a", "http://example.com:443/a"},
		{"https port 80 kept", "https://example.com:80/a", "https://example.com:80/a"},
		{"other port kept", "https://example.com:8443/a", "https://example.com:8443/a"},
		{"fragment dropped", "https://example.com/a#comments", "https://example.com/a"},
		{"empty query dropped", "https://example.com/a?", "https://example.com/a"},
		{"utm params dropped", "https://example.com/a?utm_source=x&utm_medium=y&UTM_Campaign=z", "https://example.com/a"},
		{"other params kept and sorted", "https://example.com/a?utm_source=x&page=2&id=7#top", "https://example.com/a?id=7&page=2"},
		{"param that only looks like utm", "https://example.com/a?utmost=1", "https://example.com/a?utmost=1"},
		{"escaped path kept", "https://example.com/a%20b", "https://example.com/a%20b"},
		{"IPv6 host", "http://[2001:DB8::1]:80/", "http://[2001:db8::1]/"},

		{"empty", "", ""},
		{"relative path", "/news/1", ""},
		{"no scheme", "example.com/news/1", ""},
		{"scheme-relative", "//example.com/news/1", ""},
		{"javascript", "javascript:alert(1)", ""},
		{"javascript with slashes", "javascript://example.com/%0Aalert(1)", ""},
		{"mailto", "mailto:editor@example.com", ""},
		{"ftp", "ftp://example.com/file", ""},
		{"data", "data:text/html,<b>x</b>", ""},
		{"no host", "https:///path", ""},
		{"port without host", "http://:8080/", ""},
		{"default port without host", "https://:443/", ""},
		{"opaque http", "http:example.com", ""},
		{"user info", "https://user:secret@example.com/", ""},
		{"user only", "https://user@example.com/", ""},
		{"empty user info", "https://@example.com/", ""},
		{"LF", "https://example.com/a\nb", ""},
		{"CR", "https://example.com/a\rb", ""},
		{"NUL", "https://example.com/\x00", ""},
		{"tab", "https://example.com/a\tb", ""},
		{"DEL", "https://example.com/\x7f", ""},
		{"too long", long, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := newsletter.CanonicalURL(tt.in)
			if tt.want == "" {
				checkCode(t, err, newsletter.EINVALID)
				if got != "" {
					t.Errorf("URL with error: got %q, want \"\"", got)
				}
				return
			}
			checkCode(t, err, "")
			if got != tt.want {
				t.Errorf("CanonicalURL(%q): got %q, want %q", tt.in, got, tt.want)
			}
			again, err := newsletter.CanonicalURL(got)
			if err != nil || again != got {
				t.Errorf("CanonicalURL(%q): got %q, %v, want %q, nil", got, again, err, got)
			}
		})
	}
}

func TestCanonicalURLLengthAfterEscaping(t *testing.T) {
	// Escaping can make a URL longer than its input; the canonical form
	// must still be within the limit so that it passes validation again.
	in := "https://example.com/?q=" + strings.Repeat("é", (newsletter.MaxURLLength-30)/2)
	if len(in) > newsletter.MaxURLLength {
		t.Fatalf("test input: got %d bytes, want at most %d", len(in), newsletter.MaxURLLength)
	}
	got, err := newsletter.CanonicalURL(in)
	if err != nil {
		checkCode(t, err, newsletter.EINVALID)
		return
	}
	if len(got) > newsletter.MaxURLLength {
		t.Errorf("canonical URL length: got %d, want at most %d", len(got), newsletter.MaxURLLength)
	}
	if _, err := newsletter.CanonicalURL(got); err != nil {
		t.Errorf("CanonicalURL of its own output: got %v, want nil", err)
	}
}

func TestArticleID(t *testing.T) {
	a := newsletter.ArticleID("https://example.com/a")
	if again := newsletter.ArticleID("https://example.com/a"); again != a {
		t.Errorf("ArticleID twice: got %q and %q, want equal", a, again)
	}
	if b := newsletter.ArticleID("https://example.com/b"); b == a {
		t.Errorf("ArticleID of different URLs: got %q for both, want different", a)
	}
	if !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(a) {
		t.Errorf("ArticleID: got %q, want 24 lower-case hex digits", a)
	}
	// The same story submitted in two spellings gets one ID.
	u1, err := newsletter.CanonicalURL("HTTPS://Example.com:443/a?utm_source=feed#x")
	checkCode(t, err, "")
	u2, err := newsletter.CanonicalURL("https://example.com/a")
	checkCode(t, err, "")
	if id1, id2 := newsletter.ArticleID(u1), newsletter.ArticleID(u2); id1 != id2 {
		t.Errorf("ArticleID of one story: got %q and %q, want equal", id1, id2)
	}
}

func TestArticleValidate(t *testing.T) {
	valid := func() newsletter.Article {
		return newsletter.Article{
			URL:      "https://example.com/story",
			Title:    "A story",
			Summary:  "What happened.",
			Sections: []string{"news"},
		}
	}
	with := func(change func(*newsletter.Article)) newsletter.Article {
		a := valid()
		change(&a)
		return a
	}
	tests := []struct {
		name  string
		in    newsletter.Article
		known []newsletter.Section
		code  string
	}{
		{"valid", valid(), newsletter.DefaultSections, ""},
		{"title of max runes, more bytes", with(func(a *newsletter.Article) { a.Title = strings.Repeat("é", newsletter.MaxTitleLength) }), nil, ""},
		{"title one rune over", with(func(a *newsletter.Article) { a.Title = strings.Repeat("é", newsletter.MaxTitleLength+1) }), nil, newsletter.EINVALID},
		{"summary of max runes, more bytes", with(func(a *newsletter.Article) { a.Summary = strings.Repeat("ü", newsletter.MaxSummaryLength) }), nil, ""},
		{"summary one rune over", with(func(a *newsletter.Article) { a.Summary = strings.Repeat("ü", newsletter.MaxSummaryLength+1) }), nil, newsletter.EINVALID},
		{"author of max runes, more bytes", with(func(a *newsletter.Article) { a.Author = strings.Repeat("ø", newsletter.MaxAuthorLength) }), nil, ""},
		{"author one rune over", with(func(a *newsletter.Article) { a.Author = strings.Repeat("ø", newsletter.MaxAuthorLength+1) }), nil, newsletter.EINVALID},
		{"title required", with(func(a *newsletter.Article) { a.Title = "" }), nil, newsletter.EINVALID},
		{"blank title", with(func(a *newsletter.Article) { a.Title = " \t\n " }), nil, newsletter.EINVALID},
		{"LF in title", with(func(a *newsletter.Article) { a.Title = "A\nBcc: x@example.com" }), nil, newsletter.EINVALID},
		{"CR in title", with(func(a *newsletter.Article) { a.Title = "A\rB" }), nil, newsletter.EINVALID},
		{"NUL in title", with(func(a *newsletter.Article) { a.Title = "A\x00B" }), nil, newsletter.EINVALID},
		{"tab in title", with(func(a *newsletter.Article) { a.Title = "A\tB" }), nil, newsletter.EINVALID},
		{"LF in author", with(func(a *newsletter.Article) { a.Author = "Ann\nBee" }), nil, newsletter.EINVALID},
		{"newlines and tabs in summary", with(func(a *newsletter.Article) { a.Summary = "One.\n\n\tTwo.\r\nThree." }), nil, ""},
		{"invalid UTF-8 title", with(func(a *newsletter.Article) { a.Title = "A \xff story" }), nil, newsletter.EINVALID},
		{"invalid UTF-8 summary", with(func(a *newsletter.Article) { a.Summary = "\xc3" }), nil, newsletter.EINVALID},
		{"missing URL", with(func(a *newsletter.Article) { a.URL = "" }), nil, newsletter.EINVALID},
		{"javascript URL", with(func(a *newsletter.Article) { a.URL = "javascript:alert(1)" }), nil, newsletter.EINVALID},
		{"relative image URL", with(func(a *newsletter.Article) { a.ImageURL = "/img.png" }), nil, newsletter.EINVALID},
		{"data image URL", with(func(a *newsletter.Article) { a.ImageURL = "data:image/png;base64,AAAA" }), nil, newsletter.EINVALID},
		{"blank image URL", with(func(a *newsletter.Article) { a.ImageURL = "   " }), nil, ""},
		{"unknown section", with(func(a *newsletter.Article) { a.Sections = []string{"news", "weather"} }), newsletter.DefaultSections, newsletter.EINVALID},
		{"any section when none are known", with(func(a *newsletter.Article) { a.Sections = []string{"weather"} }), nil, ""},
		{"section without letters", with(func(a *newsletter.Article) { a.Sections = []string{"!!"} }), nil, newsletter.EINVALID},
		{"too many sections", with(func(a *newsletter.Article) {
			a.Sections = nil
			for i := range newsletter.MaxSections + 1 {
				a.Sections = append(a.Sections, "s"+string(rune('a'+i)))
			}
		}), nil, newsletter.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.in
			checkCode(t, a.Validate(tt.known), tt.code)
		})
	}
}

func TestArticleValidateNormalises(t *testing.T) {
	a := newsletter.Article{
		URL:      "  HTTPS://Example.com:443/story?utm_source=rss&id=3#top ",
		Title:    "  A story  ",
		Summary:  "\n  First line.\nSecond line.  \n",
		Author:   "\tAnn Author ",
		ImageURL: " https://IMG.example.com/a.png#x ",
		Sections: []string{" Sport ", "SPORT", "News", "sport"},
	}
	if err := a.Validate(newsletter.DefaultSections); err != nil {
		t.Fatalf("Validate: got %v, want nil", err)
	}
	checks := []struct{ field, got, want string }{
		{"URL", a.URL, "https://example.com/story?id=3"},
		{"ID", a.ID, newsletter.ArticleID("https://example.com/story?id=3")},
		{"Title", a.Title, "A story"},
		{"Summary", a.Summary, "First line.\nSecond line."},
		{"Author", a.Author, "Ann Author"},
		{"ImageURL", a.ImageURL, "https://img.example.com/a.png"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.field, c.got, c.want)
		}
	}
	if want := []string{"sport", "news"}; !slices.Equal(a.Sections, want) {
		t.Errorf("Sections: got %q, want %q", a.Sections, want)
	}

	// Validating a valid article again changes nothing.
	before := a
	before.Sections = slices.Clone(a.Sections)
	if err := a.Validate(newsletter.DefaultSections); err != nil {
		t.Fatalf("Validate again: got %v, want nil", err)
	}
	if a.URL != before.URL || a.ID != before.ID || a.Title != before.Title || a.Summary != before.Summary ||
		a.Author != before.Author || a.ImageURL != before.ImageURL || !slices.Equal(a.Sections, before.Sections) {
		t.Errorf("Validate again: got %+v, want %+v", a, before)
	}
}
