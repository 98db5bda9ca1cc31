package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/internal/telemetry"
	"raterd/internal/testkit"
	"raterd/record"
)

// quiet discards the logs of the code under test.
var quiet = telemetry.Settings{Logger: slog.New(slog.DiscardHandler)}

// uniqueName returns prefix followed by a suffix unique to this run.
func uniqueName(prefix string) string {
	return prefix + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// newTestClickHouse connects to the test server with a fresh database name (not created)
// and drops that database when the test ends.
func newTestClickHouse(t *testing.T) (driver.Conn, Config) {
	t.Helper()
	addr := testkit.Service(t, "RATERD_TEST_CLICKHOUSE", "ClickHouse")
	cfg := Config{Addrs: []string{addr}, Database: uniqueName("raterd_sinks_test_")}
	if err := cfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database); err != nil {
			t.Errorf("drop database %s: %v", cfg.Database, err)
		}
		_ = conn.Close()
	})
	return conn, cfg
}

func countRows(t *testing.T, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestClickHouseMigrate(t *testing.T) {
	conn, cfg := newTestClickHouse(t)
	ctx := context.Background()
	db := cfg.Database

	applied, err := Migrate(ctx, conn, db, quiet)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if len(applied) != len(Migrations()) {
		t.Fatalf("first Migrate applied %d migrations, want %d", len(applied), len(Migrations()))
	}
	for i, m := range applied {
		if m.Version != i+1 {
			t.Errorf("applied[%d].Version = %d", i, m.Version)
		}
	}
	// Recorded, one row per migration.
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT version, name FROM %s.schema_migrations FINAL ORDER BY version", db))
	if err != nil {
		t.Fatal(err)
	}
	var recorded []int
	for rows.Next() {
		var v uint32
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			t.Fatal(err)
		}
		if name != Migrations()[int(v)-1].Name {
			t.Errorf("migration %d recorded with name %q", v, name)
		}
		recorded = append(recorded, int(v))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	_ = rows.Close()
	var want []int
	for _, m := range Migrations() {
		want = append(want, m.Version)
	}
	if !reflect.DeepEqual(recorded, want) {
		t.Fatalf("recorded versions %v, want %v", recorded, want)
	}
	for _, table := range []string{"scores", "scores_hourly", "dead_letters", "schema_migrations"} {
		q := fmt.Sprintf("SELECT count() FROM system.tables WHERE database = '%s' AND name = '%s'", db, table)
		if countRows(t, conn, q) != 1 {
			t.Errorf("table %s.%s missing after Migrate", db, table)
		}
	}

	again, err := Migrate(ctx, conn, db, quiet)
	if err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if len(again) != 0 {
		t.Fatalf("second Migrate applied %d migrations, want 0", len(again))
	}
	if n := countRows(t, conn, fmt.Sprintf("SELECT count() FROM %s.schema_migrations", db)); n != uint64(len(Migrations())) {
		t.Errorf("schema_migrations has %d rows after a second Migrate, want %d", n, len(Migrations()))
	}
	if err := CheckSchema(ctx, conn, db); err != nil {
		t.Fatalf("CheckSchema after Migrate: %v", err)
	}
}

func TestClickHouseCheckSchemaBehind(t *testing.T) {
	conn, cfg := newTestClickHouse(t)
	ctx := context.Background()

	// The database does not exist at all.
	err := CheckSchema(ctx, conn, cfg.Database)
	if !errors.Is(err, ErrSchemaBehind) || !strings.Contains(fmt.Sprint(err), "missing migration 1") {
		t.Fatalf("CheckSchema on a missing database = %v, want ErrSchemaBehind naming missing migration 1", err)
	}

	// The database exists but holds no schema.
	if err := conn.Exec(ctx, "CREATE DATABASE "+cfg.Database); err != nil {
		t.Fatal(err)
	}
	err = CheckSchema(ctx, conn, cfg.Database)
	if !errors.Is(err, ErrSchemaBehind) || !strings.Contains(fmt.Sprint(err), "missing migration 1") {
		t.Fatalf("CheckSchema on an empty database = %v, want ErrSchemaBehind naming missing migration 1", err)
	}

	// An empty schema_migrations table (created, nothing applied) is also behind.
	if err := conn.Exec(ctx, render(migrationsTable, cfg.Database)); err != nil {
		t.Fatal(err)
	}
	err = CheckSchema(ctx, conn, cfg.Database)
	if !errors.Is(err, ErrSchemaBehind) || !strings.Contains(fmt.Sprint(err), "missing migration 1") {
		t.Fatalf("CheckSchema with an empty schema_migrations = %v, want ErrSchemaBehind naming missing migration 1", err)
	}
}

// testScores returns n varied score rows, all in one hour of one day.
func testScores(n int) []record.Score {
	base := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	evaluators := []string{"helpfulness", "safety", "pairwise_pref"}
	tasks := []string{"pointwise", "classification", "pairwise"}
	statuses := []string{record.StatusOK, record.StatusOK, record.StatusOK, record.StatusParseFailure, record.StatusJudgeError}
	rows := make([]record.Score, n)
	for i := range rows {
		var labels map[string]string
		switch i % 3 {
		case 1:
			labels = map[string]string{"region": "eu"}
		case 2:
			labels = map[string]string{"tier": "gold", "region": "us-east", "ünï": "cödé ✓"}
		}
		rows[i] = record.Score{
			EventTime:     base.Add(time.Duration(i) * time.Second),
			ScoredAt:      base.Add(time.Duration(i)*time.Second + time.Minute),
			RecordID:      fmt.Sprintf("req-%05d", i),
			TraceID:       fmt.Sprintf("trace-%d", i%17),
			Source:        record.Source{Topic: "traffic", Partition: i % 4, Offset: int64(1000 + i)},
			Model:         fmt.Sprintf("support-llm-v%d", i%2+6),
			App:           []string{"", "helpdesk", "search"}[i%3],
			Labels:        labels,
			Evaluator:     evaluators[i%len(evaluators)],
			RubricVersion: "rv-" + strconv.Itoa(i%2),
			Judge:         "judge-a",
			TaskType:      tasks[i%len(tasks)],
			Value:         float64(i%5) + 1,
			Label:         []string{"", "good", "bad"}[i%3],
			Confidence:    float64(i%4) / 4,
			Explanation:   fmt.Sprintf("réponse n°%d — clair, précis ✓ 日本語 🙂", i),
			Status:        statuses[i%len(statuses)],
			Cached:        i%2 == 0,
			JudgeLatency:  time.Duration(i%900+1) * time.Millisecond,
			Attempts:      i%3 + 1,
		}
	}
	return rows
}

func TestClickHouseScores(t *testing.T) {
	conn, cfg := newTestClickHouse(t)
	ctx := context.Background()
	db := cfg.Database
	if _, err := Migrate(ctx, conn, db, quiet); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	sink := NewScores(conn, cfg, quiet)
	const n = 2000
	rows := testScores(n)
	if err := sink.WriteScores(ctx, rows); err != nil {
		t.Fatalf("WriteScores: %v", err)
	}
	if err := sink.WriteScores(ctx, nil); err != nil {
		t.Fatalf("WriteScores(nil): %v", err)
	}
	if got := countRows(t, conn, "SELECT count() FROM "+db+".scores FINAL"); got != n {
		t.Fatalf("count() FINAL = %d, want %d", got, n)
	}

	// Round-trip one row with labels, unicode, cache flag and latency.
	want := rows[1334] // cached, three labels, unicode
	var (
		eventTime, scoredAt                                            time.Time
		recordID, traceID, topic, model, app, evaluator, rubric, judge string
		taskType, label, explanation, status                           string
		partition, latency                                             uint32
		offset                                                         uint64
		keys, values                                                   []string
		score                                                          float64
		confidence                                                     float32
		cached                                                         uint8
		attempts                                                       uint16
	)
	q := fmt.Sprintf(`SELECT event_time, scored_at, record_id, trace_id, topic, partition, offset, model, app,
    label_keys, label_values, evaluator, rubric_version, judge, task_type, score, label, confidence,
    explanation, status, cached, judge_latency_ms, attempts
FROM %s.scores FINAL WHERE record_id = '%s'`, db, want.RecordID)
	if err := conn.QueryRow(ctx, q).Scan(&eventTime, &scoredAt, &recordID, &traceID, &topic, &partition, &offset,
		&model, &app, &keys, &values, &evaluator, &rubric, &judge, &taskType, &score, &label, &confidence,
		&explanation, &status, &cached, &latency, &attempts); err != nil {
		t.Fatalf("read back %s: %v", want.RecordID, err)
	}
	wantKeys, wantValues := sortedLabels(want.Labels)
	checks := []struct {
		col       string
		got, want any
	}{
		{"event_time", eventTime.UTC(), want.EventTime},
		{"scored_at", scoredAt.UTC(), want.ScoredAt},
		{"record_id", recordID, want.RecordID},
		{"trace_id", traceID, want.TraceID},
		{"topic", topic, want.Source.Topic},
		{"partition", int(partition), want.Source.Partition},
		{"offset", int64(offset), want.Source.Offset},
		{"model", model, want.Model},
		{"app", app, want.App},
		{"label_keys", keys, wantKeys},
		{"label_values", values, wantValues},
		{"evaluator", evaluator, want.Evaluator},
		{"rubric_version", rubric, want.RubricVersion},
		{"judge", judge, want.Judge},
		{"task_type", taskType, want.TaskType},
		{"score", score, want.Value},
		{"label", label, want.Label},
		{"confidence", float64(confidence), want.Confidence},
		{"explanation", explanation, want.Explanation},
		{"status", status, want.Status},
		{"cached", cached == 1, want.Cached},
		{"judge_latency_ms", int64(latency), want.JudgeLatency.Milliseconds()},
		{"attempts", int(attempts), want.Attempts},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.col, c.got, c.want)
		}
	}
	if len(want.Labels) != 3 || !want.Cached || want.JudgeLatency == 0 {
		t.Fatalf("test row %s is not varied enough: %+v", want.RecordID, want)
	}
	// Rows without labels store empty arrays.
	if got := countRows(t, conn, "SELECT count() FROM "+db+".scores FINAL WHERE empty(label_keys) AND empty(label_values)"); got != n/3+1 {
		t.Errorf("rows without labels = %d, want %d", got, n/3+1)
	}

	// A replay of the same rows collapses to one row each.
	if err := sink.WriteScores(ctx, rows); err != nil {
		t.Fatalf("replayed WriteScores: %v", err)
	}
	if got := countRows(t, conn, "SELECT count() FROM "+db+".scores FINAL"); got != n {
		t.Fatalf("count() FINAL after replay = %d, want %d", got, n)
	}
	if err := conn.Exec(ctx, "OPTIMIZE TABLE "+db+".scores FINAL"); err != nil {
		t.Fatalf("OPTIMIZE: %v", err)
	}
	if got := countRows(t, conn, "SELECT count() FROM "+db+".scores"); got != n {
		t.Fatalf("count() after replay and OPTIMIZE FINAL = %d, want %d", got, n)
	}

	// The hourly view counts every inserted block, replays included (see migrations.go).
	if got := countRows(t, conn, "SELECT countMerge(rows) FROM "+db+".scores_hourly"); got != 2*n {
		t.Errorf("scores_hourly countMerge(rows) = %d, want %d (2 inserts of %d)", got, 2*n, n)
	}
	var okRows, cachedRows uint64
	if err := conn.QueryRow(ctx, "SELECT sumMerge(ok_rows), sumMerge(cached_rows) FROM "+db+".scores_hourly").Scan(&okRows, &cachedRows); err != nil {
		t.Fatal(err)
	}
	var wantOK, wantCached uint64
	for _, r := range rows {
		if r.Status == record.StatusOK {
			wantOK += 2
		}
		if r.Cached {
			wantCached += 2
		}
	}
	if okRows != wantOK || cachedRows != wantCached {
		t.Errorf("scores_hourly ok_rows, cached_rows = %d, %d; want %d, %d", okRows, cachedRows, wantOK, wantCached)
	}
	var mean float64
	if err := conn.QueryRow(ctx, "SELECT avgIfMerge(mean_score) FROM "+db+".scores_hourly WHERE evaluator = 'safety'").Scan(&mean); err != nil {
		t.Fatal(err)
	}
	// The mean is over ok rows: a failed judgement's 0 is not a score.
	var sum, cnt float64
	for _, r := range rows {
		if r.Evaluator == "safety" && r.Status == record.StatusOK {
			sum += r.Value
			cnt++
		}
	}
	if d := mean - sum/cnt; d > 1e-9 || d < -1e-9 {
		t.Errorf("scores_hourly mean score of safety = %v, want %v", mean, sum/cnt)
	}
}

func TestClickHouseScoresCancelledContext(t *testing.T) {
	conn, cfg := newTestClickHouse(t)
	if _, err := Migrate(context.Background(), conn, cfg.Database, quiet); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := NewScores(conn, cfg, quiet).WriteScores(ctx, testScores(10))
	if err == nil {
		t.Fatal("WriteScores with a cancelled context = nil, want an error")
	}
	if got := countRows(t, conn, "SELECT count() FROM "+cfg.Database+".scores"); got != 0 {
		t.Errorf("WriteScores with a cancelled context stored %d rows", got)
	}
	// The connection pool is still usable afterwards.
	if err := NewScores(conn, cfg, quiet).WriteScores(context.Background(), testScores(3)); err != nil {
		t.Fatalf("WriteScores after a cancelled one: %v", err)
	}
}

func TestClickHouseScoresMissingTable(t *testing.T) {
	conn, cfg := newTestClickHouse(t)
	// No Migrate: the database does not exist, so the insert must fail, not return nil.
	if err := NewScores(conn, cfg, quiet).WriteScores(context.Background(), testScores(1)); err == nil {
		t.Fatal("WriteScores into a missing table = nil, want an error")
	}
}

func TestClickHouseDeadLetters(t *testing.T) {
	conn, cfg := newTestClickHouse(t)
	ctx := context.Background()
	if _, err := Migrate(ctx, conn, cfg.Database, quiet); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	seen := time.Date(2026, 11, 28, 12, 30, 0, 0, time.UTC)
	letters := []record.DeadLetter{
		{Source: record.Source{Topic: "traffic", Partition: 0, Offset: 10}, Key: []byte("k0"), Value: []byte(`{"id":`),
			Reason: "invalid_json", Error: "unexpected end of JSON input", FirstSeen: seen, Attempts: 1},
		{Source: record.Source{Topic: "traffic", Partition: 2, Offset: 99}, Value: []byte(`{"id":"x"}`),
			Reason: "missing_field", Error: `record lacks "model"`, FirstSeen: seen.Add(time.Second), Attempts: 3},
		{Source: record.Source{Topic: "other.topic", Partition: 1, Offset: 0}, Key: []byte("ünï"), Value: []byte("\xff\xfe\x00bin"),
			Reason: "invalid_utf8", Error: "value is not UTF-8", FirstSeen: seen.Add(2 * time.Second), Attempts: 1},
	}
	sink := NewDeadLetters(conn, cfg, quiet)
	if err := sink.WriteDeadLetters(ctx, letters); err != nil {
		t.Fatalf("WriteDeadLetters: %v", err)
	}
	if err := sink.WriteDeadLetters(ctx, nil); err != nil {
		t.Fatalf("WriteDeadLetters(nil): %v", err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT seen_at, topic, partition, offset, reason, error, key, value, attempts
FROM %s.dead_letters FINAL ORDER BY seen_at`, cfg.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for ; rows.Next(); i++ {
		var (
			seenAt                         time.Time
			topic, reason, msg, key, value string
			partition                      uint32
			offset                         uint64
			attempts                       uint16
		)
		if err := rows.Scan(&seenAt, &topic, &partition, &offset, &reason, &msg, &key, &value, &attempts); err != nil {
			t.Fatal(err)
		}
		if i >= len(letters) {
			continue
		}
		w := letters[i]
		got := record.DeadLetter{Source: record.Source{Topic: topic, Partition: int(partition), Offset: int64(offset)},
			Key: []byte(key), Value: []byte(value), Reason: reason, Error: msg, FirstSeen: seenAt.UTC(), Attempts: int(attempts)}
		if len(w.Key) == 0 {
			w.Key = []byte{}
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("dead letter %d = %+v\nwant %+v", i, got, w)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(letters) {
		t.Fatalf("read back %d dead letters, want %d", i, len(letters))
	}
}
