package consumer

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"raterd/internal/validate"
)

// Start positions for a consumer group that has no committed offsets yet.
const (
	StartEarliest = "earliest"
	StartLatest   = "latest"
)

// Config configures the Kafka consumer and the pipeline's bounds.
type Config struct {
	// Brokers are Kafka bootstrap addresses (host:port). Required.
	// Env override: RATERD_KAFKA_BROKERS (comma-separated).
	Brokers []string `yaml:"brokers"`
	// TLS is TLS to the brokers (CA, client certificate for mutual TLS, server name,
	// minimum version). Off by default.
	TLS TLSConfig `yaml:"tls"`
	// SASL is SASL authentication to the brokers (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).
	// Off by default.
	SASL SASLConfig `yaml:"sasl"`
	// Topics are the topics of LLM traffic to read. Required.
	Topics []string `yaml:"topics"`
	// Format is how message values are read, for every topic not in TopicFormats: raterd
	// (default; raterd's JSON record), otlp_proto, otlp_json, otlp_logs_proto,
	// otlp_logs_json, openai, litellm, or auto (detected per message). docs/inputs.md
	// has each format's field map.
	Format string `yaml:"format"`
	// TopicFormats sets the format of single topics (topic → format), overriding Format;
	// every key must be one of Topics.
	TopicFormats map[string]string `yaml:"topic_formats"`
	// MaxRecordsPerMessage caps the records one message may yield (an OTLP batch of
	// GenAI spans); a message over it is dead-lettered whole (reason too_many_records).
	// Default 10000.
	MaxRecordsPerMessage int `yaml:"max_records_per_message"`
	// MaxMessagesPerRecord caps the chat messages of one record: a span or log event with
	// more is skipped and counted (skip reason too_many_messages); a single-record
	// message (raterd, openai, litellm) with more is dead-lettered. Default 1000.
	MaxMessagesPerRecord int `yaml:"max_messages_per_record"`
	// OTLPUnknownModel is the model name given to an OTLP model call that names none —
	// the per-message GenAI events of opentelemetry-instrumentation-openai-v2's default
	// mode carry no model (it is on their span, which travels in another message) — so
	// that they are scored and labelled raterd.model_unknown=true; "skip" skips them
	// instead (counted, skip reason no_model). Default "unknown".
	OTLPUnknownModel string `yaml:"otlp_unknown_model"`
	// GroupID is the consumer group. Default "raterd".
	GroupID string `yaml:"group_id"`
	// StartOffset is where a new group starts: earliest (default) or latest.
	StartOffset string `yaml:"start_offset"`
	// Batch says when a micro-batch is flushed (count, bytes, linger).
	Batch BatchPolicy `yaml:"batch"`
	// Workers is how many batches do their own scoring work at once: the cache lookup,
	// the built-in checks and starting the remote judge calls (scorer.Scorer.Begin). A
	// worker then takes the next batch; the batch waits for its judge calls and its
	// writes (see WriteSlots) on its own, so remote judgements of many batches overlap,
	// bounded by the in-flight limits, and the judge pool is fed continuously. Default 4.
	Workers int `yaml:"workers"`
	// MaxInFlightRecords bounds the messages fetched but not yet done; at the bound fetching
	// pauses. A message that yields several records (an OTLP export) counts once: its
	// records are bounded by MaxRecordsPerMessage, and memory by MaxInFlightBytes (decoded
	// OTLP takes about four times its message bytes). Default 4096.
	MaxInFlightRecords int `yaml:"max_in_flight_records"`
	// MaxInFlightBytes bounds the message bytes fetched but not yet done. Default 64 MiB.
	MaxInFlightBytes int `yaml:"max_in_flight_bytes"`
	// MaxRecordBytes is the size cap of one message value; larger ones are dead-lettered.
	// Default 1 MiB.
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// CommitInterval is how often done offsets are committed (asynchronously, never per
	// message). Default 1s.
	CommitInterval time.Duration `yaml:"commit_interval"`
	// ShutdownTimeout bounds the drain on shutdown: in-flight batches finish and offsets are
	// committed within it; what does not finish is replayed by the next run. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// RetryBackoffMax caps the backoff between retries of a failed sink write. Default 10s.
	RetryBackoffMax time.Duration `yaml:"retry_backoff_max"`
	// PoisonAttempts is how many attempts of a batch a record may be a poison suspect in —
	// one of its judgements failed on a server that is up: on a judge that answered other
	// live calls of the same batch at the time, or with a server error on no other record
	// (see PoisonSuspects) — before it is dead-lettered (reason judge_failed, replayable
	// with raterd dlq replay) so that it no longer holds its partition back. Records
	// failed by a pool that is down or overloaded (refused connections, 429, 503, breakers
	// open) are never suspects: the batch waits for the pool. Default 8; -1 turns it off.
	PoisonAttempts int `yaml:"poison_attempts"`
	// SessionTimeout is how long the group coordinator waits without a heartbeat before
	// it gives a member's partitions to the others: how soon the group recovers from a
	// crashed process, and how long a process restarted after kill -9 waits for its
	// partitions (kafka-go has no static membership: the dead member holds them until its
	// session expires). Heartbeats go every tenth of it, from a goroutine of their own,
	// so slow judging does not delay them. Within the broker's
	// group.min/max.session.timeout.ms (6s..30m by default). Default 10s (kafka-go's own
	// default is 30s; raise it where the network to the brokers drops for seconds).
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// RebalanceTimeout is how long the coordinator waits for every member to rejoin in a
	// rebalance. Default 30s.
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
	// TopicWatchInterval is how often a group member checks that the group owns every
	// partition of the configured topics: a topic created after the group formed, or
	// grown, has partitions no member owns (kafka-go's own watcher misses a topic that
	// appears while the group joins), and the member that sees them rejoins the group so
	// they are assigned. So new topics and partitions are consumed within about this
	// interval plus a rebalance. When a rejoin does not help, the wait doubles each time,
	// up to 5 minutes, with a log line each time. Default 10s; 0 after defaults means the
	// default; at least 1s.
	TopicWatchInterval time.Duration `yaml:"topic_watch_interval"`

	// conn is the connection Validate built of TLS and SASL (nil: plaintext): every
	// Kafka client of raterd connects through it (Dialer, Transport).
	conn *connection
}

// WriteSlots is how many batches may wait on their sinks at once, while the workers go
// on scoring: as many as the in-flight record bound holds full batches, at least Workers.
// The pipeline asks a sink that groups writes (sinks.GroupCommit) to flush when every slot
// is taken, when the in-flight bounds stop fetching, and when fetching ends.
func (c Config) WriteSlots() int {
	return max(c.Workers, c.MaxInFlightRecords/max(c.Batch.MaxRecords, 1))
}

// Validate fills defaults and rejects bad values; key prefixes the key names in errors.
func (c *Config) Validate(key string) error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("%s.brokers: at least one broker is required", key)
	}
	for i, b := range c.Brokers {
		if !validate.HostPort(b) {
			return fmt.Errorf("%s.brokers[%d]: %q is not host:port", key, i, b)
		}
	}
	if err := c.validateConnection(key); err != nil {
		return err
	}
	if len(c.Topics) == 0 {
		return fmt.Errorf("%s.topics: at least one topic is required", key)
	}
	for i, t := range c.Topics {
		if t == "" || strings.HasSuffix(t, ".dlq") {
			return fmt.Errorf("%s.topics[%d]: %q is empty or a dead-letter topic", key, i, t)
		}
		if !validate.KafkaTopic(t) || !validate.KafkaTopic(t+".dlq") { // the topic, and its dead-letter topic
			return fmt.Errorf("%s.topics[%d]: %q is not a Kafka topic name whose dead-letter topic fits (ASCII letters, digits, '.', '_', '-'; at most %d characters)",
				key, i, t, validate.MaxKafkaTopic-len(".dlq"))
		}
	}
	if c.Format == "" {
		c.Format = FormatRaterd
	}
	if err := validFormat(key+".format", c.Format); err != nil {
		return err
	}
	for _, t := range sortedKeys(c.TopicFormats) {
		if !slices.Contains(c.Topics, t) {
			return fmt.Errorf("%s.topic_formats: %q is not one of %s.topics", key, t, key)
		}
		if err := validFormat(fmt.Sprintf("%s.topic_formats[%q]", key, t), c.TopicFormats[t]); err != nil {
			return err
		}
	}
	if c.OTLPUnknownModel == "" {
		c.OTLPUnknownModel = DefaultOTLPUnknownModel
	}
	switch m := c.OTLPUnknownModel; {
	case strings.TrimSpace(m) != m || len(m) > 256 || !utf8.ValidString(m):
		return fmt.Errorf("%s.otlp_unknown_model: %q must be a model name (no surrounding spaces, at most 256 bytes) or %q", key, m, OTLPUnknownModelSkip)
	case strings.EqualFold(m, OTLPUnknownModelSkip) && m != OTLPUnknownModelSkip:
		return fmt.Errorf("%s.otlp_unknown_model: %q: write %q to skip model calls that name no model", key, m, OTLPUnknownModelSkip)
	}
	setDefault(&c.MaxRecordsPerMessage, DefaultMaxRecordsPerMessage)
	setDefault(&c.MaxMessagesPerRecord, DefaultMaxMessagesPerRecord)
	if c.MaxRecordsPerMessage < 1 {
		return fmt.Errorf("%s.max_records_per_message: %d must be at least 1", key, c.MaxRecordsPerMessage)
	}
	if c.MaxMessagesPerRecord < 1 {
		return fmt.Errorf("%s.max_messages_per_record: %d must be at least 1", key, c.MaxMessagesPerRecord)
	}
	if c.GroupID == "" {
		c.GroupID = "raterd"
	}
	if c.StartOffset == "" {
		c.StartOffset = StartEarliest
	}
	if c.StartOffset != StartEarliest && c.StartOffset != StartLatest {
		return fmt.Errorf("%s.start_offset: %q is not earliest or latest", key, c.StartOffset)
	}
	if err := c.Batch.Validate(key + ".batch"); err != nil {
		return err
	}
	setDefault(&c.Workers, 4)
	setDefault(&c.MaxInFlightRecords, 4096)
	setDefault(&c.MaxInFlightBytes, 64<<20)
	setDefault(&c.MaxRecordBytes, DefaultMaxRecordBytes)
	setDefault(&c.PoisonAttempts, 8)
	if c.CommitInterval == 0 {
		c.CommitInterval = time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.RetryBackoffMax == 0 {
		c.RetryBackoffMax = 10 * time.Second
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = 30 * time.Second
	}
	if c.TopicWatchInterval == 0 {
		c.TopicWatchInterval = 10 * time.Second
	}
	switch {
	case c.Workers < 1:
		return fmt.Errorf("%s.workers: %d must be at least 1", key, c.Workers)
	case c.MaxInFlightRecords < c.Batch.MaxRecords:
		return fmt.Errorf("%s.max_in_flight_records: %d is below batch.max_records (%d), so a batch could never fill", key, c.MaxInFlightRecords, c.Batch.MaxRecords)
	case c.MaxRecordBytes < 1:
		return fmt.Errorf("%s.max_record_bytes: %d must be at least 1", key, c.MaxRecordBytes)
	case c.MaxInFlightBytes < c.Batch.MaxBytes:
		return fmt.Errorf("%s.max_in_flight_bytes: %d is below batch.max_bytes (%d), so a batch could never fill by bytes", key, c.MaxInFlightBytes, c.Batch.MaxBytes)
	case c.MaxInFlightBytes < c.MaxRecordBytes:
		return fmt.Errorf("%s.max_in_flight_bytes: %d is below max_record_bytes (%d)", key, c.MaxInFlightBytes, c.MaxRecordBytes)
	case c.CommitInterval < 0:
		return fmt.Errorf("%s.commit_interval: %s is negative", key, c.CommitInterval)
	case c.ShutdownTimeout < 0:
		return fmt.Errorf("%s.shutdown_timeout: %s is negative", key, c.ShutdownTimeout)
	case c.RetryBackoffMax < 0:
		return fmt.Errorf("%s.retry_backoff_max: %s is negative", key, c.RetryBackoffMax)
	case c.PoisonAttempts < -1:
		return fmt.Errorf("%s.poison_attempts: %d is below -1 (-1 turns dead-lettering of failing judgements off)", key, c.PoisonAttempts)
	case c.SessionTimeout < time.Second:
		return fmt.Errorf("%s.session_timeout: %s is below 1s", key, c.SessionTimeout)
	case c.RebalanceTimeout < time.Second:
		return fmt.Errorf("%s.rebalance_timeout: %s is below 1s", key, c.RebalanceTimeout)
	case c.TopicWatchInterval < time.Second:
		return fmt.Errorf("%s.topic_watch_interval: %s is below 1s", key, c.TopicWatchInterval)
	}
	return nil
}

// FormatOf is the input format of a topic: its TopicFormats entry, else Format.
func (c Config) FormatOf(topic string) string {
	if f, ok := c.TopicFormats[topic]; ok {
		return f
	}
	if c.Format == "" {
		return FormatRaterd
	}
	return c.Format
}

// Limits are the decoding limits the config sets.
func (c Config) Limits() Limits {
	unknown := c.OTLPUnknownModel
	if unknown == OTLPUnknownModelSkip {
		unknown = ""
	}
	return Limits{MaxRecordBytes: c.MaxRecordBytes, MaxRecordsPerMessage: c.MaxRecordsPerMessage, MaxMessagesPerRecord: c.MaxMessagesPerRecord, OTLPUnknownModel: unknown}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func setDefault(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}
