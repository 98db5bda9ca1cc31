package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/consumer"
	"raterd/internal/cli"
	"raterd/record"
	"raterd/scorer"
	"raterd/scorer/checks"
)

func TestBenchFlagErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--records", "0"}, "--records"},
		{[]string{"--zipf", "1"}, "--zipf"},
		{[]string{"--zipf", "-2"}, "--zipf"},
		{[]string{"--distinct", "0"}, "--distinct"},
		{[]string{"--invalid", "1"}, "--invalid"},
		{[]string{"--partitions", "0"}, "--partitions"},
		{[]string{"--judge", "gpt"}, "--judge"},
		{[]string{"--naive-records", "0"}, "--naive-records"},
		{[]string{"--latency-duration", "-1s"}, "--latency-duration"},
		{[]string{"--latency-rate", "-5"}, "--latency-rate"},
		{[]string{"--timeout", "0s"}, "--timeout"},
		{[]string{"--soak", "-1s"}, "--soak"},
		{[]string{"--soak", "500ms"}, "--soak"},
		{[]string{"--soak", "10m", "--soak-rate", "0"}, "--soak-rate"},
		{[]string{"--soak-rate", "-5"}, "--soak-rate"},
		{[]string{"--soak-rate", "+Inf"}, "--soak-rate"},
		{[]string{"--soak-rate", "NaN"}, "--soak-rate"},
		{[]string{"--kafka", "nohost"}, "--kafka"},
		{[]string{"--redis", ":6379"}, "--redis"},
		{[]string{"--clickhouse", "localhost"}, "--clickhouse"},
		{[]string{"--judgesim-seqs", "0"}, "--judgesim-seqs"},
		{[]string{"--judgesim-step", "0s"}, "--judgesim-step"},
		{[]string{"--format", "otlp_logs_proto"}, "--format"},
		{[]string{"--format", "OTLP_PROTO"}, "--format"},
		{[]string{"--format", ""}, "--format"},
		{[]string{"--format", "otlp_proto", "--spans-per-message", "3"}, "--spans-per-message"},
		{[]string{"--spans-per-message", "0"}, "--spans-per-message"},
		{[]string{"--spans-per-message", "4097"}, "--spans-per-message"},
		{[]string{"--redact", "all"}, "--redact"},
		{[]string{"--judge", "judgesim", "--redact", "cards"}, "--redact"},
		{[]string{"--judge", "judgesim", "--redact", "email,"}, "--redact"},
		{[]string{"--records"}, "flag needs an argument"},
		{[]string{"extra"}, "Usage: raterd bench"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			// A flag mistake is found before anything connects: no services needed.
			code := runMain(append([]string{"bench"}, tc.args...), &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and a message naming %s", code, stderr.String(), tc.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q; want nothing", stdout.String())
			}
		})
	}
}

func TestBenchHelpListsFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"bench", "--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, f := range []string{"-records", "-zipf", "-judge", "-baselines", "-naive-records", "-json", "-cpuprofile", "-kafka", "-redis", "-clickhouse", "-latency-duration", "-soak", "-soak-rate", "-format", "-spans-per-message", "otlp_proto"} {
		if !strings.Contains(stderr.String(), f) {
			t.Errorf("help lacks %s", f)
		}
	}
}

func TestBenchAddressesDefaultFromTheTestEnvironment(t *testing.T) {
	parse := func(env map[string]string, args ...string) benchOptions {
		t.Helper()
		var o benchOptions
		fs := flag.NewFlagSet("bench", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		registerBenchFlags(fs, &o, func(k string) string { return env[k] })
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := o.validate(); err != nil {
			t.Fatal(err)
		}
		return o
	}
	o := parse(nil)
	if o.kafka != "127.0.0.1:9092" || o.redis != "127.0.0.1:6379" || o.clickhouse != "127.0.0.1:9000" {
		t.Errorf("defaults without environment: %q %q %q", o.kafka, o.redis, o.clickhouse)
	}
	if o.records != 50000 || o.judge != benchJudgeHeuristic || !o.baselines || !o.warm || o.zipf != 0 || o.naiveRecords != 2000 {
		t.Errorf("defaults: %+v", o)
	}
	env := map[string]string{
		"RATERD_TEST_KAFKA": "10.0.0.1:9092", "RATERD_KAFKA_BROKERS": "10.0.0.9:9092",
		"RATERD_REDIS_ADDR":      "10.0.0.2:6379,10.0.0.3:6379",
		"RATERD_TEST_CLICKHOUSE": "10.0.0.4:9000",
	}
	o = parse(env)
	if o.kafka != "10.0.0.1:9092" || o.redis != "10.0.0.2:6379" || o.clickhouse != "10.0.0.4:9000" {
		t.Errorf("from the environment: %q %q %q; want the RATERD_TEST_ names first, then the first of a list", o.kafka, o.redis, o.clickhouse)
	}
	if o = parse(env, "--kafka", "k:1"); o.kafka != "k:1" {
		t.Errorf("--kafka k:1 gave %q", o.kafka)
	}
	if o = parse(nil, "--records", "500", "--naive-records", "2000"); o.naiveRecords != 500 {
		t.Errorf("--naive-records is capped by --records: got %d", o.naiveRecords)
	}
	if o = parse(nil); o.soak != 0 || o.soakRate != 2000 {
		t.Errorf("soak defaults: --soak %s --soak-rate %g; want off and 2000", o.soak, o.soakRate)
	}
	if o = parse(nil, "--soak", "10m", "--soak-rate", "150.5"); o.soak != 10*time.Minute || o.soakRate != 150.5 {
		t.Errorf("--soak 10m --soak-rate 150.5 gave %s, %g", o.soak, o.soakRate)
	}
}

// checkEvaluators returns the six heuristic checks, prepared, as raterd bench configures them.
func checkEvaluators(t *testing.T) []*scorer.Evaluator {
	t.Helper()
	var evals []*scorer.Evaluator
	for _, c := range scorer.HeuristicChecks() {
		if checks.Scope(c) != checks.ScopeRecord {
			continue // the transcript checks judge assembled conversations and traces
		}
		e := &scorer.Evaluator{Name: c, Judge: "checks", Check: c}
		if err := e.Prepare("evaluators["+c+"]", scorer.KindHeuristic); err != nil {
			t.Fatal(err)
		}
		evals = append(evals, e)
	}
	return evals
}

func TestBenchTrafficUniqueHasNoRepeats(t *testing.T) {
	o := benchOptions{distinct: 10000, invalid: 0.01}
	values, info := benchTraffic(o, 1, 3000, "u1")
	if info.Messages != 3000 || info.Invalid != 30 || info.Valid != 2970 {
		t.Fatalf("messages %d, invalid %d, valid %d; want 3000, 30, 2970", info.Messages, info.Invalid, info.Valid)
	}
	if info.DistinctPrompts != info.Valid || info.DistinctPairs != info.Valid || info.DistinctResponses != info.Valid {
		t.Errorf("unique traffic: %d distinct prompts, %d pairs, %d responses for %d valid records", info.DistinctPrompts, info.DistinctPairs, info.DistinctResponses, info.Valid)
	}
	// The marker adds a few characters to trafficgen's 200–4,000 and 200–2,000.
	if info.PromptChars[0] < 200 || info.PromptChars[2] > 4100 || info.ResponseChars[0] < 200 || info.ResponseChars[2] > 2100 {
		t.Errorf("sizes: prompts %v, responses %v", info.PromptChars, info.ResponseChars)
	}
	if info.Models < 3 || info.Apps < 3 {
		t.Errorf("%d models, %d apps; want several", info.Models, info.Apps)
	}
	ids := map[string]bool{}
	for i, v := range values {
		rec, err := consumer.Decode(v, record.Source{Offset: int64(i)}, time.Now(), 0)
		if err != nil {
			continue
		}
		if !strings.HasPrefix(rec.ID, "u1-") || recordID(v) != rec.ID || ids[rec.ID] {
			t.Fatalf("record %d: id %q (recordID %q), want a fresh u1- id", i, rec.ID, recordID(v))
		}
		ids[rec.ID] = true
	}
	again, _ := benchTraffic(o, 1, 3000, "u1")
	if !slices.EqualFunc(values, again, bytes.Equal) {
		t.Error("equal options gave different traffic")
	}
}

func TestBenchTrafficZipfRepeats(t *testing.T) {
	_, info := benchTraffic(benchOptions{zipf: 1.1, distinct: 1000}, 1, 3000, "z")
	if info.Invalid != 0 || info.DistinctPrompts >= info.Valid/2 || info.DistinctPairs != info.DistinctPrompts {
		t.Errorf("zipf traffic: %+v; want repeated prompts, one answer each", info)
	}
}

// TestUniquifyKeepsCheckVerdicts: the markers that make traffic unique must not change
// what the checks find, or unique traffic would measure a different verdict mix.
func TestUniquifyKeepsCheckVerdicts(t *testing.T) {
	values, _ := benchTraffic(benchOptions{zipf: 1.1, distinct: 10000, invalid: 0.01}, 1, 4000, "k")
	j := scorer.NewHeuristicJudge()
	evals := checkEvaluators(t)
	checked := 0
	for i, v := range values {
		a, err := consumer.Decode(v, record.Source{}, time.Now(), 0)
		if err != nil {
			if !bytes.Equal(uniquify(v, i), v) {
				t.Fatalf("message %d: an invalid message was changed", i)
			}
			continue
		}
		b, err := consumer.Decode(uniquify(v, i), record.Source{}, time.Now(), 0)
		if err != nil {
			t.Fatalf("message %d: uniquify broke it: %v", i, err)
		}
		if a.PromptText() == b.PromptText() || a.Response == b.Response {
			t.Fatalf("message %d: prompt or response unchanged", i)
		}
		for _, e := range evals {
			va, _ := j.Judge(context.Background(), []scorer.Task{{Evaluator: e, Record: a}})
			vb, _ := j.Judge(context.Background(), []scorer.Task{{Evaluator: e, Record: b}})
			// repetition's value is the share of repeated 4-grams: a marker moves it a
			// little; its label must stay.
			if va[0].Label != vb[0].Label || (e.Check != "repetition" && va[0].Value != vb[0].Value) {
				t.Errorf("message %d, %s: %s %v → %s %v\n%q\n%q", i, e.Name, va[0].Label, va[0].Value, vb[0].Label, vb[0].Value, a.Response, b.Response)
			}
		}
		checked++
	}
	if checked < 3900 {
		t.Fatalf("only %d valid records checked", checked)
	}
}

func TestUniqueResponsePlacement(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"after the first sentence", "Sure. Open Settings. Then click Reset.", "Sure. (ref 7) Open Settings. Then click Reset."},
		{"outside a fence", "```go\nfmt.Println(1). x\n```\nDone. Bye.", "```go\nfmt.Println(1). x\n```\nDone. (ref 7) Bye."},
		{"fence first, no sentence", "```sql\nSELECT 1\n```", "(ref 7)\n```sql\nSELECT 1\n```"},
		{"first line", "Line one\nline two", "Line one (ref 7)\nline two"},
		{"single line", "One line only", "One line only (ref 7)"},
	} {
		if got := uniqueResponse(tc.in, 7, "7"); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	seen := map[string]bool{}
	for i := range 2000 {
		for _, in := range []string{`{"a": [1, 2]}`, `  [1]`, `42`} {
			out := uniqueResponse(in, i, "x")
			if !json.Valid([]byte(out)) {
				t.Fatalf("%q → %q: not valid JSON", in, out)
			}
			if seen[out] {
				t.Fatalf("%q, record %d: %q repeats an earlier record's", in, i, out)
			}
			seen[out] = true
		}
	}
}

func TestExpectedRowsCountsApplicableEvaluators(t *testing.T) {
	evals := checkEvaluators(t)
	half := &scorer.Evaluator{Name: "half", Judge: "checks", Check: "refusal", SampleRate: new(0.5)}
	if err := half.Prepare("evaluators[half]", scorer.KindHeuristic); err != nil {
		t.Fatal(err)
	}
	evals = append(evals, half)
	var values [][]byte
	want := 0
	for i := range 200 {
		id := fmt.Sprintf("r-%d", i)
		values = append(values, fmt.Appendf(nil, `{"id":%q,"model":"m","prompt":"p","response":"r"}`, id))
		want += 6
		if scorer.InSample(id, 0.5) {
			want++
		}
	}
	values = append(values, []byte(`{"model":"m"`))
	got := expectedRows(evals, values)
	sum := 0
	for _, n := range got {
		sum += n
	}
	if sum != want || got[len(got)-1] != 0 {
		t.Errorf("expected rows %d (last %d); want %d, and 0 for the invalid message", sum, got[len(got)-1], want)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(d, tc.q); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if percentile(nil, 0.5) != 0 || percentile(d[:1], 0.99) != time.Millisecond {
		t.Error("empty or single-sample percentiles")
	}
}

func TestLatencyTracker(t *testing.T) {
	tr := newLatencyTracker()
	tr.want["a"], tr.want["b"], tr.want["c"] = 6, 6, 7
	t0 := time.Unix(1000, 0)
	tr.produced([]string{"a", "x", "b"}, t0)
	tr.produced([]string{"c"}, t0.Add(time.Second))
	if got := tr.pending(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("pending %v; want the produced samples only", got)
	}
	ms := time.Millisecond
	tr.seen(map[string]visibleRows{"a": {6, 1500 * ms}, "b": {5, 0}, "c": {7, 500 * ms}, "x": {6, 0}}, t0.Add(2*time.Second)) // b not complete
	tr.seen(map[string]visibleRows{"a": {6, 0}, "b": {6, 2500 * ms}}, t0.Add(3*time.Second))                                  // a already seen
	if got := tr.pending(); len(got) != 0 {
		t.Fatalf("pending %v after all were seen", got)
	}
	res := tr.result()
	if res.Samples != 3 || res.Seen != 3 || res.P50Seconds != 2 || res.MaxSeconds != 3 {
		t.Errorf("result %+v; want a 2s (a), 3s (b), 1s (c): p50 2s, max 3s", res)
	}
	// Less each one's judge call: a 0.5 s, b 0.5 s, c 0.5 s (its 0.5 s call); a's second
	// sighting (judged 0) must not replace its first.
	if res.AddedP50Seconds != 0.5 || res.AddedP99Seconds != 0.5 {
		t.Errorf("added p50 %.2f, p99 %.2f; want 0.5 s each", res.AddedP50Seconds, res.AddedP99Seconds)
	}
}

func TestParseStatusKB(t *testing.T) {
	status := []byte("Name:\traterd\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t9\n")
	if n, ok := parseStatusKB(status, "VmRSS:"); !ok || n != 100<<20 {
		t.Errorf("VmRSS = %d, %v", n, ok)
	}
	if n, ok := parseStatusKB(status, "VmHWM:"); !ok || n != 200<<20 {
		t.Errorf("VmHWM = %d, %v", n, ok)
	}
	if _, ok := parseStatusKB(status, "Threads:"); ok {
		t.Error("a field without kB parsed as a size")
	}
	if _, ok := parseStatusKB(status, "VmSwap:"); ok {
		t.Error("a missing field parsed")
	}
}

func TestPeakRSSMeasuresThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc/self/status here")
	}
	p := startPeakRSS()
	buf := make([]byte, 64<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1 // touch every page
	}
	time.Sleep(50 * time.Millisecond)
	peak, how := p.stop()
	if peak < 64<<20 || how == "" {
		t.Errorf("peak %d (%s) while holding 64 MiB", peak, how)
	}
	if again, _ := p.stop(); again != peak {
		t.Error("a second stop changed the result")
	}
	buf[0] = 2
}

func TestSQLStringsQuotes(t *testing.T) {
	if got := sqlStrings([]string{"a-1", `o'r\x`}); got != `'a-1','o\'r\\x'` {
		t.Errorf("sqlStrings = %s", got)
	}
}

// recordingJudge answers every task with its own name and records each call's tasks.
type recordingJudge struct {
	name  string
	calls *[][]string
	err   error
}

func (j recordingJudge) Identity() string { return "rec:" + j.name }

func (j recordingJudge) Judge(_ context.Context, tasks []scorer.Task) ([]scorer.Verdict, error) {
	if j.err != nil {
		return nil, j.err
	}
	var names []string
	out := make([]scorer.Verdict, len(tasks))
	for i, t := range tasks {
		names = append(names, t.Evaluator.Name)
		out[i] = scorer.Verdict{Label: j.name + "/" + t.Evaluator.Name}
	}
	*j.calls = append(*j.calls, names)
	return out, nil
}

func TestRouteJudgeCallsEachJudgeOnceInOrder(t *testing.T) {
	var calls [][]string
	rj := routeJudge{judges: map[string]scorer.Judge{
		"checks": recordingJudge{name: "checks", calls: &calls},
		"sim":    recordingJudge{name: "sim", calls: &calls},
	}}
	rec := &record.Record{ID: "r"}
	tasks := []scorer.Task{
		{Evaluator: &scorer.Evaluator{Name: "refusal", Judge: "checks"}, Record: rec},
		{Evaluator: &scorer.Evaluator{Name: "help", Judge: "sim"}, Record: rec},
		{Evaluator: &scorer.Evaluator{Name: "pii", Judge: "checks"}, Record: rec},
		{Evaluator: &scorer.Evaluator{Name: "ghost", Judge: "missing"}, Record: rec},
	}
	vs, err := rj.Judge(context.Background(), tasks)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, v := range vs[:3] {
		labels = append(labels, v.Label)
	}
	if !slices.Equal(labels, []string{"checks/refusal", "sim/help", "checks/pii"}) || vs[3].Err == nil {
		t.Errorf("verdicts %v, last err %v; want them in task order and an error for the unknown judge", labels, vs[3].Err)
	}
	if len(calls) != 2 || !slices.Equal(calls[0], []string{"refusal", "pii"}) || !slices.Equal(calls[1], []string{"help"}) {
		t.Errorf("calls %v; want one per judge", calls)
	}
	if id := rj.Identity(); id != "rec:checks+rec:sim" {
		t.Errorf("identity %q", id)
	}
	boom := errors.New("context ended")
	rj.judges["sim"] = recordingJudge{name: "sim", calls: &calls, err: boom}
	if _, err := rj.Judge(context.Background(), tasks); !errors.Is(err, boom) {
		t.Errorf("a failed judge call gave %v", err)
	}
}

// sampleReport is a report as a heuristic run over unique traffic produces it.
func sampleReport() *benchReport {
	run := func(name string, records int64, elapsed, cpu time.Duration) benchRun {
		r := benchRun{Name: name, Records: records, elapsed: elapsed, startupTime: 100 * time.Millisecond}
		r.cpu.User = cpu
		r.fillRates()
		return r
	}
	bare := run(runBare, 10000, time.Second, 100*time.Millisecond)     // 10000/s, 10 µs
	main := run(runRaterd, 10000, 4*time.Second, 250*time.Millisecond) // 2500/s, 25 µs
	main.RowsExpected, main.RowsFound = 59400, 59400
	main.JudgeTasksPerRecord, main.CacheRoundTripsPerBatch, main.RowsPerInsert = ptr(5.94), ptr(2.0), ptr(9900.0)
	main.PeakRSSBytes, main.RSSMethod = 120<<20, "VmHWM after clear_refs"
	warm := run(runWarm, 10000, 2*time.Second, 150*time.Millisecond) // 15 µs
	naive := run(runNaive, 1000, 20*time.Second, 2*time.Second)      // 50/s, 2000 µs
	nocache := run(runNoCache, 10000, 5*time.Second, 300*time.Millisecond)
	rep := &benchReport{
		Version:  "dev",
		Settings: benchSettings{Records: 10000, Traffic: "unique", Judge: benchJudgeHeuristic, Evaluators: []string{"refusal"}},
		Runs:     []benchRun{bare, main, warm, nocache, naive},
		Latency:  &benchLatency{Samples: 10, Seen: 10, P50Seconds: 1.1, P99Seconds: 2.5, AchievedRate: 1250, TargetRate: 1250, RateBasis: "half"},
	}
	rep.Ratios = benchRatios(rep.Runs)
	rep.Targets = benchTargets(rep)
	return rep
}

func TestBenchRatiosAndTargets(t *testing.T) {
	rep := sampleReport()
	find := func(run, base string) benchRatio {
		for _, r := range rep.Ratios {
			if r.Run == run && r.Baseline == base {
				return r
			}
		}
		t.Fatalf("no ratio %s/%s in %+v", run, base, rep.Ratios)
		return benchRatio{}
	}
	if r := find(runRaterd, runBare); r.Throughput != 0.25 || r.CPUPerRecord != 2.5 || r.Note != "" {
		t.Errorf("raterd/bare %+v", r)
	}
	if r := find(runRaterd, runNaive); r.Throughput != 50 || r.Note == "" {
		t.Errorf("raterd/naive %+v; want 50× and a note that naive ran fewer records", r)
	}
	find(runRaterd, runNoCache)
	find(runWarm, runBare)
	verdicts := map[string]string{}
	for _, tg := range rep.Targets {
		verdicts[tg.Target[:12]] = tg.Verdict
	}
	want := map[string]string{"CPU/record w": "met", "throughput a": "met", "peak RSS und": "met", "end-to-end p": "met"}
	for k, v := range want {
		if verdicts[k] != v {
			t.Errorf("target %q: %q, want %q (all: %+v)", k, verdicts[k], v, rep.Targets)
		}
	}
	if len(rep.Targets) != 5 {
		t.Errorf("%d targets, want 5", len(rep.Targets))
	}
	// The unique-traffic CPU target is not judged on Zipf traffic.
	rep.Settings.Traffic = "zipf"
	if tg := benchTargets(rep)[0]; !strings.HasPrefix(tg.Verdict, "not measured") {
		t.Errorf("zipf traffic: %+v", tg)
	}
}

func TestPrintBenchReport(t *testing.T) {
	rep := sampleReport()
	rep.Notes = []string{"a note"}
	var out bytes.Buffer
	printBenchReport(&out, rep)
	for _, want := range []string{"records/s", "CPU µs/rec", "rows exp/found", "59400/59400", "raterd-warm", "ratios (run ÷ baseline)", "2.50×", "p99 2.500 s", "targets (issue 8)", "a note"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	runs := back["runs"].([]any)
	main := runs[1].(map[string]any)
	if main["name"] != runRaterd || main["records_per_s"].(float64) != 2500 || main["cpu_us_per_record"].(float64) != 25 || main["cache_round_trips_per_batch"].(float64) != 2 {
		t.Errorf("JSON run: %v", main)
	}
	if _, ok := runs[0].(map[string]any)["cache_round_trips_per_batch"]; ok {
		t.Error("bare has no cache, but its JSON has cache_round_trips_per_batch")
	}
}

func TestSoakFlatness(t *testing.T) {
	const mib = 1 << 20
	series := func(xs ...int64) []int64 {
		for i := range xs {
			xs[i] *= mib
		}
		return xs
	}
	for _, tc := range []struct {
		name    string
		rss     []int64
		verdict string
		middle  int64 // MiB
		last    int64 // MiB
	}{
		{"none", nil, soakTooFew, 0, 0},
		{"too few", series(100, 200, 300, 400, 500), soakTooFew, 0, 0},
		// A warm-up in the first third does not count.
		{"flat after warm-up", series(40, 120, 200, 210, 205, 200, 215, 210, 200), soakFlat, 205, 210},
		// The GC's sawtooth moves single samples by far more than 10%.
		{"sawtooth", series(150, 250, 160, 240, 150, 260, 170, 230, 160, 250, 150, 240), soakFlat, 200, 200},
		{"at the threshold", series(100, 100, 100, 100, 110, 110), soakFlat, 100, 110},
		{"just over", series(100, 100, 100, 100, 111, 111), soakGrowing, 100, 111},
		{"growing steadily", series(100, 120, 140, 160, 180, 200, 220, 240, 260), soakGrowing, 180, 240},
		{"shrinking", series(300, 300, 300, 300, 200, 200), soakFlat, 300, 200},
		{"not measured", series(0, 0, 0, 0, 0, 0), soakTooFew, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := soakFlatnessOf(tc.rss, soakFlatGrowth)
			if f.Verdict != tc.verdict || f.MiddleBytes != tc.middle*mib || f.LastBytes != tc.last*mib || f.Samples != len(tc.rss) || f.Threshold != soakFlatGrowth {
				t.Errorf("%+v; want %s, medians %d → %d MiB", f, tc.verdict, tc.middle, tc.last)
			}
			if tc.verdict != soakTooFew && math.Abs(f.Growth-(float64(tc.last)/float64(tc.middle)-1)) > 1e-9 {
				t.Errorf("growth %g", f.Growth)
			}
		})
	}
}

func TestMedianBytes(t *testing.T) {
	for _, tc := range []struct {
		xs   []int64
		want int64
	}{{nil, 0}, {[]int64{5}, 5}, {[]int64{9, 1, 5}, 5}, {[]int64{4, 1, 3, 2}, 2}, {[]int64{10, 20}, 15}} {
		in := slices.Clone(tc.xs)
		if got := medianBytes(tc.xs); got != tc.want {
			t.Errorf("medianBytes(%v) = %d, want %d", tc.xs, got, tc.want)
		}
		if !slices.Equal(in, tc.xs) {
			t.Errorf("medianBytes reordered its argument: %v", tc.xs)
		}
	}
}

func TestSoakIntervalAndChunk(t *testing.T) {
	for d, want := range map[time.Duration]time.Duration{
		3 * time.Second: time.Second, time.Minute: time.Second, 10 * time.Minute: 10 * time.Second, time.Hour: time.Minute,
	} {
		if got := soakInterval(d); got != want {
			t.Errorf("soakInterval(%s) = %s, want %s", d, got, want)
		}
	}
	for rate, want := range map[float64]int{1: 100, 200: 200, 999.5: 1000, 2000: 2000, 1e6: soakChunkMax} {
		if got := soakChunkSize(rate); got != want {
			t.Errorf("soakChunkSize(%g) = %d, want %d", rate, got, want)
		}
	}
}

// TestSoakGenerateChunks: the chunks are generated on demand, never share an id, a prompt
// or a response, and carry each message's expected rows.
func TestSoakGenerateChunks(t *testing.T) {
	o := benchOptions{distinct: 10000, invalid: 0.01, seed: 1}
	evals := checkEvaluators(t)
	ctx, cancel := context.WithCancel(context.Background())
	chunks := make(chan soakChunk, 1)
	done := make(chan struct{})
	go func() { defer close(done); soakGenerate(ctx, o, evals, 300, "sx", chunks) }()
	ids, prompts, responses, keys := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for k := range 3 {
		c := <-chunks
		if len(c.msgs) != 300 || len(c.rows) != 300 {
			t.Fatalf("chunk %d: %d messages, %d row counts; want 300", k, len(c.msgs), len(c.rows))
		}
		values := make([][]byte, len(c.msgs))
		for i, m := range c.msgs {
			values[i] = m.Value
			if keys[string(m.Key)] {
				t.Fatalf("chunk %d: key %s repeats", k, m.Key)
			}
			keys[string(m.Key)] = true
		}
		if want := expectedRows(evals, values); !slices.Equal(c.rows, want) {
			t.Errorf("chunk %d: rows %v, want %v", k, c.rows, want)
		}
		for i, v := range values {
			rec, err := consumer.Decode(v, record.Source{Offset: int64(i)}, time.Now(), 0)
			if err != nil {
				continue
			}
			if !strings.HasPrefix(rec.ID, fmt.Sprintf("sx-%d-", k)) || ids[rec.ID] || prompts[rec.PromptText()] || responses[rec.Response] {
				t.Fatalf("chunk %d record %d: id %q repeats or lacks its chunk's prefix, or its prompt or response repeats", k, i, rec.ID)
			}
			ids[rec.ID], prompts[rec.PromptText()], responses[rec.Response] = true, true, true
		}
	}
	cancel()
	<-done // the generator stops when its context ends
}

// soakReport is sampleReport with a 10-minute soak of 60 samples.
func soakReport(rss func(i int) int64) *benchReport {
	rep := sampleReport()
	s := &benchSoak{DurationSeconds: 600, TargetRate: 2000, AchievedRate: 1999, ChunkRecords: 2000, Produced: 1199401,
		DoneAtEnd: 1197000, Backlog: 2401, KeptUp: true, Done: 1199401, RowsExpected: 7000000, RowsFound: 7000000,
		SampleSeconds: 10, PeakRSSBytes: 250 << 20, RSSMethod: "VmHWM after clear_refs"}
	for i := range 61 {
		s.Samples = append(s.Samples, soakSample{Seconds: float64(10 * i), Produced: int64(20000 * i), Done: int64(19000 * i),
			RSSBytes: rss(i), HeapBytes: 100 << 20, LiveHeapBytes: 60 << 20})
	}
	(&bencher{}).judgeSoak(s)
	rep.Soak = s
	rep.Targets = benchTargets(rep)
	return rep
}

func TestSoakTarget(t *testing.T) {
	flat := func(int) int64 { return 200 << 20 }
	growing := func(i int) int64 { return int64(100+3*i) << 20 }
	for _, tc := range []struct {
		name    string
		rep     *benchReport
		edit    func(*benchSoak)
		verdict string
	}{
		{"flat and under", soakReport(flat), nil, "met"},
		{"flat and over", soakReport(flat), func(s *benchSoak) { s.PeakRSSBytes = 301 << 20 }, "missed"},
		{"growing", soakReport(growing), nil, "missed"},
		{"too short", soakReport(flat), func(s *benchSoak) { s.Samples = s.Samples[:4]; (&bencher{}).judgeSoak(s) }, "not measured"},
		{"stopped early", soakReport(flat), func(s *benchSoak) { s.Stopped = "context canceled" }, "not measured: the soak stopped early"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.edit != nil {
				tc.edit(tc.rep.Soak)
			}
			targets := benchTargets(tc.rep)
			if len(targets) != 6 {
				t.Fatalf("%d targets, want the five and the soak's: %+v", len(targets), targets)
			}
			tg := targets[5]
			if !strings.Contains(tg.Target, "flat over the soak") || !strings.HasPrefix(tg.Verdict, tc.verdict) || !strings.Contains(tg.Measured, "backlog 2401") {
				t.Errorf("%+v; want verdict %s and the backlog", tg, tc.verdict)
			}
		})
	}
	rep := soakReport(flat)
	rep.Soak.KeptUp = false
	if tg := benchTargets(rep)[5]; !strings.Contains(tg.Measured, "fell behind") {
		t.Errorf("a soak that fell behind: %+v", tg)
	}
}

func TestPrintBenchReportSoak(t *testing.T) {
	rep := soakReport(func(i int) int64 { return int64(200+i%2) << 20 })
	var out bytes.Buffer
	printBenchReport(&out, rep)
	for _, want := range []string{"soak: 10m0s at 1999 records/s (target 2000)", "backlog 2401", "kept up", "→ flat", "live heap MiB", "1200000", "1140000", "flat over the soak"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Soak struct {
			Samples  []map[string]float64 `json:"samples"`
			Backlog  int64                `json:"backlog"`
			Flatness struct {
				Verdict string `json:"verdict"`
			} `json:"flatness"`
		} `json:"soak"`
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Soak.Samples) != 61 || back.Soak.Backlog != 2401 || back.Soak.Flatness.Verdict != soakFlat || back.Soak.Samples[60]["rss_bytes"] != 200<<20 {
		t.Errorf("JSON soak: %d samples, backlog %d, verdict %q", len(back.Soak.Samples), back.Soak.Backlog, back.Soak.Flatness.Verdict)
	}
}

// closedReader is a fake Kafka reader that is already closed: the pipeline's Run returns
// at once with an error, as it does when its reader fails.
type closedReader struct{}

func (closedReader) FetchMessage(context.Context) (kafka.Message, error) {
	return kafka.Message{}, io.EOF
}
func (closedReader) CommitMessages(context.Context, ...kafka.Message) error { return nil }

// nopStages are fake scorer and sinks that accept everything.
type nopStages struct{}

func (nopStages) Score(context.Context, []*record.Record) ([]record.Score, error) { return nil, nil }
func (nopStages) WriteScores(context.Context, []record.Score) error               { return nil }
func (nopStages) WriteDeadLetters(context.Context, []record.DeadLetter) error     { return nil }

// A pipeline that stops on its own is reported by waitDone as stopped, and stopping the
// run afterwards returns Run's error instead of waiting for a result already taken.
func TestWaitDoneReportsAPipelineThatStoppedAndStopStillReturns(t *testing.T) {
	cfg := consumer.Config{Brokers: []string{"x:1"}, Topics: []string{"t"}, GroupID: "g"}
	if err := cfg.Validate("kafka"); err != nil {
		t.Fatal(err)
	}
	p, err := consumer.New(cfg, closedReader{}, nopStages{}, nopStages{}, nopStages{}, consumer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := &bencher{o: benchOptions{timeout: time.Minute, quiet: true}, progress: io.Discard}
	run := startRun(context.Background(), p)
	_, _, err = b.waitDone(context.Background(), "test", p, 10, time.Now(), run)
	if !errors.Is(err, errPipelineStopped) {
		t.Fatalf("waitDone: %v, want errPipelineStopped", err)
	}
	done := make(chan error, 1)
	go func() { done <- run.stop() }()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, io.EOF) {
			t.Errorf("stop: %v, want Run's reader error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("stop hung after the pipeline had stopped on its own")
	}
	if err := run.stop(); err == nil {
		t.Error("a second stop lost Run's error")
	}
}

// runMain runs `raterd bench …` the way the raterd command does (Main, then cli.Exit),
// so that these tests see the exit status and messages a user sees.
func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "bench" {
		panic("runMain: args must start with \"bench\"")
	}
	return cli.Exit(args[0], Main(args[1:], stdout, stderr), stderr)
}

// TestBenchKafkaConnection: without --config the benchmark connects to --kafka in
// plaintext; with it, with the file's kafka.tls and kafka.sasl (the password from
// RATERD_KAFKA_SASL_PASSWORD too), to its brokers unless --kafka is given, and every raterd
// run's config gets the same connection.
func TestBenchKafkaConnection(t *testing.T) {
	o := benchOptions{kafka: "127.0.0.1:9092", redis: "127.0.0.1:6379", clickhouse: "127.0.0.1:9000"}
	c, err := kafkaConnection(o, func(string) string { return "" })
	if err != nil || c.Secured() || len(c.Brokers) != 1 || c.Brokers[0] != "127.0.0.1:9092" {
		t.Fatalf("plain: %+v, %v", c, err)
	}
	dir := t.TempDir()
	o.config = filepath.Join(dir, "raterd.yaml")
	text := `kafka:
  brokers: ["b1:9094", "b2:9094"]
  topics: [traffic]
  tls: {min_version: "1.3"}
  sasl: {mechanism: SCRAM-SHA-256, username: svc}
judges:
  checks: {type: heuristic}
evaluators:
  - {name: refusal, judge: checks, check: refusal}
scores_file: ` + filepath.Join(dir, "scores.ndjson") + "\n"
	if err := os.WriteFile(o.config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := kafkaConnection(o, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "--config") || !strings.Contains(err.Error(), "kafka.sasl.password") {
		t.Errorf("no password: %v; want an error naming --config and kafka.sasl.password", err)
	}
	env := func(k string) string {
		if k == "RATERD_KAFKA_SASL_PASSWORD" {
			return "pw"
		}
		return ""
	}
	c, err = kafkaConnection(o, env)
	if err != nil || !c.Secured() || strings.Join(c.Brokers, ",") != "b1:9094,b2:9094" || c.SASL.Mechanism != "SCRAM-SHA-256" {
		t.Fatalf("--config: %+v, %v", c, err)
	}
	if tr := c.Transport(); tr.TLS == nil || tr.TLS.MinVersion != tls.VersionTLS13 || tr.SASL == nil || tr.SASL.Name() != "SCRAM-SHA-256" {
		t.Errorf("transport TLS %v SASL %v", tr.TLS, tr.SASL)
	}
	o.kafkaSet = true
	if c, err = kafkaConnection(o, env); err != nil || strings.Join(c.Brokers, ",") != "127.0.0.1:9092" || !c.Secured() {
		t.Errorf("--kafka with --config: %+v, %v; want --kafka's broker with the file's connection", c.Brokers, err)
	}
	b := &bencher{o: o, kafka: c, topic: "raterd-bench-x"}
	cfg, err := b.config(b.topic, "g", "db", "p:", false, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr := cfg.Kafka.Transport(); tr.TLS == nil || tr.SASL == nil || strings.Join(cfg.Kafka.Brokers, ",") != "127.0.0.1:9092" {
		t.Errorf("raterd run config: brokers %v, TLS %v, SASL %v; want the benchmark's connection", cfg.Kafka.Brokers, tr.TLS, tr.SASL)
	}
}

// TestBenchRedactConfig: --redact sets scoring.redact on the raterd-redact run's config,
// which masks what the judgesim evaluator reads and leaves the built-in checks alone; the
// other runs have none; the report compares raterd-redact with raterd.
func TestBenchRedactConfig(t *testing.T) {
	o := benchOptions{kafka: "127.0.0.1:9092", redis: "127.0.0.1:6379", clickhouse: "127.0.0.1:9000", judge: benchJudgeSim, redact: "email, card"}
	types, err := o.redactTypes()
	if err != nil || !slices.Equal(types, []string{"email", "card"}) {
		t.Fatalf("redactTypes: %v, %v", types, err)
	}
	b := &bencher{o: o, kafka: consumer.Config{Brokers: []string{o.kafka}}, simURLs: []string{"http://127.0.0.1:1/v1"}}
	for _, tc := range []struct {
		types []string
		want  bool
	}{{nil, false}, {types, true}, {[]string{"all"}, true}} {
		cfg, err := b.config("t", "g", "db", "p:", true, "", tc.types)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Scoring.Redact != nil && !cfg.Scoring.Redact.Off; got != tc.want {
			t.Errorf("types %v: scoring.redact %+v, want on %v", tc.types, cfg.Scoring.Redact, tc.want)
		}
	}
	r := benchRatios([]benchRun{
		{Name: runRaterd, Records: 100, RecordsPerSecond: 1000, CPUMicrosPerRecord: 200},
		{Name: runRedact, Records: 100, RecordsPerSecond: 800, CPUMicrosPerRecord: 250},
	})
	if len(r) != 1 || r[0].Run != runRedact || r[0].Baseline != runRaterd || r[0].CPUPerRecord != 1.25 || r[0].Throughput != 0.8 {
		t.Errorf("ratios %+v; want %s/%s: throughput 0.8, CPU per record 1.25", r, runRedact, runRaterd)
	}
}
