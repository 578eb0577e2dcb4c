package eml

// qpLineMax is mime/quotedprintable's line length: 76 characters, the last
// of which may be the '=' of a soft line break.
const qpLineMax = 76

// qpLiteral reports whether quoted-printable passes b through as it is in
// text mode (spaces and tabs aside, which depend on what follows them).
var qpLiteral = func() (t [256]bool) {
	for b := '!'; b <= '~'; b++ {
		t[b] = b != '='
	}
	return t
}()

const upperhex = "0123456789ABCDEF"

// appendQP appends the quoted-printable encoding of src to dst, byte for
// byte as mime/quotedprintable's Writer (text mode, as jordan-wright/email
// uses it) encodes src and is then closed, except that it starts at output
// column col of a line instead of 0; it returns the column it ended at.
// Message.Bytes encodes most of a layout's bodies once with that Writer and
// only the few lines that hold a reader's values with appendQP, so the two
// must agree exactly (FuzzAppendQP checks they do).
//
// The Writer buffers a line and encodes a trailing space or tab when the
// line ends; appendQP looks ahead instead, so src must end where a line
// ends or where the whole body ends. It also keeps the Writer's quirk that
// only a literal byte clears the "last byte was CR" state, so that CR,
// an encoded byte and LF make one line break, not two.
func appendQP(dst, src []byte, col int) ([]byte, int) {
	cr := false
	for i := 0; i < len(src); i++ {
		b := src[i]
		switch {
		case qpLiteral[b]:
			// A run of literal bytes is copied up to the end of the line.
			j := i + 1
			for j < len(src) && qpLiteral[src[j]] {
				j++
			}
			for i < j {
				if col == qpLineMax-1 {
					dst = append(dst, '=', '\r', '\n')
					col = 0
				}
				n := min(j-i, qpLineMax-1-col)
				dst = append(dst, src[i:i+n]...)
				col += n
				i += n
			}
			i--
			cr = false
		case b == '\n' || b == '\r':
			if cr && b == '\n' {
				cr = false
				continue
			}
			cr = b == '\r'
			dst = append(dst, '\r', '\n')
			col = 0
		case b == ' ' || b == '\t':
			cr = false
			if i+1 < len(src) && src[i+1] != '\n' && src[i+1] != '\r' {
				if col == qpLineMax-1 {
					dst = append(dst, '=', '\r', '\n')
					col = 0
				}
				dst = append(dst, b)
				col++
				continue
			}
			// A space or tab that ends a line is encoded.
			dst, col = appendQPEscape(dst, b, col)
		default:
			dst, col = appendQPEscape(dst, b, col)
		}
	}
	return dst, col
}

// appendQPEscape appends b as =XX, after a soft line break when the line
// has no room for it.
func appendQPEscape(dst []byte, b byte, col int) ([]byte, int) {
	if qpLineMax-1-col < 3 {
		dst = append(dst, '=', '\r', '\n')
		col = 0
	}
	return append(dst, '=', upperhex[b>>4], upperhex[b&0x0f]), col + 3
}

// qpBound is the most bytes appendQP can write for n bytes of source: three
// per byte, and a soft line break for every 73 of those.
func qpBound(n int) int {
	return 3*n + 3*(3*n/(qpLineMax-3)+1)
}
