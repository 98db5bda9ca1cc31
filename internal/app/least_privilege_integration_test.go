package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/internal/testkit"
	"raterd/sinks/clickhouse"
)

// TestIntegrationClickHouseLeastPrivilege: on the dev ClickHouse, the writer user (no DDL,
// deploy/clickhouse/users.xml) is refused `raterd migrate` with an error naming
// clickhouse.username, the migration user applies the schema, and `raterd run` as the
// writer scores records and dead-letters bad ones into that schema.
func TestIntegrationClickHouseLeastPrivilege(t *testing.T) {
	s := testkit.RequireServices(t)
	roles := testkit.RequireClickHouseRoles(t)
	ctx := context.Background()
	db := testkit.LeastPrivilegeDB

	admin := clickhouse.Config{Addrs: []string{s.ClickHouse}, Database: db}
	if err := admin.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	adminConn, err := clickhouse.Open(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer adminConn.Close()
	if err := adminConn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adminConn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })

	as := func(user, password string) clickhouse.Config {
		text := fmt.Sprintf("clickhouse: {addrs: [%s], database: %s, username: %s, password: %q}\n", s.ClickHouse, db, user, password)
		cfg, err := ParseConfig([]byte(text+"kafka: {brokers: [x:1], topics: [t], group_id: g}\njudges: {c: {type: heuristic}}\nevaluators: [{name: r, judge: c, check: refusal}]\n"),
			func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		return *cfg.ClickHouse
	}

	// The writer may not create the schema, and says who and what to do.
	_, err = Migrate(ctx, as(roles.WriterUser, roles.WriterPassword))
	if !errors.Is(err, ErrMigrateNotPermitted) || !strings.Contains(err.Error(), `clickhouse.username "`+roles.WriterUser+`"`) {
		t.Fatalf("migrate as the writer: %v; want ErrMigrateNotPermitted naming clickhouse.username %q", err, roles.WriterUser)
	}
	if strings.Contains(err.Error(), roles.WriterPassword) {
		t.Errorf("the writer's password is in the error: %v", err)
	}
	t.Logf("migrate as the writer: %v", err)

	// The migration user may.
	if _, err := Migrate(ctx, as(roles.MigratorUser, roles.MigratorPassword)); err != nil {
		t.Fatalf("migrate as the migration user: %v", err)
	}
	// The writer still may not alter it (a second migrate is not a no-op for it: the
	// CREATE … IF NOT EXISTS statements are DDL too).
	if _, err := Migrate(ctx, as(roles.WriterUser, roles.WriterPassword)); !errors.Is(err, ErrMigrateNotPermitted) {
		t.Fatalf("migrate as the writer on a migrated database: %v; want ErrMigrateNotPermitted", err)
	}

	// raterd run as the writer: scores and dead letters land.
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "it-least-privilege-" + suffix
	t.Cleanup(func() { testkit.DeleteTopics(s.Kafka, topic, topic+".dlq") })
	testkit.CreateTopic(t, s.Kafka, topic, 2)
	values, invalid, _ := integrationTraffic(100)
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Value: v}
	}
	testkit.ProduceMessages(t, s.Kafka, topic, msgs)
	text := fmt.Sprintf(`
kafka:
  brokers: [%s]
  topics: [%s]
  group_id: it-least-privilege-%s
  batch: {max_records: 50, linger: 20ms}
  commit_interval: 100ms
clickhouse: {addrs: [%s], database: %s, username: %s, password: %q}
judges:
  checks: {type: heuristic}
evaluators:
  - {name: refusal, judge: checks, check: refusal}
scores_file: %s
admin: {listen: "off"}
`, s.Kafka, topic, suffix, s.ClickHouse, db, roles.WriterUser, roles.WriterPassword, filepath.Join(t.TempDir(), "scores.ndjson"))
	cfg, err := ParseConfig([]byte(text), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	stop := startRun(t, cfg, logs)
	defer stop()
	valid := len(values) - invalid
	deadline := time.Now().Add(60 * time.Second)
	var scores, letters uint64
	for time.Now().Before(deadline) {
		if err := adminConn.QueryRow(ctx, "SELECT count() FROM "+db+".scores").Scan(&scores); err != nil {
			t.Fatal(err)
		}
		if err := adminConn.QueryRow(ctx, "SELECT count() FROM "+db+".dead_letters").Scan(&letters); err != nil {
			t.Fatal(err)
		}
		if scores >= uint64(valid) && letters >= uint64(invalid) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	if scores != uint64(valid) || letters != uint64(invalid) {
		t.Fatalf("as the writer: %d score rows and %d dead letters in ClickHouse, want %d and %d; logs:\n%s", scores, letters, valid, invalid, logs)
	}
}
