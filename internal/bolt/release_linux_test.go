package bolt

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
)

// TestReleaseMapped reads a 32 MB file through bbolt's map, which makes
// its pages resident in this process, and finds that releaseMapped gives
// them back while the data reads the same after.
func TestReleaseMapped(t *testing.T) {
	s := mustOpen(t)
	bucket := []byte("release-test")
	value := bytes.Repeat([]byte("x"), 2000)
	const n = 16000 // about 32 MB of values
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket(bucket)
		if err != nil {
			return err
		}
		for i := range n {
			if err := b.Put(fmt.Appendf(nil, "k%06d", i), value); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	readAll := func() {
		t.Helper()
		err := s.db.View(func(tx *bbolt.Tx) error {
			got := 0
			err := tx.Bucket(bucket).ForEach(func(_, v []byte) error {
				if !bytes.Equal(v, value) {
					return fmt.Errorf("value changed")
				}
				got++
				return nil
			})
			if err == nil && got != n {
				err = fmt.Errorf("read %d values, want %d", got, n)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := releaseMapped(s.db); err != nil {
		t.Fatal(err)
	}
	before := rssFileMB(t)
	readAll()
	read := rssFileMB(t)
	if err := releaseMapped(s.db); err != nil {
		t.Fatalf("releaseMapped: %v", err)
	}
	after := rssFileMB(t)
	t.Logf("mapped file resident: %.1f MB before the read, %.1f after it, %.1f after release", before, read, after)
	if read-before < 16 {
		t.Fatalf("reading 32 MB through the map made %.1f MB resident: the test cannot see the map", read-before)
	}
	if read-after < 0.8*(read-before) {
		t.Errorf("release gave back %.1f of %.1f MB", read-after, read-before)
	}
	readAll() // the data reads the same after a release
}

// rssFileMB returns this process's resident file-backed memory, in MB.
func rssFileMB(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}
