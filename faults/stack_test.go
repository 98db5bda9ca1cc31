package faults

// A private service stack for the fault-injection suite: a Kafka broker, Redis and
// ClickHouse run as this test's own child processes, on ports of their own, from the
// binaries and jars scripts/services.sh installs. The suite stops, kills and restarts
// them at will without disturbing the shared services other packages test against.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/internal/testkit"
	"raterd/sinks/clickhouse"
)

// freePort returns a loopback port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a child process in its own process group, its output in a log file.
type proc struct {
	name string
	args []string
	dir  string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit status, once done is closed
}

func (p *proc) start() error {
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "\n==== %s: start %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(p.args, " "))
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = p.dir, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd, p.done, p.err = cmd, make(chan struct{}), nil
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return nil
}

func (p *proc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends sig to the process group and waits up to wait for the exit, then kills it.
// It returns the exit status.
func (p *proc) stop(sig syscall.Signal, wait time.Duration) error {
	if p.cmd == nil {
		return nil
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
	case <-time.After(wait):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	return p.err
}

// tail returns the last lines of the process's log, for failure messages.
func (p *proc) tail(lines int) string {
	b, _ := os.ReadFile(p.log)
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// waitUntil polls ready every 100ms until it returns nil, the process exits, or timeout.
func (p *proc) waitUntil(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if !p.running() {
			return fmt.Errorf("%s exited during startup (%v); log:\n%s", p.name, p.err, p.tail(30))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v; log:\n%s", p.name, timeout, err, p.tail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kafkaBroker is a single-node KRaft broker whose log directory survives restarts.
type kafkaBroker struct {
	addr string
	p    *proc
}

func newKafka(t *testing.T, dir string) *kafkaBroker {
	t.Helper()
	libs := testkit.Service(t, "RATERD_TEST_KAFKA_LIBS", "Kafka jars")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	controller := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	props := filepath.Join(dir, "server.properties")
	// As scripts/services.sh's broker, on private ports and a private log directory.
	text := strings.Join([]string{
		"process.roles=broker,controller", "node.id=1",
		"controller.quorum.bootstrap.servers=" + controller,
		"listeners=PLAINTEXT://" + addr + ",CONTROLLER://" + controller,
		"advertised.listeners=PLAINTEXT://" + addr + ",CONTROLLER://" + controller,
		"controller.listener.names=CONTROLLER", "inter.broker.listener.name=PLAINTEXT",
		"listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"log.dirs=" + filepath.Join(dir, "data"), "num.partitions=4",
		"default.replication.factor=1", "min.insync.replicas=1", "auto.create.topics.enable=true",
		"offsets.topic.replication.factor=1", "offsets.topic.num.partitions=4",
		"transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1",
		"share.coordinator.state.topic.replication.factor=1", "share.coordinator.state.topic.min.isr=1",
		"group.initial.rebalance.delay.ms=0", "group.min.session.timeout.ms=2000",
		"num.network.threads=2", "num.io.threads=2",
	}, "\n") + "\n"
	if err := os.WriteFile(props, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	java := func(heap string, args ...string) []string {
		return append([]string{"java", heap, "-Dlog4j2.configurationFile=" + filepath.Join(root, "deploy/kafka/log4j2.xml"),
			"-Dkafka.logs.dir=" + filepath.Join(dir, "logs"), "-cp", filepath.Join(libs, "*")}, args...)
	}
	format := exec.Command("java")
	format.Args = java("-Xmx256m", "kafka.tools.StorageTool", "format", "--standalone", "-t", "cmF0ZXJkLWZhdWx0cy0x", "-c", props)
	if out, err := format.CombinedOutput(); err != nil {
		t.Fatalf("format kafka storage: %v\n%s", err, out)
	}
	return &kafkaBroker{addr: addr, p: &proc{name: "kafka", dir: dir, log: filepath.Join(dir, "kafka.log"),
		args: java("-Xmx512m", "-XX:+UseG1GC", "kafka.Kafka", props)}}
}

func (k *kafkaBroker) start() error {
	if err := k.p.start(); err != nil {
		return err
	}
	return k.p.waitUntil(2*time.Minute, func() error {
		conn, err := kafka.DialContext(context.Background(), "tcp", k.addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = conn.Brokers()
		return err
	})
}

// redisServer is a Redis without persistence: a restart empties the cache, as a real
// failover to a fresh replica might.
type redisServer struct {
	addr string
	p    *proc
}

func newRedis(t *testing.T, dir string) *redisServer {
	port := freePort(t)
	return &redisServer{addr: fmt.Sprintf("127.0.0.1:%d", port), p: &proc{name: "redis", dir: dir, log: filepath.Join(dir, "redis.log"),
		args: []string{"redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}}}
}

func (r *redisServer) start() error {
	if err := r.p.start(); err != nil {
		return err
	}
	return r.p.waitUntil(30*time.Second, func() error {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// clickhouseServer runs deploy/clickhouse's config on private ports; its data directory
// survives restarts.
type clickhouseServer struct {
	addr string
	p    *proc
}

// secureBlock is the TLS part of deploy/clickhouse/config.xml, which the private server
// does without.
var secureBlock = regexp.MustCompile(`(?s)\s*<!-- Native protocol over TLS.*?</openSSL>`)

func newClickHouse(t *testing.T, dir string) *clickhouseServer {
	t.Helper()
	tmpl, err := os.ReadFile("../deploy/clickhouse/config.xml")
	if err != nil {
		t.Fatal(err)
	}
	tcp, http := freePort(t), freePort(t)
	cfg := secureBlock.ReplaceAllString(string(tmpl), "")
	cfg = strings.NewReplacer("@STATE@", dir, "<tcp_port>9000</tcp_port>", fmt.Sprintf("<tcp_port>%d</tcp_port>", tcp),
		"<http_port>8123</http_port>", fmt.Sprintf("<http_port>%d</http_port>", http)).Replace(cfg)
	if strings.Contains(cfg, "tcp_port_secure") || !strings.Contains(cfg, strconv.Itoa(tcp)) {
		t.Fatal("deploy/clickhouse/config.xml changed shape; update newClickHouse")
	}
	etc := filepath.Join(dir, "etc")
	for _, d := range []string{etc, filepath.Join(dir, "log")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	users, err := os.ReadFile("../deploy/clickhouse/users.xml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "config.xml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "users.xml"), users, 0o644); err != nil {
		t.Fatal(err)
	}
	return &clickhouseServer{addr: fmt.Sprintf("127.0.0.1:%d", tcp), p: &proc{name: "clickhouse", dir: dir,
		log: filepath.Join(dir, "clickhouse.out"), args: []string{"clickhouse-server", "--config-file=" + filepath.Join(etc, "config.xml")}}}
}

func (c *clickhouseServer) start() error {
	if err := c.p.start(); err != nil {
		return err
	}
	return c.p.waitUntil(90*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		conn, err := clickhouse.Open(ctx, c.config("default"))
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// config is a validated connection config for database db.
func (c *clickhouseServer) config(db string) clickhouse.Config {
	cfg := clickhouse.Config{Addrs: []string{c.addr}, Database: db}
	if err := cfg.Validate("clickhouse"); err != nil {
		panic(err) // a constant config; cannot fail
	}
	return cfg
}

// stack is the suite's private Kafka, Redis and ClickHouse.
type stack struct {
	kafka *kafkaBroker
	redis *redisServer
	ch    *clickhouseServer
}

func startStack(t *testing.T) *stack {
	t.Helper()
	dir := t.TempDir()
	sub := func(name string) string {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	s := &stack{kafka: newKafka(t, sub("kafka")), redis: newRedis(t, sub("redis")), ch: newClickHouse(t, sub("clickhouse"))}
	t.Cleanup(func() {
		for _, p := range []*proc{s.kafka.p, s.redis.p, s.ch.p} {
			_ = p.stop(syscall.SIGTERM, 30*time.Second)
		}
	})
	errc := make(chan error, 3)
	for _, start := range []func() error{s.kafka.start, s.redis.start, s.ch.start} {
		go func() { errc <- start() }()
	}
	var errs []error
	for range 3 {
		errs = append(errs, <-errc)
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return s
}
