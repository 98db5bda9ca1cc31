// Package faults is raterd's fault-injection suite: real raterd processes drain a topic
// while their services fail under them, and the outcome is counted exactly.
package faults

// Each scenario produces a fresh topic of drainRecords records (about 1% invalid), runs
// the real raterd binary on it against the private stack (stack_test.go) with five
// built-in checks and one model judge (a judgesim pool behind the Redis cache), injects
// one fault mid-drain, waits until the group's committed offsets reach the end, stops
// raterd with SIGTERM and checks:
//   - the fault was met: raterd's own metrics (scraped from each process's admin port)
//     or log show it (Redis calls failing during a Redis outage, inserts refused during a
//     ClickHouse outage, …), a killed process died of SIGKILL with work in flight;
//   - Redis and the judge were used at all;
//   - every valid record has exactly one row per evaluator in scores FINAL: none
//     missing (rows lost), none extra (duplicates);
//   - every invalid record is dead-lettered exactly once (distinct source offsets, in the
//     dead_letters table and on the dead-letter topic);
//   - no raterd process exited with an error except the ones killed on purpose;
//   - the committed offsets reached the end of every partition.
// One negative control per promise runs a raterd built with that promise broken (a
// build tag) and must fail on the property that promise guards; if it passes, or fails
// only on something else, the suite fails: it would no longer catch that bug.
//
// Run it alone with scripts/faults.sh, which also rewrites the table in
// docs/reliability.md (-reliability-doc).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

var reliabilityDoc = flag.String("reliability-doc", "", "rewrite the fault table in this markdown file (docs/reliability.md)")

const (
	partitions   = 4
	invalidEvery = 97 // one invalid record in 97
	// drainTimeout bounds one scenario's drain after its fault.
	drainTimeout = 4 * time.Minute
)

// drainRecords is how many records each scenario drains: 20,000 (enough for every fault
// to meet work in flight, and for .ci/run's time budget) unless RATERD_FAULTS_RECORDS
// asks for another number (fewer while developing, more for a longer drain).
func drainRecords(t *testing.T) int { return recordCount(t, "RATERD_FAULTS_RECORDS", 20_000, 1000) }

// recordCount is the number of records the environment variable env asks for (at least
// minimum), or def when it is unset.
func recordCount(t *testing.T, env string, def, minimum int) int {
	s := os.Getenv(env)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < minimum {
		t.Fatalf("%s=%q: want a number of at least %d", env, s, minimum)
	}
	return n
}

// stopSurvivors stops, with SIGTERM as an operator would, every raterd of r not in spared
// (killed or stopped on purpose), and returns the crashes: a process that exited early or
// with an error.
func (r *scenarioRun) stopSurvivors(spared map[*proc]bool) []string {
	var crashed []string
	for _, p := range r.processes() {
		if spared[p] {
			continue
		}
		if !p.running() {
			crashed = append(crashed, fmt.Sprintf("%s exited early (%v)", p.name, p.err))
			continue
		}
		if err := p.stop(syscall.SIGTERM, 40*time.Second); err != nil {
			crashed = append(crashed, fmt.Sprintf("%s: %v", p.name, err))
		}
	}
	return crashed
}

// checkEvaluators (evaluator name, heuristic check) apply to every valid record: no
// match rules, no sampling. The built-in checks skip the cache (they are cheaper to run
// again), so every scenario also runs judgeEvaluator on the judgesim pool, whose
// verdicts the cache keeps in Redis.
var checkEvaluators = [][2]string{{"refusal", "refusal"}, {"pii", "pii"}, {"json_validity", "json"}, {"truncated", "truncated"}, {"repetition", "repetition"}}

const judgeEvaluator = "helpfulness"

// evaluators is how many rows each valid record gets: the checks and the judge.
const evaluators = 6

// traffic returns n record values and how many of them are invalid. Most prompts and
// answers repeat (600 distinct pairs), as live traffic does, so the cache has hits; one
// record in 20 asks a question of its own, so the judge's cache misses and asks Redis
// (and the judge pool) all through the drain, not only in its first seconds.
func traffic(prefix string, n int) (values [][]byte, invalid int) {
	bad := []string{
		`{"model":"m","response":"unterminated`,
		`{"response":"no model here"}`,
		"{\"model\":\"m\",\"response\":\"bad \xff utf8\"}",
		`[1,2,3]`,
	}
	answers := make([]string, 40)
	for i := range answers {
		switch i % 5 {
		case 0:
			answers[i] = fmt.Sprintf("I'm sorry, but I can't help with request type %d.", i)
		case 1:
			answers[i] = fmt.Sprintf(`{"ticket": %d, "status": "open", "owner": "Ada"}`, i)
		case 2:
			answers[i] = fmt.Sprintf("Write to support%d@example.com or call +1 415 555 01%02d for help.", i, i)
		case 3:
			answers[i] = strings.Repeat(fmt.Sprintf("Step %d: open Settings, choose Security, click Reset. ", i), 4)
		default:
			answers[i] = fmt.Sprintf("The quarterly report %d shows revenue grew by", i)
		}
	}
	ts := time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)
	for i := range n {
		if i%invalidEvery == invalidEvery-1 {
			values = append(values, []byte(bad[invalid%len(bad)]))
			invalid++
			continue
		}
		q := i % 300
		if i%20 == 1 {
			q = 300 + i // asked once
		}
		prompt := fmt.Sprintf("Customer question %d: %s", q, strings.Repeat("how do I reset my password and keep my data? ", 4+q%7))
		v := fmt.Sprintf(`{"id":"%s-%d","timestamp":%q,"model":"support-llm-v%d","app":"app-%d","prompt":%q,"response":%q}`,
			prefix, i, ts, 6+i%2, i%3, prompt, answers[i%len(answers)])
		values = append(values, []byte(v))
	}
	return values, invalid
}

// property is what a check guards; a negative control must fail on its own.
type property string

const (
	propRowsLost    property = "rows lost"
	propDuplicates  property = "duplicates"
	propDeadLetters property = "dead letters"
	propCommitted   property = "committed to end"
	propCrash       property = "crashes"
	propDrain       property = "drain"
	propExercised   property = "fault not met"
	propUnused      property = "cache or judge unused"
)

// problem is one failed check.
type problem struct {
	prop property
	text string
}

// controlTag is a negative control's build tag: each breaks one promise.
func controlTag(binary string) (string, bool) {
	switch binary {
	case "raterd-commit-first":
		return "raterd_negative_control", true // consumer/negative_control_on.go
	case "raterd-drop-dlq":
		return "raterd_drop_dead_letters", true // consumer/dead_letter_control_on.go
	case "raterd-no-collapse":
		return "raterd_no_collapse", true // sinks/clickhouse/collapse_control_on.go
	}
	return "", false
}

// scenario is one fault and when it strikes.
type scenario struct {
	name        string
	fault       string  // the docs table's description
	at          float64 // fraction of the expected rows written when the fault strikes
	processes   int     // raterd processes in the group (default 1)
	binary      string  // "raterd" or a negative control's build (controlTag)
	control     property
	faultyJudge bool // the judge pool fails 30% of calls and hangs 2% throughout
	// inject runs the fault; it returns when the fault is over (a service is back, a
	// killed process restarted or left to the group).
	inject func(t *testing.T, r *scenarioRun)
	// met says whether raterd really met the fault, with the evidence for the table.
	met func(r *scenarioRun, e evidence) (string, bool)
	// proxied (network faults, network_integration_test.go): raterd reaches ClickHouse,
	// Redis and the judge pool through fault proxies, which inject sets through r.net.
	proxied bool
}

// evidence is what the run saw of a fault: counter deltas from the fault's start to its
// end (during) and to the end of the drain (after), the totals, and the raterd logs
// written since the fault began.
type evidence struct {
	during, after, total counters
	log                  string
}

// scenarioRun is the state of one scenario while it runs.
type scenarioRun struct {
	sc     scenario
	st     *stack
	bin    string
	dir    string
	base   string // the config without its admin section
	kc     *kafka.Client
	group  string
	topic  string
	db     string
	mu     sync.Mutex // guards procs, admin and last: the sampler reads them while faults add processes
	procs  []*proc
	admin  map[*proc]string   // each process's admin (metrics) address
	last   map[*proc]counters // each process's last successful scrape
	killed map[*proc]bool
	kills  []string // what each kill -9 hit, for the evidence
	misses []string // faults that missed: a kill of a process not running or not working
	notes  []string // other evidence the fault gathered
	// ahead is, for a kill during a ClickHouse outage, how many messages the group had
	// committed with neither score rows nor a dead letter in ClickHouse (-1: not measured).
	ahead int64
	// net holds a proxied scenario's fault proxies (network_integration_test.go).
	net *netProxies
}

func (r *scenarioRun) processes() []*proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*proc(nil), r.procs...)
}

func (r *scenarioRun) startRaterd(t *testing.T) *proc {
	t.Helper()
	r.mu.Lock()
	n := len(r.procs)
	r.mu.Unlock()
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := filepath.Join(r.dir, fmt.Sprintf("raterd-%d.yaml", n))
	if err := os.WriteFile(cfg, []byte(r.base+fmt.Sprintf("admin: {listen: %q}\n", admin)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: fmt.Sprintf("raterd-%d", n), dir: r.dir, log: filepath.Join(r.dir, fmt.Sprintf("raterd-%d.log", n)),
		args: []string{r.bin, "run", "--config", cfg}}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.procs = append(r.procs, p)
	r.admin[p] = admin
	r.mu.Unlock()
	return p
}

// scrape reads p's metrics if it is running; a failed scrape keeps the last one.
func (r *scenarioRun) scrape(p *proc) {
	if !p.running() {
		return
	}
	r.mu.Lock()
	addr := r.admin[p]
	r.mu.Unlock()
	s, err := scrapeMetrics(context.Background(), addr)
	if err != nil {
		return
	}
	c := countersOf(s)
	c.scrapesSucceeded = 1
	r.mu.Lock()
	r.last[p] = c
	r.mu.Unlock()
}

func (r *scenarioRun) scrapeAll() {
	for _, p := range r.processes() {
		r.scrape(p)
	}
}

// totals sums every process's last scrape.
func (r *scenarioRun) totals() counters {
	r.mu.Lock()
	defer r.mu.Unlock()
	var c counters
	for _, pc := range r.last {
		c = c.add(pc)
	}
	return c
}

func (r *scenarioRun) lastOf(p *proc) counters {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[p]
}

// kill sends SIGKILL to p (scraping it first) and records whether it really died of it
// while working.
func (r *scenarioRun) kill(p *proc) {
	r.scrape(p)
	wasRunning := p.running()
	r.killed[p] = true
	err := p.stop(syscall.SIGKILL, 10*time.Second)
	fetched := r.lastOf(p).fetched
	var ee *exec.ExitError
	if wasRunning && errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL && fetched > 0 {
			r.kills = append(r.kills, fmt.Sprintf("%s died of SIGKILL after fetching %.0f messages", p.name, fetched))
			return
		}
	}
	r.misses = append(r.misses, fmt.Sprintf("kill of %s missed (running %v, exit %v, %.0f fetched)", p.name, wasRunning, err, fetched))
}

// killsMet is the evidence of scenarios whose fault is a kill -9.
func killsMet(r *scenarioRun, _ evidence) (string, bool) {
	all := append(append(append([]string(nil), r.kills...), r.misses...), r.notes...)
	return strings.Join(all, "; "), len(r.kills) > 0 && len(r.misses) == 0
}

// restart stops a service (SIGTERM), keeps it down for down, and starts it again.
func restart(t *testing.T, name string, p *proc, down time.Duration, start func() error) {
	t.Helper()
	if err := p.stop(syscall.SIGTERM, 60*time.Second); err != nil && !isSignalExit(err) {
		t.Logf("%s exited with %v when stopped", name, err)
	}
	time.Sleep(down)
	if err := start(); err != nil {
		t.Fatalf("restart %s: %v", name, err)
	}
}

func isSignalExit(err error) bool {
	ee, ok := err.(*exec.ExitError)
	return ok && !ee.Exited()
}

// commitsAhead counts the messages below the group's committed offsets that have
// neither a score row nor a dead letter in ClickHouse: work a crash has lost for good.
// Called with no raterd running, so neither side moves.
func commitsAhead(t *testing.T, r *scenarioRun) int64 {
	t.Helper()
	c := committed(context.Background(), r.kc, r.group, r.topic)
	if c == nil {
		t.Fatal("committed offsets unreadable after the kill")
	}
	conn, err := clickhouse.Open(context.Background(), r.st.ch.config(r.db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var total int64
	for p, off := range c {
		if off <= 0 {
			continue
		}
		have := countUint(t, conn, fmt.Sprintf("SELECT uniqExact(o) FROM (SELECT toInt64(offset) AS o FROM %[1]s.scores WHERE partition = %[2]d AND offset < %[3]d UNION ALL SELECT toInt64(offset) AS o FROM %[1]s.dead_letters WHERE partition = %[2]d AND offset < %[3]d)", r.db, p, off))
		total += off - int64(have)
	}
	return total
}

func scenarios() []scenario {
	killAndRestart := func(t *testing.T, r *scenarioRun) {
		r.kill(r.procs[len(r.procs)-1])
		r.startRaterd(t)
	}
	// clickHouseOutageKill stops ClickHouse, waits until raterd has met the outage
	// (failed inserts) and three seconds more — fetching reaches its in-flight bounds, so
	// a build that commits before writing has committed records whose rows are nowhere —
	// then kills raterd with SIGKILL and starts ClickHouse. Before raterd restarts it
	// measures how far the group's commits ran ahead of what ClickHouse holds.
	clickHouseOutageKill := func(t *testing.T, r *scenarioRun) {
		p := r.procs[len(r.procs)-1]
		r.scrape(p)
		errs := r.lastOf(p).insertErrors
		if err := r.st.ch.p.stop(syscall.SIGTERM, 60*time.Second); err != nil && !isSignalExit(err) {
			t.Logf("clickhouse exited with %v when stopped", err)
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && r.lastOf(p).insertErrors == errs; {
			time.Sleep(100 * time.Millisecond)
			r.scrape(p)
		}
		time.Sleep(3 * time.Second)
		r.kill(p)
		if err := r.st.ch.start(); err != nil {
			t.Fatalf("restart clickhouse: %v", err)
		}
		r.ahead = commitsAhead(t, r)
		r.notes = append(r.notes, fmt.Sprintf("%d messages committed with no row or dead letter in ClickHouse at the kill", r.ahead))
		r.startRaterd(t)
	}
	clickHouseMet := func(r *scenarioRun, e evidence) (string, bool) {
		return fmt.Sprintf("%.0f inserts refused", e.during.insertErrors), e.during.insertErrors > 0
	}
	clickHouseKillMet := func(r *scenarioRun, e evidence) (string, bool) {
		ch, chOK := clickHouseMet(r, e)
		kills, killOK := killsMet(r, e)
		return ch + "; " + kills, chOK && killOK
	}
	// The commit-first control's fault is met only if the kill struck while its commits
	// were ahead of its writes: otherwise it could not lose rows.
	commitsAheadMet := func(r *scenarioRun, e evidence) (string, bool) {
		s, ok := clickHouseKillMet(r, e)
		return s, ok && r.ahead > 0
	}
	noFault := func(*scenarioRun, evidence) (string, bool) { return "no fault", true }
	return []scenario{
		{name: "none", fault: "none (control)", inject: func(*testing.T, *scenarioRun) {}, met: noFault},
		{name: "kill10", fault: "kill -9 of raterd at 10%, restart", at: 0.10, inject: killAndRestart, met: killsMet},
		{name: "kill50", fault: "kill -9 of raterd at 50%, restart", at: 0.50, inject: killAndRestart, met: killsMet},
		{name: "kill90", fault: "kill -9 of raterd at 90%, restart", at: 0.90, inject: killAndRestart, met: killsMet},
		{name: "kafka", fault: "Kafka broker restart at 50% (down 5 s)", at: 0.50, inject: func(t *testing.T, r *scenarioRun) {
			restart(t, "kafka", r.st.kafka.p, 5*time.Second, r.st.kafka.start)
		}, met: func(r *scenarioRun, e evidence) (string, bool) {
			warnings := kafkaClientWarnings(e.log)
			return fmt.Sprintf("%.0f commits failed, %d Kafka client errors logged", e.after.commitErrors, warnings),
				e.after.commitErrors > 0 || warnings > 0
		}},
		{name: "redis", fault: "Redis stopped at 30% for 5 s (restarts empty)", at: 0.30, inject: func(t *testing.T, r *scenarioRun) {
			restart(t, "redis", r.st.redis.p, 5*time.Second, r.st.redis.start)
		}, met: func(r *scenarioRun, e evidence) (string, bool) {
			return fmt.Sprintf("%.0f Redis calls failed", e.during.redisErrors), e.during.redisErrors > 0
		}},
		{name: "clickhouse", fault: "ClickHouse stopped at 30% for 30 s", at: 0.30, inject: func(t *testing.T, r *scenarioRun) {
			restart(t, "clickhouse", r.st.ch.p, 30*time.Second, r.st.ch.start)
		}, met: clickHouseMet},
		{name: "chkill", fault: "ClickHouse stopped at 30%, kill -9 of raterd during the outage, restart", at: 0.30,
			inject: clickHouseOutageKill, met: clickHouseKillMet},
		{name: "judge", fault: "judge pool: 30% errors, 2% hung requests, throughout", faultyJudge: true, inject: func(*testing.T, *scenarioRun) {},
			met: func(r *scenarioRun, e evidence) (string, bool) {
				failed := e.total.judgeRetryable + e.total.judgeCanceled
				return fmt.Sprintf("%.0f judge attempts failed", failed), failed > 0
			}},
		{name: "twoprocs", fault: "two raterd in the group, one kill -9 at 50%", at: 0.50, processes: 2, inject: func(t *testing.T, r *scenarioRun) {
			// Both members must be working, or this is a kill of a lone member: wait a
			// little for the second to fetch (at the start both join at once).
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				r.scrapeAll()
				if r.lastOf(r.procs[0]).fetched > 0 && r.lastOf(r.procs[1]).fetched > 0 {
					break
				}
			}
			for _, p := range r.procs {
				if r.lastOf(p).fetched == 0 {
					r.misses = append(r.misses, p.name+" had fetched nothing before raterd-0 was killed")
				}
			}
			r.kill(r.procs[0])
		}, met: killsMet},
		{name: "join", fault: "a second raterd joins the group at 30% (rebalance)", at: 0.30, inject: func(t *testing.T, r *scenarioRun) {
			r.startRaterd(t)
		}, met: func(r *scenarioRun, e evidence) (string, bool) {
			n := r.lastOf(r.procs[1]).fetched
			return fmt.Sprintf("raterd-1 fetched %.0f messages after joining", n), n > 0
		}},
		{name: "negative", fault: "NEGATIVE CONTROL, commits before writing: ClickHouse stopped at 30%, kill -9 of raterd during the outage, restart",
			at: 0.30, binary: "raterd-commit-first", control: propRowsLost, inject: clickHouseOutageKill, met: commitsAheadMet},
		{name: "negative_dlq", fault: "NEGATIVE CONTROL, drops dead letters: no fault",
			binary: "raterd-drop-dlq", control: propDeadLetters, inject: func(*testing.T, *scenarioRun) {}, met: noFault},
		{name: "negative_collapse", fault: "NEGATIVE CONTROL, scores without ReplacingMergeTree: kill -9 at 50%, restart",
			at: 0.50, binary: "raterd-no-collapse", control: propDuplicates, inject: killAndRestart, met: killsMet},
	}
}

// outcome is one row of the fault table.
type outcome struct {
	fault                         string
	control                       property
	expected, found, pairs        uint64
	missing, extra, duplicates    uint64
	records, uneven               uint64 // distinct records in scores FINAL; records with another number of rows
	invalid                       int
	deadTable, deadTopic, dlqMsgs uint64
	met                           string
	usage                         string        // Redis round trips / judge calls, all processes
	recovery                      time.Duration // 0 for faults that last the whole drain
	drain                         time.Duration // first raterd start to the committed end
	peakRSS                       int64         // largest resident set of any raterd process, bytes
	committedToEnd                bool
	crashed                       []string
	problems                      []problem
}

func (o outcome) pass() bool { return len(o.problems) == 0 }

// failedOn reports whether a check guarding prop failed.
func (o outcome) failedOn(prop property) bool {
	for _, p := range o.problems {
		if p.prop == prop {
			return true
		}
	}
	return false
}

func (o outcome) detail() string {
	var s []string
	for _, p := range o.problems {
		s = append(s, string(p.prop)+": "+p.text)
	}
	return strings.Join(s, "; ")
}

func TestFaultInjection(t *testing.T) {
	n := drainRecords(t)
	if len(checkEvaluators)+1 != evaluators {
		t.Fatalf("evaluators is %d; the config has %d checks and one judge", evaluators, len(checkEvaluators))
	}
	testkit.Service(t, "RATERD_TEST_KAFKA_LIBS", "Kafka jars")
	bins := &binaries{dir: t.TempDir(), built: map[string]string{}}
	if _, err := bins.get("raterd"); err != nil {
		t.Fatal(err)
	}
	st := startStack(t)
	sim, simURL := startFaultySimulator(t)

	var results []outcome
	for _, sc := range scenarios() {
		ok := t.Run(sc.name, func(t *testing.T) {
			if sc.faultyJudge {
				if err := sim.SetFaults(judgesim.Faults{ErrorRate: 0.3, HangRate: 0.02}); err != nil {
					t.Fatal(err)
				}
				defer func() { _ = sim.SetFaults(judgesim.Faults{}) }()
			}
			o := runScenario(t, st, bins, sc, n, simURL)
			results = append(results, o)
			if sc.control != "" {
				if !o.failedOn(sc.control) {
					t.Errorf("negative control %s did not fail on %s, the property it breaks: the suite no longer catches that bug (outcome: %s)",
						sc.name, sc.control, o.detail())
				}
				return
			}
			if !o.pass() {
				t.Errorf("%s: %s", sc.fault, o.detail())
			}
		})
		if !ok {
			t.Logf("scenario %s failed; continuing with the others", sc.name)
		}
	}
	table := faultTable(results, n)
	t.Log("\n" + table)
	// None selected (scripts/faults.sh -run for TestClickHouseRefusal's scenarios): keep the table.
	if *reliabilityDoc != "" && len(results) > 0 {
		if err := rewriteDoc(*reliabilityDoc, table); err != nil {
			t.Fatal(err)
		}
	}
}

// binaries builds the real raterd and the negative controls' builds, each when a
// scenario first needs it.
type binaries struct {
	dir   string
	built map[string]string
}

func (b *binaries) get(name string) (string, error) {
	if path, ok := b.built[name]; ok {
		return path, nil
	}
	path := filepath.Join(b.dir, name)
	args := []string{"build", "-o", path}
	if name != "raterd" {
		tag, ok := controlTag(name)
		if !ok {
			return "", fmt.Errorf("no build %q", name)
		}
		args = append(args, "-tags", tag)
	}
	cmd := exec.Command("go", append(args, "./cmd/raterd")...)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", name, err, out)
	}
	b.built[name] = path
	return path, nil
}

// startFaultySimulator serves an in-process judgesim whose faults the judge scenario sets.
func startFaultySimulator(t *testing.T) (*judgesim.Simulator, string) {
	t.Helper()
	url, sim := testkit.StartJudgesim(t, testkit.FastJudgesim)
	return sim, url
}

// raterdConfig is a scenario's config without its admin section, which each process
// gets of its own (startRaterd).
func raterdConfig(st *stack, topic, group, db, simURL string) string {
	evals := ""
	for _, e := range checkEvaluators {
		evals += fmt.Sprintf("  - {name: %s, judge: checks, check: %s}\n", e[0], e[1])
	}
	evals += "  - {name: " + judgeEvaluator + ", judge: sim, criteria: \"Is the answer helpful and correct?\"}\n"
	return fmt.Sprintf(`kafka:
  brokers: [%s]
  topics: [%s]
  group_id: %s
  batch: {max_records: 256, linger: 50ms}
  commit_interval: 200ms
  shutdown_timeout: 20s
  session_timeout: 6s
  rebalance_timeout: 10s
  retry_backoff_max: 2s
redis:
  addrs: [%s]
  key_prefix: "%s:"
clickhouse:
  addrs: [%s]
  database: %s
  insert_interval: 200ms
  write_timeout: 10s
judges:
  checks: {type: heuristic}
  sim:
    type: openai
    model: judgesim-faults
    endpoints: [{url: %q, max_in_flight: 32}]
    timeout: 2s
    max_attempts: 4
evaluators:
%s`, st.kafka.addr, topic, group, st.redis.addr, group, st.ch.addr, db, simURL, evals)
}

func runScenario(t *testing.T, st *stack, bins *binaries, sc scenario, n int, simURL string) outcome {
	t.Helper()
	ctx := context.Background()
	if sc.binary == "" {
		sc.binary = "raterd"
	}
	bin, err := bins.get(sc.binary)
	if err != nil {
		t.Fatal(err)
	}
	sc.processes = max(sc.processes, 1)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, group, db := "faults-"+sc.name+"-"+suffix, "faults-"+sc.name+"-"+suffix, "faults_"+sc.name+"_"+suffix
	kc := &kafka.Client{Addr: kafka.TCP(st.kafka.addr), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	r := &scenarioRun{sc: sc, st: st, bin: bin, dir: t.TempDir(), kc: kc, group: group, topic: topic,
		db: db, admin: map[*proc]string{}, last: map[*proc]counters{}, killed: map[*proc]bool{}, ahead: -1}
	r.base = raterdConfig(st, topic, group, db, simURL)
	if sc.proxied { // network faults: the config's service addresses become proxies'
		r.net = proxyServices(t, r, simURL)
	}

	// The build under test creates its own schema, as an operator's raterd migrate would
	// (a negative control's build creates its broken one).
	migrateCfg := filepath.Join(r.dir, "migrate.yaml")
	if err := os.WriteFile(migrateCfg, []byte(r.base+"admin: {listen: \"off\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "migrate", "--config", migrateCfg).CombinedOutput(); err != nil {
		t.Fatalf("%s migrate: %v\n%s", sc.binary, err, out)
	}
	conn, err := clickhouse.Open(ctx, st.ch.config(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	createTopic(t, kc, topic)
	values, invalid := traffic(sc.name, n)
	produce(t, st.kafka.addr, topic, values)
	ends := endOffsets(t, kc, topic)
	o := outcome{fault: sc.fault, control: sc.control, expected: uint64((n - invalid) * evaluators), invalid: invalid}

	started := time.Now()
	for range sc.processes {
		r.startRaterd(t)
	}
	defer func() { // never leave a raterd behind, whatever failed
		for _, p := range r.processes() {
			_ = p.stop(syscall.SIGKILL, 5*time.Second)
		}
	}()

	rawRows := func() (uint64, bool) {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var c uint64
		err := conn.QueryRow(qctx, "SELECT count() FROM "+db+".scores").Scan(&c)
		return c, err == nil
	}
	// Wait for the fault's moment, then inject it.
	deadline := time.Now().Add(drainTimeout)
	sampleRSS := func() {
		for _, p := range r.processes() {
			if p.running() {
				o.peakRSS = max(o.peakRSS, rss(p.cmd.Process.Pid))
			}
		}
	}
	for sc.at > 0 {
		sampleRSS()
		if c, ok := rawRows(); ok && float64(c) >= sc.at*float64(o.expected) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never reached %.0f%% of the rows before the fault; raterd log:\n%s", 100*sc.at, r.procs[0].tail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // sample during the fault too (a ClickHouse outage is where memory could grow)
		defer close(sampled)
		for i := 0; ; i++ {
			select {
			case <-stopSampling:
				return
			case <-time.After(100 * time.Millisecond):
				sampleRSS()
				if i%2 == 0 {
					r.scrapeAll() // a process killed later keeps its last counters
				}
			}
		}
	}()
	r.scrapeAll()
	before := r.totals()
	logStart := map[*proc]int64{}
	for _, p := range r.processes() {
		_, logStart[p] = logSince(p.log, 0)
	}
	sc.inject(t, r)
	faultEnd := time.Now()
	r.scrapeAll()
	during := r.totals().minus(before)

	// Drain: until the committed offsets reach the end and, for rows still being written,
	// scores FINAL has them all — or nothing moves any more (a negative control).
	recoverFrom := committed(ctx, kc, group, topic)
	var drainProblem string
	o.drain, drainProblem = waitDrained(t, kc, conn, group, topic, db, ends, o.expected, started, func(c map[int]int64) {
		if o.recovery == 0 && c != nil && recoverFrom != nil && movedEverywhere(recoverFrom, c, ends) {
			o.recovery = time.Since(faultEnd)
		}
		if c != nil && recoverFrom == nil {
			recoverFrom = c // Kafka was down at the fault's end
		}
	})
	close(stopSampling)
	<-sampled
	if sc.at == 0 {
		o.recovery = 0 // no moment to recover from: the fault (if any) lasts throughout
	} else if o.recovery == 0 && drainProblem == "" {
		o.recovery = time.Since(faultEnd)
	}

	// What the processes counted and logged, before they stop.
	r.scrapeAll()
	ev := evidence{during: during, after: r.totals().minus(before), total: r.totals()}
	for _, p := range r.processes() {
		text, _ := logSince(p.log, logStart[p])
		ev.log += text
	}

	// Stop the survivors as an operator would; any error exit is a crash.
	o.crashed = r.stopSurvivors(r.killed)
	o.committedToEnd = reachedEnd(committed(ctx, kc, group, topic), ends)
	checkRows(t, conn, db, &o)
	o.deadTopic, o.dlqMsgs = deadLetterTopic(t, st.kafka.addr, sinkkafka.DLQTopic(topic))
	o.deadTable = countUint(t, conn, "SELECT uniqExact(topic, partition, offset) FROM "+db+".dead_letters")

	add := func(prop property, format string, args ...any) {
		o.problems = append(o.problems, problem{prop: prop, text: fmt.Sprintf(format, args...)})
	}
	var met bool
	o.met, met = sc.met(r, ev)
	if !met {
		add(propExercised, "%s", o.met)
	}
	o.usage = fmt.Sprintf("%.0f / %.0f", ev.total.redisRoundTrips, ev.total.judgeCalls)
	if ev.total.scrapesSucceeded == 0 {
		add(propUnused, "no metrics scraped from any raterd")
	} else if ev.total.redisRoundTrips == 0 || ev.total.judgeCalls == 0 {
		add(propUnused, "%.0f Redis round trips, %.0f judge calls", ev.total.redisRoundTrips, ev.total.judgeCalls)
	}
	if o.missing > 0 {
		add(propRowsLost, "%d of %d (record, evaluator) pairs missing from scores FINAL", o.missing, o.expected)
	}
	if o.extra > 0 {
		add(propDuplicates, "scores FINAL has %d rows beyond one per (record, evaluator)", o.extra)
	}
	if o.missing == 0 && o.extra == 0 && (o.found != o.expected || o.pairs != o.expected || o.records != uint64(n-invalid) || o.uneven != 0) {
		add(propRowsLost, "scores FINAL has %d rows, %d (record, evaluator) pairs, %d records (%d with other than %d rows), want %d rows of %d records",
			o.found, o.pairs, o.records, o.uneven, evaluators, o.expected, n-invalid)
	}
	if o.deadTable != uint64(invalid) || o.deadTopic != uint64(invalid) {
		add(propDeadLetters, "%d in the table, %d on the topic, want %d distinct", o.deadTable, o.deadTopic, invalid)
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
		for _, p := range r.processes() {
			t.Logf("%s (admin %s, last counters %+v) log tail:\n%s", p.name, r.admin[p], r.lastOf(p), p.tail(25))
		}
	}
	if dir := os.Getenv("RATERD_FAULTS_LOGS"); dir != "" && dir != "1" {
		for _, p := range r.processes() {
			b, _ := os.ReadFile(p.log)
			_ = os.WriteFile(filepath.Join(dir, sc.name+"-"+p.name+".log"), b, 0o644)
		}
	}
	_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	return o
}

// waitDrained polls every 200 ms until the group's committed offsets reach ends and
// scores FINAL has expected rows, or the offsets are at the end and no row has arrived
// for 10 s (rows missing for good: a negative control), or drainTimeout passes (the
// problem it returns). tick, when set, sees each poll's committed offsets (nil when
// unreadable); ends has one entry per partition. drain is the time from started until
// the offsets first reached the end.
func waitDrained(t *testing.T, kc *kafka.Client, conn driver.Conn, group, topic, db string, ends map[int]int64, expected uint64,
	started time.Time, tick func(c map[int]int64)) (drain time.Duration, problem string) {
	t.Helper()
	ctx := context.Background()
	rawRows := func() (uint64, bool) {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var c uint64
		err := conn.QueryRow(qctx, "SELECT count() FROM "+db+".scores").Scan(&c)
		return c, err == nil
	}
	var lastRaw uint64
	lastChange := time.Now()
	deadline := time.Now().Add(drainTimeout)
	for {
		c := committedN(ctx, kc, group, topic, len(ends))
		if tick != nil {
			tick(c)
		}
		raw, ok := rawRows()
		if ok && raw != lastRaw {
			lastRaw, lastChange = raw, time.Now()
		}
		atEnd := c != nil && reachedEnd(c, ends)
		if atEnd && drain == 0 {
			drain = time.Since(started)
		}
		if atEnd && ok && finalRows(t, conn, db) == expected {
			return drain, ""
		}
		if atEnd && time.Since(lastChange) > 10*time.Second {
			return drain, "" // stalled with offsets at the end: rows are missing for good
		}
		if time.Now().After(deadline) {
			return drain, fmt.Sprintf("not done after %s (committed %v of %v)", drainTimeout, c, ends)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// rss returns the resident set size of a process in bytes (0 if unknown).
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func createTopic(t *testing.T, kc *kafka.Client, topic string) {
	t.Helper()
	createTopicN(t, kc, topic, partitions)
}

// createTopicN creates topic and its dead-letter topic with parts partitions each.
func createTopicN(t *testing.T, kc *kafka.Client, topic string, parts int) {
	t.Helper()
	resp, err := kc.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: topic, NumPartitions: parts, ReplicationFactor: 1},
		{Topic: sinkkafka.DLQTopic(topic), NumPartitions: parts, ReplicationFactor: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range resp.Errors {
		if err != nil {
			t.Fatalf("create topic %s: %v", name, err)
		}
	}
}

func produce(t *testing.T, broker, topic string, values [][]byte) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(broker), Topic: topic, Balancer: &kafka.RoundRobin{}, RequiredAcks: kafka.RequireAll,
		BatchSize: 1000, BatchBytes: 16 << 20, BatchTimeout: 5 * time.Millisecond, Transport: &kafka.Transport{}}
	defer w.Close()
	msgs := make([]kafka.Message, 0, 5000)
	for i := 0; i < len(values); i += cap(msgs) {
		msgs = msgs[:0]
		for _, v := range values[i:min(i+cap(msgs), len(values))] {
			msgs = append(msgs, kafka.Message{Value: v})
		}
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

func endOffsets(t *testing.T, kc *kafka.Client, topic string) map[int]int64 {
	t.Helper()
	return endOffsetsN(t, kc, topic, partitions)
}

// endOffsetsN returns the end offsets of a topic of parts partitions.
func endOffsetsN(t *testing.T, kc *kafka.Client, topic string, parts int) map[int]int64 {
	t.Helper()
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for p := range parts {
		req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
	}
	resp, err := kc.ListOffsets(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	ends := map[int]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			t.Fatal(po.Error)
		}
		ends[po.Partition] = po.LastOffset
	}
	return ends
}

// committed returns the group's committed offsets, or nil while Kafka does not answer.
func committed(ctx context.Context, kc *kafka.Client, group, topic string) map[int]int64 {
	return committedN(ctx, kc, group, topic, partitions)
}

// committedN is committed for a topic of parts partitions.
func committedN(ctx context.Context, kc *kafka.Client, group, topic string, parts int) map[int]int64 {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ps := make([]int, parts)
	for p := range ps {
		ps[p] = p
	}
	resp, err := kc.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil || resp.Error != nil {
		return nil
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

func reachedEnd(c, ends map[int]int64) bool {
	if c == nil {
		return false
	}
	for p, end := range ends {
		if c[p] < end {
			return false
		}
	}
	return true
}

// movedEverywhere: every partition not at its end has committed past where it was.
func movedEverywhere(from, now, ends map[int]int64) bool {
	for p, end := range ends {
		if now[p] < end && now[p] <= from[p] {
			return false
		}
	}
	return true
}

func countUint(t *testing.T, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func finalRows(t *testing.T, conn driver.Conn, db string) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".scores FINAL").Scan(&n); err != nil {
		return 0
	}
	return n
}

// checkRows fills found, pairs, missing, extra and duplicates: scores FINAL must hold
// exactly one row per valid record × evaluator.
func checkRows(t *testing.T, conn driver.Conn, db string, o *outcome) {
	t.Helper()
	o.found = countUint(t, conn, "SELECT count() FROM "+db+".scores FINAL")
	o.pairs = countUint(t, conn, "SELECT uniqExact(record_id, evaluator) FROM "+db+".scores FINAL")
	if o.pairs < o.expected {
		o.missing = o.expected - o.pairs
	}
	if o.found > o.pairs {
		o.extra = o.found - o.pairs
	}
	// scores_hourly counts every inserted row, before merges collapse replays (and 18.16
	// takes no deduplication token), so it measures the rows written more than once.
	if raw := countUint(t, conn, "SELECT countMerge(rows) FROM "+db+".scores_hourly"); raw > o.pairs {
		o.duplicates = raw - o.pairs
	}
	o.records = countUint(t, conn, "SELECT uniqExact(record_id) FROM "+db+".scores FINAL")
	o.uneven = countUint(t, conn, fmt.Sprintf("SELECT count() FROM (SELECT record_id FROM %s.scores FINAL GROUP BY record_id HAVING count() != %d)", db, evaluators))
}

// deadLetterTopic reads the whole dead-letter topic and returns the distinct source
// offsets and the number of messages.
func deadLetterTopic(t *testing.T, broker, topic string) (distinct, messages uint64) {
	t.Helper()
	return deadLetterTopicN(t, broker, topic, partitions)
}

// deadLetterTopicN is deadLetterTopic for a dead-letter topic of parts partitions.
func deadLetterTopicN(t *testing.T, broker, topic string, parts int) (distinct, messages uint64) {
	t.Helper()
	seen := map[string]bool{}
	for p := range parts {
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		conn, err := kafka.DialLeader(context.Background(), "tcp", broker, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		end, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < end; off++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			m, err := rd.ReadMessage(ctx)
			cancel()
			if err != nil {
				t.Fatalf("read %s/%d: %v", topic, p, err)
			}
			messages++
			src := ""
			for _, h := range m.Headers {
				if h.Key == sinkkafka.HeaderSourcePartition || h.Key == sinkkafka.HeaderSourceOffset {
					src += h.Key + "=" + string(h.Value) + " "
				}
			}
			seen[src] = true
			off = m.Offset
		}
		rd.Close()
	}
	return uint64(len(seen)), messages
}

// verdict is a scenario's cell in the outcome column: pass, FAIL with why, or for a
// negative control whether it failed on the property it must.
func (o *outcome) verdict() string {
	switch {
	case o.control != "" && o.failedOn(o.control):
		return fmt.Sprintf("FAIL on %s, as this control must: %s", o.control, o.detail())
	case o.control != "":
		return fmt.Sprintf("NOT CAUGHT (must fail on %s): %s", o.control, o.detail())
	case !o.pass():
		return "FAIL: " + o.detail()
	}
	return "pass"
}

// crashes lists the processes that crashed, or "none".
func (o *outcome) crashes() string {
	if len(o.crashed) == 0 {
		return "none"
	}
	return strings.Join(o.crashed, "; ")
}

func faultTable(results []outcome, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d records per scenario (%d partitions, one invalid in %d); rows = valid records × evaluators (five built-in checks and one judgesim model judge, cached in Redis).\n\n", n, partitions, invalidEvery)
	b.WriteString("| fault | fault met (raterd's metrics and log) | Redis round trips / judge calls | rows expected | rows found (FINAL) | pairs missing | extra rows (FINAL) | rows written twice (replays) | dead letters: table / topic (distinct) / expected | DLQ messages | recovery | drain | peak RSS | committed to end | crashes | outcome |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | --- | --- |\n")
	for _, o := range results {
		verdict, crashes := o.verdict(), o.crashes()
		recovery := "n/a"
		if o.recovery > 0 {
			recovery = fmt.Sprintf("%.1f s", o.recovery.Seconds())
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %d | %d | %d / %d / %d | %d | %s | %.1f s | %d MiB | %v | %s | %s |\n", o.fault, o.met, o.usage, o.expected, o.found, o.missing, o.extra, o.duplicates,
			o.deadTable, o.deadTopic, o.invalid, o.dlqMsgs, recovery, o.drain.Seconds(), o.peakRSS>>20, yesNo(o.committedToEnd), crashes, verdict)
	}
	b.WriteString("\nFault met: the evidence that raterd really met the fault, from its own metrics (scraped from each process's admin port) and log; a scenario whose fault was not met fails. Redis round trips / judge calls: over all the scenario's raterd processes (a killed one's up to its last scrape); a scenario that used neither fails. Pairs missing: (record, evaluator) pairs with no row in `scores FINAL` (rows lost). Extra rows: rows in `scores FINAL` beyond one per pair (duplicates). Recovery: from the end of the fault (service back, process killed or restarted) until every partition not yet drained had committed past where it stood then. Drain: from the first raterd start until the committed offsets reached the end. Peak RSS: the largest resident set of any raterd process, sampled every 100 ms. A NEGATIVE CONTROL is a raterd built with one promise broken on purpose; the suite fails unless it fails on the property that promise guards.\n")
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

const (
	tableBegin = "<!-- BEGIN fault table (generated by scripts/faults.sh) -->"
	tableEnd   = "<!-- END fault table -->"
)

// rewriteDoc replaces the generated table in path.
func rewriteDoc(path, table string) error {
	return rewriteBetween(path, tableBegin, tableEnd, table)
}

// rewriteBetween replaces what lies between the markers begin and end in the markdown
// file at path with a run stamp and table: every generated table of docs/reliability.md.
func rewriteBetween(path, begin, end, table string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s: markers %q … %q not found", path, begin, end)
	}
	stamp := fmt.Sprintf("Run of %s on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine())
	if err := os.WriteFile(path, []byte(s[:i+len(begin)]+"\n"+stamp+table+s[j:]), 0o644); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	return nil
}

func machine() string {
	return fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
}
