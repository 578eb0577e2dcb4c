package api

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zone must not depend on the machine's database
)

// TestPagesShowLocalTime: pages show times in the publication's zone,
// labelled, not in UTC without a word.
func TestPagesShowLocalTime(t *testing.T) {
	lagos, err := time.LoadLocation("Africa/Lagos")
	if err != nil {
		t.Fatal(err)
	}
	p, err := parsePages("The Daily Ledger", lagos)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := p.byName["console"].Clone()
	if err != nil {
		t.Fatal(err)
	}
	if tmpl, err = tmpl.New("when").Parse(`{{(local .).Format "15:04 MST"}}`); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "07:00 WAT"; got != want {
		t.Errorf("06:00 UTC shown as %q, want %q", got, want)
	}
}

func TestPlural(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "0 articles"}, {1, "1 article"}, {2, "2 articles"}} {
		if got := plural(tc.n, "article"); got != tc.want {
			t.Errorf("plural(%d): got %q, want %q", tc.n, got, tc.want)
		}
	}
}
