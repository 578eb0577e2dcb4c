package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/broadsheet-news/broadsheet/internal/testenv"
)

// The browser tests drive Debian's headless Chromium through the pages a
// reader and an editor use, against the real server wiring (bbolt file and
// .eml outbox in a temp folder). Each saves screenshots in a folder it logs.
//
// Without Chromium they fail in CI and skip elsewhere (testenv.Missing),
// like every test that needs a program the machine may lack.

// chromiumFlags are the flags Chromium works with on our machines: no
// sandbox (CI runs as root), and none of the background connections a
// closed network refuses.
var chromiumFlags = []chromedp.ExecAllocatorOption{
	chromedp.Headless,
	chromedp.NoSandbox,
	chromedp.DisableGPU,
	chromedp.NoFirstRun,
	chromedp.NoDefaultBrowserCheck,
	chromedp.Flag("disable-background-networking", true),
	chromedp.Flag("disable-component-update", true),
	chromedp.Flag("disable-sync", true),
	chromedp.Flag("disable-extensions", true),
}

// waitLimit is how long a test waits for a page to show what it expects.
const waitLimit = 15 * time.Second

// browser is one headless Chromium tab and the folder its screenshots go
// to.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string
}

// newBrowser starts Chromium for t, or fails t when there is none.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := os.Getenv("BROADSHEET_CHROMIUM")
	if path == "" {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		testenv.Missing(t, "Chromium not found: apt-get install -y chromium (.ci/run does), or set BROADSHEET_CHROMIUM")
	}
	shots := os.Getenv("BROADSHEET_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(os.TempDir(), "broadsheet-screenshots")
	}
	shots = filepath.Join(shots, t.Name())
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)

	opts := append([]chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.UserDataDir(t.TempDir())}, chromiumFlags...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	// One deadline for everything the test asks of the browser, so that a
	// page that never shows fails the test instead of hanging it.
	ctx, cancelDeadline := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelDeadline(); cancelTab(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, shots: shots}
	b.do(chromedp.EmulateViewport(420, 860))
	return b
}

// do runs actions in the tab, failing the test on an error.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// wantText waits until the element sel matches shows want. It waits
// rather than looks once because a click that submits a form returns
// before the next page has replaced the current one, and Chromium says
// nothing when it has: it looks again (testenv.Poll) until the page shows
// it.
func (b *browser) wantText(sel, want string) {
	b.t.Helper()
	last := ""
	err := testenv.Poll(b.ctx, waitLimit, func() bool {
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		defer cancel()
		got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			return false
		}
		last = got
		return strings.Contains(got, want)
	})
	if err != nil {
		b.t.Fatalf("%s shows %q, want %q (%v)", sel, last, want, err)
	}
}

// location is the address the tab shows.
func (b *browser) location() string {
	b.t.Helper()
	u, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return u
}

// shot saves a screenshot of the whole page as name.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// waitFor evaluates a JavaScript condition until it holds (testenv.Poll:
// the page gives no event for it). A page that reloads itself (a meta
// refresh) makes some evaluations fail on the way; those count as not
// yet.
func (b *browser) waitFor(cond string) {
	b.t.Helper()
	var last error
	err := testenv.Poll(b.ctx, waitLimit, func() bool {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](cond))
		last = err
		return err == nil && ok
	})
	if err != nil {
		b.t.Fatalf("waiting for %s: %v", cond, errors.Join(last, err))
	}
}

// TestBrowserReader: a reader signs up through the form on the newspaper's
// own site, confirms from the email, changes their choices, unsubscribes
// and takes it back.
func TestBrowserReader(t *testing.T) {
	b := newBrowser(t)
	clock := &testClock{t: time.Now()}
	dir := t.TempDir()
	srv := startServer(t, clock, "--data", dir, "--site-name", "The Daily Ledger")
	base, editor := srv.base, srv.editor

	// Broadsheet's own sign-up page.
	b.do(chromedp.Navigate(base + "/"))
	b.wantText("h1", "Get The Daily Ledger by email")
	b.shot("signup")

	// The snippet, on a page of the newspaper's site (another origin).
	snippet, err := os.ReadFile("../../infra/wordpress/signup-form.html")
	if err != nil {
		t.Fatal(err)
	}
	wp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		form := strings.ReplaceAll(string(snippet), "https://broadsheet.example.com", base)
		_, _ = w.Write([]byte("<!doctype html><title>The Daily Ledger</title><h1>Front page</h1>" + form))
	}))
	t.Cleanup(wp.Close)
	b.do(
		chromedp.Navigate(wp.URL),
		chromedp.SendKeys(chromedp.CSS("#broadsheet-email"), "ada@example.com"),
		chromedp.Click(chromedp.CSS(`input[name=sections][value=sport]`)),
		chromedp.Click(chromedp.CSS(`input[name=sections][value=politics]`)),
		chromedp.Click(chromedp.CSS(`.broadsheet-signup button`)),
	)
	b.wantText("h1", "Check your inbox")
	b.shot("inbox")

	// The confirm link shows a button; pressing it confirms.
	mail := srv.mail(t, 1, func(m *letter) bool { return strings.Contains(m.Subject, "Confirm") })[0]
	b.do(chromedp.Navigate(findURL(t, mail.Text, "/confirm?token=")))
	b.wantText("h1", "Confirm your subscription")
	if got := subscriberStatus(t, base, editor, "ada@example.com"); got != "pending" {
		t.Fatalf("after opening the confirm link: %s, want pending", got)
	}
	b.shot("confirm")
	b.do(chromedp.Click(chromedp.CSS(`form[action="/confirm"] button`)))
	b.wantText("h1", "Welcome to The Daily Ledger")
	b.shot("welcome")
	if got := subscriberStatus(t, base, editor, "ada@example.com"); got != "confirmed" {
		t.Fatalf("after confirming: %s, want confirmed", got)
	}

	// The welcome email's links: preferences, then unsubscribe.
	welcome := srv.mail(t, 1, func(m *letter) bool { return m.To == "ada@example.com" && !strings.Contains(m.Subject, "Confirm") })[0]
	b.do(chromedp.Navigate(findURL(t, welcome.Text, "/preferences?token=")))
	b.wantText("h1", "Your preferences")
	b.do(
		chromedp.Click(chromedp.CSS(`input[name=frequency][value=weekly]`)),
		chromedp.Click(chromedp.CSS(`input[name=format][value=lite]`)),
		chromedp.Click(chromedp.CSS(`input[name=sections][value=culture]`)),
		chromedp.Click(chromedp.CSS(`form[action^="/preferences"] button`)),
	)
	b.wantText(".status", "Your preferences are saved")
	b.shot("preferences")
	s := subscriberRecord(t, base, editor, "ada@example.com")
	if s.Frequency != "weekly" || s.Format != "lite" || !sameSet(s.Sections, "culture", "politics", "sport") {
		t.Fatalf("after saving preferences: %+v, want weekly, lite, culture+politics+sport", s)
	}

	b.do(chromedp.Navigate(findURL(t, welcome.Text, "/unsubscribe?token=")))
	b.wantText("h1", "Unsubscribe from The Daily Ledger?")
	b.do(chromedp.Click(chromedp.CSS(`form[action^="/unsubscribe"] button`)))
	b.wantText("h1", "You're unsubscribed")
	b.shot("goodbye")
	if got := subscriberStatus(t, base, editor, "ada@example.com"); got != "unsubscribed" {
		t.Fatalf("after unsubscribing: %s, want unsubscribed", got)
	}
	b.do(chromedp.Click(chromedp.CSS(`form[action="/unsubscribe/undo"] button`)))
	b.wantText("h1", "Welcome back")
	b.shot("undo")
	if got := subscriberRecord(t, base, editor, "ada@example.com"); got.Status != "confirmed" || got.Frequency != "weekly" {
		t.Fatalf("after undo: %+v, want confirmed, still weekly", got)
	}
	// Pressing undo again is harmless.
	unsubTok := mustQuery(t, findURL(t, welcome.Text, "/unsubscribe?token="), "token")
	wantStatus(t, do(t, "POST", base+"/unsubscribe/undo", "", "application/x-www-form-urlencoded", "token="+unsubTok), http.StatusOK)
	if got := subscriberStatus(t, base, editor, "ada@example.com"); got != "confirmed" {
		t.Fatalf("after a second undo: %s, want confirmed", got)
	}
}

// TestBrowserEditor: an editor signs in to the console, submits an
// article, builds and previews the digest, sends a test and then the
// digest, watches it go, and finds it in the archive.
func TestBrowserEditor(t *testing.T) {
	b := newBrowser(t)
	clock := &testClock{t: time.Now()}
	dir := t.TempDir()
	srv := startServer(t, clock, "--data", dir, "--site-name", "The Daily Ledger")
	base, editor := srv.base, srv.editor
	for _, email := range []string{"ada@example.com", "bola@example.com"} {
		confirmReader(t, srv, email)
	}
	b.do(chromedp.EmulateViewport(1100, 900))

	b.do(chromedp.Navigate(base + "/console"))
	b.wantText("h1", "Editors' console")
	b.do(
		chromedp.SendKeys(chromedp.CSS("#token"), "not a token"),
		chromedp.Click(chromedp.CSS(`form[action="/console/signin"] button`)),
	)
	b.wantText(".status.error", "not valid")
	b.do(
		chromedp.SendKeys(chromedp.CSS("#token"), editor),
		chromedp.Click(chromedp.CSS(`form[action="/console/signin"] button`)),
	)
	b.wantText("h1", "Articles and digests")

	for _, a := range []struct{ url, title, summary, section string }{
		{"https://ledger.example.com/2026/11/26/budget", "Assembly passes the 2027 budget", "After an all-night sitting, members voted 61 to 38.", "politics"},
		{"https://ledger.example.com/2026/11/26/derby", "Derby ends level", "Two goals each in a rain-soaked derby.", "sport"},
	} {
		b.do(
			chromedp.Click(chromedp.CSS(`a.button[href="/console/articles/new"]`)),
			chromedp.WaitVisible(chromedp.CSS("#url")),
			chromedp.SendKeys(chromedp.CSS("#url"), a.url),
			chromedp.SendKeys(chromedp.CSS("#title"), a.title),
			chromedp.SendKeys(chromedp.CSS("#summary"), a.summary),
			chromedp.SendKeys(chromedp.CSS("#author"), "Ada Obi"),
			chromedp.Click(chromedp.CSS(`input[name=sections][value=`+a.section+`]`)),
			chromedp.Click(chromedp.CSS(`form[action="/console/articles"] button`)),
		)
		b.wantText(".status", "Article added")
	}
	b.do(
		chromedp.SendKeys(chromedp.CSS("#intro"), "Good morning from the newsroom."),
		chromedp.Click(chromedp.CSS(`form[action="/console/digests"] button`)),
	)
	b.wantText("h1", "The Daily Ledger: ")
	digestPage := b.location()
	b.shot("console-draft")

	// Preview as another variant: the frame follows.
	b.do(chromedp.Click(chromedp.CSS(`.variants a[href*="format=lite"][href*="section=sport"]`)))
	b.waitFor(`document.querySelector("iframe.preview") && document.querySelector("iframe.preview").src.includes("format=lite") && document.querySelector("iframe.preview").src.includes("sections=sport")`)
	b.waitFor(`(() => { const d = document.querySelector("iframe.preview").contentDocument; return !!d && d.body.innerText.includes("Derby ends level") && !d.body.innerText.includes("2027 budget") })()`)

	b.do(
		chromedp.SendKeys(chromedp.CSS("#to"), "desk@ledger.example.com"),
		chromedp.Click(chromedp.CSS(`form[action$="/test"] button`)),
	)
	b.wantText(".status", "Test sent")
	srv.mail(t, 1, func(m *letter) bool {
		return m.To == "desk@ledger.example.com" && strings.HasPrefix(m.Subject, "[Test]")
	})

	b.do(chromedp.Click(chromedp.CSS(`form[action$="/send"] button`)))
	// The counters move in their frame (or on the page itself when the
	// send was over before it loaded); the page and its form stay put.
	const counters = `(() => { const f = document.querySelector("iframe.counters-frame"); return f ? f.contentDocument : document })()`
	b.waitFor(counters + `.querySelector(".badge.sent") !== null`)
	b.waitFor(`[...` + counters + `.querySelectorAll(".counters div")].some(d => d.querySelector("dt").textContent == "Sent" && d.querySelector("dd").textContent == "2")`)
	b.waitFor(`document.querySelector('meta[http-equiv="refresh"]') === null`)
	b.shot("console-sent")
	if !strings.HasPrefix(b.location(), digestPage) {
		t.Fatalf("after sending the browser is at %s, want the digest's page", b.location())
	}
	srv.mail(t, 2, func(m *letter) bool { return isDigest(m) && !strings.HasPrefix(m.Subject, "[Test]") })

	// The archive lists it and shows it as sent.
	b.do(chromedp.EmulateViewport(420, 860), chromedp.Navigate(base+"/archive"))
	b.wantText(".archive", "The Daily Ledger: ")
	b.shot("archive")
	b.do(chromedp.Click(chromedp.CSS(".archive a")))
	b.waitFor(`document.body.innerText.includes("Assembly passes the 2027 budget") && document.body.innerText.includes("Good morning from the newsroom.")`)
	b.shot("archive-digest")

	// Sign out: the console asks for a token again.
	b.do(chromedp.EmulateViewport(1100, 900), chromedp.Navigate(base+"/console"), chromedp.Click(chromedp.CSS(`form[action="/console/signout"] button`)))
	b.wantText(".status", "You are signed out")
	b.do(chromedp.Navigate(digestPage))
	b.wantText("h1", "Editors' console")
}

// confirmReader signs email up and confirms it over HTTP, as a reader's
// browser would.
func confirmReader(t *testing.T, srv *server, email string) {
	t.Helper()
	wantStatus(t, do(t, "POST", srv.base+"/subscribe", "", "application/json", `{"email":"`+email+`"}`), http.StatusAccepted)
	m := srv.mail(t, 1, func(m *letter) bool { return m.To == email && strings.Contains(m.Subject, "Confirm") })[0]
	tok := mustQuery(t, findURL(t, m.Text, "/confirm?token="), "token")
	wantStatus(t, do(t, "POST", srv.base+"/confirm", "", "application/x-www-form-urlencoded", "token="+tok), http.StatusOK)
}

// reader is what the editors' API says about a reader.
type reader struct {
	Email, Status, Frequency, Format string
	Sections                         []string
}

func subscriberRecord(t *testing.T, base, editor, address string) reader {
	t.Helper()
	res := do(t, "GET", base+"/api/subscribers?limit=1000", editor, "", "")
	wantStatus(t, res, http.StatusOK)
	var list struct {
		Items []reader `json:"items"`
	}
	decode(t, res, &list)
	for _, s := range list.Items {
		if s.Email == address {
			return s
		}
	}
	t.Fatalf("%s is not in the subscriber list", address)
	return reader{}
}

// sameSet reports whether got holds exactly want, in any order.
func sameSet(got []string, want ...string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}
