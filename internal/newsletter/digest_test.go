package newsletter_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

func mustLoadLocation(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

func TestPeriod(t *testing.T) {
	lagos := mustLoadLocation(t, "Africa/Lagos")       // UTC+1, no DST
	newYork := mustLoadLocation(t, "America/New_York") // UTC-5 in winter
	at := func(s string) time.Time {
		t.Helper()
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		f    newsletter.Frequency
		t    time.Time
		loc  *time.Location
		want string
	}{
		{newsletter.Daily, at("2026-11-26T23:30:00Z"), time.UTC, "2026-11-26"},
		{newsletter.Daily, at("2026-11-26T23:30:00Z"), lagos, "2026-11-27"},
		{newsletter.Daily, at("2026-11-26T23:30:00Z"), newYork, "2026-11-26"},
		{newsletter.Daily, at("2026-11-27T03:00:00Z"), newYork, "2026-11-26"},
		{newsletter.Daily, at("2026-12-31T23:30:00Z"), lagos, "2027-01-01"},
		{newsletter.Daily, at("2026-03-05T08:00:00+09:00"), time.UTC, "2026-03-04"},
		{newsletter.Weekly, at("2026-03-02T12:00:00Z"), time.UTC, "2026-W10"},
		{newsletter.Weekly, at("2026-01-05T12:00:00Z"), time.UTC, "2026-W02"},
		{newsletter.Weekly, at("2026-12-31T12:00:00Z"), time.UTC, "2026-W53"},
		{newsletter.Weekly, at("2027-01-01T12:00:00Z"), time.UTC, "2026-W53"},
		{newsletter.Weekly, at("2027-01-04T00:00:00Z"), time.UTC, "2027-W01"},
		{newsletter.Weekly, at("2024-12-30T12:00:00Z"), time.UTC, "2025-W01"},
		{newsletter.Weekly, at("2021-01-03T12:00:00Z"), time.UTC, "2020-W53"},
		// Sunday night in UTC is already Monday in Lagos: a new ISO week.
		{newsletter.Weekly, at("2026-12-27T23:30:00Z"), time.UTC, "2026-W52"},
		{newsletter.Weekly, at("2026-12-27T23:30:00Z"), lagos, "2026-W53"},
		// New Year's Eve in New York is already 2027 in UTC, but the same ISO week.
		{newsletter.Weekly, at("2027-01-01T03:00:00Z"), newYork, "2026-W53"},
	}
	for _, tt := range tests {
		got := newsletter.Period(tt.f, tt.t, tt.loc)
		if got != tt.want {
			t.Errorf("Period(%s, %s, %s): got %q, want %q", tt.f, tt.t.Format(time.RFC3339), tt.loc, got, tt.want)
		}
		if tt.f == newsletter.Weekly {
			y, w := tt.t.In(tt.loc).ISOWeek()
			if iso := fmt.Sprintf("%04d-W%02d", y, w); got != iso {
				t.Errorf("Period(%s, %s, %s): got %q, want ISO week %q", tt.f, tt.t.Format(time.RFC3339), tt.loc, got, iso)
			}
		}
	}
}

func TestDigestID(t *testing.T) {
	tests := []struct {
		f      newsletter.Frequency
		period string
		want   string
	}{
		{newsletter.Daily, "2026-11-26", "daily-2026-11-26"},
		{newsletter.Weekly, "2026-W53", "weekly-2026-W53"},
	}
	for _, tt := range tests {
		if got := newsletter.DigestID(tt.f, tt.period); got != tt.want {
			t.Errorf("DigestID(%s, %s): got %q, want %q", tt.f, tt.period, got, tt.want)
		}
	}
}

func TestValidDigestIDAcceptsDigestIDs(t *testing.T) {
	loc := mustLoadLocation(t, "Africa/Lagos")
	start := time.Date(2020, 12, 20, 0, 0, 0, 0, time.UTC)
	for tm := start; tm.Before(start.AddDate(7, 0, 0)); tm = tm.Add(23 * time.Hour) {
		for _, f := range newsletter.DigestFrequencies {
			id := newsletter.DigestID(f, newsletter.Period(f, tm, loc))
			if !newsletter.ValidDigestID(id) {
				t.Fatalf("ValidDigestID(%q): got false, want true", id)
			}
		}
	}
	for _, u := range []string{"https://example.com/a", "https://example.com/b?p=1"} {
		id := newsletter.InstantDigestID(newsletter.ArticleID(u))
		if !newsletter.ValidDigestID(id) {
			t.Errorf("ValidDigestID(%q): got false, want true", id)
		}
	}
	for _, id := range []string{"instant-", "instant-2026-11-26", "instant-0123456789abcdef0123456", "instant-0123456789ABCDEF01234567", "instant-0123456789abcdef012345678"} {
		if newsletter.ValidDigestID(id) {
			t.Errorf("ValidDigestID(%q): got true, want false", id)
		}
	}
}

func TestValidDigestIDRejects(t *testing.T) {
	for _, id := range []string{
		"", "daily", "daily-", "weekly-", "-2026-11-26",
		"daily-2026-13-01", "daily-2026-02-30", "daily-2026-00-10", "daily-2026-1-01", "daily-2026-01-1",
		"daily-26-11-26", "daily-2026-11-26x", "daily-2026-11-26 ", " daily-2026-11-26", "daily-2026/11/26",
		"daily-2026-W48", "weekly-2026-11-26",
		"weekly-2026-W54", "weekly-2026-W00", "weekly-2026-W1", "weekly-2026-W001", "weekly-2026-w01",
		"weekly-2026W01", "weekly-2026-W5x", "weekly-2026-W5/", "weekly-2026-W+1", "weekly-+026-W01",
		"weekly- 026-W01", "weekly-2026-W 1", "weekly-2026-W01/..",
		"hourly-2026-11-26", "monthly-2026-11", "Daily-2026-11-26", "WEEKLY-2026-W01",
		"daily-../../etc/passwd", "weekly-../../etc", "daily-2026-11-26/../../x", "../daily-2026-11-26",
		"weekly-../W01", "daily-2026-11-26\x00", "weekly-2026-W01\n",
	} {
		if newsletter.ValidDigestID(id) {
			t.Errorf("ValidDigestID(%q): got true, want false", id)
		}
	}
}

func TestDigestSections(t *testing.T) {
	d := &newsletter.Digest{Articles: []newsletter.Article{
		{Sections: []string{"news", "sport"}},
		{Sections: nil},
		{Sections: []string{"sport", "culture", "news"}},
	}}
	if got, want := d.Sections(), []string{"news", "sport", "culture"}; !slices.Equal(got, want) {
		t.Errorf("Sections(): got %q, want %q", got, want)
	}
}

func TestDefaultWindow(t *testing.T) {
	if got, want := newsletter.DefaultWindow(newsletter.Daily), 24*time.Hour; got != want {
		t.Errorf("DefaultWindow(daily): got %v, want %v", got, want)
	}
	if got, want := newsletter.DefaultWindow(newsletter.Weekly), 7*24*time.Hour; got != want {
		t.Errorf("DefaultWindow(weekly): got %v, want %v", got, want)
	}
}
