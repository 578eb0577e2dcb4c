package newsletter_test

import (
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

func TestSanitizeSummary(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain text", "Profits < forecasts & shares > 3", "Profits &lt; forecasts &amp; shares &gt; 3"},
		{"allowed tags", "<p>One <em>two</em> <strong>three</strong> <b>4</b> <i>5</i><br>six</p><ul><li>a</li></ul><ol><li>b</li></ol><blockquote>q</blockquote>",
			"<p>One <em>two</em> <strong>three</strong> <b>4</b> <i>5</i><br/>six</p><ul><li>a</li></ul><ol><li>b</li></ol><blockquote>q</blockquote>"},
		{"stray end tags", "a</p></blockquote></a>b", "a<p></p>b"},
		{"script", `Hello<script>alert(1)</script> world`, "Hello world"},
		{"style", `<style>p{color:red}</style>Hi`, "Hi"},
		{"onerror", `<p onerror="alert(1)" onclick=x>Hi</p>`, "<p>Hi</p>"},
		{"img dropped", `Look <img src="https://x.example/a.png" onerror="alert(1)"> here`, "Look  here"},
		{"javascript link", `<a href="javascript:alert(1)">click</a>`, "click"},
		{"javascript link with entities", `<a href="jav&#x09;ascript:alert(1)">click</a>`, "click"},
		{"data link", `<a href="data:text/html,<script>alert(1)</script>">x</a>`, "x"},
		{"relative link", `<a href="/local">x</a>`, "x"},
		{"link without a host", `<a href="https:">x</a><a href="http:/path">y</a><a href="https:///z">z</a>`, "xyz"},
		{"https link", `<a href="https://ledger.example/a?b=1&c=2" title="t" target="_self">read</a>`,
			`<a href="https://ledger.example/a?b=1&amp;c=2" rel="nofollow noopener" target="_blank">read</a>`},
		{"styles and classes", `<p style="position:fixed" class="x" id="y">Hi</p>`, "<p>Hi</p>"},
		{"iframe and form", `<iframe src="https://evil.example"></iframe><form action="x"><input name="a"></form>ok`, "ok"},
		{"entities", "Caf&eacute; &amp; cr&#232;me &#8217;s &nbsp;end &lt;b&gt;", "Café &amp; crème ’s \u00a0end &lt;b&gt;"},
		{"unclosed", "<p><strong>bold", "<p><strong>bold</strong></p>"},
		{"comment", "a<!-- <script>x</script> -->b", "ab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := newsletter.SanitizeSummary(tc.in)
			if got != tc.want {
				t.Fatalf("SanitizeSummary(%q):\n got %q\nwant %q", tc.in, got, tc.want)
			}
			if again := newsletter.SanitizeSummary(got); again != got {
				t.Fatalf("SanitizeSummary is not stable: %q became %q", got, again)
			}
			for _, bad := range []string{"<script", "onerror", "javascript:", "<img", "style="} {
				if strings.Contains(strings.ToLower(got), bad) {
					t.Fatalf("SanitizeSummary(%q) = %q holds %q", tc.in, got, bad)
				}
			}
		})
	}
}

func TestSummaryText(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"Plain  text\r\n  on two\tlines", "Plain text\non two lines"},
		{"<p>One &amp; <em>two</em></p>\n\n<p>Three&nbsp;four<br>five</p>", "One & two\nThree four\nfive"},
		{"Caf&eacute; <b>cr&#232;me</b> &lt;b&gt;", "Café crème <b>"},
		{"<ul><li>a</li><li>b</li></ul>", "a\nb"},
		{"x<script>alert(1)</script>y<style>p{}</style>z", "xyz"},
		{"", ""},
	} {
		a := newsletter.Article{Summary: tc.in}
		if got := a.SummaryText(); got != tc.want {
			t.Errorf("SummaryText(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
	a := newsletter.Article{Summary: `<p onclick="x">Hi <img src=x onerror=alert(1)><a href="javascript:alert(1)">there</a></p>`}
	if got, want := string(a.SummaryHTML()), "<p>Hi there</p>"; got != want {
		t.Errorf("SummaryHTML: got %q, want %q", got, want)
	}
}

func TestHTMLTextOneLine(t *testing.T) {
	if got, want := newsletter.HTMLText("<b>Storm</b> &amp; <i>flood</i>\r\nBcc: x@example.com", false), "Storm & flood Bcc: x@example.com"; got != want {
		t.Errorf("HTMLText: got %q, want %q", got, want)
	}
}

// FuzzSanitizeSummary checks that sanitising is stable (a stored summary
// comes out of SummaryHTML unchanged) and that its text never holds markup
// that a tag-stripping pass missed.
func FuzzSanitizeSummary(f *testing.F) {
	for _, s := range []string{
		"plain & simple", "<p>One <em>two</em></p>", `<a href="https://x.example/?a=1&b=2">x</a>`,
		`<a href="javascript:alert(1)">x</a><img src=x onerror=alert(1)>`, "<script>x</script><style>y</style>",
		"<p><strong>open", "</p></a>stray", "&lt;b&gt; &amp;amp; &#0; &#x110000; &nbsp;", "<!-- c --><![CDATA[x]]>",
		"<svg><p>in svg</p></svg>", "<table><tr><td>cell</table>", "<noscript><p>x</p></noscript>", "\x00<p>\xff</p>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := newsletter.SanitizeSummary(in)
		if again := newsletter.SanitizeSummary(got); again != got {
			t.Fatalf("SanitizeSummary(%q) = %q is not stable: again %q", in, got, again)
		}
		low := strings.ToLower(got)
		for _, bad := range []string{"<script", "<style", "<img", "<iframe", "<svg", "javascript:", "<!--", " on"} {
			if bad == " on" {
				// An attribute, not text: only inside a tag.
				if strings.Contains(low, "<") && containsAttrOn(low) {
					t.Fatalf("SanitizeSummary(%q) = %q keeps an event attribute", in, got)
				}
				continue
			}
			if strings.Contains(low, bad) && !(bad == "javascript:" && !strings.Contains(low, "href=\"javascript:")) {
				t.Fatalf("SanitizeSummary(%q) = %q holds %q", in, got, bad)
			}
		}
		for _, href := range hrefs(got) {
			if u, err := url.Parse(href); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Fatalf("SanitizeSummary(%q) = %q links to %q, not an http(s) URL with a host", in, got, href)
			}
		}
		a := newsletter.Article{Summary: got}
		if text := a.SummaryText(); strings.ContainsAny(text, "\r\t") {
			t.Fatalf("SummaryText(%q) = %q holds a CR or tab", got, text)
		}
	})
}

// hrefs returns the href of every element in an HTML fragment.
func hrefs(s string) []string {
	var out []string
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return out
		case html.StartTagToken, html.SelfClosingTagToken:
			for _, a := range z.Token().Attr {
				if a.Key == "href" {
					out = append(out, a.Val)
				}
			}
		}
	}
}

// containsAttrOn reports whether an HTML tag in s has an attribute whose
// name starts with "on".
func containsAttrOn(s string) bool {
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			return false
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			return false
		}
		for _, f := range strings.Fields(s[i : i+j])[1:] {
			if strings.HasPrefix(f, "on") {
				return true
			}
		}
		s = s[i+j:]
	}
}
