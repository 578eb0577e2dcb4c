package bolt

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// PutArticle creates the article or replaces the one with its ID, keeping
// the stored CreatedAt (which it copies into a). It reports whether the
// article is new. EINVALID without an ID.
func (s *Store) PutArticle(ctx context.Context, a *newsletter.Article) (created bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if a == nil || a.ID == "" {
		return false, newsletter.Errorf(newsletter.EINVALID, "Article ID is required.")
	}
	rec := *a
	err = s.db.Update(func(tx *bbolt.Tx) error {
		old, err := article(tx, a.ID)
		switch {
		case newsletter.ErrorCode(err) == newsletter.ENOTFOUND:
			created = true
		case err != nil:
			return err
		default:
			rec.CreatedAt = old.CreatedAt
		}
		return putArticle(tx, old, &rec)
	})
	if err != nil {
		return false, err
	}
	a.CreatedAt = rec.CreatedAt
	return created, nil
}

// Article returns the article with the ID. ENOTFOUND.
func (s *Store) Article(ctx context.Context, id string) (*newsletter.Article, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var a *newsletter.Article
	err := s.db.View(func(tx *bbolt.Tx) (err error) {
		a, err = article(tx, id)
		return err
	})
	return a, err
}

// UpdateArticle changes an article through fn in one transaction.
// ENOTFOUND, EINVALID when fn changed the ID, or fn's error.
func (s *Store) UpdateArticle(ctx context.Context, id string, fn func(*newsletter.Article) error) (*newsletter.Article, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var a *newsletter.Article
	err := s.db.Update(func(tx *bbolt.Tx) error {
		old, err := article(tx, id)
		if err != nil {
			return err
		}
		rec := *old
		rec.Sections = append([]string(nil), old.Sections...)
		if err := fn(&rec); err != nil {
			return err
		}
		if rec.ID != id {
			return newsletter.Errorf(newsletter.EINVALID, "An article's ID cannot be changed.")
		}
		a = &rec
		return putArticle(tx, old, a)
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// DeleteArticle removes an article. ENOTFOUND.
func (s *Store) DeleteArticle(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		old, err := article(tx, id)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketArticles).Delete([]byte(id)); err != nil {
			return fmt.Errorf("delete article %s: %w", id, err)
		}
		if err := tx.Bucket(bucketArticlesPublished).Delete(indexKey(old.PublishedAt, id)); err != nil {
			return fmt.Errorf("delete article %s: unindex: %w", id, err)
		}
		return nil
	})
}

// Articles lists articles matching f by publication time, oldest first or
// newest first when f.Newest, ties broken by ID (so newest first is the
// exact reverse), a page at a time. EINVALID for a cursor this listing did
// not return.
func (s *Store) Articles(ctx context.Context, f newsletter.ArticleFilter, p newsletter.Page) ([]*newsletter.Article, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	after, err := decodeCursor(cursorArticles, p.Cursor, timeKeyLen)
	if err != nil {
		return nil, "", err
	}
	var (
		out  []*newsletter.Article
		next string
	)
	err = s.db.View(func(tx *bbolt.Tx) error {
		sc := scan[*newsletter.Article]{kind: cursorArticles, reverse: f.Newest}
		// The index is walked from one end of the window towards the
		// other: times outside the window at the near end are skipped,
		// the first one past the far end stops the walk.
		beforeWindow := func(t time.Time) bool { return !f.After.IsZero() && !t.After(f.After) }
		afterWindow := func(t time.Time) bool { return !f.Until.IsZero() && t.After(f.Until) }
		near, far := beforeWindow, afterWindow
		if f.Newest {
			near, far = afterWindow, beforeWindow
			if !f.Until.IsZero() {
				sc.from = indexKey(f.Until.Add(time.Nanosecond), "")
			}
		} else if !f.After.IsZero() {
			sc.from = indexKey(f.After, "")
		}
		sc.visit = func(k, _ []byte) (*newsletter.Article, bool, bool, error) {
			if len(k) < timeKeyLen {
				return nil, false, false, fmt.Errorf("list articles: bad index key %q", k)
			}
			t, id := splitIndexKey(k)
			if far(t) {
				return nil, false, true, nil
			}
			if near(t) {
				return nil, false, false, nil
			}
			a, err := article(tx, id)
			if err != nil {
				return nil, false, false, fmt.Errorf("list articles: index names article %s: %w", id, err)
			}
			return a, true, false, nil
		}
		out, next, err = sc.page(tx.Bucket(bucketArticlesPublished).Cursor(), after, p.Size())
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// article reads the article with the ID. ENOTFOUND.
func article(tx *bbolt.Tx, id string) (*newsletter.Article, error) {
	var a newsletter.Article
	if ok, err := get(tx.Bucket(bucketArticles), "article", id, &a); err != nil {
		return nil, err
	} else if !ok {
		return nil, notFound("Article")
	}
	return &a, nil
}

// putArticle writes a and moves its index entry from where old (nil for a
// new article) had it.
func putArticle(tx *bbolt.Tx, old, a *newsletter.Article) error {
	index := tx.Bucket(bucketArticlesPublished)
	if old != nil {
		if err := index.Delete(indexKey(old.PublishedAt, old.ID)); err != nil {
			return fmt.Errorf("put article %s: unindex: %w", a.ID, err)
		}
	}
	if err := put(tx.Bucket(bucketArticles), a.ID, a); err != nil {
		return fmt.Errorf("put article: %w", err)
	}
	if err := index.Put(indexKey(a.PublishedAt, a.ID), nil); err != nil {
		return fmt.Errorf("put article %s: index: %w", a.ID, err)
	}
	return nil
}
