package clickhouse

// Tests against the ClickHouse cluster of `scripts/services.sh up cluster` (ZooKeeper and
// four 18.16 servers, 2 shards × 2 replicas; docs/design-topology.md §4), skipped without
// RATERD_TEST_CLICKHOUSE_CLUSTER, failed with RATERD_REQUIRE_SERVICES=1.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/internal/testkit"
	"raterd/record"
)

// testCluster is the shared dev cluster: one connection per host, in the order of
// RATERD_TEST_CLICKHOUSE_CLUSTER (s1r1, s1r2, s2r1, s2r2).
type testCluster struct {
	// Name is the cluster of replicated shards; Hosts the one with every host its own shard.
	Name, Hosts string
	Addrs       []string
	Conns       []driver.Conn
}

// requireCluster connects to every host of the dev cluster.
func requireCluster(t *testing.T) testCluster {
	t.Helper()
	addrs := strings.Split(testkit.Service(t, "RATERD_TEST_CLICKHOUSE_CLUSTER", "ClickHouse cluster hosts"), ",")
	name := testkit.Service(t, "RATERD_TEST_CLICKHOUSE_CLUSTER_NAME", "ClickHouse cluster name")
	c := testCluster{Name: name, Hosts: name + "_hosts", Addrs: addrs}
	if len(addrs) != 4 {
		t.Fatalf("RATERD_TEST_CLICKHOUSE_CLUSTER: want the 4 hosts of 2 shards × 2 replicas, got %q", addrs)
	}
	for _, a := range addrs {
		cfg := Config{Addrs: []string{a}}
		if err := cfg.Validate("clickhouse"); err != nil {
			t.Fatal(err)
		}
		conn, err := Open(context.Background(), cfg)
		if err != nil {
			t.Fatalf("cluster host %s: %v", a, err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		c.Conns = append(c.Conns, conn)
	}
	return c
}

// scratchDB creates a database on every host of c, dropped (with its replicated tables'
// ZooKeeper metadata) when the test ends.
func (c testCluster) scratchDB(t *testing.T, prefix string) string {
	t.Helper()
	db := fmt.Sprintf("%s_%08x", prefix, rand.Uint32())
	c.onCluster(t, c.Conns[0], "CREATE DATABASE IF NOT EXISTS "+db+" ON CLUSTER "+c.Name)
	t.Cleanup(func() {
		rows, err := c.Conns[0].Query(context.Background(), "DROP DATABASE IF EXISTS "+db+" ON CLUSTER "+c.Name)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			rows.Close()
		}
		if err != nil {
			t.Logf("drop %s: %v", db, err)
		}
	})
	return db
}

// ddlRow is one row of an ON CLUSTER statement's result stream.
type ddlRow struct {
	Host                   string
	Port                   uint16
	Status                 int64
	Error                  string
	Remaining, ActiveHosts uint64
}

// onClusterRows runs an ON CLUSTER statement and returns its per-host rows and the
// stream's final error.
func onClusterRows(conn driver.Conn, stmt string) ([]ddlRow, error) {
	rows, err := conn.Query(context.Background(), stmt)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ddlRow
	for rows.Next() {
		var r ddlRow
		if err := rows.Scan(&r.Host, &r.Port, &r.Status, &r.Error, &r.Remaining, &r.ActiveHosts); err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// onCluster runs an ON CLUSTER statement that must succeed on every host.
func (c testCluster) onCluster(t *testing.T, conn driver.Conn, stmt string) []ddlRow {
	t.Helper()
	rows, err := onClusterRows(conn, stmt)
	if err != nil {
		t.Fatalf("%s: %v (rows %+v)", stmt, err, rows)
	}
	for _, r := range rows {
		if r.Status != 0 {
			t.Fatalf("%s: host %s:%d answered %d %s", stmt, r.Host, r.Port, r.Status, r.Error)
		}
	}
	return rows
}

// syncReplicas runs SYSTEM SYNC REPLICA db.table on every host.
func (c testCluster) syncReplicas(t *testing.T, db string, tables ...string) {
	t.Helper()
	for i, conn := range c.Conns {
		for _, table := range tables {
			if err := conn.Exec(context.Background(), fmt.Sprintf("SYSTEM SYNC REPLICA %s.%s", db, table)); err != nil {
				t.Fatalf("%s: SYSTEM SYNC REPLICA %s.%s: %v", c.Addrs[i], db, table, err)
			}
		}
	}
}

func exceptionCode(err error) int32 {
	var ex *ch.Exception
	if errors.As(err, &ex) {
		return ex.Code
	}
	return 0
}

// TestClusterPreconditions checks on the 18.16 cluster every point of
// docs/design-topology.md that was read in ClickHouse's sources and documentation but not
// run ("verify"): a failing sub-test names the design point to revisit.
func TestClusterPreconditions(t *testing.T) {
	c := requireCluster(t)
	ctx := context.Background()
	first := c.Conns[0]

	// §4: every node reaches ZooKeeper (18.16's client speaks the 3.4 protocol to a 3.8 server).
	t.Run("zookeeper_reachable_from_every_host", func(t *testing.T) {
		for i, conn := range c.Conns {
			if n := countRows(t, conn, "SELECT count() FROM system.zookeeper WHERE path = '/'"); n == 0 {
				t.Errorf("%s: system.zookeeper lists nothing under /", c.Addrs[i])
			}
		}
	})

	// §2.1: the insert setting that makes a Distributed insert synchronous exists (plan B,
	// sharding in raterd, is not needed), off by default.
	t.Run("insert_distributed_sync_exists", func(t *testing.T) {
		var v string
		if err := first.QueryRow(ctx, "SELECT value FROM system.settings WHERE name = 'insert_distributed_sync'").Scan(&v); err != nil {
			t.Fatalf("insert_distributed_sync is not in system.settings: %v", err)
		}
		if v != "0" {
			t.Errorf("insert_distributed_sync defaults to %q, want 0", v)
		}
		if n := countRows(t, first, "SELECT count() FROM system.settings WHERE name = 'insert_quorum'"); n != 1 {
			t.Errorf("insert_quorum is not in system.settings")
		}
	})

	// §2.3: a query over the Distributed scores with an IN subquery over it (the report's
	// worst rows, the judge agreement) is refused under the default
	// distributed_product_mode (deny, code 288); the cluster's profile
	// (deploy/clickhouse/cluster-users.xml) sets global, which gives the single server's
	// answer. Checked here: the setting, and the refusal without it.
	t.Run("distributed_product_mode_global", func(t *testing.T) {
		for i, conn := range c.Conns {
			var v string
			if err := conn.QueryRow(ctx, "SELECT value FROM system.settings WHERE name = 'distributed_product_mode'").Scan(&v); err != nil || v != "global" {
				t.Errorf("%s: distributed_product_mode = %q (%v), want global (deploy/clickhouse/cluster-users.xml in users.d)", c.Addrs[i], v, err)
			}
		}
		db := c.scratchDB(t, "raterd_pre_in")
		c.onCluster(t, first, fmt.Sprintf("CREATE TABLE %s.l ON CLUSTER %s (k String) ENGINE = ReplicatedMergeTree('/clickhouse/raterd/tables/{shard}/%s/l/m1', '{replica}') ORDER BY k", db, c.Name, db))
		c.onCluster(t, first, fmt.Sprintf("CREATE TABLE %s.d ON CLUSTER %s AS %s.l ENGINE = Distributed(%s, %s, l, cityHash64(k))", db, c.Name, db, c.Name, db))
		q := fmt.Sprintf("SELECT count() FROM %s.d WHERE k IN (SELECT k FROM %s.d)", db, db)
		// clickhouse-go cannot send a string setting to 18.16 (settings travel as numbers
		// before 19.x), so the control runs in clickhouse-client, which the server package
		// brings along; this is also why the mode belongs in the profile, not in raterd.
		host, port, _ := strings.Cut(c.Addrs[0], ":")
		out, err := exec.Command("clickhouse-client", "--host", host, "--port", port, "--distributed_product_mode=deny", "--query", q).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Code: 288") {
			t.Errorf("IN over a Distributed table under deny: %v %s, want code 288", err, out)
		}
		var n uint64
		if err := first.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Errorf("IN over a Distributed table with the profile's mode: %v", err)
		}
	})

	// §2.4: the default deduplication window of replicated tables on 18.16 is 100 blocks.
	t.Run("replicated_deduplication_window_default", func(t *testing.T) {
		var v string
		if err := first.QueryRow(ctx, "SELECT value FROM system.merge_tree_settings WHERE name = 'replicated_deduplication_window'").Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != "100" {
			t.Errorf("replicated_deduplication_window defaults to %s, want 100 (the design's figure for 18.16)", v)
		}
	})

	db := c.scratchDB(t, "raterd_pre")

	// §1.6.6: the columns of an ON CLUSTER statement's result stream, one row per host.
	t.Run("on_cluster_result_stream", func(t *testing.T) {
		rows, err := first.Query(ctx, fmt.Sprintf(`CREATE TABLE %s.s_local ON CLUSTER %s (k String, v UInt32, t DateTime)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/raterd/tables/{shard}/%s/s_local/m1', '{replica}', t) ORDER BY k`, db, c.Name, db))
		if err != nil {
			t.Fatal(err)
		}
		var names, types []string
		for _, ct := range rows.ColumnTypes() {
			names = append(names, ct.Name())
			types = append(types, ct.DatabaseTypeName())
		}
		hosts := map[string]bool{}
		for rows.Next() {
			var r ddlRow
			if err := rows.Scan(&r.Host, &r.Port, &r.Status, &r.Error, &r.Remaining, &r.ActiveHosts); err != nil {
				t.Fatal(err)
			}
			if r.Status != 0 {
				t.Errorf("host %s:%d: status %d %s", r.Host, r.Port, r.Status, r.Error)
			}
			hosts[fmt.Sprintf("%s:%d", r.Host, r.Port)] = true
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		wantNames := []string{"host", "port", "status", "error", "num_hosts_remaining", "num_hosts_active"}
		wantTypes := []string{"String", "UInt16", "Int64", "String", "UInt64", "UInt64"}
		if !reflect.DeepEqual(names, wantNames) || !reflect.DeepEqual(types, wantTypes) {
			t.Errorf("result stream columns %v %v, want %v %v", names, types, wantNames, wantTypes)
		}
		for _, a := range c.Addrs {
			if !hosts[a] {
				t.Errorf("no row for host %s (rows for %v)", a, hosts)
			}
		}
	})

	// §1.4: a Distributed table AS the replicated one has its columns.
	t.Run("distributed_as_replicated", func(t *testing.T) {
		c.onCluster(t, first, fmt.Sprintf("CREATE TABLE %s.s ON CLUSTER %s AS %s.s_local ENGINE = Distributed(%s, %s, s_local, cityHash64(k))", db, c.Name, db, c.Name, db))
		for i, conn := range c.Conns {
			if a, b := describe(t, conn, db+".s"), describe(t, conn, db+".s_local"); !reflect.DeepEqual(a, b) {
				t.Errorf("%s: DESCRIBE of the Distributed table %v differs from the local one's %v", c.Addrs[i], a, b)
			}
		}
	})

	// §2.1, §2.2, §2.3, §1.5: a synchronous Distributed insert is on one replica of each
	// shard when it returns; SYSTEM SYNC REPLICA brings the other; FINAL through the
	// Distributed table collapses the copies of a key (all on one shard by the key's hash).
	t.Run("sync_insert_final_sync_replica", func(t *testing.T) {
		sync := ch.Context(ctx, ch.WithSettings(ch.Settings{"insert_distributed_sync": 1}))
		batch, err := first.PrepareBatch(sync, fmt.Sprintf("INSERT INTO %s.s (k, v, t)", db))
		if err != nil {
			t.Fatal(err)
		}
		const keys = 40
		for i := range keys {
			for copyN := range 2 { // every key twice, the later copy wins
				if err := batch.Append(fmt.Sprintf("k%02d", i), uint32(copyN), time.Unix(int64(1000+copyN), 0)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
		// Before any sync: each shard's rows are on at least one of its replicas.
		var onShards uint64
		for s := 0; s < 2; s++ {
			onShards += max(countRows(t, c.Conns[2*s], "SELECT count() FROM "+db+".s_local"),
				countRows(t, c.Conns[2*s+1], "SELECT count() FROM "+db+".s_local"))
		}
		if onShards != 2*keys {
			t.Errorf("right after the synchronous insert the shards hold %d rows, want %d", onShards, 2*keys)
		}
		c.syncReplicas(t, db, "s_local")
		var perShard [2]uint64
		for i, conn := range c.Conns {
			n := countRows(t, conn, "SELECT count() FROM "+db+".s_local")
			if i%2 == 1 && n != perShard[i/2] {
				t.Errorf("after SYSTEM SYNC REPLICA the replicas of shard %d hold %d and %d rows", i/2+1, perShard[i/2], n)
			}
			perShard[i/2] = n
		}
		if perShard[0] == 0 || perShard[1] == 0 || perShard[0]+perShard[1] != 2*keys {
			t.Errorf("rows per shard %v: want both shards used, %d in all", perShard, 2*keys)
		}
		if n := countRows(t, first, "SELECT count() FROM "+db+".s FINAL"); n != keys {
			t.Errorf("count() of the Distributed table FINAL = %d, want %d (one per key)", n, keys)
		}
		if n := countRows(t, first, "SELECT count() FROM "+db+".s FINAL WHERE v = 1"); n != keys {
			t.Errorf("FINAL kept %d latest copies, want %d", n, keys)
		}
	})

	// §3.2: remote() reads every host's system tables through one connection, and
	// system.replicas has the columns migrate reports.
	t.Run("remote_system_tables", func(t *testing.T) {
		for _, a := range c.Addrs {
			if n := countRows(t, first, fmt.Sprintf("SELECT count() FROM remote('%s', system.tables) WHERE database = '%s' AND name IN ('s', 's_local')", a, db)); n != 2 {
				t.Errorf("remote(%s, system.tables) shows %d of the 2 tables", a, n)
			}
			var shard, replica string
			if err := first.QueryRow(ctx, fmt.Sprintf("SELECT anyIf(substitution, macro = 'shard'), anyIf(substitution, macro = 'replica') FROM remote('%s', system.macros)", a)).Scan(&shard, &replica); err != nil {
				t.Fatal(err)
			}
			if shard == "" || replica == "" {
				t.Errorf("%s: macros shard=%q replica=%q", a, shard, replica)
			}
			var ro uint8
			var delay uint64
			var queue uint32
			if err := first.QueryRow(ctx, fmt.Sprintf("SELECT is_readonly, absolute_delay, queue_size FROM remote('%s', system.replicas) WHERE database = '%s' AND table = 's_local'", a, db)).Scan(&ro, &delay, &queue); err != nil {
				t.Errorf("%s: system.replicas through remote(): %v", a, err)
			}
		}
	})

	// §1.4 migrations 6 and 8: a second ADD COLUMN ON CLUSTER of a column a host has is
	// answered per host with code 44 (ILLEGAL_COLUMN, "already exists"). On a plain table
	// ON CLUSTER of the hosts cluster: a replicated table's ON CLUSTER ALTER can, on 18.16,
	// run on both replicas of a shard and stop the second one's DDL worker (see
	// addColumnPerShard), which would break the shared cluster for the tests after.
	t.Run("duplicate_add_column_code", func(t *testing.T) {
		c.onCluster(t, first, fmt.Sprintf("CREATE TABLE %s.p ON CLUSTER %s (k String) ENGINE = MergeTree() ORDER BY k", db, c.Hosts))
		c.onCluster(t, first, fmt.Sprintf("ALTER TABLE %s.p ON CLUSTER %s ADD COLUMN x String", db, c.Hosts))
		rows, err := onClusterRows(first, fmt.Sprintf("ALTER TABLE %s.p ON CLUSTER %s ADD COLUMN x String", db, c.Hosts))
		if code := exceptionCode(err); code != 44 {
			t.Errorf("second ADD COLUMN ON CLUSTER: stream error %v (code %d), want code 44", err, code)
		}
		if len(rows) != len(c.Addrs) {
			t.Errorf("%d answers, want one per host: %+v", len(rows), rows)
		}
		for _, r := range rows {
			if r.Status != 44 || !strings.Contains(r.Error, "already exists") {
				t.Errorf("host %s:%d answered %d %s, want 44 … already exists", r.Host, r.Port, r.Status, r.Error)
			}
		}
	})

	// §1.6.2–3: ALTER … ON CLUSTER of a non-replicated (Distributed) table is refused on a
	// cluster with internal_replication (371, INCONSISTENT_CLUSTER_DEFINITION) and runs
	// on the hosts cluster; hence cluster_all_hosts.
	t.Run("distributed_alter_needs_hosts_cluster", func(t *testing.T) {
		_, err := onClusterRows(first, fmt.Sprintf("ALTER TABLE %s.s ON CLUSTER %s ADD COLUMN x String", db, c.Name))
		if code := exceptionCode(err); code != 371 {
			t.Errorf("ALTER of the Distributed table ON CLUSTER %s: %v (code %d), want 371", c.Name, err, code)
		}
		c.onCluster(t, first, fmt.Sprintf("ALTER TABLE %s.s ON CLUSTER %s ADD COLUMN x String", db, c.Hosts))
		for i, conn := range c.Conns {
			if a, b := describe(t, conn, db+".s"), describe(t, conn, db+".s_local"); !reflect.DeepEqual(a, append(b, [2]string{"x", "String"})) {
				t.Errorf("%s: after the ALTER DESCRIBE s %v, want s_local's %v and x", c.Addrs[i], a, b)
			}
		}
	})

	// §2.4, the views on 18.16. Read in the design: a duplicate block is still pushed to
	// the views, whose target deduplicates by data hash, so two different inserts with
	// equal aggregates would lose one. Run here, 18.16 does otherwise: the target of a
	// view does not deduplicate (both equal aggregates are counted, whatever its window),
	// and a block the source drops as a duplicate is not pushed to the views at all.
	t.Run("views_on_replicated_dedup", func(t *testing.T) {
		for _, window := range []string{"default", "0"} {
			settings := ""
			if window == "0" {
				settings = " SETTINGS replicated_deduplication_window = 0"
			}
			src, data := "v_src_"+window, "v_data_"+window
			for _, stmt := range []string{
				fmt.Sprintf("CREATE TABLE %s.%s (k String, hour DateTime, score Float64) ENGINE = ReplicatedMergeTree('/clickhouse/raterd/tables/pre/%s/%s', 'r1') ORDER BY k", db, src, db, src),
				fmt.Sprintf("CREATE TABLE %s.%s (hour DateTime, rows AggregateFunction(count), s AggregateFunction(sum, Float64)) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/raterd/tables/pre/%s/%s', 'r1') ORDER BY hour%s", db, data, db, data, settings),
				fmt.Sprintf("CREATE MATERIALIZED VIEW %s.v_mv_%s TO %s.%s AS SELECT hour, countState() AS rows, sumState(score) AS s FROM %s.%s GROUP BY hour", db, window, db, data, db, src),
			} {
				if err := first.Exec(ctx, stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			insert := func(k string) {
				b, err := first.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (k, hour, score)", db, src))
				if err == nil {
					err = b.Append(k, time.Unix(3600, 0), 0.5)
				}
				if err == nil {
					err = b.Send()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			viewRows := func() uint64 { return countRows(t, first, fmt.Sprintf("SELECT countMerge(rows) FROM %s.%s", db, data)) }
			insert("r1")
			insert("r2") // another record, the same aggregate block as r1's
			if n := viewRows(); n != 2 {
				t.Errorf("window %s: the view counts %d of two different inserts with equal aggregates, want 2", window, n)
			}
			insert("r2") // a retry of the same block
			if n := countRows(t, first, fmt.Sprintf("SELECT count() FROM %s.%s", db, src)); n != 2 {
				t.Errorf("window %s: the source kept %d rows of r1, r2 and r2's retry, want 2 (the retry deduplicated)", window, n)
			}
			if n := viewRows(); n != 2 {
				t.Errorf("window %s: after the retried block the view counts %d, want 2 (a duplicate block is not pushed to the views)", window, n)
			}
		}
	})
}

// describe returns the name and type of each column of a table, in order.
func describe(t *testing.T, conn driver.Conn, table string) [][2]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT name, type FROM system.columns WHERE database = ? AND table = ?",
		strings.SplitN(table, ".", 2)[0], strings.SplitN(table, ".", 2)[1])
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var n, ty string
		if err := rows.Scan(&n, &ty); err != nil {
			t.Fatal(err)
		}
		out = append(out, [2]string{n, ty})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// clusterMigrated migrates a scratch database on the cluster and returns it with the result.
func (c testCluster) clusterMigrated(t *testing.T, prefix string) (string, MigrateResult) {
	t.Helper()
	db := c.scratchDB(t, prefix)
	res, err := MigrateWith(context.Background(), c.Conns[0], db, c.migrateOptions())
	if err != nil {
		t.Fatalf("migrate on cluster %s: %v\nhosts: %+v", c.Name, err, res.Hosts)
	}
	return db, res
}

func (c testCluster) migrateOptions() MigrateOptions {
	return MigrateOptions{Telemetry: quiet, Cluster: ClusterNames{Cluster: c.Name, AllHosts: c.Hosts}, DDLTimeout: time.Minute,
		Dial: func(ctx context.Context, addr string) (driver.Conn, error) {
			cfg := Config{Addrs: []string{addr}}
			if err := cfg.Validate("clickhouse"); err != nil {
				return nil, err
			}
			return Open(ctx, cfg)
		}}
}

// TestClusterMigrate: migrate on the cluster applies every migration on every host and
// reports each host's answers; run again it is a no-op with the same per-host table.
func TestClusterMigrate(t *testing.T) {
	c := requireCluster(t)
	ctx := context.Background()
	db, res := c.clusterMigrated(t, "raterd_cm")
	if len(res.Applied) != LatestMigration() {
		t.Fatalf("applied %d migrations, want %d", len(res.Applied), LatestMigration())
	}
	if res.Cluster != c.Name || len(res.Hosts) != 4 {
		t.Fatalf("cluster %q, %d hosts: %+v", res.Cluster, len(res.Hosts), res.Hosts)
	}
	want := clusterTables()
	stmts := len(res.Hosts[0].Statements)
	replicas := map[string]bool{}
	for i, h := range res.Hosts {
		if h.Addr != c.Addrs[i] || h.Shard != i/2+1 || h.Replica != i%2+1 {
			t.Errorf("host %d: %s shard %d replica %d, want %s shard %d replica %d", i, h.Addr, h.Shard, h.Replica, c.Addrs[i], i/2+1, i%2+1)
		}
		replicas[h.MacroReplica] = true
		if h.Failed() || len(h.Statements) != stmts || stmts == 0 {
			t.Errorf("%s: %d statements (want %d), failed %v: %+v", h.Addr, len(h.Statements), stmts, h.Failed(), h.Statements)
		}
		if !reflect.DeepEqual(h.Tables, want) || len(h.Missing) != 0 || len(h.ReadOnly) != 0 {
			t.Errorf("%s: tables %v (want %v), missing %v, read-only %v", h.Addr, h.Tables, want, h.Missing, h.ReadOnly)
		}
	}
	if len(replicas) != 4 {
		t.Errorf("replica macros %v, want 4 distinct", replicas)
	}
	for i, conn := range c.Conns {
		if err := CheckSchema(ctx, conn, db); err != nil {
			t.Errorf("%s: %v", c.Addrs[i], err)
		}
		if n := countRows(t, conn, fmt.Sprintf("SELECT count() FROM %s.schema_migrations FINAL", db)); n != uint64(LatestMigration()) {
			t.Errorf("%s: schema_migrations has %d rows, want %d", c.Addrs[i], n, LatestMigration())
		}
		var engine string
		if err := conn.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = 'scores'", db).Scan(&engine); err != nil || engine != "Distributed" {
			t.Errorf("%s: %s.scores engine %q (%v), want Distributed", c.Addrs[i], db, engine, err)
		}
	}

	again, err := MigrateWith(ctx, c.Conns[1], db, c.migrateOptions())
	if err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if len(again.Applied) != 0 || len(again.Upgraded) != 0 {
		t.Errorf("second migrate applied %d migrations and %d steps, want none", len(again.Applied), len(again.Upgraded))
	}
	for i, h := range again.Hosts {
		// The second run only re-runs the idempotent preamble (database, migrations table).
		if h.Failed() || len(h.Statements) != 2 {
			t.Errorf("second run, %s: %+v", h.Addr, h.Statements)
		}
		if !reflect.DeepEqual(h.Tables, res.Hosts[i].Tables) || h.Addr != res.Hosts[i].Addr {
			t.Errorf("second run, %s: tables %v, first run %v", h.Addr, h.Tables, res.Hosts[i].Tables)
		}
	}

	// Negative control: a single-server schema is refused, not converted.
	single := c.scratchDB(t, "raterd_cm_single")
	if _, err := MigrateWith(ctx, c.Conns[0], single, MigrateOptions{Telemetry: quiet}); err != nil {
		t.Fatal(err)
	}
	if _, err := MigrateWith(ctx, c.Conns[0], single, c.migrateOptions()); !errors.Is(err, errNotClusterSchema) {
		t.Errorf("cluster migrate over a single-server schema: %v, want errNotClusterSchema", err)
	}
}

// readerNames are the tables and views readers query by name: on a cluster the
// Distributed tables (and the metadata tables, replicated on every host).
var readerNames = []string{"scores", "dead_letters", "alerts", "scores_hourly", "scores_daily", "record_sources", "schema_migrations", "schema_gated_steps"}

// TestClusterStructure: every name readers use has the same columns, in the same order
// with the same types, on the cluster (each host) as on one server.
func TestClusterStructure(t *testing.T) {
	c := requireCluster(t)
	single, cfg := newTestClickHouse(t)
	if _, err := Migrate(context.Background(), single, cfg.Database, quiet); err != nil {
		t.Fatal(err)
	}
	db, _ := c.clusterMigrated(t, "raterd_cs")
	for _, name := range readerNames {
		want := describe(t, single, cfg.Database+"."+name)
		if len(want) == 0 {
			t.Fatalf("%s: no columns on the single server", name)
		}
		for i, conn := range c.Conns {
			if got := describe(t, conn, db+"."+name); !reflect.DeepEqual(got, want) {
				t.Errorf("%s on %s:\n got %v\nwant %v (single server)", name, c.Addrs[i], got, want)
			}
		}
	}
}

// clusterConfig is the writers' Config for database db on the cluster.
func (c testCluster) clusterConfig(t *testing.T, db string) Config {
	t.Helper()
	cfg := Config{Addrs: c.Addrs[:1], Database: db, Cluster: c.Name, ClusterAllHosts: c.Hosts}
	if err := cfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// syncAll waits until both replicas of every shard have every replicated table's rows.
func (c testCluster) syncAll(t *testing.T, db string) {
	t.Helper()
	c.syncReplicas(t, db, "scores_local", "dead_letters_local", "alerts_local", "scores_hourly_data", "scores_daily_data", "record_sources_data")
}

// cookbookDeadLetters are dead letters over two topics, one replayed at a new offset.
func cookbookDeadLetters() []record.DeadLetter {
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	var out []record.DeadLetter
	for i := range 20 {
		out = append(out, record.DeadLetter{Source: record.Source{Topic: fmt.Sprintf("llm-traffic-%d", i%2), Partition: i % 4, Offset: int64(100 + i)},
			Value: []byte(fmt.Sprintf(`{"bad": %d`, i)), Reason: "invalid_json", Error: "unexpected end", FirstSeen: at.Add(time.Duration(i) * time.Minute), Attempts: 1})
	}
	replay := out[3]
	replay.Source.Offset = 900
	return append(out, replay)
}

// TestClusterCookbookMatches: the same rows, replays included, written through the writers
// to one server and to the cluster give the same answers: every cookbook query (each case
// of the cookbook test, whose hand-computed answers the cluster must give too), and the
// tables readers read with FINAL.
func TestClusterCookbookMatches(t *testing.T) {
	c := requireCluster(t)
	ctx := context.Background()
	single, scfg := newTestClickHouse(t)
	if _, err := Migrate(ctx, single, scfg.Database, quiet); err != nil {
		t.Fatal(err)
	}
	db, _ := c.clusterMigrated(t, "raterd_cc")
	ccfg := c.clusterConfig(t, db)
	cconn := c.Conns[0]
	rows := loadCookbookFixture(t)
	later := make([]record.Score, len(rows))
	for i, r := range rows {
		r.ScoredAt = r.ScoredAt.Add(time.Hour)
		later[i] = r
	}
	letters := cookbookDeadLetters()
	for _, side := range []struct {
		conn driver.Conn
		cfg  Config
	}{{single, scfg}, {cconn, ccfg}} {
		scores := NewScores(side.conn, side.cfg, quiet)
		for _, batch := range [][]record.Score{rows, rows, later} { // the first insert, a replay, a re-scoring
			if err := scores.WriteScores(ctx, batch); err != nil {
				t.Fatalf("%v: WriteScores: %v", side.cfg.Addrs, err)
			}
		}
		dl := NewDeadLetters(side.conn, side.cfg, quiet)
		for _, batch := range [][]record.DeadLetter{letters, letters[:5]} {
			if err := dl.WriteDeadLetters(ctx, batch); err != nil {
				t.Fatalf("%v: WriteDeadLetters: %v", side.cfg.Addrs, err)
			}
		}
		for _, stmt := range cookbookAlertInserts(side.cfg.Database) {
			if err := side.conn.Exec(side.cfg.InsertContext(ctx, nil), stmt); err != nil {
				t.Fatalf("insert the alert fixture: %v\n%s", err, stmt)
			}
		}
	}
	c.syncAll(t, db)

	// The cluster gives the cookbook's hand-computed answers (the single server's, checked
	// by TestCookbookQueries)…
	checkCookbook(t, cconn, db, "cluster")
	// …and every case's answer equals the single server's, cell for cell.
	for i, cc := range cookbookCases() {
		q, _ := CookbookQueryNamed(cc.query)
		a, err := q.Render(scfg.Database, cc.params)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := q.Render(db, cc.params)
		_, ra, err := queryTable(ctx, single, a)
		if err != nil {
			t.Fatal(err)
		}
		_, rb, err := queryTable(ctx, cconn, b)
		if err != nil {
			t.Errorf("case %d (%s) on the cluster: %v", i, cc.query, err)
			continue
		}
		if !tablesEqual(ra, rb) {
			t.Errorf("case %d (%s): the cluster answers\n%v\nthe single server\n%v", i, cc.query, rb, ra)
		}
	}
	// Every cookbook query (raterd report and the HTML report run nothing else) has a case.
	covered := map[string]bool{}
	for _, cc := range cookbookCases() {
		covered[cc.query] = true
	}
	for _, q := range Cookbook() {
		if !covered[q.Name] {
			t.Errorf("cookbook query %s has no case, so the cluster's answer to it is not compared", q.Name)
		}
	}
	// The Grafana dashboard's every variable and panel query, in each of its scenarios, as
	// Grafana expands them over the fixture's week: the cluster's answers equal the server's.
	dash := loadGrafanaDashboard(t)
	panels := 0
	for _, sc := range grafanaScenarios() {
		e := grafanaExpander{
			from:     time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
			to:       time.Date(2026, 11, 29, 23, 59, 59, 0, time.UTC),
			interval: time.Hour,
			db:       scfg.Database,
		}
		want, err := grafanaRun(ctx, t, single, dash, e, sc)
		if err != nil {
			t.Fatalf("Grafana %s on the single server: %v", sc.name, err)
		}
		e.db = db
		got, err := grafanaRun(ctx, t, cconn, dash, e, sc)
		if err != nil {
			t.Errorf("Grafana %s on the cluster: %v", sc.name, err)
			continue
		}
		compareGrafanaResults(t, "cluster vs single server", sc.name, want, got)
		for _, r := range want {
			if len(r.rows) > 0 {
				panels++
			}
		}
	}
	if panels == 0 {
		t.Error("no Grafana query returned rows on the single server: the comparison compared nothing")
	}
	for _, q := range []string{
		// In a subquery: on 18.16 `SELECT * FROM <replicated> FINAL ORDER BY <part of the key>`
		// fails with "Cannot find column" (code 8), where the single server answers.
		"SELECT * FROM (SELECT * FROM %s.scores FINAL) ORDER BY record_id, evaluator, judge, rubric_version",
		"SELECT * FROM (SELECT * FROM %s.dead_letters FINAL) ORDER BY topic, partition, offset",
		"SELECT * FROM (SELECT alert_id, state, updated_at, message FROM %s.alerts FINAL) ORDER BY alert_id",
		"SELECT record_id, hour, uniqExactMerge(sources) FROM %s.record_sources GROUP BY record_id, hour ORDER BY record_id, hour",
	} {
		_, ra, err := queryTable(ctx, single, fmt.Sprintf(q, scfg.Database))
		if err != nil {
			t.Fatal(err)
		}
		_, rb, err := queryTable(ctx, cconn, fmt.Sprintf(q, db))
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if len(ra) == 0 || !tablesEqual(ra, rb) {
			t.Errorf("%s: the cluster has %d rows, the single server %d, or they differ", q, len(rb), len(ra))
		}
	}
	// No identity on two shards: the shards' FINAL counts add up to the Distributed one.
	var sum uint64
	for s := range 2 {
		sum += countRows(t, c.Conns[2*s], "SELECT count() FROM "+db+".scores_local FINAL")
	}
	if all := countRows(t, cconn, "SELECT count() FROM "+db+".scores FINAL"); sum != all || all != uint64(len(rows)) {
		t.Errorf("scores_local FINAL over the shards %d, scores FINAL %d, want both %d", sum, all, len(rows))
	}
}

// tablesEqual compares two query results cell by cell (cellsEqual), rows in order.
func tablesEqual(a, b [][]any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if !cellsEqual(b[i][j], a[i][j]) && !reflect.DeepEqual(a[i][j], b[i][j]) {
				return false
			}
		}
	}
	return true
}

// TestClusterInsertRetryDeduplicated: the writer's insert sent again with the same rows
// (what an attempt after a lost answer sends) lands once on every shard, without FINAL, and
// is not counted again by the views (a block the source drops is not pushed to them on
// 18.16). Negative control: the same rows in another order are another block, which lands.
func TestClusterInsertRetryDeduplicated(t *testing.T) {
	c := requireCluster(t)
	ctx := context.Background()
	db, _ := c.clusterMigrated(t, "raterd_cr")
	cfg := c.clusterConfig(t, db)
	rows := loadCookbookFixture(t)
	scores := NewScores(c.Conns[0], cfg, quiet)
	rawCount := func() uint64 {
		c.syncReplicas(t, db, "scores_local", "scores_hourly_data")
		var n uint64
		for s := range 2 {
			a := countRows(t, c.Conns[2*s], "SELECT count() FROM "+db+".scores_local")
			b := countRows(t, c.Conns[2*s+1], "SELECT count() FROM "+db+".scores_local")
			if a != b {
				t.Errorf("shard %d: replicas hold %d and %d rows after SYSTEM SYNC REPLICA", s+1, a, b)
			}
			n += a
		}
		return n
	}
	hourly := func() uint64 { return countRows(t, c.Conns[0], "SELECT countMerge(rows) FROM "+db+".scores_hourly") }
	if err := scores.WriteScores(ctx, rows); err != nil {
		t.Fatal(err)
	}
	// The writer's insert is synchronous (insert_distributed_sync from InsertSettings): when
	// it returns, each shard's rows are on one of its replicas, before any sync.
	var stored uint64
	for s := range 2 {
		stored += max(countRows(t, c.Conns[2*s], "SELECT count() FROM "+db+".scores_local"),
			countRows(t, c.Conns[2*s+1], "SELECT count() FROM "+db+".scores_local"))
	}
	if stored != uint64(len(rows)) {
		t.Errorf("when WriteScores returned the shards held %d rows, want %d (is the insert synchronous?)", stored, len(rows))
	}
	if err := scores.WriteScores(ctx, rows); err != nil { // the retry
		t.Fatal(err)
	}
	if n := rawCount(); n != uint64(len(rows)) {
		t.Errorf("after the insert and its retry the shards hold %d rows without FINAL, want %d (one copy)", n, len(rows))
	}
	if n := hourly(); n != uint64(len(rows)) {
		t.Errorf("scores_hourly counts %d rows after the retry, want %d", n, len(rows))
	}
	// The block id is the hash of the part written, whose rows are sorted by the table's
	// key: the same rows in another order (a retry whose rows were grouped otherwise) are
	// the same block on 18.16 too.
	reversed := slices.Clone(rows)
	slices.Reverse(reversed)
	if err := scores.WriteScores(ctx, reversed); err != nil {
		t.Fatal(err)
	}
	if n := rawCount(); n != uint64(len(rows)) {
		t.Errorf("the same rows in another order: the shards hold %d rows, want %d (deduplicated)", n, len(rows))
	}
	// Negative control: the rows re-scored (a later scored_at) are another block and land.
	later := make([]record.Score, len(rows))
	for i, r := range rows {
		r.ScoredAt = r.ScoredAt.Add(time.Hour)
		later[i] = r
	}
	if err := scores.WriteScores(ctx, later); err != nil {
		t.Fatal(err)
	}
	if n := rawCount(); n != 2*uint64(len(rows)) {
		t.Errorf("re-scored rows: the shards hold %d rows, want %d (another block lands)", n, 2*len(rows))
	}
	if n := hourly(); n != 2*uint64(len(rows)) {
		t.Errorf("re-scored rows: scores_hourly counts %d, want %d", n, 2*len(rows))
	}
	if n := countRows(t, c.Conns[0], "SELECT count() FROM "+db+".scores FINAL"); n != uint64(len(rows)) {
		t.Errorf("scores FINAL: %d rows, want %d", n, len(rows))
	}
}
