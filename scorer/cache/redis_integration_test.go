package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"raterd/internal/telemetry"
	"raterd/internal/testkit"
)

// testPrefix isolates a test's keys on the shared Redis.
func testPrefix(t *testing.T) string {
	return fmt.Sprintf("raterd-test:%s:%d:", t.Name(), time.Now().UnixNano())
}

func TestRedisEnvelopeRoundTripWithTTL(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: testkit.Service(t, "RATERD_TEST_REDIS", "Redis")})
	defer client.Close()
	ctx := context.Background()
	prefix := testPrefix(t)
	now := time.Now().Truncate(time.Millisecond)
	r := NewRedis(client, prefix)
	r.now = func() time.Time { return now }

	err := r.SetMany(ctx, []Entry{
		{Key: "a", Value: []byte(`{"value":4}`), TTL: time.Minute},
		{Key: "empty", Value: []byte{}, TTL: time.Minute},
		{Key: "zero", Value: []byte("z"), TTL: 0},
		{Key: "long", Value: []byte("l"), TTL: 2 * 366 * 24 * time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	items, err := r.GetManyTTL(ctx, []string{"a", "empty", "zero", "long", "absent"})
	if err != nil {
		t.Fatal(err)
	}
	if string(items[0].Value) != `{"value":4}` || !items[0].Expires.Equal(now.Add(time.Minute)) {
		t.Fatalf("a = %q expiring %v, want the payload expiring %v", items[0].Value, items[0].Expires, now.Add(time.Minute))
	}
	if items[1].Value == nil || len(items[1].Value) != 0 {
		t.Fatalf("empty payload = %#v, want a non-nil empty hit", items[1].Value)
	}
	if items[2].Value != nil || items[4].Value != nil {
		t.Fatalf("zero-TTL or absent key hit: %q, %q", items[2].Value, items[4].Value)
	}
	if !items[3].Expires.Equal(now.Add(maxEnvelopeTTL)) {
		t.Fatalf("over-long TTL expires %v, want capped at %v", items[3].Expires, now.Add(maxEnvelopeTTL))
	}

	// On the wire: [8-byte big-endian unix-ns expiry][payload], and Redis expires it too.
	raw, err := client.Get(ctx, prefix+"a").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 8+len(`{"value":4}`) || int64(binary.BigEndian.Uint64(raw)) != now.Add(time.Minute).UnixNano() {
		t.Fatalf("stored value %x is not the envelope", raw)
	}
	if ttl, err := client.PTTL(ctx, prefix+"a").Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("PTTL = %v, %v", ttl, err)
	}

	// Values that are not live envelopes are misses, not errors.
	client.Set(ctx, prefix+"old", `{"value":3,"label":"ok"}`, time.Minute)
	client.Set(ctx, prefix+"short", "abc", time.Minute)
	client.Set(ctx, prefix+"expired", encodeEnvelope(now.Add(-time.Second), []byte("v")), time.Minute)
	client.HSet(ctx, prefix+"hash", "f", "v")
	client.Expire(ctx, prefix+"hash", time.Minute)
	vals, err := r.GetMany(ctx, []string{"old", "short", "expired", "hash", "a"})
	if err != nil {
		t.Fatalf("GetMany over foreign values: %v", err)
	}
	for i, v := range vals[:4] {
		if v != nil {
			t.Fatalf("value %d = %q, want a miss", i, v)
		}
	}
	if string(vals[4]) != `{"value":4}` {
		t.Fatalf("a = %q next to foreign values", vals[4])
	}

	// Through Tiered, the local copy expires with the Redis copy.
	local := NewMemory(1 << 20)
	local.now = func() time.Time { return now }
	tiered := NewTiered(local, r, TieredOptions{Now: func() time.Time { return now }})
	defer tiered.Close()
	if got, err := tiered.GetMany(ctx, []string{"a"}); err != nil || string(got[0]) != `{"value":4}` {
		t.Fatalf("tiered lookup = %q, %v", got, err)
	}
	local.now = func() time.Time { return now.Add(time.Minute) }
	if v, _ := local.GetMany(ctx, []string{"a"}); v[0] == nil {
		t.Fatal("local copy gone before the Redis expiry")
	}
	local.now = func() time.Time { return now.Add(time.Minute + time.Nanosecond) }
	if v, _ := local.GetMany(ctx, []string{"a"}); v[0] != nil {
		t.Fatal("local copy outlived the Redis expiry")
	}
}

func TestTieredOnePipelinePerCallOnRealRedis(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: testkit.Service(t, "RATERD_TEST_REDIS", "Redis")})
	defer client.Close()
	hook := &countingHook{}
	client.AddHook(hook)
	ctx := context.Background()
	local := NewMemory(1 << 20)
	tiered := NewTiered(local, NewRedis(client, testPrefix(t)), TieredOptions{})
	defer tiered.Close()

	entries := make([]Entry, 60)
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
		if i < len(entries) {
			entries[i] = Entry{Key: keys[i], Value: []byte(fmt.Sprintf("v%d", i)), TTL: time.Minute}
		}
	}
	if err := tiered.SetMany(ctx, entries); err != nil {
		t.Fatal(err)
	}
	if hook.roundTrips != 1 || hook.commands != 60 {
		t.Fatalf("fill of 60: %d round trips, %d commands; want 1, 60", hook.roundTrips, hook.commands)
	}
	// Forget half of the local copies: 30 local hits, 70 keys to Redis in one pipeline.
	local2 := NewMemory(1 << 20)
	_ = local2.SetMany(ctx, entries[:30])
	tiered2 := NewTiered(local2, NewRedis(client, tiered.remote.(*Redis).prefix), TieredOptions{})
	defer tiered2.Close()
	got, err := tiered2.GetMany(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if i < 60 && string(v) != fmt.Sprintf("v%d", i) || i >= 60 && v != nil {
			t.Fatalf("key %d = %q", i, v)
		}
	}
	if hook.roundTrips != 2 || hook.commands != 60+70 {
		t.Fatalf("lookup of 100 (30 local): %d round trips, %d commands in all; want 2, 130", hook.roundTrips, hook.commands)
	}
	st := tiered2.Stats()
	if st.RoundTrips != 1 || st.LocalHits != 30 || st.RemoteHits != 30 || st.Misses != 40 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestTieredSurvivesRedisRestart(t *testing.T) {
	srv := testkit.StartPrivateRedis(t)
	client := redis.NewClient(&redis.Options{
		Addr: srv.Addr(), MaxRetries: -1,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
	})
	defer client.Close()
	ctx := context.Background()
	logs := &recordingHandler{}
	const timeout = 250 * time.Millisecond
	remote := NewRedis(client, "raterd-restart:")
	tiered := NewTiered(NewMemory(1<<20), remote, TieredOptions{
		Timeout: timeout, FailureThreshold: 3, Cooldown: 300 * time.Millisecond, MaxCooldown: 2 * time.Second,
		Telemetry: telemetry.Settings{Logger: slog.New(logs)},
	})
	defer tiered.Close()

	// timed runs one call and fails the test if it blocked: well past the timeout.
	timed := func(what string, f func() error) (time.Duration, error) {
		start := time.Now()
		err := f()
		d := time.Since(start)
		if d > 10*timeout {
			t.Fatalf("%s blocked for %s (timeout %s)", what, d, timeout)
		}
		return d, err
	}
	lookup := func(keys ...string) ([][]byte, time.Duration, error) {
		var vals [][]byte
		d, err := timed("lookup", func() error {
			var err error
			vals, err = tiered.GetMany(ctx, keys)
			return err
		})
		return vals, d, err
	}

	if err := tiered.SetMany(ctx, []Entry{{Key: "a", Value: []byte("A"), TTL: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	if err := remote.SetMany(ctx, []Entry{{Key: "r", Value: []byte("R"), TTL: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	if vals, _, err := lookup("a", "r", "m"); err != nil || string(vals[0]) != "A" || string(vals[1]) != "R" || vals[2] != nil {
		t.Fatalf("healthy lookup = %q, %v", vals, err)
	}

	srv.Stop()
	for i := 0; tiered.Stats().BreakerState != "open"; i++ {
		if i == 3 {
			t.Fatalf("breaker %s after 3 failed lookups", tiered.Stats().BreakerState)
		}
		vals, _, err := lookup("a", "r2")
		if !errors.Is(err, ErrBypassed) || string(vals[0]) != "A" || vals[1] != nil {
			t.Fatalf("lookup with Redis down = %q, %v; want the local hit and ErrBypassed", vals, err)
		}
	}
	for range 20 {
		vals, d, err := lookup("a", "r2")
		if !errors.Is(err, ErrBypassed) || string(vals[0]) != "A" {
			t.Fatalf("lookup with the breaker open = %q, %v", vals, err)
		}
		if d > timeout/2 {
			t.Fatalf("lookup with the breaker open took %s; want well under the %s timeout", d, timeout)
		}
	}
	if _, err := timed("fill", func() error {
		return tiered.SetMany(ctx, []Entry{{Key: "b", Value: []byte("B"), TTL: time.Minute}})
	}); !errors.Is(err, ErrBypassed) {
		t.Fatalf("fill with Redis down: %v", err)
	}
	if vals, _, _ := lookup("b"); string(vals[0]) != "B" {
		t.Fatal("fill with Redis down did not reach the local tier")
	}

	srv.Start() // same port, empty (no persistence)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, _, err := lookup("a", "absent") // "absent" is in no tier: every lookup asks Redis
		if err == nil {
			break
		}
		if !errors.Is(err, ErrBypassed) {
			t.Fatalf("lookup while recovering: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("breaker still %s 20s after Redis came back: %v", tiered.Stats().BreakerState, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := tiered.Stats().BreakerState; st != "closed" {
		t.Fatalf("breaker %s after a good lookup", st)
	}
	// Remote hits resume: a value only Redis has, and fills reach Redis again.
	if err := remote.SetMany(ctx, []Entry{{Key: "r3", Value: []byte("R3"), TTL: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	before := tiered.Stats().RemoteHits
	if vals, _, err := lookup("r3"); err != nil || string(vals[0]) != "R3" || tiered.Stats().RemoteHits != before+1 {
		t.Fatalf("lookup after recovery = %q, %v, remote hits %d→%d", vals, err, before, tiered.Stats().RemoteHits)
	}
	if err := tiered.SetMany(ctx, []Entry{{Key: "c", Value: []byte("C"), TTL: time.Minute}}); err != nil {
		t.Fatalf("fill after recovery: %v", err)
	}
	if items, err := remote.GetManyTTL(ctx, []string{"c"}); err != nil || string(items[0].Value) != "C" {
		t.Fatalf("fill after recovery not in Redis: %v, %v", items, err)
	}
	if n := logs.count(slog.LevelWarn, "redis cache unavailable; scoring without it"); n != 1 {
		t.Fatalf("%d Warn records for one outage, want 1", n)
	}
	if n := logs.count(slog.LevelInfo, "redis cache available again"); n != 1 {
		t.Fatalf("%d Info records for one recovery, want 1", n)
	}
}

// TestIntegrationNewBuildsTieredRedis: New with addrs gives Redis behind the local tier,
// reachable through the shared options, and closers that release it.
func TestIntegrationNewBuildsTieredRedis(t *testing.T) {
	cfg := RedisConfig{Addrs: []string{testkit.Service(t, "RATERD_TEST_REDIS", "Redis")}, KeyPrefix: testPrefix(t)}
	if err := cfg.Validate("redis"); err != nil {
		t.Fatal(err)
	}
	c, closers, desc := New(context.Background(), cfg, telemetry.Settings{Logger: slog.New(slog.DiscardHandler)})
	if _, ok := c.(*Tiered); !ok || len(closers) != 2 || desc != fmt.Sprintf("redis %v behind an in-process tier (32 MiB)", cfg.Addrs) {
		t.Fatalf("New: %T, %d closers, %q", c, len(closers), desc)
	}
	ctx := context.Background()
	if err := c.SetMany(ctx, []Entry{{Key: "k", Value: []byte("v"), TTL: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	client := redis.NewUniversalClient(RedisOptions(cfg))
	defer client.Close()
	if n, err := client.Exists(ctx, cfg.KeyPrefix+"k").Result(); err != nil || n != 1 {
		t.Fatalf("the entry is not in Redis: %d, %v", n, err)
	}
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i].Close(); err != nil {
			t.Errorf("close %d: %v", i, err)
		}
	}
}
