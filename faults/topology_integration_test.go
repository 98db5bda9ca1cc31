package faults

// Three raterd processes in one consumer group on a topic of 12 partitions, producing
// throughout (issue 21, item 4; docs/design-topology.md §6.3). Each scenario is its own
// drain on the private single-broker stack (stack_test.go): half the records are produced
// before the processes start, more at producePace for as long as the scenario's group
// changes last, and the rest once it is over. Scenarios:
//   - rolling: SIGTERM each of the three in turn, start a replacement, wait until it
//     fetches;
//   - scale: SIGTERM two of three at once, later start two;
//   - kill: kill -9 of one of three (the redelivery path).
// Checks after each (as the cluster scenarios'): one row per evaluator for every distinct
// valid record id in scores FINAL, one dead letter per invalid offset, committed offsets at
// the end, `raterd lag` 0, no process crashed, and in the group's last generation every
// partition owned by exactly one member (the members' "partitions assigned" lines of that
// generation sum to 12). Each scenario proves its fault: the stopped process exited (with
// status 0 after SIGTERM, of SIGKILL after kill -9) and a new generation was assigned
// after every event.
//
// The cost of every rebalance event (a stop, a kill or a start) is measured:
//   - assignment time: from the event to the last "partitions assigned" line of the
//     generation it caused (log timestamps; the test sends the signal or starts the
//     process on the same clock);
//   - fetch gap: the longest interval, from the event until the next event (the last
//     one: until the steady traffic ends, topologyTail after it settled), during which the group's fetched count (the sum of every process's
//     raterd_consumer_records_total, sampled every ~100 ms) did not grow while the group
//     had lag (end offsets above committed offsets);
//   - redelivered rows: rows inserted more than once (scores_hourly's inserted rows minus
//     the distinct (record, evaluator) pairs of scores) gained from the event until the
//     next event (or the end).
//
// Opt-in: scripts/topology.sh sets RATERD_TOPOLOGY_RECORDS (20,000 by default) and
// rewrites the table in docs/deployment.md (-deployment-doc). Without the variable the
// test skips: a run takes several minutes on a loaded 2-core machine, more than
// .ci/run's budget leaves.

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"raterd/internal/judgesim"
	"raterd/internal/testkit"
	"raterd/sinks/clickhouse"
	sinkkafka "raterd/sinks/kafka"
)

var deploymentDoc = flag.String("deployment-doc", "", "rewrite the three-process table in this markdown file (docs/deployment.md)")

const (
	// topologyPartitions is the partitions of the three-process scenarios' topic.
	topologyPartitions = 12
	// topologyMembers is how many raterd processes the group starts with.
	topologyMembers = 3
	// topologyBegin and topologyEnd mark the table in docs/deployment.md.
	topologyBegin = "<!-- BEGIN topology-processes -->"
	topologyEnd   = "<!-- END topology-processes -->"
	// topologyTail is how long the steady traffic goes on after a scenario's last event
	// has settled.
	topologyTail = 5 * time.Second
)

// procScenario is one change of the group's membership.
type procScenario struct {
	name  string
	fault string  // the table's description
	at    float64 // fraction of the prefill's rows written when the first event strikes
	// inject runs the events (pr.stopMembers, pr.startMembers, pr.killBusiest) and
	// returns when the group is settled after the last.
	inject func(t *testing.T, pr *procsRun)
	// binary and control: a negative control runs a raterd built with a promise broken
	// (controlTag) and must fail on the property control.
	binary  string
	control property
	// hangs: 5% of the judge's calls hang until the judge's timeout, so that records
	// finish out of order and rows written above the committed offsets are many (what a
	// kill redelivers).
	hangs bool
}

// rebalanceEvent is one stop, kill or start and what it cost.
type rebalanceEvent struct {
	what       string
	at         time.Time
	members    int // live processes after the event
	generation int // the generation assigned after it
	assignment time.Duration
	gap        time.Duration
	dupsAt     uint64 // rows written more than once, when the event struck
	redeliver  uint64
	evidence   []string // that the event happened: exits, fetches, the new generation
}

// fetchSample is one ~100 ms sample of the group.
type fetchSample struct {
	at      time.Time
	fetched float64 // every process's fetched messages (a stopped one's last scrape)
	lag     bool    // the end offsets were above the committed offsets
}

// procsRun is a scenarioRun of the three-process scenarios.
type procsRun struct {
	*scenarioRun
	conn    driver.Conn
	stopped map[*proc]bool // stopped with SIGTERM on purpose
	// prefillRows is the rows the records produced before raterd started make.
	prefillRows uint64
	events      []*rebalanceEvent
	facts       []string
	smu         sync.Mutex
	samples     []fetchSample
}

func (pr *procsRun) fact(ok bool, format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	pr.facts = append(pr.facts, s)
	if !ok {
		pr.misses = append(pr.misses, s)
	}
}

// eventFact is a fact that is also evidence of ev.
func (pr *procsRun) eventFact(ev *rebalanceEvent, ok bool, format string, args ...any) {
	pr.fact(ok, format, args...)
	s := pr.facts[len(pr.facts)-1]
	if !ok {
		s = "NOT MET: " + s
	}
	ev.evidence = append(ev.evidence, s)
}

// live is the processes running now.
func (pr *procsRun) live() []*proc {
	var out []*proc
	for _, p := range pr.processes() {
		if p.running() && !pr.stopped[p] && !pr.killed[p] {
			out = append(out, p)
		}
	}
	return out
}

// assignment is one "partitions assigned" line of a raterd log.
type assignment struct {
	at         time.Time
	generation int
	partitions int
}

var assignmentRE = regexp.MustCompile(`(?m)^time=(\S+) level=INFO msg="kafka group: partitions assigned".* generation=(\d+) partitions=(\d+)`)

// assignments parses a raterd log's "partitions assigned" lines.
func assignments(log string) []assignment {
	var out []assignment
	for _, m := range assignmentRE.FindAllStringSubmatch(log, -1) {
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		g, _ := strconv.Atoi(m[2])
		n, _ := strconv.Atoi(m[3])
		out = append(out, assignment{at: at, generation: g, partitions: n})
	}
	return out
}

// logAssignments returns each process's assignment lines.
func (pr *procsRun) logAssignments() map[*proc][]assignment {
	out := map[*proc][]assignment{}
	for _, p := range pr.processes() {
		b, _ := os.ReadFile(p.log)
		out[p] = assignments(string(b))
	}
	return out
}

// maxGeneration is the highest generation any process was assigned so far.
func (pr *procsRun) maxGeneration() int {
	g := 0
	for _, as := range pr.logAssignments() {
		for _, a := range as {
			g = max(g, a.generation)
		}
	}
	return g
}

// settled checks whether the live processes all hold generation g > after, the highest
// assigned, whose assignment lines sum to every partition; it returns g, the time of its
// last line, and what is wrong otherwise.
func (pr *procsRun) settled(after int) (int, time.Time, string) {
	all := pr.logAssignments()
	g := 0
	for _, as := range all {
		for _, a := range as {
			g = max(g, a.generation)
		}
	}
	if g <= after {
		return 0, time.Time{}, fmt.Sprintf("no generation after %d", after)
	}
	var last time.Time
	sum := 0
	for _, p := range pr.live() {
		var mine *assignment
		for i, a := range all[p] {
			if a.generation == g {
				mine = &all[p][i]
			}
		}
		if mine == nil {
			return 0, time.Time{}, fmt.Sprintf("%s not assigned in generation %d", p.name, g)
		}
		sum += mine.partitions
		if mine.at.After(last) {
			last = mine.at
		}
	}
	if sum != topologyPartitions {
		return 0, time.Time{}, fmt.Sprintf("generation %d assigns %d partitions to %d live processes, want %d", g, sum, len(pr.live()), topologyPartitions)
	}
	return g, last, ""
}

// event opens a rebalance event: what happened at the moment at.
func (pr *procsRun) event(what string, at time.Time) *rebalanceEvent {
	ev := &rebalanceEvent{what: what, at: at, dupsAt: pr.dups()}
	pr.events = append(pr.events, ev)
	return ev
}

// settle waits until the group has assigned every partition to the live processes in
// a generation after before, and records the event's assignment time.
func (pr *procsRun) settle(ev *rebalanceEvent, before int) {
	var why string
	ok := waitFor(2*time.Minute, func() bool {
		var at time.Time
		ev.generation, at, why = pr.settled(before)
		if why == "" {
			ev.assignment = at.Sub(ev.at)
		}
		return why == ""
	})
	ev.members = len(pr.live())
	if ok {
		pr.eventFact(ev, true, "generation %d after %d assigned %d partitions to the %d running", ev.generation, before, topologyPartitions, ev.members)
	} else {
		pr.eventFact(ev, false, "%s: not settled: %s", ev.what, why)
	}
}

// stopMembers sends SIGTERM to ps at once (one event), waits for their exits and for
// the group to settle.
func (pr *procsRun) stopMembers(ps ...*proc) {
	before := pr.maxGeneration()
	names := make([]string, len(ps))
	for i, p := range ps {
		pr.scrape(p)
		names[i] = p.name
		pr.stopped[p] = true
	}
	ev := pr.event("SIGTERM "+strings.Join(names, ", "), time.Now())
	var wg sync.WaitGroup
	errs := make([]error, len(ps))
	for i, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = p.stop(syscall.SIGTERM, 40*time.Second) }()
	}
	wg.Wait()
	for i, p := range ps {
		fetched := pr.lastOf(p).fetched
		pr.eventFact(ev, errs[i] == nil && !p.running() && fetched > 0, "%s had fetched %.0f, exited %v %.1f s after SIGTERM",
			p.name, fetched, exitText(errs[i]), time.Since(ev.at).Seconds())
	}
	pr.settle(ev, before)
}

// startMembers starts k processes at once (one event), waits for the group to settle
// and for each new process to fetch.
func (pr *procsRun) startMembers(t *testing.T, k int) {
	before := pr.maxGeneration()
	at := time.Now()
	var started []*proc
	for range k {
		started = append(started, pr.startRaterd(t))
	}
	names := make([]string, k)
	for i, p := range started {
		names[i] = p.name
	}
	ev := pr.event("start "+strings.Join(names, ", "), at)
	pr.settle(ev, before)
	for _, p := range started {
		got := waitFor(time.Minute, func() bool { pr.scrape(p); return pr.lastOf(p).fetched > 0 })
		pr.eventFact(ev, got, "%s fetched %.0f", p.name, pr.lastOf(p).fetched)
	}
}

// exitText is a process's exit status as the table shows it.
func exitText(err error) string {
	if err == nil {
		return "with status 0"
	}
	return err.Error()
}

// inFlight is p's raterd_consumer_in_flight: messages fetched and not yet done (-1
// when its metrics do not answer).
func (pr *procsRun) inFlight(p *proc) float64 {
	pr.mu.Lock()
	addr := pr.admin[p]
	pr.mu.Unlock()
	s, err := scrapeMetrics(context.Background(), addr)
	if err != nil {
		return -1
	}
	return s.sum("raterd_consumer_in_flight")
}

// killBusiest kills with SIGKILL (one event) the live process with the most messages
// in flight, which must be some (they are what the group fetches again: the redelivery
// path), and waits for the group to settle.
func (pr *procsRun) killBusiest() {
	var p *proc
	most := -1.0
	waitFor(30*time.Second, func() bool {
		for _, q := range pr.live() {
			if n := pr.inFlight(q); n > most {
				p, most = q, n
			}
		}
		return most > 0
	})
	// Rows written above the committed offset on more partitions than any other member
	// owns: the victim has some, which its partitions' next owner writes again.
	need := topologyPartitions - topologyPartitions/len(pr.live()) + 1
	ahead := 0
	waitFor(30*time.Second, func() bool { ahead = pr.aheadPartitions(); return ahead >= need })
	before := pr.maxGeneration()
	kills := len(pr.kills)
	ev := pr.event("kill -9 "+p.name, time.Now())
	pr.kill(p)
	pr.eventFact(ev, len(pr.kills) > kills && most > 0, "%s with %.0f in flight, rows written above the committed offset on %d partitions",
		strings.Join(slices.Concat(pr.kills[kills:], pr.misses), "; "), most, ahead)
	pr.settle(ev, before)
}

// aheadPartitions is how many partitions have score rows at or above the group's
// committed offset (written, not yet committed).
func (pr *procsRun) aheadPartitions() int {
	c := committedN(context.Background(), pr.kc, pr.group, pr.topic, topologyPartitions)
	if c == nil {
		return 0
	}
	var conds []string
	for p, off := range c {
		conds = append(conds, fmt.Sprintf("(partition = %d AND offset >= %d)", p, max(off, 0)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var n uint64
	if err := pr.conn.QueryRow(ctx, "SELECT uniqExact(partition) FROM "+pr.db+".scores WHERE "+strings.Join(conds, " OR ")).Scan(&n); err != nil {
		return 0
	}
	return int(n)
}

// allFetching waits until every live process has fetched.
func (pr *procsRun) allFetching() {
	ok := waitFor(time.Minute, func() bool {
		pr.scrapeAll()
		for _, p := range pr.live() {
			if pr.lastOf(p).fetched == 0 {
				return false
			}
		}
		return true
	})
	pr.fact(ok && len(pr.live()) == topologyMembers, "%d processes fetching before the first event", len(pr.live()))
}

// dups is the rows inserted more than once so far: scores_hourly counts every inserted
// row (merges of scores collapse replays, so count() of scores without FINAL would
// undercount them), the pairs of scores are the distinct ones.
func (pr *procsRun) dups() uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var raw, pairs uint64
	if err := pr.conn.QueryRow(ctx, "SELECT countMerge(rows) FROM "+pr.db+".scores_hourly").Scan(&raw); err != nil {
		return 0
	}
	if err := pr.conn.QueryRow(ctx, "SELECT uniqExact(record_id, evaluator) FROM "+pr.db+".scores").Scan(&pairs); err != nil {
		return 0
	}
	return raw - min(raw, pairs)
}

// sample records the group's fetched count and whether it has lag.
func (pr *procsRun) sample() {
	pr.scrapeAll()
	s := fetchSample{at: time.Now(), fetched: pr.totals().fetched}
	c := committedN(context.Background(), pr.kc, pr.group, pr.topic, topologyPartitions)
	ends, err := listEnds(pr.kc, pr.topic, topologyPartitions)
	if c != nil && err == nil {
		for p, end := range ends {
			if c[p] < end {
				s.lag = true
			}
		}
	}
	pr.smu.Lock()
	pr.samples = append(pr.samples, s)
	pr.smu.Unlock()
}

// listEnds returns the end offsets of a topic of parts partitions.
func listEnds(kc *kafka.Client, topic string, parts int) (map[int]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for p := range parts {
		req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
	}
	resp, err := kc.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	ends := map[int]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		ends[po.Partition] = po.LastOffset
	}
	return ends, nil
}

// fetchGap is the longest interval in samples from from until to during which the
// fetched count did not grow while the group had lag.
func fetchGap(samples []fetchSample, from, to time.Time) time.Duration {
	var gap time.Duration
	since := from
	prev := -1.0
	for _, s := range samples {
		if s.at.Before(from) {
			prev = s.fetched
			continue
		}
		if s.at.After(to) {
			break
		}
		switch {
		case prev >= 0 && s.fetched > prev, !s.lag:
			since = s.at
		default:
			gap = max(gap, s.at.Sub(since))
		}
		prev = s.fetched
	}
	return gap
}

func procScenarios() []procScenario {
	return []procScenario{
		{name: "rolling", fault: "rolling restart: SIGTERM each of 3 in turn, start a replacement, wait until it fetches", at: 0.3,
			inject: func(t *testing.T, pr *procsRun) {
				for _, p := range pr.live() {
					pr.stopMembers(p)
					pr.startMembers(t, 1)
				}
			}},
		{name: "scale", fault: "scale 3 → 1 → 3: SIGTERM two at once at 30%, start two at 60%", at: 0.3,
			inject: func(t *testing.T, pr *procsRun) {
				live := pr.live()
				pr.stopMembers(live[0], live[1])
				ok := waitFor(drainTimeout, func() bool { return float64(pr.rawRows()) >= 0.6*float64(pr.prefillRows) })
				pr.fact(ok, "one process reached 60%% of the prefill's rows")
				pr.startMembers(t, 2)
			}},
		{name: "kill", fault: "kill -9 of one of 3 at 50% (the one with the most messages in flight)", at: 0.5,
			inject: func(t *testing.T, pr *procsRun) { pr.killBusiest() }},
		{name: "negative_collapse", fault: "NEGATIVE CONTROL, scores without ReplacingMergeTree: kill -9 of one of 3 at 50%, 5% of judge calls hang", at: 0.5,
			binary: "raterd-no-collapse", control: propDuplicates, hangs: true,
			inject: func(t *testing.T, pr *procsRun) { pr.killBusiest() }},
	}
}

// rawRows is count() of scores, 0 while unreadable.
func (pr *procsRun) rawRows() uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var c uint64
	_ = pr.conn.QueryRow(ctx, "SELECT count() FROM "+pr.db+".scores").Scan(&c)
	return c
}

// procsOutcome is one row of the table.
type procsOutcome struct {
	clusterOutcome
	events       []*rebalanceEvent
	lastGen      int
	lastMembers  int
	lastSum      int
	ownership    string // the coordinator's view of the last generation
	ownershipBad bool
	// laterGens is how many generations the group went through after the last event had
	// settled (rebalances nobody asked for: a member missing its session or rebalance
	// timeout); kafkaWarnings counts the processes' Kafka client warnings and errors.
	laterGens, kafkaWarnings int
	// refetched is the messages the group fetched more than once: every process's
	// fetched count (a killed one's up to its last scrape) minus the messages on the topic.
	refetched int64
	// rawOverFinal is count() of scores minus count() of scores FINAL after the drain:
	// the replays not yet collapsed by a merge (a lower bound of o.duplicates).
	rawOverFinal int64
}

// lastGeneration is the highest generation in the logs of the running processes (by
// name), how many of them were assigned in it and the partitions their lines add up to.
// A process may log one generation twice: a member that rejoins a stable group (after
// its connection to the coordinator failed) gets the same generation and assignment
// back; its last line counts.
func lastGeneration(logs map[string][]assignment) (gen, members, sum int) {
	for _, as := range logs {
		for _, a := range as {
			gen = max(gen, a.generation)
		}
	}
	for _, as := range logs {
		last := -1
		for _, a := range as {
			if a.generation == gen {
				last = a.partitions
			}
		}
		if last >= 0 {
			members++
			sum += last
		}
	}
	return gen, members, sum
}

// groupOwners asks the group coordinator which member owns which partition of topic:
// member id → partitions; and the group's state.
func groupOwners(kc *kafka.Client, group, topic string) (map[string][]int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kc.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return nil, "", fmt.Errorf("describe group %s: %w", group, err)
	}
	if len(resp.Groups) != 1 || resp.Groups[0].Error != nil {
		return nil, "", fmt.Errorf("describe group %s: %+v", group, resp.Groups)
	}
	owners := map[string][]int{}
	for _, m := range resp.Groups[0].Members {
		owners[m.MemberID] = nil
		for _, tp := range m.MemberAssignments.Topics {
			if tp.Topic == topic {
				owners[m.MemberID] = append(owners[m.MemberID], tp.Partitions...)
			}
		}
	}
	return owners, resp.Groups[0].GroupState, nil
}

// ownershipProblem says what is wrong with owners (member → partitions) unless every
// partition 0…parts-1 is owned by exactly one member.
func ownershipProblem(owners map[string][]int, parts int) string {
	count := map[int]int{}
	for _, ps := range owners {
		for _, p := range ps {
			count[p]++
		}
	}
	var bad []string
	for p := range parts {
		if count[p] != 1 {
			bad = append(bad, fmt.Sprintf("partition %d owned by %d members", p, count[p]))
		}
	}
	for p := range count {
		if p < 0 || p >= parts {
			bad = append(bad, fmt.Sprintf("unknown partition %d owned", p))
		}
	}
	slices.Sort(bad)
	return strings.Join(bad, "; ")
}

func runProcScenario(t *testing.T, st *stack, bins *binaries, sim *judgesim.Simulator, simURL string, sc procScenario, n int) procsOutcome {
	t.Helper()
	ctx := context.Background()
	bin, err := bins.get(cmp.Or(sc.binary, "raterd"))
	if err != nil {
		t.Fatal(err)
	}
	if sc.hangs {
		if err := sim.SetFaults(judgesim.Faults{HangRate: 0.05}); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sim.SetFaults(judgesim.Faults{}) }()
	}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, group, db := "procs-"+sc.name+"-"+suffix, "procs-"+sc.name+"-"+suffix, "procs_"+sc.name+"_"+suffix
	kc := &kafka.Client{Addr: kafka.TCP(st.kafka.addr), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	pr := &procsRun{scenarioRun: &scenarioRun{st: st, bin: bin, dir: t.TempDir(), kc: kc, group: group, topic: topic, db: db,
		admin: map[*proc]string{}, last: map[*proc]counters{}, killed: map[*proc]bool{}, ahead: -1}, stopped: map[*proc]bool{}}
	pr.base = raterdConfig(st, topic, group, db, simURL)
	migrateCfg := filepath.Join(pr.dir, "migrate.yaml")
	if err := os.WriteFile(migrateCfg, []byte(pr.base+"admin: {listen: \"off\"}\n"), 0o644); err != nil {
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
	pr.conn = conn
	o := procsOutcome{}
	o.control = sc.control
	createTopicN(t, kc, topic, topologyPartitions)

	values, _ := traffic(sc.name, n+600*producePace*10)
	invalidValues := invalidSet(values)
	prod := newProducer([]string{st.kafka.addr}, topic, values, &kafka.Transport{})
	defer prod.w.Close()
	prefill := n / 2
	prod.writeUntil(t, prefill)
	pr.prefillRows = uint64((prefill - prefill/invalidEvery) * evaluators)

	started := time.Now()
	for range topologyMembers {
		pr.startRaterd(t)
	}
	defer func() {
		for _, p := range pr.processes() {
			_ = p.stop(syscall.SIGKILL, 5*time.Second)
		}
	}()

	// Sample the group every ~100 ms from the start to the end of the drain.
	stopSampling, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(100 * time.Millisecond):
				pr.sample()
			}
		}
	}()
	defer func() {
		select {
		case <-stopSampling:
		default:
			close(stopSampling)
			<-sampled
		}
	}()

	// Produce on from the start until the last event is over.
	stopProducing := prod.steadily(producePace)
	defer func() { _ = stopProducing() }() // on a t.Fatal before the check below
	if !waitFor(drainTimeout, func() bool { return float64(pr.rawRows()) >= sc.at*float64(pr.prefillRows) }) {
		t.Fatalf("never reached %.0f%% of the prefill's rows; raterd log:\n%s", 100*sc.at, pr.procs[0].tail(30))
	}
	pr.allFetching()
	fromFault := prod.next
	faultStart := time.Now()
	sc.inject(t, pr)
	// Steady traffic a little longer, so that the last event's window (its fetch gap)
	// is not cut short nor ends in the burst of the rest of the records.
	time.Sleep(topologyTail)
	windowEnd := time.Now()
	faultTime := windowEnd.Sub(faultStart)
	if err := stopProducing(); err != nil {
		t.Fatal(err)
	}
	o.duringFault, o.faultTime = prod.next-fromFault, faultTime
	prod.writeUntil(t, n)
	o.produced, o.retries = prod.next, prod.retries

	ends := endOffsetsN(t, kc, topic, topologyPartitions)
	valid, invalid, dups := sourceTallyOn(t, []string{st.kafka.addr}, topic, ends, func(v []byte) bool { return invalidValues[string(v)] })
	o.sourceDups = dups
	o.fault, o.expected, o.invalid = sc.fault, uint64(valid*evaluators), invalid
	var drainProblem string
	o.drain, drainProblem = waitDrained(t, kc, conn, group, topic, db, ends, o.expected, started, nil)
	close(stopSampling)
	<-sampled

	// Per event: the fetch gap until the next event (the last one: until the end of
	// the steady traffic) and the rows redelivered until the next event (the last one:
	// until now, the drain done).
	endDups := pr.dups()
	pr.smu.Lock()
	samples := append([]fetchSample(nil), pr.samples...)
	pr.smu.Unlock()
	for i, ev := range pr.events {
		to, toDups := windowEnd, endDups
		if i+1 < len(pr.events) {
			to, toDups = pr.events[i+1].at, pr.events[i+1].dupsAt
		}
		ev.gap = fetchGap(samples, ev.at, to)
		ev.redeliver = toDups - min(toDups, ev.dupsAt)
	}
	o.events = pr.events

	// The last generation, before the survivors stop (each stop rebalances): from the
	// logs, and from the group coordinator's view of who owns which partition.
	pr.scrapeAll()
	running := map[string][]assignment{}
	for p, as := range pr.logAssignments() {
		if p.running() {
			running[p.name] = as
		}
	}
	o.lastGen, o.lastMembers, o.lastSum = lastGeneration(running)
	if len(pr.events) > 0 {
		o.laterGens = o.lastGen - pr.events[len(pr.events)-1].generation
	}
	for _, p := range pr.processes() {
		b, _ := os.ReadFile(p.log)
		o.kafkaWarnings += kafkaClientWarnings(string(b))
		if dir := os.Getenv("RATERD_FAULTS_LOGS"); dir != "" && dir != "1" {
			_ = os.WriteFile(filepath.Join(dir, "procs-"+sc.name+"-"+p.name+".log"), b, 0o644)
		}
	}
	owners, state, err := groupOwners(kc, group, topic)
	if err != nil {
		o.ownership = err.Error()
	} else if o.ownership = ownershipProblem(owners, topologyPartitions); o.ownership == "" {
		o.ownership = fmt.Sprintf("%s, each of %d partitions owned by one of %d members", state, topologyPartitions, len(owners))
	} else {
		o.ownershipBad = true
	}
	usage := pr.totals()
	var onTopic int64
	for _, end := range ends {
		onTopic += end
	}
	o.refetched = int64(usage.fetched) - onTopic
	if sc.name == "kill" || sc.control != "" {
		pr.fact(o.refetched > 0, "the group fetched %d messages again after the kill", o.refetched)
	}
	spared := map[*proc]bool{}
	for p := range pr.stopped {
		spared[p] = true
	}
	for p := range pr.killed {
		spared[p] = true
	}
	o.crashed = pr.stopSurvivors(spared)
	o.committedToEnd = reachedEnd(committedN(ctx, kc, group, topic, topologyPartitions), ends)
	lagOut, lagErr := exec.Command(bin, "lag", "--config", migrateCfg).CombinedOutput()
	o.lag = strings.TrimSpace(string(lagOut))
	if i := strings.LastIndex(o.lag, "\n"); i >= 0 {
		o.lag = o.lag[i+1:]
	}
	checkRows(t, conn, db, &o.outcome)
	o.duplicates -= min(o.duplicates, uint64(dups*evaluators))
	o.rawOverFinal = int64(countUint(t, conn, "SELECT count() FROM "+db+".scores")) - int64(o.found)
	o.deadTopic, o.dlqMsgs = deadLetterTopicN(t, st.kafka.addr, sinkkafka.DLQTopic(topic), topologyPartitions)
	o.deadTable = countUint(t, conn, "SELECT uniqExact(topic, partition, offset) FROM "+db+".dead_letters")

	add := func(prop property, format string, args ...any) {
		o.problems = append(o.problems, problem{prop: prop, text: fmt.Sprintf(format, args...)})
	}
	if len(pr.events) == 0 || len(pr.misses) > 0 {
		add(propExercised, "%s", strings.Join(pr.misses, "; "))
	}
	o.met = strings.Join(pr.facts, "; ")
	o.usage = fmt.Sprintf("%.0f / %.0f", usage.redisRoundTrips, usage.judgeCalls)
	if usage.redisRoundTrips == 0 || usage.judgeCalls == 0 {
		add(propUnused, "%.0f Redis round trips, %.0f judge calls", usage.redisRoundTrips, usage.judgeCalls)
	}
	o.checkDrain(add, valid, invalid, lagOut, lagErr)
	if o.lastSum != topologyPartitions {
		add(propOwnership, "last generation %d: %d running members were assigned %d partitions, want %d", o.lastGen, o.lastMembers, o.lastSum, topologyPartitions)
	}
	if err != nil || o.ownershipBad {
		add(propOwnership, "group coordinator: %s", o.ownership)
	}
	if len(o.crashed) > 0 {
		add(propCrash, "%s", strings.Join(o.crashed, "; "))
	}
	if drainProblem != "" {
		add(propDrain, "%s", drainProblem)
	}
	if !o.pass() || os.Getenv("RATERD_FAULTS_LOGS") != "" {
		for _, p := range pr.processes() {
			t.Logf("%s (admin %s, last counters %+v) log tail:\n%s", p.name, pr.admin[p], pr.lastOf(p), p.tail(25))
		}
	}
	_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	return o
}

// propOwnership: every partition owned by exactly one member in the last generation.
const propOwnership property = "partition ownership"

// TestThreeProcesses runs the three-process scenarios on the private stack.
func TestThreeProcesses(t *testing.T) {
	if os.Getenv("RATERD_TOPOLOGY_RECORDS") == "" {
		t.Skip("opt-in: scripts/topology.sh (RATERD_TOPOLOGY_RECORDS) runs it, several minutes")
	}
	n := recordCount(t, "RATERD_TOPOLOGY_RECORDS", 20_000, 2000)
	start, loadBefore := time.Now(), loadAverage()
	testkit.Service(t, "RATERD_TEST_KAFKA_LIBS", "Kafka jars")
	bins := &binaries{dir: t.TempDir(), built: map[string]string{}}
	if _, err := bins.get("raterd"); err != nil {
		t.Fatal(err)
	}
	st := startStack(t)
	simURL, sim := testkit.StartJudgesim(t, testkit.FastJudgesim)

	var results []procsOutcome
	for _, sc := range procScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			o := runProcScenario(t, st, bins, sim, simURL, sc, n)
			results = append(results, o)
			for _, ev := range o.events {
				t.Logf("%s: %s at %s: generation %d, %d members, assignment %.2f s, fetch gap %.2f s, %d rows redelivered",
					sc.name, ev.what, ev.at.Format("15:04:05.000"), ev.generation, ev.members, ev.assignment.Seconds(), ev.gap.Seconds(), ev.redeliver)
			}
			if sc.control != "" {
				if !o.failedOn(sc.control) {
					t.Errorf("negative control %s did not fail on %s, the property it breaks: the test no longer catches that bug (outcome: %s)",
						sc.name, sc.control, o.detail())
				}
				return
			}
			if !o.pass() {
				t.Errorf("%s: %s", sc.fault, o.detail())
			}
		})
	}
	table := procsTable(results, n, time.Since(start), loadBefore, loadAverage())
	t.Log("\n" + table)
	if *deploymentDoc != "" && len(results) > 0 {
		if err := rewriteBetween(*deploymentDoc, topologyBegin, topologyEnd, table); err != nil {
			t.Fatal(err)
		}
	}
}

// spread is "min / median / max" of xs formatted by f.
func spread[T any](xs []T, less func(a, b T) int, f func(T) string) string {
	if len(xs) == 0 {
		return "n/a"
	}
	s := slices.Clone(xs)
	slices.SortFunc(s, less)
	return f(s[0]) + " / " + f(s[len(s)/2]) + " / " + f(s[len(s)-1])
}

func durations(evs []*rebalanceEvent, of func(*rebalanceEvent) time.Duration) string {
	var ds []time.Duration
	for _, ev := range evs {
		ds = append(ds, of(ev))
	}
	return spread(ds, func(a, b time.Duration) int { return int(a - b) }, func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) })
}

// loadAverage is the machine's 1-minute load average, as /proc/loadavg gives it ("?"
// where there is none).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func procsTable(results []procsOutcome, n int, took time.Duration, loadBefore, loadAfter string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Command: `RATERD_TOPOLOGY_RECORDS=%d scripts/topology.sh`. One Kafka broker, a topic of %d partitions (one invalid record in %d), %d raterd processes in one group (five checks and a judgesim model judge behind Redis), Redis and ClickHouse single servers, all on this one machine. Each scenario produces %d records before raterd starts, %d every 100 ms until %.0f s after its last event settled, then up to %d; the scenarios took %.0f s in all, stack start included. Load average (1 min) %s at the start, %s at the end on %d CPUs: on a machine shared with other work (a CI run, other test suites) the times are upper bounds of what the rebalances cost, not a benchmark.\n\n",
		n, topologyPartitions, invalidEvery, topologyMembers, n/2, producePace, topologyTail.Seconds(), n, took.Seconds(), loadBefore, loadAfter, runtime.NumCPU())
	b.WriteString("| scenario | events | assignment time min / median / max | fetch gap min / median / max | rows redelivered min / median / max | messages fetched twice | rows written twice in all / not yet merged | records produced (during the events) | rows expected / found (FINAL) | missing / extra | dead letters table / topic / expected | last generation: members, partitions (logs); the coordinator | generations after the last event settled / Kafka client warnings | committed to end / `raterd lag` | crashes | outcome |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |\n")
	for _, o := range results {
		verdict, crashes := o.verdict(), o.crashes()
		redo := spread(o.events, func(a, c *rebalanceEvent) int { return int(a.redeliver) - int(c.redeliver) },
			func(ev *rebalanceEvent) string { return strconv.FormatUint(ev.redeliver, 10) })
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %d | %d / %d | %d (%d) | %d / %d | %d / %d | %d / %d / %d | generation %d: %d, %d; %s | %d / %d | %s / %s | %s | %s |\n",
			o.fault, len(o.events), durations(o.events, func(ev *rebalanceEvent) time.Duration { return ev.assignment }),
			durations(o.events, func(ev *rebalanceEvent) time.Duration { return ev.gap }), redo,
			o.refetched, o.duplicates, o.rawOverFinal, o.produced, o.duringFault, o.expected, o.found, o.missing, o.extra, o.deadTable, o.deadTopic, o.invalid,
			o.lastGen, o.lastMembers, o.lastSum, o.ownership, o.laterGens, o.kafkaWarnings, yesNo(o.committedToEnd), o.lag, crashes, verdict)
	}
	b.WriteString("\nEvery event, with the evidence that it happened:\n\n| scenario | event | evidence | assignment time | fetch gap | rows redelivered |\n| --- | --- | --- | ---: | ---: | ---: |\n")
	for _, o := range results {
		for _, ev := range o.events {
			fmt.Fprintf(&b, "| %s | %s | %s | %.2f s | %.2f s | %d |\n", strings.SplitN(o.fault, ":", 2)[0], ev.what, strings.Join(ev.evidence, "; "),
				ev.assignment.Seconds(), ev.gap.Seconds(), ev.redeliver)
		}
	}
	b.WriteString("\nAssignment time: from the event (SIGTERM sent, kill -9 sent, processes started) to the last `kafka group: partitions assigned` log line of the generation it caused, in which the running processes' assignments sum to every partition. Fetch gap: the longest interval from the event to the next (the last: to the end of the steady traffic) in which the group's fetched count (`raterd_consumer_records_total` summed over the processes, sampled about every 100 ms; the stall lasted at least this long and less than one sampling interval more) did not grow while the committed offsets were below the end offsets; after a kill -9 only the dead member's partitions stall (until the session timeout, 6 s here, lets the group rebalance) while the others keep fetching theirs, so the fetch gap can stay below the assignment time there. Rows redelivered: rows inserted more than once (`scores_hourly`'s inserted rows minus the distinct (record, evaluator) pairs) gained from the event to the next one (the last: to the end of the drain, so they include what any later rebalance replayed). Generations after the last event settled: rebalances no event of the scenario asked for (a member that missed its session or rebalance timeout on the loaded machine is dropped from the group, and the work it had not committed is done again by the partitions' next owner); Kafka client warnings: WARN/ERROR lines of the processes' Kafka clients and commits. Messages fetched twice: the processes' fetched counts (a killed one's up to its scrape just before the kill, so a lower bound) minus the messages on the topic. Rows written twice in all: the same over the whole scenario (beyond records on the topic twice); not yet merged: `count()` of `scores` minus `count()` of `scores FINAL` after the drain, which background merges lower as they collapse replays, so it is only a lower bound and the counts use `scores_hourly`. Rows expected: one per evaluator for every distinct valid record id on the topic. Last generation: the running members' assignment lines of the highest generation before the survivors are stopped, which must sum to the partitions; and the group coordinator's assignment (DescribeGroups), in which every partition must be owned by exactly one member.\n")
	return b.String()
}
