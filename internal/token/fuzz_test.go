package token

import (
	"strings"
	"testing"
	"time"
)

// FuzzVerify checks that Verify never panics and never accepts a token the
// signer did not make: any token it accepts must be exactly the token Sign
// returns for the ID and expiry it carries.
func FuzzVerify(f *testing.F) {
	s := mustSigner(f, nil)
	exp := testNow.Add(time.Hour)
	good := s.Sign(Confirm, "sub-1", exp)
	for _, seed := range []string{
		good,
		s.Sign(Unsubscribe, "sub-1", exp),
		s.Sign(Confirm, strings.Repeat("x", MaxSubscriberIDLen), exp),
		good[:len(good)-1],
		good + "A",
		"",
		"AAAA",
		strings.Repeat("A", MaxTokenLen),
		strings.Repeat("_", 60),
		"\x00\xff",
	} {
		f.Add(seed, string(Confirm))
	}
	f.Add(good, string(Unsubscribe))
	f.Add(good, "")
	f.Fuzz(func(t *testing.T, tok, purpose string) {
		p := Purpose(purpose)
		id, err := s.Verify(tok, p, testNow)
		if err != nil {
			assertInvalid(t, id, err)
			return
		}
		// Accepted: the signer must have made exactly this token, since every
		// token it signed in this run has expiry exp.
		if s.Sign(p, id, exp) != tok {
			t.Fatalf("Verify(%q, %q) accepted a token the signer did not make (ID %q)", tok, purpose, id)
		}
	})
}
