package detect

import (
	"fmt"
	"math"
	"time"
)

// Stat is the statistic a Threshold rule computes over its window.
type Stat int8

const (
	// StatMean is the mean score; the default.
	StatMean Stat = iota
	// StatPassRate is the share of passes; observations must be 0 or 1 (see Pass).
	StatPassRate
)

// ThresholdConfig configures a Threshold rule. Zero fields other than Alert take their
// defaults.
type ThresholdConfig struct {
	// Stat is the window statistic; default StatMean.
	Stat Stat `yaml:"stat"`
	// Alert is the alert threshold, on the rubric's scale (or a rate in [0,1] for
	// StatPassRate): the rule alerts when the window statistic is worse than it. Required.
	Alert float64 `yaml:"alert"`
	// Warning is the warning threshold, on the good side of Alert; nil for none.
	Warning *float64 `yaml:"warning"`
	// Window is the length of the sliding window; default 1h.
	Window time.Duration `yaml:"window"`
	// Buckets is how many buckets the window is kept in: memory is O(Buckets) whatever
	// the traffic, and the window slides by Window/Buckets, so it spans between
	// Window−Window/Buckets and Window of data. Default 60.
	Buckets int `yaml:"buckets"`
	// MinSamples is the sample size below which the verdict is StateUnknown. Choose it so
	// that the distance from the expected level to Alert is at least about four standard
	// errors (σ/√MinSamples); default 100.
	MinSamples int `yaml:"min_samples"`
	// Direction says which way is worse; default Below.
	Direction Direction `yaml:"direction"`
	// Confidence is the level of the reported interval (normal for means, Wilson for
	// pass rates); default 0.95. It does not change when the rule alerts.
	Confidence float64 `yaml:"confidence"`
}

// DefaultThresholdWindow is ThresholdConfig's default Window.
const DefaultThresholdWindow = time.Hour

func (c ThresholdConfig) withDefaults() ThresholdConfig {
	if c.Window == 0 {
		c.Window = DefaultThresholdWindow
	}
	if c.Buckets == 0 {
		c.Buckets = 60
	}
	if c.MinSamples == 0 {
		c.MinSamples = 100
	}
	if c.Confidence == 0 {
		c.Confidence = 0.95
	}
	return c
}

// Validate reports the first invalid or conflicting field, after defaults are applied.
func (c ThresholdConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Stat != StatMean && c.Stat != StatPassRate:
		return fmt.Errorf("%w: Stat must be StatMean or StatPassRate, got %d", ErrInvalidConfig, c.Stat)
	case !scale(c.Alert):
		return fmt.Errorf("%w: Alert must be in [-MaxAbs,MaxAbs], got %v", ErrInvalidConfig, c.Alert)
	case c.Stat == StatPassRate && (c.Alert < 0 || c.Alert > 1):
		return fmt.Errorf("%w: Alert is a pass rate and must be in [0,1], got %v", ErrInvalidConfig, c.Alert)
	case c.Warning != nil && (!scale(*c.Warning) || c.Direction.Badness(*c.Warning, c.Alert) > 0):
		return fmt.Errorf("%w: Warning must be in [-MaxAbs,MaxAbs] and on the good side of Alert %v, got %v", ErrInvalidConfig, c.Alert, *c.Warning)
	case c.Buckets < 1 || c.Buckets > 100000:
		return fmt.Errorf("%w: Buckets must be in [1,100000], got %d", ErrInvalidConfig, c.Buckets)
	case c.Window < time.Duration(c.Buckets)*time.Millisecond:
		return fmt.Errorf("%w: Window must be at least a millisecond per bucket, got %v", ErrInvalidConfig, c.Window)
	case c.MinSamples < 1:
		return fmt.Errorf("%w: MinSamples must be positive, got %d", ErrInvalidConfig, c.MinSamples)
	case !(c.Confidence > 0 && c.Confidence < 1):
		return fmt.Errorf("%w: Confidence must be in (0,1), got %v", ErrInvalidConfig, c.Confidence)
	}
	return c.Direction.validate("Direction")
}

// Threshold compares the mean or pass rate over a sliding time window with an alert and a
// warning threshold, like the static rules of Langfuse or Opik. It is the rule users
// understand at a glance; its delay is about half a window at any traffic rate.
type Threshold struct {
	cfg ThresholdConfig
	st  thresholdState
	// closed caches the merge of the window's buckets before bucket closedAt, valid while
	// closedOK and closedAt is Cur, so that an observation costs O(1), not O(Buckets).
	closed   welford
	closedAt int64
	closedOK bool
}

type bucket struct {
	Idx int64 // bucket number: Unix time / bucket width
	welford
}

type thresholdState struct {
	tracker
	Started bool
	Cur     int64 // newest bucket number seen
	Buckets []bucket
}

// NewThreshold returns a Threshold rule, or an error naming the invalid field.
func NewThreshold(cfg ThresholdConfig) (*Threshold, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Threshold{cfg: cfg, st: thresholdState{Buckets: make([]bucket, cfg.Buckets)}}, nil
}

// Config returns the configuration, defaults applied.
func (t *Threshold) Config() ThresholdConfig { return t.cfg }

// maxUnix bounds the accepted times to ±250 years around 1970, where UnixNano is exact.
const maxUnix = 250 * 365 * 86400

func inRange(at time.Time) bool { return at.Unix() > -maxUnix && at.Unix() < maxUnix }

func (t *Threshold) index(at time.Time) int64 {
	w := int64(t.cfg.Window) / int64(t.cfg.Buckets)
	n := at.UnixNano()
	if n < 0 && n%w != 0 {
		return n/w - 1
	}
	return n / w
}

func (t *Threshold) slot(idx int64) int {
	n := int64(t.cfg.Buckets)
	return int((idx%n + n) % n)
}

// Observe adds x at time at. Observations older than the window are refused as late.
func (t *Threshold) Observe(x float64, at time.Time) (Decision, error) {
	if why := t.refuse(x, at); why != "" {
		err := t.st.reject(why, x)
		return t.Evaluate(time.Time{}), err
	}
	idx := t.index(at)
	if !t.st.Started || idx > t.st.Cur {
		t.st.Started, t.st.Cur = true, idx
	} else if idx < t.st.Cur {
		t.closedOK = false
	}
	b := &t.st.Buckets[t.slot(idx)]
	if b.Idx != idx {
		*b = bucket{Idx: idx}
	}
	b.add(x)
	return t.Evaluate(at), nil
}

// refuse says why an observation is refused, or "".
func (t *Threshold) refuse(x float64, at time.Time) string {
	switch {
	case observable(x) != "":
		return observable(x)
	case t.cfg.Stat == StatPassRate && x != 0 && x != 1:
		return "pass-rate observations must be 0 or 1"
	case !inRange(at):
		return "time out of range: " + at.String()
	case t.st.Started && t.index(at) <= t.st.Cur-int64(t.cfg.Buckets):
		return "older than the window: " + at.String()
	}
	return ""
}

// Evaluate returns the verdict at time at, expiring data older than the window; a zero at
// means the latest time seen.
func (t *Threshold) Evaluate(at time.Time) Decision {
	if !inRange(at) {
		at = time.Time{}
	} else if t.st.Started {
		t.st.Cur = max(t.st.Cur, t.index(at))
	}
	if !t.closedOK || t.closedAt != t.st.Cur {
		t.closed, t.closedAt, t.closedOK = welford{}, t.st.Cur, true
		for _, b := range t.st.Buckets {
			if t.st.Started && b.Idx > t.st.Cur-int64(t.cfg.Buckets) && b.Idx < t.st.Cur {
				t.closed.merge(b.welford)
			}
		}
	}
	w := t.closed
	if cur := t.st.Buckets[t.slot(t.st.Cur)]; t.st.Started && cur.Idx == t.st.Cur {
		w.merge(cur.welford)
	}
	c := t.cfg
	d := Decision{Observed: w.Mean, Lower: w.Mean, Upper: w.Mean, Expected: c.Alert,
		Statistic: w.Mean, Limit: c.Alert, N: w.N}
	z := zQuantile(0.5 + c.Confidence/2)
	if c.Stat == StatPassRate && w.N > 0 { // Wilson score interval
		n, p := float64(w.N), w.Mean
		mid, half := (p+z*z/(2*n))/(1+z*z/n), z/(1+z*z/n)*math.Sqrt(p*(1-p)/n+z*z/(4*n*n))
		d.Lower, d.Upper = min(p, max(0, mid-half)), max(p, min(1, mid+half)) // p inside despite rounding
	} else if w.N > 1 {
		half := z * math.Sqrt(w.variance()/float64(w.N))
		d.Lower, d.Upper = w.Mean-half, w.Mean+half
	}
	switch {
	case w.N < int64(c.MinSamples):
		d.State = StateUnknown
	case c.Direction.Badness(w.Mean, c.Alert) > 0:
		d.State = StateAlert
	case c.Warning != nil && c.Direction.Badness(w.Mean, *c.Warning) > 0:
		d.State = StateWarning
	default:
		d.State = StateOK
	}
	return t.st.settle(d, at)
}

// Reset empties the window.
func (t *Threshold) Reset() {
	t.st.tracker.reset()
	t.st.Started, t.st.Cur, t.closedOK = false, 0, false
	clear(t.st.Buckets)
}

// MarshalBinary encodes configuration and state (as JSON).
func (t *Threshold) MarshalBinary() ([]byte, error) { return marshal(t.cfg, t.st) }

// UnmarshalBinary restores configuration and state encoded by MarshalBinary.
func (t *Threshold) UnmarshalBinary(data []byte) error {
	cfg, st, err := unmarshal[ThresholdConfig, thresholdState](data)
	if err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	if len(st.Buckets) != cfg.Buckets {
		return fmt.Errorf("%w: %d buckets, config says %d", ErrInvalidState, len(st.Buckets), cfg.Buckets)
	}
	if lim := maxUnix * int64(time.Second) / (int64(cfg.Window) / int64(cfg.Buckets)); st.Cur < -lim-1 || st.Cur > lim+1 || !st.tracker.valid() {
		return fmt.Errorf("%w: current bucket %d or state %d out of range", ErrInvalidState, st.Cur, st.State)
	}
	n := int64(cfg.Buckets)
	for i, b := range st.Buckets {
		if !b.valid() || (b.N > 0 && (b.Idx%n+n)%n != int64(i)) {
			return fmt.Errorf("%w: bucket %d is corrupt", ErrInvalidState, i)
		}
		if cfg.Stat == StatPassRate && (b.Mean < 0 || b.Mean > 1) {
			return fmt.Errorf("%w: bucket %d has pass rate %v", ErrInvalidState, i, b.Mean)
		}
	}
	t.cfg, t.st, t.closedOK = cfg, st, false
	return nil
}
