package settings

import (
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFromEnv(t *testing.T) {
	s, err := FromEnv(env(map[string]string{
		EnvBaseURL:  "https://news.ledger.example/",
		EnvFrom:     "Ledger Desk <desk@ledger.example>",
		EnvSiteName: "The Ledger",
		EnvTimezone: "Europe/London",
		EnvSections: "News, Arts & Culture,,",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if s.BaseURL != "https://news.ledger.example" || s.HomeURL != s.BaseURL {
		t.Errorf("base URL %q, home URL %q; want the base URL without its slash for both", s.BaseURL, s.HomeURL)
	}
	if got := s.Location().String(); got != "Europe/London" {
		t.Errorf("location %s, want Europe/London", got)
	}
	if secs := s.SectionList(); len(secs) != 2 || secs[1].Slug != "arts-culture" || secs[1].Name != "Arts & Culture" {
		t.Errorf("sections %+v, want news and arts-culture", secs)
	}
	if s.PostalAddress != DefaultPostalAddress {
		t.Errorf("postal address %q, want the default", s.PostalAddress)
	}
	if s.Unsubscribe != "unsubscribe@ledger.example" {
		t.Errorf("unsubscribe mailbox %q", s.Unsubscribe)
	}
	lh := s.Letterhead()
	if lh.From != `"Ledger Desk" <desk@ledger.example>` || lh.ListID != "The Ledger <the-ledger.list.ledger.example>" ||
		lh.UnsubscribeMailto != s.Unsubscribe || lh.BaseURL != s.BaseURL {
		t.Errorf("letterhead %+v", lh)
	}
	site := s.Site()
	if site.Name != "The Ledger" || site.URL != s.BaseURL || site.Location != s.Location() || len(site.Sections) != 2 {
		t.Errorf("site %+v", site)
	}
}

func TestFromEnvRejects(t *testing.T) {
	good := map[string]string{EnvBaseURL: "https://news.example", EnvFrom: "news@example.org"}
	for _, tc := range []struct {
		name, key, value, want string
	}{
		{"no base URL", EnvBaseURL, "", EnvBaseURL + " is required"},
		{"no from", EnvFrom, "", EnvFrom + " is required"},
		{"relative base URL", EnvBaseURL, "/news", "absolute http(s) URL"},
		{"ftp base URL", EnvBaseURL, "ftp://news.example", "absolute http(s) URL"},
		{"bad from", EnvFrom, "not an address", "from address"},
		{"bad time zone", EnvTimezone, "Mars/Olympus", "timezone"},
		{"section without letters", EnvSections, "News,!!!", "no letters or digits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range good {
				m[k] = v
			}
			m[tc.key] = tc.value
			_, err := FromEnv(env(m))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestListIDLeavesOutNamesThatNeedQuoting(t *testing.T) {
	s := &Settings{SiteName: "Ledger & Co.", BaseURL: "http://x.example", From: "a@ledger.example", Timezone: "UTC"}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if got, want := s.ListID(), "<ledger-co.list.ledger.example>"; got != want {
		t.Errorf("List-Id %q, want %q", got, want)
	}
}

// TestFromName: a display name of its own replaces the one in From, so
// that From can be the bare address an SES policy names.
func TestFromName(t *testing.T) {
	for _, tc := range []struct{ from, name, want string }{
		{"desk@ledger.example", "Ledger Desk", `"Ledger Desk" <desk@ledger.example>`},
		{"Old Name <desk@ledger.example>", "Ledger Desk", `"Ledger Desk" <desk@ledger.example>`},
		{"Ledger Desk <desk@ledger.example>", "", `"Ledger Desk" <desk@ledger.example>`},
		{"desk@ledger.example", "", "<desk@ledger.example>"},
		{"desk@ledger.example", "Crónica Diária", "=?utf-8?q?Cr=C3=B3nica_Di=C3=A1ria?= <desk@ledger.example>"},
	} {
		s, err := FromEnv(env(map[string]string{EnvBaseURL: "https://news.example", EnvFrom: tc.from, EnvFromName: tc.name}))
		if err != nil {
			t.Fatal(err)
		}
		if s.From != tc.want {
			t.Errorf("from %q, name %q: got %s, want %s", tc.from, tc.name, s.From, tc.want)
		}
	}
	if _, err := FromEnv(env(map[string]string{EnvBaseURL: "https://news.example", EnvFrom: "a@b.example", EnvFromName: "A\r\nBcc: x@y"})); err == nil {
		t.Error("a from name with a line break was taken")
	}
}
