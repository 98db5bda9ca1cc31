package consumer

// TopicChecker against the real Kafka broker (skipped without RATERD_TEST_KAFKA, failed
// with RATERD_REQUIRE_SERVICES=1).

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"raterd/internal/telemetry"
	"raterd/internal/testkit"
)

// TestTopicCheckerRealKafka: a topic that does not exist is reported missing, and stays
// so: the check does not create it, although this broker auto-creates topics
// (auto.create.topics.enable=true in scripts/services.sh) for clients that ask. Once
// created, it is reported present.
func TestTopicCheckerRealKafka(t *testing.T) {
	broker := testkit.Service(t, "RATERD_TEST_KAFKA", "Kafka broker")
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	missing, present := "topic-check-missing-"+suffix, "topic-check-present-"+suffix
	testkit.CreateTopic(t, broker, present, 1)
	t.Cleanup(func() { testkit.DeleteTopics(broker, missing) })
	c := NewTopicChecker(Config{Brokers: []string{broker}, Topics: []string{present, missing}}, nil)
	check := func() []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := c.Missing(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for i := range 3 {
		if got := check(); !slices.Equal(got, []string{missing}) {
			t.Fatalf("check %d: missing = %v, want [%s]", i, got, missing)
		}
		time.Sleep(200 * time.Millisecond) // an auto-creation would show by now
	}
	testkit.CreateTopic(t, broker, missing, 2)
	if got := check(); len(got) != 0 {
		t.Fatalf("missing = %v after creating %s, want none", got, missing)
	}
}

// TestTopicCheckerUnownedPartitions: a topic whose partitions no member of the group
// owns is reported with their count, and a topic the group owns is not. The group here
// reads one topic and the checker looks at two: the state a group is in when a topic it
// reads is created after it formed.
func TestTopicCheckerUnownedPartitions(t *testing.T) {
	broker := testkit.Service(t, "RATERD_TEST_KAFKA", "Kafka broker")
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	read, stranded, group := "topic-owned-"+suffix, "topic-stranded-"+suffix, "topic-owners-"+suffix
	testkit.CreateTopic(t, broker, read, 2)
	testkit.CreateTopic(t, broker, stranded, 3)
	t.Cleanup(func() { testkit.DeleteTopics(broker, read, stranded) })

	cfg := Config{Brokers: []string{broker}, Topics: []string{read}, GroupID: group, SessionTimeout: 6 * time.Second, RebalanceTimeout: 10 * time.Second}
	if err := cfg.Validate("kafka"); err != nil {
		t.Fatal(err)
	}
	r, err := NewGroupReader(cfg, nil, telemetry.Settings{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	waitFor(t, "the member to own both partitions", 30*time.Second, func() bool { return len(r.Owned()) == 2 })

	c := NewTopicChecker(Config{Brokers: []string{broker}, Topics: []string{read, stranded}, GroupID: group}, nil)
	var report TopicReport
	waitFor(t, "a stable group in the check", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		report, err = c.Check(ctx)
		return err == nil && report.Unowned != nil
	})
	if len(report.Missing) != 0 || len(report.Unowned) != 1 || report.Unowned[stranded] != 3 {
		t.Fatalf("report = %+v, want only %s with 3 unowned partitions", report, stranded)
	}
}
