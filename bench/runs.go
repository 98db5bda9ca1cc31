package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"raterd/bench/baseline"
	"raterd/consumer"
	"raterd/internal/app"
	"raterd/internal/judgesim"
	"raterd/internal/telemetry"
	"raterd/scorer"
	"raterd/scorer/cache"
	"raterd/sinks/clickhouse"
)

// runBare runs baseline.RunBare over the topic.
func (b *bencher) runBare(ctx context.Context, total int64) (benchRun, error) {
	b.logf("%s: bare kafka-go consumer (fetch, decode, commit) over %d records…", runBare, total)
	rctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	freeMemory()
	rss := startPeakRSS()
	res, err := baseline.RunBare(rctx, baseline.BareConfig{Kafka: baseline.KafkaConfig{
		Brokers: b.kafka.Brokers, Topic: b.topic, GroupID: b.topic + "-" + runBare, Records: total,
		TLS: b.kafka.TLS, SASL: b.kafka.SASL,
	}})
	peak, method := rss.stop()
	if err != nil {
		return benchRun{}, fmt.Errorf("%s baseline: %w", runBare, err)
	}
	r := baselineRun(runBare, "bare kafka-go consumer group reader: fetch, decode (consumer.Decode), commit every 1s; no judging, no writes", res)
	r.PeakRSSBytes, r.RSSMethod = peak, method
	b.logRun(r)
	return r, nil
}

// runNaive runs baseline.RunNaive on the first naive records of the topic, with the same
// evaluators and judges as raterd.
func (b *bencher) runNaive(ctx context.Context, cfg *app.Config, records int64) (benchRun, error) {
	b.logf("%s: naive evaluator (fetch one, judge, insert one, commit) over %d records…", runNaive, records)
	db := "raterd_bench_" + b.suffix + "_naive"
	if err := b.migrate(ctx, db); err != nil {
		return benchRun{}, err
	}
	judges, err := scorer.NewJudges(cfg.Judges, scorer.JudgeSettings{Telemetry: telemetry.Settings{Logger: b.logger}})
	if err != nil {
		return benchRun{}, err
	}
	defer scorer.CloseJudges(context.Background(), judges)
	var judge scorer.Judge = routeJudge{judges: judges}
	if len(judges) == 1 {
		for _, j := range judges {
			judge = j
		}
	}
	rctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	var simBefore judgesim.Stats
	if b.sim != nil {
		simBefore = b.sim.Stats()
	}
	freeMemory()
	rss := startPeakRSS()
	res, err := baseline.RunNaive(rctx, baseline.NaiveConfig{
		Kafka: baseline.KafkaConfig{Brokers: b.kafka.Brokers, Topic: b.topic, GroupID: b.topic + "-" + runNaive, Records: records,
			TLS: b.kafka.TLS, SASL: b.kafka.SASL},
		Evaluators: cfg.Evaluators, Judge: judge,
		ClickHouse: clickhouse.Config{Addrs: []string{b.o.clickhouse}, Database: db,
			Username: cfg.ClickHouse.Username, Password: cfg.ClickHouse.Password},
		Telemetry: telemetry.Settings{Logger: b.logger},
	})
	peak, method := rss.stop()
	if err != nil {
		return benchRun{}, fmt.Errorf("%s baseline: %w", runNaive, err)
	}
	r := baselineRun(runNaive, fmt.Sprintf("naive evaluator: fetch one message, judge it (one call, every evaluator), insert its rows (one INSERT), commit synchronously; capped at %d records (--naive-records)", records), res)
	r.PeakRSSBytes, r.RSSMethod = peak, method
	r.RowsExpected = res.Rows
	if r.RowsFound, err = b.countRows(ctx, db); err != nil {
		return r, err
	}
	if r.RowsFound != r.RowsExpected {
		b.problem("%s: %d rows in ClickHouse, %d acknowledged", runNaive, r.RowsFound, r.RowsExpected)
	}
	if res.Decoded > 0 {
		r.JudgeTasksPerRecord = ptr(float64(res.Rows) / float64(res.Records))
	}
	r.Inserts = res.Inserts
	if res.Inserts > 0 {
		r.RowsPerInsert = ptr(float64(res.Rows) / float64(res.Inserts))
		r.InsertsPerSecond = ptr(float64(res.Inserts) / res.Elapsed.Seconds())
	}
	if b.sim != nil {
		b.poolStats(&r, simBefore, b.sim.Stats())
	}
	b.logRun(r)
	return r, nil
}

// baselineRun turns a baseline Result into a report row.
func baselineRun(name, desc string, res baseline.Result) benchRun {
	r := benchRun{
		Name: name, Description: desc, Records: res.Records, Valid: res.Decoded, DeadLetters: res.DecodeErrors,
		cpu: res.CPU, elapsed: res.Elapsed, startupTime: res.Startup,
	}
	r.fillRates()
	return r
}

// fillRates computes the rates from the counts and the measured window.
func (r *benchRun) fillRates() {
	r.StartupSeconds = r.startupTime.Seconds()
	r.ElapsedSeconds = r.elapsed.Seconds()
	r.CPUUserSeconds, r.CPUSystemSeconds = r.cpu.User.Seconds(), r.cpu.System.Seconds()
	if r.elapsed > 0 {
		r.RecordsPerSecond = float64(r.Records) / r.elapsed.Seconds()
	}
	if r.Records > 0 {
		r.CPUMicrosPerRecord = float64(r.cpu.Total().Microseconds()) / float64(r.Records)
	}
}

func (b *bencher) logRun(r benchRun) {
	b.logf("%s: %d records in %.2fs (+%.2fs start-up): %.0f records/s, %.1f µs CPU/record, peak RSS %.0f MiB",
		r.Name, r.Records, r.ElapsedSeconds, r.StartupSeconds, r.RecordsPerSecond, r.CPUMicrosPerRecord, float64(r.PeakRSSBytes)/(1<<20))
}

// poolStats fills the judgesim columns from the simulator's counters before and after.
func (b *bencher) poolStats(r *benchRun, before, after judgesim.Stats) {
	done := after.Completed - before.Completed
	r.PoolRequests = done
	if r.Records > 0 {
		r.PoolRequestsPerRec = ptr(float64(done) / float64(r.Records))
	}
	if r.elapsed > 0 {
		r.PoolRequestsPerSec = ptr(float64(done) / r.elapsed.Seconds())
		busy := judgesim.Stats{MaxSeqs: after.MaxSeqs, BusySeqTime: after.BusySeqTime - before.BusySeqTime}
		r.PoolUtilization = ptr(judgesim.Utilization(busy, r.elapsed))
	}
	if done > 0 {
		p := int((after.PromptTokens - before.PromptTokens) / done)
		c := int((after.CompletionTokens - before.CompletionTokens) / done)
		r.PoolCapacityPerSec = ptr(b.sim.Config().Capacity(p, c))
	}
}

// raterdSpec is one raterd run over a topic.
type raterdSpec struct {
	name, desc, topic string
	// keySpace names the Redis key space (runs that share one share the cache); cache
	// false runs without Redis and with the in-process tier off.
	keySpace string
	cache    bool
	// format is the topic's input format; "" or raterd: the raterd JSON record.
	format string
	// messages is the messages the run must finish; wantRows the score rows it must store.
	messages, wantRows int64
	// spansPerMessage: the mean spans of an OTLP export, for the report (0: not OTLP).
	spansPerMessage float64
	profile         string
	// redact is scoring.redact.types of the run; nil: off.
	redact []string
}

// runRaterd runs raterd's pipeline, built as `raterd run` builds it, over the topic as a
// new consumer group, until every message is done and every row is visible in ClickHouse.
func (b *bencher) runRaterd(ctx context.Context, s raterdSpec) (benchRun, error) {
	name, topic, total, wantRows := s.name, s.topic, s.messages, s.wantRows
	r := benchRun{Name: name, Description: s.desc, RowsExpected: wantRows, SpansPerMessage: s.spansPerMessage}
	db := "raterd_bench_" + b.suffix + "_" + strings.ReplaceAll(name, "-", "_")
	prefix := "raterd-bench-" + b.suffix + "-" + s.keySpace + ":"
	cfg, err := b.config(topic, topic+"-"+name, db, prefix, s.cache, s.format, s.redact)
	if err != nil {
		return r, err
	}
	if s.cache && !slices.Contains(b.prefixes, prefix) {
		b.prefixes = append(b.prefixes, prefix)
	}
	if err := b.migrate(ctx, db); err != nil {
		return r, err
	}
	b.logf("%s: %s over %d messages…", name, s.desc, total)
	p, st, leave, err := b.pipeline(ctx, cfg)
	if err != nil {
		return r, err
	}
	defer leave()

	var prof *os.File
	stopProfile := func() {
		if prof != nil {
			pprof.StopCPUProfile()
			_ = prof.Close()
			prof = nil
		}
	}
	defer stopProfile()
	var simBefore judgesim.Stats
	if b.sim != nil {
		simBefore = b.sim.Stats()
	}
	freeMemory()
	rss := startPeakRSS()
	defer rss.stop()
	if s.profile != "" {
		if prof, err = os.Create(s.profile); err != nil {
			return r, fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(prof); err != nil {
			_ = prof.Close()
			prof = nil
			return r, fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	start := time.Now()
	run := startRun(ctx, p)
	defer run.stop()

	first, cpuFirst, err := b.waitDone(ctx, name, p, total, start, run)
	if err != nil {
		_ = run.stop()
		return r, err
	}
	found, err := b.waitRows(ctx, db, wantRows, time.Now().Add(30*time.Second))
	end, cpuEnd := time.Now(), baseline.ProcessCPU()
	stopProfile()
	r.PeakRSSBytes, r.RSSMethod = rss.stop()
	if runErr := run.stop(); runErr != nil {
		return r, fmt.Errorf("%s: pipeline: %w", name, runErr)
	}
	if err != nil {
		return r, err
	}
	r.RowsFound = found
	if found != wantRows {
		b.problem("%s: %d rows in %s.scores FINAL, want %d", name, found, db, wantRows)
	}

	r.startupTime, r.elapsed, r.cpu = first.Sub(start), end.Sub(first), cpuEnd.Sub(cpuFirst)
	b.pipelineFigures(&r, p, st, wantRows, simBefore, s.format != "" && s.format != benchFormatRaterd)
	b.logRun(r)
	return r, nil
}

// pipelineFigures fills r from a finished raterd run — counts, rates (r's elapsed time and
// CPU must be set), judge tasks, cache, inserts and pool — and reports a score row count
// that differs from wantRows. perRecord (a run over OTLP exports, many records per
// message) counts Records and Valid in records decoded, and the messages apart, so that
// the rates are per record.
func (b *bencher) pipelineFigures(r *benchRun, p *consumer.Pipeline, st *app.Stack, wantRows int64, simBefore judgesim.Stats, perRecord bool) {
	ps, tot := p.Stats(), st.Scorer.Totals()
	r.Records, r.Valid, r.DeadLetters, r.Batches, r.Skipped = ps.Done, ps.Valid, ps.DeadLetters, ps.Batches, ps.Skipped
	if perRecord {
		r.Messages, r.Records, r.Valid = ps.Done, ps.Records, ps.Records
	}
	r.fillRates()
	r.JudgeTasksPerRecord = ptr(float64(tot.JudgeCalls) / float64(max(r.Records, 1)))
	r.CacheHits, r.Deduplicated, r.InFlightJoins = int64(tot.CacheHits), int64(tot.Deduplicated), int64(tot.InFlightJoins)
	if t, ok := st.Cache.(*cache.Tiered); ok && ps.Batches > 0 {
		r.CacheRoundTripsPerBatch = ptr(float64(t.Stats().RoundTrips) / float64(ps.Batches))
	}
	if st.ScoreInserts != nil {
		is := st.ScoreInserts.Stats()
		r.Inserts = is.Flushes
		if is.Flushes > 0 {
			r.RowsPerInsert = ptr(float64(is.Rows) / float64(is.Flushes))
			r.InsertsPerSecond = ptr(float64(is.Flushes) / r.elapsed.Seconds())
		}
	}
	if b.sim != nil {
		b.poolStats(r, simBefore, b.sim.Stats())
	}
	if ps.Scores != wantRows {
		b.problem("%s: the pipeline wrote %d score rows, want %d", r.Name, ps.Scores, wantRows)
	}
}

// pipelineRun is a pipeline running on its own goroutine: done closes when Run returns,
// stopped or failed on its own, and stop may be called any number of times after either.
type pipelineRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Run's result, set before done closes
}

// startRun runs p until ctx ends or stop is called.
func startRun(ctx context.Context, p *consumer.Pipeline) *pipelineRun {
	runCtx, cancel := context.WithCancel(ctx)
	r := &pipelineRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = p.Run(runCtx)
		close(r.done)
	}()
	return r
}

// stop ends the run, waits for Run to return and returns its error.
func (r *pipelineRun) stop() error {
	r.cancel()
	<-r.done
	return r.err
}

// errPipelineStopped marks a pipeline that returned before its work was done.
var errPipelineStopped = errors.New("pipeline stopped early")

// waitDone waits until p has done total messages, printing progress each second. It
// returns when the first message was fetched and the process CPU time then: the start
// of the measured window, as for the baselines.
func (b *bencher) waitDone(ctx context.Context, name string, p *consumer.Pipeline, total int64, start time.Time, run *pipelineRun) (time.Time, baseline.CPUTime, error) {
	var first time.Time
	var cpuFirst baseline.CPUTime
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.NewTimer(b.o.timeout)
	defer deadline.Stop()
	for {
		s := p.Stats()
		if first.IsZero() && s.Fetched > 0 {
			first, cpuFirst = time.Now(), baseline.ProcessCPU()
		}
		if s.Done >= total {
			return first, cpuFirst, nil
		}
		select {
		case <-run.done:
			return first, cpuFirst, fmt.Errorf("%s: %w after %d of %d messages: %v", name, errPipelineStopped, s.Done, total, run.err)
		case <-ctx.Done():
			return first, cpuFirst, fmt.Errorf("%s: %d of %d messages done: %w", name, s.Done, total, ctx.Err())
		case <-deadline.C:
			return first, cpuFirst, fmt.Errorf("%s: %d of %d messages done after %s (--timeout)", name, s.Done, total, b.o.timeout)
		case <-tick.C:
			rate := 0.0
			if !first.IsZero() {
				rate = float64(s.Done) / time.Since(first).Seconds()
			}
			b.logf("%s: %5.1f%%  %d/%d done, %d score rows, %.0f records/s", name, 100*float64(s.Done)/float64(total), s.Done, total, s.Scores, rate)
		case <-poll.C:
		}
	}
}

// pipeline builds raterd's stack and pipeline for cfg, as `raterd run` does; leave closes
// the reader (leaving the group), the stack and the telemetry.
func (b *bencher) pipeline(ctx context.Context, cfg *app.Config) (*consumer.Pipeline, *app.Stack, func(), error) {
	a, err := app.New(ctx, cfg, app.Options{Logger: b.logger})
	if err != nil {
		return nil, nil, nil, err
	}
	return a.Pipeline, a.Stack, func() { _ = a.Close() }, nil
}
