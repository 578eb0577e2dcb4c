package smtp

import (
	"bufio"
	"bytes"
	"net/textproto"
	"strings"
	"testing"
)

// textprotoDot is what net/textproto's DotWriter, which net/smtp uses,
// writes for msg.
func textprotoDot(msg []byte) []byte {
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	w := textproto.NewWriter(bw).DotWriter()
	w.Write(msg)
	w.Close()
	bw.Flush()
	return buf.Bytes()
}

func FuzzAppendDotStuffed(f *testing.F) {
	for _, s := range []string{
		"", ".", "..", "a", ".a\r\n", "a\r\n.\r\n", "a\r\n.b\r\n..c\r\n", "\r\n.\r\n.\r\n",
		"no final line break", "ends in CR\r", strings.Repeat("x\r\n.", 100),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		// appendDotStuffed takes canonical CRLF text, as eml writes it.
		msg = bytes.ReplaceAll(msg, []byte("\r"), nil)
		msg = bytes.ReplaceAll(msg, []byte("\n"), []byte("\r\n"))
		got := appendDotStuffed([]byte("prefix"), msg)
		want := append([]byte("prefix"), textprotoDot(msg)...)
		if !bytes.Equal(got, want) {
			t.Fatalf("appendDotStuffed(%q):\n got %q\nwant %q", msg, got, want)
		}
	})
}

func TestParseCodeLine(t *testing.T) {
	tests := []struct {
		line string
		code int
		more bool
		ok   bool
	}{
		{"250 OK", 250, false, true},
		{"250-PIPELINING", 250, true, true},
		{"354 ", 354, false, true},
		{"250", 0, false, false},
		{"25O OK", 0, false, false},
		{"099 x", 99, false, false},
		{"2500 x", 0, false, false},
		{"", 0, false, false},
	}
	for _, tt := range tests {
		code, more, ok := parseCodeLine([]byte(tt.line))
		if ok != tt.ok || ok && (code != tt.code || more != tt.more) {
			t.Errorf("parseCodeLine(%q) = %d, %v, %v; want %d, %v, %v", tt.line, code, more, ok, tt.code, tt.more, tt.ok)
		}
	}
}
