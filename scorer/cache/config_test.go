package cache

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"raterd/internal/telemetry"
)

func TestRedisConfigDefaults(t *testing.T) {
	var c RedisConfig
	if err := c.Validate("redis"); err != nil {
		t.Fatal(err)
	}
	want := RedisConfig{KeyPrefix: "raterd:", Timeout: 250 * time.Millisecond, MemoryBytes: 64 << 20, LocalBytes: 32 << 20,
		Breaker: RedisBreakerConfig{Failures: 3, Cooldown: time.Second, MaxCooldown: 30 * time.Second}}
	if c.KeyPrefix != want.KeyPrefix || c.Timeout != want.Timeout || c.MemoryBytes != want.MemoryBytes || c.LocalBytes != want.LocalBytes || c.Breaker != want.Breaker {
		t.Fatalf("defaults: %+v, want %+v", c, want)
	}
	c = RedisConfig{Breaker: RedisBreakerConfig{Cooldown: time.Minute}}
	if err := c.Validate("redis"); err != nil || c.Breaker.MaxCooldown != time.Minute {
		t.Fatalf("max_cooldown below a long cooldown: %v, %+v", err, c.Breaker)
	}
}

func TestRedisConfigValidateNamesTheKey(t *testing.T) {
	tests := []struct {
		name string
		cfg  RedisConfig
		want string
	}{
		{"addr", RedisConfig{Addrs: []string{"redis"}}, "cache.addrs[0]"},
		{"timeout", RedisConfig{Timeout: time.Minute}, "cache.timeout"},
		{"memory", RedisConfig{MemoryBytes: -2}, "cache.memory_bytes"},
		{"no cache with addrs", RedisConfig{Addrs: []string{"a:1"}, MemoryBytes: -1}, "cache.memory_bytes: -1 (no cache) conflicts"},
		{"local", RedisConfig{LocalBytes: -5}, "cache.local_bytes"},
		{"failures", RedisConfig{Breaker: RedisBreakerConfig{Failures: 1001}}, "cache.breaker.failures"},
		{"cooldown", RedisConfig{Breaker: RedisBreakerConfig{Cooldown: -time.Second}}, "cache.breaker.cooldown"},
		{"max cooldown", RedisConfig{Breaker: RedisBreakerConfig{Cooldown: 5 * time.Second, MaxCooldown: time.Second}}, "cache.breaker.max_cooldown"},
		{"sentinel without addrs", RedisConfig{MasterName: "m"}, "cache.master_name"},
		{"db", RedisConfig{Addrs: []string{"a:1"}, DB: 16}, "cache.db"},
		{"cluster db", RedisConfig{Addrs: []string{"a:1", "b:1"}, DB: 1}, "cache.db: a Redis Cluster"},
		{"cluster with master_name", RedisConfig{Addrs: []string{"a:1"}, Cluster: true, MasterName: "m"}, "cache.cluster: true conflicts with cache.master_name"},
		{"cluster without addrs", RedisConfig{Cluster: true}, "cache.cluster: true needs at least one Cluster node in cache.addrs"},
		{"one-seed cluster db", RedisConfig{Addrs: []string{"a:1"}, Cluster: true, DB: 3}, "cache.db: 3, but a Redis Cluster (cache.cluster: true)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate("cache"); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one starting %q", err, tt.want)
			}
		})
	}
	sentinel := RedisConfig{Addrs: []string{"s1:26379", "s2:26379"}, MasterName: "m", DB: 2}
	if err := sentinel.Validate("redis"); err != nil {
		t.Errorf("sentinel with db: %v", err)
	}
}

func TestRedisOptions(t *testing.T) {
	o := RedisOptions(RedisConfig{Addrs: []string{"a:1"}, MasterName: "m", Username: "u", Password: "p", DB: 2, TLS: true})
	if o.MasterName != "m" || o.Username != "u" || o.Password != "p" || o.SentinelUsername != "u" || o.SentinelPassword != "p" ||
		o.DB != 2 || o.TLSConfig == nil || o.ReadTimeout != 0 || o.MaxRetries != 0 {
		t.Fatalf("options: %+v", o)
	}
	if RedisOptions(RedisConfig{Addrs: []string{"a:1"}}).TLSConfig != nil {
		t.Error("TLS set without tls")
	}
	// cluster: true makes one seed address a ClusterClient; without it, a plain client.
	seed := RedisConfig{Addrs: []string{"a:1"}, Cluster: true}
	if o := RedisOptions(seed); !o.IsClusterMode {
		t.Errorf("cluster: true did not set IsClusterMode: %+v", o)
	}
	for _, tc := range []struct {
		cfg  RedisConfig
		want string
	}{
		{seed, "*redis.ClusterClient"},
		{RedisConfig{Addrs: []string{"a:1"}}, "*redis.Client"},
		{RedisConfig{Addrs: []string{"a:1", "b:1"}}, "*redis.ClusterClient"},
		{RedisConfig{Addrs: []string{"a:1"}, MasterName: "m"}, "*redis.Client"},
	} {
		c := redis.NewUniversalClient(RedisOptions(tc.cfg))
		if got := fmt.Sprintf("%T", c); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.cfg.Addrs, got, tc.want)
		}
		_ = c.Close()
	}
}

func TestNewWithoutRedis(t *testing.T) {
	c, closers, desc := New(context.Background(), RedisConfig{MemoryBytes: 8 << 20}, telemetry.Settings{})
	if _, ok := c.(*Memory); !ok || len(closers) != 0 || desc != "in-process (8 MiB)" {
		t.Errorf("memory: %T %v %q", c, closers, desc)
	}
	c, closers, desc = New(context.Background(), RedisConfig{MemoryBytes: -1}, telemetry.Settings{})
	if c != nil || len(closers) != 0 || desc != "off" {
		t.Errorf("off: %v %v %q", c, closers, desc)
	}
}
