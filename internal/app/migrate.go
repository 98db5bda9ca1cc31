package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/internal/telemetry"
	"raterd/sinks/clickhouse"
)

// ErrMigrateNotPermitted is wrapped by Migrate's error when the ClickHouse user may not
// change the schema: raterd run's writer user, by design (docs/security.md).
var ErrMigrateNotPermitted = errors.New("the ClickHouse user may not change the schema")

// notPermitted reports the ClickHouse error codes that mean "this user may not do that":
// READONLY, DATABASE_ACCESS_DENIED, QUERY_IS_PROHIBITED (allow_ddl = 0 on servers
// without roles), ACCESS_DENIED (a missing grant on servers with roles).
func notPermitted(code int32) bool {
	switch code {
	case 164, 291, 392, 497:
		return true
	}
	return false
}

// Migrate creates or upgrades the ClickHouse schema of cfg (which must have passed
// Validate) and applies its retention: `raterd migrate`. It logs nothing; the result says
// what happened, for the caller to print. A user without the rights to change the schema
// (the writer raterd run uses) gets an error wrapping ErrMigrateNotPermitted that names
// clickhouse.username.
func Migrate(ctx context.Context, cfg clickhouse.Config) (clickhouse.MigrateResult, error) {
	conn, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		return clickhouse.MigrateResult{}, err
	}
	defer conn.Close()
	res, err := clickhouse.MigrateWith(ctx, conn, cfg.Database, clickhouse.MigrateOptions{
		RetentionDays: cfg.RetentionDays, Telemetry: telemetry.Settings{Logger: slog.New(slog.DiscardHandler)},
		Cluster: cfg.ClusterNames(), DDLTimeout: cfg.DDLTimeout,
		Dial: func(ctx context.Context, addr string) (driver.Conn, error) {
			host := cfg
			host.Addrs = []string{addr}
			return clickhouse.Open(ctx, host)
		}})
	var exc *chgo.Exception
	if errors.As(err, &exc) && notPermitted(exc.Code) {
		user := cfg.Username
		if user == "" {
			user = "default"
		}
		return res, fmt.Errorf("%w: clickhouse.username %q: run `raterd migrate` as the migration user, which may create and alter tables in %s (raterd run needs only INSERT and SELECT): %w",
			ErrMigrateNotPermitted, user, cfg.Database, err)
	}
	return res, err
}
