package bench

// raterd bench: the end-to-end benchmark of issue 8. It measures the real pipeline on the
// local services against the baselines of bench/baseline in the same run, and reports
// throughput, CPU per record, peak RSS, judge and cache work, ClickHouse insert sizes,
// pool utilization and produce→row-visible latency. See docs/benchmarks.md.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/bench/baseline"
	"raterd/consumer"
	"raterd/internal/cli"
	"raterd/internal/judgesim"
	"raterd/internal/validate"
	"raterd/scorer/redact"
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
	runRedact  = "raterd-redact"
)

// benchOptions are the flags of `raterd bench`.
type benchOptions struct {
	kafka, redis, clickhouse string
	// config is --config: a raterd.yaml whose kafka connection (tls, sasl) the benchmark
	// uses; kafkaSet says --kafka was given (it then wins over the file's kafka.brokers).
	config            string
	kafkaSet          bool
	records           int
	zipf              float64
	distinct          int
	invalid           float64
	seed              int64
	partitions        int
	judge             string
	baselines         bool
	warm              bool
	naiveRecords      int
	latency           time.Duration
	latencyRate       float64
	soak              time.Duration
	soakRate          float64
	cpuprofile        string
	memprofile        string
	format            string
	spansPerMessage   int
	json, quiet, keep bool
	timeout           time.Duration
	sim               judgesim.Config
	// simBin is --judgesim-bin: the raterd binary that serves `judgesim` in a process of
	// its own; simEndpoints, simProfile and simSpeeds shape the pool it serves.
	simBin       string
	simEndpoints int
	simProfile   string
	simSpeeds    string
	// simExplicit are the judgesim flags of the latency-model flags given on the command
	// line: passed on top of --judgesim-profile.
	simExplicit []string
	// pools is --pools (the judge-pool benchmark's endpoint counts, "" off);
	// poolRecords its records per endpoint; poolFixedConcurrency the fixed-batches
	// client's concurrency.
	pools                string
	poolRecords          int
	poolFixedConcurrency int
	poolMaxInFlight      int
	poolInitial          int
	poolBaselines        bool
	poolBaselineRecords  int
	// redact is --redact: "off", "all" or a comma-separated list of redaction types.
	redact string
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
	fs.StringVar(&o.config, "config", "", "a raterd.yaml: every Kafka client of the benchmark (producers, topic admin, baselines, the raterd runs) connects with its kafka.tls and kafka.sasl (RATERD_KAFKA_SASL_PASSWORD applies), to its kafka.brokers unless --kafka is given; the file is read and checked as raterd run reads it, its other sections are not used")
	fs.StringVar(&o.redis, "redis", benchEnv(getenv, "127.0.0.1:6379", "RATERD_TEST_REDIS", "RATERD_REDIS_ADDR"), "Redis host:port for the verdict cache (env RATERD_TEST_REDIS, then RATERD_REDIS_ADDR)")
	fs.StringVar(&o.clickhouse, "clickhouse", benchEnv(getenv, "127.0.0.1:9000", "RATERD_TEST_CLICKHOUSE", "RATERD_CLICKHOUSE_ADDR"), "ClickHouse native host:port (env RATERD_TEST_CLICKHOUSE, then RATERD_CLICKHOUSE_ADDR)")
	fs.IntVar(&o.records, "records", 50000, "messages to generate and consume in each run")
	fs.Float64Var(&o.zipf, "zipf", 0, "0: all-unique traffic (every prompt and response distinct); > 1: prompts repeat with this Zipf exponent, each with one fixed answer")
	fs.IntVar(&o.distinct, "distinct", 10000, "with --zipf: the distinct prompts the Zipf distribution draws from")
	fs.Float64Var(&o.invalid, "invalid", 0.01, "share of deliberately invalid messages (dead-lettered by raterd), in [0, 1)")
	fs.Int64Var(&o.seed, "seed", 1, "traffic generator seed")
	fs.IntVar(&o.partitions, "partitions", 4, "partitions of the benchmark topic")
	fs.StringVar(&o.judge, "judge", benchJudgeHeuristic, "heuristic (the six built-in checks) or judgesim (the checks plus a helpfulness rubric on a judgesim pool in a process of its own, see --judgesim-*)")
	fs.StringVar(&o.redact, "redact", "off", "off, all, or a comma-separated list of "+strings.Join(redact.Types(), ", ")+": also run raterd ("+runRedact+", right after the raterd run, a fresh cache key space) with scoring.redact set to these types, and report its throughput and CPU per record against the raterd run's; redaction applies to model judges only, so it needs --judge judgesim")
	fs.BoolVar(&o.baselines, "baselines", true, "also run the bare kafka-go consumer, the naive evaluator and raterd with the cache off on the same records")
	fs.BoolVar(&o.warm, "warm", true, "also run raterd again on the same records with the cache filled by the first run (all-cached traffic)")
	fs.IntVar(&o.naiveRecords, "naive-records", 2000, "records the naive evaluator consumes (at most --records): it is slow, and its rates are per record")
	fs.DurationVar(&o.latency, "latency-duration", 10*time.Second, "length of the latency run (a paced producer while raterd runs); 0 skips it")
	fs.Float64Var(&o.latencyRate, "latency-rate", 0, "records/s of the latency run; 0: half the throughput raterd measured in this run")
	fs.DurationVar(&o.soak, "soak", 0, "length of the soak run, after the other runs: raterd on a fresh topic while a paced producer writes --soak-rate records/s generated on the fly (memory bounded whatever the length), with RSS and heap sampled about 60 times (at least 1s apart) and judged flat or growing; 0 (the default) skips it. For a soak alone: --baselines=false --warm=false --latency-duration 0 and a small --records (the raterd run always comes first)")
	fs.Float64Var(&o.soakRate, "soak-rate", 2000, "records/s the soak run's producer writes")
	fs.StringVar(&o.format, "format", benchFormatRaterd, "raterd: the raterd JSON record only (one per message); otlp_proto or otlp_json: also the same valid records as OTLP trace exports (as a Collector's Kafka exporter writes them: --spans-per-message spans per export, each trace an HTTP root, "+strconv.Itoa(otlpNonGenAISpans)+" database spans and the chat span, grouped by app into resources) on a second topic, consumed by a second raterd run (raterd-<format>, topic_formats, a fresh cache key space) compared per valid record with the raterd run")
	fs.IntVar(&o.spansPerMessage, "spans-per-message", 64, "with --format otlp_*: spans per OTLP export (a typical Collector batch), "+strconv.Itoa(otlpSpansPerTrace)+" per trace (one record), so 64 is 16 records per message; "+strconv.Itoa(otlpSpansPerTrace)+".."+strconv.Itoa(otlpMaxSpansPerMessage))
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a pprof CPU profile of the raterd run (the first one, cache on) to this file")
	fs.StringVar(&o.memprofile, "memprofile", "", "with --soak: write a pprof heap profile to this file when the soak's producer stops (after a garbage collection: what the running pipeline holds live)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON on stdout instead of tables")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines on stderr")
	fs.BoolVar(&o.keep, "keep", false, "keep the topics, ClickHouse databases and Redis keys the benchmark created")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "the longest one run may take (for --soak: the drain after the producer stops)")
	fs.StringVar(&o.simBin, "judgesim-bin", defaultSimBinary(), "the raterd binary whose `judgesim` command serves the simulated judge pool, in a process of its own (default: this binary)")
	fs.IntVar(&o.simEndpoints, "judgesim-endpoints", 1, "judgesim: endpoints (simulated GPU servers) of the pool, each on its own port of the one judgesim process")
	fs.StringVar(&o.simProfile, "judgesim-profile", "", "judgesim: a named model profile (judgesim -profile), e.g. vllm-h100-8b; its values win over --judgesim-seqs, --judgesim-step, --judgesim-step-per-seq and --judgesim-prefill unless those are given")
	fs.StringVar(&o.simSpeeds, "judgesim-speeds", "", "judgesim: comma-separated speed factors of the endpoints, cycled (judgesim -speeds), e.g. 1,0.8,0.6 for servers of unequal speed; empty: all equal")
	fs.StringVar(&o.pools, "pools", "", "run the end-to-end judge-pool benchmark instead of the runs above: comma-separated endpoint counts (e.g. 1,4,16); for each, a judgesim process with that many endpoints, a backlog of --pool-records records per endpoint fed by raterd, by a fixed-concurrency client with a batch barrier and by naive-c64, then raterd at half its goodput (--latency-duration); use with --judgesim-profile vllm-h100-8b")
	fs.IntVar(&o.poolRecords, "pool-records", 400, "with --pools: backlog records per endpoint")
	fs.IntVar(&o.poolFixedConcurrency, "pool-fixed-concurrency", 64, "with --pools: the fixed-batches client's requests in flight")
	fs.BoolVar(&o.poolBaselines, "pool-baselines", true, "with --pools: also feed each pool with the fixed-batches and naive-c64 clients")
	fs.IntVar(&o.poolBaselineRecords, "pool-baseline-records", 1500, "with --pools: the fixed-batches and naive-c64 clients send the first this many records of the backlog (they are slow; their figures are rates)")
	fs.IntVar(&o.poolInitial, "pool-initial", 0, "with --pools: raterd's concurrency.initial per endpoint (the adaptive limit it starts with); 0: the default, min(max_in_flight, 8). An operator who knows the servers' max_num_seqs sets it there")
	fs.IntVar(&o.poolMaxInFlight, "pool-max-in-flight", 512, "with --pools: raterd's max_in_flight per endpoint (the adaptive limit's ceiling); kafka.max_in_flight_records is set to max(4096, 2 × this × endpoints)")
	fs.IntVar(&o.sim.MaxSeqs, "judgesim-seqs", 64, "judgesim: sequences that run at once (vLLM max_num_seqs)")
	fs.DurationVar(&o.sim.StepBase, "judgesim-step", 200*time.Microsecond, "judgesim: fixed time of a decode step")
	fs.DurationVar(&o.sim.StepPerSeq, "judgesim-step-per-seq", 2*time.Microsecond, "judgesim: decode step time added per running sequence")
	fs.DurationVar(&o.sim.PrefillPerToken, "judgesim-prefill", 200*time.Nanosecond, "judgesim: prefill time per prompt token")
}

// explicitSimFlags returns the judgesim flags for the --judgesim-* latency-model flags
// given on the command line.
func explicitSimFlags(fs *flag.FlagSet, c judgesim.Config) []string {
	var out []string
	all := simArgs(c)
	for i, name := range []string{"judgesim-seqs", "judgesim-step", "judgesim-step-per-seq", "judgesim-prefill"} {
		if flagSet(fs, name) {
			out = append(out, all[2*i], all[2*i+1])
		}
	}
	return out
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// validate rejects bad flag values, naming the flag.
func (o *benchOptions) validate() error {
	for _, a := range []struct{ flag, addr string }{{"kafka", o.kafka}, {"redis", o.redis}, {"clickhouse", o.clickhouse}} {
		if !validate.HostPort(a.addr) {
			return cli.FlagErrorf("--%s %q: want host:port", a.flag, a.addr)
		}
	}
	switch {
	case o.records < 1:
		return cli.FlagErrorf("--records %d: must be at least 1", o.records)
	case o.zipf != 0 && !(o.zipf > 1 && !math.IsInf(o.zipf, 1)):
		return cli.FlagErrorf("--zipf %g: want 0 (unique traffic) or a finite exponent above 1", o.zipf)
	case o.distinct < 1:
		return cli.FlagErrorf("--distinct %d: must be at least 1", o.distinct)
	case !(o.invalid >= 0 && o.invalid < 1):
		return cli.FlagErrorf("--invalid %g: want a share in [0, 1)", o.invalid)
	case o.partitions < 1 || o.partitions > 1024:
		return cli.FlagErrorf("--partitions %d: want 1..1024", o.partitions)
	case o.judge != benchJudgeHeuristic && o.judge != benchJudgeSim:
		return cli.FlagErrorf("--judge %q: want %s or %s", o.judge, benchJudgeHeuristic, benchJudgeSim)
	case o.naiveRecords < 1:
		return cli.FlagErrorf("--naive-records %d: must be at least 1", o.naiveRecords)
	case o.latency < 0:
		return cli.FlagErrorf("--latency-duration %s: must not be negative", o.latency)
	case !(o.latencyRate >= 0) || math.IsInf(o.latencyRate, 1):
		return cli.FlagErrorf("--latency-rate %g: want 0 (half the measured throughput) or a positive rate", o.latencyRate)
	case o.soak != 0 && o.soak < time.Second:
		return cli.FlagErrorf("--soak %s: want 0 (off) or at least 1s", o.soak)
	case !(o.soakRate > 0) || math.IsInf(o.soakRate, 1):
		return cli.FlagErrorf("--soak-rate %g: want a positive, finite rate (records/s)", o.soakRate)
	case o.format != benchFormatRaterd && o.format != benchFormatOTLPProto && o.format != benchFormatOTLPJSON:
		return cli.FlagErrorf("--format %q: want %s, %s or %s", o.format, benchFormatRaterd, benchFormatOTLPProto, benchFormatOTLPJSON)
	case o.spansPerMessage < otlpSpansPerTrace || o.spansPerMessage > otlpMaxSpansPerMessage:
		return cli.FlagErrorf("--spans-per-message %d: want %d..%d (%d spans per trace)", o.spansPerMessage, otlpSpansPerTrace, otlpMaxSpansPerMessage, otlpSpansPerTrace)
	case o.redact != "off" && o.judge != benchJudgeSim:
		return cli.FlagErrorf("--redact %s: redaction applies to model judges only (the built-in checks read the raw text): add --judge %s", o.redact, benchJudgeSim)
	case o.pools != "" && o.poolRecords < 10:
		return cli.FlagErrorf("--pool-records %d: must be at least 10", o.poolRecords)
	case o.pools != "" && o.poolBaselineRecords < 10:
		return cli.FlagErrorf("--pool-baseline-records %d: must be at least 10", o.poolBaselineRecords)
	case o.poolInitial < 0 || o.poolInitial > o.poolMaxInFlight:
		return cli.FlagErrorf("--pool-initial %d: want 0..%d (--pool-max-in-flight)", o.poolInitial, o.poolMaxInFlight)
	case o.memprofile != "" && o.soak <= 0:
		return cli.FlagErrorf("--memprofile %s: the heap profile is taken at the end of the soak: add --soak", o.memprofile)
	case o.poolFixedConcurrency < 1:
		return cli.FlagErrorf("--pool-fixed-concurrency %d: must be at least 1", o.poolFixedConcurrency)
	case o.simEndpoints < 1 || o.simEndpoints > 256:
		return cli.FlagErrorf("--judgesim-endpoints %d: want 1..256", o.simEndpoints)
	case o.timeout <= 0:
		return cli.FlagErrorf("--timeout %s: must be positive", o.timeout)
	case o.sim.MaxSeqs < 1:
		return cli.FlagErrorf("--judgesim-seqs %d: must be at least 1", o.sim.MaxSeqs)
	case o.sim.StepBase <= 0:
		return cli.FlagErrorf("--judgesim-step %s: must be positive", o.sim.StepBase)
	case o.sim.StepPerSeq < 0:
		return cli.FlagErrorf("--judgesim-step-per-seq %s: must not be negative", o.sim.StepPerSeq)
	case o.sim.PrefillPerToken < 0:
		return cli.FlagErrorf("--judgesim-prefill %s: must not be negative", o.sim.PrefillPerToken)
	}
	if _, err := o.redactTypes(); err != nil {
		return err
	}
	if o.pools != "" {
		if _, err := parsePools(o.pools); err != nil {
			return cli.FlagErrorf("%v", err)
		}
		o.judge = benchJudgeSim
	}
	o.naiveRecords = min(o.naiveRecords, o.records)
	return nil
}

// redactTypes is --redact as scoring.redact.types; nil for off.
func (o *benchOptions) redactTypes() ([]string, error) {
	if o.redact == "off" {
		return nil, nil
	}
	var types []string
	for t := range strings.SplitSeq(o.redact, ",") {
		t = strings.TrimSpace(t)
		if t != redact.TypeAll && !slices.Contains(redact.Types(), t) {
			return nil, cli.FlagErrorf("--redact %q: %q is not off, all or one of %s", o.redact, t, strings.Join(redact.Types(), ", "))
		}
		types = append(types, t)
	}
	return types, nil
}

// CheckArgs parses and validates `raterd bench` arguments (after "bench") as Main does,
// and runs nothing: a test keeps every bench command the docs show valid with it.
func CheckArgs(args []string) error {
	fs := cli.NewFlagSet("bench", "bench", io.Discard)
	var o benchOptions
	registerBenchFlags(fs, &o, func(string) string { return "" })
	if err := cli.ParseFlags(fs, args); err != nil {
		return fmt.Errorf("raterd bench %s: %w", strings.Join(args, " "), err)
	}
	o.kafkaSet = flagSet(fs, "kafka")
	return o.validate()
}

// Main runs `raterd bench` with its arguments (after "bench").
func Main(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("bench", "bench [--config raterd.yaml] [--records N] [--zipf S] [--judge heuristic|judgesim] [--format raterd|otlp_proto|otlp_json [--spans-per-message N]] [--baselines=false] [--soak DURATION [--soak-rate N]] [--json] [--cpuprofile FILE]", stderr)
	var o benchOptions
	registerBenchFlags(fs, &o, os.Getenv)
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	o.kafkaSet = flagSet(fs, "kafka")
	o.simExplicit = explicitSimFlags(fs, o.sim)
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "raterd bench: %v\nRun 'raterd bench --help' for the flags.\n", err)
		return err
	}
	ctx, stop := cli.SignalContext(stderr)
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
	Pools    []poolReport  `json:"pools,omitempty"`
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
	// Format is --format; SpansPerMessage --spans-per-message (OTLP formats only).
	Format          string `json:"format"`
	SpansPerMessage int    `json:"spans_per_message,omitempty"`
	// Redact is --redact when not off: the types the raterd-redact run masks.
	Redact []string `json:"redact,omitempty"`
	// PoolInitial is --pool-initial when given: the endpoints' starting limit.
	PoolInitial int `json:"pool_initial,omitempty"`
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
	// OTLP is the OTLP copy of the valid records (--format otlp_*).
	OTLP *otlpTraffic `json:"otlp,omitempty"`
}

// benchRun is one consumer's run over the records.
type benchRun struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Records counts the messages done: scored or dead-lettered (raterd), committed
	// (baselines); for a run over OTLP exports, the records decoded (chat spans), and
	// Messages the exports done.
	Records     int64 `json:"records"`
	Messages    int64 `json:"messages,omitempty"`
	Valid       int64 `json:"valid"`
	DeadLetters int64 `json:"dead_letters_or_decode_errors"`
	// RowsExpected and RowsFound: score rows the run should have stored and the rows
	// SELECT count() FROM <db>.scores FINAL found at the end (0 for bare).
	RowsExpected int64 `json:"rows_expected"`
	RowsFound    int64 `json:"rows_found"`
	// Skipped counts the message parts the decoder skipped on purpose (OTLP: the non-GenAI
	// spans); SpansPerMessage is the mean spans per OTLP export.
	Skipped         int64   `json:"skipped,omitempty"`
	SpansPerMessage float64 `json:"spans_per_message,omitempty"`
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
	// AddedP50Seconds and AddedP99Seconds are percentiles of each sample's latency less
	// its longest judge call (the successful attempt, as stored in judge_latency_ms): what
	// raterd's queues, the micro-batch, Kafka and ClickHouse added to the judge's own time.
	AddedP50Seconds float64 `json:"added_p50_s"`
	AddedP99Seconds float64 `json:"added_p99_s"`
	PollSeconds     float64 `json:"poll_interval_s"`
	Method          string  `json:"method"`
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
	sim      simSource
	// kafka is the connection every Kafka client of the benchmark uses (kafkaConnection).
	kafka consumer.Config
	// simURLs are the judge pool's endpoints (with /v1); poolConcurrency is extra YAML
	// for the judge's concurrency section ("" for the defaults); maxInFlight overrides
	// the endpoints' max_in_flight (0: 128).
	simURLs         []string
	poolConcurrency string
	maxInFlight     int
	// maxInFlightRecords overrides kafka.max_in_flight_records (0: the default).
	maxInFlightRecords int
	// latencyWarmup is the start of the latency run whose records are not sampled.
	latencyWarmup time.Duration

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
