package consumer

import (
	"context"
	"errors"
	"log/slog"
	"raterd/internal/testkit"
	"strings"
	"sync"
	"testing"

	"raterd/internal/telemetry"
	"raterd/record"
	"raterd/sinks"
)

// permanentSink fails its first fails score writes with a permanent error of class, and
// records Stats().Blocked at each failing write.
type permanentSink struct {
	recordingSink
	class   string
	fails   int
	p       *Pipeline
	mu      sync.Mutex
	calls   int
	blocked []int64
}

func (s *permanentSink) WriteScores(ctx context.Context, rows []record.Score) error {
	s.mu.Lock()
	s.calls++
	fail := s.calls <= s.fails
	if fail && s.calls > 1 {
		s.blocked = append(s.blocked, s.p.Stats().Blocked)
	}
	s.mu.Unlock()
	if fail {
		return sinks.Permanent(s.class, errors.New("code: 16, message: No such column span_id in table scores"))
	}
	return s.recordingSink.WriteScores(ctx, rows)
}

// TestPipelinePermanentSinkErrorBlocksVisibly: issue 17 found a permanent ClickHouse
// error retried forever with nothing to tell it from an outage. A batch failing with a
// permanent sink error is held (never dropped, never committed past), but visibly: an
// error log naming the class on every attempt, Stats.Blocked (and the
// raterd.consumer.batch.blocked metric) while it lasts, and it resumes by itself once
// the cause is fixed.
func TestPipelinePermanentSinkErrorBlocksVisibly(t *testing.T) {
	reader := &fakeReader{msgs: messages(4, nil), commits: map[TopicPartition]int64{}}
	cfg := testConfig()
	cfg.Batch.MaxRecords = 4
	cfg.Batch.Linger = 0
	sink := &permanentSink{class: "clickhouse_schema", fails: 3}
	var logs testkit.LogBuffer
	p, err := New(cfg, reader, fakeScorer{}, sink, sink,
		Options{Telemetry: telemetry.Settings{Logger: slog.New(slog.NewTextHandler(&logs, nil))}})
	if err != nil {
		t.Fatal(err)
	}
	sink.p = p
	runUntilDone(t, p, 4)

	s := p.Stats()
	if s.Permanent < 3 || s.Blocked != 0 {
		t.Errorf("stats: %d permanent failures, %d blocked at the end; want at least 3 and 0", s.Permanent, s.Blocked)
	}
	sink.mu.Lock()
	for i, b := range sink.blocked {
		if b < 1 {
			t.Errorf("failing write %d saw Stats().Blocked = %d, want the batch counted blocked", i+2, b)
		}
	}
	sink.mu.Unlock()
	out := logs.String()
	if n := strings.Count(out, "batch blocked by a permanent sink error"); n < 3 || !strings.Contains(out, "class=clickhouse_schema") || !strings.Contains(out, "No such column span_id") {
		t.Errorf("want an error log line naming the class and the error on each of the 3 failed attempts, got %d:\n%s", n, out)
	}
	if !strings.Contains(out, "batch unblocked") {
		t.Errorf("no log line when the batch got through:\n%s", out)
	}
	if got := reader.committed(); got[TopicPartition{"t", 0}] != 2 || got[TopicPartition{"t", 1}] != 2 {
		t.Errorf("committed %v, want both partitions at 2", got)
	}
}
