package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"raterd/consumer"
	"raterd/internal/telemetry"
	"raterd/internal/testkit"
	"raterd/sinks/clickhouse"
)

// TestIntegrationRunServesAdminAndDrains runs `raterd run` as users do (config, admin
// server, signal-driven shutdown) against the real services.
func TestIntegrationRunServesAdminAndDrains(t *testing.T) {
	s := testkit.RequireServices(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, db := "it-run-"+suffix, "raterd_itrun_"+suffix
	testkit.CreateTopic(t, s.Kafka, topic, 2)
	values, invalid, _ := integrationTraffic(300)

	simURL, _ := startSimulator(t)
	cfg := integrationConfig(t, s, topic, "it-run-"+suffix, db, simURL)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Admin.Listen = ln.Addr().String()
	ln.Close()

	chCfg := *cfg.ClickHouse
	conn, err := clickhouse.Open(context.Background(), chCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })

	// Against an unmigrated database, run refuses to start and names the migration.
	if err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "missing migration 1") {
		t.Fatalf("run on an unmigrated schema: %v", err)
	}
	if _, err := clickhouse.Migrate(context.Background(), conn, db, telemetry.Settings{}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, cfg) }()

	base := "http://" + cfg.Admin.Listen
	waitHTTP(t, base+"/readyz", 30*time.Second)
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	if err := Produce(context.Background(), []string{s.Kafka}, topic, values); err != nil {
		t.Fatal(err)
	}
	want := uint64((len(values) - invalid) * len(cfg.Evaluators))
	deadline := time.Now().Add(60 * time.Second)
	var rows uint64
	for rows < want && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".scores FINAL").Scan(&rows); err != nil {
			t.Fatal(err)
		}
	}
	if rows != want {
		t.Fatalf("scores FINAL = %d, want %d", rows, want)
	}
	// A batch's metrics are recorded just after its rows are acknowledged: poll briefly.
	names := []string{"raterd_consumer_records_total", "raterd_scorer_tasks_total", "raterd_consumer_batch_duration_seconds", "raterd_scorer_judge_calls_total", "raterd_consumer_dead_letters_total"}
	var metrics string
	for range 100 {
		_, metrics = get(t, base+"/metrics")
		missing := false
		for _, name := range names {
			missing = missing || !strings.Contains(metrics, name)
		}
		if !missing {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, name := range names {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	cancel() // what SIGTERM does
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run returned %v after shutdown", err)
		}
	case <-time.After(cfg.Kafka.ShutdownTimeout + 15*time.Second):
		t.Fatal("run did not stop within the shutdown timeout")
	}
	checkCommittedToEnd(t, s.Kafka, topic, cfg.Kafka.GroupID, 2)
	// It left the group on the way out (kafka-go's LeaveGroup on Close): a restart gets
	// its partitions at once instead of after the session timeout (docs/reliability.md,
	// Restart).
	if n := groupMembers(t, s.Kafka, cfg.Kafka.GroupID); n != 0 {
		t.Errorf("after shutdown the group still has %d members: raterd did not leave it", n)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitHTTP(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %s", url, timeout)
}

// TestIntegrationReadyzMissingTopic wires readiness as run does — the real topic check
// against the real Kafka, the admin server — with a group member that owns nothing
// (fakeOwner: on this broker a real member would auto-create the topic when it joins):
// 503 naming the missing topic, then 200 once the topic exists.
func TestIntegrationReadyzMissingTopic(t *testing.T) {
	s := testkit.RequireServices(t)
	topic := "it-readyz-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() { testkit.DeleteTopics(s.Kafka, topic) })
	logs := &logBuffer{}
	rd := newReadiness(t.Context(), consumer.NewTopicChecker(consumer.Config{Brokers: []string{s.Kafka}, Topics: []string{topic}}, nil),
		slog.New(slog.NewTextHandler(logs, nil)))
	rd.ttl = 100 * time.Millisecond
	rd.setOwner(&fakeOwner{})
	admin, err := newAdminServer(AdminConfig{}, prometheus.NewRegistry(), rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	admin.ready.Store(true)
	srv := httptest.NewServer(admin.srv.Handler)
	defer srv.Close()

	want := fmt.Sprintf("not ready: no partition assigned; topic %q does not exist\n", topic)
	if code, body := get(t, srv.URL+"/readyz"); code != http.StatusServiceUnavailable || body != want {
		t.Fatalf("/readyz = %d %q, want 503 %q", code, body, want)
	}
	if n := len(logs.lines(fmt.Sprintf(`kafka topic \"%s\" does not exist`, topic))); n != 1 {
		t.Fatalf("%d warnings naming %s, want 1:\n%s", n, topic, logs)
	}
	testkit.CreateTopic(t, s.Kafka, topic, 2)
	waitReadyz(t, srv.URL+"/readyz", http.StatusOK, "ready\n", 10*time.Second)
}

// TestIntegrationRunMissingTopic runs `raterd run` against the real Kafka with its input
// topic missing (the README's old order): the start-up warning names the topic, /readyz
// never says ready while the member consumes nothing, and once the topic exists raterd
// consumes it without a restart (kafka.topic_watch_interval 1s here). This broker
// auto-creates topics, so the member's own join may create it, and the assignment may
// have been computed before: the topic watcher has the group rejoin.
func TestIntegrationRunMissingTopic(t *testing.T) {
	s := testkit.RequireServices(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "it-run-missing-" + suffix
	t.Cleanup(func() { testkit.DeleteTopics(s.Kafka, topic, topic+".dlq") })
	cfg := readyzRunConfig(t, s.Kafka, topic, "it-run-missing-"+suffix)
	base := "http://" + cfg.Admin.Listen + "/readyz"

	logs := &logBuffer{}
	stop := startRun(t, cfg, logs)
	// The start-up check runs before the group is joined: it finds the topic missing and
	// says so.
	// As the text handler writes the message: quoted, its quotes escaped.
	warning := fmt.Sprintf(`kafka topic \"%s\" does not exist: raterd consumes nothing from it until it is created (then within kafka.topic_watch_interval and a rebalance)`, topic)
	waitFor := time.Now().Add(30 * time.Second)
	for len(logs.lines(warning)) == 0 {
		if time.Now().After(waitFor) {
			t.Fatalf("no start-up warning naming %s after 30s:\n%s", topic, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(logs.lines(warning)); n != 1 {
		t.Fatalf("%d start-up warnings naming %s, want 1:\n%s", n, topic, logs)
	}

	// Created by the join on this broker; by the test where the broker does not.
	ensureTopic(t, s.Kafka, topic, 2)
	values, _, _ := integrationTraffic(20)
	if err := Produce(context.Background(), []string{s.Kafka}, topic, values); err != nil {
		t.Fatal(err)
	}
	// No restart: the member takes the partitions and consumes them; /readyz says ready.
	waitScores(t, cfg.ScoresFile, len(values), 60*time.Second)
	waitReadyz(t, base, http.StatusOK, "ready\n", 30*time.Second)
	stop()
}

// ensureTopic creates topic unless it exists, and waits until it can be written.
func ensureTopic(t *testing.T, broker, topic string, partitions int) {
	t.Helper()
	kc := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	res, err := kc.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Errors[topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		t.Fatalf("create %s: %v", topic, err)
	}
	c := consumer.NewTopicChecker(consumer.Config{Brokers: []string{broker}, Topics: []string{topic}}, nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		missing, err := c.Missing(ctx)
		cancel()
		if err == nil && len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s not there after 30s: %v %v", topic, missing, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
