package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"raterd/internal/telemetry"
	"raterd/record"
)

// fakeReader is a recording fake of a kafka-go group reader: it serves a fixed list of
// messages and records every commit.
type fakeReader struct {
	mu      sync.Mutex
	msgs    []kafka.Message
	next    int
	commits map[TopicPartition]int64 // highest committed "next offset" per partition
}

func (f *fakeReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	f.mu.Lock()
	if f.next < len(f.msgs) {
		m := f.msgs[f.next]
		f.next++
		f.mu.Unlock()
		return m, nil
	}
	f.mu.Unlock()
	<-ctx.Done()
	return kafka.Message{}, ctx.Err()
}

func (f *fakeReader) CommitMessages(_ context.Context, msgs ...kafka.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range msgs {
		tp := TopicPartition{m.Topic, m.Partition}
		if m.Offset+1 > f.commits[tp] {
			f.commits[tp] = m.Offset + 1
		}
	}
	return nil
}

func (f *fakeReader) committed() map[TopicPartition]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[TopicPartition]int64{}
	for k, v := range f.commits {
		out[k] = v
	}
	return out
}

// fakeScorer gives every record one score row.
type fakeScorer struct{}

func (fakeScorer) Score(_ context.Context, recs []*record.Record) ([]record.Score, error) {
	rows := make([]record.Score, len(recs))
	for i, r := range recs {
		rows[i] = record.Score{RecordID: r.ID, Source: r.Source, Status: record.StatusOK}
	}
	return rows, nil
}

// recordingSink stores rows and dead letters; failFirst makes the first n writes fail.
type recordingSink struct {
	mu        sync.Mutex
	rows      []record.Score
	dead      []record.DeadLetter
	failFirst int
	writes    int
	// beforeWrite, when set, runs before each score write (to observe commits).
	beforeWrite func()
}

func (s *recordingSink) WriteScores(_ context.Context, rows []record.Score) error {
	if s.beforeWrite != nil {
		s.beforeWrite()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.writes <= s.failFirst {
		return errors.New("injected sink failure")
	}
	s.rows = append(s.rows, rows...)
	return nil
}

func (s *recordingSink) WriteDeadLetters(_ context.Context, d []record.DeadLetter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dead = append(s.dead, d...)
	return nil
}

func testConfig() Config {
	cfg := Config{Brokers: []string{"x:1"}, Topics: []string{"t"}, Batch: BatchPolicy{MaxRecords: 4, Linger: 5 * time.Millisecond},
		CommitInterval: 5 * time.Millisecond, RetryBackoffMax: 20 * time.Millisecond, MaxInFlightRecords: 8}
	if err := cfg.Validate("kafka"); err != nil {
		panic(err)
	}
	return cfg
}

func messages(n int, bad map[int]string) []kafka.Message {
	var out []kafka.Message
	for i := range n {
		v := fmt.Sprintf(`{"id":"r%d","model":"m","response":"answer %d"}`, i, i)
		if b, ok := bad[i]; ok {
			v = b
		}
		out = append(out, kafka.Message{Topic: "t", Partition: i % 2, Offset: int64(i / 2), Value: []byte(v), Time: time.Unix(0, 0)})
	}
	return out
}

func runUntilDone(t *testing.T, p *Pipeline, n int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	deadline := time.After(20 * time.Second)
	for p.Stats().Done < n {
		select {
		case <-deadline:
			cancel()
			t.Fatalf("only %d of %d messages done", p.Stats().Done, n)
		case <-time.After(2 * time.Millisecond):
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestPipelineScoresDeadLettersAndCommitsToTheEnd(t *testing.T) {
	bad := map[int]string{3: `not json`, 8: `{"response":"no model"}`}
	reader := &fakeReader{msgs: messages(20, bad), commits: map[TopicPartition]int64{}}
	sink := &recordingSink{}
	p, err := New(testConfig(), reader, fakeScorer{}, sink, sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runUntilDone(t, p, 20)

	if len(sink.rows) != 18 {
		t.Errorf("score rows = %d, want 18", len(sink.rows))
	}
	if len(sink.dead) != 2 {
		t.Fatalf("dead letters = %d, want 2", len(sink.dead))
	}
	reasons := map[string]bool{}
	for _, d := range sink.dead {
		reasons[d.Reason] = true
		if d.Source.Topic != "t" || d.Value == nil {
			t.Errorf("dead letter lacks its source or bytes: %+v", d)
		}
	}
	if !reasons[ReasonInvalidJSON] || !reasons[ReasonMissingField] {
		t.Errorf("dead-letter reasons = %v", reasons)
	}
	got := reader.committed()
	want := map[TopicPartition]int64{{"t", 0}: 10, {"t", 1}: 10}
	for tp, off := range want {
		if got[tp] != off {
			t.Errorf("committed %s = %d, want %d", tp, got[tp], off)
		}
	}
	if s := p.Stats(); s.Valid != 18 || s.DeadLetters != 2 || s.Scores != 18 {
		t.Errorf("stats = %+v", s)
	}
}

func TestPipelineNeverCommitsBeforeTheSinkAcknowledges(t *testing.T) {
	reader := &fakeReader{msgs: messages(8, nil), commits: map[TopicPartition]int64{}}
	sink := &recordingSink{failFirst: 3}
	// Every write attempt checks that no offset beyond what the sink holds was committed.
	sink.beforeWrite = func() {
		sink.mu.Lock()
		stored := map[TopicPartition]int64{}
		for _, r := range sink.rows {
			tp := TopicPartition{r.Source.Topic, r.Source.Partition}
			stored[tp] = max(stored[tp], r.Source.Offset+1)
		}
		sink.mu.Unlock()
		for tp, off := range reader.committed() {
			if off > stored[tp] {
				t.Errorf("committed %s up to %d but the sink holds rows only below %d", tp, off, stored[tp])
			}
		}
	}
	p, err := New(testConfig(), reader, fakeScorer{}, sink, sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runUntilDone(t, p, 8)
	if p.Stats().Retries < 3 {
		t.Errorf("retries = %d, want at least 3", p.Stats().Retries)
	}
	if len(sink.rows) != 8 {
		t.Errorf("rows = %d, want 8 (nothing lost to the failures)", len(sink.rows))
	}
	if got := reader.committed(); got[TopicPartition{"t", 0}] != 4 || got[TopicPartition{"t", 1}] != 4 {
		t.Errorf("committed = %v", got)
	}
}

// blockingSink never acknowledges until released, to test the in-flight bound.
type blockingSink struct {
	recordingSink
	release chan struct{}
}

func (b *blockingSink) WriteScores(ctx context.Context, rows []record.Score) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.recordingSink.WriteScores(ctx, rows)
}

func TestPipelineBoundsInFlightRecords(t *testing.T) {
	reader := &fakeReader{msgs: messages(100, nil), commits: map[TopicPartition]int64{}}
	sink := &blockingSink{release: make(chan struct{})}
	cfg := testConfig()
	cfg.ShutdownTimeout = 50 * time.Millisecond
	p, err := New(cfg, reader, fakeScorer{}, sink, sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	// Wait until fetching has stalled on the bound.
	for i := 0; i < 200 && p.Stats().Fetched < int64(cfg.MaxInFlightRecords); i++ {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if f := p.Stats().Fetched; f != int64(cfg.MaxInFlightRecords) {
		t.Errorf("fetched %d with the sink blocked, want exactly the in-flight bound %d", f, cfg.MaxInFlightRecords)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// Nothing was acknowledged, so nothing may be committed: the next run replays it all.
	if got := reader.committed(); len(got) != 0 {
		t.Errorf("committed %v although no batch was written", got)
	}
}

// alwaysFailingSink rejects every write, standing in for a ClickHouse that is down.
type alwaysFailingSink struct{ recordingSink }

func (a *alwaysFailingSink) WriteScores(context.Context, []record.Score) error {
	return errors.New("clickhouse down")
}

func TestPipelineShutdownEndsWithinTheDeadlineWhenSinksFail(t *testing.T) {
	reader := &fakeReader{msgs: messages(40, nil), commits: map[TopicPartition]int64{}}
	sink := &alwaysFailingSink{}
	cfg := testConfig()
	cfg.Workers = 1
	cfg.MaxInFlightRecords = 40
	cfg.ShutdownTimeout = 100 * time.Millisecond
	p, err := New(cfg, reader, fakeScorer{}, sink, sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	for p.Stats().Retries < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-errc:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the shutdown deadline with every batch failing")
	}
	if got := reader.committed(); len(got) != 0 {
		t.Errorf("committed %v although nothing was written", got)
	}
}

// flakyReader fails its first fetches with a transient error, as kafka-go does on a
// leader change.
type flakyReader struct {
	fakeReader
	failures int
}

func (f *flakyReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	f.mu.Lock()
	if f.failures > 0 {
		f.failures--
		f.mu.Unlock()
		return kafka.Message{}, kafka.NotLeaderForPartition
	}
	f.mu.Unlock()
	return f.fakeReader.FetchMessage(ctx)
}

func TestPipelineSurvivesTransientFetchErrors(t *testing.T) {
	reader := &flakyReader{fakeReader: fakeReader{msgs: messages(6, nil), commits: map[TopicPartition]int64{}}, failures: 1}
	sink := &recordingSink{}
	p, err := New(testConfig(), reader, fakeScorer{}, sink, sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runUntilDone(t, p, 6)
	if p.Stats().FetchErrors != 1 || len(sink.rows) != 6 {
		t.Fatalf("stats %+v, rows %d", p.Stats(), len(sink.rows))
	}
}

func TestPipelineDeadLettersOversizedValuesAsPrefix(t *testing.T) {
	big := `{"model":"m","response":"` + strings.Repeat("x", 200<<10) + `"}`
	reader := &fakeReader{msgs: messages(2, map[int]string{1: big}), commits: map[TopicPartition]int64{}}
	sink := &recordingSink{}
	cfg := testConfig()
	cfg.MaxRecordBytes = 100 << 10
	p, err := New(cfg, reader, fakeScorer{}, sink, sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runUntilDone(t, p, 2)
	if len(sink.dead) != 1 {
		t.Fatalf("dead letters = %d", len(sink.dead))
	}
	d := sink.dead[0]
	if d.Reason != ReasonTooLarge || d.OriginalSize != len(big) || len(d.Value) != tooLargeKeepBytes {
		t.Fatalf("dead letter: reason %s, original size %d, kept %d bytes", d.Reason, d.OriginalSize, len(d.Value))
	}
}

func TestNewRejectsAnInvalidConfig(t *testing.T) {
	cfg := testConfig()
	cfg.Workers = -1
	if _, err := New(cfg, &fakeReader{}, fakeScorer{}, &recordingSink{}, &recordingSink{}, Options{}); err == nil || !strings.Contains(err.Error(), "kafka.workers") {
		t.Fatalf("New = %v, want an error naming kafka.workers", err)
	}
}

func TestPipelineTracesEachBatchWithItsStages(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	msgs := messages(4, map[int]string{2: "not json"})
	// A producer's trace context travels in the message headers.
	msgs[0].Headers = []kafka.Header{{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}}
	reader := &fakeReader{msgs: msgs, commits: map[TopicPartition]int64{}}
	sink := &recordingSink{}
	p, err := New(testConfig(), reader, fakeScorer{}, sink, sink, Options{Telemetry: telemetry.Settings{TracerProvider: tp}})
	if err != nil {
		t.Fatal(err)
	}
	runUntilDone(t, p, 4)
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		byName[s.Name()] = s
	}
	batch, ok := byName["consumer.batch"]
	if !ok {
		t.Fatalf("no consumer.batch span among %v", byName)
	}
	for _, child := range []string{"sink.write_scores", "sink.write_dead_letters"} {
		s, ok := byName[child]
		if !ok || s.Parent().SpanID() != batch.SpanContext().SpanID() {
			t.Errorf("span %s missing or not a child of consumer.batch", child)
		}
	}
	linked := false
	for _, l := range batch.Links() {
		linked = linked || l.SpanContext.TraceID().String() == "4bf92f3577b34da6a3ce929d0e0e4736"
	}
	if !linked {
		t.Error("the batch span is not linked to the producer's trace")
	}
}

// poisonScorer fails the judgements of the records whose id is in poison (all of them
// when poison is nil) with an error naming those records, as scorer.UnavailableError
// does: they are suspects when some other record of the call was judged (the judge is
// up), none when every record failed (the judge is down).
type poisonScorer struct {
	poison map[string]bool
	calls  int
	mu     sync.Mutex
}

type failedRecordsErr struct{ recs, suspects []*record.Record }

func (e failedRecordsErr) Error() string                    { return fmt.Sprintf("%d records unavailable", len(e.recs)) }
func (e failedRecordsErr) PoisonSuspects() []*record.Record { return e.suspects }

func (s *poisonScorer) Score(ctx context.Context, recs []*record.Record) ([]record.Score, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	var failed []*record.Record
	for _, r := range recs {
		if s.poison == nil || s.poison[r.ID] {
			failed = append(failed, r)
		}
	}
	if len(failed) > 0 {
		e := failedRecordsErr{recs: failed}
		if len(failed) < len(recs) {
			e.suspects = failed
		}
		return nil, e
	}
	return fakeScorer{}.Score(ctx, recs)
}

func TestPipelineDeadLettersRecordsWhoseJudgementsKeepFailing(t *testing.T) {
	cfg := testConfig()
	cfg.PoisonAttempts = 3
	reader := &fakeReader{msgs: messages(8, nil), commits: map[TopicPartition]int64{}}
	sink := &recordingSink{}
	sc := &poisonScorer{poison: map[string]bool{"r3": true}}
	p, err := New(cfg, reader, sc, sink, sink, Options{Telemetry: telemetry.Settings{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	runUntilDone(t, p, 8)
	if len(sink.rows) != 7 {
		t.Errorf("%d score rows, want 7 (every record but r3)", len(sink.rows))
	}
	if len(sink.dead) != 1 || sink.dead[0].Reason != ReasonJudgeFailed || sink.dead[0].Attempts != 3 || string(sink.dead[0].Value) != string(messages(8, nil)[3].Value) {
		t.Fatalf("dead letters %+v, want r3's message with reason %s after 3 attempts", sink.dead, ReasonJudgeFailed)
	}
	if got := reader.committed(); got[TopicPartition{"t", 0}] != 4 || got[TopicPartition{"t", 1}] != 4 {
		t.Errorf("committed %v, want both partitions at 4", got)
	}
}

func TestPipelineWaitsOutAJudgePoolThatIsDown(t *testing.T) {
	cfg := testConfig()
	cfg.PoisonAttempts = 2
	cfg.ShutdownTimeout = 50 * time.Millisecond // the batch never succeeds: abandon it at shutdown
	reader := &fakeReader{msgs: messages(4, nil), commits: map[TopicPartition]int64{}}
	sink := &recordingSink{}
	sc := &poisonScorer{} // every record fails: the pool is down
	p, err := New(cfg, reader, sc, sink, sink, Options{Telemetry: telemetry.Settings{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	for {
		sc.mu.Lock()
		calls := sc.calls
		sc.mu.Unlock()
		if calls >= 10 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(sink.dead) != 0 || len(sink.rows) != 0 || len(reader.committed()) != 0 {
		t.Errorf("while the pool was down: %d dead letters, %d rows, commits %v; want none", len(sink.dead), len(sink.rows), reader.committed())
	}
}

// revokingReader is a fakeReader that, like GroupReader, tells the pipeline when the
// group takes partitions away: the test calls revoke as the group would.
type revokingReader struct {
	*fakeReader
	hook func(ctx context.Context, parts []TopicPartition)
}

func (r *revokingReader) OnRevoke(fn func(ctx context.Context, parts []TopicPartition)) { r.hook = fn }

func (r *revokingReader) revoke(timeout time.Duration, parts ...TopicPartition) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r.hook(ctx, parts)
}

// On a rebalance the pipeline finishes the revoked partitions' records in flight and
// commits them before handing the partitions back; what cannot finish in time is left
// uncommitted, to replay on the new owner.
func TestPipelineFinishesRevokedPartitionsBeforeHandingThemBack(t *testing.T) {
	both := []TopicPartition{{"t", 0}, {"t", 1}}
	for _, tc := range []struct {
		name          string
		releaseAfter  time.Duration // when the sink starts acknowledging
		revokeTimeout time.Duration
		wantCommitted int64 // per partition, when the hook returns
	}{
		{"finishes in time", 50 * time.Millisecond, 10 * time.Second, 4},
		{"runs out of time", time.Hour, 100 * time.Millisecond, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reader := &revokingReader{fakeReader: &fakeReader{msgs: messages(8, nil), commits: map[TopicPartition]int64{}}}
			sink := &blockingSink{release: make(chan struct{})}
			cfg := testConfig()
			cfg.ShutdownTimeout = 50 * time.Millisecond
			cfg.CommitInterval = time.Hour // only the hand-back commits
			p, err := New(cfg, reader, fakeScorer{}, sink, sink, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if reader.hook == nil {
				t.Fatal("the pipeline did not register for revocations")
			}
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() { errc <- p.Run(ctx) }()
			for i := 0; i < 400 && p.Stats().Fetched < 8; i++ {
				time.Sleep(5 * time.Millisecond)
			}
			start := time.Now()
			release := time.AfterFunc(tc.releaseAfter, func() { close(sink.release) })
			defer release.Stop()
			reader.revoke(tc.revokeTimeout, both...)
			waited := time.Since(start)
			got := reader.committed()
			for _, tp := range both {
				if got[tp] != tc.wantCommitted {
					t.Errorf("%s committed %d when the hook returned, want %d", tp, got[tp], tc.wantCommitted)
				}
			}
			if waited < min(tc.releaseAfter, tc.revokeTimeout) {
				t.Errorf("the hook returned after %s, before the records could be done", waited)
			}
			cancel()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}
