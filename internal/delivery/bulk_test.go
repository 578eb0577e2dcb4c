package delivery_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// bulkMailer is the fixture's outbox mailer with a SendBulk that hands
// each message on in turn and records the calls, so the engine's bulk
// path is tested against the real outbox. throttle names recipients whose
// first bulk entry answers ErrThrottled.
type bulkMailer struct {
	*faultMailer
	mu       sync.Mutex
	calls    [][]*eml.Message
	throttle map[string]bool
	seen     map[string]bool
}

func (m *bulkMailer) SendBulk(ctx context.Context, msgs []*eml.Message) []eml.Sent {
	m.mu.Lock()
	m.calls = append(m.calls, msgs)
	m.mu.Unlock()
	out := make([]eml.Sent, len(msgs))
	for i, msg := range msgs {
		m.mu.Lock()
		first := !m.seen[msg.To]
		m.seen[msg.To] = true
		m.mu.Unlock()
		if first && m.throttle[msg.To] {
			out[i].Err = fmt.Errorf("entry: %w", eml.ErrThrottled)
			continue
		}
		out[i].MessageID, out[i].Err = m.Send(ctx, msg)
	}
	return out
}

// TestBulkMailer: with a bulk-capable mailer each send task goes out in
// one call, of neighbours in ID order whatever their variants; the
// messages of one variant share its layout (a bulk mailer groups by it);
// an entry the provider throttles is tried again and sent once.
func TestBulkMailer(t *testing.T) {
	f := newFixture(t)
	formats := []newsletter.Format{newsletter.FormatFull, newsletter.FormatLite, newsletter.FormatText}
	f.addReaders(t, 45, all, formats...) // choices interleaved by ID
	bm := &bulkMailer{faultMailer: f.mailer, seen: map[string]bool{}, throttle: map[string]bool{"reader0004@example.com": true, "reader0030@example.com": true}}
	f.engine = delivery.New(f.store, f.signer, f.renderer, bm, f.queue, f.cfg)
	d := f.addDigest(t)
	if err := f.engine.Dispatch(context.Background(), d.ID); err != nil {
		t.Fatal(err)
	}
	f.drain(t)
	f.checkOneEach(t, d.ID, 45)

	if len(bm.calls) == 0 {
		t.Fatal("SendBulk never called")
	}
	layouts := map[*eml.Layout]bool{}
	mixed := false
	for i, call := range bm.calls {
		if len(call) > f.cfg.BatchSize {
			t.Errorf("call %d has %d messages, more than a task's %d", i, len(call), f.cfg.BatchSize)
		}
		byFormat := map[string]*eml.Layout{} // reader%04d's format is formats[n%3]
		for j, m := range call {
			if m.Layout == nil {
				t.Fatalf("call %d: message to %s has no layout", i, m.To)
			}
			if j > 0 && m.To <= call[j-1].To {
				t.Errorf("call %d: %s after %s, want ID order", i, m.To, call[j-1].To)
			}
			var n int
			if _, err := fmt.Sscanf(m.To, "reader%04d@", &n); err != nil {
				t.Fatalf("recipient %q: %v", m.To, err)
			}
			format := string(formats[n%len(formats)])
			if l, ok := byFormat[format]; ok && l != m.Layout {
				t.Errorf("call %d: two layouts for format %s", i, format)
			}
			byFormat[format] = m.Layout
			layouts[m.Layout] = true
		}
		mixed = mixed || len(byFormat) > 1
	}
	if !mixed {
		t.Error("no call held readers of more than one variant: tasks are not runs in ID order")
	}
	if len(layouts) != 3 {
		t.Errorf("layouts: got %d, want 3 (one per variant)", len(layouts))
	}
	if got := f.renderer.Renders(); got != 3 {
		t.Errorf("renders: got %d, want 3 (one per variant)", got)
	}
}

// TestFanoutHandsOn: with FanoutPages set, a fan-out task walks that many
// pages and puts the rest of the walk behind its send tasks; every reader
// still gets one copy and the digest ends sent.
func TestFanoutHandsOn(t *testing.T) {
	f := newFixture(t, func(_ *fixture, c *delivery.Config) { c.FanoutPages = 1 })
	f.addReaders(t, 45, all) // pages of 10
	d := f.addDigest(t)
	ctx := context.Background()
	if err := f.engine.Dispatch(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	fanouts, maxQueued := 0, 0
	for round := 0; round < 100; round++ {
		tasks := f.queue.take()
		if len(tasks) == 0 {
			break
		}
		maxQueued = max(maxQueued, len(tasks))
		for _, task := range tasks {
			if task.Kind == delivery.KindFanout {
				fanouts++
			}
			if _, err := f.engine.Handle(ctx, task); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.checkOneEach(t, d.ID, 45)
	if fanouts != 5 {
		t.Errorf("fan-out tasks: got %d, want 5 (one per page of 10)", fanouts)
	}
	if maxQueued > 3 {
		t.Errorf("at most %d tasks queued at once, want 3 at most (a page's two send tasks and the walk's next step)", maxQueued)
	}
}
