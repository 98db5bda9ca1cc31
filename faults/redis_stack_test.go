package faults

// Private Redis Clusters and Sentinel sets for TestRedisFailoverDrain: redis-server
// processes of the test's own on free ports (proc, so that a kill -9 is a crash of that
// process alone), as scorer/cache's failover tests start theirs, beside the stack's single
// Redis (stack_test.go).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"raterd/internal/testkit"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedisProc starts a redis-server (or, with --sentinel among args, a Sentinel) named
// name on a free port in dir and waits until it answers PING.
func startRedisProc(t *testing.T, dir, name string, args ...string) (*proc, string) {
	t.Helper()
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p := &proc{name: name, dir: dir, log: filepath.Join(dir, name+".log"),
		args: append(append([]string{"redis-server"}, args...), "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--daemonize", "no")}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.stop(syscall.SIGKILL, 5*time.Second) })
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	if err := p.waitUntil(30*time.Second, func() error { return c.Ping(context.Background()).Err() }); err != nil {
		t.Fatal(err)
	}
	return p, addr
}

// redisClusterSet is a Redis Cluster of 3 masters and 3 replicas.
type redisClusterSet struct {
	procs map[string]*proc // by address
	addrs []string
}

// redisNodeLine is one line of CLUSTER NODES (testkit.RedisClusterNodes), in this
// package's field names.
type redisNodeLine struct {
	id, addr, flags, masterID string
	slots                     int
}

func (n redisNodeLine) master() bool { return strings.Contains(n.flags, "master") }
func (n redisNodeLine) failed() bool { return strings.Contains(n.flags, "fail") }

// redisClusterNodes reads CLUSTER NODES as the node at addr sees it.
func redisClusterNodes(ctx context.Context, addr string) ([]redisNodeLine, error) {
	ns, err := testkit.RedisClusterNodes(ctx, addr)
	out := make([]redisNodeLine, len(ns))
	for i, n := range ns {
		out[i] = redisNodeLine{id: n.ID, addr: n.Addr, flags: n.Flags, masterID: n.MasterID, slots: n.Slots}
	}
	return out, err
}

// redisInSync reports an error unless the replica at addr has its link to its master up.
func redisInSync(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return fmt.Errorf("INFO replication on %s: %w", addr, err)
	}
	if !strings.Contains(info, "master_link_status:up") {
		return fmt.Errorf("replica %s not in sync", addr)
	}
	return nil
}

// startRedisClusterSet starts six cluster nodes (cluster-node-timeout 1000 ms), joins them
// with redis-cli --cluster create --cluster-replicas 1, and waits until every node reports
// cluster_state:ok with every slot assigned and the three replicas are in sync.
func startRedisClusterSet(t *testing.T, dir string) *redisClusterSet {
	t.Helper()
	rc := &redisClusterSet{procs: map[string]*proc{}}
	for i := range 6 {
		name := fmt.Sprintf("redis-node-%d", i)
		nd := filepath.Join(dir, name)
		if err := os.MkdirAll(nd, 0o755); err != nil {
			t.Fatal(err)
		}
		p, addr := startRedisProc(t, nd, name, "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(freePort(t)),
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000", "--save", "", "--appendonly", "no")
		rc.procs[addr] = p
		rc.addrs = append(rc.addrs, addr)
	}
	out, err := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, rc.addrs...), "--cluster-replicas", "1", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx := context.Background()
	var last error
	if !waitFor(60*time.Second, func() bool { last = rc.ready(ctx); return last == nil }) {
		t.Fatalf("private Redis Cluster not ready: %v", last)
	}
	return rc
}

// ready returns nil once every node reports cluster_state:ok with all slots assigned and
// the first node sees 3 masters and 3 replicas in sync.
func (rc *redisClusterSet) ready(ctx context.Context) error {
	for _, a := range rc.addrs {
		c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
		info, err := c.ClusterInfo(ctx).Result()
		c.Close()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_assigned:16384") {
			return fmt.Errorf("%s: not ok", a)
		}
	}
	nodes, err := redisClusterNodes(ctx, rc.addrs[0])
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
		if err := redisInSync(ctx, n.addr); err != nil {
			return err
		}
	}
	if m != 3 || r != 3 {
		return fmt.Errorf("%d masters, %d replicas", m, r)
	}
	return nil
}

// replicaAddr is the address of some replica: raterd's seed, which a kill of a master
// leaves alive (the Cluster test of scorer/cache keeps its seed alive as well).
func (rc *redisClusterSet) replicaAddr(t *testing.T) string {
	t.Helper()
	nodes, err := redisClusterNodes(context.Background(), rc.addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if !n.master() {
			return n.addr
		}
	}
	t.Fatal("no replica in the Cluster")
	return ""
}

// dbSize is DBSIZE at addr.
func dbSize(ctx context.Context, addr string) (int64, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	n, err := c.DBSize(ctx).Result()
	if err != nil {
		return 0, fmt.Errorf("DBSIZE on %s: %w", addr, err)
	}
	return n, nil
}

// busiestMaster returns the master holding the most keys and its replica (the line whose
// master id is the victim's), as seen by the node at from.
func (rc *redisClusterSet) busiestMaster(ctx context.Context, from string) (victim, replica redisNodeLine, keys int64, err error) {
	nodes, err := redisClusterNodes(ctx, from)
	if err != nil {
		return victim, replica, 0, err
	}
	keys = -1
	for _, n := range nodes {
		if !n.master() || n.failed() {
			continue
		}
		k, err := dbSize(ctx, n.addr)
		if err != nil {
			return victim, replica, 0, err
		}
		if k > keys {
			victim, keys = n, k
		}
	}
	for _, n := range nodes {
		if n.masterID == victim.id {
			replica = n
		}
	}
	if victim.id == "" || replica.id == "" {
		return victim, replica, 0, errors.New("no master with a replica")
	}
	return victim, replica, keys, nil
}

// redisSentinelSet is a master, its replica and three Sentinels monitoring it.
type redisSentinelSet struct {
	master, replica         *proc
	masterAddr, replicaAddr string
	sentinels               []string
	name                    string
}

// startRedisSentinelSet starts the set (down-after 1000 ms, failover-timeout 5000 ms,
// quorum 2) and waits until the replica is in sync and every Sentinel knows the replica
// and a quorum (SENTINEL CKQUORUM OK).
func startRedisSentinelSet(t *testing.T, dir string) *redisSentinelSet {
	t.Helper()
	rs := &redisSentinelSet{name: "raterd-drain"}
	rs.master, rs.masterAddr = startRedisProc(t, dir, "redis-master", "--save", "", "--appendonly", "no")
	_, mport, _ := net.SplitHostPort(rs.masterAddr)
	rs.replica, rs.replicaAddr = startRedisProc(t, dir, "redis-replica", "--save", "", "--appendonly", "no", "--replicaof", "127.0.0.1", mport)
	for i := range 3 {
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", i))
		body := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]s 2\nsentinel down-after-milliseconds %[1]s 1000\n"+
			"sentinel failover-timeout %[1]s 5000\nsentinel parallel-syncs %[1]s 1\n", rs.name, mport)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, addr := startRedisProc(t, dir, fmt.Sprintf("sentinel-%d", i), conf, "--sentinel")
		rs.sentinels = append(rs.sentinels, addr)
	}
	ctx := context.Background()
	var last error
	ok := waitFor(60*time.Second, func() bool {
		if last = redisInSync(ctx, rs.replicaAddr); last != nil {
			return false
		}
		for _, s := range rs.sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: s, MaxRetries: -1})
			replicas, err1 := sc.Replicas(ctx, rs.name).Result()
			q, err2 := sc.CkQuorum(ctx, rs.name).Result()
			sc.Close()
			if err1 != nil || err2 != nil || len(replicas) != 1 || !strings.HasPrefix(q, "OK") {
				last = fmt.Errorf("sentinel %s: %d replicas known, ckquorum %q, %v, %v", s, len(replicas), q, err1, err2)
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("private Sentinel set not ready: %v", last)
	}
	return rs
}

// currentMaster asks the Sentinels for the master's address.
func (rs *redisSentinelSet) currentMaster(ctx context.Context) (string, error) {
	return testkit.SentinelMaster(ctx, rs.sentinels, rs.name)
}
