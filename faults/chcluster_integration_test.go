package faults

// ClickHouse-cluster scenarios (issue 21 item 2; docs/design-topology.md §6.1 items 6–7):
// raterd drains a topic into a private 2 shards x 2 replicas ClickHouse 18.16 cluster
// (chcluster_stack_test.go) through its Distributed tables (clickhouse.cluster, inserts
// with insert_distributed_sync), while a replica of shard 1 or ZooKeeper fails under it
// (a replica stopped with SIGTERM and started again; ZooKeeper stopped with SIGTERM, and
// killed with SIGKILL, for 10 s).
// Every scenario produces its records before raterd starts (TestFaultInjection's traffic),
// runs one raterd whose ClickHouse addresses are the two replicas of shard 2 (the writer
// connects to s2r1; shard 1's rows cross the Distributed hop, to a replica of shard 1
// that is alive), injects its fault when the Distributed table holds a fraction of the
// rows, waits until the committed offsets reach the end, runs SYSTEM SYNC REPLICA on
// every replicated table of every node, and checks:
//   - the fault was met (the evidence named per scenario below);
//   - scores FINAL through the Distributed table has exactly one row per evaluator per
//     distinct valid record id, the dead letters one per invalid offset (table and topic);
//   - both replicas of each shard hold the same count() of scores_local;
//   - nothing was committed ahead of stored rows while the fault lasted, where measured
//     (the offsets below the group's commits all have a score row or a dead letter on
//     some replica);
//   - the committed offsets reached the end, and raterd exited cleanly.
// Negative controls: the exactness check run again after shard 1's rows are copied into
// shard 2 (what a sharding key that splits a record's copies would do) must fail on
// duplicates; and the ZooKeeper outage with the commit-first build must fail on commits
// ahead of stored rows.
//
// Opt-in (RATERD_FAULTS_CHCLUSTER=1; scripts/faults.sh -chcluster), which rewrites the
// table in docs/deployment.md (-chcluster-doc).

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"raterd/internal/testkit"
	sinkkafka "raterd/sinks/kafka"
)

var chclusterDoc = flag.String("chcluster-doc", "", "rewrite the ClickHouse-cluster fault table in this markdown file (docs/deployment.md)")

const (
	chclusterBegin = "<!-- BEGIN chcluster-faults -->"
	chclusterEnd   = "<!-- END chcluster-faults -->"
	// chInsertRows is the scenarios' clickhouse.insert_max_rows.
	chInsertRows = 1500
	// zkOutage is how long ZooKeeper stays down.
	zkOutage = 10 * time.Second
	// propAhead: the group committed offsets whose records have no row nor dead letter
	// stored on any replica.
	propAhead property = "committed ahead of stored rows"
	// propReplicas: the replicas of a shard hold different row counts after SYNC REPLICA.
	propReplicas property = "replicas differ"
)

// chclusterRecords is how many records each scenario drains: 10,000 unless
// RATERD_FAULTS_CHCLUSTER_RECORDS asks for another number.
func chclusterRecords(t *testing.T) int {
	return recordCount(t, "RATERD_FAULTS_CHCLUSTER_RECORDS", 10_000, 2000)
}

// chScenario is one fault of the ClickHouse cluster.
type chScenario struct {
	name    string
	fault   string  // the docs table's description
	at      float64 // fraction of the expected rows in the Distributed table when the fault strikes
	binary  string  // "raterd" or a negative control's build (controlTag)
	control property
	// inject runs the fault, gathering its evidence with cr.fact; it returns when the
	// fault is over (the service is back).
	inject func(t *testing.T, cr *chRun)
	// verify runs after the drain and SYSTEM SYNC REPLICA, before the common checks.
	verify func(t *testing.T, cr *chRun)
}

// chRun is a scenarioRun on the ClickHouse cluster, with what the fault saw.
type chRun struct {
	*scenarioRun
	c        *chCluster
	conn     driver.Conn // to s2r2 (never stopped), on the scenario's database
	expected uint64      // rows in scores FINAL when the drain is complete
	facts    []string
	// figures of the table
	insertErrors float64 // raterd's failed insert attempts while the fault lasted
	ahead        int64   // offsets committed ahead of stored rows during the fault (-1: not measured)
	replicaState string  // a per-scenario note on the replicas (counts, system.replicas)
	// the replica scenario: s1r1's rows at its stop, and the rows of shard 1 it missed
	// while down (those s1r2 took meanwhile)
	victimAtStop, victimMissed int64
}

// fact records evidence; a fact that does not hold is also a miss.
func (cr *chRun) fact(ok bool, format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if !ok {
		s = "NOT MET: " + s
		cr.misses = append(cr.misses, s)
	}
	cr.facts = append(cr.facts, s)
}

// distributedRows is count() of the Distributed scores (the fault's trigger).
func (cr *chRun) distributedRows() (uint64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var c uint64
	err := cr.conn.QueryRow(ctx, "SELECT count() FROM "+cr.db+".scores").Scan(&c)
	return c, err == nil
}

// localCount is count() of table on node n, or -1 when the node does not answer.
func (cr *chRun) localCount(t *testing.T, n *chNode, table string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := n.open(t, cr.db)
	defer conn.Close()
	var c uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+cr.db+"."+table).Scan(&c); err != nil {
		return -1
	}
	return int64(c)
}

// everyReplica is a remote() table function over table on every node, each its own
// shard: the union of what every replica holds, whatever replication has done.
func (cr *chRun) everyReplica(table string) string {
	return fmt.Sprintf("remote('%s', %s, %s)", strings.Join(cr.c.addrs(), ","), cr.db, table)
}

// aheadOfStored counts the offsets below c with neither a score row nor a dead letter on
// any replica. raterd may run meanwhile: it commits an offset only after its rows are
// stored, so rows of offsets below c read after c cannot be missing but for a lost write.
func (cr *chRun) aheadOfStored(t *testing.T, c map[int]int64) int64 {
	t.Helper()
	var total int64
	for p, off := range c {
		if off <= 0 {
			continue
		}
		have := countUint(t, cr.conn, fmt.Sprintf("SELECT uniqExact(o) FROM (SELECT toInt64(offset) AS o FROM %[1]s WHERE partition = %[3]d AND offset < %[4]d UNION ALL SELECT toInt64(offset) AS o FROM %[2]s WHERE partition = %[3]d AND offset < %[4]d)",
			cr.everyReplica("scores_local"), cr.everyReplica("dead_letters_local"), p, off))
		total += off - int64(have)
	}
	return total
}

// replicatedTables are the tables SYSTEM SYNC REPLICA waits for on every node.
var replicatedTables = []string{"scores_local", "dead_letters_local", "scores_hourly_data", "scores_daily_data", "record_sources_data"}

// syncReplicas runs SYSTEM SYNC REPLICA on every replicated table of every node.
func (cr *chRun) syncReplicas(t *testing.T) {
	t.Helper()
	for _, n := range cr.c.nodes {
		conn := n.open(t, cr.db)
		for _, tbl := range replicatedTables {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			err := conn.Exec(ctx, "SYSTEM SYNC REPLICA "+cr.db+"."+tbl)
			cancel()
			if err != nil {
				conn.Close()
				t.Fatalf("%s: SYSTEM SYNC REPLICA %s: %v", n.name, tbl, err)
			}
		}
		conn.Close()
	}
}

// replicaCounts checks that both replicas of each shard hold the same count() of
// scores_local; it returns the counts for the table and the difference, if any.
func (cr *chRun) replicaCounts(t *testing.T) (string, string) {
	t.Helper()
	var counts []int64
	for _, n := range cr.c.nodes {
		counts = append(counts, cr.localCount(t, n, "scores_local"))
	}
	text := fmt.Sprintf("%d / %d · %d / %d", counts[0], counts[1], counts[2], counts[3])
	if counts[0] != counts[1] || counts[2] != counts[3] || counts[0] < 0 || counts[2] < 0 {
		return text, "scores_local count() s1r1 / s1r2 · s2r1 / s2r2: " + text
	}
	return text, ""
}

func chScenarios() []chScenario {
	// zookeeperOutage stops ZooKeeper with sig (its data kept) for zkOutage: the
	// replicated tables go read-only, every insert through the Distributed table fails.
	zookeeperOutage := func(sig syscall.Signal) func(t *testing.T, cr *chRun) {
		return func(t *testing.T, cr *chRun) {
			cr.scrapeAll()
			errs0 := cr.totals().insertErrors
			stopped := time.Now()
			if err := cr.c.zk.p.stop(sig, 30*time.Second); err != nil && !isSignalExit(err) {
				t.Logf("zookeeper exited with %v when stopped", err)
			}
			met := waitFor(zkOutage, func() bool { cr.scrapeAll(); return cr.totals().insertErrors > errs0 })
			firstErr := time.Since(stopped)
			atErr := committed(context.Background(), cr.kc, cr.group, cr.topic)
			rowsAtErr := countUint(t, cr.conn, "SELECT count() FROM "+cr.everyReplica("scores_local"))
			time.Sleep(time.Until(stopped.Add(zkOutage)))
			atEnd := committed(context.Background(), cr.kc, cr.group, cr.topic)
			rowsAtEnd := countUint(t, cr.conn, "SELECT count() FROM "+cr.everyReplica("scores_local"))
			if atEnd == nil {
				t.Fatal("committed offsets unreadable during the ZooKeeper outage")
			}
			cr.ahead = cr.aheadOfStored(t, atEnd)
			cr.scrapeAll()
			cr.insertErrors = cr.totals().insertErrors - errs0
			var moved int64
			for p := range atEnd {
				moved += atEnd[p] - atErr[p]
			}
			if err := cr.c.zk.start(); err != nil {
				t.Fatalf("restart zookeeper: %v", err)
			}
			cr.fact(met, "raterd's failed inserts grew by %.0f while ZooKeeper was down (first after %.1f s)", cr.insertErrors, firstErr.Seconds())
			cr.fact(true, "from the first failed insert to the restart: %d rows stored on the replicas (%d → %d), the commits moved %d offsets",
				int64(rowsAtEnd)-int64(rowsAtErr), rowsAtErr, rowsAtEnd, moved)
			cr.fact(true, "%d offsets committed with no stored row or dead letter at the end of the outage", cr.ahead)
		}
	}
	return []chScenario{
		{name: "replica", fault: "SIGTERM of replica s1r1 of shard 1 at 30% of the rows, started again at 60% (and once a tenth of the rows were written with it down)", at: 0.3,
			inject: func(t *testing.T, cr *chRun) {
				victim, peer := cr.c.node("s1r1"), cr.c.node("s1r2")
				cr.scrapeAll()
				errs0 := cr.totals().insertErrors
				before := cr.localCount(t, victim, "scores_local")
				if err := victim.p.stop(syscall.SIGTERM, 60*time.Second); err != nil && !isSignalExit(err) {
					t.Logf("s1r1 exited with %v when stopped", err)
				}
				peerAtStop := cr.localCount(t, peer, "scores_local")
				atStop := committed(context.Background(), cr.kc, cr.group, cr.topic)
				// Back at 60% of the rows, and not before a tenth of them were written
				// with s1r1 down (its shutdown may take seconds, while raterd writes on).
				rowsAtStop, _ := cr.distributedRows()
				restartAt := max(uint64(0.6*float64(cr.expected)), rowsAtStop+cr.expected/10)
				var rows uint64
				reached := waitFor(drainTimeout, func() bool {
					var ok bool
					rows, ok = cr.distributedRows()
					return ok && rows >= restartAt
				})
				peerAtRestart := cr.localCount(t, peer, "scores_local")
				atRestart := committed(context.Background(), cr.kc, cr.group, cr.topic)
				cr.scrapeAll()
				cr.insertErrors = cr.totals().insertErrors - errs0
				if err := victim.startReplica(); err != nil {
					t.Fatalf("restart s1r1: %v", err)
				}
				afterRestart := cr.localCount(t, victim, "scores_local")
				var moved int64
				for p := range atRestart {
					moved += atRestart[p] - atStop[p]
				}
				cr.fact(reached, "with s1r1 down the Distributed table went from %d to %d of %d rows", rowsAtStop, rows, cr.expected)
				cr.fact(atStop != nil && atRestart != nil && moved > 0, "with s1r1 down the group committed %d more offsets", moved)
				cr.fact(peerAtRestart > peerAtStop, "s1r2 took %d rows of shard 1 while s1r1 was down (%d → %d)", peerAtRestart-peerAtStop, peerAtStop, peerAtRestart)
				cr.replicaState = fmt.Sprintf("s1r1: %d rows at the stop, %d once restarted", before, afterRestart)
				cr.victimAtStop, cr.victimMissed = before, peerAtRestart-peerAtStop
			},
			verify: func(t *testing.T, cr *chRun) {
				victim, peer := cr.c.node("s1r1"), cr.c.node("s1r2")
				before, missed := cr.victimAtStop, cr.victimMissed
				final, peerFinal := cr.localCount(t, victim, "scores_local"), cr.localCount(t, peer, "scores_local")
				// No insert reached s1r1 while it was down (insert_distributed_sync: the
				// Distributed table queues nothing on disk for it), so if it now holds
				// every row s1r2 holds, the rows s1r2 took meanwhile reached it by fetch.
				cr.fact(final == peerFinal && missed > 0, "after SYNC REPLICA s1r1 holds %d rows (%d at its stop), s1r2 %d: the %d rows s1r2 took while s1r1 was down were fetched",
					final, before, peerFinal, missed)
				conn := victim.open(t, cr.db)
				defer conn.Close()
				var readonly uint8
				var queueSize uint32
				var delay uint64
				err := conn.QueryRow(context.Background(), "SELECT is_readonly, queue_size, absolute_delay FROM system.replicas WHERE database = ? AND table = 'scores_local'", cr.db).
					Scan(&readonly, &queueSize, &delay)
				cr.fact(err == nil && readonly == 0 && queueSize == 0 && delay == 0, "system.replicas on s1r1 after SYNC REPLICA: is_readonly %d, queue_size %d, absolute_delay %d (%v)",
					readonly, queueSize, delay, err)
				cr.replicaState += fmt.Sprintf(", %d after SYNC REPLICA", final)
			}},
		{name: "zookeeper", fault: "ZooKeeper stopped (SIGTERM) at 40% of the rows for 10 s, started again", at: 0.4, inject: zookeeperOutage(syscall.SIGTERM)},
		{name: "zookeeper_kill", fault: "ZooKeeper killed (SIGKILL) at 40% of the rows, started again 10 s later", at: 0.4, inject: zookeeperOutage(syscall.SIGKILL)},
		{name: "zookeeper_negative", fault: "NEGATIVE CONTROL, commits before writing: ZooKeeper stopped at 40% for 10 s", at: 0.4,
			binary: "raterd-commit-first", control: propAhead, inject: zookeeperOutage(syscall.SIGTERM)},
	}
}

// chOutcome is one row of the table.
type chOutcome struct {
	outcome
	name         string
	duringFault  int    // records produced while the fault lasted
	raw, hourly  uint64 // rows of scores without FINAL, and rows scores_hourly counted
	replicas     string // count() of scores_local per replica after SYNC REPLICA
	replicaState string
	insertErrors float64
	ahead        int64
}

// chEnv is what every scenario shares.
type chEnv struct {
	c      *chCluster
	st     *stack // Kafka and Redis; st.ch is s2r1 for raterdConfig
	bins   *binaries
	simURL string
}

// chConfig is raterdConfig writing to the cluster through s2r1 (s2r2 the fallback).
func chConfig(t *testing.T, env *chEnv, topic, group, db string) string {
	t.Helper()
	base := raterdConfig(env.st, topic, group, db, env.simURL)
	one := "  addrs: [" + env.st.ch.addr + "]\n"
	if !strings.Contains(base, one) {
		t.Fatal("raterdConfig changed shape; update chConfig")
	}
	// Inserts of at most chInsertRows rows, so that a drain is many inserts and a fault
	// at a fraction of the rows strikes between them (one raterd otherwise writes a
	// small topic in one or two inserts).
	return strings.Replace(base, one, fmt.Sprintf("  addrs: [%s, %s]\n  cluster: %s\n  insert_max_rows: %d\n",
		env.c.node("s2r1").addr, env.c.node("s2r2").addr, chClusterName, chInsertRows), 1)
}

func runChScenario(t *testing.T, env *chEnv, sc chScenario, n int) (o chOutcome, cr *chRun) {
	t.Helper()
	ctx := context.Background()
	if sc.binary == "" {
		sc.binary = "raterd"
	}
	bin, err := env.bins.get(sc.binary)
	if err != nil {
		t.Fatal(err)
	}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, group, db := "chcluster-"+sc.name+"-"+suffix, "chcluster-"+sc.name+"-"+suffix, "chcluster_"+sc.name+"_"+suffix
	kc := &kafka.Client{Addr: kafka.TCP(env.st.kafka.addr), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	cr = &chRun{scenarioRun: &scenarioRun{st: env.st, bin: bin, dir: t.TempDir(), kc: kc, group: group, topic: topic, db: db,
		admin: map[*proc]string{}, last: map[*proc]counters{}, killed: map[*proc]bool{}}, c: env.c, ahead: -1}
	cr.base = chConfig(t, env, topic, group, db)
	migrateCfg := filepath.Join(cr.dir, "migrate.yaml")
	if err := os.WriteFile(migrateCfg, []byte(cr.base+"admin: {listen: \"off\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if out, err := exec.Command(bin, "migrate", "--config", migrateCfg).CombinedOutput(); err != nil {
		t.Fatalf("%s migrate: %v\n%s", sc.binary, err, out)
	}
	t.Logf("raterd migrate on the cluster: %.1f s", time.Since(t0).Seconds())
	cr.conn = env.c.node("s2r2").open(t, db) // the caller closes it
	createTopic(t, kc, topic)
	values, invalid := traffic(sc.name, n)
	// Half the records before raterd starts, producePace every 100 ms while the fault
	// lasts (so that the fault meets inserts however fast raterd drains the first half),
	// the rest once it is over.
	pr := newProducer([]string{env.st.kafka.addr}, topic, values, &kafka.Transport{})
	defer pr.w.Close()
	pr.writeUntil(t, n/2)
	cr.expected = uint64((n - invalid) * evaluators)
	o = chOutcome{name: sc.name, outcome: outcome{fault: sc.fault, control: sc.control, expected: cr.expected, invalid: invalid}}

	started := time.Now()
	cr.startRaterd(t)
	defer func() {
		for _, p := range cr.processes() {
			_ = p.stop(syscall.SIGKILL, 5*time.Second)
		}
	}()
	if !waitFor(drainTimeout, func() bool {
		c, ok := cr.distributedRows()
		return ok && float64(c) >= sc.at*float64(cr.expected)
	}) {
		t.Fatalf("never reached %.0f%% of the rows before the fault; raterd log:\n%s", 100*sc.at, cr.procs[0].tail(30))
	}
	stopSampling, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(200 * time.Millisecond):
				cr.scrapeAll()
			}
		}
	}()
	stopProducing := pr.steadily(producePace)
	defer func() { _ = stopProducing() }() // on a t.Fatal before the check below
	fromFault := pr.next
	sc.inject(t, cr)
	faultEnd := time.Now()
	if err := stopProducing(); err != nil {
		t.Fatal(err)
	}
	o.duringFault = pr.next - fromFault
	pr.writeUntil(t, n)
	if pr.retries > 0 { // a retried batch may be on the topic twice: expected would be wrong
		t.Fatalf("the producer retried %d batches on a single broker", pr.retries)
	}
	ends := endOffsets(t, kc, topic)
	recoverFrom := committed(ctx, kc, group, topic)
	var drainProblem string
	o.drain, drainProblem = waitDrained(t, kc, cr.conn, group, topic, db, ends, o.expected, started, func(c map[int]int64) {
		if o.recovery == 0 && c != nil && recoverFrom != nil && movedEverywhere(recoverFrom, c, ends) {
			o.recovery = time.Since(faultEnd)
		}
	})
	close(stopSampling)
	<-sampled
	cr.scrapeAll()
	total := cr.totals()
	o.crashed = cr.stopSurvivors(nil)
	o.committedToEnd = reachedEnd(committed(ctx, kc, group, topic), ends)

	cr.syncReplicas(t)
	if sc.verify != nil {
		sc.verify(t, cr)
	}
	var differ string
	o.replicas, differ = cr.replicaCounts(t)
	checkRows(t, cr.conn, db, &o.outcome)
	o.raw = countUint(t, cr.conn, "SELECT count() FROM "+db+".scores")
	o.hourly = countUint(t, cr.conn, "SELECT countMerge(rows) FROM "+db+".scores_hourly")
	o.deadTopic, o.dlqMsgs = deadLetterTopic(t, env.st.kafka.addr, sinkkafka.DLQTopic(topic))
	o.deadTable = countUint(t, cr.conn, "SELECT uniqExact(topic, partition, offset) FROM "+db+".dead_letters")
	o.insertErrors, o.ahead, o.replicaState = cr.insertErrors, cr.ahead, cr.replicaState

	add := func(prop property, format string, args ...any) {
		o.problems = append(o.problems, problem{prop: prop, text: fmt.Sprintf(format, args...)})
	}
	o.met = strings.Join(cr.facts, "; ")
	if len(cr.facts) == 0 || len(cr.misses) > 0 {
		add(propExercised, "%s", strings.Join(cr.misses, "; "))
	}
	o.usage = fmt.Sprintf("%.0f / %.0f", total.redisRoundTrips, total.judgeCalls)
	if total.redisRoundTrips == 0 || total.judgeCalls == 0 {
		add(propUnused, "%.0f Redis round trips, %.0f judge calls", total.redisRoundTrips, total.judgeCalls)
	}
	addRowProblems(&o.outcome, n-invalid, add)
	if o.deadTable != uint64(invalid) || o.deadTopic != uint64(invalid) {
		add(propDeadLetters, "%d in the table, %d on the topic, want %d distinct", o.deadTable, o.deadTopic, invalid)
	}
	if differ != "" {
		add(propReplicas, "%s", differ)
	}
	if o.ahead > 0 {
		add(propAhead, "%d offsets committed with neither a score row nor a dead letter on any replica during the fault", o.ahead)
	}
	if !o.committedToEnd {
		add(propCommitted, "committed offsets did not reach the end")
	}
	if len(o.crashed) > 0 {
		add(propCrash, "%s", strings.Join(o.crashed, "; "))
	}
	if drainProblem != "" {
		add(propDrain, "%s", drainProblem)
	}
	if !o.pass() || sc.control != "" || os.Getenv("RATERD_FAULTS_LOGS") != "" {
		for _, p := range cr.processes() {
			t.Logf("%s (last counters %+v) log tail:\n%s", p.name, cr.lastOf(p), p.tail(25))
		}
	}
	if dir := os.Getenv("RATERD_FAULTS_LOGS"); dir != "" && dir != "1" {
		for _, p := range cr.processes() {
			b, _ := os.ReadFile(p.log)
			_ = os.WriteFile(filepath.Join(dir, "chcluster-"+sc.name+"-"+p.name+".log"), b, 0o644)
		}
	}
	return o, cr
}

// addRowProblems is the exactness check of scores FINAL: one row per evaluator for each
// of the valid records, no more.
func addRowProblems(o *outcome, valid int, add func(property, string, ...any)) {
	if o.missing > 0 {
		add(propRowsLost, "%d of %d (record, evaluator) pairs missing from scores FINAL", o.missing, o.expected)
	}
	if o.extra > 0 {
		add(propDuplicates, "scores FINAL has %d rows beyond one per (record, evaluator)", o.extra)
	}
	if o.missing == 0 && o.extra == 0 && (o.found != o.expected || o.records != uint64(valid) || o.uneven != 0) {
		add(propRowsLost, "scores FINAL has %d rows, %d records (%d with other than %d rows), want %d rows of %d records",
			o.found, o.records, o.uneven, evaluators, o.expected, valid)
	}
}

// doubledShard is the exactness check's negative control: shard 1's rows of scores_local
// copied into shard 2 (as a sharding key that sends copies of a record to both shards
// would leave them). FINAL collapses within a shard only, so scores FINAL must now show
// every shard-1 row twice, and the check must fail on duplicates.
func doubledShard(t *testing.T, cr *chRun, base chOutcome, valid int) chOutcome {
	t.Helper()
	s2r1 := cr.c.node("s2r1").open(t, cr.db)
	defer s2r1.Close()
	q := fmt.Sprintf("INSERT INTO %s.scores_local SELECT * FROM remote('%s', %s, scores_local)", cr.db, cr.c.node("s1r2").addr, cr.db)
	if err := s2r1.Exec(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	cr.syncReplicas(t)
	o := chOutcome{name: "doubled_shard", outcome: outcome{fault: "NEGATIVE CONTROL, the exactness check after the replica scenario with shard 1's rows copied into shard 2",
		control: propDuplicates, expected: base.expected, invalid: base.invalid, drain: base.drain, committedToEnd: base.committedToEnd,
		deadTable: base.deadTable, deadTopic: base.deadTopic, dlqMsgs: base.dlqMsgs}, ahead: -1}
	checkRows(t, cr.conn, cr.db, &o.outcome)
	o.raw = countUint(t, cr.conn, "SELECT count() FROM "+cr.db+".scores")
	o.hourly = countUint(t, cr.conn, "SELECT countMerge(rows) FROM "+cr.db+".scores_hourly")
	o.replicas, _ = cr.replicaCounts(t)
	o.met = fmt.Sprintf("%d rows copied from s1r2 into s2r1", cr.localCount(t, cr.c.node("s1r2"), "scores_local"))
	o.usage = base.usage
	addRowProblems(&o.outcome, valid, func(prop property, format string, args ...any) {
		o.problems = append(o.problems, problem{prop: prop, text: fmt.Sprintf(format, args...)})
	})
	return o
}

// TestClickHouseClusterFaults runs the ClickHouse-cluster scenarios on a private Kafka,
// Redis, ZooKeeper and four ClickHouse 18.16 servers.
func TestClickHouseClusterFaults(t *testing.T) {
	if os.Getenv("RATERD_FAULTS_CHCLUSTER") == "" {
		t.Skip("opt-in: RATERD_FAULTS_CHCLUSTER=1 (scripts/faults.sh -chcluster) runs the ClickHouse-cluster fault scenarios")
	}
	n := chclusterRecords(t)
	testkit.Service(t, "RATERD_TEST_KAFKA_LIBS", "Kafka jars")
	dir := t.TempDir()
	sub := func(name string) string {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	start := time.Now()
	load := loadAverage()
	zk := newZooKeeper(t, sub("zookeeper"))
	env := &chEnv{c: newClickHouseCluster(t, sub("chcluster"), zk), bins: &binaries{dir: t.TempDir(), built: map[string]string{}}}
	env.st = &stack{kafka: newKafka(t, sub("kafka")), redis: newRedis(t, sub("redis")), ch: env.c.node("s2r1").clickhouseServer}
	t.Cleanup(func() {
		for _, p := range []*proc{env.st.kafka.p, env.st.redis.p} {
			_ = p.stop(syscall.SIGTERM, 30*time.Second)
		}
	})
	for _, step := range []func() error{env.st.kafka.start, env.st.redis.start, env.c.start, func() error { _, err := env.bins.get("raterd"); return err }} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	env.simURL, _ = testkit.StartJudgesim(t, testkit.FastJudgesim)
	t.Logf("private stack up in %.0f s: zookeeper 127.0.0.1:%d, cluster %v", time.Since(start).Seconds(), zk.port, env.c.addrs())

	var results []chOutcome
	for _, sc := range chScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			o, cr := runChScenario(t, env, sc, n)
			results = append(results, o)
			switch {
			case sc.control != "" && !o.failedOn(sc.control):
				t.Errorf("negative control %s did not fail on %s, the property it breaks: the suite no longer catches that bug (outcome: %s)", sc.name, sc.control, o.detail())
			case sc.control == "" && !o.pass():
				t.Errorf("%s: %s", sc.fault, o.detail())
			}
			if sc.name == "replica" && o.pass() {
				d := doubledShard(t, cr, o, n-o.invalid)
				results = append(results, d)
				if !d.failedOn(propDuplicates) {
					t.Errorf("the exactness check passed with shard 1's rows on shard 2 too: %s", d.detail())
				}
			}
			_ = cr.conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cr.db+" ON CLUSTER "+chClusterName)
			_ = cr.conn.Close()
		})
		// The next scenario starts on a whole cluster, whatever this one left.
		if err := env.c.start(); err != nil {
			t.Fatal(err)
		}
	}
	table := chclusterTable(results, n, time.Since(start), load)
	t.Log("\n" + table)
	if *chclusterDoc != "" && len(results) > 0 {
		if err := rewriteBetween(*chclusterDoc, chclusterBegin, chclusterEnd, table); err != nil {
			t.Fatal(err)
		}
	}
}

func chclusterTable(results []chOutcome, n int, took time.Duration, load string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "`scripts/faults.sh -chcluster` (RATERD_FAULTS_CHCLUSTER_RECORDS=%d): a private ZooKeeper and four ClickHouse 18.16 servers, 2 shards × 2 replicas (deploy/clickhouse/cluster.xml.tmpl), one Kafka broker, Redis; %d records per scenario (%d partitions, one invalid in %d; half produced before raterd starts, %d every 100 ms while the fault lasts, the rest after it), rows = valid records × %d evaluators; raterd writes through s2r1 (`clickhouse.cluster: raterd`, Distributed inserts with insert_distributed_sync). All scenarios took %.0f s, the private stack's start included; load average (1 min) at the start %s (the machine is shared with other test runs).\n\n",
		n, n, partitions, invalidEvery, producePace, evaluators, took.Seconds(), load)
	b.WriteString("| fault | fault met | records (produced during the fault) | rows expected | rows found (FINAL) | pairs missing / extra rows | dead letters: table / topic / expected | `scores_local` count() s1r1 / s1r2 · s2r1 / s2r2 | rows without FINAL / counted by `scores_hourly` | insert errors during the fault | committed ahead of stored rows | catch-up | drain | outcome |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, o := range results {
		verdict := "pass"
		switch {
		case o.control != "" && o.failedOn(o.control):
			verdict = fmt.Sprintf("FAIL on %s, as this control must: %s", o.control, o.detail())
		case o.control != "":
			verdict = fmt.Sprintf("NOT CAUGHT (must fail on %s): %s", o.control, o.detail())
		case !o.pass():
			verdict = "FAIL: " + o.detail()
		}
		if o.hourly < o.found {
			// Not a check of this suite (scores_hourly is documented as approximate on
			// 18.16), but a loss worth seeing: rows in scores_local the view never counted.
			verdict += fmt.Sprintf(" (scores_hourly counts %d rows fewer than scores FINAL holds)", o.found-o.hourly)
		}
		ahead, recovery, errs := "n/a", "n/a", "n/a"
		if o.ahead >= 0 {
			ahead = strconv.FormatInt(o.ahead, 10)
		}
		if o.recovery > 0 {
			recovery = fmt.Sprintf("%.1f s", o.recovery.Seconds())
		}
		if o.name != "doubled_shard" {
			errs = fmt.Sprintf("%.0f", o.insertErrors)
		}
		met := o.met
		if o.replicaState != "" {
			met += "; " + o.replicaState
		}
		fmt.Fprintf(&b, "| %s | %s | %d (%d) | %d | %d | %d / %d | %d / %d / %d | %s | %d / %d | %s | %s | %s | %.1f s | %s |\n",
			o.fault, met, n, o.duringFault, o.expected, o.found, o.missing, o.extra, o.deadTable, o.deadTopic, o.invalid, o.replicas, o.raw, o.hourly, errs, ahead, recovery, o.drain.Seconds(), verdict)
	}
	b.WriteString("\nFault met: the evidence gathered while the fault ran; a scenario fails unless every item holds. Rows found: `scores FINAL` through the Distributed table after `SYSTEM SYNC REPLICA` on every replicated table of every node. `scores_local` count(): each replica's rows; the replicas of a shard must agree. Rows without FINAL: `count()` of the Distributed `scores`; above the rows expected when a batch retried by the pipeline after its insert attempts failed was grouped with others into another block, which replicated deduplication does not recognise (`FINAL` collapses them). Counted by `scores_hourly`: `countMerge(rows)`; its tables never deduplicate, so on 18.16 it should count every row that landed in `scores_local`, replays included; where it counts fewer than `scores FINAL` holds, the outcome says so (likely cause, not yet proven: a ZooKeeper outage leaves an insert stored in `scores_local` while the push to the view's replicated table failed, read-only; the retried identical block is then dropped as a duplicate by `scores_local` and never reaches the view). Not a check of this suite. Insert errors: raterd's failed insert attempts (`raterd_clickhouse_insert_errors_total`) while the fault lasted. Committed ahead of stored rows: offsets below the group's commits at the end of the ZooKeeper outage that had neither a score row nor a dead letter on any replica (`remote()` over the four nodes' local tables); must be 0. Catch-up: from the end of the fault until every partition not yet drained had committed past where it stood then. Drain: from raterd's start until the committed offsets reached the end. A NEGATIVE CONTROL must fail on the property named.\n")
	return b.String()
}
