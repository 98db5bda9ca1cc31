package app

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/consumer"
	"raterd/internal/testkit"
	"raterd/internal/testkit/chtest"
)

// fromTestConfig is a raterd.yaml with one model-judged evaluator whose criteria (and so
// rubric version) the test changes between runs.
func fromTestConfig(t *testing.T, s testkit.Services, topic, group, db, simURL, criteria string) *Config {
	t.Helper()
	text := fmt.Sprintf(`
kafka:
  brokers: [%s]
  topics: [%s]
  group_id: %s
  batch: {max_records: 20, linger: 20ms}
  commit_interval: 100ms
clickhouse:
  addrs: [%s]
  database: %s
judges:
  sim:
    type: openai
    model: judgesim-from
    endpoints: [{url: %q, max_in_flight: 16}]
evaluators:
  - {name: helpfulness, judge: sim, criteria: %q}
admin: {listen: "off"}
telemetry: {log_level: warn}
`, s.Kafka, topic, group, s.ClickHouse, db, simURL, criteria)
	cfg, err := ParseConfig([]byte(text), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// groupMembers returns how many members the consumer group has.
func groupMembers(t testing.TB, broker, group string) int {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	resp, err := client.DescribeGroups(context.Background(), &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range resp.Groups {
		n += len(g.Members)
	}
	return n
}

// TestFromRescoresExactlyFromTheTime drains a topic of records with known Kafka
// timestamps, changes the rubric, rewinds the group with --from and runs again: the group
// rereads exactly the records at or after the time, and ClickHouse holds new-rubric rows
// for exactly those records. While the group consumes, the rewind is refused.
func TestFromRescoresExactlyFromTheTime(t *testing.T) {
	s := testkit.RequireServices(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, db, group := "it-from-"+suffix, "raterd_itfrom_"+suffix, "it-from-"+suffix
	const partitions, n, fromIndex = 2, 40, 25
	testkit.CreateTopic(t, s.Kafka, topic, partitions)
	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		at := base.Add(time.Duration(i) * time.Minute)
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "k-%d", i), Time: at, Value: fmt.Appendf(nil,
			`{"id":"from-%d","timestamp":%q,"model":"support-llm-v7","prompt":"Question %d?","response":"Answer %d."}`,
			i, at.Format(time.RFC3339), i, i)}
	}
	testkit.ProduceMessages(t, s.Kafka, topic, msgs)
	conn := chtest.Migrated(t, s.ClickHouse, db)
	simURL, _ := startSimulator(t)

	cfg1 := fromTestConfig(t, s, topic, group, db, simURL, "Is the answer helpful?")
	runGroup(t, cfg1, n)
	waitCommittedToEnd(t, s.Kafka, topic, group, partitions, time.Minute)

	// What the rewind must find, from the log itself: per partition, the first offset
	// whose timestamp is at or after from.
	from := base.Add(fromIndex * time.Minute)
	ends := testkit.EndOffsets(t, s.Kafka, topic)
	targets := map[int]int64{}
	for id, end := range ends {
		targets[id] = end
	}
	wantIDs := map[string]bool{}
	for _, m := range testkit.ReadTopic(t, s.Kafka, topic, nil) {
		i, err := strconv.Atoi(strings.TrimPrefix(string(m.Key), "k-"))
		if err != nil || !m.Time.Equal(msgs[i].Time) {
			t.Fatalf("message %s (key %s) has time %s; want the producer's timestamps", testkit.Coordinates(m), m.Key, m.Time)
		}
		if !m.Time.Before(from) {
			if m.Offset < targets[m.Partition] {
				targets[m.Partition] = m.Offset
			}
			wantIDs[fmt.Sprintf("from-%d", i)] = true
		}
	}
	if len(wantIDs) != n-fromIndex {
		t.Fatalf("%d records at or after %s, want %d", len(wantIDs), from, n-fromIndex)
	}

	// While a member of the group consumes, the rewind is refused.
	p, _, leave := startPipeline(t, cfg1)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	for groupMembers(t, s.Kafka, group) == 0 {
		select {
		case err := <-errc:
			t.Fatalf("pipeline stopped before joining the group: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if _, err := RewindGroup(context.Background(), cfg1, from, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "active member") {
		t.Fatalf("rewind of a consuming group: err = %v, want a refusal naming its active members", err)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	leave()
	if p.Stats().Fetched != 0 {
		t.Fatalf("the drained group fetched %d messages", p.Stats().Fetched)
	}

	// A rubric change, then --from: every partition goes back to its first record at or
	// after the time, and the log says so.
	cfg2 := fromTestConfig(t, s, topic, group, db, simURL, "Is the answer helpful, correct and concise?")
	var logs bytes.Buffer
	resets, err := RewindGroup(context.Background(), cfg2, from, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(resets) != partitions {
		t.Fatalf("%d partitions reset, want %d", len(resets), partitions)
	}
	var total int64
	for _, r := range resets {
		want := consumer.OffsetReset{TopicPartition: consumer.TopicPartition{Topic: topic, Partition: r.Partition},
			Committed: ends[r.Partition], Target: targets[r.Partition], End: ends[r.Partition], New: targets[r.Partition]}
		if r != want {
			t.Errorf("reset %+v, want %+v", r, want)
		}
		line := fmt.Sprintf("partition=%d old_offset=%d new_offset=%d end_offset=%d records=%d", r.Partition, ends[r.Partition], targets[r.Partition], ends[r.Partition], ends[r.Partition]-targets[r.Partition])
		if !strings.Contains(logs.String(), line) {
			t.Errorf("the log lacks %q:\n%s", line, logs.String())
		}
		total += r.Records()
	}
	if total != n-fromIndex {
		t.Fatalf("%d records to rescore, want %d", total, n-fromIndex)
	}
	// A group that never committed starts at the time, not at kafka.start_offset.
	fresh := *cfg2
	fresh.Kafka.GroupID = group + "-new"
	freshResets, err := RewindGroup(context.Background(), &fresh, from, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range freshResets {
		if r.Committed != -1 || r.New != targets[r.Partition] {
			t.Errorf("new group: reset %+v, want from no commit to %d", r, targets[r.Partition])
		}
	}
	checkCommitted(t, s.Kafka, topic, fresh.Kafka.GroupID, targets)

	p2, _, _ := startPipeline(t, cfg2)
	ctx2, cancel2 := context.WithCancel(context.Background())
	errc2 := make(chan error, 1)
	go func() { errc2 <- p2.Run(ctx2) }()
	waitCommittedToEnd(t, s.Kafka, topic, group, partitions, time.Minute)
	cancel2()
	if err := <-errc2; err != nil {
		t.Fatal(err)
	}
	if st := p2.Stats(); st.Fetched != n-fromIndex || st.Done != n-fromIndex {
		t.Fatalf("after --from the group fetched %d and did %d records, want exactly %d: %+v", st.Fetched, st.Done, n-fromIndex, st)
	}

	// ClickHouse: the old rubric scored all, the new one exactly the records from the time.
	rows, err := conn.Query(context.Background(), "SELECT rubric_version, groupArray(record_id) FROM "+db+".scores FINAL WHERE evaluator = 'helpfulness' GROUP BY rubric_version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var sizes []int
	var newIDs []string
	for rows.Next() {
		var version string
		var ids []string
		if err := rows.Scan(&version, &ids); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(ids))
		if len(ids) < n {
			newIDs = ids
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Ints(sizes)
	if fmt.Sprint(sizes) != fmt.Sprint([]int{n - fromIndex, n}) {
		t.Fatalf("rows per rubric version %v, want [%d %d]", sizes, n-fromIndex, n)
	}
	for _, id := range newIDs {
		if !wantIDs[id] {
			t.Errorf("record %s, before --from, was rescored", id)
		}
	}
}

// checkCommitted checks the group's committed offset of every partition.
func checkCommitted(t testing.TB, broker, topic, group string, want map[int]int64) {
	t.Helper()
	ids := make([]int, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	resp, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics[topic]) != len(want) {
		t.Fatalf("group %s: committed offsets for %d partitions, want %d", group, len(resp.Topics[topic]), len(want))
	}
	for _, p := range resp.Topics[topic] {
		if p.CommittedOffset != want[p.Partition] {
			t.Errorf("group %s partition %d: committed %d, want %d", group, p.Partition, p.CommittedOffset, want[p.Partition])
		}
	}
}
