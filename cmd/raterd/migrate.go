package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"raterd/internal/app"
	"raterd/internal/cli"
	"raterd/internal/secret"
	"raterd/sinks/clickhouse"
)

func cmdMigrate(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("migrate", "migrate [--config raterd.yaml | --clickhouse host:port]", stderr)
	configPath := fs.String("config", "", "path of the YAML config file (its clickhouse section is used)")
	addr := fs.String("clickhouse", "", "ClickHouse native address(es), comma-separated; overrides the config")
	database := fs.String("database", "", "database name (default from config, else raterd)")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	var chCfg clickhouse.Config
	if *configPath != "" {
		cfg, err := app.LoadConfig(*configPath, os.Getenv)
		if err != nil {
			return err
		}
		if cfg.ClickHouse != nil {
			chCfg = *cfg.ClickHouse
		}
	} else {
		// As raterd report does without a config: the address, user and password from the
		// environment.
		if v := os.Getenv("RATERD_CLICKHOUSE_ADDR"); v != "" {
			chCfg.Addrs = app.SplitList(v)
		}
		chCfg.Username = os.Getenv("RATERD_CLICKHOUSE_USER")
		chCfg.Password = secret.Secret(os.Getenv("RATERD_CLICKHOUSE_PASSWORD"))
	}
	if *addr != "" {
		chCfg.Addrs = strings.Split(*addr, ",")
	}
	if *database != "" {
		chCfg.Database = *database
	}
	if len(chCfg.Addrs) == 0 {
		// runMain prints no message for usage errors (the flag package has printed its
		// own), so say what is missing here.
		fmt.Fprintln(stderr, "raterd migrate: no ClickHouse address: pass --clickhouse, --config or set RATERD_CLICKHOUSE_ADDR")
		fs.Usage()
		return fmt.Errorf("%w: no ClickHouse address", cli.ErrUsage)
	}
	if err := chCfg.Validate("clickhouse"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := app.Migrate(ctx, chCfg)
	printMigration(stdout, chCfg, res)
	return err
}

// printMigration says what a migrate run did: the migrations applied, the gated steps
// this server could not take (and those it took after an upgrade), and the retention.
func printMigration(w io.Writer, cfg clickhouse.Config, res clickhouse.MigrateResult) {
	if res.ServerVersion != "" {
		fmt.Fprintf(w, "ClickHouse %s (features: %s)\n", res.ServerVersion, res.Features)
	}
	for _, m := range res.Applied {
		fmt.Fprintf(w, "applied migration %d: %s\n", m.Version, m.Name)
	}
	for _, s := range res.Upgraded {
		fmt.Fprintf(w, "applied after a server upgrade: %s\n", s)
	}
	for _, s := range res.Pending {
		fmt.Fprintf(w, "not applied, the server lacks it: %s\n", s)
	}
	if len(res.Applied) == 0 && len(res.Upgraded) == 0 && res.ServerVersion != "" {
		fmt.Fprintf(w, "schema of %s is up to date (version %d)\n", cfg.Database, clickhouse.LatestMigration())
	}
	switch res.Retention {
	case clickhouse.RetentionApplied, clickhouse.RetentionUnchanged:
		fmt.Fprintf(w, "retention: rows older than %d days are dropped (%s)\n", cfg.RetentionDays, res.Retention)
	case clickhouse.RetentionUnsupported:
		fmt.Fprintf(w, "retention: NOT applied: this server has no TTL (ClickHouse 19.6+); rows are kept\n")
	}
}
