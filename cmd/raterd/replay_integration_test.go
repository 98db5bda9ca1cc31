package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"raterd/cmd/judgesim/simulator"
	"raterd/consumer"
	"raterd/internal/testkit"
	"raterd/sinks/clickhouse"
)

// TestIntegrationRestartMidDrainLosesNothing stops raterd in the middle of a drain and
// starts it again in the same group: every valid record ends up scored exactly once per
// evaluator (replays collapse in ReplacingMergeTree) and the group commits to the end.
func TestIntegrationRestartMidDrainLosesNothing(t *testing.T) {
	s := requireServices(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, db, group := "it-restart-"+suffix, "raterd_itrestart_"+suffix, "it-restart-"+suffix
	testkit.CreateTopic(t, s.kafka, topic, 4)
	values, invalid, _ := integrationTraffic(3000)
	if err := produce(context.Background(), []string{s.kafka}, topic, values); err != nil {
		t.Fatal(err)
	}
	conn := migrated(t, s.clickhouse, db)
	simURL, _ := startSimulator(t)

	// First run: stop after roughly half the messages are done.
	cfg := integrationConfig(t, s, topic, group, db, simURL)
	// Small batches and a small in-flight bound, so that fetching cannot run ahead of
	// the half-way mark: the drain then finishes only what is in flight.
	cfg.Kafka.Batch.MaxRecords = 50
	cfg.Kafka.MaxInFlightRecords = 200
	p, _, leave := startPipeline(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	for p.Stats().Done < int64(len(values)/2) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	first := p.Stats()
	leave() // as the process exit would: the group rebalances onto the next run
	if first.Done >= int64(len(values)) {
		t.Fatalf("the first run finished everything (%d); the restart was not mid-drain", first.Done)
	}

	// Second run: same group, picks up at the committed offsets.
	cfg2 := integrationConfig(t, s, topic, group, db, simURL)
	p2, _, _ := startPipeline(t, cfg2)
	ctx2, cancel2 := context.WithCancel(context.Background())
	errc2 := make(chan error, 1)
	go func() { errc2 <- p2.Run(ctx2) }()
	waitCommittedToEnd(t, s.kafka, topic, group, 4, time.Minute)
	cancel2()
	if err := <-errc2; err != nil {
		t.Fatal(err)
	}
	second := p2.Stats()
	t.Logf("first run: %d of %d messages done; second run: %d more", first.Done, len(values), second.Done)
	if first.Done+second.Done < int64(len(values)) {
		t.Fatalf("runs did %d + %d messages, fewer than the %d produced", first.Done, second.Done, len(values))
	}

	var rows uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".scores FINAL").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if want := uint64((len(values) - invalid) * len(cfg.Evaluators)); rows != want {
		t.Fatalf("scores FINAL = %d after the restart, want %d (no loss, no duplicates)", rows, want)
	}
	var dead uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".dead_letters FINAL").Scan(&dead); err != nil {
		t.Fatal(err)
	}
	if dead != uint64(invalid) {
		t.Fatalf("dead_letters FINAL = %d, want %d", dead, invalid)
	}
}

// TestIntegrationScoresWithoutAnUnreachableRedis: the cache is optional; a Redis that
// does not answer slows nothing down and fails no batch.
func TestIntegrationScoresWithoutAnUnreachableRedis(t *testing.T) {
	s := requireServices(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, db := "it-noredis-"+suffix, "raterd_itnoredis_"+suffix
	testkit.CreateTopic(t, s.kafka, topic, 2)
	values, invalid, _ := integrationTraffic(400)
	if err := produce(context.Background(), []string{s.kafka}, topic, values); err != nil {
		t.Fatal(err)
	}
	conn := migrated(t, s.clickhouse, db)
	simURL, _ := startSimulator(t)
	down := s
	down.redis = "127.0.0.1:1" // nothing listens there
	cfg := integrationConfig(t, down, topic, "it-noredis-"+suffix, db, simURL)
	cfg.Redis.LocalBytes = -1 // no in-process tier either: no hits at all
	stats, st := runGroup(t, cfg, int64(len(values)))
	tot := st.Scorer.Totals()
	if !tot.CacheBypass || tot.CacheHits != 0 || stats.Retries != 0 {
		t.Fatalf("with Redis down: scorer %+v, pipeline %+v", tot, stats)
	}
	var rows uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".scores FINAL").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if want := uint64((len(values) - invalid) * len(cfg.Evaluators)); rows != want {
		t.Fatalf("scores FINAL = %d, want %d", rows, want)
	}
}

// migrated creates a fresh database with the current schema, dropped when the test ends.
func migrated(t testing.TB, addr, db string) driver.Conn {
	t.Helper()
	cfg := clickhouse.Config{Addrs: []string{addr}, Database: db}
	if err := cfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		_ = conn.Close()
	})
	if _, err := clickhouse.Migrate(context.Background(), conn, db, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// startPipeline builds a pipeline for cfg; the caller runs it, then calls leave to close
// the reader (leaving the group) and the stack.
func startPipeline(t testing.TB, cfg *Config) (p *consumer.Pipeline, st *stack, leave func()) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	tel, err := newTelemetry(context.Background(), cfg.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	st, err = buildStack(context.Background(), cfg, tel, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, reader, err := newPipeline(cfg, st, tel, logger)
	if err != nil {
		_ = st.Close()
		t.Fatal(err)
	}
	var once sync.Once
	leave = func() {
		once.Do(func() {
			_ = reader.Close()
			_ = st.Close()
		})
	}
	t.Cleanup(leave)
	return p, st, leave
}

// waitCommittedToEnd polls until the group's committed offsets reach the end of every
// partition.
func waitCommittedToEnd(t testing.TB, broker, topic, group string, partitions int, timeout time.Duration) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	ids := make([]int, partitions)
	for i := range ids {
		ids[i] = i
	}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
		done := err == nil && len(resp.Topics[topic]) == partitions
		if done {
			for _, p := range resp.Topics[topic] {
				end, err := lastOffset(broker, topic, p.Partition)
				done = done && err == nil && p.CommittedOffset == end
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s did not commit to the end of %s within %s", group, topic, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestIntegrationJudgePoolOutagePausesInsteadOfFailing: while the judge pool is down,
// raterd stores no failure rows and commits nothing past the unscored records; when the
// pool comes back, it scores everything.
func TestIntegrationJudgePoolOutagePausesInsteadOfFailing(t *testing.T) {
	s := requireServices(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, db, group := "it-outage-"+suffix, "raterd_itoutage_"+suffix, "it-outage-"+suffix
	testkit.CreateTopic(t, s.kafka, topic, 2)
	values, invalid, _ := integrationTraffic(200)
	if err := produce(context.Background(), []string{s.kafka}, topic, values); err != nil {
		t.Fatal(err)
	}
	conn := migrated(t, s.clickhouse, db)

	// Reserve a port for the pool, and keep it closed for now.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := integrationConfig(t, s, topic, group, db, "http://"+addr+"/v1")
	cfg.Kafka.RetryBackoffMax = 300 * time.Millisecond
	cfg.Judges["sim"].MaxAttempts = 2
	p, _, _ := startPipeline(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()

	for p.Stats().Retries < 3 {
		time.Sleep(20 * time.Millisecond)
	}
	var failures uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".scores WHERE status != 'ok'").Scan(&failures); err != nil {
		t.Fatal(err)
	}
	if failures != 0 {
		t.Fatalf("%d failure rows stored while the pool was down; want none (retry, do not give up)", failures)
	}

	// The pool comes back on the same address.
	sim := simulator.New(simulator.Config{MaxSeqs: 32, StepBase: 200 * time.Microsecond})
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("re-listen on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer sim.Close()
	defer srv.Close()

	waitCommittedToEnd(t, s.kafka, topic, group, 2, time.Minute)
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	var rows, okRows uint64
	if err := conn.QueryRow(context.Background(), "SELECT count(), countIf(status = 'ok') FROM "+db+".scores FINAL").Scan(&rows, &okRows); err != nil {
		t.Fatal(err)
	}
	want := uint64((len(values) - invalid) * len(cfg.Evaluators))
	if rows != want || okRows != want {
		t.Fatalf("after the outage: %d rows, %d ok; want %d, all ok", rows, okRows, want)
	}
	t.Logf("outage: %d batch retries, then %d rows, all ok", p.Stats().Retries, rows)
}
