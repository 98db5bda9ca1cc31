package main

import (
	"fmt"
	"time"

	"raterd/internal/cli"
)

// fromFlagUsage documents `raterd run --from`.
const fromFlagUsage = "rescore from this time: before starting, reset the consumer group's offsets to the first message at or after it " +
	"(Kafka message timestamps; RFC 3339 such as 2026-11-28T12:00:00Z, or relative: -24h, -90m, -7d, -2w). The group's other processes must be stopped"

// parseFromFlag reads the value of `raterd run --from`: an RFC 3339 time, or a time before
// now as a negative Go duration ("-24h", "-90m") or in days or weeks ("-7d", "-2w", as cli.BeforeNow reads them). A time after now is
// refused: there is nothing to rescore there, and committing the end offsets would skip
// whatever arrives until then.
func parseFromFlag(v string, now time.Time) (time.Time, error) {
	t, relative, err := cli.BeforeNow(v, now)
	switch {
	case err != nil:
		return time.Time{}, fmt.Errorf("--from: %w", err)
	case !relative:
		pt, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("--from %q: not an RFC 3339 time (e.g. 2026-11-28T12:00:00Z) or a relative one (-24h, -7d): %w", v, err)
		}
		t = pt
	}
	if t.After(now) {
		return time.Time{}, fmt.Errorf("--from %s is in the future (now is %s): there is nothing to rescore after now",
			t.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339))
	}
	if t.Unix() < 0 {
		return time.Time{}, fmt.Errorf("--from %q is before 1970", v)
	}
	return t.UTC(), nil
}
