package newsletter_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

var slugPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

func TestSlugify(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Arts & Culture", "arts-culture"},
		{"News", "news"},
		{"  --Sport!!  ", "sport"},
		{"...Top 10 Lists...", "top-10-lists"},
		{"a   b", "a-b"},
		{"already-a-slug", "already-a-slug"},
		{"Café Society", "caf-society"},
		{"Überblick", "berblick"},
		{"日本", ""},
		{"", ""},
		{"   ", ""},
		{"&&&", ""},
		{strings.Repeat("a", 100), strings.Repeat("a", 64)},
		{strings.Repeat("a", 63) + " b", strings.Repeat("a", 63)},
		{strings.Repeat("ab ", 40), strings.TrimSuffix(strings.Repeat("ab-", 21)+"a", "-")},
	}
	for _, tt := range tests {
		if got := newsletter.Slugify(tt.in); got != tt.want {
			t.Errorf("Slugify(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSlugifyShape(t *testing.T) {
	inputs := []string{
		"Arts & Culture", " -x- ", "Ünïcödé Sêctïon", "a--b", strings.Repeat("x y ", 50),
		strings.Repeat("-", 70) + "z", "Sport\n\tNews", "1", "\xff\xfe",
	}
	for _, in := range inputs {
		got := newsletter.Slugify(in)
		if got == "" {
			continue
		}
		if len(got) > 64 || !slugPattern.MatchString(got) {
			t.Errorf("Slugify(%q): got %q, want at most 64 of [a-z0-9] joined by single hyphens", in, got)
		}
		if again := newsletter.Slugify(got); again != got {
			t.Errorf("Slugify(%q): got %q, want it unchanged", got, again)
		}
	}
}

func TestNormalizeSections(t *testing.T) {
	many := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("section %d", i))
		}
		return out
	}
	manySlugs := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("section-%d", i))
		}
		return out
	}
	tests := []struct {
		name  string
		in    []string
		known []newsletter.Section
		want  []string
		code  string
	}{
		{"none", nil, newsletter.DefaultSections, []string{}, ""},
		{"slugified and deduplicated in order", []string{"Politics", " NEWS ", "politics", "News!"}, newsletter.DefaultSections, []string{"politics", "news"}, ""},
		{"unknown section", []string{"news", "Weather"}, newsletter.DefaultSections, nil, newsletter.EINVALID},
		{"anything when none known", []string{"Weather", "Arts & Culture"}, nil, []string{"weather", "arts-culture"}, ""},
		{"custom known list", []string{"Arts & Culture"}, []newsletter.Section{{Slug: "arts-culture", Name: "Arts & Culture"}}, []string{"arts-culture"}, ""},
		{"empty slug", []string{"news", "???"}, nil, nil, newsletter.EINVALID},
		{"max count", many(newsletter.MaxSections), nil, manySlugs(newsletter.MaxSections), ""},
		{"over max count", many(newsletter.MaxSections + 1), nil, nil, newsletter.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := newsletter.NormalizeSections(tt.in, tt.known)
			checkCode(t, err, tt.code)
			if tt.code != "" {
				return
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("NormalizeSections(%q): got %q, want %q", tt.in, got, tt.want)
			}
			if got == nil {
				t.Errorf("NormalizeSections(%q): got nil, want an empty, non-nil list", tt.in)
			}
		})
	}
}

func TestSectionName(t *testing.T) {
	if got, want := newsletter.SectionName(newsletter.DefaultSections, "sport"), "Sport"; got != want {
		t.Errorf("SectionName(sport): got %q, want %q", got, want)
	}
	if got, want := newsletter.SectionName(newsletter.DefaultSections, "weather"), "weather"; got != want {
		t.Errorf("SectionName(weather): got %q, want %q", got, want)
	}
}
