package newsletter_test

import (
	"strings"
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{
		"reader@example.com", " Reader+news@Example.COM ", "josé@Bücher.de", "a@b.c",
		"A <a@b.co>", "a@example.com\r\nBcc: x@example.com", "a@b", "a@-b.com", "a@b..com",
		`"a b"@example.com`, "a@[192.0.2.1]", "a@\u023a\u023a.com", "a@\u212a.com", "",
		strings.Repeat("a", 250) + "@b.co",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := newsletter.NormalizeEmail(in)
		if err != nil {
			if code := newsletter.ErrorCode(err); code != newsletter.EINVALID {
				t.Fatalf("NormalizeEmail(%q) error code: got %q, want %q", in, code, newsletter.EINVALID)
			}
			return
		}
		if strings.ContainsAny(got, "\r\n") {
			t.Fatalf("NormalizeEmail(%q): got %q, want no CR or LF", in, got)
		}
		if len(got) > newsletter.MaxEmailLength {
			t.Fatalf("NormalizeEmail(%q): got %d bytes, want at most %d", in, len(got), newsletter.MaxEmailLength)
		}
		again, err := newsletter.NormalizeEmail(got)
		if err != nil || again != got {
			t.Fatalf("NormalizeEmail(%q): got %q, %v, want %q, nil", got, again, err, got)
		}
		if key := newsletter.EmailKey(got); newsletter.EmailKey(key) != key {
			t.Fatalf("EmailKey(%q): got %q, want it unchanged", key, newsletter.EmailKey(key))
		}
	})
}

func FuzzCanonicalURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/news/1", "HTTP://Example.COM:80/a?utm_source=x&b=2&a=1#frag",
		"https://example.com:443", "http://[2001:DB8::1]:80/", "https://example.com/a%20b?q=%C3%A9",
		"javascript:alert(1)", "mailto:a@b.c", "ftp://example.com/", "https://u:p@example.com/",
		"https://example.com/\n", "/relative", "https://example.com/?a=1;b=2", "https://example.com/?", "",
		"https://exa%6Dple.com/", "http://example.com:/", "https://example.com/?q=" + strings.Repeat("é", 1000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := newsletter.CanonicalURL(in)
		if err != nil {
			if code := newsletter.ErrorCode(err); code != newsletter.EINVALID {
				t.Fatalf("CanonicalURL(%q) error code: got %q, want %q", in, code, newsletter.EINVALID)
			}
			return
		}
		if len(got) > newsletter.MaxURLLength {
			t.Fatalf("CanonicalURL(%q): got %d bytes, want at most %d", in, len(got), newsletter.MaxURLLength)
		}
		if !strings.HasPrefix(got, "http://") && !strings.HasPrefix(got, "https://") {
			t.Fatalf("CanonicalURL(%q): got %q, want an http or https URL", in, got)
		}
		again, err := newsletter.CanonicalURL(got)
		if err != nil || again != got {
			t.Fatalf("CanonicalURL(%q): got %q, %v, want %q, nil", got, again, err, got)
		}
	})
}
