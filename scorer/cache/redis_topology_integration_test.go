package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"raterd/internal/telemetry"
	"raterd/internal/testkit"
)

// The Redis Cluster and Sentinel tests of docs/design-topology.md §6.2: round trips per
// batch through cache.New on the dev stack's Cluster (scripts/services-redis.sh,
// RATERD_TEST_REDIS_CLUSTER) and Sentinel set (RATERD_TEST_REDIS_SENTINEL), slots moved
// under traffic on that Cluster, and failovers of private Clusters and Sentinel sets.

// newTopologyCache builds the cache cfg describes with New and returns it with its
// client; the closers run when the test ends.
func newTopologyCache(t *testing.T, cfg RedisConfig, logger *slog.Logger) (*Tiered, redis.UniversalClient) {
	t.Helper()
	if err := cfg.Validate("redis"); err != nil {
		t.Fatal(err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c, closers, _ := New(context.Background(), cfg, telemetry.Settings{Logger: logger})
	t.Cleanup(func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i].Close()
		}
	})
	tiered, ok := c.(*Tiered)
	if !ok || len(closers) != 2 {
		t.Fatalf("New: %T with %d closers, want a Tiered and its client", c, len(closers))
	}
	client, ok := closers[0].(redis.UniversalClient)
	if !ok {
		t.Fatalf("New's first closer is %T, not the Redis client", closers[0])
	}
	return tiered, client
}

// batch returns n entries k<from>…k<from+n-1> with values v<…>.
func batch(from, n int) ([]Entry, []string) {
	entries := make([]Entry, n)
	keys := make([]string, n)
	for i := range n {
		keys[i] = fmt.Sprintf("k%d", from+i)
		entries[i] = Entry{Key: keys[i], Value: []byte(fmt.Sprintf("v%d", from+i)), TTL: 10 * time.Minute}
	}
	return entries, keys
}

// mastersOf returns the addresses of the masters owning keys (prefixed), as a separate
// client of the Cluster at seed maps them.
func mastersOf(t *testing.T, seed, prefix string, keys []string) map[string]int {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{seed}})
	defer cc.Close()
	out := map[string]int{}
	for _, k := range keys {
		m, err := cc.MasterForKey(context.Background(), prefix+k)
		if err != nil {
			t.Fatal(err)
		}
		out[m.Options().Addr]++
	}
	return out
}

// TestRedisClusterRoundTrips: through New with cluster: true and one seed address, a fill
// and a lookup of 50 keys are one pipeline each at the client, and one pipeline per master
// at the nodes (the 50 keys spread over the 3 masters' slots), sent to the masters in
// parallel; the values come back. Without cluster: true the seed is a plain client,
// which gets MOVED for the keys of the other masters' slots.
func TestRedisClusterRoundTrips(t *testing.T) {
	addrs := strings.Split(testkit.Service(t, "RATERD_TEST_REDIS_CLUSTER", "Redis Cluster"), ",")
	seed := addrs[0]
	prefix := testPrefix(t)
	ctx := context.Background()
	cfg := RedisConfig{Addrs: []string{seed}, Cluster: true, KeyPrefix: prefix, LocalBytes: -1, Timeout: 2 * time.Second}
	tiered, client := newTopologyCache(t, cfg, nil)
	cc, ok := client.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("cluster: true with one seed built %T, want *redis.ClusterClient", client)
	}
	hook := newNodeHook()
	hookCluster(t, cc, hook)

	entries, keys := batch(0, 50)
	owners := mastersOf(t, seed, prefix, keys)
	if len(owners) != 3 {
		t.Fatalf("50 keys on %d masters (%v); want all 3 (a miss of one has odds of 1e-8)", len(owners), owners)
	}
	check := func(step string) {
		t.Helper()
		p, c, _, moved, ask := hook.snapshot()
		if p["cluster"] != 1 || c["cluster"] != 50 {
			t.Fatalf("%s: %d pipelines of %d commands at the client, want 1 of 50", step, p["cluster"], c["cluster"])
		}
		nodes := 0
		for addr, n := range p {
			if addr == "cluster" {
				continue
			}
			nodes += n
			if n != 1 || c[addr] != owners[addr] {
				t.Fatalf("%s: node %s got %d pipelines of %d commands, want 1 of %d (owners %v)", step, addr, n, c[addr], owners[addr], owners)
			}
		}
		if nodes != len(owners) || moved+ask != 0 {
			t.Fatalf("%s: %d node pipelines (want %d, one per master), %d MOVED, %d ASK", step, nodes, len(owners), moved, ask)
		}
		t.Logf("%s of 50 keys: 1 pipeline at the client, %d at the nodes (commands per master %v)", step, nodes, owners)
	}
	if err := tiered.SetMany(ctx, entries); err != nil {
		t.Fatal(err)
	}
	check("fill")
	hook.reset()
	got, err := tiered.GetMany(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if string(v) != string(entries[i].Value) {
			t.Fatalf("key %s = %q, want %q", keys[i], v, entries[i].Value)
		}
	}
	check("lookup")

	// A failed round trip makes the client reload its slot map (Redis.RefreshTopology):
	// go-redis would otherwise wait for a MOVED or its periodic reload, a minute on, to
	// learn of a promoted replica. A cancelled context fails the lookup here.
	loads := hook.loads()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := NewRedis(client, prefix).GetManyTTL(cancelled, keys); err == nil {
		t.Fatal("lookup with a cancelled context succeeded")
	}
	waitFor(t, 10*time.Second, "CLUSTER SLOTS after a failed lookup", func() error {
		if n := hook.loads(); n == loads {
			return fmt.Errorf("%d CLUSTER SLOTS, as before the failure", n)
		}
		return nil
	})

	// Negative control: the same seed without cluster: true is a plain client; the keys of
	// the other masters' slots answer MOVED, so the round trip fails and the cache
	// bypasses Redis.
	plain := RedisConfig{Addrs: []string{seed}, KeyPrefix: prefix, LocalBytes: -1, Timeout: 2 * time.Second}
	ptiered, pclient := newTopologyCache(t, plain, nil)
	if _, ok := pclient.(*redis.Client); !ok {
		t.Fatalf("one address without cluster: %T, want *redis.Client", pclient)
	}
	_, err = NewRedis(pclient, prefix).GetManyTTL(ctx, keys)
	if err == nil || !strings.Contains(err.Error(), "MOVED") {
		t.Fatalf("plain client lookup on a Cluster: %v, want a MOVED error", err)
	}
	if err := NewRedis(pclient, prefix).SetMany(ctx, entries); err == nil || !strings.Contains(err.Error(), "MOVED") {
		t.Fatalf("plain client fill on a Cluster: %v, want a MOVED error", err)
	}
	if _, err := ptiered.GetMany(ctx, keys); !errors.Is(err, ErrBypassed) {
		t.Fatalf("plain client through the cache: %v, want ErrBypassed", err)
	}
	t.Logf("without cluster: true: %v", err)
}

// TestRedisSentinelRoundTrips: through New with master_name and the Sentinels' addresses,
// a fill and a lookup of 50 keys are one pipeline each, to the master the Sentinels name.
func TestRedisSentinelRoundTrips(t *testing.T) {
	sentinels := strings.Split(testkit.Service(t, "RATERD_TEST_REDIS_SENTINEL", "Redis Sentinels"), ",")
	name := testkit.Service(t, "RATERD_TEST_REDIS_SENTINEL_MASTER", "Sentinel master name")
	prefix := testPrefix(t)
	ctx := context.Background()
	cfg := RedisConfig{Addrs: sentinels, MasterName: name, KeyPrefix: prefix, LocalBytes: -1, Timeout: 2 * time.Second}
	tiered, client := newTopologyCache(t, cfg, nil)
	c, ok := client.(*redis.Client)
	if !ok {
		t.Fatalf("master_name built %T, want the failover *redis.Client", client)
	}
	hook := newNodeHook()
	c.AddHook(hooked{hook, "master"})
	entries, keys := batch(0, 50)
	if err := tiered.SetMany(ctx, entries); err != nil {
		t.Fatal(err)
	}
	got, err := tiered.GetMany(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if string(v) != string(entries[i].Value) {
			t.Fatalf("key %s = %q, want %q", keys[i], v, entries[i].Value)
		}
	}
	p, cmds, _, _, _ := hook.snapshot()
	if p["master"] != 2 || cmds["master"] != 100 {
		t.Fatalf("fill and lookup of 50: %d pipelines of %d commands, want 2 of 100", p["master"], cmds["master"])
	}
	// The values are on the master the Sentinels name.
	m, err := testkit.SentinelMaster(ctx, sentinels, name)
	if err != nil {
		t.Fatal(err)
	}
	mc := redis.NewClient(&redis.Options{Addr: m})
	defer mc.Close()
	if n, err := mc.Exists(ctx, prefix+keys[0], prefix+keys[49]).Result(); err != nil || n != 2 {
		t.Fatalf("keys on the master %s: %d, %v", m, n, err)
	}
	t.Logf("fill and lookup of 50 keys through the Sentinels: 2 pipelines (1 per step) to the master %s", m)
}

// TestRedisClusterResharding: while batches of lookups and fills run through the cache,
// redis-cli --cluster reshard moves 1000 slots from one master to another and back. No
// lookup fails other than as a breaker bypass (bounded), every value a fill stored is
// read back, and the node hooks met the redirects (MOVED, ASK, ASKING).
func TestRedisClusterResharding(t *testing.T) {
	addrs := strings.Split(testkit.Service(t, "RATERD_TEST_REDIS_CLUSTER", "Redis Cluster"), ",")
	_, cli := requireBinaries(t)
	seed := addrs[0]
	prefix := testPrefix(t)
	ctx := context.Background()
	cfg := RedisConfig{Addrs: []string{seed}, Cluster: true, KeyPrefix: prefix, LocalBytes: -1, Timeout: time.Second}
	tiered, client := newTopologyCache(t, cfg, nil)
	hook := newNodeHook()
	hookCluster(t, client.(*redis.ClusterClient), hook)

	// Keys in most slots, so that slots move with keys in them (ASK needs a key already
	// migrated while its slot still moves).
	const pre = 20000
	for i := 0; i < pre; i += 500 {
		entries, _ := batch(i, 500)
		if err := tiered.SetMany(ctx, entries); err != nil {
			t.Fatal(err)
		}
	}
	nodes, err := clusterNodes(ctx, seed)
	if err != nil {
		t.Fatal(err)
	}
	var masters []clusterNode
	for _, n := range nodes {
		if n.master() && !n.failed() && n.slots > 0 {
			masters = append(masters, n)
		}
	}
	if len(masters) < 2 {
		t.Fatalf("masters with slots: %+v", masters)
	}
	slices.SortFunc(masters, func(a, b clusterNode) int { return b.slots - a.slots })
	from, to := masters[0], masters[1]

	var (
		mu        sync.Mutex
		stored    = map[int]bool{} // keys whose fill returned nil
		bypasses  int
		batches   int
		otherErrs []error
		stop      = make(chan struct{})
		done      = make(chan struct{})
	)
	for i := range pre {
		stored[i] = true
	}
	go func() {
		defer close(done)
		next := pre
		for b := 0; ; b++ {
			select {
			case <-stop:
				return
			default:
			}
			// Lookup: 25 keys stored earlier (spread over the key space) and 25 new ones.
			var keys []string
			var want []string
			for j := range 25 {
				k := (b*7919 + j*797) % next
				keys = append(keys, fmt.Sprintf("k%d", k))
				want = append(want, fmt.Sprintf("v%d", k))
			}
			entries, newKeys := batch(next, 25)
			keys = append(keys, newKeys...)
			got, err := tiered.GetMany(ctx, keys)
			mu.Lock()
			batches++
			switch {
			case errors.Is(err, ErrBypassed):
				bypasses++
			case err != nil:
				otherErrs = append(otherErrs, err)
			default:
				for j := range 25 {
					if string(got[j]) != want[j] {
						otherErrs = append(otherErrs, fmt.Errorf("lookup of %s = %q, want %q", keys[j], got[j], want[j]))
					}
				}
			}
			mu.Unlock()
			err = tiered.SetMany(ctx, entries)
			mu.Lock()
			if err == nil {
				for j := range 25 {
					stored[next+j] = true
				}
			} else if errors.Is(err, ErrBypassed) {
				bypasses++
			} else {
				otherErrs = append(otherErrs, err)
			}
			mu.Unlock()
			next += 25
		}
	}()

	reshard := func(src, dst clusterNode) {
		t.Helper()
		// redis-cli refuses to reshard until every node agrees on the slot map, which
		// takes a gossip round after the previous move.
		waitFor(t, 30*time.Second, "nodes agreeing on the slots", func() error {
			if out, err := exec.Command(cli, "--cluster", "check", seed).CombinedOutput(); err != nil {
				return fmt.Errorf("%w: %s", err, tail(string(out), 3))
			}
			return nil
		})
		out, err := exec.Command(cli, "--cluster", "reshard", seed, "--cluster-from", src.id, "--cluster-to", dst.id,
			"--cluster-slots", "1000", "--cluster-yes").CombinedOutput()
		if err != nil {
			close(stop)
			<-done
			t.Fatalf("reshard %s → %s: %v\n%s", src.addr, dst.addr, err, tail(string(out), 20))
		}
	}
	reshard(from, to)
	// The fault happened: the target owns 1000 more slots (as the source sees it).
	mid, err := clusterNodes(ctx, from.addr)
	if err != nil {
		close(stop)
		<-done
		t.Fatal(err)
	}
	for _, n := range mid {
		if n.id == to.id && n.slots != to.slots+1000 {
			close(stop)
			<-done
			t.Fatalf("after the reshard %s owns %d slots, want %d", n.addr, n.slots, to.slots+1000)
		}
	}
	reshard(to, from) // back, so that the shared Cluster keeps its slot counts
	close(stop)
	<-done

	waitFor(t, 30*time.Second, "redis-cli --cluster check after the test", func() error {
		if out, err := exec.Command(cli, "--cluster", "check", seed).CombinedOutput(); err != nil {
			return fmt.Errorf("%w: %s", err, tail(string(out), 3))
		}
		return nil
	})

	after, err := clusterNodes(ctx, seed)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range after {
		if n.id == from.id && n.slots != from.slots || n.id == to.id && n.slots != to.slots {
			t.Errorf("slots of %s after moving 1000 there and back: %d, want %d", n.addr, n.slots, map[bool]int{true: from.slots, false: to.slots}[n.id == from.id])
		}
	}
	_, _, asking, moved, ask := hook.snapshot()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d batches while 2×1000 slots moved: %d bypassed calls, %d MOVED and %d ASK replies, %d ASKING sent, %d keys stored",
		batches, bypasses, moved, ask, asking, len(stored))
	if len(otherErrs) > 0 {
		t.Fatalf("%d lookups or fills failed other than as a bypass, first: %v", len(otherErrs), otherErrs[0])
	}
	if moved+ask == 0 || batches < 10 {
		t.Fatalf("no redirect met in %d batches (MOVED %d, ASK %d): the slots did not move under traffic", batches, moved, ask)
	}
	if ask != asking {
		t.Errorf("%d ASK replies but %d ASKING sent", ask, asking)
	}
	// Bounded: redirects cost a retry inside the call, not a failed call. A few bypasses
	// may come from a slot whose redirects outlast MaxRedirects (3).
	if bypasses > batches/10 {
		t.Fatalf("%d of %d batches' calls bypassed Redis", bypasses, 2*batches)
	}

	// Every value stored is read back, straight from the Cluster (no local tier).
	check := NewRedis(client, prefix)
	var keys []string
	for k := range stored {
		keys = append(keys, fmt.Sprintf("k%d", k))
	}
	slices.Sort(keys)
	for i := 0; i < len(keys); i += 1000 {
		part := keys[i:min(i+1000, len(keys))]
		items, err := check.GetManyTTL(ctx, part)
		if err != nil {
			t.Fatal(err)
		}
		for j, it := range items {
			if want := "v" + strings.TrimPrefix(part[j], "k"); string(it.Value) != want {
				t.Fatalf("after resharding %s = %q, want %q", part[j], it.Value, want)
			}
		}
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// failover drives batches through a cache while a master is killed, as the failover
// tests of a private Cluster and Sentinel set share it.
type failover struct {
	tiered *Tiered
	logs   *recordingHandler
	// check reads what Redis holds, without a local tier.
	check *Redis
	// sync makes sure that what the victim acknowledged so far is on its replica (WAIT).
	sync func() error
	// kill crashes the victim master.
	kill func()
	// promoted returns nil once the victim's replica is the master, the evidence of the
	// failover.
	promoted func() error
}

// failoverFigures is what a failover run measured.
type failoverFigures struct {
	batches, outageBatches, bypassedLookups, bypassedFills, windowAcked, windowLost int
	// toPromotion and toRecovery are the times from the kill to the promotion seen and
	// to the first of the 20 good batches (figures for the docs, not asserted).
	toPromotion, toRecovery time.Duration
}

// String formats the figures for the test log.
func (f failoverFigures) String() string {
	return fmt.Sprintf("%d batches, %d from the kill to the first of 20 good ones (%d lookups and %d fills bypassed Redis, "+
		"answered by the local tier); promotion seen %.1fs and the cache back %.1fs after the kill; "+
		"%d fills acknowledged between the last WAIT and the recovery, %d of them lost",
		f.batches, f.outageBatches, f.bypassedLookups, f.bypassedFills, f.toPromotion.Seconds(), f.toRecovery.Seconds(),
		f.windowAcked, f.windowLost)
}

// run: 20 healthy batches, sync, kill, then batches until the replica is promoted, the
// breaker is closed and 20 batches in a row succeed. Each batch looks up 20 keys filled
// earlier and 20 new ones, then fills the new ones.
func (f *failover) run(t *testing.T) failoverFigures {
	t.Helper()
	ctx := context.Background()
	var fig failoverFigures
	acked := map[int]bool{} // keys whose fill Redis acknowledged
	next := 0
	// one runs a batch; it reports whether both calls reached Redis. Every error must be
	// a bypass, and the earlier keys must come back (from the local tier when Redis is
	// bypassed).
	one := func() bool {
		fig.batches++
		var keys, want []string
		for j := range 20 {
			if next == 0 {
				break
			}
			// From the last 2000 keys: the local tier holds them all (an older one may
			// have been evicted during a long outage).
			k := next - 1 - (fig.batches*7919+j*797)%min(next, 2000)
			keys = append(keys, fmt.Sprintf("k%d", k))
			want = append(want, fmt.Sprintf("v%d", k))
		}
		entries, newKeys := batch(next, 20)
		got, err := f.tiered.GetMany(ctx, append(keys, newKeys...))
		ok := err == nil
		if err != nil && !errors.Is(err, ErrBypassed) {
			t.Fatalf("batch %d: lookup failed other than as a bypass: %v", fig.batches, err)
		}
		if err != nil {
			fig.bypassedLookups++
		}
		for j := range want {
			if string(got[j]) != want[j] {
				t.Fatalf("batch %d: %s = %q, want %q (lookup error %v)", fig.batches, keys[j], got[j], want[j], err)
			}
		}
		err = f.tiered.SetMany(ctx, entries)
		switch {
		case err == nil:
			for j := range 20 {
				acked[next+j] = true
			}
		case errors.Is(err, ErrBypassed):
			fig.bypassedFills++
			ok = false
		default:
			t.Fatalf("batch %d: fill failed other than as a bypass: %v", fig.batches, err)
		}
		next += 20
		return ok
	}
	for range 20 {
		if !one() {
			t.Fatalf("healthy batch %d bypassed Redis: %+v", fig.batches, f.tiered.Stats())
		}
	}
	if err := f.sync(); err != nil {
		t.Fatal(err)
	}
	safe := next // keys below were on the replica before the kill
	f.kill()
	killedAt, killTime := fig.batches, time.Now()

	deadline := time.Now().Add(120 * time.Second)
	promoted, good, recoveredFrom := false, 0, -1
	var lastCheck time.Time
	var promErr error
	for good < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery 120s after the kill: promoted %v (%v), breaker %s, %d good batches in a row; %+v",
				promoted, promErr, f.tiered.Stats().BreakerState, good, fig)
		}
		if !promoted && time.Since(lastCheck) > 100*time.Millisecond {
			lastCheck = time.Now()
			promErr = f.promoted()
			promoted = promErr == nil
			if promoted {
				fig.toPromotion = time.Since(killTime)
			}
		}
		start := next
		if one() && promoted && f.tiered.Stats().BreakerState == "closed" {
			if good == 0 {
				recoveredFrom = start
				fig.toRecovery = time.Since(killTime)
			}
			good++
		} else {
			good = 0
		}
		time.Sleep(5 * time.Millisecond) // a stream of batches, not a busy loop
	}
	fig.outageBatches = fig.batches - killedAt - 20 // up to the first of the 20 good ones

	if n := f.logs.count(slog.LevelWarn, "redis cache unavailable; scoring without it"); n < 1 {
		t.Fatalf("the breaker never opened (%d Warn records); %+v", n, fig)
	}
	if n := f.logs.count(slog.LevelInfo, "redis cache available again"); n < 1 {
		t.Fatalf("the breaker never closed again (%d Info records); %+v", n, fig)
	}
	if fig.bypassedLookups == 0 {
		t.Fatalf("no lookup was answered by the local tier alone during the outage: %+v", fig)
	}

	// Read back from Redis: everything acknowledged before the sync and after the
	// recovery; of the keys acknowledged in between (the victim may have died before
	// replicating them), count the lost.
	var keys []string
	var idx []int
	for k := range next {
		if acked[k] {
			keys = append(keys, fmt.Sprintf("k%d", k))
			idx = append(idx, k)
		}
	}
	for i := 0; i < len(keys); i += 500 {
		part := keys[i:min(i+500, len(keys))]
		items, err := f.check.GetManyTTL(ctx, part)
		if err != nil {
			t.Fatal(err)
		}
		for j, it := range items {
			k := idx[i+j]
			inWindow := k >= safe && k < recoveredFrom
			if inWindow {
				fig.windowAcked++
			}
			if want := fmt.Sprintf("v%d", k); string(it.Value) != want {
				if !inWindow {
					t.Fatalf("k%d (acknowledged %s) = %q after the failover, want %q", k,
						map[bool]string{true: "before the kill", false: "after the recovery"}[k < safe], it.Value, want)
				}
				fig.windowLost++
			}
		}
	}
	return fig
}

// TestRedisClusterFailover: kill -9 a master of a private Cluster while batches run; its
// replica is promoted, the breaker opens and closes again, the local tier answers
// meanwhile, no batch fails, and no write acknowledged outside the outage is lost.
func TestRedisClusterFailover(t *testing.T) {
	pc := startPrivateCluster(t)
	ctx := context.Background()
	seed := pc.nodes[0].addr()
	logs := &recordingHandler{}
	cfg := RedisConfig{Addrs: []string{seed}, Cluster: true, KeyPrefix: "raterd-failover:",
		Breaker: RedisBreakerConfig{Failures: 3, Cooldown: 200 * time.Millisecond, MaxCooldown: time.Second}}
	tiered, client := newTopologyCache(t, cfg, slog.New(logs))

	nodes, err := clusterNodes(ctx, seed)
	if err != nil {
		t.Fatal(err)
	}
	var victim, replica clusterNode
	for _, n := range nodes {
		if n.master() && n.addr != seed { // keep the seed alive: it is the one address configured
			victim = n
			break
		}
	}
	for _, n := range nodes {
		if n.masterID == victim.id {
			replica = n
		}
	}
	if victim.id == "" || replica.id == "" {
		t.Fatalf("no master with a replica to kill: %+v", nodes)
	}
	vc := redis.NewClient(&redis.Options{Addr: victim.addr})
	defer vc.Close()

	f := &failover{
		tiered: tiered, logs: logs,
		check: NewRedis(redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{seed}}), cfg.KeyPrefix),
		sync: func() error {
			n, err := vc.Wait(ctx, 1, 5*time.Second).Result()
			if err != nil || n != 1 {
				return fmt.Errorf("WAIT 1 on %s: %d replicas, %v", victim.addr, n, err)
			}
			return nil
		},
		kill: func() { pc.node(victim.addr).kill() },
		promoted: func() error {
			nodes, err := clusterNodes(ctx, seed)
			if err != nil {
				return err
			}
			for _, n := range nodes {
				if n.id == replica.id && (!n.master() || n.slots == 0) {
					return fmt.Errorf("replica %s: %s with %d slots", n.addr, n.flags, n.slots)
				}
				if n.id == victim.id && !n.failed() {
					return fmt.Errorf("victim %s: %s", n.addr, n.flags)
				}
			}
			return nil
		},
	}
	defer f.check.client.Close()
	fig := f.run(t)
	after, _ := clusterNodes(ctx, seed)
	var lines []string
	for _, n := range after {
		lines = append(lines, fmt.Sprintf("%s %s %d slots", n.addr, n.flags, n.slots))
	}
	t.Logf("killed master %s; its replica %s promoted. CLUSTER NODES: %s", victim.addr, replica.addr, strings.Join(lines, "; "))
	t.Logf("%s; breaker %s; client %T", fig, tiered.Stats().BreakerState, client)
}

// TestRedisSentinelFailover: kill -9 the master of a private Sentinel set while batches
// run; the Sentinels promote the replica, the breaker opens and closes again, the local
// tier answers meanwhile, no batch fails, and no write acknowledged outside the outage is
// lost.
func TestRedisSentinelFailover(t *testing.T) {
	ps := startPrivateSentinel(t)
	ctx := context.Background()
	logs := &recordingHandler{}
	// The default timeout, 250ms. go-redis retries a refused dial 5 times, 100ms apart
	// (about 0.8s a call): with timeout: 1s, a failover of 1.5s failed one call only, so
	// the breaker never opened and that batch waited 0.8s for nothing.
	cfg := RedisConfig{Addrs: ps.sentinelAddrs(), MasterName: ps.name, KeyPrefix: "raterd-failover:",
		Breaker: RedisBreakerConfig{Failures: 3, Cooldown: 200 * time.Millisecond, MaxCooldown: time.Second}}
	tiered, _ := newTopologyCache(t, cfg, slog.New(logs))
	mc := redis.NewClient(&redis.Options{Addr: ps.master.addr()})
	defer mc.Close()
	checkClient := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: ps.name, SentinelAddrs: ps.sentinelAddrs()})
	defer checkClient.Close()
	f := &failover{
		tiered: tiered, logs: logs,
		check: NewRedis(checkClient, cfg.KeyPrefix),
		sync: func() error {
			n, err := mc.Wait(ctx, 1, 5*time.Second).Result()
			if err != nil || n != 1 {
				return fmt.Errorf("WAIT 1 on %s: %d replicas, %v", ps.master.addr(), n, err)
			}
			return nil
		},
		kill: ps.master.kill,
		promoted: func() error {
			m, err := testkit.SentinelMaster(ctx, ps.sentinelAddrs(), ps.name)
			if err != nil {
				return err
			}
			if m != ps.replica.addr() {
				return fmt.Errorf("the Sentinels name %s as master, not the replica %s", m, ps.replica.addr())
			}
			if r, err := testkit.RedisRole(ctx, m); err != nil || r != "master" {
				return fmt.Errorf("ROLE of %s: %q, %v", m, r, err)
			}
			return nil
		},
	}
	fig := f.run(t)
	t.Logf("killed master %s; the Sentinels promoted %s (ROLE master)", ps.master.addr(), ps.replica.addr())
	t.Logf("%s; breaker %s", fig, tiered.Stats().BreakerState)
}
