package clickhouse

// The current ClickHouse release, through chdb: Debian's server in the other tests is
// 18.16, so this runs raterd's SQL on ClickHouse 26.9 as an in-process engine (chdb-core,
// installed by scripts/services.sh; skipped without RATERD_TEST_CHDB_PYTHON, failed with
// RATERD_REQUIRE_SERVICES=1). It covers what 18.16 cannot show: every migration with
// every gated step and the retention TTL, the deduplication token's effect on the table
// and its views, and the SQL cookbook's answers — all through the SQL raterd sends.
// What it does not cover is the native-protocol path (chdb has no server); the 18.16
// tests cover that, and TestClickHouseDedupTokenSent shows the token reaches the server.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"raterd/internal/testkit"
	"raterd/record"
)

// chdbSession is a chdb process (testdata/chdb_exec.py) holding one database session.
type chdbSession struct {
	in  io.WriteCloser
	out *bufio.Reader
}

func startChdb(t *testing.T, python string) *chdbSession {
	t.Helper()
	cmd := exec.Command(python, "testdata/chdb_exec.py", t.TempDir())
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chdb (%s): %v", python, err)
	}
	t.Cleanup(func() {
		_ = in.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("chdb process: %v\n%s", err, stderr.String())
		}
	})
	return &chdbSession{in: in, out: bufio.NewReaderSize(out, 1<<20)}
}

// run sends one statement and returns its output in format.
func (c *chdbSession) run(sql, format string) (string, error) {
	req, _ := json.Marshal(map[string]string{"sql": sql, "format": format})
	if _, err := c.in.Write(append(req, '\n')); err != nil {
		return "", fmt.Errorf("send to chdb: %w", err)
	}
	line, err := c.out.ReadBytes('\n')
	if err != nil {
		return "", fmt.Errorf("read from chdb: %w", err)
	}
	var resp struct{ Out, Error string }
	if err := json.Unmarshal(line, &resp); err != nil {
		return "", fmt.Errorf("chdb answer %q: %w", line, err)
	}
	if resp.Error != "" {
		return "", fmt.Errorf("chdb: %s", resp.Error)
	}
	return resp.Out, nil
}

func (c *chdbSession) exec(t *testing.T, sql string) {
	t.Helper()
	if _, err := c.run(sql, "TSV"); err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
}

// value runs a query returning one String and returns it; the lookup of renderStep.
func (c *chdbSession) value(_ context.Context, query string) (string, error) {
	out, err := c.run(query, "TSVRaw")
	if err != nil {
		return "", err
	}
	if out = strings.TrimSuffix(out, "\n"); out == "" || strings.Contains(out, "\n") {
		return "", fmt.Errorf("%q: want one value, got %q", query, out)
	}
	return out, nil
}

func (c *chdbSession) count(t *testing.T, query string) uint64 {
	t.Helper()
	s, err := c.value(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("%s: %q is not a count", query, s)
	}
	return n
}

// table runs a query and returns its columns and rows normalized as queryTable does:
// numbers as float64 (null, which JSON output makes of nan, as NaN), the rest as strings.
func (c *chdbSession) table(sql string) ([]string, [][]any, error) {
	out, err := c.run(sql, "JSONCompact")
	if err != nil {
		return nil, nil, err
	}
	var res struct {
		Meta []struct{ Name, Type string }
		Data [][]any
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		return nil, nil, fmt.Errorf("decode %q: %w", out, err)
	}
	cols := make([]string, len(res.Meta))
	numeric := make([]bool, len(res.Meta))
	for i, m := range res.Meta {
		cols[i] = m.Name
		typ := strings.TrimPrefix(strings.TrimSuffix(m.Type, ")"), "Nullable(")
		numeric[i] = strings.HasPrefix(typ, "Int") || strings.HasPrefix(typ, "UInt") || strings.HasPrefix(typ, "Float")
	}
	rows := make([][]any, len(res.Data))
	for r, data := range res.Data {
		rows[r] = make([]any, len(data))
		for i, v := range data {
			switch {
			case numeric[i] && v == nil:
				rows[r][i] = math.NaN()
			case numeric[i]:
				f, err := v.(json.Number).Float64()
				if err != nil {
					return nil, nil, fmt.Errorf("column %s: %v", cols[i], err)
				}
				rows[r][i] = f
			default:
				rows[r][i] = v
			}
		}
	}
	return cols, rows, nil
}

// insertScores sends rows as the writer would, as one insert carrying token.
func (c *chdbSession) insertScores(t *testing.T, db string, rows []record.Score, token string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s.scores (%s) SETTINGS insert_deduplication_token = '%s', "+
		"deduplicate_blocks_in_dependent_materialized_views = 1 FORMAT JSONEachRow\n", db, scoreColumns, token)
	for _, r := range rows {
		keys, values := sortedLabels(r.Labels)
		line, err := json.Marshal(map[string]any{
			"event_time": r.EventTime.UTC().Format(time.DateTime), "scored_at": r.ScoredAt.UTC().Format(time.DateTime),
			"record_id": r.RecordID, "trace_id": r.TraceID, "topic": r.Source.Topic,
			"partition": r.Source.Partition, "offset": r.Source.Offset, "model": r.Model, "app": r.App,
			"label_keys": keys, "label_values": values, "evaluator": r.Evaluator, "rubric_version": r.RubricVersion,
			"judge": r.Judge, "task_type": r.TaskType, "score": r.Value, "label": r.Label, "confidence": r.Confidence,
			"explanation": r.Explanation, "status": r.Status, "cached": boolToUint8(r.Cached),
			"judge_latency_ms": r.JudgeLatency.Milliseconds(), "attempts": r.Attempts,
			"span_id": r.SpanID, "conversation_id": r.ConversationID, "scope": scopeOf(&r),
			"conversation_version": r.Version, "last_offset": r.LastOffset, "turn_count": r.Turns,
			"close_reason": r.CloseReason,
		})
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	c.exec(t, b.String())
}

func TestCurrentReleaseSQL(t *testing.T) {
	ch := startChdb(t, testkit.Service(t, "RATERD_TEST_CHDB_PYTHON", "Python with chdb, a current ClickHouse release"))
	ctx := context.Background()
	ch.exec(t, "SET session_timezone = 'UTC'")
	ch.exec(t, "SET output_format_json_quote_64bit_integers = 0")
	version, err := ch.value(ctx, "SELECT version()")
	if err != nil {
		t.Fatal(err)
	}
	all := Features{TTL: true, LowCardinality: true, Codecs: true, SkipIndexes: true, InsertDedup: true}
	if got := featuresFor(version); got != all {
		t.Fatalf("ClickHouse %s: features {%s}, want all of them", version, got)
	}
	t.Logf("ClickHouse %s (chdb)", version)

	// Every migration and gated step, twice: each statement must be idempotent.
	const db = "raterd_current"
	const days = 36500 // retention far beyond the fixture's dates, so TTL drops nothing
	ch.exec(t, "CREATE DATABASE IF NOT EXISTS "+db)
	ch.exec(t, render(migrationsTable, db))
	for pass := 1; pass <= 2; pass++ {
		for _, m := range Migrations() {
			for _, c := range m.AddColumns { // as addColumns does: only when missing
				n, err := ch.value(ctx, fmt.Sprintf("SELECT toString(count()) FROM system.columns WHERE database = '%s' AND table = '%s' AND name = '%s'", db, c.Table, c.Name))
				if err != nil {
					t.Fatalf("pass %d, migration %d column %s: %v", pass, m.Version, c.Name, err)
				}
				if n == "0" {
					ch.exec(t, c.statement(db))
				}
			}
			for _, s := range m.Statements {
				ch.exec(t, render(s, db))
			}
			for _, g := range m.Gated {
				stmt, err := renderStep(ctx, g.Statement, db, ch.value)
				if err != nil {
					t.Fatalf("pass %d, migration %d step %q: %v", pass, m.Version, g.Name, err)
				}
				ch.exec(t, stmt)
			}
		}
		for _, target := range retentionTargets {
			ch.exec(t, retentionStatement(db, target.table, target.column, days))
		}
	}

	// The definitions the server keeps: what each gated step and the TTL did, and that
	// parseTTL reads this release's output.
	create := func(table string) string {
		t.Helper()
		s, err := ch.value(ctx, fmt.Sprintf("SELECT create_table_query FROM system.tables WHERE database = '%s' AND name = '%s'", db, table))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	window := "non_replicated_deduplication_window = 1000"
	scores, dead := create("scores"), create("dead_letters")
	for _, want := range []string{"INDEX record_id_bf record_id TYPE bloom_filter(0.01)", "INDEX trace_id_bf", "`trace_id` String, `span_id` String, `conversation_id` String, `scope` String DEFAULT 'record', `conversation_version` UInt32",
		"`offset` UInt64, `last_offset` UInt64", "`turn_count` UInt32, `close_reason` String",
		"`explanation` String CODEC(ZSTD(3))", "`status` LowCardinality(String)", "`topic` LowCardinality(String)", window} {
		if !strings.Contains(scores, want) {
			t.Errorf("scores lacks %q:\n%s", want, scores)
		}
	}
	for _, want := range []string{"`value` String CODEC(ZSTD(3))", "`reason` LowCardinality(String)", window} {
		if !strings.Contains(dead, want) {
			t.Errorf("dead_letters lacks %q:\n%s", want, dead)
		}
	}
	if got, want := parseTTL(scores), fmt.Sprintf("event_time + toIntervalDay(%d)", days); got != want {
		t.Errorf("parseTTL(scores) = %q, want %q", got, want)
	}
	if got, want := parseTTL(dead), fmt.Sprintf("seen_at + toIntervalDay(%d)", days); got != want {
		t.Errorf("parseTTL(dead_letters) = %q, want %q", got, want)
	}
	for _, view := range []string{"scores_hourly", "scores_daily"} {
		inner, err := ch.value(ctx, innerTableQuery(db, view))
		if err != nil {
			t.Fatal(err)
		}
		if def := create(inner); !strings.Contains(def, window) {
			t.Errorf("%s's table %s lacks %q:\n%s", view, inner, window, def)
		}
	}

	// The writer's insert, then the same insert again (an attempt whose answer was lost):
	// the table and both views keep one copy.
	rows := loadCookbookFixture(t)
	n := uint64(len(rows))
	token := scoreInsertToken(rows)
	ch.insertScores(t, db, rows, token)
	ch.insertScores(t, db, rows, token)
	for _, stmt := range cookbookAlertInserts(db) {
		ch.exec(t, stmt)
	}
	if got := ch.count(t, "SELECT count() FROM "+db+".scores"); got != n {
		t.Errorf("scores after a retried insert: %d rows before merges, want %d (the retry absorbed)", got, n)
	}
	for _, view := range []string{"scores_hourly", "scores_daily"} {
		if got := ch.count(t, "SELECT countMerge(rows) FROM "+db+"."+view); got != n {
			t.Errorf("%s after a retried insert counts %d rows, want %d", view, got, n)
		}
	}
	checkCookbookWith(t, ch.table, db, "ClickHouse "+version+", insert and its retry")

	// A replay regrouped into other inserts has other tokens: the rows land again, and
	// every cookbook answer stays the same (FINAL and argMax collapse them).
	half := len(rows) / 2
	ch.insertScores(t, db, rows[:half], scoreInsertToken(rows[:half]))
	ch.insertScores(t, db, rows[half:], scoreInsertToken(rows[half:]))
	if got := ch.count(t, "SELECT count() FROM "+db+".scores"); got != 2*n {
		t.Errorf("scores after a regrouped replay: %d rows before merges, want %d", got, 2*n)
	}
	if got := ch.count(t, "SELECT count() FROM "+db+".scores FINAL"); got != n {
		t.Errorf("scores FINAL after a regrouped replay: %d rows, want %d", got, n)
	}
	checkCookbookWith(t, ch.table, db, "ClickHouse "+version+", regrouped replay")

	// A rescore under a new rubric version is new rows, not a retry: its token differs.
	rescored := make([]record.Score, half)
	copy(rescored, rows[:half])
	for i := range rescored {
		rescored[i].RubricVersion += "-next"
	}
	ch.insertScores(t, db, rescored, scoreInsertToken(rescored))
	if got := ch.count(t, "SELECT count() FROM "+db+".scores FINAL"); got != n+uint64(half) {
		t.Errorf("scores FINAL after a rescore: %d rows, want %d", got, n+uint64(half))
	}

	// record_sources (migration 7) on this release: two messages that carry one id are
	// listed by SharedIDsQuery; the replays above (same offsets) are not.
	shared, err := SharedIDsQuery().Render(db, map[string]string{"from": "1970-01-01", "to": "2105-12-31"})
	if err != nil {
		t.Fatal(err)
	}
	before := ch.count(t, "SELECT count() FROM ("+shared+")")
	twins := []record.Score{rows[0], rows[0]}
	twins[0].RecordID, twins[1].RecordID = "shared-id-twin", "shared-id-twin"
	twins[1].Source.Offset++
	ch.insertScores(t, db, twins, scoreInsertToken(twins))
	if got := ch.count(t, "SELECT count() FROM ("+shared+") WHERE record_id = 'shared-id-twin' AND n_offsets = 2"); got != 1 {
		t.Errorf("SharedIDsQuery lists %d rows of two messages with one id, want 1", got)
	}
	if got := ch.count(t, "SELECT count() FROM ("+shared+")"); got != before+1 {
		t.Errorf("SharedIDsQuery lists %d ids after adding one, had %d", got, before)
	}
	// Scores the report cannot sum (JSON carries no nan): counted as skipped.
	overflow := nonFiniteRows(rows[0], false)
	ch.insertScores(t, db, overflow, scoreInsertToken(overflow))
	checkNonFiniteCells(t, ch.table, db, 2)
}

// TestCurrentReleaseRolesSQLParses: deploy/clickhouse/roles.sql (least privilege with SQL
// roles, which 18.16 lacks) parses on the current release. chdb has no access control, so
// each statement ends at the access check (ACCESS_DENIED, or UNKNOWN_ROLE for a GRANT of a
// role it could not create), which it reaches only after parsing; a misspelt privilege ends
// in SYNTAX_ERROR, which the control statement shows. What the grants allow is not
// exercised here: the 18.16 test TestIntegrationClickHouseLeastPrivilege shows the same
// split with users.xml.
func TestCurrentReleaseRolesSQLParses(t *testing.T) {
	ch := startChdb(t, testkit.Service(t, "RATERD_TEST_CHDB_PYTHON", "Python with chdb, a current ClickHouse release"))
	b, err := os.ReadFile("../../deploy/clickhouse/roles.sql")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			lines = append(lines, line)
		}
	}
	parsed := func(stmt string) error {
		_, err := ch.run(stmt, "TSV")
		if err == nil || strings.Contains(err.Error(), "(ACCESS_DENIED)") || strings.Contains(err.Error(), "(UNKNOWN_ROLE)") {
			return nil
		}
		return err
	}
	n := 0
	for _, stmt := range strings.Split(strings.Join(lines, "\n"), ";") {
		if stmt = strings.TrimSpace(stmt); stmt == "" {
			continue
		}
		n++
		if err := parsed(stmt); err != nil {
			t.Errorf("roles.sql statement does not parse on the current release: %v\n%s", err, stmt)
		}
	}
	if n < 6 {
		t.Fatalf("roles.sql: %d statements, want the two roles, their grants and users", n)
	}
	if err := parsed("GRANT SELECT, INSERT, DROP VIEWS ON raterd.* TO raterd_write"); err == nil || !strings.Contains(err.Error(), "SYNTAX_ERROR") {
		t.Errorf("control: a misspelt privilege = %v, want SYNTAX_ERROR", err)
	}
}
