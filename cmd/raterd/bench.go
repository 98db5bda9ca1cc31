package main

// raterd bench: the end-to-end benchmark of issue 8. It measures the real pipeline on the
// local services against the baselines of bench/baseline in the same run, and reports
// throughput, CPU per record, peak RSS, judge and cache work, ClickHouse insert sizes,
// pool utilization and produce→row-visible latency. See docs/benchmarks.md.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"raterd/bench/baseline"
	"raterd/cmd/judgesim/simulator"
	"raterd/cmd/trafficgen/traffic"
	"raterd/consumer"
	"raterd/record"
	"raterd/scorer"
	"raterd/scorer/cache"
	"raterd/sinks"
)

// Judges `raterd bench` can run with.
const (
	benchJudgeHeuristic = "heuristic"
	benchJudgeSim       = "judgesim"
)

// Names of the runs of one benchmark, as they appear in the report.
const (
	runBare    = "bare"
	runRaterd  = "raterd"
	runWarm    = "raterd-warm"
	runNoCache = "raterd-nocache"
	runNaive   = "naive"
	runLatency = "raterd-latency"
)

// benchOptions are the flags of `raterd bench`.
type benchOptions struct {
	kafka, redis, clickhouse string
	records                  int
	zipf                     float64
	distinct                 int
	invalid                  float64
	seed                     int64
	partitions               int
	judge                    string
	baselines                bool
	warm                     bool
	naiveRecords             int
	latency                  time.Duration
	latencyRate              float64
	soak                     time.Duration
	soakRate                 float64
	cpuprofile               string
	json, quiet, keep        bool
	timeout                  time.Duration
	sim                      simulator.Config
}

// benchEnv returns the first non-empty environment value of keys, else def.
func benchEnv(getenv func(string) string, def string, keys ...string) string {
	for _, k := range keys {
		if v := getenv(k); v != "" {
			return strings.TrimSpace(strings.Split(v, ",")[0])
		}
	}
	return def
}

// registerBenchFlags defines the flags of `raterd bench` on fs, with the service
// addresses defaulting from the environment the tests use (scripts/services.sh env).
func registerBenchFlags(fs *flag.FlagSet, o *benchOptions, getenv func(string) string) {
	fs.StringVar(&o.kafka, "kafka", benchEnv(getenv, "127.0.0.1:9092", "RATERD_TEST_KAFKA", "RATERD_KAFKA_BROKERS"), "Kafka broker host:port (env RATERD_TEST_KAFKA, then RATERD_KAFKA_BROKERS)")
	fs.StringVar(&o.redis, "redis", benchEnv(getenv, "127.0.0.1:6379", "RATERD_TEST_REDIS", "RATERD_REDIS_ADDR"), "Redis host:port for the verdict cache (env RATERD_TEST_REDIS, then RATERD_REDIS_ADDR)")
	fs.StringVar(&o.clickhouse, "clickhouse", benchEnv(getenv, "127.0.0.1:9000", "RATERD_TEST_CLICKHOUSE", "RATERD_CLICKHOUSE_ADDR"), "ClickHouse native host:port (env RATERD_TEST_CLICKHOUSE, then RATERD_CLICKHOUSE_ADDR)")
	fs.IntVar(&o.records, "records", 50000, "messages to generate and consume in each run")
	fs.Float64Var(&o.zipf, "zipf", 0, "0: all-unique traffic (every prompt and response distinct); > 1: prompts repeat with this Zipf exponent, each with one fixed answer")
	fs.IntVar(&o.distinct, "distinct", 10000, "with --zipf: the distinct prompts the Zipf distribution draws from")
	fs.Float64Var(&o.invalid, "invalid", 0.01, "share of deliberately invalid messages (dead-lettered by raterd), in [0, 1)")
	fs.Int64Var(&o.seed, "seed", 1, "traffic generator seed")
	fs.IntVar(&o.partitions, "partitions", 4, "partitions of the benchmark topic")
	fs.StringVar(&o.judge, "judge", benchJudgeHeuristic, "heuristic (the six built-in checks) or judgesim (the checks plus a helpfulness rubric on an in-process judgesim pool)")
	fs.BoolVar(&o.baselines, "baselines", true, "also run the bare kafka-go consumer, the naive evaluator and raterd with the cache off on the same records")
	fs.BoolVar(&o.warm, "warm", true, "also run raterd again on the same records with the cache filled by the first run (all-cached traffic)")
	fs.IntVar(&o.naiveRecords, "naive-records", 2000, "records the naive evaluator consumes (at most --records): it is slow, and its rates are per record")
	fs.DurationVar(&o.latency, "latency-duration", 10*time.Second, "length of the latency run (a paced producer while raterd runs); 0 skips it")
	fs.Float64Var(&o.latencyRate, "latency-rate", 0, "records/s of the latency run; 0: half the throughput raterd measured in this run")
	fs.DurationVar(&o.soak, "soak", 0, "length of the soak run, after the other runs: raterd on a fresh topic while a paced producer writes --soak-rate records/s generated on the fly (memory bounded whatever the length), with RSS and heap sampled about 60 times (at least 1s apart) and judged flat or growing; 0 (the default) skips it. For a soak alone: --baselines=false --warm=false --latency-duration 0 and a small --records (the raterd run always comes first)")
	fs.Float64Var(&o.soakRate, "soak-rate", 2000, "records/s the soak run's producer writes")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a pprof CPU profile of the raterd run (the first one, cache on) to this file")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON on stdout instead of tables")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines on stderr")
	fs.BoolVar(&o.keep, "keep", false, "keep the topics, ClickHouse databases and Redis keys the benchmark created")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "the longest one run may take (for --soak: the drain after the producer stops)")
	fs.IntVar(&o.sim.MaxSeqs, "judgesim-seqs", 64, "judgesim: sequences that run at once (vLLM max_num_seqs)")
	fs.DurationVar(&o.sim.StepBase, "judgesim-step", 200*time.Microsecond, "judgesim: fixed time of a decode step")
	fs.DurationVar(&o.sim.StepPerSeq, "judgesim-step-per-seq", 2*time.Microsecond, "judgesim: decode step time added per running sequence")
	fs.DurationVar(&o.sim.PrefillPerToken, "judgesim-prefill", 200*time.Nanosecond, "judgesim: prefill time per prompt token")
}

// validate rejects bad flag values, naming the flag.
func (o *benchOptions) validate() error {
	for _, a := range []struct{ flag, addr string }{{"kafka", o.kafka}, {"redis", o.redis}, {"clickhouse", o.clickhouse}} {
		if host, port, err := net.SplitHostPort(a.addr); err != nil || host == "" || port == "" {
			return flagErrorf("--%s %q: want host:port", a.flag, a.addr)
		}
	}
	switch {
	case o.records < 1:
		return flagErrorf("--records %d: must be at least 1", o.records)
	case o.zipf != 0 && !(o.zipf > 1 && !math.IsInf(o.zipf, 1)):
		return flagErrorf("--zipf %g: want 0 (unique traffic) or a finite exponent above 1", o.zipf)
	case o.distinct < 1:
		return flagErrorf("--distinct %d: must be at least 1", o.distinct)
	case !(o.invalid >= 0 && o.invalid < 1):
		return flagErrorf("--invalid %g: want a share in [0, 1)", o.invalid)
	case o.partitions < 1 || o.partitions > 1024:
		return flagErrorf("--partitions %d: want 1..1024", o.partitions)
	case o.judge != benchJudgeHeuristic && o.judge != benchJudgeSim:
		return flagErrorf("--judge %q: want %s or %s", o.judge, benchJudgeHeuristic, benchJudgeSim)
	case o.naiveRecords < 1:
		return flagErrorf("--naive-records %d: must be at least 1", o.naiveRecords)
	case o.latency < 0:
		return flagErrorf("--latency-duration %s: must not be negative", o.latency)
	case !(o.latencyRate >= 0) || math.IsInf(o.latencyRate, 1):
		return flagErrorf("--latency-rate %g: want 0 (half the measured throughput) or a positive rate", o.latencyRate)
	case o.soak != 0 && o.soak < time.Second:
		return flagErrorf("--soak %s: want 0 (off) or at least 1s", o.soak)
	case !(o.soakRate > 0) || math.IsInf(o.soakRate, 1):
		return flagErrorf("--soak-rate %g: want a positive, finite rate (records/s)", o.soakRate)
	case o.timeout <= 0:
		return flagErrorf("--timeout %s: must be positive", o.timeout)
	case o.sim.MaxSeqs < 1:
		return flagErrorf("--judgesim-seqs %d: must be at least 1", o.sim.MaxSeqs)
	case o.sim.StepBase <= 0:
		return flagErrorf("--judgesim-step %s: must be positive", o.sim.StepBase)
	case o.sim.StepPerSeq < 0:
		return flagErrorf("--judgesim-step-per-seq %s: must not be negative", o.sim.StepPerSeq)
	case o.sim.PrefillPerToken < 0:
		return flagErrorf("--judgesim-prefill %s: must not be negative", o.sim.PrefillPerToken)
	}
	o.naiveRecords = min(o.naiveRecords, o.records)
	return nil
}

func cmdBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", "bench [--records N] [--zipf S] [--judge heuristic|judgesim] [--baselines=false] [--soak DURATION [--soak-rate N]] [--json] [--cpuprofile FILE]", stderr)
	var o benchOptions
	registerBenchFlags(fs, &o, os.Getenv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "raterd bench: %v\nRun 'raterd bench --help' for the flags.\n", err)
		return err
	}
	ctx, stop := signalContext(stderr)
	defer stop()
	progress := stderr
	if o.quiet {
		progress = io.Discard
	}
	rep, err := runBench(ctx, o, progress)
	if rep != nil {
		if o.json {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(rep); jerr != nil {
				err = errors.Join(err, fmt.Errorf("--json: %w", jerr))
			}
		} else {
			printBenchReport(stdout, rep)
		}
	}
	return err
}

// benchReport is what `raterd bench` measured; --json prints it as is.
type benchReport struct {
	Version  string        `json:"version"`
	Started  time.Time     `json:"started"`
	Machine  benchMachine  `json:"machine"`
	Settings benchSettings `json:"settings"`
	Traffic  trafficInfo   `json:"traffic"`
	Runs     []benchRun    `json:"runs"`
	Ratios   []benchRatio  `json:"ratios"`
	Latency  *benchLatency `json:"latency,omitempty"`
	Soak     *benchSoak    `json:"soak,omitempty"`
	Targets  []benchTarget `json:"targets"`
	Notes    []string      `json:"notes"`
	Problems []string      `json:"problems,omitempty"`
	Profile  string        `json:"cpuprofile,omitempty"`
}

// benchMachine describes where the benchmark ran.
type benchMachine struct {
	CPUs       int        `json:"cpus"`
	GOMAXPROCS int        `json:"gomaxprocs"`
	Go         string     `json:"go"`
	OS         string     `json:"os"`
	LoadBefore [3]float64 `json:"load_before"` // /proc/loadavg when the benchmark started
	LoadAfter  [3]float64 `json:"load_after"`  // and when it ended
}

// benchSettings are the options the report was measured with.
type benchSettings struct {
	Records      int      `json:"records"`
	Traffic      string   `json:"traffic"` // "unique" or "zipf"
	ZipfS        float64  `json:"zipf_s,omitempty"`
	Distinct     int      `json:"distinct_prompts,omitempty"`
	InvalidShare float64  `json:"invalid_share"`
	Seed         int64    `json:"seed"`
	Partitions   int      `json:"partitions"`
	Judge        string   `json:"judge"`
	Evaluators   []string `json:"evaluators"`
	NaiveRecords int      `json:"naive_records,omitempty"`
	Topic        string   `json:"topic"`
	Simulator    string   `json:"judgesim,omitempty"`
}

// trafficInfo describes the generated records.
type trafficInfo struct {
	Messages          int     `json:"messages"`
	Valid             int     `json:"valid"`
	Invalid           int     `json:"invalid"`
	Bytes             int64   `json:"bytes"`
	DistinctPrompts   int     `json:"distinct_prompts"`
	DistinctPairs     int     `json:"distinct_prompt_response_pairs"`
	DistinctResponses int     `json:"distinct_responses"`
	PromptChars       [3]int  `json:"prompt_chars"`   // min, mean, max over valid records
	ResponseChars     [3]int  `json:"response_chars"` // min, mean, max over valid records
	Models            int     `json:"models"`
	Apps              int     `json:"apps"`
	TasksPerRecord    float64 `json:"tasks_per_record"` // applicable evaluators per valid record
}

// benchRun is one consumer's run over the records.
type benchRun struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Records counts the messages done: scored or dead-lettered (raterd), committed
	// (baselines).
	Records     int64 `json:"records"`
	Valid       int64 `json:"valid"`
	DeadLetters int64 `json:"dead_letters_or_decode_errors"`
	// RowsExpected and RowsFound: score rows the run should have stored and the rows
	// SELECT count() FROM <db>.scores FINAL found at the end (0 for bare).
	RowsExpected int64 `json:"rows_expected"`
	RowsFound    int64 `json:"rows_found"`
	// StartupSeconds runs from the start to the first message in hand (group join);
	// ElapsedSeconds from there to the end: the last row visible in ClickHouse (raterd),
	// the last commit acknowledged (baselines).
	StartupSeconds   float64 `json:"startup_s"`
	ElapsedSeconds   float64 `json:"elapsed_s"`
	RecordsPerSecond float64 `json:"records_per_s"`
	// CPUMicrosPerRecord is the process's CPU time (getrusage RUSAGE_SELF, user + system)
	// over the elapsed window per record.
	CPUMicrosPerRecord float64 `json:"cpu_us_per_record"`
	CPUUserSeconds     float64 `json:"cpu_user_s"`
	CPUSystemSeconds   float64 `json:"cpu_system_s"`
	// PeakRSSBytes is the process's peak resident set over the run (see peakRSS).
	PeakRSSBytes int64  `json:"peak_rss_bytes"`
	RSSMethod    string `json:"rss_method,omitempty"`
	// JudgeTasksPerRecord is record × evaluator tasks sent to a judge per record (the
	// rest were answered by the cache or by deduplication).
	JudgeTasksPerRecord *float64 `json:"judge_tasks_per_record,omitempty"`
	CacheHits           int64    `json:"cache_hits,omitempty"`
	Deduplicated        int64    `json:"deduplicated,omitempty"`
	InFlightJoins       int64    `json:"in_flight_joins,omitempty"`
	Batches             int64    `json:"batches,omitempty"`
	// CacheRoundTripsPerBatch is Redis round trips per micro-batch (raterd with Redis).
	CacheRoundTripsPerBatch *float64 `json:"cache_round_trips_per_batch,omitempty"`
	// Inserts and RowsPerInsert: ClickHouse score inserts (sinks.GroupCommit flushes for
	// raterd, one per record for naive).
	Inserts          int64    `json:"inserts,omitempty"`
	RowsPerInsert    *float64 `json:"rows_per_insert,omitempty"`
	InsertsPerSecond *float64 `json:"inserts_per_s,omitempty"`
	// Pool: judgesim requests, their rate, the simulator's computed capacity for the
	// measured mean request, and its utilization (busy sequence-seconds / (slots × window)).
	PoolRequests         int64    `json:"pool_requests,omitempty"`
	PoolRequestsPerRec   *float64 `json:"pool_requests_per_record,omitempty"`
	PoolRequestsPerSec   *float64 `json:"pool_requests_per_s,omitempty"`
	PoolCapacityPerSec   *float64 `json:"pool_capacity_per_s,omitempty"`
	PoolUtilization      *float64 `json:"pool_utilization,omitempty"`
	cpu                  baseline.CPUTime
	elapsed, startupTime time.Duration
}

// benchRatio compares a raterd run with a baseline: Throughput is the run's records/s
// over the baseline's, CPUPerRecord the run's CPU per record over the baseline's.
type benchRatio struct {
	Run          string  `json:"run"`
	Baseline     string  `json:"baseline"`
	Throughput   float64 `json:"throughput"`
	CPUPerRecord float64 `json:"cpu_per_record"`
	Note         string  `json:"note,omitempty"`
}

// benchLatency is the produce → row-visible latency of the latency run.
type benchLatency struct {
	TargetRate   float64 `json:"target_records_per_s"`
	AchievedRate float64 `json:"achieved_records_per_s"`
	RateBasis    string  `json:"rate_basis"`
	Records      int     `json:"records"`
	Samples      int     `json:"samples"`
	Seen         int     `json:"samples_seen"`
	P50Seconds   float64 `json:"p50_s"`
	P90Seconds   float64 `json:"p90_s"`
	P99Seconds   float64 `json:"p99_s"`
	MaxSeconds   float64 `json:"max_s"`
	PollSeconds  float64 `json:"poll_interval_s"`
	Method       string  `json:"method"`
}

// benchTarget is one target of issue 8 with what this run measured.
type benchTarget struct {
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Verdict  string `json:"verdict"` // met, missed, not measured (and why)
}

// bencher runs one benchmark: it owns what the benchmark creates and removes it at the end.
type bencher struct {
	o        benchOptions
	progress io.Writer
	logger   *slog.Logger
	suffix   string
	topic    string
	ch       driver.Conn // admin connection: migrations, counts, drops
	sim      *simulator.Simulator
	simURL   string

	dbs       []string
	topics    []string
	prefixes  []string
	closers   []func()
	problems  []string
	evalNames []string
}

func (b *bencher) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "bench: "+format+"\n", args...)
}

// problem records a discrepancy that makes the run fail after the report is printed.
func (b *bencher) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.logf("PROBLEM: %s", msg)
	b.problems = append(b.problems, msg)
}

// runBench runs the benchmark. The report is returned whenever something was measured,
// also with an error (which then says what went wrong).
func runBench(ctx context.Context, o benchOptions, progress io.Writer) (*benchReport, error) {
	b := &bencher{
		o: o, progress: progress,
		logger: slog.New(slog.NewTextHandler(progress, &slog.HandlerOptions{Level: slog.LevelWarn})),
		suffix: strconv.FormatInt(time.Now().UnixNano(), 36),
	}
	b.topic = "raterd-bench-" + b.suffix
	defer b.cleanup()
	rep := &benchReport{
		Version: version(), Started: time.Now().UTC(),
		Machine: benchMachine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(),
			OS: runtime.GOOS + "/" + runtime.GOARCH, LoadBefore: loadAvg()},
	}
	err := b.run(ctx, rep)
	rep.Machine.LoadAfter = loadAvg()
	rep.Problems = b.problems
	rep.Targets = benchTargets(rep)
	rep.Notes = benchNotes(rep, o)
	if err == nil && len(b.problems) > 0 {
		err = fmt.Errorf("%d problem(s): %s", len(b.problems), strings.Join(b.problems, "; "))
	}
	if len(rep.Runs) == 0 {
		return nil, err
	}
	return rep, err
}

func (b *bencher) run(ctx context.Context, rep *benchReport) error {
	o := b.o
	chCfg := sinks.ClickHouseConfig{Addrs: []string{o.clickhouse}, Database: "default"}
	if err := chCfg.Validate("clickhouse"); err != nil {
		return fmt.Errorf("--clickhouse: %w", err)
	}
	conn, err := sinks.OpenClickHouse(ctx, chCfg)
	if err != nil {
		return fmt.Errorf("--clickhouse: %w", err)
	}
	b.ch = conn
	if o.judge == benchJudgeSim {
		if err := b.startSimulator(); err != nil {
			return err
		}
	}

	// The configuration of the raterd runs; its evaluators also serve the naive baseline
	// and the expected row counts.
	cfg, err := b.config(b.topic, "probe", "probe", "probe:", true)
	if err != nil {
		return err
	}
	for _, e := range cfg.Evaluators {
		b.evalNames = append(b.evalNames, e.Name)
	}
	rep.Settings = benchSettings{
		Records: o.records, Traffic: "unique", InvalidShare: o.invalid, Seed: o.seed, Partitions: o.partitions,
		Judge: o.judge, Evaluators: b.evalNames, Topic: b.topic,
	}
	if o.zipf > 0 {
		rep.Settings.Traffic, rep.Settings.ZipfS, rep.Settings.Distinct = "zipf", o.zipf, o.distinct
	}
	if o.baselines {
		rep.Settings.NaiveRecords = o.naiveRecords
	}
	if b.sim != nil {
		c := b.sim.Config()
		rep.Settings.Simulator = fmt.Sprintf("%d seqs, step %s + %s/seq, prefill %s/token", c.MaxSeqs, c.StepBase, c.StepPerSeq, c.PrefillPerToken)
	}

	b.logf("generating %d records (%s traffic)…", o.records, rep.Settings.Traffic)
	values, info := benchTraffic(o, o.seed, o.records, "b"+b.suffix)
	perRecord := expectedRows(cfg.Evaluators, values)
	var wantRows int64
	for _, n := range perRecord {
		wantRows += int64(n)
	}
	info.TasksPerRecord = float64(wantRows) / float64(max(info.Valid, 1))
	rep.Traffic = info
	b.logf("%d messages (%d valid, %d invalid, %.1f MiB); prompts %d–%d chars (mean %d), responses %d–%d (mean %d); %d distinct prompts, %d distinct prompt+response pairs",
		info.Messages, info.Valid, info.Invalid, float64(info.Bytes)/(1<<20), info.PromptChars[0], info.PromptChars[2], info.PromptChars[1],
		info.ResponseChars[0], info.ResponseChars[2], info.ResponseChars[1], info.DistinctPrompts, info.DistinctPairs)

	if err := b.createTopic(ctx, b.topic); err != nil {
		return err
	}
	b.logf("producing to %s (%d partitions)…", b.topic, o.partitions)
	pstart := time.Now()
	if err := produce(ctx, []string{o.kafka}, b.topic, values); err != nil {
		return err
	}
	b.logf("produced %d messages in %s", len(values), time.Since(pstart).Round(time.Millisecond))
	values, perRecord = nil, nil // the runs read Kafka; free the generated traffic before measuring
	total := int64(o.records)

	if o.baselines {
		r, err := b.runBare(ctx, total)
		if err != nil {
			return err
		}
		rep.Runs = append(rep.Runs, r)
	}
	main, err := b.runRaterd(ctx, runRaterd, "raterd, Redis cache (cold: a fresh key space)", b.topic, "cold", true, total, wantRows, o.cpuprofile)
	if err != nil {
		return err
	}
	rep.Runs = append(rep.Runs, main)
	rep.Profile = o.cpuprofile
	if o.warm {
		r, err := b.runRaterd(ctx, runWarm, "raterd, the same Redis key space again (all cached), a new stack", b.topic, "cold", true, total, wantRows, "")
		if err != nil {
			return err
		}
		rep.Runs = append(rep.Runs, r)
	}
	if o.baselines {
		r, err := b.runRaterd(ctx, runNoCache, "raterd, cache off (no Redis, memory_bytes: -1)", b.topic, "", false, total, wantRows, "")
		if err != nil {
			return err
		}
		rep.Runs = append(rep.Runs, r)
		r, err = b.runNaive(ctx, cfg, int64(o.naiveRecords))
		if err != nil {
			return err
		}
		rep.Runs = append(rep.Runs, r)
	}
	rep.Ratios = benchRatios(rep.Runs)

	if o.latency > 0 {
		rate, basis := o.latencyRate, "--latency-rate"
		if rate == 0 {
			rate, basis = main.RecordsPerSecond/2, fmt.Sprintf("half of the %s run's %.0f records/s", runRaterd, main.RecordsPerSecond)
		}
		lat, r, err := b.runLatency(ctx, rate)
		if lat != nil {
			lat.RateBasis = basis
			rep.Latency = lat
			rep.Runs = append(rep.Runs, r)
		}
		if err != nil {
			return err
		}
	}

	if o.soak > 0 {
		soak, r, err := b.runSoak(ctx)
		if soak != nil {
			rep.Soak = soak
			if err == nil {
				rep.Runs = append(rep.Runs, r)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// config returns the raterd configuration of one run: the benchmark's evaluators on the
// given topic, group and database, with Redis under keyPrefix or no cache at all.
func (b *bencher) config(topic, group, db, keyPrefix string, withCache bool) (*Config, error) {
	redisSection := fmt.Sprintf("redis: {addrs: [%q], key_prefix: %q}", b.o.redis, keyPrefix)
	if !withCache {
		redisSection = "redis: {memory_bytes: -1}"
	}
	judges := "  checks: {type: heuristic}\n"
	evaluators := ""
	for _, check := range []string{"refusal", "empty", "truncated", "repetition", "pii", "json"} {
		evaluators += fmt.Sprintf("  - {name: %s, judge: checks, check: %s}\n", check, check)
	}
	if b.o.judge == benchJudgeSim {
		judges += fmt.Sprintf("  sim:\n    type: openai\n    model: judgesim-bench\n    endpoints: [{url: %q, max_in_flight: 128}]\n    timeout: 10s\n", b.simURL)
		evaluators += "  - {name: helpfulness, judge: sim, criteria: \"Does the response address the request accurately, completely and concisely?\"}\n"
	}
	text := fmt.Sprintf(`
kafka:
  brokers: [%q]
  topics: [%q]
  group_id: %q
  start_offset: earliest
%s
clickhouse:
  addrs: [%q]
  database: %s
judges:
%sevaluators:
%sadmin: {listen: "off"}
telemetry: {log_level: warn}
`, b.o.kafka, topic, group, redisSection, b.o.clickhouse, db, judges, evaluators)
	cfg, err := ParseConfig([]byte(text), func(k string) string {
		switch k {
		case "RATERD_CLICKHOUSE_USER", "RATERD_CLICKHOUSE_PASSWORD":
			return os.Getenv(k)
		}
		return ""
	})
	if err != nil {
		return nil, fmt.Errorf("bench config: %w", err)
	}
	return cfg, nil
}

// startSimulator serves an in-process judgesim on loopback.
func (b *bencher) startSimulator() error {
	if err := b.o.sim.Validate(); err != nil {
		return fmt.Errorf("--judgesim-*: %w", err)
	}
	b.sim = simulator.New(b.o.sim)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("judgesim listener: %w", err)
	}
	srv := &http.Server{Handler: b.sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.simURL = "http://" + ln.Addr().String() + "/v1"
	b.closers = append(b.closers, func() { _ = srv.Close(); _ = b.sim.Close() })
	return nil
}

// createTopic creates a fresh topic and waits until every partition has a leader.
func (b *bencher) createTopic(ctx context.Context, topic string) error {
	client := &kafka.Client{Addr: kafka.TCP(b.o.kafka), Timeout: 30 * time.Second, Transport: &kafka.Transport{}}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: b.o.partitions, ReplicationFactor: 1}}})
	if err != nil {
		return fmt.Errorf("--kafka %s: create topic %s: %w", b.o.kafka, topic, err)
	}
	if err := resp.Errors[topic]; err != nil {
		return fmt.Errorf("--kafka %s: create topic %s: %w", b.o.kafka, topic, err)
	}
	b.topics = append(b.topics, topic, sinks.DLQTopic(topic))
	for deadline := time.Now().Add(30 * time.Second); ; {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		ready := err == nil && len(md.Topics) == 1 && len(md.Topics[0].Partitions) == b.o.partitions && md.Topics[0].Error == nil
		if ready {
			for _, p := range md.Topics[0].Partitions {
				ready = ready && p.Error == nil && p.Leader.Host != ""
			}
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("--kafka %s: topic %s has no leaders after 30s (%v)", b.o.kafka, topic, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// migrate creates a fresh database with raterd's schema.
func (b *bencher) migrate(ctx context.Context, db string) error {
	b.dbs = append(b.dbs, db)
	if _, err := sinks.Migrate(ctx, b.ch, db, slog.New(slog.DiscardHandler)); err != nil {
		return fmt.Errorf("--clickhouse %s: migrate %s: %w", b.o.clickhouse, db, err)
	}
	return nil
}

// countRows returns SELECT count() FROM db.scores FINAL.
func (b *bencher) countRows(ctx context.Context, db string) (int64, error) {
	var n uint64
	if err := b.ch.QueryRow(ctx, "SELECT count() FROM "+db+".scores FINAL").Scan(&n); err != nil {
		return 0, fmt.Errorf("--clickhouse %s: count %s.scores: %w", b.o.clickhouse, db, err)
	}
	return int64(n), nil
}

// waitRows polls db.scores FINAL until it holds want rows or the deadline passes, and
// returns the last count.
func (b *bencher) waitRows(ctx context.Context, db string, want int64, deadline time.Time) (int64, error) {
	for {
		n, err := b.countRows(ctx, db)
		if err != nil || n >= want || time.Now().After(deadline) {
			return n, err
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// cleanup removes what the benchmark created, unless --keep; it runs when ctx has ended
// too, on a context of its own.
func (b *bencher) cleanup() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	if b.ch == nil {
		return
	}
	defer b.ch.Close()
	if b.o.keep {
		b.logf("kept topics %v, databases %v, Redis keys %v*", b.topics, b.dbs, b.prefixes)
		return
	}
	// Each step has its own deadline: a loaded server can take a while over one of them.
	step := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), time.Minute)
	}
	for _, db := range b.dbs {
		ctx, cancel := step()
		if err := b.ch.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			b.logf("cleanup: drop database %s: %v", db, err)
		}
		cancel()
	}
	if len(b.topics) > 0 {
		ctx, cancel := step()
		client := &kafka.Client{Addr: kafka.TCP(b.o.kafka), Timeout: time.Minute, Transport: &kafka.Transport{}}
		if _, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: b.topics}); err != nil {
			b.logf("cleanup: delete topics %v: %v", b.topics, err)
		}
		cancel()
	}
	if len(b.prefixes) > 0 {
		ctx, cancel := step()
		defer cancel()
		rc := redis.NewClient(&redis.Options{Addr: b.o.redis})
		defer rc.Close()
		for _, p := range b.prefixes {
			iter := rc.Scan(ctx, 0, p+"*", 1000).Iterator()
			var keys []string
			for iter.Next(ctx) {
				if keys = append(keys, iter.Val()); len(keys) == 1000 {
					_ = rc.Unlink(ctx, keys...).Err()
					keys = keys[:0]
				}
			}
			if len(keys) > 0 {
				_ = rc.Unlink(ctx, keys...).Err()
			}
			if err := iter.Err(); err != nil {
				b.logf("cleanup: redis keys %s*: %v", p, err)
			}
		}
	}
}

// runBare runs baseline.RunBare over the topic.
func (b *bencher) runBare(ctx context.Context, total int64) (benchRun, error) {
	b.logf("%s: bare kafka-go consumer (fetch, decode, commit) over %d records…", runBare, total)
	rctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	freeMemory()
	rss := startPeakRSS()
	res, err := baseline.RunBare(rctx, baseline.BareConfig{Kafka: baseline.KafkaConfig{
		Brokers: []string{b.o.kafka}, Topic: b.topic, GroupID: b.topic + "-" + runBare, Records: total,
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
func (b *bencher) runNaive(ctx context.Context, cfg *Config, records int64) (benchRun, error) {
	b.logf("%s: naive evaluator (fetch one, judge, insert one, commit) over %d records…", runNaive, records)
	db := "raterd_bench_" + b.suffix + "_naive"
	if err := b.migrate(ctx, db); err != nil {
		return benchRun{}, err
	}
	judges, err := scorer.NewJudges(cfg.Judges, scorer.JudgeSettings{Logger: b.logger})
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
	var simBefore simulator.Stats
	if b.sim != nil {
		simBefore = b.sim.Stats()
	}
	freeMemory()
	rss := startPeakRSS()
	res, err := baseline.RunNaive(rctx, baseline.NaiveConfig{
		Kafka:      baseline.KafkaConfig{Brokers: []string{b.o.kafka}, Topic: b.topic, GroupID: b.topic + "-" + runNaive, Records: records},
		Evaluators: cfg.Evaluators, Judge: judge,
		ClickHouse: sinks.ClickHouseConfig{Addrs: []string{b.o.clickhouse}, Database: db,
			Username: cfg.ClickHouse.Username, Password: cfg.ClickHouse.Password},
		Logger: b.logger,
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
func (b *bencher) poolStats(r *benchRun, before, after simulator.Stats) {
	done := after.Completed - before.Completed
	r.PoolRequests = done
	if r.Records > 0 {
		r.PoolRequestsPerRec = ptr(float64(done) / float64(r.Records))
	}
	if r.elapsed > 0 {
		r.PoolRequestsPerSec = ptr(float64(done) / r.elapsed.Seconds())
		busy := simulator.Stats{MaxSeqs: after.MaxSeqs, BusySeqTime: after.BusySeqTime - before.BusySeqTime}
		r.PoolUtilization = ptr(simulator.Utilization(busy, r.elapsed))
	}
	if done > 0 {
		p := int((after.PromptTokens - before.PromptTokens) / done)
		c := int((after.CompletionTokens - before.CompletionTokens) / done)
		r.PoolCapacityPerSec = ptr(b.sim.Config().Capacity(p, c))
	}
}

// runRaterd runs raterd's pipeline, built as `raterd run` builds it, over the topic as a
// new consumer group, until every message is done and every row is visible in ClickHouse.
// keySpace names the Redis key space (runs that share one share the cache).
func (b *bencher) runRaterd(ctx context.Context, name, desc, topic, keySpace string, withCache bool, total, wantRows int64, profile string) (benchRun, error) {
	r := benchRun{Name: name, Description: desc, RowsExpected: wantRows}
	db := "raterd_bench_" + b.suffix + "_" + strings.ReplaceAll(name, "-", "_")
	prefix := "raterd-bench-" + b.suffix + "-" + keySpace + ":"
	cfg, err := b.config(topic, topic+"-"+name, db, prefix, withCache)
	if err != nil {
		return r, err
	}
	if withCache && !slices.Contains(b.prefixes, prefix) {
		b.prefixes = append(b.prefixes, prefix)
	}
	if err := b.migrate(ctx, db); err != nil {
		return r, err
	}
	b.logf("%s: %s over %d records…", name, desc, total)
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
	var simBefore simulator.Stats
	if b.sim != nil {
		simBefore = b.sim.Stats()
	}
	freeMemory()
	rss := startPeakRSS()
	defer rss.stop()
	if profile != "" {
		if prof, err = os.Create(profile); err != nil {
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
	b.pipelineFigures(&r, p, st, wantRows, simBefore)
	b.logRun(r)
	return r, nil
}

// pipelineFigures fills r from a finished raterd run — counts, rates (r's elapsed time and
// CPU must be set), judge tasks, cache, inserts and pool — and reports a score row count
// that differs from wantRows.
func (b *bencher) pipelineFigures(r *benchRun, p *consumer.Pipeline, st *stack, wantRows int64, simBefore simulator.Stats) {
	ps, tot := p.Stats(), st.Scorer.Totals()
	r.Records, r.Valid, r.DeadLetters, r.Batches = ps.Done, ps.Valid, ps.DeadLetters, ps.Batches
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
func (b *bencher) pipeline(ctx context.Context, cfg *Config) (*consumer.Pipeline, *stack, func(), error) {
	tel, err := newTelemetry(ctx, cfg.Telemetry)
	if err != nil {
		return nil, nil, nil, err
	}
	shutdownTel := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}
	st, err := buildStack(ctx, cfg, tel, b.logger, nil)
	if err != nil {
		shutdownTel()
		return nil, nil, nil, err
	}
	p, reader, err := newPipeline(cfg, st, tel, b.logger)
	if err != nil {
		_ = st.Close()
		shutdownTel()
		return nil, nil, nil, err
	}
	var once sync.Once
	leave := func() {
		once.Do(func() {
			_ = reader.Close()
			_ = st.Close()
			shutdownTel()
		})
	}
	return p, st, leave, nil
}

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
	cfg, err := b.config(topic, topic+"-raterd", db, prefix, true)
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
	w := &kafka.Writer{Addr: kafka.TCP(o.kafka), Topic: topic, Balancer: &kafka.Hash{}, BatchSize: 10000,
		BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll, Transport: &kafka.Transport{}}
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
	stride := max(1, (n-1)/latencySamples)
	tr := newLatencyTracker()
	for i := 1; i < n; i += stride {
		if perRecord[i] > 0 {
			tr.want[ids[i]] = perRecord[i]
		}
	}
	pollCtx, stopPoll := context.WithCancel(ctx)
	pollDone := make(chan error, 1)
	go func() { pollDone <- b.pollVisible(pollCtx, db, tr) }()

	var simBefore simulator.Stats
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
	b.pipelineFigures(&r, p, st, wantRows, simBefore)
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
}

func newLatencyTracker() *latencyTracker {
	return &latencyTracker{want: map[string]int{}, sentAt: map[string]time.Time{}, visible: map[string]time.Time{}}
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

// seen notes the records whose rows reached their expected count at time at.
func (t *latencyTracker) seen(counts map[string]int, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, n := range counts {
		if want, ok := t.want[id]; ok && n >= want {
			if _, dup := t.visible[id]; !dup {
				t.visible[id] = at
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
	var d []time.Duration
	for id, at := range t.visible {
		d = append(d, at.Sub(t.sentAt[id]))
	}
	slices.Sort(d)
	return &benchLatency{
		Samples: len(t.want), Seen: len(d),
		P50Seconds: percentile(d, 0.50).Seconds(), P90Seconds: percentile(d, 0.90).Seconds(),
		P99Seconds: percentile(d, 0.99).Seconds(), MaxSeconds: percentile(d, 1).Seconds(),
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
		q := "SELECT record_id, toUInt64(count()) FROM " + db + ".scores WHERE record_id IN (" + sqlStrings(ids) + ") GROUP BY record_id"
		rows, err := b.ch.Query(ctx, q)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s: poll ClickHouse: %w", runLatency, err)
		}
		counts := map[string]int{}
		for rows.Next() {
			var id string
			var c uint64
			if err := rows.Scan(&id, &c); err != nil {
				rows.Close()
				return fmt.Errorf("%s: poll ClickHouse: %w", runLatency, err)
			}
			counts[id] = int(c)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("%s: poll ClickHouse: %w", runLatency, err)
		}
		tr.seen(counts, time.Now())
	}
}

// sqlStrings renders ids as a list of ClickHouse string literals.
func sqlStrings(ids []string) string {
	var sb strings.Builder
	for i, id := range ids {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('\'')
		sb.WriteString(strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(id))
		sb.WriteByte('\'')
	}
	return sb.String()
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

// benchTraffic generates n message values with trafficgen's exact-repeat traffic (prompts
// of 200–4,000 characters, responses of 200–2,000, five models, several apps), record ids
// rewritten to idPrefix-NNNNNN so that runs never share ids. With --zipf 0 every valid
// record is then made unique (uniquify): no two share a prompt or a response.
func benchTraffic(o benchOptions, seed int64, n int, idPrefix string) ([][]byte, trafficInfo) {
	values := benchValues(o, seed, n, idPrefix, 0)
	return values, describeTraffic(values)
}

// benchValues generates the message values of benchTraffic; with --zipf 0, record i is
// made unique as record base+i, so that chunks generated with successive bases (the soak
// run's) never share a prompt or a response.
func benchValues(o benchOptions, seed int64, n int, idPrefix string, base int) [][]byte {
	opts := traffic.Options{Seed: seed, Count: n, ExactRepeats: true, InvalidShare: o.invalid, ZipfS: 1.1, DistinctPrompts: max(o.distinct, 1)}
	if o.zipf > 0 {
		opts.ZipfS = o.zipf
	}
	values := traffic.Generate(opts)
	from := []byte(`"id":"req-`)
	to := []byte(`"id":"` + idPrefix + `-`)
	for i, v := range values {
		v = bytes.Replace(v, from, to, 1)
		if o.zipf == 0 {
			v = uniquify(v, base+i)
		}
		values[i] = v
	}
	return values
}

// recordID returns the id of a message value written by benchTraffic ("" if none).
func recordID(v []byte) string {
	_, rest, ok := bytes.Cut(v, []byte(`"id":"`))
	if !ok {
		return ""
	}
	id, _, _ := bytes.Cut(rest, []byte(`"`))
	return string(id)
}

// uniquify makes a valid record's prompt and response unique to record i without
// changing what the heuristic checks find: the prompt gets a reference sentence at its
// end, a JSON response a unique run of insignificant whitespace after its first
// character, and any other response a reference in parentheses after its first sentence
// (before any code fence). An invalid message is returned unchanged.
func uniquify(v []byte, i int) []byte {
	if _, err := consumer.Decode(v, record.Source{}, time.Time{}, 0); err != nil {
		return v
	}
	var rec record.Record
	if err := json.Unmarshal(v, &rec); err != nil {
		return v
	}
	tag := strconv.FormatInt(int64(i), 36)
	note := "\n\n(Reference " + tag + ".)"
	switch {
	case rec.Prompt != "" || len(rec.Messages) == 0:
		rec.Prompt += note
	default:
		k := len(rec.Messages) - 1
		for j := k; j >= 0; j-- {
			if rec.Messages[j].Role == "user" {
				k = j
				break
			}
		}
		rec.Messages[k].Content += note
	}
	rec.Response = uniqueResponse(rec.Response, i, tag)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		return v
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// uniqueResponse returns resp made unique to record i (see uniquify).
func uniqueResponse(resp string, i int, tag string) string {
	trimmed := strings.TrimSpace(resp)
	if trimmed != "" && json.Valid([]byte(trimmed)) {
		// 3^16 distinct runs of space, tab and newline: insignificant between JSON tokens.
		ws := make([]byte, 16)
		for k := range ws {
			ws[k] = " \t\n"[i%3]
			i /= 3
		}
		at := strings.Index(resp, trimmed)
		if c := trimmed[0]; c == '{' || c == '[' {
			at++
		}
		return resp[:at] + string(ws) + resp[at:]
	}
	ref := "(ref " + tag + ")"
	// Outside fenced code blocks: after the first sentence, or on a line of its own
	// before a response that opens with a fence, or before the first line break.
	inFence := func(at int) bool { return strings.Count(resp[:at], "```")%2 == 1 }
	for from := 0; ; {
		k := strings.Index(resp[from:], ". ")
		if k < 0 {
			break
		}
		k += from
		if k > 0 && !inFence(k) {
			return resp[:k+1] + " " + ref + resp[k+1:]
		}
		from = k + 2
	}
	if strings.HasPrefix(resp, "```") {
		return ref + "\n" + resp
	}
	if k := strings.IndexByte(resp, '\n'); k > 0 && !inFence(k) {
		return resp[:k] + " " + ref + resp[k:]
	}
	return resp + " " + ref
}

// describeTraffic summarises generated message values.
func describeTraffic(values [][]byte) trafficInfo {
	info := trafficInfo{Messages: len(values)}
	models, apps, responses := map[string]bool{}, map[string]bool{}, map[string]bool{}
	info.PromptChars[0], info.ResponseChars[0] = math.MaxInt, math.MaxInt
	var promptSum, respSum int
	for i, v := range values {
		info.Bytes += int64(len(v))
		rec, err := consumer.Decode(v, record.Source{Offset: int64(i)}, time.Time{}, 0)
		if err != nil {
			info.Invalid++
			continue
		}
		info.Valid++
		models[rec.Model], apps[rec.App], responses[rec.Response] = true, true, true
		pc, rc := utf8.RuneCountInString(rec.PromptText()), utf8.RuneCountInString(rec.Response)
		promptSum += pc
		respSum += rc
		info.PromptChars[0], info.PromptChars[2] = min(info.PromptChars[0], pc), max(info.PromptChars[2], pc)
		info.ResponseChars[0], info.ResponseChars[2] = min(info.ResponseChars[0], rc), max(info.ResponseChars[2], rc)
	}
	if info.Valid == 0 {
		info.PromptChars[0], info.ResponseChars[0] = 0, 0
	} else {
		info.PromptChars[1], info.ResponseChars[1] = promptSum/info.Valid, respSum/info.Valid
	}
	info.Models, info.Apps, info.DistinctResponses = len(models), len(apps), len(responses)
	info.DistinctPrompts, info.DistinctPairs = traffic.DistinctKeys(values)
	return info
}

// expectedRows returns, per message value, the score rows raterd stores for it: one per
// evaluator that applies to the record, none for a message that does not decode.
func expectedRows(evaluators []*scorer.Evaluator, values [][]byte) []int {
	out := make([]int, len(values))
	for i, v := range values {
		rec, err := consumer.Decode(v, record.Source{Offset: int64(i)}, time.Now(), consumer.DefaultMaxRecordBytes)
		if err != nil {
			continue
		}
		for _, e := range evaluators {
			if e.Applies(rec) {
				out[i]++
			}
		}
	}
	return out
}

// benchRatios compares each raterd run over the full records with each baseline.
func benchRatios(runs []benchRun) []benchRatio {
	byName := map[string]benchRun{}
	for _, r := range runs {
		byName[r.Name] = r
	}
	var out []benchRatio
	for _, pair := range [][2]string{
		{runRaterd, runBare}, {runRaterd, runNaive}, {runRaterd, runNoCache},
		{runWarm, runBare}, {runWarm, runNaive}, {runWarm, runNoCache},
	} {
		r, ok1 := byName[pair[0]]
		base, ok2 := byName[pair[1]]
		if !ok1 || !ok2 || base.RecordsPerSecond == 0 || base.CPUMicrosPerRecord == 0 {
			continue
		}
		ratio := benchRatio{Run: pair[0], Baseline: pair[1],
			Throughput:   r.RecordsPerSecond / base.RecordsPerSecond,
			CPUPerRecord: r.CPUMicrosPerRecord / base.CPUMicrosPerRecord}
		if base.Records != r.Records {
			ratio.Note = fmt.Sprintf("rates per record: %s ran %d records, %s %d", base.Name, base.Records, r.Name, r.Records)
		}
		out = append(out, ratio)
	}
	return out
}

// benchTargets checks the measured figures against the targets of issue 8.
func benchTargets(rep *benchReport) []benchTarget {
	var out []benchTarget
	ratio := func(run, base string) (benchRatio, bool) {
		for _, r := range rep.Ratios {
			if r.Run == run && r.Baseline == base {
				return r, true
			}
		}
		return benchRatio{}, false
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "missed"
	}
	if r, ok := ratio(runRaterd, runBare); ok {
		t := benchTarget{Target: "CPU/record within 3× the bare consumer's (heuristic judge, all-unique traffic)",
			Measured: fmt.Sprintf("%.2f×", r.CPUPerRecord), Verdict: verdict(r.CPUPerRecord <= 3)}
		if rep.Settings.Judge != benchJudgeHeuristic || rep.Settings.Traffic != "unique" {
			t.Verdict = "not measured: needs --judge heuristic --zipf 0"
		}
		out = append(out, t)
	}
	if r, ok := ratio(runWarm, runBare); ok {
		t := benchTarget{Target: "CPU/record within 2× the bare consumer's (heuristic judge, all-cached traffic)",
			Measured: fmt.Sprintf("%.2f× (%s)", r.CPUPerRecord, runWarm), Verdict: verdict(r.CPUPerRecord <= 2)}
		if rep.Settings.Judge != benchJudgeHeuristic {
			t.Verdict = "not measured: needs --judge heuristic"
		}
		out = append(out, t)
	}
	if r, ok := ratio(runRaterd, runNaive); ok {
		out = append(out, benchTarget{Target: "throughput at least 50× the naive evaluator's (same judge)",
			Measured: fmt.Sprintf("%.1f×", r.Throughput), Verdict: verdict(r.Throughput >= 50)})
	}
	for _, r := range rep.Runs {
		if r.Name == runRaterd {
			out = append(out, benchTarget{Target: "peak RSS under 300 MiB at the default in-flight limits",
				Measured: fmt.Sprintf("%.0f MiB (%s)", float64(r.PeakRSSBytes)/(1<<20), r.RSSMethod), Verdict: verdict(r.PeakRSSBytes < rssTargetBytes)})
		}
	}
	if l := rep.Latency; l != nil {
		out = append(out, benchTarget{Target: "end-to-end p99 (produce → row visible) under 3 s at half the maximum throughput",
			Measured: fmt.Sprintf("p99 %.2f s at %.0f records/s (%s)", l.P99Seconds, l.AchievedRate, l.RateBasis), Verdict: verdict(l.Seen > 0 && l.P99Seconds < 3)})
	}
	if rep.Soak != nil {
		out = append(out, soakTarget(rep.Soak))
	}
	return out
}

// benchNotes says how to read the report.
func benchNotes(rep *benchReport, o benchOptions) []string {
	notes := []string{
		"Every run consumes the same topic as its own consumer group, in this process, one after another; raterd runs are built as `raterd run` builds them (default batch, worker and in-flight settings).",
		"Windows: from the first message in hand to the last row visible in ClickHouse (raterd) or the last commit acknowledged (baselines); group join is reported apart as start-up.",
		"CPU is the whole process's (getrusage RUSAGE_SELF) over the window: Kafka, Redis and ClickHouse clients included; the Kafka, Redis and ClickHouse servers are other processes and not counted.",
	}
	if o.judge == benchJudgeSim {
		notes = append(notes, "judgesim runs in this process: its CPU is counted in the runs' CPU per record.")
	}
	if o.baselines && o.naiveRecords < o.records {
		notes = append(notes, fmt.Sprintf("The naive evaluator consumed %d of the %d records (--naive-records); its throughput and CPU are per record, start-up excluded, so the ratios compare rates.", o.naiveRecords, o.records))
	}
	if rep.Soak != nil {
		notes = append(notes, soakNote(rep.Soak))
	}
	if rep.Traffic.Valid > 0 && rep.Settings.Traffic == "unique" {
		notes = append(notes, fmt.Sprintf("Unique traffic: %d distinct prompts and %d distinct responses among %d valid records.", rep.Traffic.DistinctPrompts, rep.Traffic.DistinctResponses, rep.Traffic.Valid))
	}
	return notes
}

// printBenchReport writes the report as tables.
func printBenchReport(w io.Writer, rep *benchReport) {
	s, t := rep.Settings, rep.Traffic
	fmt.Fprintf(w, "raterd bench %s — %d records (%s traffic", rep.Version, s.Records, s.Traffic)
	if s.Traffic == "zipf" {
		fmt.Fprintf(w, ", s = %g over %d prompts", s.ZipfS, s.Distinct)
	}
	fmt.Fprintf(w, ", %.0f%% invalid), judge %s (%d evaluators: %s)\n", 100*s.InvalidShare, s.Judge, len(s.Evaluators), strings.Join(s.Evaluators, ", "))
	fmt.Fprintf(w, "traffic: %d valid, %d invalid, %.1f MiB; prompts %d–%d chars (mean %d), responses %d–%d (mean %d); %d models, %d apps; %d distinct prompts, %d distinct pairs; %.2f tasks/record\n",
		t.Valid, t.Invalid, float64(t.Bytes)/(1<<20), t.PromptChars[0], t.PromptChars[2], t.PromptChars[1], t.ResponseChars[0], t.ResponseChars[2], t.ResponseChars[1],
		t.Models, t.Apps, t.DistinctPrompts, t.DistinctPairs, t.TasksPerRecord)
	m := rep.Machine
	fmt.Fprintf(w, "machine: %d CPUs (GOMAXPROCS %d), %s, %s; load average %.2f before, %.2f after\n", m.CPUs, m.GOMAXPROCS, m.Go, m.OS, m.LoadBefore[0], m.LoadAfter[0])
	if s.Simulator != "" {
		fmt.Fprintf(w, "judgesim: %s\n", s.Simulator)
	}

	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\trecords\trecords/s\tCPU µs/rec\tpeak RSS MiB\tjudge tasks/rec\tcache RT/batch\trows/insert\tinserts/s\tpool util\trows exp/found\tstart-up s\t")
	for _, r := range rep.Runs {
		pool := "-"
		if r.PoolUtilization != nil {
			pool = fmt.Sprintf("%.1f%%", 100**r.PoolUtilization)
		}
		rows := "-"
		if r.Name != runBare {
			rows = fmt.Sprintf("%d/%d", r.RowsExpected, r.RowsFound)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.1f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t\n", r.Name, r.Records, r.RecordsPerSecond, r.CPUMicrosPerRecord,
			float64(r.PeakRSSBytes)/(1<<20), optf(r.JudgeTasksPerRecord, "%.3f"), optf(r.CacheRoundTripsPerBatch, "%.2f"),
			optf(r.RowsPerInsert, "%.0f"), optf(r.InsertsPerSecond, "%.2f"), pool, rows, r.StartupSeconds)
	}
	tw.Flush()

	if len(rep.Ratios) > 0 {
		fmt.Fprintln(w, "\nratios (run ÷ baseline)")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "run\tbaseline\tthroughput\tCPU/record\t")
		for _, r := range rep.Ratios {
			fmt.Fprintf(tw, "%s\t%s\t%.2f×\t%.2f×\t\n", r.Run, r.Baseline, r.Throughput, r.CPUPerRecord)
		}
		tw.Flush()
	}
	if l := rep.Latency; l != nil {
		fmt.Fprintf(w, "\nlatency, produce → row visible: %d of %d samples over %d records at %.0f records/s (target %.0f: %s)\n",
			l.Seen, l.Samples, l.Records, l.AchievedRate, l.TargetRate, l.RateBasis)
		fmt.Fprintf(w, "  p50 %.3f s   p90 %.3f s   p99 %.3f s   max %.3f s   (poll every %.0f ms: figures are upper bounds)\n",
			l.P50Seconds, l.P90Seconds, l.P99Seconds, l.MaxSeconds, 1000*l.PollSeconds)
	}
	if rep.Soak != nil {
		printSoak(w, rep.Soak)
	}
	var pool []string
	for _, r := range rep.Runs {
		if r.PoolCapacityPerSec != nil && r.PoolRequestsPerSec != nil {
			pool = append(pool, fmt.Sprintf("  %s: %d requests (%.3f/record), %.0f/s of a computed capacity of %.0f/s for the mean request",
				r.Name, r.PoolRequests, *r.PoolRequestsPerRec, *r.PoolRequestsPerSec, *r.PoolCapacityPerSec))
		}
	}
	if len(pool) > 0 {
		fmt.Fprintln(w, "\njudgesim pool")
		fmt.Fprintln(w, strings.Join(pool, "\n"))
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets (issue 8)")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, t := range rep.Targets {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", t.Target, t.Measured, t.Verdict)
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nnotes")
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "  - %s\n", n)
	}
	if rep.Profile != "" {
		fmt.Fprintf(w, "  - CPU profile of the %s run: %s (go tool pprof -top %s)\n", runRaterd, rep.Profile, rep.Profile)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "PROBLEM: %s\n", p)
	}
}

// optf formats an optional figure, "-" when absent.
func optf(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

func ptr[T any](v T) *T { return &v }

// freeMemory returns freed memory to the OS before a run, so that a run's peak RSS is its
// own and not what an earlier phase left.
func freeMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// peakRSS samples the process's resident set. On Linux it first resets the kernel's
// high-water mark (writing 5 to /proc/self/clear_refs), so that VmHWM at the end is the
// peak over the run; it also samples VmRSS every 20ms, and reports the larger. Where the
// reset is refused it reports the sampled peak alone, and elsewhere 0.
type peakRSS struct {
	reset bool
	stopc chan struct{}
	done  chan struct{}
	max   int64
	once  sync.Once
	peak  int64
	how   string
}

func startPeakRSS() *peakRSS {
	p := &peakRSS{stopc: make(chan struct{}), done: make(chan struct{})}
	p.reset = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	go func() {
		defer close(p.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, _ := procStatusBytes("VmRSS:"); rss > p.max {
				p.max = rss
			}
			select {
			case <-p.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// stop ends the sampling and returns the peak and how it was measured; safe to call twice.
func (p *peakRSS) stop() (int64, string) {
	p.once.Do(func() {
		close(p.stopc)
		<-p.done
		p.peak, p.how = p.max, "VmRSS sampled every 20ms"
		if p.reset {
			if hwm, ok := procStatusBytes("VmHWM:"); ok {
				p.peak, p.how = max(p.peak, hwm), "VmHWM after clear_refs"
			}
		}
		if p.peak == 0 {
			p.how = "not available"
		}
	})
	return p.peak, p.how
}

// procStatusBytes reads a "kB" field of /proc/self/status.
func procStatusBytes(field string) (int64, bool) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	return parseStatusKB(data, field)
}

// parseStatusKB finds "field  N kB" in /proc/<pid>/status text and returns N × 1024.
func parseStatusKB(data []byte, field string) (int64, bool) {
	for line := range bytes.Lines(data) {
		rest, ok := bytes.CutPrefix(line, []byte(field))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, false
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		return n << 10, true
	}
	return 0, false
}

// loadAvg returns the 1, 5 and 15-minute load averages (zeros where unknown).
func loadAvg() [3]float64 {
	var out [3]float64
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return out
	}
	for i, f := range strings.Fields(string(data)) {
		if i >= 3 {
			break
		}
		out[i], _ = strconv.ParseFloat(f, 64)
	}
	return out
}
