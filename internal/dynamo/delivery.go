package dynamo

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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

// counterShard returns the sort key of the counter shard that counts the
// reader's row: a hash of the subscriber ID picks one of counterShards.
func counterShard(subscriberID string) string {
	h := fnv.New32a()
	h.Write([]byte(subscriberID))
	return fmt.Sprintf("%s%02d", prefixCount, h.Sum32()%counterShards)
}

// countMove returns the atomic ADD that counts a row as moving from one
// status to another on its counter shard: from "" for a new row, which
// also counts in the total. It returns nil when no counter changes.
func countMove(digestID, subscriberID string, from, to newsletter.DeliveryStatus, created bool) *types.Update {
	var adds []string
	names := map[string]string{"#type": "type"}
	values := item{":type": str(typeCounters)}
	if created {
		adds = append(adds, "#total :one")
		names["#total"], values[":one"] = "total", num(1)
	}
	if from != to {
		if !created && slices.Contains(newsletter.DeliveryStatuses, from) {
			adds = append(adds, "#from :minus")
			names["#from"], values[":minus"] = string(from), num(-1)
		}
		if slices.Contains(newsletter.DeliveryStatuses, to) {
			adds = append(adds, "#to :one")
			names["#to"], values[":one"] = string(to), num(1)
		}
	}
	if len(adds) == 0 {
		return nil
	}
	return &types.Update{
		Key:                       key(prefixDigest+digestID, counterShard(subscriberID)),
		UpdateExpression:          aws.String("SET #type = :type ADD " + strings.Join(adds, ", ")),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
}

// CreateDelivery adds a ledger row and counts it on a counter shard of its
// digest, in one transaction. ECONFLICT when the row exists; EINVALID
// without a digest or subscriber ID.
func (s *Store) CreateDelivery(ctx context.Context, d *newsletter.Delivery) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d == nil || d.DigestID == "" || d.SubscriberID == "" {
		return newsletter.Errorf(newsletter.EINVALID, "Delivery digest and subscriber IDs are required.")
	}
	it, err := encodeDelivery(d, 1)
	if err != nil {
		return err
	}
	count := countMove(d.DigestID, d.SubscriberID, "", d.Status, true)
	for range maxAttempts {
		err = s.transact(ctx,
			types.TransactWriteItem{Put: &types.Put{Item: it, ConditionExpression: condNew}},
			types.TransactWriteItem{Update: count},
		)
		failed, retry, _ := transactOutcome(err)
		switch {
		case err == nil:
			return nil
		case failed == 0:
			return newsletter.Errorf(newsletter.ECONFLICT, "This delivery exists.")
		case !retry:
			return fmt.Errorf("create delivery %s/%s: %w", d.DigestID, d.SubscriberID, err)
		}
	}
	return fmt.Errorf("create delivery %s/%s: %w", d.DigestID, d.SubscriberID, err)
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

// UpdateDelivery changes a ledger row through fn and, when its status
// changed, moves it between its digest's counters in the same
// transaction; the row's write is conditional on the version read.
// ENOTFOUND, EINVALID when fn changed the keys, or fn's error.
func (s *Store) UpdateDelivery(ctx context.Context, digestID, subscriberID string, fn func(*newsletter.Delivery) error) (*newsletter.Delivery, error) {
	var out *newsletter.Delivery
	err := s.optimistic(ctx, "update delivery "+digestID+"/"+subscriberID, func(consistent bool) error {
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
		put := &types.Put{Item: it, ConditionExpression: condVersion, ExpressionAttributeValues: versionValues(rec.Version)}
		if count := countMove(digestID, subscriberID, rec.Status, d.Status, false); count != nil {
			err = s.transact(ctx, types.TransactWriteItem{Put: put}, types.TransactWriteItem{Update: count})
			if failed, retry, _ := transactOutcome(err); failed == 0 || retry {
				return errStale
			}
		} else {
			err = s.putItem(ctx, &dynamodb.PutItemInput{Item: put.Item, ConditionExpression: put.ConditionExpression, ExpressionAttributeValues: put.ExpressionAttributeValues})
			if conditionFailed(err) || conflict(err) {
				return errStale
			}
		}
		if err != nil {
			return fmt.Errorf("update delivery %s/%s: %w", digestID, subscriberID, err)
		}
		out = &d
		return nil
	})
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
// status: the sum of its counter shards, kept by every write and read with
// one strongly consistent Query. A digest with no rows, or an unknown one,
// has zero counters.
func (s *Store) DeliveryCounts(ctx context.Context, digestID string) (newsletter.Counters, error) {
	if err := ctx.Err(); err != nil {
		return newsletter.Counters{}, err
	}
	var total newsletter.Counters
	if digestID == "" {
		return total, nil
	}
	in := &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :count)"),
		ExpressionAttributeValues: item{":pk": str(prefixDigest + digestID), ":count": str(prefixCount)},
		ConsistentRead:            aws.Bool(true),
	}
	for {
		res, err := s.query(ctx, in)
		if err != nil {
			return newsletter.Counters{}, fmt.Errorf("count deliveries %s: %w", digestID, err)
		}
		for _, it := range res.Items {
			var c newsletter.Counters
			if err := unmarshal(it, &c); err != nil {
				return newsletter.Counters{}, fmt.Errorf("count deliveries %s: decode: %w", digestID, err)
			}
			total.Total += c.Total
			total.Queued += c.Queued
			total.Sending += c.Sending
			total.Sent += c.Sent
			total.Skipped += c.Skipped
			total.Failed += c.Failed
			total.Unknown += c.Unknown
			total.Bounced += c.Bounced
			total.Complained += c.Complained
		}
		if res.LastEvaluatedKey == nil {
			return total, nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}
