package bench

// The soak run of `raterd bench --soak`: issue 8 asks that peak RSS stays under 300 MiB at
// the default in-flight limits and flat over a 10-minute run. The other runs hold their
// traffic in memory, which a 10-minute run at thousands of records a second cannot do, so
// this one generates its records on the fly in bounded chunks while raterd consumes them,
// and samples the process's memory as it goes.

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/bench/baseline"
	"raterd/internal/judgesim"
	"raterd/scorer"
)

// runSoak names the soak run in the report.
const runSoak = "raterd-soak"

// rssTargetBytes is issue 8's memory target: peak RSS under 300 MiB at the default
// in-flight limits.
const rssTargetBytes = 300 << 20

// soakFlatGrowth is the largest growth of the median RSS from the middle third of the soak
// to its last third that still counts as flat. The first third is left out: the cache's
// in-process tier fills and the heap grows to its GC target there. RSS follows the GC's
// sawtooth (GOGC=100 lets the heap reach twice the live heap) and the scavenger returns
// memory on its own schedule, so medians of a third of the samples move by a few percent
// without any leak; a leak or an unbounded queue keeps growing from third to third, and
// 10% of about 200 MiB in a third of a 10-minute run (20 MiB in 3 minutes) is far less
// than anything that would reach the target within hours.
const soakFlatGrowth = 0.10

// soakMinSamples is the fewest samples the flatness verdict is computed from: two in each
// third.
const soakMinSamples = 6

// soakBacklogSeconds bounds the backlog (records produced and not yet done) of a pipeline
// that keeps up, in seconds of traffic at the target rate. In the steady state a record
// waits about a second for its insert (the group commit's insert_interval) plus the batch
// linger, so one to two seconds of traffic are in flight; a pipeline 10% short of the
// rate passes five seconds of backlog within a minute.
const soakBacklogSeconds = 5

// soakChunkMax is the most records the soak generates at once. The generator's cost per
// chunk has a fixed part (building the prompts the chunk draws from), so chunks of a
// second of traffic keep it small per record while a chunk stays a few MiB.
const soakChunkMax = 2000

// Flatness verdicts.
const (
	soakFlat    = "flat"
	soakGrowing = "growing"
	soakTooFew  = "too few samples"
)

// benchSoak is the soak run: raterd consuming a fresh topic while a paced producer writes
// records generated on the fly, with the process's memory sampled throughout.
type benchSoak struct {
	DurationSeconds float64 `json:"duration_s"`
	TargetRate      float64 `json:"target_records_per_s"`
	// AchievedRate is the records produced (after the warm-up record) over the duration.
	AchievedRate float64 `json:"achieved_records_per_s"`
	ChunkRecords int     `json:"chunk_records"`
	Produced     int64   `json:"produced"`
	// DoneAtEnd is the records done (scored or dead-lettered, rows acknowledged) when the
	// producer stopped; Backlog is Produced − DoneAtEnd then, MaxBacklog the largest
	// backlog a sample saw. KeptUp: Backlog was at most soakBacklogSeconds of traffic.
	DoneAtEnd  int64 `json:"done_at_end"`
	Backlog    int64 `json:"backlog"`
	MaxBacklog int64 `json:"max_backlog"`
	KeptUp     bool  `json:"kept_up"`
	// DrainSeconds is how long the pipeline took after the producer stopped to finish the
	// backlog; Done the records done then.
	DrainSeconds float64 `json:"drain_s"`
	Done         int64   `json:"done"`
	RowsExpected int64   `json:"rows_expected"`
	RowsFound    int64   `json:"rows_found"`
	// Samples are taken every SampleSeconds while the producer runs, and once at its end.
	SampleSeconds float64      `json:"sample_interval_s"`
	Samples       []soakSample `json:"samples"`
	// PeakRSSBytes is the peak over the whole soak, drain included (see peakRSS).
	PeakRSSBytes int64  `json:"peak_rss_bytes"`
	RSSMethod    string `json:"rss_method"`
	// Flatness judges the samples' RSS; HeapFlatness applies the same test to the live
	// heap, for reading (the verdict is RSS's).
	Flatness     soakFlatness `json:"flatness"`
	HeapFlatness soakFlatness `json:"live_heap_flatness"`
	// Stopped says why the soak ended before its time and drain, if it did.
	Stopped string `json:"stopped,omitempty"`
}

// soakSample is the process's state at one moment of the soak.
type soakSample struct {
	Seconds  float64 `json:"t_s"` // since the paced producer started
	Produced int64   `json:"produced"`
	Done     int64   `json:"done"`
	// RSSBytes is VmRSS from /proc/self/status.
	RSSBytes int64 `json:"rss_bytes"`
	// HeapBytes is the heap's object memory, live and not yet swept
	// (/memory/classes/heap/objects:bytes); LiveHeapBytes is the heap marked live by the
	// last GC (/gc/heap/live:bytes).
	HeapBytes     int64 `json:"heap_bytes"`
	LiveHeapBytes int64 `json:"live_heap_bytes"`
}

// soakFlatness compares the median of the last third of a series with the median of its
// middle third.
type soakFlatness struct {
	Verdict     string  `json:"verdict"` // flat, growing, too few samples
	Samples     int     `json:"samples"`
	MiddleBytes int64   `json:"middle_third_median_bytes"`
	LastBytes   int64   `json:"last_third_median_bytes"`
	Growth      float64 `json:"growth"` // LastBytes / MiddleBytes − 1
	Threshold   float64 `json:"threshold"`
}

// soakFlatnessOf judges a series sampled at even intervals: flat when the median of its
// last third is at most threshold above the median of its middle third.
func soakFlatnessOf(series []int64, threshold float64) soakFlatness {
	f := soakFlatness{Samples: len(series), Threshold: threshold, Verdict: soakTooFew}
	n := len(series)
	if n < soakMinSamples {
		return f
	}
	f.MiddleBytes, f.LastBytes = medianBytes(series[n/3:2*n/3]), medianBytes(series[2*n/3:])
	if f.MiddleBytes <= 0 {
		return f // nothing measured (no /proc): no verdict
	}
	f.Growth = float64(f.LastBytes)/float64(f.MiddleBytes) - 1
	f.Verdict = soakFlat
	// Compared as a product, so that growth of exactly the threshold counts as flat.
	if float64(f.LastBytes) > float64(f.MiddleBytes)*(1+threshold) {
		f.Verdict = soakGrowing
	}
	return f
}

// medianBytes returns the median of xs (the mean of the two middle values of an even
// count; 0 for none).
func medianBytes(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	k := len(s) / 2
	if len(s)%2 == 1 {
		return s[k]
	}
	return (s[k-1] + s[k]) / 2
}

// soakInterval is the sampling interval of a soak of duration d: about 60 samples, at
// least a second apart (10 s for the 10-minute soak of issue 8).
func soakInterval(d time.Duration) time.Duration {
	return max(d/60, time.Second)
}

// soakChunkSize is the records generated at once for a rate: about a second of traffic,
// at least 100 and at most soakChunkMax.
func soakChunkSize(rate float64) int {
	return int(min(max(math.Ceil(rate), 100), soakChunkMax))
}

// heapBytes reads the heap's object bytes and the live heap from runtime/metrics (cheap:
// no stop-the-world, unlike runtime.ReadMemStats).
func heapBytes() (objects, live int64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	val := func(v metrics.Value) int64 {
		if v.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(v.Uint64())
	}
	return val(s[0].Value), val(s[1].Value)
}

// soakChunk is one chunk of generated records.
type soakChunk struct {
	msgs []kafka.Message
	rows []int // score rows each message gets (expectedRows)
}

// soakGenerate generates chunks of size records into out until ctx ends. out has a
// capacity of one: with the chunk being produced and the one being generated, at most
// three chunks are in memory, whatever the duration. Chunk k uses seed --seed + 2 + k (the
// raterd run uses --seed, the latency run --seed + 1), ids idPrefix-k-NNNNNN, and with
// --zipf 0 record numbers from k × size for uniquify, so that no two records share an id,
// a prompt or a response. With --zipf 0 the chunks draw from at most size base prompts
// (uniquify makes every prompt distinct anyway, and the generator's cost per chunk grows
// with the prompts it builds); with --zipf, prompts repeat within a chunk only.
func soakGenerate(ctx context.Context, o benchOptions, evaluators []*scorer.Evaluator, size int, idPrefix string, out chan<- soakChunk) {
	if o.zipf == 0 {
		o.distinct = min(o.distinct, size)
	}
	for k := 0; ; k++ {
		values := benchValues(o, o.seed+2+int64(k), size, fmt.Sprintf("%s-%d", idPrefix, k), k*size)
		c := soakChunk{msgs: make([]kafka.Message, len(values)), rows: expectedRows(evaluators, values)}
		for i, v := range values {
			c.msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "%d", k*size+i), Value: v}
		}
		select {
		case out <- c:
		case <-ctx.Done():
			return
		}
	}
}

// runSoak runs raterd (cache on, a fresh topic, database and key space) for --soak while a
// paced producer writes --soak-rate records a second generated on the fly, sampling RSS,
// the heap and the records done every soakInterval; then it waits (up to --timeout) for
// the backlog to drain and every row to be visible. The result comes back with an error
// too where the soak got far enough to have samples.
func (b *bencher) runSoak(ctx context.Context) (*benchSoak, benchRun, error) {
	o := b.o
	rate, d := o.soakRate, o.soak
	size := soakChunkSize(rate)
	interval := soakInterval(d)
	soak := &benchSoak{DurationSeconds: d.Seconds(), TargetRate: rate, ChunkRecords: size, SampleSeconds: interval.Seconds()}
	r := benchRun{Name: runSoak, Description: fmt.Sprintf("raterd, Redis cache (fresh key space), consuming for %s while a producer writes %.0f records/s generated on the fly", d, rate)}
	topic := b.topic + "-soak"
	db := "raterd_bench_" + b.suffix + "_soak"
	prefix := "raterd-bench-" + b.suffix + "-soak:"
	cfg, err := b.config(topic, topic+"-raterd", db, prefix, true, "", nil)
	if err != nil {
		return nil, r, err
	}
	b.prefixes = append(b.prefixes, prefix)
	if err := b.createTopic(ctx, topic); err != nil {
		return nil, r, err
	}
	if err := b.migrate(ctx, db); err != nil {
		return nil, r, err
	}
	b.logf("%s: %s at %.0f records/s, generated in chunks of %d; sampling every %s…", runSoak, d, rate, size, interval)

	genCtx, stopGen := context.WithCancel(ctx)
	chunks := make(chan soakChunk, 1)
	genDone := make(chan struct{})
	go func() { defer close(genDone); soakGenerate(genCtx, o, cfg.Evaluators, size, "s"+b.suffix, chunks) }()
	defer func() { stopGen(); <-genDone }()

	tr := b.kafka.Transport()
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(b.kafka.Brokers...), Topic: topic, Balancer: &kafka.Hash{}, BatchSize: 10000,
		BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll, Transport: tr}
	defer w.Close()

	// The producer's position: the current chunk, the next message in it, and the rows
	// of the messages sent so far.
	var cur soakChunk
	var at int
	var produced, wantRows int64
	send := func(n int64) error {
		for n > 0 {
			if at == len(cur.msgs) {
				select {
				case cur = <-chunks:
					at = 0
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			k := int(min(n, int64(len(cur.msgs)-at), 1000))
			if err := w.WriteMessages(ctx, cur.msgs[at:at+k]...); err != nil {
				return fmt.Errorf("%s: produce to %s: %w", runSoak, topic, err)
			}
			for _, rows := range cur.rows[at : at+k] {
				wantRows += int64(rows)
			}
			at += k
			produced += int64(k)
			n -= int64(k)
		}
		return nil
	}

	// The first record warms up: raterd joins the group and consumes it before the paced
	// records start, so that the group join is no backlog.
	if err := send(1); err != nil {
		return nil, r, err
	}
	p, st, leave, err := b.pipeline(ctx, cfg)
	if err != nil {
		return nil, r, err
	}
	defer leave()
	run := startRun(ctx, p)
	defer run.stop()
	if _, _, err := b.waitDone(ctx, runSoak+" warm-up", p, 1, time.Now(), run); err != nil {
		_ = run.stop()
		return nil, r, err
	}

	var simBefore judgesim.Stats
	if b.sim != nil {
		simBefore = b.sim.Stats()
	}
	freeMemory()
	rss := startPeakRSS()
	defer rss.stop()
	cpu0, t0 := baseline.ProcessCPU(), time.Now()
	sample := func() {
		s := soakSample{Seconds: time.Since(t0).Seconds(), Produced: produced, Done: p.Stats().Done}
		s.RSSBytes, _ = procStatusBytes("VmRSS:")
		s.HeapBytes, s.LiveHeapBytes = heapBytes()
		soak.Samples = append(soak.Samples, s)
		soak.MaxBacklog = max(soak.MaxBacklog, s.Produced-s.Done)
		b.logf("%s: %s/%s  produced %d, done %d, backlog %d; RSS %.0f MiB, heap %.0f MiB (live %.0f MiB)",
			runSoak, time.Duration(s.Seconds*float64(time.Second)).Round(time.Second), d, s.Produced, s.Done, s.Produced-s.Done,
			float64(s.RSSBytes)/(1<<20), float64(s.HeapBytes)/(1<<20), float64(s.LiveHeapBytes)/(1<<20))
	}
	sample()
	pace := time.NewTicker(10 * time.Millisecond)
	defer pace.Stop()
	sampleTick := time.NewTicker(interval)
	defer sampleTick.Stop()
	var produceErr error
	for produceErr == nil {
		elapsed := min(time.Since(t0), d)
		if due := 1 + int64(rate*elapsed.Seconds()); due > produced {
			produceErr = send(due - produced)
		}
		if elapsed >= d || produceErr != nil {
			break
		}
		select {
		case <-ctx.Done():
			produceErr = ctx.Err()
		case <-run.done:
			produceErr = fmt.Errorf("%s: %w: %v", runSoak, errPipelineStopped, run.err)
		case <-sampleTick.C:
			sample()
		case <-pace.C:
		}
	}
	produceTime := min(time.Since(t0), d)
	// The last sample is the state when the producer stopped; one taken just before
	// makes way for it, so that the samples stay about an interval apart.
	if last := soak.Samples[len(soak.Samples)-1]; len(soak.Samples) > 1 && time.Since(t0).Seconds()-last.Seconds < interval.Seconds()/2 {
		soak.Samples = soak.Samples[:len(soak.Samples)-1]
	}
	sample()
	stopGen()
	if o.memprofile != "" {
		if err := writeHeapProfile(o.memprofile); err != nil {
			b.problem("%s: --memprofile: %v", runSoak, err)
		}
	}
	soak.Produced = produced
	soak.AchievedRate = float64(produced-1) / produceTime.Seconds()
	soak.DoneAtEnd = p.Stats().Done
	soak.Backlog = produced - soak.DoneAtEnd
	soak.KeptUp = float64(soak.Backlog) <= soakBacklogSeconds*rate
	b.judgeSoak(soak)
	if produceErr != nil {
		soak.Stopped = produceErr.Error()
		soak.PeakRSSBytes, soak.RSSMethod = rss.stop()
		_ = run.stop()
		return soak, r, produceErr
	}
	b.logf("%s: producer stopped: %d produced, %d done, backlog %d; draining…", runSoak, produced, soak.DoneAtEnd, soak.Backlog)

	drainStart := time.Now()
	_, _, err = b.waitDone(ctx, runSoak+" drain", p, produced, drainStart, run)
	soak.DrainSeconds = time.Since(drainStart).Seconds()
	soak.Done = p.Stats().Done
	if err != nil {
		soak.Stopped = err.Error()
		soak.PeakRSSBytes, soak.RSSMethod = rss.stop()
		_ = run.stop()
		return soak, r, err
	}
	found, err := b.waitRows(ctx, db, wantRows, time.Now().Add(30*time.Second))
	end, cpuEnd := time.Now(), baseline.ProcessCPU()
	soak.PeakRSSBytes, soak.RSSMethod = rss.stop()
	if runErr := run.stop(); runErr != nil {
		return soak, r, fmt.Errorf("%s: pipeline: %w", runSoak, runErr)
	}
	if err != nil {
		return soak, r, err
	}
	soak.RowsExpected, soak.RowsFound = wantRows, found
	if found != wantRows {
		b.problem("%s: %d rows in %s.scores FINAL, want %d", runSoak, found, db, wantRows)
	}

	r.RowsExpected, r.RowsFound = wantRows, found
	r.elapsed, r.cpu = end.Sub(t0), cpuEnd.Sub(cpu0)
	b.pipelineFigures(&r, p, st, wantRows, simBefore, false)
	r.PeakRSSBytes, r.RSSMethod = soak.PeakRSSBytes, soak.RSSMethod
	f := soak.Flatness
	flat := fmt.Sprintf("%s (%d samples, %d needed)", f.Verdict, f.Samples, soakMinSamples)
	if f.Verdict != soakTooFew {
		flat = fmt.Sprintf("%s (median %.0f → %.0f MiB, %+.1f%%)", f.Verdict, float64(f.MiddleBytes)/(1<<20), float64(f.LastBytes)/(1<<20), 100*f.Growth)
	}
	b.logf("%s: %d records over %s at %.0f records/s (backlog %d at the end, drained in %.1fs); peak RSS %.0f MiB; RSS %s",
		runSoak, produced, d, soak.AchievedRate, soak.Backlog, soak.DrainSeconds, float64(soak.PeakRSSBytes)/(1<<20), flat)
	return soak, r, nil
}

// judgeSoak computes the flatness of the soak's RSS and live heap samples.
func (b *bencher) judgeSoak(s *benchSoak) {
	rss := make([]int64, len(s.Samples))
	live := make([]int64, len(s.Samples))
	for i, x := range s.Samples {
		rss[i], live[i] = x.RSSBytes, x.LiveHeapBytes
	}
	s.Flatness = soakFlatnessOf(rss, soakFlatGrowth)
	s.HeapFlatness = soakFlatnessOf(live, soakFlatGrowth)
}

// soakTarget checks the soak against issue 8's memory target.
func soakTarget(s *benchSoak) benchTarget {
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	f := s.Flatness
	kept := fmt.Sprintf("kept up: backlog %d at the end", s.Backlog)
	if !s.KeptUp {
		kept = fmt.Sprintf("fell behind: backlog %d at the end, over %d s of traffic", s.Backlog, soakBacklogSeconds)
	}
	t := benchTarget{
		Target: "peak RSS under 300 MiB at the default in-flight limits, and flat over the soak",
		Measured: fmt.Sprintf("peak %.0f MiB over %s at %.0f records/s; median RSS %.0f → %.0f MiB (%+.1f%%, middle → last third; flat: at most %+.0f%%); %s",
			mib(s.PeakRSSBytes), time.Duration(s.DurationSeconds*float64(time.Second)), s.AchievedRate,
			mib(f.MiddleBytes), mib(f.LastBytes), 100*f.Growth, 100*f.Threshold, kept),
	}
	switch {
	case s.Stopped != "":
		t.Verdict = "not measured: the soak stopped early (" + s.Stopped + ")"
	case f.Verdict == soakTooFew:
		t.Verdict = fmt.Sprintf("not measured: %d samples, the flatness needs %d (a longer --soak)", f.Samples, soakMinSamples)
	case s.PeakRSSBytes > 0 && s.PeakRSSBytes < rssTargetBytes && f.Verdict == soakFlat:
		t.Verdict = "met"
	default:
		t.Verdict = "missed"
	}
	return t
}

// printSoak writes the soak's figures and samples as a table.
func printSoak(w io.Writer, s *benchSoak) {
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	d := time.Duration(s.DurationSeconds * float64(time.Second))
	kept := "kept up"
	if !s.KeptUp {
		kept = "fell behind"
	}
	fmt.Fprintf(w, "\nsoak: %s at %.0f records/s (target %.0f), generated in chunks of %d: %d produced, %d done at the end (backlog %d, largest %d; %s), drained in %.1f s; rows exp/found %d/%d\n",
		d, s.AchievedRate, s.TargetRate, s.ChunkRecords, s.Produced, s.DoneAtEnd, s.Backlog, s.MaxBacklog, kept, s.DrainSeconds, s.RowsExpected, s.RowsFound)
	fmt.Fprintf(w, "  peak RSS %.0f MiB (%s); median RSS middle third %.0f MiB, last third %.0f MiB: %+.1f%% → %s (flat: at most %+.0f%%); live heap %.0f → %.0f MiB (%+.1f%%)\n",
		mib(s.PeakRSSBytes), s.RSSMethod, mib(s.Flatness.MiddleBytes), mib(s.Flatness.LastBytes), 100*s.Flatness.Growth, s.Flatness.Verdict,
		100*s.Flatness.Threshold, mib(s.HeapFlatness.MiddleBytes), mib(s.HeapFlatness.LastBytes), 100*s.HeapFlatness.Growth)
	if s.Stopped != "" {
		fmt.Fprintf(w, "  stopped early: %s\n", s.Stopped)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "t\tproduced\tdone\tbacklog\tRSS MiB\theap MiB\tlive heap MiB\t")
	for _, x := range s.Samples {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t\n", time.Duration(x.Seconds*float64(time.Second)).Round(time.Second),
			x.Produced, x.Done, x.Produced-x.Done, mib(x.RSSBytes), mib(x.HeapBytes), mib(x.LiveHeapBytes))
	}
	tw.Flush()
}

// soakNote says what the soak's CPU and memory include.
func soakNote(s *benchSoak) string {
	return strings.Join([]string{
		fmt.Sprintf("The soak generates its records in this process while raterd runs, in chunks of %d (at most three in memory): the generator's CPU and memory count in the soak's figures.", s.ChunkRecords),
		fmt.Sprintf("Its samples are VmRSS, the heap's objects and the live heap every %.0f s; flat means the median RSS of the last third of the samples is at most %.0f%% above the middle third's.", s.SampleSeconds, 100*soakFlatGrowth),
	}, " ")
}

// writeHeapProfile writes a heap profile of what is live now (after a collection) to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
