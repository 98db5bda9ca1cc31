package app

import (
	"context"
	"log/slog"

	"raterd/internal/telemetry"
	"raterd/sinks/clickhouse"
)

// Migrate creates or upgrades the ClickHouse schema of cfg (which must have passed
// Validate) and applies its retention: `raterd migrate`. It logs nothing; the result says
// what happened, for the caller to print.
func Migrate(ctx context.Context, cfg clickhouse.Config) (clickhouse.MigrateResult, error) {
	conn, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		return clickhouse.MigrateResult{}, err
	}
	defer conn.Close()
	return clickhouse.MigrateWith(ctx, conn, cfg.Database, clickhouse.MigrateOptions{
		RetentionDays: cfg.RetentionDays, Telemetry: telemetry.Settings{Logger: slog.New(slog.DiscardHandler)}})
}
