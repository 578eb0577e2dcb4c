package eml_test

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/eml"
)

// The placeholders render.Digest puts in an edition.
const (
	pUnsub = "BSxUNSUBSCRIBExURL"
	pPrefs = "BSxPREFERENCESxURL"
)

// edition returns the layout of a real edition (render's golden digest,
// 13 KB of HTML and 2 KB of text, with the placeholders put back), or its
// text-only variant.
func edition(tb testing.TB, textOnly bool) *eml.Layout {
	tb.Helper()
	text, err := os.ReadFile("testdata/edition.txt")
	if err != nil {
		tb.Fatal(err)
	}
	var htmlBody []byte
	if !textOnly {
		if htmlBody, err = os.ReadFile("testdata/edition.html"); err != nil {
			tb.Fatal(err)
		}
	}
	return mustLayout(tb, "The Daily Ledger: Thursday 26 November 2026", htmlBody, text)
}

func mustLayout(tb testing.TB, subject string, htmlBody, text []byte) *eml.Layout {
	tb.Helper()
	l, err := eml.NewLayout(subject, htmlBody, text, pUnsub, pPrefs)
	if err != nil {
		tb.Fatalf("NewLayout: %v", err)
	}
	return l
}

// reader returns the message the delivery engine sends one reader of l.
func reader(l *eml.Layout, i int, unsub, prefs string) *eml.Message {
	return &eml.Message{
		From:      "The Daily Ledger <news@ledger.example>",
		To:        fmt.Sprintf("reader%d@example.com", i),
		ReplyTo:   "editors@ledger.example",
		MessageID: fmt.Sprintf("<daily-2026-11-26.s%d@ledger.example>", i),
		Date:      testDate,
		Headers: []eml.Header{
			{Name: "List-Unsubscribe", Value: "<" + unsub + ">, <mailto:unsubscribe@ledger.example?subject=unsubscribe%20tok" + fmt.Sprint(i) + ">"},
			{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
			{Name: "List-Id", Value: "The Daily Ledger <daily.ledger.example>"},
			{Name: "Precedence", Value: "bulk"},
		},
		Layout: l,
		Values: []string{unsub, prefs},
	}
}

// slow is the message as it was built before layouts had a fast path:
// jordan-wright/email over the spliced bodies.
func slow(tb testing.TB, m *eml.Message) []byte {
	tb.Helper()
	s := *m
	s.Subject = m.SubjectLine()
	s.HTML, s.Text = m.Bodies()
	s.Layout, s.Values = nil, nil
	b, err := s.Bytes()
	if err != nil {
		tb.Fatalf("slow Bytes: %v", err)
	}
	return b
}

// fast returns m's Bytes, failing unless they came from the fast path.
func fast(tb testing.TB, m *eml.Message) []byte {
	tb.Helper()
	b, ok, err := m.FastBytes()
	if err != nil || !ok {
		tb.Fatalf("FastBytes: ok %v, err %v; want the fast path", ok, err)
	}
	bb, err := m.Bytes()
	if err != nil {
		tb.Fatalf("Bytes: %v", err)
	}
	if m.MessageID != "" && !m.Date.IsZero() && !bytes.Equal(bb, b) {
		// (Without either, each call makes its own.)
		tb.Fatalf("Bytes differs from the fast path")
	}
	return b
}

// parsed is a message reduced to what a reader's mail client sees.
type parsed struct {
	header map[string][]string // decoded; addresses normalised; no boundary
	parts  []part
}

type part struct {
	header map[string][]string
	body   []byte // decoded
}

func parseMessage(tb testing.TB, raw []byte) parsed {
	tb.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		tb.Fatalf("mail.ReadMessage: %v\n%s", err, raw)
	}
	var dec mime.WordDecoder
	p := parsed{header: map[string][]string{}}
	for k, vs := range msg.Header {
		for _, v := range vs {
			switch k {
			case "From", "To", "Reply-To":
				list, err := msg.Header.AddressList(k)
				if err != nil {
					tb.Fatalf("%s %q: %v", k, v, err)
				}
				v = fmt.Sprint(list)
			case "Content-Type":
				mt, params, err := mime.ParseMediaType(v)
				if err != nil {
					tb.Fatalf("Content-Type %q: %v", v, err)
				}
				delete(params, "boundary")
				v = mime.FormatMediaType(mt, params)
			default:
				if v, err = dec.DecodeHeader(v); err != nil {
					tb.Fatalf("%s: %v", k, err)
				}
			}
			p.header[k] = append(p.header[k], v)
		}
	}
	mt, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if mt != "multipart/alternative" {
		p.parts = []part{{body: readQP(tb, msg.Body)}}
		return p
	}
	r := multipart.NewReader(msg.Body, params["boundary"])
	for {
		rp, err := r.NextRawPart()
		if err == io.EOF {
			return p
		}
		if err != nil {
			tb.Fatalf("multipart: %v", err)
		}
		p.parts = append(p.parts, part{header: rp.Header, body: readQP(tb, rp)})
	}
}

// checkLines checks that raw is 7-bit, that every line ends in CRLF and
// that no line is longer than 78 octets, except a header line that holds a
// single word too long to fold.
func checkLines(tb testing.TB, raw []byte) {
	tb.Helper()
	if !bytes.HasSuffix(raw, []byte("\r\n")) && !bytes.Contains(raw, []byte("\r\n\r\n")) {
		tb.Errorf("message has no end of header")
	}
	inHeader := true
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if bytes.ContainsAny(line, "\r\n") {
			tb.Fatalf("line %d: a bare CR or LF in %q", i+1, line)
		}
		for _, b := range line {
			if b >= 0x80 {
				tb.Fatalf("line %d: byte %#x, want 7-bit", i+1, b)
			}
		}
		if len(line) == 0 {
			inHeader = false
		}
		if len(line) <= 78 {
			continue
		}
		if !inHeader || len(line) > 998 {
			tb.Errorf("line %d: %d octets, want at most 78: %q", i+1, len(line), line)
			continue
		}
		// A header line may run long only around one word: after the
		// field name or the folding space.
		rest := bytes.TrimLeft(line, " \t")
		if len(rest) == len(line) {
			_, rest, _ = bytes.Cut(line, []byte(": "))
		}
		if bytes.ContainsAny(rest, " \t") {
			tb.Errorf("header line %d: %d octets, and it could have been folded: %q", i+1, len(line), line)
		}
	}
}

// same checks that the fast bytes say what the slow ones say: the same
// header fields once decoded, the same parts with the same decoded bodies,
// and in fact the same body bytes, boundary aside.
func same(tb testing.TB, fastRaw, slowRaw []byte, boundary string) {
	tb.Helper()
	f, s := parseMessage(tb, fastRaw), parseMessage(tb, slowRaw)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range f.header {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		if !slices.Equal(f.header[k], s.header[k]) {
			tb.Errorf("header %s: fast %q, slow %q", k, f.header[k], s.header[k])
		}
	}
	if len(f.header) != len(s.header) {
		tb.Errorf("header fields: fast has %d, slow %d", len(f.header), len(s.header))
	}
	if len(f.parts) != len(s.parts) {
		tb.Fatalf("parts: fast %d, slow %d", len(f.parts), len(s.parts))
	}
	for i := range f.parts {
		if fmt.Sprint(f.parts[i].header) != fmt.Sprint(s.parts[i].header) {
			tb.Errorf("part %d header: fast %v, slow %v", i, f.parts[i].header, s.parts[i].header)
		}
		if !bytes.Equal(f.parts[i].body, s.parts[i].body) {
			tb.Errorf("part %d body differs:\nfast %q\nslow %q", i, f.parts[i].body, s.parts[i].body)
		}
	}
	_, fb, _ := bytes.Cut(fastRaw, []byte("\r\n\r\n"))
	_, sb, _ := bytes.Cut(slowRaw, []byte("\r\n\r\n"))
	if boundary != "" {
		msg, _ := mail.ReadMessage(bytes.NewReader(slowRaw))
		_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
		sb = bytes.ReplaceAll(sb, []byte(params["boundary"]), []byte(boundary))
	}
	if !bytes.Equal(fb, sb) {
		tb.Errorf("body bytes differ from jordan-wright/email's")
	}
}

// values returns n readers' link pairs of every sort: empty, short, long
// (up to 300 octets), with &, quotes, angle brackets, equals signs, spaces
// and tabs, non-ASCII, trailing spaces.
func values(n int, seed uint64) [][2]string {
	r := rand.New(rand.NewPCG(seed, 1))
	pieces := []string{"a", "Z", "0", "-", "_", ".", "~", "/", "?", "&", "=", "%2F", "%20", "+", "#", ":",
		"<", ">", "\"", "'", " ", "\t", "é", "東京", "🗞", "==", "&amp;", "=3D", "BSx"}
	one := func() string {
		switch r.IntN(8) {
		case 0:
			return ""
		case 1:
			return "https://ledger.example/unsubscribe?token=" + strings.Repeat("Ab9-_", r.IntN(60))
		}
		var b strings.Builder
		b.WriteString("https://ledger.example/p?")
		for range r.IntN(120) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		return b.String()
	}
	out := make([][2]string, n)
	for i := range out {
		out[i] = [2]string{one(), one()}
	}
	return out
}

// layouts returns layouts that put the placeholders where
// quoted-printable is hardest: at soft line breaks, after spaces, at the
// start and end of lines and of the body, side by side, among non-ASCII
// and equals signs, with LF and with CRLF line breaks.
func layouts(tb testing.TB) map[string]*eml.Layout {
	tb.Helper()
	ls := map[string]*eml.Layout{
		"edition":           edition(tb, false),
		"edition text-only": edition(tb, true),
	}
	lines := []string{
		pUnsub,
		strings.Repeat("x", 74) + pUnsub + " tail",
		strings.Repeat("x", 72) + "é" + pPrefs,
		strings.Repeat("y", 70) + "   " + pUnsub + "   ",
		"\t" + pUnsub + "\t",
		pUnsub + pPrefs,
		"=" + pUnsub + "=",
		`<a href="` + pUnsub + `">Unsubscribe</a> &nbsp;&middot;&nbsp; <a href="` + pPrefs + `" style="color:#1a1a1a;text-decoration:underline;">Update your preferences</a> &nbsp;&middot;&nbsp; ` + strings.Repeat("é", 40),
		"",
		"   ",
		". a line starting with a dot " + pPrefs,
		".",
		strings.Repeat("東京", 30),
		"no placeholder, but long: " + strings.Repeat("a=b ", 40),
		strings.Repeat(pUnsub+" ", 8),
	}
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 40 {
		var b strings.Builder
		nl := "\n"
		if i%3 == 0 {
			nl = "\r\n"
		}
		for range 1 + r.IntN(12) {
			b.WriteString(lines[r.IntN(len(lines))])
			b.WriteString(nl)
		}
		if i%4 == 1 {
			b.WriteString("last line without a break " + pPrefs)
		}
		if i%5 == 2 {
			b.WriteString(pUnsub + "  ")
		}
		body := b.String()
		if !strings.Contains(body, "BSx") {
			body += pUnsub
		}
		if i%2 == 0 {
			ls[fmt.Sprintf("random %d", i)] = mustLayout(tb, "Édition n°"+fmt.Sprint(i), []byte("<p>"+body+"</p>"), []byte(body))
		} else {
			ls[fmt.Sprintf("random %d text-only", i)] = mustLayout(tb, "", nil, []byte(body))
		}
	}
	return ls
}

func TestLayoutBytesMatchSlowPath(t *testing.T) {
	for name, l := range layouts(t) {
		t.Run(name, func(t *testing.T) {
			for i, v := range values(40, uint64(len(name))) {
				m := reader(l, i, v[0], v[1])
				if strings.ContainsAny(v[0]+v[1], "\r\n") {
					continue
				}
				f := fast(t, m)
				checkLines(t, f)
				same(t, f, slow(t, m), l.Boundary())
				if t.Failed() {
					t.Fatalf("reader %d, values %q:\n%s", i, v, f)
				}
			}
		})
	}
}

func FuzzLayoutValues(f *testing.F) {
	for _, v := range values(20, 3) {
		f.Add(v[0], v[1], false)
	}
	f.Add("", "", true)
	f.Add(strings.Repeat("=", 200), "\x00\x7f\xff", true)
	layout := mustLayout(f, "Fuzz", []byte("<p>"+strings.Repeat("x", 70)+pUnsub+" and "+pPrefs+"\n"+pPrefs+"</p>\n"), []byte(strings.Repeat("y", 74)+" "+pUnsub+"\r\n"+pPrefs))
	text := mustLayout(f, "", nil, []byte(pUnsub+"\n\t"+pPrefs+" \n"))
	f.Fuzz(func(t *testing.T, unsub, prefs string, textOnly bool) {
		l := layout
		if textOnly {
			l = text
		}
		m := reader(l, 1, unsub, prefs)
		m.Headers = m.Headers[1:] // the List-Unsubscribe field would refuse CR and LF
		b, err := m.Bytes()
		if err != nil {
			t.Fatalf("Bytes: %v", err)
		}
		if strings.ContainsAny(unsub+prefs, "\r\n") {
			// Left to the slow path, which normalises line breaks.
			if _, ok, _ := m.FastBytes(); ok {
				t.Fatalf("values with a line break took the fast path")
			}
			return
		}
		checkLines(t, b)
		same(t, b, slow(t, m), l.Boundary())
	})
}

func TestLayoutSlowPathCases(t *testing.T) {
	tests := []struct {
		name         string
		html, text   string
		unsub, prefs string
	}{
		{"lone CR in the layout", "<p>" + pUnsub + "</p>", "a\rb " + pUnsub, "https://x.example/u", "p"},
		{"line break in a value", "<p>" + pUnsub + "</p>", "a " + pUnsub, "https://x.example/u\r\nBcc: x", "p"},
		{"HTML made empty by its values", pUnsub, "text " + pPrefs, "", "p"},
		{"text made empty by its values", "<p>" + pUnsub + "</p>", pPrefs, "u", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := mustLayout(t, "Slow", []byte(tt.html), []byte(tt.text))
			m := reader(l, 1, tt.unsub, tt.prefs)
			m.Headers = m.Headers[1:]
			if _, ok, err := m.FastBytes(); ok || err != nil {
				t.Fatalf("FastBytes: ok %v, err %v; want the slow path", ok, err)
			}
			got, err := m.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			// jordan-wright/email sends the non-empty bodies, text first,
			// with line breaks made CRLF.
			var want [][]byte
			h, txt := m.Bodies()
			for _, b := range [][]byte{txt, h} {
				if len(b) > 0 {
					b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
					b = bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
					want = append(want, bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")))
				}
			}
			g := parseMessage(t, got)
			if len(g.parts) != len(want) {
				t.Fatalf("parts: got %d, want %d", len(g.parts), len(want))
			}
			for i := range g.parts {
				if !bytes.Equal(g.parts[i].body, want[i]) {
					t.Errorf("part %d: got %q, want %q", i, g.parts[i].body, want[i])
				}
			}
		})
	}
}

func TestLayoutHeaders(t *testing.T) {
	l := edition(t, false)
	long := "https://ledger.example/unsubscribe?token=" + strings.Repeat("Ab9-_", 20)
	m := reader(l, 7, long, "https://ledger.example/preferences?token=x")
	m.Headers = append(m.Headers, eml.Header{Name: "x-édition", Value: "Über « Nachrichten » " + strings.Repeat("東京 ", 20)})
	m.Headers[4].Name = "X-Edition"
	raw := fast(t, m)
	checkLines(t, raw)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"From":                  `"The Daily Ledger" <news@ledger.example>`,
		"To":                    "<reader7@example.com>",
		"Reply-To":              "<editors@ledger.example>",
		"Message-Id":            "<daily-2026-11-26.s7@ledger.example>",
		"Date":                  testDate.Format(time.RFC1123Z),
		"Mime-Version":          "1.0",
		"List-Unsubscribe":      m.Headers[0].Value,
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		"List-Id":               "The Daily Ledger <daily.ledger.example>",
		"Precedence":            "bulk",
	}
	for k, v := range want {
		if got := msg.Header[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s: got %q, want [%q]", k, got, v)
		}
	}
	var dec mime.WordDecoder
	if got, err := dec.DecodeHeader(msg.Header.Get("X-Edition")); err != nil || got != m.Headers[4].Value {
		t.Errorf("X-Edition: got %q, %v, want %q", got, err, m.Headers[4].Value)
	}
	if got, err := dec.DecodeHeader(msg.Header.Get("Subject")); err != nil || got != l.Subject {
		t.Errorf("Subject: got %q, %v, want %q", got, err, l.Subject)
	}

	// Without a Message-ID or a Date, both are made, as for any message.
	m.MessageID, m.Date = "", time.Time{}
	before := time.Now().Truncate(time.Second)
	msg, err = mail.ReadMessage(bytes.NewReader(fast(t, m)))
	if err != nil {
		t.Fatal(err)
	}
	if id := msg.Header.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@ledger.example>") {
		t.Errorf("generated Message-Id: got %q, want <…@ledger.example>", id)
	}
	if d, err := msg.Header.Date(); err != nil || d.Before(before) || d.After(time.Now()) {
		t.Errorf("Date of a message without one: got %v, %v", d, err)
	}
}

func TestLayoutValidate(t *testing.T) {
	l := edition(t, false)
	tests := []struct {
		name   string
		change func(*eml.Message)
	}{
		{"bad from", func(m *eml.Message) { m.From = "The Daily Ledger" }},
		{"LF in from", func(m *eml.Message) { m.From = "News\n <news@ledger.example>" }},
		{"bad reply-to", func(m *eml.Message) { m.ReplyTo = "not an address" }},
		{"bad to", func(m *eml.Message) { m.To = "reader@" }},
		{"LF in to", func(m *eml.Message) { m.To = "reader@example.com\n" }},
		{"two to addresses", func(m *eml.Message) { m.To = "a@example.com, b@example.com" }},
		{"one value", func(m *eml.Message) { m.Values = m.Values[:1] }},
		{"extra Bcc header", func(m *eml.Message) { m.Headers[0].Name = "Bcc" }},
		{"LF in header value", func(m *eml.Message) { m.Headers[0].Value = "x\nBcc: v@example.com" }},
		{"LF in message ID", func(m *eml.Message) { m.MessageID = "<a@b>\nBcc: v@example.com" }},
		{"unusable layout", func(m *eml.Message) { m.Layout = &eml.Layout{Text: []byte("x"), Placeholders: []string{"a-b"}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Send a valid message first so that the layout's caches hold
			// the valid sender.
			if _, err := reader(l, 1, "u", "p").Bytes(); err != nil {
				t.Fatal(err)
			}
			m := reader(l, 1, "u", "p")
			tt.change(m)
			if err := m.Validate(); err == nil {
				t.Errorf("Validate: got nil, want an error")
			}
			if b, err := m.AppendBytes([]byte("keep")); err == nil || string(b) != "keep" {
				t.Errorf("AppendBytes: got %q, %v; want dst unchanged and an error", b, err)
			}
			if _, _, err := m.Envelope(); err == nil {
				t.Errorf("Envelope: got nil, want an error")
			}
		})
	}
}

func TestEnvelope(t *testing.T) {
	l := edition(t, false)
	for _, m := range []*eml.Message{reader(l, 3, "u", "p"), testMessage()} {
		m.To = "Reader Three <reader3@example.com>"
		from, to, err := m.Envelope()
		if err != nil || from != "news@ledger.example" || to != "reader3@example.com" {
			t.Errorf("Envelope: got %q, %q, %v; want news@ledger.example, reader3@example.com", from, to, err)
		}
	}
}

func TestBodies(t *testing.T) {
	l := edition(t, false)
	unsub, prefs := "https://ledger.example/u?t=1&s=<2>", `https://ledger.example/p?t="3"&s='4'`
	m := reader(l, 1, unsub, prefs)
	h, txt := m.Bodies()
	wantH := strings.NewReplacer(pUnsub, html.EscapeString(unsub), pPrefs, html.EscapeString(prefs)).Replace(string(l.HTML))
	wantT := strings.NewReplacer(pUnsub, unsub, pPrefs, prefs).Replace(string(l.Text))
	if string(h) != wantH {
		t.Errorf("HTML body differs from a replacement of the placeholders")
	}
	if string(txt) != wantT {
		t.Errorf("text body: got %q, want %q", txt, wantT)
	}
	if n := testing.AllocsPerRun(100, func() { m.Bodies() }); n != 1 {
		t.Errorf("Bodies: %v allocations, want 1", n)
	}
	h[0] = 'X'
	if l.HTML[0] == 'X' {
		t.Errorf("Bodies' HTML aliases the layout")
	}
	// A value is spliced as it is, never searched for placeholders.
	m.Values = []string{pPrefs, pUnsub}
	if _, txt := m.Bodies(); strings.Count(string(txt), pPrefs) != 1 || strings.Count(string(txt), pUnsub) != 1 {
		t.Errorf("a value holding a placeholder was spliced again: %q", txt)
	}
	m.Layout = edition(t, true)
	if h, _ := m.Bodies(); h != nil {
		t.Errorf("text-only layout: got an HTML body")
	}
}

func TestAppendBytesReusesBuffer(t *testing.T) {
	l := edition(t, false)
	m := reader(l, 1, "https://ledger.example/unsubscribe?token=abc", "https://ledger.example/preferences?token=abc")
	buf, err := m.AppendBytes([]byte("prefix"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf, []byte("prefix")) || !bytes.Equal(buf[len("prefix"):], fast(t, m)) {
		t.Fatalf("AppendBytes did not append the message after dst")
	}
	if n := testing.AllocsPerRun(100, func() { buf, _ = m.AppendBytes(buf[:0]) }); n != 0 {
		t.Errorf("AppendBytes into a buffer of room: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { m.Bytes() }); n > 1 {
		t.Errorf("Bytes: %v allocations, want 1", n)
	}
}

func TestLayoutConcurrentFirstUse(t *testing.T) {
	l := edition(t, false)
	got := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			m := reader(l, 5, "u", "p")
			if i%2 == 0 {
				m.From = "Other <other@ledger.example>" // a sender that misses the cache
			}
			b, err := m.Bytes()
			if err != nil {
				t.Error(err)
			}
			got[i] = b
			m.Bodies()
		})
	}
	wg.Wait()
	want := fast(t, reader(l, 5, "u", "p"))
	for i, b := range got {
		if i%2 == 1 && !bytes.Equal(b, want) {
			t.Errorf("goroutine %d: got other bytes than a message built alone", i)
		}
	}
}

// BenchmarkMessageBytes compares a reader's copy of a real edition built
// the old way (splice the bodies, jordan-wright/email encodes them whole)
// with the layout's fast path, fresh and into a reused buffer.
func BenchmarkMessageBytes(b *testing.B) {
	const (
		unsub = "https://ledger.example/unsubscribe?token=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEfGhIjKlMnOpQrSt"
		prefs = "https://ledger.example/preferences?token=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEfGhIjKlMnOpQrSt"
	)
	for _, textOnly := range []bool{false, true} {
		name := "html+text"
		if textOnly {
			name = "text"
		}
		l := edition(b, textOnly)
		m := reader(l, 1, unsub, prefs)
		b.Run(name+"/slow", func(b *testing.B) {
			for b.Loop() {
				s := *m
				s.Subject = m.SubjectLine()
				s.HTML, s.Text = m.Bodies()
				s.Layout, s.Values = nil, nil
				if _, err := s.Bytes(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/fast", func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Bytes(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/append", func(b *testing.B) {
			var buf []byte
			for b.Loop() {
				var err error
				if buf, err = m.AppendBytes(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBodies(b *testing.B) {
	m := reader(edition(b, false), 1, "https://ledger.example/unsubscribe?token=abc&x=1", "https://ledger.example/preferences?token=abc")
	for b.Loop() {
		m.Bodies()
	}
}
