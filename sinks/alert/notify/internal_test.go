package notify

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseRetryAfter: any header value gives a wait in [0, 1h]; delay-seconds are read
// exactly (capped), HTTP dates relative to now.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"", "0", "7", " 120 ", "3600", "3601", "99999999999999999999", "-1", "1.5",
		"Sat, 28 Nov 2026 12:00:30 GMT", "Sat, 28 Nov 2026 11:00:00 GMT", "Monday, 30-Nov-26 12:00:00 GMT",
		"Mon Nov 30 12:00:00 2026", "soon"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := parseRetryAfter(v, now)
		if d < 0 || d > time.Hour {
			t.Fatalf("parseRetryAfter(%q) = %s, outside [0, 1h]", v, d)
		}
		if secs, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil && secs <= 3600 && d != time.Duration(secs)*time.Second {
			t.Fatalf("parseRetryAfter(%q) = %s, want %ds", v, d, secs)
		}
		if at, err := http.ParseTime(strings.TrimSpace(v)); err == nil {
			if _, nerr := strconv.ParseUint(strings.TrimSpace(v), 10, 64); nerr != nil {
				if want := min(max(at.Sub(now), 0), time.Hour); d != want {
					t.Fatalf("parseRetryAfter(%q) = %s, want %s", v, d, want)
				}
			}
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"": 0, "7": 7 * time.Second, "99999": time.Hour, "Sat, 28 Nov 2026 12:00:30 GMT": 30 * time.Second,
		"Sat, 28 Nov 2026 11:00:00 GMT": 0, "soon": 0, "-3": 0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

// TestDelivererBackoffWaits: the wait after the attempt-th failure is drawn from [b/2, b)
// with b = initial_backoff doubled per earlier failure, capped at max_backoff, and
// lengthened to a receiver's Retry-After, itself capped at max_backoff. The durations are
// computed, not measured.
func TestDelivererBackoffWaits(t *testing.T) {
	d := &Deliverer{cfg: DeliveryConfig{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond}}
	transient := errors.New("503")
	for attempt, b := range map[int]time.Duration{1: 20, 2: 40, 3: 80, 4: 80, 30: 80} {
		b *= time.Millisecond
		for range 200 {
			if w := d.backoff(attempt, transient); w < b/2 || w >= b {
				t.Fatalf("backoff(%d) = %s, want in [%s, %s)", attempt, w, b/2, b)
			}
		}
	}
	retryAfter := func(ra time.Duration) error {
		return fmt.Errorf("wrapped: %w", &StatusError{Channel: "fake", Status: 429, RetryAfter: ra})
	}
	if w := d.backoff(1, retryAfter(50*time.Millisecond)); w != 50*time.Millisecond {
		t.Errorf("Retry-After 50ms: wait %s, want 50ms", w)
	}
	if w := d.backoff(1, retryAfter(time.Hour)); w != 80*time.Millisecond {
		t.Errorf("Retry-After 1h: wait %s, want max_backoff 80ms", w)
	}
	if w := d.backoff(3, retryAfter(time.Millisecond)); w < 40*time.Millisecond {
		t.Errorf("a short Retry-After shortened the backoff to %s", w)
	}
}
