package newsroom

import (
	"context"
	"errors"
	"fmt"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// IngestOutcome says what IngestArticle did with a post.
type IngestOutcome string

// The outcomes of IngestArticle.
const (
	// Ingested: the article is new. This is where a new story enters
	// Broadsheet from the site, whether pushed or pulled, exactly once.
	Ingested IngestOutcome = "created"
	// Revised: a newer revision replaced the stored article.
	Revised IngestOutcome = "updated"
	// Unchanged: the stored article is this revision or a newer one (a
	// replayed push, a post both pushed and pulled, an overlapping pull).
	Unchanged IngestOutcome = "unchanged"
)

// errUnchanged stops an update that would not change the article.
var errUnchanged = errors.New("article unchanged")

// IngestArticle adds or revises an article the site publishes, pushed by
// its plugin or pulled from its REST API. Unlike SubmitArticle it is keyed
// by in.Source (the post's shortlink), so a post keeps one article when
// its slug changes, and it never goes back: a revision no newer than the
// stored one (by RevisedAt) changes nothing, so replays and the overlap of
// push and pull are harmless. A post an editor already submitted by hand
// at the same URL updates that article rather than adding a second one.
// Title and summary are cleaned as SubmitArticle cleans them.
//
// A post published within InstantMaxAge goes to the instant readers, once
// however often it arrives (see sendInstant).
func (s *Service) IngestArticle(ctx context.Context, in ArticleInput) (*newsletter.Article, IngestOutcome, error) {
	a, outcome, err := s.ingestArticle(ctx, in)
	if err != nil {
		return nil, "", err
	}
	if err := s.sendInstant(ctx, a); err != nil {
		return nil, "", fmt.Errorf("ingest article: %w", err)
	}
	return a, outcome, nil
}

func (s *Service) ingestArticle(ctx context.Context, in ArticleInput) (*newsletter.Article, IngestOutcome, error) {
	if err := checkSummaryInput(in.Summary); err != nil {
		return nil, "", err
	}
	now := s.cfg.Now()
	a := &newsletter.Article{
		URL: in.URL, Source: in.Source, Title: cleanTitle(in.Title), Summary: newsletter.SanitizeSummary(in.Summary),
		Author: in.Author, ImageURL: in.ImageURL, Sections: in.Sections, PublishedAt: in.PublishedAt,
		RevisedAt: in.RevisedAt, CreatedAt: now, UpdatedAt: now,
	}
	if a.PublishedAt.IsZero() {
		a.PublishedAt = now
	}
	if err := a.Validate(nil); err != nil {
		return nil, "", err
	}
	id, err := s.ingestTarget(ctx, a)
	if err != nil {
		return nil, "", err
	}
	if id == "" {
		created, err := s.store.PutArticle(ctx, a)
		if err != nil {
			return nil, "", fmt.Errorf("ingest article: %w", err)
		}
		if !created {
			// A push and a pull of the same post raced: the other one
			// created it, with the same ID, so nothing is doubled.
			return a, Unchanged, nil
		}
		return a, Ingested, nil
	}
	var as newsletter.Article // the stored article, when unchanged: not read again
	stored, err := s.store.UpdateArticle(ctx, id, func(old *newsletter.Article) error {
		if !a.RevisedAt.IsZero() && !a.RevisedAt.After(old.RevisedAt) {
			as = *old
			return errUnchanged
		}
		if a.RevisedAt.IsZero() && visible(a) == visible(old) {
			as = *old
			return errUnchanged
		}
		old.URL, old.Title, old.Summary, old.Author = a.URL, a.Title, a.Summary, a.Author
		old.ImageURL, old.Sections, old.PublishedAt = a.ImageURL, a.Sections, a.PublishedAt
		old.RevisedAt, old.UpdatedAt = a.RevisedAt, now
		if old.RevisedAt.IsZero() {
			old.RevisedAt = now
		}
		// The URL may have changed; the ID must not.
		keep := old.ID
		if err := old.Validate(nil); err != nil {
			return err
		}
		old.ID = keep
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		return &as, Unchanged, nil
	case err != nil:
		return nil, "", wrap("ingest article", err)
	}
	return stored, Revised, nil
}

// ingestTarget returns the ID of the stored article a ingests into: the
// one with a's own ID, else one submitted by hand at a's URL; "" when
// there is none.
func (s *Service) ingestTarget(ctx context.Context, a *newsletter.Article) (string, error) {
	ids := []string{a.ID}
	if byURL := newsletter.ArticleID(a.URL); byURL != a.ID {
		ids = append(ids, byURL)
	}
	for _, id := range ids {
		_, err := s.store.Article(ctx, id)
		switch newsletter.ErrorCode(err) {
		case "":
			return id, nil
		case newsletter.ENOTFOUND:
		default:
			return "", fmt.Errorf("ingest article: %w", err)
		}
	}
	return "", nil
}

// content is what a reader sees of an article in a digest.
type content struct{ title, summary, author, image string }

func visible(a *newsletter.Article) content {
	return content{a.Title, a.Summary, a.Author, a.ImageURL}
}
