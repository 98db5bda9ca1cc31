package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"raterd/sinks"
)

func cmdMigrate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "migrate [--config raterd.yaml | --clickhouse host:port]", stderr)
	configPath := fs.String("config", "", "path of the YAML config file (its clickhouse section is used)")
	addr := fs.String("clickhouse", "", "ClickHouse native address(es), comma-separated; overrides the config")
	database := fs.String("database", "", "database name (default from config, else raterd)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var chCfg sinks.ClickHouseConfig
	if *configPath != "" {
		cfg, err := LoadConfig(*configPath, os.Getenv)
		if err != nil {
			return err
		}
		if cfg.ClickHouse != nil {
			chCfg = *cfg.ClickHouse
		}
	} else if v := os.Getenv("RATERD_CLICKHOUSE_ADDR"); v != "" {
		chCfg.Addrs = splitList(v)
	}
	if *addr != "" {
		chCfg.Addrs = strings.Split(*addr, ",")
	}
	if *database != "" {
		chCfg.Database = *database
	}
	if len(chCfg.Addrs) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: no ClickHouse address: pass --clickhouse, --config or set RATERD_CLICKHOUSE_ADDR", errUsage)
	}
	if err := chCfg.Validate("clickhouse"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := sinks.OpenClickHouse(ctx, chCfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	// The applied migrations are printed below; the library's log lines would repeat them.
	applied, err := sinks.Migrate(ctx, conn, chCfg.Database, slog.New(slog.DiscardHandler))
	for _, m := range applied {
		fmt.Fprintf(stdout, "applied migration %d: %s\n", m.Version, m.Name)
	}
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "schema of %s is up to date (version %d)\n", chCfg.Database, sinks.LatestMigration())
	}
	return nil
}
