// Package consumer reads LLM traffic from Kafka with a consumer group, decodes and
// validates each message, micro-batches the records, hands each batch to the scorer and
// the sinks, and commits an offset only once every record at or below it is done: its
// scores acknowledged by the score sink, or the message dead-lettered.
package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/semaphore"

	"raterd/consumer/conversation"
	"raterd/internal/telemetry"
	"raterd/record"
)

// MessageReader is the part of a kafka-go *kafka.Reader (with a GroupID) the pipeline uses.
type MessageReader interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// RevokeNotifier is implemented by readers that know when the group takes partitions
// away (GroupReader); the pipeline then finishes and commits those partitions' records
// before the group moves on.
type RevokeNotifier interface {
	OnRevoke(fn func(ctx context.Context, partitions []TopicPartition))
}

// AssignNotifier is implemented by readers that know when the group assigns partitions
// and at which committed offsets (GroupReader), before any of their messages is fetched.
type AssignNotifier interface {
	OnAssign(fn func(assigned map[TopicPartition]int64))
}

// Scorer turns a batch of valid records into score rows. An error nacks the batch.
type Scorer interface {
	Score(ctx context.Context, records []*record.Record) ([]record.Score, error)
}

// StreamingScorer is an optional interface of a Scorer that scores in two steps:
// BeginScore does the batch's own work in the calling worker (cache lookup, in-process
// checks) and starts its remote judge calls; the function it returns waits for them and
// gives what Score would. The pipeline then hands the wait to a goroutine and the worker
// takes the next batch at once, so the judge pool is fed continuously instead of each
// worker waiting for its batch's slowest judge call (a batch barrier). The returned
// function is called exactly once.
type StreamingScorer interface {
	BeginScore(ctx context.Context, records []*record.Record) func() ([]record.Score, error)
}

// ScoreSink stores score rows; nil means durably accepted.
type ScoreSink interface {
	WriteScores(ctx context.Context, rows []record.Score) error
}

// Flusher is an optional interface of a ScoreSink that groups the rows of several
// batches into one write (ClickHouse group commit): the pipeline calls Flush when no more
// rows can join soon — the in-flight bound stops fetching, every write slot is taken, or
// fetching ended — so that no batch waits out the sink's interval for nothing. A sink
// that wraps another must implement Flush and forward it, or grouped rows wait.
type Flusher interface {
	// Flush starts writing what the sink holds; it does not wait for the write.
	Flush()
}

// DeadLetterSink stores rejected messages; nil means durably accepted.
type DeadLetterSink interface {
	WriteDeadLetters(ctx context.Context, letters []record.DeadLetter) error
}

// DeadLetterResumer is an optional interface of a DeadLetterSink (sinks.MultiDeadLetterSink,
// the Kafka DLQ producer): BeginDeadLetters returns a write of the letters that, called
// again after an error, sends only what was not acknowledged. The pipeline begins one
// write per batch and retries it, so a dead letter is not sent again to the DLQ topic
// because the dead_letters table (or another letter of the batch) failed. A sink without
// it gets the whole batch again on every retry.
type DeadLetterResumer interface {
	BeginDeadLetters(letters []record.DeadLetter) func(ctx context.Context) error
}

// beginDeadLetters is the batch's resumable dead-letter write on s.
func beginDeadLetters(s DeadLetterSink, letters []record.DeadLetter) func(ctx context.Context) error {
	if r, ok := s.(DeadLetterResumer); ok {
		return r.BeginDeadLetters(letters)
	}
	return func(ctx context.Context) error { return s.WriteDeadLetters(ctx, letters) }
}

// Options carries the pipeline's collaborators other than its stages.
type Options struct {
	// Telemetry is where the pipeline's logs, metrics (meter raterd/consumer) and spans
	// (a span per batch) go; unset fields mean telemetry.Settings.WithDefaults.
	Telemetry telemetry.Settings
	// Now defaults to time.Now.
	Now func() time.Time
	// Assemblers group records into conversations and agent runs (traces) for the
	// evaluators of those scopes (see package conversation); none when no evaluator has
	// such a scope. Each holds back the offsets of its open segments' records until the
	// segment's rows are written.
	Assemblers []*conversation.Assembler
}

// Stats are the pipeline's running totals.
type Stats struct {
	Fetched     int64 // messages fetched from Kafka
	FetchErrors int64 // failed fetches that were retried
	Valid       int64 // messages decoded (into zero or more records)
	Records     int64 // records decoded (one message may yield several)
	Empty       int64 // decoded messages that yielded no record (every part skipped)
	Skipped     int64 // parts of messages skipped on purpose (e.g. non-GenAI spans)
	DeadLetters int64 // messages dead-lettered
	Stale       int64 // redelivered messages skipped (already tracked or done)
	Done        int64 // messages fully done (scored and written, or dead-lettered)
	Scores      int64 // score rows written
	Batches     int64 // batches completed
	Retries     int64 // failed batch attempts that were retried
	Permanent   int64 // of them, attempts that failed with a permanent sink error (PermanentSinkError)
	Blocked     int64 // batches held now by a permanent sink error
	Commits     int64 // successful offset commits (each covers one or more partitions)
	// Transcripts counts closed conversations (and agent runs) whose rows are written.
	Transcripts int64
}

// item is one fetched message on its way through the pipeline, or one closed
// conversation (or agent run) to judge.
type item struct {
	msg  kafka.Message
	recs []*record.Record // what the message yields: none when dead or every part skipped
	dead *record.DeadLetter
	size int
	// ack is what the fetched message waits for before its offset may be committed.
	ack *messageAck
	// transcript is set on a closed segment's item (msg is then empty): its record is
	// recs[0], and its holds are released when its rows are written.
	transcript *conversation.Closed
}

// messageAck counts what a fetched message waits for before its offset may be marked
// done: its batch, and each open conversation (or trace) segment holding one of its
// records. It is the conversation.Hold of those segments.
type messageAck struct {
	tracker   *OffsetTracker
	tp        TopicPartition
	offset    int64
	epoch     uint64 // of the partition's tracker state when the message was tracked
	n         atomic.Int32
	abandoned atomic.Bool
}

// newMessageAck returns the ack of a message tracked in epoch, held once by its batch.
func newMessageAck(tracker *OffsetTracker, tp TopicPartition, offset int64, epoch uint64) *messageAck {
	a := &messageAck{tracker: tracker, tp: tp, offset: offset, epoch: epoch}
	a.n.Store(1)
	return a
}

// Release gives up one claim; the last marks the offset done, unless a revoke abandoned
// it (conversation.Hold).
func (a *messageAck) Release() {
	if a.n.Add(-1) == 0 && !a.abandoned.Load() {
		a.tracker.DoneIn(a.tp, a.offset, a.epoch)
	}
}

// abandon marks the message as never to be done here: a segment holding it was dropped
// with its revoked partition, whose next owner reads it again.
func (a *messageAck) abandon() {
	a.abandoned.Store(true)
	a.tracker.AbandonIn(a.tp, a.epoch, a.offset)
}

type batch struct {
	items []item
	size  int
}

// Pipeline is the consumer side of raterd: fetch → decode → batch → score → write → commit.
type Pipeline struct {
	cfg     Config
	reader  MessageReader
	scorer  Scorer
	scores  ScoreSink
	dead    DeadLetterSink
	opts    Options
	tracer  trace.Tracer
	tracker *OffsetTracker
	decoder *Decoder

	ran      atomic.Bool // Run may be called once: its bookkeeping does not reset
	commitMu sync.Mutex  // serialises commits (see commit)

	// revokedMu guards revokedParts: the partitions the group took away and has not assigned
	// back. A message of one that arrives after the revoke (fetched before it) is skipped:
	// the partition's next owner reads it, and an open conversation must not start here.
	// admit holds it for reading throughout, so a revoke marks its partitions between two
	// messages, never while one is being added to its conversations.
	revokedMu    sync.RWMutex
	revokedParts map[TopicPartition]bool

	inflightRecords *semaphore.Weighted
	inflightBytes   *semaphore.Weighted
	// writeSlots bounds the batches waiting on their sinks.
	writeSlots chan struct{}
	// scoring runs the batches a worker has begun, until they are written (or abandoned).
	scoring   sync.WaitGroup
	deadSlots chan struct{} // bounds concurrent dead-letter writes to Workers

	stats struct {
		fetched, fetchErrors, valid, records, empty, skipped, dead, stale, done, scores, batches, retries, commits atomic.Int64
		permanent, blocked, transcripts                                                                            atomic.Int64
	}

	mRecords  metric.Int64Counter
	mDecoded  metric.Int64Counter
	mSkipped  metric.Int64Counter
	mDead     metric.Int64Counter
	mBatchDur metric.Float64Histogram
	mBatchLen metric.Int64Histogram
	mCommits  metric.Int64Counter
	mRetries  metric.Int64Counter
	mBlocked  metric.Int64UpDownCounter
	mNoTime   metric.Int64Counter
}

// New returns a pipeline for cfg, which it validates (filling defaults).
func New(cfg Config, reader MessageReader, scorer Scorer, scores ScoreSink, dead DeadLetterSink, opts Options) (*Pipeline, error) {
	// Validate again (it is idempotent): zero bounds would hang or panic at run time.
	if err := cfg.Validate("kafka"); err != nil {
		return nil, err
	}
	opts.Telemetry = opts.Telemetry.WithDefaults()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Pipeline{
		cfg: cfg, reader: reader, scorer: scorer, scores: scores, dead: dead, opts: opts,
		tracer:          opts.Telemetry.TracerProvider.Tracer("raterd/consumer"),
		tracker:         NewOffsetTracker(),
		decoder:         NewDecoder(cfg.Limits()),
		inflightRecords: semaphore.NewWeighted(int64(cfg.MaxInFlightRecords)),
		inflightBytes:   semaphore.NewWeighted(int64(cfg.MaxInFlightBytes)),
		writeSlots:      make(chan struct{}, cfg.WriteSlots()),
		deadSlots:       make(chan struct{}, cfg.Workers),
	}
	m := opts.Telemetry.MeterProvider.Meter("raterd/consumer")
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	var err error
	p.mRecords, err = m.Int64Counter("raterd.consumer.records", metric.WithDescription("messages fetched, by outcome"))
	add(err)
	p.mDecoded, err = m.Int64Counter("raterd.consumer.decoded", metric.WithDescription("records decoded from messages, by input format (for format auto, the one detected)"))
	add(err)
	p.mSkipped, err = m.Int64Counter("raterd.consumer.skipped", metric.WithDescription("parts of messages skipped on purpose (non-GenAI spans, spans without output, …), by format and reason"))
	add(err)
	p.mDead, err = m.Int64Counter("raterd.consumer.dead_letters", metric.WithDescription("messages dead-lettered, by reason"))
	add(err)
	p.mBatchDur, err = m.Float64Histogram("raterd.consumer.batch.duration", metric.WithUnit("s"), metric.WithDescription("time to score and write one batch"))
	add(err)
	p.mBatchLen, err = m.Int64Histogram("raterd.consumer.batch.records", metric.WithDescription("messages per batch"))
	add(err)
	p.mCommits, err = m.Int64Counter("raterd.consumer.commits", metric.WithDescription("offset commits, by result"))
	add(err)
	p.mRetries, err = m.Int64Counter("raterd.consumer.batch.retries", metric.WithDescription("batch attempts that failed and were retried"))
	add(err)
	p.mNoTime, err = m.Int64Counter("raterd.consumer.event_time_unknown",
		metric.WithDescription("records with no usable event time of their own nor in their Kafka message, stored at 1970-01-01T00:00:00Z (consumer.UnknownEventTime)"))
	add(err)
	p.mBlocked, err = m.Int64UpDownCounter("raterd.consumer.batch.blocked",
		metric.WithDescription("batches held by a permanent sink error (a schema behind, a missing permission, a letter the topic never takes), by class: retried at retry_backoff_max until the cause is fixed"))
	add(err)
	_, err = m.Int64ObservableGauge("raterd.consumer.in_flight", metric.WithDescription("messages fetched and not yet done"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(p.tracker.Pending()))
			return nil
		}))
	add(err)
	add(p.conversationMetrics(m))
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("consumer metrics: %w", err)
	}
	if rn, ok := reader.(RevokeNotifier); ok {
		rn.OnRevoke(p.revoked)
	}
	if an, ok := reader.(AssignNotifier); ok {
		an.OnAssign(func(assigned map[TopicPartition]int64) {
			p.revokedMu.Lock()
			for tp := range assigned {
				delete(p.revokedParts, tp)
			}
			p.tracker.Assigned(assigned)
			p.revokedMu.Unlock()
		})
	}
	return p, nil
}

// Assemblers returns the pipeline's conversation and trace assemblers (Options.Assemblers).
func (p *Pipeline) Assemblers() []*conversation.Assembler { return p.opts.Assemblers }

// Stats returns the running totals.
func (p *Pipeline) Stats() Stats {
	s := &p.stats
	return Stats{
		Fetched: s.fetched.Load(), FetchErrors: s.fetchErrors.Load(), Valid: s.valid.Load(),
		Records: s.records.Load(), Empty: s.empty.Load(), Skipped: s.skipped.Load(),
		DeadLetters: s.dead.Load(), Stale: s.stale.Load(), Done: s.done.Load(), Scores: s.scores.Load(),
		Batches: s.batches.Load(), Retries: s.retries.Load(), Commits: s.commits.Load(),
		Permanent: s.permanent.Load(), Blocked: s.blocked.Load(), Transcripts: s.transcripts.Load(),
	}
}

// Run consumes until ctx ends, then drains: it stops fetching, finishes the batches in
// flight within Config.ShutdownTimeout, commits what is done and returns. Records not done
// by then are not committed and are read again by the next run. Call it once per Pipeline,
// and close the reader afterwards so that the group rebalances promptly.
func (p *Pipeline) Run(ctx context.Context) error {
	if !p.ran.CompareAndSwap(false, true) {
		return errors.New("consumer: Pipeline.Run called twice; build a new Pipeline")
	}
	// Work continues past ctx's end for the drain, bounded by the shutdown deadline.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	msgs := make(chan kafka.Message)
	batches := make(chan *batch)
	fetchErr := make(chan error, 1)
	fetchEnded := make(chan struct{})

	go func() {
		defer close(fetchEnded)
		fetchErr <- p.fetchLoop(ctx, msgs)
	}()

	// The drain deadline starts when fetching stops (shutdown or a fatal reader error); at
	// the deadline, work in flight is cancelled and replays on the next start.
	runDone := make(chan struct{})
	defer close(runDone)
	go func() {
		select {
		case <-ctx.Done():
		case <-fetchEnded:
		case <-runDone:
			return
		}
		timer := time.NewTimer(p.cfg.ShutdownTimeout)
		defer timer.Stop()
		select {
		case <-timer.C:
			p.opts.Telemetry.Logger.Warn("shutdown deadline reached; unfinished batches will be replayed", "pending", p.tracker.Pending())
			cancelWork()
		case <-runDone:
		}
	}()

	var workers sync.WaitGroup
	for range p.cfg.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for b := range batches {
				p.processBatch(workCtx, b)
			}
		}()
	}

	commitDone := make(chan struct{})
	stopCommit := make(chan struct{})
	go func() {
		defer close(commitDone)
		p.commitLoop(workCtx, stopCommit)
	}()

	p.batchLoop(workCtx, msgs, batches) // returns when msgs is closed (fetching stopped)
	close(batches)
	workers.Wait()
	p.drainScoring()
	close(stopCommit)
	<-commitDone
	// Final commit of everything done; commit bounds itself, even past the drain deadline.
	commitErr := p.commit(context.WithoutCancel(ctx))

	err := <-fetchErr
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	return errors.Join(err, commitErr)
}

// tooLargeKeepBytes is how much of an over-cap message value its dead letter keeps.
const tooLargeKeepBytes = 64 << 10

// commitTimeout bounds one offset commit: kafka-go's synchronous commit waits for a group
// generation, which never comes while the coordinator is away.
const commitTimeout = 10 * time.Second

// fetchLoop fetches messages while the in-flight budget allows, and closes msgs when ctx
// ends or the reader fails.
func (p *Pipeline) fetchLoop(ctx context.Context, msgs chan<- kafka.Message) error {
	defer close(msgs)
	for {
		// Backpressure: no fetch until a record slot is free. At the bound, rows waiting for
		// a grouped write get no company until that write frees slots: write them now.
		if !p.inflightRecords.TryAcquire(1) {
			p.flushScores()
			if err := p.inflightRecords.Acquire(ctx, 1); err != nil {
				return err
			}
		}
		m, err := p.reader.FetchMessage(ctx)
		if err != nil {
			p.inflightRecords.Release(1)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
				return fmt.Errorf("kafka fetch: reader closed: %w", err)
			}
			// kafka-go surfaces partition errors (a leader change, a broker restart) while it
			// keeps retrying itself: log, back off, and fetch again.
			p.stats.fetchErrors.Add(1)
			p.opts.Telemetry.Logger.Warn("kafka fetch failed; retrying", "err", BrokerText(err.Error()))
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		size := min(len(m.Value), p.cfg.MaxInFlightBytes)
		if !p.inflightBytes.TryAcquire(int64(size)) {
			p.flushScores()
			if err := p.inflightBytes.Acquire(ctx, int64(size)); err != nil {
				// Shutting down: this message is neither tracked nor committed; it replays.
				p.inflightRecords.Release(1)
				return err
			}
		}
		p.stats.fetched.Add(1)
		select {
		case msgs <- m:
		case <-ctx.Done():
			p.release(1, size)
			return ctx.Err()
		}
	}
}

func (p *Pipeline) release(records, bytes int) {
	p.inflightRecords.Release(int64(records))
	p.inflightBytes.Release(int64(bytes))
}

// batchLoop owns the batcher: it decodes each message, tracks its offset and flushes
// batches by count, bytes or linger. It returns after msgs is closed and the last partial
// batch is handed on.
func (p *Pipeline) batchLoop(workCtx context.Context, msgs <-chan kafka.Message, batches chan<- *batch) {
	b := NewBatcher[item](p.cfg.Batch, p.opts.Now)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		items, size := b.Flush()
		if len(items) == 0 {
			return
		}
		select {
		case batches <- &batch{items: items, size: size}:
		case <-workCtx.Done():
			// Past the shutdown deadline: the batch is dropped unfinished, so its offsets
			// are never committed and it replays on the next start.
		}
	}
	addTranscripts := func(closed []conversation.Closed) {
		for i := range closed {
			c := &closed[i]
			if c.Record == nil {
				// Nothing to judge (a trace that was no agent run): its records are done
				// once their own batches are.
				for _, h := range c.Holds {
					h.Release()
				}
				continue
			}
			if b.AddN(item{recs: []*record.Record{c.Record}, transcript: c, size: c.Record.SizeBytes}, 1, c.Record.SizeBytes) {
				flush()
			}
		}
	}
	// Open segments are checked against their timeouts now and then; at shutdown they
	// stay open, unjudged: their records are not committed, and the next run rebuilds them.
	var expiry <-chan time.Time
	if len(p.opts.Assemblers) > 0 {
		every := time.Hour
		for _, a := range p.opts.Assemblers {
			every = min(every, a.Config().CheckInterval)
		}
		t := time.NewTicker(every)
		defer t.Stop()
		expiry = t.C
	}
	for {
		var timeout <-chan time.Time
		if d := b.UntilNext(); d >= 0 {
			timer.Reset(d)
			timeout = timer.C
		}
		select {
		case m, ok := <-msgs:
			timer.Stop()
			if !ok {
				flush()
				return
			}
			it, closed, ok := p.admit(m)
			if !ok {
				continue
			}
			if b.AddN(it, len(it.recs), it.size) {
				flush()
			}
			addTranscripts(closed)
		case <-timeout:
			flush()
		case <-expiry:
			timer.Stop()
			for _, a := range p.opts.Assemblers {
				addTranscripts(a.Expire())
			}
		}
	}
}

// admit decodes a message, tracks its offset and adds its records to their open
// conversations (and traces), returning the segments that closed; ok is false for a
// stale redelivery.
func (p *Pipeline) admit(m kafka.Message) (it item, closed []conversation.Closed, ok bool) {
	size := min(len(m.Value), p.cfg.MaxInFlightBytes)
	tp := TopicPartition{Topic: m.Topic, Partition: m.Partition}
	p.revokedMu.RLock()
	defer p.revokedMu.RUnlock()
	if p.revokedParts[tp] {
		// Fetched before its partition was revoked: the next owner reads it.
		p.stats.stale.Add(1)
		p.mRecords.Add(context.Background(), 1, metric.WithAttributes(attribute.String("outcome", "stale")))
		p.release(1, size)
		return item{}, nil, false
	}
	epoch, err := p.tracker.TrackEpoch(tp, m.Offset)
	if err != nil {
		// kafka-go can redeliver records after a rebalance; they are already in flight
		// or done, so skipping them loses nothing.
		p.stats.stale.Add(1)
		p.mRecords.Add(context.Background(), 1, metric.WithAttributes(attribute.String("outcome", "stale")))
		p.release(1, size)
		return item{}, nil, false
	}
	if commitBeforeWrite {
		p.tracker.Done(tp, m.Offset) // the negative control's bug; never in real builds
	}
	src := record.Source{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
	res, err := p.decoder.DecodeMessage(p.cfg.FormatOf(m.Topic), m.Value, src, m.Time)
	it = item{msg: m, recs: res.Records, size: size, ack: newMessageAck(p.tracker, tp, m.Offset, epoch)}
	if err != nil {
		it.recs = nil
		reason := ReasonInvalidJSON
		var de *DecodeError
		if errors.As(err, &de) {
			reason = de.Reason
		}
		headers := make([]record.Header, len(m.Headers))
		for i, h := range m.Headers {
			headers[i] = record.Header{Key: h.Key, Value: h.Value}
		}
		it.dead = &record.DeadLetter{
			Source: src, Key: m.Key, Value: m.Value, Headers: headers,
			Reason: reason, Error: err.Error(), FirstSeen: p.opts.Now().UTC(), Attempts: 1,
		}
		if reason == ReasonTooLarge && len(m.Value) > tooLargeKeepBytes {
			// Over the cap the whole value would not fit the dead-letter topic either; keep a
			// prefix to identify it and record the original size.
			it.dead.Value, it.dead.OriginalSize = m.Value[:tooLargeKeepBytes], len(m.Value)
		}
		p.mRecords.Add(context.Background(), 1, metric.WithAttributes(attribute.String("outcome", "invalid")))
	} else {
		p.countDecoded(res)
		for _, r := range it.recs {
			for _, a := range p.opts.Assemblers {
				if a.KeyOf(r) == "" {
					continue
				}
				// Holds are released only once admit has returned (a closed segment's
				// item is written later), so counting after Add is safe.
				c, held := a.Add(r, m.Key, it.ack)
				if held {
					it.ack.n.Add(1)
				}
				closed = append(closed, c...)
			}
		}
	}
	return it, closed, true
}

// countDecoded counts a decoded message: its records by format, its skipped parts by
// reason, and whether it yielded nothing (it is then done as soon as its batch is, and
// commits like any other).
func (p *Pipeline) countDecoded(res DecodeResult) {
	ctx := context.Background()
	p.stats.valid.Add(1)
	p.stats.records.Add(int64(len(res.Records)))
	outcome := "valid"
	if len(res.Records) == 0 {
		outcome = "empty"
		p.stats.empty.Add(1)
	}
	p.mRecords.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
	if len(res.Records) > 0 {
		p.mDecoded.Add(ctx, int64(len(res.Records)), metric.WithAttributes(attribute.String("format", res.Format)))
	}
	unknown := 0
	for _, r := range res.Records {
		if r.Timestamp.Unix() == 0 {
			unknown++
		}
	}
	if unknown > 0 {
		p.mNoTime.Add(ctx, int64(unknown), metric.WithAttributes(attribute.String("format", res.Format)))
	}
	for reason, n := range res.Skipped {
		p.stats.skipped.Add(int64(n))
		p.mSkipped.Add(ctx, int64(n), metric.WithAttributes(attribute.String("format", res.Format), attribute.String("reason", reason)))
	}
}

// processBatch begins scoring a batch in the calling worker, then hands the rest to a
// goroutine of its own and returns (a plain Scorer scores wholly in the worker). With a
// StreamingScorer the worker does only the
// batch's own work (cache lookup, in-process checks, starting the remote judge calls):
// the judge pool streams tasks from many batches and no worker waits for its batch's
// slowest call. The goroutine waits for the verdicts (retrying the batch as a whole on
// failure), takes a write slot (at most WriteSlots batches wait on their sinks, so a
// sink that groups writes — one ClickHouse insert for many batches — gets company), and
// writes. The batch's offsets are marked done only when every write is acknowledged.
// How many batches are past their worker is bounded by the in-flight record and byte
// bounds, which stop fetching; so is how many retry at once while a judge pool is down
// (each with its own jittered backoff, and the pool's breakers in front of the servers),
// not Workers as before streaming.
func (p *Pipeline) processBatch(ctx context.Context, b *batch) {
	start := p.opts.Now()
	var links []trace.Link
	for i := range b.items {
		if len(links) == 32 {
			break // enough to find the producers' traces; spans stay small
		}
		if sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), headerCarrier(b.items[i].msg.Headers))); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	ctx, span := p.tracer.Start(ctx, "consumer.batch", trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int("messages", len(b.items)), attribute.Int("bytes", b.size)))

	var records []*record.Record
	var dead []record.DeadLetter
	for _, it := range b.items {
		if it.dead != nil {
			dead = append(dead, *it.dead)
		} else {
			records = append(records, it.recs...)
		}
	}

	var first func() ([]record.Score, error)
	if ss, ok := p.scorer.(StreamingScorer); ok && len(records) > 0 {
		first = ss.BeginScore(ctx, records)
	} else if len(records) > 0 {
		// A plain Scorer scores in the worker, as many batches at once as there are
		// workers.
		rows, err := p.scorer.Score(ctx, records)
		first = func() ([]record.Score, error) { return rows, err }
	}
	p.scoring.Add(1)
	go func() {
		defer p.scoring.Done()
		p.finishScoring(ctx, span, b, records, dead, first, start)
	}()
}

// finishScoring is processBatch's goroutine: it gets the batch's rows — from first, the
// scoring the worker began, if any; else, and on every retry, by scoring the records
// still in the batch — and writes them.
func (p *Pipeline) finishScoring(ctx context.Context, span trace.Span, b *batch, records []*record.Record, dead []record.DeadLetter,
	first func() ([]record.Score, error), start time.Time) {
	var rows []record.Score
	if len(records) > 0 {
		failures := map[*record.Record]int{} // attempts in which the record's judgements failed
		ok := p.retry(ctx, span, len(b.items), func() error {
			var r []record.Score
			var err error
			if first != nil {
				r, err = first()
				first = nil
			} else {
				r, err = p.scorer.Score(ctx, records)
			}
			if err != nil {
				err = fmt.Errorf("score %d records: %w", len(records), err)
				var poisoned []record.DeadLetter
				records, poisoned = p.poisoned(b, records, failures, err)
				dead = append(dead, poisoned...)
				return err
			}
			rows = r
			return nil
		})
		if !ok {
			span.End()
			return // not marked done: not committed, replayed by the next run
		}
	}

	if dropDeadLetters {
		dead = nil // the dead-letter negative control's bug; never in real builds
	}
	select {
	case p.writeSlots <- struct{}{}:
	default:
		// Every write slot waits (on a grouped insert): write it, then wait for a slot.
		p.flushScores()
		select {
		case p.writeSlots <- struct{}{}:
		case <-ctx.Done():
			span.SetStatus(codes.Error, "abandoned at shutdown")
			span.End()
			return
		}
	}
	defer func() { <-p.writeSlots }()
	defer span.End()
	wroteScores, wroteDead := false, len(dead) == 0
	// A retry resumes at the write that failed, so a ClickHouse outage does not cost
	// a second round of judge calls or a second dead letter: the dead-letter write is
	// begun once and resumed, so a sink (the DLQ topic) that acknowledged the letters
	// does not get them again when another (the dead_letters table) failed.
	writeDead := beginDeadLetters(p.dead, dead)
	ok := p.retry(ctx, span, len(b.items), func() error {
		return p.writeBatch(ctx, rows, len(dead), writeDead, &wroteScores, &wroteDead)
	})
	if !ok {
		return
	}
	p.finishBatch(ctx, b, rows, dead, start)
}

// PoisonSuspects is implemented by a Scorer error that names the records whose
// judgements failed on a judge that is up — it was answering other calls at the time, or
// the server failed this record alone with an error of its own (scorer.UnavailableError)
// — so the record may be what it cannot handle. Records failed by a pool that is down or
// overloaded are never suspects.
type PoisonSuspects interface {
	PoisonSuspects() []*record.Record
}

// poisoned (when Config.PoisonAttempts is set) takes out of records those that were
// suspects (see PoisonSuspects) in Config.PoisonAttempts attempts of the batch, and
// returns the rest and dead letters for their messages. A message is dead-lettered
// whole, once: the other records it yields leave the batch with it, and a replay of the
// letter scores them all.
func (p *Pipeline) poisoned(b *batch, records []*record.Record, failures map[*record.Record]int, err error) ([]*record.Record, []record.DeadLetter) {
	var ps PoisonSuspects
	if p.cfg.PoisonAttempts < 1 || !errors.As(err, &ps) {
		return records, nil
	}
	out := map[*record.Record]bool{}
	for _, r := range ps.PoisonSuspects() {
		failures[r]++
		if failures[r] >= p.cfg.PoisonAttempts {
			out[r] = true
		}
	}
	if len(out) == 0 {
		return records, nil
	}
	var dead []record.DeadLetter
	for _, it := range b.items {
		i := slices.IndexFunc(it.recs, func(r *record.Record) bool { return out[r] })
		if i < 0 {
			continue
		}
		m := it.msg
		if it.transcript != nil {
			// A conversation has no message of its own: its letter is the transcript in
			// raterd's record format, keyed by the conversation (or trace) id.
			m.Key = []byte(it.transcript.Record.Segment.Key)
			m.Value, _ = json.Marshal(it.transcript.Record)
		}
		headers := make([]record.Header, len(m.Headers))
		for i, h := range m.Headers {
			headers[i] = record.Header{Key: h.Key, Value: h.Value}
		}
		rec := it.recs[i]
		for _, r := range it.recs {
			out[r] = true // the siblings leave with the letter
		}
		msg := err.Error()
		if len(it.recs) > 1 {
			msg = fmt.Sprintf("record %q (one of %d in the message): %s", rec.ID, len(it.recs), msg)
		}
		dead = append(dead, record.DeadLetter{
			Source: rec.Source, Key: m.Key, Value: m.Value, Headers: headers, Reason: ReasonJudgeFailed,
			Error: msg, FirstSeen: p.opts.Now().UTC(), Attempts: failures[rec],
		})
	}
	keep := records[:0:0]
	for _, r := range records {
		if !out[r] {
			keep = append(keep, r)
		}
	}
	p.opts.Telemetry.Logger.Warn("dead-lettering records whose judgements keep failing on a judge that answers other calls",
		"records", len(dead), "attempts", p.cfg.PoisonAttempts, "err", err)
	return keep, dead
}

// drainFlushInterval is how often, once fetching has ended, the pipeline asks a grouping
// sink to write what it holds while the last batches finish scoring: often enough that
// the drain does not wait out the sink's interval, seldom enough not to make a small
// insert per finished batch.
const drainFlushInterval = 200 * time.Millisecond

// drainScoring waits for every begun batch to be written or abandoned. Fetching has
// ended, so no more rows will join the sink's open group: it is flushed now and again
// while batches still finish, so that none waits out the sink's interval.
func (p *Pipeline) drainScoring() {
	done := make(chan struct{})
	go func() {
		p.scoring.Wait()
		close(done)
	}()
	t := time.NewTicker(drainFlushInterval)
	defer t.Stop()
	for {
		p.flushScores()
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// flushScores asks a score sink that groups writes across batches to write what it holds:
// called when no more rows can join soon — the in-flight bound stops fetching, every
// write slot is taken, or fetching ended.
func (p *Pipeline) flushScores() {
	if f, ok := p.scores.(Flusher); ok {
		f.Flush()
	}
}

// PermanentSinkError is implemented by a sink error that retrying cannot cure
// (sinks.PermanentError: a schema behind, a missing permission, a dead letter the topic
// never takes): PermanentClass names the cause.
type PermanentSinkError interface {
	error
	PermanentClass() string
}

// permanentClass is the class of the first PermanentSinkError in err's chain, or "".
func permanentClass(err error) string {
	var pe PermanentSinkError
	if errors.As(err, &pe) {
		return pe.PermanentClass()
	}
	return ""
}

// retry runs stage until it succeeds, with jittered exponential backoff, and reports
// false when ctx ended first (shutdown: the batch is left to be replayed).
//
// A stage failing with a permanent sink error (PermanentSinkError) cannot be dropped
// either — its records would be lost, or committed past — so the batch is held, visibly:
// each attempt logs an error naming the class and the error, the batch counts in
// raterd.consumer.batch.blocked (by class) and Stats.Blocked until it succeeds, and it is
// retried at Config.RetryBackoffMax, so that fixing the cause (a migration, a grant, the
// topic's max.message.bytes) resumes the pipeline without a restart. Everything behind
// the batch waits at the in-flight bounds, as in an outage.
func (p *Pipeline) retry(ctx context.Context, span trace.Span, messages int, stage func() error) bool {
	backoff := 100 * time.Millisecond
	blocked := "" // the class this batch is counted blocked under
	defer func() {
		if blocked != "" {
			p.stats.blocked.Add(-1)
			p.mBlocked.Add(context.Background(), -1, metric.WithAttributes(attribute.String("class", blocked)))
		}
	}()
	for attempt := 1; ; attempt++ {
		err := stage()
		if err == nil {
			if blocked != "" {
				p.opts.Telemetry.Logger.Info("batch unblocked: the permanent sink error is gone", "class", blocked, "attempt", attempt, "messages", messages)
			}
			return true
		}
		if ctx.Err() != nil {
			span.SetStatus(codes.Error, "abandoned at shutdown")
			p.opts.Telemetry.Logger.Warn("batch abandoned at shutdown; it will be replayed", "messages", messages, "err", err)
			return false
		}
		p.stats.retries.Add(1)
		p.mRetries.Add(ctx, 1)
		span.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", attempt), attribute.String("error", err.Error())))
		if class := permanentClass(err); class != "" {
			p.stats.permanent.Add(1)
			if blocked == "" {
				blocked = class
				p.stats.blocked.Add(1)
				p.mBlocked.Add(ctx, 1, metric.WithAttributes(attribute.String("class", class)))
			}
			backoff = p.cfg.RetryBackoffMax
			p.opts.Telemetry.Logger.Error("batch blocked by a permanent sink error: nothing is dropped or committed past it; retrying at kafka.retry_backoff_max until the cause is fixed",
				"class", class, "attempt", attempt, "messages", messages, "retry_in", backoff, "err", err)
		} else {
			p.opts.Telemetry.Logger.Warn("batch failed; retrying", "attempt", attempt, "messages", messages, "backoff", backoff, "err", err)
		}
		// Full jitter keeps many workers from retrying in lockstep.
		sleep := time.Duration(rand.Int64N(int64(backoff))) + backoff/2
		select {
		case <-time.After(sleep):
		case <-ctx.Done():
		}
		backoff = min(backoff*2, p.cfg.RetryBackoffMax)
	}
}

// finishBatch marks a fully written batch done: its offsets may be committed, but for
// those still held by an open conversation; a closed conversation's item releases the
// offsets it held.
func (p *Pipeline) finishBatch(ctx context.Context, b *batch, rows []record.Score, dead []record.DeadLetter, start time.Time) {
	messages, bytes := 0, 0
	for _, it := range b.items {
		if it.transcript != nil {
			for _, h := range it.transcript.Holds {
				h.Release()
			}
			p.stats.transcripts.Add(1)
			continue
		}
		messages++
		bytes += it.size
		it.ack.Release()
	}
	p.release(messages, bytes)
	for _, d := range dead {
		p.mDead.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", d.Reason), attribute.String("topic", d.Source.Topic)))
	}
	p.stats.dead.Add(int64(len(dead)))
	p.stats.done.Add(int64(messages))
	p.stats.scores.Add(int64(len(rows)))
	p.stats.batches.Add(1)
	p.mBatchLen.Record(ctx, int64(len(b.items)))
	p.mBatchDur.Record(ctx, p.opts.Now().Sub(start).Seconds())
}

// writeBatch runs the writes not yet done for a batch.
func (p *Pipeline) writeBatch(ctx context.Context, rows []record.Score, dead int, writeDead func(context.Context) error, wroteScores, wroteDead *bool) error {
	if !*wroteScores {
		sctx, span := p.tracer.Start(ctx, "sink.write_scores", trace.WithAttributes(attribute.Int("rows", len(rows))))
		err := p.scores.WriteScores(sctx, rows)
		span.End()
		if err != nil {
			return fmt.Errorf("write %d score rows: %w", len(rows), err)
		}
		*wroteScores = true
	}
	if !*wroteDead {
		// At most Workers dead-letter writes at once, as before write slots: they are
		// not grouped, and many small inserts at once would crowd ClickHouse.
		select {
		case p.deadSlots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		dctx, span := p.tracer.Start(ctx, "sink.write_dead_letters", trace.WithAttributes(attribute.Int("messages", dead)))
		err := writeDead(dctx)
		<-p.deadSlots
		span.End()
		if err != nil {
			return fmt.Errorf("dead-letter %d messages: %w", dead, err)
		}
		*wroteDead = true
	}
	return nil
}

// commitLoop commits done offsets every CommitInterval until stop is closed.
func (p *Pipeline) commitLoop(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(p.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := p.commit(ctx); errors.Is(err, ErrRebalancing) {
				p.opts.Telemetry.Logger.Debug("offset commit waits for the rebalance to end", "err", BrokerText(err.Error()))
			} else if err != nil {
				p.opts.Telemetry.Logger.Warn("offset commit failed; will retry", "err", BrokerText(err.Error()))
			}
		}
	}
}

// revoked runs when the group takes partitions away (a rebalance): until ctx ends it waits
// for their records in flight (pushing grouped writes out) and commits what is done while
// the old generation still accepts it. Records still in flight at ctx's end finish later
// and replay on the new owner. The partitions' offset state is kept: should one come back,
// a redelivery of records this member already fetched is skipped as stale (they are done
// or still being processed here), and the watermark never passes a record still in
// flight.
//
// Open conversations (and traces) of the partitions are dropped unjudged, and the offsets
// they held are abandoned: nothing at or after the first was committed, so the
// partitions' next owner reads their records again and rebuilds them whole — this member
// too, should a partition come back (OffsetTracker.Assigned).
func (p *Pipeline) revoked(ctx context.Context, parts []TopicPartition) {
	start := time.Now()
	revoked := make(map[TopicPartition]bool, len(parts))
	p.revokedMu.Lock()
	if p.revokedParts == nil {
		p.revokedParts = make(map[TopicPartition]bool)
	}
	for _, tp := range parts {
		revoked[tp] = true
		p.revokedParts[tp] = true
	}
	p.revokedMu.Unlock()
	dropped := 0
	dropOpen := func() {
		// Again on every round: the batch loop may still admit messages of these
		// partitions that were fetched before the revoke.
		for _, a := range p.opts.Assemblers {
			for _, h := range a.Drop(func(topic string, partition int) bool {
				return revoked[TopicPartition{Topic: topic, Partition: partition}]
			}) {
				if ack, ok := h.(*messageAck); ok {
					ack.abandon()
					dropped++
				}
			}
		}
	}
	dropOpen()
	for p.tracker.PendingIn(parts) > 0 && ctx.Err() == nil {
		p.flushScores()
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
		dropOpen()
	}
	pending := p.tracker.PendingIn(parts)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := p.commit(cctx); err != nil {
		p.opts.Telemetry.Logger.Warn("rebalance: commit of the revoked partitions failed; their records replay", "err", BrokerText(err.Error()))
	}
	p.opts.Telemetry.Logger.Info("rebalance: partitions handed back", "partitions", len(parts),
		"waited", time.Since(start).Round(time.Millisecond), "left_in_flight", pending, "conversation_records_handed_over", dropped)
}

// commit commits every partition whose done watermark moved, in one request.
func (p *Pipeline) commit(ctx context.Context) error {
	// One commit at a time: a revoke's commit must not find the watermarks already taken
	// by a periodic commit still in flight (whose request may then fail with the ending
	// generation).
	p.commitMu.Lock()
	defer p.commitMu.Unlock()
	next := p.tracker.Committable()
	if len(next) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, 0, len(next))
	for tp, off := range next {
		// kafka-go commits message offset + 1, the offset of the next record to read.
		msgs = append(msgs, kafka.Message{Topic: tp.Topic, Partition: tp.Partition, Offset: off - 1})
	}
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	if err := p.reader.CommitMessages(ctx, msgs...); err != nil {
		p.tracker.Uncommit(next)
		p.mCommits.Add(ctx, 1, metric.WithAttributes(attribute.String("result", "error")))
		return fmt.Errorf("commit offsets of %d partitions: %w", len(next), err)
	}
	p.stats.commits.Add(1)
	p.mCommits.Add(ctx, 1, metric.WithAttributes(attribute.String("result", "ok")))
	p.opts.Telemetry.Logger.Debug("committed offsets", "partitions", len(next))
	return nil
}

// headerCarrier adapts Kafka headers to OTel's TextMapCarrier for trace-context extraction.
type headerCarrier []kafka.Header

func (h headerCarrier) Get(key string) string {
	for _, x := range h {
		if x.Key == key {
			return string(x.Value)
		}
	}
	return ""
}

func (h headerCarrier) Set(string, string) {}

func (h headerCarrier) Keys() []string {
	keys := make([]string, len(h))
	for i, x := range h {
		keys[i] = x.Key
	}
	return keys
}

// NewKafkaReader returns a kafka-go group reader for cfg. Commits are explicit (the
// pipeline's committer), never automatic. The client's errors go to tel's logger. A nil
// dialer uses cfg.Dialer() (the config's TLS and SASL).
func NewKafkaReader(cfg Config, dialer *kafka.Dialer, tel telemetry.Settings) *kafka.Reader {
	if dialer == nil {
		dialer = cfg.Dialer()
	}
	logger := tel.WithDefaults().Logger
	start := kafka.FirstOffset
	if cfg.StartOffset == StartLatest {
		start = kafka.LastOffset
	}
	rc := kafka.ReaderConfig{
		Brokers:           cfg.Brokers,
		GroupID:           cfg.GroupID,
		GroupTopics:       cfg.Topics,
		StartOffset:       start,
		MinBytes:          1,
		MaxBytes:          max(cfg.MaxRecordBytes*2, 10<<20),
		MaxWait:           250 * time.Millisecond,
		QueueCapacity:     max(cfg.Batch.MaxRecords, 100),
		CommitInterval:    0, // synchronous CommitMessages, called only by the committer
		SessionTimeout:    cfg.SessionTimeout,
		RebalanceTimeout:  cfg.RebalanceTimeout,
		HeartbeatInterval: max(cfg.SessionTimeout/10, 100*time.Millisecond),
		Dialer:            dialer,
		ErrorLogger:       kafka.LoggerFunc(func(msg string, args ...any) { logger.Warn("kafka: " + BrokerText(fmt.Sprintf(msg, args...))) }),
	}
	return kafka.NewReader(rc)
}

// conversationMetrics registers the assemblers' gauges and counters (meter
// raterd/consumer), each with a scope attribute: conversation or trace.
func (p *Pipeline) conversationMetrics(m metric.Meter) error {
	if len(p.opts.Assemblers) == 0 {
		return nil
	}
	open, err1 := m.Int64ObservableGauge("raterd.conversations.open", metric.WithDescription("open conversations (scope conversation) or agent runs (scope trace) waiting to close; their records' offsets are held back"))
	openBytes, err2 := m.Int64ObservableGauge("raterd.conversations.open_bytes", metric.WithUnit("By"), metric.WithDescription("text kept by the open segments"))
	closed, err3 := m.Int64ObservableCounter("raterd.conversations.closed", metric.WithDescription("segments closed and sent to their evaluators, by close reason (timeout, end_marker, gap, max_turns, max_bytes, max_duration, evicted; not_agent_run: a trace of model calls alone, not judged)"))
	added, err4 := m.Int64ObservableCounter("raterd.conversations.records", metric.WithDescription("records added to segments"))
	split, err5 := m.Int64ObservableCounter("raterd.conversations.split", metric.WithDescription("records whose conversation (or trace) is open on another partition: the producer does not key messages by it, so it is judged in pieces"))
	unkeyed, err6 := m.Int64ObservableCounter("raterd.conversations.unkeyed", metric.WithDescription("records whose Kafka message key is not their conversation (or trace) id"))
	clipped, err7 := m.Int64ObservableCounter("raterd.conversations.clipped", metric.WithDescription("records whose text was clipped to the segment's max_bytes"))
	dropped, err8 := m.Int64ObservableCounter("raterd.conversations.dropped", metric.WithDescription("open segments dropped unjudged when their partition was revoked; the next owner rebuilds them from the records it reads again"))
	replayed, err9 := m.Int64ObservableCounter("raterd.conversations.replayed", metric.WithDescription("records read again (a partition came back after a revoke) that a segment already judged here held: not judged twice"))
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7, err8, err9); err != nil {
		return err
	}
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, a := range p.opts.Assemblers {
			s := a.Stats()
			scope := attribute.String("scope", a.Scope())
			o.ObserveInt64(open, int64(s.Open), metric.WithAttributes(scope))
			o.ObserveInt64(openBytes, int64(s.OpenBytes), metric.WithAttributes(scope))
			for reason, n := range s.Closed {
				o.ObserveInt64(closed, n, metric.WithAttributes(scope, attribute.String("reason", reason)))
			}
			o.ObserveInt64(added, s.Added, metric.WithAttributes(scope))
			o.ObserveInt64(split, s.Split, metric.WithAttributes(scope))
			o.ObserveInt64(unkeyed, s.Unkeyed, metric.WithAttributes(scope))
			o.ObserveInt64(clipped, s.Clipped, metric.WithAttributes(scope))
			o.ObserveInt64(dropped, s.Dropped, metric.WithAttributes(scope))
			o.ObserveInt64(replayed, s.Replayed, metric.WithAttributes(scope))
		}
		return nil
	}, open, openBytes, closed, added, split, unkeyed, clipped, dropped, replayed)
	return err
}
