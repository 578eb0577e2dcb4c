package bolt

import (
	"context"
	"errors"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// Placeholders while the batched ledger calls are written (issue 5).
var errBatchPending = errors.New("bolt: batched ledger calls not written yet")

func (s *Store) CreateDeliveries(ctx context.Context, rows []*newsletter.Delivery) ([]bool, error) {
	return nil, errBatchPending
}

func (s *Store) ClaimDeliveries(ctx context.Context, digestID string, ids []string, now, leaseUntil time.Time) ([]newsletter.Claim, error) {
	return nil, errBatchPending
}

func (s *Store) SettleDeliveries(ctx context.Context, digestID string, outcomes []newsletter.Outcome, now time.Time) ([]bool, error) {
	return nil, errBatchPending
}

func (s *Store) SubscribersByID(ctx context.Context, ids []string) ([]*newsletter.Subscriber, error) {
	return nil, errBatchPending
}
