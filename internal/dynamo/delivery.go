package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// deliveryItem is a ledger row as stored.
type deliveryItem struct {
	keys
	newsletter.Delivery
}

func deliveryKey(digestID, subscriberID string) item {
	return key(prefixDigest+digestID, prefixRow+subscriberID)
}

func encodeDelivery(d *newsletter.Delivery, v int64) (item, error) {
	it, err := marshal(deliveryItem{
		keys:     keys{PK: prefixDigest + d.DigestID, SK: prefixRow + d.SubscriberID, Type: typeDelivery, Version: v},
		Delivery: *d,
	})
	if err != nil {
		return nil, fmt.Errorf("encode delivery %s/%s: %w", d.DigestID, d.SubscriberID, err)
	}
	return it, nil
}

func decodeDelivery(it item) (*deliveryItem, error) {
	var rec deliveryItem
	if err := unmarshal(it, &rec); err != nil {
		return nil, fmt.Errorf("decode delivery %v/%v: %w", it[attrPK], it[attrSK], err)
	}
	return &rec, nil
}

// CreateDelivery adds a ledger row with a PutItem on attribute_not_exists
// and counts it, between the opening and closing of a marker on a
// counter shard (ledger.go): three write units, where a transaction of
// the row and a counter would bill four. ECONFLICT when the row exists;
// EINVALID without a digest or subscriber ID.
func (s *Store) CreateDelivery(ctx context.Context, d *newsletter.Delivery) error {
	created, err := s.CreateDeliveries(ctx, []*newsletter.Delivery{d})
	if err != nil {
		if newsletter.ErrorCode(err) == newsletter.EINVALID {
			return newsletter.Errorf(newsletter.EINVALID, "Delivery digest and subscriber IDs are required.")
		}
		return fmt.Errorf("create delivery %s/%s: %w", d.DigestID, d.SubscriberID, err)
	}
	if !created[0] {
		return newsletter.Errorf(newsletter.ECONFLICT, "This delivery exists.")
	}
	return nil
}

// delivery reads one ledger row. ENOTFOUND.
func (s *Store) delivery(ctx context.Context, digestID, subscriberID string, consistent bool) (*deliveryItem, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if digestID == "" || subscriberID == "" {
		return nil, notFound("Delivery")
	}
	it, err := s.getItem(ctx, deliveryKey(digestID, subscriberID), consistent)
	if err != nil {
		return nil, fmt.Errorf("get delivery %s/%s: %w", digestID, subscriberID, err)
	}
	if it == nil {
		return nil, notFound("Delivery")
	}
	return decodeDelivery(it)
}

// Delivery returns one ledger row. ENOTFOUND.
func (s *Store) Delivery(ctx context.Context, digestID, subscriberID string) (*newsletter.Delivery, error) {
	rec, err := s.delivery(ctx, digestID, subscriberID, true)
	if err != nil {
		return nil, err
	}
	return &rec.Delivery, nil
}

// UpdateDelivery changes a ledger row through fn with a PutItem
// conditional on the version read. When the status changes, the put runs
// between the opening and closing of a marker on a counter shard
// (ledger.go), opened once however many attempts it takes: three write
// units in all, one when the status stays. ENOTFOUND, EINVALID when fn
// changed the keys, or fn's error.
func (s *Store) UpdateDelivery(ctx context.Context, digestID, subscriberID string, fn func(*newsletter.Delivery) error) (*newsletter.Delivery, error) {
	var (
		out     *newsletter.Delivery
		call    *ledgerCall
		moves   newsletter.Counters
		unknown bool
	)
	what := "update delivery " + digestID + "/" + subscriberID
	err := s.optimistic(ctx, what, func(consistent bool) error {
		rec, err := s.delivery(ctx, digestID, subscriberID, consistent)
		if err != nil {
			return readStale(consistent, err)
		}
		d := rec.Delivery
		if err := fn(&d); err != nil {
			return fnStale(consistent, err)
		}
		if d.DigestID != digestID || d.SubscriberID != subscriberID {
			return fnStale(consistent, newsletter.Errorf(newsletter.EINVALID, "A delivery's digest and subscriber cannot be changed."))
		}
		it, err := encodeDelivery(&d, rec.Version+1)
		if err != nil {
			return err
		}
		put := &dynamodb.PutItemInput{Item: it, ConditionExpression: condVersion, ExpressionAttributeValues: versionValues(rec.Version)}
		wctx := ctx
		if rec.Status != d.Status {
			if call == nil {
				if call, err = s.openLedger(ctx, digestID); err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
			}
			var cancel context.CancelFunc
			wctx, cancel = context.WithDeadline(ctx, call.writeBy)
			defer cancel()
		}
		err = s.putItem(wctx, put)
		if conditionFailed(err) || conflict(err) {
			return errStale
		} else if err != nil {
			unknown = call != nil
			return fmt.Errorf("%s: %w", what, err)
		}
		if rec.Status != d.Status {
			moves.Add(rec.Status, -1)
			moves.Add(d.Status, 1)
		}
		out = &d
		return nil
	})
	if call != nil {
		if cerr := call.close(ctx, moves, unknown); cerr != nil && err == nil {
			err = fmt.Errorf("%s: %w", what, cerr)
		}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Deliveries lists a digest's ledger rows matching f, ordered by
// subscriber ID, a page at a time: a strongly consistent Query of the
// digest's partition, filtered on status. A digest without rows, or an
// unknown one, has none. EINVALID for a cursor this listing did not
// return.
func (s *Store) Deliveries(ctx context.Context, digestID string, f newsletter.DeliveryFilter, p newsletter.Page) ([]*newsletter.Delivery, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if digestID == "" {
		if p.Cursor != "" {
			return nil, "", errBadCursor
		}
		return nil, "", nil
	}
	l := &listing{
		name: "deliveries", pkAttr: attrPK, skAttr: attrSK, pk: prefixDigest + digestID, skPrefix: prefixRow,
		keyCond: "pk = :pk AND begins_with(sk, :row)",
		values:  item{":pk": str(prefixDigest + digestID), ":row": str(prefixRow)},
		names:   map[string]string{}, consistent: true,
	}
	if f.Status != "" {
		l.filter = "#status = :status"
		l.names["#status"] = "status"
		l.values[":status"] = str(string(f.Status))
	}
	items, next, err := s.page(ctx, l, p)
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries %s: %w", digestID, err)
	}
	out := make([]*newsletter.Delivery, 0, len(items))
	for _, it := range items {
		rec, err := decodeDelivery(it)
		if err != nil {
			return nil, "", fmt.Errorf("list deliveries: %w", err)
		}
		out = append(out, &rec.Delivery)
	}
	return out, next, nil
}

// DeliveryCounts returns how many of a digest's ledger rows are in each
// status: the sum of its counter shards, read with one strongly
// consistent Query (one read unit while the shards hold under 4 KB).
// When that Query finds the marker of a call that can no longer write
// (it crashed, or a row write's outcome was unknown) and none of a call
// that still can, it recounts the rows and repairs the shards instead
// (ledger.go): a Query of the whole ledger, about 8,500 read units for
// 100,000 readers, once per such failure. While live calls hold markers
// beside an expired one, the sums are returned as they are, possibly off
// by that failed call's rows, until the digest is quiet. A digest with no
// rows, or an unknown one, has zero counters.
func (s *Store) DeliveryCounts(ctx context.Context, digestID string) (newsletter.Counters, error) {
	if err := ctx.Err(); err != nil {
		return newsletter.Counters{}, err
	}
	if digestID == "" {
		return newsletter.Counters{}, nil
	}
	st, err := s.readShards(ctx, digestID)
	if err != nil {
		return newsletter.Counters{}, fmt.Errorf("count deliveries %s: %w", digestID, err)
	}
	if st.expired == 0 || st.live > 0 {
		return st.sum, nil
	}
	c, err := s.repair(ctx, digestID, st)
	if err != nil {
		return newsletter.Counters{}, fmt.Errorf("count deliveries %s: %w", digestID, err)
	}
	return c, nil
}
