package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"raterd/bench/baseline"
	"raterd/consumer"
	"raterd/internal/app"
	"raterd/internal/judgesim"
	"raterd/record"
	"raterd/scorer"
	"raterd/scorer/format"
)

// The end-to-end judge-pool benchmark (--pools): for each pool size, a judgesim process
// serving that many endpoints, a backlog of unique records on a fresh topic, and three
// ways of feeding the pool the same records, one after another:
//
//   - raterd: the pipeline as `raterd run` builds it (Kafka, Redis, ClickHouse), its
//     judge pool adaptive;
//   - fixed-batches: the micro-batches raterd would make (batch.max_records records),
//     each sent with a fixed concurrency (--pool-fixed-concurrency, 64) and waited for
//     before the next: a client with a batch barrier and no adaptation;
//   - naive-c64: 64 goroutines sending the same rendered requests round-robin, each
//     waiting for its answer: what a team writes in an afternoon.
//
// and then raterd again at half of its measured goodput on a fresh topic, for the
// latency a record sees when the pool is not the bottleneck.
const (
	poolClientRaterd = "raterd"
	poolClientFixed  = "fixed-batches"
	poolClientNaive  = "naive-c64"
	// poolWindowFrom and poolWindowTo bound the measured part of a backlog run, as shares
	// of its records done: the pool's slow start and the drain of the last requests are
	// not "while a backlog exists".
	poolWindowFrom = 0.10
	poolWindowTo   = 0.90
	// poolWindowLate starts the late window (to poolWindowTo): the pool after the limits'
	// start-up.
	poolWindowLate = 0.50
)

// poolReport is one pool size's results.
type poolReport struct {
	Endpoints int              `json:"endpoints"`
	Records   int              `json:"records"`
	Speeds    string           `json:"speeds,omitempty"`
	Clients   []poolClientRun  `json:"clients"`
	HalfLoad  *poolHalfLoadRun `json:"half_load,omitempty"`
}

// poolClientRun is one client's backlog run, measured between poolWindowFrom and
// poolWindowTo of its records.
type poolClientRun struct {
	Client string `json:"client"`
	// Utilization is the pool's busy sequence-seconds over its slots × the window.
	Utilization float64 `json:"utilization"`
	// LateUtilization is Utilization between poolWindowLate and poolWindowTo: the pool
	// once the adaptive limits have started up.
	LateUtilization float64 `json:"late_utilization"`
	// Saturation is the share of the window the simulated GPUs spent in steps with no
	// room left (every slot or the KV cache taken, or requests waiting), averaged over
	// the endpoints; 0 when the simulator does not report it.
	Saturation float64 `json:"saturation,omitempty"`
	// GoodputPerSec is judged records (raterd: records with every row written; the
	// clients: requests answered 200) per second in the window.
	GoodputPerSec  float64 `json:"goodput_per_s"`
	RequestsPerSec float64 `json:"requests_per_s"`
	// CPUMicrosPerJudged is this process's CPU per judged record in the window (raterd,
	// or the client; the simulator is another process).
	CPUMicrosPerJudged float64 `json:"cpu_us_per_judged"`
	WindowSeconds      float64 `json:"window_s"`
	Failures           int64   `json:"failures"`
	// PrefillSavedShare is the share of prompt tokens the endpoints' prefix caches saved
	// (0 when the simulator does not report it); Preemptions counts sequences preempted.
	PrefillSavedShare float64 `json:"prefill_saved_share,omitempty"`
	Preemptions       int64   `json:"preemptions,omitempty"`
}

// poolHalfLoadRun is raterd at half of its backlog goodput.
type poolHalfLoadRun struct {
	Rate float64 `json:"records_per_s"`
	// P50Seconds and P99Seconds: produce → every row visible in ClickHouse (benchLatency).
	P50Seconds float64 `json:"p50_s"`
	P99Seconds float64 `json:"p99_s"`
	// ServiceSeconds is the simulator's mean time in the batch per request (its service
	// time, no queueing); AddedP99 is P99Seconds minus it, over it.
	ServiceSeconds  float64 `json:"service_s"`
	AddedP99Service float64 `json:"added_p99_over_service"`
	// QueueP99Seconds is the p99 of each record's latency less its own judge call
	// (benchLatency.AddedP99Seconds): the queueing raterd, Kafka and ClickHouse added;
	// QueueP99Service is it over ServiceSeconds, the figure the target reads. AddedP99Service
	// above is the other reading, the p99 latency less the mean service time: lower where
	// records of short judge calls wait for their micro-batch's longest (that wait is
	// queueing per record, and service time in the mean), higher where the calls' own
	// spread dominates.
	QueueP99Seconds  float64 `json:"queue_p99_s"`
	QueueP99Service  float64 `json:"queue_p99_over_service"`
	Samples          int     `json:"samples"`
	Utilization      float64 `json:"utilization"`
	CPUMicrosPerRec  float64 `json:"cpu_us_per_record"`
	RecordsProcessed int64   `json:"records"`
}

// parsePools parses --pools: comma-separated endpoint counts, each 1..256.
func parsePools(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 256 {
			return nil, fmt.Errorf("--pools %q: %q is not an endpoint count in 1..256", s, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// runPools runs the judge-pool benchmark for every size of --pools.
func (b *bencher) runPools(ctx context.Context, rep *benchReport) error {
	sizes, err := parsePools(b.o.pools)
	if err != nil {
		return err
	}
	rep.Settings.Judge = benchJudgeSim
	for _, n := range sizes {
		pr, err := b.runPool(ctx, n)
		if pr != nil {
			rep.Pools = append(rep.Pools, *pr)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// runPool runs one pool size: its own simulator process, topics, databases and key
// spaces (a bencher of its own that shares the connections and the clean-up).
func (b *bencher) runPool(ctx context.Context, n int) (*poolReport, error) {
	sub := *b
	sub.suffix = fmt.Sprintf("%sp%d", b.suffix, n)
	sub.topic = "raterd-bench-" + sub.suffix
	sub.dbs, sub.topics, sub.prefixes, sub.closers, sub.problems = nil, nil, nil, nil, nil
	defer func() {
		b.dbs = append(b.dbs, sub.dbs...)
		b.topics = append(b.topics, sub.topics...)
		b.prefixes = append(b.prefixes, sub.prefixes...)
		b.problems = append(b.problems, sub.problems...)
		for _, c := range sub.closers {
			c()
		}
	}()
	// Each client gets a simulator process of its own, started afresh: the servers'
	// prefix caches would otherwise hold the prompts the client before sent.
	freshSim := func() (*simProcess, error) {
		proc, err := startSimProcess(ctx, b.o.simBin, b.o.sim, b.simFlags(n)...)
		if err != nil {
			return nil, err
		}
		sub.closers = append(sub.closers, proc.stop)
		sub.sim, sub.simURLs = proc, proc.URLs()
		return proc, nil
	}
	proc, err := freshSim()
	if err != nil {
		return nil, err
	}
	// A continuous-batching server is full only with more requests in flight than its
	// max_num_seqs (256 in the vLLM profiles): the endpoints' ceiling and the records in
	// flight must allow that on every endpoint (see the sizing guide).
	sub.maxInFlight = b.o.poolMaxInFlight
	sub.maxInFlightRecords = max(4096, 2*b.o.poolMaxInFlight*n)
	if b.o.poolInitial > 0 {
		sub.poolConcurrency = fmt.Sprintf("    concurrency: {initial: %d}\n", b.o.poolInitial)
	}

	records := b.o.poolRecords * n
	pr := &poolReport{Endpoints: n, Records: records, Speeds: b.o.simSpeeds}
	cfg, err := sub.config(sub.topic, "probe", "probe", "probe:", true, "", nil)
	if err != nil {
		return nil, err
	}
	o := b.o
	o.invalid = 0 // every record is judged: goodput counts records
	values, _ := benchTraffic(o, o.seed+int64(n), records, "p"+sub.suffix)
	for i, v := range values {
		values[i] = leadingUnique(v, i)
	}
	perRecord := expectedRows(cfg.Evaluators, values)
	var wantRows int64
	for _, k := range perRecord {
		wantRows += int64(k)
	}
	if err := sub.createTopic(ctx, sub.topic); err != nil {
		return nil, err
	}
	if err := app.ProduceOver(ctx, b.kafka, sub.topic, values); err != nil {
		return nil, err
	}
	b.logf("pool of %d endpoints: %d records produced to %s", n, records, sub.topic)

	r, err := sub.poolRaterd(ctx, proc, int64(records), wantRows)
	if err != nil {
		return pr, err
	}
	pr.Clients = append(pr.Clients, r)
	proc.stop()

	ev := cfg.Evaluators[slices.IndexFunc(cfg.Evaluators, func(e *scorer.Evaluator) bool { return e.Judge == "sim" })]
	for _, client := range []string{poolClientFixed, poolClientNaive} {
		if !b.o.poolBaselines {
			break
		}
		if proc, err = freshSim(); err != nil {
			return pr, err
		}
		c, err := sub.poolDirect(ctx, proc, client, ev, values[:min(len(values), b.o.poolBaselineRecords)], cfg.Kafka.Batch.MaxRecords)
		if err != nil {
			return pr, err
		}
		pr.Clients = append(pr.Clients, c)
		proc.stop()
	}
	values = nil

	if b.o.latency > 0 && r.GoodputPerSec > 0 {
		if proc, err = freshSim(); err != nil {
			return pr, err
		}
		hl, err := sub.poolHalfLoad(ctx, proc, r.GoodputPerSec/2)
		if err != nil {
			return pr, err
		}
		pr.HalfLoad = hl
	}
	return pr, nil
}

// poolWindow snapshots what a backlog run's window needs at one moment.
type poolWindow struct {
	at    time.Time
	cpu   baseline.CPUTime
	sims  []judgesim.Stats
	count int64 // records (raterd) or answers (clients) done
	fails int64
}

func snapshot(ctx context.Context, proc *simProcess, count, fails int64) poolWindow {
	st, _ := proc.EndpointStats(ctx)
	return poolWindow{at: time.Now(), cpu: baseline.ProcessCPU(), sims: st, count: count, fails: fails}
}

// figures fills a client run from the window's two ends.
func (w poolWindow) figures(client string, end poolWindow) poolClientRun {
	r := poolClientRun{Client: client}
	el := end.at.Sub(w.at)
	r.WindowSeconds = el.Seconds()
	if el <= 0 {
		return r
	}
	done := end.count - w.count
	r.GoodputPerSec = float64(done) / el.Seconds()
	r.Failures = end.fails - w.fails
	if done > 0 {
		r.CPUMicrosPerJudged = float64(end.cpu.Sub(w.cpu).Total().Microseconds()) / float64(done)
	}
	var slots int64
	var busy time.Duration
	var completed, computed, saved, preempt int64
	var saturated time.Duration
	for i := range end.sims {
		if i >= len(w.sims) {
			break
		}
		a, b := w.sims[i], end.sims[i]
		slots += b.MaxSeqs
		busy += b.BusySeqTime - a.BusySeqTime
		completed += b.Completed - a.Completed
		computed += b.PrefillTokens - a.PrefillTokens
		simExtras(a, b, &saved, &preempt, &saturated)
	}
	if slots > 0 {
		r.Utilization = busy.Seconds() / (float64(slots) * el.Seconds())
	}
	if n := len(end.sims); n > 0 && saturated > 0 {
		r.Saturation = saturated.Seconds() / (float64(n) * el.Seconds())
	}
	r.RequestsPerSec = float64(completed) / el.Seconds()
	if computed+saved > 0 {
		r.PrefillSavedShare = float64(saved) / float64(computed+saved)
	}
	r.Preemptions = preempt
	return r
}

// poolRaterd runs raterd's pipeline over the pool's backlog.
func (b *bencher) poolRaterd(ctx context.Context, proc *simProcess, total, wantRows int64) (poolClientRun, error) {
	name := poolClientRaterd
	db := "raterd_bench_" + b.suffix + "_raterd"
	prefix := "raterd-bench-" + b.suffix + "-cold:"
	b.prefixes = append(b.prefixes, prefix)
	cfg, err := b.config(b.topic, b.topic+"-raterd", db, prefix, true, "", nil)
	if err != nil {
		return poolClientRun{}, err
	}
	if err := b.migrate(ctx, db); err != nil {
		return poolClientRun{}, err
	}
	p, st, leave, err := b.pipeline(ctx, cfg)
	if err != nil {
		return poolClientRun{}, err
	}
	defer leave()
	run := startRun(ctx, p)
	defer run.stop()
	failures := func() int64 { return int64(st.Scorer.Totals().Failures) }
	// The window follows the pool's answers, not records done: a record is done when its
	// batch's insert lands, in steps of whole batches.
	answers := newAnswerCounter(proc)
	defer answers.stop()
	from, late, to, err := b.backlogWindow(ctx, proc, name, total, run, answers.count, failures)
	if err == nil {
		err = b.waitDoneQuiet(ctx, p, total, run)
	}
	if err != nil {
		return poolClientRun{}, err
	}
	found, err := b.waitRows(ctx, db, wantRows, time.Now().Add(time.Minute))
	if runErr := run.stop(); runErr != nil {
		return poolClientRun{}, fmt.Errorf("%s: pipeline: %w", name, runErr)
	}
	if err != nil {
		return poolClientRun{}, err
	}
	if found != wantRows {
		b.problem("pool %s: %d rows in %s.scores FINAL, want %d", name, found, db, wantRows)
	}
	r := from.figures(name, to)
	r.LateUtilization = late.figures(name, to).Utilization
	b.logPool(len(proc.urls), r)
	return r, nil
}

// answerCounter polls the pool's completed requests every 100ms.
type answerCounter struct {
	n    atomic.Int64
	base int64
	quit chan struct{}
	done chan struct{}
}

func newAnswerCounter(proc *simProcess) *answerCounter {
	a := &answerCounter{quit: make(chan struct{}), done: make(chan struct{})}
	a.base = proc.Stats().Completed
	go func() {
		defer close(a.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-a.quit:
				return
			case <-t.C:
				a.n.Store(proc.Stats().Completed - a.base)
			}
		}
	}()
	return a
}

func (a *answerCounter) count() int64 { return a.n.Load() }
func (a *answerCounter) stop()        { close(a.quit); <-a.done }

// waitDoneQuiet waits until the pipeline has done total messages.
func (b *bencher) waitDoneQuiet(ctx context.Context, p *consumer.Pipeline, total int64, run *pipelineRun) error {
	deadline := time.Now().Add(b.o.timeout)
	for p.Stats().Done < total {
		select {
		case <-run.done:
			return fmt.Errorf("%w after %d of %d messages: %v", errPipelineStopped, p.Stats().Done, total, run.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d messages done after %s (--timeout)", p.Stats().Done, total, b.o.timeout)
		}
	}
	return nil
}

// leadingUnique makes record i's prompt differ from every other's at its start, as
// users' questions do (the generated prompts repeat a few hundred templates): the judge
// server's prefix cache then shares only what the judge's prompt format puts first.
func leadingUnique(v []byte, i int) []byte {
	var rec record.Record
	if err := json.Unmarshal(v, &rec); err != nil {
		return v
	}
	tag := "Ticket " + strconv.FormatInt(int64(i), 36) + ". "
	switch {
	case rec.Prompt != "" || len(rec.Messages) == 0:
		rec.Prompt = tag + rec.Prompt
	default:
		for j := range rec.Messages {
			if rec.Messages[j].Role == "user" {
				rec.Messages[j].Content = tag + rec.Messages[j].Content
				break
			}
		}
	}
	out, err := json.Marshal(rec)
	if err != nil {
		return v
	}
	return out
}

// backlogWindow waits until done() reaches total, printing progress each second, and
// returns the snapshots at poolWindowFrom and poolWindowTo of it.
func (b *bencher) backlogWindow(ctx context.Context, proc *simProcess, name string, total int64, run *pipelineRun, done, fails func() int64) (from, late, to poolWindow, err error) {
	lo, hi := int64(poolWindowFrom*float64(total)), int64(poolWindowTo*float64(total))
	mid := int64(poolWindowLate * float64(total))
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.NewTimer(b.o.timeout)
	defer deadline.Stop()
	var runDone <-chan struct{}
	if run != nil {
		runDone = run.done
	}
	for {
		d := done()
		if from.at.IsZero() && d >= lo {
			from = snapshot(ctx, proc, d, fails())
		}
		if late.at.IsZero() && d >= mid {
			late = snapshot(ctx, proc, d, fails())
		}
		if to.at.IsZero() && d >= hi {
			to = snapshot(ctx, proc, d, fails())
		}
		if d >= total {
			return from, late, to, nil
		}
		select {
		case <-runDone:
			return from, late, to, fmt.Errorf("%s: %w after %d of %d: %v", name, errPipelineStopped, d, total, run.err)
		case <-ctx.Done():
			return from, late, to, ctx.Err()
		case <-deadline.C:
			return from, late, to, fmt.Errorf("%s: %d of %d done after %s (--timeout)", name, d, total, b.o.timeout)
		case <-tick.C:
			b.logf("pool %d × %s: %d/%d done", len(proc.urls), name, d, total)
		case <-poll.C:
		}
	}
}

// poolDirect feeds the pool the backlog's records without raterd: rendered as raterd's
// judge renders them for ev (its format, system prompt folded as raterd sends it), sent
// straight to the endpoints round-robin.
func (b *bencher) poolDirect(ctx context.Context, proc *simProcess, client string, ev *scorer.Evaluator, values [][]byte, batchSize int) (poolClientRun, error) {
	bodies, err := renderRequests(ev, values)
	if err != nil {
		return poolClientRun{}, err
	}
	urls := proc.URLs()
	conc := b.o.poolFixedConcurrency
	if client == poolClientNaive {
		conc = 64
	}
	httpc := &http.Client{Timeout: b.poolTimeout(), Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: 0}}
	defer httpc.CloseIdleConnections()
	var answered, failed atomic.Int64
	send := func(ctx context.Context, i int) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, urls[i%len(urls)]+"/chat/completions", bytes.NewReader(bodies[i]))
		if err != nil {
			failed.Add(1)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := httpc.Do(req)
		if err != nil {
			failed.Add(1)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			answered.Add(1)
		} else {
			failed.Add(1)
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	switch client {
	case poolClientNaive:
		var next atomic.Int64
		for range conc {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < len(bodies) && rctx.Err() == nil; i = int(next.Add(1) - 1) {
					send(rctx, i)
				}
			})
		}
	default: // fixed-batches
		wg.Go(func() {
			sem := make(chan struct{}, conc)
			for lo := 0; lo < len(bodies) && rctx.Err() == nil; lo += batchSize {
				var batch sync.WaitGroup
				for i := lo; i < min(lo+batchSize, len(bodies)); i++ {
					sem <- struct{}{}
					batch.Go(func() {
						defer func() { <-sem }()
						send(rctx, i)
					})
				}
				batch.Wait() // the barrier: the next batch waits for this one's slowest request
			}
		})
	}
	from, late, to, err := b.backlogWindow(ctx, proc, client, int64(len(bodies)), nil,
		func() int64 { return answered.Load() + failed.Load() }, failed.Load)
	cancel()
	wg.Wait()
	if err != nil {
		return poolClientRun{}, err
	}
	r := from.figures(client, to)
	r.LateUtilization = late.figures(client, to).Utilization
	b.logPool(len(urls), r)
	return r, nil
}

// renderRequests renders each valid record's chat request for ev as raterd's judge would
// send it (the format's system and user messages; guided decoding and logprobs left out).
func renderRequests(ev *scorer.Evaluator, values [][]byte) ([][]byte, error) {
	f, err := format.Lookup(ev.Format)
	if err != nil {
		return nil, fmt.Errorf("evaluator %s: %w", ev.Name, err)
	}
	var out [][]byte
	for i, v := range values {
		rec, err := consumer.Decode(v, record.Source{Offset: int64(i)}, time.Now(), consumer.DefaultMaxRecordBytes)
		if err != nil || !ev.Applies(rec) {
			continue
		}
		spec := format.Spec{Task: ev.Task, Criteria: strings.TrimSpace(ev.Criteria), Min: int(ev.Scale.Min), Max: int(ev.Scale.Max),
			Levels: ev.Levels, Labels: ev.Labels}
		for _, in := range ev.Inputs(rec) {
			spec.Inputs = append(spec.Inputs, format.Input{Field: in.Field, Text: in.Text})
		}
		p, err := f.Render(spec)
		if err != nil {
			return nil, fmt.Errorf("evaluator %s: render record %d: %w", ev.Name, i, err)
		}
		msgs := []map[string]string{{"role": "user", "content": p.User}}
		if p.System != "" {
			msgs = append([]map[string]string{{"role": "system", "content": p.System}}, msgs...)
		}
		body, err := json.Marshal(map[string]any{"model": "judgesim-bench", "temperature": 0, "max_tokens": 1024, "messages": msgs})
		if err != nil {
			return nil, err
		}
		out = append(out, body)
	}
	return out, nil
}

// poolHalfLoad runs raterd at rate records/s on a fresh topic (the latency run) and
// relates its latency to the simulator's service time.
func (b *bencher) poolHalfLoad(ctx context.Context, proc *simProcess, rate float64) (*poolHalfLoadRun, error) {
	// The pool's limits start low in a fresh pipeline: a warm-up of max(20s, a third of
	// --latency-duration) comes first and is not sampled.
	b.latencyWarmup = max(20*time.Second, b.o.latency/3)
	o := b.o
	b.o.latency += b.latencyWarmup
	defer func() { b.o = o; b.latencyWarmup = 0 }()
	before, _ := proc.EndpointStats(ctx)
	lat, r, err := b.runLatency(ctx, rate)
	if err != nil {
		return nil, err
	}
	after, _ := proc.EndpointStats(ctx)
	a, z := sumStats(before), sumStats(after)
	hl := &poolHalfLoadRun{Rate: lat.AchievedRate, P50Seconds: lat.P50Seconds, P99Seconds: lat.P99Seconds, Samples: lat.Seen,
		CPUMicrosPerRec: r.CPUMicrosPerRecord, RecordsProcessed: r.Records, QueueP99Seconds: lat.AddedP99Seconds}
	if done := z.Completed - a.Completed; done > 0 {
		hl.ServiceSeconds = (z.BusySeqTime - a.BusySeqTime).Seconds() / float64(done)
	}
	if hl.ServiceSeconds > 0 {
		hl.AddedP99Service = (hl.P99Seconds - hl.ServiceSeconds) / hl.ServiceSeconds
		hl.QueueP99Service = hl.QueueP99Seconds / hl.ServiceSeconds
	}
	if r.PoolUtilization != nil {
		hl.Utilization = *r.PoolUtilization
	}
	b.logf("pool %d: half load %.0f records/s: p50 %.2fs, p99 %.2fs, service %.2fs: p99 − service = %.2f× service; p99 added to each record's judge call %.2fs = %.2f× service",
		len(proc.urls), hl.Rate, hl.P50Seconds, hl.P99Seconds, hl.ServiceSeconds, hl.AddedP99Service, hl.QueueP99Seconds, hl.QueueP99Service)
	return hl, nil
}

func (b *bencher) logPool(n int, r poolClientRun) {
	b.logf("pool %d × %s: utilization %.1f%% (late %.1f%%), goodput %.1f/s, %.0f µs CPU per judged record, %d failures (window %.1fs)",
		n, r.Client, 100*r.Utilization, 100*r.LateUtilization, r.GoodputPerSec, r.CPUMicrosPerJudged, r.Failures, r.WindowSeconds)
}

// printPools prints the judge-pool tables.
func printPools(w io.Writer, pools []poolReport) {
	fmt.Fprintln(w, "| endpoints | client | utilization | late half | saturation | goodput/s | req/s | µs CPU per judged | prefill saved | preemptions | failures |")
	fmt.Fprintln(w, "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, p := range pools {
		for _, c := range p.Clients {
			fmt.Fprintf(w, "| %d | %s | %.1f%% | %.1f%% | %.1f%% | %.1f | %.1f | %.0f | %.1f%% | %d | %d |\n", p.Endpoints, c.Client, 100*c.Utilization, 100*c.LateUtilization, 100*c.Saturation,
				c.GoodputPerSec, c.RequestsPerSec, c.CPUMicrosPerJudged, 100*c.PrefillSavedShare, c.Preemptions, c.Failures)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| endpoints | half load (records/s) | p50 | p99 | service (mean) | (p99 − service) ÷ service | p99 added to a record's judge call | ÷ service | utilization |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, p := range pools {
		if h := p.HalfLoad; h != nil {
			fmt.Fprintf(w, "| %d | %.1f | %.2f s | %.2f s | %.2f s | %.2f× | %.2f s | %.2f× | %.1f%% |\n", p.Endpoints, h.Rate, h.P50Seconds, h.P99Seconds, h.ServiceSeconds,
				h.AddedP99Service, h.QueueP99Seconds, h.QueueP99Service, 100*h.Utilization)
		}
	}
}

// simExtras adds the vLLM-model counters of one endpoint between a and b.
func simExtras(a, b judgesim.Stats, saved, preempt *int64, saturated *time.Duration) {
	*saved += b.PrefillSavedTokens - a.PrefillSavedTokens
	*preempt += b.Preemptions - a.Preemptions
	*saturated += b.SaturatedTime - a.SaturatedTime
}

// poolUtilizationTarget is the utilization raterd must hold while a backlog exists, and
// poolAddedP99Target the p99 queueing a record may see at half load, in service times.
const (
	poolUtilizationTarget = 0.95
	poolAddedP99Target    = 2.0
)

// poolTargets marks the judge-pool targets per pool size. The utilization target reads
// the share of the servers' sequence slots (max_num_seqs) in use, which is the share of
// their decode throughput at work in the vLLM profiles, whose KV cache holds more than
// max_num_seqs sequences of this traffic; saturation (steps with no room left) is shown
// beside it: it also counts the steps in which requests waited in the server's queue.
func poolTargets(pools []poolReport) []benchTarget {
	var out []benchTarget
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "missed"
	}
	for _, p := range pools {
		for _, c := range p.Clients {
			if c.Client != poolClientRaterd {
				continue
			}
			out = append(out, benchTarget{Target: fmt.Sprintf("pool of %d: ≥ 95%% utilization while a backlog exists (raterd end to end)", p.Endpoints),
				Measured: fmt.Sprintf("%.1f%% of the sequence slots from 10%% to 90%% of the backlog (%.1f%% from 50%%; saturation %.1f%%), %.1f records/s", 100*c.Utilization, 100*c.LateUtilization, 100*c.Saturation, c.GoodputPerSec),
				Verdict:  verdict(c.Utilization >= poolUtilizationTarget)})
		}
		if h := p.HalfLoad; h != nil {
			out = append(out, benchTarget{Target: fmt.Sprintf("pool of %d: at half load, p99 added queueing ≤ 2× the service time", p.Endpoints),
				Measured: fmt.Sprintf("p99 of each record's latency less its judge call %.2f s, service %.2f s: %.2f× (the other reading, p99 − mean service: %.2f×)",
					h.QueueP99Seconds, h.ServiceSeconds, h.QueueP99Service, h.AddedP99Service),
				Verdict: verdict(h.ServiceSeconds > 0 && h.QueueP99Service <= poolAddedP99Target)})
		}
	}
	return out
}

// printPoolReport prints the judge-pool benchmark's report.
func printPoolReport(w io.Writer, rep *benchReport) {
	m := rep.Machine
	fmt.Fprintf(w, "raterd bench %s — judge pools (%d records per endpoint, unique traffic)\n", rep.Version, rep.Settings.Records)
	fmt.Fprintf(w, "machine: %d CPUs (GOMAXPROCS %d), %s, %s; load average %.2f before, %.2f after\n", m.CPUs, m.GOMAXPROCS, m.Go, m.OS, m.LoadBefore[0], m.LoadAfter[0])
	fmt.Fprintf(w, "judgesim: %s\n", rep.Settings.Simulator)
	start := "the default (min(max_in_flight, 8)), then slow start"
	if rep.Settings.PoolInitial > 0 {
		start = fmt.Sprintf("%d (--pool-initial)", rep.Settings.PoolInitial)
	}
	fmt.Fprintf(w, "raterd's starting limit per endpoint: %s\n\n", start)
	printPools(w, rep.Pools)
	fmt.Fprintln(w)
	for _, t := range rep.Targets {
		fmt.Fprintf(w, "target: %s — %s: %s\n", t.Target, t.Measured, t.Verdict)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "PROBLEM: %s\n", p)
	}
}
