package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/schedule"
	"github.com/broadsheet-news/broadsheet/internal/settings"
	"github.com/broadsheet-news/broadsheet/internal/wordpress"
)

// config is every setting of the laptop binary: the publication's settings
// shared with the Lambda functions, and the laptop's own.
type config struct {
	settings.Settings
	Addr     string
	Data     string
	SMTP     string
	DailyAt  string
	WeeklyAt string
	Workers  int
	// Lease is how long a sender's claim on a reader's copy holds: the
	// longest a copy a crash left half-done waits before the running
	// process takes it up (a restart takes it up at once).
	Lease time.Duration

	// WordPress is the site to pull posts from ("" turns the pull off),
	// WordPressSecret the secret its plugin signs pushes with ("" turns
	// the hook off), IngestEvery how often serve pulls.
	WordPress       string
	WordPressSecret string
	IngestEvery     time.Duration

	// baseURLDefaulted and homeURLDefaulted say the URLs were derived from
	// Addr, so serve can correct them once it knows the real port.
	baseURLDefaulted bool
	homeURLDefaulted bool
	// now is the clock: the environ's, time.Now when nil.
	now func() time.Time
	// started, when set (tests), is called with the app once serve takes
	// requests: a test waits on the app's queue and mail, not on a clock.
	started func(*app)

	// location and sections are the Settings' derived values, kept here
	// for the commands that read them.
	location  *time.Location
	sections  []newsletter.Section
	schedules []schedule.Entry
}

// setting is one flag with its environment variable and default.
type setting struct {
	dst        *string
	name, env  string
	def, usage string
}

// parseConfig reads the settings of cmd from flags, then BROADSHEET_*
// variables, then defaults. extra registers the command's own flags.
func parseConfig(cmd string, args []string, env environ, stderr io.Writer, extra func(*flag.FlagSet)) (*config, *flag.FlagSet, error) {
	c := &config{now: env.now}
	getenv := env.getenv
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := []setting{
		{&c.Addr, "addr", "BROADSHEET_ADDR", "127.0.0.1:8080", "address the HTTP server listens on"},
		{&c.Data, "data", "BROADSHEET_DATA", "./.broadsheet", "data folder: the bbolt file, the signing key and the outbox"},
		{&c.SMTP, "smtp", "BROADSHEET_SMTP", "", "send through SMTP (smtp://host:port) instead of writing .eml files to DATA/outbox"},
		{&c.DailyAt, "daily-at", "BROADSHEET_DAILY_AT", "07:00", "when the daily digest goes out (\"off\" to disable)"},
		{&c.WeeklyAt, "weekly-at", "BROADSHEET_WEEKLY_AT", "mon 07:00", "when the weekly digest goes out (\"off\" to disable)"},
		{&c.WordPress, "wordpress-url", "BROADSHEET_WORDPRESS_URL", "", "WordPress site to pull posts from, such as https://news.example.com (empty: no pull)"},
		{&c.WordPressSecret, "wordpress-secret", "BROADSHEET_WORDPRESS_SECRET", "", "secret the WordPress plugin signs pushes with, at least 32 characters (empty: POST /hooks/wordpress is off)"},
	}
	for _, v := range c.Settings.Vars() {
		if v.Env == settings.EnvBaseURL {
			v.Usage += " (default http://ADDR)"
		}
		flags = append(flags, setting{v.Value, v.Flag, v.Env, v.Default, v.Usage})
	}
	for _, s := range flags {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		fs.StringVar(s.dst, s.name, def, s.usage+" ["+s.env+"]")
	}
	fs.IntVar(&c.Workers, "workers", 4, "concurrent senders")
	lease := 2 * time.Minute
	if v, err := time.ParseDuration(getenv("BROADSHEET_LEASE")); err == nil {
		lease = v
	}
	fs.DurationVar(&c.Lease, "lease", lease, "how long a sender's claim on a reader's copy holds; copies a crash left half-done are taken up when it runs out [BROADSHEET_LEASE]")
	every := 15 * time.Minute
	if v, err := time.ParseDuration(getenv("BROADSHEET_INGEST_EVERY")); err == nil {
		every = v
	}
	fs.DurationVar(&c.IngestEvery, "ingest-every", every, "how often serve pulls posts from the WordPress site, 0 for never [BROADSHEET_INGEST_EVERY]")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	if err := c.check(); err != nil {
		return nil, nil, err
	}
	return c, fs, nil
}

// check validates the settings and derives the parsed ones. The shared
// settings are checked by package settings; a base URL left empty is the
// local server's.
func (c *config) check() error {
	if c.BaseURL == "" {
		c.BaseURL, c.baseURLDefaulted = "http://"+c.Addr, true
	}
	c.homeURLDefaulted = c.HomeURL == ""
	if err := c.Settings.Check(); err != nil {
		return err
	}
	c.location, c.sections = c.Settings.Location(), c.Settings.SectionList()
	c.schedules = nil
	for _, s := range []struct {
		f  newsletter.Frequency
		at string
	}{{newsletter.Daily, c.DailyAt}, {newsletter.Weekly, c.WeeklyAt}} {
		if s.at == "off" || s.at == "" {
			continue
		}
		e, err := schedule.Parse(s.f, s.at)
		if err != nil {
			return err
		}
		c.schedules = append(c.schedules, e)
	}
	if c.WordPress != "" {
		if _, err := wordpress.NewClient(c.WordPress, nil); err != nil {
			return err
		}
	}
	if c.WordPressSecret != "" && len(c.WordPressSecret) < wordpress.MinSecretLength {
		return fmt.Errorf("wordpress secret must be at least %d characters", wordpress.MinSecretLength)
	}
	if c.IngestEvery < 0 || (c.IngestEvery > 0 && c.IngestEvery < time.Minute) {
		return fmt.Errorf("ingest-every must be 0 or at least a minute")
	}
	if c.Lease < time.Second || c.Lease > time.Hour {
		return fmt.Errorf("lease must be between 1s and 1h")
	}
	if c.Workers < 1 || c.Workers > 64 {
		return fmt.Errorf("workers must be between 1 and 64")
	}
	return nil
}

// listID is the List-Id header value: "Name <list.domain>".
func (c *config) listID() string { return c.Settings.ListID() }

// clock returns the time now on the config's clock.
func (c *config) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}
