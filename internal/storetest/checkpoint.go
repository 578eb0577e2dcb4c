package storetest

import (
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

func testCheckpoints(t *testing.T, open func(t *testing.T) newsletter.Store) {
	t.Run("PutAndGet", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		_, err := store.Checkpoint(ctx, "wordpress")
		wantCode(t, err, newsletter.ENOTFOUND, "Checkpoint before any put")

		first := &newsletter.Checkpoint{Name: "wordpress", Value: `{"after":"2026-11-26T07:30:00"}`, UpdatedAt: at(1)}
		mustNotErr(t, store.PutCheckpoint(ctx, first), "PutCheckpoint")
		other := &newsletter.Checkpoint{Name: "other", Value: "x", UpdatedAt: at(2)}
		mustNotErr(t, store.PutCheckpoint(ctx, other), "PutCheckpoint other")
		got, err := store.Checkpoint(ctx, "wordpress")
		mustNotErr(t, err, "Checkpoint")
		equal(t, "Checkpoint", got, first, normCheckpoint)

		// A put replaces the whole checkpoint, and the copy handed back
		// is the caller's own.
		second := &newsletter.Checkpoint{Name: "wordpress", Value: "later", UpdatedAt: at(3)}
		mustNotErr(t, store.PutCheckpoint(ctx, second), "PutCheckpoint again")
		got.Value = "changed by the caller"
		got, err = store.Checkpoint(ctx, "wordpress")
		mustNotErr(t, err, "Checkpoint after replace")
		equal(t, "Checkpoint after replace", got, second, normCheckpoint)
		got, err = store.Checkpoint(ctx, "other")
		mustNotErr(t, err, "Checkpoint other")
		equal(t, "Checkpoint other", got, other, normCheckpoint)
	})
	t.Run("Invalid", func(t *testing.T) {
		store := open(t)
		wantCode(t, store.PutCheckpoint(t.Context(), &newsletter.Checkpoint{Value: "x"}), newsletter.EINVALID, "PutCheckpoint without a name")
		wantCode(t, store.PutCheckpoint(t.Context(), nil), newsletter.EINVALID, "PutCheckpoint nil")
		_, err := store.Checkpoint(t.Context(), "")
		wantCode(t, err, newsletter.ENOTFOUND, "Checkpoint without a name")
	})
}

func normCheckpoint(c *newsletter.Checkpoint) *newsletter.Checkpoint {
	if c == nil {
		return nil
	}
	n := *c
	n.UpdatedAt = normTime(n.UpdatedAt)
	return &n
}

// testArticleOrigin checks that what the WordPress bridge keeps on an
// article, its source and revision time, survives a round trip, in the
// article and in a digest's snapshot of it.
func testArticleOrigin(t *testing.T, open func(t *testing.T) newsletter.Store) {
	store := open(t)
	ctx := t.Context()
	a := &newsletter.Article{
		ID: "a-origin", URL: "https://news.example.com/2026/11/26/story/", Source: "https://news.example.com/?p=123",
		Title: "Story", Sections: []string{"news"}, PublishedAt: at(1), CreatedAt: at(1), UpdatedAt: at(2), RevisedAt: at(2),
	}
	if _, err := store.PutArticle(ctx, a); err != nil {
		t.Fatalf("PutArticle: %v", err)
	}
	got, err := store.Article(ctx, a.ID)
	mustNotErr(t, err, "Article")
	equal(t, "Article", got, a, normArticle)

	d := &newsletter.Digest{
		ID: "daily-2026-11-26", Frequency: newsletter.Daily, Period: "2026-11-26", Subject: "S",
		Articles: []newsletter.Article{*a}, Updated: []string{a.ID}, Since: at(0), Until: at(3),
		Status: newsletter.DigestDraft, CreatedAt: at(3),
	}
	mustNotErr(t, store.CreateDigest(ctx, d), "CreateDigest")
	gd, err := store.Digest(ctx, d.ID)
	mustNotErr(t, err, "Digest")
	if len(gd.Articles) != 1 || gd.Articles[0].Source != a.Source || !gd.Articles[0].RevisedAt.Equal(a.RevisedAt) {
		t.Errorf("Digest articles: got %+v, want the source and revision of %+v", gd.Articles, a)
	}
	if !gd.IsUpdated(a.ID) {
		t.Errorf("Digest.Updated: got %v, want [%s]", gd.Updated, a.ID)
	}
}
