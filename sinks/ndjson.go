package sinks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"raterd/record"
)

// NDJSON writes score rows as JSON lines to a file: the demo's sink when no ClickHouse is
// reachable, and a debugging aid. Each WriteScores call is flushed and fsynced before it
// returns, so its nil error means the rows are on disk.
type NDJSON struct {
	mu   sync.Mutex
	file *os.File
	w    *bufio.Writer
}

// NewNDJSONFile opens path for appending, creating it if needed: rows already written
// (and their offsets committed) survive a restart.
func NewNDJSONFile(path string) (*NDJSON, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("ndjson sink: %w", err)
	}
	return &NDJSON{file: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

// scoreJSON is the NDJSON shape of a row; field names match the ClickHouse columns.
type scoreJSON struct {
	EventTime      time.Time `json:"event_time"`
	ScoredAt       time.Time `json:"scored_at"`
	RecordID       string    `json:"record_id"`
	TraceID        string    `json:"trace_id,omitempty"`
	SpanID         string    `json:"span_id,omitempty"`
	ConversationID string    `json:"conversation_id,omitempty"`
	// Scope and the segment fields below are left out on a record row (scope empty,
	// meaning "record", and no segment); a transcript row carries them.
	Scope               string            `json:"scope,omitempty"`
	ConversationVersion int               `json:"conversation_version,omitempty"`
	Topic               string            `json:"topic"`
	Partition           int               `json:"partition"`
	Offset              int64             `json:"offset"`
	LastOffset          int64             `json:"last_offset,omitempty"`
	Model               string            `json:"model"`
	App                 string            `json:"app,omitempty"`
	Labels              map[string]string `json:"labels,omitempty"`
	Evaluator           string            `json:"evaluator"`
	RubricVersion       string            `json:"rubric_version"`
	Judge               string            `json:"judge"`
	TaskType            string            `json:"task_type"`
	Score               float64           `json:"score"`
	Label               string            `json:"label,omitempty"`
	Confidence          float64           `json:"confidence"`
	Explanation         string            `json:"explanation,omitempty"`
	Status              string            `json:"status"`
	Cached              bool              `json:"cached"`
	JudgeLatencyMS      float64           `json:"judge_latency_ms"`
	Attempts            int               `json:"attempts"`
	TurnCount           int               `json:"turn_count,omitempty"`
	CloseReason         string            `json:"close_reason,omitempty"`
}

// WriteScores implements ScoreSink.
func (n *NDJSON) WriteScores(_ context.Context, rows []record.Score) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.file == nil {
		return fmt.Errorf("ndjson sink: closed")
	}
	enc := json.NewEncoder(n.w)
	for i := range rows {
		r := &rows[i]
		if err := enc.Encode(scoreJSON{
			EventTime: r.EventTime, ScoredAt: r.ScoredAt, RecordID: r.RecordID, TraceID: r.TraceID,
			SpanID: r.SpanID, ConversationID: r.ConversationID,
			Topic: r.Source.Topic, Partition: r.Source.Partition, Offset: r.Source.Offset,
			Model: r.Model, App: r.App, Labels: r.Labels, Evaluator: r.Evaluator,
			RubricVersion: r.RubricVersion, Judge: r.Judge, TaskType: r.TaskType, Score: r.Value,
			Label: r.Label, Confidence: r.Confidence, Explanation: r.Explanation, Status: r.Status,
			Cached: r.Cached, JudgeLatencyMS: float64(r.JudgeLatency.Microseconds()) / 1000, Attempts: r.Attempts,
			Scope: r.Scope, ConversationVersion: r.Version, LastOffset: r.LastOffset, TurnCount: r.Turns,
			CloseReason: r.CloseReason,
		}); err != nil {
			return fmt.Errorf("ndjson sink: %w", err)
		}
	}
	if err := n.w.Flush(); err != nil {
		return fmt.Errorf("ndjson sink: %w", err)
	}
	if err := n.file.Sync(); err != nil {
		return fmt.Errorf("ndjson sink: %w", err)
	}
	return nil
}

// Close flushes and closes the file. It is safe to call twice.
func (n *NDJSON) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.file == nil {
		return nil
	}
	err := n.w.Flush()
	if cerr := n.file.Close(); err == nil {
		err = cerr
	}
	n.file = nil
	return err
}

// DecodeNDJSONScore reads one line the NDJSON sink wrote back into a score row: the
// inverse of WriteScores' line format (judge latency at microsecond resolution, as
// written). Unknown fields are an error, so a fixture cannot drift from the format
// unnoticed.
func DecodeNDJSONScore(line []byte) (record.Score, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var j scoreJSON
	if err := dec.Decode(&j); err != nil {
		return record.Score{}, fmt.Errorf("ndjson score: %w", err)
	}
	if dec.More() {
		return record.Score{}, errors.New("ndjson score: more than one JSON value on the line")
	}
	return record.Score{
		EventTime: j.EventTime, ScoredAt: j.ScoredAt, RecordID: j.RecordID, TraceID: j.TraceID,
		SpanID: j.SpanID, ConversationID: j.ConversationID,
		Source: record.Source{Topic: j.Topic, Partition: j.Partition, Offset: j.Offset},
		Model:  j.Model, App: j.App, Labels: j.Labels, Evaluator: j.Evaluator,
		RubricVersion: j.RubricVersion, Judge: j.Judge, TaskType: j.TaskType, Value: j.Score,
		Label: j.Label, Confidence: j.Confidence, Explanation: j.Explanation, Status: j.Status,
		Cached: j.Cached, JudgeLatency: time.Duration(j.JudgeLatencyMS * float64(time.Millisecond)),
		Attempts: j.Attempts, Scope: j.Scope, Version: j.ConversationVersion, LastOffset: j.LastOffset,
		Turns: j.TurnCount, CloseReason: j.CloseReason,
	}, nil
}

var _ io.Closer = (*NDJSON)(nil)
