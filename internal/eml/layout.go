package eml

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// Layout is what every reader's copy of one edition variant shares: the
// subject and the bodies, holding placeholders where each reader's own
// values (their unsubscribe and preferences links) go. A Message made from
// a Layout carries only the reader's values; its bodies are spliced from
// the layout when a mailer asks for them, so the template engine never
// runs per reader and a bulk-capable provider can be handed the layout
// once for many readers.
//
// The work that does not depend on the reader is done once per Layout, on
// first use (or by Prepare): where the placeholders are, the MIME
// structure, and the quoted-printable encoding of every line of the bodies
// that holds no placeholder. A reader's Message.Bytes then only copies
// those, encodes the few lines that hold the reader's values, and writes
// the reader's headers.
//
// Do not modify a Layout's fields once it is in use (after NewLayout), and
// do not copy a Layout; share the pointer. It is safe for concurrent use.
type Layout struct {
	Subject string
	HTML    []byte // nil for a text-only edition
	Text    []byte
	// Placeholders are the plain alphanumeric words in HTML and Text
	// that Message.Values replace, in the order of Values.
	Placeholders []string

	once sync.Once
	prep *prepared

	// Caches of what all the layout's messages almost always share, so
	// that a reader's message does not parse them again: the From and
	// Reply-To addresses (about 6 µs with net/mail) and the Date line.
	sender atomic.Pointer[sender]
	date   atomic.Pointer[dateLine]
}

// NewLayout returns the layout of an edition. Placeholders must be
// non-empty, ASCII letters and digits only (so that no encoding changes
// them), and none may contain another.
func NewLayout(subject string, htmlBody, text []byte, placeholders ...string) (*Layout, error) {
	l := &Layout{Subject: subject, HTML: htmlBody, Text: text, Placeholders: placeholders}
	if err := l.check(); err != nil {
		return nil, err
	}
	return l, nil
}

// check validates the layout's fields as NewLayout documents.
func (l *Layout) check() error {
	if len(l.Text) == 0 {
		return errors.New("layout has no text part")
	}
	if strings.ContainsAny(l.Subject, "\r\n") {
		return errors.New("layout subject holds CR or LF")
	}
	for i, p := range l.Placeholders {
		if p == "" || strings.IndexFunc(p, func(r rune) bool {
			return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
		}) >= 0 {
			return fmt.Errorf("placeholder %q is not plain letters and digits", p)
		}
		for j, q := range l.Placeholders {
			if i != j && strings.Contains(p, q) {
				return fmt.Errorf("placeholder %q contains placeholder %q", p, q)
			}
		}
	}
	return nil
}

// Prepare does the layout's shared work now rather than on its first
// message's Bytes or Bodies, and reports whether the layout is usable (the
// checks of NewLayout, for a Layout made without it). Calling it is
// optional and it is safe to call more than once.
func (l *Layout) Prepare() error {
	return l.prepared().err
}

// prepared returns the layout's shared work, doing it on first use.
func (l *Layout) prepared() *prepared {
	l.once.Do(func() { l.prep = prepare(l) })
	return l.prep
}

// Bodies returns the message's HTML and text bodies: HTML and Text as they
// are for a message without a Layout, or the layout's bodies with the
// message's Values spliced in (HTML-escaped in the HTML part). html is nil
// for a text-only message. A layout message's bodies are fresh copies, in
// one allocation. Each placeholder is replaced where it occurs in the
// layout (leftmost first); a value is never searched for placeholders. A
// missing value is spliced as empty text.
func (m *Message) Bodies() (htmlBody, text []byte) {
	if m.Layout == nil {
		return m.HTML, m.Text
	}
	p := m.Layout.prepared()
	if p.err != nil {
		// An unusable layout (Validate reports why) has no slots.
		return bytes.Clone(m.Layout.HTML), bytes.Clone(m.Layout.Text)
	}
	var lens [8]int
	textLen, htmlLen := valueLens(&lens, m.Values, p.html.src != nil)
	n := p.text.splicedLen(textLen)
	if p.html.src != nil {
		n += p.html.splicedLen(htmlLen)
	}
	buf := make([]byte, 0, n)
	if p.html.src != nil {
		buf = p.html.appendSpliced(buf, m.Values, htmlLen, true)
		htmlBody = buf[:len(buf):len(buf)]
	}
	start := len(buf)
	buf = p.text.appendSpliced(buf, m.Values, textLen, false)
	return htmlBody, buf[start:len(buf):len(buf)]
}

// valueLens returns the length of each value as spliced into the text
// and, when html, HTML-escaped into the HTML; for up to four values they
// are kept in buf.
func valueLens(buf *[8]int, values []string, html bool) (textLen, htmlLen []int) {
	textLen, htmlLen = buf[:0:4], buf[4:4]
	if len(values) > 4 {
		textLen, htmlLen = make([]int, 0, len(values)), make([]int, 0, len(values))
	}
	for _, v := range values {
		textLen = append(textLen, len(v))
		if html {
			htmlLen = append(htmlLen, escapedLen(v))
		} else {
			htmlLen = append(htmlLen, len(v))
		}
	}
	return textLen, htmlLen
}

// slot is one placeholder in a body: where it starts and which one.
type slot struct {
	off int
	idx int // into Layout.Placeholders and Message.Values
}

// body is one of a layout's bodies with its placeholders found.
type body struct {
	src    []byte
	slots  []slot
	plen   []int // placeholder lengths, by index
	filled bool  // the body is nothing but placeholders
}

func newBody(src []byte, placeholders []string) body {
	b := body{src: src, slots: findSlots(src, placeholders), plen: make([]int, len(placeholders))}
	for i, p := range placeholders {
		b.plen[i] = len(p)
	}
	n := 0
	for _, s := range b.slots {
		n += b.plen[s.idx]
	}
	b.filled = n == len(src)
	return b
}

// findSlots returns where the placeholders occur in src, scanning left to
// right and taking at each point the placeholder that starts there.
func findSlots(src []byte, placeholders []string) []slot {
	next := make([]int, len(placeholders)) // next occurrence at or after pos, or -1
	for i, p := range placeholders {
		next[i] = bytes.Index(src, []byte(p))
	}
	var slots []slot
	for pos := 0; ; {
		best := -1
		for i, off := range next {
			if off >= 0 && off < pos {
				if j := bytes.Index(src[pos:], []byte(placeholders[i])); j >= 0 {
					off = pos + j
				} else {
					off = -1
				}
				next[i] = off
			}
			if off >= 0 && (best < 0 || off < next[best]) {
				best = i
			}
		}
		if best < 0 {
			return slots
		}
		slots = append(slots, slot{off: next[best], idx: best})
		pos = next[best] + len(placeholders[best])
	}
}

// value returns the message's value for placeholder i, or "".
func value(values []string, i int) string {
	if i < len(values) {
		return values[i]
	}
	return ""
}

// splicedLen returns the body's length once values of the lengths vlen
// are spliced in (a missing value is empty).
func (b *body) splicedLen(vlen []int) int {
	n := len(b.src)
	for _, s := range b.slots {
		if s.idx < len(vlen) {
			n += vlen[s.idx]
		}
		n -= b.plen[s.idx]
	}
	return n
}

// appendSpliced appends the body to dst with the values in place of the
// placeholders; vlen are their lengths as spliced.
func (b *body) appendSpliced(dst []byte, values []string, vlen []int, escape bool) []byte {
	return appendSlots(dst, b.src, b.slots, b.plen, values, vlen, escape)
}

// appendSlots appends src with each slot's placeholder (of length
// plen[idx], at an offset into src) replaced by its value, HTML-escaped
// when escape is set and the value's spliced length vlen[idx] says it
// needs to be.
func appendSlots(dst, src []byte, slots []slot, plen []int, values []string, vlen []int, escape bool) []byte {
	last := 0
	for _, s := range slots {
		dst = append(dst, src[last:s.off]...)
		if v := value(values, s.idx); escape && vlen[s.idx] != len(v) {
			dst = appendEscaped(dst, v)
		} else {
			dst = append(dst, v...)
		}
		last = s.off + plen[s.idx]
	}
	return append(dst, src[last:]...)
}

// escapedLen is len(html.EscapeString(s)).
func escapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		n += int(escapeGrowth[s[i]])
	}
	return n
}

// escapeGrowth is how much longer html.EscapeString makes each byte.
var escapeGrowth = [256]uint8{'<': 3, '>': 3, '&': 4, '\'': 4, '"': 4}

// appendEscaped appends html.EscapeString(s) to dst without allocating.
func appendEscaped(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '&':
			esc = "&amp;"
		case '\'':
			esc = "&#39;"
		case '"':
			esc = "&#34;"
		default:
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, esc...)
		last = i + 1
	}
	return append(dst, s[last:]...)
}
