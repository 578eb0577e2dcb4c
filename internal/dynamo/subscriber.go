package dynamo

import (
	"time"

	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// subscriberItem is a subscriber as stored.
type subscriberItem struct {
	keys
	newsletter.Subscriber
	EmailKey  string `json:"emailKey"`
	ExpiresAt int64  `json:"expiresAt,omitempty"`
}

// emailItem claims an address for one subscriber.
type emailItem struct {
	keys
	SubscriberID string `json:"sid"`
	ExpiresAt    int64  `json:"expiresAt,omitempty"`
}

func subscriberKey(id string) item { return key(prefixSubscriber+id, skSubscriber) }
func emailKey(email string) item {
	return key(prefixEmail+newsletter.EmailKey(email), skEmail)
}

func encodeSubscriber(sub *newsletter.Subscriber, v, expiresAt int64) (item, error) {
	it, err := marshal(subscriberItem{
		keys: keys{
			PK: prefixSubscriber + sub.ID, SK: skSubscriber, Type: typeSubscriber,
			GSI1PK: audienceKey(string(sub.Status), string(sub.Frequency)), GSI1SK: sub.ID,
			GSI2PK: listSubscribers, GSI2SK: sub.ID,
			Version: v,
		},
		Subscriber: *sub,
		EmailKey:   newsletter.EmailKey(sub.Email),
		ExpiresAt:  expiresAt,
	})
	if err != nil {
		return nil, fmt.Errorf("encode subscriber %s: %w", sub.ID, err)
	}
	// attributevalue writes a zero time as "0001-01-01T00:00:00Z" (it
	// knows no omitzero), and most readers have several (never
	// unsubscribed, no frequency change…). Subscriber items are read in
	// ranges billed by the byte at every send, so those are left out; a
	// missing attribute decodes as the zero time.
	for k, v := range it {
		if s, ok := v.(*types.AttributeValueMemberS); ok && s.Value == zeroTime {
			delete(it, k)
		}
	}
	return it, nil
}

// zeroTime is how attributevalue writes time.Time{}.
var zeroTime = time.Time{}.Format(time.RFC3339Nano)

func decodeSubscriber(it item) (*subscriberItem, error) {
	var rec subscriberItem
	if err := unmarshal(it, &rec); err != nil {
		return nil, fmt.Errorf("decode subscriber %v: %w", it[attrPK], err)
	}
	return &rec, nil
}

// CreateSubscriber adds a reader and claims its address, in one
// transaction. ECONFLICT when the ID or the address (compared by
// EmailKey) is taken; EINVALID without an ID or an address. A pending
// reader expires after PendingTTL unless it leaves pending.
func (s *Store) CreateSubscriber(ctx context.Context, sub *newsletter.Subscriber) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if sub == nil || sub.ID == "" || sub.Email == "" {
		return newsletter.Errorf(newsletter.EINVALID, "Subscriber ID and email are required.")
	}
	now := s.Now()
	var expiresAt int64
	if sub.Status == newsletter.StatusPending {
		expiresAt = now.Add(PendingTTL).Unix()
	}
	subIt, err := encodeSubscriber(sub, 1, expiresAt)
	if err != nil {
		return err
	}
	emailIt, err := marshal(emailItem{
		keys:         keys{PK: prefixEmail + newsletter.EmailKey(sub.Email), SK: skEmail, Type: typeEmail},
		SubscriberID: sub.ID,
		ExpiresAt:    expiresAt,
	})
	if err != nil {
		return fmt.Errorf("create subscriber %s: encode email: %w", sub.ID, err)
	}
	for range maxAttempts {
		err = s.transact(ctx,
			types.TransactWriteItem{Put: &types.Put{Item: subIt, ConditionExpression: condNew}},
			// An address held by an expired pending reader that DynamoDB
			// has not deleted yet is free.
			types.TransactWriteItem{Put: &types.Put{
				Item:                      emailIt,
				ConditionExpression:       aws.String("attribute_not_exists(pk) OR expiresAt <= :now"),
				ExpressionAttributeValues: item{":now": num(now.Unix())},
			}},
		)
		failed, retry, _ := transactOutcome(err)
		switch {
		case err == nil:
			return nil
		case failed == 0:
			return newsletter.Errorf(newsletter.ECONFLICT, "A subscriber with this ID exists.")
		case failed == 1:
			return newsletter.Errorf(newsletter.ECONFLICT, "This email address is already subscribed.")
		case !retry:
			return fmt.Errorf("create subscriber %s: %w", sub.ID, err)
		}
	}
	return fmt.Errorf("create subscriber %s: %w", sub.ID, err)
}

// Subscriber returns the reader with the ID. ENOTFOUND.
func (s *Store) Subscriber(ctx context.Context, id string) (*newsletter.Subscriber, error) {
	rec, err := s.subscriber(ctx, id, true)
	if err != nil {
		return nil, err
	}
	return &rec.Subscriber, nil
}

// subscriber reads the reader with the ID; an expired one is not found.
func (s *Store) subscriber(ctx context.Context, id string, consistent bool) (*subscriberItem, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, notFound("Subscriber")
	}
	it, err := s.getItem(ctx, subscriberKey(id), consistent)
	if err != nil {
		return nil, fmt.Errorf("get subscriber %s: %w", id, err)
	}
	if it == nil {
		return nil, notFound("Subscriber")
	}
	rec, err := decodeSubscriber(it)
	if err != nil {
		return nil, err
	}
	if s.expired(rec.ExpiresAt) {
		return nil, notFound("Subscriber")
	}
	return rec, nil
}

// SubscriberByEmail returns the reader with the address, compared by
// EmailKey: the address's item names the reader. ENOTFOUND.
func (s *Store) SubscriberByEmail(ctx context.Context, email string) (*newsletter.Subscriber, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if email == "" {
		return nil, notFound("Subscriber")
	}
	it, err := s.getItem(ctx, emailKey(email), true)
	if err != nil {
		return nil, fmt.Errorf("get subscriber by email: %w", err)
	}
	if it == nil {
		return nil, notFound("Subscriber")
	}
	var rec emailItem
	if err := unmarshal(it, &rec); err != nil {
		return nil, fmt.Errorf("get subscriber by email: decode: %w", err)
	}
	if s.expired(rec.ExpiresAt) || rec.SubscriberID == "" {
		return nil, notFound("Subscriber")
	}
	// The reader may be missing only while TTL deletes an expired pair.
	return s.Subscriber(ctx, rec.SubscriberID)
}

// UpdateSubscriber changes a reader through fn, with a write conditional
// on the version it read, trying again when another write got in first.
// A reader that leaves pending stops expiring, and its address with it.
// ENOTFOUND, EINVALID when fn changed the ID or the address, or fn's error.
func (s *Store) UpdateSubscriber(ctx context.Context, id string, fn func(*newsletter.Subscriber) error) (*newsletter.Subscriber, error) {
	var out *newsletter.Subscriber
	err := s.optimistic(ctx, "update subscriber "+id, func(consistent bool) error {
		rec, err := s.subscriber(ctx, id, consistent)
		if err != nil {
			return readStale(consistent, err)
		}
		sub := rec.Subscriber
		if err := fn(&sub); err != nil {
			return fnStale(consistent, err)
		}
		if sub.ID != id || sub.Email != rec.Email {
			return fnStale(consistent, newsletter.Errorf(newsletter.EINVALID, "A subscriber's ID and email cannot be changed."))
		}
		wasPending, isPending := rec.Status == newsletter.StatusPending, sub.Status == newsletter.StatusPending
		expiresAt := rec.ExpiresAt
		switch {
		case isPending && !wasPending:
			expiresAt = s.Now().Add(PendingTTL).Unix()
		case !isPending:
			expiresAt = 0
		}
		it, err := encodeSubscriber(&sub, rec.Version+1, expiresAt)
		if err != nil {
			return err
		}
		put := &types.Put{Item: it, ConditionExpression: condVersion, ExpressionAttributeValues: versionValues(rec.Version)}
		if expiresAt == rec.ExpiresAt {
			err = s.putItem(ctx, &dynamodb.PutItemInput{Item: put.Item, ConditionExpression: put.ConditionExpression, ExpressionAttributeValues: put.ExpressionAttributeValues})
			if conditionFailed(err) || conflict(err) {
				return errStale
			} else if err != nil {
				return fmt.Errorf("update subscriber %s: %w", id, err)
			}
			out = &sub
			return nil
		}
		// The address's item expires with the reader, or stops doing so.
		update := "SET sid = :sid, #type = :type REMOVE expiresAt"
		values := item{":sid": str(id), ":type": str(typeEmail)}
		if expiresAt != 0 {
			update = "SET sid = :sid, #type = :type, expiresAt = :exp"
			values[":exp"] = num(expiresAt)
		}
		err = s.transact(ctx,
			types.TransactWriteItem{Put: put},
			types.TransactWriteItem{Update: &types.Update{
				Key:                       emailKey(sub.Email),
				UpdateExpression:          aws.String(update),
				ConditionExpression:       aws.String("attribute_not_exists(pk) OR sid = :sid"),
				ExpressionAttributeNames:  map[string]string{"#type": "type"},
				ExpressionAttributeValues: values,
			}},
		)
		if err == nil {
			out = &sub
			return nil
		}
		if failed, retry, _ := transactOutcome(err); failed == 0 || retry {
			return errStale
		}
		return fmt.Errorf("update subscriber %s: %w", id, err)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteSubscriber erases a reader and frees the address, in one
// transaction. ENOTFOUND.
func (s *Store) DeleteSubscriber(ctx context.Context, id string) error {
	return s.optimistic(ctx, "delete subscriber "+id, func(consistent bool) error {
		rec, err := s.subscriber(ctx, id, consistent)
		if err != nil {
			return readStale(consistent, err)
		}
		err = s.transact(ctx,
			types.TransactWriteItem{Delete: &types.Delete{
				Key:                       subscriberKey(id),
				ConditionExpression:       condVersion,
				ExpressionAttributeValues: versionValues(rec.Version),
			}},
			types.TransactWriteItem{Delete: &types.Delete{
				Key:                       emailKey(rec.Email),
				ConditionExpression:       aws.String("attribute_not_exists(pk) OR sid = :sid"),
				ExpressionAttributeValues: item{":sid": str(id)},
			}},
		)
		if err == nil {
			return nil
		}
		if failed, retry, _ := transactOutcome(err); failed == 0 || retry {
			return errStale
		}
		return fmt.Errorf("delete subscriber %s: %w", id, err)
	})
}

// Subscribers lists readers matching f, ordered by ID, a page at a time:
// from GSI1 when f names both a status and a frequency (fan-out's
// listing), from GSI2 with a filter otherwise. Expired readers are
// skipped. EINVALID for a cursor this listing did not return.
func (s *Store) Subscribers(ctx context.Context, f newsletter.SubscriberFilter, p newsletter.Page) ([]*newsletter.Subscriber, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	l := &listing{
		filter: "(attribute_not_exists(expiresAt) OR expiresAt > :now)",
		values: item{":now": num(s.Now().Unix())},
		names:  map[string]string{},
	}
	if f.Status != "" && f.Frequency != "" {
		l.name, l.index, l.pkAttr, l.skAttr = "subscribers/audience", GSI1, attrGSI1PK, attrGSI1SK
		l.pk = audienceKey(string(f.Status), string(f.Frequency))
	} else {
		l.name, l.index, l.pkAttr, l.skAttr = "subscribers", GSI2, attrGSI2PK, attrGSI2SK
		l.pk = listSubscribers
		if f.Status != "" {
			l.filter += " AND #status = :status"
			l.names["#status"] = "status"
			l.values[":status"] = str(string(f.Status))
		}
		if f.Frequency != "" {
			l.filter += " AND #frequency = :frequency"
			l.names["#frequency"] = "frequency"
			l.values[":frequency"] = str(string(f.Frequency))
		}
	}
	l.keyCond = l.pkAttr + " = :pk"
	l.values[":pk"] = str(l.pk)
	items, next, err := s.page(ctx, l, p)
	if err != nil {
		return nil, "", fmt.Errorf("list subscribers: %w", err)
	}
	out := make([]*newsletter.Subscriber, 0, len(items))
	for _, it := range items {
		rec, err := decodeSubscriber(it)
		if err != nil {
			return nil, "", fmt.Errorf("list subscribers: %w", err)
		}
		out = append(out, &rec.Subscriber)
	}
	return out, next, nil
}

// readStale returns errStale for a not-found answer to an eventually
// consistent read, which may not see a record just written, and err
// otherwise.
func readStale(consistent bool, err error) error {
	if !consistent && newsletter.ErrorCode(err) == newsletter.ENOTFOUND {
		return errStale
	}
	return err
}

// fnStale returns errStale when fn refused a record read with an
// eventually consistent read, so that fn's errors are only ever believed
// about the latest record, and err otherwise.
func fnStale(consistent bool, err error) error {
	if !consistent {
		return errStale
	}
	return err
}
