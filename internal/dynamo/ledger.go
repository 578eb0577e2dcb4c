package dynamo

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// How a ledger write keeps the counters (the package comment, Counters,
// says why): it opens a marker on one counter shard, writes its rows with
// plain conditional writes, then closes the marker in the same UpdateItem
// that ADDs the net moves of the rows it wrote.
const (
	// ledgerWindow is how long after opening its marker a call may write
	// rows: its row writes run under a context with this deadline.
	ledgerWindow = 2 * time.Minute
	// ledgerGrace is how much longer a marker counts as live, for a
	// request sent just before the window closed and for clock skew
	// between the writer and whoever repairs. A marker past window and
	// grace belongs to a call that can no longer write a row.
	ledgerGrace = time.Minute
	// closeTimeout bounds the closing write, which runs even when the
	// call's context is done: rows written must be counted.
	closeTimeout = 30 * time.Second
	// rowWriters bounds a call's concurrent row writes.
	rowWriters = 10

	// markerPrefix starts a marker's attribute name: open_<call ID>. Its
	// value is when it expires, in Unix ms, negated once a call that
	// keeps its marker has counted what it knows it wrote.
	markerPrefix = "open_"
	attrSeq      = "seq" // a shard's count of markers opened on it
)

// ledgerCall is one ledger write's marker on a counter shard.
type ledgerCall struct {
	store   *Store
	key     item
	marker  string
	expires int64 // Unix ms
	writeBy time.Time
}

// openLedger opens a marker on a random counter shard of the digest: an
// UpdateItem that sets the marker to its expiry and ADDs one to the
// shard's seq, which is what a repair checks to know no call began while
// it recounted.
func (s *Store) openLedger(ctx context.Context, digestID string) (*ledgerCall, error) {
	now := s.clock()
	c := &ledgerCall{
		store:   s,
		key:     key(prefixDigest+digestID, shardKey(rand.IntN(counterShards))),
		marker:  fmt.Sprintf("%s%016x", markerPrefix, rand.Uint64()),
		expires: now.Add(ledgerWindow + ledgerGrace).UnixMilli(),
		writeBy: now.Add(ledgerWindow),
	}
	_, err := s.updateItem(ctx, &dynamodb.UpdateItemInput{
		Key:                      c.key,
		UpdateExpression:         aws.String("SET #type = :type, #marker = :expires ADD #seq :one"),
		ExpressionAttributeNames: map[string]string{"#type": "type", "#marker": c.marker, "#seq": attrSeq},
		ExpressionAttributeValues: item{
			":type": str(typeCounters), ":expires": num(c.expires), ":one": num(1),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("open counters of %s: %w", digestID, err)
	}
	return c, nil
}

// close ADDs moves to the call's shard and removes its marker, in one
// UpdateItem, on the condition that the marker is still there: a marker
// that a repair removed belongs to rows the repair has counted, so its
// moves must not be added again. With keep (a row write's outcome is
// unknown) the marker stays, negated, for a repair to settle once it
// expires; the condition is then that it is not negated yet. Either way
// a retry of a close that landed adds nothing. It runs on a context of
// its own so that a cancelled call still counts what it wrote.
func (c *ledgerCall) close(ctx context.Context, moves newsletter.Counters, keep bool) error {
	if h := c.store.hooks; h != nil && h.beforeClose != nil {
		if err := h.beforeClose(); err != nil {
			return err
		}
	}
	names := map[string]string{"#marker": c.marker}
	values := item{}
	var adds []string
	for i, f := range counterFields(&moves) {
		if *f.n != 0 {
			n := strconv.Itoa(i)
			adds = append(adds, "#c"+n+" :c"+n)
			names["#c"+n], values[":c"+n] = f.name, num(*f.n)
		}
	}
	if keep && len(adds) == 0 {
		return nil // nothing to count: the marker stays as it is
	}
	var expr []string
	cond := "attribute_exists(#marker)"
	if keep {
		expr = append(expr, "SET #marker = :counted")
		cond = "#marker = :open"
		values[":open"], values[":counted"] = num(c.expires), num(-c.expires)
	}
	if len(adds) > 0 {
		expr = append(expr, "ADD "+strings.Join(adds, ", "))
	}
	if !keep {
		expr = append(expr, "REMOVE #marker")
	}
	in := &dynamodb.UpdateItemInput{
		Key:                      c.key,
		UpdateExpression:         aws.String(strings.Join(expr, " ")),
		ConditionExpression:      aws.String(cond),
		ExpressionAttributeNames: names,
	}
	if len(values) > 0 {
		in.ExpressionAttributeValues = values
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	var err error
	for attempt := range 5 {
		_, err = c.store.updateItem(ctx, in)
		if err == nil || conditionFailed(err) {
			return nil
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(50<<attempt) * time.Millisecond)
	}
	return fmt.Errorf("count ledger writes: %w", err)
}

// rowWrite is what one conditional row write of a ledger call did.
type rowWrite struct {
	written bool
	moves   newsletter.Counters // the row's move between the counters, when written
	// err is why the call fails: with written, something after the write
	// did; without, the write did, and it may or may not have landed.
	err error
}

// writeRows runs a ledger call: it opens a marker, runs write for rows
// 0..n-1, rowWriters at a time, and closes the marker with the net moves
// of the rows written. A row not started before ctx is done is left, and
// the call returns ctx's error; a row write that failed may have landed,
// so its marker is kept for a repair, and the call returns that error.
// Either way every row written is counted.
func (s *Store) writeRows(ctx context.Context, digestID string, n int, write func(ctx context.Context, i int) rowWrite) ([]rowWrite, error) {
	call, err := s.openLedger(ctx, digestID)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithDeadline(ctx, call.writeBy)
	defer cancel()
	results := make([]rowWrite, n)
	started := make([]bool, n)
	sem := make(chan struct{}, rowWriters)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-wctx.Done():
		}
		if wctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if wctx.Err() == nil {
				started[i] = true
				results[i] = write(wctx, i)
			}
		})
	}
	wg.Wait()

	var moves newsletter.Counters
	var failed error
	unknown := false
	for i, r := range results {
		switch {
		case !started[i]:
			failed = cmp.Or(failed, wctx.Err())
		case r.written:
			moves.Merge(r.moves)
			failed = cmp.Or(failed, r.err)
		case r.err != nil:
			failed, unknown = cmp.Or(failed, r.err), true
		}
	}
	if err := call.close(ctx, moves, unknown); err != nil {
		return nil, err
	}
	if failed != nil {
		return nil, failed
	}
	return results, nil
}

// counterField is one counter of newsletter.Counters and its attribute.
type counterField struct {
	name string
	n    *int64
}

// counterFields returns c's counters with the attribute names a shard
// keeps them under: their JSON names.
func counterFields(c *newsletter.Counters) []counterField {
	return []counterField{
		{"total", &c.Total}, {"queued", &c.Queued}, {"sending", &c.Sending}, {"sent", &c.Sent},
		{"skipped", &c.Skipped}, {"failed", &c.Failed}, {"unknown", &c.Unknown},
		{"bounced", &c.Bounced}, {"complained", &c.Complained},
	}
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// shardKey returns the sort key of counter shard i.
func shardKey(i int) string { return fmt.Sprintf("%s%02d", prefixCount, i) }

// shardState is what DeliveryCounts reads off the shards.
type shardState struct {
	sum     newsletter.Counters
	live    int            // markers of calls that may still write rows
	expired int            // markers of calls that can no longer: crashed, or whose outcome was unknown
	seq     map[string]int // seq per shard sort key, -1 for a shard without one
	markers map[string][]string
}

// readShards reads a digest's counter shards with one strongly consistent
// Query and sums them.
func (s *Store) readShards(ctx context.Context, digestID string) (*shardState, error) {
	in := &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :count)"),
		ExpressionAttributeValues: item{":pk": str(prefixDigest + digestID), ":count": str(prefixCount)},
		ConsistentRead:            aws.Bool(true),
	}
	st := &shardState{seq: map[string]int{}, markers: map[string][]string{}}
	now := s.clock().UnixMilli()
	for {
		res, err := s.query(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, it := range res.Items {
			var c newsletter.Counters
			if err := unmarshal(it, &c); err != nil {
				return nil, fmt.Errorf("decode counters: %w", err)
			}
			st.sum.Merge(c)
			skAV, _ := it[attrSK].(*types.AttributeValueMemberS)
			if skAV == nil {
				return nil, fmt.Errorf("decode counters: no sort key")
			}
			sk := skAV.Value
			st.seq[sk] = -1
			if n, ok := it[attrSeq].(*types.AttributeValueMemberN); ok {
				st.seq[sk], _ = strconv.Atoi(n.Value)
			}
			for name, v := range it {
				if !strings.HasPrefix(name, markerPrefix) {
					continue
				}
				st.markers[sk] = append(st.markers[sk], name)
				expires := int64(0)
				if n, ok := v.(*types.AttributeValueMemberN); ok {
					expires, _ = strconv.ParseInt(n.Value, 10, 64)
				}
				if abs(expires) > now {
					st.live++
				} else {
					st.expired++
				}
			}
		}
		if res.LastEvaluatedKey == nil {
			return st, nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

// recount counts a digest's ledger rows by status with a strongly
// consistent Query of its partition: about one read unit per 4 KB of rows
// (some 12 rows), so about 8,500 units for 100,000 readers.
func (s *Store) recount(ctx context.Context, digestID string) (newsletter.Counters, error) {
	in := &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :row)"),
		ExpressionAttributeValues: item{":pk": str(prefixDigest + digestID), ":row": str(prefixRow)},
		ExpressionAttributeNames:  map[string]string{"#status": "status"},
		ProjectionExpression:      aws.String("#status"),
		ConsistentRead:            aws.Bool(true),
	}
	var c newsletter.Counters
	for {
		res, err := s.query(ctx, in)
		if err != nil {
			return newsletter.Counters{}, err
		}
		for _, it := range res.Items {
			c.Total++
			if v, ok := it["status"].(*types.AttributeValueMemberS); ok {
				c.Add(newsletter.DeliveryStatus(v.Value), 1)
			}
		}
		if res.LastEvaluatedKey == nil {
			return c, nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

// repair recounts a digest's rows and writes the count over its shards:
// shard 00 takes the counts, the others are zeroed, and every marker
// goes, in one transaction conditional on each shard's seq being the one
// read before the recount (a shard not there yet must still not be). So
// the repair only lands when no call began while it counted; otherwise it
// is left for a later DeliveryCounts. It returns the recount either way:
// the rows as they stood a moment ago.
func (s *Store) repair(ctx context.Context, digestID string, st *shardState) (newsletter.Counters, error) {
	c, err := s.recount(ctx, digestID)
	if err != nil {
		return newsletter.Counters{}, fmt.Errorf("recount: %w", err)
	}
	if h := s.hooks; h != nil && h.afterRecount != nil {
		h.afterRecount()
	}
	items := make([]types.TransactWriteItem, 0, counterShards)
	for i := range counterShards {
		sk := shardKey(i)
		k := key(prefixDigest+digestID, sk)
		seq, ok := st.seq[sk]
		if !ok && i == 0 {
			seq, ok = -1, true // made, to take the counts
		}
		if !ok {
			items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
				Key: k, ConditionExpression: aws.String("attribute_not_exists(pk)"),
			}})
			continue
		}
		names := map[string]string{"#seq": attrSeq, "#type": "type"}
		values := item{":one": num(1), ":type": str(typeCounters)}
		var set, remove []string
		set = append(set, "#type = :type")
		for j, f := range counterFields(&c) {
			n := strconv.Itoa(j)
			names["#c"+n] = f.name
			if i == 0 {
				set = append(set, "#c"+n+" = :c"+n)
				values[":c"+n] = num(*f.n)
			} else {
				remove = append(remove, "#c"+n)
			}
		}
		for j, m := range st.markers[sk] {
			n := strconv.Itoa(j)
			names["#m"+n] = m
			remove = append(remove, "#m"+n)
		}
		cond := "attribute_not_exists(#seq)"
		if seq >= 0 {
			cond = "#seq = :seq"
			values[":seq"] = num(int64(seq))
		}
		expr := "SET " + strings.Join(set, ", ") + " ADD #seq :one"
		if len(remove) > 0 {
			expr += " REMOVE " + strings.Join(remove, ", ")
		}
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			Key: k, UpdateExpression: aws.String(expr), ConditionExpression: aws.String(cond),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		}})
	}
	if err := s.transact(ctx, items...); err != nil {
		if _, ok := cancelled(err); !ok && !conflict(err) {
			return newsletter.Counters{}, fmt.Errorf("write recount: %w", err)
		}
	}
	return c, nil
}
