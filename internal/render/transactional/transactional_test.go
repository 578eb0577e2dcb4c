package transactional_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/render"
	"github.com/broadsheet-news/broadsheet/internal/render/transactional"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testSite is package render's test site, so that the emails match the
// digests.
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
func MustRenderer(tb testing.TB) *transactional.Renderer {
	tb.Helper()
	r, err := transactional.New(testSite())
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return r
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

func TestGolden(t *testing.T) {
	r := MustRenderer(t)
	const (
		preferences = "https://news.example.com/preferences?t=tok123&s=abc"
		unsubscribe = "https://news.example.com/unsubscribe?t=tok123&s=abc"
	)
	for _, tt := range []struct {
		name        string
		mail        func() (*render.Mail, error)
		subject     string
		mustContain []string
	}{
		{"confirmation", func() (*render.Mail, error) {
			return r.Confirmation("https://news.example.com/confirm?t=c0nf1rm&x=1")
		}, "Confirm your subscription to The Daily Ledger", []string{"https://news.example.com/confirm?t=c0nf1rm"}},
		{"welcome", func() (*render.Mail, error) {
			return r.Welcome(preferences, unsubscribe)
		}, "Welcome to The Daily Ledger", []string{"https://news.example.com/preferences?t=tok123", "https://news.example.com/unsubscribe?t=tok123"}},
		{"goodbye", func() (*render.Mail, error) {
			return r.Goodbye("http://127.0.0.1:8080/subscribe")
		}, "You have unsubscribed from The Daily Ledger", []string{"http://127.0.0.1:8080/subscribe"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tt.mail()
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if m.Subject != tt.subject {
				t.Errorf("subject = %q, want %q", m.Subject, tt.subject)
			}
			want := append(tt.mustContain, "1 Printing House Square", "The Daily Ledger")
			for _, part := range []struct {
				name string
				body []byte
			}{{"HTML", m.HTML}, {"text", m.Text}} {
				for _, s := range want {
					if !bytes.Contains(part.body, []byte(s)) {
						t.Errorf("%s part lacks %q", part.name, s)
					}
				}
			}
			golden(t, tt.name+".golden.html", m.HTML)
			golden(t, tt.name+".golden.txt", m.Text)
		})
	}
}

func TestNew(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*render.Site)
		ok   bool
	}{
		{"valid", func(*render.Site) {}, true},
		{"no name", func(s *render.Site) { s.Name = " " }, false},
		{"relative URL", func(s *render.Site) { s.URL = "/news" }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := testSite()
			tt.edit(&s)
			r, err := transactional.New(s)
			if (err == nil) != tt.ok {
				t.Errorf("New: err = %v, want ok = %v", err, tt.ok)
			}
			if err == nil && r == nil {
				t.Errorf("New returned nil and no error")
			}
		})
	}
}

func BenchmarkConfirmation(b *testing.B) {
	r := MustRenderer(b)
	for b.Loop() {
		if _, err := r.Confirmation("https://news.example.com/confirm?t=abc"); err != nil {
			b.Fatal(err)
		}
	}
}
