package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// StatementResult is one host's answer to one ON CLUSTER statement of a migrate run.
type StatementResult struct {
	// Statement is the statement's first line, as sent (database filled in).
	Statement string
	// Status is the host's error code, 0 for success (or a tolerated "already exists").
	Status int64
	// Error is the host's error message, empty on success.
	Error string
	// Pending: the host did not answer within the DDL timeout; it runs the statement when
	// it is back (it stays queued in ZooKeeper).
	Pending bool
}

// HostReport is what migrate did and found on one host of the cluster.
type HostReport struct {
	// Shard and Replica are the host's place in the cluster (system.clusters, from 1).
	Shard, Replica int
	// Addr is the host's host:port as the cluster definition names it.
	Addr string
	// MacroShard and MacroReplica are the host's {shard} and {replica} macros.
	MacroShard, MacroReplica string
	// Statements are the host's answers to this run's ON CLUSTER statements, in order.
	Statements []StatementResult
	// Tables are raterd's tables on the host; Missing those of the latest schema it lacks.
	Tables, Missing []string
	// ReadOnly are the host's replicated tables in read-only mode (ZooKeeper lost).
	ReadOnly []string
	// MaxDelay is the largest replication delay among its replicated tables.
	MaxDelay time.Duration
}

// Failed reports whether the host refused or did not answer a statement of the run.
func (h HostReport) Failed() bool {
	for _, s := range h.Statements {
		if s.Pending || s.Status != 0 {
			return true
		}
	}
	return false
}

// clusterTables are the tables every host has once every migration is applied.
func clusterTables() []string {
	t := []string{"schema_migrations", gatedStepsTable}
	for _, n := range []string{"scores", "dead_letters", "alerts"} {
		t = append(t, n, clusterLocal(n))
	}
	for _, v := range []string{"scores_hourly", "scores_daily", "record_sources"} {
		t = append(t, v, clusterLocal(v), v+"_mv")
	}
	slices.Sort(t)
	return t
}

// clusterHosts reads the hosts of c.Cluster from system.clusters, checks that
// c.AllHosts lists the same hosts and that the {replica} macros are unique.
func clusterHosts(ctx context.Context, conn driver.Conn, c ClusterNames) ([]HostReport, error) {
	read := func(cluster string) ([]HostReport, error) {
		rows, err := conn.Query(ctx, "SELECT shard_num, replica_num, host_name, port FROM system.clusters WHERE cluster = ? ORDER BY shard_num, replica_num", cluster)
		if err != nil {
			return nil, fmt.Errorf("read cluster %s from system.clusters: %w", cluster, err)
		}
		defer rows.Close()
		var out []HostReport
		for rows.Next() {
			var shard, replica uint32
			var host string
			var port uint16
			if err := rows.Scan(&shard, &replica, &host, &port); err != nil {
				return nil, fmt.Errorf("read cluster %s from system.clusters: %w", cluster, err)
			}
			out = append(out, HostReport{Shard: int(shard), Replica: int(replica), Addr: fmt.Sprintf("%s:%d", host, port)})
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read cluster %s from system.clusters: %w", cluster, err)
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("cluster %q is not in this server's remote_servers (system.clusters)", cluster)
		}
		return out, nil
	}
	hosts, err := read(c.Cluster)
	if err != nil {
		return nil, fmt.Errorf("clickhouse.cluster: %w", err)
	}
	all, err := read(c.AllHosts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse.cluster_all_hosts: %w", err)
	}
	addrs := func(hs []HostReport) []string {
		var a []string
		for _, h := range hs {
			a = append(a, h.Addr)
		}
		slices.Sort(a)
		return a
	}
	if a, b := addrs(hosts), addrs(all); !slices.Equal(a, b) {
		return nil, fmt.Errorf("clickhouse.cluster_all_hosts: cluster %s lists %v, but cluster %s has the hosts %v", c.AllHosts, b, c.Cluster, a)
	}
	seen := map[string]string{}
	for i, h := range hosts {
		q := fmt.Sprintf("SELECT anyIf(substitution, macro = 'shard'), anyIf(substitution, macro = 'replica') FROM remote('%s', system.macros)", h.Addr)
		if err := conn.QueryRow(ctx, q).Scan(&hosts[i].MacroShard, &hosts[i].MacroReplica); err != nil {
			// A host that does not answer now is reported by the statements (pending).
			continue
		}
		r := hosts[i].MacroReplica
		if r == "" || hosts[i].MacroShard == "" {
			return hosts, fmt.Errorf("host %s has no {shard} or {replica} macro", h.Addr)
		}
		if other, dup := seen[r]; dup {
			return hosts, fmt.Errorf("hosts %s and %s have the same {replica} macro %q: it must be unique across the cluster (the metadata tables have one replica set over all hosts)", other, h.Addr, r)
		}
		seen[r] = h.Addr
	}
	return hosts, nil
}

// ddlRunner runs ON CLUSTER statements and keeps every host's answers in hosts.
type ddlRunner struct {
	conn    driver.Conn
	db      string
	timeout time.Duration
	hosts   []HostReport
}

// run runs stmt ({db} rendered) ON CLUSTER and fails unless every host of the cluster
// answered success; tolerate decides which error codes count as success (a statement
// that found its work done). Hosts of the all-hosts cluster are the same hosts.
func (r *ddlRunner) run(ctx context.Context, stmt string, tolerate ...int64) error {
	sql := render(stmt, r.db)
	first, _, _ := strings.Cut(sql, "\n")
	qctx := ch.Context(ctx, ch.WithSettings(ch.Settings{"distributed_ddl_task_timeout": int(r.timeout / time.Second)}))
	rows, qerr := onCluster(qctx, r.conn, sql)
	answered := map[string]ddlAnswer{}
	for _, a := range rows {
		answered[a.addr()] = a
	}
	var bad []string
	for i := range r.hosts {
		h := &r.hosts[i]
		a, ok := answered[h.Addr]
		res := StatementResult{Statement: first}
		switch {
		case !ok:
			res.Pending = true
			bad = append(bad, fmt.Sprintf("%s: did not answer within %s; it runs the queued statement when it is back", h.Addr, r.timeout))
		case a.Status != 0 && !slices.Contains(tolerate, a.Status):
			res.Status, res.Error = a.Status, a.Error
			bad = append(bad, fmt.Sprintf("%s: %d %s", h.Addr, a.Status, a.Error))
		}
		h.Statements = append(h.Statements, res)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s: %s", first, strings.Join(bad, "; "))
	}
	if qerr != nil && len(rows) == 0 {
		return fmt.Errorf("%s: %w", first, qerr)
	}
	return nil
}

// ddlAnswer is one row of an ON CLUSTER statement's result stream.
type ddlAnswer struct {
	Host   string
	Port   uint16
	Status int64
	Error  string
}

func (a ddlAnswer) addr() string { return fmt.Sprintf("%s:%d", a.Host, a.Port) }

// onCluster runs an ON CLUSTER statement and reads its stream of per-host rows (host,
// port, status, error, num_hosts_remaining, num_hosts_active). The stream's final error
// (the first host's error, or TIMEOUT_EXCEEDED) is returned with the rows read before it.
func onCluster(ctx context.Context, conn driver.Conn, sql string) ([]ddlAnswer, error) {
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ddlAnswer
	for rows.Next() {
		var a ddlAnswer
		var remaining, active uint64
		if err := rows.Scan(&a.Host, &a.Port, &a.Status, &a.Error, &remaining, &active); err != nil {
			return out, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// hasColumnEverywhere reports whether db.table has column on every host.
func hasColumnEverywhere(ctx context.Context, conn driver.Conn, hosts []HostReport, db, table, column string) (bool, error) {
	for _, h := range hosts {
		var n uint64
		q := fmt.Sprintf("SELECT count() FROM remote('%s', system.columns) WHERE database = '%s' AND table = '%s' AND name = '%s'", h.Addr, db, table, column)
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			return false, fmt.Errorf("look up column %s.%s on %s: %w", table, column, h.Addr, err)
		}
		if n == 0 {
			return false, nil
		}
	}
	return true, nil
}

// waitRecorded waits until every host's replica of schema_migrations has version.
func waitRecorded(ctx context.Context, conn driver.Conn, hosts []HostReport, db string, version int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, h := range hosts {
		for {
			var v uint32
			q := fmt.Sprintf("SELECT max(version) FROM remote('%s', %s.schema_migrations)", h.Addr, db)
			err := conn.QueryRow(ctx, q).Scan(&v)
			if err == nil && int(v) >= version {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("migration %d recorded, but %s does not show it after %s (last error: %v)", version, h.Addr, timeout, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// inspectHosts fills each host's tables, missing tables, read-only replicas and delay;
// it returns the errors of the hosts it could not read, having read the others.
func inspectHosts(ctx context.Context, conn driver.Conn, hosts []HostReport, db string) error {
	var errs []error
	for i := range hosts {
		if err := inspectHost(ctx, conn, &hosts[i], db); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// inspectHost is inspectHosts of one host.
func inspectHost(ctx context.Context, conn driver.Conn, h *HostReport, db string) error {
	want := clusterTables()
	h.Tables, h.Missing, h.ReadOnly, h.MaxDelay = nil, nil, nil, 0
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT name FROM remote('%s', system.tables) WHERE database = '%s' ORDER BY name", h.Addr, db))
	if err != nil {
		return fmt.Errorf("list the tables of %s: %w", h.Addr, err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("list the tables of %s: %w", h.Addr, err)
		}
		h.Tables = append(h.Tables, n)
	}
	rows.Close()
	for _, t := range want {
		if !slices.Contains(h.Tables, t) {
			h.Missing = append(h.Missing, t)
		}
	}
	rows, err = conn.Query(ctx, fmt.Sprintf("SELECT table, is_readonly, absolute_delay FROM remote('%s', system.replicas) WHERE database = '%s' ORDER BY table", h.Addr, db))
	if err != nil {
		return fmt.Errorf("read the replicas of %s: %w", h.Addr, err)
	}
	for rows.Next() {
		var table string
		var ro uint8
		var delay uint64
		if err := rows.Scan(&table, &ro, &delay); err != nil {
			rows.Close()
			return fmt.Errorf("read the replicas of %s: %w", h.Addr, err)
		}
		if ro != 0 {
			h.ReadOnly = append(h.ReadOnly, table)
		}
		h.MaxDelay = max(h.MaxDelay, time.Duration(delay)*time.Second)
	}
	rows.Close()
	return nil
}

// errNotClusterSchema: the database holds a single-server schema.
var errNotClusterSchema = errors.New("the database holds a single-server schema")

// migrateCluster is migrate on a cluster (docs/design-topology.md §3): every statement
// ON CLUSTER, a migration recorded only once every host applied all of it.
func migrateCluster(ctx context.Context, conn driver.Conn, db string, opts MigrateOptions,
	migrations []Migration, res MigrateResult) (MigrateResult, error) {
	logger := opts.Telemetry.WithDefaults().Logger
	names := opts.Cluster
	res.Cluster = names.Cluster
	timeout := opts.DDLTimeout
	if timeout <= 0 {
		timeout = DefaultDDLTimeout
	}
	hosts, err := clusterHosts(ctx, conn, names)
	res.Hosts = hosts
	if err != nil {
		return res, err
	}
	r := &ddlRunner{conn: conn, db: db, timeout: timeout, hosts: hosts}
	finish := func(err error) (MigrateResult, error) {
		res.Hosts = r.hosts
		if ierr := inspectHosts(ctx, conn, r.hosts, db); ierr != nil && err == nil {
			err = ierr
		}
		res.Hosts = r.hosts
		return res, err
	}

	// Refuse a database that holds the single-server schema: switching is a copy, not a
	// migration.
	var engine string
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT any(engine) FROM system.tables WHERE database = '%s' AND name = 'scores'", db)).Scan(&engine); err != nil {
		return finish(fmt.Errorf("read the engine of %s.scores: %w", db, err))
	}
	if engine != "" && engine != "Distributed" {
		return finish(fmt.Errorf("%w: %s.scores is a %s table, not Distributed; a cluster install starts with an empty database (copy the rows over with INSERT … SELECT)", errNotClusterSchema, db, engine))
	}

	pre, err := clusterPreamble(names)
	if err != nil {
		return finish(err)
	}
	for _, stmt := range pre {
		if err := r.run(ctx, stmt); err != nil {
			return finish(fmt.Errorf("create %s and its migrations table on cluster %s: %w", db, names.Cluster, err))
		}
	}
	current, err := appliedVersion(ctx, conn, db)
	if err != nil {
		return finish(err)
	}
	done, err := appliedGatedSteps(ctx, conn, db)
	if err != nil {
		return finish(err)
	}
	runGated := func(m Migration) (ran, skipped []GatedStep, err error) {
		for _, s := range m.Gated {
			switch {
			case done[gatedKey(m.Version, s.Name)]:
			case !res.Features.Has(s.Feature):
				skipped = append(skipped, s)
			default:
				stmts, err := clusterStatement(s.Statement, m.Version, names)
				for _, stmt := range stmts {
					if err == nil {
						err = r.run(ctx, stmt)
					}
				}
				if err != nil {
					return ran, skipped, fmt.Errorf("migration %d (%s), gated step %q (%s): %w", m.Version, m.Name, s.Name, s.Feature, err)
				}
				if err := recordGatedStep(ctx, conn, db, m.Version, s, res.ServerVersion); err != nil {
					return ran, skipped, err
				}
				ran = append(ran, s)
			}
		}
		return ran, skipped, nil
	}
	for _, m := range migrations {
		if m.Version > current {
			break
		}
		ran, skipped, err := runGated(m)
		for _, s := range ran {
			res.Upgraded = append(res.Upgraded, StepRef{m.Version, s})
		}
		if err != nil {
			return finish(err)
		}
		for _, s := range skipped {
			res.Pending = append(res.Pending, StepRef{m.Version, s})
		}
	}
	for _, m := range migrations {
		if m.Version <= current {
			continue
		}
		if m.Version == 4 {
			// Migration 4 rebuilds scores_hourly without POPULATE: on rows written by an
			// older raterd the rebuilt view would start empty.
			var n uint64
			if exists, err := tableExists(ctx, conn, db, "scores_local"); err == nil && exists {
				if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.scores", db)).Scan(&n); err != nil {
					return finish(fmt.Errorf("migration 4: count %s.scores: %w", db, err))
				}
			}
			if n > 0 {
				return finish(fmt.Errorf("migration 4 (%s) is pending over %d rows: apply it by hand, then fill the view on one replica of each shard with INSERT INTO %s.scores_hourly_data SELECT …the view's SELECT… FROM %s.scores_local FINAL GROUP BY …", m.Name, n, db, db))
			}
		}
		for _, col := range m.AddColumns {
			stmts := clusterAddColumn(col, names)
			for i, table := range []string{clusterLocal(col.Table), col.Table} {
				ok, err := hasColumnEverywhere(ctx, conn, r.hosts, db, table, col.Name)
				if err != nil {
					return finish(fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err))
				}
				if ok {
					continue
				}
				// 44 (ILLEGAL_COLUMN): the host has the column (a crash between two runs);
				// the look-up afterwards decides.
				if i == 0 && opts.Dial != nil {
					err = addColumnPerShard(ctx, opts.Dial, r.hosts, render(strings.Replace(stmts[0], " ON CLUSTER "+names.Cluster, "", 1), db))
				} else {
					err = r.run(ctx, stmts[i], 44)
				}
				if err != nil {
					return finish(fmt.Errorf("migration %d (%s): add column %s.%s: %w", m.Version, m.Name, table, col.Name, err))
				}
				// Replicas apply a replicated ALTER from the replication log: wait for them.
				for deadline := time.Now().Add(timeout); ; {
					ok, err := hasColumnEverywhere(ctx, conn, r.hosts, db, table, col.Name)
					if err == nil && ok {
						break
					}
					if time.Now().After(deadline) || ctx.Err() != nil {
						return finish(fmt.Errorf("migration %d (%s): column %s.%s is still missing on a host %s after ADD COLUMN (%v)", m.Version, m.Name, table, col.Name, timeout, err))
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}
		stmts, err := clusterStatements(m, names)
		if err != nil {
			return finish(err)
		}
		for _, stmt := range stmts {
			if err := r.run(ctx, stmt); err != nil {
				return finish(fmt.Errorf("migration %d (%s) not recorded: %w", m.Version, m.Name, err))
			}
		}
		_, skipped, err := runGated(m)
		if err != nil {
			return finish(err)
		}
		if err := recordMigration(ctx, conn, db, m); err != nil {
			return finish(err)
		}
		if err := waitRecorded(ctx, conn, r.hosts, db, m.Version, timeout); err != nil {
			return finish(err)
		}
		m.Skipped = skipped
		logger.Info("applied migration on the cluster", "cluster", names.Cluster, "version", m.Version, "name", m.Name, "hosts", len(r.hosts), "skipped_steps", len(skipped))
		res.Applied = append(res.Applied, m)
		for _, s := range skipped {
			res.Pending = append(res.Pending, StepRef{m.Version, s})
		}
	}
	res.Retention, err = applyClusterRetention(ctx, conn, r, db, names.Cluster, opts.RetentionDays, res.Features)
	return finish(err)
}

// applyClusterRetention sets the retention TTL on the local tables, ON CLUSTER, where the
// servers have TTL (19.6+); tableTTL reads the definition on the connected host.
func applyClusterRetention(ctx context.Context, conn driver.Conn, r *ddlRunner, db, cluster string, days int, fs Features) (Retention, error) {
	if days == 0 {
		return RetentionNotRequested, nil
	}
	if !fs.TTL {
		return RetentionUnsupported, nil
	}
	status := RetentionUnchanged
	for _, t := range retentionTargets {
		local := clusterLocal(t.table)
		want := fmt.Sprintf("%s + toIntervalDay(%d)", t.column, days)
		if have, err := tableTTL(ctx, conn, db, local); err == nil && have == want {
			continue
		}
		stmt := strings.Replace(retentionStatement("{db}", local, t.column, days), " MODIFY TTL ", " ON CLUSTER "+cluster+" MODIFY TTL ", 1)
		if err := r.run(ctx, stmt); err != nil {
			return status, fmt.Errorf("set retention of %d days on %s.%s: %w", days, db, local, err)
		}
		status = RetentionApplied
	}
	return status, nil
}

// addColumnPerShard runs the ALTER … ADD COLUMN of a replicated table on one replica of
// each shard, over a connection of its own (the first replica that answers); replication
// brings it to the other replicas (an 18.16 replicated ALTER waits for the active ones).
// ON CLUSTER would do the same, but 18.16's distributed DDL can run a replicated ALTER on
// both replicas of a shard when one takes the shard's lock right after the other
// released it; the second then finds the column there (44) and, failing to mark the task
// executed (the node exists), stops its DDL worker until the server restarts — every later
// ON CLUSTER statement then waits for that host. Seen in this package's cluster tests.
func addColumnPerShard(ctx context.Context, dial func(context.Context, string) (driver.Conn, error), hosts []HostReport, stmt string) error {
	shards := map[int][]string{}
	var order []int
	for _, h := range hosts {
		if _, ok := shards[h.Shard]; !ok {
			order = append(order, h.Shard)
		}
		shards[h.Shard] = append(shards[h.Shard], h.Addr)
	}
	for _, shard := range order {
		var errs []error
		done := false
		for _, addr := range shards[shard] {
			conn, err := dial(ctx, addr)
			if err == nil {
				err = conn.Exec(ctx, stmt)
				_ = conn.Close()
			}
			var ex *ch.Exception
			if err == nil || errors.As(err, &ex) && ex.Code == 44 {
				done = true
				break
			}
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		}
		if !done {
			return fmt.Errorf("shard %d: no replica took %q: %w", shard, stmt, errors.Join(errs...))
		}
	}
	return nil
}
