package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// A checkpoint is one item, pk CHECKPOINT#<name>, sk CHECKPOINT, in no
// index: it is only ever read by its name.
const (
	prefixCheckpoint = "CHECKPOINT#"
	skCheckpoint     = "CHECKPOINT"
	typeCheckpoint   = "checkpoint"
)

// checkpointItem is a checkpoint as stored.
type checkpointItem struct {
	keys
	newsletter.Checkpoint
}

// Checkpoint returns the checkpoint with the name, read consistently so
// that a job resumes exactly where its last run stopped. ENOTFOUND.
func (s *Store) Checkpoint(ctx context.Context, name string) (*newsletter.Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, notFound("Checkpoint")
	}
	it, err := s.getItem(ctx, key(prefixCheckpoint+name, skCheckpoint), true)
	if err != nil {
		return nil, fmt.Errorf("get checkpoint %s: %w", name, err)
	}
	if it == nil {
		return nil, notFound("Checkpoint")
	}
	var rec checkpointItem
	if err := unmarshal(it, &rec); err != nil {
		return nil, fmt.Errorf("decode checkpoint %s: %w", name, err)
	}
	c := rec.Checkpoint
	return &c, nil
}

// PutCheckpoint creates or replaces a checkpoint: one unconditional put,
// since the job that owns a checkpoint is its only writer. EINVALID
// without a name.
func (s *Store) PutCheckpoint(ctx context.Context, c *newsletter.Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := newsletter.CheckCheckpoint(c); err != nil {
		return err
	}
	it, err := marshal(checkpointItem{
		keys:       keys{PK: prefixCheckpoint + c.Name, SK: skCheckpoint, Type: typeCheckpoint, Version: 1},
		Checkpoint: *c,
	})
	if err != nil {
		return fmt.Errorf("encode checkpoint %s: %w", c.Name, err)
	}
	if err := s.putItem(ctx, &dynamodb.PutItemInput{Item: it}); err != nil {
		return fmt.Errorf("put checkpoint %s: %w", c.Name, err)
	}
	return nil
}
