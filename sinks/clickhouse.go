package sinks

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/record"
)

// ClickHouseConfig configures the ClickHouse connection.
type ClickHouseConfig struct {
	// Addrs are host:port addresses of the native protocol (port 9000, or 9440 with TLS);
	// several give failover. Env override: RATERD_CLICKHOUSE_ADDR (comma-separated).
	// Required when ClickHouse is enabled.
	Addrs []string `yaml:"addrs"`
	// Database holds raterd's tables. Default "raterd".
	Database string `yaml:"database"`
	// Username and Password authenticate; default user "default" with no password.
	// Env overrides: RATERD_CLICKHOUSE_USER, RATERD_CLICKHOUSE_PASSWORD.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// TLS enables TLS on the native protocol. Default false.
	TLS bool `yaml:"tls"`
	// DialTimeout bounds connecting. Default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// WriteTimeout bounds one insert. Default 30s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// InsertMaxRows is the most score rows one insert carries: the rows of micro-batches
	// written at about the same time are combined into one insert (see GroupCommit).
	// Default 50,000.
	InsertMaxRows int `yaml:"insert_max_rows"`
	// InsertInterval is the longest a micro-batch's rows wait for others to join their
	// insert; a group is also sent when the pipeline has nothing more to add soon (see
	// GroupCommit). Default 1s; below kafka.shutdown_timeout.
	InsertInterval time.Duration `yaml:"insert_interval"`
	// RetentionDays drops score rows and dead letters older than this many days (by
	// event time), through a table TTL applied by `raterd migrate` on servers that have
	// TTL (ClickHouse 19.6+; older servers keep everything and migrate says so).
	// Default 0: keep forever.
	RetentionDays int `yaml:"retention_days"`
}

// Validate fills defaults and rejects bad values; key prefixes the key names in errors.
func (c *ClickHouseConfig) Validate(key string) error {
	if len(c.Addrs) == 0 {
		return fmt.Errorf("%s.addrs: at least one address is required", key)
	}
	for i, a := range c.Addrs {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			return fmt.Errorf("%s.addrs[%d]: %q is not host:port", key, i, a)
		}
	}
	if c.Database == "" {
		c.Database = "raterd"
	}
	if !isIdentifier(c.Database) {
		return fmt.Errorf("%s.database: %q is not a plain identifier", key, c.Database)
	}
	if c.Username == "" {
		c.Username = "default"
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.DialTimeout < 0 {
		return fmt.Errorf("%s.dial_timeout: %s is negative", key, c.DialTimeout)
	}
	if c.WriteTimeout < 0 {
		return fmt.Errorf("%s.write_timeout: %s is negative", key, c.WriteTimeout)
	}
	if c.InsertMaxRows == 0 {
		c.InsertMaxRows = 50_000
	}
	if c.InsertMaxRows < 1 || c.InsertMaxRows > 10_000_000 {
		return fmt.Errorf("%s.insert_max_rows: %d is not in 1..10000000", key, c.InsertMaxRows)
	}
	if c.InsertInterval == 0 {
		c.InsertInterval = time.Second
	}
	if c.InsertInterval < 0 || c.InsertInterval > time.Minute {
		return fmt.Errorf("%s.insert_interval: %s is not in (0, 1m]", key, c.InsertInterval)
	}
	if c.RetentionDays < 0 || c.RetentionDays > 36500 {
		return fmt.Errorf("%s.retention_days: %d is not in 0..36500 (0 keeps everything)", key, c.RetentionDays)
	}
	return nil
}

func isIdentifier(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// OpenClickHouse connects over the native protocol with LZ4 compression and checks the
// server answers.
func OpenClickHouse(ctx context.Context, cfg ClickHouseConfig) (driver.Conn, error) {
	opts := &clickhouse.Options{
		Addr:             cfg.Addrs,
		Auth:             clickhouse.Auth{Username: cfg.Username, Password: cfg.Password},
		DialTimeout:      cfg.DialTimeout,
		ReadTimeout:      cfg.WriteTimeout,
		Compression:      &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
		ClientInfo:       clickhouse.ClientInfo{Products: []struct{ Name, Version string }{{Name: "raterd", Version: "dev"}}},
	}
	if cfg.TLS {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse %v: %w", cfg.Addrs, err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("clickhouse %v: ping: %w", cfg.Addrs, err)
	}
	return conn, nil
}

// scoreColumns is the explicit insert column list: named, so that columns added by later
// migrations (with defaults) never break older writers.
const scoreColumns = "event_time, scored_at, record_id, trace_id, topic, partition, offset, " +
	"model, app, label_keys, label_values, evaluator, rubric_version, judge, " +
	"task_type, score, label, confidence, explanation, status, cached, " +
	"judge_latency_ms, attempts"

// ClickHouseScores writes score rows to <database>.scores, one batched insert per call.
type ClickHouseScores struct {
	conn    driver.Conn
	cfg     ClickHouseConfig
	logger  *slog.Logger
	insertQ string
}

// NewClickHouseScores returns a score sink on an open connection.
func NewClickHouseScores(conn driver.Conn, cfg ClickHouseConfig, logger *slog.Logger) *ClickHouseScores {
	if logger == nil {
		logger = slog.Default()
	}
	return &ClickHouseScores{
		conn: conn, cfg: cfg, logger: logger,
		insertQ: fmt.Sprintf("INSERT INTO %s.scores (%s)", cfg.Database, scoreColumns),
	}
}

// WriteScores implements ScoreSink: one insert for all rows; nil once ClickHouse has
// acknowledged the block.
func (c *ClickHouseScores) WriteScores(ctx context.Context, rows []record.Score) error {
	if len(rows) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
	defer cancel()
	return insertRows(ctx, c.conn, c.insertQ, "score rows", len(rows), func(i int) []any {
		r := &rows[i]
		keys, values := sortedLabels(r.Labels)
		latency := min(max(r.JudgeLatency.Milliseconds(), 0), int64(^uint32(0)))
		return []any{
			r.EventTime, r.ScoredAt, r.RecordID, r.TraceID, r.Source.Topic,
			uint32(max(r.Source.Partition, 0)), uint64(max(r.Source.Offset, 0)),
			r.Model, r.App, keys, values, r.Evaluator, r.RubricVersion, r.Judge,
			r.TaskType, r.Value, r.Label, float32(r.Confidence), r.Explanation, r.Status,
			boolToUint8(r.Cached), uint32(latency), uint16(min(r.Attempts, 65535)),
		}
	})
}

// insertRows sends n rows as one INSERT block and returns once ClickHouse acknowledged it.
// Every raterd insert goes through here: the native protocol sends INSERT data as blocks,
// which works on 18.16 too (an Exec of INSERT … VALUES with arguments hangs there).
func insertRows(ctx context.Context, conn driver.Conn, query, what string, n int, row func(i int) []any) error {
	batch, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return fmt.Errorf("clickhouse: prepare insert of %d %s: %w", n, what, err)
	}
	defer func() { _ = batch.Abort() }()
	for i := range n {
		if err := batch.Append(row(i)...); err != nil {
			return fmt.Errorf("clickhouse: append %s #%d: %w", what, i, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("clickhouse: insert %d %s: %w", n, what, err)
	}
	return nil
}

func boolToUint8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

const deadLetterColumns = "seen_at, topic, partition, offset, reason, error, key, value, attempts"

// ClickHouseDeadLetters writes dead letters to <database>.dead_letters so that users can
// see in SQL what was rejected, why and from where.
type ClickHouseDeadLetters struct {
	conn    driver.Conn
	cfg     ClickHouseConfig
	insertQ string
}

// NewClickHouseDeadLetters returns a dead-letter sink on an open connection.
func NewClickHouseDeadLetters(conn driver.Conn, cfg ClickHouseConfig) *ClickHouseDeadLetters {
	return &ClickHouseDeadLetters{conn: conn, cfg: cfg,
		insertQ: fmt.Sprintf("INSERT INTO %s.dead_letters (%s)", cfg.Database, deadLetterColumns)}
}

// WriteDeadLetters implements DeadLetterSink.
func (c *ClickHouseDeadLetters) WriteDeadLetters(ctx context.Context, letters []record.DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.WriteTimeout)
	defer cancel()
	return insertRows(ctx, c.conn, c.insertQ, "dead letters", len(letters), func(i int) []any {
		d := &letters[i]
		return []any{d.FirstSeen, d.Source.Topic, uint32(max(d.Source.Partition, 0)), uint64(max(d.Source.Offset, 0)),
			d.Reason, d.Error, string(d.Key), string(d.Value), uint16(min(d.Attempts, 65535))}
	})
}
