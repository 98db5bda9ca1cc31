package baseline

// Integration tests against the real Kafka and ClickHouse that scripts/services.sh starts.
// They skip when RATERD_TEST_KAFKA / RATERD_TEST_CLICKHOUSE are unset, and fail instead
// when RATERD_REQUIRE_SERVICES is set (as .ci/run does).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/internal/telemetry"
	"raterd/internal/testkit"
	"raterd/scorer"
	"raterd/sinks/clickhouse"
)

// testTraffic returns n message values: valid records with prompts of 200–4,000 bytes
// and responses of 200–2,000 (refusals, leaked contact details and cut-off answers among
// them), and every 50th message invalid.
func testTraffic(n int) (values [][]byte, invalid int) {
	answers := []string{
		"Sure. To reset your password, open Settings, choose Security and click Reset. ",
		"I'm sorry, but I can't help with that. ",
		"You can reach our billing team at billing@example.com or +1 415 555 0132. ",
		"The quarterly report shows that revenue grew by ",
	}
	for i := range n {
		if i%50 == 49 {
			values = append(values, []byte(`{"model":"m","response":"unterminated`))
			invalid++
			continue
		}
		prompt := sized(fmt.Sprintf("Question %d about my account settings. ", i), 200+(i*97)%3801)
		resp := sized(answers[i%len(answers)], 200+(i*53)%1801)
		v := fmt.Sprintf(`{"id":"bl-%d","timestamp":%q,"model":"support-llm-v%d","app":"helpdesk","prompt":%q,"response":%q,"metadata":{"region":"eu"}}`,
			i, time.Now().UTC().Format(time.RFC3339), 7+i%2, prompt, resp)
		values = append(values, []byte(v))
	}
	return values, invalid
}

// sized repeats the ASCII text unit to exactly n bytes.
func sized(unit string, n int) string {
	return strings.Repeat(unit, n/len(unit)+1)[:n]
}

func produce(t *testing.T, broker, topic string, values [][]byte) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(broker), Topic: topic, Balancer: &kafka.Hash{}, BatchSize: 500,
		BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll, Transport: &kafka.Transport{}}
	defer w.Close()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "%d", i), Value: v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// checkCommittedToEnd fails the test unless group has committed every partition of topic
// up to its end.
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
	if got := len(resp.Topics[topic]); got != partitions {
		t.Fatalf("group %s: offsets of %d partitions, want %d", group, got, partitions)
	}
	for _, p := range resp.Topics[topic] {
		end := lastOffset(t, broker, topic, p.Partition)
		if p.CommittedOffset != end {
			t.Errorf("group %s partition %d: committed %d, end of partition %d", group, p.Partition, p.CommittedOffset, end)
		}
	}
}

func lastOffset(t *testing.T, broker, topic string, partition int) int64 {
	t.Helper()
	conn, err := kafka.DialLeader(context.Background(), "tcp", broker, topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	end, err := conn.ReadLastOffset()
	if err != nil {
		t.Fatal(err)
	}
	return end
}

// checkCPU fails the test unless a finished run measured wall and CPU time.
func checkCPU(t *testing.T, res Result) {
	t.Helper()
	if res.Elapsed <= 0 || res.CPU.Total() <= 0 || res.RecordsPerSecond() <= 0 || res.CPUPerRecord() <= 0 {
		t.Errorf("run measured elapsed %v, CPU %+v, %.0f records/s, %v CPU/record; want all positive",
			res.Elapsed, res.CPU, res.RecordsPerSecond(), res.CPUPerRecord())
	}
}

func TestBaselinesIntegration(t *testing.T) {
	broker := testkit.Service(t, "RATERD_TEST_KAFKA", "Kafka broker")
	chAddr := testkit.Service(t, "RATERD_TEST_CLICKHOUSE", "ClickHouse")
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "raterd-baseline-test-" + suffix
	const partitions = 4
	testkit.CreateTopic(t, broker, topic, partitions)
	values, invalid := testTraffic(400)
	total, valid := int64(len(values)), int64(len(values)-invalid)
	produce(t, broker, topic, values)
	kafkaCfg := func(group string, records int64) KafkaConfig {
		return KafkaConfig{Brokers: []string{broker}, Topic: topic, GroupID: group + "-" + suffix, Records: records}
	}

	t.Run("Bare", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// No commit before the end: the final commit alone must cover every partition.
		cfg := BareConfig{Kafka: kafkaCfg("bare", total), CommitInterval: time.Hour}
		res, err := RunBare(ctx, cfg)
		if err != nil {
			t.Fatalf("RunBare: %v (result %+v)", err, res)
		}
		t.Logf("bare: %+v (%.0f records/s, %v CPU/record)", res, res.RecordsPerSecond(), res.CPUPerRecord())
		if res.Records != total || res.Decoded != valid || res.DecodeErrors != int64(invalid) {
			t.Errorf("records %d decoded %d decode errors %d; want %d, %d, %d", res.Records, res.Decoded, res.DecodeErrors, total, valid, invalid)
		}
		if res.Commits != 1 || res.Rows != 0 || res.Inserts != 0 || res.JudgeCalls != 0 {
			t.Errorf("commits %d rows %d inserts %d judge calls %d; want 1, 0, 0, 0", res.Commits, res.Rows, res.Inserts, res.JudgeCalls)
		}
		checkCPU(t, res)
		checkCommittedToEnd(t, broker, topic, cfg.Kafka.GroupID, partitions)
	})

	t.Run("BareUntilCanceled", func(t *testing.T) {
		// Records beyond the topic's end: the run goes on until its context is canceled,
		// here once the group has committed every partition to its end, and says it did
		// not reach its count.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfg := BareConfig{Kafka: kafkaCfg("bare-cancel", total+1), CommitInterval: 10 * time.Millisecond}
		done := make(chan struct{})
		var res Result
		var err error
		go func() {
			defer close(done)
			res, err = RunBare(ctx, cfg)
		}()
		waitCommittedToEnd(t, broker, topic, cfg.Kafka.GroupID, partitions, done)
		cancel()
		<-done
		if !errors.Is(err, context.Canceled) || !strings.Contains(fmt.Sprint(err), fmt.Sprintf("stopped after %d of %d records", total, total+1)) {
			t.Fatalf("RunBare canceled: err = %v; want context.Canceled after %d of %d records", err, total, total+1)
		}
		if res.Records != total || res.Decoded != valid {
			t.Errorf("records %d decoded %d; want %d and %d", res.Records, res.Decoded, total, valid)
		}
	})

	t.Run("Naive", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		db := "raterd_baseline_test_" + suffix
		chCfg := clickhouse.Config{Addrs: []string{chAddr}, Database: db}
		if err := chCfg.Validate("clickhouse"); err != nil {
			t.Fatal(err)
		}
		conn, err := clickhouse.Open(ctx, chCfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db); err != nil {
				t.Errorf("drop database %s: %v", db, err)
			}
			_ = conn.Close()
		})
		quiet := slog.New(slog.DiscardHandler)
		if _, err := clickhouse.Migrate(ctx, conn, db, telemetry.Settings{Logger: quiet}); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		var evals []*scorer.Evaluator
		for _, check := range []string{"refusal", "pii", "truncated"} {
			e := &scorer.Evaluator{Name: check, Judge: "checks", Check: check}
			if err := e.Prepare("evaluators["+check+"]", scorer.KindHeuristic); err != nil {
				t.Fatal(err)
			}
			evals = append(evals, e)
		}
		cfg := NaiveConfig{Kafka: kafkaCfg("naive", total), Evaluators: evals, Judge: scorer.NewHeuristicJudge(), ClickHouse: chCfg, Telemetry: telemetry.Settings{Logger: quiet}}
		res, err := RunNaive(ctx, cfg)
		if err != nil {
			t.Fatalf("RunNaive: %v (result %+v)", err, res)
		}
		t.Logf("naive: %+v (%.0f records/s, %v CPU/record)", res, res.RecordsPerSecond(), res.CPUPerRecord())
		wantRows := valid * int64(len(evals))
		if res.Records != total || res.Decoded != valid || res.DecodeErrors != int64(invalid) || res.Commits != total {
			t.Errorf("records %d decoded %d decode errors %d commits %d; want %d, %d, %d, %d",
				res.Records, res.Decoded, res.DecodeErrors, res.Commits, total, valid, invalid, total)
		}
		if res.JudgeCalls != valid || res.Inserts != valid || res.Rows != wantRows || res.JudgeErrors != 0 {
			t.Errorf("judge calls %d inserts %d rows %d judge errors %d; want %d, %d, %d, 0",
				res.JudgeCalls, res.Inserts, res.Rows, res.JudgeErrors, valid, valid, wantRows)
		}
		checkCPU(t, res)
		checkCommittedToEnd(t, broker, topic, cfg.Kafka.GroupID, partitions)

		var rows, perRecord uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".scores FINAL").Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != uint64(wantRows) {
			t.Errorf("SELECT count() FROM scores FINAL = %d, want records × evaluators = %d × %d = %d", rows, valid, len(evals), wantRows)
		}
		// Exactly one row per record × evaluator: as many distinct pairs as rows, and
		// every record with one row per evaluator.
		if err := conn.QueryRow(ctx, "SELECT uniqExact(record_id, evaluator) FROM "+db+".scores FINAL").Scan(&perRecord); err != nil {
			t.Fatal(err)
		}
		if perRecord != uint64(wantRows) {
			t.Errorf("%d distinct (record, evaluator) pairs, want %d", perRecord, wantRows)
		}
		var badRecords uint64
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM (SELECT record_id, count() AS n FROM %s.scores FINAL GROUP BY record_id HAVING n != %d)", db, len(evals))).Scan(&badRecords); err != nil {
			t.Fatal(err)
		}
		if badRecords != 0 {
			t.Errorf("%d records without exactly %d rows", badRecords, len(evals))
		}
	})
}

// waitCommittedToEnd waits until group has committed every partition of topic to its end,
// failing the test if the run ends first or nothing is committed within two minutes.
func waitCommittedToEnd(t *testing.T, broker, topic, group string, partitions int, runEnded <-chan struct{}) {
	t.Helper()
	ends := make(map[int]int64, partitions)
	ids := make([]int, partitions)
	for p := range partitions {
		ids[p] = p
		ends[p] = lastOffset(t, broker, topic, p)
	}
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		resp, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
		if err != nil {
			t.Fatal(err)
		}
		atEnd := 0
		for _, p := range resp.Topics[topic] {
			if p.CommittedOffset == ends[p.Partition] {
				atEnd++
			}
		}
		if atEnd == partitions {
			return
		}
		select {
		case <-runEnded:
			t.Fatalf("group %s: the run ended before committing %d partitions to their end", group, partitions)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s: %d of %d partitions committed to their end after 2 minutes", group, atEnd, partitions)
		}
	}
}
