// Package chtest holds the integration tests' ClickHouse helpers. It is apart from
// testkit because it imports the ClickHouse sink, whose own tests import testkit.
package chtest

import (
	"context"
	"log/slog"
	"raterd/internal/telemetry"
	"raterd/sinks/clickhouse"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Migrated creates a fresh database with the current schema, dropped when the test ends.
func Migrated(t testing.TB, addr, db string) driver.Conn {
	t.Helper()
	cfg := clickhouse.Config{Addrs: []string{addr}, Database: db}
	if err := cfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		_ = conn.Close()
	})
	if _, err := clickhouse.Migrate(context.Background(), conn, db, telemetry.Settings{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	return conn
}
