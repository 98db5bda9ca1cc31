package pool

import "time"

// breakerState is the state of an endpoint's circuit breaker.
type breakerState int

// Breaker states, as reported by EndpointStats.Breaker and the breaker metric.
const (
	stateClosed   breakerState = iota // requests flow
	stateHalfOpen                     // the cooldown passed: a probe or one trial request decides
	stateOpen                         // no requests until the cooldown passes
)

// Breaker state names.
const (
	// BreakerClosed: the endpoint takes requests.
	BreakerClosed = "closed"
	// BreakerHalfOpen: the cooldown passed and a health probe or one trial request is
	// deciding.
	BreakerHalfOpen = "half-open"
	// BreakerOpen: the endpoint failed and takes no requests until its cooldown passes.
	BreakerOpen = "open"
)

func (s breakerState) String() string {
	switch s {
	case stateHalfOpen:
		return BreakerHalfOpen
	case stateOpen:
		return BreakerOpen
	}
	return BreakerClosed
}

// breaker is one endpoint's circuit breaker; the pool's mutex guards it.
//
// Closed, it counts consecutive retryable failures; a success resets the count and a
// permanent failure (the request's fault) leaves it alone. At threshold failures it
// opens for cooldown — provided at least 3 in 4 of its last 4×threshold retryable
// outcomes failed. That gate keeps an endpoint that fails a minority of requests at
// random (a degraded but working server: with 30% errors, a run of 5 failures comes
// every few hundred requests) in the pool, where retries absorb its errors; an endpoint
// that stopped working fails every request and still opens, after at most 4×threshold
// failures following a run of successes. Then, with a health probe, the pool's prober asks the endpoint
// (half-open while it asks) and closes or reopens the breaker; without one, the first
// acquire after the cooldown turns it half-open and admits a single trial request whose
// outcome decides. Each reopening doubles the cooldown, up to MaxBreakerCooldown;
// closing resets it. Outcomes of requests admitted before the breaker opened are
// ignored while it is not closed.
type breaker struct {
	threshold int
	base      time.Duration
	probe     bool // a health probe decides, not a trial request

	state    breakerState
	failures int           // consecutive retryable failures while closed
	recent   outcomeWindow // the last 4×threshold retryable outcomes while closed
	cooldown time.Duration // of the current or next opening
	openedAt time.Time
	trial    bool // the half-open trial request is in flight
}

func newBreaker(c Breaker, probe bool) breaker {
	return breaker{threshold: c.Failures, base: c.Cooldown, probe: probe, cooldown: c.Cooldown,
		recent: outcomeWindow{failed: make([]bool, 4*max(c.Failures, 1))}}
}

// outcomeWindow is a ring of the last retryable outcomes, true for a failure.
type outcomeWindow struct {
	failed   []bool
	next, n  int // write position; outcomes held (up to len(failed))
	failures int // failures held
}

func (w *outcomeWindow) add(failed bool) {
	if w.n == len(w.failed) {
		if w.failed[w.next] {
			w.failures--
		}
	} else {
		w.n++
	}
	w.failed[w.next] = failed
	if failed {
		w.failures++
	}
	w.next = (w.next + 1) % len(w.failed)
}

// mostlyFailing: at least 3 in 4 of the outcomes held failed.
func (w *outcomeWindow) mostlyFailing() bool { return 4*w.failures >= 3*w.n }

func (w *outcomeWindow) reset() { w.next, w.n, w.failures = 0, 0, 0 }

// readyAt is when an open breaker's cooldown ends.
func (b *breaker) readyAt() time.Time { return b.openedAt.Add(b.cooldown) }

// admits reports whether the endpoint may take a request now. Without a health probe, an
// open breaker whose cooldown passed turns half-open here (changed is true).
func (b *breaker) admits(now time.Time) (ok, changed bool) {
	switch b.state {
	case stateClosed:
		return true, false
	case stateOpen:
		if b.probe || now.Before(b.readyAt()) {
			return false, false
		}
		b.state, b.trial = stateHalfOpen, false
		changed = true
	}
	return !b.probe && !b.trial, changed
}

// acquired notes that a request was admitted; it reports whether it is the trial.
func (b *breaker) acquired() (trial bool) {
	if b.state == stateHalfOpen && !b.probe {
		b.trial = true
		return true
	}
	return false
}

// success records a success; changed is true when it closed the breaker.
func (b *breaker) success(trial bool) (changed bool) {
	switch {
	case b.state == stateClosed:
		b.failures = 0
		b.recent.add(false)
	case trial && b.state == stateHalfOpen:
		b.close()
		return true
	}
	return false
}

// failure records a retryable failure; changed is true when it opened the breaker.
func (b *breaker) failure(trial bool, now time.Time) (changed bool) {
	switch {
	case b.state == stateClosed:
		b.failures++
		b.recent.add(true)
		if b.failures >= b.threshold && b.recent.mostlyFailing() {
			b.open(now, b.base)
			return true
		}
	case trial && b.state == stateHalfOpen:
		b.open(now, min(2*b.cooldown, MaxBreakerCooldown))
		return true
	}
	return false
}

// neutral records an outcome that says nothing about the endpoint (a permanent failure,
// the caller giving up); a trial request's slot is freed for another trial.
func (b *breaker) neutral(trial bool) {
	if trial && b.state == stateHalfOpen {
		b.trial = false
	}
}

// probing turns an open breaker whose cooldown passed half-open for a health probe.
func (b *breaker) probing() { b.state = stateHalfOpen }

// probed records a health probe's verdict.
func (b *breaker) probed(healthy bool, now time.Time) {
	if healthy {
		b.close()
	} else {
		b.open(now, min(2*b.cooldown, MaxBreakerCooldown))
	}
}

func (b *breaker) open(now time.Time, cooldown time.Duration) {
	b.state, b.openedAt, b.cooldown, b.trial, b.failures = stateOpen, now, cooldown, false, 0
	b.recent.reset()
}

func (b *breaker) close() {
	b.state, b.cooldown, b.trial, b.failures = stateClosed, b.base, false, 0
	b.recent.reset()
}
