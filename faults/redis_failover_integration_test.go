package faults

// A Redis failover in the middle of a raterd drain (issue 21, item 3;
// docs/design-topology.md §6.2, item 4): one raterd with a judgesim model judge whose
// verdicts it caches in a private Redis Cluster (3 masters, 3 replicas,
// cluster-node-timeout 1000 ms; `redis: {addrs: [one seed], cluster: true}`) or behind a
// private Sentinel set (master, replica, 3 Sentinels, down-after 1000 ms; `master_name`),
// on the private Kafka and ClickHouse of stack_test.go. The traffic repeats its prompts
// (traffic()), so the cache has hits, and one record in 20 is new, so that raterd asks
// Redis all through the drain. When half the rows are written, kill -9 of a master: the
// Cluster master holding the most keys, or the Sentinel master.
//
// Checks, each recorded in the table:
//   - the fault was met: the victim died of SIGKILL; its replica was promoted (CLUSTER
//     NODES shows it master of slots and the victim failed; the Sentinels name the replica
//     and it answers ROLE master); raterd's breaker opened and closed again (its log lines
//     "redis cache unavailable; scoring without it" and "redis cache available again");
//     its metrics counted cache calls bypassed and, after the breaker closed, Redis round
//     trips again;
//   - no batch failed for the cache: raterd_consumer_batch_retries_total and
//     raterd_scorer_failures_total stay 0 and no "batch failed" line is logged;
//   - the drain (clusterOutcome.checkDrain): one row per evaluator for every valid record in
//     scores FINAL, one dead letter per invalid record (table and topic), offsets
//     committed to the end, `raterd lag` 0; no crash;
//   - judge calls during the outage at most the records fetched meanwhile (the in-process
//     tier still answers hot keys, so fewer).
//
// Figures: how long after the kill the promotion was seen, how long the cache was
// bypassed (the breaker's unavailable_for), the cache calls bypassed, and the judge
// calls and records fetched while the breaker was open.
//
// Negative control: kill -9 of a replica instead (no promotion, the breaker never opens):
// the run must fail on "fault not met", which shows that the evidence above is not
// satisfied by any drain.
//
// Opt-in like TestThreeProcesses: scripts/topology.sh sets RATERD_TOPOLOGY_RECORDS and
// passes -deployment-doc, into which the test writes its table (topology-redis markers).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/internal/testkit"
	"raterd/sinks/clickhouse"
	sinkkafka "raterd/sinks/kafka"
)

const (
	// redisDrainBegin and redisDrainEnd mark the table in docs/deployment.md.
	redisDrainBegin = "<!-- BEGIN topology-redis -->"
	redisDrainEnd   = "<!-- END topology-redis -->"
	// redisDrainAt is the fraction of the expected rows written when the master is killed.
	redisDrainAt = 0.5
	// redisDrainTail is how long the steady traffic goes on after the breaker closed.
	redisDrainTail = 5 * time.Second
	// breakerOpenedLog and breakerClosedLog are the cache breaker's log messages
	// (scorer/cache/breaker.go).
	breakerOpenedLog = "redis cache unavailable; scoring without it"
	breakerClosedLog = "redis cache available again"
)

// propBatchFailed: no batch failed (was retried) nor scored a failure because of the cache.
const propBatchFailed property = "batch failed"

// redisDrainScenario is one failover.
type redisDrainScenario struct {
	name     string
	fault    string // the table's description
	sentinel bool   // a Sentinel set; else a Cluster
	// killReplica kills the busiest master's replica instead of the master: the negative
	// control, which must fail on control.
	killReplica bool
	control     property
}

func redisDrainScenarios() []redisDrainScenario {
	return []redisDrainScenario{
		{name: "redis_cluster", fault: "Redis Cluster (3 masters + 3 replicas, one seed, `cluster: true`): kill -9 of the master holding the most keys at 50%"},
		{name: "redis_sentinel", fault: "Sentinel set (master, replica, 3 Sentinels, `master_name`): kill -9 of the master at 50%", sentinel: true},
		{name: "negative_redis_replica", fault: "NEGATIVE CONTROL, Redis Cluster: kill -9 of a replica at 50% (no failover, the breaker never opens)",
			killReplica: true, control: propExercised},
	}
}

// cacheSample is one ~100 ms scrape of raterd's metrics.
type cacheSample struct {
	at                                 time.Time
	roundTrips, bypassOpen, bypassFail float64
	judgeCalls, fetched                float64
	retries, failures, scorerBypass    float64
	breaker                            float64
}

func cacheSampleOf(at time.Time, s metricsSample) cacheSample {
	return cacheSample{at: at,
		roundTrips:   s.sum("raterd_cache_round_trips_total"),
		bypassOpen:   s.sum("raterd_cache_bypass_total", `reason="breaker_open"`),
		bypassFail:   s.sum("raterd_cache_bypass_total", `reason="error"`) + s.sum("raterd_cache_bypass_total", `reason="timeout"`),
		judgeCalls:   s.sum("raterd_scorer_judge_calls_total", `judge="sim"`),
		fetched:      s.sum("raterd_consumer_records_total"),
		retries:      s.sum("raterd_consumer_batch_retries_total"),
		failures:     s.sum("raterd_scorer_failures_total"),
		scorerBypass: s.sum("raterd_scorer_cache_bypass_total"),
		breaker:      s.sum("raterd_cache_breaker_state"),
	}
}

// sampleAt is the last sample taken at or before at (the first one if none).
func sampleAt(samples []cacheSample, at time.Time) cacheSample {
	if len(samples) == 0 {
		return cacheSample{}
	}
	out := samples[0]
	for _, s := range samples {
		if s.at.After(at) {
			break
		}
		out = s
	}
	return out
}

// redisDrainOutcome is one row of the table.
type redisDrainOutcome struct {
	clusterOutcome
	victim     string // what was killed, and how it died
	promotion  string // the evidence of the promotion, or why there was none
	promotedIn time.Duration
	// opened and closed count the breaker's log lines; bypassed is the sum of the
	// closing lines' unavailable_for.
	opened, closed int
	bypassed       time.Duration
	// Metric deltas from the kill to the end of the drain, and while the breaker was
	// open (from its opening log line to its closing one).
	bypassOpen, bypassFail, scorerBypass float64
	judgeOutage, fetchedOutage           float64
	tripsBefore, tripsAfter              float64 // round trips before the kill; after the breaker closed
	batchRetries, failures               float64
	batchFailedLogs                      int
	facts                                []string
}

// breakerLogRE matches the breaker's opening and closing lines of a raterd log.
var breakerLogRE = regexp.MustCompile(`(?m)^time=(\S+) level=\S+ msg="(` + regexp.QuoteMeta(breakerOpenedLog) + `|` +
	regexp.QuoteMeta(breakerClosedLog) + `)"(?:.* unavailable_for=(\S+))?`)

// breakerEvents parses a raterd log's breaker lines: the time of the first opening, of
// the last closing, how many of each and the closings' unavailable_for summed.
func breakerEvents(log string) (firstOpen, lastClose time.Time, opened, closed int, down time.Duration) {
	for _, m := range breakerLogRE.FindAllStringSubmatch(log, -1) {
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		if m[2] == breakerOpenedLog {
			opened++
			if firstOpen.IsZero() {
				firstOpen = at
			}
			continue
		}
		closed++
		lastClose = at
		if d, err := time.ParseDuration(m[3]); err == nil {
			down += d
		}
	}
	return firstOpen, lastClose, opened, closed, down
}

// breakerTimeline lists a raterd log's breaker lines as seconds after from: "opened +1.02
// s (err), closed +3.40 s (unavailable for 2.38 s)".
func breakerTimeline(log string, from time.Time) string {
	var out []string
	for _, m := range breakerLogRE.FindAllStringSubmatch(log, -1) {
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		if m[2] == breakerOpenedLog {
			out = append(out, fmt.Sprintf("opened %+.2f s", at.Sub(from).Seconds()))
			continue
		}
		d, _ := time.ParseDuration(m[3])
		out = append(out, fmt.Sprintf("closed %+.2f s (unavailable for %.2f s)", at.Sub(from).Seconds(), d.Seconds()))
	}
	if len(out) == 0 {
		return "no breaker line"
	}
	return strings.Join(out, ", ")
}

// TestRedisFailoverDrain runs the Redis failover drains on private Clusters and Sentinel
// sets.
func TestRedisFailoverDrain(t *testing.T) {
	if os.Getenv("RATERD_TOPOLOGY_RECORDS") == "" {
		t.Skip("opt-in: scripts/topology.sh (RATERD_TOPOLOGY_RECORDS) runs it, several minutes")
	}
	n := recordCount(t, "RATERD_TOPOLOGY_RECORDS", 20_000, 2000)
	for _, b := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(b); err != nil {
			msg := "redis-server and redis-cli are needed on PATH; run scripts/services.sh up (it installs them)"
			if os.Getenv(testkit.RequireServicesEnv) != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	start, loadBefore := time.Now(), loadAverage()
	testkit.Service(t, "RATERD_TEST_KAFKA_LIBS", "Kafka jars")
	bins := &binaries{dir: t.TempDir(), built: map[string]string{}}
	bin, err := bins.get("raterd")
	if err != nil {
		t.Fatal(err)
	}
	st := startStack(t)
	simURL, _ := testkit.StartJudgesim(t, testkit.FastJudgesim)

	var results []redisDrainOutcome
	for _, sc := range redisDrainScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			o := runRedisDrain(t, st, bin, simURL, sc, n)
			results = append(results, o)
			t.Logf("%s: %s; %s; promoted in %.2f s; breaker opened %d, closed %d, bypassed %.2f s; calls bypassed %.0f (breaker open) + %.0f (failed); judge calls %.0f / records fetched %.0f while open",
				sc.name, o.victim, o.promotion, o.promotedIn.Seconds(), o.opened, o.closed, o.bypassed.Seconds(), o.bypassOpen, o.bypassFail, o.judgeOutage, o.fetchedOutage)
			if sc.control != "" {
				if !o.failedOn(sc.control) {
					t.Errorf("negative control %s did not fail on %s: the test no longer tells a failover from none (outcome: %s)", sc.name, sc.control, o.detail())
				}
				return
			}
			if !o.pass() {
				t.Errorf("%s: %s", sc.fault, o.detail())
			}
		})
	}
	table := redisDrainTable(results, n, time.Since(start), loadBefore, loadAverage())
	t.Log("\n" + table)
	if *deploymentDoc != "" && len(results) > 0 {
		if err := rewriteBetween(*deploymentDoc, redisDrainBegin, redisDrainEnd, table); err != nil {
			t.Fatal(err)
		}
	}
}

// redisSection is the config's redis section for the scenario's topology.
func redisSection(addrs []string, cluster bool, master, prefix string) string {
	s := "redis:\n  addrs: [" + strings.Join(addrs, ", ") + "]\n"
	if cluster {
		s += "  cluster: true\n"
	}
	if master != "" {
		s += "  master_name: " + master + "\n"
	}
	return s + fmt.Sprintf("  key_prefix: %q\n", prefix+":")
}

func runRedisDrain(t *testing.T, st *stack, bin, simURL string, sc redisDrainScenario, n int) redisDrainOutcome {
	t.Helper()
	ctx := context.Background()
	o := redisDrainOutcome{}
	o.fault, o.control = sc.fault, sc.control
	fact := func(ok bool, format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		if !ok {
			s = "NOT MET: " + s
		}
		o.facts = append(o.facts, s)
	}

	// The topology, and the config that names it.
	dir := t.TempDir()
	suffix := fmt.Sprintf("%x", time.Now().UnixNano())
	topic, group, db := "redisdrain-"+sc.name+"-"+suffix, "redisdrain-"+sc.name+"-"+suffix, "redisdrain_"+sc.name+"_"+suffix
	var (
		rc   *redisClusterSet
		rs   *redisSentinelSet
		seed string
		sect string
	)
	if sc.sentinel {
		rs = startRedisSentinelSet(t, dir)
		sect = redisSection(rs.sentinels, false, rs.name, group)
	} else {
		rc = startRedisClusterSet(t, dir)
		seed = rc.replicaAddr(t)
		sect = redisSection([]string{seed}, true, "", group)
	}
	base := raterdConfig(st, topic, group, db, simURL)
	single := redisSection([]string{st.redis.addr}, false, "", group)
	if !strings.Contains(base, single) {
		t.Fatalf("raterdConfig's redis section changed shape; update runRedisDrain:\n%s", base)
	}
	base = strings.Replace(base, single, sect, 1)

	kc := &kafka.Client{Addr: kafka.TCP(st.kafka.addr), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	r := &scenarioRun{st: st, bin: bin, dir: dir, base: base, kc: kc, group: group, topic: topic, db: db,
		admin: map[*proc]string{}, last: map[*proc]counters{}, killed: map[*proc]bool{}, ahead: -1}
	migrateCfg := filepath.Join(dir, "migrate.yaml")
	if err := os.WriteFile(migrateCfg, []byte(base+"admin: {listen: \"off\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "migrate", "--config", migrateCfg).CombinedOutput(); err != nil {
		t.Fatalf("raterd migrate: %v\n%s", err, out)
	}
	conn, err := clickhouse.Open(ctx, st.ch.config(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	createTopic(t, kc, topic)
	// Half the records before raterd starts; then producePace every 100 ms from its start
	// until the breaker has closed (and redisDrainTail longer), so that records, some of
	// them new to the cache, arrive all through the outage; then the rest up to n.
	values, _ := traffic(sc.name, n+600*producePace*10)
	invalidValues := invalidSet(values)
	prod := newProducer([]string{st.kafka.addr}, topic, values, &kafka.Transport{})
	defer prod.w.Close()
	prefill := n / 2
	prod.writeUntil(t, prefill)
	prefillRows := float64((prefill - prefill/invalidEvery) * evaluators)

	started := time.Now()
	p := r.startRaterd(t)
	defer func() { _ = p.stop(syscall.SIGKILL, 5*time.Second) }()
	stopProducing := prod.steadily(producePace)
	defer func() { _ = stopProducing() }() // on a t.Fatal before the check below

	// Sample raterd's metrics every ~100 ms until the drain is over.
	var (
		smu     sync.Mutex
		samples []cacheSample
	)
	sampleNow := func() {
		r.mu.Lock()
		addr := r.admin[p]
		r.mu.Unlock()
		if s, err := scrapeMetrics(ctx, addr); err == nil {
			smu.Lock()
			samples = append(samples, cacheSampleOf(time.Now(), s))
			smu.Unlock()
		}
	}
	stopSampling, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(100 * time.Millisecond):
				sampleNow()
			}
		}
	}()
	stopSampler := func() {
		select {
		case <-stopSampling:
		default:
			close(stopSampling)
			<-sampled
		}
	}
	defer stopSampler()

	rawRows := func() uint64 {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var c uint64
		_ = conn.QueryRow(qctx, "SELECT count() FROM "+db+".scores").Scan(&c)
		return c
	}
	if !waitFor(drainTimeout, func() bool { return float64(rawRows()) >= redisDrainAt*prefillRows }) {
		t.Fatalf("never reached %.0f%% of the rows; raterd log:\n%s", 100*redisDrainAt, p.tail(30))
	}

	// The kill.
	_, logStart := logSince(p.log, 0)
	sampleNow()
	var (
		victim   *proc
		promoted func() (string, error) // nil error with the evidence once the replica is master
	)
	switch {
	case sc.sentinel:
		m, err := rs.currentMaster(ctx)
		if err != nil || m != rs.masterAddr {
			t.Fatalf("the Sentinels name %q (%v) as master before the kill, not %s", m, err, rs.masterAddr)
		}
		keys, _ := dbSize(ctx, m)
		victim, o.victim = rs.master, fmt.Sprintf("master %s (%d keys)", m, keys)
		promoted = func() (string, error) {
			now, err := rs.currentMaster(ctx)
			if err != nil {
				return "", err
			}
			if now != rs.replicaAddr {
				return "", fmt.Errorf("the Sentinels name %s as master, not the replica %s", now, rs.replicaAddr)
			}
			if role, err := testkit.RedisRole(ctx, now); err != nil || role != "master" {
				return "", fmt.Errorf("ROLE of %s: %q, %w", now, role, err)
			}
			return fmt.Sprintf("SENTINEL get-master-addr-by-name: %s → %s (ROLE master)", m, now), nil
		}
	default:
		vm, replica, keys, err := rc.busiestMaster(ctx, seed)
		if err != nil {
			t.Fatal(err)
		}
		if sc.killReplica {
			if replica.addr == seed { // keep raterd's seed alive, as in the other scenarios
				nodes, err := redisClusterNodes(ctx, seed)
				if err != nil {
					t.Fatal(err)
				}
				for _, nd := range nodes {
					if !nd.master() && nd.addr != seed {
						replica = nd
					}
				}
			}
			victim, o.victim = rc.procs[replica.addr], fmt.Sprintf("replica %s (the busiest master %s holds %d keys)", replica.addr, vm.addr, keys)
			promoted = func() (string, error) {
				return "", fmt.Errorf("a replica killed: the masters stay (%s still master)", vm.addr)
			}
			break
		}
		victim, o.victim = rc.procs[vm.addr], fmt.Sprintf("master %s (%d keys, %d slots)", vm.addr, keys, vm.slots)
		promoted = func() (string, error) {
			nodes, err := redisClusterNodes(ctx, seed)
			if err != nil {
				return "", err
			}
			var vl, rl redisNodeLine
			for _, nd := range nodes {
				switch nd.id {
				case vm.id:
					vl = nd
				case replica.id:
					rl = nd
				}
			}
			if !rl.master() || rl.slots == 0 || !vl.failed() {
				return "", fmt.Errorf("replica %s: %s, %d slots; victim %s: %s", rl.addr, rl.flags, rl.slots, vl.addr, vl.flags)
			}
			return fmt.Sprintf("CLUSTER NODES: replica %s now master of %d slots, %s %s", rl.addr, rl.slots, vl.addr, vl.flags), nil
		}
	}
	smu.Lock()
	before := sampleAt(samples, time.Now())
	smu.Unlock()
	killAt := time.Now()
	kerr := victim.stop(syscall.SIGKILL, 10*time.Second)
	var ee *exec.ExitError
	died := errors.As(kerr, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
	fact(died, "kill -9 of the %s: %v", o.victim, kerr)
	var perr error
	promotionLimit := time.Minute
	if sc.killReplica {
		promotionLimit = 0 // nothing to promote: one look
	}
	ok := waitFor(promotionLimit, func() bool {
		o.promotion, perr = promoted()
		return perr == nil
	})
	if ok {
		o.promotedIn = time.Since(killAt)
		fact(true, "%s, seen %.2f s after the kill", o.promotion, o.promotedIn.Seconds())
	} else {
		if sc.killReplica {
			time.Sleep(5 * time.Second) // as long as a failover's outage: time for a breaker to open
		}
		o.promotion = "no promotion: " + perr.Error()
		fact(false, "%s", o.promotion)
	}
	// The breaker's closing, or (after 15 s without an opening) none.
	waitFor(90*time.Second, func() bool {
		log, _ := logSince(p.log, logStart)
		return strings.Contains(log, breakerClosedLog) || (time.Since(killAt) > 15*time.Second && !strings.Contains(log, breakerOpenedLog))
	})

	time.Sleep(redisDrainTail)
	if err := stopProducing(); err != nil {
		t.Fatal(err)
	}
	o.duringFault = prod.next - prefill
	prod.writeUntil(t, n)
	o.produced, o.retries = prod.next, prod.retries
	ends := endOffsets(t, kc, topic)
	valid, invalid, dups := sourceTallyOn(t, []string{st.kafka.addr}, topic, ends, func(v []byte) bool { return invalidValues[string(v)] })
	o.sourceDups = dups
	o.expected, o.invalid = uint64(valid*evaluators), invalid

	var drainProblem string
	o.drain, drainProblem = waitDrained(t, kc, conn, group, topic, db, ends, o.expected, started, nil)
	sampleNow()
	stopSampler()
	smu.Lock()
	all := append([]cacheSample(nil), samples...)
	smu.Unlock()
	end := all[len(all)-1]

	// The breaker's log lines and what the metrics counted while it was open.
	log, _ := logSince(p.log, logStart)
	o.batchFailedLogs = strings.Count(log, `msg="batch failed`)
	var openAt, closeAt time.Time
	openAt, closeAt, o.opened, o.closed, o.bypassed = breakerEvents(log)
	o.bypassOpen, o.bypassFail = end.bypassOpen-before.bypassOpen, end.bypassFail-before.bypassFail
	o.scorerBypass = end.scorerBypass - before.scorerBypass
	o.batchRetries, o.failures = end.retries, end.failures
	o.tripsBefore = before.roundTrips
	if !openAt.IsZero() {
		to := end
		if !closeAt.IsZero() {
			to = sampleAt(all, closeAt)
		}
		from := sampleAt(all, openAt)
		o.judgeOutage, o.fetchedOutage = to.judgeCalls-from.judgeCalls, to.fetched-from.fetched
		if !closeAt.IsZero() {
			o.tripsAfter = end.roundTrips - to.roundTrips
		}
	}
	fact(o.opened > 0 && o.closed > 0, "breaker log, after the kill: %s (cache bypassed %.2f s in all)", breakerTimeline(log, killAt), o.bypassed.Seconds())
	fact(o.bypassOpen+o.bypassFail > 0, "cache calls bypassed after the kill: %.0f with the breaker open, %.0f failed or timed out; %.0f batches scored without the cache",
		o.bypassOpen, o.bypassFail, o.scorerBypass)
	fact(o.tripsAfter > 0, "%.0f Redis round trips after the breaker closed (%.0f before the kill)", o.tripsAfter, o.tripsBefore)

	// The drain.
	o.crashed = r.stopSurvivors(nil)
	o.committedToEnd = reachedEnd(committed(ctx, kc, group, topic), ends)
	lagOut, lagErr := exec.Command(bin, "lag", "--config", migrateCfg).CombinedOutput()
	o.lag = strings.TrimSpace(string(lagOut))
	if i := strings.LastIndex(o.lag, "\n"); i >= 0 {
		o.lag = o.lag[i+1:]
	}
	checkRows(t, conn, db, &o.outcome)
	o.duplicates -= min(o.duplicates, uint64(dups*evaluators))
	o.deadTopic, o.dlqMsgs = deadLetterTopic(t, st.kafka.addr, sinkkafka.DLQTopic(topic))
	o.deadTable = countUint(t, conn, "SELECT uniqExact(topic, partition, offset) FROM "+db+".dead_letters")

	add := func(prop property, format string, args ...any) {
		o.problems = append(o.problems, problem{prop: prop, text: fmt.Sprintf(format, args...)})
	}
	var notMet []string
	for _, f := range o.facts {
		if strings.HasPrefix(f, "NOT MET: ") {
			notMet = append(notMet, strings.TrimPrefix(f, "NOT MET: "))
		}
	}
	if len(notMet) > 0 {
		add(propExercised, "%s", strings.Join(notMet, "; "))
	}
	o.met = strings.Join(o.facts, "; ")
	o.usage = fmt.Sprintf("%.0f / %.0f", end.roundTrips, end.judgeCalls)
	if end.roundTrips == 0 || end.judgeCalls == 0 {
		add(propUnused, "%.0f Redis round trips, %.0f judge calls", end.roundTrips, end.judgeCalls)
	}
	if o.batchRetries > 0 || o.failures > 0 || o.batchFailedLogs > 0 {
		add(propBatchFailed, "%.0f batch retries, %.0f score failures, %d \"batch failed\" log lines", o.batchRetries, o.failures, o.batchFailedLogs)
	}
	if o.judgeOutage > o.fetchedOutage {
		add(propUnused, "%.0f judge calls while the breaker was open, more than the %.0f records fetched meanwhile", o.judgeOutage, o.fetchedOutage)
	}
	o.checkDrain(add, valid, invalid, lagOut, lagErr)
	if len(o.crashed) > 0 {
		add(propCrash, "%s", strings.Join(o.crashed, "; "))
	}
	if drainProblem != "" {
		add(propDrain, "%s", drainProblem)
	}
	if !o.pass() || sc.control != "" || os.Getenv("RATERD_FAULTS_LOGS") != "" {
		t.Logf("%s log tail:\n%s", p.name, p.tail(25))
	}
	if d := os.Getenv("RATERD_FAULTS_LOGS"); d != "" && d != "1" {
		b, _ := os.ReadFile(p.log)
		_ = os.WriteFile(filepath.Join(d, "redis-"+sc.name+"-"+p.name+".log"), b, 0o644)
	}
	_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	return o
}

func redisDrainTable(results []redisDrainOutcome, n int, took time.Duration, loadBefore, loadAfter string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Command: `RATERD_TOPOLOGY_RECORDS=%d scripts/topology.sh -run redis` (TestRedisFailoverDrain, faults/redis_failover_integration_test.go). One raterd (five checks and a judgesim model judge, the cache's defaults: timeout 250 ms, breaker after 3 failures, cooldown 1 s doubling up to 30 s, a 32 MiB in-process tier) drains %d records (%d partitions, one invalid record in %d, 600 repeated prompt/answer pairs and one record in 20 new) on a private Kafka broker and ClickHouse server: half of them produced before raterd starts, %d every 100 ms from its start until %.0f s after the breaker closed, then the rest; its cache is a private Redis Cluster (3 masters + 3 replicas, cluster-node-timeout 1000 ms, raterd given one replica as its seed) or a Sentinel set (master, replica, 3 Sentinels, quorum 2, down-after 1000 ms), all on this one machine. When the rows of half the records produced before the start are written, kill -9 of a master. The scenarios took %.0f s in all, stack start included. Load average (1 min) %s at the start, %s at the end on %d CPUs: the times are upper bounds on a shared machine, not a benchmark.\n\n",
		n, n, partitions, invalidEvery, producePace, redisDrainTail.Seconds(), took.Seconds(), loadBefore, loadAfter, runtime.NumCPU())
	b.WriteString("| scenario | fault met (kill, promotion, raterd's breaker log and metrics) | promotion seen after the kill | cache bypassed (breaker open) | cache calls bypassed: breaker open / failed | judge calls / records fetched while the breaker was open | Redis round trips / judge calls (whole drain) | batch retries / score failures | records produced (of them from raterd's start to the end of the steady traffic) | rows expected / found (FINAL) | missing / extra | dead letters table / topic / expected | committed to end / `raterd lag` | drain | crashes | outcome |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | --- |\n")
	for _, o := range results {
		promoted := "none"
		if o.promotedIn > 0 {
			promoted = fmt.Sprintf("%.2f s", o.promotedIn.Seconds())
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f s | %.0f / %.0f | %.0f / %.0f | %s | %.0f / %.0f | %d (%d) | %d / %d | %d / %d | %d / %d / %d | %s / %s | %.1f s | %s | %s |\n",
			o.fault, o.met, promoted, o.bypassed.Seconds(), o.bypassOpen, o.bypassFail, o.judgeOutage, o.fetchedOutage, o.usage,
			o.batchRetries, o.failures, o.produced, o.duringFault, o.expected, o.found, o.missing, o.extra, o.deadTable, o.deadTopic, o.invalid,
			yesNo(o.committedToEnd), o.lag, o.drain.Seconds(), o.crashes(), o.verdict())
	}
	b.WriteString("\nPromotion seen: from the kill until CLUSTER NODES (asked of the seed every 200 ms) shows the victim's replica master of its slots and the victim failed, or the Sentinels name the replica as master and it answers ROLE master. Cache bypassed: the sum of the breaker's `unavailable_for` on its `redis cache available again` log lines, from its opening (after 3 failed round trips) until a half-open round trip reached the new master. On a Cluster only the dead master's slots fail, so a half-open batch whose keys all lie on the other masters can close the breaker before the promotion and a later batch open it again; and a half-open batch soon after the promotion can still fail, since the client reloads its slot map only after a failed round trip, which doubles the cooldown once more: the breaker log column lists every opening and closing, in seconds after the kill. Cache calls bypassed: `raterd_cache_bypass_total` gained after the kill, with reason `breaker_open` / `error` or `timeout`. Judge calls while the breaker was open: `raterd_scorer_judge_calls_total` gained between the breaker's first opening and last closing log lines after the kill (metrics sampled every 100 ms), beside the records fetched meanwhile: the in-process tier still answers hot keys, so the judge sees only the records it has not seen. Batch retries / score failures: `raterd_consumer_batch_retries_total` and `raterd_scorer_failures_total`, which must stay 0 (a cache failure never fails a batch; no `batch failed` log line either). The drain checks are the other topology tables': one row per evaluator for every valid record in `scores FINAL`, one dead letter per invalid record in the table and on the topic, offsets committed to the end and `raterd lag` at 0. The NEGATIVE CONTROL kills a replica instead of a master: nothing fails over and the breaker never opens, so the test must fail it on \"fault not met\". No control with the breaker disabled: a killed server on loopback refuses connections at once, so without the breaker each batch would still be scored without the cache after one refused call; neither a stall nor a failed batch would follow to show.\n")
	return b.String()
}
