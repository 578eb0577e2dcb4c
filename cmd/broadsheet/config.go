package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/schedule"
)

// config is every setting of the laptop binary.
type config struct {
	Addr          string
	Data          string
	BaseURL       string
	SMTP          string
	SiteName      string
	HomeURL       string
	From          string
	PostalAddress string
	Timezone      string
	DailyAt       string
	WeeklyAt      string
	Sections      string
	Unsubscribe   string
	Workers       int

	// baseURLDefaulted and homeURLDefaulted say the URLs were derived from
	// Addr, so serve can correct them once it knows the real port.
	baseURLDefaulted bool
	homeURLDefaulted bool
	// now is the clock; tests set it, nil means time.Now.
	now func() time.Time

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
func parseConfig(cmd string, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet)) (*config, *flag.FlagSet, error) {
	c := &config{}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	settings := []setting{
		{&c.Addr, "addr", "BROADSHEET_ADDR", "127.0.0.1:8080", "address the HTTP server listens on"},
		{&c.Data, "data", "BROADSHEET_DATA", "./.broadsheet", "data folder: the bbolt file, the signing key and the outbox"},
		{&c.BaseURL, "base-url", "BROADSHEET_BASE_URL", "", "public URL of this server, used in email links (default http://ADDR)"},
		{&c.SMTP, "smtp", "BROADSHEET_SMTP", "", "send through SMTP (smtp://host:port) instead of writing .eml files to DATA/outbox"},
		{&c.SiteName, "site-name", "BROADSHEET_SITE_NAME", "The Daily Broadsheet", "the publication's name"},
		{&c.HomeURL, "home-url", "BROADSHEET_HOME_URL", "", "the publication's homepage (default: BASE_URL)"},
		{&c.From, "from", "BROADSHEET_FROM", "", "sender of every email, \"Name <address>\" (default: SITE_NAME <news@example.com>)"},
		{&c.PostalAddress, "postal-address", "BROADSHEET_POSTAL_ADDRESS", "1 Marina Road, Lagos Island, Lagos, Nigeria", "publisher's postal address, shown in every digest"},
		{&c.Timezone, "timezone", "BROADSHEET_TIMEZONE", "Africa/Lagos", "time zone of the schedule and of digest dates"},
		{&c.DailyAt, "daily-at", "BROADSHEET_DAILY_AT", "07:00", "when the daily digest goes out (\"off\" to disable)"},
		{&c.WeeklyAt, "weekly-at", "BROADSHEET_WEEKLY_AT", "mon 07:00", "when the weekly digest goes out (\"off\" to disable)"},
		{&c.Sections, "sections", "BROADSHEET_SECTIONS", "News,Politics,Business,Sport,Culture,Opinion", "sections readers can choose, comma-separated"},
		{&c.Unsubscribe, "unsubscribe-mailto", "BROADSHEET_UNSUBSCRIBE_MAILTO", "", "mailbox for List-Unsubscribe mailto (default: unsubscribe@ the From domain)"},
	}
	for _, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		fs.StringVar(s.dst, s.name, def, s.usage+" ["+s.env+"]")
	}
	fs.IntVar(&c.Workers, "workers", 4, "concurrent senders")
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

// check validates the settings and derives the parsed ones.
func (c *config) check() error {
	var err error
	if c.location, err = time.LoadLocation(c.Timezone); err != nil {
		return fmt.Errorf("timezone %q: %w", c.Timezone, err)
	}
	if c.BaseURL == "" {
		c.BaseURL, c.baseURLDefaulted = "http://"+c.Addr, true
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("base URL %q must be an absolute http(s) URL", c.BaseURL)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.HomeURL == "" {
		c.HomeURL, c.homeURLDefaulted = c.BaseURL, true
	}
	if c.From == "" {
		c.From = (&mail.Address{Name: c.SiteName, Address: "news@example.com"}).String()
	}
	from, err := mail.ParseAddress(c.From)
	if err != nil {
		return fmt.Errorf("from address %q: %w", c.From, err)
	}
	c.From = from.String()
	if c.Unsubscribe == "" {
		c.Unsubscribe = "unsubscribe@" + from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	}
	c.sections = nil
	for _, name := range strings.Split(c.Sections, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		slug := newsletter.Slugify(name)
		if slug == "" {
			return fmt.Errorf("section %q has no letters or digits", name)
		}
		c.sections = append(c.sections, newsletter.Section{Slug: slug, Name: name})
	}
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
	if c.Workers < 1 || c.Workers > 64 {
		return fmt.Errorf("workers must be between 1 and 64")
	}
	return nil
}

// listID is the List-Id header value: "Name <list.domain>".
func (c *config) listID() string {
	from, _ := mail.ParseAddress(c.From)
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	id := "<" + newsletter.Slugify(c.SiteName) + ".list." + domain + ">"
	for _, r := range c.SiteName {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == ' ') {
			return id // a name that would need quoting or encoding is left out
		}
	}
	return c.SiteName + " " + id
}
