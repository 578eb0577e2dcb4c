package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// MustCreateSubscriber stores sub and stops the test if that fails.
func MustCreateSubscriber(tb testing.TB, store newsletter.Store, sub *newsletter.Subscriber) *newsletter.Subscriber {
	tb.Helper()
	if err := store.CreateSubscriber(tb.Context(), sub); err != nil {
		tb.Fatalf("create subscriber %s: got err %v, want nil", sub.ID, err)
	}
	return sub
}

var (
	subscriberStatuses = []newsletter.SubscriberStatus{
		newsletter.StatusPending, newsletter.StatusConfirmed, newsletter.StatusUnsubscribed,
		newsletter.StatusBounced, newsletter.StatusComplained,
	}
)

// newSubscriber returns reader i with every field set. Statuses cycle over
// i%5 and frequencies over i%2, so filters select known subsets.
func newSubscriber(i int) *newsletter.Subscriber {
	return &newsletter.Subscriber{
		ID:        name("sub", i),
		Email:     fmt.Sprintf("Reader.%02d@Example.com", i),
		Status:    subscriberStatuses[i%len(subscriberStatuses)],
		Sections:  []string{"news", "sport"},
		Frequency: newsletter.Frequencies[i%2],
		Format:    newsletter.FormatLite,
		Consent: newsletter.Consent{
			Time: at(i), IP: "192.0.2.7", UserAgent: "Mozilla/5.0", Source: "form",
		},
		CreatedAt:          at(i),
		UpdatedAt:          at(i + 1),
		ConfirmedAt:        at(i + 2),
		ConfirmationSentAt: at(i + 3),
		LastSignUpAt:       at(i + 4),
		ArticlesAfter:      at(i + 5),
	}
}

func testSubscribers(t *testing.T, open func(t *testing.T) newsletter.Store) {
	t.Run("CreateAndGet", func(t *testing.T) {
		store := open(t)
		want := MustCreateSubscriber(t, store, newSubscriber(1))

		got, err := store.Subscriber(t.Context(), want.ID)
		mustNotErr(t, err, "Subscriber")
		equal(t, "Subscriber", got, want, normSubscriber)

		for _, email := range []string{want.Email, "reader.01@example.com", "READER.01@EXAMPLE.COM"} {
			got, err := store.SubscriberByEmail(t.Context(), email)
			mustNotErr(t, err, "SubscriberByEmail "+email)
			equal(t, "SubscriberByEmail "+email, got, want, normSubscriber)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		store := open(t)
		MustCreateSubscriber(t, store, newSubscriber(1))
		ctx := t.Context()

		_, err := store.Subscriber(ctx, "sub-missing")
		wantCode(t, err, newsletter.ENOTFOUND, "Subscriber")
		_, err = store.SubscriberByEmail(ctx, "nobody@example.com")
		wantCode(t, err, newsletter.ENOTFOUND, "SubscriberByEmail")
		called := false
		_, err = store.UpdateSubscriber(ctx, "sub-missing", func(*newsletter.Subscriber) error { called = true; return nil })
		wantCode(t, err, newsletter.ENOTFOUND, "UpdateSubscriber")
		if called {
			t.Errorf("UpdateSubscriber of a missing reader: fn called, want not called")
		}
		wantCode(t, store.DeleteSubscriber(ctx, "sub-missing"), newsletter.ENOTFOUND, "DeleteSubscriber")
	})

	t.Run("CreateConflict", func(t *testing.T) {
		tests := []struct {
			name, id, email string
		}{
			{"same ID", "sub-01", "other@example.com"},
			{"same email", "sub-99", "Reader.01@Example.com"},
			{"same email in other case", "sub-99", "READER.01@example.COM"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				store := open(t)
				ctx := t.Context()
				first := MustCreateSubscriber(t, store, newSubscriber(1))

				dup := newSubscriber(2)
				dup.ID, dup.Email = tt.id, tt.email
				wantCode(t, store.CreateSubscriber(ctx, dup), newsletter.ECONFLICT, "CreateSubscriber")

				// The refused write left nothing behind and changed nothing.
				got, err := store.Subscriber(ctx, first.ID)
				mustNotErr(t, err, "Subscriber")
				equal(t, "first reader after conflict", got, first, normSubscriber)
				got, err = store.SubscriberByEmail(ctx, first.Email)
				mustNotErr(t, err, "SubscriberByEmail")
				equal(t, "first reader by email after conflict", got, first, normSubscriber)
				if tt.id != first.ID {
					_, err := store.Subscriber(ctx, tt.id)
					wantCode(t, err, newsletter.ENOTFOUND, "Subscriber of the refused ID")
				}
				if newsletter.EmailKey(tt.email) != newsletter.EmailKey(first.Email) {
					_, err := store.SubscriberByEmail(ctx, tt.email)
					wantCode(t, err, newsletter.ENOTFOUND, "SubscriberByEmail of the refused address")
				}
			})
		}
	})

	t.Run("Update", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		orig := MustCreateSubscriber(t, store, newSubscriber(0))

		want := normSubscriber(orig)
		want.Status = newsletter.StatusUnsubscribed
		want.Sections = []string{"culture"}
		want.UnsubscribedAt = normTime(at(60))
		want.UpdatedAt = normTime(at(60))

		got, err := store.UpdateSubscriber(ctx, orig.ID, func(s *newsletter.Subscriber) error {
			equal(t, "fn argument", s, orig, normSubscriber)
			s.Status = newsletter.StatusUnsubscribed
			s.Sections = []string{"culture"}
			s.UnsubscribedAt = at(60)
			s.UpdatedAt = at(60)
			return nil
		})
		mustNotErr(t, err, "UpdateSubscriber")
		equal(t, "UpdateSubscriber result", got, want, normSubscriber)

		got, err = store.Subscriber(ctx, orig.ID)
		mustNotErr(t, err, "Subscriber")
		equal(t, "Subscriber after update", got, want, normSubscriber)
		got, err = store.SubscriberByEmail(ctx, orig.Email)
		mustNotErr(t, err, "SubscriberByEmail")
		equal(t, "SubscriberByEmail after update", got, want, normSubscriber)

		// The filters see the new status, not the old one.
		list, _, err := store.Subscribers(ctx, newsletter.SubscriberFilter{Status: orig.Status}, newsletter.Page{})
		mustNotErr(t, err, "Subscribers")
		sameIDs(t, "Subscribers with the old status", ids(list, subscriberID), nil)
		list, _, err = store.Subscribers(ctx, newsletter.SubscriberFilter{Status: newsletter.StatusUnsubscribed}, newsletter.Page{})
		mustNotErr(t, err, "Subscribers")
		sameIDs(t, "Subscribers with the new status", ids(list, subscriberID), []string{orig.ID})
	})

	t.Run("UpdateFnError", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		orig := MustCreateSubscriber(t, store, newSubscriber(1))

		got, err := store.UpdateSubscriber(ctx, orig.ID, func(s *newsletter.Subscriber) error {
			s.Status = newsletter.StatusBounced
			s.Sections = append(s.Sections, "opinion")
			return fmt.Errorf("wrapped: %w", errFn)
		})
		if !errors.Is(err, errFn) {
			t.Errorf("UpdateSubscriber: got err %v, want fn's error", err)
		}
		if got != nil {
			t.Errorf("UpdateSubscriber: got record %+v with fn's error, want nil", got)
		}
		stored, err := store.Subscriber(ctx, orig.ID)
		mustNotErr(t, err, "Subscriber")
		equal(t, "Subscriber after refused update", stored, orig, normSubscriber)
	})

	t.Run("ConcurrentUpdates", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		sub := newSubscriber(1)
		sub.Sections = nil
		MustCreateSubscriber(t, store, sub)

		const goroutines, each = 8, 10
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					section := fmt.Sprintf("s%d-%d", g, i)
					_, err := store.UpdateSubscriber(ctx, sub.ID, func(s *newsletter.Subscriber) error {
						s.Sections = append(s.Sections, section)
						return nil
					})
					if err != nil {
						t.Errorf("UpdateSubscriber: got err %v, want nil", err)
						return
					}
				}
			})
		}
		wg.Wait()

		got, err := store.Subscriber(ctx, sub.ID)
		mustNotErr(t, err, "Subscriber")
		if len(got.Sections) != goroutines*each {
			t.Errorf("sections after %d concurrent appends: got %d, want %d (updates were lost)", goroutines*each, len(got.Sections), goroutines*each)
		}
		for g := range goroutines {
			for i := range each {
				if s := fmt.Sprintf("s%d-%d", g, i); !slices.Contains(got.Sections, s) {
					t.Errorf("section %s: got missing, want present (update lost)", s)
				}
			}
		}
	})

	t.Run("Delete", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		gone := MustCreateSubscriber(t, store, newSubscriber(1))
		kept := MustCreateSubscriber(t, store, newSubscriber(2))

		mustNotErr(t, store.DeleteSubscriber(ctx, gone.ID), "DeleteSubscriber")
		_, err := store.Subscriber(ctx, gone.ID)
		wantCode(t, err, newsletter.ENOTFOUND, "Subscriber after delete")
		_, err = store.SubscriberByEmail(ctx, gone.Email)
		wantCode(t, err, newsletter.ENOTFOUND, "SubscriberByEmail after delete")
		wantCode(t, store.DeleteSubscriber(ctx, gone.ID), newsletter.ENOTFOUND, "second DeleteSubscriber")

		list, _, err := store.Subscribers(ctx, newsletter.SubscriberFilter{}, newsletter.Page{})
		mustNotErr(t, err, "Subscribers")
		sameIDs(t, "Subscribers after delete", ids(list, subscriberID), []string{kept.ID})

		// The address is free again, under a new ID and another case.
		again := newSubscriber(3)
		again.Email = "READER.01@example.com"
		MustCreateSubscriber(t, store, again)
		got, err := store.SubscriberByEmail(ctx, gone.Email)
		mustNotErr(t, err, "SubscriberByEmail of the re-used address")
		equal(t, "SubscriberByEmail of the re-used address", got, again, normSubscriber)
	})

	t.Run("List", func(t *testing.T) {
		store := open(t)
		const n = 10
		var all []*newsletter.Subscriber
		for _, i := range shuffled(n) {
			all = append(all, MustCreateSubscriber(t, store, newSubscriber(i)))
		}
		slices.SortFunc(all, func(a, b *newsletter.Subscriber) int { return cmp.Compare(a.ID, b.ID) })

		filters := []struct {
			name string
			f    newsletter.SubscriberFilter
		}{
			{"all", newsletter.SubscriberFilter{}},
			{"confirmed", newsletter.SubscriberFilter{Status: newsletter.StatusConfirmed}},
			{"weekly", newsletter.SubscriberFilter{Frequency: newsletter.Weekly}},
			{"confirmed weekly", newsletter.SubscriberFilter{Status: newsletter.StatusConfirmed, Frequency: newsletter.Weekly}},
			{"pending daily", newsletter.SubscriberFilter{Status: newsletter.StatusPending, Frequency: newsletter.Daily}},
			{"no match", newsletter.SubscriberFilter{Status: "nobody"}},
		}
		for _, tt := range filters {
			var want []*newsletter.Subscriber
			for _, s := range all {
				if tt.f.Match(s) {
					want = append(want, s)
				}
			}
			for _, limit := range limits {
				t.Run(fmt.Sprintf("%s/limit=%d", tt.name, limit), func(t *testing.T) {
					got := allPages(t, limit, func(p newsletter.Page) ([]*newsletter.Subscriber, string, error) {
						return store.Subscribers(t.Context(), tt.f, p)
					})
					sameIDs(t, "Subscribers", ids(got, subscriberID), ids(want, subscriberID))
					if len(got) == len(want) {
						for i := range got {
							equal(t, "Subscribers record", got[i], want[i], normSubscriber)
						}
					}
				})
			}
		}

		t.Run("one page", func(t *testing.T) {
			got, next, err := store.Subscribers(t.Context(), newsletter.SubscriberFilter{}, newsletter.Page{Limit: n + 5})
			mustNotErr(t, err, "Subscribers")
			if len(got) != n || next != "" {
				t.Errorf("Subscribers with room to spare: got %d records and cursor %q, want %d and \"\"", len(got), next, n)
			}
		})
	})

	t.Run("Copies", func(t *testing.T) {
		store := open(t)
		ctx := t.Context()
		arg := newSubscriber(1)
		want := normSubscriber(arg)
		MustCreateSubscriber(t, store, arg)
		arg.Status = newsletter.StatusBounced
		arg.Sections[0] = "changed-after-create"

		got, err := store.Subscriber(ctx, want.ID)
		mustNotErr(t, err, "Subscriber")
		got.Status = newsletter.StatusComplained
		got.Sections[0] = "changed-after-get"
		byEmail, err := store.SubscriberByEmail(ctx, want.Email)
		mustNotErr(t, err, "SubscriberByEmail")
		byEmail.Sections[0] = "changed-after-get-by-email"
		list, _, err := store.Subscribers(ctx, newsletter.SubscriberFilter{}, newsletter.Page{})
		mustNotErr(t, err, "Subscribers")
		list[0].Sections[0] = "changed-after-list"
		updated, err := store.UpdateSubscriber(ctx, want.ID, func(*newsletter.Subscriber) error { return nil })
		mustNotErr(t, err, "UpdateSubscriber")
		updated.Sections[0] = "changed-after-update"

		got, err = store.Subscriber(ctx, want.ID)
		mustNotErr(t, err, "Subscriber")
		equal(t, "Subscriber after changing returned copies", got, want, normSubscriber)
	})

	t.Run("TimeRoundTrip", func(t *testing.T) {
		store := open(t)
		now := time.Now() // carries a monotonic reading
		sub := newSubscriber(1)
		sub.CreatedAt = now
		sub.UpdatedAt = now.In(time.FixedZone("", -7*3600))
		sub.ConfirmedAt = time.Time{}
		MustCreateSubscriber(t, store, sub)

		got, err := store.Subscriber(t.Context(), sub.ID)
		mustNotErr(t, err, "Subscriber")
		tests := []struct {
			name      string
			got, want time.Time
		}{
			{"CreatedAt (monotonic)", got.CreatedAt, now},
			{"UpdatedAt (zone)", got.UpdatedAt, now},
			{"ConfirmedAt (zero)", got.ConfirmedAt, time.Time{}},
			{"ConfirmationSentAt (nanoseconds)", got.ConfirmationSentAt, sub.ConfirmationSentAt},
		}
		for _, tt := range tests {
			if !tt.got.Equal(tt.want) {
				t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
			}
		}
		if !got.ConfirmedAt.IsZero() {
			t.Errorf("ConfirmedAt.IsZero: got false, want true")
		}
	})
}

func subscriberID(s *newsletter.Subscriber) string { return s.ID }
