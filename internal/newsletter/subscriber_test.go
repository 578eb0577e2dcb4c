package newsletter_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

func TestNormalizeEmail(t *testing.T) {
	const suffix = "@example.com"
	maxLocal := strings.Repeat("a", newsletter.MaxEmailLength-len(suffix))
	tests := []struct {
		name string
		in   string
		want string // "" when EINVALID is expected
	}{
		{"plain", "reader@example.com", "reader@example.com"},
		{"surrounding space trimmed", "  reader@example.com \t", "reader@example.com"},
		{"plus addressing", "reader+news@example.com", "reader+news@example.com"},
		{"dots in local part", "first.last@mail.example.co.uk", "first.last@mail.example.co.uk"},
		{"domain lower-cased, local part kept", "Reader.Name@Example.COM", "Reader.Name@example.com"},
		{"IDN domain", "leser@Bücher.de", "leser@bücher.de"},
		{"IDN local part", "josé@example.com", "josé@example.com"},
		{"punycode domain", "leser@xn--bcher-kva.de", "leser@xn--bcher-kva.de"},
		{"hyphen inside label", "a@my-site.example", "a@my-site.example"},
		{"digits", "1@2.3", "1@2.3"},
		{"exactly the limit", maxLocal + suffix, maxLocal + suffix},

		{"empty", "", ""},
		{"only space", "   ", ""},
		{"no at", "reader.example.com", ""},
		{"no local part", "@example.com", ""},
		{"no domain", "reader@", ""},
		{"two ats", "a@b@example.com", ""},
		{"display name", "A <a@b.co>", ""},
		{"quoted display name", `"A" <a@b.co>`, ""},
		{"angle brackets only", "<a@b.co>", ""},
		{"quoted local part", `"a b"@example.com`, ""},
		{"CR LF header injection", "a@example.com\r\nBcc: victim@example.com", ""},
		{"LF inside", "a\n@example.com", ""},
		{"CR inside", "a\r@example.com", ""},
		{"NUL", "a\x00@example.com", ""},
		{"tab inside", "a\tb@example.com", ""},
		{"other control", "a\x01@example.com", ""},
		{"space inside", "a b@example.com", ""},
		{"comma list", "a@example.com,b@example.com", ""},
		{"semicolon list", "a@example.com;b@example.com", ""},
		{"over the limit", "a" + maxLocal + suffix, ""},
		{"domain without dot", "reader@localhost", ""},
		{"label starts with hyphen", "reader@-example.com", ""},
		{"label ends with hyphen", "reader@example-.com", ""},
		{"tld ends with hyphen", "reader@example.co-", ""},
		{"empty label", "reader@example..com", ""},
		{"leading dot in domain", "reader@.example.com", ""},
		{"trailing dot in domain", "reader@example.com.", ""},
		{"label over 63", "reader@" + strings.Repeat("a", 64) + ".com", ""},
		{"underscore in domain", "reader@ex_ample.com", ""},
		{"domain literal", "reader@[192.0.2.1]", ""},
		{"invalid UTF-8", "reader@ex\xffample.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := newsletter.NormalizeEmail(tt.in)
			if tt.want == "" {
				checkCode(t, err, newsletter.EINVALID)
				if got != "" {
					t.Errorf("address with error: got %q, want \"\"", got)
				}
				return
			}
			checkCode(t, err, "")
			if got != tt.want {
				t.Errorf("NormalizeEmail(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEmailKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"reader@example.com", "reader@example.com"},
		{"Reader.Name@Example.COM", "reader.name@example.com"},
		{"JOSÉ@Bücher.de", "josé@bücher.de"},
	}
	for _, tt := range tests {
		if got := newsletter.EmailKey(tt.in); got != tt.want {
			t.Errorf("EmailKey(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}

	// Addresses that differ only in case share a key but keep their own
	// normalised form.
	a, err := newsletter.NormalizeEmail("Reader@EXAMPLE.com")
	checkCode(t, err, "")
	b, err := newsletter.NormalizeEmail("reader@example.COM")
	checkCode(t, err, "")
	if a == b {
		t.Errorf("normalised addresses: got both %q, want the local part's case kept", a)
	}
	if ka, kb := newsletter.EmailKey(a), newsletter.EmailKey(b); ka != kb {
		t.Errorf("EmailKey: got %q and %q, want equal keys", ka, kb)
	}
}

func TestParseFrequency(t *testing.T) {
	tests := []struct {
		in   string
		want newsletter.Frequency
		code string
	}{
		{"", newsletter.Daily, ""},
		{"  ", newsletter.Daily, ""},
		{"daily", newsletter.Daily, ""},
		{"DAILY", newsletter.Daily, ""},
		{" Weekly ", newsletter.Weekly, ""},
		{"weekly", newsletter.Weekly, ""},
		{"monthly", "", newsletter.EINVALID},
		{"day", "", newsletter.EINVALID},
		{"daily weekly", "", newsletter.EINVALID},
	}
	for _, tt := range tests {
		got, err := newsletter.ParseFrequency(tt.in)
		if c := newsletter.ErrorCode(err); c != tt.code {
			t.Errorf("ParseFrequency(%q) error code: got %q, want %q", tt.in, c, tt.code)
		}
		if got != tt.want {
			t.Errorf("ParseFrequency(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, f := range newsletter.Frequencies {
		if got, err := newsletter.ParseFrequency(string(f)); err != nil || got != f {
			t.Errorf("ParseFrequency(%q): got %q, %v, want %q, nil", f, got, err, f)
		}
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want newsletter.Format
		code string
	}{
		{"", newsletter.FormatFull, ""},
		{"full", newsletter.FormatFull, ""},
		{"LITE", newsletter.FormatLite, ""},
		{" Text ", newsletter.FormatText, ""},
		{"html", "", newsletter.EINVALID},
		{"plain", "", newsletter.EINVALID},
	}
	for _, tt := range tests {
		got, err := newsletter.ParseFormat(tt.in)
		if c := newsletter.ErrorCode(err); c != tt.code {
			t.Errorf("ParseFormat(%q) error code: got %q, want %q", tt.in, c, tt.code)
		}
		if got != tt.want {
			t.Errorf("ParseFormat(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, f := range newsletter.Formats {
		if got, err := newsletter.ParseFormat(string(f)); err != nil || got != f {
			t.Errorf("ParseFormat(%q): got %q, %v, want %q, nil", f, got, err, f)
		}
	}
}

func TestSubscriberStatusValid(t *testing.T) {
	for _, s := range []newsletter.SubscriberStatus{
		newsletter.StatusPending, newsletter.StatusConfirmed, newsletter.StatusUnsubscribed,
		newsletter.StatusBounced, newsletter.StatusComplained,
	} {
		if !s.Valid() {
			t.Errorf("%q.Valid(): got false, want true", s)
		}
	}
	for _, s := range []newsletter.SubscriberStatus{"", "active", "Confirmed"} {
		if s.Valid() {
			t.Errorf("%q.Valid(): got true, want false", s)
		}
	}
}

func TestSubscriberReceives(t *testing.T) {
	confirmed := func(f newsletter.Frequency, sections ...string) *newsletter.Subscriber {
		return &newsletter.Subscriber{Status: newsletter.StatusConfirmed, Frequency: f, Sections: sections}
	}
	tests := []struct {
		name     string
		sub      *newsletter.Subscriber
		freq     newsletter.Frequency
		sections []string
		want     bool
	}{
		{"confirmed, all sections", confirmed(newsletter.Daily), newsletter.Daily, []string{"sport"}, true},
		{"confirmed, all sections, digest without sections", confirmed(newsletter.Daily), newsletter.Daily, nil, true},
		{"other frequency", confirmed(newsletter.Weekly), newsletter.Daily, []string{"sport"}, false},
		{"sections intersect", confirmed(newsletter.Daily, "news", "sport"), newsletter.Daily, []string{"culture", "sport"}, true},
		{"sections disjoint", confirmed(newsletter.Daily, "news", "sport"), newsletter.Daily, []string{"culture", "opinion"}, false},
		{"follows sections, digest without sections", confirmed(newsletter.Weekly, "news"), newsletter.Weekly, nil, false},
		{"pending", &newsletter.Subscriber{Status: newsletter.StatusPending, Frequency: newsletter.Daily}, newsletter.Daily, []string{"news"}, false},
		{"unsubscribed", &newsletter.Subscriber{Status: newsletter.StatusUnsubscribed, Frequency: newsletter.Daily}, newsletter.Daily, []string{"news"}, false},
		{"bounced", &newsletter.Subscriber{Status: newsletter.StatusBounced, Frequency: newsletter.Daily}, newsletter.Daily, []string{"news"}, false},
		{"complained", &newsletter.Subscriber{Status: newsletter.StatusComplained, Frequency: newsletter.Daily}, newsletter.Daily, []string{"news"}, false},
	}
	for _, tt := range tests {
		if got := tt.sub.Receives(tt.freq, tt.sections); got != tt.want {
			t.Errorf("%s: Receives(%q, %q): got %v, want %v", tt.name, tt.freq, tt.sections, got, tt.want)
		}
	}
}

func TestSubscriberSuppressed(t *testing.T) {
	suppressed := []newsletter.SubscriberStatus{newsletter.StatusBounced, newsletter.StatusComplained}
	for _, s := range []newsletter.SubscriberStatus{
		newsletter.StatusPending, newsletter.StatusConfirmed, newsletter.StatusUnsubscribed,
		newsletter.StatusBounced, newsletter.StatusComplained,
	} {
		sub := &newsletter.Subscriber{Status: s}
		if got, want := sub.Suppressed(), slices.Contains(suppressed, s); got != want {
			t.Errorf("Suppressed() with status %q: got %v, want %v", s, got, want)
		}
	}
}

func TestNormalizeEmailLengthAfterLowerCase(t *testing.T) {
	// U+023A lower-cases to U+2C65, which takes one more byte in UTF-8, so
	// an address can grow when its domain is lower-cased. The result must
	// still be within the limit, so that it normalises again.
	label := strings.Repeat("\u023a", 21) // 42 bytes; 63 once lower-cased
	in := strings.Repeat("a", 130) + "@" + label + "." + label + ".com"
	if len(in) > newsletter.MaxEmailLength {
		t.Fatalf("test input: got %d bytes, want at most %d", len(in), newsletter.MaxEmailLength)
	}
	got, err := newsletter.NormalizeEmail(in)
	if err != nil {
		checkCode(t, err, newsletter.EINVALID)
		return
	}
	if len(got) > newsletter.MaxEmailLength {
		t.Errorf("normalised length: got %d, want at most %d", len(got), newsletter.MaxEmailLength)
	}
	if again, err := newsletter.NormalizeEmail(got); err != nil || again != got {
		t.Errorf("NormalizeEmail of its own output: got %q, %v, want %q, nil", again, err, got)
	}
}
