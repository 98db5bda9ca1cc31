// Package detect holds the statistical core of raterd's quality alerting: detectors that
// watch the scores of one series (model × app × evaluator × judge) and say, observation by
// observation, whether the series is fine, drifting (warning) or has regressed (alert):
// threshold rules, EWMA and CUSUM control charts with their baselines, and canary
// comparisons.
//
// Detectors are pure state machines: no goroutines, no clocks, no I/O, no metrics. Each
// observation carries its own time, so replays and tests are deterministic. The lifecycle
// layer (package raterd/sinks/alert: pending → firing → resolved, deduplication,
// notification) consumes their Decisions, and persists their state with
// MarshalBinary/UnmarshalBinary so that it survives restarts and can move between
// processes. Detectors are not safe for concurrent use; one goroutine owns each, as
// everywhere in raterd.
//
// The detectors, their parameters and their measured detection delays and false-alarm
// rates are described in docs/alerting.md.
package detect

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"time"
)

// State is a detector's verdict on its series.
type State int8

const (
	// StateUnknown means there is not enough data to judge: the baseline is still being
	// learned, or the window holds fewer than the minimum sample size. No data is not
	// good news, so a lifecycle layer should treat it as such (its missing-data policy).
	StateUnknown State = iota
	// StateOK means no regression is detected.
	StateOK
	// StateWarning means the series is drifting towards a regression.
	StateWarning
	// StateAlert means a regression is detected.
	StateAlert
)

// String returns "unknown", "ok", "warning" or "alert".
func (s State) String() string {
	switch s {
	case StateUnknown:
		return "unknown"
	case StateOK:
		return "ok"
	case StateWarning:
		return "warning"
	case StateAlert:
		return "alert"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Direction says which way a regression goes.
type Direction int8

const (
	// Below means lower values are worse (scores, pass rates); the default.
	Below Direction = iota
	// Above means higher values are worse (refusal rates, toxicity).
	Above
)

// Badness returns how much worse a is than b in direction d (positive: worse).
func (d Direction) Badness(a, b float64) float64 {
	if d == Above {
		return a - b
	}
	return b - a
}

func (d Direction) validate(key string) error {
	if d != Below && d != Above {
		return fmt.Errorf("%w: %s must be Below or Above, got %d", ErrInvalidConfig, key, d)
	}
	return nil
}

// Decision is a detector's verdict after an observation or an evaluation.
type Decision struct {
	// State is the verdict.
	State State
	// Since is when the detector entered State (the time of the observation or
	// evaluation that changed it); zero until it has judged anything.
	Since time.Time
	// At is the time of the latest observation or evaluation.
	At time.Time
	// Observed is the detector's estimate of the series' current level: the window
	// statistic (Threshold), the EWMA (EWMA), the mean since the CUSUM last left zero (the
	// baseline mean while it is zero), or the candidate's mean minus the baseline's
	// (Canary).
	Observed float64
	// Lower and Upper bound an interval around Observed: a confidence interval
	// (Threshold, CUSUM), the control limits' half-width around the EWMA, or the
	// always-valid confidence sequence for the difference (Canary). For EWMA and Canary,
	// the detector alerts exactly when the interval lies wholly on the bad side of
	// Expected.
	Lower, Upper float64
	// Expected is the level Observed is judged against: the baseline mean (EWMA, CUSUM),
	// the alert threshold (Threshold), or the difference at the margin (Canary: −Margin
	// for Below, +Margin for Above).
	Expected float64
	// Statistic is the detector's test statistic and Limit the value at which it alerts:
	// the window statistic and the alert threshold, the EWMA and its control limit, the
	// CUSUM sum and h, the always-valid p-value and α.
	Statistic, Limit float64
	// N is the sample size behind Observed.
	N int64
	// Rejected counts the observations this detector has refused (NaN, ±Inf, out of range
	// or too late) since it was created.
	Rejected uint64
}

// Rule is what a lifecycle layer needs from every detector: a verdict at any time (time
// matters to windowed rules, whose data expires), a restart, and persistent state.
// UnmarshalBinary restores configuration and state together, validating both.
type Rule interface {
	Evaluate(at time.Time) Decision
	// Reset restarts the statistic (empties the window, returns the EWMA to the baseline,
	// zeroes the CUSUM, starts a new canary test); a learned baseline and the counters
	// are kept.
	Reset()
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// Detector is a Rule fed one series' observations: a score value, or Pass(ok) for
// pass-rate rules. Invalid observations are refused with an error wrapping
// ErrInvalidObservation, counted in Decision.Rejected, and leave the state unchanged.
type Detector interface {
	Rule
	Observe(x float64, at time.Time) (Decision, error)
}

var (
	// ErrInvalidConfig is wrapped by every configuration error; the message names the key.
	ErrInvalidConfig = errors.New("alert: invalid config")
	// ErrInvalidObservation is wrapped by the error of a refused observation.
	ErrInvalidObservation = errors.New("alert: invalid observation")
	// ErrInvalidState is wrapped by UnmarshalBinary errors: corrupt or foreign state.
	ErrInvalidState = errors.New("alert: invalid state")
)

// Pass maps a pass/fail outcome to an observation: 1 for a pass, 0 for a failure.
func Pass(ok bool) float64 {
	if ok {
		return 1
	}
	return 0
}

// snapshotVersion is the version of the serialized state; bump it on incompatible change.
const snapshotVersion = 1

// tracker holds what every detector keeps besides its statistic.
type tracker struct {
	State    State
	Since    time.Time
	At       time.Time
	Rejected uint64
}

// settle records a new verdict: Since moves when the state changes (or was reached
// before any time was known).
func (t *tracker) settle(d Decision, at time.Time) Decision {
	if !at.IsZero() && at.After(t.At) {
		t.At = at
	}
	if d.State != t.State || t.Since.IsZero() {
		t.State, t.Since = d.State, t.At
	}
	d.Since, d.At, d.Rejected = t.Since, t.At, t.Rejected
	return d
}

// reject counts a refused observation and returns the error for it.
func (t *tracker) reject(why string, x float64) error {
	t.Rejected++
	return fmt.Errorf("%w: %s (value %v)", ErrInvalidObservation, why, x)
}

// observable says why x is not an acceptable observation, or "".
func observable(x float64) string {
	if !scale(x) {
		return "not a finite number within ±MaxAbs"
	}
	return ""
}

func (t *tracker) valid() bool { return t.State >= StateUnknown && t.State <= StateAlert }

func (t *tracker) reset() { t.State, t.Since = StateUnknown, time.Time{} }

// MaxAbs bounds observations and configured levels: values beyond ±MaxAbs are refused.
// No rubric scale comes near it, and the bound keeps every statistic finite.
const MaxAbs = 1e9

// within reports whether lo ≤ x ≤ hi (false for NaN).
func within(x, lo, hi float64) bool { return x >= lo && x <= hi }

// scale reports whether every x is an acceptable observation or level.
func scale(xs ...float64) bool {
	for _, x := range xs {
		if !within(x, -MaxAbs, MaxAbs) {
			return false
		}
	}
	return true
}

// zQuantile returns the standard normal quantile at p.
func zQuantile(p float64) float64 { return math.Sqrt2 * math.Erfinv(2*p-1) }

// welford is a running mean and sum of squared deviations.
type welford struct {
	N    int64
	Mean float64
	M2   float64
}

func (w *welford) add(x float64) {
	w.N++
	d := x - w.Mean
	w.Mean += d / float64(w.N)
	w.M2 += d * (x - w.Mean)
}

// merge adds o's observations to w (Chan et al.'s parallel update).
func (w *welford) merge(o welford) {
	if o.N == 0 {
		return
	}
	n := w.N + o.N
	d := o.Mean - w.Mean
	w.Mean += d * float64(o.N) / float64(n)
	w.M2 += o.M2 + d*d*float64(w.N)*float64(o.N)/float64(n)
	w.N = n
}

// variance returns the sample variance, 0 below two observations.
func (w welford) variance() float64 {
	if w.N < 2 {
		return 0
	}
	return math.Max(w.M2, 0) / float64(w.N-1)
}

// valid reports whether w could come from observations within ±MaxAbs.
func (w welford) valid() bool {
	return w.N >= 0 && scale(w.Mean) && within(w.M2, 0, 4*float64(w.N)*MaxAbs*MaxAbs)
}
