package dynamo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// Store is a newsletter.Store in one DynamoDB table (see the package
// comment for its items). It is safe for concurrent use, by any number of
// processes: every write is conditional.
type Store struct {
	api   api
	table string

	// Now is the store's clock, used only for TTL: when a pending
	// subscriber expires and whether an item has. It defaults to time.Now.
	Now func() time.Time

	// clock times the counters' markers (see ledger.go); it is time.Now
	// but in tests.
	clock func() time.Time
	// hooks let tests stop a ledger call where a crash would, or act
	// while a repair recounts; nil but in tests.
	hooks *hooks

	mu       sync.Mutex
	consumed Capacity
}

var _ newsletter.Store = (*Store)(nil)

// New returns a Store on the table, which must exist as CreateTable makes
// it.
func New(client *dynamodb.Client, table string) *Store {
	return &Store{api: newAPI(client), table: table, Now: time.Now, clock: time.Now}
}

// api is the part of the DynamoDB API the store calls, held as method
// values of a *dynamodb.Client rather than the client itself. In a binary
// that executes templates, the linker keeps every exported method of a
// type reachable from an interface value, and a Store is one (a
// newsletter.Store): holding the client would keep the whole DynamoDB API,
// 1.4 MB of the api and sender bootstraps.
type api struct {
	getItem            func(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	putItem            func(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	updateItem         func(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	batchGetItem       func(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	deleteItem         func(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	query              func(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	transactWriteItems func(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

func newAPI(c *dynamodb.Client) api {
	return api{
		getItem:            c.GetItem,
		putItem:            c.PutItem,
		updateItem:         c.UpdateItem,
		batchGetItem:       c.BatchGetItem,
		deleteItem:         c.DeleteItem,
		query:              c.Query,
		transactWriteItems: c.TransactWriteItems,
	}
}

// hooks are the points where tests step into a ledger call or a repair.
type hooks struct {
	// beforeClose runs before a ledger call's closing write; an error
	// stops the call there, as a crash between its row writes and their
	// counting would.
	beforeClose func() error
	// afterRecount runs between a repair's recount and its write.
	afterRecount func()
}

// Capacity is an amount of DynamoDB capacity, in read and write request
// units, as the service reports it (ReturnConsumedCapacity TOTAL, so
// indexes included).
type Capacity struct {
	Read  float64
	Write float64 // every write, transactions included
	// TransactWrite is the part of Write that TransactWriteItems
	// reported. AWS bills a transactional write twice the units of a
	// plain one and reports it so; DynamoDB Local reports it at the plain
	// rate, so against Local the bill is Write + TransactWrite.
	TransactWrite float64
	// ConditionFailed is the write units of single-item writes whose
	// condition did not hold, which DynamoDB bills but does not report
	// (and which are not in Write): one each, what a ledger row or a
	// counter shard costs. The ledger calls rely on such writes to leave
	// rows as they are (a page created again, a row claimed already).
	ConditionFailed float64
}

// ConsumedCapacity returns the capacity the store's requests have
// consumed since it was made: what successful requests reported, and
// the estimate of ConditionFailed. A cancelled transaction is not
// reported by DynamoDB and so is not counted, although it is billed.
func (s *Store) ConsumedCapacity() Capacity {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.consumed
}

// consume adds what a request reported to the store's total.
func (s *Store) consume(write bool, ccs ...types.ConsumedCapacity) {
	s.consumeUnits(write, false, ccs...)
}

func (s *Store) consumeUnits(write, transact bool, ccs ...types.ConsumedCapacity) {
	var n float64
	for _, cc := range ccs {
		n += aws.ToFloat64(cc.CapacityUnits)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if write {
		s.consumed.Write += n
		if transact {
			s.consumed.TransactWrite += n
		}
	} else {
		s.consumed.Read += n
	}
}

// countRefused counts a write refused on its condition in
// ConditionFailed.
func (s *Store) countRefused(err error) {
	if conditionFailed(err) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.consumed.ConditionFailed++
	}
}

// one returns one request's consumed capacity as a slice, for consume.
func one(cc *types.ConsumedCapacity) []types.ConsumedCapacity {
	if cc == nil {
		return nil
	}
	return []types.ConsumedCapacity{*cc}
}

// Requests. Each asks for its consumed capacity and reports it.

func (s *Store) getItem(ctx context.Context, key item, consistent bool) (item, error) {
	out, err := s.api.getItem(ctx, &dynamodb.GetItemInput{
		TableName:              &s.table,
		Key:                    key,
		ConsistentRead:         aws.Bool(consistent),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		return nil, err
	}
	s.consume(false, one(out.ConsumedCapacity)...)
	return out.Item, nil
}

func (s *Store) putItem(ctx context.Context, in *dynamodb.PutItemInput) error {
	in.TableName = &s.table
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := s.api.putItem(ctx, in)
	if err != nil {
		s.countRefused(err)
		return err
	}
	s.consume(true, one(out.ConsumedCapacity)...)
	return nil
}

// updateItem runs an UpdateItem and returns its output, whose Attributes
// hold what in.ReturnValues asked for. A failed condition comes back as a
// *types.ConditionalCheckFailedException whose Item holds the item as it
// stands when in.ReturnValuesOnConditionCheckFailure asks for it.
func (s *Store) updateItem(ctx context.Context, in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
	in.TableName = &s.table
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := s.api.updateItem(ctx, in)
	if err != nil {
		s.countRefused(err)
		return nil, err
	}
	s.consume(true, one(out.ConsumedCapacity)...)
	return out, nil
}

func (s *Store) deleteItem(ctx context.Context, in *dynamodb.DeleteItemInput) error {
	in.TableName = &s.table
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := s.api.deleteItem(ctx, in)
	if err != nil {
		s.countRefused(err)
		return err
	}
	s.consume(true, one(out.ConsumedCapacity)...)
	return nil
}

func (s *Store) query(ctx context.Context, in *dynamodb.QueryInput) (*dynamodb.QueryOutput, error) {
	in.TableName = &s.table
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := s.api.query(ctx, in)
	if err != nil {
		return nil, err
	}
	s.consume(false, one(out.ConsumedCapacity)...)
	return out, nil
}

func (s *Store) transact(ctx context.Context, items ...types.TransactWriteItem) error {
	for i := range items {
		switch {
		case items[i].Put != nil:
			items[i].Put.TableName = &s.table
		case items[i].Update != nil:
			items[i].Update.TableName = &s.table
		case items[i].Delete != nil:
			items[i].Delete.TableName = &s.table
		case items[i].ConditionCheck != nil:
			items[i].ConditionCheck.TableName = &s.table
		}
	}
	out, err := s.api.transactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems:          items,
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		return err
	}
	s.consumeUnits(true, true, out.ConsumedCapacity...)
	return nil
}

// item is a DynamoDB item.
type item = map[string]types.AttributeValue

// keys are the attributes every item has. Item types embed it beside
// their domain record, whose JSON names become attribute names.
type keys struct {
	PK      string `json:"pk"`
	SK      string `json:"sk"`
	Type    string `json:"type"`
	GSI1PK  string `json:"gsi1pk,omitempty"`
	GSI1SK  string `json:"gsi1sk,omitempty"`
	GSI2PK  string `json:"gsi2pk,omitempty"`
	GSI2SK  string `json:"gsi2sk,omitempty"`
	Version int64  `json:"v"`
}

func key(pk, sk string) item {
	return item{attrPK: str(pk), attrSK: str(sk)}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// marshal encodes v as an item, naming attributes by JSON tags.
func marshal(v any) (item, error) {
	return attributevalue.MarshalMapWithOptions(v, func(o *attributevalue.EncoderOptions) { o.TagKey = "json" })
}

// unmarshal decodes an item into v, naming attributes by JSON tags.
func unmarshal(it item, v any) error {
	return attributevalue.UnmarshalMapWithOptions(it, v, func(o *attributevalue.DecoderOptions) { o.TagKey = "json" })
}

// version returns the item's version, 0 when it has none.
func version(it item) int64 {
	if n, ok := it[attrV].(*types.AttributeValueMemberN); ok {
		v, _ := strconv.ParseInt(n.Value, 10, 64)
		return v
	}
	return 0
}

// Conditions shared by many writes.
var (
	condNew     = aws.String("attribute_not_exists(pk)")
	condVersion = aws.String("v = :v")
)

func versionValues(v int64) item { return item{":v": num(v)} }

// errStale says that an attempt of an optimistic update read a record
// that changed, or may have, before it could write: the attempt is made
// again with a strongly consistent read.
var errStale = errors.New("dynamo: stale read")

// maxAttempts bounds the attempts of an optimistic update.
const maxAttempts = 40

// optimistic runs attempt until it returns anything but errStale: first
// with an eventually consistent read, then with strongly consistent ones,
// waiting a random moment between attempts so that writers fighting over
// one item spread out.
func (s *Store) optimistic(ctx context.Context, what string, attempt func(consistent bool) error) error {
	for i := range maxAttempts {
		err := attempt(i > 0)
		if !errors.Is(err, errStale) {
			return err
		}
		if i == 0 {
			continue
		}
		wait := time.Duration(rand.Int64N(int64(min(time.Duration(i)*2*time.Millisecond, 50*time.Millisecond)))) + time.Millisecond
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(wait):
		}
	}
	return fmt.Errorf("%s: lost %d attempts to concurrent writes: %w", what, maxAttempts,
		newsletter.Errorf(newsletter.ECONFLICT, "The record is being changed by someone else; try again."))
}

// conditionFailed reports whether err is a single write's failed
// condition.
func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// conflict reports whether err says that another write got in the way:
// a transaction in progress on the item.
func conflict(err error) bool {
	var tc *types.TransactionConflictException
	return errors.As(err, &tc)
}

// cancelled returns the reason codes of a cancelled transaction, one per
// item in order ("None", "ConditionalCheckFailed", "TransactionConflict"…),
// and false for any other error.
func cancelled(err error) ([]string, bool) {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil, false
	}
	codes := make([]string, len(tce.CancellationReasons))
	for i, r := range tce.CancellationReasons {
		codes[i] = aws.ToString(r.Code)
	}
	return codes, true
}

// transactOutcome sorts a cancelled transaction: it returns the index of
// the first item whose condition failed (-1 for none) and whether another
// transaction got in the way, in which case it is worth trying again.
func transactOutcome(err error) (failed int, retry bool, ok bool) {
	codes, ok := cancelled(err)
	if !ok {
		return -1, conflict(err), false
	}
	failed = -1
	for i, c := range codes {
		switch c {
		case "ConditionalCheckFailed":
			if failed < 0 {
				failed = i
			}
		case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded":
			retry = true
		}
	}
	return failed, retry, true
}

// notFound returns the ENOTFOUND error for a kind of record.
func notFound(what string) error {
	return newsletter.Errorf(newsletter.ENOTFOUND, "%s not found.", what)
}

// expired reports whether an item's TTL has passed.
func (s *Store) expired(expiresAt int64) bool {
	return expiresAt != 0 && expiresAt <= s.Now().Unix()
}

// updateVersioned is the read–change–write of a record kept in one item:
// read it (eventually consistent first, as optimistic decides), let fn
// change a copy, refuse a change of key, and put it back on the condition
// that its version is still the one read. what names the record in
// errors; keyKept reports whether fn left the record's key alone.
func updateVersioned[T any](s *Store, ctx context.Context, what string,
	read func(consistent bool) (rec T, version int64, err error),
	fn func(*T) error, keyKept func(*T) bool, encode func(*T, int64) (item, error),
) (*T, error) {
	var out *T
	err := s.optimistic(ctx, "update "+what, func(consistent bool) error {
		rec, version, err := read(consistent)
		if err != nil {
			return readStale(consistent, err)
		}
		if err := fn(&rec); err != nil {
			return fnStale(consistent, err)
		}
		if !keyKept(&rec) {
			return fnStale(consistent, newsletter.Errorf(newsletter.EINVALID, "A record's ID cannot be changed."))
		}
		it, err := encode(&rec, version+1)
		if err != nil {
			return err
		}
		err = s.putItem(ctx, &dynamodb.PutItemInput{Item: it, ConditionExpression: condVersion, ExpressionAttributeValues: versionValues(version)})
		if conditionFailed(err) || conflict(err) {
			return errStale
		} else if err != nil {
			return fmt.Errorf("update %s: %w", what, err)
		}
		out = &rec
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
