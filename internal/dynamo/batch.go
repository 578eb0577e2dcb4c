package dynamo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// The batched ledger calls write each row with its own conditional
// PutItem or UpdateItem (one write unit for a row under 1 KB, no
// transaction), rowWriters at a time, between opening and closing a
// marker on a counter shard (ledger.go): two more writes per call,
// whatever its size. A condition that fails is billed one unit too but
// reports the row as it stands (ReturnValuesOnConditionCheckFailure), so
// no row is read before it is written.

// CreateDeliveries adds the rows of one digest that do not exist yet
// (PutItem on attribute_not_exists) and counts the ones created. EINVALID,
// with nothing written, for a row without keys or rows of more than one
// digest. After another error every row created is counted (see
// writeRows).
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
	items := make([]item, len(rows))
	for i, d := range rows {
		it, err := encodeDelivery(d, 1)
		if err != nil {
			return nil, err
		}
		items[i] = it
	}
	results, err := s.writeRows(ctx, digestID, len(rows), func(ctx context.Context, i int) rowWrite {
		err := s.putItem(ctx, &dynamodb.PutItemInput{Item: items[i], ConditionExpression: condNew})
		switch {
		case conditionFailed(err):
			return rowWrite{}
		case err != nil:
			return rowWrite{err: err}
		}
		r := rowWrite{written: true}
		r.moves.Total = 1
		r.moves.Add(rows[i].Status, 1)
		return r
	})
	if err != nil {
		return nil, fmt.Errorf("create deliveries %s: %w", digestID, err)
	}
	created := make([]bool, len(rows))
	for i, r := range results {
		created[i] = r.written
	}
	return created, nil
}

// ClaimDeliveries moves the listed queued rows to sending, each with one
// UpdateItem conditional on status = queued that returns the row after
// it (ALL_NEW) or, when the condition fails, as it stands (ALL_OLD), and
// counts the rows claimed.
func (s *Store) ClaimDeliveries(ctx context.Context, digestID string, ids []string, now, leaseUntil time.Time) ([]newsletter.Claim, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	claims := make([]newsletter.Claim, len(ids))
	if digestID == "" || !slices.ContainsFunc(ids, func(id string) bool { return id != "" }) {
		return claims, nil
	}
	nowAV, leaseAV := timeValue(now), timeValue(leaseUntil)
	results, err := s.writeRows(ctx, digestID, len(ids), func(ctx context.Context, i int) rowWrite {
		if ids[i] == "" {
			return rowWrite{}
		}
		out, err := s.updateItem(ctx, &dynamodb.UpdateItemInput{
			Key:                      deliveryKey(digestID, ids[i]),
			UpdateExpression:         aws.String("SET #status = :sending, leaseUntil = :lease, updatedAt = :now ADD attempts :one, v :one"),
			ConditionExpression:      aws.String("#status = :queued"),
			ExpressionAttributeNames: map[string]string{"#status": "status"},
			ExpressionAttributeValues: item{
				":sending": str(string(newsletter.DeliverySending)), ":queued": str(string(newsletter.DeliveryQueued)),
				":lease": leaseAV, ":now": nowAV, ":one": num(1),
			},
			ReturnValues:                        types.ReturnValueAllNew,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		var ccf *types.ConditionalCheckFailedException
		switch {
		case errors.As(err, &ccf):
			if err := s.claimRow(&claims[i], ccf.Item, false); err != nil {
				return rowWrite{err: err}
			}
			return rowWrite{}
		case err != nil:
			return rowWrite{err: err}
		}
		r := rowWrite{written: true}
		r.moves.Add(newsletter.DeliveryQueued, -1)
		r.moves.Add(newsletter.DeliverySending, 1)
		// A row claimed but not decoded is still counted (writeRows).
		r.err = s.claimRow(&claims[i], out.Attributes, true)
		return r
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries %s: %w", digestID, err)
	}
	for i, r := range results {
		claims[i].Claimed = r.written
	}
	return claims, nil
}

// claimRow decodes the row an UpdateItem returned into c; no item means
// no row.
func (s *Store) claimRow(c *newsletter.Claim, it item, claimed bool) error {
	if len(it) == 0 {
		return nil
	}
	rec, err := decodeDelivery(it)
	if err != nil {
		return err
	}
	c.Row, c.Claimed = &rec.Delivery, claimed
	return nil
}

// settledValues returns the statuses Status.Settled holds for as
// expression values :settled0…, and their names for an IN list.
func settledValues() (values item, in string) {
	values = item{}
	for _, st := range newsletter.DeliveryStatuses {
		if st.Settled() {
			name := fmt.Sprintf(":settled%d", len(values))
			values[name] = str(string(st))
			if in != "" {
				in += ", "
			}
			in += name
		}
	}
	return values, in
}

// SettleDeliveries writes each outcome to its row with one UpdateItem
// conditional on the row existing and not being settled, which returns
// the status it had (UPDATED_OLD) so that the move between the counters
// is known without a read. EINVALID, with nothing written, for an
// outcome without a subscriber ID or with an unknown status.
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
	settled, in := settledValues()
	nowAV := timeValue(now)
	results, err := s.writeRows(ctx, digestID, len(outcomes), func(ctx context.Context, i int) rowWrite {
		o := outcomes[i]
		values := item{":status": str(string(o.Status)), ":now": nowAV, ":one": num(1)}
		for k, v := range settled {
			values[k] = v
		}
		set, remove := "SET #status = :status, updatedAt = :now", " REMOVE leaseUntil"
		if o.MessageID != "" {
			set += ", messageId = :mid"
			values[":mid"] = str(o.MessageID)
		} else {
			remove += ", messageId"
		}
		if o.Reason != "" {
			set += ", reason = :reason"
			values[":reason"] = str(o.Reason)
		} else {
			remove += ", reason"
		}
		out, err := s.updateItem(ctx, &dynamodb.UpdateItemInput{
			Key:                       deliveryKey(digestID, o.SubscriberID),
			UpdateExpression:          aws.String(set + remove + " ADD v :one"),
			ConditionExpression:       aws.String("attribute_exists(pk) AND NOT (#status IN (" + in + "))"),
			ExpressionAttributeNames:  map[string]string{"#status": "status"},
			ExpressionAttributeValues: values,
			ReturnValues:              types.ReturnValueUpdatedOld,
		})
		switch {
		case conditionFailed(err):
			return rowWrite{}
		case err != nil:
			return rowWrite{err: err}
		}
		r := rowWrite{written: true}
		if v, ok := out.Attributes["status"].(*types.AttributeValueMemberS); ok {
			r.moves.Add(newsletter.DeliveryStatus(v.Value), -1)
		}
		r.moves.Add(o.Status, 1)
		return r
	})
	if err != nil {
		return nil, fmt.Errorf("settle deliveries %s: %w", digestID, err)
	}
	for i, r := range results {
		written[i] = r.written
	}
	return written, nil
}

// timeValue encodes t as marshal does (attributevalue's default for a
// time.Time).
func timeValue(t time.Time) types.AttributeValue { return str(t.Format(time.RFC3339Nano)) }

// maxBatchGet is BatchGetItem's limit of keys per request.
const maxBatchGet = 100

// The range read of SubscribersByID first reads a quarter as many
// subscribers as it was asked for (at least rangeProbeMin), and goes on
// only while at least rangeDensity of what it read was asked for: below
// about 0.15 (with subscriber items of 0.6 KB) BatchGetItem is cheaper.
const (
	rangeProbeMin = 10
	rangeDensity  = 0.2
)

// SubscribersByID reads the readers, eventually consistent, at half the
// price of a strong read: the sender re-reads its readers to honour an
// unsubscribe (or a change of sections) made since fan-out, and one made
// within the second or so before the send, which such a read may miss,
// is as good as made after it. Expired pending readers are nil like
// missing ones; a repeated ID gets a record of its own.
//
// Readers listed together by fan-out are neighbours in ID order, so it
// first reads the ID range they span from GSI2, where every subscriber is
// sorted by ID: a Query bills the bytes it reads together, about 4 read
// units for 50 neighbours of 0.6 KB, where a BatchGetItem bills half a
// unit per reader, 25. When the readers asked for are sparse in that
// range (a task of one variant among several), it stops after a short
// probe (about 1 unit for 50) and gets the rest with BatchGetItem, 100
// keys a request, asking again for the keys DynamoDB leaves unprocessed.
// The index lags the table as an eventually consistent read does: by a
// fraction of a second.
func (s *Store) SubscribersByID(ctx context.Context, ids []string) ([]*newsletter.Subscriber, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]*newsletter.Subscriber, len(ids))
	positions := map[string][]int{}
	for i, id := range ids {
		if id != "" {
			positions[id] = append(positions[id], i)
		}
	}
	unique := slices.Sorted(maps.Keys(positions))
	found := map[string]bool{}
	take := func(it item) (bool, error) {
		id := subscriberID(it)
		if _, ok := positions[id]; !ok || found[id] {
			return false, nil
		}
		found[id] = true
		for _, pos := range positions[id] {
			rec, err := decodeSubscriber(it) // a record of its own per position
			if err != nil {
				return false, fmt.Errorf("get subscribers: %w", err)
			}
			if !s.expired(rec.ExpiresAt) {
				out[pos] = &rec.Subscriber
			}
		}
		return true, nil
	}
	if len(unique) > 1 {
		if err := s.subscriberRange(ctx, unique, take); err != nil {
			return nil, err
		}
	}
	var rest []string
	for _, id := range unique {
		if !found[id] {
			rest = append(rest, id)
		}
	}
	if err := s.batchGetSubscribers(ctx, rest, take); err != nil {
		return nil, err
	}
	return out, nil
}

// subscriberRange passes take the subscribers of GSI2 whose IDs lie
// between the first and last of ids (sorted), for as long as enough of
// them are among ids (see rangeDensity).
func (s *Store) subscriberRange(ctx context.Context, ids []string, take func(item) (bool, error)) error {
	in := &dynamodb.QueryInput{
		IndexName:              aws.String(GSI2),
		KeyConditionExpression: aws.String("gsi2pk = :pk AND gsi2sk BETWEEN :first AND :last"),
		ExpressionAttributeValues: item{
			":pk": str(listSubscribers), ":first": str(ids[0]), ":last": str(ids[len(ids)-1]),
		},
	}
	limit, read, hits := max(len(ids)/4, rangeProbeMin), 0, 0
	for {
		in.Limit = aws.Int32(int32(limit))
		res, err := s.query(ctx, in)
		if err != nil {
			return fmt.Errorf("get subscribers: range: %w", err)
		}
		for _, it := range res.Items {
			hit, err := take(it)
			if err != nil {
				return err
			}
			if hit {
				hits++
			}
		}
		read += len(res.Items)
		if res.LastEvaluatedKey == nil || hits == len(ids) || float64(hits) < rangeDensity*float64(read) {
			return nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
		// Enough to meet the rest at the density seen so far, and a fifth.
		limit = min((len(ids)-hits)*read/hits*6/5+1, newsletter.MaxPageSize)
	}
}

// batchGetSubscribers passes take the subscriber items of ids that exist,
// read with BatchGetItem, eventually consistent.
func (s *Store) batchGetSubscribers(ctx context.Context, ids []string, take func(item) (bool, error)) error {
	for chunk := range slices.Chunk(ids, maxBatchGet) {
		keys := make([]item, len(chunk))
		for i, id := range chunk {
			keys[i] = subscriberKey(id)
		}
		request := map[string]types.KeysAndAttributes{s.table: {Keys: keys, ConsistentRead: aws.Bool(false)}}
		for attempt := 0; len(request) > 0; attempt++ {
			res, err := s.api.batchGetItem(ctx, &dynamodb.BatchGetItemInput{
				RequestItems:           request,
				ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
			})
			if err != nil {
				return fmt.Errorf("get subscribers: %w", err)
			}
			s.consume(false, res.ConsumedCapacity...)
			for _, it := range res.Responses[s.table] {
				if _, err := take(it); err != nil {
					return err
				}
			}
			request = res.UnprocessedKeys
			if len(request) > 0 {
				// Throttled: back off as the SDK's retryer would.
				wait := time.Duration(min(25<<attempt, 1000)) * time.Millisecond
				select {
				case <-ctx.Done():
					return fmt.Errorf("get subscribers: %w", ctx.Err())
				case <-time.After(wait):
				}
			}
		}
	}
	return nil
}

// subscriberID returns the ID in a subscriber item's partition key.
func subscriberID(it item) string {
	pk, _ := it[attrPK].(*types.AttributeValueMemberS)
	if pk == nil || len(pk.Value) < len(prefixSubscriber) {
		return ""
	}
	return pk.Value[len(prefixSubscriber):]
}
