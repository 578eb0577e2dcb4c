package main

import (
	"io"
	"testing"
	"time"
)

func TestConfigSources(t *testing.T) {
	env := map[string]string{
		"BROADSHEET_SITE_NAME": "The Ledger",
		"BROADSHEET_TIMEZONE":  "Europe/London",
		"BROADSHEET_SECTIONS":  "News, Arts & Culture",
		"BROADSHEET_FROM":      "Ledger Desk <desk@ledger.example>",
	}
	getenv := func(k string) string { return env[k] }
	cfg, _, err := parseConfig("serve", []string{"--site-name", "The Flag Wins"}, environ{getenv: getenv}, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SiteName != "The Flag Wins" {
		t.Errorf("site name %q: a flag must win over the variable", cfg.SiteName)
	}
	if cfg.location.String() != "Europe/London" {
		t.Errorf("time zone %s, want Europe/London from the variable", cfg.location)
	}
	if len(cfg.sections) != 2 || cfg.sections[1].Slug != "arts-culture" || cfg.sections[1].Name != "Arts & Culture" {
		t.Errorf("sections %+v, want news and arts-culture", cfg.sections)
	}
	if cfg.BaseURL != "http://127.0.0.1:8080" || cfg.Data != "./.broadsheet" {
		t.Errorf("defaults: base URL %q, data %q", cfg.BaseURL, cfg.Data)
	}
	if cfg.Unsubscribe != "unsubscribe@ledger.example" || cfg.listID() != "The Flag Wins <the-flag-wins.list.ledger.example>" {
		t.Errorf("mailto %q, List-Id %q", cfg.Unsubscribe, cfg.listID())
	}
	if len(cfg.schedules) != 2 {
		t.Errorf("%d schedules, want daily and weekly by default", len(cfg.schedules))
	}
	if cfg.Lease != 2*time.Minute {
		t.Errorf("lease %s, want 2m by default", cfg.Lease)
	}
	env["BROADSHEET_LEASE"] = "30s"
	if cfg, _, err := parseConfig("serve", nil, environ{getenv: getenv}, io.Discard, nil); err != nil || cfg.Lease != 30*time.Second {
		t.Errorf("BROADSHEET_LEASE=30s: %v, want a lease of 30s", err)
	}

	for _, bad := range [][]string{
		{"--base-url", "ftp://x"}, {"--from", "not an address"}, {"--daily-at", "25:00"},
		{"--weekly-at", "someday 07:00"}, {"--sections", "News,!!!"}, {"--workers", "0"}, {"--no-such-flag"},
		{"--lease", "10ms"}, {"--lease", "2h"},
	} {
		if _, _, err := parseConfig("serve", bad, testEnviron(cliNow), io.Discard, nil); err == nil {
			t.Errorf("parseConfig(%q) accepted bad settings", bad)
		}
	}
}
