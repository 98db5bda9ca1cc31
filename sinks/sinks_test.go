package sinks

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"raterd/record"
)

func TestSortedLabels(t *testing.T) {
	tests := []struct {
		name       string
		in         map[string]string
		keys, vals []string
	}{
		{"nil", nil, []string{}, []string{}},
		{"empty", map[string]string{}, []string{}, []string{}},
		{"one", map[string]string{"region": "eu"}, []string{"region"}, []string{"eu"}},
		{
			"sorted by key, values parallel",
			map[string]string{"zone": "z1", "app": "helpdesk", "Tier": "gold", "b": "", "ä": "umlaut"},
			[]string{"Tier", "app", "b", "zone", "ä"},
			[]string{"gold", "helpdesk", "", "z1", "umlaut"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, vals := sortedLabels(tt.in)
			if keys == nil || vals == nil {
				t.Fatalf("sortedLabels returned nil slices (%v, %v); ClickHouse arrays need non-nil", keys, vals)
			}
			if !reflect.DeepEqual(keys, tt.keys) || !reflect.DeepEqual(vals, tt.vals) {
				t.Fatalf("sortedLabels(%v) = %q, %q; want %q, %q", tt.in, keys, vals, tt.keys, tt.vals)
			}
			for i, k := range keys {
				if tt.in[k] != vals[i] {
					t.Errorf("values[%d] = %q, want %q (value of %q)", i, vals[i], tt.in[k], k)
				}
			}
		})
	}
}

func TestClickHouseConfigValidateDefaults(t *testing.T) {
	c := ClickHouseConfig{Addrs: []string{"127.0.0.1:9000"}}
	if err := c.Validate("clickhouse"); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := ClickHouseConfig{
		Addrs: []string{"127.0.0.1:9000"}, Database: "raterd", Username: "default",
		DialTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second,
		InsertMaxRows: 50_000, InsertInterval: time.Second, InsertAttempts: 3,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults = %+v, want %+v", c, want)
	}

	// Explicit values are kept.
	c = ClickHouseConfig{Addrs: []string{"a:1", "b:2"}, Database: "metrics_2", Username: "rater",
		Password: "pw", TLS: true, DialTimeout: time.Second, WriteTimeout: 2 * time.Second,
		InsertMaxRows: 1000, InsertAttempts: 5, InsertInterval: 100 * time.Millisecond, RetentionDays: 30}
	want = c
	want.Addrs = []string{"a:1", "b:2"}
	if err := c.Validate("clickhouse"); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("explicit values changed: %+v, want %+v", c, want)
	}
}

func TestClickHouseConfigValidateErrors(t *testing.T) {
	ok := func(c ClickHouseConfig) ClickHouseConfig { return c }
	tests := []struct {
		name string
		cfg  ClickHouseConfig
		want []string // substrings of the error
	}{
		{"no addrs", ok(ClickHouseConfig{}), []string{"sinks.clickhouse.addrs", "required"}},
		{"empty addrs", ok(ClickHouseConfig{Addrs: []string{}}), []string{"sinks.clickhouse.addrs"}},
		{"addr without port", ok(ClickHouseConfig{Addrs: []string{"a:9000", "localhost"}}), []string{"sinks.clickhouse.addrs[1]", `"localhost"`, "host:port"}},
		{"injection in database", ok(ClickHouseConfig{Addrs: []string{"a:9000"}, Database: "x; DROP"}), []string{"sinks.clickhouse.database", `"x; DROP"`}},
		{"database with dot", ok(ClickHouseConfig{Addrs: []string{"a:9000"}, Database: "a.b"}), []string{"sinks.clickhouse.database"}},
		{"database starting with digit", ok(ClickHouseConfig{Addrs: []string{"a:9000"}, Database: "1db"}), []string{"sinks.clickhouse.database"}},
		{"negative dial timeout", ok(ClickHouseConfig{Addrs: []string{"a:9000"}, DialTimeout: -time.Second}), []string{"sinks.clickhouse.dial_timeout", "negative"}},
		{"negative write timeout", ok(ClickHouseConfig{Addrs: []string{"a:9000"}, WriteTimeout: -time.Millisecond}), []string{"sinks.clickhouse.write_timeout", "negative"}},
		{"negative insert rows", ok(ClickHouseConfig{Addrs: []string{"a:9000"}, InsertMaxRows: -1}), []string{"sinks.clickhouse.insert_max_rows"}},
		{"insert interval too long", ok(ClickHouseConfig{Addrs: []string{"a:9000"}, InsertInterval: time.Hour}), []string{"sinks.clickhouse.insert_interval"}},
		{"negative retention", ok(ClickHouseConfig{Addrs: []string{"a:9000"}, RetentionDays: -1}), []string{"sinks.clickhouse.retention_days"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate("sinks.clickhouse")
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want error containing %q", tt.cfg, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestIsIdentifier(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"raterd", true},
		{"_x", true},
		{"Raterd_test_2", true},
		{"a1", true},
		{"", false},
		{"1a", false},
		{"x; DROP", false},
		{"a.b", false},
		{"a-b", false},
		{"a b", false},
		{"`a`", false},
		{"a'", false},
		{"é", false},
	}
	for _, tt := range tests {
		if got := isIdentifier(tt.in); got != tt.want {
			t.Errorf("isIdentifier(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestDLQTopic(t *testing.T) {
	tests := map[string]string{
		"traffic":          "traffic.dlq",
		"llm.requests.v1":  "llm.requests.v1.dlq",
		"traffic.dlq":      "traffic.dlq.dlq",
		"":                 ".dlq",
		"tenant_a-traffic": "tenant_a-traffic.dlq",
	}
	for in, want := range tests {
		if got := DLQTopic(in); got != want {
			t.Errorf("DLQTopic(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeScoreSink records every call and returns err.
type fakeScoreSink struct {
	calls [][]record.Score
	err   error
}

func (f *fakeScoreSink) WriteScores(_ context.Context, rows []record.Score) error {
	f.calls = append(f.calls, rows)
	return f.err
}

// fakeDeadLetterSink records every call and returns err.
type fakeDeadLetterSink struct {
	calls [][]record.DeadLetter
	err   error
}

func (f *fakeDeadLetterSink) WriteDeadLetters(_ context.Context, letters []record.DeadLetter) error {
	f.calls = append(f.calls, letters)
	return f.err
}

func TestMultiScoreSink(t *testing.T) {
	errA, errC := errors.New("sink a down"), errors.New("sink c down")
	tests := []struct {
		name     string
		errs     []error
		wantErrs []error
	}{
		{"none", nil, nil},
		{"all ok", []error{nil, nil, nil}, nil},
		{"first fails", []error{errA, nil, nil}, []error{errA}},
		{"two fail", []error{errA, nil, errC}, []error{errA, errC}},
	}
	rows := []record.Score{{RecordID: "r1"}, {RecordID: "r2"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m MultiScoreSink
			var fakes []*fakeScoreSink
			for _, e := range tt.errs {
				f := &fakeScoreSink{err: e}
				fakes = append(fakes, f)
				m = append(m, f)
			}
			err := m.WriteScores(context.Background(), rows)
			for i, f := range fakes {
				if len(f.calls) != 1 || !reflect.DeepEqual(f.calls[0], rows) {
					t.Errorf("sink %d got calls %v, want one call with %v", i, f.calls, rows)
				}
			}
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("WriteScores = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("WriteScores = nil, want an error")
			}
			for _, w := range tt.wantErrs {
				if !errors.Is(err, w) {
					t.Errorf("error %v does not wrap %v", err, w)
				}
			}
		})
	}
}

func TestMultiDeadLetterSink(t *testing.T) {
	errA, errB := errors.New("kafka down"), errors.New("clickhouse down")
	tests := []struct {
		name     string
		errs     []error
		wantErrs []error
	}{
		{"none", nil, nil},
		{"all ok", []error{nil, nil}, nil},
		{"last fails", []error{nil, errB}, []error{errB}},
		{"both fail", []error{errA, errB}, []error{errA, errB}},
	}
	letters := []record.DeadLetter{{Reason: "invalid_json", Source: record.Source{Topic: "t", Offset: 7}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m MultiDeadLetterSink
			var fakes []*fakeDeadLetterSink
			for _, e := range tt.errs {
				f := &fakeDeadLetterSink{err: e}
				fakes = append(fakes, f)
				m = append(m, f)
			}
			err := m.WriteDeadLetters(context.Background(), letters)
			for i, f := range fakes {
				if len(f.calls) != 1 || !reflect.DeepEqual(f.calls[0], letters) {
					t.Errorf("sink %d got calls %v, want one call with %v", i, f.calls, letters)
				}
			}
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("WriteDeadLetters = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("WriteDeadLetters = nil, want an error")
			}
			for _, w := range tt.wantErrs {
				if !errors.Is(err, w) {
					t.Errorf("error %v does not wrap %v", err, w)
				}
			}
		})
	}
}

func TestNDJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scores.ndjson")
	n, err := NewNDJSONFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	ev := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	rows := []record.Score{
		{
			EventTime: ev, ScoredAt: ev.Add(time.Second), RecordID: "req-1", TraceID: "trace-1",
			Source: record.Source{Topic: "traffic", Partition: 2, Offset: 42}, Model: "support-llm-v7", App: "helpdesk",
			Labels: map[string]string{"region": "eu"}, Evaluator: "helpfulness", RubricVersion: "rv1", Judge: "judge-a",
			TaskType: "pointwise", Value: 4, Label: "good", Confidence: 0.75, Explanation: "clear — ✓",
			Status: record.StatusOK, Cached: true, JudgeLatency: 1500 * time.Microsecond, Attempts: 2,
		},
		{RecordID: "req-2", Model: "m", Evaluator: "e", Status: record.StatusParseFailure},
	}
	if err := n.WriteScores(context.Background(), rows[:1]); err != nil {
		t.Fatal(err)
	}
	if err := n.WriteScores(context.Background(), rows[1:]); err != nil {
		t.Fatal(err)
	}
	if err := n.WriteScores(context.Background(), nil); err != nil {
		t.Fatalf("WriteScores(nil) = %v", err)
	}

	// Each WriteScores is durable before Close: read the file while still open.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2", len(lines))
	}
	want := map[string]any{
		"event_time": "2026-11-28T12:00:00Z", "scored_at": "2026-11-28T12:00:01Z", "record_id": "req-1",
		"trace_id": "trace-1", "topic": "traffic", "partition": 2.0, "offset": 42.0, "model": "support-llm-v7",
		"app": "helpdesk", "labels": map[string]any{"region": "eu"}, "evaluator": "helpfulness",
		"rubric_version": "rv1", "judge": "judge-a", "task_type": "pointwise", "score": 4.0, "label": "good",
		"confidence": 0.75, "explanation": "clear — ✓", "status": "ok", "cached": true,
		"judge_latency_ms": 1.5, "attempts": 2.0,
	}
	if !reflect.DeepEqual(lines[0], want) {
		t.Errorf("line 1 = %v\nwant     %v", lines[0], want)
	}
	// Optional fields are omitted; required ones are always present.
	for _, k := range []string{"trace_id", "app", "labels", "label", "explanation"} {
		if _, ok := lines[1][k]; ok {
			t.Errorf("line 2 has empty optional field %q", k)
		}
	}
	for _, k := range []string{"event_time", "record_id", "topic", "partition", "offset", "model", "evaluator",
		"rubric_version", "judge", "task_type", "score", "confidence", "status", "cached", "judge_latency_ms", "attempts"} {
		if _, ok := lines[1][k]; !ok {
			t.Errorf("line 2 lacks field %q", k)
		}
	}
	if lines[1]["status"] != record.StatusParseFailure || lines[1]["record_id"] != "req-2" {
		t.Errorf("line 2 = %v", lines[1])
	}

	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := n.WriteScores(context.Background(), rows); err == nil {
		t.Fatal("WriteScores after Close = nil, want an error")
	}
}

func TestNewNDJSONFileBadPath(t *testing.T) {
	if _, err := NewNDJSONFile(filepath.Join(t.TempDir(), "missing", "dir", "x.ndjson")); err == nil {
		t.Fatal("NewNDJSONFile in a missing directory = nil error")
	}
}

func TestMigrations(t *testing.T) {
	ms := Migrations()
	if len(ms) == 0 {
		t.Fatal("no migrations")
	}
	for i, m := range ms {
		if m.Version != i+1 {
			t.Errorf("migration %d has version %d; versions must be 1, 2, 3, … without gaps", i, m.Version)
		}
		if m.Name == "" {
			t.Errorf("migration %d has no name", m.Version)
		}
		if len(m.Statements) == 0 && len(m.Gated) == 0 {
			t.Errorf("migration %d has neither statements nor gated steps", m.Version)
		}
		for j, s := range m.Statements {
			if !strings.Contains(s, "{db}") {
				t.Errorf("migration %d statement %d does not use {db}: %.60q", m.Version, j+1, s)
			}
		}
	}
	if got := LatestMigration(); got != ms[len(ms)-1].Version {
		t.Errorf("LatestMigration() = %d, want %d", got, ms[len(ms)-1].Version)
	}
	if !strings.Contains(migrationsTable, "{db}") {
		t.Error("migrationsTable does not use {db}")
	}
}

// TestMigrationsRunOnClickHouse1816 guards the base schema: every statement must run on
// ClickHouse 18.16, which lacks these features. A migration that needs one must be applied
// only when the server supports it, outside Migrations().
func TestMigrationsRunOnClickHouse1816(t *testing.T) {
	forbidden := []string{"Map(", "LowCardinality", "DateTime64", "CODEC", " TTL ", "\tTTL ", "\nTTL "}
	stmts := []string{migrationsTable}
	for _, m := range Migrations() {
		stmts = append(stmts, m.Statements...)
	}
	for i, s := range stmts {
		for _, f := range forbidden {
			if strings.Contains(s, f) {
				t.Errorf("statement %d uses %q, which ClickHouse 18.16 lacks:\n%s", i, strings.TrimSpace(f), s)
			}
		}
	}
	// The guard itself must bite.
	for _, f := range []string{"labels Map(String, String)", "model LowCardinality(String)", "t DateTime64(3)", "x String CODEC(ZSTD)", "ORDER BY x TTL t + INTERVAL 1 DAY"} {
		hit := false
		for _, g := range forbidden {
			hit = hit || strings.Contains(f, g)
		}
		if !hit {
			t.Errorf("guard misses %q", f)
		}
	}
}

func TestRender(t *testing.T) {
	if got := render("CREATE TABLE {db}.a AS {db}.b", "x1"); got != "CREATE TABLE x1.a AS x1.b" {
		t.Fatalf("render = %q", got)
	}
}

func TestNDJSONAppendsAcrossRestarts(t *testing.T) {
	path := t.TempDir() + "/scores.ndjson"
	for range 2 {
		n, err := NewNDJSONFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.WriteScores(context.Background(), []record.Score{{RecordID: "r", Status: record.StatusOK}}); err != nil {
			t.Fatal(err)
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(data), "\n"); lines != 2 {
		t.Fatalf("file has %d lines after two runs, want 2 (a restart must not truncate)", lines)
	}
}
