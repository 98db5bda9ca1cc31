package clickhouse

// The schema on a ClickHouse cluster (docs/design-topology.md §1): Migrations() stays the
// single list, and clusterStatements rewrites each statement into its ON CLUSTER form —
// Replicated* local tables, Distributed tables under the names readers use, views with
// TO tables. It knows exactly the statement shapes the list uses and fails on any other;
// its output for every migration is the golden file testdata/cluster_migrations.sql.

import (
	"fmt"
	"regexp"
	"strings"
)

// ClusterNames are the two remote_servers clusters of a cluster install.
type ClusterNames struct {
	// Cluster has the replicated shards (internal_replication true): the ON CLUSTER of
	// the local tables, and the cluster the Distributed tables read and write.
	Cluster string
	// AllHosts lists every host of Cluster as its own shard: the ON CLUSTER of ALTER and
	// DROP of the Distributed tables, which 18.x refuses on a cluster with
	// internal_replication (INCONSISTENT_CLUSTER_DEFINITION).
	AllHosts string
}

// shardingKeys are the tables written through a Distributed table, with the key that
// sends every copy of a row identity to the same shard (docs/design-topology.md §2.2).
var shardingKeys = map[string]string{
	"scores":       "cityHash64(record_id)",
	"dead_letters": "cityHash64(topic, partition, offset)",
	"alerts":       "cityHash64(alert_id)",
}

// metadataTables are replicated with one replica set across every host (no {shard} in
// their path), so a row migrate records on one host reaches all.
var metadataTables = map[string]bool{"schema_migrations": true, gatedStepsTable: true}

// clusterViews are the aggregate views; on a cluster each is a TO table VIEW_data, the
// materialized view VIEW_mv reading scores_local, and a Distributed table VIEW.
var clusterViews = map[string]bool{"scores_hourly": true, "scores_daily": true, "record_sources": true}

// clusterLocal is the name of the table that holds table's rows on each host.
func clusterLocal(table string) string {
	if clusterViews[table] {
		return table + "_data"
	}
	return table + "_local"
}

// replicaArgs are the first arguments of a Replicated* engine: the ZooKeeper path
// /clickhouse/raterd/tables/<shard>/<db>/<table>/m<version> and the replica macro.
func replicaArgs(shard, table string, version int) string {
	return fmt.Sprintf("'/clickhouse/raterd/tables/%s/{db}/%s/m%d', '{replica}'", shard, table, version)
}

var (
	createTableRe = regexp.MustCompile(`(?s)^CREATE TABLE IF NOT EXISTS \{db\}\.(\w+) \((.*)\) ENGINE = ReplacingMergeTree\((\w*)\)(.*)$`)
	createViewRe  = regexp.MustCompile(`(?s)^CREATE MATERIALIZED VIEW IF NOT EXISTS \{db\}\.(\w+)\nENGINE = AggregatingMergeTree\(\)\n(.*?)\n(?:POPULATE\n)?AS SELECT\n(.*)\nFROM \{db\}\.scores\n(GROUP BY [^\n]*)$`)
	dropTableRe   = regexp.MustCompile(`^DROP TABLE IF EXISTS \{db\}\.(\w+)$`)
	alterTableRe  = regexp.MustCompile(`(?s)^ALTER TABLE \{db\}\.(?:\{inner:(\w+)\}|(\w+))\s+(.*)$`)
)

// clusterStatement rewrites one statement of a migration (version) into its cluster form.
func clusterStatement(stmt string, version int, c ClusterNames) ([]string, error) {
	if m := createTableRe.FindStringSubmatch(stmt); m != nil {
		table, columns, ver, rest := m[1], m[2], m[3], m[4]
		engine := func(shard, local string) string {
			args := replicaArgs(shard, local, version)
			if ver != "" {
				args += ", " + ver
			}
			return "ReplicatedReplacingMergeTree(" + args + ")"
		}
		if metadataTables[table] {
			return []string{fmt.Sprintf("CREATE TABLE IF NOT EXISTS {db}.%s ON CLUSTER %s (%s) ENGINE = %s%s",
				table, c.Cluster, columns, engine("all", table), rest)}, nil
		}
		key, ok := shardingKeys[table]
		if !ok {
			return nil, fmt.Errorf("table %s has no sharding key", table)
		}
		local := clusterLocal(table)
		return []string{
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS {db}.%s ON CLUSTER %s (%s) ENGINE = %s%s", local, c.Cluster, columns, engine("{shard}", local), rest),
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS {db}.%s ON CLUSTER %s AS {db}.%s\nENGINE = Distributed(%s, {db}, %s, %s)", table, c.Cluster, local, c.Cluster, local, key),
		}, nil
	}
	if m := createViewRe.FindStringSubmatch(stmt); m != nil {
		view, clauses, sel, groupBy := m[1], m[2], m[3], m[4]
		if !clusterViews[view] {
			return nil, fmt.Errorf("view %s is not a known aggregate view", view)
		}
		data := clusterLocal(view)
		// The TO table takes its columns from the view's own SELECT (LIMIT 0: no rows), so
		// its structure is the single server's inner table's by construction. Window 0:
		// no deduplication of the view's blocks (docs/design-topology.md §2.4).
		return []string{
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS {db}.%s ON CLUSTER %s\nENGINE = ReplicatedAggregatingMergeTree(%s)\n%s\nSETTINGS replicated_deduplication_window = 0\nAS SELECT\n%s\nFROM {db}.scores_local\n%s\nLIMIT 0",
				data, c.Cluster, replicaArgs("{shard}", data, version), clauses, sel, groupBy),
			fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.%s_mv ON CLUSTER %s TO {db}.%s\nAS SELECT\n%s\nFROM {db}.scores_local\n%s",
				view, c.Cluster, data, sel, groupBy),
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS {db}.%s ON CLUSTER %s AS {db}.%s\nENGINE = Distributed(%s, {db}, %s)", view, c.Cluster, data, c.Cluster, data),
		}, nil
	}
	if m := dropTableRe.FindStringSubmatch(stmt); m != nil {
		view := m[1]
		if !clusterViews[view] {
			return nil, fmt.Errorf("DROP of %s: only the aggregate views are dropped by migrations", view)
		}
		return []string{
			fmt.Sprintf("DROP TABLE IF EXISTS {db}.%s ON CLUSTER %s", view, c.AllHosts),
			fmt.Sprintf("DROP TABLE IF EXISTS {db}.%s_mv ON CLUSTER %s", view, c.Cluster),
			fmt.Sprintf("DROP TABLE IF EXISTS {db}.%s ON CLUSTER %s", clusterLocal(view), c.Cluster),
		}, nil
	}
	if m := alterTableRe.FindStringSubmatch(stmt); m != nil {
		inner, table, body := m[1], m[2], m[3]
		var out []string
		switch {
		case inner != "" && clusterViews[inner]:
			table = inner
		case table != "" && shardingKeys[table] != "":
		default:
			return nil, fmt.Errorf("ALTER of %s%s: not a table the rewriter knows", inner, table)
		}
		// Replicated tables take the replicated deduplication window.
		body = strings.ReplaceAll(body, "non_replicated_deduplication_window", "replicated_deduplication_window")
		out = append(out, fmt.Sprintf("ALTER TABLE {db}.%s ON CLUSTER %s %s", clusterLocal(table), c.Cluster, body))
		// A column type change shows through the Distributed table only if it is made
		// there too (DESCRIBE of the reader-facing name stays the single server's).
		if inner == "" && strings.Contains(body, "MODIFY COLUMN") && strings.Contains(body, "LowCardinality") {
			out = append(out, fmt.Sprintf("ALTER TABLE {db}.%s ON CLUSTER %s %s", table, c.AllHosts, body))
		}
		return out, nil
	}
	first, _, _ := strings.Cut(stmt, "\n")
	return nil, fmt.Errorf("no cluster form for the statement %q", first)
}

// clusterStatements rewrites m's Statements into their cluster form, in order.
func clusterStatements(m Migration, c ClusterNames) ([]string, error) {
	var out []string
	for i, stmt := range m.Statements {
		s, err := clusterStatement(stmt, m.Version, c)
		if err != nil {
			return nil, fmt.Errorf("migration %d (%s), statement %d: %w", m.Version, m.Name, i+1, err)
		}
		out = append(out, s...)
	}
	return out, nil
}

// clusterAddColumn is the cluster form of an added column: on the local table (the
// replicated ALTER runs on one replica of each shard and replicates), and on the
// Distributed table of every host.
func clusterAddColumn(col AddColumn, c ClusterNames) []string {
	local := col
	local.Table = clusterLocal(col.Table)
	return []string{
		strings.Replace(local.statement("{db}"), " ADD COLUMN ", " ON CLUSTER "+c.Cluster+" ADD COLUMN ", 1),
		strings.Replace(col.statement("{db}"), " ADD COLUMN ", " ON CLUSTER "+c.AllHosts+" ADD COLUMN ", 1),
	}
}

// clusterPreamble creates the database and the migrations table on every host.
func clusterPreamble(c ClusterNames) ([]string, error) {
	tbl, err := clusterStatement(migrationsTable, 0, c)
	if err != nil {
		return nil, err
	}
	return append([]string{"CREATE DATABASE IF NOT EXISTS {db} ON CLUSTER " + c.Cluster}, tbl...), nil
}

// clusterSQL is the cluster form of every migration, as the golden file holds it.
func clusterSQL(ms []Migration, c ClusterNames) (string, error) {
	var b strings.Builder
	write := func(stmts ...string) {
		for _, s := range stmts {
			b.WriteString(s)
			b.WriteString(";\n\n")
		}
	}
	pre, err := clusterPreamble(c)
	if err != nil {
		return "", err
	}
	b.WriteString("-- Generated by TestClusterStatementsGolden (go test -run TestClusterStatementsGolden ./sinks/clickhouse/ -update).\n")
	fmt.Fprintf(&b, "-- The cluster form of raterd's migrations for cluster %s (all hosts: %s); {db} is the database.\n\n", c.Cluster, c.AllHosts)
	b.WriteString("-- before any migration\n")
	write(pre...)
	for _, m := range ms {
		fmt.Fprintf(&b, "-- migration %d: %s\n", m.Version, m.Name)
		for _, col := range m.AddColumns {
			write(clusterAddColumn(col, c)...)
		}
		stmts, err := clusterStatements(m, c)
		if err != nil {
			return "", err
		}
		write(stmts...)
		for _, s := range m.Gated {
			gs, err := clusterStatement(s.Statement, m.Version, c)
			if err != nil {
				return "", fmt.Errorf("migration %d, gated step %q: %w", m.Version, s.Name, err)
			}
			fmt.Fprintf(&b, "-- gated step %q (needs %s)\n", s.Name, s.Feature)
			write(gs...)
		}
	}
	return b.String(), nil
}
