package faults

import (
	"testing"
	"time"
)

// TestBreakerEvents: the breaker's opening and closing lines of a raterd log, as
// scorer/cache's breaker writes them, give the first opening, the last closing, their
// counts and the closings' unavailable_for summed; other lines are left out.
func TestBreakerEvents(t *testing.T) {
	log := `time=2026-12-07T16:00:00.100Z level=INFO msg="kafka group: joined" group=g
time=2026-12-07T16:00:01.000Z level=WARN msg="redis cache unavailable; scoring without it" err="dial tcp 127.0.0.1:1: connect: connection refused" cooldown=1s
time=2026-12-07T16:00:04.500Z level=INFO msg="redis cache available again" unavailable_for=3.5s
time=2026-12-07T16:00:09.000Z level=WARN msg="redis cache unavailable; scoring without it" err=timeout cooldown=1s
time=2026-12-07T16:00:10.250Z level=INFO msg="redis cache available again" unavailable_for=1.25s
`
	open, closeAt, opened, closed, down := breakerEvents(log)
	if want := time.Date(2026, 12, 7, 16, 0, 1, 0, time.UTC); !open.Equal(want) {
		t.Errorf("first opening %v, want %v", open, want)
	}
	if want := time.Date(2026, 12, 7, 16, 0, 10, 250e6, time.UTC); !closeAt.Equal(want) {
		t.Errorf("last closing %v, want %v", closeAt, want)
	}
	if opened != 2 || closed != 2 || down != 4750*time.Millisecond {
		t.Errorf("opened %d, closed %d, down %v; want 2, 2, 4.75s", opened, closed, down)
	}
	if got, want := breakerTimeline(log, time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC)), "opened +1.00 s, closed +4.50 s (unavailable for 3.50 s), opened +9.00 s, closed +10.25 s (unavailable for 1.25 s)"; got != want {
		t.Errorf("timeline %q, want %q", got, want)
	}
	if got := breakerTimeline("", time.Time{}); got != "no breaker line" {
		t.Errorf("empty log's timeline %q", got)
	}
	if o, c, n, m, d := breakerEvents("time=2026-12-07T16:00:00Z level=INFO msg=\"scores written\"\n"); !o.IsZero() || !c.IsZero() || n != 0 || m != 0 || d != 0 {
		t.Errorf("a log without breaker lines gave %v %v %d %d %v", o, c, n, m, d)
	}
}

// TestSampleAt: the last sample at or before a moment, the first one before them all.
func TestSampleAt(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC)
	s := []cacheSample{{at: t0, judgeCalls: 1}, {at: t0.Add(time.Second), judgeCalls: 2}, {at: t0.Add(2 * time.Second), judgeCalls: 3}}
	for _, c := range []struct {
		at   time.Time
		want float64
	}{{t0.Add(-time.Second), 1}, {t0, 1}, {t0.Add(1500 * time.Millisecond), 2}, {t0.Add(time.Hour), 3}} {
		if got := sampleAt(s, c.at).judgeCalls; got != c.want {
			t.Errorf("sampleAt(%v) = sample %v, want %v", c.at, got, c.want)
		}
	}
}
