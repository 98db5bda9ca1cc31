package pool

import (
	"math"
	"time"
)

// Constants of the adaptive limit.
const (
	overloadBackoff = 0.9  // limit factor on an overload signal (429, 503, 504, timeout)
	latencyBackoff  = 0.95 // limit factor when latency exceeds tolerance × baseline
	minWindow       = 8    // fewest samples the short-term average and a window span
	probeEvery      = 32   // windows between baseline probes
	probeStreak     = 4    // consecutive latency decreases that call for a probe early
	probeHelped     = 0.8  // a probe whose latency fell below this share of short's shows queueing
	// probeKeptThroughput: a probe that kept this share of the throughput at the drained
	// limit shows that the rest of the limit only queued; the limit then drops to the
	// drained limit times probeHeadroom.
	probeKeptThroughput = 0.95
	probeHeadroom       = 1.1
	// slowStartExit is the limit factor when slow start first sees queueing: the limit
	// grew by up to half in the window the latency average lags behind.
	slowStartExit = 0.7
)

// limiter is one endpoint's adaptive in-flight limit; the algorithm is documented on
// Concurrency. The pool's mutex guards it.
type limiter struct {
	fixed     bool
	min, max  float64
	tolerance float64

	limit        float64
	slowStart    bool    // grow by +1 per success (doubling per window) until the first decrease
	short        float64 // smoothed latency, seconds; 0 until the first sample
	baseline     float64 // lowest short since the last probe, seconds
	samples      int     // successes in the current window
	windows      int     // windows since the last probe
	streak       int     // latency decreases in a row
	lastDecrease time.Time

	draining   bool      // a probe is draining the endpoint
	drained    bool      // the endpoint has drained to drainCap; samples count from drainStart
	drainStart time.Time // requests started after it count for the probe
	drainN     int
	drainSum   float64
	before     float64 // short when the probe began
}

func newLimiter(c Concurrency, maxInFlight int) limiter {
	l := limiter{
		fixed:     c.Mode == ModeFixed,
		min:       float64(c.Min),
		max:       float64(maxInFlight),
		tolerance: c.LatencyTolerance,
	}
	l.reset(c.initialLimit(maxInFlight))
	return l
}

// reset starts over at limit n (when a breaker closes): the endpoint may have restarted
// on other hardware, so latency history is dropped too.
func (l *limiter) reset(n int) {
	*l = limiter{fixed: l.fixed, min: l.min, max: l.max, tolerance: l.tolerance}
	if l.fixed {
		l.limit = l.max
	} else {
		l.limit = math.Min(math.Max(float64(n), l.min), l.max)
		l.slowStart = true
	}
}

// current is the number of requests the endpoint may have in flight.
func (l *limiter) current() int {
	if l.draining {
		return l.drainCap()
	}
	return max(int(l.limit), int(l.min), 1)
}

// drainCap is the limit while a probe drains the endpoint.
func (l *limiter) drainCap() int { return max(int(l.limit/l.tolerance), int(l.min), 1) }

// window is the number of samples the short-term average spans.
func (l *limiter) window() float64 { return math.Max(l.limit, minWindow) }

// canDecrease says whether a latency window — short, or before the first success the
// latency of the request at hand — has passed since the last decrease.
func (l *limiter) canDecrease(latency time.Duration, now time.Time) bool {
	span := latency
	if l.short > 0 {
		span = time.Duration(l.short * float64(time.Second))
	}
	return l.lastDecrease.IsZero() || now.Sub(l.lastDecrease) >= span
}

func (l *limiter) decrease(factor float64, now time.Time) {
	l.limit = math.Max(l.limit*factor, l.min)
	l.lastDecrease = now
}

// onOverload records an overload signal from a request that took latency.
func (l *limiter) onOverload(latency time.Duration, now time.Time) {
	if l.fixed || !l.canDecrease(latency, now) {
		return
	}
	l.slowStart = false
	l.decrease(overloadBackoff, now)
}

// onSuccess records a successful request's latency; inFlight is the endpoint's in-flight
// count when it finished, itself included.
func (l *limiter) onSuccess(latency time.Duration, inFlight int, now time.Time) {
	if l.fixed {
		return
	}
	x := math.Max(latency.Seconds(), 1e-9)
	if l.draining {
		if !l.drained {
			// Measure only requests sent once the endpoint holds no more than the drained
			// limit; earlier ones still wait behind the old queue.
			if inFlight-1 <= l.drainCap() {
				l.drained, l.drainStart = true, now
			}
			return
		}
		if !now.Add(-latency).Before(l.drainStart) {
			l.drainN++
			l.drainSum += x
			if l.drainN >= max(minWindow, l.drainCap()) {
				l.probed(l.drainSum / float64(l.drainN))
			}
		}
		return
	}
	n := l.window()
	if l.short == 0 {
		l.short, l.baseline = x, x
	} else {
		l.short += 2 / (n + 1) * (x - l.short)
	}
	l.samples++
	if float64(l.samples) >= n {
		l.samples = 0
		l.windows++
	}
	l.baseline = math.Min(l.baseline, l.short)
	switch {
	case l.short > l.tolerance*l.baseline:
		if l.canDecrease(latency, now) {
			factor := latencyBackoff
			if l.slowStart {
				factor, l.slowStart = slowStartExit, false
			}
			l.decrease(factor, now)
			l.streak++
		}
	case 2*float64(inFlight) >= l.limit:
		l.streak = 0
		step := 1 / l.limit
		if l.slowStart {
			step = 1
		}
		l.limit = math.Min(l.limit+step, l.max)
	default:
		l.streak = 0
	}
	if l.windows >= probeEvery || l.streak >= probeStreak {
		l.draining, l.drained, l.drainStart, l.drainN, l.drainSum, l.before = true, false, now, 0, 0, l.short
	}
}

// probed ends a probe that measured mean latency m at the drained limit c. By Little's
// law the endpoint answers limit/latency requests per second, so comparing c/m with
// limit/before tells whether the extra concurrency bought throughput or only queueing.
func (l *limiter) probed(m float64) {
	c := float64(l.drainCap())
	l.draining = false
	l.samples, l.windows, l.streak = 0, 0, 0
	l.short = m
	kept := (c / m) / (l.limit / l.before) // throughput at c relative to before
	switch {
	case kept >= probeKeptThroughput:
		// As many answers per second with fewer in flight: the rest only queued in the
		// server. Settle just above the drained limit.
		l.limit = math.Min(math.Max(c*probeHeadroom, l.min), l.limit)
		l.baseline = math.Min(l.baseline, m)
	case m >= probeHelped*l.before:
		// Less concurrency did not lower latency: it is not our queue. The server got
		// slower (or faster): its latency now is the baseline.
		l.baseline = m
	default:
		// Latency fell, and throughput with it: the extra concurrency was worth it.
		l.baseline = math.Min(l.baseline, m)
	}
}
