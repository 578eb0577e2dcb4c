package bolt

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// digestRecord is a digest as stored. Digest.FanoutCursor is left out of
// the digest's JSON (it is no business of an API client), but the store
// must keep it, so it gets a field of its own here.
type digestRecord struct {
	newsletter.Digest
	FanoutCursor string `json:"fanoutCursor,omitempty"`
}

// CreateDigest adds a digest. ECONFLICT when its ID exists; EINVALID
// without an ID.
func (s *Store) CreateDigest(ctx context.Context, d *newsletter.Digest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d == nil || d.ID == "" {
		return newsletter.Errorf(newsletter.EINVALID, "Digest ID is required.")
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketDigests).Get([]byte(d.ID)) != nil {
			return newsletter.Errorf(newsletter.ECONFLICT, "A digest for this period exists.")
		}
		return putDigest(tx, nil, d)
	})
}

// Digest returns the digest with the ID. ENOTFOUND.
func (s *Store) Digest(ctx context.Context, id string) (*newsletter.Digest, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var d *newsletter.Digest
	err := s.db.View(func(tx *bbolt.Tx) (err error) {
		d, err = digest(tx, id)
		return err
	})
	return d, err
}

// UpdateDigest changes a digest through fn in one transaction. ENOTFOUND,
// EINVALID when fn changed the ID, or fn's error.
func (s *Store) UpdateDigest(ctx context.Context, id string, fn func(*newsletter.Digest) error) (*newsletter.Digest, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var d *newsletter.Digest
	err := s.db.Update(func(tx *bbolt.Tx) error {
		old, err := digest(tx, id)
		if err != nil {
			return err
		}
		// fn gets a copy decoded afresh, so that nothing it does to
		// slices reaches old.
		if d, err = digest(tx, id); err != nil {
			return err
		}
		if err := fn(d); err != nil {
			return err
		}
		if d.ID != id {
			return newsletter.Errorf(newsletter.EINVALID, "A digest's ID cannot be changed.")
		}
		return putDigest(tx, old, d)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Digests lists digests matching f, newest CreatedAt first (ties by ID,
// highest first), a page at a time. EINVALID for a cursor this listing did
// not return.
func (s *Store) Digests(ctx context.Context, f newsletter.DigestFilter, p newsletter.Page) ([]*newsletter.Digest, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	after, err := decodeCursor(cursorDigests, p.Cursor, timeKeyLen)
	if err != nil {
		return nil, "", err
	}
	var (
		out  []*newsletter.Digest
		next string
	)
	err = s.db.View(func(tx *bbolt.Tx) error {
		sc := scan[*newsletter.Digest]{
			kind:    cursorDigests,
			reverse: true,
			visit: func(k, _ []byte) (*newsletter.Digest, bool, bool, error) {
				if len(k) < timeKeyLen {
					return nil, false, false, fmt.Errorf("list digests: bad index key %q", k)
				}
				_, id := splitIndexKey(k)
				d, err := digest(tx, id)
				if err != nil {
					return nil, false, false, fmt.Errorf("list digests: index names digest %s: %w", id, err)
				}
				return d, f.Match(d), false, nil
			},
		}
		out, next, err = sc.page(tx.Bucket(bucketDigestsCreated).Cursor(), after, p.Size())
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// digest reads the digest with the ID. ENOTFOUND.
func digest(tx *bbolt.Tx, id string) (*newsletter.Digest, error) {
	var rec digestRecord
	if ok, err := get(tx.Bucket(bucketDigests), "digest", id, &rec); err != nil {
		return nil, err
	} else if !ok {
		return nil, notFound("Digest")
	}
	d := rec.Digest
	d.FanoutCursor = rec.FanoutCursor
	return &d, nil
}

// putDigest writes d and moves its index entry from where old (nil for a
// new digest) had it.
func putDigest(tx *bbolt.Tx, old, d *newsletter.Digest) error {
	index := tx.Bucket(bucketDigestsCreated)
	if old != nil {
		if err := index.Delete(indexKey(old.CreatedAt, old.ID)); err != nil {
			return fmt.Errorf("put digest %s: unindex: %w", d.ID, err)
		}
	}
	rec := digestRecord{Digest: *d, FanoutCursor: d.FanoutCursor}
	if err := put(tx.Bucket(bucketDigests), d.ID, rec); err != nil {
		return fmt.Errorf("put digest: %w", err)
	}
	if err := index.Put(indexKey(d.CreatedAt, d.ID), nil); err != nil {
		return fmt.Errorf("put digest %s: index: %w", d.ID, err)
	}
	return nil
}
