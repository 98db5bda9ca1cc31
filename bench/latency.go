package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/bench/baseline"
	"raterd/internal/chsql"
	"raterd/internal/judgesim"
	"raterd/record"
	"raterd/scorer"
)

// latencyPoll is how often the latency run asks ClickHouse which sampled records are
// visible: the resolution of the latency figures.
const latencyPoll = 100 * time.Millisecond

// latencySamples is about how many records the latency run follows.
const latencySamples = 1000

// runLatency measures produce → row-visible latency at a given rate: raterd consumes a
// fresh topic (cache on, a fresh key space) while a paced producer writes new records to
// it, and a poller asks ClickHouse every latencyPoll which of about latencySamples sampled
// records have all their rows. A sample's latency is from just before the producer call
// that carried it to the end of the first poll that saw all its rows: an upper bound,
// late by at most one poll interval plus one query.
func (b *bencher) runLatency(ctx context.Context, rate float64) (*benchLatency, benchRun, error) {
	o := b.o
	n := max(2, int(math.Round(rate*o.latency.Seconds())))
	r := benchRun{Name: runLatency, Description: fmt.Sprintf("raterd, Redis cache (fresh key space), consuming while a producer writes %.0f records/s for %s", rate, o.latency)}
	topic := b.topic + "-latency"
	db := "raterd_bench_" + b.suffix + "_latency"
	prefix := "raterd-bench-" + b.suffix + "-latency:"
	cfg, err := b.config(topic, topic+"-raterd", db, prefix, true, "", nil)
	if err != nil {
		return nil, r, err
	}
	b.prefixes = append(b.prefixes, prefix)
	b.logf("%s: generating %d records for %s at %.0f records/s…", runLatency, n, o.latency, rate)
	values, _ := benchTraffic(o, o.seed+1, n, "l"+b.suffix)
	perRecord := expectedRows(cfg.Evaluators, values)
	var wantRows int64
	for _, k := range perRecord {
		wantRows += int64(k)
	}
	r.RowsExpected = wantRows
	ids := make([]string, n)
	for i, v := range values {
		ids[i] = recordID(v)
	}
	if err := b.createTopic(ctx, topic); err != nil {
		return nil, r, err
	}
	if err := b.migrate(ctx, db); err != nil {
		return nil, r, err
	}
	transport := b.kafka.Transport()
	defer transport.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(b.kafka.Brokers...), Topic: topic, Balancer: &kafka.Hash{}, BatchSize: 10000,
		BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll, Transport: transport}
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i, v := range values {
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "%d", i), Value: v}
	}
	values = nil
	// The first record warms up: raterd joins the group and consumes it before the
	// paced records start, so that no sample waits for the group join.
	if err := w.WriteMessages(ctx, msgs[0]); err != nil {
		return nil, r, fmt.Errorf("%s: produce to %s: %w", runLatency, topic, err)
	}
	p, st, leave, err := b.pipeline(ctx, cfg)
	if err != nil {
		return nil, r, err
	}
	defer leave()
	run := startRun(ctx, p)
	defer run.stop()
	if _, _, err := b.waitDone(ctx, runLatency+" warm-up", p, 1, time.Now(), run); err != nil {
		_ = run.stop()
		return nil, r, err
	}

	// Samples: about latencySamples valid records spread evenly over the paced ones.
	// Records produced during the warm-up (b.latencyWarmup) are not sampled: a fresh
	// judge pool's limits start low and ramp up, which a long-running raterd has behind it.
	first := min(n-1, 1+int(rate*b.latencyWarmup.Seconds()))
	stride := max(1, (n-first)/latencySamples)
	tr := newLatencyTracker()
	for i := first; i < n; i += stride {
		if perRecord[i] > 0 {
			tr.want[ids[i]] = perRecord[i]
		}
	}
	pollCtx, stopPoll := context.WithCancel(ctx)
	pollDone := make(chan error, 1)
	go func() { pollDone <- b.pollVisible(pollCtx, db, tr) }()

	var simBefore judgesim.Stats
	if b.sim != nil {
		simBefore = b.sim.Stats()
	}
	cpu0, t0 := baseline.ProcessCPU(), time.Now()
	rss := startPeakRSS()
	defer rss.stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	progress := time.NewTicker(time.Second)
	defer progress.Stop()
	sent := 1
	var produceErr error
	for sent < n && produceErr == nil {
		select {
		case <-ctx.Done():
			produceErr = ctx.Err()
			continue
		case <-run.done:
			produceErr = fmt.Errorf("%w: %v", errPipelineStopped, run.err)
			continue
		case <-progress.C:
			s := p.Stats()
			b.logf("%s: produced %d/%d, %d done, %d of %d samples visible", runLatency, sent, n, s.Done, tr.seenCount(), len(tr.want))
			continue
		case <-tick.C:
		}
		due := min(n, 1+int(rate*time.Since(t0).Seconds()))
		if due <= sent {
			continue
		}
		at := time.Now()
		tr.produced(ids[sent:due], at)
		if err := w.WriteMessages(ctx, msgs[sent:due]...); err != nil {
			produceErr = fmt.Errorf("%s: produce to %s: %w", runLatency, topic, err)
		}
		sent = due
	}
	produceTime := time.Since(t0)
	if produceErr != nil {
		stopPoll()
		<-pollDone
		_ = run.stop()
		return nil, r, produceErr
	}
	_, _, err = b.waitDone(ctx, runLatency, p, int64(n), t0, run)
	if err == nil {
		// Every sample's rows are in ClickHouse now; give the poller a few rounds to see them.
		for deadline := time.Now().Add(10 * time.Second); tr.seenCount() < len(tr.want) && time.Now().Before(deadline); {
			time.Sleep(latencyPoll / 2)
		}
	}
	stopPoll()
	pollErr := <-pollDone
	end, cpuEnd := time.Now(), baseline.ProcessCPU()
	r.PeakRSSBytes, r.RSSMethod = rss.stop()
	if err != nil {
		_ = run.stop()
		return nil, r, err
	}
	if runErr := run.stop(); runErr != nil {
		return nil, r, fmt.Errorf("%s: pipeline: %w", runLatency, runErr)
	}
	if pollErr != nil && !errors.Is(pollErr, context.Canceled) {
		return nil, r, pollErr
	}
	found, err := b.waitRows(ctx, db, wantRows, time.Now().Add(30*time.Second))
	if err != nil {
		return nil, r, err
	}
	r.RowsFound = found
	if found != wantRows {
		b.problem("%s: %d rows in %s.scores FINAL, want %d", runLatency, found, db, wantRows)
	}
	r.elapsed, r.cpu = end.Sub(t0), cpuEnd.Sub(cpu0)
	b.pipelineFigures(&r, p, st, wantRows, simBefore, false)
	lat := tr.result()
	lat.TargetRate, lat.AchievedRate = rate, float64(n-1)/produceTime.Seconds()
	lat.Records, lat.PollSeconds = n-1, latencyPoll.Seconds()
	lat.Method = fmt.Sprintf("about %d sampled records: from just before the producer call that carried each to the end of the first ClickHouse poll (every %s) that saw all its score rows; an upper bound, late by at most one poll and one query",
		latencySamples, latencyPoll)
	if lat.Seen < lat.Samples {
		b.problem("%s: %d of %d sampled records never became visible", runLatency, lat.Samples-lat.Seen, lat.Samples)
	}
	b.logf("%s: %d samples at %.0f records/s: p50 %.3fs, p99 %.3fs, max %.3fs", runLatency, lat.Seen, lat.AchievedRate, lat.P50Seconds, lat.P99Seconds, lat.MaxSeconds)
	return lat, r, nil
}

// latencyTracker holds the sampled records of the latency run: when each was produced
// and when its rows were first seen.
type latencyTracker struct {
	mu      sync.Mutex
	want    map[string]int // sampled record id → score rows it gets
	sentAt  map[string]time.Time
	visible map[string]time.Time
	// judged holds, per record seen, the longest judge call among its rows (the successful
	// attempt's duration, score column judge_latency_ms): the part of its latency the judge
	// itself took, so that the rest is what raterd, Kafka and ClickHouse added.
	judged map[string]time.Duration
}

func newLatencyTracker() *latencyTracker {
	return &latencyTracker{want: map[string]int{}, sentAt: map[string]time.Time{}, visible: map[string]time.Time{},
		judged: map[string]time.Duration{}}
}

// produced notes the send time of the sampled records among ids.
func (t *latencyTracker) produced(ids []string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		if _, ok := t.want[id]; ok {
			t.sentAt[id] = at
		}
	}
}

// pending returns the ids produced and not yet seen, sorted.
func (t *latencyTracker) pending() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ids []string
	for id := range t.sentAt {
		if _, seen := t.visible[id]; !seen {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// visibleRows is what one poll learned of a sampled record: its score rows so far and the
// longest judge call among them.
type visibleRows struct {
	rows   int
	judged time.Duration
}

// seen notes the records whose rows reached their expected count at time at.
func (t *latencyTracker) seen(counts map[string]visibleRows, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, v := range counts {
		if want, ok := t.want[id]; ok && v.rows >= want {
			if _, dup := t.visible[id]; !dup {
				t.visible[id] = at
				t.judged[id] = v.judged
			}
		}
	}
}

func (t *latencyTracker) seenCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.visible)
}

// result returns the latency percentiles of the samples seen.
func (t *latencyTracker) result() *benchLatency {
	t.mu.Lock()
	defer t.mu.Unlock()
	var d, added []time.Duration
	for id, at := range t.visible {
		l := at.Sub(t.sentAt[id])
		d = append(d, l)
		added = append(added, max(0, l-t.judged[id]))
	}
	slices.Sort(d)
	slices.Sort(added)
	return &benchLatency{
		Samples: len(t.want), Seen: len(d),
		P50Seconds: percentile(d, 0.50).Seconds(), P90Seconds: percentile(d, 0.90).Seconds(),
		P99Seconds: percentile(d, 0.99).Seconds(), MaxSeconds: percentile(d, 1).Seconds(),
		AddedP50Seconds: percentile(added, 0.50).Seconds(), AddedP99Seconds: percentile(added, 0.99).Seconds(),
	}
}

// percentile returns the nearest-rank q-quantile of sorted d (0 for none).
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	k := int(math.Ceil(q*float64(len(d)))) - 1
	return d[min(max(k, 0), len(d)-1)]
}

// pollVisible asks ClickHouse every latencyPoll how many score rows each pending sample
// has, until ctx ends.
func (b *bencher) pollVisible(ctx context.Context, db string, tr *latencyTracker) error {
	t := time.NewTicker(latencyPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		ids := tr.pending()
		if len(ids) == 0 {
			continue
		}
		q := "SELECT record_id, toUInt64(count()), toUInt64(max(judge_latency_ms)) FROM " + db + ".scores WHERE record_id IN (" + sqlStrings(ids) + ") GROUP BY record_id"
		rows, err := b.ch.Query(ctx, q)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s: poll ClickHouse: %w", runLatency, err)
		}
		counts := map[string]visibleRows{}
		for rows.Next() {
			var id string
			var c, judgedMs uint64
			if err := rows.Scan(&id, &c, &judgedMs); err != nil {
				rows.Close()
				return fmt.Errorf("%s: poll ClickHouse: %w", runLatency, err)
			}
			counts[id] = visibleRows{rows: int(c), judged: time.Duration(judgedMs) * time.Millisecond}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("%s: poll ClickHouse: %w", runLatency, err)
		}
		tr.seen(counts, time.Now())
	}
}

// sqlStrings renders ids as a comma-separated list of ClickHouse string literals.
func sqlStrings(ids []string) string {
	lits := make([]string, len(ids))
	for i, id := range ids {
		lits[i] = chsql.QuoteString(id)
	}
	return strings.Join(lits, ",")
}

// routeJudge answers each task with the judge its evaluator names: the naive baseline
// takes one Judge, and this gives it the same judges raterd has, called one after another.
type routeJudge struct{ judges map[string]scorer.Judge }

// Identity names the judges routed to.
func (r routeJudge) Identity() string {
	names := make([]string, 0, len(r.judges))
	for _, j := range r.judges {
		names = append(names, j.Identity())
	}
	slices.Sort(names)
	return strings.Join(names, "+")
}

// Judge groups the tasks by judge, calls each judge once, and returns the verdicts in order.
func (r routeJudge) Judge(ctx context.Context, tasks []scorer.Task) ([]scorer.Verdict, error) {
	out := make([]scorer.Verdict, len(tasks))
	byJudge := map[string][]int{}
	var order []string
	for i, t := range tasks {
		if _, ok := byJudge[t.Evaluator.Judge]; !ok {
			order = append(order, t.Evaluator.Judge)
		}
		byJudge[t.Evaluator.Judge] = append(byJudge[t.Evaluator.Judge], i)
	}
	for _, name := range order {
		idx := byJudge[name]
		j, ok := r.judges[name]
		if !ok {
			for _, i := range idx {
				out[i] = scorer.Verdict{Status: record.StatusJudgeError, Err: fmt.Errorf("no judge %q", name)}
			}
			continue
		}
		sub := make([]scorer.Task, len(idx))
		for k, i := range idx {
			sub[k] = tasks[i]
		}
		vs, err := j.Judge(ctx, sub)
		if err != nil {
			return nil, err
		}
		if len(vs) != len(sub) {
			return nil, fmt.Errorf("judge %s returned %d verdicts for %d tasks", name, len(vs), len(sub))
		}
		for k, i := range idx {
			out[i] = vs[k]
		}
	}
	return out, nil
}
