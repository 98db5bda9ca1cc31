package consumer

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/consumer/conversation"
	"raterd/record"
)

// timingReader is fakeReader that remembers when it handed out the last message of each
// key.
type timingReader struct {
	fakeReader
	mu   sync.Mutex
	last map[string]time.Time
}

func (r *timingReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	m, err := r.fakeReader.FetchMessage(ctx)
	if err == nil {
		r.mu.Lock()
		r.last[string(m.Key)] = time.Now()
		r.mu.Unlock()
	}
	return m, err
}

// timingSink is recordingSink that remembers when each transcript row was written.
type timingSink struct {
	recordingSink
	mu      sync.Mutex
	written map[string]time.Time // conversation id → write time of its transcript row
	reason  map[string]string
	turns   []int // the turn count of every transcript row
}

func (s *timingSink) WriteScores(ctx context.Context, rows []record.Score) error {
	now := time.Now()
	s.mu.Lock()
	for _, r := range rows {
		if r.Scope == record.ScopeConversation {
			s.written[r.ConversationID] = now
			s.reason[r.ConversationID] = r.CloseReason
			s.turns = append(s.turns, r.Turns)
		}
	}
	s.mu.Unlock()
	return s.recordingSink.WriteScores(ctx, rows)
}

// segmentScorer gives every record one row, which carries a transcript's segment as the
// real scorer's rows do.
type segmentScorer struct{}

func (segmentScorer) Score(_ context.Context, recs []*record.Record) ([]record.Score, error) {
	rows := make([]record.Score, len(recs))
	for i, r := range recs {
		rows[i] = record.Score{RecordID: r.ID, ConversationID: r.ConversationID, Source: r.Source, Status: record.StatusOK}
		if seg := r.Segment; seg != nil {
			rows[i].Scope, rows[i].CloseReason, rows[i].Turns = seg.Scope, seg.CloseReason, len(seg.Turns)
		}
	}
	return rows, nil
}

// BenchmarkConversationPipeline runs 4-turn conversations through the whole pipeline
// (decode, assembler, batcher, a scorer that gives every record and every transcript one
// row, the sink, commits) and reports conversations judged per second and the lag from a
// conversation's last turn being read to its transcript row being written: for the half
// closed by their end marker, and, beyond the inactivity timeout, for the half closed by
// it. One iteration is 10,000 conversations (40,000 records); records-only runs the same
// records with no conversation evaluator, the baseline of the same run. The throughput
// of conversations includes waiting out the timeout of the last ones.
func BenchmarkConversationPipeline(b *testing.B) {
	const conversations, turns = 10000, 4
	const timeout = 200 * time.Millisecond
	// Conversations interleave in groups of 256 (turn k of each before turn k+1), so a
	// conversation's turns follow each other within about a thousand messages: well inside
	// the timeout, which then closes only finished conversations.
	const group = 256
	var msgs []kafka.Message
	for g := 0; g < conversations; g += group {
		for k := range turns {
			for c := g; c < min(g+group, conversations); c++ {
				conv := fmt.Sprintf("c%05d", c)
				meta := ""
				if k == turns-1 && c%2 == 0 {
					meta = `,"metadata":{"conversation.end":"true"}`
				}
				v := fmt.Sprintf(`{"id":"%s-%d","model":"m","conversation_id":%q,"prompt":"question %d","response":%q%s}`,
					conv, k, conv, k, strings.Repeat("an answer of a few words. ", 8), meta)
				msgs = append(msgs, kafka.Message{Topic: "t", Partition: c % 4, Offset: int64(len(msgs)), Key: []byte(conv), Value: []byte(v)})
			}
		}
	}
	// The baseline: the same records through the same pipeline, no conversation
	// evaluator (so no assembler), in the same run.
	b.Run("records-only", func(b *testing.B) {
		var elapsed time.Duration
		for range b.N {
			elapsed += runBenchPipeline(b, &fakeReader{msgs: msgs, commits: map[TopicPartition]int64{}}, &recordingSink{}, Options{},
				func(p *Pipeline) bool { return p.Stats().Done >= int64(len(msgs)) })
		}
		b.ReportMetric(float64(len(msgs)*b.N)/elapsed.Seconds(), "records/s")
	})
	b.Run("conversations", func(b *testing.B) { benchConversations(b, msgs, conversations, turns, timeout) })
}

// runBenchPipeline runs a pipeline of the benchmark's configuration over reader until
// finished says so, and returns how long that took.
func runBenchPipeline(b *testing.B, reader MessageReader, sink interface {
	ScoreSink
	DeadLetterSink
}, opts Options, finished func(*Pipeline) bool) time.Duration {
	b.Helper()
	cfg := testConfig()
	cfg.Batch = BatchPolicy{MaxRecords: 256, Linger: 5 * time.Millisecond}
	cfg.MaxInFlightRecords = 4096
	if err := cfg.Validate("kafka"); err != nil {
		b.Fatal(err)
	}
	p, err := New(cfg, reader, segmentScorer{}, sink, sink, opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- p.Run(ctx) }()
	for !finished(p) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return elapsed
}

func benchConversations(b *testing.B, msgs []kafka.Message, conversations, turns int, timeout time.Duration) {
	var endLag, timeoutLag []time.Duration
	var elapsed time.Duration
	for range b.N {
		asm, err := conversation.New(record.ScopeConversation, conversation.Config{InactivityTimeout: timeout, CheckInterval: 10 * time.Millisecond}, nil)
		if err != nil {
			b.Fatal(err)
		}
		reader := &timingReader{fakeReader: fakeReader{msgs: msgs, commits: map[TopicPartition]int64{}}, last: map[string]time.Time{}}
		sink := &timingSink{written: map[string]time.Time{}, reason: map[string]string{}}
		elapsed += runBenchPipeline(b, reader, sink, Options{Assemblers: []*conversation.Assembler{asm}},
			func(p *Pipeline) bool { return p.Stats().Transcripts >= int64(conversations) })
		// Every conversation judged once, whole: the lags below are of finished ones.
		if n := len(sink.turns); n != conversations || slices.ContainsFunc(sink.turns, func(t int) bool { return t != turns }) {
			b.Fatalf("%d transcript rows for %d conversations, turn counts not all %d", n, conversations, turns)
		}
		for conv, at := range sink.written {
			lag := at.Sub(reader.last[conv])
			if sink.reason[conv] == record.CloseTimeout {
				timeoutLag = append(timeoutLag, lag-timeout)
			} else {
				endLag = append(endLag, lag)
			}
		}
	}
	ms := func(ds []time.Duration, q float64) float64 {
		slices.Sort(ds)
		return float64(ds[int(q*float64(len(ds)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(conversations*b.N)/elapsed.Seconds(), "conversations/s")
	b.ReportMetric(float64(len(msgs)*b.N)/elapsed.Seconds(), "records/s")
	b.ReportMetric(ms(endLag, 0.5), "end-marker-lag-p50-ms")
	b.ReportMetric(ms(endLag, 0.99), "end-marker-lag-p99-ms")
	b.ReportMetric(ms(timeoutLag, 0.5), "beyond-timeout-p50-ms")
	b.ReportMetric(ms(timeoutLag, 0.99), "beyond-timeout-p99-ms")
}

// BenchmarkOffsetsHeldBehindAConversation measures what the offset tracker keeps while
// an open conversation holds a partition's oldest offset: every later message, done,
// waits behind it. It reports the heap per message held behind.
func BenchmarkOffsetsHeldBehindAConversation(b *testing.B) {
	const n = 1_000_000
	tp := TopicPartition{"t", 0}
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tr := NewOffsetTracker()
		for off := range int64(n) {
			if err := tr.Track(tp, off); err != nil {
				b.Fatal(err)
			}
			if off > 0 { // offset 0 is the open conversation's first turn
				tr.Done(tp, off)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := tr.Committable()[tp]; got != 0 {
			b.Fatalf("committable %d past the held offset", got)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/message-held-behind")
		runtime.KeepAlive(tr)
	}
}
