package api_test

import (
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/token"
)

// TestGeneratedBadInput sends a few hundred random and mutated requests to
// every route and checks that none gets a 5xx, that nothing panics and that
// nothing internal is logged. The seed is fixed so a failure repeats.
func TestGeneratedBadInput(t *testing.T) {
	e := MustEnv(t)
	reader := e.mustConfirmed("reader@example.com")
	id := e.mustArticle("https://ledger.example.com/a", "A story", "news")
	var d struct{ ID string }
	r := e.API("POST", "/api/digests", `{"frequency":"daily"}`)
	want(t, r, http.StatusCreated)
	r.JSON(t, &d)

	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }

	routes := []struct{ method, path string }{
		{"GET", "/"}, {"POST", "/subscribe"}, {"GET", "/confirm"}, {"POST", "/confirm"},
		{"GET", "/unsubscribe"}, {"POST", "/unsubscribe"}, {"GET", "/preferences"}, {"POST", "/preferences"},
		{"GET", "/archive"}, {"GET", "/archive/" + d.ID}, {"GET", "/healthz"},
		{"POST", "/api/articles"}, {"GET", "/api/articles"}, {"GET", "/api/articles/" + id},
		{"PATCH", "/api/articles/" + id}, {"DELETE", "/api/articles/" + id},
		{"POST", "/api/digests"}, {"GET", "/api/digests"}, {"GET", "/api/digests/" + d.ID},
		{"GET", "/api/digests/" + d.ID + "/preview"}, {"POST", "/api/digests/" + d.ID + "/test"},
		{"POST", "/api/digests/" + d.ID + "/send"}, {"GET", "/api/subscribers"},
		{"GET", "/api/subscribers/export"}, {"POST", "/api/subscribers/import"},
		{"DELETE", "/api/subscribers/reader@example.com"},
	}
	var paths []string
	for _, rt := range routes {
		paths = append(paths, rt.path)
	}
	queries := []string{
		"", "?token=", "?token=" + e.sign(token.Confirm, reader.ID, time.Hour), "?token=" + e.sign(token.Unsubscribe, "x", -time.Hour),
		"?token=%00%0d%0a", "?token=" + strings.Repeat("A", 600), "?cursor=" + strings.Repeat("z", 2000), "?cursor=%ff%fe&limit=5",
		"?limit=99999999999999999999", "?limit=-5", "?format=text&sections=,,,", "?sections=" + strings.Repeat("a,", 500),
		"?status=%0a&frequency=weekly", "?%zz", "?format=lite&sections=news",
	}
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
	types := []string{
		"", "application/json", "application/json; charset=utf-8", "application/x-www-form-urlencoded",
		"multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; boundary=x", "text/csv",
		"text/plain", "application/merge-patch+json", "application/json; charset=\"", ";;;",
	}
	seeds := []string{
		`{"email":"a@example.com","sections":["news"],"frequency":"weekly","format":"lite"}`,
		`{"url":"https://ledger.example.com/b","title":"T","summary":"S","sections":["sport"],"publishedAt":"2026-11-26T06:00:00Z"}`,
		`{"frequency":"daily","intro":"Hi","send":false}`,
		`{"to":"editor@example.com"}`,
		`{"title":"New","sections":["news"],"publishedAt":null}`,
		`{"token":"abc"}`,
		"email=a%40example.com&sections=news&frequency=daily&format=full",
		"List-Unsubscribe=One-Click",
		"email,frequency\nb@example.com,daily\n",
		"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nemail\nc@example.com\r\n--x--\r\n",
		`null`, `[]`, `""`, `{"email":{"$ne":null}}`, `{"email":"` + strings.Repeat("\\u0000", 50) + `"}`,
	}
	mutate := func(s string) string {
		b := []byte(s)
		for range 1 + rng.IntN(4) {
			if len(b) == 0 {
				b = append(b, byte(rng.IntN(256)))
				continue
			}
			i := rng.IntN(len(b))
			switch rng.IntN(5) {
			case 0:
				b[i] = byte(rng.IntN(256))
			case 1:
				b = append(b[:i], b[i+1:]...)
			case 2:
				b = append(b[:i], append([]byte(pick([]string{"\r\n", "\x00", `"`, "{", "}", "]", ",", "\\", "%", "\xff", "=", "&"})), b[i:]...)...)
			case 3:
				b = append(b, b[:i]...)
			case 4:
				b = b[:i]
			}
		}
		return string(b)
	}

	const n = 400
	statuses := map[int]int{}
	for i := range n {
		rt := routes[rng.IntN(len(routes))]
		if rng.IntN(8) == 0 {
			rt.method = pick(methods)
		}
		rq := req{Method: rt.method, Path: rt.path + pick(queries), Type: pick(types), Accept: pick([]string{"", "text/html", "application/json", "*/*"})}
		switch rng.IntN(4) {
		case 0:
			rq.Body = pick(seeds)
		case 1, 2:
			rq.Body = mutate(pick(seeds))
		case 3:
			rq.Body = mutate(strings.Repeat(pick(seeds), 1+rng.IntN(3)))
		}
		switch rng.IntN(4) {
		case 0, 1:
			rq.Auth = e.full
		case 2:
			rq.Auth = pick([]string{"bs_nope", e.editOnly, e.sendOnly, "b\xe9s"})
		}
		if rng.IntN(10) == 0 {
			rq.Path = "/" + mutate(strings.TrimPrefix(rq.Path, "/"))
			if _, err := url.Parse(rq.Path); err != nil || strings.ContainsAny(rq.Path, " #") || !validPath(rq.Path) {
				rq.Path = "/%2e%2e/" + pick(paths)
			}
		}
		if rq.Method == "HEAD" || rq.Method == "GET" && rng.IntN(2) == 0 {
			rq.Body = ""
		}
		r := e.Do(rq)
		statuses[r.Status]++
		if r.Status >= 500 {
			t.Errorf("request %d: %s %s (%s) %.200q: got %d %s", i, rq.Method, rq.Path, rq.Type, rq.Body, r.Status, r.Body)
		}
	}
	t.Logf("%d requests, statuses %v", n, statuses)
	e.noServerErrors()
}

// validPath reports whether p can go on a request line as is.
func validPath(p string) bool {
	for _, c := range []byte(p) {
		if c < 0x21 || c >= 0x7f {
			return false
		}
	}
	return true
}
