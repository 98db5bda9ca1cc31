// Package cache stores judge verdicts so that a repeated (rubric, judge, inputs) key is
// never judged twice while cached. Redis is the shared tier; Memory is an in-process
// tier for the demo and for runs without Redis.
package cache

import (
	"context"
	"time"
)

// Entry is one value to store under a key for TTL.
type Entry struct {
	Key   string
	Value []byte
	TTL   time.Duration
}

// Cache looks up and fills verdicts a whole micro-batch at a time, so that a batch costs
// one round trip for lookups and one for fills, never one per record.
type Cache interface {
	// GetMany returns one value per key, in order; nil marks a miss.
	GetMany(ctx context.Context, keys []string) ([][]byte, error)
	// SetMany stores the entries, each with its own TTL.
	SetMany(ctx context.Context, entries []Entry) error
}
