package app

// Integration tests against the real Kafka, Redis and ClickHouse that scripts/services.sh
// starts. They skip when RATERD_TEST_KAFKA / RATERD_TEST_REDIS / RATERD_TEST_CLICKHOUSE are
// unset, and fail instead when RATERD_REQUIRE_SERVICES is set (as .ci/run does), so CI can
// never pass by skipping them.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/segmentio/kafka-go"

	"raterd/consumer"
	"raterd/internal/judgesim"
	"raterd/internal/telemetry"
	"raterd/internal/testkit"
	"raterd/record"
	"raterd/scorer"
	"raterd/sinks/clickhouse"
	sinkkafka "raterd/sinks/kafka"
)

// integrationTraffic returns n message values: mostly valid records with repeats, and
// every 25th one invalid in one of four ways.
func integrationTraffic(n int) (values [][]byte, invalid int, reasons map[string]int) {
	reasons = map[string]int{}
	bad := []struct{ value, reason string }{
		{`{"model":"m", "response": "unterminated`, consumer.ReasonInvalidJSON},
		{`{"response":"no model here"}`, consumer.ReasonMissingField},
		{`{"model":"support-llm-v7","prompt":"hi"}`, consumer.ReasonMissingField},
		{"{\"model\":\"m\",\"response\":\"bad \xff utf8\"}", consumer.ReasonInvalidUTF8},
	}
	answers := []string{
		"Sure. To reset your password, open Settings, choose Security and click Reset.",
		"I'm sorry, but I can't help with that.",
		"You can reach our billing team at billing@example.com or +1 415 555 0132.",
		`{"name": "Ada", "age": 36}`,
		`{"name": "Ada", "age": }`,
		"The quarterly report shows revenue grew by",
	}
	// Recent event times, so the README's "last day" queries find them whenever this runs.
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	for i := range n {
		if i%25 == 24 {
			b := bad[invalid%len(bad)]
			values = append(values, []byte(b.value))
			reasons[b.reason]++
			invalid++
			continue
		}
		prompt := fmt.Sprintf("Question %d: how do I reset my password? Respond in JSON if you can.", i%40)
		ts := base.Add(time.Duration(i%60) * time.Minute).Format(time.RFC3339)
		// Every record carries a baseline candidate, so the pairwise evaluator judges all.
		v := fmt.Sprintf(`{"id":"it-%d","timestamp":%q,"model":"support-llm-v%d","app":"helpdesk","prompt":%q,"response":%q,`+
			`"candidates":[{"model":"support-llm-v6","response":%q}],"metadata":{"region":"eu"}}`,
			i, ts, 7+i%2, prompt, answers[i%len(answers)], answers[(i+1)%len(answers)])
		values = append(values, []byte(v))
	}
	return values, invalid, reasons
}

// startSimulator serves a fast judgesim pool until the test ends.
func startSimulator(t testing.TB) (string, *judgesim.Simulator) {
	t.Helper()
	return testkit.StartJudgesim(t, testkit.FastJudgesim)
}

func integrationConfig(t *testing.T, s testkit.Services, topic, group, db, simURL string) *Config {
	t.Helper()
	text := fmt.Sprintf(`
kafka:
  brokers: [%s]
  topics: [%s]
  group_id: %s
  batch: {max_records: 100, linger: 50ms}
  commit_interval: 100ms
redis:
  addrs: [%s]
  key_prefix: "%s:"
clickhouse:
  addrs: [%s]
  database: %s
judges:
  checks: {type: heuristic}
  sim:
    type: openai
    model: judgesim-it
    endpoints: [{url: %q, max_in_flight: 16}]
    logprobs: true
  rm:
    type: reward
    model: judgesim-rm
    endpoints: [{url: %q}]
    reward: {api: vllm-pooling, max_batch: 16}
evaluators:
  - {name: refusal, judge: checks, check: refusal}
  - {name: pii, judge: checks, check: pii}
  - {name: json_validity, judge: checks, check: json}
  - {name: truncated, judge: checks, check: truncated}
  - {name: helpfulness, judge: sim, criteria: "Is the answer helpful and correct?"}
  - {name: preference, judge: sim, task: pairwise, format: prometheus2, criteria: "Which answer is more helpful?"}
  - {name: on_topic, judge: sim, task: classification, format: selene, labels: [on_topic, off_topic], criteria: "Does the answer address the question?"}
  - {name: reward, judge: rm}
admin: {listen: "off"}
`, s.Kafka, topic, group, s.Redis, db, s.ClickHouse, db, simURL, strings.TrimSuffix(simURL, "/v1"))
	cfg, err := ParseConfig([]byte(text), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runGroup runs one consumer group over the topic until every message is done, and
// returns the stack's scorer totals and pipeline stats.
func runGroup(t *testing.T, cfg *Config, total int64) (consumer.Stats, *Stack) {
	t.Helper()
	p, st, leave := startPipeline(t, cfg)
	defer leave()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	deadline := time.Now().Add(2 * time.Minute)
	for p.Stats().Done < total {
		if time.Now().After(deadline) {
			cancel()
			<-errc
			t.Fatalf("group %s: only %d of %d messages done after 2 minutes: %+v", cfg.Kafka.GroupID, p.Stats().Done, total, p.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	return p.Stats(), st
}

func TestIntegrationEndToEnd(t *testing.T) {
	s := testkit.RequireServices(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, db := "it-traffic-"+suffix, "raterd_it_"+suffix
	const partitions = 4
	testkit.CreateTopic(t, s.Kafka, topic, partitions)

	values, invalid, reasons := integrationTraffic(1000)
	valid := len(values) - invalid
	if err := Produce(context.Background(), []string{s.Kafka}, topic, values); err != nil {
		t.Fatal(err)
	}

	chCfg := clickhouse.Config{Addrs: []string{s.ClickHouse}, Database: db}
	if err := chCfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(context.Background(), chCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })

	// Before migrating, run must refuse to start and name the missing migration.
	simURL, sim := startSimulator(t)
	cfg1 := integrationConfig(t, s, topic, "it-group-1-"+suffix, db, simURL)
	if err := conn.Exec(context.Background(), "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(context.Background(), cfg1, &Telemetry{}, slog.Default(), nil); err == nil || !strings.Contains(err.Error(), "missing migration 1") {
		t.Fatalf("start against an unmigrated schema: err = %v, want one naming migration 1", err)
	}
	if _, err := clickhouse.Migrate(context.Background(), conn, db, telemetry.Settings{}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if applied, err := clickhouse.Migrate(context.Background(), conn, db, telemetry.Settings{}); err != nil || len(applied) != 0 {
		t.Fatalf("second migrate applied %d migrations, err %v; want an idempotent no-op", len(applied), err)
	}

	evaluators := len(cfg1.Evaluators)
	stats1, st1 := runGroup(t, cfg1, int64(len(values)))
	t.Logf("group 1: %+v, scorer %+v", stats1, st1.Scorer.Totals())
	if stats1.Valid != int64(valid) || stats1.DeadLetters != int64(invalid) {
		t.Fatalf("valid %d dead %d, want %d and %d", stats1.Valid, stats1.DeadLetters, valid, invalid)
	}
	// Every judge call is worth its cost: exactly one per distinct (rubric, judge, inputs)
	// key, and one per task of the built-in checks (not cached: cheaper to run again).
	keys, uncached := judgeCallsWanted(t, cfg1, st1, values)
	if uncached == 0 {
		t.Fatal("the test's evaluators include no built-in check: the uncached path goes untested")
	}
	if got := st1.Scorer.Totals().JudgeCalls; got != keys+uncached {
		t.Fatalf("first group made %d judge calls, want one per distinct cache key (%d) plus one per built-in check task (%d)", got, keys, uncached)
	}

	var rows uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".scores FINAL").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if want := uint64(valid * evaluators); rows != want {
		t.Fatalf("SELECT count() FROM scores FINAL = %d, want valid records × evaluators = %d × %d = %d", rows, valid, evaluators, want)
	}
	t.Logf("scores FINAL = %d rows (%d valid records × %d evaluators)", rows, valid, evaluators)
	checkTaskRows(t, conn, db, valid)

	// The hourly view aggregated the same rows.
	var hourly uint64
	if err := conn.QueryRow(context.Background(), "SELECT countMerge(rows) FROM "+db+".scores_hourly").Scan(&hourly); err != nil {
		t.Fatal(err)
	}
	if hourly != rows {
		t.Errorf("scores_hourly counts %d rows, scores has %d", hourly, rows)
	}

	// The SQL the README shows users runs on this server and finds the rows.
	for _, q := range readmeQueries(t) {
		q = strings.ReplaceAll(q, "raterd.", db+".")
		r, err := conn.Query(context.Background(), q)
		if err != nil {
			t.Fatalf("README query fails: %v\n%s", err, q)
		}
		if !r.Next() {
			t.Errorf("README query returns no rows:\n%s", q)
		}
		r.Close()
	}

	// Invalid records are in the DLQ topic, with their reasons and source coordinates.
	checkDLQ(t, s.Kafka, topic, invalid, reasons)
	var deadRows uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".dead_letters FINAL").Scan(&deadRows); err != nil {
		t.Fatal(err)
	}
	if deadRows != uint64(invalid) {
		t.Errorf("dead_letters table has %d rows, want %d", deadRows, invalid)
	}

	// The group's committed offsets reach the end of every partition.
	checkCommittedToEnd(t, s.Kafka, topic, cfg1.Kafka.GroupID, partitions)

	// A second group over the same records: every model verdict is cached, no model judge
	// is called; only the built-in checks run again.
	before := sim.Stats().Completed
	cfg2 := integrationConfig(t, s, topic, "it-group-2-"+suffix, db, simURL)
	stats2, st2 := runGroup(t, cfg2, int64(len(values)))
	tot2 := st2.Scorer.Totals()
	t.Logf("group 2: %+v, scorer %+v", stats2, tot2)
	if tot2.JudgeCalls != uncached || sim.Stats().Completed != before {
		t.Fatalf("second group made %d judge calls (simulator served %d more); want only the %d built-in check tasks: the rest cache hits",
			tot2.JudgeCalls, sim.Stats().Completed-before, uncached)
	}
	if tot2.CacheHits == 0 || tot2.CacheBypass {
		t.Fatalf("second group: %+v", tot2)
	}
	// Its rows replace the first group's: still one row per record × evaluator.
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".scores FINAL").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != uint64(valid*evaluators) {
		t.Fatalf("after the replay, scores FINAL = %d, want %d", rows, valid*evaluators)
	}
}

func checkDLQ(t *testing.T, broker, topic string, want int, wantReasons map[string]int) {
	t.Helper()
	// The DLQ topic was auto-created with the broker's default partition count; read all.
	conn, err := kafka.Dial("tcp", broker)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions(sinkkafka.DLQTopic(topic))
	conn.Close()
	if err != nil {
		t.Fatalf("dlq topic: %v", err)
	}
	got := map[string]int{}
	total := 0
	for _, p := range parts {
		pr := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: p.Topic, Partition: p.ID, MaxWait: 100 * time.Millisecond})
		last, err := testkit.LastOffset(broker, p.Topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < last; off++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			m, err := pr.ReadMessage(ctx)
			cancel()
			if err != nil {
				t.Fatalf("read dlq %d/%d: %v", p.ID, off, err)
			}
			h := map[string]string{}
			for _, x := range m.Headers {
				h[x.Key] = string(x.Value)
			}
			if h[sinkkafka.HeaderSourceTopic] != topic || h[sinkkafka.HeaderSourceOffset] == "" || h[sinkkafka.HeaderSourcePartition] == "" || h[sinkkafka.HeaderError] == "" {
				t.Errorf("dead letter lacks source headers: %v", h)
			}
			got[h[sinkkafka.HeaderErrorClass]]++
			total++
		}
		pr.Close()
	}
	if total != want {
		t.Fatalf("DLQ holds %d messages, want %d", total, want)
	}
	for reason, n := range wantReasons {
		if got[reason] != n {
			t.Errorf("DLQ reason %s: %d messages, want %d (all: %v)", reason, got[reason], n, got)
		}
	}
}

func checkCommittedToEnd(t *testing.T, broker, topic, group string, partitions int) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second}
	ids := make([]int, partitions)
	for i := range ids {
		ids[i] = i
	}
	resp, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.Topics[topic] {
		end, err := testkit.LastOffset(broker, topic, p.Partition)
		if err != nil {
			t.Fatal(err)
		}
		if p.CommittedOffset != end {
			t.Errorf("group %s partition %d: committed %d, end of partition %d", group, p.Partition, p.CommittedOffset, end)
		}
	}
}

// judgeCallsWanted is what scoring values must cost, by the rule "every judge call is
// worth its cost": keys, the distinct (rubric, judge, inputs) cache keys of the cached
// judges' tasks — each judged once, then cached — and uncached, the tasks of the judges
// that are cheaper to run again than to cache (scorer.UncachedJudge: the built-in checks),
// each judged every time.
func judgeCallsWanted(t testing.TB, cfg *Config, st *Stack, values [][]byte) (keys, uncached int) {
	t.Helper()
	judges, err := scorer.NewJudges(cfg.Judges, scorer.JudgeSettings{})
	if err != nil {
		t.Fatal(err)
	}
	defer scorer.CloseJudges(context.Background(), judges)
	distinct := map[string]bool{}
	for i, v := range values {
		r, err := consumer.Decode(v, record.Source{Topic: "t", Offset: int64(i)}, time.Now(), consumer.DefaultMaxRecordBytes)
		if err != nil {
			continue
		}
		for _, e := range st.Scorer.Evaluators() {
			if !e.Applies(r) {
				continue
			}
			if u, ok := judges[e.Judge].(scorer.UncachedJudge); ok && u.Uncached() {
				uncached++
				continue
			}
			distinct[scorer.CacheKey(e, judges[e.Judge].Identity(), r)] = true
		}
	}
	return len(distinct), uncached
}

// checkTaskRows checks what each task type and judge stored in ClickHouse: every row ok,
// pairwise preferences in [0,1] with an agreement label, classification labels from the
// evaluator with 0/1 scores and a probability, and the judge identities.
func checkTaskRows(t *testing.T, conn driver.Conn, db string, valid int) {
	t.Helper()
	rows, err := conn.Query(context.Background(), `
SELECT evaluator, judge, task_type, count(), countIf(status = 'ok'), min(score), max(score),
       groupUniqArray(label), toFloat64(min(confidence)), toFloat64(max(confidence))
FROM `+db+`.scores FINAL
WHERE evaluator IN ('preference', 'on_topic', 'reward', 'helpfulness')
GROUP BY evaluator, judge, task_type ORDER BY evaluator`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var evaluator, judge, task string
		var n, ok uint64
		var lo, hi, clo, chi float64
		var labels []string
		if err := rows.Scan(&evaluator, &judge, &task, &n, &ok, &lo, &hi, &labels, &clo, &chi); err != nil {
			t.Fatal(err)
		}
		seen[evaluator] = true
		t.Logf("%s: judge %s, task %s, %d rows, score %.3f..%.3f, labels %v, confidence %.3f..%.3f", evaluator, judge, task, n, lo, hi, labels, clo, chi)
		if n != uint64(valid) || ok != n {
			t.Errorf("%s: %d rows, %d ok; want %d, all ok", evaluator, n, ok, valid)
		}
		switch evaluator {
		case "helpfulness":
			if judge != "openai:judgesim-it+logprobs" || task != "pointwise" || lo < 1 || hi > 5 || clo <= 0 || chi > 1 {
				t.Errorf("helpfulness rows: %s %s %g..%g, confidence %g..%g", judge, task, lo, hi, clo, chi)
			}
		case "preference":
			for _, l := range labels {
				if l != "first" && l != "second" && l != "inconsistent" {
					t.Errorf("preference label %q", l)
				}
			}
			if task != "pairwise" || lo < 0 || hi > 1 || lo == hi {
				t.Errorf("preference rows: %s, scores %g..%g", task, lo, hi)
			}
		case "on_topic":
			for _, l := range labels {
				if l != "on_topic" && l != "off_topic" {
					t.Errorf("on_topic label %q", l)
				}
			}
			if task != "classification" || lo < 0 || hi > 1 || clo <= 0 || chi > 1 {
				t.Errorf("on_topic rows: %s, scores %g..%g, confidence %g..%g", task, lo, hi, clo, chi)
			}
		case "reward":
			if judge != "reward:judgesim-rm@vllm-pooling" || task != "pointwise" || lo == hi {
				t.Errorf("reward rows: %s %s, scores %g..%g", judge, task, lo, hi)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 4 {
		t.Errorf("rows for %v; want helpfulness, preference, on_topic and reward", seen)
	}
}

// readmeQueries returns the statements of the README's SQL example block.
func readmeQueries(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(data), "```sql\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no ```sql block")
	}
	var out []string
	for _, stmt := range strings.Split(block, ";") {
		var lines []string
		for _, l := range strings.Split(stmt, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--") {
				lines = append(lines, l)
			}
		}
		if len(lines) > 0 {
			out = append(out, strings.Join(lines, " "))
		}
	}
	if len(out) < 5 {
		t.Fatalf("found %d statements in the README's SQL block", len(out))
	}
	return out
}
