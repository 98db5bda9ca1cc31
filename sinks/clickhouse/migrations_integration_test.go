package clickhouse

// Tests of the versioned migrations: pure tests of the version gating and of the migration
// list (always run), and tests against the real ClickHouse 18.16 of the test services
// (skipped without RATERD_TEST_CLICKHOUSE, failed with RATERD_REQUIRE_SERVICES=1).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/internal/telemetry"
	"raterd/record"
)

func TestFeaturesFor(t *testing.T) {
	all := Features{TTL: true, LowCardinality: true, Codecs: true, SkipIndexes: true, InsertDedup: true}
	noDedup := Features{TTL: true, LowCardinality: true, Codecs: true, SkipIndexes: true}
	noSkip := Features{TTL: true, LowCardinality: true, Codecs: true}
	for _, tc := range []struct {
		version string
		want    Features
	}{
		{"18.16.1", Features{}}, // the Debian package of the tests
		{"18.16", Features{}},
		{"1.1.54394", Features{}},
		{"19.1.6", Features{}},
		{"19.3.3", Features{}},
		{"19.5.4.22", Features{}},
		{"19.6.2.11", Features{TTL: true}},
		{"19.10.1.5", Features{TTL: true}},
		{"19.17.6.36", Features{TTL: true}},
		{"20.1.2.4", Features{TTL: true, Codecs: true, SkipIndexes: true}},
		{"20.3.2.1", noDedup},
		{"20.8.12.2", noDedup},
		{"21.8.15.7", noDedup},
		{"21.9.2.17", noSkip},
		{"21.11.5.33", noSkip},
		{"21.12.4.1", noSkip},
		{"22.1.3.7", noDedup},
		{"22.2.2.1", all},
		{"22.8.21.38", all},
		{"23.8.16.42.altinitystable", all},
		{"24.3.1.2672", all},
		{"24.8.4.13", all},
		{"25.3.2.39", all},
		{"26.9.2.1", all},
		{" 24.8.4.13\n", all},
		{"", Features{}},
		{"unknown", Features{}},
		{"24", Features{}},
		{"v24.8.1", Features{}},
		{"24.x.1", Features{}},
		{"24.8-lts", Features{}},
		{"-1.5", Features{}},
		{"24..1", Features{}},
	} {
		if got := featuresFor(tc.version); got != tc.want {
			t.Errorf("featuresFor(%q) = {%s}, want {%s}", tc.version, got, tc.want)
		}
	}
}

func TestFeaturesHasAndString(t *testing.T) {
	fs := Features{TTL: true, Codecs: true}
	for f, want := range map[Feature]bool{FeatureTTL: true, FeatureCodecs: true, FeatureLowCardinality: false, FeatureSkipIndexes: false, "geo": false} {
		if fs.Has(f) != want {
			t.Errorf("Has(%q) = %v, want %v", f, !want, want)
		}
	}
	if got := fs.String(); got != "ttl, codecs" {
		t.Errorf("String() = %q", got)
	}
	if got := (Features{}).String(); got != "none" {
		t.Errorf("empty String() = %q", got)
	}
	ref := StepRef{3, GatedStep{Feature: FeatureCodecs, Name: "scores.explanation ZSTD"}}
	if got := ref.String(); got != "migration 3: scores.explanation ZSTD (needs codecs)" {
		t.Errorf("StepRef.String() = %q", got)
	}
}

// TestMigrationsGatedSteps guards the gated steps: each names a known feature, uses {db},
// has a unique, stable name, says in its SQL what needs the feature, and comes after the
// migration that creates the ledger they are recorded in.
func TestMigrationsGatedSteps(t *testing.T) {
	keyword := map[Feature]string{
		FeatureTTL:            "TTL",
		FeatureLowCardinality: "LowCardinality(",
		FeatureCodecs:         "CODEC(",
		FeatureSkipIndexes:    "ADD INDEX",
		FeatureInsertDedup:    "non_replicated_deduplication_window",
	}
	ledger := 0
	gated := 0
	for _, m := range Migrations() {
		for _, s := range m.Statements {
			if strings.Contains(s, gatedStepsTable) {
				ledger = m.Version
			}
		}
		names := map[string]bool{}
		for _, s := range m.Gated {
			gated++
			if ledger == 0 || ledger > m.Version {
				t.Errorf("migration %d has gated steps but the %s ledger is created later", m.Version, gatedStepsTable)
			}
			kw, ok := keyword[s.Feature]
			if !ok {
				t.Errorf("migration %d step %q needs unknown feature %q", m.Version, s.Name, s.Feature)
			}
			if !strings.Contains(s.Statement, kw) {
				t.Errorf("migration %d step %q is gated on %s but does not use %s", m.Version, s.Name, s.Feature, kw)
			}
			if !strings.Contains(s.Statement, "{db}") {
				t.Errorf("migration %d step %q does not use {db}", m.Version, s.Name)
			}
			if s.Name == "" || names[s.Name] {
				t.Errorf("migration %d has an empty or repeated step name %q", m.Version, s.Name)
			}
			names[s.Name] = true
		}
		if len(m.Skipped) != 0 {
			t.Errorf("Migrations() returns migration %d with Skipped set", m.Version)
		}
	}
	if gated == 0 {
		t.Fatal("no gated steps: migration 3 should have some")
	}
	// Columns in the sorting key must never be converted (see migration 3).
	for _, s := range Migrations()[2].Gated {
		for _, key := range []string{"evaluator", "model", "app", "judge", "rubric_version", "record_id", "event_time"} {
			if s.Feature == FeatureLowCardinality && strings.Contains(s.Statement, "COLUMN "+key+" ") {
				t.Errorf("step %q converts sorting-key column %s", s.Name, key)
			}
		}
	}
}

func TestMigrateOptionsValidate(t *testing.T) {
	for _, days := range []int{0, 1, 30, 36500} {
		if err := (MigrateOptions{RetentionDays: days}).Validate(); err != nil {
			t.Errorf("RetentionDays %d: %v", days, err)
		}
	}
	for _, days := range []int{-1, 36501} {
		err := (MigrateOptions{RetentionDays: days}).Validate()
		if err == nil || !strings.Contains(err.Error(), "retention_days") {
			t.Errorf("RetentionDays %d: err = %v, want one naming retention_days", days, err)
		}
	}
}

func TestParseTTL(t *testing.T) {
	for _, tc := range []struct{ create, want string }{
		// ClickHouse 18.16: no TTL.
		{"CREATE TABLE d.scores ( event_time DateTime,  score Float64) ENGINE = ReplacingMergeTree(scored_at) PARTITION BY toYYYYMM(event_time) ORDER BY (evaluator, model) SETTINGS index_granularity = 8192", ""},
		// As a current release prints it after MODIFY TTL event_time + INTERVAL 30 DAY.
		{"CREATE TABLE p.scores (`event_time` DateTime, `explanation` String CODEC(ZSTD(3)), INDEX record_id_bf record_id TYPE bloom_filter(0.01) GRANULARITY 1) ENGINE = ReplacingMergeTree(scored_at) PARTITION BY toYYYYMM(event_time) ORDER BY (evaluator, model, toStartOfHour(event_time), app, record_id, rubric_version, judge) TTL event_time + toIntervalDay(30) SETTINGS index_granularity = 8192", "event_time + toIntervalDay(30)"},
		{"CREATE TABLE p.dead_letters (`seen_at` DateTime) ENGINE = ReplacingMergeTree(seen_at) ORDER BY (topic, partition, offset) TTL seen_at + toIntervalDay(7)", "seen_at + toIntervalDay(7)"},
		// A column TTL is not the table's.
		{"CREATE TABLE p.t (`d` DateTime, `x` String TTL d + toIntervalDay(1)) ENGINE = MergeTree ORDER BY d SETTINGS index_granularity = 8192", ""},
		{"", ""},
	} {
		if got := parseTTL(tc.create); got != tc.want {
			t.Errorf("parseTTL(%.60q…) = %q, want %q", tc.create, got, tc.want)
		}
	}
}

// --- against the real server ---

// migrationTestLogger returns a logger whose text output the test can search.
func migrationTestLogger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

// schemaSnapshot returns every table of db with its definition, to compare two runs.
func schemaSnapshot(t *testing.T, conn driver.Conn, db string) map[string]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), fmt.Sprintf(
		"SELECT name, engine, create_table_query FROM system.tables WHERE database = '%s'", db))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	snap := map[string]string{}
	for rows.Next() {
		var name, engine, create string
		if err := rows.Scan(&name, &engine, &create); err != nil {
			t.Fatal(err)
		}
		snap[name] = engine + "\n" + create
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return snap
}

func columnType(t *testing.T, conn driver.Conn, db, table, column string) string {
	t.Helper()
	var typ string
	q := fmt.Sprintf("SELECT type FROM system.columns WHERE database = '%s' AND table = '%s' AND name = '%s'", db, table, column)
	if err := conn.QueryRow(context.Background(), q).Scan(&typ); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return typ
}

func migrationVersions(ms []Migration) []int {
	var vs []int
	for _, m := range ms {
		vs = append(vs, m.Version)
	}
	return vs
}

func stepNames(steps []StepRef) []string {
	var names []string
	for _, s := range steps {
		names = append(names, fmt.Sprintf("%d/%s", s.Version, s.Name))
	}
	return names
}

// laterColumns are the score columns migrations after 1 added.
var laterColumns = map[string]bool{
	"span_id": true, "conversation_id": true, // migration 6
	"scope": true, "conversation_version": true, "last_offset": true, "turn_count": true, "close_reason": true, // migration 8
}

// writeAsV1 inserts rows as a writer of migration 1's time did: without the columns
// later migrations added (laterColumns).
func writeAsV1(t *testing.T, conn driver.Conn, db string, rows []record.Score) {
	t.Helper()
	var cols []string
	var keep []int
	for i, c := range scoreColumnNames {
		if !laterColumns[c] {
			cols = append(cols, c)
			keep = append(keep, i)
		}
	}
	b, err := conn.PrepareBatch(context.Background(), fmt.Sprintf("INSERT INTO %s.scores (%s)", db, strings.Join(cols, ", ")))
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		all := scoreValues(&rows[i])
		v := make([]any, len(keep))
		for j, k := range keep {
			v[j] = all[k]
		}
		if err := b.Append(v...); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatalf("insert as migration 1's writer: %v", err)
	}
}

// applyByHand creates db as a raterd of migration `upTo` would have: the given
// migrations' statements, recorded, and nothing else.
func applyByHand(t *testing.T, conn driver.Conn, db string, ms ...Migration) {
	t.Helper()
	ctx := context.Background()
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, render(migrationsTable, db)); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		for i, s := range m.Statements {
			if err := conn.Exec(ctx, render(s, db)); err != nil {
				t.Fatalf("migration %d statement %d by hand: %v", m.Version, i+1, err)
			}
		}
		if err := recordMigration(ctx, conn, db, m); err != nil {
			t.Fatal(err)
		}
	}
}

// dailyStats is one scores_daily series × day, merged.
type dailyStats struct {
	rows, okRows, parseFailures, judgeErrors, cachedRows uint64
	sumOKScore, mean                                     float64
	quantiles                                            []float64
}

func readDaily(t *testing.T, conn driver.Conn, db, where string) dailyStats {
	t.Helper()
	var d dailyStats
	q := fmt.Sprintf(`SELECT countMerge(rows), sumMerge(ok_rows), sumMerge(sum_ok_score), avgIfMerge(mean_score),
    quantilesIfMerge(0.1, 0.5, 0.9)(score_quantiles), sumMerge(parse_failures), sumMerge(judge_errors), sumMerge(cached_rows)
FROM %s.scores_daily WHERE %s`, db, where)
	if err := conn.QueryRow(context.Background(), q).Scan(&d.rows, &d.okRows, &d.sumOKScore, &d.mean,
		&d.quantiles, &d.parseFailures, &d.judgeErrors, &d.cachedRows); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return d
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// dailyTestScores are rows with known daily aggregates (see TestClickHouseMigrateFresh).
func dailyTestScores() []record.Score {
	day := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	row := func(id string, at time.Time, evaluator, task string, score float64, status string, cached bool) record.Score {
		return record.Score{EventTime: at, ScoredAt: at.Add(time.Second), RecordID: id, TraceID: "tr-" + id,
			Source: record.Source{Topic: "traffic"}, Model: "support-llm-v7", App: "helpdesk",
			Evaluator: evaluator, RubricVersion: "rv1", Judge: "judge-a", TaskType: task,
			Value: score, Status: status, Cached: cached, Attempts: 1}
	}
	return []record.Score{
		// safety (classification, 0/1) on the 28th, spread over hours: 4 ok rows of which 3
		// pass, one parse failure, one judge error, 3 cached.
		row("s1", day, "safety", "classification", 1, record.StatusOK, true),
		row("s2", day.Add(time.Hour), "safety", "classification", 0, record.StatusOK, false),
		row("s3", day.Add(2*time.Hour), "safety", "classification", 1, record.StatusOK, true),
		row("s4", day.Add(3*time.Hour), "safety", "classification", 1, record.StatusOK, false),
		row("s5", day.Add(4*time.Hour), "safety", "classification", 0, record.StatusParseFailure, false),
		// A failed row carries no score; this one carries a stray 1 all the same, which the
		// ok-only statistics must ignore.
		row("s6", day.Add(5*time.Hour), "safety", "classification", 1, record.StatusJudgeError, true),
		// safety on the 29th: its own day.
		row("s7", day.Add(24*time.Hour), "safety", "classification", 0, record.StatusOK, false),
		// helpfulness (pointwise 1–5) on the 28th: mean of ok rows 11/3.
		row("h1", day, "helpfulness", "pointwise", 2, record.StatusOK, false),
		row("h2", day, "helpfulness", "pointwise", 4, record.StatusOK, false),
		row("h3", day, "helpfulness", "pointwise", 5, record.StatusOK, false),
		row("h4", day, "helpfulness", "pointwise", 0, record.StatusParseFailure, false),
	}
}

func TestClickHouseMigrateFresh(t *testing.T) {
	conn, cfg := newTestClickHouse(t)
	ctx := context.Background()
	db := cfg.Database
	logger, logs := migrationTestLogger()

	res, err := MigrateWith(ctx, conn, db, MigrateOptions{RetentionDays: 30, Telemetry: telemetry.Settings{Logger: logger}})
	if err != nil {
		t.Fatalf("MigrateWith: %v", err)
	}
	if !strings.HasPrefix(res.ServerVersion, "18.16") {
		t.Logf("server is %s, not 18.16: the gated-step checks below assume a server without the features", res.ServerVersion)
	}
	if got, want := migrationVersions(res.Applied), migrationVersions(Migrations()); !reflect.DeepEqual(got, want) {
		t.Fatalf("applied %v, want %v", got, want)
	}
	if res.Features != featuresFor(res.ServerVersion) {
		t.Errorf("Features = {%s}, want {%s}", res.Features, featuresFor(res.ServerVersion))
	}
	for _, table := range []string{"scores", "scores_hourly", "scores_daily", "dead_letters", "alerts", "record_sources", "schema_migrations", gatedStepsTable} {
		if ok, err := tableExists(ctx, conn, db, table); err != nil || !ok {
			t.Errorf("table %s.%s missing after Migrate (%v)", db, table, err)
		}
	}
	if err := CheckSchema(ctx, conn, db); err != nil {
		t.Fatalf("CheckSchema: %v", err)
	}

	// On a server without the features every gated step is skipped, reported on the
	// migration and as pending, logged, and not recorded; the schema keeps 18.16 types.
	if res.Features == (Features{}) {
		var want []StepRef
		for i, m := range Migrations() {
			if !reflect.DeepEqual(res.Applied[i].Skipped, m.Gated) {
				t.Errorf("migration %d Skipped = %v, want all its gated steps", m.Version, res.Applied[i].Skipped)
			}
			for _, s := range m.Gated {
				want = append(want, StepRef{m.Version, s})
			}
		}
		if !reflect.DeepEqual(res.Pending, want) {
			t.Errorf("Pending = %v, want %v", stepNames(res.Pending), stepNames(want))
		}
		if len(res.Upgraded) != 0 {
			t.Errorf("Upgraded = %v on a fresh install", stepNames(res.Upgraded))
		}
		if n := countRows(t, conn, fmt.Sprintf("SELECT count() FROM %s.%s", db, gatedStepsTable)); n != 0 {
			t.Errorf("%s has %d rows, want 0 (nothing applied)", gatedStepsTable, n)
		}
		for _, ref := range want {
			if s := ref.GatedStep; !strings.Contains(logs.String(), fmt.Sprintf("step=%q", s.Name)) {
				t.Errorf("no log line for skipped step %q", s.Name)
			}
		}
		for _, c := range []struct{ table, column string }{{"scores", "status"}, {"scores", "task_type"}, {"scores", "explanation"}, {"dead_letters", "reason"}} {
			if typ := columnType(t, conn, db, c.table, c.column); typ != "String" {
				t.Errorf("%s.%s is %s, want String on this server", c.table, c.column, typ)
			}
		}
		// Retention cannot be applied: said clearly, not an error, nothing set.
		if res.Retention != RetentionUnsupported {
			t.Errorf("Retention = %q, want %q", res.Retention, RetentionUnsupported)
		}
		if !strings.Contains(logs.String(), "retention not applied") {
			t.Errorf("no log line says retention is not applied:\n%s", logs)
		}
		for _, table := range []string{"scores", "dead_letters"} {
			if ttl, err := tableTTL(ctx, conn, db, table); err != nil || ttl != "" {
				t.Errorf("%s TTL = %q, %v; want none", table, ttl, err)
			}
		}
	}

	// scores_daily aggregates what is inserted into scores.
	if err := NewScores(conn, cfg, quiet).WriteScores(ctx, dailyTestScores()); err != nil {
		t.Fatalf("WriteScores: %v", err)
	}
	safety := readDaily(t, conn, db, "evaluator = 'safety' AND day = toDate('2026-11-28')")
	if safety.rows != 6 || safety.okRows != 4 || safety.parseFailures != 1 || safety.judgeErrors != 1 || safety.cachedRows != 3 {
		t.Errorf("safety on the 28th: rows, ok, parse failures, judge errors, cached = %d, %d, %d, %d, %d; want 6, 4, 1, 1, 3",
			safety.rows, safety.okRows, safety.parseFailures, safety.judgeErrors, safety.cachedRows)
	}
	if passRate := safety.sumOKScore / float64(safety.okRows); !near(safety.sumOKScore, 3) || !near(passRate, 0.75) || !near(safety.mean, 0.75) {
		t.Errorf("safety sum_ok_score %v, pass rate %v, mean %v; want 3, 0.75, 0.75", safety.sumOKScore, passRate, safety.mean)
	}
	// quantiles of the ok scores {0, 1, 1, 1}, interpolated.
	if q := safety.quantiles; len(q) != 3 || !near(q[0], 0.3) || !near(q[1], 1) || !near(q[2], 1) {
		t.Errorf("safety quantiles = %v, want [0.3 1 1]", q)
	}
	if next := readDaily(t, conn, db, "evaluator = 'safety' AND day = toDate('2026-11-29')"); next.rows != 1 || next.okRows != 1 || !near(next.sumOKScore, 0) {
		t.Errorf("safety on the 29th = %+v, want one ok row scoring 0", next)
	}
	help := readDaily(t, conn, db, "evaluator = 'helpfulness'")
	if help.rows != 4 || help.okRows != 3 || help.parseFailures != 1 || !near(help.mean, 11.0/3) || !near(help.sumOKScore, 11) {
		t.Errorf("helpfulness = %+v, want 4 rows, 3 ok, 1 parse failure, mean 11/3", help)
	}
	if q := help.quantiles; len(q) != 3 || !near(q[1], 4) {
		t.Errorf("helpfulness quantiles = %v, want median 4", q)
	}
	// Rolled up over both days through the sums: 4 passes of 5 ok rows.
	all := readDaily(t, conn, db, "evaluator = 'safety'")
	if !near(all.sumOKScore/float64(all.okRows), 0.6) || all.rows != 7 {
		t.Errorf("safety over both days: pass rate %v over %d rows, want 0.6 over 7", all.sumOKScore/float64(all.okRows), all.rows)
	}

	// alerts: a state change is a new row with a later updated_at; FINAL keeps the latest.
	since := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	insertAlert := func(state string, updated time.Time) error {
		q := fmt.Sprintf(`INSERT INTO %s.alerts (alert_id, rule, evaluator, model, app, judge, state, severity, observed, expected,
    interval_low, interval_high, sample_size, since, updated_at, example_record_ids, message, drilldown_sql)`, db)
		return insertRows(ctx, conn, q, "alerts", 1, func(int) []any {
			return []any{"al-1", "mean_drop", "safety", "support-llm-v7", "helpdesk", "judge-a", state, "critical", 0.6, 0.9,
				0.85, 0.95, uint64(500), since, updated, []string{"s2", "s7"}, "safety pass rate fell to 0.60",
				"SELECT * FROM " + db + ".scores FINAL WHERE evaluator = 'safety' AND status = 'ok' AND score = 0"}
		})
	}
	if err := insertAlert("pending", since); err != nil {
		t.Fatalf("insert alert: %v", err)
	}
	if err := insertAlert("firing", since.Add(5*time.Minute)); err != nil {
		t.Fatalf("insert alert update: %v", err)
	}
	if err := insertAlert("exploded", since.Add(10*time.Minute)); err == nil {
		t.Error("an alert with an unknown state was stored; want the Enum to reject it")
	}
	var state string
	var examples []string
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT toString(state), example_record_ids FROM %s.alerts FINAL WHERE alert_id = 'al-1'", db)).Scan(&state, &examples); err != nil {
		t.Fatal(err)
	}
	if state != "firing" || !reflect.DeepEqual(examples, []string{"s2", "s7"}) {
		t.Errorf("alert after update = %s %v, want firing [s2 s7]", state, examples)
	}

	// A second run is a no-op: nothing applied, nothing recorded, no definition changed,
	// the views untouched.
	before := schemaSnapshot(t, conn, db)
	migrationsBefore := countRows(t, conn, "SELECT count() FROM "+db+".schema_migrations")
	again, err := MigrateWith(ctx, conn, db, MigrateOptions{RetentionDays: 30, Telemetry: telemetry.Settings{Logger: logger}})
	if err != nil {
		t.Fatalf("second MigrateWith: %v", err)
	}
	if len(again.Applied) != 0 || len(again.Upgraded) != 0 {
		t.Errorf("second run applied %v and upgraded %v, want nothing", migrationVersions(again.Applied), stepNames(again.Upgraded))
	}
	if !reflect.DeepEqual(again.Pending, res.Pending) || again.Retention != res.Retention {
		t.Errorf("second run: pending %v, retention %q; want %v, %q", stepNames(again.Pending), again.Retention, stepNames(res.Pending), res.Retention)
	}
	if after := schemaSnapshot(t, conn, db); !reflect.DeepEqual(after, before) {
		t.Errorf("second run changed the schema:\nbefore %v\nafter  %v", before, after)
	}
	if n := countRows(t, conn, "SELECT count() FROM "+db+".schema_migrations"); n != migrationsBefore {
		t.Errorf("schema_migrations rows %d → %d on a no-op run", migrationsBefore, n)
	}
	if d := readDaily(t, conn, db, "evaluator = 'safety' AND day = toDate('2026-11-28')"); !reflect.DeepEqual(d, safety) {
		t.Errorf("scores_daily changed on a no-op run: %+v → %+v", safety, d)
	}
	// And Migrate (zero options) is the same no-op.
	if applied, err := Migrate(ctx, conn, db, quiet); err != nil || len(applied) != 0 {
		t.Errorf("Migrate after MigrateWith = %v, %v; want nothing applied", migrationVersions(applied), err)
	}
}

func TestClickHouseMigrateUpgradeFromV1(t *testing.T) {
	conn, cfg := newTestClickHouse(t)
	ctx := context.Background()
	db := cfg.Database

	// A database as the previous release left it: migration 1 only, with data.
	applyByHand(t, conn, db, Migrations()[0])
	old := testScores(300)
	writeAsV1(t, conn, db, old)
	err := CheckSchema(ctx, conn, db)
	if !errors.Is(err, ErrSchemaBehind) || !strings.Contains(err.Error(), "missing migration 2 (scores_daily, alerts)") {
		t.Fatalf("CheckSchema at version 1 = %v, want ErrSchemaBehind naming migration 2", err)
	}

	res, err := MigrateWith(ctx, conn, db, MigrateOptions{Telemetry: quiet})
	if err != nil {
		t.Fatalf("MigrateWith: %v", err)
	}
	if got := migrationVersions(res.Applied); !reflect.DeepEqual(got, []int{2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("upgrade applied %v, want [2 3 4 5 6 7 8]", got)
	}
	if res.Retention != RetentionNotRequested {
		t.Errorf("Retention = %q with RetentionDays 0", res.Retention)
	}
	if err := CheckSchema(ctx, conn, db); err != nil {
		t.Fatalf("CheckSchema after the upgrade: %v", err)
	}
	// Old rows are kept, the old view too.
	if n := countRows(t, conn, "SELECT count() FROM "+db+".scores FINAL"); n != uint64(len(old)) {
		t.Errorf("scores FINAL = %d rows after the upgrade, want %d", n, len(old))
	}
	// Migration 4 rebuilt scores_hourly from scores: the old rows are in it, with the
	// statistics over ok rows and the failure counts the rebuilt view has.
	if n := countRows(t, conn, "SELECT countMerge(rows) FROM "+db+".scores_hourly"); n != uint64(len(old)) {
		t.Errorf("scores_hourly = %d rows after the upgrade, want %d", n, len(old))
	}
	var okRows, parseFailures uint64
	var sumOK, meanOK float64
	if err := conn.QueryRow(ctx, "SELECT sumMerge(ok_rows), sumMerge(parse_failures), sumMerge(sum_ok_score), avgIfMerge(mean_score) FROM "+db+".scores_hourly").
		Scan(&okRows, &parseFailures, &sumOK, &meanOK); err != nil {
		t.Fatalf("read the rebuilt scores_hourly: %v", err)
	}
	var wantOK, wantPF uint64
	var wantSum float64
	for _, r := range old {
		switch r.Status {
		case record.StatusOK:
			wantOK++
			wantSum += r.Value
		case record.StatusParseFailure:
			wantPF++
		}
	}
	if okRows != wantOK || parseFailures != wantPF || !near(sumOK, wantSum) || !near(meanOK, wantSum/float64(wantOK)) {
		t.Errorf("rebuilt scores_hourly: ok %d, parse failures %d, ok sum %v, mean %v; want %d, %d, %v, %v",
			okRows, parseFailures, sumOK, meanOK, wantOK, wantPF, wantSum, wantSum/float64(wantOK))
	}
	// scores_daily starts at the upgrade (no backfill) and counts what comes after.
	if n := countRows(t, conn, "SELECT countMerge(rows) FROM "+db+".scores_daily"); n != 0 {
		t.Errorf("scores_daily = %d rows right after the upgrade, want 0 (no backfill)", n)
	}
	after := dailyTestScores()
	after[0].SpanID, after[0].ConversationID = "00f067aa0ba902b7", "conv-1"
	after[1].Scope, after[1].Version, after[1].LastOffset, after[1].Turns, after[1].CloseReason =
		record.ScopeConversation, 2, 1042, 5, record.CloseMaxTurns
	if err := NewScores(conn, cfg, quiet).WriteScores(ctx, after); err != nil {
		t.Fatalf("WriteScores after the upgrade: %v", err)
	}
	if d := readDaily(t, conn, db, "evaluator = 'safety' AND day = toDate('2026-11-28')"); d.rows != 6 || d.okRows != 4 || !near(d.sumOKScore, 3) {
		t.Errorf("scores_daily after the upgrade = %+v, want 6 rows, 4 ok, sum 3", d)
	}
	if n := countRows(t, conn, "SELECT count() FROM "+db+".scores FINAL"); n != uint64(len(old)+len(dailyTestScores())) {
		t.Errorf("scores FINAL = %d, want %d", n, len(old)+len(dailyTestScores()))
	}
	// Migration 6's columns: empty on the old rows, filled by the writer after.
	if n := countRows(t, conn, "SELECT count() FROM "+db+".scores WHERE span_id = '00f067aa0ba902b7' AND conversation_id = 'conv-1'"); n != 1 {
		t.Errorf("rows with the written span and conversation id = %d, want 1", n)
	}
	if n := countRows(t, conn, "SELECT count() FROM "+db+".scores WHERE span_id = '' AND conversation_id = ''"); n != uint64(len(old)+len(after)-1) {
		t.Errorf("rows without span and conversation id = %d, want %d", n, len(old)+len(after)-1)
	}
	// Migration 8's columns: the old rows read as record rows (the default scope) with no
	// segment; the writer fills them on a conversation row.
	if n := countRows(t, conn, "SELECT count() FROM "+db+".scores WHERE scope = 'record' AND conversation_version = 0 AND last_offset = 0 AND turn_count = 0 AND close_reason = ''"); n != uint64(len(old)+len(after)-1) {
		t.Errorf("record rows without a segment = %d, want %d", n, len(old)+len(after)-1)
	}
	if n := countRows(t, conn, "SELECT count() FROM "+db+".scores WHERE scope = 'conversation' AND conversation_version = 2 AND last_offset = 1042 AND turn_count = 5 AND close_reason = 'max_turns'"); n != 1 {
		t.Errorf("conversation rows with their segment = %d, want 1", n)
	}

	// And again: nothing to do.
	if again, err := MigrateWith(ctx, conn, db, MigrateOptions{Telemetry: quiet}); err != nil || len(again.Applied) != 0 || len(again.Upgraded) != 0 {
		t.Errorf("second upgrade run = %v, %v, %v; want nothing applied", migrationVersions(again.Applied), stepNames(again.Upgraded), err)
	}
}

// TestClickHouseCheckSchemaNamesFirstMissing walks a database up one migration at a time:
// at every version CheckSchema names exactly the next migration.
func TestClickHouseCheckSchemaNamesFirstMissing(t *testing.T) {
	conn, cfg := newTestClickHouse(t)
	ctx := context.Background()
	applyByHand(t, conn, cfg.Database)
	for i, m := range Migrations() {
		err := CheckSchema(ctx, conn, cfg.Database)
		want := fmt.Sprintf("at version %d, missing migration %d (%s)", i, m.Version, m.Name)
		if !errors.Is(err, ErrSchemaBehind) || !strings.Contains(fmt.Sprint(err), want) {
			t.Fatalf("CheckSchema at version %d = %v, want ErrSchemaBehind with %q", i, err, want)
		}
		applyByHand(t, conn, cfg.Database, m)
	}
	if err := CheckSchema(ctx, conn, cfg.Database); err != nil {
		t.Fatalf("CheckSchema at the latest version: %v", err)
	}
}

// TestClickHouseMigrateGatedSteps exercises the gating machinery on the 18.16 server with
// a migration list whose gated steps are plain 18.16 statements and a feature decision
// the test controls: skipped steps are recorded nowhere, applied once the "server" has
// the feature, recorded, never repeated, and a failing step stops the migration before it
// is recorded.
func TestClickHouseMigrateGatedSteps(t *testing.T) {
	conn, cfg := newTestClickHouse(t)
	ctx := context.Background()
	db := cfg.Database
	table := func(name string) string {
		return "CREATE TABLE IF NOT EXISTS {db}." + name + " (x UInt8) ENGINE = MergeTree ORDER BY x"
	}
	ms := []Migration{
		{Version: 1, Name: "ledger", Statements: []string{gatedStepsDDL}},
		{Version: 2, Name: "probe", Statements: []string{table("base_probe")}, Gated: []GatedStep{
			{FeatureTTL, "ttl probe", table("ttl_probe")},
			{FeatureCodecs, "codec probe", table("codec_probe")},
		}},
	}
	none := func(string) Features { return Features{} }
	ttlOnly := func(string) Features { return Features{TTL: true} }
	exists := func(name string) bool {
		ok, err := tableExists(ctx, conn, db, name)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	// An old server: both steps skipped, the migration recorded anyway.
	res, err := migrate(ctx, conn, db, MigrateOptions{Telemetry: quiet}, ms, none)
	if err != nil {
		t.Fatal(err)
	}
	if got := migrationVersions(res.Applied); !reflect.DeepEqual(got, []int{1, 2}) || len(res.Applied[1].Skipped) != 2 {
		t.Fatalf("applied %v with skipped %v, want [1 2] with both steps skipped", got, res.Applied[1].Skipped)
	}
	if got := stepNames(res.Pending); !reflect.DeepEqual(got, []string{"2/ttl probe", "2/codec probe"}) {
		t.Errorf("Pending = %v", got)
	}
	if !exists("base_probe") || exists("ttl_probe") || exists("codec_probe") {
		t.Fatal("gated steps ran on a server without the features")
	}

	// The server was upgraded and has TTL now: that step alone is applied and recorded.
	res, err = migrate(ctx, conn, db, MigrateOptions{Telemetry: quiet}, ms, ttlOnly)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 0 || !reflect.DeepEqual(stepNames(res.Upgraded), []string{"2/ttl probe"}) ||
		!reflect.DeepEqual(stepNames(res.Pending), []string{"2/codec probe"}) {
		t.Fatalf("after the upgrade: applied %v, upgraded %v, pending %v", migrationVersions(res.Applied), stepNames(res.Upgraded), stepNames(res.Pending))
	}
	if !exists("ttl_probe") || exists("codec_probe") {
		t.Fatal("the upgrade did not apply exactly the TTL step")
	}
	var step, feature, server string
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT step, feature, server_version FROM %s.%s WHERE version = 2", db, gatedStepsTable)).Scan(&step, &feature, &server); err != nil {
		t.Fatal(err)
	}
	if step != "ttl probe" || feature != "ttl" || server != res.ServerVersion {
		t.Errorf("ledger row = %q %q %q", step, feature, server)
	}

	// Nothing left to do for this "server".
	res, err = migrate(ctx, conn, db, MigrateOptions{Telemetry: quiet}, ms, ttlOnly)
	if err != nil || len(res.Applied) != 0 || len(res.Upgraded) != 0 {
		t.Fatalf("third run = applied %v, upgraded %v, %v; want nothing", migrationVersions(res.Applied), stepNames(res.Upgraded), err)
	}
	if n := countRows(t, conn, fmt.Sprintf("SELECT count() FROM %s.%s", db, gatedStepsTable)); n != 1 {
		t.Errorf("ledger has %d rows, want 1", n)
	}

	// A gated step that fails stops its migration before it is recorded; once it is
	// fixed, a re-run applies it and the migration.
	broken := append(ms, Migration{Version: 3, Name: "broken", Statements: []string{table("base3_probe")}, Gated: []GatedStep{
		{FeatureTTL, "bad step", "ALTER TABLE {db}.no_such_table ADD COLUMN y UInt8"},
	}})
	_, err = migrate(ctx, conn, db, MigrateOptions{Telemetry: quiet}, broken, ttlOnly)
	if err == nil || !strings.Contains(err.Error(), `gated step "bad step"`) {
		t.Fatalf("failing gated step: err = %v, want one naming the step", err)
	}
	if v, err := appliedVersion(ctx, conn, db); err != nil || v != 2 {
		t.Fatalf("version after a failed gated step = %d, %v; want 2", v, err)
	}
	broken[2].Gated[0].Statement = table("fixed_probe")
	res, err = migrate(ctx, conn, db, MigrateOptions{Telemetry: quiet}, broken, ttlOnly)
	if err != nil || !reflect.DeepEqual(migrationVersions(res.Applied), []int{3}) || !exists("fixed_probe") {
		t.Fatalf("re-run after the fix = applied %v, %v", migrationVersions(res.Applied), err)
	}
}

func TestClickHouseMigrateRejectsBadOptions(t *testing.T) {
	conn, cfg := newTestClickHouse(t)
	_, err := MigrateWith(context.Background(), conn, cfg.Database, MigrateOptions{RetentionDays: -1, Telemetry: quiet})
	if err == nil || !strings.Contains(err.Error(), "retention_days") {
		t.Fatalf("MigrateWith(RetentionDays -1) = %v, want an error naming retention_days", err)
	}
	if n := countRows(t, conn, fmt.Sprintf("SELECT count() FROM system.databases WHERE name = '%s'", cfg.Database)); n != 0 {
		t.Error("MigrateWith with bad options created the database")
	}
}
