package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"raterd/consumer"
	"raterd/consumer/conversation"
	"raterd/internal/memlimit"
	"raterd/internal/secret"
	"raterd/record"
	"raterd/scorer"
	"raterd/scorer/cache"
	"raterd/sinks/clickhouse"
	"raterd/sinks/otlp"
)

// Config is raterd.yaml. Every field documents its default; Validate fills them in.
type Config struct {
	// Kafka is the consumer: brokers, topics, group, batching and in-flight bounds.
	Kafka consumer.Config `yaml:"kafka"`
	// Redis is the shared verdict cache. Optional: without addrs, an in-process cache is used.
	Redis cache.RedisConfig `yaml:"redis"`
	// ClickHouse stores scores and dead letters. Optional for `demo` (NDJSON file
	// instead), required for `run` unless scores_file is set.
	ClickHouse *clickhouse.Config `yaml:"clickhouse"`
	// ScoresFile, when set, also writes every score row as a JSON line to this file.
	ScoresFile string `yaml:"scores_file"`
	// MemoryLimit is the Go runtime's soft memory limit for `raterd run` (what GOMEMLIMIT
	// sets; runtime/debug.SetMemoryLimit): bytes, or a number with B, KiB, MiB, GiB or
	// TiB ("512MiB"); "off" for none. The GOMEMLIMIT environment variable, when set, wins.
	// Default: 90% of the memory limit of the cgroup raterd runs in (a container's
	// limit), none outside one (internal/memlimit).
	MemoryLimit string `yaml:"memory_limit"`
	// Judges are the named judge pools evaluators refer to. Required: at least one.
	Judges map[string]*scorer.JudgeConfig `yaml:"judges"`
	// Evaluators are the quality questions asked of every matching record.
	Evaluators []*scorer.Evaluator `yaml:"evaluators"`
	// Scoring bounds what a score row carries.
	Scoring ScoringConfig `yaml:"scoring"`
	// Conversations groups records by conversation id for the evaluators of scope
	// conversation, and says when a conversation closes and how many stay open
	// (docs/conversations.md). Used only when such an evaluator exists.
	Conversations conversation.Config `yaml:"conversations"`
	// Traces groups the spans of one trace (an agent run) for the evaluators of scope
	// trace, as Conversations does for conversations. Used only when such an evaluator
	// exists.
	Traces conversation.Config `yaml:"traces"`
	// Admin serves /metrics, /healthz, /readyz and /report.
	Admin AdminConfig `yaml:"admin"`
	// Telemetry configures OTLP export and logs.
	Telemetry TelemetryConfig `yaml:"telemetry"`
	// Alerting, when set, watches the scores for quality regressions and notifies
	// channels (docs/alerting.md). Default: off.
	Alerting *AlertingConfig `yaml:"alerting"`
	// ScoreEvents, when set, also sends every acknowledged score row as an OTel
	// gen_ai.evaluation.result event over OTLP/gRPC, in the judged span's trace context
	// (sinks/otlp). Its endpoint and insecure default to telemetry.otlp_endpoint and
	// telemetry.otlp_insecure. Default: off.
	ScoreEvents *otlp.Config `yaml:"score_events"`
}

// ScoringConfig bounds score rows.
type ScoringConfig struct {
	// MaxExplanationBytes bounds each stored explanation. Default 1024.
	MaxExplanationBytes int `yaml:"max_explanation_bytes"`
	// Redact masks personal data in the text sent to model and reward judges (and so
	// in the cache key) and in stored explanations: "off" (default) or {types,
	// patterns} (scorer.Redaction, docs/security.md). An evaluator's redact overrides
	// it.
	Redact *scorer.Redaction `yaml:"redact"`
}

// AdminConfig configures the admin HTTP server (docs/configuration.md, "admin").
type AdminConfig struct {
	// Listen is the address of /metrics (Prometheus), /healthz, /readyz and /report (the
	// HTML report).
	// Default "127.0.0.1:9464"; "off" disables the server. An address that is not
	// loopback with neither TokenFile nor TLS.ClientCAFile set is served, with a warning
	// at start.
	Listen string `yaml:"listen"`
	// TokenFile, when set, is a file holding a bearer token (surrounding whitespace
	// trimmed) that /metrics, /report and /debug/pprof/ require ("Authorization: Bearer
	// <token>"), and /healthz and /readyz too with AuthHealth. The file is read at start
	// and again whenever its modification time or size changes, so a rotated Kubernetes
	// secret takes effect without a restart. Default: none.
	TokenFile string `yaml:"token_file"`
	// TLS, when set, serves the admin port over HTTPS, and with client_ca_file requires
	// client certificates (mTLS). Default: plain HTTP.
	TLS *AdminTLSConfig `yaml:"tls"`
	// AuthHealth also puts /healthz and /readyz behind the token or client certificate.
	// Default false: kubelet httpGet probes can send neither, so the health endpoints
	// stay open (they tell only "ok", "ready" or why not).
	AuthHealth bool `yaml:"auth_health"`
	// PProf serves net/http/pprof's profiles under /debug/pprof/ (behind the token or
	// client certificate when set). Default false: the paths answer 404.
	PProf bool `yaml:"pprof"`
}

// AdminTLSConfig is the admin server's TLS: its certificate and, for mTLS, the CA its
// clients' certificates must chain to.
type AdminTLSConfig struct {
	// CertFile is the server certificate (PEM, chain after the leaf). Required.
	CertFile string `yaml:"cert_file"`
	// KeyFile is CertFile's private key (PEM). Required.
	KeyFile string `yaml:"key_file"`
	// ClientCAFile, when set, is a PEM bundle of CAs: a request to a protected endpoint
	// needs a client certificate that chains to one of them (with AuthHealth, every
	// connection does). Default: none, no client certificates asked.
	ClientCAFile string `yaml:"client_ca_file"`
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
// Unknown keys are reported all at once, each by its key path and line with the nearest
// known key (see UnknownKeyError), before anything else is checked.
func ParseConfig(data []byte, getenv func(string) string) (*Config, error) {
	if err := checkKeys(data); err != nil {
		return nil, err
	}
	return parseConfigStrict(data, getenv)
}

// parseConfigStrict is ParseConfig after the key check: a strict decode (unknown keys are
// errors, the safety net for the key check), environment overrides and validation.
func parseConfigStrict(data []byte, getenv func(string) string) (*Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := cfg.applyEnv(getenv); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &cfg, nil
}

// SplitList splits a comma-separated list (an environment variable or a flag), dropping
// blanks and surrounding spaces.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// applyEnv overrides addresses and secrets from the environment, so that secrets never
// need to be in the file and one file serves several deployments. It fails on a value it
// cannot parse, naming the variable.
func (c *Config) applyEnv(getenv func(string) string) error {
	if getenv == nil {
		return nil
	}
	if v := getenv("RATERD_KAFKA_BROKERS"); v != "" {
		c.Kafka.Brokers = SplitList(v)
	}
	if v := getenv("RATERD_KAFKA_SASL_PASSWORD"); v != "" {
		c.Kafka.SASL.Password = secret.Secret(v)
	}
	if v := getenv("RATERD_REDIS_ADDR"); v != "" {
		c.Redis.Addrs = SplitList(v)
	}
	if v := getenv("RATERD_REDIS_CLUSTER"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("RATERD_REDIS_CLUSTER (redis.cluster) is not true or false: %w", err)
		}
		c.Redis.Cluster = b
	}
	if v := getenv("RATERD_REDIS_USERNAME"); v != "" {
		c.Redis.Username = v
	}
	if v := getenv("RATERD_REDIS_PASSWORD"); v != "" {
		c.Redis.Password = secret.Secret(v)
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
			c.ClickHouse.Password = secret.Secret(v)
		}
	}
	for name, j := range c.Judges {
		if j == nil {
			continue
		}
		if v := getenv(scorer.JudgeAPIKeyEnv(name)); v != "" {
			j.APIKey = secret.Secret(v)
		}
	}
	if v := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
		c.Telemetry.OTLPEndpoint = v
	}
	return nil
}

// Validate fills defaults and rejects bad or conflicting values, naming the key.
func (c *Config) Validate() error {
	if err := c.Kafka.Validate("kafka"); err != nil {
		return err
	}
	if err := c.Redis.Validate("redis"); err != nil {
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
	if err := scorer.ValidateJudges("judges", c.Judges); err != nil {
		return err
	}
	if len(c.Evaluators) == 0 {
		return errors.New("evaluators: at least one evaluator is required")
	}
	if _, err := c.Scoring.Redact.Redactor("scoring.redact"); err != nil {
		return err
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
		e.InheritRedaction(c.Scoring.Redact)
		// j is nil when e names no judge: Prepare then reports the missing judge.
		if err := j.PrepareEvaluator(key, e); err != nil {
			return err
		}
		if seen[e.Name] {
			return fmt.Errorf("%s.name: %q is used twice", key, e.Name)
		}
		seen[e.Name] = true
	}
	if err := c.Conversations.Validate("conversations", record.ScopeConversation); err != nil {
		return err
	}
	if err := c.Traces.Validate("traces", record.ScopeTrace); err != nil {
		return err
	}
	if c.Alerting != nil {
		if err := c.Alerting.validate("alerting", c); err != nil {
			return err
		}
	}
	if c.ScoreEvents != nil {
		inherited := c.ScoreEvents.Endpoint == "" && c.Telemetry.OTLPEndpoint != ""
		if inherited {
			c.ScoreEvents.Endpoint = c.Telemetry.OTLPEndpoint
			if c.ScoreEvents.Insecure == nil {
				insecure := c.Telemetry.OTLPInsecure
				c.ScoreEvents.Insecure = &insecure
			}
		}
		if err := c.ScoreEvents.Validate("score_events"); err != nil {
			if inherited {
				return fmt.Errorf("%w (the endpoint is telemetry.otlp_endpoint's)", err)
			}
			return err
		}
	}
	if err := validateMemoryLimit(c.MemoryLimit); err != nil {
		return err
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
	if c.Admin.Listen != "off" {
		if err := c.Admin.validate(); err != nil {
			return err
		}
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

// validateMemoryLimit rejects a memory_limit that is not "off" or a positive size.
func validateMemoryLimit(v string) error {
	if v == "" || v == memlimit.Off {
		return nil
	}
	n, err := memlimit.ParseSize(v)
	if err != nil {
		return fmt.Errorf("memory_limit: %w", err)
	}
	if n == 0 {
		return fmt.Errorf(`memory_limit: 0 is not a limit; "off" turns it off`)
	}
	return nil
}

// Assemblers returns an assembler per scope that some evaluator judges (conversation,
// trace), configured by the conversations and traces sections; none when every evaluator
// judges single records.
func (c *Config) Assemblers(now func() time.Time) ([]*conversation.Assembler, error) {
	var out []*conversation.Assembler
	for _, sc := range []struct {
		scope string
		cfg   conversation.Config
	}{{record.ScopeConversation, c.Conversations}, {record.ScopeTrace, c.Traces}} {
		if !slices.ContainsFunc(c.Evaluators, func(e *scorer.Evaluator) bool { return e.EffectiveScope() == sc.scope && !e.Off() }) {
			continue
		}
		a, err := conversation.New(sc.scope, sc.cfg, now)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}
