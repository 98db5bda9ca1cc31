package faults

// Network faults: raterd reaches ClickHouse, Redis and the judge pool through fault
// proxies (internal/faultproxy), which add latency, limit bandwidth, hold connections
// half-open (nothing forwarded, nothing reset) or reset them in the middle of an insert,
// while raterd drains a topic. The checks are the fault suite's own (runScenario: exact
// rows in scores FINAL, dead letters once, committed to the end, no crash, peak RSS,
// recovery time); each scenario must also prove its fault met traffic, from the proxy's
// counters during the fault and raterd's metrics (inserts failed, cache bypasses, pool
// attempts failed). Their table has markers of its own in docs/reliability.md.
//
//   scripts/faults.sh -net                                # these scenarios only
//   scripts/faults.sh -net -run 'ch_'                     # some of them
//   RATERD_NETFAULTS_RECORDS=5000 scripts/faults.sh -net  # fewer records while developing
//                                                         # (some drain five times as many)

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"raterd/internal/faultproxy"
	"raterd/internal/testkit"
	"raterd/sinks/clickhouse"
)

// netPeakRSS bounds the resident set of a raterd under a network fault: its in-flight
// bounds must hold while a service is slow or silent.
const netPeakRSS = 512 << 20

// redisStall bounds the time without a new score row while Redis is half-open: a
// lookup waits at most the cache's timeout (250 ms) before the batch goes on without it.
const redisStall = 3 * time.Second

// records is how many records a network scenario drains: the faults that do not stop
// scoring get five times as many, so that it goes on for seconds into the fault (the rest
// of 10,000 records can drain in under a second once raterd is warm).
func records(name string, n int) int {
	switch name {
	case "redis_halfopen", "judge_latency", "ch_bandwidth":
		return 5 * n
	}
	return n
}

// heldSlack is how many bytes a half-open proxy may still forward: chunks already past
// its gate when the hold began.
const heldSlack = 4 << 10

// netRecords is how many records each network scenario drains: 10,000 (their faults
// last seconds, not records), or RATERD_NETFAULTS_RECORDS.
func netRecords(t *testing.T) int { return recordCount(t, "RATERD_NETFAULTS_RECORDS", 10_000, 1000) }

// netProxies are one scenario's proxies, and what the fault saw of traffic.
type netProxies struct {
	ch, redis, judge *faultproxy.Proxy
	// Filled by window: the faulted proxy's counters over the fault, and the rows
	// ClickHouse gained meanwhile and just before (the suite's own connection, not
	// proxied).
	during     faultproxy.Stats
	openAtEnd  int64
	rowsDuring int64
	rateBefore float64       // score rows per second just before the fault
	stall      time.Duration // the longest time without a new score row during the fault
	timeline   []int64       // rows written since the fault began, every 250 ms
	drainedAt  time.Duration // when the group had committed everything, if during the fault
	lasted     time.Duration
}

// proxyServices starts a proxy in front of ClickHouse, Redis and the judge pool and
// rewrites r.base so that raterd reaches them through the proxies.
func proxyServices(t *testing.T, r *scenarioRun, simURL string) *netProxies {
	t.Helper()
	u, err := url.Parse(simURL)
	if err != nil {
		t.Fatalf("judge URL %q: %v", simURL, err)
	}
	n := &netProxies{}
	for _, x := range []struct {
		p      **faultproxy.Proxy
		target string
		old    string // the address as the config writes it
		new    func(addr string) string
	}{
		{&n.ch, r.st.ch.addr, "addrs: [" + r.st.ch.addr + "]", func(a string) string { return "addrs: [" + a + "]" }},
		{&n.redis, r.st.redis.addr, "addrs: [" + r.st.redis.addr + "]", func(a string) string { return "addrs: [" + a + "]" }},
		{&n.judge, u.Host, `"http://` + u.Host + `/`, func(a string) string { return `"http://` + a + `/` }},
	} {
		p, err := faultproxy.New(x.target)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		if strings.Count(r.base, x.old) != 1 {
			t.Fatalf("config has %d of %q, want 1:\n%s", strings.Count(r.base, x.old), x.old, r.base)
		}
		r.base = strings.Replace(r.base, x.old, x.new(p.Addr()), 1)
		*x.p = p
	}
	return n
}

// scoreRows counts the rows in scores (not FINAL), through the suite's own connection.
func scoreRows(t *testing.T, r *scenarioRun) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := clickhouse.Open(ctx, r.st.ch.config(r.db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var c uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+r.db+".scores").Scan(&c); err != nil {
		t.Fatalf("count scores: %v", err)
	}
	return int64(c)
}

// window runs a fault on p for d: on, wait, off. It records p's counters over the fault
// and the rows written meanwhile, and the pace of rows over the half second before it, so
// that a slowed path shows as a slower pace.
func window(t *testing.T, r *scenarioRun, p *faultproxy.Proxy, d time.Duration, on, off func()) {
	t.Helper()
	const pace = 500 * time.Millisecond
	rows0 := scoreRows(t, r)
	time.Sleep(pace)
	rows := scoreRows(t, r)
	r.net.rateBefore = float64(rows-rows0) / pace.Seconds()
	before, start := p.Stats(), time.Now()
	on()
	// Sample the rows every 250 ms: the longest time without a new row, until the group
	// has committed everything, is the stall.
	ends := endOffsets(t, r.kc, r.topic)
	last, lastChange := rows, time.Now()
	for end := start.Add(d); time.Now().Before(end); {
		time.Sleep(min(250*time.Millisecond, time.Until(end)))
		if now := scoreRows(t, r); now != last {
			last, lastChange = now, time.Now()
		}
		r.net.timeline = append(r.net.timeline, last-rows)
		if r.net.drainedAt > 0 {
			continue
		}
		r.net.stall = max(r.net.stall, time.Since(lastChange))
		if reachedEnd(committed(context.Background(), r.kc, r.group, r.topic), ends) {
			r.net.drainedAt = time.Since(start)
		}
	}
	after := p.Stats()
	r.net.rowsDuring = scoreRows(t, r) - rows
	t.Logf("score rows written since the fault began, every 250 ms: %v", r.net.timeline)
	off()
	r.net.lasted = time.Since(start)
	r.net.openAtEnd = after.Open
	r.net.during = faultproxy.Stats{Accepted: after.Accepted - before.Accepted, Resets: after.Resets - before.Resets,
		Up: after.Up - before.Up, Down: after.Down - before.Down}
}

// rateDuring is the pace of score rows over the fault, per second, up to the drain's end
// if that came first.
func (n *netProxies) rateDuring() float64 {
	d := n.lasted
	if n.drainedAt > 0 {
		d = n.drainedAt
	}
	return float64(n.rowsDuring) / max(d.Seconds(), 0.001)
}

// traffic describes what the faulted proxy forwarded during the fault.
func (n *netProxies) traffic() string {
	drained := ""
	if n.drainedAt > 0 {
		drained = fmt.Sprintf("; the topic was drained %.1f s into the fault", n.drainedAt.Seconds())
	}
	return fmt.Sprintf("during the %.1f s fault: proxy forwarded %.1f KiB up / %.1f KiB down, %d connections accepted, %d open at its end, %d resets; %d score rows written (%.0f/s, %.0f/s just before; longest %.1f s without a new row)",
		n.lasted.Seconds(), float64(n.during.Up)/1024, float64(n.during.Down)/1024, n.during.Accepted, n.openAtEnd, n.during.Resets,
		n.rowsDuring, n.rateDuring(), n.rateBefore, n.stall.Seconds()) + drained
}

func networkScenarios(n int) []scenario {
	const at = 0.30
	chLatency := func(t *testing.T, r *scenarioRun) {
		p := r.net.ch
		window(t, r, p, 20*time.Second, func() { p.SetLatency(500 * time.Millisecond) }, func() { p.SetLatency(0) })
	}
	chHalfOpen := func(t *testing.T, r *scenarioRun) {
		p := r.net.ch
		window(t, r, p, 30*time.Second, func() { p.Hold(true) }, func() { p.Hold(false) })
	}
	// raterd's inserts are compressed blocks of a few KiB: 64 KiB/s barely slows them,
	// 16 KiB/s does.
	chBandwidth := func(t *testing.T, r *scenarioRun) {
		p := r.net.ch
		window(t, r, p, 20*time.Second, func() { p.SetBandwidth(16 << 10) }, func() { p.SetBandwidth(0) })
	}
	// chReset resets, three times, the connection carrying the 1 KiB-th next byte to
	// ClickHouse: inserts (compressed blocks, a few KiB every insert_interval) are nearly
	// all of that traffic, so each reset cuts one; the failed inserts prove it.
	chReset := func(t *testing.T, r *scenarioRun) {
		p := r.net.ch
		window(t, r, p, 0, func() {
			for range 3 {
				resets := p.Stats().Resets
				p.ResetAfter(1 << 10)
				for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && p.Stats().Resets == resets; {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}, func() { p.ResetAfter(0) })
	}
	redisHalfOpen := func(t *testing.T, r *scenarioRun) {
		p := r.net.redis
		window(t, r, p, 15*time.Second, func() { p.Hold(true) }, func() { p.Hold(false) })
	}
	judgeLatency := func(t *testing.T, r *scenarioRun) {
		p := r.net.judge
		window(t, r, p, 20*time.Second, func() { p.SetLatency(400 * time.Millisecond) }, func() { p.SetLatency(0) })
	}
	judgeHalfOpen := func(t *testing.T, r *scenarioRun) {
		p := r.net.judge
		window(t, r, p, 20*time.Second, func() { p.Hold(true) }, func() { p.Hold(false) })
	}

	// The evidence: the proxy's counters and raterd's own.
	// A slow path met traffic if the proxy carried inserts through it (the pace of rows
	// is reported, not checked: a half second's pace before the fault is too noisy a
	// yardstick on a shared machine).
	chSlowMet := func(r *scenarioRun, e evidence) (string, bool) {
		return fmt.Sprintf("%s; %.0f inserts failed", r.net.traffic(), e.during.insertErrors), r.net.during.Up > 0
	}
	// A half-open path forwards nothing but the chunks already on their way at the onset;
	// rows may still appear in ClickHouse (an insert whose data had arrived commits there,
	// its acknowledgement held), and raterd, which saw no acknowledgement, sends it again.
	heldOK := func(r *scenarioRun) bool { return r.net.during.Up+r.net.during.Down < heldSlack }
	chHalfOpenMet := func(r *scenarioRun, e evidence) (string, bool) {
		return fmt.Sprintf("%s; %.0f inserts failed (write_timeout)", r.net.traffic(), e.during.insertErrors),
			e.during.insertErrors > 0 && heldOK(r)
	}
	chResetMet := func(r *scenarioRun, e evidence) (string, bool) {
		return fmt.Sprintf("%s; %.0f inserts failed", r.net.traffic(), e.during.insertErrors),
			r.net.during.Resets == 3 && e.during.insertErrors > 0
	}
	redisMet := func(r *scenarioRun, e evidence) (string, bool) {
		return fmt.Sprintf("%s; %.0f Redis calls failed or timed out (cache bypassed)", r.net.traffic(), e.during.redisErrors),
			e.during.redisErrors > 0 && r.net.rowsDuring > 0 && heldOK(r) && r.net.stall < redisStall &&
				(r.net.drainedAt == 0 || r.net.drainedAt > 2*time.Second)
	}
	judgeLatencyMet := func(r *scenarioRun, e evidence) (string, bool) {
		return fmt.Sprintf("%s; %.0f judge calls, %.0f pool attempts failed", r.net.traffic(), e.during.judgeCalls, e.during.judgeRetryable+e.during.judgeCanceled),
			r.net.during.Down > 0 && e.during.judgeCalls > 0
	}
	judgeHalfOpenMet := func(r *scenarioRun, e evidence) (string, bool) {
		failed := e.during.judgeRetryable + e.during.judgeCanceled
		return fmt.Sprintf("%s; %.0f pool attempts failed", r.net.traffic(), failed),
			failed > 0 && heldOK(r)
	}
	return []scenario{
		{name: "ch_latency", fault: "ClickHouse: +500 ms per chunk each way, at 30% for 20 s", at: at, proxied: true, inject: chLatency, met: chSlowMet},
		{name: "ch_halfopen", fault: "ClickHouse: half-open (nothing forwarded, no reset), at 30% for 30 s", at: at, proxied: true, inject: chHalfOpen, met: chHalfOpenMet},
		{name: "ch_bandwidth", fault: fmt.Sprintf("ClickHouse: 16 KiB/s per connection and direction, at 30%% for 20 s (%d records)", records("ch_bandwidth", n)), at: at, proxied: true, inject: chBandwidth, met: chSlowMet},
		{name: "ch_reset", fault: "ClickHouse: connection reset mid-insert, three times from 30%", at: at, proxied: true, inject: chReset, met: chResetMet},
		{name: "redis_halfopen", fault: fmt.Sprintf("Redis: half-open, at 30%% for 15 s (%d records)", records("redis_halfopen", n)), at: at, proxied: true, inject: redisHalfOpen, met: redisMet},
		{name: "judge_latency", fault: fmt.Sprintf("judge pool: +400 ms per chunk each way, at 30%% for 20 s (%d records)", records("judge_latency", n)), at: at, proxied: true, inject: judgeLatency, met: judgeLatencyMet},
		{name: "judge_halfopen", fault: "judge pool: half-open, at 30% for 20 s", at: at, proxied: true, inject: judgeHalfOpen, met: judgeHalfOpenMet},
	}
}

func TestNetworkFaults(t *testing.T) {
	n := netRecords(t)
	testkit.Service(t, "RATERD_TEST_KAFKA_LIBS", "Kafka jars")
	bins := &binaries{dir: t.TempDir(), built: map[string]string{}}
	if _, err := bins.get("raterd"); err != nil {
		t.Fatal(err)
	}
	st := startStack(t)
	_, simURL := startFaultySimulator(t)

	start := time.Now()
	var results []outcome
	for _, sc := range networkScenarios(n) {
		t.Run(sc.name, func(t *testing.T) {
			o := runScenario(t, st, bins, sc, records(sc.name, n), simURL)
			if o.peakRSS > netPeakRSS {
				o.problems = append(o.problems, problem{prop: "memory", text: fmt.Sprintf("peak RSS %d MiB over %d MiB", o.peakRSS>>20, netPeakRSS>>20)})
			}
			results = append(results, o)
			if !o.pass() {
				t.Errorf("%s: %s", sc.fault, o.detail())
			}
		})
	}
	if len(results) == 0 {
		return // -run chose none of these
	}
	table := faultTable(results, n) + fmt.Sprintf("\nThese scenarios took %s in all (setup included). A scenario also fails if a raterd's peak RSS passes %d MiB.\n",
		time.Since(start).Round(time.Second), netPeakRSS>>20)
	t.Log("\n" + table)
	if *reliabilityDoc != "" {
		if err := rewriteBetween(*reliabilityDoc, netTableBegin, netTableEnd, table); err != nil {
			t.Fatal(err)
		}
	}
}

const (
	netTableBegin = "<!-- BEGIN network fault table (generated by scripts/faults.sh) -->"
	netTableEnd   = "<!-- END network fault table -->"
)
