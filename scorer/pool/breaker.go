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
// opens for cooldown. Then, with a health probe, the pool's prober asks the endpoint
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
	cooldown time.Duration // of the current or next opening
	openedAt time.Time
	trial    bool // the half-open trial request is in flight
}

func newBreaker(c Breaker, probe bool) breaker {
	return breaker{threshold: c.Failures, base: c.Cooldown, probe: probe, cooldown: c.Cooldown}
}

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
		if b.failures >= b.threshold {
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
}

func (b *breaker) close() {
	b.state, b.cooldown, b.trial, b.failures = stateClosed, b.base, false, 0
}
