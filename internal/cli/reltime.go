package cli

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// relativeDays matches "-7d" and "-2w": whole days or weeks before now.
var relativeDays = regexp.MustCompile(`^-([0-9]{1,6})([dw])$`)

// maxRelativeDays keeps -Nd and -Nw within time.Duration; any more reaches before 1970.
const maxRelativeDays = 100000

// BeforeNow reads a time written relative to now, as the time flags of raterd and
// trafficgen accept it: a negative Go duration ("-24h", "-90m", "-1h30m") or whole days or
// weeks ("-7d", "-2w"). relative is false when v does not start with "-": it is not a
// relative time, and the caller reads it as an absolute one. The result keeps now's
// location and precision.
func BeforeNow(v string, now time.Time) (t time.Time, relative bool, err error) {
	rest, relative := strings.CutPrefix(v, "-")
	if !relative {
		return time.Time{}, false, nil
	}
	var d time.Duration
	if m := relativeDays.FindStringSubmatch(v); m != nil {
		days, _ := strconv.Atoi(m[1])
		if m[2] == "w" {
			days *= 7
		}
		if days > maxRelativeDays {
			return time.Time{}, true, fmt.Errorf("%q is before 1970", v)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		pd, perr := time.ParseDuration(rest)
		if perr != nil || strings.HasPrefix(rest, "-") || strings.HasPrefix(rest, "+") {
			return time.Time{}, true, fmt.Errorf("%q is not a relative time (want e.g. -24h, -90m, -1h30m, -7d, -2w)", v)
		}
		d = pd
	}
	return now.Add(-d), true, nil
}
