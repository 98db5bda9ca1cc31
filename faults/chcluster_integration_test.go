package faults

// Faults of the ClickHouse cluster (docs/design-topology.md §6.1, opt-in): a private
// ZooKeeper and four private ClickHouse servers (2 shards × 2 replicas) from
// deploy/clickhouse/cluster.xml.tmpl, which the test stops and restarts. Writer-level
// scenarios (the score writer and migrate, no Kafka): a host down during migrate, a
// replica stopped while inserts go on, ZooKeeper stopped for 10 s while inserts go on.
// Run with RATERD_TOPOLOGY=1 (skipped otherwise: it is not part of .ci/run's budget):
//
//	RATERD_TOPOLOGY=1 go test -count=1 -v -run TestClickHouseClusterFaults ./faults/

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/internal/telemetry"
	"raterd/internal/testkit"
	"raterd/record"
	"raterd/sinks"
	"raterd/sinks/clickhouse"
)

// zooKeeper is a private standalone ZooKeeper whose data survives restarts.
type zooKeeper struct {
	port int
	p    *proc
}

func newZooKeeper(t *testing.T, dir string) *zooKeeper {
	t.Helper()
	cp := testkit.Service(t, "RATERD_TEST_ZOOKEEPER_CLASSPATH", "ZooKeeper jars")
	port := freePort(t)
	cfg := fmt.Sprintf("tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\nadmin.enableServer=false\n4lw.commands.whitelist=ruok\n",
		filepath.Join(dir, "data"), port)
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return &zooKeeper{port: port, p: &proc{name: "zookeeper", dir: dir, log: filepath.Join(dir, "zookeeper.out"),
		args: []string{"java", "-Xmx128m", "-cp", cp, "org.apache.zookeeper.server.ZooKeeperServerMain", filepath.Join(dir, "zoo.cfg")}}}
}

func (z *zooKeeper) start() error {
	if err := z.p.start(); err != nil {
		return err
	}
	return z.p.waitUntil(60*time.Second, func() error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", z.port), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ruok")); err != nil {
			return err
		}
		b := make([]byte, 4)
		if _, err := c.Read(b); err != nil || string(b) != "imok" {
			return fmt.Errorf("ruok: %q %v", b, err)
		}
		return nil
	})
}

// chCluster is four private ClickHouse servers: s1r1, s1r2 (shard 1), s2r1, s2r2.
type chCluster struct {
	nodes []*clickhouseServer
	zk    *zooKeeper
}

var clusterReplicas = []string{"s1r1", "s1r2", "s2r1", "s2r2"}

// newClickHouseCluster renders deploy/clickhouse/cluster.xml.tmpl (and the cluster's users
// profile) into the config.d of four private servers on free ports.
func newClickHouseCluster(t *testing.T, dir string, zk *zooKeeper) *chCluster {
	t.Helper()
	tmpl, err := os.ReadFile("../deploy/clickhouse/cluster.xml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	profile, err := os.ReadFile("../deploy/clickhouse/cluster-users.xml")
	if err != nil {
		t.Fatal(err)
	}
	c := &chCluster{zk: zk}
	for _, r := range clusterReplicas {
		d := filepath.Join(dir, r)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, newClickHouse(t, d))
	}
	repl := []string{"@ZK_PORT@", fmt.Sprint(zk.port)}
	for i, n := range c.nodes {
		repl = append(repl, fmt.Sprintf("@TCP%d@", i+1), strings.TrimPrefix(n.addr, "127.0.0.1:"))
	}
	for i, n := range c.nodes {
		r := clusterReplicas[i]
		node := append([]string{"@INTERSERVER@", fmt.Sprint(freePort(t)), "@SHARD@", "0" + r[1:2], "@REPLICA@", r}, repl...)
		cfg := strings.NewReplacer(node...).Replace(string(tmpl))
		if unfilled := regexp.MustCompile(`@[A-Z0-9_]+@`).FindString(cfg); unfilled != "" {
			t.Fatalf("cluster.xml.tmpl has a placeholder newClickHouseCluster does not fill: %s", unfilled)
		}
		for sub, body := range map[string][]byte{"config.d/cluster.xml": []byte(cfg), "users.d/cluster.xml": profile} {
			p := filepath.Join(n.p.dir, "etc", sub)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		n.p.name = "clickhouse-" + r
	}
	return c
}

// config is the writers' config on the cluster (connecting to s1r1) for database db.
func (c *chCluster) config(db string) clickhouse.Config {
	cfg := clickhouse.Config{Addrs: []string{c.nodes[0].addr}, Database: db, Cluster: "raterd", DDLTimeout: 10 * time.Second}
	if err := cfg.Validate("clickhouse"); err != nil {
		panic(err) // a constant config; cannot fail
	}
	return cfg
}

func (c *chCluster) migrateOptions(cfg clickhouse.Config) clickhouse.MigrateOptions {
	return clickhouse.MigrateOptions{Telemetry: telemetry.Settings{Logger: slog.New(slog.DiscardHandler)},
		Cluster: cfg.ClusterNames(), DDLTimeout: cfg.DDLTimeout,
		Dial: func(ctx context.Context, addr string) (driver.Conn, error) {
			host := cfg
			host.Addrs = []string{addr}
			return clickhouse.Open(ctx, host)
		}}
}

func openCH(t *testing.T, addr string) driver.Conn {
	t.Helper()
	cfg := clickhouse.Config{Addrs: []string{addr}}
	if err := cfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func chCount(t *testing.T, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// clusterBatch is batch i of the writer scenarios: 50 score rows with record ids of their
// own, spread over both shards.
func clusterBatch(i int) []record.Score {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rows := make([]record.Score, 50)
	for j := range rows {
		rows[j] = record.Score{EventTime: at, ScoredAt: at, RecordID: fmt.Sprintf("r-%04d-%02d", i, j), Evaluator: "refusal",
			Model: "m", Judge: "checks", RubricVersion: "v1", Status: "ok", Value: 1,
			Source: record.Source{Topic: "llm-traffic", Partition: j % 4, Offset: int64(i*50 + j)}}
	}
	return rows
}

// TestClickHouseClusterFaults runs the cluster fault scenarios on a private cluster.
func TestClickHouseClusterFaults(t *testing.T) {
	if os.Getenv("RATERD_TOPOLOGY") == "" {
		t.Skip("opt-in: set RATERD_TOPOLOGY=1 (a private ZooKeeper and four ClickHouse servers, about a minute)")
	}
	dir := t.TempDir()
	zdir := filepath.Join(dir, "zookeeper")
	if err := os.MkdirAll(zdir, 0o755); err != nil {
		t.Fatal(err)
	}
	zk := newZooKeeper(t, zdir)
	if err := zk.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = zk.p.stop(syscall.SIGTERM, 10*time.Second) })
	c := newClickHouseCluster(t, dir, zk)
	for _, n := range c.nodes {
		if err := n.start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.p.stop(syscall.SIGTERM, 30*time.Second) })
	}
	ctx := context.Background()
	cfg := c.config("raterd")
	first := openCH(t, c.nodes[0].addr)

	// A host down during migrate: the run fails naming it pending and records nothing;
	// once the host is back, a rerun completes on every host.
	t.Run("migrate_host_down", func(t *testing.T) {
		down := c.nodes[3]
		if err := down.p.stop(syscall.SIGTERM, 30*time.Second); err != nil {
			t.Logf("stop %s: %v", down.p.name, err)
		}
		res, err := clickhouse.MigrateWith(ctx, first, cfg.Database, c.migrateOptions(cfg))
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
		if err := down.start(); err != nil {
			t.Fatal(err)
		}
		res, err = clickhouse.MigrateWith(ctx, first, cfg.Database, c.migrateOptions(cfg))
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
	})

	conn := openCH(t, c.nodes[0].addr)
	scores := clickhouse.NewScores(conn, cfg, telemetry.Settings{Logger: slog.New(slog.DiscardHandler)})
	written := 0
	// writeUntilStored writes batch i, retrying (as the pipeline does) until it is stored;
	// it returns the failed attempts, each of which must be transient. afterFailure, when
	// set, runs after each failed attempt.
	var afterFailure func()
	writeUntilStored := func(t *testing.T, i int, deadline time.Time) (failures int) {
		for {
			err := scores.WriteScores(ctx, clusterBatch(i))
			if err == nil {
				written++
				return failures
			}
			if sinks.PermanentClass(err) != "" {
				t.Fatalf("batch %d: a permanent error on the cluster: %v", i, err)
			}
			failures++
			if afterFailure != nil {
				afterFailure()
			}
			if time.Now().After(deadline) {
				t.Fatalf("batch %d still not stored: %v", i, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	exact := func(t *testing.T) {
		t.Helper()
		for i, n := range c.nodes {
			if i%2 == 0 {
				continue
			}
			for _, conn := range []driver.Conn{openCH(t, c.nodes[i-1].addr), openCH(t, n.addr)} {
				if err := conn.Exec(ctx, "SYSTEM SYNC REPLICA "+cfg.Database+".scores_local"); err != nil {
					t.Fatal(err)
				}
			}
			a := chCount(t, openCH(t, c.nodes[i-1].addr), "SELECT count() FROM "+cfg.Database+".scores_local")
			b := chCount(t, openCH(t, n.addr), "SELECT count() FROM "+cfg.Database+".scores_local")
			if a != b {
				t.Errorf("shard %d: replicas hold %d and %d rows after SYSTEM SYNC REPLICA", i/2+1, a, b)
			}
		}
		if got := chCount(t, conn, "SELECT count() FROM "+cfg.Database+".scores FINAL"); got != uint64(written*50) {
			t.Errorf("scores FINAL has %d rows, want %d (%d batches)", got, written*50, written)
		}
	}

	// A replica stopped while inserts go on: the Distributed insert goes to the live
	// replica of its shard; the restarted one fetches what it missed.
	t.Run("replica_stopped", func(t *testing.T) {
		down := c.nodes[1]
		for i := range 10 {
			if i == 3 {
				if err := down.p.stop(syscall.SIGTERM, 30*time.Second); err != nil {
					t.Logf("stop %s: %v", down.p.name, err)
				}
			}
			if i == 7 {
				if err := down.start(); err != nil {
					t.Fatal(err)
				}
			}
			if f := writeUntilStored(t, i, time.Now().Add(2*time.Minute)); f > 0 {
				t.Errorf("batch %d: %d failed attempts with a replica of shard 1 down, want none", i, f)
			}
		}
		exact(t)
	})

	// ZooKeeper stopped for 10 s while inserts go on: inserts fail (transiently), then
	// succeed once it is back; every batch is stored once.
	t.Run("zookeeper_stopped", func(t *testing.T) {
		failures := 0
		var stoppedAt time.Time
		afterFailure = func() {
			if !stoppedAt.IsZero() && time.Since(stoppedAt) >= 10*time.Second {
				stoppedAt = time.Time{}
				if err := zk.start(); err != nil {
					t.Fatalf("restart zookeeper: %v", err)
				}
			}
		}
		defer func() { afterFailure = nil }()
		for i := 100; i < 110; i++ {
			if i == 103 {
				if err := zk.p.stop(syscall.SIGTERM, 10*time.Second); err != nil {
					t.Logf("stop zookeeper: %v", err)
				}
				stoppedAt = time.Now()
			}
			failures += writeUntilStored(t, i, time.Now().Add(3*time.Minute))
		}
		if !stoppedAt.IsZero() {
			t.Fatalf("every insert succeeded while ZooKeeper was down; the fault was not met")
		}
		if failures == 0 {
			t.Errorf("no insert failed while ZooKeeper was down: the fault was not met")
		}
		t.Logf("%d failed insert attempts during the outage", failures)
		exact(t)
	})
	if t.Failed() {
		for _, n := range c.nodes {
			t.Logf("%s:\n%s", n.p.name, n.p.tail(20))
		}
		t.Logf("zookeeper:\n%s", zk.p.tail(20))
	}
}
