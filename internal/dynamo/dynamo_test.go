package dynamo_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
	"github.com/broadsheet-news/broadsheet/internal/dynamo"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.StopAll()
	os.Exit(code)
}

// newStore returns a Store on a fresh table of the shared DynamoDB Local.
func newStore(tb testing.TB) *dynamo.Store {
	tb.Helper()
	client := awstest.DynamoDBClient(tb)
	table := awstest.UniqueName(tb, "broadsheet")
	if err := dynamo.CreateTable(awstest.Context(tb), client, table); err != nil {
		tb.Fatalf("CreateTable: %v", err)
	}
	return dynamo.New(client, table)
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) newsletter.Store { return newStore(t) })
}

// fixture is a Store with the client and table under it.
type fixture struct {
	store  *dynamo.Store
	client *dynamodb.Client
	table  string
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	client := awstest.DynamoDBClient(tb)
	table := awstest.UniqueName(tb, "broadsheet")
	if err := dynamo.CreateTable(awstest.Context(tb), client, table); err != nil {
		tb.Fatalf("CreateTable: %v", err)
	}
	return &fixture{store: dynamo.New(client, table), client: client, table: table}
}

// rawItem returns the stored item with the key, nil when there is none.
func (f *fixture) rawItem(tb testing.TB, pk, sk string) map[string]types.AttributeValue {
	tb.Helper()
	out, err := f.client.GetItem(tb.Context(), &dynamodb.GetItemInput{
		TableName:      &f.table,
		Key:            map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		tb.Fatalf("GetItem %s/%s: %v", pk, sk, err)
	}
	return out.Item
}

func reader(id, email string, status newsletter.SubscriberStatus) *newsletter.Subscriber {
	now := time.Now()
	return &newsletter.Subscriber{
		ID: id, Email: email, Status: status, Frequency: newsletter.Daily, Format: newsletter.FormatFull,
		CreatedAt: now, UpdatedAt: now,
	}
}

// TestEmailUniqueUnderConcurrency races eight sign-ups of one address (in
// different cases, under different IDs): the email item's conditional put
// in the same transaction as the reader lets exactly one win.
func TestEmailUniqueUnderConcurrency(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	const goroutines = 8
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			email := "Race.Reader@Example.com"
			if g%2 == 1 {
				email = "RACE.READER@example.com"
			}
			errs[g] = f.store.CreateSubscriber(ctx, reader(fmt.Sprintf("sub-%d", g), email, newsletter.StatusPending))
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for g, err := range errs {
		switch code := newsletter.ErrorCode(err); code {
		case "":
			if winner >= 0 {
				t.Errorf("goroutines %d and %d both created the address, want exactly one", winner, g)
			}
			winner = g
		case newsletter.ECONFLICT:
		default:
			t.Errorf("goroutine %d: got code %q (err %v), want %q or nil", g, code, err, newsletter.ECONFLICT)
		}
	}
	if winner < 0 {
		t.Fatalf("no goroutine created the address, want exactly one")
	}
	got, err := f.store.SubscriberByEmail(ctx, "race.reader@example.com")
	if err != nil {
		t.Fatalf("SubscriberByEmail: %v", err)
	}
	if want := fmt.Sprintf("sub-%d", winner); got.ID != want {
		t.Errorf("SubscriberByEmail: got %s, want the winner %s", got.ID, want)
	}
	list, _, err := f.store.Subscribers(ctx, newsletter.SubscriberFilter{}, newsletter.Page{})
	if err != nil || len(list) != 1 {
		t.Errorf("Subscribers: got %d readers (err %v), want 1: the losers left nothing behind", len(list), err)
	}
}

// TestTableMatchesDefinition checks that the table CreateTable made is
// the one TableInput describes, which is what template.yaml is checked
// against, and that TTL is on.
func TestTableMatchesDefinition(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	want := dynamo.TableInput(f.table)
	out, err := f.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &f.table})
	if err != nil {
		t.Fatalf("DescribeTable: %v", err)
	}
	got := out.Table

	keySchema := func(ks []types.KeySchemaElement) []string {
		var out []string
		for _, k := range ks {
			out = append(out, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
		}
		return out
	}
	if g, w := keySchema(got.KeySchema), keySchema(want.KeySchema); !slices.Equal(g, w) {
		t.Errorf("key schema: got %v, want %v", g, w)
	}
	attrs := func(ds []types.AttributeDefinition) []string {
		var out []string
		for _, d := range ds {
			out = append(out, aws.ToString(d.AttributeName)+" "+string(d.AttributeType))
		}
		slices.Sort(out)
		return out
	}
	if g, w := attrs(got.AttributeDefinitions), attrs(want.AttributeDefinitions); !slices.Equal(g, w) {
		t.Errorf("attribute definitions: got %v, want %v", g, w)
	}
	if got.BillingModeSummary == nil || got.BillingModeSummary.BillingMode != want.BillingMode {
		t.Errorf("billing mode: got %+v, want %s", got.BillingModeSummary, want.BillingMode)
	}
	gsis := map[string]string{}
	for _, g := range got.GlobalSecondaryIndexes {
		gsis[aws.ToString(g.IndexName)] = fmt.Sprint(keySchema(g.KeySchema), g.Projection.ProjectionType)
	}
	if len(gsis) != len(want.GlobalSecondaryIndexes) {
		t.Errorf("GSIs: got %v, want %d", gsis, len(want.GlobalSecondaryIndexes))
	}
	for _, w := range want.GlobalSecondaryIndexes {
		if g, ws := gsis[aws.ToString(w.IndexName)], fmt.Sprint(keySchema(w.KeySchema), w.Projection.ProjectionType); g != ws {
			t.Errorf("GSI %s: got %q, want %q", aws.ToString(w.IndexName), g, ws)
		}
	}
	ttl, err := f.client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &f.table})
	if err != nil {
		t.Fatalf("DescribeTimeToLive: %v", err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != dynamo.TTLAttribute {
		t.Errorf("TTL: got %+v, want enabled on %s", d, dynamo.TTLAttribute)
	}
}

// TestPendingExpiry checks the TTL rules: a pending reader and its
// address carry expiresAt; once past it they are gone to the store and
// the address is free; a confirmed reader never expires.
func TestPendingExpiry(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	now := time.Now()
	f.store.Now = func() time.Time { return now }

	pending := reader("sub-pending", "late@example.com", newsletter.StatusPending)
	confirmed := reader("sub-confirmed", "keen@example.com", newsletter.StatusPending)
	for _, s := range []*newsletter.Subscriber{pending, confirmed} {
		if err := f.store.CreateSubscriber(ctx, s); err != nil {
			t.Fatalf("CreateSubscriber %s: %v", s.ID, err)
		}
	}
	wantExp := strconv.FormatInt(now.Add(dynamo.PendingTTL).Unix(), 10)
	for _, k := range [][2]string{{"SUB#sub-pending", "SUB"}, {"EMAIL#late@example.com", "EMAIL"}} {
		n, ok := f.rawItem(t, k[0], k[1])[dynamo.TTLAttribute].(*types.AttributeValueMemberN)
		if !ok || n.Value != wantExp {
			t.Errorf("%s %s: got %v, want %s", k[0], dynamo.TTLAttribute, n, wantExp)
		}
	}
	if _, err := f.store.UpdateSubscriber(ctx, confirmed.ID, func(s *newsletter.Subscriber) error {
		s.Status = newsletter.StatusConfirmed
		return nil
	}); err != nil {
		t.Fatalf("UpdateSubscriber: %v", err)
	}
	for _, k := range [][2]string{{"SUB#sub-confirmed", "SUB"}, {"EMAIL#keen@example.com", "EMAIL"}} {
		if v, ok := f.rawItem(t, k[0], k[1])[dynamo.TTLAttribute]; ok {
			t.Errorf("%s after confirmation: got %s %v, want none", k[0], dynamo.TTLAttribute, v)
		}
	}

	// A month later, before DynamoDB got round to deleting anything.
	now = now.Add(dynamo.PendingTTL + time.Hour)
	_, err := f.store.Subscriber(ctx, pending.ID)
	wantCode(t, err, newsletter.ENOTFOUND, "Subscriber of an expired reader")
	_, err = f.store.SubscriberByEmail(ctx, pending.Email)
	wantCode(t, err, newsletter.ENOTFOUND, "SubscriberByEmail of an expired reader")
	_, err = f.store.UpdateSubscriber(ctx, pending.ID, func(*newsletter.Subscriber) error { return nil })
	wantCode(t, err, newsletter.ENOTFOUND, "UpdateSubscriber of an expired reader")
	if _, err := f.store.Subscriber(ctx, confirmed.ID); err != nil {
		t.Errorf("Subscriber of a confirmed reader a month on: %v", err)
	}
	list, _, err := f.store.Subscribers(ctx, newsletter.SubscriberFilter{}, newsletter.Page{})
	if err != nil || len(list) != 1 || list[0].ID != confirmed.ID {
		t.Errorf("Subscribers a month on: got %d readers (err %v), want only %s", len(list), err, confirmed.ID)
	}
	again := reader("sub-again", "LATE@example.com", newsletter.StatusPending)
	if err := f.store.CreateSubscriber(ctx, again); err != nil {
		t.Fatalf("CreateSubscriber of an expired address: %v", err)
	}
	got, err := f.store.SubscriberByEmail(ctx, pending.Email)
	if err != nil || got.ID != again.ID {
		t.Errorf("SubscriberByEmail of the retaken address: got %v (err %v), want %s", got, err, again.ID)
	}
}

// TestCursorsStayInTheirListing checks that a well-formed cursor of one
// listing is refused by another: another digest's ledger, another
// audience, another direction.
func TestCursorsStayInTheirListing(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for i := range 3 {
		s := reader(fmt.Sprintf("sub-%d", i), fmt.Sprintf("r%d@example.com", i), newsletter.StatusConfirmed)
		mustNil(t, f.store.CreateSubscriber(ctx, s), "CreateSubscriber")
		for _, d := range []string{"daily-2026-11-26", "daily-2026-11-27"} {
			mustNil(t, f.store.CreateDelivery(ctx, &newsletter.Delivery{DigestID: d, SubscriberID: s.ID, Status: newsletter.DeliveryQueued}), "CreateDelivery")
		}
		_, err := f.store.PutArticle(ctx, &newsletter.Article{ID: fmt.Sprintf("art-%d", i), PublishedAt: time.Now().Add(time.Duration(i) * time.Hour)})
		mustNil(t, err, "PutArticle")
	}
	page := newsletter.Page{Limit: 1}
	_, rowsCursor, err := f.store.Deliveries(ctx, "daily-2026-11-26", newsletter.DeliveryFilter{}, page)
	mustNil(t, err, "Deliveries")
	_, audienceCursor, err := f.store.Subscribers(ctx, newsletter.SubscriberFilter{Status: newsletter.StatusConfirmed, Frequency: newsletter.Daily}, page)
	mustNil(t, err, "Subscribers")
	_, articlesCursor, err := f.store.Articles(ctx, newsletter.ArticleFilter{}, page)
	mustNil(t, err, "Articles")

	tests := []struct {
		name string
		list func() error
	}{
		{"rows of another digest", func() error {
			_, _, err := f.store.Deliveries(ctx, "daily-2026-11-27", newsletter.DeliveryFilter{}, newsletter.Page{Cursor: rowsCursor})
			return err
		}},
		{"another audience", func() error {
			_, _, err := f.store.Subscribers(ctx, newsletter.SubscriberFilter{Status: newsletter.StatusConfirmed, Frequency: newsletter.Weekly}, newsletter.Page{Cursor: audienceCursor})
			return err
		}},
		{"subscribers cursor for deliveries", func() error {
			_, _, err := f.store.Deliveries(ctx, "daily-2026-11-26", newsletter.DeliveryFilter{}, newsletter.Page{Cursor: audienceCursor})
			return err
		}},
		{"articles the other way", func() error {
			_, _, err := f.store.Articles(ctx, newsletter.ArticleFilter{Newest: true}, newsletter.Page{Cursor: articlesCursor})
			return err
		}},
	}
	for _, tt := range tests {
		wantCode(t, tt.list(), newsletter.EINVALID, tt.name)
	}
}

// TestFilteredPagesAreFull checks that a filtered listing fills its pages
// although DynamoDB applies Limit before the filter.
func TestFilteredPagesAreFull(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	const rows, every = 300, 30
	digestID := "daily-2026-11-26"
	for i := range rows {
		status := newsletter.DeliveryQueued
		if i%every == 0 {
			status = newsletter.DeliverySent
		}
		mustNil(t, f.store.CreateDelivery(ctx, &newsletter.Delivery{DigestID: digestID, SubscriberID: fmt.Sprintf("sub-%04d", i), Status: status}), "CreateDelivery")
	}
	var sizes []int
	p := newsletter.Page{Limit: 3}
	for {
		got, next, err := f.store.Deliveries(ctx, digestID, newsletter.DeliveryFilter{Status: newsletter.DeliverySent}, p)
		mustNil(t, err, "Deliveries")
		sizes = append(sizes, len(got))
		if next == "" {
			break
		}
		p.Cursor = next
	}
	if want := []int{3, 3, 3, 1}; !slices.Equal(sizes, want) {
		t.Errorf("page sizes: got %v, want %v", sizes, want)
	}
	c, err := f.store.DeliveryCounts(ctx, digestID)
	mustNil(t, err, "DeliveryCounts")
	if want := (newsletter.Counters{Total: rows, Queued: rows - rows/every, Sent: rows / every}); c != want {
		t.Errorf("DeliveryCounts: got %+v, want %+v", c, want)
	}
}

func wantCode(tb testing.TB, err error, code, what string) {
	tb.Helper()
	if got := newsletter.ErrorCode(err); got != code {
		tb.Errorf("%s: got code %q (err %v), want %q", what, got, err, code)
	}
}

func mustNil(tb testing.TB, err error, what string) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// TestCapacityPerReader measures the DynamoDB capacity one reader of a
// digest costs on the sending path as the engine takes it, as DynamoDB
// Local reports it (ReturnConsumedCapacity TOTAL, so any index write would
// show): fan-out lists readers from GSI1 500 a page and creates each
// page's rows with one CreateDeliveries; each task of 50 claims its rows
// with one ClaimDeliveries, re-reads its readers with one SubscribersByID,
// settles with one SettleDeliveries and reads DeliveryCounts once. It
// asserts the units of each batch call exactly — one per row written
// (rows stay under 1 KB, no transaction, no index) plus the two writes
// that open and close the call's counter marker — and logs the cost of a
// 100,000-reader digest at on-demand prices.
func TestCapacityPerReader(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	const readers, task, page = 200, 50, 500
	digestID := "daily-2026-11-26"
	for i := range readers {
		s := reader(fmt.Sprintf("%026d", i), fmt.Sprintf("reader.%d@example.com", i), newsletter.StatusConfirmed)
		s.Sections = []string{"news", "sport"}
		s.Consent = newsletter.Consent{Time: s.CreatedAt, IP: "192.0.2.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", Source: "form"}
		s.ConfirmedAt = s.CreatedAt
		mustNil(t, f.store.CreateSubscriber(ctx, s), "CreateSubscriber")
	}

	type step struct {
		name  string
		calls int
		c     dynamo.Capacity
	}
	var steps []*step
	measure := func(name string, calls int, run func()) *step {
		before := f.store.ConsumedCapacity()
		run()
		after := f.store.ConsumedCapacity()
		s := &step{name: name, calls: calls, c: dynamo.Capacity{
			Read: after.Read - before.Read, Write: after.Write - before.Write, TransactWrite: after.TransactWrite - before.TransactWrite,
		}}
		steps = append(steps, s)
		return s
	}
	var ids []string
	list := measure("fan-out: Subscribers (GSI1), 500 a page", 1, func() {
		p := newsletter.Page{Limit: page}
		for {
			subs, next, err := f.store.Subscribers(ctx, newsletter.SubscriberFilter{Status: newsletter.StatusConfirmed, Frequency: newsletter.Daily}, p)
			mustNil(t, err, "Subscribers")
			for _, s := range subs {
				ids = append(ids, s.ID)
			}
			if next == "" {
				break
			}
			p.Cursor = next
		}
	})
	if len(ids) != readers {
		t.Fatalf("fan-out listed %d readers, want %d", len(ids), readers)
	}
	create := measure("fan-out: CreateDeliveries of the page", 1, func() {
		rows := make([]*newsletter.Delivery, len(ids))
		for i, id := range ids {
			rows[i] = &newsletter.Delivery{DigestID: digestID, SubscriberID: id, Status: newsletter.DeliveryQueued, UpdatedAt: time.Now()}
		}
		created, err := f.store.CreateDeliveries(ctx, rows)
		mustNil(t, err, "CreateDeliveries")
		if n := countTrue(created); n != readers {
			t.Fatalf("CreateDeliveries: created %d, want %d", n, readers)
		}
	})
	tasks := slices.Collect(slices.Chunk(ids, task))
	claim := measure("task: ClaimDeliveries of 50", len(tasks), func() {
		for _, ids := range tasks {
			now := time.Now()
			claims, err := f.store.ClaimDeliveries(ctx, digestID, ids, now, now.Add(2*time.Minute))
			mustNil(t, err, "ClaimDeliveries")
			for _, c := range claims {
				if !c.Claimed {
					t.Fatalf("ClaimDeliveries: %+v not claimed", c.Row)
				}
			}
		}
	})
	reread := measure("task: SubscribersByID of 50", len(tasks), func() {
		for _, ids := range tasks {
			subs, err := f.store.SubscribersByID(ctx, ids)
			mustNil(t, err, "SubscribersByID")
			if slices.Contains(subs, nil) {
				t.Fatalf("SubscribersByID: a reader is missing")
			}
		}
	})
	settle := measure("task: SettleDeliveries of 50", len(tasks), func() {
		for _, ids := range tasks {
			outcomes := make([]newsletter.Outcome, len(ids))
			for i, id := range ids {
				outcomes[i] = newsletter.Outcome{SubscriberID: id, Status: newsletter.DeliverySent, MessageID: "0100018f2f0c1a2b-3c4d5e6f-7a8b-9c0d-1e2f-3a4b5c6d7e8f-000000"}
			}
			written, err := f.store.SettleDeliveries(ctx, digestID, outcomes, time.Now())
			mustNil(t, err, "SettleDeliveries")
			if n := countTrue(written); n != len(ids) {
				t.Fatalf("SettleDeliveries: wrote %d, want %d", n, len(ids))
			}
		}
	})
	counts := measure("task: DeliveryCounts", len(tasks), func() {
		for range tasks {
			_, err := f.store.DeliveryCounts(ctx, digestID)
			mustNil(t, err, "DeliveryCounts")
		}
	})
	c, err := f.store.DeliveryCounts(ctx, digestID)
	mustNil(t, err, "DeliveryCounts")
	if c != (newsletter.Counters{Total: readers, Sent: readers}) {
		t.Errorf("DeliveryCounts: got %+v, want all %d sent", c, readers)
	}

	// DynamoDB Local reports a transactional write at the plain rate;
	// AWS bills it twice, so the bill is Write + TransactWrite.
	billed := func(c dynamo.Capacity) float64 { return c.Write + c.TransactWrite }
	var wcu, rcu float64
	for _, s := range steps {
		t.Logf("%-42s %7.2f WCU billed, %6.2f RCU per call; %5.3f WCU, %5.3f RCU per reader",
			s.name, billed(s.c)/float64(s.calls), s.c.Read/float64(s.calls), billed(s.c)/readers, s.c.Read/readers)
		wcu += billed(s.c) / readers
		rcu += s.c.Read / readers
	}
	const wcuPrice, rcuPrice = 0.625e-6, 0.125e-6
	t.Logf("%-42s %5.3f WCU, %5.3f RCU per reader", "total", wcu, rcu)
	t.Logf("100,000 readers: $%.4f writes + $%.4f reads = $%.4f (issue 5's target for DynamoDB + SQS: $0.20)",
		1e5*wcu*wcuPrice, 1e5*rcu*rcuPrice, 1e5*(wcu*wcuPrice+rcu*rcuPrice))

	wantUnits := []struct {
		name      string
		got, want float64
	}{
		{"CreateDeliveries of 200: a unit per row, two for the marker", billed(create.c), readers + 2},
		{"ClaimDeliveries of 50", billed(claim.c) / float64(claim.calls), task + 2},
		{"SettleDeliveries of 50", billed(settle.c) / float64(settle.calls), task + 2},
		{"SubscribersByID of 50 neighbours: one range read of 50 × 0.55 KB (zero times left out)", reread.c.Read / float64(reread.calls), 3.5},
		{"DeliveryCounts: 16 small shards", counts.c.Read / float64(counts.calls), 1},
		{"transactional writes", create.c.TransactWrite + claim.c.TransactWrite + settle.c.TransactWrite, 0},
		{"reads by the writes", create.c.Read + claim.c.Read + settle.c.Read, 0},
	}
	for _, w := range wantUnits {
		if w.got != w.want {
			t.Errorf("%s: got %.2f units, want %.2f", w.name, w.got, w.want)
		}
	}
	// The listing reads about 0.06 units per reader (500 readers of
	// about 0.5 KB per eventually consistent page).
	if r := list.c.Read / readers; r > 0.1 {
		t.Errorf("fan-out listing: got %.3f RCU per reader, want at most 0.1", r)
	}
	// Three row writes per reader (create, claim, settle) and the markers:
	// 2 per task of 50 for the claim and the settle each, 2 per page.
	if max := 3 + 4.0/task + 2.0/readers; wcu > max+1e-9 {
		t.Errorf("writes: got %.3f WCU per reader, want at most %.3f", wcu, max)
	}
}

// TestCapacityPerRow measures the single-row ledger calls that feedback
// and reconciliation make: CreateDelivery and a status-changing
// UpdateDelivery cost a row write and the marker's two (three units, no
// transaction); an UpdateDelivery that keeps the status costs the row
// write alone; UpdateDelivery reads the row once, eventually consistent.
func TestCapacityPerRow(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	digestID := "daily-2026-11-26"
	const rows = 20
	measure := func(run func(i int)) dynamo.Capacity {
		before := f.store.ConsumedCapacity()
		for i := range rows {
			run(i)
		}
		after := f.store.ConsumedCapacity()
		return dynamo.Capacity{
			Read:          (after.Read - before.Read) / rows,
			Write:         (after.Write - before.Write) / rows,
			TransactWrite: (after.TransactWrite - before.TransactWrite) / rows,
		}
	}
	id := func(i int) string { return fmt.Sprintf("sub-%02d", i) }
	create := measure(func(i int) {
		mustNil(t, f.store.CreateDelivery(ctx, &newsletter.Delivery{DigestID: digestID, SubscriberID: id(i), Status: newsletter.DeliverySent, UpdatedAt: time.Now()}), "CreateDelivery")
	})
	move := measure(func(i int) {
		_, err := f.store.UpdateDelivery(ctx, digestID, id(i), func(r *newsletter.Delivery) error { r.Status = newsletter.DeliveryBounced; return nil })
		mustNil(t, err, "UpdateDelivery")
	})
	stay := measure(func(i int) {
		_, err := f.store.UpdateDelivery(ctx, digestID, id(i), func(r *newsletter.Delivery) error { r.Reason = "550 5.1.1"; return nil })
		mustNil(t, err, "UpdateDelivery")
	})
	tests := []struct {
		name       string
		got        dynamo.Capacity
		wcu, reads float64
	}{
		{"CreateDelivery", create, 3, 0},
		{"UpdateDelivery to another status", move, 3, 0.5},
		{"UpdateDelivery in the same status", stay, 1, 0.5},
	}
	for _, tt := range tests {
		if tt.got.Write != tt.wcu || tt.got.TransactWrite != 0 || tt.got.Read != tt.reads {
			t.Errorf("%s: got %+v per row, want %.0f WCU, no transaction, %.1f RCU", tt.name, tt.got, tt.wcu, tt.reads)
		}
	}
	c, err := f.store.DeliveryCounts(ctx, digestID)
	mustNil(t, err, "DeliveryCounts")
	if c != (newsletter.Counters{Total: rows, Bounced: rows}) {
		t.Errorf("DeliveryCounts: got %+v, want all %d bounced", c, rows)
	}
}

// TestSubscribersByIDSpread checks SubscribersByID when the readers asked
// for are not neighbours: the range read stops after two subscribers per
// reader asked for and BatchGetItem gets the rest, so every reader is
// found (and a missing or expired one is nil) at no more than the range
// read's budget over what BatchGetItem alone would cost.
func TestSubscribersByIDSpread(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	now := time.Now()
	f.store.Now = func() time.Time { return now }
	const n = 60
	for i := range n {
		status := newsletter.StatusConfirmed
		if i == 45 {
			status = newsletter.StatusPending
		}
		mustNil(t, f.store.CreateSubscriber(ctx, reader(fmt.Sprintf("sub-%03d", i), fmt.Sprintf("r%d@example.com", i), status)), "CreateSubscriber")
	}
	now = now.Add(dynamo.PendingTTL + time.Hour) // sub-045 has expired
	tests := []struct {
		name string
		ids  []string
	}{
		{"every tenth", []string{"sub-000", "sub-010", "sub-020", "sub-030", "sub-040", "sub-050"}},
		{"neighbours, a gap, a missing and an expired one", []string{"sub-001", "sub-002", "sub-003", "sub-missing", "sub-045", "sub-059", "sub-002"}},
		{"unsorted", []string{"sub-033", "sub-004", "sub-021"}},
		{"one", []string{"sub-007"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.store.ConsumedCapacity().Read
			got, err := f.store.SubscribersByID(ctx, tt.ids)
			mustNil(t, err, "SubscribersByID")
			units := f.store.ConsumedCapacity().Read - before
			if len(got) != len(tt.ids) {
				t.Fatalf("got %d readers, want %d", len(got), len(tt.ids))
			}
			for i, id := range tt.ids {
				want := id != "sub-missing" && id != "sub-045"
				if (got[i] != nil) != want || (want && got[i].ID != id) {
					t.Errorf("[%d] %s: got %+v, want found %v", i, id, got[i], want)
				}
			}
			// Each reader is well under 1 KB: the range read of 2 per
			// reader is one unit per 6 readers or so; BatchGetItem half a
			// unit per reader.
			if limit := 0.5*float64(len(tt.ids)) + float64(2*len(tt.ids))/6 + 1; units > limit {
				t.Errorf("read %.1f units, want at most %.1f", units, limit)
			}
		})
	}
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// TestDigestUnits measures what a digest of ten articles with summaries
// of 0.6 KB of varied text costs to write (item and GSI2 copy) and to read
// strongly consistent: the articles are stored gzip'd, so the item stays
// near 3 KB.
func TestDigestUnits(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	words := strings.Fields("the council voted on tuesday to close two libraries and a swimming pool after a review of spending found " +
		"that costs had risen by a third since the last budget while residents said they had not been asked and campaigners promised " +
		"to take the decision to court arguing that the consultation was flawed and that children in the east of the city would lose out most")
	rnd := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	d := &newsletter.Digest{ID: "daily-2026-11-26", Frequency: newsletter.Daily, Period: "2026-11-26", Subject: "The Ledger, 26 November", Status: newsletter.DigestSending, CreatedAt: now}
	for i := range 10 {
		var b strings.Builder
		for b.Len() < 600 {
			b.WriteString(words[rnd.IntN(len(words))] + " ")
		}
		d.Articles = append(d.Articles, newsletter.Article{
			ID: fmt.Sprintf("%064x", rnd.Uint64()), URL: fmt.Sprintf("https://ledger.example.com/2026/news/story-%d-%x", i, rnd.Uint64()),
			Title:   fmt.Sprintf("Story %d: %s %s %s", i, words[rnd.IntN(len(words))], words[rnd.IntN(len(words))], words[rnd.IntN(len(words))]),
			Summary: "<p>" + b.String() + "</p>", Author: "A. Reporter", Sections: []string{"news"},
			PublishedAt: now, CreatedAt: now, UpdatedAt: now,
		})
	}
	before := f.store.ConsumedCapacity()
	mustNil(t, f.store.CreateDigest(ctx, d), "CreateDigest")
	mid := f.store.ConsumedCapacity()
	got, err := f.store.Digest(ctx, d.ID)
	mustNil(t, err, "Digest")
	after := f.store.ConsumedCapacity()
	if len(got.Articles) != 10 || got.Articles[3].Summary != d.Articles[3].Summary {
		t.Errorf("Digest: articles did not come back")
	}
	write, read := mid.Write-before.Write, after.Read-mid.Read
	t.Logf("digest of 10 articles: %.0f WCU to write (item and GSI2), %.1f RCU to read", write, read)
	if write > 8 || read > 1 {
		t.Errorf("digest of 10 articles: got %.0f WCU and %.1f RCU, want at most 8 and 1", write, read)
	}
}

// TestCapacityOfRepeats checks what a repeated page or task costs: every
// row write is refused on its condition, billed a unit each (counted in
// ConditionFailed, as DynamoDB reports none), and the marker's two
// writes; nothing is read.
func TestCapacityOfRepeats(t *testing.T) {
	l := newLedger(t, 50)
	ctx := t.Context()
	now := time.Now()
	_, err := l.store.ClaimDeliveries(ctx, l.digestID, l.ids(0, 50), now, now)
	mustNil(t, err, "ClaimDeliveries")
	tests := []struct {
		name string
		call func() error
	}{
		{"CreateDeliveries again", func() error { _, err := l.store.CreateDeliveries(ctx, l.rows(0, 50)); return err }},
		{"ClaimDeliveries again", func() error { _, err := l.store.ClaimDeliveries(ctx, l.digestID, l.ids(0, 50), now, now); return err }},
	}
	for _, tt := range tests {
		before := l.store.ConsumedCapacity()
		mustNil(t, tt.call(), tt.name)
		after := l.store.ConsumedCapacity()
		got := dynamo.Capacity{Read: after.Read - before.Read, Write: after.Write - before.Write, ConditionFailed: after.ConditionFailed - before.ConditionFailed}
		if want := (dynamo.Capacity{Write: 2, ConditionFailed: 50}); got != want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, want)
		}
	}
	l.wantCounts(t, newsletter.Counters{Total: 50, Sending: 50}, "after the repeats")
}

// TestSubscribersByIDUnits measures the re-read of readers as the engine
// may ask for them: a task of one variant among six (every sixth reader
// of a page: BatchGetItem, after a short probe of the range), and the
// readers of a whole page at once (one range read).
func TestSubscribersByIDUnits(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	const readers, variants = 300, 6
	var ids []string
	for i := range readers {
		s := reader(fmt.Sprintf("%026d", i), fmt.Sprintf("reader.%d@example.com", i), newsletter.StatusConfirmed)
		s.Sections = []string{"news", "sport"}
		s.Consent = newsletter.Consent{Time: s.CreatedAt, IP: "192.0.2.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", Source: "form"}
		s.ConfirmedAt = s.CreatedAt
		mustNil(t, f.store.CreateSubscriber(ctx, s), "CreateSubscriber")
		ids = append(ids, s.ID)
	}
	var variant []string
	for i := 0; i < readers; i += variants {
		variant = append(variant, ids[i])
	}
	tests := []struct {
		name     string
		ids      []string
		maxUnits float64
	}{
		{"one variant of six, 50 readers", variant, 0.5*50 + 1.5},
		{"a page of 300 neighbours", ids, 300*0.6/4*0.5 + 2},
	}
	for _, tt := range tests {
		before := f.store.ConsumedCapacity().Read
		got, err := f.store.SubscribersByID(ctx, tt.ids)
		mustNil(t, err, "SubscribersByID")
		units := f.store.ConsumedCapacity().Read - before
		if slices.Contains(got, nil) {
			t.Errorf("%s: a reader is missing", tt.name)
		}
		t.Logf("%s: %.1f RCU, %.3f per reader", tt.name, units, units/float64(len(tt.ids)))
		if units > tt.maxUnits {
			t.Errorf("%s: got %.1f RCU, want at most %.1f", tt.name, units, tt.maxUnits)
		}
	}
}
