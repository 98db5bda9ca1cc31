package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the shared cache tier on a Redis server (or Cluster/Sentinel through go-redis's
// universal client). Lookups are one pipelined batch of GETs; fills one of SET PX.
//
// Every value is stored in an envelope, [8-byte big-endian unix-nanosecond expiry]
// [payload], so that a reader knows how long the value has left (Tiered copies hits into
// its local tier for exactly that long). A stored value that is not a live envelope (an
// older format, corruption, an expiry already past) reads as a miss, never as an error.
//
// Redis keeps no state of its own beyond the client; it is safe for concurrent use.
type Redis struct {
	client redis.UniversalClient
	prefix string
	now    func() time.Time // envelope clock; time.Now outside tests
}

// NewRedis wraps a connected client; keys are stored under prefix.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix, now: time.Now}
}

// GetMany implements Cache with one pipelined batch of GETs: one round trip on a single
// server, one per node on a Cluster (where a multi-key MGET would fail across slots).
func (r *Redis) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	items, err := r.GetManyTTL(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(items))
	for i, it := range items {
		out[i] = it.Value
	}
	return out, nil
}

// GetManyTTL is GetMany that also returns when each hit expires, in one pipelined round
// trip. A miss is an Item with a nil Value. The call fails as a whole (nil items) when the
// round trip does; a key holding a value of another type or format is a miss.
func (r *Redis) GetManyTTL(ctx context.Context, keys []string) ([]Item, error) {
	if len(keys) == 0 {
		return []Item{}, nil
	}
	pipe := r.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, r.prefix+k)
	}
	// Exec reports the first failed command; each command's own error is examined below,
	// where redis.Nil (a miss) and WRONGTYPE (not our value) are not failures.
	_, _ = pipe.Exec(ctx)
	now := r.now()
	out := make([]Item, len(keys))
	for i, c := range cmds {
		b, err := c.Bytes()
		switch {
		case err == nil:
			if exp, payload, ok := decodeEnvelope(b, now); ok {
				out[i] = Item{Value: payload, Expires: exp}
			}
		case errors.Is(err, redis.Nil), isWrongType(err):
		default:
			r.RefreshTopology(ctx)
			return nil, fmt.Errorf("redis pipelined GET of %d keys: %w", len(keys), err)
		}
	}
	return out, nil
}

// SetMany implements Cache with one pipelined round trip of SET PX, each value in its
// envelope. Entries with a non-positive TTL are skipped (Redis would keep them forever);
// a TTL over a year is cut to a year, the most an envelope may carry.
func (r *Redis) SetMany(ctx context.Context, entries []Entry) error {
	now := r.now()
	pipe := r.client.Pipeline()
	n := 0
	for _, e := range entries {
		if e.TTL <= 0 {
			continue
		}
		ttl := min(e.TTL, maxEnvelopeTTL)
		pipe.Set(ctx, r.prefix+e.Key, encodeEnvelope(now.Add(ttl), e.Value), ttl)
		n++
	}
	if n == 0 {
		return nil
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		r.RefreshTopology(ctx)
		errs := []error{err}
		for _, c := range cmds {
			if c.Err() != nil && c.Err() != err {
				errs = append(errs, c.Err())
			}
		}
		return fmt.Errorf("redis pipelined SET of %d keys: %w", n, errors.Join(errs...))
	}
	return nil
}

// RefreshTopology asks a Redis Cluster client to reload its map of slots to nodes (a no-op
// on one server or Sentinel, whose client follows failovers itself). Redis calls it after
// a failed round trip, and Tiered on every call its open breaker skips (TopologyRefresher).
// go-redis reloads the map by itself on a MOVED reply, but a master that died answers
// nothing: without this the client keeps sending that master's slots to it until its
// periodic reload (a minute) — TestRedisClusterFailover measured 60s of outage without
// it — and, with the breaker open, nothing fails to prompt a reload, so the first trial
// after the promotion would still go to the dead master. The reload runs in the
// background, at most one per 200ms inside go-redis, so calling it per batch is cheap.
func (r *Redis) RefreshTopology(ctx context.Context) {
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		cc.ReloadState(ctx)
	}
}

// isWrongType reports a WRONGTYPE reply: the key holds a list, hash, … rather than a
// string, so it is not a value this cache wrote.
func isWrongType(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "WRONGTYPE")
}
