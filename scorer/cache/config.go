package cache

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"raterd/internal/secret"
	"raterd/internal/telemetry"
	"raterd/internal/tlsfiles"
	"raterd/internal/validate"
)

// RedisConfig configures the verdict cache (raterd.yaml, redis): Redis behind an
// in-process tier when Addrs is set, else an in-process cache. Validate fills the
// defaults each field states.
type RedisConfig struct {
	// Addrs are host:port addresses; one for a single server, several for a Cluster (or
	// one seed with Cluster), or the Sentinels when MasterName is set. Default: none,
	// which disables Redis. Env override: RATERD_REDIS_ADDR (comma-separated).
	Addrs []string `yaml:"addrs"`
	// Cluster says Addrs are Redis Cluster nodes even when there is only one (a seed, or a
	// managed service's configuration endpoint): the client learns the other nodes from
	// it and follows MOVED and ASK redirects. Without it one address is a single server,
	// which answers MOVED errors for every key of another node's slots. Several addrs
	// without MasterName are a Cluster either way. Not with MasterName; db must be 0.
	// Default false. Env override: RATERD_REDIS_CLUSTER (true or false).
	Cluster bool `yaml:"cluster"`
	// MasterName, when set, is the Sentinel master name: Addrs are then Sentinel
	// addresses and raterd follows failovers. Default: none (no Sentinel).
	MasterName string `yaml:"master_name"`
	// Username is the Redis ACL user, for the Sentinels too. Default: none. Env
	// override: RATERD_REDIS_USERNAME.
	Username string `yaml:"username"`
	// Password is the Redis ACL password, for the Sentinels too. Default: none. Env
	// override: RATERD_REDIS_PASSWORD. Never logged, never in an error, redacted in any
	// print of the config.
	Password secret.Secret `yaml:"password"`
	// PasswordFile is a file that holds the password (a mounted Kubernetes secret; one
	// trailing newline is dropped), read by Validate into Password. Not with Password.
	PasswordFile string `yaml:"password_file"`
	// DB is the database number (single server or Sentinel only). Default 0.
	DB int `yaml:"db"`
	// TLS enables TLS, verified against the system roots (or TLSCAFile). Default false.
	// Setting any other tls_ key turns it on too.
	TLS bool `yaml:"tls"`
	// TLSCAFile is a PEM file of the authorities Redis's certificates are verified against
	// (a private CA); empty: the system roots. Read at start: a changed CA takes a restart.
	TLSCAFile string `yaml:"tls_ca_file"`
	// TLSCertFile and TLSKeyFile are the PEM client certificate and key, for servers that
	// require one (tls-auth-clients yes). Both or neither. Reloaded when their files
	// change, so a renewed certificate is presented on the next connection.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// TLSServerName is the name Redis's certificates are verified for; empty: the host
	// dialled. Set it for Cluster nodes and Sentinel-discovered masters, which are
	// dialled by IP, when their certificates carry a name and no IP SAN.
	TLSServerName string `yaml:"tls_server_name"`
	// KeyPrefix is prepended to every key. Default "raterd:".
	KeyPrefix string `yaml:"key_prefix"`
	// Timeout bounds one cache round trip; past it the batch is scored without the cache.
	// Default 250ms; at most 10s.
	Timeout time.Duration `yaml:"timeout"`
	// MemoryBytes bounds the in-process cache used when Redis is not configured.
	// Default 64 MiB; -1 turns caching off altogether (every judgement is made: for
	// benchmarks and debugging).
	MemoryBytes int `yaml:"memory_bytes"`
	// LocalBytes bounds the in-process tier in front of Redis that answers hot keys
	// without a round trip (least recently used keys are evicted). Default 32 MiB; -1
	// turns the tier off.
	LocalBytes int `yaml:"local_bytes"`
	// Breaker skips Redis while it fails, so that no batch waits on a dead cache.
	// Default: failures 3, cooldown 1s, max_cooldown 30s.
	Breaker RedisBreakerConfig `yaml:"breaker"`

	// tlsKey is the section's key Validate was given, for New's TLS config; "" before.
	tlsKey string
	// tlsConfig is the TLS config Validate built; nil without TLS or before Validate.
	tlsConfig *tls.Config
}

// TLSOn reports whether Redis is reached over TLS: tls, or any other tls_ key, is set.
func (r *RedisConfig) TLSOn() bool {
	return r.TLS || r.TLSCAFile != "" || r.TLSCertFile != "" || r.TLSKeyFile != "" || r.TLSServerName != ""
}

// clientTLS builds the TLS config of the tls keys (internal/tlsfiles); key is the
// section's key, for errors; logger gets the warning of a renewed certificate that does
// not load (nil: slog.Default()).
func (r *RedisConfig) clientTLS(key string, logger *slog.Logger) (*tls.Config, error) {
	return tlsfiles.Client{
		CAFile: r.TLSCAFile, CertFile: r.TLSCertFile, KeyFile: r.TLSKeyFile, ServerName: r.TLSServerName, Logger: logger,
	}.Config(tlsfiles.Prefixed(key))
}

// RedisBreakerConfig is the cache's circuit breaker: after Failures consecutive failed
// round trips Redis is skipped for Cooldown (doubling per failed retry up to
// MaxCooldown), then one batch tries it again.
type RedisBreakerConfig struct {
	// Failures is the consecutive failed round trips that open the breaker, 1..1000.
	// Default 3.
	Failures int `yaml:"failures"`
	// Cooldown is the first skip period. Default 1s.
	Cooldown time.Duration `yaml:"cooldown"`
	// MaxCooldown caps the doubling cooldown; at least Cooldown. Default 30s (or
	// Cooldown, if longer).
	MaxCooldown time.Duration `yaml:"max_cooldown"`
}

// Defaults of RedisConfig; its timeout and breaker defaults are TieredOptions'
// (DefaultTimeout, DefaultFailureThreshold, DefaultCooldown, DefaultMaxCooldown).
const (
	// DefaultKeyPrefix is the default key_prefix.
	DefaultKeyPrefix = "raterd:"
	// MaxTimeout is the longest accepted timeout: a batch may wait this long for the cache.
	MaxTimeout = 10 * time.Second
	// DefaultMemoryBytes is the default memory_bytes.
	DefaultMemoryBytes = 64 << 20
	// DefaultLocalBytes is the default local_bytes.
	DefaultLocalBytes = 32 << 20
)

// Validate fills defaults and rejects bad or conflicting values; key is the section's
// config path, "redis", and errors name the full key of the bad value.
func (r *RedisConfig) Validate(key string) error {
	pw, err := secret.Resolve(key+".password", r.Password, "RATERD_REDIS_PASSWORD", key+".password_file", r.PasswordFile)
	if err != nil {
		return err
	}
	r.Password, r.PasswordFile = pw, ""
	r.tlsKey, r.tlsConfig = key, nil
	if r.TLSOn() {
		tc, err := r.clientTLS(key, nil)
		if err != nil {
			return err
		}
		r.tlsConfig = tc
	}
	for i, a := range r.Addrs {
		if !validate.HostPort(a) {
			return fmt.Errorf("%s.addrs[%d]: %q is not host:port", key, i, a)
		}
	}
	if r.KeyPrefix == "" {
		r.KeyPrefix = DefaultKeyPrefix
	}
	if r.Timeout == 0 {
		r.Timeout = DefaultTimeout
	}
	if r.Timeout < 0 || r.Timeout > MaxTimeout {
		return fmt.Errorf("%s.timeout: %s is not in (0, 10s]: a batch may wait this long for the cache", key, r.Timeout)
	}
	if r.MemoryBytes == 0 {
		r.MemoryBytes = DefaultMemoryBytes
	}
	if r.MemoryBytes < -1 {
		return fmt.Errorf("%s.memory_bytes: %d is not a size or -1 (no cache at all)", key, r.MemoryBytes)
	}
	if r.MemoryBytes == -1 && len(r.Addrs) > 0 {
		return fmt.Errorf("%s.memory_bytes: -1 (no cache) conflicts with addrs; remove addrs to turn the cache off, or set local_bytes: -1 to drop the in-process tier", key)
	}
	if r.LocalBytes == 0 {
		r.LocalBytes = DefaultLocalBytes
	}
	if r.LocalBytes < -1 {
		return fmt.Errorf("%s.local_bytes: %d is not a size or -1 (off)", key, r.LocalBytes)
	}
	b := &r.Breaker
	if b.Failures == 0 {
		b.Failures = DefaultFailureThreshold
	}
	if b.Cooldown == 0 {
		b.Cooldown = DefaultCooldown
	}
	if b.MaxCooldown == 0 {
		b.MaxCooldown = max(DefaultMaxCooldown, b.Cooldown)
	}
	switch {
	case b.Failures < 1 || b.Failures > 1000:
		return fmt.Errorf("%s.breaker.failures: %d is not in 1..1000", key, b.Failures)
	case b.Cooldown < 0:
		return fmt.Errorf("%s.breaker.cooldown: %s is negative", key, b.Cooldown)
	case b.MaxCooldown < b.Cooldown:
		return fmt.Errorf("%s.breaker.max_cooldown: %s is below cooldown %s", key, b.MaxCooldown, b.Cooldown)
	}
	if r.MasterName != "" && len(r.Addrs) == 0 {
		return fmt.Errorf("%s.master_name: needs the Sentinel addresses in addrs", key)
	}
	if r.Cluster && r.MasterName != "" {
		return fmt.Errorf("%s.cluster: true conflicts with %s.master_name %q: a Redis Cluster has no Sentinel master; set one of them", key, key, r.MasterName)
	}
	if r.Cluster && len(r.Addrs) == 0 {
		return fmt.Errorf("%s.cluster: true needs at least one Cluster node in %s.addrs", key, key)
	}
	if r.Cluster && r.DB != 0 {
		return fmt.Errorf("%s.db: %d, but a Redis Cluster (%s.cluster: true) has only database 0", key, r.DB, key)
	}
	if r.DB < 0 || r.DB > 15 && len(r.Addrs) > 0 {
		return fmt.Errorf("%s.db: %d is out of range", key, r.DB)
	}
	if r.DB != 0 && len(r.Addrs) > 1 && r.MasterName == "" {
		return fmt.Errorf("%s.db: a Redis Cluster (several addrs) has only database 0", key)
	}
	return nil
}

// RedisOptions are the go-redis universal-client options that reach cfg's servers: the
// addresses (one server, a Cluster — IsClusterMode with Cluster, so that one seed address
// is enough — or Sentinels with MasterName), the ACL user for the
// data nodes and the Sentinels alike, the database and TLS (the config Validate built;
// its client certificate is reloaded when its files change). Timeouts and retries are left
// at go-redis's defaults for the caller to fit to its use; New sets the cache's. Every
// Redis client built from a RedisConfig starts here.
func RedisOptions(cfg RedisConfig) *redis.UniversalOptions {
	opts := &redis.UniversalOptions{
		Addrs:         cfg.Addrs,
		IsClusterMode: cfg.Cluster,
		MasterName:    cfg.MasterName,
		Username:      cfg.Username,
		Password:      cfg.Password.Reveal(),
		// Sentinels usually share the data nodes' ACL; go-redis asks for them apart.
		SentinelUsername: cfg.Username,
		SentinelPassword: cfg.Password.Reveal(),
		DB:               cfg.DB,
	}
	switch {
	case cfg.tlsConfig != nil:
		opts.TLSConfig = cfg.tlsConfig.Clone()
	case cfg.TLSOn():
		// Not validated: build it now; files that do not load (which Validate reports)
		// leave TLS on with the system roots and no client certificate, which fails
		// closed.
		tc, err := cfg.clientTLS("redis", nil)
		if err != nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLSServerName}
		}
		opts.TLSConfig = tc
	}
	return opts
}

// New builds the verdict cache cfg describes; cfg must have passed Validate. With Addrs
// it is Redis behind an in-process tier for hot keys and a circuit breaker, reachable or
// not (a failing Redis is bypassed; one that does not answer at start is logged at Info);
// without, a bounded in-process cache, or none (nil) when MemoryBytes is -1. It returns
// what to close when done, in the order it was opened (close it last to first), and a
// description for logs. Its logs and the tier's metrics go to tel (unset fields mean
// telemetry.Settings.WithDefaults).
func New(ctx context.Context, cfg RedisConfig, tel telemetry.Settings) (Cache, []io.Closer, string) {
	if len(cfg.Addrs) == 0 {
		if cfg.MemoryBytes < 0 {
			return nil, nil, "off"
		}
		return NewMemory(cfg.MemoryBytes), nil, fmt.Sprintf("in-process (%d MiB)", cfg.MemoryBytes>>20)
	}
	tel = tel.WithDefaults()
	opts := RedisOptions(cfg)
	if cfg.tlsConfig != nil {
		// The same files again, with the warning of a renewed certificate that does not
		// load going to this logger.
		if tc, err := cfg.clientTLS(cfg.tlsKey, tel.Logger); err == nil {
			opts.TLSConfig = tc
		}
	}
	opts.DialTimeout = cfg.Timeout * 4
	opts.ReadTimeout = cfg.Timeout
	opts.WriteTimeout = cfg.Timeout
	opts.MaxRetries = -1 // the breaker bypasses a failing cache; retries would only add latency
	client := redis.NewUniversalClient(opts)
	pctx, cancel := context.WithTimeout(ctx, cfg.Timeout*4)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		// Info, not Warn: the cache's breaker logs the outage once when batches meet it.
		tel.Logger.Info("redis not answering at start; the cache bypasses it until it does", "addrs", cfg.Addrs, "err", err)
	}
	var local *Memory
	desc := fmt.Sprintf("redis %v", cfg.Addrs)
	if cfg.LocalBytes > 0 {
		local = NewMemory(cfg.LocalBytes)
		desc += fmt.Sprintf(" behind an in-process tier (%d MiB)", cfg.LocalBytes>>20)
	}
	tiered := NewTiered(local, NewRedis(client, cfg.KeyPrefix), TieredOptions{
		Timeout:          cfg.Timeout,
		FailureThreshold: cfg.Breaker.Failures,
		Cooldown:         cfg.Breaker.Cooldown,
		MaxCooldown:      cfg.Breaker.MaxCooldown,
		Telemetry:        tel,
	})
	return tiered, []io.Closer{client, tiered}, desc
}
