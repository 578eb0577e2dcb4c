package bolt

import (
	"context"

	"go.etcd.io/bbolt"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// Checkpoint returns the checkpoint with the name. ENOTFOUND.
func (s *Store) Checkpoint(ctx context.Context, name string) (*newsletter.Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var c newsletter.Checkpoint
	err := s.db.View(func(tx *bbolt.Tx) error {
		ok, err := get(tx.Bucket(bucketCheckpoints), "checkpoint", name, &c)
		if err == nil && !ok {
			err = notFound("Checkpoint")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// PutCheckpoint creates or replaces a checkpoint. EINVALID without a name.
func (s *Store) PutCheckpoint(ctx context.Context, c *newsletter.Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := newsletter.CheckCheckpoint(c); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		return put(tx.Bucket(bucketCheckpoints), c.Name, c)
	})
}
