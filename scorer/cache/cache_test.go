package cache

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"raterd/internal/testkit"
)

func TestMemoryEvictsLeastRecentlyUsedByBytes(t *testing.T) {
	m := NewMemory(3 * (2 + 8 + entryOverhead)) // room for three entries of a 2-byte key and an 8-byte value
	ctx := context.Background()
	set := func(k string) {
		v := make([]byte, 8) // cap 8: the capacity is what is charged
		copy(v, "12345678")
		if err := m.SetMany(ctx, []Entry{{Key: k, Value: v, TTL: time.Hour}}); err != nil {
			t.Fatal(err)
		}
	}
	set("k1")
	set("k2")
	set("k3")
	if got, _ := m.GetMany(ctx, []string{"k1"}); got[0] == nil { // touch k1: k2 is now oldest
		t.Fatal("k1 missing")
	}
	set("k4")
	got, _ := m.GetMany(ctx, []string{"k1", "k2", "k3", "k4"})
	if got[0] == nil || got[1] != nil || got[2] == nil || got[3] == nil {
		t.Fatalf("after eviction: k1 %v k2 %v k3 %v k4 %v (want k2 evicted)", got[0] != nil, got[1] != nil, got[2] != nil, got[3] != nil)
	}
	if m.Len() != 3 {
		t.Fatalf("Len = %d", m.Len())
	}
}

func TestMemoryExpires(t *testing.T) {
	m := NewMemory(1 << 10)
	now := time.Unix(100, 0)
	m.now = func() time.Time { return now }
	_ = m.SetMany(context.Background(), []Entry{{Key: "k", Value: []byte("v"), TTL: time.Minute}})
	now = now.Add(2 * time.Minute)
	if got, _ := m.GetMany(context.Background(), []string{"k"}); got[0] != nil {
		t.Fatal("expired entry returned")
	}
}

// countingHook counts round trips of data commands, leaving out the connection handshake
// (HELLO, CLIENT SETINFO) that go-redis runs on each new pooled connection.
type countingHook struct{ roundTrips, commands int }

func isHandshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select":
		return true
	}
	return false
}

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if isHandshake(cmd) {
			return next(ctx, cmd)
		}
		h.roundTrips++
		h.commands++
		return next(ctx, cmd)
	}
}
func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && isHandshake(cmds[0]) {
			return next(ctx, cmds)
		}
		h.roundTrips++
		h.commands += len(cmds)
		return next(ctx, cmds)
	}
}

func TestRedisOneRoundTripPerBatch(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: testkit.Service(t, "RATERD_TEST_REDIS", "Redis")})
	defer client.Close()
	ctx := context.Background()
	hook := &countingHook{}
	client.AddHook(hook)
	prefix := fmt.Sprintf("raterd-test:%d:", time.Now().UnixNano())
	c := NewRedis(client, prefix)

	keys := make([]string, 50)
	entries := make([]Entry, 25)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
		if i < 25 {
			entries[i] = Entry{Key: keys[i], Value: []byte(fmt.Sprintf("v%d", i)), TTL: time.Minute}
		}
	}
	if err := c.SetMany(ctx, entries); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetMany(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if i < 25 && string(v) != fmt.Sprintf("v%d", i) || i >= 25 && v != nil {
			t.Fatalf("key %d = %q", i, v)
		}
	}
	if hook.roundTrips != 2 {
		t.Fatalf("round trips = %d for one fill and one lookup of a 50-key batch, want 2", hook.roundTrips)
	}
	ttl, err := client.TTL(ctx, prefix+"k0").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("TTL = %v, %v", ttl, err)
	}
}
