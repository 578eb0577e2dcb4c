package bolt

import (
	"bytes"

	"go.etcd.io/bbolt"
)

// walker reads many keys of one bucket within one transaction. The keys a
// batched call asks for are mostly ascending neighbours (a send task is a
// run of readers in ID order, and so are its ledger rows), so get first
// steps the cursor forward from the last key found, which costs a step
// along a leaf, and searches from the root, as Bucket.Get does for every
// key, only when the key is behind or further ahead. One cursor also
// keeps its stack for every key instead of allocating one per Get.
//
// bbolt invalidates a cursor when its bucket is written, so a walker is
// used to read a call's keys before any of them is written.
type walker struct {
	c    *bbolt.Cursor
	k, v []byte // where the cursor stands; k nil before the first get or past the end
}

// walkSteps is how many keys get steps over before it searches instead.
const walkSteps = 8

func newWalker(b *bbolt.Bucket) *walker { return &walker{c: b.Cursor()} }

// get returns the value stored under key, or nil. The value is valid for
// the life of the transaction, until the bucket is written.
func (w *walker) get(key []byte) []byte {
	if w.k != nil && bytes.Compare(w.k, key) <= 0 {
		for range walkSteps {
			switch c := bytes.Compare(w.k, key); {
			case c == 0:
				return w.v
			case c > 0:
				return nil // stepped past: key is not stored
			}
			if w.k, w.v = w.c.Next(); w.k == nil {
				return nil // no key after the last one found
			}
		}
	}
	w.k, w.v = w.c.Seek(key)
	if w.k != nil && bytes.Equal(w.k, key) {
		return w.v
	}
	return nil
}
