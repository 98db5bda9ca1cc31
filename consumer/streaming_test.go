package consumer

import (
	"context"
	"sync"
	"testing"
	"time"

	"raterd/record"
)

// gatedStreamingScorer is a fake StreamingScorer whose verdicts for a batch come only
// when the gate opens: it records how many batches were begun meanwhile.
type gatedStreamingScorer struct {
	fakeScorer
	gate chan struct{}

	mu    sync.Mutex
	begun int
}

func (s *gatedStreamingScorer) BeginScore(ctx context.Context, recs []*record.Record) func() ([]record.Score, error) {
	s.mu.Lock()
	s.begun++
	s.mu.Unlock()
	return func() ([]record.Score, error) {
		if err := s.await(ctx); err != nil {
			return nil, err
		}
		return s.Score(ctx, recs)
	}
}

// await waits for the gate to open.
func (s *gatedStreamingScorer) await(ctx context.Context) error {
	select {
	case <-s.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *gatedStreamingScorer) begunBatches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.begun
}

// TestPipelineStreamsBatchesPastAWaitingJudge: with one worker and a judge that answers
// nothing yet, the worker begins every batch the in-flight bound admits instead of
// waiting for the first batch's verdicts (no batch barrier); once the judge answers,
// everything is written and committed.
func TestPipelineStreamsBatchesPastAWaitingJudge(t *testing.T) {
	cfg := testConfig()
	cfg.Workers = 1
	cfg.Batch.MaxRecords = 2
	cfg.MaxInFlightRecords = 8
	reader := &fakeReader{msgs: messages(8, nil), commits: map[TopicPartition]int64{}}
	sc := &gatedStreamingScorer{gate: make(chan struct{})}
	sink := &recordingSink{}
	p, err := New(cfg, reader, sc, sink, sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	// Every batch of the 8 messages is begun while the first is still unanswered.
	deadline := time.After(20 * time.Second)
	for sc.begunBatches() < 4 {
		select {
		case <-deadline:
			t.Fatalf("%d batches begun with the judge not answering; want all 4: the worker waits for its batch's verdicts", sc.begunBatches())
		case <-time.After(2 * time.Millisecond):
		}
	}
	if got := p.Stats().Done; got != 0 {
		t.Fatalf("%d messages done before the judge answered", got)
	}
	close(sc.gate)
	finishRun(t, p, 8, cancel, errc)
	if len(sink.rows) != 8 {
		t.Fatalf("%d rows written, want 8", len(sink.rows))
	}
	for tp, next := range reader.committed() {
		if next != 4 {
			t.Fatalf("%v committed up to %d, want 4", tp, next)
		}
	}
}

// blockingScorer is a fake Scorer without BeginScore: Score waits for the gate.
type blockingScorer struct {
	gatedStreamingScorer
}

func (s *blockingScorer) Score(ctx context.Context, recs []*record.Record) ([]record.Score, error) {
	s.mu.Lock()
	s.begun++
	s.mu.Unlock()
	if err := s.await(ctx); err != nil {
		return nil, err
	}
	return s.fakeScorer.Score(ctx, recs)
}

// TestPipelineWorkerWaitsOnAPlainScorer is the negative control of the streaming test: a
// scorer that only has Score holds its worker, so one worker begins one batch until the
// judge answers. The streaming test's assertion would fail against it.
func TestPipelineWorkerWaitsOnAPlainScorer(t *testing.T) {
	cfg := testConfig()
	cfg.Workers = 1
	cfg.Batch.MaxRecords = 2
	cfg.MaxInFlightRecords = 8
	reader := &fakeReader{msgs: messages(8, nil), commits: map[TopicPartition]int64{}}
	sc := &blockingScorer{gatedStreamingScorer{gate: make(chan struct{})}}
	var plain Scorer = struct{ Scorer }{sc} // hides nothing but BeginScore's absence
	sink := &recordingSink{}
	p, err := New(cfg, reader, plain, sink, sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	for sc.begunBatches() < 1 {
		time.Sleep(2 * time.Millisecond)
	}
	// Give the worker every chance to begin more; it must not.
	time.Sleep(100 * time.Millisecond)
	if got := sc.begunBatches(); got != 1 {
		t.Fatalf("%d batches begun by one worker on a plain scorer; want 1", got)
	}
	close(sc.gate)
	finishRun(t, p, 8, cancel, errc)
}

// finishRun waits until n messages are done, then stops the run and checks its error.
func finishRun(t *testing.T, p *Pipeline, n int64, cancel context.CancelFunc, errc <-chan error) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for p.Stats().Done < n {
		select {
		case <-deadline:
			t.Fatalf("only %d of %d messages done", p.Stats().Done, n)
		case <-time.After(2 * time.Millisecond):
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
