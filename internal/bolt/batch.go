package bolt

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// The batched ledger calls each run in one write transaction, so a page of
// fan-out or a send task costs one commit (and one pair of fsyncs) instead
// of one per reader, and their counters are moved once per call; and the
// calls of concurrent queue workers share commits (groupCommit).

// CreateDeliveries adds the rows of one digest that do not exist yet and
// counts them, in one transaction. EINVALID, with nothing written, for a
// row without keys or rows of more than one digest.
func (s *Store) CreateDeliveries(ctx context.Context, rows []*newsletter.Delivery) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	digestID, err := newsletter.DeliveriesDigest(rows)
	if err != nil {
		return nil, err
	}
	created := make([]bool, len(rows))
	err = s.group.update(func(tx *bbolt.Tx) error {
		clear(created) // a change may run twice (see groupCommit)
		b, err := tx.Bucket(bucketDeliveries).CreateBucketIfNotExists([]byte(digestID))
		if err != nil {
			return fmt.Errorf("create deliveries %s: %w", digestID, err)
		}
		// Fan-out pages come in subscriber ID order, which bbolt fills
		// pages best with; FillPercent only matters for appends.
		b.FillPercent = 0.9
		// Read every key first (see walker), then write.
		w := newWalker(b)
		seen := make(map[string]bool, len(rows))
		var c newsletter.Counters
		for i, d := range rows {
			if seen[d.SubscriberID] || w.get([]byte(d.SubscriberID)) != nil {
				continue
			}
			seen[d.SubscriberID] = true
			created[i] = true
			c.Total++
			c.Add(d.Status, 1)
		}
		buf := make([]byte, 0, 64*len(rows))
		for i, d := range rows {
			if !created[i] {
				continue
			}
			if buf, err = putDelivery(b, []byte(d.SubscriberID), d, buf); err != nil {
				return fmt.Errorf("create deliveries %s: %w", digestID, err)
			}
		}
		return addCounts(tx, digestID, func(have *newsletter.Counters) { have.Merge(c) })
	})
	if err != nil {
		return nil, err
	}
	return created, nil
}

// ClaimDeliveries moves the listed queued rows to sending under a lease, in
// one transaction, and returns every listed row as it stands.
func (s *Store) ClaimDeliveries(ctx context.Context, digestID string, ids []string, now, leaseUntil time.Time) ([]newsletter.Claim, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	claims := make([]newsletter.Claim, len(ids))
	if digestID == "" || len(ids) == 0 {
		return claims, nil
	}
	err := s.group.update(func(tx *bbolt.Tx) error {
		clear(claims) // a change may run twice (see groupCommit)
		b := deliveryRows(tx, digestID)
		if b == nil {
			return nil
		}
		// Read and claim every row first (see walker), then write those
		// claimed. A repeated ID shares its first position's record, so
		// it is seen as claimed already.
		w := newWalker(b)
		rows := make(map[string]*newsletter.Delivery, len(ids))
		var claimed int64
		for i, id := range ids {
			if id == "" {
				continue
			}
			d, ok := rows[id]
			if !ok {
				var err error
				if d, err = decodeDelivery(w.get([]byte(id)), digestID, id); err != nil {
					return fmt.Errorf("claim deliveries %s: %w", digestID, err)
				}
				rows[id] = d
			}
			if d == nil {
				continue
			}
			claims[i].Row = d
			if d.Status != newsletter.DeliveryQueued {
				continue
			}
			d.Status, d.LeaseUntil, d.UpdatedAt = newsletter.DeliverySending, leaseUntil, now
			d.Attempts++
			claims[i].Claimed = true
			claimed++
		}
		if claimed == 0 {
			return nil
		}
		buf := make([]byte, 0, 64*int(claimed))
		for i, c := range claims {
			if !c.Claimed {
				continue
			}
			var err error
			if buf, err = putDelivery(b, []byte(ids[i]), c.Row, buf); err != nil {
				return fmt.Errorf("claim deliveries %s: %w", digestID, err)
			}
		}
		return addCounts(tx, digestID, func(c *newsletter.Counters) {
			c.Queued -= claimed
			c.Sending += claimed
		})
	})
	if err != nil {
		return nil, err
	}
	// A row claimed twice in one call (a repeated ID) is returned as the
	// same record: give each position its own copy.
	for i := range claims {
		if claims[i].Row != nil {
			r := *claims[i].Row
			claims[i].Row = &r
		}
	}
	return claims, nil
}

// SettleDeliveries records the outcomes of unsettled rows in one
// transaction.
func (s *Store) SettleDeliveries(ctx context.Context, digestID string, outcomes []newsletter.Outcome, now time.Time) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := newsletter.CheckOutcomes(outcomes); err != nil {
		return nil, err
	}
	written := make([]bool, len(outcomes))
	if digestID == "" || len(outcomes) == 0 {
		return written, nil
	}
	err := s.group.update(func(tx *bbolt.Tx) error {
		clear(written) // a change may run twice (see groupCommit)
		b := deliveryRows(tx, digestID)
		if b == nil {
			return nil
		}
		// Read and settle every row first (see walker), then write those
		// settled. A repeated ID shares its first outcome's record, so a
		// second outcome finds it settled (or, released to queued, takes
		// the second outcome too, as it would row by row).
		w := newWalker(b)
		type row struct {
			d     *newsletter.Delivery
			dirty bool
		}
		rows := make(map[string]*row, len(outcomes))
		var dirty []*row // in the order first written
		var c newsletter.Counters
		for i, o := range outcomes {
			r, ok := rows[o.SubscriberID]
			if !ok {
				d, err := decodeDelivery(w.get([]byte(o.SubscriberID)), digestID, o.SubscriberID)
				if err != nil {
					return fmt.Errorf("settle deliveries %s: %w", digestID, err)
				}
				r = &row{d: d}
				rows[o.SubscriberID] = r
			}
			d := r.d
			if d == nil || d.Status.Settled() {
				continue
			}
			c.Add(d.Status, -1)
			c.Add(o.Status, 1)
			d.Status, d.MessageID, d.Reason = o.Status, o.MessageID, o.Reason
			d.LeaseUntil, d.UpdatedAt = time.Time{}, now
			written[i] = true
			if !r.dirty {
				r.dirty = true
				dirty = append(dirty, r)
			}
		}
		buf := make([]byte, 0, 96*len(dirty))
		for _, r := range dirty {
			var err error
			if buf, err = putDelivery(b, []byte(r.d.SubscriberID), r.d, buf); err != nil {
				return fmt.Errorf("settle deliveries %s: %w", digestID, err)
			}
		}
		return addCounts(tx, digestID, func(have *newsletter.Counters) { have.Merge(c) })
	})
	if err != nil {
		return nil, err
	}
	return written, nil
}

// SubscribersByID reads the listed readers in one transaction.
func (s *Store) SubscribersByID(ctx context.Context, ids []string) ([]*newsletter.Subscriber, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]*newsletter.Subscriber, len(ids))
	err := s.db.View(func(tx *bbolt.Tx) error {
		w := newWalker(tx.Bucket(bucketSubscribers))
		for i, id := range ids {
			if id == "" {
				continue
			}
			data := w.get([]byte(id))
			if data == nil {
				continue
			}
			sub, err := decodeSubscriber(data, id)
			if err != nil {
				return fmt.Errorf("decode subscriber %q: %w", id, err)
			}
			out[i] = sub
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
