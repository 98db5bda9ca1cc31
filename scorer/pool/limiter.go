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
	probeSamples    = 32   // fewest completions a probe measures the drained limit over
	boostGrowth     = 0.1  // limit growth per success while boosted: a tenth per window
	// probeAgainBelow: after a probe that kept the throughput, another follows at once
	// only if the limit fell below this share of what it was (with a latency_tolerance
	// near 1 the drained limit is nearly the limit, and probing again would never end).
	probeAgainBelow = 0.95
	// A probe waits probeSettle latencies after the drain, then counts completions for
	// probeMeasure latencies: the drained limit costs throughput for that long.
	probeSettle  = 0.5
	probeMeasure = 1.0
	probeHelped  = 0.8 // a probe whose latency fell below this share of short's shows queueing
	// probeKeptThroughput: a probe that kept this share of the throughput at the drained
	// limit shows that the rest of the limit only queued; the limit then drops to the
	// drained limit times probeHeadroom.
	probeKeptThroughput = 0.95
	probeHeadroom       = 1.1
	// startupGain is the rise of the completion rate per window that keeps slow start
	// going; startupStalls windows without it end slow start.
	startupGain       = 1.15
	startupStalls     = 2
	startupProbeAfter = 2 // windows after slow start until the first probe
)

// limiter is one endpoint's adaptive in-flight limit; the algorithm is documented on
// Concurrency. The pool's mutex guards it.
type limiter struct {
	fixed     bool
	min, max  float64
	tolerance float64

	limit        float64
	slowStart    bool    // grow by +1 per success (doubling per window) until the rate stalls or an overload
	boost        bool    // grow by a tenth per window until the first decrease (after a probe)
	short        float64 // smoothed latency, seconds; 0 until the first sample
	baseline     float64 // lowest short since the last probe, seconds
	samples      int     // successes in the current window
	busySamples  int     // of them, those finishing while the endpoint used at least half its limit
	windows      int     // windows since the last probe
	streak       int     // latency decreases in a row
	lastDecrease time.Time

	windowStart time.Time // when the current window began
	lastRate    float64   // completions per second over the last full window; 0: none yet
	windowLimit float64   // the limit when the current window began

	// Slow start ends on throughput, not latency: startRate is the best window rate seen
	// and startLimit the limit its window began at; stalls counts the windows since that
	// did not beat it by startupGain.
	startRate, startLimit float64
	stalls                int

	draining   bool      // a probe is draining the endpoint
	drained    bool      // the endpoint has drained to drainCap; samples count from measureFrom
	drainStart time.Time // requests started after it count for the probe
	// measureFrom is when the probe starts counting completions: probeSettle latencies
	// (before) after the drain, so that what it counts is the steady state at the drained
	// limit, not the short requests that finish first.
	measureFrom time.Time
	drainN      int
	drainSum    float64
	before      float64 // short when the probe began
	beforeRate  float64 // lastRate when the probe began
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
		l.windowLimit = l.limit
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
	l.boost = false
}

// onOverload records an overload signal from a request that took latency.
func (l *limiter) onOverload(latency time.Duration, now time.Time) {
	if l.fixed || !l.canDecrease(latency, now) {
		return
	}
	if l.slowStart {
		// As when slow start ends on throughput: the latency of now is the baseline, and
		// a probe follows soon.
		l.slowStart = false
		if l.short > 0 {
			l.baseline = l.short
		}
		l.windows = max(l.windows, probeEvery-startupProbeAfter)
	}
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
		l.onProbeSample(x, inFlight, now)
		return
	}
	n := l.window()
	if l.short == 0 {
		l.short, l.baseline = x, x
	} else {
		l.short += 2 / (n + 1) * (x - l.short)
	}
	l.samples++
	if 2*float64(inFlight) >= l.limit {
		l.busySamples++
	}
	if l.windowStart.IsZero() {
		l.windowStart = now
	}
	// A window is as many samples as the limit it began with (in slow start the limit
	// grows by one a sample, and a window sized by the current limit would never end).
	if float64(l.samples) >= math.Max(math.Min(l.windowLimit, l.limit), minWindow) {
		el := now.Sub(l.windowStart).Seconds()
		if el > 0 {
			l.lastRate = float64(l.samples) / el
		}
		// A window in which the endpoint mostly used less than half its limit says
		// nothing about the server: the load, not the limit, set its rate.
		appLimited := 2*l.busySamples < l.samples
		l.samples, l.busySamples = 0, 0
		l.windowStart = now
		l.windows++
		if l.slowStart && el > 0 && !appLimited {
			l.startupWindow()
		}
		l.windowLimit = l.limit
	}
	l.baseline = math.Min(l.baseline, l.short)
	switch {
	case !l.slowStart && l.short > l.tolerance*l.baseline:
		if l.canDecrease(latency, now) {
			factor := latencyBackoff
			l.boost = false
			l.decrease(factor, now)
			l.streak++
		}
	case 2*float64(inFlight) >= l.limit:
		l.streak = 0
		step := 1 / l.limit
		switch {
		case l.slowStart:
			step = 1
		case l.boost:
			step = boostGrowth
		}
		l.limit = math.Min(l.limit+step, l.max)
	default:
		l.streak = 0
	}
	// An endpoint that uses less than half its limit (app-limited) is not probed: its
	// throughput is the load's, whatever the limit.
	if (l.windows >= probeEvery || l.streak >= probeStreak) && l.lastRate > 0 && 2*float64(inFlight) >= l.limit {
		l.draining, l.drained, l.drainStart, l.drainN, l.drainSum = true, false, now, 0, 0
		l.before, l.beforeRate = l.short, l.lastRate
	}
}

// onProbeSample counts a completion while a probe drains the endpoint. Requests sent
// before the endpoint held no more than the drained limit still waited behind the old
// queue and are not counted; nor are those of the next probeSettle latencies (the
// requests that finish first are the short ones, whose latencies alone would flatter the
// drained limit). Then completions are counted for at least probeMeasure latencies and
// max(probeSamples, c) of them: their rate is the drained limit's throughput, and their
// mean latency its latency.
func (l *limiter) onProbeSample(x float64, inFlight int, now time.Time) {
	if !l.drained {
		if inFlight-1 <= l.drainCap() {
			l.drained, l.drainStart = true, now
			l.measureFrom = now.Add(time.Duration(probeSettle * l.before * float64(time.Second)))
		}
		return
	}
	if now.Before(l.measureFrom) {
		return
	}
	l.drainN++
	l.drainSum += x
	el := now.Sub(l.measureFrom).Seconds()
	if l.drainN >= max(probeSamples, l.drainCap()) && el >= probeMeasure*l.before {
		l.probed(l.drainSum/float64(l.drainN), float64(l.drainN)/el)
	}
}

// startupWindow ends a window of slow start. On a continuous-batching server latency
// grows with the batch well before the server is full, so slow start watches the
// throughput instead (as BBR's startup watches the delivery rate): while a doubling of the
// limit still raises the window's completion rate by startupGain, it goes on; after
// startupStalls windows that do not, the server was full during the best window, whose
// limit doubled while it ran: the limit settles just above twice the limit that window
// began at, and the latency of now becomes the baseline (the limit's excess queued, and
// the baseline falls with the queue as it drains).
func (l *limiter) startupWindow() {
	if l.lastRate >= l.startRate*startupGain {
		l.startRate, l.startLimit, l.stalls = l.lastRate, l.windowLimit, 0
		return
	}
	if l.stalls++; l.stalls < startupStalls {
		return
	}
	l.slowStart = false
	l.limit = math.Min(math.Max(2*l.startLimit*probeHeadroom, l.min), l.limit)
	l.baseline = l.short
	l.lastDecrease = time.Time{}
	l.windows = probeEvery - startupProbeAfter // the exit limit is an estimate: probe it soon
}

// probed ends a probe that measured mean latency m and throughput rate at the drained
// limit c, against the throughput of the last window before it (beforeRate): did the
// extra concurrency buy throughput, or only queueing?
func (l *limiter) probed(m, rate float64) {
	c := float64(l.drainCap())
	l.draining, l.boost = false, false
	l.samples, l.busySamples, l.windows, l.streak = 0, 0, 0, 0
	l.windowStart = time.Time{}
	l.short = m
	kept := rate / l.beforeRate // throughput at c relative to before
	switch {
	case kept >= probeKeptThroughput:
		// As many answers per second with fewer in flight: the rest only queued in the
		// server. Settle just above the drained limit, and probe again at once: the
		// drained limit may still queue (its latency, measured in its steady state, then
		// holds queueing too), so the probes halve the limit until throughput drops.
		old := l.limit
		l.limit = math.Min(math.Max(c*probeHeadroom, l.min), l.limit)
		l.baseline = math.Min(l.baseline, m)
		if l.limit < probeAgainBelow*old {
			l.windows = probeEvery // the limit fell: probe the new one at once
		}
	case m >= probeHelped*l.before:
		// Less concurrency did not lower latency: it is not our queue. The server got
		// slower (or faster): its latency now is the baseline.
		l.baseline = m
	default:
		// Latency fell, and throughput with it: the extra concurrency was worth it. On a
		// continuous-batching server latency grows with the batch long before the server
		// is full (a decode step costs more per sequence it carries), so the latency at
		// the drained limit becomes the baseline, and the limit grows again, by a tenth
		// per window (boost), until latency reaches tolerance × that; the next
		// probe judges that growth in turn. Only throughput moves the baseline up here,
		// so self-inflicted queueing, which buys none, cannot ratchet it.
		l.baseline = m
		l.boost = true
	}
}
