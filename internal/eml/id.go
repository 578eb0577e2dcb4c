package eml

import (
	"crypto/rand"
	"encoding/hex"
	"net/mail"
	"strings"
)

// Domain returns the domain of a From address such as "Site <news@example.com>",
// or "localhost" when it has none. Message-IDs are made on that domain.
func Domain(from string) string {
	if a, err := mail.ParseAddress(from); err == nil {
		if i := strings.LastIndexByte(a.Address, '@'); i >= 0 && i < len(a.Address)-1 {
			return a.Address[i+1:]
		}
	}
	return "localhost"
}

// NewMessageID returns a new random Message-ID, "<hex@domain>", on the
// domain of the from address.
func NewMessageID(from string) string {
	return newMessageID(Domain(from))
}

// newMessageID returns a new random Message-ID on domain.
func newMessageID(domain string) string {
	var b [16]byte
	rand.Read(b[:]) // never returns an error (crypto/rand, Go 1.24+)
	return "<" + hex.EncodeToString(b[:]) + "@" + domain + ">"
}
