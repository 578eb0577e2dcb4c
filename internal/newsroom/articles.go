package newsroom

import (
	"context"
	"fmt"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// ArticleInput is an article as an editor or the site submits it.
type ArticleInput struct {
	URL         string
	Title       string
	Summary     string
	Author      string
	ImageURL    string
	Sections    []string
	PublishedAt time.Time // zero means now
}

// ArticlePatch changes some fields of an article; nil fields stay.
type ArticlePatch struct {
	Title       *string
	Summary     *string
	Author      *string
	ImageURL    *string
	Sections    *[]string
	PublishedAt *time.Time
}

// SubmitArticle adds an article, or updates the one at the same canonical
// URL. It reports whether the article is new.
func (s *Service) SubmitArticle(ctx context.Context, in ArticleInput) (*newsletter.Article, bool, error) {
	now := s.cfg.Now()
	a := &newsletter.Article{
		URL: in.URL, Title: in.Title, Summary: in.Summary, Author: in.Author,
		ImageURL: in.ImageURL, Sections: in.Sections, PublishedAt: in.PublishedAt,
		CreatedAt: now, UpdatedAt: now,
	}
	if a.PublishedAt.IsZero() {
		a.PublishedAt = now
	}
	if err := a.Validate(nil); err != nil {
		return nil, false, err
	}
	created, err := s.store.PutArticle(ctx, a)
	if err != nil {
		return nil, false, fmt.Errorf("submit article: %w", err)
	}
	return a, created, nil
}

// UpdateArticle changes an article's fields. Its URL, and so its ID, stay.
func (s *Service) UpdateArticle(ctx context.Context, id string, p ArticlePatch) (*newsletter.Article, error) {
	if err := checkArticleID(id); err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	a, err := s.store.UpdateArticle(ctx, id, func(a *newsletter.Article) error {
		set(&a.Title, p.Title)
		set(&a.Summary, p.Summary)
		set(&a.Author, p.Author)
		set(&a.ImageURL, p.ImageURL)
		set(&a.Sections, p.Sections)
		set(&a.PublishedAt, p.PublishedAt)
		a.UpdatedAt = now
		return a.Validate(nil)
	})
	if err != nil {
		return nil, wrap("update article", err)
	}
	return a, nil
}

// Article returns one article. ENOTFOUND.
func (s *Service) Article(ctx context.Context, id string) (*newsletter.Article, error) {
	if err := checkArticleID(id); err != nil {
		return nil, err
	}
	a, err := s.store.Article(ctx, id)
	return a, wrap("article", err)
}

// Articles lists articles, newest first.
func (s *Service) Articles(ctx context.Context, p newsletter.Page) ([]*newsletter.Article, string, error) {
	as, next, err := s.store.Articles(ctx, newsletter.ArticleFilter{Newest: true}, p)
	return as, next, wrap("articles", err)
}

// DeleteArticle withdraws an article from future digests. Digests already
// built keep their copy. ENOTFOUND.
func (s *Service) DeleteArticle(ctx context.Context, id string) error {
	if err := checkArticleID(id); err != nil {
		return err
	}
	return wrap("delete article", s.store.DeleteArticle(ctx, id))
}

// checkArticleID refuses IDs that ArticleID could not have made, so junk
// never reaches a store key.
func checkArticleID(id string) error {
	if len(id) != 24 {
		return newsletter.Errorf(newsletter.ENOTFOUND, "Article not found.")
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return newsletter.Errorf(newsletter.ENOTFOUND, "Article not found.")
		}
	}
	return nil
}

func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// wrap adds context to an error, keeping its code; nil stays nil.
func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
