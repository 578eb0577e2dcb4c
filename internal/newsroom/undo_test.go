package newsroom_test

import (
	"context"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// TestResubscribe: the goodbye page's undo puts a reader back as they
// were, only with the unsubscribe link's token, as often as it is pressed,
// and not for a suppressed address or after the undo window.
func TestResubscribe(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mk := func(email string, status newsletter.SubscriberStatus, confirmed bool) *newsletter.Subscriber {
		t.Helper()
		now := f.clock.Now()
		s := &newsletter.Subscriber{ID: email, Email: email, Status: status, Frequency: newsletter.Daily, Format: newsletter.FormatFull, CreatedAt: now, UpdatedAt: now}
		if confirmed {
			s.ConfirmedAt = now
		}
		if err := f.store.CreateSubscriber(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	unsub := func(id string) string { return f.signer.Sign(token.Unsubscribe, id, f.clock.Now().Add(time.Hour)) }

	ada := mk("ada@example.com", newsletter.StatusConfirmed, true)
	if _, err := f.svc.Unsubscribe(ctx, unsub(ada.ID)); err != nil {
		t.Fatal(err)
	}
	// Only the unsubscribe link's token undoes.
	for _, bad := range []string{
		f.signer.Sign(token.Preferences, ada.ID, f.clock.Now().Add(time.Hour)),
		f.signer.Sign(token.Confirm, ada.ID, f.clock.Now().Add(time.Hour)),
		unsub(ada.ID) + "x", "",
	} {
		_, err := f.svc.Resubscribe(ctx, bad)
		wantCode(t, err, newsletter.EINVALID)
	}
	if got, _ := f.store.Subscriber(ctx, ada.ID); got.Status != newsletter.StatusUnsubscribed {
		t.Fatalf("after refused undos: status %s, want unsubscribed", got.Status)
	}
	for range 2 {
		got, err := f.svc.Resubscribe(ctx, unsub(ada.ID))
		if err != nil || got.Status != newsletter.StatusConfirmed || !got.UnsubscribedAt.IsZero() {
			t.Fatalf("undo: %+v, %v; want confirmed again", got, err)
		}
	}

	// A reader who never confirmed goes back to pending, not confirmed.
	bola := mk("bola@example.com", newsletter.StatusPending, false)
	f.svc.Unsubscribe(ctx, unsub(bola.ID))
	if got, err := f.svc.Resubscribe(ctx, unsub(bola.ID)); err != nil || got.Status != newsletter.StatusPending {
		t.Fatalf("undo of a pending reader: %+v, %v; want pending", got, err)
	}

	// A bounced address stays suppressed.
	chi := mk("chi@example.com", newsletter.StatusBounced, true)
	_, err := f.svc.Resubscribe(ctx, unsub(chi.ID))
	wantCode(t, err, newsletter.ECONFLICT)

	// Past the window the reader must sign up again.
	f.svc.Unsubscribe(ctx, unsub(ada.ID))
	f.clock.Add(newsroom.UndoWindow + time.Minute)
	_, err = f.svc.Resubscribe(ctx, unsub(ada.ID))
	wantCode(t, err, newsletter.ECONFLICT)
	if got, _ := f.store.Subscriber(ctx, ada.ID); got.Status != newsletter.StatusUnsubscribed {
		t.Fatalf("late undo: status %s, want unsubscribed", got.Status)
	}
}

// TestEditorSession: a console session names its token, expires, cannot be
// forged or stand in for a reader link, and ends when its token is revoked.
func TestEditorSession(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	secret, tok, err := f.svc.CreateEditorToken(ctx, "Night desk", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = f.svc.StartEditorSession(ctx, secret+"x")
	wantCode(t, err, newsletter.EUNAUTHORIZED)

	s1, got, expires, err := f.svc.StartEditorSession(ctx, secret)
	if err != nil || got.ID != tok.ID || !expires.Equal(f.clock.Now().Add(newsroom.EditorSessionTTL)) {
		t.Fatalf("start: %v, %v, %v", got, expires, err)
	}
	s2, _, _, _ := f.svc.StartEditorSession(ctx, secret)
	if s1 == s2 {
		t.Fatal("two sign-ins made the same session")
	}
	if got, err := f.svc.EditorSession(ctx, s1); err != nil || got.ID != tok.ID {
		t.Fatalf("session: %v, %v; want token %s", got, err, tok.ID)
	}
	for _, bad := range []string{"", s1[:len(s1)-2], secret, f.signer.Sign(token.Unsubscribe, tok.Hash+".00", f.clock.Now().Add(time.Hour))} {
		_, err := f.svc.EditorSession(ctx, bad)
		wantCode(t, err, newsletter.EUNAUTHORIZED)
	}
	// Nor does a session verify as a reader's unsubscribe link.
	_, err = f.svc.Unsubscribe(ctx, s1)
	wantCode(t, err, newsletter.EINVALID)

	f.clock.Add(newsroom.EditorSessionTTL)
	_, err = f.svc.EditorSession(ctx, s1)
	wantCode(t, err, newsletter.EUNAUTHORIZED)

	s3, _, _, _ := f.svc.StartEditorSession(ctx, secret)
	if err := f.store.DeleteEditorToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.EditorSession(ctx, s3)
	wantCode(t, err, newsletter.EUNAUTHORIZED)
}
