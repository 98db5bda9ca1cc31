package clickhouse

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
