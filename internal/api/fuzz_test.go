package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// serve runs one request through the handler in process.
func (e *env) serve(method, path, contentType, accept, auth string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.RemoteAddr = "192.0.2.7:1234"
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	if auth != "" {
		r.Header.Set("Authorization", "Bearer "+auth)
	}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	return w
}

// checkAnswer fails on a status outside ok, an internal error code, or a
// panic or internal error in the log.
func (e *env) checkAnswer(t *testing.T, w *httptest.ResponseRecorder, what string, ok ...int) {
	t.Helper()
	if !slices.Contains(ok, w.Code) {
		t.Fatalf("%s: got status %d, want one of %v; body %.300q", what, w.Code, ok, w.Body.String())
	}
	if strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") && w.Code >= 400 {
		var b struct{ Error struct{ Code string } }
		if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error.Code == "" || b.Error.Code == newsletter.EINTERNAL {
			t.Fatalf("%s: error body %q, want a clean error code", what, w.Body.String())
		}
	}
	logs := e.logs.String()
	for _, bad := range []string{"http handler panic", "internal error"} {
		if strings.Contains(logs, bad) {
			t.Fatalf("%s: log holds %q:\n%s", what, bad, logs)
		}
	}
}

// FuzzSubscribe sends arbitrary bodies, content types and Accept headers to
// POST /subscribe on the real stack. Every answer must be 202 with the one
// accepted body, 400 or 413 with a clean error code: never a 5xx, never a
// panic, never an internal error in the log.
func FuzzSubscribe(f *testing.F) {
	for _, s := range [][3]string{
		{"application/json", "", `{"email":"a@example.com","sections":["news"],"frequency":"weekly","format":"lite"}`},
		{"application/json; charset=utf-8", "application/json", `{"email":"A@Example.COM"}`},
		{"application/json", "", `{"email":"a@example.com","extra":1}`},
		{"application/json", "", `{"email":["a@example.com"]}`},
		{"application/json", "", `{"email":"a@example.com"} {}`},
		{"application/json", "", `{"email":"a@example.com\r\nBcc: b@example.com"}`},
		{"application/json", "", `{"email":"\u0000@example.com","sections":null}`},
		{"application/merge-patch+json", "", `null`},
		{"application/x-www-form-urlencoded", "text/html", "email=a%40example.com&sections=news&sections=sport&frequency=daily&format=full"},
		{"application/x-www-form-urlencoded", "", "email=a%40example.com&website=http%3A%2F%2Fspam.example"},
		{"application/x-www-form-urlencoded", "application/json", "email=%zz&frequency=hourly"},
		{"application/x-www-form-urlencoded", "", "email=" + strings.Repeat("a", 300) + "%40example.com"},
		{"multipart/form-data; boundary=x", "", "--x\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nm@example.com\r\n--x--\r\n"},
		{"multipart/form-data; boundary=x", "", "--x\r\nContent-Disposition: form-data; name=\"email\"; filename=\"a\"\r\n\r\nm@example.com\r\n--x"},
		{"multipart/form-data", "", "--x--"},
		{"text/plain", "", "email=a@example.com"},
		{"", "", ""},
		{"application/json; charset=\"", "", "{}"},
	} {
		f.Add(s[0], s[1], []byte(s[2]))
	}
	e := MustEnv(f)
	jsonOK := e.serve("POST", "/subscribe", "application/json", "", "", []byte(`{"email":"seed@example.com"}`))
	htmlOK := e.serve("POST", "/subscribe", "application/x-www-form-urlencoded", "text/html", "", []byte("email=seed%40example.com"))
	if jsonOK.Code != http.StatusAccepted || htmlOK.Code != http.StatusAccepted {
		f.Fatalf("seed sign-ups: got %d and %d, want 202", jsonOK.Code, htmlOK.Code)
	}
	f.Fuzz(func(t *testing.T, contentType, accept string, body []byte) {
		if !validHeader(contentType) || !validHeader(accept) {
			return // net/http would refuse to send such a header
		}
		w := e.serve("POST", "/subscribe", contentType, accept, "", body)
		e.checkAnswer(t, w, "POST /subscribe", http.StatusAccepted, http.StatusBadRequest, http.StatusRequestEntityTooLarge)
		if w.Code == http.StatusAccepted && !bytes.Equal(w.Body.Bytes(), jsonOK.Body.Bytes()) && !bytes.Equal(w.Body.Bytes(), htmlOK.Body.Bytes()) {
			t.Fatalf("POST /subscribe %q: accepted with a body of its own: %q", body, w.Body.String())
		}
	})
}

// FuzzSubmitArticle sends arbitrary bodies to POST /api/articles with a
// full editor token. Every answer must be 200, 201, 400 or 413 with a clean
// error code; an accepted article must be stored valid: canonical URL and
// matching ID, a one-line title within its limit, and a summary that is
// stable under sanitising and holds only allowed elements, attributes and
// http(s) links.
func FuzzSubmitArticle(f *testing.F) {
	for _, s := range []string{
		`{"url":"https://ledger.example.com/a","title":"A story","summary":"<p>Hi <strong>there</strong></p>","sections":["news"],"publishedAt":"2026-11-26T06:00:00Z"}`,
		`{"url":"https://ledger.example.com/b","title":"<b>Storm</b> &amp; flood","summary":"<script>alert(1)</script><img src=x onerror=alert(1)><a href=\"javascript:alert(1)\">x</a>"}`,
		`{"url":"http://LEDGER.example.com:80/c?utm_source=x#f","title":"T","summary":"<a href=\"https://x.example/\" onclick=\"y\">l</a><p><blockquote>q","author":"A","imageUrl":"https://ledger.example.com/i.jpg"}`,
		`{"url":"https://ledger.example.com/d","title":"T","summary":"&lt;script&gt; &#0; &#x110000; &nbsp; &amp;amp;"}`,
		`{"url":"https://ledger.example.com/e","title":"Line\r\nBcc: x","summary":""}`,
		`{"url":"javascript:alert(1)","title":"T"}`,
		`{"url":"https://ledger.example.com/f","title":"T","sections":["Gardening & Flowers"],"publishedAt":"yesterday"}`,
		`{"url":"https://ledger.example.com/g","title":"T","summary":"<ul><li>a<li>b</ul><ol><li><em>c</ol></p></a>"}`,
		`{"url":"https://ledger.example.com/h","title":"` + strings.Repeat("é", 301) + `"}`,
		`{"title":1}`, `[]`, `null`, `{"url":"https://ledger.example.com/i","title":"T"}x`, ``,
	} {
		f.Add("application/json", []byte(s))
	}
	f.Add("text/plain", []byte(`{"url":"https://ledger.example.com/a","title":"T"}`))
	e := MustEnv(f)
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		if !validHeader(contentType) {
			return
		}
		w := e.serve("POST", "/api/articles", contentType, "", e.full, body)
		e.checkAnswer(t, w, "POST /api/articles", http.StatusOK, http.StatusCreated, http.StatusBadRequest, http.StatusRequestEntityTooLarge)
		if w.Code >= 300 {
			return
		}
		var a newsletter.Article
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
			t.Fatalf("answer %q: %v", w.Body.String(), err)
		}
		if canon, err := newsletter.CanonicalURL(a.URL); err != nil || canon != a.URL || a.ID != newsletter.ArticleID(a.URL) {
			t.Fatalf("stored URL %q, ID %q: not canonical (%q, %v)", a.URL, a.ID, canon, err)
		}
		if a.Title == "" || utf8.RuneCountInString(a.Title) > newsletter.MaxTitleLength || strings.ContainsFunc(a.Title, unicode.IsControl) {
			t.Fatalf("stored title %q from %q", a.Title, body)
		}
		if again := newsletter.SanitizeSummary(a.Summary); again != a.Summary {
			t.Fatalf("stored summary is not stable under sanitising:\n%q\n%q", a.Summary, again)
		}
		checkSummaryMarkup(t, a.Summary)
	})
}

// checkSummaryMarkup fails on any element, attribute or link that the
// summary allowlist does not allow.
func checkSummaryMarkup(t *testing.T, s string) {
	t.Helper()
	allowed := map[string]bool{"p": true, "br": true, "em": true, "strong": true, "b": true, "i": true, "a": true, "ul": true, "ol": true, "li": true, "blockquote": true}
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return
		case html.CommentToken, html.DoctypeToken:
			t.Fatalf("summary %q holds a comment or doctype", s)
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if !allowed[tok.Data] {
				t.Fatalf("summary %q holds a <%s> element", s, tok.Data)
			}
			for _, at := range tok.Attr {
				switch {
				case tok.Data == "a" && at.Key == "href":
					if !strings.HasPrefix(at.Val, "https://") && !strings.HasPrefix(at.Val, "http://") {
						t.Fatalf("summary %q links to %q", s, at.Val)
					}
				case tok.Data == "a" && (at.Key == "rel" || at.Key == "target"):
				default:
					t.Fatalf("summary %q holds attribute %s on <%s>", s, at.Key, tok.Data)
				}
			}
		}
	}
}

// validHeader reports whether v can be sent as a header value.
func validHeader(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
