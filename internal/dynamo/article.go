package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// articleItem is an article as stored.
type articleItem struct {
	keys
	newsletter.Article
}

func articleKey(id string) item { return key(prefixArticle+id, skArticle) }

func encodeArticle(a *newsletter.Article, v int64) (item, error) {
	it, err := marshal(articleItem{
		keys: keys{
			PK: prefixArticle + a.ID, SK: skArticle, Type: typeArticle,
			GSI2PK: listArticles, GSI2SK: timeKey(a.PublishedAt) + "#" + a.ID,
			Version: v,
		},
		Article: *a,
	})
	if err != nil {
		return nil, fmt.Errorf("encode article %s: %w", a.ID, err)
	}
	return it, nil
}

func decodeArticle(it item) (*articleItem, error) {
	var rec articleItem
	if err := unmarshal(it, &rec); err != nil {
		return nil, fmt.Errorf("decode article %v: %w", it[attrPK], err)
	}
	return &rec, nil
}

// article reads the article with the ID. ENOTFOUND.
func (s *Store) article(ctx context.Context, id string, consistent bool) (*articleItem, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, notFound("Article")
	}
	it, err := s.getItem(ctx, articleKey(id), consistent)
	if err != nil {
		return nil, fmt.Errorf("get article %s: %w", id, err)
	}
	if it == nil {
		return nil, notFound("Article")
	}
	return decodeArticle(it)
}

// PutArticle creates the article or replaces the one with its ID, keeping
// the stored CreatedAt (which it copies into a). It reports whether the
// article is new. EINVALID without an ID.
func (s *Store) PutArticle(ctx context.Context, a *newsletter.Article) (created bool, err error) {
	if a == nil || a.ID == "" {
		return false, newsletter.Errorf(newsletter.EINVALID, "Article ID is required.")
	}
	rec := *a
	err = s.optimistic(ctx, "put article "+a.ID, func(consistent bool) error {
		old, err := s.article(ctx, a.ID, true)
		in := &dynamodb.PutItemInput{}
		var v int64 = 1
		switch {
		case newsletter.ErrorCode(err) == newsletter.ENOTFOUND:
			created, rec.CreatedAt = true, a.CreatedAt
			in.ConditionExpression = condNew
		case err != nil:
			return err
		default:
			created, rec.CreatedAt = false, old.CreatedAt
			in.ConditionExpression, in.ExpressionAttributeValues = condVersion, versionValues(old.Version)
			v = old.Version + 1
		}
		if in.Item, err = encodeArticle(&rec, v); err != nil {
			return err
		}
		if err := s.putItem(ctx, in); conditionFailed(err) || conflict(err) {
			return errStale
		} else if err != nil {
			return fmt.Errorf("put article %s: %w", a.ID, err)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	a.CreatedAt = rec.CreatedAt
	return created, nil
}

// Article returns the article with the ID. ENOTFOUND.
func (s *Store) Article(ctx context.Context, id string) (*newsletter.Article, error) {
	rec, err := s.article(ctx, id, true)
	if err != nil {
		return nil, err
	}
	return &rec.Article, nil
}

// UpdateArticle changes an article through fn, with a write conditional
// on the version it read. ENOTFOUND, EINVALID when fn changed the ID, or
// fn's error.
func (s *Store) UpdateArticle(ctx context.Context, id string, fn func(*newsletter.Article) error) (*newsletter.Article, error) {
	return updateVersioned(s, ctx, "article "+id,
		func(consistent bool) (newsletter.Article, int64, error) {
			rec, err := s.article(ctx, id, consistent)
			if err != nil {
				return newsletter.Article{}, 0, err
			}
			return rec.Article, rec.Version, nil
		},
		fn, func(a *newsletter.Article) bool { return a.ID == id }, encodeArticle)
}

// DeleteArticle removes an article, in one conditional delete. ENOTFOUND.
func (s *Store) DeleteArticle(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if id == "" {
		return notFound("Article")
	}
	err := s.deleteItem(ctx, &dynamodb.DeleteItemInput{Key: articleKey(id), ConditionExpression: aws.String("attribute_exists(pk)")})
	if conditionFailed(err) {
		return notFound("Article")
	} else if err != nil {
		return fmt.Errorf("delete article %s: %w", id, err)
	}
	return nil
}

// Articles lists articles matching f by publication time, oldest first or
// newest first when f.Newest, ties broken by ID (so newest first is the
// exact reverse), a page at a time: one Query of GSI2 whose sort key is
// BETWEEN the window's ends. EINVALID for a cursor this listing did not
// return.
func (s *Store) Articles(ctx context.Context, f newsletter.ArticleFilter, p newsletter.Page) ([]*newsletter.Article, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	l := &listing{
		name: "articles", index: GSI2, pkAttr: attrGSI2PK, skAttr: attrGSI2SK, pk: listArticles,
		keyCond: attrGSI2PK + " = :pk", values: item{":pk": str(listArticles)},
		backward: f.Newest,
	}
	if f.Newest {
		l.name = "articles/newest"
	}
	if !f.After.IsZero() || !f.Until.IsZero() {
		// After is exclusive and Until inclusive: every key of a time t
		// starts with timeKey(t), and a bare timeKey sorts before every
		// key that starts with it.
		lo, hi := "0", "g" // below and above every hex digit
		if !f.After.IsZero() {
			lo = timeKey(f.After.Add(time.Nanosecond))
		}
		if !f.Until.IsZero() {
			hi = timeKey(f.Until.Add(time.Nanosecond))
		}
		if lo > hi {
			if _, err := l.decodeCursor(p.Cursor); err != nil {
				return nil, "", err
			}
			return nil, "", nil // an empty window; DynamoDB refuses BETWEEN backwards
		}
		l.keyCond += " AND " + attrGSI2SK + " BETWEEN :lo AND :hi"
		l.values[":lo"], l.values[":hi"] = str(lo), str(hi)
	}
	items, next, err := s.page(ctx, l, p)
	if err != nil {
		return nil, "", fmt.Errorf("list articles: %w", err)
	}
	out := make([]*newsletter.Article, 0, len(items))
	for _, it := range items {
		rec, err := decodeArticle(it)
		if err != nil {
			return nil, "", fmt.Errorf("list articles: %w", err)
		}
		out = append(out, &rec.Article)
	}
	return out, next, nil
}
