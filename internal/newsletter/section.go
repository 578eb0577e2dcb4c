package newsletter

import (
	"slices"
	"strings"
)

// Section is a part of the paper a reader can follow, such as "Sport".
type Section struct {
	Slug string `json:"slug"` // lower-case letters, digits and hyphens
	Name string `json:"name"`
}

// DefaultSections are the sections of a laptop install before any are set.
var DefaultSections = []Section{
	{"news", "News"}, {"politics", "Politics"}, {"business", "Business"},
	{"sport", "Sport"}, {"culture", "Culture"}, {"opinion", "Opinion"},
}

// MaxSections is the most sections an article or a reader may name.
const MaxSections = 20

// Slugify turns a section name such as "Arts & Culture" into a slug
// ("arts-culture"). It returns "" when nothing usable is left.
func Slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(strings.TrimSpace(name)) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case b.Len() > 0 && !dash:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 64 {
			break
		}
	}
	return strings.TrimRight(b.String(), "-")
}

// NormalizeSections slugifies, de-duplicates and checks a list of sections.
// When known is not empty every slug must be one of them.
func NormalizeSections(in []string, known []Section) ([]string, error) {
	if len(in) > MaxSections {
		return nil, Errorf(EINVALID, "At most %d sections may be chosen.", MaxSections)
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		slug := Slugify(s)
		if slug == "" {
			return nil, Errorf(EINVALID, "Section names must contain letters or digits.")
		}
		if len(known) > 0 && !hasSection(known, slug) {
			return nil, Errorf(EINVALID, "Unknown section %q.", slug)
		}
		if !slices.Contains(out, slug) {
			out = append(out, slug)
		}
	}
	return out, nil
}

// SectionName returns the display name of slug among known, or the slug.
func SectionName(known []Section, slug string) string {
	for _, s := range known {
		if s.Slug == slug {
			return s.Name
		}
	}
	return slug
}

func hasSection(known []Section, slug string) bool {
	for _, s := range known {
		if s.Slug == slug {
			return true
		}
	}
	return false
}
