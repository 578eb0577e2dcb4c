package newsletter

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Article is a story published on the site, as it appears in a digest.
type Article struct {
	ID          string    `json:"id"`  // ArticleID of the canonical Source, or of the URL without one
	URL         string    `json:"url"` // canonical URL, see CanonicalURL
	Title       string    `json:"title"`
	Summary     string    `json:"summary"` // sanitised HTML, see SanitizeSummary
	Author      string    `json:"author,omitempty"`
	Sections    []string  `json:"sections"` // section slugs
	ImageURL    string    `json:"imageUrl,omitempty"`
	PublishedAt time.Time `json:"publishedAt"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`

	// Source names the article at its origin for good when its URL may
	// change: a WordPress post's shortlink (https://site/?p=123), since an
	// editor can rename a published post's slug. Empty for an editor's
	// submission, whose URL is its identity.
	Source string `json:"source,omitempty"`
	// RevisedAt is when the article's text last changed as its origin
	// tells it (WordPress's modified time) or an editor's edit. A digest
	// that carried an earlier revision makes the next one mark the article
	// Updated (see Digest.Updated).
	RevisedAt time.Time `json:"revisedAt,omitzero"`
}

// Limits on an article's fields, in characters.
const (
	MaxTitleLength   = 300
	MaxSummaryLength = 2000 // of the summary's text, tags aside
	// MaxSummaryHTMLLength caps a summary's HTML, in bytes.
	MaxSummaryHTMLLength = 16 << 10
	MaxAuthorLength      = 200
	MaxURLLength         = 2048
)

// ArticleID returns the stable ID of the article at a canonical URL, so that
// submitting the same URL again updates the article instead of adding one.
func ArticleID(canonicalURL string) string {
	sum := sha256.Sum256([]byte(canonicalURL))
	return hex.EncodeToString(sum[:12])
}

// CanonicalURL checks that raw is an absolute http(s) URL and returns it in
// canonical form: lower-case scheme and host, no default port, no fragment,
// no empty query and no utm_* tracking parameters.
func CanonicalURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", Errorf(EINVALID, "URL is required.")
	}
	if len(raw) > MaxURLLength || hasControl(raw) {
		return "", Errorf(EINVALID, "URL is not valid.")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "HTTP" && u.Scheme != "HTTPS") || u.Hostname() == "" || u.User != nil {
		return "", Errorf(EINVALID, "URL must be an absolute http or https address.")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	if port := u.Port(); (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		u.Host = strings.TrimSuffix(u.Host, ":"+port) // keeps an IPv6 host's brackets
	}
	u.Fragment, u.RawFragment = "", ""
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if strings.HasPrefix(strings.ToLower(k), "utm_") {
				q.Del(k)
			}
		}
		u.RawQuery = q.Encode()
	}
	u.ForceQuery = false
	if u.Path == "" {
		u.Path = "/"
	}
	// Escaping can lengthen the URL past the limit it was checked against.
	if out := u.String(); len(out) <= MaxURLLength {
		return out, nil
	}
	return "", Errorf(EINVALID, "URL is not valid.")
}

// Validate checks and normalises a submitted article in place: it fills
// the canonical URL, Source and ID, trims text and checks every limit. Sections are
// slugified; known, when not empty, limits which are allowed.
func (a *Article) Validate(known []Section) error {
	canon, err := CanonicalURL(a.URL)
	if err != nil {
		return err
	}
	a.URL, a.ID = canon, ArticleID(canon)
	if a.Source != "" {
		src, err := CanonicalURL(a.Source)
		if err != nil {
			return Errorf(EINVALID, "Source must be an absolute http or https address.")
		}
		a.Source, a.ID = src, ArticleID(src)
	}
	a.Title = strings.TrimSpace(a.Title)
	a.Summary = strings.TrimSpace(a.Summary)
	a.Author = strings.TrimSpace(a.Author)
	switch {
	case a.Title == "":
		return Errorf(EINVALID, "Title is required.")
	case utf8.RuneCountInString(a.Title) > MaxTitleLength:
		return Errorf(EINVALID, "Title must be at most %d characters.", MaxTitleLength)
	case hasControl(a.Title) || hasControl(a.Author):
		return Errorf(EINVALID, "Title and author must be one line of text.")
	case len(a.Summary) > MaxSummaryHTMLLength || utf8.RuneCountInString(HTMLText(a.Summary, false)) > MaxSummaryLength:
		return Errorf(EINVALID, "Summary must be at most %d characters.", MaxSummaryLength)
	case utf8.RuneCountInString(a.Author) > MaxAuthorLength:
		return Errorf(EINVALID, "Author must be at most %d characters.", MaxAuthorLength)
	case !utf8.ValidString(a.Title + a.Summary + a.Author):
		return Errorf(EINVALID, "Text must be valid UTF-8.")
	}
	if a.ImageURL = strings.TrimSpace(a.ImageURL); a.ImageURL != "" {
		img, err := CanonicalURL(a.ImageURL)
		if err != nil {
			return Errorf(EINVALID, "Image URL must be an absolute http or https address.")
		}
		a.ImageURL = img
	}
	if a.Sections, err = NormalizeSections(a.Sections, known); err != nil {
		return err
	}
	return nil
}

// hasControl reports whether s holds a control character such as CR or LF,
// which must never reach an email header.
func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}
