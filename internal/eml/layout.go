package eml

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"strings"
)

// Layout is what every reader's copy of one edition variant shares: the
// subject and the bodies, holding placeholders where each reader's own
// values (their unsubscribe and preferences links) go. A Message made from
// a Layout carries only the reader's values; its bodies are spliced from
// the layout when a mailer asks for them, so the template engine never
// runs per reader and a bulk-capable provider can be handed the layout
// once for many readers. A Layout is not modified after NewLayout and is
// safe for concurrent use.
type Layout struct {
	Subject string
	HTML    []byte // nil for a text-only edition
	Text    []byte
	// Placeholders are the plain alphanumeric words in HTML and Text
	// that Message.Values replace, in the order of Values.
	Placeholders []string
}

// NewLayout returns the layout of an edition. Placeholders must be
// non-empty, ASCII letters and digits only (so that no encoding changes
// them), and none may contain another.
func NewLayout(subject string, htmlBody, text []byte, placeholders ...string) (*Layout, error) {
	if len(text) == 0 {
		return nil, errors.New("layout has no text part")
	}
	for i, p := range placeholders {
		if p == "" || strings.IndexFunc(p, func(r rune) bool {
			return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
		}) >= 0 {
			return nil, fmt.Errorf("placeholder %q is not plain letters and digits", p)
		}
		for j, q := range placeholders {
			if i != j && strings.Contains(p, q) {
				return nil, fmt.Errorf("placeholder %q contains placeholder %q", p, q)
			}
		}
	}
	return &Layout{Subject: subject, HTML: htmlBody, Text: text, Placeholders: placeholders}, nil
}

// Bodies returns the message's HTML and text bodies: HTML and Text as they
// are for a message without a Layout, or the layout's bodies with the
// message's Values spliced in (HTML-escaped in the HTML part). html is nil
// for a text-only message.
func (m *Message) Bodies() (htmlBody, text []byte) {
	if m.Layout == nil {
		return m.HTML, m.Text
	}
	l := m.Layout
	if l.HTML != nil {
		esc := make([]string, len(m.Values))
		for i, v := range m.Values {
			esc[i] = html.EscapeString(v)
		}
		htmlBody = l.splice(l.HTML, esc)
	}
	return htmlBody, l.splice(l.Text, m.Values)
}

// splice returns body with each placeholder replaced by its value.
func (l *Layout) splice(body []byte, values []string) []byte {
	out := body
	for i, p := range l.Placeholders {
		v := ""
		if i < len(values) {
			v = values[i]
		}
		out = bytes.ReplaceAll(out, []byte(p), []byte(v))
	}
	return out
}
