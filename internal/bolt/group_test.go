package bolt

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

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

// TestGroupCommitShares holds the leader's change inside its commit while
// changes queue up, and finds that the changes queued behind the leader
// share one commit. It runs in a synctest bubble: synctest.Wait returns
// once every follower is waiting for its commit.
func TestGroupCommitShares(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := mustOpen(t)
		hold, held := make(chan struct{}), make(chan struct{})
		var wg sync.WaitGroup
		put := func(k string, wait func()) {
			wg.Go(func() {
				err := s.group.update(func(tx *bbolt.Tx) error {
					b, err := tx.CreateBucketIfNotExists([]byte("share"))
					if err != nil {
						return err
					}
					wait()
					return b.Put([]byte(k), []byte("v"))
				})
				if err != nil {
					t.Errorf("change %s: %v", k, err)
				}
			})
		}
		put("leader", func() { close(held); <-hold }) // stays inside its commit
		<-held
		for i := range 5 {
			put(fmt.Sprint("follower", i), func() {})
		}
		synctest.Wait()
		s.group.mu.Lock()
		leading, pending := s.group.leading, len(s.group.pending)
		s.group.mu.Unlock()
		if !leading || pending != 5 {
			t.Errorf("with the leader inside its commit: leading %v, %d changes queued; want leading, 5 queued", leading, pending)
		}
		close(hold)
		wg.Wait()
		if s.group.commits != 2 {
			t.Errorf("6 changes, 5 queued behind the leader: got %d commits, want 2", s.group.commits)
		}
		err := s.db.View(func(tx *bbolt.Tx) error {
			if n := tx.Bucket([]byte("share")).Stats().KeyN; n != 6 {
				t.Errorf("keys written: got %d, want 6", n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func atoiOr0(b []byte) int {
	n := 0
	fmt.Sscan(string(b), &n)
	return n
}
