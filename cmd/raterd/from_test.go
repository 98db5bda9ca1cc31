package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseFromFlag(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"2026-11-28T10:30:00Z", time.Date(2026, 11, 28, 10, 30, 0, 0, time.UTC)},
		{"2026-11-28T11:30:00.250+01:00", time.Date(2026, 11, 28, 10, 30, 0, 250e6, time.UTC)},
		{"2026-11-28T12:00:00Z", now}, // now itself: nothing to rescore, but not refused
		{"-90m", now.Add(-90 * time.Minute)},
		{"-7d", now.Add(-7 * 24 * time.Hour)},
	} {
		got, err := parseFromFlag(c.in, now)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("parseFromFlag(%q) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"2026-11-28T12:00:01Z", "in the future"},
		{"2027-01-01T00:00:00Z", "in the future"},
		{"yesterday", "not an RFC 3339 time"},
		{"", "not an RFC 3339 time"},
		{"2026-11-28", "not an RFC 3339 time"},
		{"--5m", "not a relative time"},
		{"-5x", "not a relative time"},
		{"-d", "not a relative time"},
	} {
		_, err := parseFromFlag(c.in, now)
		if err == nil || !strings.Contains(err.Error(), "--from") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseFromFlag(%q): err = %v; want one naming --from and saying %q", c.in, err, c.want)
		}
	}
}

// TestRunRefusesABadFrom: the time is checked before anything else is touched (the config
// file here does not even exist); an empty --from is refused, not ignored.
func TestRunRefusesABadFrom(t *testing.T) {
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, c := range []struct{ from, want string }{
		{future, "--from " + future + " is in the future"},
		{"", `--from "": not an RFC 3339 time`},
	} {
		var stdout, stderr strings.Builder
		code := runMain([]string{"run", "--config", t.TempDir() + "/missing.yaml", "--from", c.from}, &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("--from %q: exit %d, stderr %q; want 1 and %q", c.from, code, stderr.String(), c.want)
		}
	}
}
