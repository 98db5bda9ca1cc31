package testkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// topicReadyTimeout bounds how long CreateTopic waits for a new topic's leaders.
const topicReadyTimeout = 30 * time.Second

// CreateTopic creates topic with the given number of partitions (replication factor 1)
// through the cluster's controller on broker, and waits until the broker's metadata shows
// every partition with a leader: creation is asynchronous, and a write to a partition
// without a leader yet can fail or, with no acks, be lost. It fails the test when the
// topic cannot be created or is not ready within 30s. The topic is deleted when the test
// ends.
func CreateTopic(t testing.TB, broker, topic string, partitions int) {
	t.Helper()
	conn, err := kafka.Dial("tcp", broker)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		t.Fatal(err)
	}
	cc, err := kafka.Dial("tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if err := cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	t.Cleanup(func() { DeleteTopics(broker, topic) })
	deadline := time.Now().Add(topicReadyTimeout)
	for {
		led, err := ledPartitions(broker, topic)
		if err == nil && led == partitions {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s: %d of %d partitions with a leader after %s (%v)", topic, led, partitions, topicReadyTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ledPartitions returns how many partitions of topic have a leader, 0 when the topic does
// not exist. It asks the broker through a fresh transport: kafka.Client.Metadata answers
// from its transport's cache, and kafka.Conn.ReadPartitions would auto-create a missing
// topic.
func ledPartitions(broker, topic string) (int, error) {
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second, Transport: tr}
	meta, err := client.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, tp := range meta.Topics {
		if tp.Name != topic || tp.Error != nil {
			continue
		}
		for _, p := range tp.Partitions {
			if p.Error == nil && p.Leader.Host != "" {
				n++
			}
		}
	}
	return n, nil
}

// DeleteTopics deletes topics on broker, best effort: topics that do not exist and other
// errors are ignored, as befits a test's cleanup.
func DeleteTopics(broker string, topics ...string) {
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second}
	_, _ = client.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: topics})
}

// ProduceMessages writes messages (key, value, headers, time as given) to topic and
// waits for every replica's acknowledgement.
func ProduceMessages(t testing.TB, broker, topic string, msgs []kafka.Message) {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(broker), Topic: topic, Balancer: &kafka.Hash{}, BatchTimeout: 5 * time.Millisecond,
		BatchBytes: 4 << 20, RequiredAcks: kafka.RequireAll, Transport: tr}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// LastOffset returns the end offset of one partition of topic.
func LastOffset(broker, topic string, partition int) (int64, error) {
	conn, err := kafka.DialLeader(context.Background(), "tcp", broker, topic, partition)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return conn.ReadLastOffset()
}

// EnsureTopic creates topic with the given partitions unless it exists (a topic another
// process creates on first write, such as the collector's), and waits until every one of
// its partitions answers for its end offset: a fresh topic's leaders take a moment to be
// known to every broker. It fails the test after 30s.
func EnsureTopic(t testing.TB, broker, topic string, partitions int) {
	t.Helper()
	kc := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	res, err := kc.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	if err := res.Errors[topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		t.Fatalf("create %s: %v", topic, err)
	}
	deadline := time.Now().Add(topicReadyTimeout)
	for {
		err := endOffsetsAnswer(broker, topic)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s not readable after %s: %v", topic, topicReadyTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// endOffsetsAnswer asks every partition of topic for its end offset, through a fresh
// connection (no cached metadata).
func endOffsetsAnswer(broker, topic string) error {
	conn, err := kafka.Dial("tcp", broker)
	if err != nil {
		return err
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		return fmt.Errorf("no partitions yet")
	}
	for _, p := range parts {
		if _, err := LastOffset(broker, topic, p.ID); err != nil {
			return err
		}
	}
	return nil
}

// EndOffsets returns the end offset of every partition of topic.
func EndOffsets(t testing.TB, broker, topic string) map[int]int64 {
	t.Helper()
	conn, err := kafka.Dial("tcp", broker)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	ends := map[int]int64{}
	for _, p := range parts {
		if ends[p.ID], err = LastOffset(broker, topic, p.ID); err != nil {
			t.Fatal(err)
		}
	}
	return ends
}

// ReadTopic reads every partition of topic from the offsets in from (0 where absent) to its
// end offset now, in partition and offset order.
func ReadTopic(t testing.TB, broker, topic string, from map[int]int64) []kafka.Message {
	t.Helper()
	ends := EndOffsets(t, broker, topic)
	ids := make([]int, 0, len(ends))
	for id := range ends {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	var out []kafka.Message
	for _, id := range ids {
		if from[id] >= ends[id] {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic, Partition: id, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(from[id]); err != nil {
			t.Fatal(err)
		}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			m, err := r.ReadMessage(ctx)
			cancel()
			if err != nil {
				t.Fatalf("read %s/%d: %v", topic, id, err)
			}
			out = append(out, m)
			if m.Offset >= ends[id]-1 {
				break
			}
		}
		r.Close()
	}
	return out
}

// Coordinates names a message by topic/partition/offset.
func Coordinates(m kafka.Message) string {
	return fmt.Sprintf("%s/%d/%d", m.Topic, m.Partition, m.Offset)
}
