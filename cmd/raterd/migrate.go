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
	timeout := 2 * time.Minute
	if chCfg.Cluster != "" {
		// Each ON CLUSTER statement may wait ddl_timeout for a slow host.
		timeout = 30 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
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
	if len(res.Applied) == 0 && len(res.Upgraded) == 0 && res.ServerVersion != "" && !clusterFailed(res) {
		fmt.Fprintf(w, "schema of %s is up to date (version %d)\n", cfg.Database, clickhouse.LatestMigration())
	}
	printClusterHosts(w, res)
	switch res.Retention {
	case clickhouse.RetentionApplied, clickhouse.RetentionUnchanged:
		fmt.Fprintf(w, "retention: rows older than %d days are dropped (%s)\n", cfg.RetentionDays, res.Retention)
	case clickhouse.RetentionUnsupported:
		fmt.Fprintf(w, "retention: NOT applied: this server has no TTL (ClickHouse 19.6+); rows are kept\n")
	}
}

// clusterFailed reports whether a host of the cluster refused or missed a statement.
func clusterFailed(res clickhouse.MigrateResult) bool {
	for _, h := range res.Hosts {
		if h.Failed() {
			return true
		}
	}
	return false
}

// printClusterHosts prints, on a cluster, one line per host: its place, macros, what this
// run's ON CLUSTER statements did there and what migrate found there afterwards.
func printClusterHosts(w io.Writer, res clickhouse.MigrateResult) {
	if res.Cluster == "" || len(res.Hosts) == 0 {
		return
	}
	fmt.Fprintf(w, "clickhouse cluster %s: %d hosts\n", res.Cluster, len(res.Hosts))
	for _, h := range res.Hosts {
		ok, pending := 0, 0
		var failed []string
		for _, s := range h.Statements {
			switch {
			case s.Pending:
				pending++
			case s.Status != 0:
				failed = append(failed, fmt.Sprintf("%s: %d %s", s.Statement, s.Status, s.Error))
			default:
				ok++
			}
		}
		var state string
		switch {
		case len(failed) > 0:
			state = "FAILED: " + strings.Join(failed, "; ")
		case pending > 0:
			state = fmt.Sprintf("PENDING: %d statements not answered; the host runs them when it is back (rerun migrate to check)", pending)
		case len(res.Applied) > 0:
			state = fmt.Sprintf("applied %d-%d (%d statements)", res.Applied[0].Version, res.Applied[len(res.Applied)-1].Version, ok)
		default:
			state = "up to date"
		}
		fmt.Fprintf(w, "  shard %d replica %d  %s  %s/%s  %s  %d tables",
			h.Shard, h.Replica, h.Addr, h.MacroShard, h.MacroReplica, state, len(h.Tables))
		if len(h.Missing) > 0 {
			fmt.Fprintf(w, "  missing %s", strings.Join(h.Missing, ", "))
		}
		if len(h.ReadOnly) > 0 {
			fmt.Fprintf(w, "  READ-ONLY %s", strings.Join(h.ReadOnly, ", "))
		}
		if h.MaxDelay > 0 {
			fmt.Fprintf(w, "  replication delay %s", h.MaxDelay)
		}
		fmt.Fprintln(w)
	}
}
