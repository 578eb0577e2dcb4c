package newsletter

import (
	"html/template"
	"net/url"
	"strings"
	"sync"
	"unicode"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// summaryPolicy is the allowlist an article summary's HTML is cut down to:
// paragraphs, line breaks, emphasis, lists, quotations and http(s) links
// that open in a new window with rel="nofollow noopener". Everything else
// is stripped, and the content of script, style and similar elements goes
// with it. The policy is built once and never changed, so it is safe to
// share.
var summaryPolicy = sync.OnceValue(func() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowElements("p", "br", "em", "strong", "b", "i", "ul", "ol", "li", "blockquote")
	p.AllowAttrs("href").OnElements("a")
	// A link must name a host: bluemonday alone would keep "https:" or
	// "http:/path", which lead nowhere (and are not "fully qualified", so
	// would miss rel="noopener").
	withHost := func(u *url.URL) bool { return u.Host != "" && u.Opaque == "" }
	p.AllowURLSchemeWithCustomPolicy("http", withHost)
	p.AllowURLSchemeWithCustomPolicy("https", withHost)
	p.RequireParseableURLs(true)
	p.AllowRelativeURLs(false)
	p.RequireNoFollowOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true) // adds rel="noopener" too
	return p
})

// SanitizeSummary returns the HTML of an article summary cut down to the
// summary allowlist (see Article.SummaryHTML). Plain text comes back as
// plain text, with <, > and & escaped. WordPress excerpts arrive as HTML,
// so a summary is always treated as HTML.
func SanitizeSummary(s string) string {
	return strings.TrimSpace(balance(summaryPolicy().Sanitize(s)))
}

// balance closes the elements an HTML fragment leaves open, and drops the
// end tags it never opened, by parsing it as the content of a <div> and
// writing it out again: an unclosed <a> or <blockquote> in one summary must
// not swallow the rest of the email.
func balance(s string) string {
	if !strings.Contains(s, "<") {
		return s
	}
	ctx := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	nodes, err := html.ParseFragment(strings.NewReader(s), ctx)
	if err != nil {
		return html.EscapeString(HTMLText(s, false))
	}
	var b strings.Builder
	for _, n := range nodes {
		if err := html.Render(&b, n); err != nil {
			return html.EscapeString(HTMLText(s, false))
		}
	}
	return b.String()
}

// SummaryHTML returns the article's summary as HTML that is safe to place
// in an email or a web page as is. It sanitises the summary again, whatever
// the store holds, so this is the one place trusted HTML comes from.
func (a *Article) SummaryHTML() template.HTML {
	return template.HTML(SanitizeSummary(a.Summary)) //nolint:gosec // sanitised just above
}

// SummaryText returns the article's summary as plain text for the text part
// of an email: tags stripped, entities decoded, white space collapsed, with
// a line break where a paragraph, line break, list item or quotation was.
func (a *Article) SummaryText() string {
	return HTMLText(a.Summary, true)
}

// HTMLText returns the text of an HTML fragment: tags stripped (with the
// content of script, style and the like), entities decoded and every run of
// white space collapsed into one space. With lines, block elements and
// line breaks become line breaks; without, the result is one line.
func HTMLText(s string, lines bool) string {
	var b strings.Builder
	z := html.NewTokenizer(strings.NewReader(s))
	skip := 0 // depth inside elements whose content is not text
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return collapse(b.String(), lines)
		case html.TextToken:
			if skip == 0 {
				b.Write(z.Text())
			}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			switch a {
			case atom.Script, atom.Style, atom.Iframe, atom.Noscript, atom.Template, atom.Object, atom.Textarea, atom.Title, atom.Svg, atom.Math:
				switch tt {
				case html.StartTagToken:
					skip++
				case html.EndTagToken:
					skip = max(0, skip-1)
				}
			case atom.P, atom.Br, atom.Li, atom.Blockquote, atom.Ul, atom.Ol, atom.Div, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Tr, atom.Hr:
				b.WriteByte('\n')
			}
		}
	}
}

// collapse turns every run of white space into one space, or, with lines,
// keeps one line break between non-empty lines.
func collapse(s string, lines bool) string {
	if !lines {
		return strings.Join(strings.FieldsFunc(s, isBlank), " ")
	}
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if line = strings.Join(strings.FieldsFunc(line, isBlank), " "); line != "" {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// isBlank reports whether r is white space or a control character.
func isBlank(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r)
}
