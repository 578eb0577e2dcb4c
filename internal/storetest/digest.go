package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// MustCreateDigest stores d and stops the test if that fails.
func MustCreateDigest(tb testing.TB, store newsletter.Store, d *newsletter.Digest) *newsletter.Digest {
	tb.Helper()
	if err := store.CreateDigest(tb.Context(), d); err != nil {
		tb.Fatalf("create digest %s: got err %v, want nil", d.ID, err)
	}
	return d
}

var digestStatuses = []newsletter.DigestStatus{newsletter.DigestDraft, newsletter.DigestSending, newsletter.DigestSent}

// newDigest returns digest i, created i hours after base, with every field
// set. Frequencies cycle over i%2 and statuses over i%3.
func newDigest(i int) *newsletter.Digest {
	f := newsletter.Frequencies[i%2]
	created := base.Add(time.Duration(i) * time.Hour)
	period := newsletter.Period(f, created.AddDate(0, 0, i*7), time.UTC)
	return &newsletter.Digest{
		ID:            newsletter.DigestID(f, period),
		Frequency:     f,
		Period:        period,
		Subject:       fmt.Sprintf("The Broadsheet, edition %d", i),
		Intro:         "Good morning.",
		Articles:      []newsletter.Article{*newArticle(i), *newArticle(i + 1)},
		Since:         created.Add(-24 * time.Hour),
		Until:         created,
		Status:        digestStatuses[i%len(digestStatuses)],
		FanoutCursor:  fmt.Sprintf("opaque-cursor-%d", i),
		FanoutDone:    i%2 == 0,
		CreatedAt:     created,
		SendStartedAt: created.Add(time.Minute),
		SentAt:        created.Add(time.Hour),
	}
}

func digestID(d *newsletter.Digest) string { return d.ID }

func testDigests(t *testing.T, open func(t *testing.T) newsletter.Store) {
	t.Run("CreateAndGet", func(t *testing.T) {
		store := open(t)
		want := MustCreateDigest(t, store, newDigest(1))

		got, err := store.Digest(t.Context(), want.ID)
		mustNotErr(t, err, "Digest")
		equal(t, "Digest", got, want, normDigest)
		if got != nil && got.FanoutCursor != want.FanoutCursor {
			t.Errorf("FanoutCursor: got %q, want %q", got.FanoutCursor, want.FanoutCursor)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		MustCreateDigest(t, store, newDigest(1))

		_, err := store.Digest(ctx, "daily-1999-01-01")
		wantCode(t, err, newsletter.ENOTFOUND, "Digest")
		_, err = store.Digest(ctx, "")
		wantCode(t, err, newsletter.ENOTFOUND, "Digest with an empty ID")
		called := false
		_, err = store.UpdateDigest(ctx, "daily-1999-01-01", func(*newsletter.Digest) error { called = true; return nil })
		wantCode(t, err, newsletter.ENOTFOUND, "UpdateDigest")
		if called {
			t.Errorf("UpdateDigest of a missing digest: fn called, want not called")
		}
	})

	t.Run("CreateConflict", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		first := MustCreateDigest(t, store, newDigest(1))

		dup := newDigest(3) // same frequency, other period
		dup.ID = first.ID
		wantCode(t, store.CreateDigest(ctx, dup), newsletter.ECONFLICT, "CreateDigest with a taken ID")

		got, err := store.Digest(ctx, first.ID)
		mustNotErr(t, err, "Digest")
		equal(t, "Digest after conflict", got, first, normDigest)
		list := allPages(t, 0, func(p newsletter.Page) ([]*newsletter.Digest, string, error) {
			return store.Digests(ctx, newsletter.DigestFilter{}, p)
		})
		sameIDs(t, "Digests after conflict", ids(list, digestID), []string{first.ID})
	})

	t.Run("Update", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		d1 := MustCreateDigest(t, store, newDigest(1))
		d2 := MustCreateDigest(t, store, newDigest(2))

		want := normDigest(d1)
		want.Status = newsletter.DigestSent
		want.FanoutCursor = "sub-0042"
		want.FanoutDone = true
		want.Articles = want.Articles[:1]
		want.SentAt = normTime(at(900))
		want.CreatedAt = normTime(d2.CreatedAt.Add(time.Hour)) // now the newest
		got, err := store.UpdateDigest(ctx, d1.ID, func(d *newsletter.Digest) error {
			equal(t, "fn argument", d, d1, normDigest)
			if d.FanoutCursor != d1.FanoutCursor {
				t.Errorf("fn argument FanoutCursor: got %q, want %q", d.FanoutCursor, d1.FanoutCursor)
			}
			d.Status = newsletter.DigestSent
			d.FanoutCursor = "sub-0042"
			d.FanoutDone = true
			d.Articles = d.Articles[:1]
			d.SentAt = at(900)
			d.CreatedAt = d2.CreatedAt.Add(time.Hour)
			return nil
		})
		mustNotErr(t, err, "UpdateDigest")
		equal(t, "UpdateDigest result", got, want, normDigest)
		got, err = store.Digest(ctx, d1.ID)
		mustNotErr(t, err, "Digest after update")
		equal(t, "Digest after update", got, want, normDigest)

		list := allPages(t, 1, func(p newsletter.Page) ([]*newsletter.Digest, string, error) {
			return store.Digests(ctx, newsletter.DigestFilter{}, p)
		})
		sameIDs(t, "Digests after making the first the newest", ids(list, digestID), []string{d1.ID, d2.ID})
		if len(list) == 2 && list[0].FanoutCursor != "sub-0042" {
			t.Errorf("listed FanoutCursor: got %q, want %q", list[0].FanoutCursor, "sub-0042")
		}
		list, _, err = store.Digests(ctx, newsletter.DigestFilter{Status: d1.Status}, newsletter.Page{})
		mustNotErr(t, err, "Digests")
		sameIDs(t, "Digests with the old status", ids(list, digestID), nil)
	})

	t.Run("UpdateFnError", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		orig := MustCreateDigest(t, store, newDigest(1))

		got, err := store.UpdateDigest(ctx, orig.ID, func(d *newsletter.Digest) error {
			d.Status = newsletter.DigestSent
			d.FanoutCursor = "not this"
			d.Articles[0].Title = "not this"
			return errFn
		})
		if !errors.Is(err, errFn) {
			t.Errorf("UpdateDigest: got err %v, want fn's error", err)
		}
		if got != nil {
			t.Errorf("UpdateDigest: got record %+v with fn's error, want nil", got)
		}
		stored, err := store.Digest(ctx, orig.ID)
		mustNotErr(t, err, "Digest")
		equal(t, "Digest after refused update", stored, orig, normDigest)
	})

	t.Run("List", func(t *testing.T) {
		store := open(t)
		// Ten digests; 4 and 5 were created at the same instant (in two
		// zones). The contract does not say how ties are ordered, so only
		// "each once, CreatedAt never increasing" is checked for them.
		const n = 10
		var all []*newsletter.Digest
		for _, i := range shuffled(n) {
			d := newDigest(i)
			if i == 5 {
				d.CreatedAt = newDigest(4).CreatedAt.UTC()
			}
			all = append(all, MustCreateDigest(t, store, d))
		}

		filters := []struct {
			name string
			f    newsletter.DigestFilter
		}{
			{"all", newsletter.DigestFilter{}},
			{"weekly", newsletter.DigestFilter{Frequency: newsletter.Weekly}},
			{"sent", newsletter.DigestFilter{Status: newsletter.DigestSent}},
			{"daily draft", newsletter.DigestFilter{Frequency: newsletter.Daily, Status: newsletter.DigestDraft}},
			{"no match", newsletter.DigestFilter{Status: "lost"}},
		}
		for _, tt := range filters {
			want := map[string]*newsletter.Digest{}
			for _, d := range all {
				if tt.f.Match(d) {
					want[d.ID] = d
				}
			}
			for _, limit := range limits {
				t.Run(fmt.Sprintf("%s/limit=%d", tt.name, limit), func(t *testing.T) {
					got := allPages(t, limit, func(p newsletter.Page) ([]*newsletter.Digest, string, error) {
						return store.Digests(t.Context(), tt.f, p)
					})
					gotIDs := ids(got, digestID)
					wantIDs := make([]string, 0, len(want))
					for id := range want {
						wantIDs = append(wantIDs, id)
					}
					sortedGot := slices.Sorted(slices.Values(gotIDs))
					slices.Sort(wantIDs)
					sameIDs(t, "Digests (as a set)", sortedGot, wantIDs)
					for i := 1; i < len(got); i++ {
						if got[i].CreatedAt.After(got[i-1].CreatedAt) {
							t.Errorf("Digests order: got %s (created %v) after %s (created %v), want newest first",
								got[i].ID, got[i].CreatedAt, got[i-1].ID, got[i-1].CreatedAt)
						}
					}
					for _, d := range got {
						if w, ok := want[d.ID]; ok {
							equal(t, "Digests record", d, w, normDigest)
							if d.FanoutCursor != w.FanoutCursor {
								t.Errorf("listed FanoutCursor of %s: got %q, want %q", d.ID, d.FanoutCursor, w.FanoutCursor)
							}
						}
					}
				})
			}
		}
	})

	t.Run("Copies", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		arg := newDigest(1)
		want := normDigest(arg)
		MustCreateDigest(t, store, arg)
		arg.Articles[0].Title = "changed-after-create"
		arg.Articles[0].Sections[0] = "changed-after-create"

		got, err := store.Digest(ctx, want.ID)
		mustNotErr(t, err, "Digest")
		got.Articles[0].Title = "changed-after-get"
		got.Articles[1].Sections[0] = "changed-after-get"
		list, _, err := store.Digests(ctx, newsletter.DigestFilter{}, newsletter.Page{})
		mustNotErr(t, err, "Digests")
		list[0].Articles[0].Title = "changed-after-list"
		updated, err := store.UpdateDigest(ctx, want.ID, func(*newsletter.Digest) error { return nil })
		mustNotErr(t, err, "UpdateDigest")
		updated.Articles[0].Title = "changed-after-update"

		got, err = store.Digest(ctx, want.ID)
		mustNotErr(t, err, "Digest")
		equal(t, "Digest after changing returned copies", got, want, normDigest)
	})
}
