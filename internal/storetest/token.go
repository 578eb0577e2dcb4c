package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// MustCreateEditorToken stores tok and stops the test if that fails.
func MustCreateEditorToken(tb testing.TB, store newsletter.Store, tok *newsletter.EditorToken) *newsletter.EditorToken {
	tb.Helper()
	if err := store.CreateEditorToken(tb.Context(), tok); err != nil {
		tb.Fatalf("create editor token %s: got err %v, want nil", tok.ID, err)
	}
	return tok
}

// newEditorToken returns token i, created i minutes after base.
func newEditorToken(i int) *newsletter.EditorToken {
	return &newsletter.EditorToken{
		ID:        name("tok", i),
		Name:      fmt.Sprintf("Editor %d", i),
		Hash:      fmt.Sprintf("%064x", 0xabc000+i),
		Scopes:    []string{newsletter.ScopeEdit, newsletter.ScopeSend},
		CreatedAt: at(i),
	}
}

func tokenID(t *newsletter.EditorToken) string { return t.ID }

func testEditorTokens(t *testing.T, open func(t *testing.T) newsletter.Store) {
	t.Run("CreateAndGet", func(t *testing.T) {
		store := open(t)
		want := MustCreateEditorToken(t, store, newEditorToken(1))
		MustCreateEditorToken(t, store, newEditorToken(2))

		got, err := store.EditorTokenByHash(t.Context(), want.Hash)
		mustNotErr(t, err, "EditorTokenByHash")
		equal(t, "EditorTokenByHash", got, want, normToken)
		if got != nil && got.Hash != want.Hash {
			t.Errorf("Hash: got %q, want %q", got.Hash, want.Hash)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		tok := MustCreateEditorToken(t, store, newEditorToken(1))

		_, err := store.EditorTokenByHash(ctx, fmt.Sprintf("%064x", 1))
		wantCode(t, err, newsletter.ENOTFOUND, "EditorTokenByHash")
		_, err = store.EditorTokenByHash(ctx, "")
		wantCode(t, err, newsletter.ENOTFOUND, "EditorTokenByHash of an empty hash")
		_, err = store.EditorTokenByHash(ctx, tok.ID)
		wantCode(t, err, newsletter.ENOTFOUND, "EditorTokenByHash of an ID")
		wantCode(t, store.DeleteEditorToken(ctx, "tok-missing"), newsletter.ENOTFOUND, "DeleteEditorToken")
	})

	t.Run("CreateConflict", func(t *testing.T) {
		tests := []struct {
			name     string
			id, hash string
		}{
			{"same ID", "tok-01", fmt.Sprintf("%064x", 7)},
			{"same hash", "tok-99", newEditorToken(1).Hash},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				store := open(t)
				ctx := t.Context()
				first := MustCreateEditorToken(t, store, newEditorToken(1))
				dup := newEditorToken(2)
				dup.ID, dup.Hash = tt.id, tt.hash
				wantCode(t, store.CreateEditorToken(ctx, dup), newsletter.ECONFLICT, "CreateEditorToken")

				got, err := store.EditorTokenByHash(ctx, first.Hash)
				mustNotErr(t, err, "EditorTokenByHash")
				equal(t, "first token after conflict", got, first, normToken)
				if tt.hash != first.Hash {
					_, err := store.EditorTokenByHash(ctx, tt.hash)
					wantCode(t, err, newsletter.ENOTFOUND, "EditorTokenByHash of the refused hash")
				}
				list, err := store.EditorTokens(ctx)
				mustNotErr(t, err, "EditorTokens")
				sameIDs(t, "EditorTokens after conflict", ids(list, tokenID), []string{first.ID})
			})
		}
	})

	t.Run("List", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		list, err := store.EditorTokens(ctx)
		mustNotErr(t, err, "EditorTokens of an empty store")
		sameIDs(t, "EditorTokens of an empty store", ids(list, tokenID), nil)

		const n = 10
		want := make([]*newsletter.EditorToken, n)
		for _, i := range shuffled(n) {
			tok := newEditorToken(i)
			// IDs run against creation order, so a store that lists by
			// ID instead of by age is caught.
			tok.ID = name("tok", n-i)
			want[i] = MustCreateEditorToken(t, store, tok)
		}
		got, err := store.EditorTokens(ctx)
		mustNotErr(t, err, "EditorTokens")
		sameIDs(t, "EditorTokens", ids(got, tokenID), ids(want, tokenID))
		if len(got) == n {
			for i := range got {
				equal(t, "EditorTokens record", got[i], want[i], normToken)
				if got[i].Hash != want[i].Hash {
					t.Errorf("listed Hash of %s: got %q, want %q", got[i].ID, got[i].Hash, want[i].Hash)
				}
			}
		}
	})

	t.Run("Delete", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		gone := MustCreateEditorToken(t, store, newEditorToken(1))
		kept := MustCreateEditorToken(t, store, newEditorToken(2))

		mustNotErr(t, store.DeleteEditorToken(ctx, gone.ID), "DeleteEditorToken")
		_, err := store.EditorTokenByHash(ctx, gone.Hash)
		wantCode(t, err, newsletter.ENOTFOUND, "EditorTokenByHash after delete")
		wantCode(t, store.DeleteEditorToken(ctx, gone.ID), newsletter.ENOTFOUND, "second DeleteEditorToken")
		list, err := store.EditorTokens(ctx)
		mustNotErr(t, err, "EditorTokens")
		sameIDs(t, "EditorTokens after delete", ids(list, tokenID), []string{kept.ID})

		// Both the ID and the hash are free again.
		again := newEditorToken(3)
		again.ID, again.Hash = gone.ID, gone.Hash
		MustCreateEditorToken(t, store, again)
		got, err := store.EditorTokenByHash(ctx, gone.Hash)
		mustNotErr(t, err, "EditorTokenByHash of the re-used hash")
		equal(t, "EditorTokenByHash of the re-used hash", got, again, normToken)
	})

	t.Run("Copies", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		arg := newEditorToken(1)
		want := normToken(arg)
		MustCreateEditorToken(t, store, arg)
		arg.Scopes[1] = "changed-after-create"

		got, err := store.EditorTokenByHash(ctx, want.Hash)
		mustNotErr(t, err, "EditorTokenByHash")
		got.Scopes[0] = "changed-after-get"
		list, err := store.EditorTokens(ctx)
		mustNotErr(t, err, "EditorTokens")
		list[0].Scopes[1] = "changed-after-list"

		got, err = store.EditorTokenByHash(ctx, want.Hash)
		mustNotErr(t, err, "EditorTokenByHash")
		equal(t, "EditorTokenByHash after changing returned copies", got, want, normToken)
	})
}

// testCursors checks that a cursor that no listing returned is refused
// with EINVALID rather than crashing the store or silently restarting.
func testCursors(t *testing.T, open func(t *testing.T) newsletter.Store) {
	store := open(t)
	ctx := t.Context()
	MustCreateSubscriber(t, store, newSubscriber(1))
	MustPutArticle(t, store, newArticle(1))
	d := MustCreateDigest(t, store, newDigest(1))
	MustCreateDelivery(t, store, newDelivery(d.ID, 1, newsletter.DeliveryQueued))

	listings := []struct {
		name string
		list func(p newsletter.Page) (int, string, error)
	}{
		{"Subscribers", func(p newsletter.Page) (int, string, error) {
			r, next, err := store.Subscribers(ctx, newsletter.SubscriberFilter{}, p)
			return len(r), next, err
		}},
		{"Articles", func(p newsletter.Page) (int, string, error) {
			r, next, err := store.Articles(ctx, newsletter.ArticleFilter{}, p)
			return len(r), next, err
		}},
		{"Articles newest", func(p newsletter.Page) (int, string, error) {
			r, next, err := store.Articles(ctx, newsletter.ArticleFilter{Newest: true}, p)
			return len(r), next, err
		}},
		{"Digests", func(p newsletter.Page) (int, string, error) {
			r, next, err := store.Digests(ctx, newsletter.DigestFilter{}, p)
			return len(r), next, err
		}},
		{"Deliveries", func(p newsletter.Page) (int, string, error) {
			r, next, err := store.Deliveries(ctx, d.ID, newsletter.DeliveryFilter{}, p)
			return len(r), next, err
		}},
	}
	cursors := []string{"%%%not a cursor%%%", "\x00\xff", "AAA", "{}", "eyJ0eXAiOiJKV1QifQ.e30.", time.Now().String()}
	for _, l := range listings {
		for _, c := range cursors {
			t.Run(fmt.Sprintf("%s/%q", l.name, c), func(t *testing.T) {
				n, next, err := l.list(newsletter.Page{Cursor: c, Limit: 10})
				wantCode(t, err, newsletter.EINVALID, "listing with a forged cursor")
				if n != 0 || next != "" {
					t.Errorf("listing with a forged cursor: got %d records and cursor %q, want none", n, next)
				}
			})
		}
	}
}
