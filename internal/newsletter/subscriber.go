package newsletter

import (
	"net/mail"
	"slices"
	"strings"
	"time"
)

// SubscriberStatus is where a reader stands with the newsletter.
type SubscriberStatus string

// Subscriber statuses. Only confirmed readers receive digests; bounced and
// complained readers are suppressed for good.
const (
	StatusPending      SubscriberStatus = "pending"
	StatusConfirmed    SubscriberStatus = "confirmed"
	StatusUnsubscribed SubscriberStatus = "unsubscribed"
	StatusBounced      SubscriberStatus = "bounced"
	StatusComplained   SubscriberStatus = "complained"
)

// Valid reports whether s is a known status.
func (s SubscriberStatus) Valid() bool {
	switch s {
	case StatusPending, StatusConfirmed, StatusUnsubscribed, StatusBounced, StatusComplained:
		return true
	}
	return false
}

// Frequency is how often a reader gets a digest.
type Frequency string

// Frequencies a reader can choose. A daily or weekly reader gets the
// digest of the period; an instant reader gets one short email per new
// article in their sections, as it is published.
const (
	Daily   Frequency = "daily"
	Weekly  Frequency = "weekly"
	Instant Frequency = "instant"
)

// Frequencies lists every frequency, in the order a form shows them.
var Frequencies = []Frequency{Daily, Weekly, Instant}

// DigestFrequencies are the frequencies whose digests are built per
// period, by the schedule or an editor; instant emails are built per
// article as it is published (see DigestID).
var DigestFrequencies = []Frequency{Daily, Weekly}

// ParseFrequency returns the frequency named s; "" means daily.
func ParseFrequency(s string) (Frequency, error) {
	switch f := Frequency(strings.ToLower(strings.TrimSpace(s))); f {
	case "":
		return Daily, nil
	case Daily, Weekly, Instant:
		return f, nil
	}
	return "", Errorf(EINVALID, "Frequency must be one of: daily, weekly, instant.")
}

// Format is how a reader wants the digest laid out.
type Format string

// Formats a reader can choose: full HTML with images, lite HTML (headlines
// and links, no images) or plain text only.
const (
	FormatFull Format = "full"
	FormatLite Format = "lite"
	FormatText Format = "text"
)

// Formats lists every format, in the order a form shows them.
var Formats = []Format{FormatFull, FormatLite, FormatText}

// ParseFormat returns the format named s; "" means full.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "":
		return FormatFull, nil
	case FormatFull, FormatLite, FormatText:
		return f, nil
	}
	return "", Errorf(EINVALID, "Format must be one of: full, lite, text.")
}

// Consent records how and when a reader asked to subscribe.
type Consent struct {
	Time      time.Time `json:"time"`
	IP        string    `json:"ip,omitempty"`
	UserAgent string    `json:"userAgent,omitempty"`
	Source    string    `json:"source,omitempty"` // "form", "api", "import"
}

// Subscriber is a reader on the list.
type Subscriber struct {
	ID        string           `json:"id"`
	Email     string           `json:"email"` // normalised by NormalizeEmail
	Status    SubscriberStatus `json:"status"`
	Sections  []string         `json:"sections"` // section slugs; empty means all
	Frequency Frequency        `json:"frequency"`
	Format    Format           `json:"format"`
	Consent   Consent          `json:"consent"`

	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
	ConfirmedAt    time.Time `json:"confirmedAt,omitzero"`
	UnsubscribedAt time.Time `json:"unsubscribedAt,omitzero"`
	// ConfirmationSentAt is when the last confirmation email went out, so
	// that repeated sign-ups do not flood an address.
	ConfirmationSentAt time.Time `json:"confirmationSentAt,omitzero"`
	// LastSignUpAt is when the address was last entered in the sign-up
	// form. Every sign-up writes it, whatever the reader's state, so that
	// every sign-up does the same work; it changes nothing else.
	LastSignUpAt time.Time `json:"lastSignUpAt,omitzero"`
	// ArticlesAfter is set when the reader changes how often they hear
	// from the paper: the articles published at or before it reached them
	// already (by instant emails, or by the digests of the frequency they
	// left), so that no digest of the new frequency carries them again.
	ArticlesAfter time.Time `json:"articlesAfter,omitzero"`
}

// Receives reports whether the reader should get a digest of frequency f
// that covers the given sections.
func (s *Subscriber) Receives(f Frequency, sections []string) bool {
	if s.Status != StatusConfirmed || s.Frequency != f {
		return false
	}
	if len(s.Sections) == 0 {
		return true
	}
	for _, sec := range sections {
		if slices.Contains(s.Sections, sec) {
			return true
		}
	}
	return false
}

// ReceivesDigest reports whether the reader should get d, whose sections
// are sections (d.Sections(), worked out once by the caller): Receives,
// and at least one of d's articles in the reader's sections is new to
// them, published after ArticlesAfter, or a correction (Digest.Updated).
func (s *Subscriber) ReceivesDigest(d *Digest, sections []string) bool {
	if !s.Receives(d.Frequency, sections) {
		return false
	}
	if s.ArticlesAfter.IsZero() || (!d.Since.IsZero() && !s.ArticlesAfter.After(d.Since)) {
		return true // every article of d is newer (the usual case)
	}
	for i := range d.Articles {
		if a := &d.Articles[i]; (a.PublishedAt.After(s.ArticlesAfter) || d.IsUpdated(a.ID)) && s.wants(a) {
			return true
		}
	}
	return false
}

// wants reports whether a is in the reader's sections.
func (s *Subscriber) wants(a *Article) bool {
	if len(s.Sections) == 0 {
		return true
	}
	for _, sec := range a.Sections {
		if slices.Contains(s.Sections, sec) {
			return true
		}
	}
	return false
}

// Suppressed reports whether the address must never be mailed again.
func (s *Subscriber) Suppressed() bool {
	return s.Status == StatusBounced || s.Status == StatusComplained
}

// MaxEmailLength is the longest address accepted (RFC 5321 path limit).
const MaxEmailLength = 254

// NormalizeEmail checks that s is a bare email address and returns it with
// surrounding space removed and the domain lower-cased. The local part keeps
// its case, as RFC 5321 requires, but lookups fold it (see EmailKey).
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", Errorf(EINVALID, "Email address is required.")
	}
	if len(s) > MaxEmailLength || strings.ContainsAny(s, "\r\n\t\x00<>,;\" ") {
		return "", Errorf(EINVALID, "Email address is not valid.")
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return "", Errorf(EINVALID, "Email address is not valid.")
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], strings.ToLower(s[at+1:])
	// Lower-casing can lengthen a non-ASCII domain, so the limit is checked again.
	if local == "" || !validDomain(domain) || len(local)+1+len(domain) > MaxEmailLength {
		return "", Errorf(EINVALID, "Email address is not valid.")
	}
	return local + "@" + domain, nil
}

// EmailKey is the key under which an address is looked up: the whole
// address lower-cased, since almost every mailbox provider ignores case.
func EmailKey(email string) string {
	return strings.ToLower(email)
}

func validDomain(d string) bool {
	if len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r > 127) {
				return false
			}
		}
	}
	return true
}
