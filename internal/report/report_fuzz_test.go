package report

import (
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"raterd/internal/cli"
	"raterd/sinks/clickhouse"
)

// FuzzParseReportTime (seed corpus: testdata/fuzz/FuzzParseReportTime): any time flag
// of raterd report is either refused or read as a whole-second UTC time in the
// DateTime range that reads back the same from its RFC 3339 form; a FROM,TO window
// (parseWindow) is refused with a usage error or is a non-empty range whose ends are
// the times its halves read as.
func FuzzParseReportTime(f *testing.F) {
	for _, v := range []string{"now", "-24h", "-90m", "-1h30m", "-7d", "-2w", "-100000d", "-14286w", "2026-11-28T12:00:00Z",
		"2026-11-28 12:00:00", "2026-11-28T12:00:00", "2026-11-28", "2026-11-28T12:00:00.5Z", "2106-01-01", "1969-12-31", "--1h", "-0s", ""} {
		f.Add(v, "-7d,now")
	}
	f.Add("now", "2026-11-01, 2026-11-28")
	f.Add("now", "-1h,-2h")
	f.Add("now", "no comma")
	f.Fuzz(func(t *testing.T, v, window string) {
		now := time.Date(2026, 11, 28, 12, 0, 0, 500, time.UTC)
		got, err := parseReportTime(v, now)
		if err != nil {
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("error is not valid UTF-8: %q", err)
			}
		} else {
			if got.Location() != time.UTC || got.Nanosecond() != 0 {
				t.Fatalf("parseReportTime(%q) = %s: not whole seconds in UTC", v, got)
			}
			canon := got.Format(time.RFC3339)
			if _, err := clickhouse.ParseCookbookTime(canon); err != nil {
				t.Fatalf("parseReportTime(%q) = %s, outside the DateTime range: %v", v, got, err)
			}
			if back, err := parseReportTime(canon, now); err != nil || !back.Equal(got) {
				t.Fatalf("%q → %s → %q → %s, %v", v, got, canon, back, err)
			}
		}

		from, to, err := parseWindow("--window-a", window, now)
		if err != nil {
			var fe *cli.FlagError
			if !errors.As(err, &fe) {
				t.Fatalf("window %q: error %v is not a usage error", window, err)
			}
			return
		}
		if !from.Before(to) || from.Nanosecond() != 0 || to.Nanosecond() != 0 {
			t.Fatalf("window %q = %s … %s", window, from, to)
		}
	})
}
