package consumer

// GroupLag against the real Kafka broker (skipped without RATERD_TEST_KAFKA, failed with
// RATERD_REQUIRE_SERVICES=1).

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/internal/testkit"
)

func TestGroupLagFollowsCommits(t *testing.T) {
	broker := testkit.Service(t, "RATERD_TEST_KAFKA", "Kafka broker")
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, group := "group-lag-"+suffix, "group-lag-"+suffix
	testkit.CreateTopic(t, broker, topic, 2)
	defer testkit.DeleteTopics(broker, topic)
	var msgs []kafka.Message
	for i := range 5 {
		msgs = append(msgs, kafka.Message{Partition: i % 2, Value: []byte(strconv.Itoa(i))})
	}
	testkit.ProduceMessages(t, broker, topic, msgs)
	ends := testkit.EndOffsets(t, broker, topic)

	ctx := context.Background()
	cfg := Config{Brokers: []string{broker}, Topics: []string{topic}, GroupID: group}
	lags, err := GroupLag(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(lags) != 2 || lags[0].Partition != 0 || lags[1].Partition != 1 {
		t.Fatalf("lags = %+v, want partitions 0 and 1 in order", lags)
	}
	for _, l := range lags {
		if l.Committed != -1 || l.End != ends[l.Partition] {
			t.Errorf("before any commit: %+v, want committed -1 and end %d", l, ends[l.Partition])
		}
	}
	if got := TotalLag(lags); got != 5 {
		t.Fatalf("total lag before any commit = %d, want 5", got)
	}

	// Commit partition 0 to its end, as raterd does once its records are done.
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	resp, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1,
		Topics: map[string][]kafka.OffsetCommit{topic: {{Partition: 0, Offset: ends[0]}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			t.Fatal(p.Error)
		}
	}
	lags, err = GroupLag(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lags[0].Committed != ends[0] || lags[0].Lag() != 0 || lags[1].Lag() != ends[1] {
		t.Errorf("after committing partition 0: %+v, want partition 0 caught up and partition 1 at %d", lags, ends[1])
	}
	if got := TotalLag(lags); got != ends[1] {
		t.Errorf("total lag after committing partition 0 = %d, want %d", got, ends[1])
	}

	missing := "group-lag-missing-" + suffix
	if _, err := GroupLag(ctx, Config{Brokers: []string{broker}, Topics: []string{missing}, GroupID: group}, nil); err == nil ||
		!strings.Contains(err.Error(), "topic "+missing+" does not exist") {
		t.Errorf("GroupLag on a missing topic: err = %v, want one naming the topic", err)
	}
}
