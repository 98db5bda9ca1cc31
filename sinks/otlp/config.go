package otlp

import (
	"fmt"
	"strings"
	"time"

	"raterd/internal/validate"
)

// Defaults of Config.
const (
	// DefaultTimeout bounds one export, its retries included, and the flush at Close.
	DefaultTimeout = 10 * time.Second
	// DefaultQueueSize is how many events may wait for export.
	DefaultQueueSize = 2048
	// DefaultBatchSize is the most events one export request carries.
	DefaultBatchSize = 512
	// DefaultInterval is the longest an event waits before its batch is exported.
	DefaultInterval = time.Second
	// DefaultMaxExplanationBytes bounds each event's gen_ai.evaluation.explanation.
	DefaultMaxExplanationBytes = 512
)

// Config is the score_events section of raterd.yaml: where and how score rows are sent
// as OTel gen_ai.evaluation.result events. Every field documents its default; Validate
// fills them in.
type Config struct {
	// Endpoint is the OTLP/gRPC collector, host:port. Default: telemetry.otlp_endpoint
	// (the application fills it in before Validate); required when that is unset too.
	Endpoint string `yaml:"endpoint"`
	// Insecure sends plaintext instead of TLS. Default: telemetry.otlp_insecure when the
	// endpoint is inherited from telemetry, false otherwise.
	Insecure *bool `yaml:"insecure"`
	// Headers are sent with every export request (e.g. an API key of a hosted backend).
	// Default none; the exporter then reads OTEL_EXPORTER_OTLP_HEADERS and
	// OTEL_EXPORTER_OTLP_LOGS_HEADERS, so a secret need not be in the file.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one export request, the exporter's retries included, and the flush
	// of the queue at shutdown. Default 10s; at most 5m.
	Timeout time.Duration `yaml:"timeout"`
	// QueueSize is how many events may wait for export. An event that finds the queue
	// full is dropped and counted (raterd.score_events.records{outcome="dropped"});
	// scoring never waits for this channel. Default 2048; at most 1,000,000.
	QueueSize int `yaml:"queue_size"`
	// BatchSize is the most events one export request carries. Default 512; at most
	// queue_size.
	BatchSize int `yaml:"batch_size"`
	// Interval is the longest an event waits in the queue before its batch is exported
	// (a full batch goes at once). Default 1s; at most 1m.
	Interval time.Duration `yaml:"interval"`
	// MaxExplanationBytes bounds each event's gen_ai.evaluation.explanation (cut on a
	// rune boundary, after scoring.max_explanation_bytes cut the stored one). Default 512.
	MaxExplanationBytes int `yaml:"max_explanation_bytes"`
	// SkipUntraced drops rows that carry no valid trace id instead of emitting their
	// events without trace context (they then correlate only by gen_ai.response.id).
	// Skipped rows are counted (outcome="skipped"). Default false.
	SkipUntraced bool `yaml:"skip_untraced"`
}

// Validate fills defaults and rejects bad values; key prefixes the key names in errors
// (e.g. "score_events").
func (c *Config) Validate(key string) error {
	if c.Endpoint == "" {
		return fmt.Errorf("%s.endpoint: required (or set telemetry.otlp_endpoint)", key)
	}
	if !validate.HostPort(c.Endpoint) {
		return fmt.Errorf("%s.endpoint: %q is not host:port (OTLP/gRPC, e.g. 127.0.0.1:4317)", key, c.Endpoint)
	}
	if c.Insecure == nil {
		c.Insecure = new(bool)
	}
	for k := range c.Headers {
		if strings.TrimSpace(k) == "" {
			return fmt.Errorf("%s.headers: an empty header name", key)
		}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Timeout < 0 || c.Timeout > 5*time.Minute {
		return fmt.Errorf("%s.timeout: %s is not in (0, 5m]", key, c.Timeout)
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.QueueSize < 1 || c.QueueSize > 1_000_000 {
		return fmt.Errorf("%s.queue_size: %d is not in 1..1000000", key, c.QueueSize)
	}
	if c.BatchSize == 0 {
		c.BatchSize = min(DefaultBatchSize, c.QueueSize)
	}
	if c.BatchSize < 1 || c.BatchSize > c.QueueSize {
		return fmt.Errorf("%s.batch_size: %d is not in 1..%d (queue_size)", key, c.BatchSize, c.QueueSize)
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Interval < 0 || c.Interval > time.Minute {
		return fmt.Errorf("%s.interval: %s is not in (0, 1m]", key, c.Interval)
	}
	if c.MaxExplanationBytes == 0 {
		c.MaxExplanationBytes = DefaultMaxExplanationBytes
	}
	if c.MaxExplanationBytes < 0 {
		return fmt.Errorf("%s.max_explanation_bytes: %d is negative", key, c.MaxExplanationBytes)
	}
	return nil
}
