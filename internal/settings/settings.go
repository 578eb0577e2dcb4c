// Package settings holds the publication's settings that the laptop binary
// and the Lambda functions share: its name, public URL, sender, postal
// address, time zone, sections and unsubscribe mailbox. Both read them from
// the same BROADSHEET_* variables, and both validate them here, so that a
// setting means the same thing in either world.
package settings

import (
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/render"
)

// The environment variables of the shared settings.
const (
	EnvSiteName          = "BROADSHEET_SITE_NAME"
	EnvBaseURL           = "BROADSHEET_BASE_URL"
	EnvHomeURL           = "BROADSHEET_HOME_URL"
	EnvFrom              = "BROADSHEET_FROM"
	EnvFromName          = "BROADSHEET_FROM_NAME"
	EnvPostalAddress     = "BROADSHEET_POSTAL_ADDRESS"
	EnvTimezone          = "BROADSHEET_TIMEZONE"
	EnvSections          = "BROADSHEET_SECTIONS"
	EnvUnsubscribeMailto = "BROADSHEET_UNSUBSCRIBE_MAILTO"
)

// Defaults of the shared settings. BaseURL, HomeURL, From and the
// unsubscribe mailbox have none of their own: see Check.
const (
	DefaultSiteName      = "The Daily Broadsheet"
	DefaultPostalAddress = "1 Marina Road, Lagos Island, Lagos, Nigeria"
	DefaultTimezone      = "Africa/Lagos"
	DefaultSections      = "News,Politics,Business,Sport,Culture,Opinion"
)

// Settings are the publication's settings as configured, plus the values
// Check derives from them. Call Check before using the derived values.
type Settings struct {
	// SiteName is the publication's name: "The Daily Broadsheet".
	SiteName string
	// BaseURL is Broadsheet's public URL, used in email links.
	BaseURL string
	// HomeURL is the publication's homepage; BaseURL when empty.
	HomeURL string
	// From is the sender of every email, "Name <address>" or a bare
	// address; SiteName <news@example.com> when empty.
	From string
	// FromName, when set, is the sender's display name, in place of the
	// one in From. The stack sets From to the bare address its SES policy
	// names (ses:FromAddress) and the name here.
	FromName string
	// PostalAddress is the publisher's address, shown in every digest.
	PostalAddress string
	// Timezone names the time zone of schedules and digest dates.
	Timezone string
	// Sections are the sections readers can choose, comma-separated.
	Sections string
	// Unsubscribe is the mailbox of the mailto: List-Unsubscribe entry;
	// unsubscribe@ the From domain when empty.
	Unsubscribe string

	location *time.Location
	sections []newsletter.Section
}

// Var is one setting: its command-line flag, its environment variable, its
// default and what it means. Value points at the field it sets.
type Var struct {
	Flag, Env, Default, Usage string
	Value                     *string
}

// Vars lists the shared settings of s, each pointing into s, for a
// command line to register as flags and for FromEnv to read.
func (s *Settings) Vars() []Var {
	return []Var{
		{"base-url", EnvBaseURL, "", "public URL of Broadsheet, used in email links", &s.BaseURL},
		{"site-name", EnvSiteName, DefaultSiteName, "the publication's name", &s.SiteName},
		{"home-url", EnvHomeURL, "", "the publication's homepage (default: BASE_URL)", &s.HomeURL},
		{"from", EnvFrom, "", "sender of every email, \"Name <address>\" or an address (default: SITE_NAME <news@example.com>)", &s.From},
		{"from-name", EnvFromName, "", "display name of the sender, in place of the one in FROM", &s.FromName},
		{"postal-address", EnvPostalAddress, DefaultPostalAddress, "publisher's postal address, shown in every digest", &s.PostalAddress},
		{"timezone", EnvTimezone, DefaultTimezone, "time zone of the schedule and of digest dates", &s.Timezone},
		{"sections", EnvSections, DefaultSections, "sections readers can choose, comma-separated", &s.Sections},
		{"unsubscribe-mailto", EnvUnsubscribeMailto, "", "mailbox for List-Unsubscribe mailto (default: unsubscribe@ the From domain)", &s.Unsubscribe},
	}
}

// FromEnv reads the settings from BROADSHEET_* variables, taking the
// defaults for those unset, and checks them. It is how the Lambda
// functions read their settings. Unlike on a laptop, where they default to
// the local server, BROADSHEET_BASE_URL and BROADSHEET_FROM are required:
// no default is a working public URL or a verified SES identity.
func FromEnv(getenv func(string) string) (*Settings, error) {
	s := &Settings{}
	for _, v := range s.Vars() {
		*v.Value = v.Default
		if e := getenv(v.Env); e != "" {
			*v.Value = e
		}
	}
	for _, req := range []struct{ env, val string }{{EnvBaseURL, s.BaseURL}, {EnvFrom, s.From}} {
		if req.val == "" {
			return nil, fmt.Errorf("settings: %s is required", req.env)
		}
	}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	return s, nil
}

// Check validates the settings, normalises them (BaseURL without a
// trailing slash, From re-encoded) and fills the defaults that depend on
// other settings: HomeURL, From (with FromName) and Unsubscribe. It derives Location and
// SectionList.
func (s *Settings) Check() error {
	var err error
	if s.location, err = time.LoadLocation(s.Timezone); err != nil {
		return fmt.Errorf("timezone %q: %w", s.Timezone, err)
	}
	u, err := url.Parse(s.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("base URL %q must be an absolute http(s) URL", s.BaseURL)
	}
	s.BaseURL = strings.TrimRight(s.BaseURL, "/")
	if s.HomeURL == "" {
		s.HomeURL = s.BaseURL
	}
	if s.From == "" {
		s.From = (&mail.Address{Name: s.SiteName, Address: "news@example.com"}).String()
	}
	from, err := mail.ParseAddress(s.From)
	if err != nil {
		return fmt.Errorf("from address %q: %w", s.From, err)
	}
	if name := strings.TrimSpace(s.FromName); name != "" {
		if strings.ContainsAny(name, "\r\n") {
			return fmt.Errorf("from name %q holds a line break", name)
		}
		from.Name = name
	}
	s.From = from.String()
	if s.Unsubscribe == "" {
		s.Unsubscribe = "unsubscribe@" + domain(from.Address)
	}
	s.sections = nil
	for _, name := range strings.Split(s.Sections, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		slug := newsletter.Slugify(name)
		if slug == "" {
			return fmt.Errorf("section %q has no letters or digits", name)
		}
		s.sections = append(s.sections, newsletter.Section{Slug: slug, Name: name})
	}
	return nil
}

// domain returns the part of an address after its last @.
func domain(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}

// Location returns the time zone Check loaded; nil before Check.
func (s *Settings) Location() *time.Location { return s.location }

// SectionList returns the sections Check parsed.
func (s *Settings) SectionList() []newsletter.Section { return s.sections }

// ListID returns the List-Id header value, "Name <slug.list.domain>", or
// only "<slug.list.domain>" when the name would need quoting or encoding.
func (s *Settings) ListID() string {
	var d string
	if from, err := mail.ParseAddress(s.From); err == nil {
		d = domain(from.Address)
	}
	id := "<" + newsletter.Slugify(s.SiteName) + ".list." + d + ">"
	for _, r := range s.SiteName {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == ' ') {
			return id
		}
	}
	return s.SiteName + " " + id
}

// Site returns what the renderer and the newsroom need to know about the
// publication.
func (s *Settings) Site() render.Site {
	return render.Site{
		Name: s.SiteName, URL: s.BaseURL, HomeURL: s.HomeURL, PostalAddress: s.PostalAddress,
		Sections: s.sections, Location: s.location,
	}
}

// Letterhead returns who every digest says it is from, with the
// unsubscribe mailbox, the List-Id and the base of reader links.
func (s *Settings) Letterhead() delivery.Letterhead {
	return delivery.Letterhead{
		From: s.From, UnsubscribeMailto: s.Unsubscribe, ListID: s.ListID(), BaseURL: s.BaseURL,
	}
}
