package eml

import (
	"bytes"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
)

// stdQP is what mime/quotedprintable (and so jordan-wright/email) writes
// for src.
func stdQP(src []byte) []byte {
	var buf bytes.Buffer
	w := quotedprintable.NewWriter(&buf)
	w.Write(src)
	w.Close()
	return buf.Bytes()
}

var qpSeeds = []string{
	"",
	"plain",
	strings.Repeat("x", 75),
	strings.Repeat("x", 76),
	strings.Repeat("x", 200),
	strings.Repeat("x", 74) + " \n" + strings.Repeat("y", 73) + "\t\r\n",
	strings.Repeat("x", 73) + "é" + strings.Repeat("=", 30),
	"trailing space \ntrailing tab\t\r\nspace at end ",
	"a\r\rb\n\nc\r\n\r\nd",
	"\r=\nafter the quirk",
	"\r \n",
	"=\r\n=\n=",
	strings.Repeat("a=b ", 60),
	strings.Repeat("🗞東京", 40),
	"\x00\x7f\xff\t \t \n",
	". a dot\n.\n..",
}

func FuzzAppendQP(f *testing.F) {
	for i, s := range qpSeeds {
		f.Add([]byte(s), uint8(i*7))
	}
	f.Fuzz(func(t *testing.T, src []byte, split uint8) {
		want := stdQP(src)
		got, _ := appendQP(nil, src, 0)
		if !bytes.Equal(got, want) {
			t.Fatalf("appendQP(%q):\n got %q\nwant %q", src, got, want)
		}
		// Resuming at a column: the encoding of a prefix, then of the
		// rest from where the prefix left off, is the whole encoding,
		// when the prefix ends in neither a space, a tab nor a CR (which
		// depend on the byte after them).
		k := int(split) % (len(src) + 1)
		if k > 0 && bytes.IndexByte([]byte(" \t\r"), src[k-1]) >= 0 {
			return
		}
		head, col := appendQP(nil, src[:k], 0)
		whole, _ := appendQP(head, src[k:], col)
		if !bytes.Equal(whole, want) {
			t.Fatalf("appendQP(%q) then (%q) from column %d:\n got %q\nwant %q", src[:k], src[k:], col, whole, want)
		}
		if n := qpBound(len(src)); len(got) > n {
			t.Fatalf("appendQP(%q) wrote %d bytes, bound %d", src, len(got), n)
		}
	})
}

func FuzzSimpleAddress(f *testing.F) {
	for _, s := range []string{
		"reader@example.com", "a@b", "first.last+tag@sub.example.co.uk", "o'brien@example.ie",
		"x!#$%&'*+-/=?^_`{|}~@example.com", ".a@b", "a.@b", "a..b@c", "a@b..c", "a@-b-", "@b", "a@",
		"a@b@c", "a b@c", "\"a\"@b", "a@[127.0.0.1]", "é@b", "a@é", "A@B.", "a@b\r\n", "<a@b>", "a(c)@b",
		strings.Repeat("a", 250) + "@b.c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !simpleAddress(s) {
			return
		}
		a, err := mail.ParseAddress(s)
		if err != nil {
			t.Fatalf("simpleAddress(%q) but net/mail: %v", s, err)
		}
		if a.Name != "" || a.Address != s || a.String() != "<"+s+">" {
			t.Fatalf("simpleAddress(%q) but net/mail gives name %q, address %q, %q", s, a.Name, a.Address, a.String())
		}
	})
}

func TestSimpleAddressCommonCases(t *testing.T) {
	for _, s := range []string{"reader@example.com", "first.last+tag@sub.example.co.uk", "r12345@mail-1.example"} {
		if !simpleAddress(s) {
			t.Errorf("simpleAddress(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"Reader <r@example.com>", "a..b@c", "a@b@c", " r@example.com", "é@example.com"} {
		if simpleAddress(s) {
			t.Errorf("simpleAddress(%q) = true, want false", s)
		}
	}
}
