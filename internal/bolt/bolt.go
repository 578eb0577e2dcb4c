// Package bolt keeps Broadsheet's records in one bbolt file: the embedded
// store used on a laptop, where there is no DynamoDB.
//
// Every record is kept under its ID in a bucket of its own, as JSON except
// for the two that a digest reads per reader, subscribers and ledger rows,
// which have a compact binary form (codec.go); the listings
// that are not by ID walk index buckets whose keys sort in listing order.
// A record and its index entries are always written in one transaction, so
// the indexes never drift from the records.
package bolt

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// Bucket names. Index buckets map a sortable key to nothing (the record's
// ID is the key's tail) or to the record's ID.
var (
	bucketSubscribers        = []byte("subscribers")          // ID → Subscriber
	bucketSubscriberEmails   = []byte("subscriber_emails")    // EmailKey → ID
	bucketArticles           = []byte("articles")             // ID → Article
	bucketArticlesPublished  = []byte("articles_published")   // PublishedAt + ID → nothing
	bucketDigests            = []byte("digests")              // ID → digestRecord
	bucketDigestsCreated     = []byte("digests_created")      // CreatedAt + ID → nothing
	bucketDeliveries         = []byte("deliveries")           // digest ID → bucket: subscriber ID → Delivery
	bucketDeliveryCounts     = []byte("delivery_counts")      // digest ID → Counters
	bucketEditorTokens       = []byte("editor_tokens")        // ID → tokenRecord
	bucketEditorTokensByHash = []byte("editor_tokens_hashes") // hash → ID
	bucketCheckpoints        = []byte("checkpoints")          // name → Checkpoint
)

var allBuckets = [][]byte{
	bucketSubscribers, bucketSubscriberEmails, bucketArticles, bucketArticlesPublished,
	bucketDigests, bucketDigestsCreated, bucketDeliveries, bucketDeliveryCounts,
	bucketEditorTokens, bucketEditorTokensByHash, bucketCheckpoints,
}

// DefaultLockTimeout is how long Open waits for another process to let go
// of the data file before it gives up.
const DefaultLockTimeout = time.Second

// Store is a newsletter.Store in a bbolt file. It is safe for concurrent
// use; bbolt runs one write transaction at a time, which is what makes the
// Update methods atomic.
type Store struct {
	db    *bbolt.DB
	group *groupCommit // the batched ledger writes

	released atomic.Int64 // when the mapped pages were last released, Unix ns
}

// releaseEvery is how often a store in use hands the data file's mapped
// pages back (see releaseMapped). At full speed a send reads and writes
// about a quarter of a 100,000-reader file in that time.
const releaseEvery = 250 * time.Millisecond

// upkeep releases the mapped pages if releaseEvery has passed since the
// last time. The batched ledger calls and the reader listing, which touch
// the most pages, call it.
func (s *Store) upkeep() {
	now := time.Now().UnixNano()
	last := s.released.Load()
	if now-last < int64(releaseEvery) || !s.released.CompareAndSwap(last, now) {
		return
	}
	// Only memory is at stake: an error leaves the pages resident.
	_ = releaseMapped(s.db)
}

var _ newsletter.Store = (*Store)(nil)

// Option changes how Open opens the file.
type Option func(*bbolt.Options)

// LockTimeout sets how long Open waits for the file lock held by another
// process. Zero would wait forever, so it is treated as DefaultLockTimeout.
func LockTimeout(d time.Duration) Option {
	return func(o *bbolt.Options) {
		if d > 0 {
			o.Timeout = d
		}
	}
}

// Open opens the data file at path, creating it (and its directory) when
// missing. Only one process may hold the file: when another one does, Open
// gives up after the lock timeout with an error that says so.
func Open(path string, opts ...Option) (*Store, error) {
	// The freelist is kept as a map (cheaper to update at every commit
	// than the default array once the file is large) and written at each
	// commit: rebuilding it at open instead (NoFreelistSync) would walk
	// every page of the file, making all of it resident at once.
	bo := &bbolt.Options{Timeout: DefaultLockTimeout, FreelistType: bbolt.FreelistMapType}
	for _, opt := range opts {
		opt(bo)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db, err := bbolt.Open(path, 0o600, bo)
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: the data file is in use by another Broadsheet process (stop it, or use another data file): %w", path, err)
	} else if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db, group: &groupCommit{db: db}}
	s.group.release = s.upkeep
	return s, nil
}

// Close releases the data file. The Store must not be used afterwards.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.db.Path(), err)
	}
	return nil
}

// timeKeyLen is the length of a time in an index key.
const timeKeyLen = 12

// indexKey returns a key that sorts by t, then by id: the Unix seconds with
// the sign bit flipped (so that times before 1970 sort first), then the
// nanoseconds, both big-endian, then the ID. Times are compared as
// instants, whatever their zone.
func indexKey(t time.Time, id string) []byte {
	k := make([]byte, timeKeyLen, timeKeyLen+len(id))
	binary.BigEndian.PutUint64(k, uint64(t.Unix())^(1<<63))
	binary.BigEndian.PutUint32(k[8:], uint32(t.Nanosecond()))
	return append(k, id...)
}

// splitIndexKey is the inverse of indexKey. It assumes len(k) >= timeKeyLen.
func splitIndexKey(k []byte) (time.Time, string) {
	sec := int64(binary.BigEndian.Uint64(k) ^ (1 << 63))
	nsec := int64(binary.BigEndian.Uint32(k[8:]))
	return time.Unix(sec, nsec), string(k[timeKeyLen:])
}

// get decodes the JSON record under key into v. It reports false when
// there is none; what names the kind of record in errors.
func get(b *bbolt.Bucket, what, key string, v any) (bool, error) {
	data := b.Get([]byte(key))
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("decode %s %q: %w", what, key, err)
	}
	return true, nil
}

// put stores v as JSON under key.
func put(b *bbolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	if err := b.Put([]byte(key), data); err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	return nil
}

// notFound returns the ENOTFOUND error for a kind of record.
func notFound(what string) error {
	return newsletter.Errorf(newsletter.ENOTFOUND, "%s not found.", what)
}
