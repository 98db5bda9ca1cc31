package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"raterd/sinks/clickhouse"
)

// TestPrintMigrationCluster: on a cluster, raterd migrate prints one line per host saying
// what it applied there, and PENDING or FAILED for a host that did not answer or refused;
// "up to date" is not claimed while a host failed.
func TestPrintMigrationCluster(t *testing.T) {
	ok := []clickhouse.StatementResult{{Statement: "CREATE …"}, {Statement: "ALTER …"}}
	res := clickhouse.MigrateResult{
		ServerVersion: "18.16.1",
		Cluster:       "raterd",
		Hosts: []clickhouse.HostReport{
			{Shard: 1, Replica: 1, Addr: "127.0.0.1:9101", MacroShard: "01", MacroReplica: "s1r1", Statements: ok, Tables: []string{"a", "b"}},
			{Shard: 1, Replica: 2, Addr: "127.0.0.1:9102", MacroShard: "01", MacroReplica: "s1r2",
				Statements: []clickhouse.StatementResult{{Statement: "CREATE …"}, {Statement: "ALTER …", Pending: true}}, MaxDelay: 3 * time.Second},
			{Shard: 2, Replica: 1, Addr: "127.0.0.1:9103", MacroShard: "02", MacroReplica: "s2r1",
				Statements: []clickhouse.StatementResult{{Statement: "ALTER …", Status: 44, Error: "already exists"}}, ReadOnly: []string{"scores_local"}},
		},
	}
	var b bytes.Buffer
	printMigration(&b, clickhouse.Config{Database: "raterd"}, res)
	out := b.String()
	for _, want := range []string{
		"clickhouse cluster raterd: 3 hosts",
		"shard 1 replica 1  127.0.0.1:9101  01/s1r1  up to date  2 tables",
		"shard 1 replica 2  127.0.0.1:9102  01/s1r2  PENDING: 1 statements not answered",
		"replication delay 3s",
		"shard 2 replica 1  127.0.0.1:9103  02/s2r1  FAILED: ALTER …: 44 already exists",
		"READ-ONLY scores_local",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "is up to date (version") {
		t.Errorf("claims the schema is up to date while hosts failed:\n%s", out)
	}
	b.Reset()
	res.Hosts = res.Hosts[:1]
	printMigration(&b, clickhouse.Config{Database: "raterd"}, res)
	if !strings.Contains(b.String(), "schema of raterd is up to date") {
		t.Errorf("all hosts fine, nothing applied: want up to date:\n%s", b.String())
	}
}
