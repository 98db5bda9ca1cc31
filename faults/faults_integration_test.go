// Package faults is raterd's fault-injection suite: real raterd processes drain a topic
// while their services fail under them, and the outcome is counted exactly.
package faults

// Each scenario produces a fresh topic of drainRecords records (about 1% invalid), runs
// the real raterd binary on it against the private stack (stack_test.go), injects one
// fault mid-drain, waits until the group's committed offsets reach the end, stops raterd
// with SIGTERM and checks:
//   - every valid record has exactly one row per evaluator in scores FINAL;
//   - every invalid record is dead-lettered exactly once (distinct source offsets, in the
//     dead_letters table and on the dead-letter topic);
//   - no raterd process exited with an error except the ones killed on purpose;
//   - the committed offsets reached the end of every partition.
// A negative control runs a raterd built to commit offsets before writing
// (consumer/negative_control_on.go) through a kill -9; the suite must catch it.
//
// Run it alone with scripts/faults.sh, which also rewrites the table in
// docs/reliability.md (-reliability-doc).

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"raterd/internal/judgesim"
	"raterd/internal/telemetry"
	"raterd/internal/testkit"
	"raterd/sinks/clickhouse"
	sinkkafka "raterd/sinks/kafka"
)

var reliabilityDoc = flag.String("reliability-doc", "", "rewrite the fault table in this markdown file (docs/reliability.md)")

const (
	partitions   = 4
	invalidEvery = 97 // one invalid record in 97
	// drainTimeout bounds one scenario's drain after its fault.
	drainTimeout = 4 * time.Minute
)

// drainRecords is how many records each scenario drains: 50,000 unless
// RATERD_FAULTS_RECORDS asks for fewer while developing.
func drainRecords(t *testing.T) int {
	if s := os.Getenv("RATERD_FAULTS_RECORDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1000 {
			t.Fatalf("RATERD_FAULTS_RECORDS=%q: want a number of at least 1000", s)
		}
		return n
	}
	return 50_000
}

// checkEvaluators (evaluator name, heuristic check) apply to every valid record: no
// match rules, no sampling.
var checkEvaluators = [][2]string{{"refusal", "refusal"}, {"pii", "pii"}, {"json_validity", "json"}, {"truncated", "truncated"}, {"repetition", "repetition"}}

// traffic returns n record values and how many of them are invalid. Prompts and answers
// repeat (600 distinct pairs), as live traffic does, so the cache has work too.
func traffic(prefix string, n int) (values [][]byte, invalid int) {
	bad := []string{
		`{"model":"m","response":"unterminated`,
		`{"response":"no model here"}`,
		"{\"model\":\"m\",\"response\":\"bad \xff utf8\"}",
		`[1,2,3]`,
	}
	answers := make([]string, 40)
	for i := range answers {
		switch i % 5 {
		case 0:
			answers[i] = fmt.Sprintf("I'm sorry, but I can't help with request type %d.", i)
		case 1:
			answers[i] = fmt.Sprintf(`{"ticket": %d, "status": "open", "owner": "Ada"}`, i)
		case 2:
			answers[i] = fmt.Sprintf("Write to support%d@example.com or call +1 415 555 01%02d for help.", i, i)
		case 3:
			answers[i] = strings.Repeat(fmt.Sprintf("Step %d: open Settings, choose Security, click Reset. ", i), 4)
		default:
			answers[i] = fmt.Sprintf("The quarterly report %d shows revenue grew by", i)
		}
	}
	ts := time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)
	for i := range n {
		if i%invalidEvery == invalidEvery-1 {
			values = append(values, []byte(bad[invalid%len(bad)]))
			invalid++
			continue
		}
		prompt := fmt.Sprintf("Customer question %d: %s", i%300, strings.Repeat("how do I reset my password and keep my data? ", 4+i%300%7))
		v := fmt.Sprintf(`{"id":"%s-%d","timestamp":%q,"model":"support-llm-v%d","app":"app-%d","prompt":%q,"response":%q}`,
			prefix, i, ts, 6+i%2, i%3, prompt, answers[i%len(answers)])
		values = append(values, []byte(v))
	}
	return values, invalid
}

// scenario is one fault and when it strikes.
type scenario struct {
	name      string
	fault     string  // the docs table's description
	at        float64 // fraction of the expected rows written when the fault strikes
	processes int     // raterd processes in the group (default 1)
	binary    string  // "raterd" or "raterd-broken" (the negative control)
	judge     bool    // adds an evaluator on the faulty judge pool
	// inject runs the fault; it returns when the fault is over (a service is back, a
	// killed process restarted or left to the group).
	inject func(t *testing.T, r *scenarioRun)
}

// scenarioRun is the state of one scenario while it runs.
type scenarioRun struct {
	sc      scenario
	st      *stack
	bin     string
	dir     string
	cfgPath string
	mu      sync.Mutex // guards procs: the RSS sampler reads it while faults add processes
	procs   []*proc
	killed  map[*proc]bool
}

func (r *scenarioRun) processes() []*proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*proc(nil), r.procs...)
}

func (r *scenarioRun) startRaterd(t *testing.T) *proc {
	t.Helper()
	n := len(r.procs)
	p := &proc{name: fmt.Sprintf("raterd-%d", n), dir: r.dir, log: filepath.Join(r.dir, fmt.Sprintf("raterd-%d.log", n)),
		args: []string{r.bin, "run", "--config", r.cfgPath}}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.procs = append(r.procs, p)
	r.mu.Unlock()
	return p
}

func (r *scenarioRun) kill(p *proc) {
	r.killed[p] = true
	_ = p.stop(syscall.SIGKILL, 10*time.Second)
}

// restart stops a service (SIGTERM), keeps it down for down, and starts it again.
func restart(t *testing.T, name string, p *proc, down time.Duration, start func() error) {
	t.Helper()
	if err := p.stop(syscall.SIGTERM, 60*time.Second); err != nil && !isSignalExit(err) {
		t.Logf("%s exited with %v when stopped", name, err)
	}
	time.Sleep(down)
	if err := start(); err != nil {
		t.Fatalf("restart %s: %v", name, err)
	}
}

func isSignalExit(err error) bool {
	ee, ok := err.(*exec.ExitError)
	return ok && !ee.Exited()
}

func scenarios() []scenario {
	killAndRestart := func(t *testing.T, r *scenarioRun) {
		r.kill(r.procs[len(r.procs)-1])
		r.startRaterd(t)
	}
	return []scenario{
		{name: "none", fault: "none (control)", inject: func(*testing.T, *scenarioRun) {}},
		{name: "kill10", fault: "kill -9 of raterd at 10%, restart", at: 0.10, inject: killAndRestart},
		{name: "kill50", fault: "kill -9 of raterd at 50%, restart", at: 0.50, inject: killAndRestart},
		{name: "kill90", fault: "kill -9 of raterd at 90%, restart", at: 0.90, inject: killAndRestart},
		{name: "kafka", fault: "Kafka broker restart at 50% (down 5 s)", at: 0.50, inject: func(t *testing.T, r *scenarioRun) {
			restart(t, "kafka", r.st.kafka.p, 5*time.Second, r.st.kafka.start)
		}},
		{name: "redis", fault: "Redis stopped at 30% for 5 s (restarts empty)", at: 0.30, inject: func(t *testing.T, r *scenarioRun) {
			restart(t, "redis", r.st.redis.p, 5*time.Second, r.st.redis.start)
		}},
		{name: "clickhouse", fault: "ClickHouse stopped at 30% for 30 s", at: 0.30, inject: func(t *testing.T, r *scenarioRun) {
			restart(t, "clickhouse", r.st.ch.p, 30*time.Second, r.st.ch.start)
		}},
		{name: "judge", fault: "judge pool: 30% errors, 2% hung requests, throughout", judge: true, inject: func(*testing.T, *scenarioRun) {}},
		{name: "twoprocs", fault: "two raterd in the group, one kill -9 at 50%", at: 0.50, processes: 2, inject: func(t *testing.T, r *scenarioRun) {
			r.kill(r.procs[0])
		}},
		{name: "join", fault: "a second raterd joins the group at 30% (rebalance)", at: 0.30, inject: func(t *testing.T, r *scenarioRun) {
			r.startRaterd(t)
		}},
		{name: "negative", fault: "NEGATIVE CONTROL: commits before writing, kill -9 at 50%, restart", at: 0.50, binary: "raterd-broken", inject: killAndRestart},
	}
}

// outcome is one row of the fault table.
type outcome struct {
	fault                         string
	expected, found, duplicates   uint64
	recordsOK                     bool // every valid record has exactly one row per evaluator
	invalid                       int
	deadTable, deadTopic, dlqMsgs uint64
	recovery                      time.Duration // 0 for faults that last the whole drain
	drain                         time.Duration // first raterd start to the committed end
	peakRSS                       int64         // largest resident set of any raterd process, bytes
	committedToEnd                bool
	crashed                       []string
	pass                          bool
	detail                        string
}

func TestFaultInjection(t *testing.T) {
	n := drainRecords(t)
	testkit.Service(t, "RATERD_TEST_KAFKA_LIBS", "Kafka jars")
	bins := buildRaterd(t)
	st := startStack(t)
	sim, simURL := startFaultySimulator(t)

	var results []outcome
	for _, sc := range scenarios() {
		ok := t.Run(sc.name, func(t *testing.T) {
			if sc.judge {
				if err := sim.SetFaults(judgesim.Faults{ErrorRate: 0.3, HangRate: 0.02}); err != nil {
					t.Fatal(err)
				}
				defer func() { _ = sim.SetFaults(judgesim.Faults{}) }()
			}
			o := runScenario(t, st, bins, sc, n, simURL)
			results = append(results, o)
			if sc.binary == "raterd-broken" {
				if o.pass {
					t.Errorf("negative control passed: the suite did not catch commits before writes (%s)", o.detail)
				}
				return
			}
			if !o.pass {
				t.Errorf("%s: %s", sc.fault, o.detail)
			}
		})
		if !ok && sc.binary != "raterd-broken" {
			t.Logf("scenario %s failed; continuing with the others", sc.name)
		}
	}
	table := faultTable(results, n)
	t.Log("\n" + table)
	if *reliabilityDoc != "" {
		if err := rewriteDoc(*reliabilityDoc, table); err != nil {
			t.Fatal(err)
		}
	}
}

// buildRaterd builds the real binary and the negative control's.
func buildRaterd(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	bins := map[string]string{"raterd": filepath.Join(dir, "raterd"), "raterd-broken": filepath.Join(dir, "raterd-broken")}
	for name, args := range map[string][]string{
		"raterd":        {"build", "-o", bins["raterd"], "./cmd/raterd"},
		"raterd-broken": {"build", "-tags", "raterd_negative_control", "-o", bins["raterd-broken"], "./cmd/raterd"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, out)
		}
	}
	return bins
}

// startFaultySimulator serves an in-process judgesim whose faults the judge scenario sets.
func startFaultySimulator(t *testing.T) (*judgesim.Simulator, string) {
	t.Helper()
	url, sim := testkit.StartJudgesim(t, testkit.FastJudgesim)
	return sim, url
}

func raterdConfig(st *stack, topic, group, db, simURL string, judge bool) string {
	evals := ""
	for _, e := range checkEvaluators {
		evals += fmt.Sprintf("  - {name: %s, judge: checks, check: %s}\n", e[0], e[1])
	}
	if judge {
		evals += "  - {name: helpfulness, judge: sim, criteria: \"Is the answer helpful and correct?\"}\n"
	}
	return fmt.Sprintf(`kafka:
  brokers: [%s]
  topics: [%s]
  group_id: %s
  batch: {max_records: 256, linger: 50ms}
  commit_interval: 200ms
  shutdown_timeout: 20s
  session_timeout: 6s
  rebalance_timeout: 10s
  retry_backoff_max: 2s
redis:
  addrs: [%s]
  key_prefix: "%s:"
clickhouse:
  addrs: [%s]
  database: %s
  insert_interval: 200ms
  write_timeout: 10s
judges:
  checks: {type: heuristic}
  sim:
    type: openai
    model: judgesim-faults
    endpoints: [{url: %q, max_in_flight: 32}]
    timeout: 2s
    max_attempts: 4
evaluators:
%sadmin: {listen: "off"}
`, st.kafka.addr, topic, group, st.redis.addr, group, st.ch.addr, db, simURL, evals)
}

func runScenario(t *testing.T, st *stack, bins map[string]string, sc scenario, n int, simURL string) outcome {
	t.Helper()
	ctx := context.Background()
	if sc.binary == "" {
		sc.binary = "raterd"
	}
	sc.processes = max(sc.processes, 1)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, group, db := "faults-"+sc.name+"-"+suffix, "faults-"+sc.name+"-"+suffix, "faults_"+sc.name+"_"+suffix
	r := &scenarioRun{sc: sc, st: st, bin: bins[sc.binary], dir: t.TempDir(), killed: map[*proc]bool{}}

	conn, err := clickhouse.Open(ctx, st.ch.config(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := clickhouse.MigrateWith(ctx, conn, db, clickhouse.MigrateOptions{Telemetry: telemetry.Settings{Logger: slog.New(slog.DiscardHandler)}}); err != nil {
		t.Fatal(err)
	}
	kc := &kafka.Client{Addr: kafka.TCP(st.kafka.addr), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	createTopic(t, kc, topic)
	values, invalid := traffic(sc.name, n)
	produce(t, st.kafka.addr, topic, values)
	ends := endOffsets(t, kc, topic)
	evaluators := len(checkEvaluators)
	if sc.judge {
		evaluators++
	}
	o := outcome{fault: sc.fault, expected: uint64((n - invalid) * evaluators), invalid: invalid}

	r.cfgPath = filepath.Join(r.dir, "raterd.yaml")
	if err := os.WriteFile(r.cfgPath, []byte(raterdConfig(st, topic, group, db, simURL, sc.judge)), 0o644); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	for range sc.processes {
		r.startRaterd(t)
	}
	defer func() { // never leave a raterd behind, whatever failed
		for _, p := range r.procs {
			_ = p.stop(syscall.SIGKILL, 5*time.Second)
		}
	}()

	rawRows := func() (uint64, bool) {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var c uint64
		err := conn.QueryRow(qctx, "SELECT count() FROM "+db+".scores").Scan(&c)
		return c, err == nil
	}
	// Wait for the fault's moment, then inject it.
	deadline := time.Now().Add(drainTimeout)
	sampleRSS := func() {
		for _, p := range r.processes() {
			if p.running() {
				o.peakRSS = max(o.peakRSS, rss(p.cmd.Process.Pid))
			}
		}
	}
	for sc.at > 0 {
		sampleRSS()
		if c, ok := rawRows(); ok && float64(c) >= sc.at*float64(o.expected) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never reached %.0f%% of the rows before the fault; raterd log:\n%s", 100*sc.at, r.procs[0].tail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // sample during the fault too (a ClickHouse outage is where memory could grow)
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(100 * time.Millisecond):
				sampleRSS()
			}
		}
	}()
	sc.inject(t, r)
	faultEnd := time.Now()

	// Drain: until the committed offsets reach the end and, for rows still being written,
	// scores FINAL has them all — or nothing moves any more (the negative control).
	recoverFrom := committed(ctx, kc, group, topic)
	var lastRaw uint64
	lastChange := time.Now()
	deadline = time.Now().Add(drainTimeout)
	for {
		c := committed(ctx, kc, group, topic)
		if o.recovery == 0 && c != nil && recoverFrom != nil && movedEverywhere(recoverFrom, c, ends) {
			o.recovery = time.Since(faultEnd)
		}
		if c != nil && recoverFrom == nil {
			recoverFrom = c // Kafka was down at the fault's end
		}
		raw, ok := rawRows()
		if ok && raw != lastRaw {
			lastRaw, lastChange = raw, time.Now()
		}
		atEnd := c != nil && reachedEnd(c, ends)
		if atEnd && o.drain == 0 {
			o.drain = time.Since(started)
		}
		if atEnd && ok && finalRows(t, conn, db) == o.expected {
			break
		}
		if atEnd && time.Since(lastChange) > 10*time.Second {
			break // stalled with offsets at the end: rows are missing for good
		}
		if time.Now().After(deadline) {
			o.detail = fmt.Sprintf("drain not done after %s (committed %v of %v)", drainTimeout, c, ends)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stopSampling)
	<-sampled
	if sc.at == 0 {
		o.recovery = 0 // no moment to recover from: the fault (if any) lasts throughout
	} else if o.recovery == 0 && o.detail == "" {
		o.recovery = time.Since(faultEnd)
	}

	// Stop the survivors as an operator would; any error exit is a crash.
	for _, p := range r.procs {
		if r.killed[p] {
			continue
		}
		if !p.running() {
			o.crashed = append(o.crashed, fmt.Sprintf("%s exited early (%v)", p.name, p.err))
			continue
		}
		if err := p.stop(syscall.SIGTERM, 40*time.Second); err != nil {
			o.crashed = append(o.crashed, fmt.Sprintf("%s: %v", p.name, err))
		}
	}
	o.committedToEnd = reachedEnd(committed(ctx, kc, group, topic), ends)
	checkRows(t, conn, db, n-invalid, evaluators, &o)
	o.deadTopic, o.dlqMsgs = deadLetterTopic(t, st.kafka.addr, sinkkafka.DLQTopic(topic))
	o.deadTable = countUint(t, conn, "SELECT uniqExact(topic, partition, offset) FROM "+db+".dead_letters")

	var problems []string
	if !o.recordsOK {
		problems = append(problems, fmt.Sprintf("scores FINAL has %d rows, want %d, one per valid record × evaluator", o.found, o.expected))
	}
	if o.deadTable != uint64(invalid) || o.deadTopic != uint64(invalid) {
		problems = append(problems, fmt.Sprintf("dead letters: %d in the table, %d on the topic, want %d distinct", o.deadTable, o.deadTopic, invalid))
	}
	if !o.committedToEnd {
		problems = append(problems, "committed offsets did not reach the end")
	}
	if len(o.crashed) > 0 {
		problems = append(problems, "crashed: "+strings.Join(o.crashed, "; "))
	}
	if o.detail != "" {
		problems = append(problems, o.detail)
	}
	o.pass = len(problems) == 0
	o.detail = strings.Join(problems, "; ")
	if !o.pass || sc.binary == "raterd-broken" || os.Getenv("RATERD_FAULTS_LOGS") != "" {
		for _, p := range r.procs {
			t.Logf("%s log tail:\n%s", p.name, p.tail(25))
		}
	}
	if dir := os.Getenv("RATERD_FAULTS_LOGS"); dir != "" && dir != "1" {
		for _, p := range r.procs {
			b, _ := os.ReadFile(p.log)
			_ = os.WriteFile(filepath.Join(dir, sc.name+"-"+p.name+".log"), b, 0o644)
		}
	}
	_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	return o
}

// rss returns the resident set size of a process in bytes (0 if unknown).
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func createTopic(t *testing.T, kc *kafka.Client, topic string) {
	t.Helper()
	resp, err := kc.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1},
		{Topic: sinkkafka.DLQTopic(topic), NumPartitions: partitions, ReplicationFactor: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range resp.Errors {
		if err != nil {
			t.Fatalf("create topic %s: %v", name, err)
		}
	}
}

func produce(t *testing.T, broker, topic string, values [][]byte) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(broker), Topic: topic, Balancer: &kafka.RoundRobin{}, RequiredAcks: kafka.RequireAll,
		BatchSize: 1000, BatchBytes: 16 << 20, BatchTimeout: 5 * time.Millisecond, Transport: &kafka.Transport{}}
	defer w.Close()
	msgs := make([]kafka.Message, 0, 5000)
	for i := 0; i < len(values); i += cap(msgs) {
		msgs = msgs[:0]
		for _, v := range values[i:min(i+cap(msgs), len(values))] {
			msgs = append(msgs, kafka.Message{Value: v})
		}
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

func endOffsets(t *testing.T, kc *kafka.Client, topic string) map[int]int64 {
	t.Helper()
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for p := range partitions {
		req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
	}
	resp, err := kc.ListOffsets(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	ends := map[int]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			t.Fatal(po.Error)
		}
		ends[po.Partition] = po.LastOffset
	}
	return ends
}

// committed returns the group's committed offsets, or nil while Kafka does not answer.
func committed(ctx context.Context, kc *kafka.Client, group, topic string) map[int]int64 {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ps := make([]int, partitions)
	for p := range ps {
		ps[p] = p
	}
	resp, err := kc.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil || resp.Error != nil {
		return nil
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

func reachedEnd(c, ends map[int]int64) bool {
	if c == nil {
		return false
	}
	for p, end := range ends {
		if c[p] < end {
			return false
		}
	}
	return true
}

// movedEverywhere: every partition not at its end has committed past where it was.
func movedEverywhere(from, now, ends map[int]int64) bool {
	for p, end := range ends {
		if now[p] < end && now[p] <= from[p] {
			return false
		}
	}
	return true
}

func countUint(t *testing.T, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func finalRows(t *testing.T, conn driver.Conn, db string) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".scores FINAL").Scan(&n); err != nil {
		return 0
	}
	return n
}

// checkRows fills found, duplicates and recordsOK: scores FINAL holds exactly the
// expected rows, each valid record with one row per evaluator.
func checkRows(t *testing.T, conn driver.Conn, db string, valid, evaluators int, o *outcome) {
	t.Helper()
	o.found = countUint(t, conn, "SELECT count() FROM "+db+".scores FINAL")
	// scores_hourly counts every inserted row, before merges collapse replays (and 18.16
	// takes no deduplication token), so it measures the rows written more than once.
	o.duplicates = countUint(t, conn, "SELECT countMerge(rows) FROM "+db+".scores_hourly") - o.found
	records := countUint(t, conn, "SELECT uniqExact(record_id) FROM "+db+".scores FINAL")
	pairs := countUint(t, conn, "SELECT uniqExact(record_id, evaluator) FROM "+db+".scores FINAL")
	uneven := countUint(t, conn, fmt.Sprintf("SELECT count() FROM (SELECT record_id FROM %s.scores FINAL GROUP BY record_id HAVING count() != %d)", db, evaluators))
	o.recordsOK = o.found == o.expected && pairs == o.expected && records == uint64(valid) && uneven == 0
}

// deadLetterTopic reads the whole dead-letter topic and returns the distinct source
// offsets and the number of messages.
func deadLetterTopic(t *testing.T, broker, topic string) (distinct, messages uint64) {
	t.Helper()
	seen := map[string]bool{}
	for p := range partitions {
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		conn, err := kafka.DialLeader(context.Background(), "tcp", broker, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		end, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < end; off++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			m, err := rd.ReadMessage(ctx)
			cancel()
			if err != nil {
				t.Fatalf("read %s/%d: %v", topic, p, err)
			}
			messages++
			src := ""
			for _, h := range m.Headers {
				if h.Key == sinkkafka.HeaderSourcePartition || h.Key == sinkkafka.HeaderSourceOffset {
					src += h.Key + "=" + string(h.Value) + " "
				}
			}
			seen[src] = true
			off = m.Offset
		}
		rd.Close()
	}
	return uint64(len(seen)), messages
}

func faultTable(results []outcome, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d records per scenario (%d partitions, one invalid in %d); rows = valid records × evaluators.\n\n", n, partitions, invalidEvery)
	b.WriteString("| fault | rows expected | rows found (FINAL) | rows written twice (replays) | dead letters: table / topic (distinct) / expected | DLQ messages | recovery | drain | peak RSS | committed to end | crashes | outcome |\n")
	b.WriteString("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | --- | --- |\n")
	for _, o := range results {
		verdict := "pass"
		if !o.pass {
			verdict = "FAIL: " + o.detail
		}
		crashes := "none"
		if len(o.crashed) > 0 {
			crashes = strings.Join(o.crashed, "; ")
		}
		recovery := "n/a"
		if o.recovery > 0 {
			recovery = fmt.Sprintf("%.1f s", o.recovery.Seconds())
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d / %d / %d | %d | %s | %.1f s | %d MiB | %v | %s | %s |\n", o.fault, o.expected, o.found, o.duplicates,
			o.deadTable, o.deadTopic, o.invalid, o.dlqMsgs, recovery, o.drain.Seconds(), o.peakRSS>>20, yesNo(o.committedToEnd), crashes, verdict)
	}
	b.WriteString("\nRecovery: from the end of the fault (service back, process killed or restarted) until every partition not yet drained had committed past where it stood then. Drain: from the first raterd start until the committed offsets reached the end. Peak RSS: the largest resident set of any raterd process, sampled every 100 ms.\n")
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

const (
	tableBegin = "<!-- BEGIN fault table (generated by scripts/faults.sh) -->"
	tableEnd   = "<!-- END fault table -->"
)

// rewriteDoc replaces the generated table in path.
func rewriteDoc(path, table string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, tableBegin), strings.Index(s, tableEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s: markers %q … %q not found", path, tableBegin, tableEnd)
	}
	stamp := fmt.Sprintf("Run of %s on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine())
	return os.WriteFile(path, []byte(s[:i+len(tableBegin)]+"\n"+stamp+table+s[j:]), 0o644)
}

func machine() string {
	return fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
}
