package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"raterd/consumer"
	"raterd/scorer"
	"raterd/sinks/clickhouse"
)

// Config is raterd.yaml. Every field documents its default; Validate fills them in.
type Config struct {
	// Kafka is the consumer: brokers, topics, group, batching and in-flight bounds.
	Kafka consumer.Config `yaml:"kafka"`
	// Redis is the shared verdict cache. Optional: without addrs, an in-process cache is used.
	Redis RedisConfig `yaml:"redis"`
	// ClickHouse stores scores and dead letters. Optional for `demo` (NDJSON file
	// instead), required for `run` unless scores_file is set.
	ClickHouse *clickhouse.Config `yaml:"clickhouse"`
	// ScoresFile, when set, also writes every score row as a JSON line to this file.
	ScoresFile string `yaml:"scores_file"`
	// Judges are the named judge pools evaluators refer to.
	Judges map[string]*JudgeConfig `yaml:"judges"`
	// Evaluators are the quality questions asked of every matching record.
	Evaluators []*scorer.Evaluator `yaml:"evaluators"`
	// Scoring bounds what a score row carries.
	Scoring ScoringConfig `yaml:"scoring"`
	// Admin serves /metrics, /healthz and /readyz.
	Admin AdminConfig `yaml:"admin"`
	// Telemetry configures OTLP export and logs.
	Telemetry TelemetryConfig `yaml:"telemetry"`
	// Alerting, when set, watches the scores for quality regressions and notifies
	// channels (docs/alerting.md). Default: off.
	Alerting *AlertingConfig `yaml:"alerting"`
}

// RedisConfig configures the verdict cache.
type RedisConfig struct {
	// Addrs are host:port addresses; one for a single server, several for a Cluster, or
	// the Sentinels when MasterName is set. Empty disables Redis. Env override:
	// RATERD_REDIS_ADDR (comma-separated).
	Addrs []string `yaml:"addrs"`
	// MasterName, when set, is the Sentinel master name: Addrs are then Sentinel
	// addresses and raterd follows failovers. Default: none (no Sentinel).
	MasterName string `yaml:"master_name"`
	// Username and Password for Redis ACLs. Env overrides: RATERD_REDIS_USERNAME,
	// RATERD_REDIS_PASSWORD.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// DB is the database number (single server only). Default 0.
	DB int `yaml:"db"`
	// TLS enables TLS. Default false.
	TLS bool `yaml:"tls"`
	// KeyPrefix is prepended to every key. Default "raterd:".
	KeyPrefix string `yaml:"key_prefix"`
	// Timeout bounds one cache round trip; past it the batch is scored without the cache.
	// Default 250ms.
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
	Breaker RedisBreakerConfig `yaml:"breaker"`
}

// RedisBreakerConfig is the cache's circuit breaker: after Failures consecutive failed
// round trips Redis is skipped for Cooldown (doubling per failed retry up to
// MaxCooldown), then one batch tries it again.
type RedisBreakerConfig struct {
	// Failures is the consecutive failed round trips that open the breaker. Default 3.
	Failures int `yaml:"failures"`
	// Cooldown is the first skip period. Default 1s.
	Cooldown time.Duration `yaml:"cooldown"`
	// MaxCooldown caps the doubling cooldown. Default 30s.
	MaxCooldown time.Duration `yaml:"max_cooldown"`
}

// JudgeConfig is one judge pool.
type JudgeConfig struct {
	// Type is "heuristic" (built-in CPU checks), "openai" (a judge model behind an
	// OpenAI-compatible chat-completions server: vLLM, SGLang, TGI, llama.cpp, OpenAI) or
	// "reward" (a reward or classifier model: vLLM pooling/classify, TEI predict).
	// Required.
	Type string `yaml:"type"`
	// The model and pool settings, inline: model, api_key, endpoints or dns, concurrency,
	// timeout, deadline, max_attempts, breaker, rate_limit, and for openai judges
	// max_tokens, logprobs, top_logprobs, format_reminder. Env override for the key:
	// RATERD_JUDGE_<NAME>_API_KEY.
	scorer.OpenAIConfig `yaml:",inline"`
	// Reward holds the reward-specific settings (reward judges only): api, max_batch,
	// label_index, label, input_template.
	Reward *scorer.RewardSettings `yaml:"reward"`
}

// Judge types.
const (
	JudgeHeuristic = "heuristic"
	JudgeOpenAI    = "openai"
	JudgeReward    = "reward"
)

// kind is the scorer's view of a judge type.
func (j *JudgeConfig) kind() scorer.JudgeKind {
	switch j.Type {
	case JudgeHeuristic:
		return scorer.KindHeuristic
	case JudgeReward:
		return scorer.KindReward
	}
	return scorer.KindModel
}

// RewardConfig is the reward judge's config assembled from the shared keys.
func (j *JudgeConfig) RewardConfig() scorer.RewardConfig {
	rc := scorer.RewardConfig{Model: j.Model, APIKey: j.APIKey, Pool: j.OpenAIConfig.Config}
	if j.Reward != nil {
		rc.Settings = *j.Reward
	}
	return rc
}

// ScoringConfig bounds score rows.
type ScoringConfig struct {
	// MaxExplanationBytes bounds each stored explanation. Default 1024.
	MaxExplanationBytes int `yaml:"max_explanation_bytes"`
}

// AdminConfig configures the admin HTTP server.
type AdminConfig struct {
	// Listen is the address of /metrics (Prometheus), /healthz and /readyz.
	// Default "127.0.0.1:9464"; "off" disables the server.
	Listen string `yaml:"listen"`
}

// TelemetryConfig configures traces, metrics export and logs.
type TelemetryConfig struct {
	// OTLPEndpoint, when set (host:port of an OTLP/gRPC collector), exports traces and
	// metrics there. Env override: OTEL_EXPORTER_OTLP_ENDPOINT.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// OTLPInsecure disables TLS to the collector. Default false.
	OTLPInsecure bool `yaml:"otlp_insecure"`
	// ServiceName is the OTel service.name. Default "raterd".
	ServiceName string `yaml:"service_name"`
	// LogLevel is debug, info (default), warn or error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text (default) or json.
	LogFormat string `yaml:"log_format"`
}

// LoadConfig reads a YAML config file, applies environment overrides and validates it.
// Unknown keys are errors, so a typo never silently falls back to a default.
func LoadConfig(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(data, getenv)
}

// ParseConfig parses YAML config bytes, applies environment overrides and validates.
func ParseConfig(data []byte, getenv func(string) string) (*Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg.applyEnv(getenv)
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &cfg, nil
}

func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// judgeEnvName maps a judge name to its env-var form: "pool-a" → "POOL_A".
func judgeEnvName(name string) string {
	var b strings.Builder
	lastUnderscore := true
	for _, r := range strings.ToUpper(name) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			lastUnderscore = false
		} else if !lastUnderscore {
			b.WriteByte('_')
			lastUnderscore = true
		}
	}
	return strings.TrimSuffix(b.String(), "_")
}

// applyEnv overrides addresses and secrets from the environment, so that secrets never
// need to be in the file and one file serves several deployments.
func (c *Config) applyEnv(getenv func(string) string) {
	if getenv == nil {
		return
	}
	if v := getenv("RATERD_KAFKA_BROKERS"); v != "" {
		c.Kafka.Brokers = SplitList(v)
	}
	if v := getenv("RATERD_REDIS_ADDR"); v != "" {
		c.Redis.Addrs = SplitList(v)
	}
	if v := getenv("RATERD_REDIS_USERNAME"); v != "" {
		c.Redis.Username = v
	}
	if v := getenv("RATERD_REDIS_PASSWORD"); v != "" {
		c.Redis.Password = v
	}
	if v := getenv("RATERD_CLICKHOUSE_ADDR"); v != "" {
		if c.ClickHouse == nil {
			c.ClickHouse = &clickhouse.Config{}
		}
		c.ClickHouse.Addrs = SplitList(v)
	}
	if c.ClickHouse != nil {
		if v := getenv("RATERD_CLICKHOUSE_USER"); v != "" {
			c.ClickHouse.Username = v
		}
		if v := getenv("RATERD_CLICKHOUSE_PASSWORD"); v != "" {
			c.ClickHouse.Password = v
		}
	}
	for name, j := range c.Judges {
		if j == nil {
			continue
		}
		if v := getenv("RATERD_JUDGE_" + judgeEnvName(name) + "_API_KEY"); v != "" {
			j.APIKey = v
		}
	}
	if v := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
		c.Telemetry.OTLPEndpoint = v
	}
}

// Validate fills defaults and rejects bad or conflicting values, naming the key.
func (c *Config) Validate() error {
	if err := c.Kafka.Validate("kafka"); err != nil {
		return err
	}
	if err := c.Redis.validate("redis"); err != nil {
		return err
	}
	if c.ClickHouse != nil {
		if err := c.ClickHouse.Validate("clickhouse"); err != nil {
			return err
		}
	}
	if c.ClickHouse != nil && c.ClickHouse.InsertInterval >= c.Kafka.ShutdownTimeout {
		return fmt.Errorf("clickhouse.insert_interval: %s is not below kafka.shutdown_timeout (%s): a drain would end before the last insert", c.ClickHouse.InsertInterval, c.Kafka.ShutdownTimeout)
	}
	if len(c.Judges) == 0 {
		return errors.New("judges: at least one judge is required")
	}
	for name, j := range c.Judges {
		key := "judges." + name
		if j == nil {
			return fmt.Errorf("%s: empty judge definition", key)
		}
		switch j.Type {
		case JudgeHeuristic:
			if !reflect.DeepEqual(j.OpenAIConfig, scorer.OpenAIConfig{}) || j.Reward != nil {
				return fmt.Errorf("%s: a heuristic judge takes no other keys than type (model, endpoints, pool and reward settings are for openai and reward judges)", key)
			}
		case JudgeOpenAI:
			if j.Reward != nil {
				return fmt.Errorf("%s.reward: only reward judges take reward settings", key)
			}
			if err := j.OpenAIConfig.Validate(key); err != nil {
				return err
			}
		case JudgeReward:
			for _, k := range []struct {
				name string
				set  bool
			}{{"max_tokens", j.MaxTokens != 0}, {"logprobs", j.Logprobs}, {"top_logprobs", j.TopLogprobs != 0}, {"format_reminder", j.FormatReminder != nil}} {
				if k.set {
					return fmt.Errorf("%s.%s: only openai judges take it, not reward judges", key, k.name)
				}
			}
			if j.Reward == nil {
				j.Reward = &scorer.RewardSettings{}
			}
			rc := j.RewardConfig()
			if err := rc.Validate(key); err != nil {
				return err
			}
			j.OpenAIConfig.Config, *j.Reward = rc.Pool, rc.Settings
		case "":
			return fmt.Errorf("%s.type: required (heuristic, openai or reward)", key)
		default:
			return fmt.Errorf("%s.type: %q is not heuristic, openai or reward", key, j.Type)
		}
	}
	if len(c.Evaluators) == 0 {
		return errors.New("evaluators: at least one evaluator is required")
	}
	seen := map[string]bool{}
	for i, e := range c.Evaluators {
		key := fmt.Sprintf("evaluators[%d]", i)
		if e == nil {
			return fmt.Errorf("%s: empty evaluator", key)
		}
		j, ok := c.Judges[e.Judge]
		if e.Judge != "" && !ok {
			return fmt.Errorf("%s (%s).judge: %q is not defined under judges", key, e.Name, e.Judge)
		}
		kind := scorer.KindModel
		if ok {
			kind = j.kind()
		}
		if err := e.Prepare(key, kind); err != nil {
			return err
		}
		if ok && j.Type == JudgeReward && e.Task == scorer.TaskClassification && !j.Reward.Labels() {
			return fmt.Errorf("%s (%s).task: judge %q (api %s) returns a number, not a label; use task pointwise or api %s/%s",
				key, e.Name, e.Judge, j.Reward.API, scorer.RewardVLLMClassify, scorer.RewardTEIPredict)
		}
		if seen[e.Name] {
			return fmt.Errorf("%s.name: %q is used twice", key, e.Name)
		}
		seen[e.Name] = true
	}
	if c.Alerting != nil {
		if err := c.Alerting.validate("alerting", c); err != nil {
			return err
		}
	}
	if c.Scoring.MaxExplanationBytes == 0 {
		c.Scoring.MaxExplanationBytes = scorer.DefaultMaxExplanationBytes
	}
	if c.Scoring.MaxExplanationBytes < 0 {
		return fmt.Errorf("scoring.max_explanation_bytes: %d is negative", c.Scoring.MaxExplanationBytes)
	}
	if c.Admin.Listen == "" {
		c.Admin.Listen = "127.0.0.1:9464"
	}
	if c.Admin.Listen != "off" && !strings.Contains(c.Admin.Listen, ":") {
		return fmt.Errorf("admin.listen: %q is not host:port or \"off\"", c.Admin.Listen)
	}
	if c.Telemetry.ServiceName == "" {
		c.Telemetry.ServiceName = "raterd"
	}
	switch c.Telemetry.LogLevel {
	case "":
		c.Telemetry.LogLevel = "info"
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("telemetry.log_level: %q is not debug, info, warn or error", c.Telemetry.LogLevel)
	}
	switch c.Telemetry.LogFormat {
	case "":
		c.Telemetry.LogFormat = "text"
	case "text", "json":
	default:
		return fmt.Errorf("telemetry.log_format: %q is not text or json", c.Telemetry.LogFormat)
	}
	return nil
}

func (r *RedisConfig) validate(key string) error {
	for i, a := range r.Addrs {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			return fmt.Errorf("%s.addrs[%d]: %q is not host:port", key, i, a)
		}
	}
	if r.KeyPrefix == "" {
		r.KeyPrefix = "raterd:"
	}
	if r.Timeout == 0 {
		r.Timeout = 250 * time.Millisecond
	}
	if r.Timeout < 0 || r.Timeout > 10*time.Second {
		return fmt.Errorf("%s.timeout: %s is not in (0, 10s]: a batch may wait this long for the cache", key, r.Timeout)
	}
	if r.MemoryBytes == 0 {
		r.MemoryBytes = 64 << 20
	}
	if r.MemoryBytes < -1 {
		return fmt.Errorf("%s.memory_bytes: %d is not a size or -1 (no cache at all)", key, r.MemoryBytes)
	}
	if r.MemoryBytes == -1 && len(r.Addrs) > 0 {
		return fmt.Errorf("%s.memory_bytes: -1 (no cache) conflicts with addrs; remove addrs to turn the cache off, or set local_bytes: -1 to drop the in-process tier", key)
	}
	if r.LocalBytes == 0 {
		r.LocalBytes = 32 << 20
	}
	if r.LocalBytes < -1 {
		return fmt.Errorf("%s.local_bytes: %d is not a size or -1 (off)", key, r.LocalBytes)
	}
	b := &r.Breaker
	if b.Failures == 0 {
		b.Failures = 3
	}
	if b.Cooldown == 0 {
		b.Cooldown = time.Second
	}
	if b.MaxCooldown == 0 {
		b.MaxCooldown = max(30*time.Second, b.Cooldown)
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
	if r.DB < 0 || r.DB > 15 && len(r.Addrs) > 0 {
		return fmt.Errorf("%s.db: %d is out of range", key, r.DB)
	}
	if r.DB != 0 && len(r.Addrs) > 1 && r.MasterName == "" {
		return fmt.Errorf("%s.db: a Redis Cluster (several addrs) has only database 0", key)
	}
	return nil
}
