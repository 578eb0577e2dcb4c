// Package token signs and verifies the links Broadsheet mails to readers
// (confirm, unsubscribe, preferences) and makes the secrets editors use to
// call the API.
//
// A reader token is base64url (no padding) of
//
//	version (1 byte) | expiry (8 bytes, big-endian unix seconds) | subscriber ID | MAC (32 bytes)
//
// where MAC is HMAC-SHA256 under the signer's key over the version, the
// purpose (length-prefixed), the expiry and the subscriber ID. The purpose is
// signed but not carried: a verifier names the purpose it expects, so an
// unsubscribe token cannot confirm a subscription. A token carries no email
// address. The version byte leaves room for key rotation: a later version can
// name a key ID without breaking tokens already in readers' inboxes.
package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// Purpose says what a token may be used for. A token signed for one purpose
// never verifies for another.
type Purpose string

// Purposes of reader tokens.
const (
	Confirm     Purpose = "confirm"
	Unsubscribe Purpose = "unsubscribe"
	Preferences Purpose = "preferences"
	// EditorSession signs the editors' console session cookie, whose ID is
	// not a subscriber's: the purpose keeps it from working as a reader link.
	EditorSession Purpose = "editor-session"
)

const (
	// KeySize is the size of a key made by NewKey and the least size
	// NewSigner accepts.
	KeySize = 32
	// MaxTokenLen is the longest token Verify looks at; longer input is
	// refused before any decoding.
	MaxTokenLen = 512
	// MaxSubscriberIDLen is the longest subscriber ID a token can carry.
	// Sign truncates nothing: a token for a longer ID simply never verifies.
	MaxSubscriberIDLen = 256

	version1   = 1
	headerLen  = 1 + 8
	macLen     = sha256.Size
	minRawLen  = headerLen + 1 + macLen
	invalidMsg = "This link is not valid or has expired."
)

// b64 is strict so that a token has exactly one encoding: flipping the
// unused low bits of the last character must not yield a second valid token.
var b64 = base64.RawURLEncoding.Strict()

// Signer signs and verifies reader tokens with one secret key. It is safe
// for concurrent use.
type Signer struct {
	pool sync.Pool // of hash.Hash, each an HMAC keyed with the signer's key
}

// NewSigner returns a Signer for key, which must be at least KeySize bytes.
// The key is copied.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < KeySize {
		return nil, fmt.Errorf("token key is %d bytes, want at least %d", len(key), KeySize)
	}
	k := append([]byte(nil), key...)
	s := &Signer{}
	s.pool.New = func() any { return hmac.New(sha256.New, k) }
	return s, nil
}

// Sign returns a URL-safe token that proves, until expires, that the holder
// may act for purpose p on behalf of subscriberID. Expiry has second
// precision; the token is valid strictly before it.
func (s *Signer) Sign(p Purpose, subscriberID string, expires time.Time) string {
	raw := make([]byte, headerLen, headerLen+len(subscriberID)+macLen)
	raw[0] = version1
	binary.BigEndian.PutUint64(raw[1:headerLen], uint64(expires.Unix()))
	raw = append(raw, subscriberID...)
	raw = s.appendMAC(raw, p, raw)
	return b64.EncodeToString(raw)
}

// Verify checks tok for purpose p at time now and returns the subscriber ID
// it was signed for. Any failure (malformed, too long, wrong purpose, bad
// MAC, expired) returns a *newsletter.Error with code EINVALID and the same
// reader-facing message, so a caller cannot tell one failure from another
// and neither can an attacker.
func (s *Signer) Verify(tok string, p Purpose, now time.Time) (subscriberID string, err error) {
	if len(tok) > MaxTokenLen || len(tok) < b64.EncodedLen(minRawLen) || !isBase64URL(tok) {
		return "", invalid()
	}
	raw, err := b64.DecodeString(tok)
	if err != nil || len(raw) < minRawLen || raw[0] != version1 {
		return "", invalid()
	}
	body, mac := raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	var buf [macLen]byte
	if !hmac.Equal(mac, s.appendMAC(buf[:0], p, body)) {
		return "", invalid()
	}
	expires := int64(binary.BigEndian.Uint64(body[1:headerLen]))
	if now.Unix() >= expires {
		return "", invalid()
	}
	id := body[headerLen:]
	if len(id) > MaxSubscriberIDLen || !utf8.Valid(id) {
		return "", invalid()
	}
	return string(id), nil
}

// appendMAC appends the MAC of body (version, expiry, subscriber ID) under
// purpose p to dst.
func (s *Signer) appendMAC(dst []byte, p Purpose, body []byte) []byte {
	h := s.pool.Get().(hash.Hash)
	defer s.pool.Put(h)
	h.Reset()
	var n [2]byte
	binary.BigEndian.PutUint16(n[:], uint16(len(p)))
	h.Write(body[:1])
	h.Write(n[:])
	h.Write([]byte(p))
	h.Write(body[1:])
	return h.Sum(dst)
}

// isBase64URL reports whether s holds only the base64url alphabet. The
// decoder alone would skip CR and LF, giving one token many spellings.
func isBase64URL(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func invalid() error {
	return newsletter.Errorf(newsletter.EINVALID, invalidMsg)
}

// NewKey returns KeySize random bytes for NewSigner.
func NewKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("new token key: %w", err)
	}
	return key, nil
}

// LoadOrCreateKey returns the key stored at path, creating the file with a
// new random key on first run. The file holds the key as lower-case hex and a
// newline, mode 0600 in a directory created 0700. A file that exists but
// does not hold at least KeySize bytes of hex is an error: it is never
// replaced, since that would void every link already mailed.
func LoadOrCreateKey(path string) ([]byte, error) {
	key, err := readKey(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create token key dir: %w", err)
	}
	key, err = NewKey()
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, ".tokenkey-*")
	if err != nil {
		return nil, fmt.Errorf("create token key: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600; Chmod guards against an odd umask or
	// filesystem all the same.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create token key: %w", err)
	}
	_, werr := tmp.WriteString(hex.EncodeToString(key) + "\n")
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("write token key: %w", werr)
	}
	// Link, unlike rename, fails if path exists: when two processes start at
	// once, the second one reads the first one's key instead of replacing it.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return readKey(path)
		}
		return nil, fmt.Errorf("create token key: %w", err)
	}
	return key, nil
}

func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read token key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("read token key %s: not hex: %w", path, err)
	}
	if len(key) < KeySize {
		return nil, fmt.Errorf("read token key %s: %d bytes, want at least %d", path, len(key), KeySize)
	}
	return key, nil
}

// EditorSecretPrefix starts every editor secret, so that a leaked one is
// easy to recognise (and for secret scanners to find).
const EditorSecretPrefix = "bs_"

// NewEditorSecret returns a new editor API secret, to be shown to the editor
// once, and its hash, the only form that is stored.
func NewEditorSecret() (secret, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("new editor secret: %w", err)
	}
	secret = EditorSecretPrefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, HashEditorSecret(secret), nil
}

// HashEditorSecret returns the hex SHA-256 of secret. A plain hash is enough
// here, unlike for passwords, because the secret holds 256 random bits.
func HashEditorSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// EditorSecretMatches reports, in constant time, whether secret hashes to
// hash (as returned by NewEditorSecret).
func EditorSecretMatches(secret, hash string) bool {
	got := HashEditorSecret(secret)
	return subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1
}
