package cache

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"raterd/internal/tlsfiles/tlstest"
)

// fakeTLSRedis is a loopback TLS listener that speaks just enough RESP for a go-redis
// PING (HELLO is refused, so the client falls back to RESP2) and records the serial of
// each client certificate it sees.
type fakeTLSRedis struct {
	addr    string
	mu      sync.Mutex
	serials []string
}

func newFakeTLSRedis(t *testing.T, cfg *tls.Config) *fakeTLSRedis {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	f := &fakeTLSRedis{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c.(*tls.Conn))
		}
	}()
	return f
}

func (f *fakeTLSRedis) serve(c *tls.Conn) {
	defer c.Close()
	if err := c.Handshake(); err != nil {
		return
	}
	if pc := c.ConnectionState().PeerCertificates; len(pc) > 0 {
		f.mu.Lock()
		f.serials = append(f.serials, pc[0].SerialNumber.String())
		f.mu.Unlock()
	}
	r := bufio.NewReader(c)
	for {
		args, err := readCommand(r)
		if err != nil {
			return
		}
		reply := "+OK\r\n"
		switch strings.ToUpper(args[0]) {
		case "HELLO":
			reply = "-ERR unknown command 'HELLO'\r\n"
		case "PING":
			reply = "+PONG\r\n"
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, fmt.Errorf("not an array: %q", line)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 1 {
		return nil, fmt.Errorf("bad array length %q", line)
	}
	args := make([]string, n)
	for i := range args {
		hdr, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(hdr, "$")))
		if err != nil {
			return nil, err
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args[i] = string(buf[:size])
	}
	return args, nil
}

func (f *fakeTLSRedis) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.serials...)
}

// ping connects a new client with cfg's options and PINGs.
func ping(cfg RedisConfig) error {
	opts := RedisOptions(cfg)
	opts.MaxRetries = -1
	client := redis.NewUniversalClient(opts)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return client.Ping(ctx).Err()
}

func TestRedisMutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "redis CA")
	dir := t.TempDir()
	srv := ca.WriteFiles(t, t.TempDir(), "server", tlstest.Leaf{Name: "redis.internal", NoIP: true})
	client := ca.WriteFiles(t, dir, "client", tlstest.Leaf{Serial: 31})
	scert, err := tls.LoadX509KeyPair(srv.Cert, srv.Key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	f := newFakeTLSRedis(t, &tls.Config{Certificates: []tls.Certificate{scert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})

	// tls_server_name: the certificate is for redis.internal, dialled as 127.0.0.1.
	cfg := RedisConfig{Addrs: []string{f.addr}, TLSCAFile: client.CA, TLSCertFile: client.Cert, TLSKeyFile: client.Key, TLSServerName: "redis.internal"}
	if err := cfg.Validate("redis"); err != nil {
		t.Fatal(err)
	}
	if !cfg.TLSOn() {
		t.Fatal("tls_* keys did not turn TLS on")
	}
	if err := ping(cfg); err != nil {
		t.Fatalf("PING over mutual TLS: %v", err)
	}
	if got := f.seen(); len(got) == 0 || got[len(got)-1] != "31" {
		t.Fatalf("client certificates seen: %v, want serial 31", got)
	}

	// Without the server name the certificate is not for 127.0.0.1's name.
	noName := cfg
	noName.TLSServerName = ""
	if err := noName.Validate("redis"); err != nil {
		t.Fatal(err)
	}
	if err := ping(noName); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("PING without tls_server_name: %v, want a certificate error", err)
	}

	// Another CA: not trusted.
	other := tlstest.NewCA(t, "other CA")
	otherCA := tlstest.WriteFile(t, t.TempDir(), "other.pem", other.PEM)
	wrongCA := cfg
	wrongCA.TLSCAFile = otherCA
	if err := wrongCA.Validate("redis"); err != nil {
		t.Fatal(err)
	}
	if err := ping(wrongCA); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("PING with another CA: %v, want unknown authority", err)
	}

	// A renewed client certificate is presented by the next connection, no restart.
	c2, k2 := ca.Issue(t, tlstest.Leaf{Serial: 32})
	tlstest.WriteFile(t, dir, "client.key", k2)
	tlstest.WriteFile(t, dir, "client.crt", c2)
	later := time.Now().Add(2 * time.Second)
	for _, p := range []string{client.Cert, client.Key} {
		if err := chtimes(p, later); err != nil {
			t.Fatal(err)
		}
	}
	if err := ping(cfg); err != nil {
		t.Fatalf("PING after renewal: %v", err)
	}
	if got := f.seen(); got[len(got)-1] != "32" {
		t.Fatalf("client certificates seen: %v, want serial 32 last", got)
	}
}

func TestRedisTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.pem")
	ca := tlstest.NewCA(t, "ca")
	f := ca.WriteFiles(t, dir, "c", tlstest.Leaf{})
	for _, tc := range []struct {
		name string
		cfg  RedisConfig
		want string
	}{
		{"missing ca", RedisConfig{TLSCAFile: missing}, "redis.tls_ca_file: open " + missing},
		{"cert without key", RedisConfig{TLSCertFile: f.Cert}, "redis.tls_key_file: required with redis.tls_cert_file"},
		{"key without cert", RedisConfig{TLSKeyFile: f.Key}, "redis.tls_cert_file: required with redis.tls_key_file"},
		{"missing cert", RedisConfig{TLSCertFile: missing, TLSKeyFile: f.Key}, "redis.tls_cert_file: stat " + missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate("redis"); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err %v; want prefix %q", err, tc.want)
			}
		})
	}
	// tls: true alone: the system roots, TLS 1.2 at least.
	on := RedisConfig{Addrs: []string{"a:1"}, TLS: true}
	if err := on.Validate("redis"); err != nil {
		t.Fatal(err)
	}
	if o := RedisOptions(on); o.TLSConfig == nil || o.TLSConfig.MinVersion != tls.VersionTLS12 || o.TLSConfig.RootCAs != nil {
		t.Fatalf("tls: true options: %+v", o.TLSConfig)
	}
	if o := RedisOptions(RedisConfig{Addrs: []string{"a:1"}, TLSServerName: "x"}); o.TLSConfig == nil || o.TLSConfig.ServerName != "x" {
		t.Fatalf("unvalidated tls_server_name: %+v", o.TLSConfig)
	}

}

// chtimes sets path's modification time to mod.
func chtimes(path string, mod time.Time) error { return os.Chtimes(path, mod, mod) }
