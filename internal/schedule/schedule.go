// Package schedule is the laptop's stand-in for EventBridge Scheduler: it
// fires the daily and weekly digests at a wall-clock time in a time zone.
package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// Entry is one recurring send: every day at Hour:Minute, or for a weekly
// digest every Weekday at Hour:Minute, in the scheduler's time zone.
type Entry struct {
	Frequency newsletter.Frequency
	Weekday   time.Weekday // weekly entries only
	Hour      int
	Minute    int
}

// Parse reads an entry's time: "07:00" for daily, "mon 07:00" for weekly.
func Parse(f newsletter.Frequency, s string) (Entry, error) {
	e := Entry{Frequency: f}
	fields := strings.Fields(strings.ToLower(s))
	if f == newsletter.Weekly {
		if len(fields) != 2 {
			return e, fmt.Errorf("weekly schedule %q: want a day and a time, such as \"mon 07:00\"", s)
		}
		day, ok := weekdays[strings.TrimSuffix(fields[0][:min(3, len(fields[0]))], ",")]
		if !ok {
			return e, fmt.Errorf("weekly schedule %q: unknown day %q", s, fields[0])
		}
		e.Weekday, fields = day, fields[1:]
	}
	if len(fields) != 1 {
		return e, fmt.Errorf("%s schedule %q: want a time such as \"07:00\"", f, s)
	}
	h, m, ok := strings.Cut(fields[0], ":")
	hour, err1 := strconv.Atoi(h)
	minute, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hour < 0 || hour > 23 || minute < 0 || minute > 59 {
		return e, fmt.Errorf("%s schedule %q: want a 24-hour time such as \"07:00\"", f, s)
	}
	e.Hour, e.Minute = hour, minute
	return e, nil
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Next returns the first time after t at which the entry fires in loc. On a
// day when a clock change skips the wall-clock time, it fires at the
// instant Go normalises that time to (just after the gap).
func (e Entry) Next(t time.Time, loc *time.Location) time.Time {
	local := t.In(loc)
	y, mo, d := local.Date()
	for i := 0; i <= 8; i++ {
		at := time.Date(y, mo, d+i, e.Hour, e.Minute, 0, 0, loc)
		if e.Frequency == newsletter.Weekly && at.Weekday() != e.Weekday {
			continue
		}
		if at.After(t) {
			return at
		}
	}
	return time.Time{} // unreachable: a week always holds the day
}

// Scheduler runs entries until its context ends.
type Scheduler struct {
	Entries  []Entry
	Location *time.Location
	Now      func() time.Time
	Logger   *slog.Logger
	// Fire runs when an entry is due. Digest creation is idempotent per
	// period, so firing twice for one period sends nothing twice.
	Fire func(ctx context.Context, f newsletter.Frequency) error
}

// Run fires each entry at its times until ctx ends. Runs missed while the
// machine slept are not made up.
func (s *Scheduler) Run(ctx context.Context) {
	now := s.Now
	if now == nil {
		now = time.Now
	}
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	for {
		var next time.Time
		var due []Entry
		t := now()
		for _, e := range s.Entries {
			at := e.Next(t, s.Location)
			switch {
			case next.IsZero() || at.Before(next):
				next, due = at, []Entry{e}
			case at.Equal(next):
				due = append(due, e)
			}
		}
		if next.IsZero() {
			return
		}
		timer := time.NewTimer(next.Sub(t))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		for _, e := range due {
			if err := s.Fire(ctx, e.Frequency); err != nil {
				log.Info("scheduled digest", "frequency", e.Frequency, "result", newsletter.ErrorMessage(err), "err", err)
			} else {
				log.Info("scheduled digest sent", "frequency", e.Frequency)
			}
		}
	}
}
