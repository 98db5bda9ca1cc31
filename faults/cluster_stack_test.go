package faults

// A private three-node Kafka KRaft cluster for the cluster scenarios: every node is a
// broker and a controller (a three-voter quorum), on loopback ports of its own, from the
// same jars as the single broker (scripts/services.sh installs them). Topics default to
// replication factor 3 with min.insync.replicas 2, so one node may be down at any time
// without losing an acknowledged write.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/internal/testkit"
)

// clusterNodes is the size of the cluster.
const clusterNodes = 3

// kafkaCluster is three KRaft nodes whose log directories survive restarts.
type kafkaCluster struct {
	nodes []*clusterNode
	libs  string
}

// clusterNode is one node: node.id id, its client and controller addresses.
type clusterNode struct {
	id         int
	addr       string
	controller string
	p          *proc
}

// newKafkaCluster writes and formats three nodes' storage under dir; start them with
// start.
func newKafkaCluster(t *testing.T, dir string) *kafkaCluster {
	t.Helper()
	libs := testkit.Service(t, "RATERD_TEST_KAFKA_LIBS", "Kafka jars")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	c := &kafkaCluster{libs: libs}
	var voters []string
	for i := range clusterNodes {
		n := &clusterNode{id: i + 1, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), controller: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
		voters = append(voters, fmt.Sprintf("%d@%s", n.id, n.controller))
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		ndir := filepath.Join(dir, fmt.Sprintf("node-%d", n.id))
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			t.Fatal(err)
		}
		props := filepath.Join(ndir, "server.properties")
		text := strings.Join([]string{
			"process.roles=broker,controller", "node.id=" + strconv.Itoa(n.id),
			"controller.quorum.voters=" + strings.Join(voters, ","),
			"listeners=PLAINTEXT://" + n.addr + ",CONTROLLER://" + n.controller,
			"advertised.listeners=PLAINTEXT://" + n.addr + ",CONTROLLER://" + n.controller,
			"controller.listener.names=CONTROLLER", "inter.broker.listener.name=PLAINTEXT",
			"listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
			"log.dirs=" + filepath.Join(ndir, "data"), "num.partitions=4",
			"default.replication.factor=3", "min.insync.replicas=2", "auto.create.topics.enable=true",
			"offsets.topic.replication.factor=3", "offsets.topic.num.partitions=4",
			"transaction.state.log.replication.factor=3", "transaction.state.log.min.isr=2",
			"share.coordinator.state.topic.replication.factor=3", "share.coordinator.state.topic.min.isr=2",
			"group.initial.rebalance.delay.ms=0", "group.min.session.timeout.ms=2000",
			"unclean.leader.election.enable=false",
			"num.network.threads=2", "num.io.threads=2", "controlled.shutdown.enable=true",
		}, "\n") + "\n"
		if err := os.WriteFile(props, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		java := func(heap string, args ...string) []string {
			return append([]string{"java", heap, "-XX:TieredStopAtLevel=1", "-Dlog4j2.configurationFile=" + filepath.Join(root, "deploy/kafka/log4j2.xml"),
				"-Dkafka.logs.dir=" + filepath.Join(ndir, "logs"), "-cp", filepath.Join(libs, "*")}, args...)
		}
		format := exec.Command("java")
		format.Args = java("-Xmx256m", "kafka.tools.StorageTool", "format", "-t", "cmF0ZXJkLWNsdXN0ZXIx", "-c", props)
		if out, err := format.CombinedOutput(); err != nil {
			t.Fatalf("format kafka node %d storage: %v\n%s", n.id, err, out)
		}
		n.p = &proc{name: fmt.Sprintf("kafka-%d", n.id), dir: ndir, log: filepath.Join(ndir, "kafka.log"),
			args: java("-Xmx384m", "-XX:+UseSerialGC", "kafka.Kafka", props)}
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			_ = n.p.stop(syscall.SIGKILL, 10*time.Second)
		}
	})
	return c
}

// brokers are the nodes' client addresses.
func (c *kafkaCluster) brokers() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.addr
	}
	return out
}

// start starts every node that is not running and waits until the cluster answers with
// all of them registered.
func (c *kafkaCluster) start() error {
	for _, n := range c.nodes {
		if !n.p.running() {
			if err := n.p.start(); err != nil {
				return err
			}
		}
	}
	return c.waitBrokers(clusterNodes, 3*time.Minute)
}

// node returns the node with id.
func (c *kafkaCluster) node(id int) *clusterNode {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// waitBrokers waits until the cluster's metadata lists want live brokers.
func (c *kafkaCluster) waitBrokers(want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		n, err := c.liveBrokers()
		if err == nil && n == want {
			return nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("%d of %d brokers registered", n, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var logs []string
	for _, n := range c.nodes {
		logs = append(logs, fmt.Sprintf("node %d (running %v):\n%s", n.id, n.p.running(), n.p.tail(15)))
	}
	return fmt.Errorf("kafka cluster: not %d brokers after %s: %v\n%s", want, timeout, last, strings.Join(logs, "\n"))
}

// client is a kafka-go client on every running node.
func (c *kafkaCluster) client() *kafka.Client {
	var addrs []string
	for _, n := range c.nodes {
		if n.p.running() {
			addrs = append(addrs, n.addr)
		}
	}
	return &kafka.Client{Addr: kafka.TCP(addrs...), Timeout: 5 * time.Second, Transport: &kafka.Transport{}}
}

func (c *kafkaCluster) liveBrokers() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	meta, err := c.client().Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		return 0, err
	}
	return len(meta.Brokers), nil
}

// partitionLeader is the node id leading topic's partition.
func (c *kafkaCluster) partitionLeader(topic string, partition int) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	meta, err := c.client().Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, err
	}
	for _, t := range meta.Topics {
		for _, p := range t.Partitions {
			if t.Name == topic && p.ID == partition {
				return p.Leader.ID, t.Error
			}
		}
	}
	return 0, fmt.Errorf("kafka cluster: no partition %s/%d in the metadata", topic, partition)
}

// activeController is the node id of the quorum's leader (the active controller), as the
// kafka-metadata-quorum tool reports it.
func (c *kafkaCluster) activeController() (int, error) {
	var bootstrap string
	for _, n := range c.nodes {
		if n.p.running() {
			bootstrap = n.addr
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", "-Xmx128m", "-XX:TieredStopAtLevel=1", "-cp", filepath.Join(c.libs, "*"),
		"org.apache.kafka.tools.MetadataQuorumCommand", "--bootstrap-server", bootstrap, "describe", "--status")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("kafka-metadata-quorum describe --status: %w\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^LeaderId:\s*(\d+)`).FindSubmatch(out)
	if m == nil {
		return 0, errors.New("kafka-metadata-quorum: no LeaderId in:\n" + string(out))
	}
	return strconv.Atoi(string(m[1]))
}

// createTopic creates topic with partitions, replication factor 3 and
// min.insync.replicas 2, and waits until every partition has a leader.
func (c *kafkaCluster) createTopic(t *testing.T, topic string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.client().CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: clusterNodes,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "min.insync.replicas", ConfigValue: "2"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Errors[topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		t.Fatalf("create %s: %v", topic, err)
	}
	for p := range partitions {
		for {
			id, err := c.partitionLeader(topic, p)
			if err == nil && id > 0 {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("partition %s/%d has no leader: %v", topic, p, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
