package settings

import (
	"bytes"
	"maps"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/render"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// TestDigestHeadersResistInjection builds real digest emails from settings
// whose site name, sender name and article titles hold CR, LF, commas,
// quotes and non-ASCII text, and checks that every header parses, that no
// header was added, and that the subject and sender come back decoded.
func TestDigestHeadersResistInjection(t *testing.T) {
	key, err := token.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := token.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, siteName, from, subject string
		wantFrom                      string // the From address after decoding
	}{
		{"non-ASCII site", "Le Quotidien — Été 🗞", "", "", "news@example.com"},
		{"CRLF in site name", "Ledger\r\nBcc: victim@example.com", "", "", "news@example.com"},
		{"LF in site name", "Ledger\nSubject: free money", "", "", "news@example.com"},
		{"CR in digest subject", "Ledger", "", "Storm\rBcc: victim@example.com", "news@example.com"},
		{"quoted sender with comma", "Ledger", `"Ledger, The \"Daily\"" <desk@ledger.example>`, "", "desk@ledger.example"},
		{"non-ASCII sender with comma", "Ledger", `"Été, le journal" <desk@ledger.example>`, "Été\r\n\tBcc: x@example.com", "desk@ledger.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Settings{SiteName: tc.siteName, BaseURL: "https://news.ledger.example", From: tc.from, Timezone: "UTC", Sections: "News"}
			if err := s.Check(); err != nil {
				t.Fatalf("Check: %v", err)
			}
			r, err := render.New(s.Site())
			if err != nil {
				t.Fatal(err)
			}
			engine := delivery.New(nil, signer, r, nil, nil, delivery.Config{Letterhead: s.Letterhead(), Now: func() time.Time { return at }})
			u := "https://news.ledger.example/storm/"
			d := &newsletter.Digest{
				ID: "daily-2026-11-26", Frequency: newsletter.Daily, Period: "2026-11-26", Subject: tc.subject,
				Articles: []newsletter.Article{{
					ID: newsletter.ArticleID(u), URL: u, Title: "Storm\r\nBcc: victim@example.com — Été",
					Summary: "<p>Wind\r\nBcc: x@example.com</p>", Sections: []string{"news"}, PublishedAt: at,
				}},
				CreatedAt: at,
			}
			ed, err := engine.Edition(d, render.Variant{})
			if err != nil {
				t.Fatalf("Edition: %v", err)
			}
			m := engine.Message(d, ed, "reader@example.com", "reader-1", engine.Links("reader-1"))
			raw, err := m.Bytes()
			if err != nil {
				t.Fatalf("Bytes: %v", err)
			}
			head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
			msg, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("ReadMessage: %v\n%s", err, head)
			}
			want := []string{
				"Content-Type", "Date", "From", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post",
				"Message-Id", "Mime-Version", "Precedence", "Subject", "To",
			}
			if got := slices.Sorted(maps.Keys(msg.Header)); !slices.Equal(got, want) {
				t.Fatalf("header keys: got %q, want %q\n%s", got, want, head)
			}
			for k, v := range msg.Header {
				if len(v) != 1 {
					t.Errorf("header %s appears %d times\n%s", k, len(v), head)
				}
			}
			for _, line := range strings.Split(string(head), "\r\n") {
				if strings.ContainsAny(line, "\r\n") || strings.IndexFunc(line, func(r rune) bool { return r >= 0x80 }) >= 0 {
					t.Errorf("header line %q holds a raw CR, LF or non-ASCII byte", line)
				}
			}
			var dec mime.WordDecoder
			subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
			if err != nil {
				t.Fatalf("decode subject %q: %v", msg.Header.Get("Subject"), err)
			}
			if strings.ContainsAny(subject, "\r\n") || subject != m.SubjectLine() {
				t.Errorf("subject: got %q, want %q on one line", subject, m.SubjectLine())
			}
			if name := strings.Fields(strings.ReplaceAll(strings.ReplaceAll(tc.siteName, "\r", " "), "\n", " ")); tc.subject == "" && !strings.HasPrefix(subject, strings.Join(name, " ")) {
				t.Errorf("subject %q does not start with the site name %q", subject, tc.siteName)
			}
			from, err := mail.ParseAddress(msg.Header.Get("From"))
			if err != nil {
				t.Fatalf("From %q: %v", msg.Header.Get("From"), err)
			}
			if from.Address != tc.wantFrom {
				t.Errorf("From address: got %q, want %q", from.Address, tc.wantFrom)
			}
			if to := msg.Header.Get("To"); to != "<reader@example.com>" && to != "reader@example.com" {
				t.Errorf("To: got %q", to)
			}
		})
	}
}
