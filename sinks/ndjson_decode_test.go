package sinks

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"raterd/record"
)

// TestDecodeNDJSONScoreRoundTrip writes rows with the sink and reads them back.
func TestDecodeNDJSONScoreRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	want := []record.Score{
		{EventTime: at, ScoredAt: at.Add(time.Second), RecordID: "r1", TraceID: "t1",
			Source: record.Source{Topic: "llm", Partition: 3, Offset: 42}, Model: "m", App: "a",
			Labels: map[string]string{"region": "eu"}, Evaluator: "helpfulness", RubricVersion: "0123456789abcdef",
			Judge: "openai:judge", TaskType: "pointwise", Value: 4, Label: "good", Confidence: 0.9,
			Explanation: "fine", Status: "ok", Cached: true, JudgeLatency: 1500 * time.Microsecond, Attempts: 2},
		{EventTime: at, ScoredAt: at, RecordID: "r2", Model: "m", Evaluator: "refusal", Judge: "heuristic/v1",
			TaskType: "classification", Status: "parse_failure", Attempts: 1},
		{EventTime: at, ScoredAt: at.Add(time.Minute), RecordID: "conv-9@1200", ConversationID: "conv-9",
			Source: record.Source{Topic: "llm", Partition: 1, Offset: 1200}, Model: "m", Evaluator: "conversation_resolution",
			Judge: "openai:judge", TaskType: "classification", Value: 1, Label: "resolved", Status: "ok", Attempts: 1,
			Scope: record.ScopeConversation, Version: 2, LastOffset: 1260, Turns: 6, CloseReason: record.CloseEndMarker},
	}
	path := filepath.Join(t.TempDir(), "scores.ndjson")
	sink, err := NewNDJSONFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.WriteScores(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	for i, line := range lines {
		got, err := DecodeNDJSONScore(line)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if !got.EventTime.Equal(want[i].EventTime) || !got.ScoredAt.Equal(want[i].ScoredAt) {
			t.Errorf("line %d: times %v %v, want %v %v", i+1, got.EventTime, got.ScoredAt, want[i].EventTime, want[i].ScoredAt)
		}
		got.EventTime, got.ScoredAt = want[i].EventTime, want[i].ScoredAt
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("line %d:\n got %+v\nwant %+v", i+1, got, want[i])
		}
	}
}

func TestDecodeNDJSONScoreRejects(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{`{"record_id":"r","surprise":1}`, "unknown field"},
		{`{"record_id":"r"} {"record_id":"s"}`, "more than one"},
		{`{"record_id":`, "unexpected EOF"},
		{`{"offset":"x"}`, "offset"},
	} {
		if _, err := DecodeNDJSONScore([]byte(c.line)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one containing %q", c.line, err, c.want)
		}
	}
}

// FuzzDecodeNDJSONScore: any line decodes or fails with an error, never panics, and a
// decoded row written again by the sink decodes to the same row.
func FuzzDecodeNDJSONScore(f *testing.F) {
	f.Add([]byte(`{"event_time":"2026-11-28T12:00:00Z","scored_at":"2026-11-28T12:00:01Z","record_id":"r","topic":"t","partition":1,"offset":2,"model":"m","evaluator":"e","rubric_version":"v","judge":"j","task_type":"pointwise","score":3,"confidence":1,"status":"ok","cached":false,"judge_latency_ms":1.5,"attempts":1}`))
	f.Add([]byte(`{"event_time":"2026-11-28T12:00:00Z","scored_at":"2026-11-28T12:01:00Z","record_id":"conv-9@1200","conversation_id":"conv-9","scope":"conversation","conversation_version":2,"topic":"t","partition":1,"offset":1200,"last_offset":1260,"model":"m","evaluator":"conversation_resolution","rubric_version":"v","judge":"j","task_type":"classification","score":1,"label":"resolved","confidence":1,"status":"ok","cached":false,"judge_latency_ms":900,"attempts":1,"turn_count":6,"close_reason":"end_marker"}`))
	f.Add([]byte(`{"scope":"trace","conversation_version":-1,"last_offset":-7,"turn_count":-2,"close_reason":"evicted"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"labels":{"k":"v"},"judge_latency_ms":-1e300}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		row, err := DecodeNDJSONScore(line)
		if err != nil {
			return
		}
		path := filepath.Join(t.TempDir(), "s.ndjson")
		sink, err := NewNDJSONFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := sink.WriteScores(context.Background(), []record.Score{row}); err != nil {
			return // e.g. a time JSON cannot encode; the sink reports it
		}
		_ = sink.Close()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeNDJSONScore(bytes.TrimSpace(data))
		if err != nil {
			t.Fatalf("the sink's own line does not decode: %v\n%s", err, data)
		}
		if again.RecordID != row.RecordID || again.Source != row.Source || again.Value != row.Value && row.Value == row.Value ||
			again.Status != row.Status || again.Attempts != row.Attempts || !maps.Equal(again.Labels, row.Labels) ||
			again.Scope != row.Scope || again.Version != row.Version || again.LastOffset != row.LastOffset ||
			again.Turns != row.Turns || again.CloseReason != row.CloseReason { // an empty map and none are the same labels
			t.Fatalf("round trip changed the row:\n got %+v\nwant %+v", again, row)
		}
	})
}
