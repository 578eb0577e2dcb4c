package eml

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/jordan-wright/email"
)

// prepared is a layout's shared work: the bodies' slots, the MIME
// structure jordan-wright/email builds for them, and the bodies'
// quoted-printable encoding outside the lines that hold placeholders.
type prepared struct {
	err  error
	html body // html.src is nil for a text-only layout
	text body

	// fast is false when Bytes must take the slow path for every message
	// of the layout: a body holds a lone CR, after which a line break no
	// longer restarts quoted-printable encoding (see appendQP).
	fast bool

	subject  []byte // "Subject: …\r\n", nil for an empty subject
	mimeHead []byte // MIME-Version, Content-Type (and Content-Transfer-Encoding)
	boundary string // "" for a text-only layout
	// A message's body is pre, the text part, mid, the HTML part, post.
	pre, mid, post []byte
	htmlQP, textQP qpBody
	static         int // the bytes every message has: all of the above
}

// qpBody is a body's quoted-printable encoding with holes: static holds the
// encoding of everything but the tails of the lines that hold placeholders,
// and parts say where in static each such tail goes.
type qpBody struct {
	static []byte
	parts  []qpPart
}

// qpPart is the tail of one source line that holds placeholders, from just
// before its first placeholder to the end of the line, with the output
// column its encoding starts at.
type qpPart struct {
	end   int    // static[previous end:end] comes before the tail
	tail  []byte // source bytes, line break included
	slots []slot // offsets into tail
	col   int
}

// Markers stand in for the bodies when jordan-wright/email builds a
// layout's MIME structure: letters only, so that quoted-printable leaves
// them alone.
const (
	textMarker = "BroadsheetTextPartGoesHere"
	htmlMarker = "BroadsheetHTMLPartGoesHere"
)

func prepare(l *Layout) *prepared {
	p := &prepared{}
	if p.err = l.check(); p.err != nil {
		return p
	}
	p.text = newBody(l.Text, l.Placeholders)
	if len(l.HTML) > 0 {
		p.html = newBody(l.HTML, l.Placeholders)
	}
	if l.Subject != "" {
		p.subject = appendField(nil, "Subject", qEncode(l.Subject))
	}
	p.fast = !loneCR(l.Text) && !loneCR(l.HTML)
	if !p.fast {
		return p
	}
	// jordan-wright/email draws a random boundary; one that occurs in a
	// body would end its part early. A collision is all but impossible,
	// but cheap to rule out.
	for range 3 {
		if p.err = p.skeleton(len(l.HTML) > 0); p.err != nil {
			return p
		}
		if p.boundary == "" || (!bytes.Contains(l.Text, []byte(p.boundary)) && !bytes.Contains(l.HTML, []byte(p.boundary))) {
			break
		}
		p.boundary = ""
	}
	if len(l.HTML) > 0 && p.boundary == "" {
		p.fast = false
		return p
	}
	p.textQP = newQPBody(&p.text)
	p.static = len(p.subject) + len(p.mimeHead) + len(p.pre) + len(p.mid) + len(p.post) + len(p.textQP.static)
	if p.html.src != nil {
		p.htmlQP = newQPBody(&p.html)
		p.static += len(p.htmlQP.static)
	}
	return p
}

// skeleton has jordan-wright/email build a message whose bodies are the
// markers, and keeps its MIME header fields and the multipart structure
// around the markers.
func (p *prepared) skeleton(hasHTML bool) error {
	e := email.NewEmail()
	e.From = "skeleton@localhost"
	e.Headers.Set("Message-Id", "<skeleton@localhost>")
	e.Headers.Set("Date", "Thu, 01 Jan 1970 00:00:00 +0000")
	e.Text = []byte(textMarker)
	if hasHTML {
		e.HTML = []byte(htmlMarker)
	}
	raw, err := e.Bytes()
	if err != nil {
		return fmt.Errorf("layout MIME structure: %w", err)
	}
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		return errors.New("layout MIME structure: no end of header")
	}
	p.mimeHead = nil
	for field := range splitFields(raw[:len(head)+2]) { // with its last CRLF
		name, _, _ := bytes.Cut(field, []byte(":"))
		switch textproto.CanonicalMIMEHeaderKey(string(name)) {
		case "Mime-Version", "Content-Type", "Content-Transfer-Encoding":
			p.mimeHead = append(p.mimeHead, field...)
		}
	}
	pre, rest, ok1 := bytes.Cut(body, []byte(textMarker))
	mid, post, ok2 := rest, []byte(nil), true
	if hasHTML {
		mid, post, ok2 = bytes.Cut(rest, []byte(htmlMarker))
	}
	if !ok1 || !ok2 {
		return errors.New("layout MIME structure: a part is missing")
	}
	if !hasHTML {
		mid, post = nil, mid
	}
	p.pre, p.mid, p.post = pre, mid, post
	p.boundary = ""
	if hasHTML {
		mt, params, err := mime.ParseMediaType(contentType(p.mimeHead))
		if err != nil || mt != "multipart/alternative" || params["boundary"] == "" {
			return fmt.Errorf("layout MIME structure: Content-Type %q", contentType(p.mimeHead))
		}
		p.boundary = params["boundary"]
	}
	return nil
}

// splitFields yields each header field of head (which ends in CRLF) with
// its continuation lines and final CRLF.
func splitFields(head []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(head) > 0 {
			end := 0
			for {
				i := bytes.Index(head[end:], []byte("\r\n"))
				if i < 0 {
					end = len(head)
					break
				}
				end += i + 2
				if end == len(head) || (head[end] != ' ' && head[end] != '\t') {
					break
				}
			}
			if !yield(head[:end]) {
				return
			}
			head = head[end:]
		}
	}
}

// contentType returns the unfolded value of the Content-Type field in head.
func contentType(head []byte) string {
	for field := range splitFields(head) {
		if name, v, ok := bytes.Cut(field, []byte(":")); ok && textproto.CanonicalMIMEHeaderKey(string(name)) == "Content-Type" {
			v = bytes.ReplaceAll(v, []byte("\r\n"), nil)
			return strings.TrimSpace(string(v))
		}
	}
	return ""
}

// loneCR reports whether b holds a CR that is not followed by LF.
func loneCR(b []byte) bool {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\r')
		if j < 0 {
			return false
		}
		i += j + 1
		if i == len(b) || b[i] != '\n' {
			return true
		}
	}
}

// appendWriter is an io.Writer that appends to a slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// newQPBody encodes b once for all readers. Every line break restarts
// quoted-printable encoding (given no lone CR), so the runs of lines
// without placeholders are encoded here with mime/quotedprintable, as
// jordan-wright/email encodes whole bodies, and so is each line's part
// before its first placeholder; only the rest of such a line is left for
// each reader.
func newQPBody(b *body) qpBody {
	var q qpBody
	w := &appendWriter{}
	encodeRun := func(run []byte) {
		qp := quotedprintable.NewWriter(w)
		qp.Write(run) // appendWriter never fails
		qp.Close()
	}
	src, slots := b.src, b.slots
	runStart := 0
	for lineStart := 0; lineStart < len(src) && len(slots) > 0; {
		lineEnd := len(src)
		if i := bytes.IndexByte(src[lineStart:], '\n'); i >= 0 {
			lineEnd = lineStart + i + 1
		}
		if slots[0].off < lineEnd {
			// The tail starts at the first placeholder, or before the
			// spaces and tabs in front of it: whether a space is encoded
			// depends on what follows it.
			cut := slots[0].off
			for cut > lineStart && (src[cut-1] == ' ' || src[cut-1] == '\t') {
				cut--
			}
			encodeRun(src[runStart:lineStart])
			var col int
			w.b, col = appendQP(w.b, src[lineStart:cut], 0)
			part := qpPart{tail: src[cut:lineEnd], col: col}
			for len(slots) > 0 && slots[0].off < lineEnd {
				part.slots = append(part.slots, slot{off: slots[0].off - cut, idx: slots[0].idx})
				slots = slots[1:]
			}
			part.end = len(w.b)
			q.parts = append(q.parts, part)
			runStart = lineEnd
		}
		lineStart = lineEnd
	}
	encodeRun(src[runStart:])
	q.static = w.b
	return q
}

// bound is the most bytes append can write beyond static, for values of
// the lengths vlen as spliced.
func (q *qpBody) bound(b *body, vlen []int) int {
	n := 0
	for _, part := range q.parts {
		t := len(part.tail)
		for _, s := range part.slots {
			t += vlen[s.idx] - b.plen[s.idx]
		}
		n += qpBound(t)
	}
	return n
}

// append appends the body's encoding with values (of spliced lengths
// vlen) spliced in.
func (q *qpBody) append(dst []byte, b *body, values []string, vlen []int, escape bool) []byte {
	var scratch [2048]byte
	last := 0
	for _, part := range q.parts {
		dst = append(dst, q.static[last:part.end]...)
		last = part.end
		line := appendSlots(scratch[:0], part.tail, part.slots, b.plen, values, vlen, escape)
		dst, _ = appendQP(dst, line, part.col)
	}
	return append(dst, q.static[last:]...)
}

// sender is a From and Reply-To pair, checked and formatted once for all
// the messages of a layout that share it.
type sender struct {
	from, replyTo string
	err           error
	fromAddr      string // the bare address, for the envelope
	domain        string // of fromAddr, for Message-IDs
	header        []byte // the From and Reply-To fields
}

func newSender(from, replyTo string) *sender {
	s := &sender{from: from, replyTo: replyTo}
	a, err := mail.ParseAddress(from)
	if err != nil {
		s.err = fmt.Errorf("from address %q: %w", from, err)
		return s
	}
	s.fromAddr, s.domain = a.Address, Domain(from)
	s.header = appendField(nil, "From", a.String())
	if replyTo != "" {
		r, err := mail.ParseAddress(replyTo)
		if err != nil {
			s.err = fmt.Errorf("reply-to address: %w", err)
			return s
		}
		s.header = appendField(s.header, "Reply-To", r.String())
	}
	if hasCRLF(from) || hasCRLF(replyTo) {
		s.err = errors.New("header value holds CR or LF")
	}
	return s
}

// senderFor returns the layout's sender for from and replyTo, from its
// cache when the last message had the same.
func (l *Layout) senderFor(from, replyTo string) *sender {
	if s := l.sender.Load(); s != nil && s.from == from && s.replyTo == replyTo {
		return s
	}
	s := newSender(from, replyTo)
	l.sender.Store(s)
	return s
}

// dateLine is a formatted Date field for one second and zone offset.
type dateLine struct {
	sec  int64
	off  int
	line []byte
}

// dateField returns the Date field for t, from the layout's cache when the
// last message was dated the same second.
func (l *Layout) dateField(t time.Time) []byte {
	_, off := t.Zone()
	sec := t.Unix()
	if d := l.date.Load(); d != nil && d.sec == sec && d.off == off {
		return d.line
	}
	d := &dateLine{sec: sec, off: off, line: append(t.AppendFormat([]byte("Date: "), time.RFC1123Z), "\r\n"...)}
	l.date.Store(d)
	return d.line
}

// maxLine is the longest a header line should be (RFC 5322 section 2.1.1),
// CRLF aside.
const maxLine = 78

// appendField appends the header field "name: value" and its CRLF, folded
// at spaces so that its lines keep within 78 octets where the value allows.
// It folds only at a single space between two other characters (and before
// the value), so unfolding gives the value back as net/textproto reads it.
// A word longer than a line (a long URL in List-Unsubscribe, where RFC 2369
// forbids inserting whitespace) stays whole.
func appendField(dst []byte, name, value string) []byte {
	dst = append(dst, name...)
	dst = append(dst, ':')
	col := len(name) + 1
	if col+1+len(value) <= maxLine {
		dst = append(dst, ' ')
		dst = append(dst, value...)
		return append(dst, '\r', '\n')
	}
	first := true
	for len(value) > 0 {
		// The next word runs to the next space that may be folded.
		end := len(value)
		for i := 1; i < len(value)-1; i++ {
			if value[i] == ' ' && !isWSP(value[i-1]) && !isWSP(value[i+1]) {
				end = i
				break
			}
		}
		word := value[:end]
		// A word that fits no line stays after the field name rather
		// than leave that line empty.
		if col+1+len(word) > maxLine && !(first && 1+len(word) > maxLine) {
			dst = append(dst, '\r', '\n')
			col = 0
		}
		dst = append(dst, ' ')
		dst = append(dst, word...)
		col += 1 + len(word)
		first = false
		value = value[end:]
		if len(value) > 0 {
			value = value[1:] // the space, written before the next word
		}
	}
	return append(dst, '\r', '\n')
}

func isWSP(b byte) bool { return b == ' ' || b == '\t' }

// simpleAddress reports whether s is a bare address that net/mail parses
// to itself and formats as "<s>": a dot-atom of atext, an @, and a domain
// of letters, digits, hyphens and dots. It spares the common recipient a
// mail.ParseAddress (about 1.4 µs); anything else is parsed.
func simpleAddress(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at >= len(s)-1 || len(s) > 254 {
		return false
	}
	return dotAtom(s[:at], &atext) && dotAtom(s[at+1:], &domainText)
}

func dotAtom(s string, ok *[256]bool) bool {
	if s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if s[i-1] == '.' {
				return false
			}
		case !ok[c]:
			return false
		}
	}
	return true
}

var atext, domainText = func() (a, d [256]bool) {
	for c := 0; c < 256; c++ {
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		a[c] = alnum || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", byte(c)) >= 0
		d[c] = alnum || c == '-'
	}
	return a, d
}()
