package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/ses"
)

// TestSESSinkBulk sends through the SES mailer to the bench's SES sink,
// in bulk (two layouts) and one by one, and checks that every message is
// answered with its own ID and counted.
func TestSESSinkBulk(t *testing.T) {
	s, err := startSESSink()
	if err != nil {
		t.Fatal(err)
	}
	defer s.srv.Close()
	m := ses.New(sesClient("http://"+s.addr, 2), "broadsheet")

	var layouts []*eml.Layout
	for _, variant := range []string{"all", "sport"} {
		l, err := eml.NewLayout("The Ledger: "+variant, []byte(`<a href="BSxUNSUBSCRIBExURL">u</a>`), []byte("u: BSxUNSUBSCRIBExURL\n"), "BSxUNSUBSCRIBExURL")
		if err != nil {
			t.Fatal(err)
		}
		layouts = append(layouts, l)
	}
	var msgs []*eml.Message
	for i := range 60 {
		link := fmt.Sprintf("https://news.example.com/unsubscribe?token=r%d", i)
		msgs = append(msgs, &eml.Message{
			From:    "The Ledger <news@example.com>",
			To:      fmt.Sprintf("r%d@example.com", i),
			Headers: []eml.Header{{Name: "List-Unsubscribe", Value: "<" + link + ">"}, {Name: "Precedence", Value: "bulk"}},
			Layout:  layouts[i%2],
			Values:  []string{link},
			Tags:    map[string]string{"digest": "daily-2026-11-26", "subscriber": fmt.Sprintf("r%d", i)},
		})
	}
	ids := map[string]bool{}
	for i, r := range m.SendBulk(context.Background(), msgs) {
		if r.Err != nil || r.MessageID == "" || ids[r.MessageID] {
			t.Errorf("message %d: %+v, want a fresh ID", i, r)
		}
		ids[r.MessageID] = true
	}
	single := *msgs[0]
	single.Layout, single.Values, single.Text = nil, nil, []byte("plain")
	if id, err := m.Send(context.Background(), &single); err != nil || ids[id] {
		t.Errorf("Send = %q, %v; want a fresh ID", id, err)
	}
	if n := s.msgs.Load(); n != 61 {
		t.Errorf("sink counted %d messages, want 61", n)
	}
	if s.bytes.Load() == 0 {
		t.Error("sink counted no bytes")
	}
}
