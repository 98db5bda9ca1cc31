package app

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"raterd/internal/tlsfiles/tlstest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
)

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// adminFixture is an admin server on httptest for cfg, ready, logging to logs.
func adminFixture(t *testing.T, cfg AdminConfig) (url string, logs *logBuffer) {
	t.Helper()
	logs = &logBuffer{}
	a, err := newAdminServer(cfg, prometheus.NewRegistry(), nil, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	a.ready.Store(true)
	srv := httptest.NewServer(a.srv.Handler)
	t.Cleanup(srv.Close)
	return srv.URL, logs
}

// getWith GETs url with an Authorization header (none when auth is "") through c.
func getWith(t *testing.T, c *http.Client, url, auth string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body), nil
}

// wantStatus GETs url with auth and fails unless it answers code.
func wantStatus(t *testing.T, url, auth string, code int) *http.Response {
	t.Helper()
	resp, body, err := getWith(t, http.DefaultClient, url, auth)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != code {
		t.Fatalf("GET %s (Authorization %q) = %d %q, want %d", url, auth, resp.StatusCode, body, code)
	}
	return resp
}

func TestAdminToken(t *testing.T) {
	tok := writeFile(t, t.TempDir(), "token", "s3cret-token\n")
	url, _ := adminFixture(t, AdminConfig{TokenFile: tok})

	resp := wantStatus(t, url+"/metrics", "", http.StatusUnauthorized)
	if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") || strings.Contains(got, "invalid_token") {
		t.Fatalf("WWW-Authenticate without a token = %q", got)
	}
	resp = wantStatus(t, url+"/metrics", "Bearer wrong", http.StatusUnauthorized)
	if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") || !strings.Contains(got, `error="invalid_token"`) {
		t.Fatalf("WWW-Authenticate with a wrong token = %q", got)
	}
	wantStatus(t, url+"/metrics", "Basic czNjcmV0LXRva2Vu", http.StatusUnauthorized)
	wantStatus(t, url+"/metrics", "Bearer s3cret-token-and-more", http.StatusUnauthorized)
	wantStatus(t, url+"/metrics", "Bearer s3cret-token", http.StatusOK)
	wantStatus(t, url+"/metrics", "bearer s3cret-token", http.StatusOK)
	// Health stays open for kubelet probes (admin.auth_health false).
	wantStatus(t, url+"/healthz", "", http.StatusOK)
	wantStatus(t, url+"/readyz", "", http.StatusOK)
}

func TestAdminAuthHealth(t *testing.T) {
	tok := writeFile(t, t.TempDir(), "token", "s3cret-token")
	url, _ := adminFixture(t, AdminConfig{TokenFile: tok, AuthHealth: true})
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		wantStatus(t, url+path, "", http.StatusUnauthorized)
		wantStatus(t, url+path, "Bearer s3cret-token", http.StatusOK)
	}
}

func TestAdminTokenRotation(t *testing.T) {
	dir := t.TempDir()
	tok := writeFile(t, dir, "token", "first-token")
	url, logs := adminFixture(t, AdminConfig{TokenFile: tok})
	wantStatus(t, url+"/metrics", "Bearer first-token", http.StatusOK)

	// Rotated as Kubernetes rotates a mounted secret: a new file swapped in by rename.
	next := writeFile(t, dir, "token.new", "second-token\n")
	if err := os.Rename(next, tok); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, url+"/metrics", "Bearer first-token", http.StatusUnauthorized)
	wantStatus(t, url+"/metrics", "Bearer second-token", http.StatusOK)

	// Same size, same modification time as before would not be seen: a rewrite in place
	// moves the time on.
	if err := os.WriteFile(tok, []byte("third-tokenX\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second)
	if err := os.Chtimes(tok, later, later); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, url+"/metrics", "Bearer second-token", http.StatusUnauthorized)
	wantStatus(t, url+"/metrics", "Bearer third-tokenX", http.StatusOK)

	// A file gone (or emptied) keeps the last token, with one warning.
	if err := os.Remove(tok); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, url+"/metrics", "Bearer third-tokenX", http.StatusOK)
	wantStatus(t, url+"/metrics", "Bearer third-tokenX", http.StatusOK)
	if n := len(logs.lines("admin.token_file cannot be read")); n != 1 {
		t.Fatalf("%d warnings about the missing file, want 1:\n%s", n, logs)
	}
	writeFile(t, dir, "token", "fourth-token")
	wantStatus(t, url+"/metrics", "Bearer fourth-token", http.StatusOK)

	for _, secret := range []string{"first-token", "second-token", "third-tokenX", "fourth-token"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("the log holds a token:\n%s", logs)
		}
	}
}

func TestAdminPProf(t *testing.T) {
	url, _ := adminFixture(t, AdminConfig{})
	wantStatus(t, url+"/debug/pprof/", "", http.StatusNotFound)
	wantStatus(t, url+"/debug/pprof/cmdline", "", http.StatusNotFound)

	url, _ = adminFixture(t, AdminConfig{PProf: true})
	wantStatus(t, url+"/debug/pprof/", "", http.StatusOK)
	wantStatus(t, url+"/debug/pprof/goroutine?debug=1", "", http.StatusOK)

	tok := writeFile(t, t.TempDir(), "token", "s3cret-token")
	url, _ = adminFixture(t, AdminConfig{PProf: true, TokenFile: tok})
	wantStatus(t, url+"/debug/pprof/", "", http.StatusUnauthorized)
	wantStatus(t, url+"/debug/pprof/heap", "", http.StatusUnauthorized)
	wantStatus(t, url+"/debug/pprof/cmdline", "Bearer s3cret-token", http.StatusOK)
}

// issue returns a certificate named name (for 127.0.0.1 and localhost too), signed by ca,
// and its key, both PEM.
func issue(t *testing.T, ca *tlstest.CA, name string) (certPEM, keyPEM string) {
	t.Helper()
	c, k := ca.Issue(t, tlstest.Leaf{Name: name})
	return string(c), string(k)
}

// mtlsFixture serves an admin server with TLS and client CA ca on a loopback port as run
// does (adminServer.serve), and returns its base URL.
func mtlsFixture(t *testing.T, dir string, serverCA, clientCA *tlstest.CA, authHealth bool) string {
	t.Helper()
	certPEM, keyPEM := issue(t, serverCA, "raterd")
	cfg := AdminConfig{AuthHealth: authHealth, TLS: &AdminTLSConfig{
		CertFile:     writeFile(t, dir, "server.crt", certPEM),
		KeyFile:      writeFile(t, dir, "server.key", keyPEM),
		ClientCAFile: writeFile(t, dir, "client-ca.crt", string(clientCA.PEM)),
	}}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	a, err := newAdminServer(cfg, prometheus.NewRegistry(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a.ready.Store(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.serve(ln) }()
	t.Cleanup(func() { _ = a.srv.Close() })
	return "https://" + ln.Addr().String()
}

// tlsClient trusts ca and presents cert (none when certPEM is "").
func tlsClient(t *testing.T, ca *tlstest.CA, certPEM, keyPEM string) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	cfg := &tls.Config{RootCAs: roots}
	if certPEM != "" {
		cert, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
}

func TestAdminMTLS(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA, otherCA := tlstest.NewCA(t, "server CA"), tlstest.NewCA(t, "client CA"), tlstest.NewCA(t, "other CA")
	url := mtlsFixture(t, dir, serverCA, clientCA, false)
	goodCert, goodKey := issue(t, clientCA, "prometheus")
	badCert, badKey := issue(t, otherCA, "intruder")

	anon := tlsClient(t, serverCA, "", "")
	if resp, body, err := getWith(t, anon, url+"/metrics", ""); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("/metrics without a client certificate: %v %v %q, want 403", err, resp, body)
	}
	// Probes send no certificate: health stays open without admin.auth_health.
	if resp, _, err := getWith(t, anon, url+"/healthz", ""); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz without a client certificate: %v %v, want 200", err, resp)
	}
	// Go's client sends no certificate the server's CA list does not name; others would
	// fail the handshake. Either way: not served.
	if resp, _, err := getWith(t, tlsClient(t, serverCA, badCert, badKey), url+"/metrics", ""); err == nil && resp.StatusCode != http.StatusForbidden {
		t.Fatalf("/metrics with a certificate of another CA = %d, want 403 or the handshake refused", resp.StatusCode)
	}
	if resp, _, err := getWith(t, tlsClient(t, serverCA, goodCert, goodKey), url+"/metrics", ""); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics with the client CA's certificate: %v %v, want 200", err, resp)
	}

	// With admin.auth_health every connection needs the certificate.
	url = mtlsFixture(t, t.TempDir(), serverCA, clientCA, true)
	if _, _, err := getWith(t, anon, url+"/healthz", ""); err == nil {
		t.Fatal("/healthz without a client certificate under auth_health: served, want the handshake refused")
	}
	if resp, _, err := getWith(t, tlsClient(t, serverCA, goodCert, goodKey), url+"/healthz", ""); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz with the client CA's certificate: %v %v, want 200", err, resp)
	}
}

func TestAdminConfigErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	certPEM, keyPEM := issue(t, ca, "raterd")
	_, otherKey := issue(t, ca, "other")
	cert := writeFile(t, dir, "server.crt", certPEM)
	key := writeFile(t, dir, "server.key", keyPEM)
	wrongKey := writeFile(t, dir, "other.key", otherKey)
	empty := writeFile(t, dir, "empty", " \n")
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		admin, want string
	}{
		{`{token_file: ` + missing + `}`, "admin.token_file: open " + missing},
		{`{token_file: ` + empty + `}`, "admin.token_file: " + empty + " holds no token"},
		{`{tls: {key_file: ` + key + `}}`, "admin.tls.cert_file: required"},
		{`{tls: {cert_file: ` + cert + `}}`, "admin.tls.key_file: required"},
		{`{tls: {cert_file: ` + missing + `, key_file: ` + key + `}}`, "admin.tls.cert_file: stat " + missing},
		{`{tls: {cert_file: ` + cert + `, key_file: ` + wrongKey + `}}`, "admin.tls.cert_file and admin.tls.key_file: " + cert + " and " + wrongKey + " do not load as a certificate and its key: tls: private key does not match public key"},
		{`{tls: {cert_file: ` + cert + `, key_file: ` + key + `, client_ca_file: ` + empty + `}}`, "admin.tls.client_ca_file: " + empty + " holds no PEM certificate"},
		{`{auth_health: true}`, "admin.auth_health: needs admin.token_file or admin.tls.client_ca_file"},
		{`{tls: {cert_file: ` + cert + `, key_file: ` + key + `}, auth_health: true}`, "admin.auth_health: needs"},
		{`{token: x}`, `unknown key "admin.token"`},
		{`{tls: {ca_file: x}}`, `unknown key "admin.tls.ca_file"`},
	} {
		_, err := ParseConfig([]byte(validConfig+"admin: "+tc.admin+"\n"), func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("admin: %s: %v, want an error with %q", tc.admin, err, tc.want)
		}
	}
	// listen: off checks nothing else.
	if _, err := ParseConfig([]byte(validConfig+"admin: {listen: \"off\", token_file: "+missing+"}\n"), func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	// Valid: TLS with a client CA and health behind it.
	caFile := writeFile(t, dir, "ca.crt", string(ca.PEM))
	text := validConfig + "admin: {listen: 0.0.0.0:9464, pprof: true, auth_health: true, tls: {cert_file: " + cert + ", key_file: " + key + ", client_ca_file: " + caFile + "}}\n"
	cfg, err := ParseConfig([]byte(text), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Admin.PProf || !cfg.Admin.AuthHealth || cfg.Admin.TLS.ClientCAFile != caFile {
		t.Fatalf("admin = %+v", cfg.Admin)
	}
}

func TestAdminExposureWarning(t *testing.T) {
	tls := &AdminTLSConfig{CertFile: "c", KeyFile: "k"}
	mtls := &AdminTLSConfig{CertFile: "c", KeyFile: "k", ClientCAFile: "ca"}
	for _, tc := range []struct {
		cfg  AdminConfig
		warn bool
	}{
		{AdminConfig{Listen: "127.0.0.1:9464"}, false},
		{AdminConfig{Listen: "[::1]:9464"}, false},
		{AdminConfig{Listen: "localhost:9464"}, false},
		{AdminConfig{Listen: "off"}, false},
		{AdminConfig{Listen: "0.0.0.0:9464"}, true},
		{AdminConfig{Listen: ":9464"}, true},
		{AdminConfig{Listen: "raterd.example:9464"}, true},
		{AdminConfig{Listen: "0.0.0.0:9464", TLS: tls}, true},
		{AdminConfig{Listen: "0.0.0.0:9464", TokenFile: "t"}, false},
		{AdminConfig{Listen: "0.0.0.0:9464", TLS: mtls}, false},
	} {
		got := tc.cfg.exposure()
		if (got != "") != tc.warn {
			t.Errorf("%+v: warning %q, want one: %v", tc.cfg, got, tc.warn)
		}
	}
	got := (&AdminConfig{Listen: "0.0.0.0:9464", PProf: true}).exposure()
	if !strings.Contains(got, "/debug/pprof/") || !strings.Contains(got, "admin.token_file") {
		t.Errorf("warning %q names neither the profiles nor the keys", got)
	}
}

// TestRunAdminToken runs the run path with admin.token_file against an in-process
// Kafka-protocol broker: /metrics needs the token, /healthz does not.
func TestRunAdminToken(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "llm-traffic"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cfg := readyzRunConfig(t, cluster.ListenAddrs()[0], "llm-traffic", "admin-token")
	cfg.Admin.TokenFile = writeFile(t, t.TempDir(), "token", "run-token\n")
	if err := cfg.Admin.validate(); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	stop := startRun(t, cfg, logs)
	base := "http://" + cfg.Admin.Listen

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, _, err := getWith(t, http.DefaultClient, base+"/metrics", "")
		if err == nil {
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("/metrics without the token = %d %v, want 401 with a Bearer challenge", resp.StatusCode, resp.Header)
			}
			break
		}
		var op *net.OpError
		if !errors.As(err, &op) || time.Now().After(deadline) {
			t.Fatalf("/metrics: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, body, err := getWith(t, http.DefaultClient, base+"/metrics", "Bearer run-token")
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(body, "# TYPE") {
		t.Fatalf("/metrics with the token: %v %v %.200q", err, resp, body)
	}
	wantStatus(t, base+"/metrics", "Bearer wrong", http.StatusUnauthorized)
	wantStatus(t, base+"/healthz", "", http.StatusOK)
	stop()
	if strings.Contains(logs.String(), "run-token") {
		t.Fatalf("the log holds the token:\n%s", logs)
	}
	if strings.Contains(logs.String(), "is not loopback") {
		t.Fatalf("a loopback listen warned:\n%s", logs)
	}
}

func TestAdminPresentsRenewedCertificate(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA := tlstest.NewCA(t, "server CA"), tlstest.NewCA(t, "client CA")
	url := mtlsFixture(t, dir, serverCA, clientCA, false)
	// A fresh client (no reused connection) per request, so each request is a handshake.
	served := func() *x509.Certificate {
		t.Helper()
		c := tlsClient(t, serverCA, "", "")
		defer c.CloseIdleConnections()
		resp, err := c.Get(url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.TLS.PeerCertificates[0]
	}
	first := served()
	// Renewal as cert-manager or a mounted secret does it: new files renamed into place.
	certPEM, keyPEM := issue(t, serverCA, "raterd-renewed")
	later := time.Now().Add(2 * time.Second)
	for name, content := range map[string]string{"server.key": keyPEM, "server.crt": certPEM} {
		tmp := writeFile(t, dir, name+".new", content)
		if err := os.Chtimes(tmp, later, later); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	second := served()
	if second.Subject.CommonName != "raterd-renewed" || second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatalf("after renewal the admin port presents %q (serial %s), want the renewed certificate (was %s)",
			second.Subject.CommonName, second.SerialNumber, first.SerialNumber)
	}
}
