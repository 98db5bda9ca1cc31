package cache

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Redis is the shared cache tier on a Redis server (or Cluster/Sentinel through go-redis's
// universal client). Lookups are one pipelined batch of GETs; fills one of SET EX.
type Redis struct {
	client redis.UniversalClient
	prefix string
}

// NewRedis wraps a connected client; keys are stored under prefix.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

// GetMany implements Cache with one pipelined batch of GETs: one round trip on a single
// server, one per node on a Cluster (where a multi-key MGET would fail across slots).
func (r *Redis) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	pipe := r.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, r.prefix+k)
	}
	// Exec reports redis.Nil for a miss; only other errors fail the lookup.
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redis GET of %d keys: %w", len(keys), err)
	}
	out := make([][]byte, len(keys))
	for i, c := range cmds {
		b, err := c.Bytes()
		switch {
		case err == nil:
			out[i] = b
		case errors.Is(err, redis.Nil):
		default:
			return nil, fmt.Errorf("redis GET: %w", err)
		}
	}
	return out, nil
}

// SetMany implements Cache with one pipelined round trip.
func (r *Redis) SetMany(ctx context.Context, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	pipe := r.client.Pipeline()
	for _, e := range entries {
		pipe.Set(ctx, r.prefix+e.Key, e.Value, e.TTL)
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		var errs []error
		for _, c := range cmds {
			if c.Err() != nil {
				errs = append(errs, c.Err())
			}
		}
		return fmt.Errorf("redis pipelined SET of %d keys: %w", len(entries), errors.Join(append([]error{err}, errs...)...))
	}
	return nil
}
