package api_test

import (
	"bytes"
	"encoding/csv"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/api"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

func TestEditorAuth(t *testing.T) {
	e := MustEnv(t)
	routes := []struct{ method, path, body string }{
		{"GET", "/api/articles", ""},
		{"POST", "/api/articles", `{"url":"https://ledger.example.com/x","title":"X"}`},
		{"GET", "/api/articles/abc", ""},
		{"PATCH", "/api/articles/abc", `{"title":"Y"}`},
		{"DELETE", "/api/articles/abc", ""},
		{"POST", "/api/digests", `{"frequency":"daily"}`},
		{"GET", "/api/digests", ""},
		{"GET", "/api/digests/daily-2026-11-26", ""},
		{"GET", "/api/digests/daily-2026-11-26/deliveries", ""},
		{"GET", "/api/digests/daily-2026-11-26/preview", ""},
		{"POST", "/api/digests/daily-2026-11-26/test", `{"to":"ed@example.com"}`},
		{"POST", "/api/digests/daily-2026-11-26/send", ""},
		{"GET", "/api/subscribers", ""},
		{"GET", "/api/subscribers/export", ""},
		{"POST", "/api/subscribers/import", "email\nx@example.com\n"},
		{"DELETE", "/api/subscribers/x@example.com", ""},
	}
	e.mustConfirmed("x@example.com")
	before := e.snapshot()
	for _, rt := range routes {
		for _, auth := range []struct {
			name   string
			header string
			status int
			code   string
		}{
			{"none", "", 401, newsletter.EUNAUTHORIZED},
			{"wrong secret", "Bearer bs_nottherightsecret", 401, newsletter.EUNAUTHORIZED},
			{"empty bearer", "Bearer ", 401, newsletter.EUNAUTHORIZED},
			{"basic", "Basic dXNlcjpwYXNz", 401, newsletter.EUNAUTHORIZED},
			{"huge", "Bearer " + strings.Repeat("x", 10000), 401, newsletter.EUNAUTHORIZED},
			{"send scope only", "Bearer " + e.sendOnly, 403, newsletter.EFORBIDDEN},
		} {
			rq := req{Method: rt.method, Path: rt.path, Body: rt.body, Type: "application/json"}
			if auth.header != "" {
				rq.Header = map[string]string{"Authorization": auth.header}
			}
			r := e.Do(rq)
			if r.Status != auth.status || r.ErrorCode() != auth.code {
				t.Errorf("%s %s with %s: got %d %s, want %d %s", rt.method, rt.path, auth.name, r.Status, r.Body, auth.status, auth.code)
			}
			if auth.status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s: got WWW-Authenticate %q", rt.method, rt.path, r.Header.Get("WWW-Authenticate"))
			}
		}
	}
	e.unchanged(before, "unauthenticated calls")
	// The scheme is case-insensitive.
	want(t, e.Do(req{Method: "GET", Path: "/api/articles", Header: map[string]string{"Authorization": "bearer " + e.full}}), http.StatusOK)
	e.noServerErrors()
}

func TestArticles(t *testing.T) {
	e := MustEnv(t)
	body := `{"url":"https://Ledger.example.com/2026/11/budget?utm_source=x#top","title":"Budget passes","summary":"The budget passed.","author":"A. Writer","imageUrl":"https://ledger.example.com/b.jpg","sections":["politics","Business"],"publishedAt":"2026-11-26T06:00:00Z"}`
	r := e.API("POST", "/api/articles", body)
	want(t, r, http.StatusCreated)
	var a newsletter.Article
	r.JSON(t, &a)
	if a.ID == "" || a.URL != "https://ledger.example.com/2026/11/budget" || strings.Join(a.Sections, ",") != "politics,business" {
		t.Errorf("got %+v", a)
	}
	if got, want := r.Header.Get("Location"), "/api/articles/"+a.ID; got != want {
		t.Errorf("got Location %q, want %q", got, want)
	}
	// The same URL again updates.
	r = e.API("POST", "/api/articles", strings.Replace(body, "Budget passes", "Budget passes at last", 1))
	want(t, r, http.StatusOK)
	var a2 newsletter.Article
	r.JSON(t, &a2)
	if a2.ID != a.ID || a2.Title != "Budget passes at last" {
		t.Errorf("got %+v", a2)
	}
	second := e.mustArticle("https://ledger.example.com/sport/1", "Match report", "sport")

	r = e.API("GET", "/api/articles", "")
	want(t, r, http.StatusOK)
	var list struct {
		Items []newsletter.Article
		Next  string
	}
	r.JSON(t, &list)
	if len(list.Items) != 2 || list.Next != "" {
		t.Fatalf("got %d articles, next %q", len(list.Items), list.Next)
	}
	r = e.API("GET", "/api/articles?limit=1", "")
	want(t, r, http.StatusOK)
	r.JSON(t, &list)
	if len(list.Items) != 1 || list.Next == "" {
		t.Fatalf("page 1: got %d articles, next %q", len(list.Items), list.Next)
	}
	r = e.API("GET", "/api/articles?limit=1&cursor="+list.Next, "")
	want(t, r, http.StatusOK)
	r.JSON(t, &list)
	if len(list.Items) != 1 || list.Next != "" {
		t.Fatalf("page 2: got %d articles, next %q", len(list.Items), list.Next)
	}

	r = e.API("GET", "/api/articles/"+a.ID, "")
	want(t, r, http.StatusOK)
	r.JSON(t, &a2)
	if a2.Title != "Budget passes at last" {
		t.Errorf("got %+v", a2)
	}

	r = e.API("PATCH", "/api/articles/"+a.ID, `{"title":"Budget: the details","sections":["business"],"author":null}`)
	want(t, r, http.StatusOK)
	r.JSON(t, &a2)
	if a2.Title != "Budget: the details" || strings.Join(a2.Sections, ",") != "business" || a2.Author != "A. Writer" || a2.Summary != "The budget passed." {
		t.Errorf("patched: got %+v", a2)
	}

	// Bad input changes nothing.
	before := e.snapshot()
	for _, tc := range []struct {
		method, path, body string
		typ                string
		status             int
	}{
		{"POST", "/api/articles", `{"url":"ftp://x.example.com/","title":"T"}`, "", 400},
		{"POST", "/api/articles", `{"url":"https://x.example.com/","title":""}`, "", 400},
		{"POST", "/api/articles", `{"url":"https://x.example.com/","title":"Line\r\nBcc: x"}`, "", 400},
		{"POST", "/api/articles", `{"url":"https://x.example.com/\r\n","title":"T","sections":["!!!"]}`, "", 400},
		{"POST", "/api/articles", `{"url":"https://x.example.com/","title":"T","publishedAt":"yesterday"}`, "", 400},
		{"POST", "/api/articles", `{"url":"https://x.example.com/","title":"T","id":"mine"}`, "", 400},
		{"POST", "/api/articles", `{"url":"https://x.example.com/","title":"T"`, "", 400},
		{"POST", "/api/articles", `{"url":"https://x.example.com/","title":"T"} {}`, "", 400},
		{"POST", "/api/articles", `url=https://x.example.com/`, "application/x-www-form-urlencoded", 400},
		{"POST", "/api/articles", `{"url":"https://x.example.com/","title":"` + strings.Repeat("T", api.MaxBodyBytes) + `"}`, "", 413},
		{"POST", "/api/articles", `{"url":"https://x.example.com/","title":"` + strings.Repeat("T", newsletter.MaxTitleLength+1) + `"}`, "", 400},
		{"PATCH", "/api/articles/" + a.ID, `{"url":"https://elsewhere.example.com/"}`, "", 400},
		{"PATCH", "/api/articles/" + a.ID, `{"title":""}`, "", 400},
		{"PATCH", "/api/articles/" + a.ID, `{"title":42}`, "", 400},
		{"PATCH", "/api/articles/" + a.ID, `{"title":"X\nY"}`, "", 400},
		{"PATCH", "/api/articles/" + a.ID, ``, "", 400},
		{"PATCH", "/api/articles/nosuchid", `{"title":"T"}`, "", 404},
		{"GET", "/api/articles/nosuchid", ``, "", 404},
		{"GET", "/api/articles/" + strings.Repeat("f", 24), ``, "", 404},
		{"DELETE", "/api/articles/nosuchid", ``, "", 404},
		{"GET", "/api/articles?limit=-1", ``, "", 400},
		{"GET", "/api/articles?limit=1001", ``, "", 400},
		{"GET", "/api/articles?limit=x", ``, "", 400},
	} {
		rq := req{Method: tc.method, Path: tc.path, Body: tc.body, Auth: e.full, Type: tc.typ}
		if rq.Type == "" && tc.body != "" || tc.method == "PATCH" {
			rq.Type = "application/json"
		}
		r := e.Do(rq)
		if r.Status != tc.status || r.ErrorCode() == "" {
			t.Errorf("%s %s %.80s: got %d %s, want %d", tc.method, tc.path, tc.body, r.Status, r.Body, tc.status)
		}
	}
	e.unchanged(before, "bad article requests")

	r = e.API("DELETE", "/api/articles/"+second, "")
	want(t, r, http.StatusNoContent)
	if len(r.Body) != 0 {
		t.Errorf("204 with a body: %s", r.Body)
	}
	wantError(t, e.API("GET", "/api/articles/"+second, ""), 404, newsletter.ENOTFOUND)
	wantError(t, e.API("DELETE", "/api/articles/"+second, ""), 404, newsletter.ENOTFOUND)
	e.noServerErrors()
}

func TestDigests(t *testing.T) {
	e := MustEnv(t)
	e.mustConfirmed("reader@example.com")
	sporty := e.mustConfirmed("sporty@example.com")
	_ = sporty
	e.mustArticle("https://ledger.example.com/news/1", "Big news", "news")
	e.mustArticle("https://ledger.example.com/sport/1", "Match report", "sport")

	// Without the send scope, asking to send is refused before anything
	// is built.
	before := e.snapshot()
	wantError(t, e.Do(req{Method: "POST", Path: "/api/digests", Auth: e.editOnly, Type: "application/json", Body: `{"frequency":"daily","send":true}`}), 403, newsletter.EFORBIDDEN)
	e.unchanged(before, "forbidden send")

	r := e.Do(req{Method: "POST", Path: "/api/digests", Auth: e.editOnly, Type: "application/json", Body: `{"frequency":"daily","intro":"Good morning."}`})
	want(t, r, http.StatusCreated)
	var st struct {
		ID       string
		Status   string
		Intro    string
		Articles []newsletter.Article
		Counters newsletter.Counters
	}
	r.JSON(t, &st)
	if st.ID != "daily-2026-11-26" || st.Status != "draft" || len(st.Articles) != 2 || st.Intro != "Good morning." {
		t.Fatalf("got %+v", st)
	}
	if got := r.Header.Get("Location"); got != "/api/digests/"+st.ID {
		t.Errorf("got Location %q", got)
	}
	// Same period: the same digest, 200.
	r = e.API("POST", "/api/digests", `{"frequency":"daily"}`)
	want(t, r, http.StatusOK)
	var again struct{ ID string }
	r.JSON(t, &again)
	if again.ID != st.ID {
		t.Errorf("got a second digest %s", again.ID)
	}

	r = e.API("GET", "/api/digests", "")
	want(t, r, http.StatusOK)
	var list struct {
		Items []struct{ ID string }
		Next  string
	}
	r.JSON(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != st.ID {
		t.Errorf("got %+v", list)
	}
	r = e.API("GET", "/api/digests?frequency=weekly", "")
	want(t, r, http.StatusOK)
	r.JSON(t, &list)
	if len(list.Items) != 0 {
		t.Errorf("weekly: got %+v", list)
	}
	r = e.API("GET", "/api/digests?status=draft", "")
	want(t, r, http.StatusOK)
	r.JSON(t, &list)
	if len(list.Items) != 1 {
		t.Errorf("drafts: got %+v", list)
	}

	r = e.API("GET", "/api/digests/"+st.ID, "")
	want(t, r, http.StatusOK)
	if !strings.Contains(r.String(), `"counters":{`) {
		t.Errorf("no counters: %s", r.Body)
	}

	// Preview: the HTML as a reader gets it, or the text.
	r = e.API("GET", "/api/digests/"+st.ID+"/preview", "")
	want(t, r, http.StatusOK)
	if r.Header.Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(r.String(), "Big news") || !strings.Contains(r.String(), "Match report") {
		t.Errorf("preview: %s %.300s", r.Header.Get("Content-Type"), r.Body)
	}
	r = e.API("GET", "/api/digests/"+st.ID+"/preview?format=text&sections=sport", "")
	want(t, r, http.StatusOK)
	if r.Header.Get("Content-Type") != "text/plain; charset=utf-8" || !strings.Contains(r.String(), "Match report") || strings.Contains(r.String(), "Big news") {
		t.Errorf("text preview for sport: %s\n%s", r.Header.Get("Content-Type"), r.Body)
	}
	r = e.API("GET", "/api/digests/"+st.ID+"/preview?format=lite&sections=news,sport", "")
	want(t, r, http.StatusOK)

	// Test send: it mails any address, so it needs the send scope.
	r = e.Do(req{Method: "POST", Path: "/api/digests/" + st.ID + "/test", Auth: e.editOnly, Type: "application/json", Body: `{"to":"stranger@example.com"}`})
	wantError(t, r, http.StatusForbidden, newsletter.EFORBIDDEN)
	if n := len(e.mailsTo("stranger@example.com")); n != 0 {
		t.Errorf("edit-only test send: got %d mails, want 0", n)
	}
	r = e.Do(req{Method: "POST", Path: "/api/digests/" + st.ID + "/test", Auth: e.full, Type: "application/json", Body: `{"to":"editor@example.com"}`})
	want(t, r, http.StatusAccepted)
	if n := len(e.mailsTo("editor@example.com")); n != 1 {
		t.Errorf("got %d test mails, want 1", n)
	}

	// Bad digest requests change nothing.
	before = e.snapshot()
	for _, tc := range []struct {
		method, path, body string
		auth               string
		status             int
	}{
		{"POST", "/api/digests", `{"frequency":"hourly"}`, e.full, 400},
		{"POST", "/api/digests", `{"frequency":"daily","send":"yes"}`, e.full, 400},
		{"POST", "/api/digests", `{"frequency":"daily","when":"now"}`, e.full, 400},
		{"POST", "/api/digests", `{"frequency":"weekly","intro":"` + strings.Repeat("i", newsletter.MaxIntroLength+1) + `"}`, e.full, 400},
		{"POST", "/api/digests", `{"frequency":"weekly","intro":"` + strings.Repeat("i", api.MaxBodyBytes) + `"}`, e.full, 413},
		{"GET", "/api/digests?status=lost", "", e.full, 400},
		{"GET", "/api/digests?frequency=hourly", "", e.full, 400},
		{"GET", "/api/digests/daily-1999-01-01", "", e.full, 404},
		{"GET", "/api/digests/..%2Fx", "", e.full, 404},
		{"GET", "/api/digests/nope/preview", "", e.full, 404},
		{"GET", "/api/digests/" + st.ID + "/preview?format=pdf", "", e.full, 400},
		{"GET", "/api/digests/" + st.ID + "/preview?sections=news,%21%21", "", e.full, 400},
		{"POST", "/api/digests/nope/test", `{"to":"editor@example.com"}`, e.full, 404},
		{"POST", "/api/digests/" + st.ID + "/test", `{"to":"not an address"}`, e.full, 400},
		{"POST", "/api/digests/" + st.ID + "/test", `{"to":"a@example.com\r\nBcc: b@example.com"}`, e.full, 400},
		{"POST", "/api/digests/" + st.ID + "/test", `{}`, e.full, 400},
		{"POST", "/api/digests/" + st.ID + "/send", ``, e.editOnly, 403},
		{"POST", "/api/digests/daily-1999-01-01/send", ``, e.full, 404},
	} {
		rq := req{Method: tc.method, Path: tc.path, Body: tc.body, Auth: tc.auth}
		if tc.body != "" {
			rq.Type = "application/json"
		}
		r := e.Do(rq)
		if r.Status != tc.status || r.ErrorCode() == "" {
			t.Errorf("%s %s %.80s: got %d %s, want %d", tc.method, tc.path, tc.body, r.Status, r.Body, tc.status)
		}
	}
	e.unchanged(before, "bad digest requests")

	// Send: 202, and again is fine.
	r = e.API("POST", "/api/digests/"+st.ID+"/send", "")
	want(t, r, http.StatusAccepted)
	r.JSON(t, &st)
	if st.Status != "sending" && st.Status != "sent" {
		t.Errorf("got status %s", st.Status)
	}
	if err := e.queue.WaitIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
	want(t, e.API("POST", "/api/digests/"+st.ID+"/send", ""), http.StatusAccepted)
	if err := e.queue.WaitIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
	r = e.API("GET", "/api/digests/"+st.ID, "")
	want(t, r, http.StatusOK)
	r.JSON(t, &st)
	if st.Counters.Sent != 2 || st.Counters.Total != 2 {
		t.Errorf("got counters %+v, want 2 sent", st.Counters)
	}
	e.noServerErrors()
}

func TestSubscribers(t *testing.T) {
	e := MustEnv(t)
	e.mustConfirmed("one@example.com")
	e.mustSubscribe("two@example.com")

	r := e.API("GET", "/api/subscribers", "")
	want(t, r, http.StatusOK)
	var list struct {
		Items []newsletter.Subscriber
		Next  string
	}
	r.JSON(t, &list)
	if len(list.Items) != 2 {
		t.Fatalf("got %d subscribers", len(list.Items))
	}
	r = e.API("GET", "/api/subscribers?status=confirmed&frequency=daily", "")
	want(t, r, http.StatusOK)
	r.JSON(t, &list)
	if len(list.Items) != 1 || list.Items[0].Email != "one@example.com" {
		t.Errorf("confirmed: got %+v", list.Items)
	}
	r = e.API("GET", "/api/subscribers?limit=1", "")
	want(t, r, http.StatusOK)
	r.JSON(t, &list)
	if len(list.Items) != 1 || list.Next == "" {
		t.Errorf("paged: got %d, next %q", len(list.Items), list.Next)
	}

	r = e.API("GET", "/api/subscribers/export", "")
	want(t, r, http.StatusOK)
	if r.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		r.Header.Get("Content-Disposition") != `attachment; filename="subscribers-2026-11-26.csv"` {
		t.Errorf("export headers: %v", r.Header)
	}
	rows, err := csv.NewReader(bytes.NewReader(r.Body)).ReadAll()
	if err != nil || len(rows) != 3 || rows[0][0] != "email" {
		t.Fatalf("export: %v %q", err, r.Body)
	}

	// Import: CSV body, then a multipart upload.
	r = e.Do(req{Method: "POST", Path: "/api/subscribers/import", Auth: e.full, Type: "text/csv",
		Body: "email,frequency,sections\nthree@example.com,weekly,sport\none@example.com,weekly,\n"})
	want(t, r, http.StatusOK)
	var res struct{ Added, Updated, Unchanged int }
	r.JSON(t, &res)
	if res.Added != 1 || res.Updated != 1 {
		t.Errorf("got %+v", res)
	}
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("note", "ignored")
	fw, _ := mw.CreateFormFile("file", "list.csv")
	_, _ = fw.Write([]byte("email\nfour@example.com\n"))
	_ = mw.Close()
	r = e.Do(req{Method: "POST", Path: "/api/subscribers/import", Auth: e.full, Type: mw.FormDataContentType(), Body: mp.String()})
	want(t, r, http.StatusOK)
	r.JSON(t, &res)
	if res.Added != 1 {
		t.Errorf("multipart: got %+v", res)
	}
	if s := e.subscriber("four@example.com"); s.Status != newsletter.StatusConfirmed {
		t.Errorf("imported: got %+v", s)
	}

	// Bad imports and queries change nothing.
	var noFile bytes.Buffer
	mw = multipart.NewWriter(&noFile)
	_ = mw.WriteField("other", "email\nfive@example.com\n")
	_ = mw.Close()
	big := "email\n" + strings.Repeat("someone.with.a.long.name@example.com\n", api.MaxImportBytes/36+10)
	before := e.snapshot()
	for _, tc := range []struct {
		method, path, typ, body string
		status                  int
	}{
		{"POST", "/api/subscribers/import", "text/csv", "email\nfive@example.com\nnot-an-address\n", 400},
		{"POST", "/api/subscribers/import", "text/csv", "email\nfive@example.com\nsix@example.com\r\nBcc: x@example.com\n", 400},
		{"POST", "/api/subscribers/import", "text/csv", "name\nFive\n", 400},
		{"POST", "/api/subscribers/import", "text/csv", "email,frequency\nfive@example.com,hourly\n", 400},
		{"POST", "/api/subscribers/import", "text/csv", "email\n\"five@example.com\n", 400},
		{"POST", "/api/subscribers/import", "text/csv", "", 400},
		{"POST", "/api/subscribers/import", "text/csv", big, 413},
		{"POST", "/api/subscribers/import", "application/json", `{"email":"five@example.com"}`, 400},
		{"POST", "/api/subscribers/import", mw.FormDataContentType(), noFile.String(), 400},
		{"POST", "/api/subscribers/import", "multipart/form-data; boundary=zz", "--zz\r\nbroken", 400},
		{"GET", "/api/subscribers?status=gone", "", "", 400},
		{"GET", "/api/subscribers?frequency=hourly", "", "", 400},
		{"GET", "/api/subscribers?limit=0", "", "", 400},
		{"DELETE", "/api/subscribers/nobody@example.com", "", "", 404},
		{"DELETE", "/api/subscribers/not-an-address", "", "", 400},
	} {
		r := e.Do(req{Method: tc.method, Path: tc.path, Type: tc.typ, Body: tc.body, Auth: e.full})
		if r.Status != tc.status || r.ErrorCode() == "" {
			t.Errorf("%s %s %.60q: got %d %.300s, want %d", tc.method, tc.path, tc.body, r.Status, r.Body, tc.status)
		}
	}
	e.unchanged(before, "bad subscriber requests")

	r = e.API("DELETE", "/api/subscribers/ONE@example.com", "")
	want(t, r, http.StatusNoContent)
	if _, err := e.store.SubscriberByEmail(t.Context(), "one@example.com"); newsletter.ErrorCode(err) != newsletter.ENOTFOUND {
		t.Errorf("erased reader still there: %v", err)
	}
	wantError(t, e.API("DELETE", "/api/subscribers/one@example.com", ""), 404, newsletter.ENOTFOUND)
	e.noServerErrors()
}

// TestWalkthrough drives the README's walkthrough through the handler:
// subscribe, confirm from the mailed link, submit two articles, send a
// digest, one-click unsubscribe, and the next digest skips the reader.
func TestWalkthrough(t *testing.T) {
	e := MustEnv(t)
	want(t, e.Form("/subscribe", "email=reader%40example.com"), http.StatusAccepted)
	e.mustSubscribe("lurker@example.com") // never confirms
	confirm := e.tokenFor("reader@example.com", "confirm")
	want(t, e.Get("/confirm?token="+confirm), http.StatusOK)
	want(t, e.Form("/confirm", "token="+confirm), http.StatusOK)

	e.mustArticle("https://ledger.example.com/a", "First story", "news")
	e.mustArticle("https://ledger.example.com/b", "Second story", "sport")
	r := e.API("POST", "/api/digests", `{"frequency":"daily","send":true}`)
	want(t, r, http.StatusCreated)
	if err := e.queue.WaitIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
	digestMail := func(to string) []string {
		var out []string
		for _, m := range e.mailsTo(to) {
			if strings.Contains(m, "List-Unsubscribe-Post:") {
				out = append(out, m)
			}
		}
		return out
	}
	got := digestMail("reader@example.com")
	if len(got) != 1 {
		t.Fatalf("got %d digests for the reader, want 1", len(got))
	}
	for _, h := range []string{"List-Unsubscribe: <http", "List-Unsubscribe-Post: List-Unsubscribe=One-Click", "List-Id:", "Message-Id:", "Date:", "text/plain", "text/html", "First story", "Second story"} {
		if !strings.Contains(strings.ToLower(got[0]), strings.ToLower(h)) {
			t.Errorf("digest lacks %q", h)
		}
	}
	if n := len(digestMail("lurker@example.com")); n != 0 {
		t.Errorf("the unconfirmed reader got %d digests", n)
	}

	// A second request for the period: the same digest, nothing sent twice.
	r = e.API("POST", "/api/digests", `{"frequency":"daily","send":true}`)
	want(t, r, http.StatusOK)
	if err := e.queue.WaitIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(digestMail("reader@example.com")); n != 1 {
		t.Errorf("after a second request: got %d digests, want 1", n)
	}

	// One-click unsubscribe from the digest's own link.
	unsub := tokenIn(t, got[0], "unsubscribe")
	r = e.Do(req{Method: "POST", Path: "/unsubscribe?token=" + unsub, Type: "application/x-www-form-urlencoded", Body: "List-Unsubscribe=One-Click"})
	want(t, r, http.StatusOK)

	e.clock.Add(24 * time.Hour)
	e.mustArticle("https://ledger.example.com/c", "Third story", "news")
	r = e.API("POST", "/api/digests", `{"frequency":"daily","send":true}`)
	want(t, r, http.StatusCreated)
	if err := e.queue.WaitIdle(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(digestMail("reader@example.com")); n != 1 {
		t.Errorf("after unsubscribing: got %d digests, want 1", n)
	}
	e.noServerErrors()
}

// TestFailedCopiesAreListed: the copies SES reported it did not send
// (ledger rows failed with a reason) are counted on the digest, listed by
// GET /api/digests/{id}/deliveries?status=failed, and shown with their
// reasons on the console's digest page once it is no longer sending.
func TestFailedCopiesAreListed(t *testing.T) {
	e := MustEnv(t)
	ctx := t.Context()
	id := "daily-2026-11-26"
	if err := e.store.CreateDigest(ctx, &newsletter.Digest{
		ID: id, Frequency: newsletter.Daily, Period: "2026-11-26", Subject: "The Daily Ledger: Thursday",
		Status: newsletter.DigestSent, FanoutDone: true, CreatedAt: start,
	}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*newsletter.Delivery{
		{SubscriberID: "r1", Status: newsletter.DeliverySent, MessageID: "m1"},
		{SubscriberID: "r2", Status: newsletter.DeliveryFailed, MessageID: "m2", Reason: "SES could not render the email: Attribute 'lb' is not present in the rendering data."},
		{SubscriberID: "r3", Status: newsletter.DeliveryFailed, MessageID: "m3", Reason: "rejected by SES: Bad content"},
	} {
		d.DigestID, d.Attempts, d.UpdatedAt = id, 1, start
		if err := e.store.CreateDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	r := e.API("GET", "/api/digests/"+id, "")
	want(t, r, http.StatusOK)
	var st struct{ Counters newsletter.Counters }
	r.JSON(t, &st)
	if st.Counters.Failed != 2 || st.Counters.Sent != 1 {
		t.Errorf("counters %+v, want 2 failed, 1 sent", st.Counters)
	}
	r = e.API("GET", "/api/digests/"+id+"/deliveries?status=failed", "")
	want(t, r, http.StatusOK)
	var list struct {
		Items []newsletter.Delivery
		Next  string
	}
	r.JSON(t, &list)
	if len(list.Items) != 2 || list.Items[0].SubscriberID != "r2" || !strings.Contains(list.Items[0].Reason, "could not render") || list.Items[1].Reason != "rejected by SES: Bad content" {
		t.Errorf("failed copies %+v", list.Items)
	}
	r = e.API("GET", "/api/digests/"+id+"/deliveries", "")
	want(t, r, http.StatusOK)
	r.JSON(t, &list)
	if len(list.Items) != 3 {
		t.Errorf("%d rows without a filter, want 3", len(list.Items))
	}
	wantError(t, e.API("GET", "/api/digests/"+id+"/deliveries?status=lost", ""), http.StatusBadRequest, newsletter.EINVALID)
	wantError(t, e.API("GET", "/api/digests/daily-1999-01-01/deliveries", ""), http.StatusNotFound, newsletter.ENOTFOUND)

	ed := e.signIn(e.full)
	page := ed.get("/console/digests/" + id)
	want(t, page, http.StatusOK)
	wantBody(t, page, "Copies that did not go out", "<code>r2</code>", "rejected by SES: Bad content", "Attribute &#39;lb&#39; is not present")
}
