// Package cache stores judge verdicts so that a repeated (rubric, judge, inputs) key is
// never judged twice while cached. Redis is the shared tier; Memory is an in-process
// tier for the demo and for runs without Redis; Tiered puts a Memory in front of Redis
// and skips Redis behind a circuit breaker while it fails, so that scoring goes on
// without it.
package cache

import (
	"context"
	"errors"
	"time"
)

// ErrBypassed reports that the remote tier was skipped (its breaker is open) or failed
// for this call. The call still did what the other tiers could: a lookup returns the
// local hits together with an error wrapping ErrBypassed, a fill stored its entries
// locally. Test with errors.Is; the wrapping error names the cause.
var ErrBypassed = errors.New("cache tier bypassed")

// Entry is one value to store under a key for TTL. An entry with a non-positive TTL is
// not stored.
type Entry struct {
	Key   string
	Value []byte
	TTL   time.Duration
}

// Item is a looked-up value with the time it expires. A nil Value marks a miss.
type Item struct {
	Value   []byte
	Expires time.Time
}

// Cache looks up and fills verdicts a whole micro-batch at a time, so that a batch costs
// one round trip for lookups and one for fills, never one per record.
//
// Values returned by GetMany may be shared with the cache: callers must not modify them.
type Cache interface {
	// GetMany returns one value per key, in order; nil marks a miss.
	//
	// GetMany may return non-nil values together with a non-nil error: the hits found in
	// the tiers before the one that failed. Callers use those values and treat the other
	// keys as misses. An error wrapping ErrBypassed means the remote tier was skipped or
	// failed; any error leaves the cache usable for the next call.
	GetMany(ctx context.Context, keys []string) ([][]byte, error)
	// SetMany stores the entries, each with its own TTL. An error wrapping ErrBypassed
	// means the entries were stored in the local tier only.
	SetMany(ctx context.Context, entries []Entry) error
}
