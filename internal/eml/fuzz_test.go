package eml_test

import (
	"bytes"
	"maps"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/eml"
)

func FuzzMessageHeaders(f *testing.F) {
	for _, seed := range [][2]string{
		{"The Daily Ledger: Thursday 26 November 2026", "<https://ledger.example/u/TOKEN>"},
		{"Élections : « résultats » 🗞", "Über <news.ledger.example>"},
		{"Hi\r\nBcc: victim@example.com", "x"},
		{"Hi", "x\nBcc: victim@example.com"},
		{"Hi\rthere", "x\r"},
		{"", ""},
		{" ", "\t"},
		{"=?utf-8?q?Bcc:_x?=", "a: b"},
		{"\x00\x7f\u2028\u0085", "\xff\xfe"},
		{strings.Repeat("é", 300), strings.Repeat("a=b ", 300)},
		{"Subject: x", "To: y@example.com"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, subject, value string) {
		m := &eml.Message{
			From:      "The Daily Ledger <news@ledger.example>",
			To:        "reader@example.com",
			Subject:   subject,
			MessageID: "<fuzz@ledger.example>",
			Date:      time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC),
			Headers: []eml.Header{
				{Name: "X-Fuzz", Value: value},
				{Name: "List-Id", Value: "<daily.ledger.example>"},
			},
			Text: []byte("Hello reader.\r\n"),
		}
		raw, err := m.Bytes()
		if injected := strings.ContainsAny(subject+value, "\r\n"); injected || err != nil {
			if !injected || err == nil {
				t.Fatalf("Bytes(subject %q, value %q): got error %v, want an error exactly when a value holds CR or LF", subject, value, err)
			}
			return
		}
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("mail.ReadMessage: %v\n%s", err, raw)
		}
		want := []string{
			"Content-Transfer-Encoding", "Content-Type", "Date", "From", "List-Id",
			"Message-Id", "Mime-Version", "To", "X-Fuzz",
		}
		if subject != "" {
			want = append(want, "Subject")
			slices.Sort(want)
		}
		if got := slices.Sorted(maps.Keys(msg.Header)); !slices.Equal(got, want) {
			t.Fatalf("header keys: got %q, want %q\n%s", got, want, raw)
		}
		for _, k := range want {
			if n := len(msg.Header[k]); n != 1 {
				t.Fatalf("header %s: got %d lines, want 1\n%s", k, n, raw)
			}
		}
		if got := readQP(t, msg.Body); !bytes.Equal(got, m.Text) {
			t.Fatalf("body: got %q, want %q", got, m.Text)
		}
	})
}
