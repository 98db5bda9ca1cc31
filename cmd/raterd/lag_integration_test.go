package main

// raterd lag against the real Kafka broker (skipped without RATERD_TEST_KAFKA, failed
// with RATERD_REQUIRE_SERVICES=1).

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/internal/testkit"
)

// TestLagWaitsForTheGroup: lag --wait fails while the group has not read the topic, and
// succeeds, with every partition at 0, once raterd has scored and committed everything.
func TestLagWaitsForTheGroup(t *testing.T) {
	broker := testkit.Service(t, "RATERD_TEST_KAFKA", "Kafka broker")
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, group := "lag-cli-"+suffix, "lag-cli-group-"+suffix
	testkit.CreateTopic(t, broker, topic, 2)
	defer testkit.DeleteTopics(broker, topic, topic+".dlq")
	const n = 20
	var msgs []kafka.Message
	for i := range n {
		msgs = append(msgs, kafka.Message{Partition: i % 2, Value: fmt.Appendf(nil,
			`{"id":"lag-%d","model":"m","prompt":"hello","response":"Hello! How can I help?"}`, i)})
	}
	testkit.ProduceMessages(t, broker, topic, msgs)
	cfg, path := dlqTestConfig(t, broker, topic, group)

	lag := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := runMain(append([]string{"lag", "--config", path}, args...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	code, out, errOut := lag("--wait", "1500ms")
	if code == 0 || !strings.Contains(errOut, fmt.Sprintf("still %d records behind", n)) {
		t.Fatalf("lag --wait before any consumer: exit %d, stderr %q; want a failure saying %d records behind", code, errOut, n)
	}
	if !strings.Contains(out, fmt.Sprintf("consumer group %s: %d records behind", group, n)) {
		t.Errorf("lag table before any consumer:\n%s", out)
	}

	runGroup(t, cfg, n)
	code, out, errOut = lag("--wait", "30s")
	if code != 0 {
		t.Fatalf("lag --wait after the group finished: exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, fmt.Sprintf("consumer group %s: 0 records behind", group)) || strings.Count(out, topic+" ") != 2 {
		t.Errorf("lag table after the group finished (want both partitions, 0 behind):\n%s", out)
	}
}
