package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParseFromFlag (seed corpus: testdata/fuzz/FuzzParseFromFlag): any --from value is
// either refused with an error that names --from, or read as a UTC time no later than
// now and not before 1970: for a relative value exactly now minus the duration (-Nd: N
// days, -Nw: N weeks, as every raterd time flag reads them), for an absolute one the RFC 3339 time it spells, which reads back the same from
// its canonical form. Reading is deterministic.
func FuzzParseFromFlag(f *testing.F) {
	for _, v := range []string{"2026-11-28T10:30:00Z", "2026-11-28T11:30:00.250+01:00", "-90m", "-7d", "-2w", "-0d", "-100000d",
		"-1h30m", "--5m", "-+5m", "-d", "2026-11-28", "", "1969-12-31T23:59:59Z", "-9223372036854775807ns"} {
		f.Add(v, int64(0))
	}
	f.Fuzz(func(t *testing.T, v string, shift int64) {
		now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC).Add(time.Duration(shift % int64(200*365*24*time.Hour)))
		got, err := parseFromFlag(v, now)
		got2, err2 := parseFromFlag(v, now)
		if !got.Equal(got2) || (err == nil) != (err2 == nil) {
			t.Fatalf("not deterministic: %v %v / %v %v", got, err, got2, err2)
		}
		if err != nil {
			if msg := err.Error(); !strings.Contains(msg, "--from") || !utf8.ValidString(msg) {
				t.Fatalf("error %q does not name --from or is not valid UTF-8", msg)
			}
			return
		}
		if got.After(now) || got.Unix() < 0 || got.Location() != time.UTC {
			t.Fatalf("parseFromFlag(%q, %s) = %s", v, now, got)
		}
		if rest, ok := strings.CutPrefix(v, "-"); ok {
			var d time.Duration
			if days, ok := strings.CutSuffix(rest, "d"); ok {
				n, err := strconv.Atoi(days)
				if err != nil {
					t.Fatalf("accepted %q", v)
				}
				d = time.Duration(n) * 24 * time.Hour
			} else if weeks, ok := strings.CutSuffix(rest, "w"); ok {
				n, err := strconv.Atoi(weeks)
				if err != nil {
					t.Fatalf("accepted %q", v)
				}
				d = time.Duration(n) * 7 * 24 * time.Hour
			} else if d, err = time.ParseDuration(rest); err != nil || d < 0 {
				t.Fatalf("accepted %q", v)
			}
			if !got.Equal(now.Add(-d)) {
				t.Fatalf("parseFromFlag(%q) = %s, want now − %s = %s", v, got, d, now.Add(-d))
			}
			return
		}
		want, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || !got.Equal(want) {
			t.Fatalf("parseFromFlag(%q) = %s, want %s (%v)", v, got, want, err)
		}
		canon := got.Format(time.RFC3339Nano)
		if back, err := parseFromFlag(canon, now); err != nil || !back.Equal(got) {
			t.Fatalf("%q → %s → %q → %s, %v", v, got, canon, back, err)
		}
	})
}
