package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Migration is one versioned, idempotent schema change. Statements use {db} for the
// database name. Every statement must run on ClickHouse 18.16 (the Debian package) and on
// current releases: no Map, LowCardinality, DateTime64, codecs or TTL here — later
// migrations apply those only when the server supports them.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

// ErrSchemaBehind is returned by CheckSchema when migrations are missing.
var ErrSchemaBehind = errors.New("clickhouse schema is behind")

// migrationsTable records applied migrations; it is created before any migration runs.
const migrationsTable = `CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
    version UInt32,
    name String,
    applied_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(applied_at) ORDER BY version`

// Migrations returns every migration in version order.
func Migrations() []Migration {
	return []Migration{
		{Version: 1, Name: "scores, scores_hourly, dead_letters", Statements: []string{
			// One row per record × evaluator × rubric version × judge after merges: the sorting
			// key ends with exactly that identity, so a replay collapses (keeping the latest
			// scored_at), while evaluator, model and hour lead for fast trend queries.
			`CREATE TABLE IF NOT EXISTS {db}.scores (
    event_time DateTime,
    scored_at DateTime,
    record_id String,
    trace_id String,
    topic String,
    partition UInt32,
    offset UInt64,
    model String,
    app String,
    label_keys Array(String),
    label_values Array(String),
    evaluator String,
    rubric_version String,
    judge String,
    task_type String,
    score Float64,
    label String,
    confidence Float32,
    explanation String,
    status String,
    cached UInt8,
    judge_latency_ms UInt32,
    attempts UInt16
) ENGINE = ReplacingMergeTree(scored_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY (evaluator, model, toStartOfHour(event_time), app, record_id, rubric_version, judge)`,
			// Hourly trends. A materialized view sees inserted blocks, before replays collapse,
			// so its counts include replayed rows; query scores FINAL for exact figures.
			`CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.scores_hourly
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (evaluator, model, app, judge, rubric_version, hour)
AS SELECT
    toStartOfHour(event_time) AS hour,
    evaluator, model, app, judge, rubric_version,
    countState() AS rows,
    sumState(toUInt64(status = 'ok')) AS ok_rows,
    avgState(score) AS mean_score,
    quantilesState(0.1, 0.5, 0.9)(score) AS score_quantiles,
    sumState(toUInt64(cached)) AS cached_rows
FROM {db}.scores
GROUP BY hour, evaluator, model, app, judge, rubric_version`,
			`CREATE TABLE IF NOT EXISTS {db}.dead_letters (
    seen_at DateTime,
    topic String,
    partition UInt32,
    offset UInt64,
    reason String,
    error String,
    key String,
    value String,
    attempts UInt16
) ENGINE = ReplacingMergeTree(seen_at)
ORDER BY (topic, partition, offset)`,
		}},
	}
}

// LatestMigration is the version a running raterd requires.
func LatestMigration() int {
	m := Migrations()
	return m[len(m)-1].Version
}

func render(stmt, db string) string { return strings.ReplaceAll(stmt, "{db}", db) }

// Migrate creates the database and applies every migration not yet recorded. It is safe
// to run again and from several processes: statements are idempotent.
func Migrate(ctx context.Context, conn driver.Conn, db string, logger *slog.Logger) ([]Migration, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		return nil, fmt.Errorf("create database %s: %w", db, err)
	}
	if err := conn.Exec(ctx, render(migrationsTable, db)); err != nil {
		return nil, fmt.Errorf("create %s.schema_migrations: %w", db, err)
	}
	current, err := appliedVersion(ctx, conn, db)
	if err != nil {
		return nil, err
	}
	var applied []Migration
	for _, m := range Migrations() {
		if m.Version <= current {
			continue
		}
		for i, stmt := range m.Statements {
			if err := conn.Exec(ctx, render(stmt, db)); err != nil {
				return applied, fmt.Errorf("migration %d (%s), statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if err := recordMigration(ctx, conn, db, m); err != nil {
			return applied, err
		}
		logger.Info("applied migration", "version", m.Version, "name", m.Name)
		applied = append(applied, m)
	}
	return applied, nil
}

// CheckSchema fails, naming the first missing migration, when the database is behind
// the version this build needs.
func CheckSchema(ctx context.Context, conn driver.Conn, db string) error {
	var tables uint64
	// db is a validated identifier (ClickHouseConfig.Validate), safe to quote inline.
	q := fmt.Sprintf("SELECT count() FROM system.tables WHERE database = '%s' AND name = 'schema_migrations'", db)
	if err := conn.QueryRow(ctx, q).Scan(&tables); err != nil {
		return fmt.Errorf("check schema of %s: %w", db, err)
	}
	current := 0
	if tables > 0 {
		var err error
		if current, err = appliedVersion(ctx, conn, db); err != nil {
			return err
		}
	}
	for _, m := range Migrations() {
		if m.Version > current {
			return fmt.Errorf("%w: database %s is at version %d, missing migration %d (%s); run `raterd migrate`", ErrSchemaBehind, db, current, m.Version, m.Name)
		}
	}
	return nil
}

func appliedVersion(ctx context.Context, conn driver.Conn, db string) (int, error) {
	var v uint32
	// max() of an empty table is 0 on every version.
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT max(version) FROM %s.schema_migrations", db)).Scan(&v); err != nil {
		return 0, fmt.Errorf("read %s.schema_migrations: %w", db, err)
	}
	return int(v), nil
}

// recordMigration inserts the migration's row.
func recordMigration(ctx context.Context, conn driver.Conn, db string, m Migration) error {
	query := fmt.Sprintf("INSERT INTO %s.schema_migrations (version, name)", db)
	if err := insertRows(ctx, conn, query, "migration rows", 1, func(int) []any { return []any{uint32(m.Version), m.Name} }); err != nil {
		return fmt.Errorf("record migration %d: %w", m.Version, err)
	}
	return nil
}
