package smtp_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/smtp"
	"github.com/broadsheet-news/broadsheet/internal/smtp/smtptest"
)

// recorder notes the Message-IDs it is told of, and can fail the n-th.
type recorder struct {
	mu     sync.Mutex
	ids    []string
	failAt int // 1-based; 0 never
}

func (r *recorder) Accepted(msg *eml.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ids)+1 == r.failAt {
		r.failAt = 0
		return errors.New("disk full")
	}
	r.ids = append(r.ids, msg.MessageID)
	return nil
}

// TestRecorderHearsOfEachAcceptedMessage: every message the server took,
// and only those, reach the recorder, in order, in each mode.
func TestRecorderHearsOfEachAcceptedMessage(t *testing.T) {
	forModes(t, func(t *testing.T, mode mode) {
		srv := smtptest.NewServer(t, mode.opts...)
		rec := &recorder{}
		m := mustMailer(t, srv.URL(), smtp.WithRecorder(rec))
		msgs := bulk(12)
		results := m.SendBulk(context.Background(), msgs[:5])
		srv.FailNext(554, 1) // the sixth message is refused after its data
		results = append(results, m.SendBulk(context.Background(), msgs[5:])...)
		var want []string
		for i, r := range results {
			if i == 5 {
				if !errors.Is(r.Err, eml.ErrRejected) {
					t.Fatalf("message 5: %v, want a rejection", r.Err)
				}
				continue
			}
			if r.Err != nil {
				t.Fatalf("message %d: %v", i, r.Err)
			}
			want = append(want, r.MessageID)
		}
		if fmt.Sprint(rec.ids) != fmt.Sprint(want) {
			t.Errorf("recorded %v, want %v", rec.ids, want)
		}
		if _, err := m.Send(context.Background(), testMessage("one@example.org")); err != nil {
			t.Fatal(err)
		}
		if len(rec.ids) != len(want)+1 {
			t.Errorf("Send: recorded %d, want %d", len(rec.ids), len(want)+1)
		}
	})
}

// TestRecorderFailureStopsTheCall: when a message cannot be recorded, the
// ones after it are not sent, and say so (they are not of unknown fate).
func TestRecorderFailureStopsTheCall(t *testing.T) {
	forModes(t, func(t *testing.T, mode mode) {
		srv := smtptest.NewServer(t, mode.opts...)
		rec := &recorder{failAt: 4}
		m := mustMailer(t, srv.URL(), smtp.WithRecorder(rec))
		results := m.SendBulk(context.Background(), bulk(10))
		for i, r := range results {
			switch {
			case i <= 3 && r.Err != nil:
				t.Errorf("message %d: %v, want sent (the fourth was sent, then not recorded)", i, r.Err)
			case i > 3 && (r.Err == nil || errors.Is(r.Err, eml.ErrUnknownOutcome)):
				t.Errorf("message %d: %v, want a plain failure: it was not sent", i, r.Err)
			}
		}
		if got := srv.WaitFor(4, 5*time.Second); len(got) != 4 {
			t.Errorf("server received %d messages, want 4", len(got))
		}
		// The mailer goes on with a fresh connection.
		if results := m.SendBulk(context.Background(), bulk(2)); results[0].Err != nil || results[1].Err != nil {
			t.Errorf("after the failure: %+v", results)
		}
	})
}
