package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// hostileSummary is a WordPress excerpt carrying every trick an email or
// archive page must not run.
const hostileSummary = `<p class="x" onclick="steal()">Storm &amp; flood: <strong>ferries</strong> stop.</p>` +
	`<script>alert('s')</script><img src="https://evil.example/pixel.gif" onerror="alert('i')">` +
	`<p><a href="javascript:alert('j')">Tap here</a> or <a href="https://ledger.example.com/live" onmouseover="x()">follow live</a>` +
	`<iframe src="https://evil.example"></iframe><style>body{display:none}</style>` +
	`&#8217;s caf&eacute; &lt;not a tag&gt;<svg onload="alert('v')"></svg><a href="data:text/html,x">data</a></p>`

// TestArticleHTMLIsSanitised submits an article with a hostile summary and
// title and follows it to the store, the preview, the sent email and the
// archive page: nothing active survives anywhere, the allowed markup and the
// text do.
func TestArticleHTMLIsSanitised(t *testing.T) {
	e := MustEnv(t)
	e.mustConfirmed("reader@example.com")
	body, _ := json.Marshal(map[string]any{
		"url": "https://ledger.example.com/storm", "title": `<b>Storm</b> &amp; <script>x</script>flood`,
		"summary": hostileSummary, "sections": []string{"news"},
		"publishedAt": e.clock.Now().Add(-time.Hour).Format(time.RFC3339),
	})
	r := e.API("POST", "/api/articles", string(body))
	want(t, r, http.StatusCreated)
	var a newsletter.Article
	r.JSON(t, &a)
	if a.Title != "Storm & flood" {
		t.Errorf("stored title %q, want %q", a.Title, "Storm & flood")
	}
	wantSummary := `<p>Storm &amp; flood: <strong>ferries</strong> stop.</p>` +
		`<p>Tap here or <a href="https://ledger.example.com/live" rel="nofollow noopener" target="_blank">follow live</a>` +
		`’s café &lt;not a tag&gt;data</p>`
	if a.Summary != wantSummary {
		t.Errorf("stored summary:\n got %q\nwant %q", a.Summary, wantSummary)
	}

	// A patch is cleaned the same way.
	r = e.API("PATCH", "/api/articles/"+a.ID, `{"summary":"<img src=x onerror=alert(1)>Updated <em>now</em>"}`)
	want(t, r, http.StatusOK)
	var patched newsletter.Article
	r.JSON(t, &patched)
	if patched.Summary != "Updated <em>now</em>" {
		t.Errorf("patched summary %q", patched.Summary)
	}
	r = e.API("PATCH", "/api/articles/"+a.ID, mustJSON(t, map[string]string{"summary": hostileSummary}))
	want(t, r, http.StatusOK)

	var d struct{ ID string }
	r = e.API("POST", "/api/digests", `{"frequency":"daily"}`)
	want(t, r, http.StatusCreated)
	r.JSON(t, &d)

	r = e.API("GET", "/api/digests/"+d.ID+"/preview", "")
	want(t, r, http.StatusOK)
	checkClean(t, "HTML preview", r.String())
	if !strings.Contains(r.String(), wantSummary) {
		t.Errorf("HTML preview lacks the sanitised summary:\n%s", r.Body)
	}
	r = e.API("GET", "/api/digests/"+d.ID+"/preview?format=text", "")
	want(t, r, http.StatusOK)
	if !strings.Contains(r.String(), "Storm & flood: ferries stop.\n  Tap here or follow live’s café <not a tag>data") {
		t.Errorf("text preview lacks the summary as plain text:\n%s", r.Body)
	}
	if strings.Contains(r.String(), "<p>") || strings.Contains(r.String(), "&amp;") {
		t.Errorf("text preview holds markup or entities:\n%s", r.Body)
	}

	want(t, e.API("POST", "/api/digests/"+d.ID+"/send", ""), http.StatusOK, http.StatusAccepted)
	if err := e.queue.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	sent := false
	for _, name := range e.mails() {
		b, err := os.ReadFile(filepath.Join(e.outbox, name))
		if err != nil {
			t.Fatal(err)
		}
		if m := unQP(string(b)); strings.Contains(m, "follow live") {
			sent = true
			checkClean(t, "sent email", m)
		}
	}
	if !sent {
		t.Fatal("no digest email in the outbox")
	}
	r = e.Get("/archive/" + d.ID)
	want(t, r, http.StatusOK)
	checkClean(t, "archive page", r.String())
	if !strings.Contains(r.String(), wantSummary) {
		t.Errorf("archive page lacks the sanitised summary")
	}
}

// checkClean fails if s holds anything from hostileSummary that could run
// or load.
func checkClean(t *testing.T, what, s string) {
	t.Helper()
	low := strings.ToLower(s)
	for _, bad := range []string{"<script", "alert(", "onerror", "onclick", "onmouseover", "onload", "javascript:", "evil.example", "<iframe", "<svg", "data:text", "body{"} {
		if strings.Contains(low, bad) {
			i := strings.Index(low, bad)
			t.Errorf("%s holds %q: …%s…", what, bad, s[max(0, i-80):min(len(s), i+80)])
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
