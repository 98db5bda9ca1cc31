package bench

// The short `raterd bench` of issue 8 against the real Kafka, Redis and ClickHouse that
// scripts/services.sh starts: it keeps the harness working in .ci/run. It checks the
// report's counts and that every figure is there, never how fast anything was.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"raterd/internal/testkit"
	"raterd/sinks/clickhouse"
)

// runBenchJSON runs `raterd bench --json` with args against the services and decodes the
// report.
func runBenchJSON(t *testing.T, s testkit.Services, args ...string) *benchReport {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append([]string{"bench", "--json", "--kafka", s.Kafka, "--redis", s.Redis, "--clickhouse", s.ClickHouse}, args...)
	code := runMain(args, &stdout, &stderr)
	t.Logf("raterd %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
	if code != 0 {
		t.Fatalf("exit %d; stdout:\n%s", code, stdout.String())
	}
	var rep benchReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("--json output does not decode: %v\n%s", err, stdout.String())
	}
	if !strings.Contains(stderr.String(), "bench: ") {
		t.Error("no progress on stderr")
	}
	return &rep
}

// benchRunsByName indexes a report's runs.
func benchRunsByName(t *testing.T, rep *benchReport, want ...string) map[string]benchRun {
	t.Helper()
	runs := map[string]benchRun{}
	for _, r := range rep.Runs {
		runs[r.Name] = r
	}
	for _, name := range want {
		if _, ok := runs[name]; !ok {
			t.Fatalf("report has no %s run: %+v", name, rep.Runs)
		}
	}
	return runs
}

// checkBenchCleanedUp checks that the benchmark removed its databases, Redis keys and topics.
func checkBenchCleanedUp(t *testing.T, s testkit.Services, topic string) {
	t.Helper()
	suffix := strings.TrimPrefix(topic, "raterd-bench-")
	cfg := clickhouse.Config{Addrs: []string{s.ClickHouse}, Database: "default"}
	if err := cfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var dbs uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM system.databases WHERE startsWith(name, 'raterd_bench_"+suffix+"')").Scan(&dbs); err != nil {
		t.Fatal(err)
	}
	if dbs != 0 {
		t.Errorf("%d raterd_bench_%s* databases left", dbs, suffix)
	}
	rc := redis.NewClient(&redis.Options{Addr: s.Redis})
	defer rc.Close()
	keys, _, err := rc.Scan(context.Background(), 0, "raterd-bench-"+suffix+"*", 10000).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("%d Redis keys left under raterd-bench-%s", len(keys), suffix)
	}
	// Topic deletion completes asynchronously on the broker.
	client := &kafka.Client{Addr: kafka.TCP(s.Kafka), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	for deadline := time.Now().Add(30 * time.Second); ; {
		md, err := client.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && (len(md.Topics) == 0 || md.Topics[0].Error != nil) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("topic %s still exists 30s after the benchmark: %+v %v", topic, md, err)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestBenchSmokeHeuristic runs a short benchmark with every run and the latency run, and
// checks the counts and that every figure and ratio is reported.
func TestBenchSmokeHeuristic(t *testing.T) {
	s := testkit.RequireServices(t)
	profile := filepath.Join(t.TempDir(), "cpu.pprof")
	rep := runBenchJSON(t, s, "--records", "2000", "--naive-records", "200", "--latency-duration", "2s", "--cpuprofile", profile)

	if rep.Settings.Records != 2000 || rep.Settings.Judge != benchJudgeHeuristic || rep.Settings.Traffic != "unique" || len(rep.Settings.Evaluators) != 6 {
		t.Errorf("settings %+v", rep.Settings)
	}
	tr := rep.Traffic
	if tr.Messages != 2000 || tr.Invalid != 20 || tr.DistinctPrompts != tr.Valid || tr.DistinctResponses != tr.Valid {
		t.Errorf("traffic %+v; want 2000 messages, 20 invalid, all valid ones unique", tr)
	}
	runs := benchRunsByName(t, rep, runBare, runRaterd, runWarm, runNoCache, runNaive, runLatency)
	wantRows := int64(float64(tr.Valid)*tr.TasksPerRecord + 0.5)
	for _, name := range []string{runRaterd, runWarm, runNoCache} {
		r := runs[name]
		if r.Records != 2000 || r.Valid != int64(tr.Valid) || r.DeadLetters != int64(tr.Invalid) {
			t.Errorf("%s: records %d valid %d dead %d; want 2000, %d, %d", name, r.Records, r.Valid, r.DeadLetters, tr.Valid, tr.Invalid)
		}
		if r.RowsExpected != wantRows || r.RowsFound != r.RowsExpected {
			t.Errorf("%s: rows expected %d, found %d; want %d found", name, r.RowsExpected, r.RowsFound, wantRows)
		}
		if r.RecordsPerSecond <= 0 || r.CPUMicrosPerRecord <= 0 || r.PeakRSSBytes <= 0 || r.RowsPerInsert == nil || r.InsertsPerSecond == nil || r.JudgeTasksPerRecord == nil {
			t.Errorf("%s: a figure is missing: %+v", name, r)
		}
	}
	if r := runs[runRaterd]; r.CacheRoundTripsPerBatch == nil || *r.JudgeTasksPerRecord == 0 {
		t.Errorf("%s: cache round trips %v, judge tasks %v", runRaterd, r.CacheRoundTripsPerBatch, r.JudgeTasksPerRecord)
	}
	// The built-in checks are never cached (scorer.UncachedJudge): with the heuristic judge
	// alone the warm run judges every task again and never asks the cache.
	if r, cold := runs[runWarm], runs[runRaterd]; *r.JudgeTasksPerRecord != *cold.JudgeTasksPerRecord || r.CacheHits != 0 {
		t.Errorf("%s: %v judge tasks per record, %d cache hits; want the cold run's %v and none",
			runWarm, *r.JudgeTasksPerRecord, r.CacheHits, *cold.JudgeTasksPerRecord)
	}
	if r := runs[runNoCache]; r.CacheRoundTripsPerBatch != nil {
		t.Errorf("%s reports cache round trips", runNoCache)
	}
	if r := runs[runBare]; r.Records != 2000 || r.Valid != int64(tr.Valid) || r.RecordsPerSecond <= 0 || r.CPUMicrosPerRecord <= 0 {
		t.Errorf("%s: %+v", runBare, r)
	}
	if r := runs[runNaive]; r.Records != 200 || r.RowsFound != r.RowsExpected || r.RowsExpected == 0 || r.Inserts == 0 {
		t.Errorf("%s: records %d, rows %d/%d, inserts %d", runNaive, r.Records, r.RowsExpected, r.RowsFound, r.Inserts)
	}
	if r := runs[runLatency]; r.RowsExpected == 0 || r.RowsFound != r.RowsExpected {
		t.Errorf("%s: rows %d/%d", runLatency, r.RowsExpected, r.RowsFound)
	}
	ratios := map[string]benchRatio{}
	for _, r := range rep.Ratios {
		ratios[r.Run+"/"+r.Baseline] = r
	}
	for _, k := range []string{"raterd/bare", "raterd/naive", "raterd/raterd-nocache", "raterd-warm/bare", "raterd-warm/naive"} {
		if r, ok := ratios[k]; !ok || r.Throughput <= 0 || r.CPUPerRecord <= 0 {
			t.Errorf("ratio %s: %+v (present %v)", k, r, ok)
		}
	}
	if l := rep.Latency; l == nil || l.Samples == 0 || l.Seen != l.Samples || l.P50Seconds <= 0 || l.P99Seconds < l.P50Seconds {
		t.Errorf("latency %+v", rep.Latency)
	}
	if len(rep.Targets) != 5 || len(rep.Problems) != 0 {
		t.Errorf("targets %+v, problems %v", rep.Targets, rep.Problems)
	}
	if data, err := os.ReadFile(profile); err != nil || len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		t.Errorf("--cpuprofile %s: %d bytes, %v; want a gzipped pprof profile", profile, len(data), err)
	}
	checkBenchCleanedUp(t, s, rep.Settings.Topic)
}

// TestBenchSmokeJudgesim runs a short benchmark on a judgesim pool (a process of its own, this test binary re-executed): pool
// requests and utilization are reported, and the naive evaluator gets the same judges.
func TestBenchSmokeJudgesim(t *testing.T) {
	s := testkit.RequireServices(t)
	rep := runBenchJSON(t, s, "--judge", "judgesim", "--records", "600", "--naive-records", "60", "--warm=false", "--latency-duration", "0", "--zipf", "1.2", "--distinct", "200")
	if rep.Settings.Traffic != "zipf" || len(rep.Settings.Evaluators) != 7 || rep.Settings.Simulator == "" || rep.Latency != nil {
		t.Errorf("settings %+v, latency %v", rep.Settings, rep.Latency)
	}
	runs := benchRunsByName(t, rep, runBare, runRaterd, runNoCache, runNaive)
	if _, ok := runs[runWarm]; ok {
		t.Error("--warm=false, yet a warm run")
	}
	for _, name := range []string{runRaterd, runNoCache, runNaive} {
		r := runs[name]
		if r.RowsFound != r.RowsExpected || r.RowsExpected == 0 {
			t.Errorf("%s: rows %d/%d", name, r.RowsExpected, r.RowsFound)
		}
		if r.PoolRequests == 0 || r.PoolUtilization == nil || *r.PoolUtilization <= 0 || r.PoolCapacityPerSec == nil {
			t.Errorf("%s: pool requests %d, utilization %v, capacity %v", name, r.PoolRequests, r.PoolUtilization, r.PoolCapacityPerSec)
		}
	}
	// Zipf traffic repeats prompts: the cache saves model-judge requests.
	if c, o := runs[runRaterd], runs[runNoCache]; *c.PoolRequestsPerRec >= *o.PoolRequestsPerRec {
		t.Errorf("pool requests per record: cache on %.3f, off %.3f; want fewer with the cache", *c.PoolRequestsPerRec, *o.PoolRequestsPerRec)
	}
	if len(rep.Problems) != 0 {
		t.Errorf("problems: %v", rep.Problems)
	}
	checkBenchCleanedUp(t, s, rep.Settings.Topic)
}

// TestBenchSoakShort runs a 3-second soak after a small raterd run: the records are
// generated on the fly, sampled, all done and all stored, and the soak has its target line.
func TestBenchSoakShort(t *testing.T) {
	s := testkit.RequireServices(t)
	rep := runBenchJSON(t, s, "--records", "200", "--baselines=false", "--warm=false", "--latency-duration", "0", "--soak", "3s", "--soak-rate", "200")
	runs := benchRunsByName(t, rep, runRaterd, runSoak)
	if len(runs) != 2 {
		t.Errorf("runs %+v; want %s and %s only", rep.Runs, runRaterd, runSoak)
	}
	sk := rep.Soak
	if sk == nil {
		t.Fatal("no soak in the report")
	}
	if sk.DurationSeconds != 3 || sk.TargetRate != 200 || sk.ChunkRecords != 200 || sk.SampleSeconds != 1 {
		t.Errorf("soak settings %+v", sk)
	}
	// The first sample is taken when the paced producer starts, the last when it stops.
	if len(sk.Samples) < 2 {
		t.Fatalf("%d samples, want at least 2: %+v", len(sk.Samples), sk.Samples)
	}
	for i, x := range sk.Samples {
		if x.RSSBytes <= 0 || x.HeapBytes <= 0 || x.LiveHeapBytes <= 0 || x.Done > x.Produced || (i > 0 && x.Produced < sk.Samples[i-1].Produced) {
			t.Errorf("sample %d: %+v", i, x)
		}
	}
	if sk.Produced < 2 || sk.Done != sk.Produced || sk.Backlog != sk.Produced-sk.DoneAtEnd || sk.RowsExpected == 0 || sk.RowsFound != sk.RowsExpected {
		t.Errorf("soak: produced %d, done %d (%d at the end, backlog %d), rows %d/%d; want all done and stored",
			sk.Produced, sk.Done, sk.DoneAtEnd, sk.Backlog, sk.RowsExpected, sk.RowsFound)
	}
	if sk.PeakRSSBytes <= 0 || sk.Flatness.Samples != len(sk.Samples) || sk.Flatness.Verdict == "" {
		t.Errorf("soak peak %d, flatness %+v", sk.PeakRSSBytes, sk.Flatness)
	}
	if r := runs[runSoak]; r.Records != sk.Produced || r.RowsFound != sk.RowsFound || r.PeakRSSBytes != sk.PeakRSSBytes {
		t.Errorf("%s run %+v does not match the soak %+v", runSoak, r, sk)
	}
	var soakTargets int
	for _, tg := range rep.Targets {
		if strings.Contains(tg.Target, "flat over the soak") {
			soakTargets++
		}
	}
	if soakTargets != 1 || len(rep.Problems) != 0 {
		t.Errorf("targets %+v (want one soak target), problems %v", rep.Targets, rep.Problems)
	}
	checkBenchCleanedUp(t, s, rep.Settings.Topic)
	checkBenchCleanedUp(t, s, rep.Settings.Topic+"-soak")
}

// TestBenchOTLPFormat runs a short benchmark with --format otlp_proto: the same valid
// records as OTLP exports on a second topic, consumed by raterd-otlp_proto, which must find
// every row the raterd run found, skip the non-GenAI spans and report its ratio.
func TestBenchOTLPFormat(t *testing.T) {
	s := testkit.RequireServices(t)
	rep := runBenchJSON(t, s, "--records", "300", "--format", "otlp_proto", "--spans-per-message", "32",
		"--baselines=false", "--warm=false", "--latency-duration", "0")
	name := otlpRunName(benchFormatOTLPProto)
	runs := benchRunsByName(t, rep, runRaterd, name)
	tr, ot := rep.Traffic, rep.Traffic.OTLP
	if ot == nil || rep.Settings.Format != benchFormatOTLPProto || rep.Settings.SpansPerMessage != 32 {
		t.Fatalf("settings %+v, otlp traffic %v", rep.Settings, ot)
	}
	wantMsgs := (tr.Valid + 7) / 8 // 8 traces of 4 spans per export
	if ot.Records != tr.Valid || ot.InvalidLeftOut != tr.Invalid || ot.Messages != wantMsgs || ot.Spans != otlpSpansPerTrace*tr.Valid {
		t.Errorf("otlp traffic %+v; want %d records in %d messages", ot, tr.Valid, wantMsgs)
	}
	main, o := runs[runRaterd], runs[name]
	if o.Records != int64(tr.Valid) || o.Valid != int64(tr.Valid) || o.Messages != int64(wantMsgs) || o.DeadLetters != 0 ||
		o.Skipped != int64(ot.Spans-tr.Valid) || o.SpansPerMessage != ot.SpansPerMessage {
		t.Errorf("%s: records %d valid %d messages %d dead %d skipped %d spans/message %g", name, o.Records, o.Valid, o.Messages, o.DeadLetters, o.Skipped, o.SpansPerMessage)
	}
	if o.RowsExpected != main.RowsExpected || o.RowsFound != o.RowsExpected || o.RowsExpected == 0 {
		t.Errorf("%s: rows %d/%d; want the %s run's %d, all found", name, o.RowsExpected, o.RowsFound, runRaterd, main.RowsExpected)
	}
	if o.RecordsPerSecond <= 0 || o.CPUMicrosPerRecord <= 0 || o.PeakRSSBytes <= 0 {
		t.Errorf("%s: a figure is missing: %+v", name, o)
	}
	var ratio *benchRatio
	for i, r := range rep.Ratios {
		if r.Run == name && r.Baseline == runRaterd {
			ratio = &rep.Ratios[i]
		}
	}
	if ratio == nil || ratio.Throughput <= 0 || ratio.CPUPerRecord <= 0 {
		t.Errorf("ratio %s/%s: %+v", name, runRaterd, ratio)
	}
	if len(rep.Problems) != 0 {
		t.Errorf("problems: %v", rep.Problems)
	}
	checkBenchCleanedUp(t, s, rep.Settings.Topic)
	checkBenchCleanedUp(t, s, ot.Topic)
}

// TestBenchSASLSSL runs a short benchmark over the dev broker's SASL_SSL listener with
// SCRAM-SHA-512, its connection read from --config (kafka.brokers, kafka.tls, kafka.sasl
// with a password file): the producers, the topic admin, both baselines, the raterd runs,
// the latency and the soak run's producer all connect through it.
func TestBenchSASLSSL(t *testing.T) {
	s := testkit.RequireServices(t)
	k := testkit.RequireKafkaSecure(t)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "kafka-password")
	if err := os.WriteFile(pwFile, []byte(k.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "raterd.yaml")
	cfgText := fmt.Sprintf(`kafka:
  brokers: [%q]
  topics: [traffic]
  tls: {ca_file: %q}
  sasl: {mechanism: SCRAM-SHA-512, username: %q, password_file: %q}
judges:
  checks: {type: heuristic}
evaluators:
  - {name: refusal, judge: checks, check: refusal}
scores_file: %q
`, k.SASLSSL, k.CA, k.User, pwFile, filepath.Join(dir, "scores.ndjson"))
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "--json", "--config", cfgFile, "--redis", s.Redis, "--clickhouse", s.ClickHouse,
		"--records", "300", "--naive-records", "50", "--warm=false", "--latency-duration", "1s", "--soak", "1s", "--soak-rate", "100"}
	code := runMain(args, &stdout, &stderr)
	t.Logf("raterd %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
	if code != 0 {
		t.Fatalf("exit %d; stdout:\n%s", code, stdout.String())
	}
	if strings.Contains(stdout.String()+stderr.String(), k.Password) {
		t.Error("the SASL password is in the output")
	}
	var rep benchReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("--json output does not decode: %v\n%s", err, stdout.String())
	}
	runs := benchRunsByName(t, &rep, runBare, runRaterd, runNoCache, runNaive, runLatency, runSoak)
	for _, name := range []string{runBare, runRaterd, runNoCache} {
		if r := runs[name]; r.Records != 300 {
			t.Errorf("%s: %d records, want 300", name, r.Records)
		}
	}
	if r := runs[runRaterd]; r.RowsExpected == 0 || r.RowsFound != r.RowsExpected {
		t.Errorf("%s: rows %d/%d", runRaterd, r.RowsFound, r.RowsExpected)
	}
	if len(rep.Problems) != 0 {
		t.Errorf("problems %v", rep.Problems)
	}
	checkBenchCleanedUp(t, s, rep.Settings.Topic)

	// A wrong password ends the benchmark at once, naming the key.
	bad := strings.Replace(cfgText, "password_file: "+strconv.Quote(pwFile), "password: not-the-password", 1)
	if err := os.WriteFile(cfgFile, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	start := time.Now()
	if code := runMain(args, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "kafka.sasl.password:") {
		t.Errorf("wrong password: exit %d, stderr:\n%s\nwant a failure naming kafka.sasl.password", code, stderr.String())
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("wrong password: failed after %s", took)
	}
}

// TestBenchRedact runs a short judgesim benchmark with --redact all: the raterd-redact
// run stores every row on the same records and the report compares it with raterd.
func TestBenchRedact(t *testing.T) {
	s := testkit.RequireServices(t)
	rep := runBenchJSON(t, s, "--records", "300", "--judge", "judgesim", "--redact", "all", "--baselines=false", "--warm=false", "--latency-duration", "0")
	runs := benchRunsByName(t, rep, runRaterd, runRedact)
	if len(rep.Settings.Redact) != 1 || rep.Settings.Redact[0] != "all" {
		t.Errorf("settings redact %v", rep.Settings.Redact)
	}
	main, red := runs[runRaterd], runs[runRedact]
	if red.Records != main.Records || red.RowsExpected != main.RowsExpected || red.RowsFound != red.RowsExpected || red.CPUMicrosPerRecord <= 0 {
		t.Errorf("%s %+v against %s %+v", runRedact, red, runRaterd, main)
	}
	found := false
	for _, r := range rep.Ratios {
		found = found || r.Run == runRedact && r.Baseline == runRaterd && r.CPUPerRecord > 0 && r.Throughput > 0
	}
	if !found || len(rep.Problems) != 0 {
		t.Errorf("ratios %+v, problems %v; want %s/%s", rep.Ratios, rep.Problems, runRedact, runRaterd)
	}
	checkBenchCleanedUp(t, s, rep.Settings.Topic)
}

// TestBenchPoolsSmoke runs the judge-pool benchmark on one small pool of the vLLM profile
// (a judgesim process per client, this test binary re-executed): every client judged its
// records without failures, the servers' prefix caches saved raterd prefill, the half-load run
// sampled records, and every target line is there. Counts only, never speed.
func TestBenchPoolsSmoke(t *testing.T) {
	s := testkit.RequireServices(t)
	rep := runBenchJSON(t, s, "--pools", "2", "--judgesim-profile", "vllm-h100-8b-reasoning", "--pool-records", "40",
		"--pool-baseline-records", "30", "--latency-duration", "2s")
	if len(rep.Pools) != 1 || rep.Pools[0].Endpoints != 2 || rep.Pools[0].Records != 80 {
		t.Fatalf("pools %+v", rep.Pools)
	}
	p := rep.Pools[0]
	var clients []string
	for _, c := range p.Clients {
		clients = append(clients, c.Client)
		if c.Failures != 0 || c.GoodputPerSec <= 0 || c.Utilization <= 0 {
			t.Errorf("%s: %+v", c.Client, c)
		}
		// The baselines' 30 requests all prefill in the servers' first steps, before any
		// prefix is cached; raterd's 80 come in batches.
		if c.Client == poolClientRaterd && c.PrefillSavedShare <= 0 {
			t.Errorf("%s: no prefill saved: %+v", c.Client, c)
		}
	}
	if strings.Join(clients, ",") != poolClientRaterd+","+poolClientFixed+","+poolClientNaive {
		t.Errorf("clients %v", clients)
	}
	if h := p.HalfLoad; h == nil || h.Samples == 0 || h.ServiceSeconds <= 0 {
		t.Errorf("half load %+v", h)
	}
	if len(rep.Targets) != 2 || len(rep.Problems) != 0 {
		t.Errorf("targets %+v, problems %v", rep.Targets, rep.Problems)
	}
}
