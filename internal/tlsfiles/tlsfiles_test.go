package tlsfiles

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"raterd/internal/tlsfiles/tlstest"
)

// replace writes data to path the way a renewal does: a new file renamed over the old
// one, with a later modification time.
func replace(t *testing.T, path string, data []byte, mod time.Time) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mod, mod); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// renew issues a new certificate of ca as l says and puts it in place of f's.
func renew(t *testing.T, ca *tlstest.CA, f tlstest.Files, l tlstest.Leaf, step int) {
	t.Helper()
	c, k := ca.Issue(t, l)
	mod := time.Now().Add(time.Duration(step) * time.Second)
	replace(t, f.Key, k, mod)
	replace(t, f.Cert, c, mod)
}

// serve accepts TLS connections on a loopback listener with cfg and writes, on each, the
// serial number of the client's certificate ("none" without one). It returns the address.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if err := tc.Handshake(); err != nil {
					return
				}
				serial := "none"
				if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 {
					serial = pc[0].SerialNumber.String()
				}
				_, _ = io.WriteString(tc, serial)
			}()
		}
	}()
	return ln.Addr().String()
}

// exchange dials addr with cfg and returns what the server wrote and the serial of the
// server's certificate.
func exchange(t *testing.T, addr string, cfg *tls.Config) (string, string, error) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		return "", "", err
	}
	return string(b), c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// logBuffer is a concurrency-safe log destination.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func TestClientCertificateRenewedWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	f := ca.WriteFiles(t, dir, "client", tlstest.Leaf{Serial: 101})
	srv := ca.WriteFiles(t, t.TempDir(), "server", tlstest.Leaf{Serial: 900})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	scert, err := tls.LoadX509KeyPair(srv.Cert, srv.Key)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, &tls.Config{Certificates: []tls.Certificate{scert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})

	var logs logBuffer
	cfg, err := Client{CAFile: f.CA, CertFile: f.Cert, KeyFile: f.Key, Logger: slog.New(slog.NewTextHandler(&logs, nil))}.Config(Nested("kafka.tls"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := exchange(t, addr, cfg.Clone()); err != nil || got != "101" {
		t.Fatalf("first handshake: server saw %q, %v; want serial 101", got, err)
	}
	renew(t, ca, f, tlstest.Leaf{Serial: 102}, 1)
	if got, _, err := exchange(t, addr, cfg.Clone()); err != nil || got != "102" {
		t.Fatalf("after renewal: server saw %q, %v; want serial 102", got, err)
	}
	if !strings.Contains(logs.String(), "TLS certificate reloaded") {
		t.Errorf("no reload logged:\n%s", logs.String())
	}

	// A half-written renewal (a key that is not the certificate's) fails the handshake
	// with the keys named, is logged once, and the next good renewal is taken.
	c3, _ := ca.Issue(t, tlstest.Leaf{Serial: 103})
	replace(t, f.Cert, c3, time.Now().Add(2*time.Second))
	for range 3 {
		_, _, err = exchange(t, addr, cfg.Clone())
		if err == nil || !strings.Contains(err.Error(), "kafka.tls.cert_file and kafka.tls.key_file: ") {
			t.Fatalf("mismatched pair: err %v; want one naming kafka.tls.cert_file and kafka.tls.key_file", err)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("the broken pair was logged %d times, want once:\n%s", n, logs.String())
	}
	renew(t, ca, f, tlstest.Leaf{Serial: 104}, 3)
	if got, _, err := exchange(t, addr, cfg.Clone()); err != nil || got != "104" {
		t.Fatalf("after the fix: server saw %q, %v; want serial 104", got, err)
	}
}

func TestClientCertificateExpired(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	f := ca.WriteFiles(t, t.TempDir(), "client", tlstest.Leaf{Serial: 7})
	srv := ca.WriteFiles(t, t.TempDir(), "server", tlstest.Leaf{})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	scert, err := tls.LoadX509KeyPair(srv.Cert, srv.Key)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, &tls.Config{Certificates: []tls.Certificate{scert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})
	var logs logBuffer
	cfg, err := Client{CAFile: f.CA, CertFile: f.Cert, KeyFile: f.Key, Logger: slog.New(slog.NewTextHandler(&logs, nil))}.Config(Prefixed("redis"))
	if err != nil {
		t.Fatal(err)
	}
	expired := time.Now().Add(-time.Minute).Truncate(time.Second)
	renew(t, ca, f, tlstest.Leaf{Serial: 8, NotAfter: expired}, 1)
	for range 2 {
		_, _, err = exchange(t, addr, cfg.Clone())
		want := "redis.tls_cert_file: the certificate in " + f.Cert + " expired at " + expired.UTC().Format(time.RFC3339)
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrExpired) {
			t.Fatalf("expired certificate: err %v; want %q (ErrExpired)", err, want)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings, want one:\n%s", n, logs.String())
	}

	// An expired certificate at start is an error of the config.
	_, err = Client{CertFile: f.Cert, KeyFile: f.Key}.Config(Prefixed("redis"))
	if err == nil || !strings.Contains(err.Error(), "redis.tls_cert_file: the certificate in ") || !errors.Is(err, ErrExpired) {
		t.Fatalf("expired at start: err %v", err)
	}
}

func TestServerCertificateRenewedWithoutRestart(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	f := ca.WriteFiles(t, t.TempDir(), "admin", tlstest.Leaf{Serial: 501})
	client := ca.WriteFiles(t, t.TempDir(), "client", tlstest.Leaf{Serial: 77})
	keys := ServerKeys{Section: "admin.tls", CertFile: "admin.tls.cert_file", KeyFile: "admin.tls.key_file", ClientCAFile: "admin.tls.client_ca_file"}
	scfg, err := Server{CertFile: f.Cert, KeyFile: f.Key, ClientCAFile: f.CA}.Config(keys)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, scfg)
	ccfg, err := Client{CAFile: f.CA, CertFile: client.Cert, KeyFile: client.Key}.Config(Nested("test"))
	if err != nil {
		t.Fatal(err)
	}
	if seen, serial, err := exchange(t, addr, ccfg.Clone()); err != nil || serial != "501" || seen != "77" {
		t.Fatalf("first handshake: server cert %q, client cert seen %q, %v", serial, seen, err)
	}
	renew(t, ca, f, tlstest.Leaf{Serial: 502}, 1)
	if _, serial, err := exchange(t, addr, ccfg.Clone()); err != nil || serial != "502" {
		t.Fatalf("after renewal: server cert %q, %v; want 502", serial, err)
	}
	// Without a client certificate: accepted when not required (VerifyClientCertIfGiven).
	plain, err := Client{CAFile: f.CA}.Config(Nested("test"))
	if err != nil {
		t.Fatal(err)
	}
	if seen, _, err := exchange(t, addr, plain); err != nil || seen != "none" {
		t.Fatalf("no client certificate: %q, %v", seen, err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	f := ca.WriteFiles(t, dir, "c", tlstest.Leaf{})
	other := ca.WriteFiles(t, t.TempDir(), "o", tlstest.Leaf{})
	notPEM := tlstest.WriteFile(t, dir, "not.pem", []byte("hello"))
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name string
		c    Client
		want string
	}{
		{"min version", Client{MinVersion: "1.1"}, `redis.tls_min_version: "1.1" is not 1.2 or 1.3`},
		{"missing ca", Client{CAFile: missing}, "redis.tls_ca_file: open " + missing + ": no such file"},
		{"ca not pem", Client{CAFile: notPEM}, "redis.tls_ca_file: " + notPEM + " holds no PEM certificate"},
		{"cert without key", Client{CertFile: f.Cert}, "redis.tls_key_file: required with redis.tls_cert_file"},
		{"key without cert", Client{KeyFile: f.Key}, "redis.tls_cert_file: required with redis.tls_key_file"},
		{"missing cert", Client{CertFile: missing, KeyFile: f.Key}, "redis.tls_cert_file: stat " + missing},
		{"missing key", Client{CertFile: f.Cert, KeyFile: missing}, "redis.tls_key_file: stat " + missing},
		{"mismatched pair", Client{CertFile: f.Cert, KeyFile: other.Key}, "redis.tls_cert_file and redis.tls_key_file: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Config(Prefixed("redis"))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err %v; want prefix %q", err, tc.want)
			}
		})
	}
	cfg, err := Client{MinVersion: "1.3", ServerName: "db.internal"}.Config(Prefixed("redis"))
	if err != nil || cfg.MinVersion != tls.VersionTLS13 || cfg.ServerName != "db.internal" || cfg.GetClientCertificate != nil {
		t.Fatalf("plain config: %+v, %v", cfg, err)
	}
	keys := ServerKeys{Section: "admin.tls", CertFile: "admin.tls.cert_file", KeyFile: "admin.tls.key_file", ClientCAFile: "admin.tls.client_ca_file"}
	if _, err := (Server{KeyFile: f.Key}).Config(keys); err == nil || err.Error() != "admin.tls.cert_file: required with admin.tls" {
		t.Errorf("server without cert: %v", err)
	}
	if _, err := (Server{CertFile: f.Cert, KeyFile: f.Key, ClientCAFile: notPEM}).Config(keys); err == nil || !strings.HasPrefix(err.Error(), "admin.tls.client_ca_file: ") {
		t.Errorf("server with a bad client CA: %v", err)
	}
}

func TestUnchangedFilesAreNotReread(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	f := ca.WriteFiles(t, t.TempDir(), "c", tlstest.Leaf{Serial: 5})
	p, err := newPair(Nested("x"), f.Cert, f.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := p.get()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if c, err := p.get(); err != nil || c != first {
			t.Fatalf("unchanged files gave another certificate (%v)", err)
		}
	}
	// A deleted file fails the handshake naming its key.
	if err := os.Remove(f.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := p.get(); err == nil || !strings.HasPrefix(err.Error(), "x.key_file: stat ") {
		t.Fatalf("deleted key: %v", err)
	}
}
