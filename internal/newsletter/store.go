package newsletter

import (
	"context"
	"time"
)

// Store keeps Broadsheet's records: subscribers, articles, digests, the
// delivery ledger and editor tokens. It is declared here, beside the domain,
// rather than by each consumer, because every store adapter (bbolt on a
// laptop, DynamoDB on AWS) must pass one shared contract suite
// (internal/storetest) against exactly this set of methods.
//
// Lookups return an error with code ENOTFOUND when nothing matches, never a
// nil record. Update methods read the record, call fn on a copy and write
// the result atomically; when fn returns an error nothing is written and
// that error is returned unchanged. fn may run more than once, so it must
// not have side effects; a fn that changes a record's keys gets EINVALID.
//
// Listings return a cursor for the next page, "" once no records are left
// (a store may return one last empty page after an exactly full one). A
// cursor that the same listing did not return gets EINVALID. Records are
// copies: changing one does not change the store. Times keep nanoseconds.
// A digest with no ledger rows, or none at all, has empty Deliveries and
// zero DeliveryCounts.
type Store interface {
	// CreateSubscriber adds a reader. ECONFLICT when the ID or the
	// address (compared by EmailKey) is taken.
	CreateSubscriber(ctx context.Context, s *Subscriber) error
	// Subscriber returns the reader with the ID. ENOTFOUND.
	Subscriber(ctx context.Context, id string) (*Subscriber, error)
	// SubscribersByID returns the readers with the IDs, one per ID in
	// order, nil for an ID that has none: the sender's re-read of a task's
	// readers in one call.
	SubscribersByID(ctx context.Context, ids []string) ([]*Subscriber, error)
	// SubscriberByEmail returns the reader with the address, compared by
	// EmailKey. ENOTFOUND.
	SubscriberByEmail(ctx context.Context, email string) (*Subscriber, error)
	// UpdateSubscriber changes a reader through fn, which must not change
	// ID or Email. ENOTFOUND, or fn's error.
	UpdateSubscriber(ctx context.Context, id string, fn func(*Subscriber) error) (*Subscriber, error)
	// DeleteSubscriber erases a reader. ENOTFOUND.
	DeleteSubscriber(ctx context.Context, id string) error
	// Subscribers lists readers matching f, ordered by ID, a page at a
	// time; the returned cursor is "" after the last page.
	Subscribers(ctx context.Context, f SubscriberFilter, p Page) ([]*Subscriber, string, error)

	// PutArticle creates the article or replaces the one with its ID,
	// keeping the stored CreatedAt (which it copies into a). It reports
	// whether the article is new.
	PutArticle(ctx context.Context, a *Article) (created bool, err error)
	// Article returns the article with the ID. ENOTFOUND.
	Article(ctx context.Context, id string) (*Article, error)
	// UpdateArticle changes an article through fn, which must not change
	// its ID. ENOTFOUND, or fn's error.
	UpdateArticle(ctx context.Context, id string, fn func(*Article) error) (*Article, error)
	// DeleteArticle removes an article. ENOTFOUND.
	DeleteArticle(ctx context.Context, id string) error
	// Articles lists articles matching f by publication time (oldest
	// first, or newest first when f.Newest), a page at a time.
	Articles(ctx context.Context, f ArticleFilter, p Page) ([]*Article, string, error)

	// CreateDigest adds a digest. ECONFLICT when its ID exists, which is
	// what makes a digest per period unique.
	CreateDigest(ctx context.Context, d *Digest) error
	// Digest returns the digest with the ID. ENOTFOUND.
	Digest(ctx context.Context, id string) (*Digest, error)
	// UpdateDigest changes a digest through fn, which must not change its
	// ID. ENOTFOUND, or fn's error.
	UpdateDigest(ctx context.Context, id string, fn func(*Digest) error) (*Digest, error)
	// Digests lists digests matching f, newest CreatedAt first.
	Digests(ctx context.Context, f DigestFilter, p Page) ([]*Digest, string, error)

	// CreateDelivery adds a ledger row and counts it in its digest's
	// Counters in the same write. ECONFLICT when the row exists.
	CreateDelivery(ctx context.Context, d *Delivery) error
	// Delivery returns one ledger row. ENOTFOUND.
	Delivery(ctx context.Context, digestID, subscriberID string) (*Delivery, error)
	// UpdateDelivery changes a ledger row through fn, which must not change
	// its keys, and moves it between its digest's counters in the same
	// write. ENOTFOUND, or fn's error.
	UpdateDelivery(ctx context.Context, digestID, subscriberID string, fn func(*Delivery) error) (*Delivery, error)
	// CreateDeliveries adds those of one digest's ledger rows that do not
	// exist yet and counts them in its Counters, as CreateDelivery does for
	// one but in as few writes as the store can make. A row that exists is
	// left as it is. It reports, per row in order, whether it was created.
	// EINVALID, with nothing written, for a row without its keys or rows
	// of more than one digest. After any other error each row is either
	// created whole and counted, or not created.
	CreateDeliveries(ctx context.Context, rows []*Delivery) (created []bool, err error)
	// ClaimDeliveries moves each listed ledger row of a digest that is
	// queued to sending, leased until leaseUntil, with UpdatedAt now and
	// one more attempt, and moves it between the counters; a row in any
	// other status is left as it is. It returns, per ID in order, the row
	// as it stands after the call (nil when there is none) and whether
	// this call claimed it. After an error each row is either claimed
	// whole and counted, or left.
	ClaimDeliveries(ctx context.Context, digestID string, subscriberIDs []string, now, leaseUntil time.Time) ([]Claim, error)
	// SettleDeliveries records the outcome of sends: each row named by an
	// outcome that is not settled yet (Status.Settled is false) takes the
	// outcome's Status, MessageID and Reason, with LeaseUntil cleared and
	// UpdatedAt now, and moves between the counters; a settled row, or a
	// missing one, is left. It reports, per outcome in order, whether the
	// row was written. EINVALID, with nothing written, for an outcome
	// without a subscriber ID or with a status that is not one of
	// DeliveryStatuses. After any other error each row is either written
	// whole and counted, or left.
	SettleDeliveries(ctx context.Context, digestID string, outcomes []Outcome, now time.Time) (written []bool, err error)
	// Deliveries lists a digest's ledger rows matching f, ordered by
	// subscriber ID, a page at a time.
	Deliveries(ctx context.Context, digestID string, f DeliveryFilter, p Page) ([]*Delivery, string, error)
	// DeliveryCounts returns how many of a digest's ledger rows are in each
	// status. A digest with no rows has zero counters.
	DeliveryCounts(ctx context.Context, digestID string) (Counters, error)

	// CreateEditorToken stores an editor token. ECONFLICT when its ID or
	// hash exists.
	CreateEditorToken(ctx context.Context, t *EditorToken) error
	// EditorTokenByHash returns the token whose secret hashes to hash.
	// ENOTFOUND.
	EditorTokenByHash(ctx context.Context, hash string) (*EditorToken, error)
	// EditorTokens lists every editor token, oldest first.
	EditorTokens(ctx context.Context) ([]*EditorToken, error)
	// DeleteEditorToken revokes a token. ENOTFOUND.
	DeleteEditorToken(ctx context.Context, id string) error

	// Checkpoint returns the checkpoint with the name. ENOTFOUND.
	Checkpoint(ctx context.Context, name string) (*Checkpoint, error)
	// PutCheckpoint creates the checkpoint or replaces the one with its
	// name. EINVALID without a name.
	PutCheckpoint(ctx context.Context, c *Checkpoint) error
}

// Checkpoint is where a background job stopped, kept in the store so that
// it resumes there after a restart or on another Lambda instance: the
// WordPress ingest keeps the newest post times it has read.
type Checkpoint struct {
	Name      string    `json:"name"`
	Value     string    `json:"value"` // in the job's own encoding
	UpdatedAt time.Time `json:"updatedAt"`
}

// CheckCheckpoint is PutCheckpoint's check of its argument, shared by the
// stores: EINVALID without a checkpoint or its name.
func CheckCheckpoint(c *Checkpoint) error {
	if c == nil || c.Name == "" {
		return Errorf(EINVALID, "Checkpoint name is required.")
	}
	return nil
}

// Page asks for one page of a listing: the cursor a previous call returned
// ("" for the first page) and how many records at most.
type Page struct {
	Cursor string
	Limit  int
}

// Page sizes.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Size returns the page's limit, clamped to [1, MaxPageSize] with
// DefaultPageSize for zero or less.
func (p Page) Size() int {
	switch {
	case p.Limit <= 0:
		return DefaultPageSize
	case p.Limit > MaxPageSize:
		return MaxPageSize
	}
	return p.Limit
}

// SubscriberFilter selects readers; zero fields match everything.
type SubscriberFilter struct {
	Status    SubscriberStatus
	Frequency Frequency
}

// Match reports whether s passes the filter.
func (f SubscriberFilter) Match(s *Subscriber) bool {
	return (f.Status == "" || s.Status == f.Status) && (f.Frequency == "" || s.Frequency == f.Frequency)
}

// ArticleFilter selects articles published after After and at or before
// Until; zero times leave that end open.
type ArticleFilter struct {
	After  time.Time
	Until  time.Time
	Newest bool // newest first instead of oldest first
}

// Match reports whether a passes the filter.
func (f ArticleFilter) Match(a *Article) bool {
	return (f.After.IsZero() || a.PublishedAt.After(f.After)) && (f.Until.IsZero() || !a.PublishedAt.After(f.Until))
}

// DigestFilter selects digests; zero fields match everything.
type DigestFilter struct {
	Frequency Frequency
	Status    DigestStatus
}

// Match reports whether d passes the filter.
func (f DigestFilter) Match(d *Digest) bool {
	return (f.Frequency == "" || d.Frequency == f.Frequency) && (f.Status == "" || d.Status == f.Status)
}

// DeliveryFilter selects ledger rows; a zero Status matches every row.
type DeliveryFilter struct {
	Status DeliveryStatus
}

// Match reports whether d passes the filter.
func (f DeliveryFilter) Match(d *Delivery) bool {
	return f.Status == "" || d.Status == f.Status
}
