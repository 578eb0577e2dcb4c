package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// MustPutArticle stores a and stops the test if that fails.
func MustPutArticle(tb testing.TB, store newsletter.Store, a *newsletter.Article) *newsletter.Article {
	tb.Helper()
	if _, err := store.PutArticle(tb.Context(), a); err != nil {
		tb.Fatalf("put article %s: got err %v, want nil", a.ID, err)
	}
	return a
}

// newArticle returns article i, published i hours after base, with every
// field set.
func newArticle(i int) *newsletter.Article {
	url := fmt.Sprintf("https://news.example.com/2026/11/story-%02d/", i)
	return &newsletter.Article{
		ID:          name("art", i),
		URL:         url,
		Title:       fmt.Sprintf("Story %d", i),
		Summary:     "What happened, in two lines.",
		Author:      "A. Reporter",
		Sections:    []string{"news"},
		ImageURL:    "https://news.example.com/img.jpg",
		PublishedAt: base.Add(time.Duration(i) * time.Hour),
		CreatedAt:   at(i),
		UpdatedAt:   at(i + 1),
	}
}

// compareArticles orders articles oldest first, ties broken by ID.
func compareArticles(a, b *newsletter.Article) int {
	if c := a.PublishedAt.Compare(b.PublishedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

func articleID(a *newsletter.Article) string { return a.ID }

func testArticles(t *testing.T, open func(t *testing.T) newsletter.Store) {
	t.Run("PutCreatesAndReplaces", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		first := newArticle(1)
		want := normArticle(first)

		created, err := store.PutArticle(ctx, first)
		mustNotErr(t, err, "PutArticle (new)")
		if !created {
			t.Errorf("PutArticle of a new article: got created false, want true")
		}
		got, err := store.Article(ctx, first.ID)
		mustNotErr(t, err, "Article")
		equal(t, "Article", got, want, normArticle)

		again := newArticle(1)
		again.Title = "Story 1, corrected"
		again.PublishedAt = at(-600)
		again.CreatedAt = at(500) // must give way to the stored one
		again.UpdatedAt = at(500)
		created, err = store.PutArticle(ctx, again)
		mustNotErr(t, err, "PutArticle (replace)")
		if created {
			t.Errorf("PutArticle of an existing article: got created true, want false")
		}
		if !again.CreatedAt.Equal(first.CreatedAt) {
			t.Errorf("PutArticle argument's CreatedAt: got %v, want the stored %v", again.CreatedAt, first.CreatedAt)
		}

		want = normArticle(again)
		want.CreatedAt = normTime(first.CreatedAt)
		got, err = store.Article(ctx, first.ID)
		mustNotErr(t, err, "Article after replace")
		equal(t, "Article after replace", got, want, normArticle)

		// The replaced article is listed once, under its new time.
		list := allPages(t, 0, func(p newsletter.Page) ([]*newsletter.Article, string, error) {
			return store.Articles(ctx, newsletter.ArticleFilter{}, p)
		})
		sameIDs(t, "Articles after replace", ids(list, articleID), []string{first.ID})
		if len(list) == 1 && !list[0].PublishedAt.Equal(again.PublishedAt) {
			t.Errorf("listed PublishedAt: got %v, want %v", list[0].PublishedAt, again.PublishedAt)
		}
		list, _, err = store.Articles(ctx, newsletter.ArticleFilter{After: at(-1)}, newsletter.Page{})
		mustNotErr(t, err, "Articles after the old time")
		sameIDs(t, "Articles published after the replaced time", ids(list, articleID), nil)
	})

	t.Run("NotFound", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		MustPutArticle(t, store, newArticle(1))

		_, err := store.Article(ctx, "art-missing")
		wantCode(t, err, newsletter.ENOTFOUND, "Article")
		called := false
		_, err = store.UpdateArticle(ctx, "art-missing", func(*newsletter.Article) error { called = true; return nil })
		wantCode(t, err, newsletter.ENOTFOUND, "UpdateArticle")
		if called {
			t.Errorf("UpdateArticle of a missing article: fn called, want not called")
		}
		wantCode(t, store.DeleteArticle(ctx, "art-missing"), newsletter.ENOTFOUND, "DeleteArticle")
	})

	t.Run("Update", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		a1 := MustPutArticle(t, store, newArticle(1))
		a2 := MustPutArticle(t, store, newArticle(2))

		// Moving a1 after a2 must move it in the listing too.
		want := normArticle(a1)
		want.Title = "Moved"
		want.Sections = []string{"sport", "news"}
		want.PublishedAt = normTime(a2.PublishedAt.Add(time.Hour))
		got, err := store.UpdateArticle(ctx, a1.ID, func(a *newsletter.Article) error {
			equal(t, "fn argument", a, a1, normArticle)
			a.Title = "Moved"
			a.Sections = []string{"sport", "news"}
			a.PublishedAt = a2.PublishedAt.Add(time.Hour)
			return nil
		})
		mustNotErr(t, err, "UpdateArticle")
		equal(t, "UpdateArticle result", got, want, normArticle)
		got, err = store.Article(ctx, a1.ID)
		mustNotErr(t, err, "Article after update")
		equal(t, "Article after update", got, want, normArticle)

		list := allPages(t, 1, func(p newsletter.Page) ([]*newsletter.Article, string, error) {
			return store.Articles(ctx, newsletter.ArticleFilter{}, p)
		})
		sameIDs(t, "Articles after moving the first", ids(list, articleID), []string{a2.ID, a1.ID})
	})

	t.Run("UpdateFnError", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		orig := MustPutArticle(t, store, newArticle(1))

		got, err := store.UpdateArticle(ctx, orig.ID, func(a *newsletter.Article) error {
			a.Title = "Not this"
			a.PublishedAt = at(9000)
			return errFn
		})
		if !errors.Is(err, errFn) {
			t.Errorf("UpdateArticle: got err %v, want fn's error", err)
		}
		if got != nil {
			t.Errorf("UpdateArticle: got record %+v with fn's error, want nil", got)
		}
		stored, err := store.Article(ctx, orig.ID)
		mustNotErr(t, err, "Article")
		equal(t, "Article after refused update", stored, orig, normArticle)
		list, _, err := store.Articles(ctx, newsletter.ArticleFilter{After: at(8000)}, newsletter.Page{})
		mustNotErr(t, err, "Articles")
		sameIDs(t, "Articles at the refused time", ids(list, articleID), nil)
	})

	t.Run("Delete", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		gone := MustPutArticle(t, store, newArticle(1))
		kept := MustPutArticle(t, store, newArticle(2))

		mustNotErr(t, store.DeleteArticle(ctx, gone.ID), "DeleteArticle")
		_, err := store.Article(ctx, gone.ID)
		wantCode(t, err, newsletter.ENOTFOUND, "Article after delete")
		wantCode(t, store.DeleteArticle(ctx, gone.ID), newsletter.ENOTFOUND, "second DeleteArticle")
		for _, newest := range []bool{false, true} {
			list, _, err := store.Articles(ctx, newsletter.ArticleFilter{Newest: newest}, newsletter.Page{})
			mustNotErr(t, err, "Articles")
			sameIDs(t, fmt.Sprintf("Articles after delete (newest %v)", newest), ids(list, articleID), []string{kept.ID})
		}

		// Putting it back creates it anew.
		created, err := store.PutArticle(ctx, newArticle(1))
		mustNotErr(t, err, "PutArticle after delete")
		if !created {
			t.Errorf("PutArticle after delete: got created false, want true")
		}
	})

	t.Run("List", func(t *testing.T) {
		store := open(t)
		// Twelve articles; 3, 4 and 5 share a publication time and so do 8
		// and 9, so order within a time must come from the ID. IDs are
		// assigned against publication order for the ties.
		const n = 12
		var all []*newsletter.Article
		for _, i := range shuffled(n) {
			a := newArticle(i)
			switch i {
			case 3, 4, 5:
				a.PublishedAt = base.Add(3 * time.Hour)
				a.ID = name("art-tie", 10-i)
			case 8, 9:
				a.PublishedAt = base.Add(8 * time.Hour)
				a.ID = name("art-tie", 20-i)
			}
			all = append(all, MustPutArticle(t, store, a))
		}
		slices.SortFunc(all, compareArticles)

		h := func(n int) time.Time { return base.Add(time.Duration(n) * time.Hour) }
		filters := []struct {
			name string
			f    newsletter.ArticleFilter
		}{
			{"all", newsletter.ArticleFilter{}},
			{"after a tie, exclusive", newsletter.ArticleFilter{After: h(3)}},
			{"until a tie, inclusive", newsletter.ArticleFilter{Until: h(8)}},
			{"between", newsletter.ArticleFilter{After: h(3), Until: h(8)}},
			{"between, off the hour", newsletter.ArticleFilter{After: h(2).Add(-time.Nanosecond), Until: h(9).Add(time.Nanosecond)}},
			{"after, other zone", newsletter.ArticleFilter{After: h(5).UTC()}},
			{"after the last", newsletter.ArticleFilter{After: h(n)}},
			{"until before the first", newsletter.ArticleFilter{Until: h(-1)}},
			{"empty window", newsletter.ArticleFilter{After: h(6), Until: h(6)}},
		}
		for _, tt := range filters {
			for _, newest := range []bool{false, true} {
				f := tt.f
				f.Newest = newest
				var want []*newsletter.Article
				for _, a := range all {
					if f.Match(a) {
						want = append(want, a)
					}
				}
				if newest {
					slices.Reverse(want)
				}
				for _, limit := range limits {
					t.Run(fmt.Sprintf("%s/newest=%v/limit=%d", tt.name, newest, limit), func(t *testing.T) {
						got := allPages(t, limit, func(p newsletter.Page) ([]*newsletter.Article, string, error) {
							return store.Articles(t.Context(), f, p)
						})
						sameIDs(t, "Articles", ids(got, articleID), ids(want, articleID))
						if len(got) == len(want) {
							for i := range got {
								equal(t, "Articles record", got[i], want[i], normArticle)
							}
						}
					})
				}
			}
		}
	})

	t.Run("Copies", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		arg := newArticle(1)
		want := normArticle(arg)
		MustPutArticle(t, store, arg)
		arg.Sections[0] = "changed-after-put"
		arg.Title = "changed-after-put"

		got, err := store.Article(ctx, want.ID)
		mustNotErr(t, err, "Article")
		got.Sections[0] = "changed-after-get"
		list, _, err := store.Articles(ctx, newsletter.ArticleFilter{}, newsletter.Page{})
		mustNotErr(t, err, "Articles")
		list[0].Sections[0] = "changed-after-list"
		list[0].Title = "changed-after-list"
		updated, err := store.UpdateArticle(ctx, want.ID, func(*newsletter.Article) error { return nil })
		mustNotErr(t, err, "UpdateArticle")
		updated.Sections[0] = "changed-after-update"

		got, err = store.Article(ctx, want.ID)
		mustNotErr(t, err, "Article")
		equal(t, "Article after changing returned copies", got, want, normArticle)
	})
}
