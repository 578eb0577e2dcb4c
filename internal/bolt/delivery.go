package bolt

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// CreateDelivery adds a ledger row and counts it in its digest's counters
// in the same transaction. ECONFLICT when the row exists; EINVALID without
// a digest or subscriber ID.
func (s *Store) CreateDelivery(ctx context.Context, d *newsletter.Delivery) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d == nil || d.DigestID == "" || d.SubscriberID == "" {
		return newsletter.Errorf(newsletter.EINVALID, "Delivery digest and subscriber IDs are required.")
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		rows, err := tx.Bucket(bucketDeliveries).CreateBucketIfNotExists([]byte(d.DigestID))
		if err != nil {
			return fmt.Errorf("create delivery %s/%s: %w", d.DigestID, d.SubscriberID, err)
		}
		if rows.Get([]byte(d.SubscriberID)) != nil {
			return newsletter.Errorf(newsletter.ECONFLICT, "This delivery exists.")
		}
		if _, err := putDelivery(rows, []byte(d.SubscriberID), d, nil); err != nil {
			return fmt.Errorf("create delivery %s: %w", d.DigestID, err)
		}
		return addCounts(tx, d.DigestID, func(c *newsletter.Counters) {
			c.Total++
			c.Add(d.Status, 1)
		})
	})
}

// Delivery returns one ledger row. ENOTFOUND.
func (s *Store) Delivery(ctx context.Context, digestID, subscriberID string) (*newsletter.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var d *newsletter.Delivery
	err := s.db.View(func(tx *bbolt.Tx) (err error) {
		d, err = delivery(tx, digestID, subscriberID)
		return err
	})
	return d, err
}

// UpdateDelivery changes a ledger row through fn and moves it between its
// digest's counters, in one transaction. ENOTFOUND, EINVALID when fn
// changed the keys, or fn's error.
func (s *Store) UpdateDelivery(ctx context.Context, digestID, subscriberID string, fn func(*newsletter.Delivery) error) (*newsletter.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var d *newsletter.Delivery
	err := s.db.Update(func(tx *bbolt.Tx) (err error) {
		if d, err = delivery(tx, digestID, subscriberID); err != nil {
			return err
		}
		was := d.Status
		if err := fn(d); err != nil {
			return err
		}
		if d.DigestID != digestID || d.SubscriberID != subscriberID {
			return newsletter.Errorf(newsletter.EINVALID, "A delivery's digest and subscriber cannot be changed.")
		}
		rows := tx.Bucket(bucketDeliveries).Bucket([]byte(digestID))
		if _, err := putDelivery(rows, []byte(subscriberID), d, nil); err != nil {
			return fmt.Errorf("update delivery %s: %w", digestID, err)
		}
		if d.Status == was {
			return nil
		}
		return addCounts(tx, digestID, func(c *newsletter.Counters) {
			c.Add(was, -1)
			c.Add(d.Status, 1)
		})
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Deliveries lists a digest's ledger rows matching f, ordered by
// subscriber ID, a page at a time. A digest without rows, or an unknown
// one, has none. EINVALID for a cursor this listing did not return.
func (s *Store) Deliveries(ctx context.Context, digestID string, f newsletter.DeliveryFilter, p newsletter.Page) ([]*newsletter.Delivery, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	after, err := decodeCursor(cursorDeliveries, p.Cursor, 1)
	if err != nil {
		return nil, "", err
	}
	sc := scan[*newsletter.Delivery]{
		kind: cursorDeliveries,
		visit: func(k, v []byte) (*newsletter.Delivery, bool, bool, error) {
			d, err := decodeRow(v, digestID, string(k))
			if err != nil {
				return nil, false, false, fmt.Errorf("list deliveries %s: decode %q: %w", digestID, k, err)
			}
			return d, f.Match(d), false, nil
		},
	}
	var (
		out  []*newsletter.Delivery
		next string
	)
	err = s.db.View(func(tx *bbolt.Tx) (err error) {
		rows := deliveryRows(tx, digestID)
		if rows == nil {
			return nil
		}
		out, next, err = sc.page(rows.Cursor(), after, p.Size())
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// DeliveryCounts returns how many of a digest's ledger rows are in each
// status, read from counters kept up to date by every write, not counted.
// A digest with no rows, or an unknown one, has zero counters.
func (s *Store) DeliveryCounts(ctx context.Context, digestID string) (newsletter.Counters, error) {
	if err := ctx.Err(); err != nil {
		return newsletter.Counters{}, err
	}
	var c newsletter.Counters
	err := s.db.View(func(tx *bbolt.Tx) error {
		if digestID == "" {
			return nil
		}
		_, err := get(tx.Bucket(bucketDeliveryCounts), "delivery counts", digestID, &c)
		return err
	})
	if err != nil {
		return newsletter.Counters{}, err
	}
	return c, nil
}

// deliveryRows returns the bucket of a digest's ledger rows, nil when it
// has none.
func deliveryRows(tx *bbolt.Tx, digestID string) *bbolt.Bucket {
	if digestID == "" {
		return nil
	}
	return tx.Bucket(bucketDeliveries).Bucket([]byte(digestID))
}

// delivery reads one ledger row. ENOTFOUND.
func delivery(tx *bbolt.Tx, digestID, subscriberID string) (*newsletter.Delivery, error) {
	rows := deliveryRows(tx, digestID)
	if rows == nil || subscriberID == "" {
		return nil, notFound("Delivery")
	}
	d, err := getDelivery(rows, digestID, []byte(subscriberID))
	if err != nil {
		return nil, err
	} else if d == nil {
		return nil, notFound("Delivery")
	}
	return d, nil
}

// addCounts changes a digest's counters through fn.
func addCounts(tx *bbolt.Tx, digestID string, fn func(*newsletter.Counters)) error {
	b := tx.Bucket(bucketDeliveryCounts)
	var c newsletter.Counters
	if _, err := get(b, "delivery counts", digestID, &c); err != nil {
		return err
	}
	fn(&c)
	if err := put(b, digestID, c); err != nil {
		return fmt.Errorf("count deliveries: %w", err)
	}
	return nil
}

// getDelivery decodes the ledger row under key, nil when there is none.
func getDelivery(b *bbolt.Bucket, digestID string, key []byte) (*newsletter.Delivery, error) {
	return decodeDelivery(b.Get(key), digestID, string(key))
}

// decodeDelivery decodes the stored row data, nil when data is.
func decodeDelivery(data []byte, digestID, subscriberID string) (*newsletter.Delivery, error) {
	if data == nil {
		return nil, nil
	}
	d, err := decodeRow(data, digestID, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("decode delivery %q: %w", subscriberID, err)
	}
	return d, nil
}

// putDelivery stores a ledger row under key, in the binary form, encoded
// at the end of buf, and returns buf with the row. bbolt keeps the value
// until the transaction commits, so a batched call encodes its rows one
// after another into one buffer: a row's bytes are never overwritten, and
// a buffer that grows leaves the earlier rows where they were.
func putDelivery(b *bbolt.Bucket, key []byte, d *newsletter.Delivery, buf []byte) ([]byte, error) {
	start := len(buf)
	buf = appendRow(buf, d)
	if err := b.Put(key, buf[start:len(buf):len(buf)]); err != nil {
		return buf, fmt.Errorf("put delivery %q: %w", key, err)
	}
	return buf, nil
}
