package schedule

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return loc
}

func TestNext(t *testing.T) {
	lagos := mustLoad(t, "Africa/Lagos")
	london := mustLoad(t, "Europe/London")
	daily := Entry{Frequency: newsletter.Daily, Hour: 7}
	weekly := Entry{Frequency: newsletter.Weekly, Weekday: time.Monday, Hour: 7, Minute: 30}
	tests := []struct {
		name  string
		e     Entry
		after time.Time
		loc   *time.Location
		want  time.Time
	}{
		{"daily later today", daily, time.Date(2026, 11, 26, 5, 0, 0, 0, lagos), lagos, time.Date(2026, 11, 26, 7, 0, 0, 0, lagos)},
		{"daily exactly at time goes to tomorrow", daily, time.Date(2026, 11, 26, 7, 0, 0, 0, lagos), lagos, time.Date(2026, 11, 27, 7, 0, 0, 0, lagos)},
		{"daily across month end", daily, time.Date(2026, 11, 30, 8, 0, 0, 0, lagos), lagos, time.Date(2026, 12, 1, 7, 0, 0, 0, lagos)},
		{"daily in another zone's UTC input", daily, time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC), lagos, time.Date(2026, 11, 27, 7, 0, 0, 0, lagos)},
		{"weekly from Thursday", weekly, time.Date(2026, 11, 26, 12, 0, 0, 0, lagos), lagos, time.Date(2026, 11, 30, 7, 30, 0, 0, lagos)},
		{"weekly on Monday before time", weekly, time.Date(2026, 11, 30, 7, 0, 0, 0, lagos), lagos, time.Date(2026, 11, 30, 7, 30, 0, 0, lagos)},
		{"weekly on Monday after time", weekly, time.Date(2026, 11, 30, 8, 0, 0, 0, lagos), lagos, time.Date(2026, 12, 7, 7, 30, 0, 0, lagos)},
		{"daily over spring-forward keeps wall clock", daily, time.Date(2026, 3, 28, 8, 0, 0, 0, london), london, time.Date(2026, 3, 29, 7, 0, 0, 0, london)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Next(tt.after, tt.loc); !got.Equal(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		f       newsletter.Frequency
		in      string
		want    Entry
		wantErr bool
	}{
		{newsletter.Daily, "07:00", Entry{Frequency: newsletter.Daily, Hour: 7}, false},
		{newsletter.Daily, "23:59", Entry{Frequency: newsletter.Daily, Hour: 23, Minute: 59}, false},
		{newsletter.Weekly, "Mon 06:15", Entry{Frequency: newsletter.Weekly, Weekday: time.Monday, Hour: 6, Minute: 15}, false},
		{newsletter.Weekly, "friday 18:00", Entry{Frequency: newsletter.Weekly, Weekday: time.Friday, Hour: 18}, false},
		{newsletter.Daily, "24:00", Entry{}, true},
		{newsletter.Daily, "7", Entry{}, true},
		{newsletter.Daily, "mon 07:00", Entry{}, true},
		{newsletter.Weekly, "07:00", Entry{}, true},
		{newsletter.Weekly, "xyz 07:00", Entry{}, true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.f, tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("Parse(%s, %q) error = %v, wantErr %v", tt.f, tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && got != tt.want {
			t.Errorf("Parse(%s, %q) = %+v, want %+v", tt.f, tt.in, got, tt.want)
		}
	}
}

// TestRunFires runs the real timer loop in a synctest bubble, whose clock
// (time.Now, the scheduler's default) starts at midnight UTC on Saturday
// 1 January 2000 and moves on only while every goroutine waits: the entries
// fire at their times to the nanosecond, in order, and a day of waiting
// takes no time.
func TestRunFires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lagos := mustLoad(t, "Africa/Lagos")
		type firing struct {
			f  newsletter.Frequency
			at time.Time
		}
		want := []firing{
			{newsletter.Daily, time.Date(2000, 1, 1, 7, 0, 0, 0, lagos)},
			{newsletter.Daily, time.Date(2000, 1, 2, 7, 0, 0, 0, lagos)},
			{newsletter.Daily, time.Date(2000, 1, 3, 7, 0, 0, 0, lagos)},
			{newsletter.Weekly, time.Date(2000, 1, 3, 7, 30, 0, 0, lagos)},
		}
		var got []firing
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		s := &Scheduler{
			Entries:  []Entry{{Frequency: newsletter.Daily, Hour: 7}, {Frequency: newsletter.Weekly, Weekday: time.Monday, Hour: 7, Minute: 30}},
			Location: lagos,
			Logger:   slog.New(slog.NewTextHandler(t.Output(), nil)),
			Fire: func(ctx context.Context, f newsletter.Frequency) error {
				if got = append(got, firing{f, time.Now()}); len(got) == len(want) {
					cancel()
				}
				return nil
			},
		}
		s.Run(ctx)
		if len(got) != len(want) {
			t.Fatalf("fired %d times, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].f != want[i].f || !got[i].at.Equal(want[i].at) {
				t.Errorf("firing %d: %s at %v, want %s at %v", i, got[i].f, got[i].at.In(lagos), want[i].f, want[i].at)
			}
		}
	})
}
