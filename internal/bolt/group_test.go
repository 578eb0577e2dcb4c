package bolt

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// TestGroupCommit writes from many goroutines at once through one
// groupCommit on a real file: every change lands exactly once, a change
// that fails fails alone and writes nothing, and concurrent changes share
// commits.
func TestGroupCommit(t *testing.T) {
	s := mustOpen(t)
	bucket := []byte("group-test")
	if err := s.db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket(bucket); return err }); err != nil {
		t.Fatal(err)
	}
	errBad := errors.New("this change fails")
	const writers, each = 8, 50
	var wg sync.WaitGroup
	errs := make([]error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				n := w*each + i
				errs[n] = s.group.update(func(tx *bbolt.Tx) error {
					b := tx.Bucket(bucket)
					if err := b.Put(fmt.Appendf(nil, "k%04d", n), []byte("v")); err != nil {
						return err
					}
					if n%7 == 0 {
						return errBad // after its Put: the Put must not land
					}
					// Counting in the transaction shows a change applied twice.
					c := b.Get([]byte("count"))
					return b.Put([]byte("count"), fmt.Appendf(nil, "%d", atoiOr0(c)+1))
				})
			}
		})
	}
	wg.Wait()
	want := 0
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		for n := range writers * each {
			got := b.Get(fmt.Appendf(nil, "k%04d", n)) != nil
			if n%7 == 0 {
				if !errors.Is(errs[n], errBad) {
					t.Errorf("change %d: got err %v, want its own error", n, errs[n])
				}
				if got {
					t.Errorf("change %d failed but its write landed", n)
				}
				continue
			}
			want++
			if errs[n] != nil || !got {
				t.Errorf("change %d: err %v, written %v; want nil, written", n, errs[n], got)
			}
		}
		if c := atoiOr0(b.Get([]byte("count"))); c != want {
			t.Errorf("count: got %d, want %d (a change ran twice, or was lost)", c, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d changes in %d commits", writers*each, s.group.commits)
}

// TestGroupCommitShares holds the writer while changes queue up, and finds
// that the changes queued behind the leader share one commit.
func TestGroupCommitShares(t *testing.T) {
	s := mustOpen(t)
	hold, held := make(chan struct{}), make(chan struct{})
	go s.db.Update(func(*bbolt.Tx) error { close(held); <-hold; return nil })
	<-held
	var wg sync.WaitGroup
	put := func(k string) {
		wg.Go(func() {
			err := s.group.update(func(tx *bbolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("share"))
				if err != nil {
					return err
				}
				return b.Put([]byte(k), []byte("v"))
			})
			if err != nil {
				t.Errorf("change %s: %v", k, err)
			}
		})
	}
	put("leader") // waits for the writer inside its commit
	waitFor(t, func() bool { s.group.mu.Lock(); defer s.group.mu.Unlock(); return s.group.leading })
	for i := range 5 {
		put(fmt.Sprint("follower", i))
	}
	waitFor(t, func() bool { s.group.mu.Lock(); defer s.group.mu.Unlock(); return len(s.group.pending) == 5 })
	close(hold)
	wg.Wait()
	if s.group.commits != 2 {
		t.Errorf("6 changes, 5 queued behind the leader: got %d commits, want 2", s.group.commits)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 5000 {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("condition not met within 5 s")
}

func atoiOr0(b []byte) int {
	n := 0
	fmt.Sscan(string(b), &n)
	return n
}
