package wordpress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
)

// Newsroom is where ingested posts go: newsroom.Service.
type Newsroom interface {
	IngestArticle(ctx context.Context, in newsroom.ArticleInput) (*newsletter.Article, newsroom.IngestOutcome, error)
	Sections() []newsletter.Section
}

// Checkpoints keeps the ingest's checkpoint: the newsletter.Store.
type Checkpoints interface {
	Checkpoint(ctx context.Context, name string) (*newsletter.Checkpoint, error)
	PutCheckpoint(ctx context.Context, c *newsletter.Checkpoint) error
}

// CheckpointName is the name of the ingest's checkpoint in the store.
const CheckpointName = "wordpress-ingest"

// Overlap is how far before the checkpoint each run reads again, so that
// a post saved in the same second as the last one read is not missed. The
// posts read twice are unchanged, which the newsroom ignores.
const Overlap = 2 * time.Minute

// DefaultBackfill is how far back the first run reads.
const DefaultBackfill = 7 * 24 * time.Hour

// Ingester pulls the posts published or modified since its checkpoint
// into the newsroom. It is the backstop of the push: a post the plugin
// failed to send arrives with the next run.
type Ingester struct {
	Client      *Client
	Newsroom    Newsroom
	Checkpoints Checkpoints
	// Backfill is how far back the first run reads; DefaultBackfill when
	// zero.
	Backfill time.Duration
	Now      func() time.Time // time.Now when nil
	Logger   *slog.Logger     // slog.Default when nil
}

// Report is what one run did.
type Report struct {
	Pages     int `json:"pages"`     // pages read
	Created   int `json:"created"`   // new articles
	Updated   int `json:"updated"`   // articles revised
	Unchanged int `json:"unchanged"` // posts already up to date
	Rejected  int `json:"rejected"`  // posts that are not valid articles, logged
}

// checkpoint is the ingest's checkpoint value: the newest publication and
// modification times read, site-local as the API writes them, which are
// what its after and modified_after parameters compare against.
type checkpoint struct {
	Published string `json:"published"`
	Modified  string `json:"modified"`
}

// Run reads the posts published since the checkpoint and those modified
// since it, page by page, oldest first, hands each to the newsroom and
// moves the checkpoint on after each page, so that a run that fails
// resumes where it stopped. A post that is not a valid article is logged
// and skipped; a bad reply from WordPress or a store error ends the run
// with an error and the checkpoint where the last good page left it.
//
// Two queries, because each misses posts the other finds: a scheduled
// post goes live with its modified time still at its scheduling, and a
// corrected post keeps its publication time.
func (in *Ingester) Run(ctx context.Context) (Report, error) {
	now, log := time.Now, in.Logger
	if in.Now != nil {
		now = in.Now
	}
	if log == nil {
		log = slog.Default()
	}
	var rep Report
	cp, err := in.load(ctx, now())
	if err != nil {
		return rep, err
	}
	// Each store call is a DynamoDB request on AWS, and a scheduled run
	// mostly finds nothing new: the checkpoint is written only when it
	// moves, and a post both queries return (the overlap, or one published
	// and modified since) is handed over once.
	saved := cp
	seen := map[int64]string{} // post ID → the modified time handed over
	for _, byModified := range []bool{false, true} {
		q := Query{After: before(cp.Published, Overlap)}
		if byModified {
			q = Query{ModifiedAfter: before(cp.Modified, Overlap)}
		}
		for n, total := 1, 1; n <= total && n <= MaxPages; n++ {
			page, err := in.Client.Posts(ctx, q, n)
			if err != nil {
				return rep, err
			}
			total = page.TotalPages
			rep.Pages++
			for i := range page.Posts {
				p := &page.Posts[i]
				if m, ok := seen[p.ID]; !ok || m != p.Modified {
					if err := in.ingest(ctx, p, &rep, log); err != nil {
						return rep, err
					}
					seen[p.ID] = p.Modified
				}
				cp.Published = later(cp.Published, p.Date)
				cp.Modified = later(cp.Modified, p.Modified)
			}
			if cp != saved {
				if err := in.save(ctx, cp, now()); err != nil {
					return rep, err
				}
				saved = cp
			}
		}
	}
	return rep, nil
}

// ingest hands one post to the newsroom. Only an internal error, such as
// the store failing, stops the run.
func (in *Ingester) ingest(ctx context.Context, p *Post, rep *Report, log *slog.Logger) error {
	a, err := p.Article(in.Newsroom.Sections())
	var outcome newsroom.IngestOutcome
	if err == nil {
		_, outcome, err = in.Newsroom.IngestArticle(ctx, a)
	}
	switch {
	case newsletter.ErrorCode(err) == newsletter.EINTERNAL:
		return fmt.Errorf("ingest post %d: %w", p.ID, err)
	case err != nil:
		rep.Rejected++
		log.Warn("wordpress post skipped", "post", p.ID, "reason", newsletter.ErrorMessage(err))
	case outcome == newsroom.Ingested:
		rep.Created++
	case outcome == newsroom.Revised:
		rep.Updated++
	default:
		rep.Unchanged++
	}
	return nil
}

// load reads the checkpoint; before the first run it starts Backfill ago.
func (in *Ingester) load(ctx context.Context, now time.Time) (checkpoint, error) {
	var cp checkpoint
	c, err := in.Checkpoints.Checkpoint(ctx, CheckpointName)
	switch {
	case newsletter.ErrorCode(err) == newsletter.ENOTFOUND:
		back := in.Backfill
		if back <= 0 {
			back = DefaultBackfill
		}
		// The site's time zone is unknown here; a day's error either way
		// hardly matters to a backfill of a week.
		start := now.Add(-back).UTC().Format(wpTime)
		return checkpoint{Published: start, Modified: start}, nil
	case err != nil:
		return cp, fmt.Errorf("wordpress checkpoint: %w", err)
	}
	if err := json.Unmarshal([]byte(c.Value), &cp); err != nil {
		return cp, fmt.Errorf("wordpress checkpoint: %w", errors.New("stored value is not valid"))
	}
	return cp, nil
}

func (in *Ingester) save(ctx context.Context, cp checkpoint, now time.Time) error {
	v, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("wordpress checkpoint: %w", err)
	}
	if err := in.Checkpoints.PutCheckpoint(ctx, &newsletter.Checkpoint{Name: CheckpointName, Value: string(v), UpdatedAt: now}); err != nil {
		return fmt.Errorf("wordpress checkpoint: %w", err)
	}
	return nil
}

// later returns the later of two API times; one that does not parse is
// ignored, so a junk date in one post cannot move the checkpoint.
func later(a, b string) string {
	tb, err := time.Parse(wpTime, b)
	if err != nil {
		return a
	}
	if ta, err := time.Parse(wpTime, a); err == nil && !tb.After(ta) {
		return a
	}
	return tb.Format(wpTime)
}

// before returns the API time t moved back by d.
func before(t string, d time.Duration) string {
	tt, err := time.Parse(wpTime, t)
	if err != nil {
		return ""
	}
	return tt.Add(-d).Format(wpTime)
}
