package schedule

import (
	"context"
	"sync/atomic"
	"testing"
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

// TestRunFires runs the real timer loop with a clock that says the entry
// is one millisecond away, and checks that it fires.
func TestRunFires(t *testing.T) {
	lagos := mustLoad(t, "Africa/Lagos")
	start := time.Date(2026, 11, 26, 6, 59, 59, 999_000_000, lagos)
	var fired atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := &Scheduler{
		Entries:  []Entry{{Frequency: newsletter.Daily, Hour: 7}},
		Location: lagos,
		Now: func() time.Time {
			if fired.Load() > 0 {
				return start.Add(time.Hour) // next run is a day away
			}
			return start
		},
		Logger: nil,
		Fire: func(ctx context.Context, f newsletter.Frequency) error {
			if f != newsletter.Daily {
				t.Errorf("fired %s, want daily", f)
			}
			fired.Add(1)
			cancel()
			return nil
		},
	}
	s.Run(ctx)
	if got := fired.Load(); got != 1 {
		t.Fatalf("fired %d times, want 1", got)
	}
}
