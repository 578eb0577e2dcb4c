package newsroom

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

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
	// Source and RevisedAt are what IngestArticle knows of a post from
	// the site: see newsletter.Article. SubmitArticle ignores them.
	Source    string
	RevisedAt time.Time
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
// URL. It reports whether the article is new. The summary may be HTML (a
// WordPress excerpt is): it is sanitised here and stored sanitised; the
// title is plain text, so any tags are stripped and entities decoded.
func (s *Service) SubmitArticle(ctx context.Context, in ArticleInput) (*newsletter.Article, bool, error) {
	if err := checkSummaryInput(in.Summary); err != nil {
		return nil, false, err
	}
	now := s.cfg.Now()
	a := &newsletter.Article{
		URL: in.URL, Title: cleanTitle(in.Title), Summary: newsletter.SanitizeSummary(in.Summary), Author: in.Author,
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
	// Not only when created: a submission retried after a failure here
	// finds the article stored, and the instant email still goes, once.
	if err := s.sendInstant(ctx, a); err != nil {
		return nil, false, fmt.Errorf("submit article: %w", err)
	}
	return a, created, nil
}

// UpdateArticle changes an article's fields. Its URL, and so its ID, stay.
// A new title and summary are cleaned as SubmitArticle cleans them.
func (s *Service) UpdateArticle(ctx context.Context, id string, p ArticlePatch) (*newsletter.Article, error) {
	if err := checkArticleID(id); err != nil {
		return nil, err
	}
	if p.Title != nil {
		title := cleanTitle(*p.Title)
		p.Title = &title
	}
	if p.Summary != nil {
		if err := checkSummaryInput(*p.Summary); err != nil {
			return nil, err
		}
		summary := newsletter.SanitizeSummary(*p.Summary)
		p.Summary = &summary
	}
	now := s.cfg.Now()
	a, err := s.store.UpdateArticle(ctx, id, func(a *newsletter.Article) error {
		before := visible(a)
		set(&a.Title, p.Title)
		set(&a.Summary, p.Summary)
		set(&a.Author, p.Author)
		set(&a.ImageURL, p.ImageURL)
		set(&a.Sections, p.Sections)
		set(&a.PublishedAt, p.PublishedAt)
		a.UpdatedAt = now
		if err := a.Validate(nil); err != nil {
			return err
		}
		if visible(a) != before {
			a.RevisedAt = now // a correction, for the next digest to mark
		}
		return nil
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

// cleanTitle strips the tags from a title and decodes its entities, as
// WordPress sends titles as HTML. A title holding a control character is
// left as it is, for Validate to refuse: a title is one line of text.
func cleanTitle(title string) string {
	if strings.ContainsFunc(title, unicode.IsControl) {
		return title
	}
	return newsletter.HTMLText(title, false)
}

// checkSummaryInput refuses a summary too long to be worth sanitising.
func checkSummaryInput(summary string) error {
	if len(summary) > 4*newsletter.MaxSummaryHTMLLength {
		return newsletter.Errorf(newsletter.EINVALID, "Summary must be at most %d characters.", newsletter.MaxSummaryLength)
	}
	return nil
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
