package awsapp

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/broadsheet-news/broadsheet/internal/bolt"
	"github.com/broadsheet-news/broadsheet/internal/feedback"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

func readEvent(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func TestHandleSNS(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "broadsheet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	if err := store.CreateSubscriber(ctx, &newsletter.Subscriber{ID: "reader-ada", Email: "ada@example.com", Status: newsletter.StatusConfirmed, Frequency: newsletter.Daily}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := &App{Function: FeedbackFunction, Log: log, Store: store, Feedback: feedback.New(store, nil)}
	a.Feedback.Logger = log

	var ev events.SNSEvent
	readEvent(t, "feedback-bounce.json", &ev)
	// The topic's first message is not an SES event: dropped, not retried.
	junk := ev.Records[0]
	junk.SNS.Message = "Successfully validated SNS topic for Amazon SES event publishing."
	ev.Records = append([]events.SNSEventRecord{junk}, ev.Records...)
	if err := a.HandleSNS(ctx, ev); err != nil {
		t.Fatalf("HandleSNS: %v", err)
	}
	sub, err := store.Subscriber(ctx, "reader-ada")
	if err != nil || sub.Status != newsletter.StatusBounced {
		t.Errorf("ada after the sample bounce: %+v, %v; want bounced", sub, err)
	}

	store.Close()
	if err := a.HandleSNS(ctx, ev); err == nil {
		t.Error("HandleSNS on a closed store returned no error: SNS would not retry")
	}
}

// TestHandleSNSRenderingFailure: the sample Rendering Failure event fails
// the reader's ledger row with SES's reason.
func TestHandleSNSRenderingFailure(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "broadsheet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	if err := store.CreateDigest(ctx, &newsletter.Digest{ID: "daily-2026-11-26", Frequency: newsletter.Daily, Period: "2026-11-26", Status: newsletter.DigestSent}); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateDelivery(ctx, &newsletter.Delivery{DigestID: "daily-2026-11-26", SubscriberID: "reader-ada", Status: newsletter.DeliverySent, MessageID: "m"}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := &App{Function: FeedbackFunction, Log: log, Store: store, Feedback: feedback.New(store, nil)}
	a.Feedback.Logger = log
	var ev events.SNSEvent
	readEvent(t, "feedback-rendering-failure.json", &ev)
	if err := a.HandleSNS(ctx, ev); err != nil {
		t.Fatalf("HandleSNS: %v", err)
	}
	row, err := store.Delivery(ctx, "daily-2026-11-26", "reader-ada")
	if err != nil || row.Status != newsletter.DeliveryFailed || !strings.Contains(row.Reason, "could not render") {
		t.Errorf("ada's row after the sample rendering failure: %+v, %v; want failed with the reason", row, err)
	}
}
