package awsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
)

// DigestEvent is what the digest function is invoked with: either the
// schedule's {"frequency": "daily"} (the EventBridge Scheduler target's
// Input), which builds and sends the digest of the current period, or the
// api function's DigestInvocation {"digestId": "..."}, which fans out a
// digest an editor has started sending, or the sweep schedule's
// {"sweep": true}, which resumes every digest still sending: it finishes
// fan-outs and re-queues rows whose outcome stayed unknown past the grace
// period (on AWS the record that settles them is SES's Send event; a copy
// claimed but never mailed before a crash has none). Other fields are
// ignored.
type DigestEvent struct {
	Frequency string `json:"frequency"`
	DigestID  string `json:"digestId"`
	Sweep     bool   `json:"sweep"`
}

// DigestInvocation is the event the api function sends the digest function
// to fan a digest out: {"digestId": "daily-2026-11-26"}.
type DigestInvocation struct {
	DigestID string `json:"digestId"`
}

// ErrBadEvent is wrapped by ParseDigestEvent's errors: the event is
// neither shape, and invoking again with it cannot help.
var ErrBadEvent = errors.New("bad digest event")

// ParseDigestEvent decodes a digest function event and checks that it is
// one of the two shapes, with a valid frequency or digest ID.
func ParseDigestEvent(raw []byte) (DigestEvent, error) {
	var ev DigestEvent
	if len(bytes.TrimSpace(raw)) == 0 {
		return ev, fmt.Errorf("%w: empty", ErrBadEvent)
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		return ev, fmt.Errorf("%w: %w", ErrBadEvent, err)
	}
	switch {
	case ev.Sweep && (ev.Frequency != "" || ev.DigestID != ""):
		return ev, fmt.Errorf("%w: sweep takes no frequency or digestId", ErrBadEvent)
	case ev.Sweep:
	case ev.Frequency != "" && ev.DigestID != "":
		return ev, fmt.Errorf("%w: both frequency and digestId", ErrBadEvent)
	case ev.Frequency != "":
		if _, err := newsletter.ParseFrequency(ev.Frequency); err != nil {
			return ev, fmt.Errorf("%w: frequency %q", ErrBadEvent, ev.Frequency)
		}
	case ev.DigestID != "":
		if !newsletter.ValidDigestID(ev.DigestID) {
			return ev, fmt.Errorf("%w: digest ID %q", ErrBadEvent, ev.DigestID)
		}
	default:
		return ev, fmt.Errorf("%w: want {\"frequency\": \"daily\"}, {\"digestId\": \"...\"} or {\"sweep\": true}", ErrBadEvent)
	}
	return ev, nil
}

// Outcomes of a digest invocation besides a digest's own status (draft,
// sending, sent).
const (
	OutcomeSkipped  = "skipped"   // nothing new to send
	OutcomeInvalid  = "invalid"   // the event is neither shape
	OutcomeNotFound = "not_found" // no digest with the ID
	OutcomeSwept    = "swept"     // every digest still sending was resumed
)

// DigestResult is what the digest function answers, for `sam local
// invoke` and the logs: the digest and where it stands, or why there is
// none.
type DigestResult struct {
	DigestID string               `json:"digestId,omitempty"`
	Status   string               `json:"status"`
	Created  bool                 `json:"created,omitempty"`
	Counters *newsletter.Counters `json:"counters,omitempty"`
	Message  string               `json:"message,omitempty"`
}

// HandleDigest is the digest function's handler. It returns an error only
// when the store, the queue or SES failed, so that the scheduler or Lambda
// retries: both paths are idempotent (one digest per period; fan-out
// resumes from its cursor). A period with no new articles is a normal
// outcome, and a bad event is logged and answered, not retried.
func (a *App) HandleDigest(ctx context.Context, raw json.RawMessage) (*DigestResult, error) {
	ev, err := ParseDigestEvent(raw)
	if err != nil {
		a.Log.ErrorContext(ctx, "digest event ignored", "err", err, "event", truncate(string(raw), 512))
		return &DigestResult{Status: OutcomeInvalid, Message: err.Error()}, nil
	}
	switch {
	case ev.Sweep:
		if err := a.Engine.Resume(ctx); err != nil {
			return nil, fmt.Errorf("sweep: %w", err)
		}
		return &DigestResult{Status: OutcomeSwept}, nil
	case ev.Frequency != "":
		return a.scheduled(ctx, ev.Frequency)
	}
	return a.fanout(ctx, ev.DigestID)
}

// scheduled builds the digest of the current period and starts sending
// it; the inline dispatcher fans it out before this returns.
func (a *App) scheduled(ctx context.Context, frequency string) (*DigestResult, error) {
	st, created, err := a.Service.CreateDigest(ctx, newsroom.DigestRequest{Frequency: frequency, Send: true})
	switch newsletter.ErrorCode(err) {
	case "":
	case newsletter.ECONFLICT:
		a.Log.InfoContext(ctx, "no digest", "frequency", frequency, "reason", newsletter.ErrorMessage(err))
		return &DigestResult{Status: OutcomeSkipped, Message: newsletter.ErrorMessage(err)}, nil
	case newsletter.EINVALID:
		a.Log.ErrorContext(ctx, "digest refused", "frequency", frequency, "err", err)
		return &DigestResult{Status: OutcomeInvalid, Message: newsletter.ErrorMessage(err)}, nil
	default:
		return nil, fmt.Errorf("%s digest: %w", frequency, err)
	}
	a.Log.InfoContext(ctx, "digest", "digest", st.ID, "created", created, "status", st.Status, "readers", st.Counters.Total)
	return &DigestResult{DigestID: st.ID, Status: string(st.Status), Created: created, Counters: &st.Counters}, nil
}

// fanout fans out a digest the api function has marked sending.
func (a *App) fanout(ctx context.Context, id string) (*DigestResult, error) {
	if err := a.Engine.Fanout(ctx, id); err != nil {
		if newsletter.ErrorCode(err) == newsletter.ENOTFOUND {
			a.Log.WarnContext(ctx, "fan-out of a missing digest", "digest", id)
			return &DigestResult{DigestID: id, Status: OutcomeNotFound}, nil
		}
		return nil, err
	}
	st, err := a.Service.Digest(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("digest %s after fan-out: %w", id, err)
	}
	a.Log.InfoContext(ctx, "digest fanned out", "digest", id, "status", st.Status, "readers", st.Counters.Total)
	return &DigestResult{DigestID: id, Status: string(st.Status), Counters: &st.Counters}, nil
}

// truncate shortens s to at most n bytes for a log line.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
