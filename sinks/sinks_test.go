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

// flakyDeadLetterSink records every call and fails the first fails of them.
type flakyDeadLetterSink struct {
	calls int
	fails int
}

func (f *flakyDeadLetterSink) WriteDeadLetters(context.Context, []record.DeadLetter) error {
	f.calls++
	if f.calls <= f.fails {
		return errors.New("clickhouse down")
	}
	return nil
}

// TestMultiDeadLetterSinkResumes: issue 17 found 1,107 DLQ messages for 515 letters in a
// ClickHouse outage, because every retry of a batch wrote its letters to the DLQ topic
// again while the dead_letters insert kept failing. A resumed write sends them only to
// the sinks that have not acknowledged.
func TestMultiDeadLetterSinkResumes(t *testing.T) {
	topic := &fakeDeadLetterSink{}
	table := &flakyDeadLetterSink{fails: 3}
	m := MultiDeadLetterSink{topic, table}
	letters := []record.DeadLetter{{Reason: "invalid_json", Source: record.Source{Topic: "t", Offset: 7}}}
	write := m.BeginDeadLetters(letters)
	var err error
	for range 4 {
		if err = write(context.Background()); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("write after 4 attempts: %v", err)
	}
	if len(topic.calls) != 1 || table.calls != 4 {
		t.Fatalf("the topic got %d writes and the table %d; want 1 and 4 (the topic acknowledged the first)", len(topic.calls), table.calls)
	}
	if err := write(context.Background()); err != nil || len(topic.calls) != 1 || table.calls != 4 {
		t.Fatalf("a write after success wrote again (%v): topic %d, table %d", err, len(topic.calls), table.calls)
	}
	// A member that is resumable itself is resumed, not called afresh.
	inner := &flakyDeadLetterSink{fails: 1}
	outer := MultiDeadLetterSink{MultiDeadLetterSink{topic, inner}}
	topic.calls = nil
	w := outer.BeginDeadLetters(letters)
	if err := w(context.Background()); err == nil {
		t.Fatal("first write succeeded; want the inner table's failure")
	}
	if err := w(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(topic.calls) != 1 || inner.calls != 2 {
		t.Fatalf("nested: topic %d writes, table %d; want 1 and 2", len(topic.calls), inner.calls)
	}
}
