package testkit

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// PrivateRedis is a redis-server process of a test's own, on a free loopback port, so that
// the test can kill and restart it without touching the shared Redis. It runs without
// persistence: a restart comes back empty, like a crashed cache.
type PrivateRedis struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

// StartPrivateRedis starts a PrivateRedis and waits until it answers; it is killed when
// the test ends. Without redis-server on PATH it skips the test, or fails it when
// RATERD_REQUIRE_SERVICES is set (scripts/services.sh up installs redis-server).
func StartPrivateRedis(t testing.TB) *PrivateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(RequireServicesEnv) != "" {
			t.Fatal("redis-server is not on PATH; run scripts/services.sh up (it installs it)")
		}
		t.Skip("redis-server is not on PATH; run scripts/services.sh up (it installs it)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &PrivateRedis{t: t, bin: bin, port: port, dir: t.TempDir()}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Addr returns the server's host:port; it stays the same across restarts.
func (r *PrivateRedis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// Start starts the server (again, after Stop: on the same port, empty) and waits up to
// 15s until it answers PING, failing the test otherwise.
func (r *PrivateRedis) Start() {
	r.t.Helper()
	logPath := filepath.Join(r.dir, "redis.log")
	log, err := os.Create(logPath)
	if err != nil {
		r.t.Fatal(err)
	}
	defer log.Close()
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--daemonize", "no", "--logfile", "")
	r.cmd.Stdout, r.cmd.Stderr = log, log
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logPath)
			r.t.Fatalf("private redis-server on %s did not answer: %s", r.Addr(), out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server with SIGKILL (a crash, not a clean shutdown) and waits for it to
// exit. Stopping a stopped server does nothing.
func (r *PrivateRedis) Stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}
