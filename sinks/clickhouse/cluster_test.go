package clickhouse

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of the tests that have one")

// TestClusterStatementsGolden: the cluster form of every migration is the reviewed golden
// file testdata/cluster_migrations.sql (regenerate with -update and review the diff).
func TestClusterStatementsGolden(t *testing.T) {
	got, err := clusterSQL(Migrations(), ClusterNames{Cluster: "raterd", AllHosts: "raterd_hosts"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "cluster_migrations.sql")
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with -update)", err)
	}
	if got != string(want) {
		t.Errorf("the cluster form of the migrations changed; rerun with -update and review testdata/cluster_migrations.sql.\ngot:\n%s", got)
	}
}

// TestClusterStatementUnknownShape: a statement shape the rewriter does not know fails,
// naming it, instead of running unchanged on one host.
func TestClusterStatementUnknownShape(t *testing.T) {
	c := ClusterNames{Cluster: "raterd", AllHosts: "raterd_hosts"}
	for _, stmt := range []string{
		"CREATE TABLE IF NOT EXISTS {db}.other (a String) ENGINE = ReplacingMergeTree(a) ORDER BY a",
		"CREATE TABLE IF NOT EXISTS {db}.scores (a String) ENGINE = MergeTree() ORDER BY a",
		"DROP TABLE IF EXISTS {db}.scores",
		"ALTER TABLE {db}.other ADD COLUMN b String",
		"RENAME TABLE {db}.scores TO {db}.scores_old",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.other\nENGINE = AggregatingMergeTree()\nORDER BY a\nAS SELECT\na\nFROM {db}.scores\nGROUP BY a",
	} {
		if out, err := clusterStatement(stmt, 9, c); err == nil {
			t.Errorf("%q: rewritten to %q, want an error", stmt, out)
		}
	}
	// Every migration's statements and gated steps have a form (the golden test's input),
	// and no output runs without ON CLUSTER or reads the Distributed scores from a view.
	for _, m := range Migrations() {
		stmts, err := clusterStatements(m, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range m.Gated {
			g, err := clusterStatement(s.Statement, m.Version, c)
			if err != nil {
				t.Fatal(err)
			}
			stmts = append(stmts, g...)
		}
		for _, col := range m.AddColumns {
			stmts = append(stmts, clusterAddColumn(col, c)...)
		}
		for _, s := range stmts {
			if !strings.Contains(s, " ON CLUSTER raterd") {
				t.Errorf("migration %d: %q has no ON CLUSTER", m.Version, s)
			}
			if strings.Contains(s, "FROM {db}.scores\n") || strings.Contains(s, "POPULATE") {
				t.Errorf("migration %d: %q reads the Distributed scores or populates", m.Version, s)
			}
		}
	}
}

// TestClusterConfig: the cluster keys' defaults and validation, each error naming its key;
// the insert settings are the synchronous Distributed insert and the quorum on a cluster
// only.
func TestClusterConfig(t *testing.T) {
	ok := Config{Addrs: []string{"127.0.0.1:9101"}, Cluster: "raterd"}
	if err := ok.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	if ok.ClusterAllHosts != "raterd_hosts" || ok.DDLTimeout != DefaultDDLTimeout || ok.InsertQuorum != 0 {
		t.Errorf("defaults: all hosts %q, ddl_timeout %s, insert_quorum %d", ok.ClusterAllHosts, ok.DDLTimeout, ok.InsertQuorum)
	}
	if got := ok.InsertSettings(); got["insert_distributed_sync"] != 1 || got["insert_quorum"] != 0 || len(got) != 2 {
		t.Errorf("cluster insert settings %v", got)
	}
	if got := (Config{}).InsertSettings(); got != nil {
		t.Errorf("one server's insert settings %v, want none", got)
	}
	if got := ok.ClusterNames(); got != (ClusterNames{"raterd", "raterd_hosts"}) {
		t.Errorf("ClusterNames %+v", got)
	}
	for _, tc := range []struct {
		mod  func(c *Config)
		want string
	}{
		{func(c *Config) { c.Cluster = "raterd; DROP" }, "clickhouse.cluster:"},
		{func(c *Config) { c.ClusterAllHosts = "a-b" }, "clickhouse.cluster_all_hosts:"},
		{func(c *Config) { c.ClusterAllHosts = "raterd" }, "clickhouse.cluster_all_hosts:"},
		{func(c *Config) { c.InsertQuorum = 11 }, "clickhouse.insert_quorum:"},
		{func(c *Config) { c.InsertQuorum = -1 }, "clickhouse.insert_quorum:"},
		{func(c *Config) { c.DDLTimeout = time.Second }, "clickhouse.ddl_timeout:"},
		{func(c *Config) { c.DDLTimeout = time.Hour }, "clickhouse.ddl_timeout:"},
		{func(c *Config) { c.Cluster = ""; c.InsertQuorum = 2 }, "clickhouse.insert_quorum: set, but clickhouse.cluster is empty"},
		{func(c *Config) { c.Cluster = ""; c.ClusterAllHosts = "h" }, "clickhouse.cluster_all_hosts: set"},
		{func(c *Config) { c.Cluster = ""; c.DDLTimeout = time.Minute }, "clickhouse.ddl_timeout: set"},
	} {
		c := Config{Addrs: []string{"127.0.0.1:9101"}, Cluster: "raterd"}
		tc.mod(&c)
		if err := c.Validate("clickhouse"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one starting %q", c, err, tc.want)
		}
	}
}
