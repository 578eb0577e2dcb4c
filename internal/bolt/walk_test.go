package bolt

import (
	"fmt"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
)

// TestWalker: get finds what Bucket.Get finds, for keys asked in any
// order, near or far, stored or not, before the first key and after the
// last.
func TestWalker(t *testing.T) {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "walk.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := func(i int) []byte { return fmt.Appendf(nil, "k%05d", i) }
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		for i := 10; i < 3000; i += 3 { // every third key, so that gaps exist
			if err := b.Put(key(i), fmt.Appendf(nil, "v%d", i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var asks []int
	for i := 0; i < 200; i++ { // ascending neighbours, stored or not
		asks = append(asks, i)
	}
	asks = append(asks, 2999, 3005, 5, 1500, 1497, 1498, 40, 2995, 2998, 2998, 0, 9999)
	for i := 300; i < 3100; i += 97 { // far jumps
		asks = append(asks, i)
	}
	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("b"))
		w := newWalker(b)
		for _, i := range asks {
			want, got := b.Get(key(i)), w.get(key(i))
			if string(got) != string(want) {
				t.Errorf("get %s: got %q, want %q", key(i), got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
