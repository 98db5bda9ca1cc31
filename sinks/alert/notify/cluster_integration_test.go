package notify_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/internal/telemetry"
	"raterd/internal/testkit"
	"raterd/sinks/alert/notify"
	"raterd/sinks/clickhouse"
)

// TestClickHouseChannelCluster: on the ClickHouse cluster of `scripts/services.sh up
// cluster`, the alerts channel inserts through the Distributed alerts table with the
// writers' insert settings (the synchronous insert): when Notify returns, the row is on a
// replica of its shard. Negative control: without the settings the insert is queued on
// the receiving host and the shard that owns the alert may not have it yet.
func TestClickHouseChannelCluster(t *testing.T) {
	addrs := strings.Split(testkit.Service(t, "RATERD_TEST_CLICKHOUSE_CLUSTER", "ClickHouse cluster hosts"), ",")
	name := testkit.Service(t, "RATERD_TEST_CLICKHOUSE_CLUSTER_NAME", "ClickHouse cluster name")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var conns []driver.Conn
	for _, a := range addrs {
		cfg := clickhouse.Config{Addrs: []string{a}}
		if err := cfg.Validate("clickhouse"); err != nil {
			t.Fatal(err)
		}
		conn, err := clickhouse.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		conns = append(conns, conn)
	}
	cfg := clickhouse.Config{Addrs: addrs[:1], Database: notifyUnique("raterd_alert_cluster_"), Cluster: name}
	if err := cfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rows, err := conns[0].Query(context.Background(), fmt.Sprintf("DROP DATABASE IF EXISTS %s ON CLUSTER %s", cfg.Database, name))
		if err == nil {
			for rows.Next() {
			}
			rows.Close()
		}
	})
	if _, err := clickhouse.MigrateWith(ctx, conns[0], cfg.Database, clickhouse.MigrateOptions{
		Telemetry: telemetry.Settings{Logger: slog.New(slog.DiscardHandler)}, Cluster: cfg.ClusterNames(), DDLTimeout: time.Minute}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	// stored counts the alert's rows on the replicas of every shard, without waiting.
	stored := func(id string) uint64 {
		var total uint64
		for s := 0; s < len(conns)/2; s++ {
			var best uint64
			for _, conn := range conns[2*s : 2*s+2] {
				var n uint64
				if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.alerts_local WHERE alert_id = '%s'", cfg.Database, id)).Scan(&n); err != nil {
					t.Fatal(err)
				}
				best = max(best, n)
			}
			total += best
		}
		return total
	}
	write := func(settings map[string]any, ids []string) (landed int) {
		ch, err := notify.NewClickHouseChannel("history", conns[0], notify.ClickHouseChannelConfig{Database: cfg.Database, InsertSettings: settings})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			n := notifySample(notify.StateFiring)
			n.AlertID = id
			if err := ch.Notify(ctx, n); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			if stored(id) == 1 {
				landed++
			}
		}
		return landed
	}
	// Alerts spread over both shards by cityHash64(alert_id): half of them live on the
	// shard of the host that takes the insert, half elsewhere.
	ids := func(prefix string) []string {
		var out []string
		for i := range 8 {
			out = append(out, fmt.Sprintf("%s%02d", prefix, i))
		}
		return out
	}
	if n := write(cfg.InsertSettings(), ids("sync")); n != 8 {
		t.Errorf("with the insert settings %d of 8 alerts were on their shard when Notify returned, want 8", n)
	}
	if n := write(nil, ids("async")); n == 8 {
		t.Logf("negative control: without the settings all 8 alerts were on their shard at once (the queue was fast); the control proves nothing this run")
	}
}
