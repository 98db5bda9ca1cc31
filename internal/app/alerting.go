package app

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"

	"raterd/internal/telemetry"
	"raterd/scorer/cache"
	"raterd/sinks/alert"
	"raterd/sinks/alert/notify"
)

// AlertingConfig is the alerting section (alert.AlertingConfig: rules, channels, alert
// state), validated against the rest of the raterd configuration.
type AlertingConfig struct {
	alert.AlertingConfig `yaml:",inline"`
}

// validate fills defaults and rejects bad or conflicting values, naming the key; c is the
// whole config, validated up to this section.
func (a *AlertingConfig) validate(key string, c *Config) error {
	env := alert.Env{Redis: len(c.Redis.Addrs) > 0, RedisKeyPrefix: c.Redis.KeyPrefix,
		Channels: notify.Env{KafkaBrokers: c.Kafka.Brokers}}
	if c.ClickHouse != nil {
		env.Channels.ClickHouse, env.Channels.ClickHouseDatabase = true, c.ClickHouse.Database
		env.Channels.ClickHouseInsertSettings = c.ClickHouse.InsertSettings()
	}
	return a.AlertingConfig.Validate(key, env)
}

// buildAlerting builds the alert Manager and its channels (alert.Build) on raterd's
// ClickHouse connection, HTTP client and Redis settings. The closers close the Manager
// first (its final evaluation enqueues), then drain the channels, then the Redis client.
func buildAlerting(ctx context.Context, cfg *Config, ch driver.Conn, httpClient *http.Client, tel telemetry.Settings) (*alert.Manager, []io.Closer, error) {
	deps := alert.Deps{Channels: notify.Deps{HTTPClient: httpClient, ClickHouse: ch, KafkaTransport: cfg.Kafka.Transport}, Telemetry: tel}
	if cfg.Alerting.State == alert.StateRedis {
		deps.Redis = alertRedisOptions(cfg.Redis)
	}
	if cfg.ClickHouse != nil {
		deps.Database = cfg.ClickHouse.Database
	}
	return alert.Build(ctx, &cfg.Alerting.AlertingConfig, deps)
}

// alertRedisOptions are the cache's connection settings (cache.RedisOptions, the one
// builder) with timeouts fit for alert state: off the scoring path, so a slow round trip
// costs nothing but a late evaluation.
func alertRedisOptions(cfg cache.RedisConfig) *redis.UniversalOptions {
	timeout := max(cfg.Timeout, 2*time.Second)
	opts := cache.RedisOptions(cfg)
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = timeout, timeout, timeout
	return opts
}
