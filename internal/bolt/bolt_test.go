package bolt

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/storetest"
)

// mustOpen opens a store in a new file under t.TempDir and closes it when
// the test ends.
func mustOpen(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(filepath.Join(tb.TempDir(), "broadsheet.db"))
	if err != nil {
		tb.Fatalf("Open: got err %v, want nil", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: got err %v, want nil", err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) newsletter.Store {
		s := mustOpen(t)
		t.Cleanup(func() { checkIndexes(t, s) })
		return s
	})
}

// checkIndexes fails the test when an index bucket does not hold exactly
// one entry per record, pointing at it, or the stored counters differ from
// a recount of the ledger rows. It runs after every contract test, so any
// sequence of writes the suite makes is checked for drift.
func checkIndexes(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bbolt.Tx) error {
		var problems []string
		add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

		want := map[string]string{} // index key → record ID
		forEach(tx, bucketSubscribers, func(id string, v []byte) {
			sub, err := decodeSubscriber(v, id)
			if err != nil {
				t.Fatalf("decode subscriber %s: %v", id, err)
			}
			want[newsletter.EmailKey(sub.Email)] = id
		})
		compareIndex(tx, bucketSubscriberEmails, want, add, true)

		want = map[string]string{}
		forEach(tx, bucketArticles, func(id string, v []byte) {
			var a newsletter.Article
			mustDecode(t, v, &a)
			want[string(indexKey(a.PublishedAt, id))] = ""
		})
		compareIndex(tx, bucketArticlesPublished, want, add, false)

		want = map[string]string{}
		forEach(tx, bucketDigests, func(id string, v []byte) {
			var rec digestRecord
			mustDecode(t, v, &rec)
			want[string(indexKey(rec.CreatedAt, id))] = ""
		})
		compareIndex(tx, bucketDigestsCreated, want, add, false)

		want = map[string]string{}
		forEach(tx, bucketEditorTokens, func(id string, v []byte) {
			var rec tokenRecord
			mustDecode(t, v, &rec)
			want[rec.Hash] = id
		})
		compareIndex(tx, bucketEditorTokensByHash, want, add, true)

		err := tx.Bucket(bucketDeliveries).ForEachBucket(func(digestID []byte) error {
			var recount newsletter.Counters
			tx.Bucket(bucketDeliveries).Bucket(digestID).ForEach(func(k, v []byte) error {
				d, err := decodeRow(v, string(digestID), string(k))
				if err != nil {
					t.Fatalf("decode ledger row %s/%s: %v", digestID, k, err)
				}
				recount.Total++
				recount.Add(d.Status, 1)
				return nil
			})
			var stored newsletter.Counters
			if _, err := get(tx.Bucket(bucketDeliveryCounts), "counts", string(digestID), &stored); err != nil {
				return err
			}
			if stored != recount {
				add("counters of %s: got %+v, want the recount %+v", digestID, stored, recount)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(problems) > 0 {
			return errors.New(strings.Join(problems, "\n"))
		}
		return nil
	})
	if err != nil {
		t.Errorf("indexes drifted from records:\n%v", err)
	}
}

func forEach(tx *bbolt.Tx, bucket []byte, fn func(id string, v []byte)) {
	tx.Bucket(bucket).ForEach(func(k, v []byte) error {
		fn(string(k), v)
		return nil
	})
}

func compareIndex(tx *bbolt.Tx, bucket []byte, want map[string]string, add func(string, ...any), checkValue bool) {
	got := map[string]string{}
	forEach(tx, bucket, func(k string, v []byte) { got[k] = string(v) })
	for k, id := range want {
		if g, ok := got[k]; !ok {
			add("%s: entry %q: got missing, want present", bucket, k)
		} else if checkValue && g != id {
			add("%s: entry %q: got %q, want %q", bucket, k, g, id)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			add("%s: entry %q: got present, want no such entry (stale)", bucket, k)
		}
	}
}

func mustDecode(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Errorf("decode %s: got err %v, want nil", data, err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "broadsheet.db") // Open makes the directory
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: got err %v, want nil", err)
	}
	ctx := t.Context()
	created := time.Date(2026, 11, 26, 6, 0, 0, 1, time.UTC)
	sub := &newsletter.Subscriber{ID: "sub-1", Email: "Ann@example.com", Status: newsletter.StatusConfirmed, CreatedAt: created}
	art := &newsletter.Article{ID: "art-1", Title: "Story", PublishedAt: created}
	dig := &newsletter.Digest{ID: "daily-2026-11-26", FanoutCursor: "sub-1", CreatedAt: created}
	del := &newsletter.Delivery{DigestID: dig.ID, SubscriberID: sub.ID, Status: newsletter.DeliverySent}
	tok := &newsletter.EditorToken{ID: "tok-1", Hash: "abc", Scopes: []string{newsletter.ScopeSend}, CreatedAt: created}
	for _, err := range []error{
		s.CreateSubscriber(ctx, sub), s.CreateDigest(ctx, dig), s.CreateDelivery(ctx, del), s.CreateEditorToken(ctx, tok),
	} {
		if err != nil {
			t.Fatalf("create: got err %v, want nil", err)
		}
	}
	if _, err := s.PutArticle(ctx, art); err != nil {
		t.Fatalf("PutArticle: got err %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: got err %v, want nil", err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatalf("Open again: got err %v, want nil", err)
	}
	defer s.Close()
	gotSub, err := s.SubscriberByEmail(ctx, "ann@example.com")
	if err != nil || gotSub.ID != sub.ID || !gotSub.CreatedAt.Equal(created) {
		t.Errorf("SubscriberByEmail after reopen: got %+v, %v, want %s created %v", gotSub, err, sub.ID, created)
	}
	arts, _, err := s.Articles(ctx, newsletter.ArticleFilter{}, newsletter.Page{})
	if err != nil || len(arts) != 1 || arts[0].Title != art.Title {
		t.Errorf("Articles after reopen: got %d articles, %v, want [%s]", len(arts), err, art.ID)
	}
	gotDig, err := s.Digest(ctx, dig.ID)
	if err != nil || gotDig.FanoutCursor != dig.FanoutCursor {
		t.Errorf("Digest after reopen: got %+v, %v, want fan-out cursor %q", gotDig, err, dig.FanoutCursor)
	}
	if c, err := s.DeliveryCounts(ctx, dig.ID); err != nil || c != (newsletter.Counters{Total: 1, Sent: 1}) {
		t.Errorf("DeliveryCounts after reopen: got %+v, %v, want one sent", c, err)
	}
	if got, err := s.EditorTokenByHash(ctx, tok.Hash); err != nil || got.ID != tok.ID {
		t.Errorf("EditorTokenByHash after reopen: got %+v, %v, want %s", got, err, tok.ID)
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broadsheet.db")
	first, err := Open(path)
	if err != nil {
		t.Fatalf("Open: got err %v, want nil", err)
	}
	defer first.Close()

	start := time.Now()
	second, err := Open(path, LockTimeout(300*time.Millisecond))
	elapsed := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatalf("second Open of a file in use: got nil error, want one")
	}
	if !errors.Is(err, berrors.ErrTimeout) {
		t.Errorf("second Open: got err %v, want it to wrap bbolt's ErrTimeout", err)
	}
	// The message is what an operator reads, so its wording is the feature.
	if want := "in use by another Broadsheet process"; !strings.Contains(err.Error(), want) {
		t.Errorf("second Open: got err %q, want it to say %q", err, want)
	}
	if elapsed > 2*time.Second {
		t.Errorf("second Open gave up after %v, want about 300ms", elapsed)
	}

	// The default timeout gives up too, in about a second.
	start = time.Now()
	if second, err = Open(path); err == nil {
		second.Close()
		t.Fatalf("second Open with the default timeout: got nil error, want one")
	}
	if elapsed := time.Since(start); elapsed < DefaultLockTimeout/2 || elapsed > 2*DefaultLockTimeout+time.Second {
		t.Errorf("second Open with the default timeout gave up after %v, want about %v", elapsed, DefaultLockTimeout)
	}

	// Once the first lets go, the file opens.
	if err := first.Close(); err != nil {
		t.Fatalf("Close: got err %v, want nil", err)
	}
	if second, err = Open(path); err != nil {
		t.Fatalf("Open after the first closed: got err %v, want nil", err)
	}
	second.Close()
}

// TestLastPageCursor checks what the contract suite leaves loose for
// DynamoDB's sake: this store returns "" with the page that holds the last
// record, even when that page is exactly full.
func TestLastPageCursor(t *testing.T) {
	s := mustOpen(t)
	ctx := t.Context()
	for i := range 6 {
		storetest.MustCreateSubscriber(t, s, &newsletter.Subscriber{
			ID: fmt.Sprintf("sub-%d", i), Email: fmt.Sprintf("r%d@example.com", i), Status: newsletter.StatusConfirmed,
		})
	}
	tests := []struct {
		limit     int
		wantPages int
	}{{1, 6}, {2, 3}, {3, 2}, {6, 1}, {7, 1}}
	for _, tt := range tests {
		pages, cursor := 0, ""
		for {
			page, next, err := s.Subscribers(ctx, newsletter.SubscriberFilter{}, newsletter.Page{Cursor: cursor, Limit: tt.limit})
			if err != nil {
				t.Fatalf("Subscribers: got err %v, want nil", err)
			}
			pages++
			if len(page) == 0 {
				t.Errorf("limit %d: page %d: got an empty page, want the last full page to carry cursor \"\"", tt.limit, pages)
			}
			if cursor = next; cursor == "" || pages > 10 {
				break
			}
		}
		if pages != tt.wantPages {
			t.Errorf("limit %d: got %d pages, want %d", tt.limit, pages, tt.wantPages)
		}
	}
}

// TestCursorKinds checks that a cursor from one listing is refused by
// another instead of being read as a key of the wrong kind.
func TestCursorKinds(t *testing.T) {
	s := mustOpen(t)
	ctx := t.Context()
	for i := range 3 {
		storetest.MustCreateSubscriber(t, s, &newsletter.Subscriber{ID: fmt.Sprintf("sub-%d", i), Email: fmt.Sprintf("r%d@example.com", i)})
	}
	_, cursor, err := s.Subscribers(ctx, newsletter.SubscriberFilter{}, newsletter.Page{Limit: 1})
	if err != nil || cursor == "" {
		t.Fatalf("Subscribers: got cursor %q, err %v, want a cursor", cursor, err)
	}
	_, _, err = s.Articles(ctx, newsletter.ArticleFilter{}, newsletter.Page{Cursor: cursor})
	if got := newsletter.ErrorCode(err); got != newsletter.EINVALID {
		t.Errorf("Articles with a subscribers cursor: got code %q, want %q", got, newsletter.EINVALID)
	}
	_, _, err = s.Deliveries(ctx, "daily-2026-11-26", newsletter.DeliveryFilter{}, newsletter.Page{Cursor: cursor})
	if got := newsletter.ErrorCode(err); got != newsletter.EINVALID {
		t.Errorf("Deliveries with a subscribers cursor: got code %q, want %q", got, newsletter.EINVALID)
	}
}

// TestRefusedChanges checks that fn cannot move a record to another key,
// which would leave its index entries behind.
func TestRefusedChanges(t *testing.T) {
	s := mustOpen(t)
	ctx := t.Context()
	storetest.MustCreateSubscriber(t, s, &newsletter.Subscriber{ID: "sub-1", Email: "a@example.com"})
	storetest.MustPutArticle(t, s, &newsletter.Article{ID: "art-1"})
	storetest.MustCreateDigest(t, s, &newsletter.Digest{ID: "daily-2026-11-26"})
	storetest.MustCreateDelivery(t, s, &newsletter.Delivery{DigestID: "daily-2026-11-26", SubscriberID: "sub-1"})

	tests := []struct {
		name string
		err  func() error
	}{
		{"subscriber ID", func() error {
			_, err := s.UpdateSubscriber(ctx, "sub-1", func(x *newsletter.Subscriber) error { x.ID = "sub-2"; return nil })
			return err
		}},
		{"subscriber email", func() error {
			_, err := s.UpdateSubscriber(ctx, "sub-1", func(x *newsletter.Subscriber) error { x.Email = "b@example.com"; return nil })
			return err
		}},
		{"article ID", func() error {
			_, err := s.UpdateArticle(ctx, "art-1", func(x *newsletter.Article) error { x.ID = "art-2"; return nil })
			return err
		}},
		{"digest ID", func() error {
			_, err := s.UpdateDigest(ctx, "daily-2026-11-26", func(x *newsletter.Digest) error { x.ID = "daily-2026-11-27"; return nil })
			return err
		}},
		{"delivery subscriber", func() error {
			_, err := s.UpdateDelivery(ctx, "daily-2026-11-26", "sub-1", func(x *newsletter.Delivery) error { x.SubscriberID = "sub-2"; return nil })
			return err
		}},
		{"empty subscriber ID", func() error { return s.CreateSubscriber(ctx, &newsletter.Subscriber{Email: "c@example.com"}) }},
		{"empty delivery digest", func() error { return s.CreateDelivery(ctx, &newsletter.Delivery{SubscriberID: "sub-1"}) }},
		{"empty token hash", func() error { return s.CreateEditorToken(ctx, &newsletter.EditorToken{ID: "tok-1"}) }},
	}
	for _, tt := range tests {
		if got := newsletter.ErrorCode(tt.err()); got != newsletter.EINVALID {
			t.Errorf("%s: got code %q, want %q", tt.name, got, newsletter.EINVALID)
		}
	}
	checkIndexes(t, s)
}

func BenchmarkCreateDelivery(b *testing.B) {
	s := mustOpen(b)
	ctx := b.Context()
	storetest.MustCreateDigest(b, s, &newsletter.Digest{ID: "daily-2026-11-26"})
	i := 0
	for b.Loop() {
		err := s.CreateDelivery(ctx, &newsletter.Delivery{
			DigestID: "daily-2026-11-26", SubscriberID: fmt.Sprintf("sub-%09d", i), Status: newsletter.DeliveryQueued,
		})
		if err != nil {
			b.Fatalf("CreateDelivery: got err %v, want nil", err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkSubscribersPage(b *testing.B) {
	s := mustOpen(b)
	ctx := b.Context()
	const readers = 5000
	err := s.db.Update(func(tx *bbolt.Tx) error { // one transaction: setup, not the thing measured
		for i := range readers {
			sub := &newsletter.Subscriber{
				ID: fmt.Sprintf("sub-%06d", i), Email: fmt.Sprintf("r%d@example.com", i),
				Status: newsletter.StatusConfirmed, Frequency: newsletter.Frequencies[i%2],
			}
			if err := putSubscriber(tx.Bucket(bucketSubscribers), sub); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("setup: got err %v, want nil", err)
	}
	cursor := ""
	for b.Loop() {
		page, next, err := s.Subscribers(ctx, newsletter.SubscriberFilter{Frequency: newsletter.Daily}, newsletter.Page{Cursor: cursor, Limit: 100})
		if err != nil || len(page) == 0 {
			b.Fatalf("Subscribers: got %d readers, err %v, want a page", len(page), err)
		}
		cursor = next
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")
}
