package token

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func mustSigner(tb testing.TB, key []byte) *Signer {
	tb.Helper()
	if key == nil {
		key = bytes.Repeat([]byte{7}, KeySize)
	}
	s, err := NewSigner(key)
	if err != nil {
		tb.Fatalf("NewSigner: %v", err)
	}
	return s
}

// assertInvalid fails unless err is an EINVALID *newsletter.Error with the
// reader-facing message.
func assertInvalid(t *testing.T, id string, err error) {
	t.Helper()
	var e *newsletter.Error
	if !errors.As(err, &e) {
		t.Fatalf("Verify error = %v (%T), want *newsletter.Error", err, err)
	}
	if e.Code != newsletter.EINVALID {
		t.Errorf("code = %q, want %q", e.Code, newsletter.EINVALID)
	}
	if e.Message != invalidMsg {
		t.Errorf("message = %q, want %q", e.Message, invalidMsg)
	}
	if id != "" {
		t.Errorf("subscriber ID = %q on failure, want empty", id)
	}
}

func TestNewSignerKeySize(t *testing.T) {
	for _, n := range []int{0, 1, 31} {
		if _, err := NewSigner(make([]byte, n)); err == nil {
			t.Errorf("NewSigner(%d bytes) error = nil, want error", n)
		}
	}
	for _, n := range []int{32, 64} {
		if _, err := NewSigner(make([]byte, n)); err != nil {
			t.Errorf("NewSigner(%d bytes) error = %v, want nil", n, err)
		}
	}
}

func TestNewSignerCopiesKey(t *testing.T) {
	key := bytes.Repeat([]byte{1}, KeySize)
	s := mustSigner(t, key)
	tok := s.Sign(Confirm, "sub-1", testNow.Add(time.Hour))
	key[0] = 2
	if _, err := s.Verify(tok, Confirm, testNow); err != nil {
		t.Fatalf("Verify after caller changed its key slice: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	s := mustSigner(t, nil)
	ids := []string{"sub-1", "01HZX3K8Q9", "a", strings.Repeat("x", MaxSubscriberIDLen), "élève@ünïcode"}
	for _, p := range []Purpose{Confirm, Unsubscribe, Preferences} {
		for _, id := range ids {
			tok := s.Sign(p, id, testNow.Add(24*time.Hour))
			if len(tok) > MaxTokenLen {
				t.Fatalf("token for %d-byte ID is %d bytes, over MaxTokenLen", len(id), len(tok))
			}
			if strings.ContainsAny(tok, "+/=") {
				t.Errorf("token %q is not base64url without padding", tok)
			}
			got, err := s.Verify(tok, p, testNow)
			if err != nil {
				t.Fatalf("Verify(%s, %q): %v", p, id, err)
			}
			if got != id {
				t.Errorf("Verify(%s) = %q, want %q", p, got, id)
			}
		}
	}
}

func TestTokenCarriesNoEmail(t *testing.T) {
	s := mustSigner(t, nil)
	tok := s.Sign(Unsubscribe, "sub-42", testNow.Add(time.Hour))
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + 8 + len("sub-42") + 32; len(raw) != want {
		t.Errorf("decoded token is %d bytes, want %d (version, expiry, ID, MAC only)", len(raw), want)
	}
}

func TestTamperEveryByte(t *testing.T) {
	s := mustSigner(t, nil)
	tok := s.Sign(Unsubscribe, "sub-1", testNow.Add(time.Hour))
	for i := range len(tok) {
		for _, flip := range []byte{0x01, 0x02, 0x20} {
			b := []byte(tok)
			b[i] ^= flip
			id, err := s.Verify(string(b), Unsubscribe, testNow)
			if err == nil {
				t.Fatalf("Verify accepted token with byte %d xor %#x: %q", i, flip, b)
			}
			assertInvalid(t, id, err)
		}
	}
	// Tampering with the decoded bytes (then re-encoding) must fail too.
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	for i := range raw {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		if _, err := s.Verify(base64.RawURLEncoding.EncodeToString(b), Unsubscribe, testNow); err == nil {
			t.Fatalf("Verify accepted token with raw byte %d flipped", i)
		}
	}
}

func TestWrongPurpose(t *testing.T) {
	s := mustSigner(t, nil)
	purposes := []Purpose{Confirm, Unsubscribe, Preferences}
	for _, signed := range purposes {
		tok := s.Sign(signed, "sub-1", testNow.Add(time.Hour))
		for _, asked := range purposes {
			id, err := s.Verify(tok, asked, testNow)
			if signed == asked {
				if err != nil {
					t.Errorf("signed %s, verified %s: %v", signed, asked, err)
				}
				continue
			}
			if err == nil {
				t.Errorf("signed %s, verified %s: accepted", signed, asked)
				continue
			}
			assertInvalid(t, id, err)
		}
	}
}

func TestWrongKey(t *testing.T) {
	a := mustSigner(t, bytes.Repeat([]byte{1}, KeySize))
	b := mustSigner(t, bytes.Repeat([]byte{2}, KeySize))
	tok := a.Sign(Confirm, "sub-1", testNow.Add(time.Hour))
	id, err := b.Verify(tok, Confirm, testNow)
	assertInvalid(t, id, err)
}

func TestExpiryBoundary(t *testing.T) {
	s := mustSigner(t, nil)
	expires := testNow.Add(time.Hour)
	tok := s.Sign(Confirm, "sub-1", expires)
	tests := []struct {
		now  time.Time
		want bool
	}{
		{testNow, true},
		{expires.Add(-time.Second), true},
		{expires.Add(-time.Nanosecond), true},
		{expires, false},
		{expires.Add(time.Nanosecond), false},
		{expires.Add(time.Second), false},
		{expires.Add(365 * 24 * time.Hour), false},
	}
	for _, tt := range tests {
		id, err := s.Verify(tok, Confirm, tt.now)
		if got := err == nil; got != tt.want {
			t.Errorf("Verify at expires%+v: valid = %v, want %v (err %v)", tt.now.Sub(expires), got, tt.want, err)
		}
		if !tt.want && err != nil {
			assertInvalid(t, id, err)
		}
	}
}

func TestVerifyGarbage(t *testing.T) {
	s := mustSigner(t, nil)
	good := s.Sign(Confirm, "sub-1", testNow.Add(time.Hour))
	tests := []struct{ name, tok string }{
		{"empty", ""},
		{"space", " "},
		{"short", "abc"},
		{"padding", good + "=="},
		{"std base64 chars", strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+/"},
		{"trailing newline", good + "\n"},
		{"leading space", " " + good},
		{"truncated", good[:len(good)-1]},
		{"truncated MAC", good[:len(good)-10]},
		{"extended", good + "A"},
		{"doubled", good + good},
		{"too long", strings.Repeat("A", MaxTokenLen+1)},
		{"huge", strings.Repeat("A", 1<<20)},
		{"NUL bytes", strings.Repeat("\x00", 64)},
		{"invalid UTF-8", strings.Repeat("\xff", 64)},
		{"zero payload", base64.RawURLEncoding.EncodeToString(make([]byte, 80))},
		{"version 0", reversion(t, good, 0)},
		{"version 2", reversion(t, good, 2)},
		{"only MAC length", base64.RawURLEncoding.EncodeToString(make([]byte, 32))},
		{"dots", strings.Repeat(".", 64)},
		{"percent-encoded", strings.ReplaceAll(good, "-", "%2D") + "%00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := s.Verify(tt.tok, Confirm, testNow)
			if err == nil {
				t.Fatalf("Verify(%q) accepted, ID %q", tt.tok, id)
			}
			assertInvalid(t, id, err)
		})
	}
}

func reversion(t *testing.T, tok string, v byte) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	raw[0] = v
	return base64.RawURLEncoding.EncodeToString(raw)
}

func TestSignedButInvalidIDs(t *testing.T) {
	s := mustSigner(t, nil)
	for _, id := range []string{"", strings.Repeat("x", MaxSubscriberIDLen+1), "\xff\xfe"} {
		tok := s.Sign(Confirm, id, testNow.Add(time.Hour))
		got, err := s.Verify(tok, Confirm, testNow)
		if err == nil {
			t.Errorf("Verify accepted token for ID %q", id)
			continue
		}
		assertInvalid(t, got, err)
	}
}

func TestNewKey(t *testing.T) {
	a, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != KeySize || len(b) != KeySize {
		t.Fatalf("key sizes %d, %d, want %d", len(a), len(b), KeySize)
	}
	if bytes.Equal(a, b) {
		t.Error("two NewKey calls returned the same key")
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "keys")
	path := filepath.Join(dir, "token.key")
	first, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if len(first) != KeySize {
		t.Fatalf("created key is %d bytes, want %d", len(first), KeySize)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode = %v, want 0600", got)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("key dir mode = %v, want 0700", got)
	}
	second, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !bytes.Equal(first, second) {
		t.Error("reloaded key differs from the created one")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("key dir holds %d entries, want only the key file", len(entries))
	}
	// A token signed with the first key verifies with the reloaded one.
	tok := mustSigner(t, first).Sign(Confirm, "sub-1", testNow.Add(time.Hour))
	if _, err := mustSigner(t, second).Verify(tok, Confirm, testNow); err != nil {
		t.Errorf("token from first key rejected by reloaded key: %v", err)
	}
}

func TestLoadOrCreateKeyCorrupt(t *testing.T) {
	tests := []struct{ name, content string }{
		{"empty", ""},
		{"not hex", strings.Repeat("zz", KeySize)},
		{"short", strings.Repeat("ab", KeySize-1)},
		{"odd length", strings.Repeat("a", 2*KeySize+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token.key")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadOrCreateKey(path); err == nil {
				t.Fatal("LoadOrCreateKey accepted a corrupt key file")
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.content {
				t.Errorf("corrupt key file was rewritten to %q", b)
			}
		})
	}
}

func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.key")
	const n = 8
	keys := make(chan []byte, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			k, err := LoadOrCreateKey(path)
			keys <- k
			errs <- err
		}()
	}
	var first []byte
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("LoadOrCreateKey: %v", err)
		}
		k := <-keys
		if first == nil {
			first = k
		} else if !bytes.Equal(first, k) {
			t.Fatal("concurrent first runs returned different keys")
		}
	}
}

func TestEditorSecret(t *testing.T) {
	secret, hash, err := NewEditorSecret()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "bs_") {
		t.Errorf("secret %q lacks the bs_ prefix", secret)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(secret, "bs_"))
	if err != nil || len(raw) != 32 {
		t.Errorf("secret body decodes to %d bytes (err %v), want 32", len(raw), err)
	}
	if got := HashEditorSecret(secret); got != hash {
		t.Errorf("HashEditorSecret = %q, want %q", got, hash)
	}
	if len(hash) != 64 || strings.ToLower(hash) != hash {
		t.Errorf("hash %q is not 64 lower-case hex digits", hash)
	}
	// Known answer: SHA-256("bs_test").
	if got, want := HashEditorSecret("bs_test"), "a78df6a2cb252c833c27fe071f1840d49bdf13e163904014c01b27b703b236e0"; got != want {
		t.Errorf("HashEditorSecret(bs_test) = %s, want %s", got, want)
	}
	if !EditorSecretMatches(secret, hash) {
		t.Error("EditorSecretMatches(secret, its hash) = false")
	}
	if EditorSecretMatches(secret+"x", hash) {
		t.Error("EditorSecretMatches(other secret, hash) = true")
	}
	other, _, err := NewEditorSecret()
	if err != nil {
		t.Fatal(err)
	}
	if other == secret {
		t.Error("two NewEditorSecret calls returned the same secret")
	}
}

func BenchmarkSign(b *testing.B) {
	s := mustSigner(b, nil)
	exp := testNow.Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		s.Sign(Unsubscribe, "01HZX3K8Q9ABCDEFGHJKMNPQRS", exp)
	}
}

func BenchmarkVerify(b *testing.B) {
	s := mustSigner(b, nil)
	tok := s.Sign(Unsubscribe, "01HZX3K8Q9ABCDEFGHJKMNPQRS", testNow.Add(time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(tok, Unsubscribe, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
