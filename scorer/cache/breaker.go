package cache

import (
	"log/slog"
	"sync"
	"time"
)

// BreakerState is the state of Tiered's circuit breaker around the remote tier; its
// numeric value is what the raterd.cache.breaker.state gauge reports.
type BreakerState int

const (
	// BreakerClosed means the remote tier is called.
	BreakerClosed BreakerState = 0
	// BreakerHalfOpen means the cooldown has passed and one trial call is in flight;
	// every other call skips the remote until it ends.
	BreakerHalfOpen BreakerState = 1
	// BreakerOpen means the remote tier failed and is skipped until the cooldown ends.
	BreakerOpen BreakerState = 2
)

// String returns "closed", "half-open" or "open".
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return "unknown"
}

// breaker owns the remote tier's health state; its mutex guards every field below it.
//
// Closed, it counts consecutive failures and opens at threshold. Open, it refuses calls
// until the cooldown has passed, then lets exactly one call through (half-open): success
// closes it and resets the cooldown, failure reopens it for twice the cooldown, at most
// maxCooldown. An outcome that says nothing about the remote (the caller's context ended)
// changes nothing, except that a half-open trial ending so hands the trial to the next
// call. Outcomes of calls admitted before the last state change are ignored (ticket
// generations), so a slow call from before the breaker opened cannot close it.
type breaker struct {
	threshold int
	baseCool  time.Duration
	maxCool   time.Duration
	now       func() time.Time
	logger    *slog.Logger

	mu        sync.Mutex
	state     BreakerState
	gen       uint64 // incremented on every state change
	failures  int    // consecutive failures while closed
	cooldown  time.Duration
	openUntil time.Time
	openedAt  time.Time // when the breaker last left closed
}

// ticket admits one remote call; its outcome is reported with the ticket.
type ticket struct{ gen uint64 }

func newBreaker(threshold int, cooldown, maxCooldown time.Duration, now func() time.Time, logger *slog.Logger) *breaker {
	return &breaker{threshold: threshold, baseCool: cooldown, maxCool: maxCooldown, now: now, logger: logger, cooldown: cooldown}
}

// allow reports whether a remote call may go ahead now.
func (b *breaker) allow() (ticket, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return ticket{b.gen}, true
	case BreakerOpen:
		if b.now().Before(b.openUntil) {
			return ticket{}, false
		}
		b.state = BreakerHalfOpen
		b.gen++
		return ticket{b.gen}, true
	default: // half-open: the one trial is in flight
		return ticket{}, false
	}
}

// success records a call that the remote answered.
func (b *breaker) success(t ticket) {
	b.mu.Lock()
	if t.gen != b.gen {
		b.mu.Unlock()
		return
	}
	b.failures = 0
	if b.state != BreakerHalfOpen {
		b.mu.Unlock()
		return
	}
	b.state = BreakerClosed
	b.gen++
	b.cooldown = b.baseCool
	down := b.now().Sub(b.openedAt)
	b.mu.Unlock()
	b.logger.Info("redis cache available again", "unavailable_for", down)
}

// failure records a call that the remote failed (an error or no answer in time).
func (b *breaker) failure(t ticket, err error) {
	b.mu.Lock()
	if t.gen != b.gen {
		b.mu.Unlock()
		return
	}
	now := b.now()
	switch b.state {
	case BreakerClosed:
		b.failures++
		if b.failures < b.threshold {
			b.mu.Unlock()
			return
		}
		b.state, b.gen, b.failures = BreakerOpen, b.gen+1, 0
		b.cooldown = b.baseCool
		b.openUntil, b.openedAt = now.Add(b.cooldown), now
		cool := b.cooldown
		b.mu.Unlock()
		b.logger.Warn("redis cache unavailable; scoring without it", "err", err, "cooldown", cool)
	case BreakerHalfOpen:
		b.state, b.gen = BreakerOpen, b.gen+1
		b.cooldown = min(2*b.cooldown, b.maxCool)
		b.openUntil = now.Add(b.cooldown)
		cool := b.cooldown
		b.mu.Unlock()
		// Still the same outage, already reported by the Warn that opened the breaker.
		b.logger.Debug("redis cache still unavailable", "err", err, "cooldown", cool)
	default:
		b.mu.Unlock()
	}
}

// neutral records a call that ended without saying anything about the remote.
func (b *breaker) neutral(t ticket) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.gen == b.gen && b.state == BreakerHalfOpen {
		b.state, b.gen = BreakerOpen, b.gen+1 // openUntil has passed: the next call is the trial
	}
}

// current returns the state and the cooldown of the current or last open period.
func (b *breaker) current() (BreakerState, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state, b.cooldown
}
