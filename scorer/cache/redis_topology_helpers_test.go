package cache

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"raterd/internal/testkit"
)

// This file holds the helpers of the Redis Cluster and Sentinel tests: hooks that count
// pipelines per node, and private Clusters and Sentinel sets on free ports that a test may
// kill -9 without touching the shared ones of scripts/services.sh.

// nodeHook counts, per server address, the pipelines a client sent (handshakes left out),
// their commands, the ASKING commands among them and the MOVED and ASK replies they got.
// Safe for concurrent use: a ClusterClient sends to its nodes from one goroutine each.
type nodeHook struct {
	mu        sync.Mutex
	pipelines map[string]int
	commands  map[string]int
	asking    int
	moved     int
	ask       int
	// slotLoads counts CLUSTER SLOTS, the ClusterClient loading its slot map.
	slotLoads int
}

func newNodeHook() *nodeHook {
	return &nodeHook{pipelines: map[string]int{}, commands: map[string]int{}}
}

// hooked is a hook bound to one address (a node client's, or "cluster" for the
// ClusterClient's own level).
type hooked struct {
	h    *nodeHook
	addr string
}

func (h hooked) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h hooked) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	// Single commands (CLUSTER SLOTS, PING, …) are not the batches counted; CLUSTER SLOTS
	// is counted apart.
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); len(args) == 2 && cmd.Name() == "cluster" && fmt.Sprint(args[1]) == "slots" {
			h.h.mu.Lock()
			h.h.slotLoads++
			h.h.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}
func (h hooked) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && isHandshake(cmds[0]) {
			return next(ctx, cmds)
		}
		asking := 0
		for _, c := range cmds {
			if c.Name() == "asking" {
				asking++
			}
		}
		err := next(ctx, cmds)
		moved, ask := 0, 0
		for _, c := range cmds {
			if e := c.Err(); e != nil {
				switch {
				case strings.HasPrefix(e.Error(), "MOVED "):
					moved++
				case strings.HasPrefix(e.Error(), "ASK "):
					ask++
				}
			}
		}
		h.h.mu.Lock()
		h.h.pipelines[h.addr]++
		h.h.commands[h.addr] += len(cmds) - asking
		h.h.asking += asking
		h.h.moved += moved
		h.h.ask += ask
		h.h.mu.Unlock()
		return err
	}
}

// loads returns the CLUSTER SLOTS count.
func (h *nodeHook) loads() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.slotLoads
}

// reset forgets the counts.
func (h *nodeHook) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pipelines, h.commands = map[string]int{}, map[string]int{}
	h.asking, h.moved, h.ask = 0, 0, 0
}

// snapshot returns copies of the per-address counts and the redirect counts.
func (h *nodeHook) snapshot() (pipelines, commands map[string]int, asking, moved, ask int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	pipelines, commands = map[string]int{}, map[string]int{}
	for k, v := range h.pipelines {
		pipelines[k] = v
	}
	for k, v := range h.commands {
		commands[k] = v
	}
	return pipelines, commands, h.asking, h.moved, h.ask
}

// hookCluster adds h to cc itself (address "cluster") and to every node client it has or
// makes (OnNewNode for the nodes to come, ForEachShard for those it has: New already
// pinged the Cluster, which made them). Each node client gets the hook once.
func hookCluster(t *testing.T, cc *redis.ClusterClient, h *nodeHook) {
	t.Helper()
	cc.AddHook(hooked{h, "cluster"})
	var mu sync.Mutex
	seen := map[*redis.Client]bool{}
	add := func(c *redis.Client) {
		mu.Lock()
		defer mu.Unlock()
		if !seen[c] {
			seen[c] = true
			c.AddHook(hooked{h, c.Options().Addr})
		}
	}
	cc.OnNewNode(add)
	if err := cc.ForEachShard(context.Background(), func(_ context.Context, c *redis.Client) error {
		add(c)
		return nil
	}); err != nil {
		t.Fatalf("ForEachShard: %v", err)
	}
}

// clusterNode is one line of CLUSTER NODES (testkit.RedisClusterNodes), in this package's
// field names.
type clusterNode struct {
	id, addr, flags, masterID string
	slots                     int
}

func (n clusterNode) master() bool { return strings.Contains(n.flags, "master") }
func (n clusterNode) failed() bool { return strings.Contains(n.flags, "fail") }

// clusterNodes reads CLUSTER NODES as the node at addr sees it.
func clusterNodes(ctx context.Context, addr string) ([]clusterNode, error) {
	ns, err := testkit.RedisClusterNodes(ctx, addr)
	out := make([]clusterNode, len(ns))
	for i, n := range ns {
		out[i] = clusterNode{id: n.ID, addr: n.Addr, flags: n.Flags, masterID: n.MasterID, slots: n.Slots}
	}
	return out, err
}

// requireBinaries returns the paths of redis-server and redis-cli, skipping the test
// without them (or failing it under RATERD_REQUIRE_SERVICES).
func requireBinaries(t *testing.T) (server, cli string) {
	t.Helper()
	var err1, err2 error
	server, err1 = exec.LookPath("redis-server")
	cli, err2 = exec.LookPath("redis-cli")
	if err1 != nil || err2 != nil {
		msg := "redis-server and redis-cli are needed on PATH; run scripts/services.sh up (it installs them)"
		if os.Getenv(testkit.RequireServicesEnv) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return server, cli
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a redis-server (or Sentinel) of the test's own, killed when the test ends.
type proc struct {
	port int
	cmd  *exec.Cmd
	log  string
}

func (p *proc) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// kill sends SIGKILL and waits: a crash, not a shutdown. Killing a dead proc does nothing.
func (p *proc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}

// startProc runs bin with args (a config file or settings) on port, in dir, logging to
// name.log there, and waits until it answers PING.
func startProc(t *testing.T, bin, dir, name string, port int, args ...string) *proc {
	t.Helper()
	p := &proc{port: port, log: filepath.Join(dir, name+".log")}
	args = append(args, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--daemonize", "no", "--logfile", p.log)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(p.kill)
	c := redis.NewClient(&redis.Options{Addr: p.addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	waitFor(t, 20*time.Second, name+" answering PING", func() error { return c.Ping(context.Background()).Err() })
	return p
}

// waitFor polls cond every 50ms until it returns nil, failing the test with what and the
// last error after limit (a bound on a wait, not a timing assertion).
func waitFor(t *testing.T, limit time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// privateCluster is a Redis Cluster of 3 masters and 3 replicas on free ports.
type privateCluster struct {
	nodes []*proc
}

// startPrivateCluster starts six cluster nodes (cluster-node-timeout 1000 ms, bus ports
// of their own), joins them with redis-cli --cluster create --cluster-replicas 1, and
// waits until every node reports cluster_state:ok and the first sees 3 masters and 3
// replicas, each in sync with its master.
func startPrivateCluster(t *testing.T) *privateCluster {
	t.Helper()
	server, cli := requireBinaries(t)
	dir := t.TempDir()
	pc := &privateCluster{}
	var addrs []string
	for i := range 6 {
		port, bus := freePort(t), freePort(t)
		name := fmt.Sprintf("node-%d", i)
		nd := filepath.Join(dir, name)
		if err := os.Mkdir(nd, 0o755); err != nil {
			t.Fatal(err)
		}
		p := startProc(t, server, nd, name, port, "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000", "--save", "", "--appendonly", "no")
		pc.nodes = append(pc.nodes, p)
		addrs = append(addrs, p.addr())
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "1", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx := context.Background()
	waitFor(t, 30*time.Second, "private cluster ready", func() error {
		for _, a := range addrs {
			c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
			info, err := c.ClusterInfo(ctx).Result()
			c.Close()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_assigned:16384") {
				return fmt.Errorf("%s: %s", a, info)
			}
		}
		nodes, err := clusterNodes(ctx, addrs[0])
		if err != nil {
			return err
		}
		m, r := 0, 0
		for _, n := range nodes {
			if n.master() {
				m++
				continue
			}
			r++
			c := redis.NewClient(&redis.Options{Addr: n.addr, MaxRetries: -1})
			info, err := c.Info(ctx, "replication").Result()
			c.Close()
			if err != nil || !strings.Contains(info, "master_link_status:up") {
				return fmt.Errorf("replica %s not in sync: %v", n.addr, err)
			}
		}
		if m != 3 || r != 3 {
			return fmt.Errorf("%d masters, %d replicas", m, r)
		}
		return nil
	})
	return pc
}

// node returns the proc listening on addr.
func (pc *privateCluster) node(addr string) *proc {
	for _, p := range pc.nodes {
		if p.addr() == addr {
			return p
		}
	}
	return nil
}

// privateSentinel is a master, its replica and three Sentinels monitoring it.
type privateSentinel struct {
	master, replica *proc
	sentinels       []*proc
	name            string
}

// startPrivateSentinel starts the set (down-after 1000 ms, failover-timeout 5000 ms,
// quorum 2) and waits until the replica is in sync, the Sentinels know the replica and
// each other (ckquorum OK).
func startPrivateSentinel(t *testing.T) *privateSentinel {
	t.Helper()
	server, _ := requireBinaries(t)
	dir := t.TempDir()
	ps := &privateSentinel{name: "raterd-private"}
	ps.master = startProc(t, server, dir, "master", freePort(t), "--save", "", "--appendonly", "no")
	ps.replica = startProc(t, server, dir, "replica", freePort(t), "--save", "", "--appendonly", "no",
		"--replicaof", "127.0.0.1", strconv.Itoa(ps.master.port))
	for i := range 3 {
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", i))
		body := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 2\nsentinel down-after-milliseconds %[1]s 1000\n"+
			"sentinel failover-timeout %[1]s 5000\nsentinel parallel-syncs %[1]s 1\n", ps.name, ps.master.port)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		ps.sentinels = append(ps.sentinels, startProc(t, server, dir, fmt.Sprintf("sentinel-%d", i), freePort(t), conf, "--sentinel"))
	}
	ctx := context.Background()
	waitFor(t, 60*time.Second, "private Sentinel set ready", func() error {
		rc := redis.NewClient(&redis.Options{Addr: ps.replica.addr(), MaxRetries: -1})
		info, err := rc.Info(ctx, "replication").Result()
		rc.Close()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica not in sync")
		}
		for _, s := range ps.sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: s.addr(), MaxRetries: -1})
			replicas, err1 := sc.Replicas(ctx, ps.name).Result()
			q, err2 := sc.CkQuorum(ctx, ps.name).Result()
			sc.Close()
			if err1 != nil || err2 != nil {
				return fmt.Errorf("sentinel %s: %v, %v", s.addr(), err1, err2)
			}
			if len(replicas) != 1 || !strings.HasPrefix(q, "OK") {
				return fmt.Errorf("sentinel %s: %d replicas known, ckquorum %q", s.addr(), len(replicas), q)
			}
		}
		return nil
	})
	return ps
}

// sentinelAddrs returns the Sentinels' addresses.
func (ps *privateSentinel) sentinelAddrs() []string {
	var out []string
	for _, s := range ps.sentinels {
		out = append(out, s.addr())
	}
	return out
}
