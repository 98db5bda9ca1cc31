package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/internal/chsql"
	"raterd/internal/telemetry"
	"raterd/internal/validate"
)

// Migration is one versioned, idempotent schema change. Statements use {db} for the
// database name. Every one of Statements must run on ClickHouse 18.16 (the Debian package)
// and on current releases: no Map, LowCardinality, DateTime64, codecs or TTL there. What
// needs a newer server goes in Gated, which runs only where the server has the feature.
type Migration struct {
	Version    int
	Name       string
	Statements []string
	// AddColumns are added before Statements run, each only when its table lacks it:
	// ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS, and a crash between adding a
	// column and recording the migration must not make the next run fail.
	AddColumns []AddColumn
	// Gated are run after Statements, each only when the server has its Feature
	// (see featuresFor); the migration is recorded either way. A gated step skipped on an
	// old server is applied by a later Migrate once the server has been upgraded.
	Gated []GatedStep
	// Skipped is set only on the migrations MigrateWith returns: the gated steps it did
	// not run because the server lacks their feature.
	Skipped []GatedStep
}

// AddColumn is a column a migration adds to an existing table.
type AddColumn struct {
	Table, Name, Type string
	// After names the column the new one follows; empty adds it last.
	After string
}

// statement is the ALTER that adds the column to db's table.
func (c AddColumn) statement(db string) string {
	stmt := fmt.Sprintf("ALTER TABLE %s.%s ADD COLUMN %s %s", db, c.Table, c.Name, c.Type)
	if c.After != "" {
		stmt += " AFTER " + c.After
	}
	return stmt
}

// addColumns adds m's columns its tables lack.
func addColumns(ctx context.Context, conn driver.Conn, db string, m Migration) error {
	has := func(c AddColumn) (bool, error) {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?", db, c.Table, c.Name).Scan(&n); err != nil {
			return false, fmt.Errorf("migration %d (%s): look up column %s.%s: %w", m.Version, m.Name, c.Table, c.Name, err)
		}
		return n > 0, nil
	}
	for _, c := range m.AddColumns {
		if ok, err := has(c); err != nil || ok {
			if err != nil {
				return err
			}
			continue
		}
		if err := conn.Exec(ctx, c.statement(db)); err != nil {
			// Another migrate (an init container per replica) may have added it between the
			// look-up and the ALTER: that is success.
			if ok, herr := has(c); herr == nil && ok {
				continue
			}
			return fmt.Errorf("migration %d (%s): add column %s.%s: %w", m.Version, m.Name, c.Table, c.Name, err)
		}
	}
	return nil
}

// GatedStep is one statement of a migration that needs a server feature.
type GatedStep struct {
	// Feature is what the server must have for Statement to run.
	Feature Feature
	// Name identifies the step within its migration. It is recorded in
	// schema_gated_steps once applied, so it must never change.
	Name string
	// Statement uses {db} for the database name, and {inner:VIEW} for the table that
	// holds a materialized view's rows (named .inner.VIEW or .inner_id.UUID depending on
	// the database engine; resolved on the server, see innerTableQuery). It must be
	// idempotent: a crash between running it and recording it runs it again.
	Statement string
}

// StepRef is a gated step of migration Version.
type StepRef struct {
	Version int
	GatedStep
}

// String describes the step for logs and output: "migration N: name (needs feature)".
func (s StepRef) String() string {
	return fmt.Sprintf("migration %d: %s (needs %s)", s.Version, s.Name, s.Feature)
}

// Feature is a ClickHouse capability that a gated step needs.
type Feature string

// The features gated steps and retention use; featuresFor says which server versions
// have them.
const (
	// FeatureTTL is table TTL and ALTER TABLE … MODIFY TTL (retention).
	FeatureTTL Feature = "ttl"
	// FeatureLowCardinality is ALTER TABLE … MODIFY COLUMN c LowCardinality(String) on a
	// column outside the sorting key.
	FeatureLowCardinality Feature = "low_cardinality"
	// FeatureCodecs is per-column compression codecs (CODEC(ZSTD(n))).
	FeatureCodecs Feature = "codecs"
	// FeatureSkipIndexes is data-skipping indexes (bloom_filter) without experimental
	// settings, on a release where an index not yet built in old parts is safe to query.
	FeatureSkipIndexes Feature = "skip_indexes"
	// FeatureInsertDedup is deduplication of inserts into non-replicated MergeTree tables
	// by a client token: the table setting non_replicated_deduplication_window and the
	// insert setting insert_deduplication_token.
	FeatureInsertDedup Feature = "insert_dedup"
)

// allFeatures lists every Feature in a stable order.
var allFeatures = [...]Feature{FeatureTTL, FeatureLowCardinality, FeatureCodecs, FeatureSkipIndexes, FeatureInsertDedup}

// Features is the set of gated features a server has.
type Features struct {
	TTL, LowCardinality, Codecs, SkipIndexes, InsertDedup bool
}

// Has reports whether f is in the set; unknown features are never in it.
func (fs Features) Has(f Feature) bool {
	switch f {
	case FeatureTTL:
		return fs.TTL
	case FeatureLowCardinality:
		return fs.LowCardinality
	case FeatureCodecs:
		return fs.Codecs
	case FeatureSkipIndexes:
		return fs.SkipIndexes
	case FeatureInsertDedup:
		return fs.InsertDedup
	}
	return false
}

// String lists the features the server has, or "none".
func (fs Features) String() string {
	var names []string
	for _, f := range allFeatures {
		if fs.Has(f) {
			names = append(names, string(f))
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// serverVersion is the major.minor of a ClickHouse release, e.g. 18.16 or 24.8.
type serverVersion struct{ major, minor int }

// parseServerVersion reads the major and minor number of what SELECT version() returns
// ("18.16.1", "24.8.4.13", "23.8.16.42.altinitystable").
func parseServerVersion(s string) (serverVersion, bool) {
	parts := strings.SplitN(strings.TrimSpace(s), ".", 3)
	if len(parts) < 2 {
		return serverVersion{}, false
	}
	var nums [2]int
	for i, p := range parts[:2] {
		if p == "" || strings.TrimLeft(p, "0123456789") != "" {
			return serverVersion{}, false
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return serverVersion{}, false
		}
		nums[i] = n
	}
	return serverVersion{nums[0], nums[1]}, true
}

func (v serverVersion) atLeast(major, minor int) bool {
	return v.major > major || v.major == major && v.minor >= minor
}

// featuresFor decides, from the server's version string alone, which gated features
// raterd uses. An unparseable version gets none. The thresholds are conservative: a
// feature is used from the first release where it is production ready and the ALTER
// raterd issues for it is known to work on a populated table.
//
//   - TTL: 19.6 (table and column TTL, ALTER … MODIFY TTL, ClickHouse#4212). Before 20.3
//     the new TTL applies to new parts and merges only; 20.3 added MATERIALIZE TTL, which
//     later releases run on MODIFY TTL by default.
//   - LowCardinality: 20.3. The type is production ready from 19.3 (ClickHouse#4323), but
//     converting a populated String column with ALTER crashed 19.4 (ClickHouse#5289) and
//     ALTER MODIFY was reworked in 20.3 (ClickHouse#9227); 20.3 is the first LTS after.
//   - Codecs: 20.1. Per-column codecs and ALTER of codecs came in 19.1 (ClickHouse#4054);
//     ALTER … MODIFY … CODEC bugs were fixed up to 20.1 (ClickHouse#4883, #8614).
//   - Skip indexes: 20.1, when they stopped needing allow_experimental_data_skipping_indices
//     (ClickHouse#7974), except 21.9–21.12: there a query that uses an index that old parts
//     do not have yet fails (ClickHouse#30343, #32292; fixed by #32359).
//   - Insert deduplication: 22.2, which added insert_deduplication_token for MergeTree
//     (ClickHouse#32304); non_replicated_deduplication_window is older.
func featuresFor(version string) Features {
	v, ok := parseServerVersion(version)
	if !ok {
		return Features{}
	}
	return v.features()
}

// features is featuresFor of a parsed version.
func (v serverVersion) features() Features {
	return Features{
		TTL:            v.atLeast(19, 6),
		LowCardinality: v.atLeast(20, 3),
		Codecs:         v.atLeast(20, 1),
		SkipIndexes:    v.atLeast(20, 1) && !(v.atLeast(21, 9) && !v.atLeast(22, 1)),
		InsertDedup:    v.atLeast(22, 2),
	}
}

// ErrSchemaBehind is returned by CheckSchema when migrations are missing.
var ErrSchemaBehind = errors.New("clickhouse schema is behind")

// migrationsTable records applied migrations; it is created before any migration runs.
const migrationsTable = `CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
    version UInt32,
    name String,
    applied_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(applied_at) ORDER BY version`

// gatedStepsTable records the gated steps applied, one row per migration version × step
// name. Migration 3 creates it; no earlier migration has gated steps.
const gatedStepsTable = "schema_gated_steps"

const gatedStepsDDL = `CREATE TABLE IF NOT EXISTS {db}.` + gatedStepsTable + ` (
    version UInt32,
    step String,
    feature String,
    server_version String,
    applied_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(applied_at) ORDER BY (version, step)`

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
ORDER BY ` + scoresSortingKey,
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
		{Version: 2, Name: "scores_daily, alerts", Statements: []string{
			// Daily trends per evaluator × model × app × judge × rubric version. Like
			// scores_hourly it counts inserted rows, replays included. Unlike migration 1's
			// scores_hourly (whose mean and quantiles also took the 0 that failed rows carry;
			// migration 4 rebuilds it like this one), the score statistics here are over ok
			// rows only. Read with the -Merge combinators:
			//   countMerge(rows), sumMerge(ok_rows), sumMerge(sum_ok_score),
			//   avgIfMerge(mean_score), quantilesIfMerge(0.1, 0.5, 0.9)(score_quantiles),
			//   sumMerge(parse_failures), sumMerge(judge_errors), sumMerge(cached_rows).
			// Pass rate = sumMerge(sum_ok_score) / sumMerge(ok_rows): the mean ok score, which
			// for classification and heuristic evaluators (scores 0 or 1) is the share of
			// passes; both sums add up across days and series, so any roll-up stays exact.
			// The view starts empty: on an upgrade it holds the days from the migration on
			// (backfill by hand with INSERT INTO … SELECT … FROM scores FINAL for older days).
			`CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.scores_daily
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (evaluator, model, app, judge, rubric_version, day)
AS SELECT
    toDate(event_time) AS day,
    evaluator, model, app, judge, rubric_version,
    countState() AS rows,
    sumState(toUInt64(status = 'ok')) AS ok_rows,
    sumState(if(status = 'ok', score, 0.)) AS sum_ok_score,
    avgIfState(score, status = 'ok') AS mean_score,
    quantilesIfState(0.1, 0.5, 0.9)(score, status = 'ok') AS score_quantiles,
    sumState(toUInt64(status = 'parse_failure')) AS parse_failures,
    sumState(toUInt64(status = 'judge_error')) AS judge_errors,
    sumState(toUInt64(cached)) AS cached_rows
FROM {db}.scores
GROUP BY day, evaluator, model, app, judge, rubric_version`,
			// Quality-regression alerts, one row per alert after merges: each state change
			// inserts the whole row again with a later updated_at. observed and expected are
			// on the rubric scale (or a rate), interval_low/high bound the observed value (for
			// a canary, the difference), drilldown_sql is a query over scores that shows the
			// affected rows.
			`CREATE TABLE IF NOT EXISTS {db}.alerts (
    alert_id String,
    rule String,
    evaluator String,
    model String,
    app String,
    judge String,
    state Enum8('pending' = 1, 'firing' = 2, 'resolved' = 3),
    severity String,
    observed Float64,
    expected Float64,
    interval_low Float64,
    interval_high Float64,
    sample_size UInt64,
    since DateTime,
    updated_at DateTime,
    example_record_ids Array(String),
    message String,
    drilldown_sql String
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (rule, evaluator, model, app, judge, alert_id)`,
		}},
		{Version: 3, Name: "modern storage: skip indexes, ZSTD, LowCardinality where the server has them",
			Statements: []string{gatedStepsDDL},
			// Columns in the sorting key (evaluator, model, app, judge, rubric_version,
			// record_id, event_time) stay String: before 21.1 ALTER refuses to change a key
			// column's type (ClickHouse#5604, #18362), and on later releases reads fail while
			// that conversion is being applied (ClickHouse#116434, #118709). Moving them to
			// LowCardinality means a new table filled with INSERT … SELECT, a migration of
			// its own. The indexes cover new parts and parts rewritten by merges; build them
			// for old parts with ALTER TABLE … MATERIALIZE INDEX.
			Gated: []GatedStep{
				{FeatureSkipIndexes, "scores.record_id bloom_filter",
					`ALTER TABLE {db}.scores ADD INDEX IF NOT EXISTS record_id_bf record_id TYPE bloom_filter(0.01) GRANULARITY 1`},
				{FeatureSkipIndexes, "scores.trace_id bloom_filter",
					`ALTER TABLE {db}.scores ADD INDEX IF NOT EXISTS trace_id_bf trace_id TYPE bloom_filter(0.01) GRANULARITY 1`},
				{FeatureCodecs, "scores.explanation ZSTD",
					`ALTER TABLE {db}.scores MODIFY COLUMN explanation String CODEC(ZSTD(3))`},
				{FeatureCodecs, "dead_letters.value ZSTD",
					`ALTER TABLE {db}.dead_letters MODIFY COLUMN value String CODEC(ZSTD(3))`},
				{FeatureLowCardinality, "scores LowCardinality task_type, status, label, topic",
					`ALTER TABLE {db}.scores
    MODIFY COLUMN task_type LowCardinality(String),
    MODIFY COLUMN status LowCardinality(String),
    MODIFY COLUMN label LowCardinality(String),
    MODIFY COLUMN topic LowCardinality(String)`},
				{FeatureLowCardinality, "dead_letters LowCardinality reason",
					`ALTER TABLE {db}.dead_letters MODIFY COLUMN reason LowCardinality(String)`},
			}},
		{Version: 4, Name: "scores_hourly: statistics over ok rows, pass rate, parse failures",
			// Migration 1's scores_hourly averaged and took quantiles over every row, the 0
			// of failed ones included, and had no pass rate or parse failures. A view's query
			// cannot be altered on 18.16, so the view is rebuilt with scores_daily's columns
			// by hour and filled from scores (POPULATE). Rows written while this runs may be
			// missed by the view (scores keeps them; run it with raterd stopped), and hours
			// whose rows a retention TTL already dropped are no longer in the view. Both
			// statements are safe to repeat. Read with the -Merge combinators listed at
			// scores_daily.
			Statements: []string{
				`DROP TABLE IF EXISTS {db}.scores_hourly`,
				`CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.scores_hourly
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (evaluator, model, app, judge, rubric_version, hour)
POPULATE
AS SELECT
    toStartOfHour(event_time) AS hour,
    evaluator, model, app, judge, rubric_version,
    countState() AS rows,
    sumState(toUInt64(status = 'ok')) AS ok_rows,
    sumState(if(status = 'ok', score, 0.)) AS sum_ok_score,
    avgIfState(score, status = 'ok') AS mean_score,
    quantilesIfState(0.1, 0.5, 0.9)(score, status = 'ok') AS score_quantiles,
    sumState(toUInt64(status = 'parse_failure')) AS parse_failures,
    sumState(toUInt64(status = 'judge_error')) AS judge_errors,
    sumState(toUInt64(cached)) AS cached_rows
FROM {db}.scores
GROUP BY hour, evaluator, model, app, judge, rubric_version`,
			}},
		{Version: 5, Name: "insert deduplication where the server has it",
			// The writer sends every insert with a token made from its rows' sources
			// (insertToken); with a deduplication window a table keeps the tokens of its
			// last 1000 inserts and drops a block whose token it has seen, so an insert
			// retried after a lost answer lands once. The views' own tables get the window
			// too: with deduplicate_blocks_in_dependent_materialized_views, which the writer
			// also sends, they then skip a retried block as well (checked on 26.9 by
			// TestCurrentReleaseSQL).
			Gated: []GatedStep{
				{FeatureInsertDedup, "scores deduplication window",
					`ALTER TABLE {db}.scores MODIFY SETTING non_replicated_deduplication_window = 1000`},
				{FeatureInsertDedup, "dead_letters deduplication window",
					`ALTER TABLE {db}.dead_letters MODIFY SETTING non_replicated_deduplication_window = 1000`},
				{FeatureInsertDedup, "scores_hourly deduplication window",
					`ALTER TABLE {db}.{inner:scores_hourly} MODIFY SETTING non_replicated_deduplication_window = 1000`},
				{FeatureInsertDedup, "scores_daily deduplication window",
					`ALTER TABLE {db}.{inner:scores_daily} MODIFY SETTING non_replicated_deduplication_window = 1000`},
			}},
		{Version: 6, Name: "scores: span_id and conversation_id, to join scores back to traces and conversations",
			// Plain String columns (empty when the input has no span or conversation): the
			// OTLP, OpenInference, OpenAI and LiteLLM inputs carry them (docs/inputs.md).
			AddColumns: []AddColumn{
				{Table: "scores", Name: "span_id", Type: "String", After: "trace_id"},
				{Table: "scores", Name: "conversation_id", Type: "String", After: "span_id"},
			}},
		{Version: 7, Name: "record_sources: the source offsets of each record id, to count ids shared by different messages",
			// scores collapses rows by (evaluator, model, hour, app, record_id, rubric_version,
			// judge): two messages at different offsets that carry the same id — a producer's
			// retry, a dead letter replayed to its topic, or two different requests a producer
			// gave one id — leave one row per evaluator in scores FINAL, and merges keep no
			// trace of the other offset. This view sees every inserted row before any merge
			// and keeps, per record id, hour, model and app (the scope in which scores
			// collapses), the number of distinct source offsets and the smallest and largest
			// of them, so that the ids shared by different messages can be counted and found
			// (docs/sql.md, "Records that share an id"). A replay of the same offset adds no
			// offset. One row per record and hour after merges. Starts empty: it sees the rows
			// inserted from the migration on. topic is cast to String: migration 3 makes it
			// LowCardinality where the server has that, and the view's state types are the
			// same on every server.
			Statements: []string{
				`CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.record_sources
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, model, app, record_id)
AS SELECT
    toStartOfHour(event_time) AS hour,
    model, app, record_id,
    uniqExactState(CAST(topic AS String), partition, offset) AS sources,
    minState(tuple(CAST(topic AS String), partition, offset)) AS first_source,
    maxState(tuple(CAST(topic AS String), partition, offset)) AS last_source
FROM {db}.scores
GROUP BY hour, model, app, record_id`,
			}},
		{Version: 8, Name: "scores: scope and segment columns, for conversation and agent-run (trace) rows",
			// A score row judges a record (scope 'record', the default, so rows written before
			// this migration and by older writers read as record rows), a conversation or an
			// agent run (trace). A transcript row carries its segment: conversation_version
			// counts the segments of one conversation from 1, offset is the segment's first
			// Kafka offset and last_offset its last, turn_count its turns, close_reason why
			// the consumer closed it (timeout, end_marker, gap, max_turns, max_bytes,
			// max_duration, evicted); all zero or empty on a record row.
			//
			// The sorting key stays as it is: a transcript row's record_id is its segment id
			// (the conversation or trace id and the segment's first offset), so two segments
			// of one conversation — and a segment and the records it assembles — never share
			// an identity, and a replayed segment collapses with its first copy as a replayed
			// record does. Scope is a function of the evaluator (an evaluator judges one
			// scope), so every copy of a row shares it too, and trend queries per evaluator
			// never mix scopes. The aggregate views (scores_hourly, scores_daily) are keyed by
			// evaluator as well, so they keep the scopes apart without a scope column.
			AddColumns: []AddColumn{
				{Table: "scores", Name: "scope", Type: "String DEFAULT 'record'", After: "conversation_id"},
				{Table: "scores", Name: "conversation_version", Type: "UInt32", After: "scope"},
				{Table: "scores", Name: "last_offset", Type: "UInt64", After: "offset"},
				{Table: "scores", Name: "turn_count", Type: "UInt32", After: "attempts"},
				{Table: "scores", Name: "close_reason", Type: "String", After: "turn_count"},
			}},
	}
}

// LatestMigration is the version a running raterd requires.
func LatestMigration() int {
	m := Migrations()
	return m[len(m)-1].Version
}

func render(stmt, db string) string { return strings.ReplaceAll(stmt, "{db}", db) }

// innerPlaceholder matches {inner:VIEW} in a gated step's statement.
var innerPlaceholder = regexp.MustCompile(`\{inner:([A-Za-z_][A-Za-z0-9_]*)\}`)

// innerTableQuery returns a query for the name of the table that stores the rows of the
// materialized view db.view: .inner.VIEW in an Ordinary database, .inner_id.UUID (the
// view's UUID) in an Atomic one. It needs system.tables.uuid (ClickHouse 20.x+), so only
// gated steps of recent features use {inner:…}.
func innerTableQuery(db, view string) string {
	return fmt.Sprintf("SELECT name FROM system.tables WHERE database = '%[1]s' AND (name = '.inner.%[2]s' OR "+
		"name = (SELECT concat('.inner_id.', toString(uuid)) FROM system.tables WHERE database = '%[1]s' AND name = '%[2]s'))", db, view)
}

// renderStep renders a gated step's statement for db, resolving {inner:VIEW} with
// lookup, which runs a query and returns its single String value.
func renderStep(ctx context.Context, stmt, db string, lookup func(ctx context.Context, query string) (string, error)) (string, error) {
	var err error
	out := innerPlaceholder.ReplaceAllStringFunc(render(stmt, db), func(m string) string {
		view := innerPlaceholder.FindStringSubmatch(m)[1]
		name, lerr := lookup(ctx, innerTableQuery(db, view))
		if lerr != nil && err == nil {
			err = fmt.Errorf("find the table of materialized view %s.%s: %w", db, view, lerr)
		}
		return chsql.QuoteIdent(name)
	})
	return out, err
}

// queryString runs a query returning one String value on conn.
func queryString(conn driver.Conn) func(ctx context.Context, query string) (string, error) {
	return func(ctx context.Context, query string) (string, error) {
		var s string
		err := conn.QueryRow(ctx, query).Scan(&s)
		return s, err
	}
}

// MigrateOptions tunes MigrateWith; the zero value is what Migrate uses.
type MigrateOptions struct {
	// RetentionDays, when positive, sets a TTL of that many days on scores (by event_time)
	// and dead_letters (by seen_at) on servers that support TTL; on older servers nothing
	// is deleted and MigrateWith says so. The aggregate views keep their history. 0
	// (default) leaves the tables' TTL as it is: none on a fresh install, rows kept forever.
	RetentionDays int
	// Telemetry's logger receives a record per migration, gated step and retention
	// change. Unset fields mean telemetry.Settings.WithDefaults.
	Telemetry telemetry.Settings
	// Cluster, when its Cluster is set, migrates a cluster: every statement ON CLUSTER,
	// Replicated* local tables and Distributed tables under the names readers use
	// (docs/design-topology.md §1, §3). Empty: one server, today's schema.
	Cluster ClusterNames
	// DDLTimeout bounds the wait for every host's answer to one ON CLUSTER statement
	// (distributed_ddl_task_timeout); a host that has not answered by then is reported
	// pending. Zero means DefaultDDLTimeout. Cluster only.
	DDLTimeout time.Duration
	// Dial opens a connection to one host of the cluster (host:port as system.clusters
	// names it), with the credentials and TLS of the connection migrate got. Cluster only:
	// the ADD COLUMN of a replicated table runs on one replica of each shard through it
	// rather than ON CLUSTER, which ClickHouse 18.16's distributed DDL can run on both
	// replicas of a shard, killing the second one's DDL worker (see migrateCluster).
	// Nil: ON CLUSTER.
	Dial func(ctx context.Context, addr string) (driver.Conn, error)
}

// DefaultDDLTimeout is MigrateOptions.DDLTimeout's default.
const DefaultDDLTimeout = 3 * time.Minute

// maxRetentionDays keeps event_time + RetentionDays inside DateTime's range.
const maxRetentionDays = 36500

// Validate rejects negative or absurd values.
func (o MigrateOptions) Validate() error {
	if o.RetentionDays < 0 {
		return fmt.Errorf("retention_days: %d is negative (0 keeps rows forever)", o.RetentionDays)
	}
	if o.RetentionDays > maxRetentionDays {
		return fmt.Errorf("retention_days: %d is over %d (use 0 to keep rows forever)", o.RetentionDays, maxRetentionDays)
	}
	if o.Cluster.Cluster != "" && (!validate.SQLIdentifier(o.Cluster.Cluster) || !validate.SQLIdentifier(o.Cluster.AllHosts)) {
		return fmt.Errorf("cluster: %q and cluster_all_hosts %q must be plain identifiers", o.Cluster.Cluster, o.Cluster.AllHosts)
	}
	return nil
}

// Retention says what MigrateWith did about MigrateOptions.RetentionDays.
type Retention string

const (
	// RetentionNotRequested: RetentionDays is 0; the tables' TTL was left as it is.
	RetentionNotRequested Retention = ""
	// RetentionApplied: the TTL was set or changed on at least one table.
	RetentionApplied Retention = "applied"
	// RetentionUnchanged: every table already had that TTL.
	RetentionUnchanged Retention = "unchanged"
	// RetentionUnsupported: the server has no TTL; nothing will be deleted.
	RetentionUnsupported Retention = "unsupported"
)

// MigrateResult reports what MigrateWith did.
type MigrateResult struct {
	// ServerVersion is what SELECT version() returned.
	ServerVersion string
	// Features are the gated features raterd uses on this server.
	Features Features
	// Applied are the migrations this run applied, in order; each one's Skipped lists the
	// gated steps it left out because the server lacks their feature.
	Applied []Migration
	// Upgraded are gated steps of migrations applied by an earlier run that this run
	// applied, because the server has the feature now (it was upgraded).
	Upgraded []StepRef
	// Pending are the gated steps of every applied migration that are still not applied
	// because the server lacks their feature, this run's skips included.
	Pending []StepRef
	// Retention is what happened to the retention TTL.
	Retention Retention
	// Cluster is the cluster migrated, empty on one server.
	Cluster string
	// Hosts are the cluster's hosts in shard and replica order, with what this run did
	// on each and what migrate found there afterwards; empty on one server.
	Hosts []HostReport
}

// Migrate applies every missing migration with MigrateOptions{Telemetry: tel} (no
// retention change); see MigrateWith.
func Migrate(ctx context.Context, conn driver.Conn, db string, tel telemetry.Settings) ([]Migration, error) {
	res, err := MigrateWith(ctx, conn, db, MigrateOptions{Telemetry: tel})
	return res.Applied, err
}

// MigrateWith creates the database, applies every migration not yet recorded (the gated
// steps only where the server has their feature), applies gated steps that earlier runs
// skipped and the server now supports, and sets the retention TTL. It is safe to run
// again and from several processes: every statement is idempotent, and a run that finds
// nothing to do changes nothing. On error, the result holds what was done before it.
func MigrateWith(ctx context.Context, conn driver.Conn, db string, opts MigrateOptions) (MigrateResult, error) {
	return migrate(ctx, conn, db, opts, Migrations(), featuresFor)
}

// migrate is MigrateWith over a given migration list and feature decision, so that tests
// can exercise gated steps on the 18.16 test server.
func migrate(ctx context.Context, conn driver.Conn, db string, opts MigrateOptions,
	migrations []Migration, features func(version string) Features) (MigrateResult, error) {
	var res MigrateResult
	logger := opts.Telemetry.WithDefaults().Logger
	if err := opts.Validate(); err != nil {
		return res, err
	}
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&res.ServerVersion); err != nil {
		return res, fmt.Errorf("clickhouse server version: %w", err)
	}
	res.Features = features(res.ServerVersion)
	logger.Info("clickhouse server", "version", res.ServerVersion, "gated_features", res.Features.String())
	if opts.Cluster.Cluster != "" {
		return migrateCluster(ctx, conn, db, opts, migrations, res)
	}
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		return res, fmt.Errorf("create database %s: %w", db, err)
	}
	if err := conn.Exec(ctx, render(migrationsTable, db)); err != nil {
		return res, fmt.Errorf("create %s.schema_migrations: %w", db, err)
	}
	current, err := appliedVersion(ctx, conn, db)
	if err != nil {
		return res, err
	}
	done, err := appliedGatedSteps(ctx, conn, db)
	if err != nil {
		return res, err
	}

	// runGated applies m's gated steps that the server supports and that are not recorded
	// yet, and returns the ones it applied and the ones the server lacks a feature for.
	runGated := func(m Migration) (ran, skipped []GatedStep, err error) {
		for _, s := range m.Gated {
			switch {
			case done[gatedKey(m.Version, s.Name)]:
			case !res.Features.Has(s.Feature):
				skipped = append(skipped, s)
			default:
				stmt, err := renderStep(ctx, s.Statement, db, queryString(conn))
				if err == nil {
					err = conn.Exec(ctx, stmt)
				}
				if err != nil {
					return ran, skipped, fmt.Errorf("migration %d (%s), gated step %q (%s): %w", m.Version, m.Name, s.Name, s.Feature, err)
				}
				if err := recordGatedStep(ctx, conn, db, m.Version, s, res.ServerVersion); err != nil {
					return ran, skipped, err
				}
				ran = append(ran, s)
			}
		}
		return ran, skipped, nil
	}
	pending := func(version int, steps []GatedStep) {
		for _, s := range steps {
			res.Pending = append(res.Pending, StepRef{version, s})
		}
	}

	for _, m := range migrations {
		if m.Version > current {
			break
		}
		ran, skipped, err := runGated(m)
		for _, s := range ran {
			logger.Info("applied gated step the server now supports", "version", m.Version, "step", s.Name, "feature", s.Feature, "server", res.ServerVersion)
			res.Upgraded = append(res.Upgraded, StepRef{m.Version, s})
		}
		if err != nil {
			return res, err
		}
		pending(m.Version, skipped)
	}
	for _, m := range migrations {
		if m.Version <= current {
			continue
		}
		if err := addColumns(ctx, conn, db, m); err != nil {
			return res, err
		}
		for i, stmt := range m.Statements {
			if err := conn.Exec(ctx, render(stmt, db)); err != nil {
				return res, fmt.Errorf("migration %d (%s), statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		_, skipped, err := runGated(m)
		if err != nil {
			return res, err
		}
		if err := recordMigration(ctx, conn, db, m); err != nil {
			return res, err
		}
		m.Skipped = skipped
		for _, s := range skipped {
			logger.Info("skipped gated step: the server lacks the feature; a later migrate applies it after a ClickHouse upgrade",
				"version", m.Version, "step", s.Name, "feature", s.Feature, "server", res.ServerVersion)
		}
		logger.Info("applied migration", "version", m.Version, "name", m.Name, "skipped_steps", len(skipped))
		res.Applied = append(res.Applied, m)
		pending(m.Version, skipped)
	}

	res.Retention, err = applyRetention(ctx, conn, db, opts.RetentionDays, res.Features, res.ServerVersion, logger)
	return res, err
}

// retentionTargets are the tables a retention TTL applies to and the time column it uses.
var retentionTargets = []struct{ table, column string }{
	{"scores", "event_time"},
	{"dead_letters", "seen_at"},
}

// ttlClause finds a table's TTL expression in its CREATE query as system.tables shows it.
var ttlClause = regexp.MustCompile(`(?s)\sTTL\s+(.*?)(?:\s+SETTINGS\s.*)?$`)

// applyRetention sets the TTL of the retention targets to days, unless they have it
// already (on recent servers MODIFY TTL rewrites every part, so it is not repeated).
func applyRetention(ctx context.Context, conn driver.Conn, db string, days int, fs Features, version string, logger *slog.Logger) (Retention, error) {
	if days == 0 {
		for _, t := range retentionTargets {
			if ttl, err := tableTTL(ctx, conn, db, t.table); err == nil && ttl != "" {
				logger.Warn("retention_days is 0 but the table has a TTL, which stays in force until removed by hand (ALTER TABLE … REMOVE TTL)",
					"table", db+"."+t.table, "ttl", ttl)
			}
		}
		return RetentionNotRequested, nil
	}
	if !fs.TTL {
		logger.Warn("retention not applied: this ClickHouse has no table TTL (needs 19.6 or later); score rows and dead letters are kept",
			"retention_days", days, "server", version)
		return RetentionUnsupported, nil
	}
	status := RetentionUnchanged
	for _, t := range retentionTargets {
		want := fmt.Sprintf("%s + toIntervalDay(%d)", t.column, days)
		if have, err := tableTTL(ctx, conn, db, t.table); err == nil && have == want {
			continue
		}
		if err := conn.Exec(ctx, retentionStatement(db, t.table, t.column, days)); err != nil {
			return status, fmt.Errorf("set retention of %d days on %s.%s: %w", days, db, t.table, err)
		}
		logger.Info("retention TTL set", "table", db+"."+t.table, "days", days)
		status = RetentionApplied
	}
	return status, nil
}

// retentionStatement sets a retention of days on db.table by its time column.
func retentionStatement(db, table, column string, days int) string {
	return fmt.Sprintf("ALTER TABLE %s.%s MODIFY TTL %s + INTERVAL %d DAY", db, table, column, days)
}

// tableTTL returns the table TTL expression of db.table as the server prints it (e.g.
// "event_time + toIntervalDay(30)"), or "" when it has none.
func tableTTL(ctx context.Context, conn driver.Conn, db, table string) (string, error) {
	var create string
	q := fmt.Sprintf("SELECT create_table_query FROM system.tables WHERE database = '%s' AND name = '%s'", db, table)
	if err := conn.QueryRow(ctx, q).Scan(&create); err != nil {
		return "", fmt.Errorf("read definition of %s.%s: %w", db, table, err)
	}
	return parseTTL(create), nil
}

// parseTTL extracts the table TTL from a CREATE TABLE query as system.tables prints it.
// Only the text after the column list is searched, so a column TTL is not mistaken for it.
func parseTTL(create string) string {
	i := strings.LastIndex(create, ") ENGINE")
	if i < 0 {
		return ""
	}
	m := ttlClause.FindStringSubmatch(create[i:])
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1])
}

// CheckSchema fails, naming the first missing migration, when the database is behind
// the version this build needs. Gated steps a server lacks the features for are not
// missing: the schema works without them.
func CheckSchema(ctx context.Context, conn driver.Conn, db string) error {
	exists, err := tableExists(ctx, conn, db, "schema_migrations")
	if err != nil {
		return fmt.Errorf("check schema of %s: %w", db, err)
	}
	current := 0
	if exists {
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

// tableExists reports whether db.name exists. db is a validated identifier
// (Config.Validate), safe to quote inline.
func tableExists(ctx context.Context, conn driver.Conn, db, name string) (bool, error) {
	var n uint64
	q := fmt.Sprintf("SELECT count() FROM system.tables WHERE database = '%s' AND name = '%s'", db, name)
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
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

func gatedKey(version int, step string) string { return strconv.Itoa(version) + "/" + step }

// appliedGatedSteps returns the recorded gated steps, keyed by gatedKey; none before
// migration 3 created the table.
func appliedGatedSteps(ctx context.Context, conn driver.Conn, db string) (map[string]bool, error) {
	done := map[string]bool{}
	exists, err := tableExists(ctx, conn, db, gatedStepsTable)
	if err != nil || !exists {
		return done, err
	}
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT version, step FROM %s.%s", db, gatedStepsTable))
	if err != nil {
		return nil, fmt.Errorf("read %s.%s: %w", db, gatedStepsTable, err)
	}
	defer rows.Close()
	for rows.Next() {
		var v uint32
		var step string
		if err := rows.Scan(&v, &step); err != nil {
			return nil, fmt.Errorf("read %s.%s: %w", db, gatedStepsTable, err)
		}
		done[gatedKey(int(v), step)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s.%s: %w", db, gatedStepsTable, err)
	}
	return done, nil
}

// recordGatedStep inserts the row of an applied gated step.
func recordGatedStep(ctx context.Context, conn driver.Conn, db string, version int, s GatedStep, server string) error {
	query := fmt.Sprintf("INSERT INTO %s.%s (version, step, feature, server_version)", db, gatedStepsTable)
	if err := insertRows(ctx, conn, query, "gated step rows", 1, func(int) []any {
		return []any{uint32(version), s.Name, string(s.Feature), server}
	}); err != nil {
		return fmt.Errorf("record gated step %q of migration %d: %w", s.Name, version, err)
	}
	return nil
}
