package eml_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/eml"
)

var testDate = time.Date(2026, 11, 26, 7, 30, 15, 0, time.FixedZone("WAT", 3600))

func testMessage() *eml.Message {
	return &eml.Message{
		From:      "The Daily Ledger <news@ledger.example>",
		To:        "reader@example.com",
		ReplyTo:   "editors@ledger.example",
		Subject:   "The Daily Ledger: Thursday 26 November 2026",
		MessageID: "<daily-2026-11-26.s1@ledger.example>",
		Date:      testDate,
		Headers: []eml.Header{
			{Name: "List-Unsubscribe", Value: "<https://ledger.example/u/TOKEN>, <mailto:unsubscribe@ledger.example?subject=TOKEN>"},
			{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
			{Name: "List-Id", Value: "The Daily Ledger <daily.ledger.example>"},
		},
		Text: []byte("Hello reader,\r\n\r\nToday's stories.\r\n"), // canonical CRLF: see TestBytesLineBreaks
		HTML: []byte("<p>Hello reader,</p><p>Today's <b>stories</b>.</p>"),
		Tags: map[string]string{"digest": "daily-2026-11-26", "subscriber": "s1"},
	}
}

// mustParse builds m's bytes and parses them back with net/mail.
func mustParse(tb testing.TB, m *eml.Message) (*mail.Message, []byte) {
	tb.Helper()
	raw, err := m.Bytes()
	if err != nil {
		tb.Fatalf("Bytes: %v", err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		tb.Fatalf("mail.ReadMessage: %v\n%s", err, raw)
	}
	return msg, raw
}

// readQP reads a quoted-printable body, failing on malformed encoding.
func readQP(tb testing.TB, r io.Reader) []byte {
	tb.Helper()
	b, err := io.ReadAll(quotedprintable.NewReader(r))
	if err != nil {
		tb.Fatalf("decode quoted-printable: %v", err)
	}
	return b
}

func mediaType(tb testing.TB, header string) (string, map[string]string) {
	tb.Helper()
	mt, params, err := mime.ParseMediaType(header)
	if err != nil {
		tb.Fatalf("ParseMediaType(%q): %v", header, err)
	}
	return mt, params
}

// wantPart checks the next raw part of r: its media type, charset and
// transfer encoding, and that its body decodes to want.
func wantPart(tb testing.TB, r *multipart.Reader, wantType string, want []byte) {
	tb.Helper()
	p, err := r.NextRawPart()
	if err != nil {
		tb.Fatalf("next part (want %s): %v", wantType, err)
	}
	mt, params := mediaType(tb, p.Header.Get("Content-Type"))
	if mt != wantType || !strings.EqualFold(params["charset"], "utf-8") {
		tb.Errorf("part Content-Type: got %s; charset=%s, want %s; charset=UTF-8", mt, params["charset"], wantType)
	}
	if got := p.Header.Get("Content-Transfer-Encoding"); got != "quoted-printable" {
		tb.Errorf("%s part Content-Transfer-Encoding: got %q, want quoted-printable", wantType, got)
	}
	if got := readQP(tb, p); !bytes.Equal(got, want) {
		tb.Errorf("%s body: got %q, want %q", wantType, got, want)
	}
}

func TestBytesMultipartAlternative(t *testing.T) {
	m := testMessage()
	msg, _ := mustParse(t, m)
	mt, params := mediaType(t, msg.Header.Get("Content-Type"))
	if mt != "multipart/alternative" {
		t.Fatalf("Content-Type: got %q, want multipart/alternative", mt)
	}
	if params["boundary"] == "" {
		t.Fatalf("Content-Type: got no boundary, want one")
	}
	if got := msg.Header.Get("MIME-Version"); got != "1.0" {
		t.Errorf("MIME-Version: got %q, want %q", got, "1.0")
	}
	r := multipart.NewReader(msg.Body, params["boundary"])
	wantPart(t, r, "text/plain", m.Text)
	wantPart(t, r, "text/html", m.HTML)
	if p, err := r.NextRawPart(); !errors.Is(err, io.EOF) {
		t.Errorf("after the HTML part: got part %v, err %v, want io.EOF", p, err)
	}
}

func TestBytesTextOnly(t *testing.T) {
	m := testMessage()
	m.HTML = nil
	msg, _ := mustParse(t, m)
	mt, params := mediaType(t, msg.Header.Get("Content-Type"))
	if mt != "text/plain" || !strings.EqualFold(params["charset"], "utf-8") {
		t.Errorf("Content-Type: got %s; charset=%s, want text/plain; charset=UTF-8", mt, params["charset"])
	}
	if got := msg.Header.Get("Content-Transfer-Encoding"); got != "quoted-printable" {
		t.Errorf("Content-Transfer-Encoding: got %q, want quoted-printable", got)
	}
	if got := readQP(t, msg.Body); !bytes.Equal(got, m.Text) {
		t.Errorf("body: got %q, want %q", got, m.Text)
	}
}

func TestBytesHeaders(t *testing.T) {
	m := testMessage()
	msg, raw := mustParse(t, m)
	want := map[string]string{
		"Subject":               m.Subject,
		"Message-Id":            m.MessageID,
		"List-Unsubscribe":      m.Headers[0].Value,
		"List-Unsubscribe-Post": m.Headers[1].Value,
		"List-Id":               m.Headers[2].Value,
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got := msg.Header[k]; len(got) != 1 || got[0] != want[k] {
			t.Errorf("header %s: got %q, want [%q]", k, got, want[k])
		}
	}
	addresses := []struct{ header, name, address string }{
		{"From", "The Daily Ledger", "news@ledger.example"},
		{"To", "", m.To},
		{"Reply-To", "", m.ReplyTo},
	}
	for _, a := range addresses {
		list, err := msg.Header.AddressList(a.header)
		if err != nil || len(list) != 1 {
			t.Errorf("%s: got %v, %v, want one address", a.header, list, err)
			continue
		}
		if list[0].Name != a.name || list[0].Address != a.address {
			t.Errorf("%s: got %q <%s>, want %q <%s>", a.header, list[0].Name, list[0].Address, a.name, a.address)
		}
	}
	date, err := msg.Header.Date()
	if err != nil {
		t.Fatalf("Date: %v", err)
	}
	if !date.Equal(m.Date) {
		t.Errorf("Date: got %v, want %v", date, m.Date)
	}
	if _, off := date.Zone(); off != 3600 {
		t.Errorf("Date zone offset: got %d, want 3600", off)
	}
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 {
			t.Errorf("line %d: got %d bytes, want at most 998", i+1, len(line))
		}
	}
	// Tags are for the provider, never headers of the message.
	for k := range msg.Header {
		if strings.Contains(strings.ToLower(k), "tag") {
			t.Errorf("header %s: got a tag header, want none", k)
		}
	}
}

func TestBytesWithoutOptionalFields(t *testing.T) {
	m := testMessage()
	m.ReplyTo, m.MessageID, m.Date, m.Headers = "", "", time.Time{}, nil
	before := time.Now().Truncate(time.Second)
	msg, _ := mustParse(t, m)
	after := time.Now()

	if got, ok := msg.Header["Reply-To"]; ok {
		t.Errorf("Reply-To: got %q, want no header", got)
	}
	id := msg.Header.Get("Message-Id")
	if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, ">") || !strings.Contains(id, "@") {
		t.Errorf("generated Message-Id: got %q, want <…@…>", id)
	}
	other, _ := mustParse(t, m)
	if id2 := other.Header.Get("Message-Id"); id2 == id {
		t.Errorf("generated Message-Ids of two messages: got %q twice, want different", id)
	}
	date, err := msg.Header.Date()
	if err != nil {
		t.Fatalf("Date: %v", err)
	}
	if date.Before(before) || date.After(after) {
		t.Errorf("Date of a message without one: got %v, want between %v and %v", date, before, after)
	}
}

func TestBytesNonASCII(t *testing.T) {
	m := testMessage()
	m.From = "Le Grand Quotidien <news@ledger.example>"
	m.Subject = "Élections : « résultats » — 東京 & 🗞 = news?"
	m.Headers = []eml.Header{{Name: "List-Id", Value: "Über Nachrichten <news.ledger.example>"}}
	msg, raw := mustParse(t, m)
	for i, b := range raw {
		if b >= 0x80 {
			t.Fatalf("byte %d: got %#x, want 7-bit ASCII throughout", i, b)
		}
	}

	var dec mime.WordDecoder
	rawSubject := msg.Header.Get("Subject")
	if !strings.Contains(strings.ToLower(rawSubject), "=?utf-8?q?") {
		t.Errorf("Subject: got %q, want Q-encoded words", rawSubject)
	}
	subject, err := dec.DecodeHeader(rawSubject)
	if err != nil || subject != m.Subject {
		t.Errorf("decoded Subject: got %q, %v, want %q, nil", subject, err, m.Subject)
	}
	listID, err := dec.DecodeHeader(msg.Header.Get("List-Id"))
	if err != nil || listID != m.Headers[0].Value {
		t.Errorf("decoded List-Id: got %q, %v, want %q, nil", listID, err, m.Headers[0].Value)
	}
}

func TestBytesLongSubject(t *testing.T) {
	m := testMessage()
	m.Subject = strings.Repeat("Überraschung ", 10)
	msg, _ := mustParse(t, m)
	var dec mime.WordDecoder
	got, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || got != m.Subject {
		t.Errorf("decoded Subject: got %q, %v, want %q, nil", got, err, m.Subject)
	}
}

func TestBytesQuotedPrintableRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"long line with equals signs", strings.Repeat("a=b ", 60) + "=3D= = =20" + strings.Repeat("=", 100)},
		{"long non-ASCII line", strings.Repeat("é", 200) + strings.Repeat("🗞東京", 50)},
		{"long line of one character", strings.Repeat("x", 1000) + "="},
		{"CRLF lines", "line ending in equals=\r\ntrailing space   \r\ntab\t\r\n\r\n.\r\nFrom the start\r\n=3D not an escape\r\n"},
		{"soft break lookalike", "ends with =\r\n=\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMessage()
			m.Text = []byte(tt.body)
			m.HTML = []byte(`<p style="margin:0">` + tt.body + `</p>`)
			msg, raw := mustParse(t, m)
			for i, line := range bytes.Split(raw, []byte("\r\n")) {
				if len(line) > 998 {
					t.Errorf("line %d: got %d bytes, want at most 998", i+1, len(line))
				}
			}
			_, params := mediaType(t, msg.Header.Get("Content-Type"))
			r := multipart.NewReader(msg.Body, params["boundary"])
			wantPart(t, r, "text/plain", m.Text)
			wantPart(t, r, "text/html", m.HTML)
		})
	}
}

func TestBytesLineBreaks(t *testing.T) {
	// Text parts travel in canonical form: bare LF line breaks become CRLF
	// and nothing else changes.
	m := testMessage()
	m.HTML = nil
	m.Text = []byte("one\ntwo = " + strings.Repeat("ü", 100) + "\n\nthree\r\n")
	msg, _ := mustParse(t, m)
	want := []byte("one\r\ntwo = " + strings.Repeat("ü", 100) + "\r\n\r\nthree\r\n")
	if got := readQP(t, msg.Body); !bytes.Equal(got, want) {
		t.Errorf("body: got %q, want %q", got, want)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*eml.Message)
		ok     bool
	}{
		{"valid", func(*eml.Message) {}, true},
		{"valid without HTML", func(m *eml.Message) { m.HTML = nil }, true},
		{"valid without reply-to", func(m *eml.Message) { m.ReplyTo = "" }, true},
		{"valid bare from", func(m *eml.Message) { m.From = "news@ledger.example" }, true},
		{"CR LF in subject", func(m *eml.Message) { m.Subject = "Hi\r\nBcc: victim@example.com" }, false},
		{"LF in subject", func(m *eml.Message) { m.Subject = "Hi\nBcc: victim@example.com" }, false},
		{"CR in subject", func(m *eml.Message) { m.Subject = "Hi\rthere" }, false},
		{"LF in header value", func(m *eml.Message) { m.Headers[0].Value = "<https://x.example>\nBcc: victim@example.com" }, false},
		{"CR in last header value", func(m *eml.Message) { m.Headers[2].Value = "x\r" }, false},
		{"LF in message ID", func(m *eml.Message) { m.MessageID = "<a@b>\nBcc: victim@example.com" }, false},
		{"CR in message ID", func(m *eml.Message) { m.MessageID = "<a@b>\r" }, false},
		{"LF in from", func(m *eml.Message) { m.From = "News\n <news@ledger.example>" }, false},
		{"CR LF in from name", func(m *eml.Message) { m.From = "\"News\r\nBcc: v@example.com\" <news@ledger.example>" }, false},
		{"LF in to", func(m *eml.Message) { m.To = "reader@example.com\n" }, false},
		{"LF in reply-to", func(m *eml.Message) { m.ReplyTo = "editors@ledger.example\nBcc: v@example.com" }, false},
		{"empty from", func(m *eml.Message) { m.From = "" }, false},
		{"bad from", func(m *eml.Message) { m.From = "The Daily Ledger" }, false},
		{"two from addresses", func(m *eml.Message) { m.From = "a@ledger.example, b@ledger.example" }, false},
		{"empty to", func(m *eml.Message) { m.To = "" }, false},
		{"bad to", func(m *eml.Message) { m.To = "reader@" }, false},
		{"two to addresses", func(m *eml.Message) { m.To = "a@example.com, b@example.com" }, false},
		{"bad reply-to", func(m *eml.Message) { m.ReplyTo = "not an address" }, false},
		{"no text part", func(m *eml.Message) { m.Text = nil }, false},
		{"empty text part", func(m *eml.Message) { m.Text = []byte{} }, false},
		{"empty header name", func(m *eml.Message) { m.Headers[0].Name = "" }, false},
		{"colon in header name", func(m *eml.Message) { m.Headers[0].Name = "X-A:B" }, false},
		{"space in header name", func(m *eml.Message) { m.Headers[0].Name = "X A" }, false},
		{"tab in header name", func(m *eml.Message) { m.Headers[0].Name = "X\tA" }, false},
		{"CR LF in header name", func(m *eml.Message) { m.Headers[0].Name = "X-A\r\nBcc" }, false},
		{"NUL in header name", func(m *eml.Message) { m.Headers[0].Name = "X-A\x00" }, false},
		{"DEL in header name", func(m *eml.Message) { m.Headers[0].Name = "X-A\x7f" }, false},
		{"non-ASCII header name", func(m *eml.Message) { m.Headers[0].Name = "X-Über" }, false},
		{"extra Bcc header", func(m *eml.Message) { m.Headers[0].Name = "Bcc" }, false},
		{"extra Cc header", func(m *eml.Message) { m.Headers[0].Name = "cc" }, false},
		{"extra To header", func(m *eml.Message) { m.Headers[0].Name = "TO" }, false},
		{"extra From header", func(m *eml.Message) { m.Headers[0].Name = "From" }, false},
		{"extra Reply-To header", func(m *eml.Message) { m.Headers[0].Name = "reply-to" }, false},
		{"extra Subject header", func(m *eml.Message) { m.Headers[0].Name = "Subject" }, false},
		{"extra Message-ID header", func(m *eml.Message) { m.Headers[0].Name = "Message-ID" }, false},
		{"extra Date header", func(m *eml.Message) { m.Headers[0].Name = "Date" }, false},
		{"extra MIME-Version header", func(m *eml.Message) { m.Headers[0].Name = "MIME-Version" }, false},
		{"extra Content-Type header", func(m *eml.Message) { m.Headers[0].Name = "Content-Type" }, false},
		{"extra Content-Transfer-Encoding header", func(m *eml.Message) { m.Headers[0].Name = "Content-Transfer-Encoding" }, false},
		{"header name with punctuation", func(m *eml.Message) { m.Headers[0].Name = "X-Ledger.Id_2!" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMessage()
			tt.change(m)
			err := m.Validate()
			if got := err == nil; got != tt.ok {
				t.Fatalf("Validate: got %v, want ok=%v", err, tt.ok)
			}
			raw, err := m.Bytes()
			if got := err == nil; got != tt.ok {
				t.Fatalf("Bytes: got %v, want ok=%v", err, tt.ok)
			}
			if tt.ok {
				if _, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(raw))); err != nil {
					t.Errorf("mail.ReadMessage: got %v, want nil", err)
				}
			} else if raw != nil {
				t.Errorf("Bytes with an error: got %d bytes, want nil", len(raw))
			}
		})
	}
}
