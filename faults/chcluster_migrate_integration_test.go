package faults

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/internal/telemetry"
	"raterd/sinks/clickhouse"
)

// TestClickHouseClusterMigrateHostDown: `raterd migrate` on a cluster with one host down
// fails naming that host as not answering, reports its statements pending and records no
// migration; once the host is back a rerun applies every migration on every host. Opt-in
// with the other cluster faults (RATERD_FAULTS_CHCLUSTER=1, scripts/faults.sh -chcluster):
// it stops a node of a private cluster (about a minute).
func TestClickHouseClusterMigrateHostDown(t *testing.T) {
	if os.Getenv("RATERD_FAULTS_CHCLUSTER") == "" {
		t.Skip("opt-in: set RATERD_FAULTS_CHCLUSTER=1 (a private ZooKeeper and four ClickHouse servers), or run scripts/faults.sh -chcluster")
	}
	dir := t.TempDir()
	zdir := filepath.Join(dir, "zookeeper")
	if err := os.MkdirAll(zdir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := newClickHouseCluster(t, dir, newZooKeeper(t, zdir))
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := clickhouse.Config{Addrs: []string{c.nodes[0].addr}, Database: "raterd", Cluster: chClusterName, DDLTimeout: 10 * time.Second}
	if err := cfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	opts := clickhouse.MigrateOptions{Telemetry: telemetry.Settings{Logger: slog.New(slog.DiscardHandler)},
		Cluster: cfg.ClusterNames(), DDLTimeout: cfg.DDLTimeout,
		Dial: func(ctx context.Context, addr string) (driver.Conn, error) {
			host := cfg
			host.Addrs = []string{addr}
			return clickhouse.Open(ctx, host)
		}}
	first := c.nodes[0].open(t, "default")
	defer first.Close()

	down := c.node("s2r2")
	if err := down.p.stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Logf("stop %s: %v", down.name, err)
	}
	if down.p.running() {
		t.Fatalf("%s still runs: the fault was not injected", down.name)
	}
	res, err := clickhouse.MigrateWith(ctx, first, cfg.Database, opts)
	if err == nil || !strings.Contains(err.Error(), down.addr) || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("migrate with %s down: %v, want it named as not answering", down.addr, err)
	}
	if len(res.Applied) != 0 {
		t.Errorf("migrate with a host down recorded %d migrations", len(res.Applied))
	}
	pending := false
	for _, h := range res.Hosts {
		for _, s := range h.Statements {
			pending = pending || h.Addr == down.addr && s.Pending
		}
	}
	if !pending {
		t.Errorf("the host report shows no pending statement on %s: %+v", down.addr, res.Hosts)
	}
	if err := down.startReplica(); err != nil {
		t.Fatal(err)
	}
	res, err = clickhouse.MigrateWith(ctx, first, cfg.Database, opts)
	if err != nil {
		t.Fatalf("rerun after the host is back: %v", err)
	}
	if len(res.Applied) != clickhouse.LatestMigration() {
		t.Errorf("rerun applied %d migrations, want %d", len(res.Applied), clickhouse.LatestMigration())
	}
	for _, h := range res.Hosts {
		if h.Failed() || len(h.Missing) > 0 {
			t.Errorf("%s after the rerun: %+v", h.Addr, h)
		}
	}
	t.Logf("with %s down: pending and nothing recorded; after it came back the rerun applied %d migrations on %d hosts", down.name, len(res.Applied), len(res.Hosts))
}
