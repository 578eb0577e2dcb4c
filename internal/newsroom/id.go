package newsroom

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// newID returns a random 128-bit ID, lower-case base32 without padding: it
// says nothing about the reader and sorts evenly across a key space.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never returns an error (crypto/rand, Go 1.24+)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
