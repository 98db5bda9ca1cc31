package app

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

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
