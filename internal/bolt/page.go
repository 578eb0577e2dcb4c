package bolt

import (
	"bytes"
	"encoding/base64"

	"go.etcd.io/bbolt"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// Cursor kinds: the first byte of a decoded cursor names the listing it
// came from, so that a cursor is never read as another listing's key.
const (
	cursorSubscribers byte = 's'
	cursorArticles    byte = 'a'
	cursorDigests     byte = 'd'
	cursorDeliveries  byte = 'l'
)

// encodeCursor returns the opaque cursor that resumes a listing of kind
// after key.
func encodeCursor(kind byte, key []byte) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte{kind}, key...))
}

// decodeCursor returns the key a cursor of kind resumes after, nil for "".
// minLen is the shortest key the listing holds.
func decodeCursor(kind byte, cursor string, minLen int) ([]byte, error) {
	if cursor == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) < 1+max(minLen, 1) || b[0] != kind {
		return nil, newsletter.Errorf(newsletter.EINVALID, "Page cursor is not valid.")
	}
	return b[1:], nil
}

// scan walks a bucket's keys in order (or in reverse) and collects one
// page of records.
type scan[T any] struct {
	kind    byte
	reverse bool
	// from is where the first page starts when there is no cursor: the
	// first key to visit going forward, or the key just after the first
	// to visit in reverse. nil starts at the end.
	from []byte
	// visit decodes the record at k. keep false skips it; stop ends the
	// listing before it.
	visit func(k, v []byte) (rec T, keep, stop bool, err error)
}

// page returns up to limit records after after (or from s.from when after
// is nil), and the cursor of the next page: "" when no record is left.
// One record past the page is looked at, so that the last page says so.
func (s scan[T]) page(c *bbolt.Cursor, after []byte, limit int) ([]T, string, error) {
	var (
		k, v []byte
		out  []T
		last []byte
	)
	switch {
	case after != nil:
		k, v = seek(c, after, false, s.reverse)
	case s.from != nil:
		k, v = seek(c, s.from, !s.reverse, s.reverse)
	case s.reverse:
		k, v = c.Last()
	default:
		k, v = c.First()
	}
	for ; k != nil; k, v = step(c, s.reverse) {
		rec, keep, stop, err := s.visit(k, v)
		if err != nil {
			return nil, "", err
		}
		if stop {
			break
		}
		if !keep {
			continue
		}
		if len(out) == limit {
			return out, encodeCursor(s.kind, last), nil
		}
		out = append(out, rec)
		last = k
	}
	return out, "", nil
}

// seek positions c on the first key at or past key in the direction of
// travel; inclusive says whether key itself counts.
func seek(c *bbolt.Cursor, key []byte, inclusive, reverse bool) ([]byte, []byte) {
	k, v := c.Seek(key)
	if !reverse {
		if k != nil && !inclusive && bytes.Equal(k, key) {
			return c.Next()
		}
		return k, v
	}
	if k == nil {
		return c.Last()
	}
	if inclusive && bytes.Equal(k, key) {
		return k, v
	}
	return c.Prev()
}

func step(c *bbolt.Cursor, reverse bool) ([]byte, []byte) {
	if reverse {
		return c.Prev()
	}
	return c.Next()
}
