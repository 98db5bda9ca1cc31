package cli

import (
	"strings"
	"testing"
	"time"
)

func TestBeforeNow(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"-90m", now.Add(-90 * time.Minute)},
		{"-1h30m", now.Add(-90 * time.Minute)},
		{"-7d", now.Add(-7 * 24 * time.Hour)},
		{"-2w", now.Add(-14 * 24 * time.Hour)},
		{"-0s", now},
	} {
		got, relative, err := BeforeNow(c.in, now)
		if err != nil || !relative || !got.Equal(c.want) {
			t.Errorf("BeforeNow(%q) = %s, %v, %v; want %s", c.in, got, relative, err, c.want)
		}
	}
	for _, in := range []string{"2026-11-28T12:00:00Z", "now", ""} {
		if _, relative, err := BeforeNow(in, now); relative || err != nil {
			t.Errorf("BeforeNow(%q): relative %v, err %v; want an absolute time left to the caller", in, relative, err)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"--5m", "not a relative time"},
		{"-+5m", "not a relative time"},
		{"-5x", "not a relative time"},
		{"-d", "not a relative time"},
		{"-", "not a relative time"},
		{"-999999d", "before 1970"},
	} {
		if _, relative, err := BeforeNow(c.in, now); !relative || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("BeforeNow(%q): relative %v, err %v; want an error saying %q", c.in, relative, err, c.want)
		}
	}
}
