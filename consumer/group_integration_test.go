package consumer

// GroupReader against the real Kafka broker (skipped without RATERD_TEST_KAFKA, failed
// with RATERD_REQUIRE_SERVICES=1).

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/internal/telemetry"
	"raterd/internal/testkit"
)

// committedOffsets reads the group's committed offsets of topic's partitions.
func committedOffsets(t *testing.T, kc *kafka.Client, group, topic string, partitions int) map[int]int64 {
	t.Helper()
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	resp, err := kc.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGroupReaderOwnsItsCommits: a member commits only partitions it owns, hands its
// partitions back (through OnRevoke, while its commits still count) when a second member
// joins, and the new owner starts where the first left off.
func TestGroupReaderOwnsItsCommits(t *testing.T) {
	broker := testkit.Service(t, "RATERD_TEST_KAFKA", "Kafka broker")
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, group := "group-reader-"+suffix, "group-reader-"+suffix
	kc := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	testkit.CreateTopic(t, broker, topic, 4)
	// RequireAll: with kafka-go's default of no acks, a write to a partition whose leader
	// a just-created topic has not settled yet is dropped silently (this test once saw
	// three of its four partitions empty and waited for messages that never existed).
	w := &kafka.Writer{Addr: kafka.TCP(broker), Topic: topic, Balancer: &kafka.RoundRobin{}, BatchTimeout: time.Millisecond,
		RequiredAcks: kafka.RequireAll, Transport: &kafka.Transport{}}
	msgs := make([]kafka.Message, 400)
	for i := range msgs {
		msgs[i] = kafka.Message{Value: []byte(fmt.Sprint(i))}
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	cfg := Config{Brokers: []string{broker}, Topics: []string{topic}, GroupID: group, SessionTimeout: 6 * time.Second, RebalanceTimeout: 10 * time.Second}
	if err := cfg.Validate("kafka"); err != nil {
		t.Fatal(err)
	}
	// The readers' logs go to the test's output: shown when it fails (or with -v).
	logs := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := NewGroupReader(cfg, nil, telemetry.Settings{Logger: logs.With("member", "a")})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var mu sync.Mutex
	var revoked [][]TopicPartition
	var lastA map[int]kafka.Message // the last message A fetched per partition
	a.OnRevoke(func(ctx context.Context, parts []TopicPartition) {
		mu.Lock()
		revoked = append(revoked, parts)
		last := lastA
		mu.Unlock()
		// What a pipeline does here: commit what is done, while the commit still counts.
		var done []kafka.Message
		for _, m := range last {
			done = append(done, m)
		}
		if err := a.CommitMessages(ctx, done...); err != nil {
			t.Errorf("commit in OnRevoke: %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// a reads until it has at least 10 messages of every partition (the partition readers
	// feed one channel, not in turn), so each has a hand-back offset to check.
	lastA = map[int]kafka.Message{}
	seen := map[int]int{}
	for len(seen) < 4 || slices.Min(slices.Collect(maps.Values(seen))) < 10 {
		m, err := a.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen[m.Partition]++
		mu.Lock()
		lastA[m.Partition] = m
		mu.Unlock()
	}
	if got := len(a.Owned()); got != 4 {
		t.Fatalf("a alone owns %d partitions, want 4", got)
	}
	if err := a.CommitMessages(ctx, kafka.Message{Topic: topic, Partition: 0, Offset: 9}); err != nil {
		t.Fatal(err)
	}
	if c := committedOffsets(t, kc, group, topic, 4); c[0] != 10 {
		t.Fatalf("partition 0 committed %d, want 10 (the offset after the message)", c[0])
	}

	// A second member joins: a hands back all four (kafka-go rebalances eagerly) and
	// commits what it fetched, then the two split the partitions.
	b, err := NewGroupReader(cfg, nil, telemetry.Settings{Logger: logs.With("member", "b")})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	firstB := map[int]int64{} // the first offset b fetched per partition
	go func() {               // b must fetch to take part; it only records where it starts
		for ctx.Err() == nil {
			m, err := b.FetchMessage(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			if _, ok := firstB[m.Partition]; !ok {
				firstB[m.Partition] = m.Offset
			}
			mu.Unlock()
		}
	}()
	waitFor(t, "a rebalance that splits the partitions", 60*time.Second, func() bool {
		return len(a.Owned()) == 2 && len(b.Owned()) == 2
	})
	mu.Lock()
	if len(revoked) == 0 || len(revoked[0]) != 4 {
		t.Errorf("OnRevoke calls %v, want a first one with all 4 partitions", revoked)
	}
	mu.Unlock()
	c := committedOffsets(t, kc, group, topic, 4)
	for p, m := range lastA {
		if c[p] != m.Offset+1 {
			t.Errorf("partition %d committed %d after the hand-back, want %d", p, c[p], m.Offset+1)
		}
	}
	// The new owner starts where a stopped: no record a handed back is read again. (More
	// messages first: a may have read some partitions to their end.)
	if err := w.WriteMessages(context.Background(), msgs[:40]...); err != nil {
		t.Fatal(err)
	}
	bOwns := b.Owned()
	waitFor(t, "b's first message of each partition it owns", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, tp := range bOwns {
			if _, ok := firstB[tp.Partition]; !ok {
				return false
			}
		}
		return true
	})
	mu.Lock()
	for _, tp := range bOwns {
		if firstB[tp.Partition] != c[tp.Partition] {
			t.Errorf("b started partition %d at offset %d, want %d (where a's hand-back committed)", tp.Partition, firstB[tp.Partition], c[tp.Partition])
		}
	}
	mu.Unlock()

	// a now commits only what it owns: the commit for b's partitions is dropped, and so is
	// one that would move an owned partition's offset back below where this generation
	// started (late work of an earlier generation).
	owned := map[int]bool{}
	var back []kafka.Message
	for _, tp := range a.Owned() {
		owned[tp.Partition] = true
		back = append(back, kafka.Message{Topic: topic, Partition: tp.Partition, Offset: 0})
	}
	if err := a.CommitMessages(ctx, back...); err != nil {
		t.Fatal(err)
	}
	for p, off := range committedOffsets(t, kc, group, topic, 4) {
		if off != c[p] {
			t.Errorf("partition %d committed %d after a commit below its start, want it kept at %d", p, off, c[p])
		}
	}
	var all []kafka.Message
	for p := range 4 {
		all = append(all, kafka.Message{Topic: topic, Partition: p, Offset: 99})
	}
	if err := a.CommitMessages(ctx, all...); err != nil {
		t.Fatal(err)
	}
	after := committedOffsets(t, kc, group, topic, 4)
	for p := range 4 {
		want := c[p]
		if owned[p] {
			want = 100
		}
		if after[p] != want {
			t.Errorf("partition %d (owned by a: %v) committed %d, want %d", p, owned[p], after[p], want)
		}
	}

	// Closing ends a's generation without the hand-back: the pipeline made its final
	// commit before closing its reader, and a hook would only wait out its deadline.
	mu.Lock()
	calls := len(revoked)
	mu.Unlock()
	if err := a.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	mu.Lock()
	if len(revoked) != calls {
		t.Errorf("OnRevoke ran on Close: %v", revoked[calls:])
	}
	mu.Unlock()
}

// TestGroupReaderTakesNewPartitions: a topic grown from 1 to 3 partitions while a member
// runs is taken within topic_watch_interval and a rebalance, without a restart, and its
// new partitions' messages are fetched. The control runs the same with the watcher's
// interval at an hour: the member keeps its one partition (kafka-go's own watcher is off),
// so the growth really is something only the watcher picks up.
func TestGroupReaderTakesNewPartitions(t *testing.T) {
	broker := testkit.Service(t, "RATERD_TEST_KAFKA", "Kafka broker")
	for _, tc := range []struct {
		name     string
		interval time.Duration
		takes    bool
	}{{"watcher", time.Second, true}, {"control-no-watch", time.Hour, false}} {
		t.Run(tc.name, func(t *testing.T) {
			suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
			topic := "group-grow-" + suffix
			testkit.CreateTopic(t, broker, topic, 1)
			cfg := Config{Brokers: []string{broker}, Topics: []string{topic}, GroupID: topic, SessionTimeout: 6 * time.Second,
				RebalanceTimeout: 10 * time.Second, TopicWatchInterval: tc.interval}
			if err := cfg.Validate("kafka"); err != nil {
				t.Fatal(err)
			}
			logs := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			r, err := NewGroupReader(cfg, nil, telemetry.Settings{Logger: logs})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			go func() { // the member must fetch to take part in the group
				for ctx.Err() == nil {
					if _, err := r.FetchMessage(ctx); err != nil {
						return
					}
				}
			}()
			waitFor(t, "the member to own the topic's one partition", 30*time.Second, func() bool { return len(r.Owned()) == 1 })

			kc := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
			res, err := kc.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 3}}})
			if err != nil {
				t.Fatal(err)
			}
			if err := res.Errors[topic]; err != nil {
				t.Fatalf("grow %s: %v", topic, err)
			}
			if !tc.takes {
				// Long enough for several watches and a rebalance had the watcher run.
				time.Sleep(8 * time.Second)
				if got := len(r.Owned()); got != 1 {
					t.Fatalf("without the watcher the member owns %d partitions, want still 1 (does something else pick up new partitions now?)", got)
				}
				return
			}
			waitFor(t, "the member to own all 3 partitions", 30*time.Second, func() bool { return len(r.Owned()) == 3 })
		})
	}
}
