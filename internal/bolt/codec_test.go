package bolt

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

func TestRowCodec(t *testing.T) {
	lease := time.Date(2026, 11, 26, 7, 2, 3, 456789, time.FixedZone("CET", 3600))
	rows := []*newsletter.Delivery{
		{DigestID: "daily-2026-11-26", SubscriberID: "sub-1", Status: newsletter.DeliveryQueued, UpdatedAt: lease},
		{DigestID: "daily-2026-11-26", SubscriberID: "sub-2", Status: newsletter.DeliverySending, LeaseUntil: lease, Attempts: 3, UpdatedAt: lease.Add(-time.Hour)},
		{DigestID: "daily-2026-11-26", SubscriberID: "sub-3", Status: newsletter.DeliverySent, MessageID: "0100018f-ü", Reason: "reconciled with the mail provider's record", UpdatedAt: time.Unix(-5, 7)},
		{DigestID: "daily-2026-11-26", SubscriberID: "sub-4", Status: ""},
		{DigestID: "daily-2026-11-26", SubscriberID: "sub-5", Status: "a status of tomorrow"},
	}
	for _, want := range rows {
		data := appendRow(nil, want)
		got, err := decodeRow(data, want.DigestID, want.SubscriberID)
		if err != nil {
			t.Fatalf("%s: decode: %v", want.SubscriberID, err)
		}
		if !sameRow(got, want) {
			t.Errorf("%s: round trip: got %+v, want %+v", want.SubscriberID, got, want)
		}
		// Every shorter prefix is refused, never misread.
		for n := range len(data) {
			if _, err := decodeRow(data[:n], want.DigestID, want.SubscriberID); err == nil {
				t.Errorf("%s: %d of %d bytes decoded without an error", want.SubscriberID, n, len(data))
			}
		}
		// A row an earlier version wrote as JSON still reads.
		legacy, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err = decodeRow(legacy, want.DigestID, want.SubscriberID)
		if err != nil || !sameRow(got, want) {
			t.Errorf("%s: JSON row: got %+v (err %v), want %+v", want.SubscriberID, got, err, want)
		}
	}
	if _, err := decodeRow([]byte{9, 1}, "d", "s"); err == nil {
		t.Errorf("a row of an unknown version decoded without an error")
	}
}

// sameRow compares rows with times as instants.
func sameRow(a, b *newsletter.Delivery) bool {
	x, y := *a, *b
	x.LeaseUntil, y.LeaseUntil = x.LeaseUntil.UTC().Round(0), y.LeaseUntil.UTC().Round(0)
	x.UpdatedAt, y.UpdatedAt = x.UpdatedAt.UTC().Round(0), y.UpdatedAt.UTC().Round(0)
	return reflect.DeepEqual(x, y)
}

func TestSubscriberCodec(t *testing.T) {
	at := time.Date(2026, 11, 26, 7, 2, 3, 456789, time.FixedZone("CET", 3600))
	subs := []*newsletter.Subscriber{
		{ID: "sub-1", Email: "a@example.com", Status: newsletter.StatusPending},
		{ID: "sub-2", Email: "ü@example.com", Status: newsletter.StatusConfirmed, Sections: []string{}, Frequency: newsletter.Daily, Format: newsletter.FormatLite,
			Consent:   newsletter.Consent{Time: at, IP: "192.0.2.1", UserAgent: "Mozilla/5.0", Source: "form"},
			CreatedAt: at, UpdatedAt: at.Add(time.Second), ConfirmedAt: at.Add(time.Minute), UnsubscribedAt: at.Add(time.Hour), ConfirmationSentAt: at, LastSignUpAt: time.Unix(-3, 9), ArticlesAfter: at.Add(2 * time.Hour)},
		{ID: "sub-3", Email: "b@example.com", Sections: []string{"politics", "", "sport"}, Frequency: newsletter.Weekly},
	}
	for _, want := range subs {
		data := appendSubscriber(nil, want)
		got, err := decodeSubscriber(data, want.ID)
		if err != nil {
			t.Fatalf("%s: decode: %v", want.ID, err)
		}
		if !reflect.DeepEqual(normSub(got), normSub(want)) {
			t.Errorf("%s: round trip:\ngot  %+v\nwant %+v", want.ID, got, want)
		}
		for n := range len(data) {
			if _, err := decodeSubscriber(data[:n], want.ID); err == nil {
				t.Errorf("%s: %d of %d bytes decoded without an error", want.ID, n, len(data))
			}
		}
		if _, err := decodeSubscriber(append(data, 0), want.ID); err == nil {
			t.Errorf("%s: a record with a byte too many decoded without an error", want.ID)
		}
		legacy, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err = decodeSubscriber(legacy, want.ID)
		if err != nil || !reflect.DeepEqual(normSub(got), normSub(want)) {
			t.Errorf("%s: JSON record: got %+v (err %v), want %+v", want.ID, got, err, want)
		}
	}
}

// TestSubscriberCodecV1: a record written before ArticlesAfter (version 1,
// which ends after LastSignUpAt) still decodes, with ArticlesAfter zero.
func TestSubscriberCodecV1(t *testing.T) {
	at := time.Date(2026, 11, 26, 7, 2, 3, 0, time.UTC)
	want := &newsletter.Subscriber{ID: "sub-1", Email: "a@example.com", Status: newsletter.StatusConfirmed, Frequency: newsletter.Daily, CreatedAt: at, UpdatedAt: at}
	data := appendSubscriber(nil, want)
	// Version 2 appends one zero-time flag byte to version 1's fields.
	v1 := append([]byte{subscriberV1}, data[1:len(data)-1]...)
	got, err := decodeSubscriber(v1, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normSub(got), normSub(want)) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// normSub puts a subscriber's times in UTC, to compare them as instants.
func normSub(s *newsletter.Subscriber) newsletter.Subscriber {
	c := *s
	for _, t := range []*time.Time{&c.Consent.Time, &c.CreatedAt, &c.UpdatedAt, &c.ConfirmedAt, &c.UnsubscribedAt, &c.ConfirmationSentAt, &c.LastSignUpAt, &c.ArticlesAfter} {
		*t = t.UTC().Round(0)
	}
	return c
}
