package cache

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Redis is the shared cache tier on a Redis server (or Cluster/Sentinel through go-redis's
// universal client). Lookups are one MGET; fills are one pipelined batch of SET EX.
type Redis struct {
	client redis.UniversalClient
	prefix string
}

// NewRedis wraps a connected client; keys are stored under prefix.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

// GetMany implements Cache with a single MGET.
func (r *Redis) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = r.prefix + k
	}
	vals, err := r.client.MGet(ctx, full...).Result()
	if err != nil {
		return nil, fmt.Errorf("redis MGET of %d keys: %w", len(keys), err)
	}
	out := make([][]byte, len(keys))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[i] = []byte(s)
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
