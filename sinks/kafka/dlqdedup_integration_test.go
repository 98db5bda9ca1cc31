package kafka

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"raterd/internal/testkit"
	"raterd/record"
)

// TestReplayDeadLettersSkipsDuplicateSources writes, against the real broker, two dead
// letters for each of six source messages (as raterd run --from leaves them: the second
// on the other dead-letter partition or later on the same one), plus two letters without
// source coordinates. One replay produces each source message once, counts the six
// others as duplicates (a dry run lists them, naming the first letter), replays both
// letters without coordinates, and a second run reads nothing.
func TestReplayDeadLettersSkipsDuplicateSources(t *testing.T) {
	broker := testkit.Service(t, "RATERD_TEST_KAFKA", "Kafka broker")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	source := uniqueName("raterd-sinks-test-dedup-")
	dlq := DLQTopic(source)
	testkit.CreateTopic(t, broker, source, 2)
	testkit.CreateTopic(t, broker, dlq, 2)

	const sources = 6
	letter := func(p int, off int64, dlqPartition int) kafkago.Message {
		m := deadLetterMessage(record.DeadLetter{
			Source: record.Source{Topic: source, Partition: p, Offset: off},
			Key:    fmt.Appendf(nil, "src-%d-%d", p, off), Value: fmt.Appendf(nil, `{"model":"m","response":"src-%d-%d`, p, off),
			Reason: "invalid_json", Error: "unexpected end of JSON input", FirstSeen: time.Now(), Attempts: 1,
		})
		m.Topic, m.Partition = "", dlqPartition
		return m
	}
	var letters []kafkago.Message
	for pass := range 2 { // consumed, then rescored
		for i := range sources {
			dp := 0
			if pass == 1 && i%2 == 0 {
				dp = 1
			}
			letters = append(letters, letter(i%2, int64(100+i), dp))
		}
	}
	// Without raterd-source-offset: not deduplicated, both replayed.
	for range 2 {
		m := letter(0, 999, 1)
		m.Headers = slices.DeleteFunc(slices.Clone(m.Headers), func(h kafkago.Header) bool { return h.Key == HeaderSourceOffset })
		m.Key = []byte("no-coordinates")
		letters = append(letters, m)
	}
	tr := &kafkago.Transport{}
	defer tr.CloseIdleConnections()
	// sourcePartitionBalancer: to the partition each letter names.
	w := &kafkago.Writer{Addr: kafkago.TCP(broker), Topic: dlq, Balancer: &sourcePartitionBalancer{}, RequiredAcks: kafkago.RequireAll,
		BatchTimeout: time.Millisecond, Transport: tr}
	if err := w.WriteMessages(ctx, letters...); err != nil {
		t.Fatalf("write dead letters: %v", err)
	}
	w.Close()

	cfg := DLQReplayConfig{Brokers: []string{broker}, Sources: []string{source}, GroupID: uniqueName("raterd-sinks-test-dedup-"), BatchSize: 3}
	dry := cfg
	dry.DryRun = true
	var duplicates []ReplayLetter
	dry.OnLetter = func(l ReplayLetter) {
		if l.Action == ReplayDuplicate {
			duplicates = append(duplicates, l)
		}
	}
	stats, err := ReplayDeadLetters(ctx, dry)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if stats.Read != 2*sources+2 || stats.Replayed != sources+2 || stats.Duplicates != sources || len(duplicates) != sources {
		t.Errorf("dry run: %+v, %d duplicates listed; want %d read, %d to replay, %d duplicates", stats, len(duplicates), 2*sources+2, sources+2, sources)
	}
	for _, l := range duplicates {
		if l.DuplicateOf == "" || l.DuplicateOf == l.Coordinates() {
			t.Errorf("duplicate %s (source %d/%d) names %q as its first letter", l.Coordinates(), l.SourcePartition, l.SourceOffset, l.DuplicateOf)
		}
	}

	ends := testkit.EndOffsets(t, broker, source)
	stats, err = ReplayDeadLetters(ctx, cfg)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if stats.Replayed != sources+2 || stats.Duplicates != sources || stats.Errors != 0 {
		t.Errorf("replay: %+v; want %d replayed, %d duplicates", stats, sources+2, sources)
	}
	got := map[string]int{} // key -> messages in the source topic
	for _, m := range testkit.ReadTopic(t, broker, source, ends) {
		got[string(m.Key)]++
	}
	for i := range sources {
		if k := fmt.Sprintf("src-%d-%d", i%2, 100+i); got[k] != 1 {
			t.Errorf("source message %s: %d replays in %s, want 1", k, got[k], source)
		}
	}
	if got["no-coordinates"] != 2 {
		t.Errorf("letters without source coordinates: %d replays, want 2 (not deduplicated)", got["no-coordinates"])
	}
	if n := len(testkit.ReadTopic(t, broker, source, ends)); n != sources+2 {
		t.Errorf("%s got %d messages, want %d", source, n, sources+2)
	}

	// Everything, duplicates included, is behind the group's commit.
	stats, err = ReplayDeadLetters(ctx, cfg)
	if err != nil || stats.Read != 0 || stats.Replayed != 0 {
		t.Fatalf("second run: %+v, %v; want nothing read", stats, err)
	}
}
