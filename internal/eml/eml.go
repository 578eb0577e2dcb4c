// Package eml builds the MIME bytes of an email (an .eml file) from a
// Message, with jordan-wright/email doing the multipart and
// quoted-printable work. A digest's copies are Messages made from one
// Layout per edition variant: the layout's MIME structure and the encoding
// of its bodies are made once, and each reader's copy only splices its own
// header fields and links in (see Layout).
package eml

import (
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/jordan-wright/email"
)

// Header is one extra header field, such as List-Unsubscribe.
type Header struct {
	Name  string
	Value string
}

// Message is an email ready to send: addresses, subject, extra headers and
// the finished text and HTML bodies. Every adapter that sends mail (SES,
// SMTP, the outbox folder) takes a Message.
type Message struct {
	From      string // "Site <news@example.com>"
	To        string // bare address
	ReplyTo   string // optional
	Subject   string // any text: it is Q-encoded, and CR/LF are refused
	MessageID string // "<id@domain>"; generated when empty
	Date      time.Time
	Headers   []Header // extra headers, in order
	Text      []byte   // required
	HTML      []byte   // optional: a text-only email has none
	// Layout, when set, is the edition variant this message was made
	// from: Subject, Text and HTML are then the layout's, with Values
	// (the reader's value for each of Layout.Placeholders) spliced in,
	// and the Subject, Text and HTML fields are ignored. Bodies returns
	// the spliced bodies.
	Layout *Layout
	Values []string
	// Tags label the message for the provider's event stream (SES message
	// tags): the digest and the reader it was sent for.
	Tags map[string]string
}

// reserved reports whether a header field (its name in canonical form) is
// one Bytes writes from a Message's fields.
func reserved(name string) bool {
	switch name {
	case "From", "To", "Cc", "Bcc", "Reply-To", "Subject", "Message-Id", "Date",
		"Mime-Version", "Content-Type", "Content-Transfer-Encoding":
		return true
	}
	return false
}

// Validate checks that the message can be sent as it is: addresses parse,
// there is a text part and no header value holds CR or LF. A layout
// message's From and Reply-To are checked once for all the messages of
// its layout that share them.
func (m *Message) Validate() error {
	_, err := m.validate()
	return err
}

// validate is Validate; for a layout message it also returns the layout's
// sender for m.
func (m *Message) validate() (*sender, error) {
	var s *sender
	if m.Layout != nil {
		if err := m.Layout.Prepare(); err != nil {
			return nil, err
		}
		if len(m.Values) != len(m.Layout.Placeholders) {
			return nil, fmt.Errorf("message has %d values for %d placeholders", len(m.Values), len(m.Layout.Placeholders))
		}
		if s = m.Layout.senderFor(m.From, m.ReplyTo); s.err != nil {
			return nil, s.err
		}
		if !simpleAddress(m.To) {
			if _, err := mail.ParseAddress(m.To); err != nil {
				return nil, fmt.Errorf("to address: %w", err)
			}
		}
	} else {
		if _, err := mail.ParseAddress(m.From); err != nil {
			return nil, fmt.Errorf("from address %q: %w", m.From, err)
		}
		if _, err := mail.ParseAddress(m.To); err != nil {
			return nil, fmt.Errorf("to address: %w", err)
		}
		if m.ReplyTo != "" {
			if _, err := mail.ParseAddress(m.ReplyTo); err != nil {
				return nil, fmt.Errorf("reply-to address: %w", err)
			}
		}
		if len(m.Text) == 0 {
			return nil, errors.New("message has no text part")
		}
	}
	crlf := hasCRLF(m.From) || hasCRLF(m.To) || hasCRLF(m.ReplyTo) || hasCRLF(m.SubjectLine()) || hasCRLF(m.MessageID)
	for _, h := range m.Headers {
		name, ok := fieldName(h.Name)
		if !ok {
			return nil, fmt.Errorf("header name %q is not valid", h.Name)
		}
		// An extra header must not replace or add to the ones the fields
		// set: a stray To or Bcc would send the message elsewhere.
		if reserved(name) {
			return nil, fmt.Errorf("header %q is set by the message, not as an extra header", h.Name)
		}
		crlf = crlf || hasCRLF(h.Value)
	}
	if crlf {
		return nil, errors.New("header value holds CR or LF")
	}
	return s, nil
}

// hasCRLF reports whether s holds a CR or an LF.
func hasCRLF(s string) bool {
	return strings.IndexByte(s, '\n') >= 0 || strings.IndexByte(s, '\r') >= 0
}

// fieldName returns name in canonical form (as net/textproto writes it)
// and whether it is a valid field name: printable US-ASCII without a colon
// (RFC 5322). A name already in canonical form is returned as it is.
func fieldName(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	canonical, upper := true, true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || c == ':' {
			return "", false
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	if canonical {
		return name, true
	}
	return textproto.CanonicalMIMEHeaderKey(name), true
}

// qEncode is mime.QEncoding.Encode("UTF-8", s) without its rune decoding
// for the usual printable ASCII value.
func qEncode(s string) string {
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < ' ' || b > '~') && b != '\t' {
			return mime.QEncoding.Encode("UTF-8", s)
		}
	}
	return s
}

// Envelope returns the bare addresses of the message's sender and
// recipient, for SMTP's MAIL FROM and RCPT TO, or Validate's error. A
// layout message's From is parsed once for its layout, and a plain
// recipient address is not parsed at all.
func (m *Message) Envelope() (from, to string, err error) {
	s, err := m.validate()
	if err != nil {
		return "", "", err
	}
	if s != nil {
		from = s.fromAddr
	} else {
		a, _ := mail.ParseAddress(m.From) // validated
		from = a.Address
	}
	if to = m.To; !simpleAddress(to) {
		a, _ := mail.ParseAddress(m.To) // validated
		to = a.Address
	}
	return from, to, nil
}

// SubjectLine returns the message's subject: its layout's when it has one.
func (m *Message) SubjectLine() string {
	if m.Layout != nil {
		return m.Layout.Subject
	}
	return m.Subject
}

// Bytes returns the message as RFC 5322 bytes: multipart/alternative with
// a text and an HTML part, or a single text part; 7-bit, with every line
// ending in CRLF. A layout message's bytes are spliced from its layout's
// shared encoding (see Layout) in a few microseconds; any other message is
// built by jordan-wright/email.
func (m *Message) Bytes() ([]byte, error) {
	return m.AppendBytes(nil)
}

// AppendBytes appends the message's bytes (see Bytes) to dst and returns
// the extended slice, so that a caller can reuse one buffer for many
// messages. On error dst is returned unchanged.
func (m *Message) AppendBytes(dst []byte) ([]byte, error) {
	s, err := m.validate()
	if err != nil {
		return dst, err
	}
	if s != nil {
		if out, ok := m.appendLayout(dst, s); ok {
			return out, nil
		}
	}
	b, err := m.slowBytes()
	if err != nil {
		return dst, err
	}
	if dst == nil {
		return b, nil
	}
	return append(dst, b...), nil
}

// slowBytes builds the message with jordan-wright/email: its bodies are
// encoded whole, and its header fields come in no particular order.
func (m *Message) slowBytes() ([]byte, error) {
	e := email.NewEmail()
	e.From = m.From
	e.To = []string{m.To}
	if m.ReplyTo != "" {
		e.ReplyTo = []string{m.ReplyTo}
	}
	e.Subject = m.SubjectLine()
	e.HTML, e.Text = m.Bodies()
	e.Headers = textproto.MIMEHeader{}
	for _, h := range m.Headers {
		e.Headers.Add(h.Name, h.Value)
	}
	if m.MessageID != "" {
		e.Headers.Set("Message-Id", m.MessageID)
	}
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	e.Headers.Set("Date", date.Format(time.RFC1123Z))
	return e.Bytes()
}

// appendLayout appends a validated layout message from its layout's shared
// encoding, writing only the header fields and the lines that hold the
// reader's values. It reports false, with dst unchanged, for the rare
// message it leaves to slowBytes: a value holding a line break or the
// layout's MIME boundary, or a body that its values leave empty (which
// jordan-wright/email would send as a different structure).
func (m *Message) appendLayout(dst []byte, s *sender) ([]byte, bool) {
	l := m.Layout
	p := l.prepared()
	if !p.fast {
		return dst, false
	}
	for _, v := range m.Values {
		if hasCRLF(v) || (p.boundary != "" && strings.Contains(v, p.boundary)) {
			return dst, false
		}
	}
	// The length of each value as spliced into the text and the HTML.
	var lens [8]int
	textLen, htmlLen := valueLens(&lens, m.Values, p.html.src != nil)
	if p.text.filled && p.text.splicedLen(textLen) == 0 ||
		p.html.filled && p.html.splicedLen(htmlLen) == 0 {
		return dst, false
	}

	n := p.static + len(s.header) + 2*len(m.To) + len(m.MessageID) + 128
	for _, h := range m.Headers {
		n += len(h.Name) + 2*len(h.Value) + 8
	}
	n += p.textQP.bound(&p.text, textLen)
	if p.html.src != nil {
		n += p.htmlQP.bound(&p.html, htmlLen)
	}
	if cap(dst)-len(dst) < n {
		dst = append(make([]byte, 0, len(dst)+n), dst...)
	}

	dst = append(dst, s.header...)
	if simpleAddress(m.To) {
		dst = append(dst, "To: <"...)
		dst = append(dst, m.To...)
		dst = append(dst, ">\r\n"...)
	} else {
		a, _ := mail.ParseAddress(m.To) // validated
		dst = appendField(dst, "To", a.String())
	}
	dst = append(dst, p.subject...)
	id := m.MessageID
	if id == "" {
		id = newMessageID(s.domain)
	}
	dst = appendField(dst, "Message-Id", qEncode(id))
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	dst = append(dst, l.dateField(date)...)
	dst = append(dst, p.mimeHead...)
	for _, h := range m.Headers {
		name, _ := fieldName(h.Name)
		dst = appendField(dst, name, qEncode(h.Value))
	}
	dst = append(dst, "\r\n"...)

	dst = append(dst, p.pre...)
	dst = p.textQP.append(dst, &p.text, m.Values, textLen, false)
	if p.html.src != nil {
		dst = append(dst, p.mid...)
		dst = p.htmlQP.append(dst, &p.html, m.Values, htmlLen, true)
	}
	return append(dst, p.post...), true
}
