// Package eml builds the MIME bytes of an email (an .eml file) from a
// Message, with jordan-wright/email doing the multipart and
// quoted-printable work.
package eml

import (
	"errors"
	"fmt"
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

// reserved are the headers Bytes writes from a Message's fields, in
// canonical form.
var reserved = map[string]struct{}{
	"From": {}, "To": {}, "Cc": {}, "Bcc": {}, "Reply-To": {}, "Subject": {},
	"Message-Id": {}, "Date": {}, "Mime-Version": {}, "Content-Type": {}, "Content-Transfer-Encoding": {},
}

// Validate checks that the message can be sent as it is: addresses parse,
// there is a text part and no header value holds CR or LF.
func (m *Message) Validate() error {
	if _, err := mail.ParseAddress(m.From); err != nil {
		return fmt.Errorf("from address %q: %w", m.From, err)
	}
	if _, err := mail.ParseAddress(m.To); err != nil {
		return fmt.Errorf("to address: %w", err)
	}
	if m.ReplyTo != "" {
		if _, err := mail.ParseAddress(m.ReplyTo); err != nil {
			return fmt.Errorf("reply-to address: %w", err)
		}
	}
	if m.Layout != nil {
		if len(m.Values) != len(m.Layout.Placeholders) {
			return fmt.Errorf("message has %d values for %d placeholders", len(m.Values), len(m.Layout.Placeholders))
		}
	} else if len(m.Text) == 0 {
		return errors.New("message has no text part")
	}
	values := []string{m.From, m.To, m.ReplyTo, m.SubjectLine(), m.MessageID}
	for _, h := range m.Headers {
		// RFC 5322 field names are printable US-ASCII without a colon.
		if h.Name == "" || strings.IndexFunc(h.Name, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == ':' }) >= 0 {
			return fmt.Errorf("header name %q is not valid", h.Name)
		}
		// An extra header must not replace or add to the ones the fields
		// set: a stray To or Bcc would send the message elsewhere.
		if _, ok := reserved[textproto.CanonicalMIMEHeaderKey(h.Name)]; ok {
			return fmt.Errorf("header %q is set by the message, not as an extra header", h.Name)
		}
		values = append(values, h.Value)
	}
	for _, v := range values {
		if strings.ContainsAny(v, "\r\n") {
			return errors.New("header value holds CR or LF")
		}
	}
	return nil
}

// SubjectLine returns the message's subject: its layout's when it has one.
func (m *Message) SubjectLine() string {
	if m.Layout != nil {
		return m.Layout.Subject
	}
	return m.Subject
}

// Bytes returns the message as RFC 5322 bytes: multipart/alternative with
// a text and an HTML part, or a single text part.
func (m *Message) Bytes() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
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
