package consumer

// TopicChecker against the real Kafka broker (skipped without RATERD_TEST_KAFKA, failed
// with RATERD_REQUIRE_SERVICES=1).

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

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
