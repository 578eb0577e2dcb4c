// Package dynamo keeps Broadsheet's records in one DynamoDB table: the
// store used on AWS. It passes the same contract suite as the bbolt store
// (internal/storetest).
//
// # Items
//
// Every item has a partition key pk and a sort key sk (both strings), a
// type attribute naming what it is, and a version v that every Update*
// write checks and bumps (optimistic concurrency). Domain fields are
// attributes named after their JSON names; times are RFC 3339 strings
// with nanoseconds, except in sort keys (see below).
//
//	item           pk                 sk            GSI1 (gsi1pk, gsi1sk)                GSI2 (gsi2pk, gsi2sk)
//	subscriber     SUB#<id>           SUB           AUDIENCE#<status>#<frequency>, <id>  SUBSCRIBERS, <id>
//	email          EMAIL#<EmailKey>   EMAIL         -                                    -
//	article        ARTICLE#<id>       ARTICLE       -                                    ARTICLES, <time(PublishedAt)>#<id>
//	digest         DIGEST#<id>        DIGEST        -                                    DIGESTS, <time(CreatedAt)>#<id>
//	ledger row     DIGEST#<digestID>  SUB#<subID>   -                                    -
//	counter shard  DIGEST#<digestID>  COUNT#<00-15> -                                    -
//	               (the counters by their JSON names, seq, and the open_<call> markers)
//	editor token   TOKEN#<id>         TOKEN         -                                    TOKENS, <time(CreatedAt)>#<id>
//	token by hash  TOKENHASH#<hash>   TOKENHASH     -                                    -
//
// Access patterns, and what serves them:
//   - subscriber by ID: GetItem SUB#<id>.
//   - subscriber by address: GetItem EMAIL#<EmailKey>, whose sid names the
//     subscriber, then GetItem SUB#<sid>. The email item is written in the
//     same TransactWriteItems as the subscriber, on the condition that it
//     does not exist, so two readers can never share an address; it is
//     deleted in the same transaction as the subscriber.
//   - confirmed readers of a frequency, by ID (fan-out): Query GSI1 on
//     AUDIENCE#confirmed#<frequency>. Every status and frequency pair has
//     its own partition, so any listing with both filters is one exact
//     query.
//   - every subscriber by ID, or filtered on status or frequency alone
//     (export, admin pages): Query GSI2 on SUBSCRIBERS with a filter.
//   - articles by publication time, either direction, within a window:
//     Query GSI2 on ARTICLES, sort key BETWEEN the window's ends.
//   - digests, newest CreatedAt first: Query GSI2 on DIGESTS backwards,
//     with a filter on frequency and status.
//   - a digest's ledger rows by subscriber ID, optionally by status: Query
//     pk DIGEST#<id>, sk begins_with SUB#, with a filter on status.
//   - a digest's delivery counts: Query pk DIGEST#<id>, sk begins_with
//     COUNT#: the 16 counter shards, summed (see Counters).
//   - a send task's readers again: Query GSI2 on SUBSCRIBERS over the ID
//     range they span, then BatchGetItem for any it did not meet.
//   - editor token by hash: GetItem TOKENHASH#<hash>, which holds a copy of
//     the token (tokens never change). Tokens oldest first: Query GSI2 on
//     TOKENS.
//
// Sort keys that order by time start with time(t): the Unix seconds with
// the sign bit flipped and the nanoseconds, as 16 + 8 lower-case hex
// digits, so that string order is time order for every time.Time.
//
// # Counters
//
// A digest's counters are 16 counter shards beside its ledger rows. Every
// ledger write (CreateDelivery, UpdateDelivery when the status changes,
// and the batched CreateDeliveries, ClaimDeliveries and SettleDeliveries)
// is one call that
//
//  1. opens a marker on a random shard: an UpdateItem that sets
//     open_<call ID> to when it expires and ADDs one to the shard's seq;
//  2. writes its rows with plain conditional PutItem or UpdateItem, ten at
//     a time, each returning what it needs to know (ALL_NEW, UPDATED_OLD,
//     or the row as it stands when the condition fails), so no row is
//     read first and each costs one write unit;
//  3. closes the marker: one UpdateItem that ADDs the net moves of the
//     rows it wrote and removes the marker, on the condition that the
//     marker is still there.
//
// A call writes no row after its window (two minutes, enforced as its
// context's deadline), and its marker expires a minute later. A marker
// left open is the trace of a call that crashed between its rows and its
// close (or whose row write failed without telling whether it landed),
// and the counters may be off by that call's rows. DeliveryCounts sums
// the shards with one strongly consistent Query; when it finds an
// expired marker and no live one, it recounts the rows (a Query of the
// partition's rows, about a read unit per 12 rows) and writes the count
// over the shards in one transaction conditional on every shard's seq,
// so that a call that began during the recount makes the repair wait for
// the next DeliveryCounts. A close that comes after a repair finds its
// marker gone and adds nothing; its rows were counted.
//
// The price: two writes per call whatever its size, instead of a
// transaction per row (a row and a shard in one TransactWriteItems, billed
// twice: four units per row step). A reader's create, claim and settle
// cost 3 + 4/50 + 2/500 ≈ 3.08 write units in tasks of 50 and pages of
// 500 (TestCapacityPerReader measures it), about $0.19 per 100,000
// readers. The counters are exact after any sequence of completed calls;
// after a crash they are off until the digest is quiet (no live marker)
// and DeliveryCounts is called once more — the engine calls it after
// every task and its sweep — which costs one recount per crash.
// Deriving the counts instead (a Query with Select COUNT per
// DeliveryCounts) would cost the recount on every task: about $2 per
// 100,000 readers.
//
// # TTL
//
// The table's TTL attribute is expiresAt (Unix seconds). A pending
// subscriber and its email item get expiresAt = the time the store first
// wrote it as pending + 30 days, kept while it stays pending and removed
// from both items, in one transaction, when it leaves pending. Expired
// items that DynamoDB has not deleted yet are treated as gone: lookups do
// not find them, listings skip them, and their address can be taken. No
// other item expires.
//
// # Consistency
//
// Point lookups and ledger queries are strongly consistent. The first
// read of an Update* is eventually consistent (half the read cost); a
// stale read only costs a retry, since the write is conditional on the
// version it read, and fn's errors and not-found answers are only
// believed from a strongly consistent read. Listings served by a global
// secondary index (subscribers, articles, digests, tokens) are eventually
// consistent, as GSIs are: a change may take a moment to show in them.
// So is SubscribersByID, the sender's re-read of a task's readers (GSI2
// and eventually consistent BatchGetItem): an unsubscribe shows in it
// within a second or so.
package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute and index names of the table.
const (
	attrPK     = "pk"
	attrSK     = "sk"
	attrGSI1PK = "gsi1pk"
	attrGSI1SK = "gsi1sk"
	attrGSI2PK = "gsi2pk"
	attrGSI2SK = "gsi2sk"
	attrV      = "v"

	// TTLAttribute is the table's time-to-live attribute: Unix seconds
	// after which DynamoDB deletes the item. Only pending subscribers and
	// their email items carry it.
	TTLAttribute = "expiresAt"

	// GSI1 lists subscribers by status and frequency, ordered by ID.
	GSI1 = "GSI1"
	// GSI2 lists every item of a kind in order: subscribers by ID,
	// articles by publication time, digests and editor tokens by creation
	// time.
	GSI2 = "GSI2"
)

// PendingTTL is how long a subscriber may stay pending before DynamoDB
// erases it.
const PendingTTL = 30 * 24 * time.Hour

// TableInput returns the definition of the table named table, exactly as
// CreateTable makes it and as template.yaml must declare it: on-demand
// billing, string keys pk and sk, and the two global secondary indexes,
// which project every attribute.
func TableInput(table string) *dynamodb.CreateTableInput {
	str := func(name string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS}
	}
	keys := func(pk, sk string) []types.KeySchemaElement {
		return []types.KeySchemaElement{
			{AttributeName: aws.String(pk), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(sk), KeyType: types.KeyTypeRange},
		}
	}
	gsi := func(name, pk, sk string) types.GlobalSecondaryIndex {
		return types.GlobalSecondaryIndex{
			IndexName:  aws.String(name),
			KeySchema:  keys(pk, sk),
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}
	}
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			str(attrPK), str(attrSK), str(attrGSI1PK), str(attrGSI1SK), str(attrGSI2PK), str(attrGSI2SK),
		},
		KeySchema: keys(attrPK, attrSK),
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
			gsi(GSI1, attrGSI1PK, attrGSI1SK),
			gsi(GSI2, attrGSI2PK, attrGSI2SK),
		},
	}
}

// CreateTable creates the table named table as TableInput defines it,
// waits until it is active and turns on TTL on TTLAttribute. Point-in-time
// recovery, which template.yaml also turns on, is left out: DynamoDB Local
// does not support backups.
func CreateTable(ctx context.Context, client *dynamodb.Client, table string) error {
	if _, err := client.CreateTable(ctx, TableInput(table)); err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = time.Second
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 5*time.Minute); err != nil {
		return fmt.Errorf("create table %s: wait until active: %w", table, err)
	}
	_, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(TTLAttribute),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("create table %s: enable TTL: %w", table, err)
	}
	return nil
}

// Key prefixes and the values of the type attribute.
const (
	prefixSubscriber = "SUB#"
	prefixEmail      = "EMAIL#"
	prefixArticle    = "ARTICLE#"
	prefixDigest     = "DIGEST#"
	prefixRow        = "SUB#"
	prefixCount      = "COUNT#"
	prefixToken      = "TOKEN#"
	prefixTokenHash  = "TOKENHASH#"
	prefixAudience   = "AUDIENCE#"

	skSubscriber = "SUB"
	skEmail      = "EMAIL"
	skArticle    = "ARTICLE"
	skDigest     = "DIGEST"
	skToken      = "TOKEN"
	skTokenHash  = "TOKENHASH"

	listSubscribers = "SUBSCRIBERS"
	listArticles    = "ARTICLES"
	listDigests     = "DIGESTS"
	listTokens      = "TOKENS"

	typeSubscriber = "subscriber"
	typeEmail      = "email"
	typeArticle    = "article"
	typeDigest     = "digest"
	typeDelivery   = "delivery"
	typeCounters   = "counters"
	typeToken      = "token"
	typeTokenHash  = "tokenHash"
)

// counterShards is how many items a digest's counters are spread over.
const counterShards = 16

// timeKey returns t as a string whose order is t's order: the Unix
// seconds with the sign bit flipped, then the nanoseconds, in hex.
func timeKey(t time.Time) string {
	return fmt.Sprintf("%016x%08x", uint64(t.Unix())^(1<<63), t.Nanosecond())
}

func audienceKey(status, frequency string) string {
	return prefixAudience + status + "#" + frequency
}
