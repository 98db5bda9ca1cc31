package alert

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Stored is what the Store keeps per alert (rule × series): the lifecycle, small and read
// by every process at every evaluation, and the detector's state (MarshalBinary), read
// only to apply observations. A nil field in an update leaves the stored one as is.
type Stored struct {
	Lifecycle []byte
	Detector  []byte
}

// Op is what an update function decides.
type Op int8

const (
	// OpKeep writes nothing.
	OpKeep Op = iota
	// OpWrite stores the returned fields.
	OpWrite
	// OpDelete removes the alert's state.
	OpDelete
)

// UpdateFunc computes an alert's next state from the current one (zero when absent). It
// may run more than once for one Update, when another process changed the state
// meanwhile, so it must have no effects beyond its return values.
type UpdateFunc func(cur Stored) (next Stored, op Op, err error)

// Store holds the alert state shared by the raterd processes of one deployment. Update is
// atomic per alert: of several processes updating one alert at once, each sees the
// others' committed states, so exactly one performs each lifecycle transition and sends
// its notification. The index lists the alerts any process has seen, so that a process
// also evaluates (for missing data, expiry) series it gets no records of.
type Store interface {
	// Lifecycles returns the stored lifecycle of each id, nil where there is none, in
	// one round trip.
	Lifecycles(ctx context.Context, ids []string) ([][]byte, error)
	// Update applies fn atomically to the state of id; a written state expires after ttl
	// without writes.
	Update(ctx context.Context, id string, ttl time.Duration, fn UpdateFunc) error
	// Index returns every indexed alert id with its entry.
	Index(ctx context.Context) (map[string][]byte, error)
	// AddIndex adds or refreshes index entries.
	AddIndex(ctx context.Context, entries map[string][]byte) error
	// RemoveIndex removes index entries.
	RemoveIndex(ctx context.Context, ids []string) error
}

// MemoryStore is the Store of a single process without Redis: state lives as long as the
// process. It is safe for concurrent use, so two Managers may share one in tests.
type MemoryStore struct {
	mu    sync.Mutex
	state map[string]Stored
	index map[string][]byte
}

// NewMemoryStore returns an empty in-process store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{state: map[string]Stored{}, index: map[string][]byte{}}
}

// Lifecycles implements Store.
func (s *MemoryStore) Lifecycles(_ context.Context, ids []string) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(ids))
	for i, id := range ids {
		out[i] = s.state[id].Lifecycle
	}
	return out, nil
}

// Update implements Store; ttl is not enforced (the Manager expires series itself).
func (s *MemoryStore) Update(_ context.Context, id string, _ time.Duration, fn UpdateFunc) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.state[id]
	next, op, err := fn(cur)
	if err != nil {
		return err
	}
	switch op {
	case OpWrite:
		s.state[id] = merge(cur, next)
	case OpDelete:
		delete(s.state, id)
	}
	return nil
}

// Index implements Store.
func (s *MemoryStore) Index(context.Context) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.index), nil
}

// AddIndex implements Store.
func (s *MemoryStore) AddIndex(_ context.Context, entries map[string][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	maps.Copy(s.index, entries)
	return nil
}

// RemoveIndex implements Store.
func (s *MemoryStore) RemoveIndex(_ context.Context, ids []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.index, id)
	}
	return nil
}

func merge(cur, next Stored) Stored {
	if next.Lifecycle != nil {
		cur.Lifecycle = next.Lifecycle
	}
	if next.Detector != nil {
		cur.Detector = next.Detector
	}
	return cur
}

// RedisStore keeps alert state in Redis, shared by every raterd process of a deployment.
//
// Why Redis and not ClickHouse: the state is a few hundred bytes to a few KB per series,
// read by every process at every evaluation interval and changed by read-modify-write
// transitions that must happen exactly once across processes. Redis gives that directly —
// WATCH/MULTI/EXEC is an optimistic transaction per key, with sub-millisecond round trips
// and key expiry for forgotten series — while ClickHouse has no transactions or
// compare-and-set (ReplacingMergeTree keeps the last version eventually, so two processes
// could both fire), and frequent single-row updates are what it does worst. ClickHouse
// still gets the alert history through the alerts-table channel.
//
// Each alert is one hash, <prefix>state:<id>, with fields l (lifecycle JSON) and d
// (detector state); the index is the hash <prefix>series. Every command touches a single
// key, so it works on one server, with Sentinel, and on a Cluster.
type RedisStore struct {
	client redis.UniversalClient
	prefix string
}

// NewRedisStore stores alert state under prefix (e.g. "raterd:alert:") on client.
func NewRedisStore(client redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{client: client, prefix: prefix}
}

func (s *RedisStore) key(id string) string { return s.prefix + "state:" + id }
func (s *RedisStore) indexKey() string     { return s.prefix + "series" }

// maxConflicts bounds the retries of one update that keeps losing to other processes.
const maxConflicts = 32

// errConflict is returned when an update lost maxConflicts races in a row.
var errConflict = errors.New("alert: too many concurrent updates")

// Lifecycles implements Store with one pipeline of HGETs.
func (s *RedisStore) Lifecycles(ctx context.Context, ids []string) ([][]byte, error) {
	out := make([][]byte, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	pipe := s.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, s.key(id), "l")
	}
	_, _ = pipe.Exec(ctx) // each command's error is examined below
	for i, c := range cmds {
		b, err := c.Bytes()
		switch {
		case err == nil:
			out[i] = b
		case errors.Is(err, redis.Nil):
		default:
			return nil, fmt.Errorf("redis HGET of %d alert states: %w", len(ids), err)
		}
	}
	return out, nil
}

// Update implements Store with WATCH, HMGET, then HSET/PEXPIRE or DEL in MULTI/EXEC,
// retried when another process changed the key in between.
func (s *RedisStore) Update(ctx context.Context, id string, ttl time.Duration, fn UpdateFunc) error {
	key := s.key(id)
	txf := func(tx *redis.Tx) error {
		vals, err := tx.HMGet(ctx, key, "l", "d").Result()
		if err != nil {
			return fmt.Errorf("redis HMGET %s: %w", key, err)
		}
		var cur Stored
		if v, ok := vals[0].(string); ok {
			cur.Lifecycle = []byte(v)
		}
		if v, ok := vals[1].(string); ok {
			cur.Detector = []byte(v)
		}
		next, op, err := fn(cur)
		if err != nil || op == OpKeep {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if op == OpDelete {
				p.Del(ctx, key)
				return nil
			}
			var fields []any
			if next.Lifecycle != nil {
				fields = append(fields, "l", next.Lifecycle)
			}
			if next.Detector != nil {
				fields = append(fields, "d", next.Detector)
			}
			if len(fields) > 0 {
				p.HSet(ctx, key, fields...)
			}
			p.PExpire(ctx, key, ttl)
			return nil
		})
		return err
	}
	for range maxConflicts {
		err := s.client.Watch(ctx, txf, key)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return fmt.Errorf("%w on %s", errConflict, key)
}

// Index implements Store.
func (s *RedisStore) Index(ctx context.Context) (map[string][]byte, error) {
	m, err := s.client.HGetAll(ctx, s.indexKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redis HGETALL %s: %w", s.indexKey(), err)
	}
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out, nil
}

// AddIndex implements Store.
func (s *RedisStore) AddIndex(ctx context.Context, entries map[string][]byte) error {
	if len(entries) == 0 {
		return nil
	}
	fields := make([]any, 0, 2*len(entries))
	for k, v := range entries {
		fields = append(fields, k, v)
	}
	if err := s.client.HSet(ctx, s.indexKey(), fields...).Err(); err != nil {
		return fmt.Errorf("redis HSET %s: %w", s.indexKey(), err)
	}
	return nil
}

// RemoveIndex implements Store.
func (s *RedisStore) RemoveIndex(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := s.client.HDel(ctx, s.indexKey(), ids...).Err(); err != nil {
		return fmt.Errorf("redis HDEL %s: %w", s.indexKey(), err)
	}
	return nil
}
