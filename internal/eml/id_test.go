package eml

import (
	"strings"
	"testing"
)

func TestNewMessageID(t *testing.T) {
	seen := map[string]bool{}
	for from, domain := range map[string]string{
		"News <news@bugle.example>": "bugle.example",
		"bare@sub.example.org":      "sub.example.org",
		"not an address":            "localhost",
	} {
		id := NewMessageID(from)
		if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@"+domain+">") || len(id) != len("<@"+domain+">")+32 {
			t.Errorf("NewMessageID(%q) = %q, want <32 hex digits@%s>", from, id, domain)
		}
		if seen[id] {
			t.Errorf("NewMessageID repeated %q", id)
		}
		seen[id] = true
	}
}
