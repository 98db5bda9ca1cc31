package app

import (
	"context"
	"strconv"
	"testing"
	"time"

	"raterd/internal/testkit"
	"raterd/sinks/clickhouse"
)

// TestIntegrationMigrate runs `raterd migrate`'s work twice on a fresh database of the
// real ClickHouse: the first run applies every migration, the second finds nothing to do,
// and the schema then passes the start-up check run makes.
func TestIntegrationMigrate(t *testing.T) {
	s := testkit.RequireServices(t)
	db := "raterd_migrate_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cfg := clickhouse.Config{Addrs: []string{s.ClickHouse}, Database: db}
	if err := cfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() {
		if conn, err := clickhouse.Open(ctx, cfg); err == nil {
			_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
			_ = conn.Close()
		}
	})
	res, err := Migrate(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != clickhouse.LatestMigration() || res.ServerVersion == "" {
		t.Fatalf("first run applied %d migrations on server %q, want %d", len(res.Applied), res.ServerVersion, clickhouse.LatestMigration())
	}
	res, err = Migrate(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 0 {
		t.Fatalf("second run applied %d migrations, want none", len(res.Applied))
	}
	conn, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := clickhouse.CheckSchema(ctx, conn, db); err != nil {
		t.Fatalf("schema after migrate: %v", err)
	}
}
