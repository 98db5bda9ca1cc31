// Package clickhouse is raterd's ClickHouse side: the connection (Config, Open), the
// score and dead-letter writers (Scores, DeadLetters) with their insert deduplication
// tokens and metrics, the group commit that combines micro-batches into big inserts, the
// schema migrations, and the SQL cookbook (docs/sql.md). All of it runs on ClickHouse
// 18.16 and on current releases; what newer servers add is gated on their version.
package clickhouse

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/internal/chsql"
	"raterd/internal/secret"
	"raterd/internal/telemetry"
	"raterd/internal/tlsfiles"
	"raterd/internal/validate"
	"raterd/record"
	"raterd/sinks"
)

// Config configures the ClickHouse connection.
type Config struct {
	// Addrs are host:port addresses of the native protocol (port 9000, or 9440 with TLS);
	// several give failover. Env override: RATERD_CLICKHOUSE_ADDR (comma-separated).
	// Required when ClickHouse is enabled.
	Addrs []string `yaml:"addrs"`
	// Database holds raterd's tables. Default "raterd".
	Database string `yaml:"database"`
	// Username and Password authenticate; default user "default" with no password.
	// Env overrides: RATERD_CLICKHOUSE_USER, RATERD_CLICKHOUSE_PASSWORD. The password is
	// never logged, never in an error, redacted in any print of the config.
	Username string        `yaml:"username"`
	Password secret.Secret `yaml:"password"`
	// PasswordFile is a file that holds the password (a mounted Kubernetes secret; one
	// trailing newline is dropped), read by Validate into Password. Not with Password.
	PasswordFile string `yaml:"password_file"`
	// TLS enables TLS on the native protocol (the server's tcp_port_secure, usually 9440).
	// The server certificate is verified against the system roots, or TLSCAFile.
	// Default false.
	TLS bool `yaml:"tls"`
	// TLSCAFile is a PEM file of the CA certificates that sign the server's certificate,
	// for a private CA. Needs tls: true.
	TLSCAFile string `yaml:"tls_ca_file"`
	// TLSCertFile and TLSKeyFile are a PEM client certificate and key for servers that
	// require one (mutual TLS). Both or neither; need tls: true.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// TLSServerName is the name the server certificate must carry, when it differs from
	// the host in addrs (for example when connecting by IP). Needs tls: true.
	TLSServerName string `yaml:"tls_server_name"`
	// TLSInsecureSkipVerify turns off verification of the server certificate: anyone on
	// the path can then read and change the traffic. For tests only. Default false.
	TLSInsecureSkipVerify bool `yaml:"tls_insecure_skip_verify"`
	// DialTimeout bounds connecting. Default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// WriteTimeout bounds one insert. Default 30s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// InsertMaxRows is the most score rows one insert carries: the rows of micro-batches
	// written at about the same time are combined into one insert (see GroupCommit).
	// Default 50,000.
	InsertMaxRows int `yaml:"insert_max_rows"`
	// InsertAttempts is how many times one insert is sent before the error goes back to
	// the pipeline (which then retries the batch with backoff). Every attempt of an insert
	// carries the same deduplication token, so on servers that take one (22.2+) an
	// attempt whose rows landed although the answer was lost is absorbed by ClickHouse.
	// Default 3.
	InsertAttempts int `yaml:"insert_attempts"`
	// InsertInterval is the longest a micro-batch's rows wait for others to join their
	// insert; a group is also sent when the pipeline has nothing more to add soon (see
	// GroupCommit). Default 1s; below kafka.shutdown_timeout.
	InsertInterval time.Duration `yaml:"insert_interval"`
	// RetentionDays drops score rows and dead letters older than this many days (by
	// event time), through a table TTL applied by `raterd migrate` on servers that have
	// TTL (ClickHouse 19.6+; older servers keep everything and migrate says so).
	// Default 0: keep forever.
	RetentionDays int `yaml:"retention_days"`
	// Cluster names the cluster of the servers' remote_servers whose shards are
	// replicated (internal_replication true). Set, migrate creates Replicated* tables ON
	// CLUSTER with a Distributed table under each name readers use, and the writers insert
	// through the Distributed tables (docs/design-topology.md). Default empty: one server.
	Cluster string `yaml:"cluster"`
	// ClusterAllHosts names a second cluster listing every host of Cluster as its own
	// one-replica shard, for the ALTER and DROP of the Distributed tables. Default
	// "<cluster>_hosts". Cluster only.
	ClusterAllHosts string `yaml:"cluster_all_hosts"`
	// InsertQuorum is sent as insert_quorum with every insert on a cluster: 0 acknowledges
	// once one replica of each shard has the rows, 2 waits for two (and stops inserts
	// while a replica is down). Default 0. Cluster only.
	InsertQuorum int `yaml:"insert_quorum"`
	// DDLTimeout bounds migrate's wait for every host's answer to one ON CLUSTER
	// statement; a host that has not answered is reported pending. Default 3m. Cluster only.
	DDLTimeout time.Duration `yaml:"ddl_timeout"`
}

// Validate fills defaults and rejects bad values; key prefixes the key names in errors.
func (c *Config) Validate(key string) error {
	if len(c.Addrs) == 0 {
		return fmt.Errorf("%s.addrs: at least one address is required", key)
	}
	for i, a := range c.Addrs {
		if !validate.HostPort(a) {
			return fmt.Errorf("%s.addrs[%d]: %q is not host:port", key, i, a)
		}
	}
	pw, err := secret.Resolve(key+".password", c.Password, "RATERD_CLICKHOUSE_PASSWORD", key+".password_file", c.PasswordFile)
	if err != nil {
		return err
	}
	c.Password, c.PasswordFile = pw, ""
	if c.Database == "" {
		c.Database = chsql.DefaultDatabase
	}
	if !validate.SQLIdentifier(c.Database) {
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
	if c.InsertAttempts == 0 {
		c.InsertAttempts = 3
	}
	if c.InsertAttempts < 1 || c.InsertAttempts > 20 {
		return fmt.Errorf("%s.insert_attempts: %d is not in 1..20", key, c.InsertAttempts)
	}
	if err := c.validateTLS(key); err != nil {
		return err
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
	return c.validateCluster(key)
}

// validateCluster checks the cluster keys and fills their defaults.
func (c *Config) validateCluster(key string) error {
	if c.Cluster == "" {
		for name, set := range map[string]bool{
			"cluster_all_hosts": c.ClusterAllHosts != "", "insert_quorum": c.InsertQuorum != 0, "ddl_timeout": c.DDLTimeout != 0,
		} {
			if set {
				return fmt.Errorf("%s.%s: set, but %s.cluster is empty (one server)", key, name, key)
			}
		}
		return nil
	}
	if !validate.SQLIdentifier(c.Cluster) {
		return fmt.Errorf("%s.cluster: %q is not a plain identifier", key, c.Cluster)
	}
	if c.ClusterAllHosts == "" {
		c.ClusterAllHosts = c.Cluster + "_hosts"
	}
	if !validate.SQLIdentifier(c.ClusterAllHosts) {
		return fmt.Errorf("%s.cluster_all_hosts: %q is not a plain identifier", key, c.ClusterAllHosts)
	}
	if c.ClusterAllHosts == c.Cluster {
		return fmt.Errorf("%s.cluster_all_hosts: %q is the cluster itself; it must list every host as its own shard", key, c.ClusterAllHosts)
	}
	if c.InsertQuorum < 0 || c.InsertQuorum > 10 {
		return fmt.Errorf("%s.insert_quorum: %d is not in 0..10", key, c.InsertQuorum)
	}
	if c.DDLTimeout == 0 {
		c.DDLTimeout = DefaultDDLTimeout
	}
	if c.DDLTimeout < 10*time.Second || c.DDLTimeout > 30*time.Minute {
		return fmt.Errorf("%s.ddl_timeout: %s is not in [10s, 30m]", key, c.DDLTimeout)
	}
	return nil
}

// ClusterNames are the clusters of a validated Config; zero on one server.
func (c Config) ClusterNames() ClusterNames {
	if c.Cluster == "" {
		return ClusterNames{}
	}
	return ClusterNames{Cluster: c.Cluster, AllHosts: c.ClusterAllHosts}
}

// InsertSettings are the settings every insert into raterd's tables carries: on a
// cluster, a synchronous Distributed insert (it returns only once every shard's rows are
// on a replica, so offsets are committed only for stored rows) and the insert quorum;
// nothing on one server. The score writer and the alert notifier both use it.
func (c Config) InsertSettings() ch.Settings {
	return chsql.InsertSettings(c.Cluster != "", c.InsertQuorum)
}

// InsertContext is ctx carrying InsertSettings and extra (extra wins); ctx itself when
// there are none.
func (c Config) InsertContext(ctx context.Context, extra ch.Settings) context.Context {
	settings := c.InsertSettings()
	if len(settings) == 0 && len(extra) == 0 {
		return ctx
	}
	merged := ch.Settings{}
	for k, v := range settings {
		merged[k] = v
	}
	for k, v := range extra {
		merged[k] = v
	}
	return ch.Context(ctx, ch.WithSettings(merged))
}

// validateTLS checks the tls_* keys: they need tls: true, the certificate and key come
// together, and the files must load (so a typo fails at start, not at the first dial).
func (c *Config) validateTLS(key string) error {
	if !c.TLS {
		for name, set := range map[string]bool{
			"tls_ca_file": c.TLSCAFile != "", "tls_cert_file": c.TLSCertFile != "", "tls_key_file": c.TLSKeyFile != "",
			"tls_server_name": c.TLSServerName != "", "tls_insecure_skip_verify": c.TLSInsecureSkipVerify,
		} {
			if set {
				return fmt.Errorf("%s.%s: set, but %s.tls is false (TLS is off)", key, name, key)
			}
		}
		return nil
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return fmt.Errorf("%s.tls_cert_file and %s.tls_key_file: give both or neither", key, key)
	}
	_, err := c.tlsConfig(key)
	return err
}

// tlsConfig builds the client TLS configuration (tlsfiles: the client certificate is
// reloaded when its files change); nil when TLS is off. key prefixes the key names in
// errors.
func (c *Config) tlsConfig(key string) (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	return tlsfiles.Client{
		CAFile: c.TLSCAFile, CertFile: c.TLSCertFile, KeyFile: c.TLSKeyFile,
		ServerName: c.TLSServerName, InsecureSkipVerify: c.TLSInsecureSkipVerify,
	}.Config(tlsfiles.Prefixed(key))
}

// Open connects over the native protocol with LZ4 compression and checks the
// server answers.
func Open(ctx context.Context, cfg Config) (driver.Conn, error) {
	opts := &ch.Options{
		Addr:             cfg.Addrs,
		Auth:             ch.Auth{Username: cfg.Username, Password: cfg.Password.Reveal()},
		DialTimeout:      cfg.DialTimeout,
		ReadTimeout:      cfg.WriteTimeout,
		Compression:      &ch.Compression{Method: ch.CompressionLZ4},
		ConnOpenStrategy: ch.ConnOpenInOrder,
		ClientInfo:       ch.ClientInfo{Products: []struct{ Name, Version string }{{Name: "raterd", Version: "dev"}}},
		// An idle connection would otherwise keep the encode and compression buffers of
		// the largest insert it sent (tens of MiB for a group commit of thousands of
		// rows, per pooled connection); inserts come about once a second, so growing
		// them again costs little.
		FreeBufOnConnRelease: true,
	}
	tc, err := cfg.tlsConfig("clickhouse")
	if err != nil {
		return nil, err
	}
	opts.TLS = tc
	conn, err := ch.Open(opts)
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
const scoreColumns = "event_time, scored_at, record_id, trace_id, span_id, conversation_id, scope, conversation_version, " +
	"topic, partition, offset, last_offset, " +
	"model, app, label_keys, label_values, evaluator, rubric_version, judge, " +
	"task_type, score, label, confidence, explanation, status, cached, " +
	"judge_latency_ms, attempts, turn_count, close_reason"

// Scores writes score rows to <database>.scores, one batched insert per call.
type Scores struct {
	conn    driver.Conn
	cfg     Config
	logger  *slog.Logger
	insertQ string
	// dedup: the server takes insert_deduplication_token (see dedupSupported).
	dedup   bool
	metrics *insertMetrics
}

// NewScores returns a score sink on an open connection. Its logs (failed attempts) go
// to tel's logger, its metrics (raterd.clickhouse.insert.*, table=scores) to tel's meter
// provider; unset fields mean telemetry.Settings.WithDefaults.
func NewScores(conn driver.Conn, cfg Config, tel telemetry.Settings) *Scores {
	tel = tel.WithDefaults()
	return &Scores{
		conn: conn, cfg: cfg, logger: tel.Logger, dedup: dedupSupported(conn),
		insertQ: fmt.Sprintf("INSERT INTO %s.scores (%s)", cfg.Database, scoreColumns),
		metrics: newInsertMetrics(tel.MeterProvider, "scores"),
	}
}

// WriteScores implements ScoreSink: one insert for all rows, sent up to
// cfg.InsertAttempts times with one deduplication token; nil once ClickHouse has
// acknowledged the block.
func (c *Scores) WriteScores(ctx context.Context, rows []record.Score) error {
	return c.writeScoreChunks(ctx, [][]record.Score{rows})
}

// writeScoreChunks is WriteScores of the rows of chunks, in order, as one insert: what a
// GroupCommit hands over, without copying its callers' rows into one slice.
func (c *Scores) writeScoreChunks(ctx context.Context, chunks [][]record.Score) error {
	n := chunkRows(chunks)
	if n == 0 {
		return nil
	}
	token := ""
	if c.dedup {
		token = scoreChunksToken(chunks)
	}
	return sendInsert(ctx, c.cfg, c.logger, c.metrics, token, n, func(ctx context.Context) (int64, error) {
		return insertScores(ctx, c.conn, c.insertQ, chunks)
	})
}

// scoreValues is a row's values in scoreColumns' order: what insertScores stores, column
// by column.
func scoreValues(r *record.Score) []any {
	keys, values := sortedLabels(r.Labels)
	latency := min(max(r.JudgeLatency.Milliseconds(), 0), int64(^uint32(0)))
	return []any{
		r.EventTime, r.ScoredAt, r.RecordID, r.TraceID, r.SpanID, r.ConversationID,
		scopeOf(r), clampUint32(r.Version), r.Source.Topic,
		uint32(max(r.Source.Partition, 0)), uint64(max(r.Source.Offset, 0)), uint64(max(r.LastOffset, 0)),
		r.Model, r.App, keys, values, r.Evaluator, r.RubricVersion, r.Judge,
		r.TaskType, r.Value, r.Label, float32(r.Confidence), r.Explanation, r.Status,
		boolToUint8(r.Cached), uint32(latency), uint16(min(r.Attempts, 65535)),
		clampUint32(r.Turns), r.CloseReason,
	}
}

// scopeOf is the scope column of r: its Scope, or record.ScopeRecord when that is empty.
func scopeOf(r *record.Score) string {
	if r.Scope == "" {
		return record.ScopeRecord
	}
	return r.Scope
}

// clampUint32 is n as a UInt32 column value: negative values are 0, values past the
// column's range its largest.
func clampUint32(n int) uint32 {
	return uint32(min(max(int64(n), 0), int64(^uint32(0))))
}

// dedupSupported reports whether the server takes insert_deduplication_token. The
// version comes from the connection handshake; when it cannot be read, inserts go
// without a token, which only gives up the server-side absorption of retries.
func dedupSupported(conn driver.Conn) bool {
	v, err := conn.ServerVersion()
	if err != nil || v == nil {
		return false
	}
	return serverVersion{int(v.Version.Major), int(v.Version.Minor)}.features().InsertDedup
}

// sendInsert runs send (an insert of n rows that returns their approximate size) up to
// cfg.InsertAttempts times, each bounded by cfg.WriteTimeout and, when token is set,
// carrying it as insert_deduplication_token (with
// deduplicate_blocks_in_dependent_materialized_views, so the score views skip a
// deduplicated block too), and records every attempt in m. It returns the last error once
// the attempts are spent or ctx ends.
func sendInsert(ctx context.Context, cfg Config, logger *slog.Logger, m *insertMetrics, token string, n int,
	send func(ctx context.Context) (int64, error)) error {
	attempts := max(cfg.InsertAttempts, 1)
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, cfg.WriteTimeout)
		var dedup ch.Settings
		if token != "" {
			dedup = ch.Settings{
				"insert_deduplication_token":                         token,
				"deduplicate_blocks_in_dependent_materialized_views": 1,
			}
		}
		actx = cfg.InsertContext(actx, dedup)
		start := time.Now()
		size, err := send(actx)
		cancel()
		err = classify(err)
		permanent := sinks.PermanentClass(err) != ""
		final := err != nil && (ctx.Err() != nil || attempt >= attempts || permanent)
		m.attempt(ctx, n, size, time.Since(start), err, final)
		if err == nil {
			return nil
		}
		if final {
			if permanent {
				logger.Error("clickhouse refused the insert for what it is (permanent); no further attempt of it", "class", sinks.PermanentClass(err), "token", token, "err", err)
			}
			if attempt > 1 {
				return fmt.Errorf("%w (attempt %d of %d)", err, attempt, attempts)
			}
			return err
		}
		logger.Warn("clickhouse insert failed; sending it again", "attempt", attempt, "of", attempts, "token", token, "err", err)
		// Jittered, so that writers that failed together do not retry together.
		wait := backoff/2 + rand.N(backoff)
		backoff *= 2
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// insertRows sends n rows as one INSERT block and returns once ClickHouse acknowledged it.
// Every raterd insert goes through here: the native protocol sends INSERT data as blocks,
// which works on 18.16 too (an Exec of INSERT … VALUES with arguments hangs there).
func insertRows(ctx context.Context, conn driver.Conn, query, what string, n int, row func(i int) []any) error {
	_, err := insertRowsSized(ctx, conn, query, what, n, row)
	return err
}

// insertRowsSized is insertRows, returning the rows' approximate uncompressed size too
// (see valueSize).
func insertRowsSized(ctx context.Context, conn driver.Conn, query, what string, n int, row func(i int) []any) (int64, error) {
	batch, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return 0, fmt.Errorf("clickhouse: prepare insert of %d %s: %w", n, what, err)
	}
	defer func() { _ = batch.Abort() }()
	var size int64
	for i := range n {
		values := row(i)
		for _, v := range values {
			size += valueSize(v)
		}
		if err := batch.Append(values...); err != nil {
			// Append converts raterd's values to the table's column types on this side: a
			// failure is the same on every attempt.
			return 0, sinks.Permanent(ClassData, fmt.Errorf("clickhouse: append %s #%d: %w", what, i, err))
		}
	}
	if err := batch.Send(); err != nil {
		return 0, fmt.Errorf("clickhouse: insert %d %s: %w", n, what, err)
	}
	return size, nil
}

// Classes of the permanent insert errors (sinks.PermanentError.Class).
const (
	// ClassSchema: the database, table or a column raterd writes is not there (the schema
	// is behind this build, or was changed by hand): run `raterd migrate`.
	ClassSchema = "clickhouse_schema"
	// ClassData: a value does not fit its column (a column's type was changed by hand).
	ClassData = "clickhouse_data"
	// ClassAccess: the user may not insert (missing grant, read-only user, wrong password).
	ClassAccess = "clickhouse_access"
)

// classify wraps err as a sinks.PermanentError when ClickHouse refused the insert with an
// error the same insert meets again (permanentClass); other errors, and errors already
// classified, are returned as they are.
func classify(err error) error {
	var ex *ch.Exception
	if err == nil || sinks.PermanentClass(err) != "" || !errors.As(err, &ex) {
		return err
	}
	if class := permanentClass(ex.Code); class != "" {
		return sinks.Permanent(class, err)
	}
	return err
}

// permanentClass is the class of a ClickHouse error code that retrying the same insert
// cannot cure, or "" for the others (network, timeouts, too many parts, memory limits,
// replicas: they pass).
func permanentClass(code int32) string {
	switch code {
	case 8, // THERE_IS_NO_COLUMN
		10, // NOT_FOUND_COLUMN_IN_BLOCK
		16, // NO_SUCH_COLUMN_IN_TABLE
		47, // UNKNOWN_IDENTIFIER
		60, // UNKNOWN_TABLE
		62, // SYNTAX_ERROR
		81: // UNKNOWN_DATABASE
		return ClassSchema
	case 6, // CANNOT_PARSE_TEXT
		27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
		53, // TYPE_MISMATCH
		70: // CANNOT_CONVERT_TYPE
		return ClassData
	case 164, // READONLY
		192, // UNKNOWN_USER
		193, // WRONG_PASSWORD
		194, // REQUIRED_PASSWORD
		195, // IP_ADDRESS_NOT_ALLOWED
		291, // DATABASE_ACCESS_DENIED (allow_databases, checked on every query)
		497, // ACCESS_DENIED
		516: // AUTHENTICATION_FAILED
		return ClassAccess
	}
	return ""
}

func boolToUint8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

const deadLetterColumns = "seen_at, topic, partition, offset, reason, error, key, value, attempts"

// DeadLetters writes dead letters to <database>.dead_letters so that users can
// see in SQL what was rejected, why and from where.
type DeadLetters struct {
	conn    driver.Conn
	cfg     Config
	logger  *slog.Logger
	insertQ string
	dedup   bool
	metrics *insertMetrics
}

// NewDeadLetters returns a dead-letter sink on an open connection. Its logs (failed
// attempts) go to tel's logger, its metrics (raterd.clickhouse.insert.*,
// table=dead_letters) to tel's meter provider; unset fields mean
// telemetry.Settings.WithDefaults.
func NewDeadLetters(conn driver.Conn, cfg Config, tel telemetry.Settings) *DeadLetters {
	tel = tel.WithDefaults()
	return &DeadLetters{conn: conn, cfg: cfg, logger: tel.Logger, dedup: dedupSupported(conn),
		insertQ: fmt.Sprintf("INSERT INTO %s.dead_letters (%s)", cfg.Database, deadLetterColumns),
		metrics: newInsertMetrics(tel.MeterProvider, "dead_letters")}
}

// WriteDeadLetters implements DeadLetterSink, with the attempts and deduplication token
// of Scores.WriteScores.
func (c *DeadLetters) WriteDeadLetters(ctx context.Context, letters []record.DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	token := ""
	if c.dedup {
		token = deadLetterInsertToken(letters)
	}
	return sendInsert(ctx, c.cfg, c.logger, c.metrics, token, len(letters), func(ctx context.Context) (int64, error) {
		return insertRowsSized(ctx, c.conn, c.insertQ, "dead letters", len(letters), func(i int) []any {
			d := &letters[i]
			return []any{d.FirstSeen, d.Source.Topic, uint32(max(d.Source.Partition, 0)), uint64(max(d.Source.Offset, 0)),
				d.Reason, d.Error, string(d.Key), string(d.Value), uint16(min(d.Attempts, 65535))}
		})
	})
}
