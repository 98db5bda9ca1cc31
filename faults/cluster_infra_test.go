package faults

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestKafkaClusterFailover checks the cluster the cluster scenarios stand on: with
// replication factor 3 and min.insync.replicas 2, acknowledged writes survive the kill of
// a partition's leader and of the active controller, a new leader and a new controller
// take over, and every message is read back.
func TestKafkaClusterFailover(t *testing.T) {
	c := newKafkaCluster(t, filepath.Join(t.TempDir(), "cluster"))
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	topic := "cluster-smoke-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c.createTopic(t, topic, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	produce := func(from, n int) {
		t.Helper()
		w := &kafka.Writer{Addr: kafka.TCP(c.brokers()...), Topic: topic, RequiredAcks: kafka.RequireAll, Balancer: &kafka.RoundRobin{},
			BatchTimeout: time.Millisecond, MaxAttempts: 20, Transport: &kafka.Transport{}}
		defer w.Close()
		msgs := make([]kafka.Message, n)
		for i := range msgs {
			msgs[i] = kafka.Message{Value: []byte(fmt.Sprint(from + i))}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("produce %d..%d: %v", from, from+n, err)
		}
	}
	produce(0, 500)

	leader, err := c.partitionLeader(topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.node(leader).p.stop(syscall.SIGKILL, 10*time.Second)
	if err := c.waitBrokers(clusterNodes-1, time.Minute); err != nil {
		t.Fatal(err)
	}
	produce(500, 500) // a new leader takes acks=all writes with 2 in sync
	if now, err := c.partitionLeader(topic, 0); err != nil || now == leader {
		t.Fatalf("partition 0 leader after killing node %d: %d, %v", leader, now, err)
	}
	if err := c.start(); err != nil { // the killed node comes back
		t.Fatal(err)
	}

	active, err := c.activeController()
	if err != nil {
		t.Fatal(err)
	}
	_ = c.node(active).p.stop(syscall.SIGKILL, 10*time.Second)
	deadline := time.Now().Add(time.Minute)
	for {
		next, err := c.activeController()
		if err == nil && next != active {
			t.Logf("controller failover: node %d -> %d", active, next)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new active controller after killing node %d: %d, %v", active, next, err)
		}
		time.Sleep(time.Second)
	}
	produce(1000, 500)
	if err := c.start(); err != nil {
		t.Fatal(err)
	}

	seen := map[string]bool{}
	for p := range 2 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.brokers(), Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		last, err := c.client().ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(p)}}})
		if err != nil {
			t.Fatal(err)
		}
		end := last.Topics[topic][0].LastOffset
		for off := int64(0); off < end; off++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("read %s/%d at %d of %d: %v", topic, p, off, end, err)
			}
			seen[string(m.Value)] = true
		}
		r.Close()
	}
	if len(seen) != 1500 {
		t.Fatalf("read back %d distinct messages, want 1500", len(seen))
	}
}
