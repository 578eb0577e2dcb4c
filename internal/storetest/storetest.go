// Package storetest is the contract suite that every newsletter.Store
// adapter must pass (bbolt on a laptop, DynamoDB on AWS). An adapter's own
// tests call Run with a function that opens an empty store:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) newsletter.Store {
//			s, err := bolt.Open(filepath.Join(t.TempDir(), "broadsheet.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite checks only what the newsletter.Store doc comments promise, so
// that two stores that pass it cannot be told apart by the code above them.
package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// Run runs the contract suite against the stores open returns. open is
// called once per subtest and must return a new, empty store; it should
// register its own cleanup with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) newsletter.Store) {
	t.Run("Subscriber", func(t *testing.T) { testSubscribers(t, open) })
	t.Run("Article", func(t *testing.T) { testArticles(t, open) })
	t.Run("Digest", func(t *testing.T) { testDigests(t, open) })
	t.Run("Delivery", func(t *testing.T) { testDeliveries(t, open) })
	t.Run("DeliveryBatch", func(t *testing.T) { testBatches(t, open) })
	t.Run("EditorToken", func(t *testing.T) { testEditorTokens(t, open) })
	t.Run("Cursor", func(t *testing.T) { testCursors(t, open) })
	t.Run("Checkpoint", func(t *testing.T) { testCheckpoints(t, open) })
	t.Run("ArticleOrigin", func(t *testing.T) { testArticleOrigin(t, open) })
}

// errFn is what the fn of the Update* tests returns to abort the update.
var errFn = errors.New("storetest: fn refused the change")

// base is the time the fixtures are built around. It has nanoseconds and a
// zone that is not UTC, so that a store that truncates or shifts times is
// caught.
var base = time.Date(2026, 11, 26, 7, 30, 15, 123456789, time.FixedZone("CET", 3600))

// at returns base plus n minutes.
func at(n int) time.Time { return base.Add(time.Duration(n) * time.Minute) }

// wantCode fails the test unless err carries the newsletter error code.
func wantCode(tb testing.TB, err error, code, what string) {
	tb.Helper()
	if got := newsletter.ErrorCode(err); got != code {
		tb.Errorf("%s: got code %q (err %v), want %q", what, got, err, code)
	}
}

// mustNotErr stops the test when err is not nil.
func mustNotErr(tb testing.TB, err error, what string) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s: got err %v, want nil", what, err)
	}
}

// equal reports a difference between got and want, compared after both
// went through norm.
func equal[T any](tb testing.TB, what string, got, want T, norm func(T) T) {
	tb.Helper()
	if g, w := norm(got), norm(want); !reflect.DeepEqual(g, w) {
		tb.Errorf("%s:\ngot  %+v\nwant %+v", what, g, w)
	}
}

// normTime makes times that are Equal also DeepEqual: it drops the
// monotonic clock reading and the location, which stores need not keep.
func normTime(t time.Time) time.Time { return t.Round(0).UTC() }

// normStrings treats a nil and an empty slice as the same.
func normStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

func normSubscriber(s *newsletter.Subscriber) *newsletter.Subscriber {
	if s == nil {
		return nil
	}
	c := *s
	c.Sections = normStrings(c.Sections)
	c.Consent.Time = normTime(c.Consent.Time)
	c.CreatedAt, c.UpdatedAt = normTime(c.CreatedAt), normTime(c.UpdatedAt)
	c.ConfirmedAt, c.UnsubscribedAt = normTime(c.ConfirmedAt), normTime(c.UnsubscribedAt)
	c.ConfirmationSentAt = normTime(c.ConfirmationSentAt)
	c.LastSignUpAt, c.ArticlesAfter = normTime(c.LastSignUpAt), normTime(c.ArticlesAfter)
	return &c
}

func normArticleValue(a newsletter.Article) newsletter.Article {
	a.Sections = normStrings(a.Sections)
	a.PublishedAt, a.CreatedAt, a.UpdatedAt = normTime(a.PublishedAt), normTime(a.CreatedAt), normTime(a.UpdatedAt)
	a.RevisedAt = normTime(a.RevisedAt)
	return a
}

func normArticle(a *newsletter.Article) *newsletter.Article {
	if a == nil {
		return nil
	}
	c := normArticleValue(*a)
	return &c
}

func normDigest(d *newsletter.Digest) *newsletter.Digest {
	if d == nil {
		return nil
	}
	c := *d
	c.Articles = nil
	for _, a := range d.Articles {
		c.Articles = append(c.Articles, normArticleValue(a))
	}
	c.Since, c.Until = normTime(c.Since), normTime(c.Until)
	c.CreatedAt, c.SendStartedAt, c.SentAt = normTime(c.CreatedAt), normTime(c.SendStartedAt), normTime(c.SentAt)
	return &c
}

func normDelivery(d *newsletter.Delivery) *newsletter.Delivery {
	if d == nil {
		return nil
	}
	c := *d
	c.LeaseUntil, c.UpdatedAt = normTime(c.LeaseUntil), normTime(c.UpdatedAt)
	return &c
}

func normToken(t *newsletter.EditorToken) *newsletter.EditorToken {
	if t == nil {
		return nil
	}
	c := *t
	c.Scopes = normStrings(c.Scopes)
	c.CreatedAt = normTime(c.CreatedAt)
	return &c
}

// lister is one call of a paged listing.
type lister[T any] func(p newsletter.Page) ([]T, string, error)

// allPages follows cursors from the first page to the last with the given
// limit and returns every record. It fails the test when a page is larger
// than the limit, a cursor repeats or the listing does not end.
//
// A store may end with an empty page whose cursor is "" (DynamoDB cannot
// always tell that a full page was the last one), so only termination is
// checked, not that the last non-empty page carried "".
func allPages[T any](tb testing.TB, limit int, list lister[T]) []T {
	tb.Helper()
	var all []T
	seen := map[string]bool{}
	p := newsletter.Page{Limit: limit}
	for range 1000 {
		page, next, err := list(p)
		if err != nil {
			tb.Fatalf("list page (limit %d, cursor %q): got err %v, want nil", limit, p.Cursor, err)
		}
		if len(page) > p.Size() {
			tb.Fatalf("list page (limit %d): got %d records, want at most %d", limit, len(page), p.Size())
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		if seen[next] {
			tb.Fatalf("list page (limit %d): cursor %q returned twice", limit, next)
		}
		seen[next] = true
		p.Cursor = next
	}
	tb.Fatalf("list (limit %d): still not on the last page after 1000 pages", limit)
	return nil
}

// limits are the page sizes the listing tests walk with: one record a
// page, a size that does not divide the fixtures, exactly the fixtures, and
// the default.
var limits = []int{1, 3, 10, 0}

// ids returns the ID of each record, for readable failure messages.
func ids[T any](recs []T, id func(T) string) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = id(r)
	}
	return out
}

// sameIDs fails the test when got and want differ.
func sameIDs(tb testing.TB, what string, got, want []string) {
	tb.Helper()
	if !reflect.DeepEqual(normStrings(got), normStrings(want)) {
		tb.Errorf("%s: got %v, want %v", what, got, want)
	}
}

// shuffled returns 0..n-1 in a fixed scrambled order, so that fixtures are
// not written in the order they are listed.
func shuffled(n int) []int {
	return rand.New(rand.NewPCG(1, 2)).Perm(n)
}

func name(prefix string, i int) string { return fmt.Sprintf("%s-%02d", prefix, i) }
