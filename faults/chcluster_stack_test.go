package faults

// A private ClickHouse cluster for the ClickHouse-cluster fault scenarios
// (chcluster_integration_test.go): a standalone ZooKeeper and four ClickHouse servers,
// 2 shards x 2 replicas, as this test's own child processes on free loopback ports. Each
// node runs deploy/clickhouse/config.xml (as newClickHouse renders it) plus
// deploy/clickhouse/cluster.xml.tmpl in its config.d and cluster-users.xml in its users.d,
// the placeholders filled as scripts/services-chcluster.sh fills them for the dev cluster
// (which this one leaves alone: the scenarios stop and restart their own processes).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/internal/testkit"
	"raterd/sinks/clickhouse"
)

// chClusterName is the cluster of replicated shards in cluster.xml.tmpl.
const chClusterName = "raterd"

// zooKeeper is a standalone ZooKeeper whose data directory survives restarts, so a
// stopped one comes back with every znode (and every session, until it expires).
type zooKeeper struct {
	port int
	p    *proc
}

// zooKeeperClasspath is RATERD_TEST_ZOOKEEPER_CLASSPATH (scripts/services.sh env), or the
// jars of the installed Debian packages found as scripts/services-chcluster.sh finds them.
func zooKeeperClasspath(t *testing.T) string {
	t.Helper()
	if cp := os.Getenv("RATERD_TEST_ZOOKEEPER_CLASSPATH"); cp != "" {
		return cp
	}
	out, _ := exec.Command("dpkg", "-L", "zookeeper", "libzookeeper-java").Output()
	var jars []string
	for _, line := range strings.Split(string(out), "\n") {
		if line == "/usr/share/java/zookeeper.jar" || line == "/usr/share/java/zookeeper-jute.jar" {
			jars = append(jars, line)
		}
	}
	if len(jars) == 0 {
		return testkit.Service(t, "RATERD_TEST_ZOOKEEPER_CLASSPATH", "ZooKeeper server jars (scripts/services.sh up cluster installs them)")
	}
	return strings.Join(jars, ":")
}

func newZooKeeper(t *testing.T, dir string) *zooKeeper {
	t.Helper()
	cp := zooKeeperClasspath(t)
	port := freePort(t)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	// As scripts/services-chcluster.sh's zoo.cfg, on a private port and directory.
	cfg := filepath.Join(dir, "zoo.cfg")
	text := strings.Join([]string{"tickTime=2000", "dataDir=" + filepath.Join(dir, "data"), "clientPort=" + strconv.Itoa(port),
		"clientPortAddress=127.0.0.1", "maxClientCnxns=0", "admin.enableServer=false", "4lw.commands.whitelist=ruok,srvr,mntr"}, "\n") + "\n"
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return &zooKeeper{port: port, p: &proc{name: "zookeeper", dir: dir, log: filepath.Join(dir, "zookeeper.log"),
		args: []string{"java", "-Xms32m", "-Xmx192m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
			"-cp", cp, "org.apache.zookeeper.server.ZooKeeperServerMain", cfg}}}
}

// ruok is ZooKeeper's four-letter health check: "imok" when it serves.
func (z *zooKeeper) ruok() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "-c",
		fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d; printf ruok >&3; head -c4 <&3", z.port)).Output()
	if err != nil {
		return fmt.Errorf("zookeeper ruok: %w", err)
	}
	if string(out) != "imok" {
		return fmt.Errorf("zookeeper ruok: %q", out)
	}
	return nil
}

func (z *zooKeeper) start() error {
	if err := z.p.start(); err != nil {
		return err
	}
	return z.p.waitUntil(2*time.Minute, z.ruok)
}

// chNode is one server of the private cluster.
type chNode struct {
	*clickhouseServer
	name  string // s1r1, s1r2, s2r1, s2r2: the replica macro
	shard int    // 1 or 2
}

// chCluster is the private 2 x 2 cluster and its ZooKeeper.
type chCluster struct {
	zk    *zooKeeper
	nodes []*chNode // s1r1, s1r2, s2r1, s2r2
}

// newClickHouseCluster renders four nodes' configs under dir for ZooKeeper zk; start
// them with start.
func newClickHouseCluster(t *testing.T, dir string, zk *zooKeeper) *chCluster {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("../deploy/clickhouse", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	base, tmpl, users, clusterUsers := read("config.xml"), read("cluster.xml.tmpl"), read("users.xml"), read("cluster-users.xml")
	c := &chCluster{zk: zk}
	type ports struct{ tcp, http, interserver int }
	var ps []ports
	for range 4 {
		ps = append(ps, ports{freePort(t), freePort(t), freePort(t)})
	}
	for i, name := range []string{"s1r1", "s1r2", "s2r1", "s2r2"} {
		home := filepath.Join(dir, name)
		for _, d := range []string{"etc/config.d", "etc/users.d", "log", "data", "tmp"} {
			if err := os.MkdirAll(filepath.Join(home, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		p := ps[i]
		cfg := secureBlock.ReplaceAllString(base, "")
		cfg = strings.NewReplacer("@STATE@", home, "<tcp_port>9000</tcp_port>", fmt.Sprintf("<tcp_port>%d</tcp_port>", p.tcp),
			"<http_port>8123</http_port>", fmt.Sprintf("<http_port>%d</http_port>", p.http)).Replace(cfg)
		if strings.Contains(cfg, "tcp_port_secure") || !strings.Contains(cfg, strconv.Itoa(p.tcp)) {
			t.Fatal("deploy/clickhouse/config.xml changed shape; update newClickHouseCluster")
		}
		// The placeholders of cluster.xml.tmpl, as chcluster_render fills them.
		node := strings.NewReplacer("@INTERSERVER@", strconv.Itoa(p.interserver), "@SHARD@", "0"+name[1:2], "@REPLICA@", name,
			"@ZK_PORT@", strconv.Itoa(zk.port), "@TCP1@", strconv.Itoa(ps[0].tcp), "@TCP2@", strconv.Itoa(ps[1].tcp),
			"@TCP3@", strconv.Itoa(ps[2].tcp), "@TCP4@", strconv.Itoa(ps[3].tcp)).Replace(tmpl)
		if m := regexp.MustCompile(`@[A-Z0-9_]+@`).FindString(node); m != "" {
			t.Fatalf("deploy/clickhouse/cluster.xml.tmpl: placeholder %s not filled; update newClickHouseCluster", m)
		}
		files := map[string]string{"etc/config.xml": cfg, "etc/config.d/cluster.xml": node, "etc/users.xml": users, "etc/users.d/cluster.xml": clusterUsers}
		for f, text := range files {
			if err := os.WriteFile(filepath.Join(home, f), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		c.nodes = append(c.nodes, &chNode{name: name, shard: i/2 + 1, clickhouseServer: &clickhouseServer{
			addr: fmt.Sprintf("127.0.0.1:%d", p.tcp),
			p: &proc{name: "ch-" + name, dir: home, log: filepath.Join(home, "clickhouse.out"),
				args: []string{"clickhouse-server", "--config-file=" + filepath.Join(home, "etc/config.xml")}}}})
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			_ = n.p.stop(syscall.SIGKILL, 10*time.Second)
		}
		_ = zk.p.stop(syscall.SIGKILL, 10*time.Second)
	})
	return c
}

// node returns the node whose replica macro is name.
func (c *chCluster) node(name string) *chNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	panic("no cluster node " + name)
}

// addrs are the nodes' native addresses, in the order of the template (s1r1 … s2r2).
func (c *chCluster) addrs() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.addr)
	}
	return out
}

// start starts ZooKeeper and every node that is not running, in parallel, and waits
// until each node answers and reaches ZooKeeper.
func (c *chCluster) start() error {
	if !c.zk.p.running() {
		if err := c.zk.start(); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(c.nodes))
	for i, n := range c.nodes {
		if n.p.running() {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = n.startReplica() }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startReplica starts the node and waits until it reaches ZooKeeper (the dev cluster's
// readiness check: 18.16's 3.4-protocol client against the 3.8 server).
func (n *chNode) startReplica() error {
	if err := n.start(); err != nil {
		return err
	}
	return n.p.waitUntil(2*time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := clickhouse.Open(ctx, n.config("default"))
		if err != nil {
			return err
		}
		defer conn.Close()
		var k uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.zookeeper WHERE path = '/'").Scan(&k); err != nil {
			return err
		}
		if k == 0 {
			return errors.New("no znodes under / seen")
		}
		return nil
	})
}

// open connects to the node's database db.
func (n *chNode) open(t *testing.T, db string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(context.Background(), n.config(db))
	if err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
	return conn
}
