package scorer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"raterd/internal/secret"
	"raterd/internal/tlsfiles/tlstest"
	"raterd/record"
	"raterd/scorer/pool"
)

// tlsJudgeServer serves handler over TLS with a certificate of ca for judge.internal
// (no IP SAN, so the server name must be set), asking for client certificates of ca when
// requireClientCert. It records the serial of each client certificate it sees.
type tlsJudgeServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	serials []string
}

func newTLSJudgeServer(t *testing.T, ca *tlstest.CA, handler http.Handler, requireClientCert bool) *tlsJudgeServer {
	t.Helper()
	certPEM, keyPEM := ca.Issue(t, tlstest.Leaf{Name: "judge.internal", NoIP: true})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsJudgeServer{}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if pc := r.TLS.PeerCertificates; len(pc) > 0 {
			s.mu.Lock()
			s.serials = append(s.serials, pc[0].SerialNumber.String())
			s.mu.Unlock()
		}
		handler.ServeHTTP(w, r)
	}))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if requireClientCert {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca.PEM)
		s.srv.TLS.ClientCAs, s.srv.TLS.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

func (s *tlsJudgeServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.serials...)
}

// tryJudge builds an openai judge for cfg (endpoint url) and judges one record; the
// error is the build's or the verdict's.
func tryJudge(t *testing.T, url string, mutate func(*OpenAIConfig)) error {
	t.Helper()
	cfg := OpenAIConfig{Model: "judge-model", Config: pool.Config{Endpoints: []pool.Endpoint{{URL: url + "/v1"}}, MaxAttempts: 1, Timeout: 5 * time.Second}}
	mutate(&cfg)
	j, err := NewOpenAIJudge(cfg, JudgeSettings{Key: "judges.pool-a"})
	if err != nil {
		return err
	}
	defer j.Close(context.Background())
	v := judgeOne(t, j, preparedModelEvaluator(t, testEvaluator()), testRecord("r1"))
	if v.Status != record.StatusOK {
		return fmt.Errorf("verdict %s: %s", v.Status, v.Err)
	}
	return nil
}

func TestJudgeHeadersAndAPIKeyFile(t *testing.T) {
	f := newFakeChat(t, constant("Reasoning: fine.\nScore: 4"))
	keyFile := tlstest.WriteFile(t, t.TempDir(), "api-key", []byte("sk-from-file\n"))
	err := tryJudge(t, f.srv.URL, func(c *OpenAIConfig) {
		c.APIKeyFile = keyFile
		c.Headers = map[string]secret.Secret{"X-Gateway-Key": "gw-123", "openai-organization": "org-1"}
	})
	if err != nil {
		t.Fatal(err)
	}
	h := f.hdrs[0]
	if h.Get("Authorization") != "Bearer sk-from-file" || h.Get("X-Gateway-Key") != "gw-123" || h.Get("OpenAI-Organization") != "org-1" ||
		h.Get("Content-Type") != "application/json" {
		t.Fatalf("request headers: %v", h)
	}

	// Authorization of another scheme, without an API key.
	f = newFakeChat(t, constant("Reasoning: fine.\nScore: 4"))
	if err := tryJudge(t, f.srv.URL, func(c *OpenAIConfig) { c.Headers = map[string]secret.Secret{"Authorization": "Basic dXNlcjpwdw=="} }); err != nil {
		t.Fatal(err)
	}
	if got := f.hdrs[0].Get("Authorization"); got != "Basic dXNlcjpwdw==" {
		t.Fatalf("Authorization = %q", got)
	}
}

func TestJudgeAccessValidation(t *testing.T) {
	dir := t.TempDir()
	keyFile := tlstest.WriteFile(t, dir, "api-key", []byte("sk-file"))
	empty := tlstest.WriteFile(t, dir, "empty", nil)
	missing := filepath.Join(dir, "missing.pem")
	good := func() JudgeConfig {
		return JudgeConfig{Type: JudgeOpenAI, OpenAIConfig: OpenAIConfig{Model: "m", Config: pool.Config{Endpoints: []pool.Endpoint{{URL: "https://vllm-0:8000/v1"}}}}}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*JudgeConfig)
		want   string
	}{
		{"key and file", func(c *JudgeConfig) { c.APIKey, c.APIKeyFile = "sk", keyFile }, "judges.pool-a.api_key (or RATERD_JUDGE_POOL_A_API_KEY) and judges.pool-a.api_key_file are both set"},
		{"empty key file", func(c *JudgeConfig) { c.APIKeyFile = empty }, "judges.pool-a.api_key_file: "},
		{"reward key file", func(c *JudgeConfig) { c.Type, c.APIKeyFile = JudgeReward, missing }, "judges.pool-a.api_key_file: "},
		{"header name", func(c *JudgeConfig) { c.Headers = map[string]secret.Secret{"X Bad": "v"} }, `judges.pool-a.headers.X Bad: "X Bad" is not a valid HTTP header name`},
		{"header colon", func(c *JudgeConfig) { c.Headers = map[string]secret.Secret{"X-A:": "v"} }, `judges.pool-a.headers.X-A:: "X-A:" is not a valid HTTP header name`},
		{"header crlf", func(c *JudgeConfig) {
			c.Headers = map[string]secret.Secret{"X-Token": "tok-SECRET\r\nX-Evil: 1"}
		}, "judges.pool-a.headers.X-Token: the value contains a line break or NUL"},
		{"header twice", func(c *JudgeConfig) { c.Headers = map[string]secret.Secret{"x-a": "1", "X-A": "2"} }, "judges.pool-a.headers.x-a: the same header as judges.pool-a.headers.X-A"},
		{"reserved", func(c *JudgeConfig) { c.Headers = map[string]secret.Secret{"content-type": "text/plain"} }, "judges.pool-a.headers.content-type: raterd sets this header itself"},
		{"authorization and key", func(c *JudgeConfig) {
			c.APIKey, c.Headers = "sk", map[string]secret.Secret{"authorization": "Basic x"}
		}, "judges.pool-a.headers.authorization: set together with judges.pool-a.api_key"},
		{"reward header", func(c *JudgeConfig) { c.Type, c.Headers = JudgeReward, map[string]secret.Secret{"X-A": "\n"} }, "judges.pool-a.headers.X-A: the value contains"},
		{"tls ca", func(c *JudgeConfig) { c.TLS = &JudgeTLSConfig{CAFile: missing} }, "judges.pool-a.tls.ca_file: open " + missing},
		{"tls pair", func(c *JudgeConfig) { c.TLS = &JudgeTLSConfig{CertFile: keyFile} }, "judges.pool-a.tls.key_file: required with judges.pool-a.tls.cert_file"},
		{"tls version", func(c *JudgeConfig) { c.TLS = &JudgeTLSConfig{MinVersion: "1.0"} }, `judges.pool-a.tls.min_version: "1.0" is not 1.2 or 1.3`},
		{"tls over http", func(c *JudgeConfig) {
			c.Endpoints[0].URL = "http://vllm-0:8000/v1"
			c.TLS = &JudgeTLSConfig{ServerName: "x"}
		}, "judges.pool-a.tls: set, but no endpoint is https"},
		{"heuristic", func(c *JudgeConfig) {
			c.OpenAIConfig = OpenAIConfig{Headers: map[string]secret.Secret{"X-A": "1"}}
			c.Type = JudgeHeuristic
		}, "judges.pool-a: a heuristic judge takes no other keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.mutate(&c)
			err := c.Validate("judges.pool-a")
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err = %v, want prefix %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("the error shows the value: %v", err)
			}
		})
	}
	c := good()
	c.APIKeyFile = keyFile
	if err := c.Validate("judges.pool-a"); err != nil || c.APIKey.Reveal() != "sk-file" || c.APIKeyFile != "" {
		t.Fatalf("api_key_file: %v, key %q", err, c.APIKey.Reveal())
	}
	r := good()
	r.Type, r.APIKeyFile, r.Headers = JudgeReward, keyFile, map[string]secret.Secret{"X-A": "1"}
	if err := r.Validate("judges.pool-a"); err != nil || r.RewardConfig().APIKey.Reveal() != "sk-file" || r.RewardConfig().Headers["X-A"] != "1" {
		t.Fatalf("reward api_key_file: %v, %+v", err, r.RewardConfig())
	}
}

func TestJudgeSecretsAreRedactedInPrints(t *testing.T) {
	c := JudgeConfig{Type: JudgeOpenAI, OpenAIConfig: OpenAIConfig{Model: "m", APIKey: "sk-SECRET", Headers: map[string]secret.Secret{"X-Gateway-Key": "gw-SECRET"}}}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{string(out), fmt.Sprintf("%v %+v %#v", c, c, c)} {
		if strings.Contains(s, "SECRET") || !strings.Contains(s, "X-Gateway-Key") {
			t.Fatalf("a print of the config shows a secret or drops the header name:\n%s", s)
		}
	}
}

func TestJudgeTLSWithPrivateCA(t *testing.T) {
	ca := tlstest.NewCA(t, "judge CA")
	f := newFakeChat(t, constant("Reasoning: fine.\nScore: 4"))
	s := newTLSJudgeServer(t, ca, f.srv.Config.Handler, false)
	caFile := tlstest.WriteFile(t, t.TempDir(), "ca.pem", ca.PEM)

	// The system roots do not know the private CA.
	if err := tryJudge(t, s.srv.URL, func(c *OpenAIConfig) { c.TLS = &JudgeTLSConfig{ServerName: "judge.internal"} }); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("without tls.ca_file: %v, want unknown authority", err)
	}
	// The CA, but the certificate is for judge.internal, not 127.0.0.1.
	if err := tryJudge(t, s.srv.URL, func(c *OpenAIConfig) { c.TLS = &JudgeTLSConfig{CAFile: caFile} }); err == nil || !strings.Contains(err.Error(), "doesn't contain any IP SANs") {
		t.Fatalf("without tls.server_name: %v, want a name mismatch", err)
	}
	if err := tryJudge(t, s.srv.URL, func(c *OpenAIConfig) {
		c.TLS = &JudgeTLSConfig{CAFile: caFile, ServerName: "judge.internal", MinVersion: "1.3"}
		c.APIKey = "sk-tls"
	}); err != nil {
		t.Fatalf("with tls.ca_file and server_name: %v", err)
	}
	if got := f.hdrs[len(f.hdrs)-1].Get("Authorization"); got != "Bearer sk-tls" {
		t.Errorf("Authorization over TLS = %q", got)
	}
}

func TestJudgeMutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "judge CA")
	f := newFakeChat(t, constant("Reasoning: fine.\nScore: 4"))
	s := newTLSJudgeServer(t, ca, f.srv.Config.Handler, true)
	files := ca.WriteFiles(t, t.TempDir(), "raterd", tlstest.Leaf{Serial: 4242})

	if err := tryJudge(t, s.srv.URL, func(c *OpenAIConfig) { c.TLS = &JudgeTLSConfig{CAFile: files.CA, ServerName: "judge.internal"} }); err == nil {
		t.Fatal("no client certificate: judged, want the handshake refused")
	}
	if err := tryJudge(t, s.srv.URL, func(c *OpenAIConfig) {
		c.TLS = &JudgeTLSConfig{CAFile: files.CA, CertFile: files.Cert, KeyFile: files.Key, ServerName: "judge.internal"}
	}); err != nil {
		t.Fatalf("with the client certificate: %v", err)
	}
	if got := s.seen(); len(got) == 0 || got[len(got)-1] != "4242" {
		t.Fatalf("client certificates seen: %v, want serial 4242", got)
	}

	// A reward judge reaches an mTLS endpoint the same way, with its headers.
	rf := newFakeReward(t)
	var hdr http.Header
	var mu sync.Mutex
	rs := newTLSJudgeServer(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hdr = r.Header.Clone()
		mu.Unlock()
		rf.srv.Config.Handler.ServeHTTP(w, r)
	}), true)
	j, err := NewRewardJudge(RewardConfig{Model: "rm", APIKey: "sk-rm", Headers: map[string]secret.Secret{"X-Tenant": "t1"},
		TLS:  &JudgeTLSConfig{CAFile: files.CA, CertFile: files.Cert, KeyFile: files.Key, ServerName: "judge.internal"},
		Pool: pool.Config{Endpoints: []pool.Endpoint{{URL: rs.srv.URL}}, MaxAttempts: 1, Timeout: 5 * time.Second}},
		JudgeSettings{Key: "judges.rm"})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close(context.Background())
	vs, err := j.Judge(context.Background(), rewardTasks(t, &Evaluator{Name: "reward", Judge: "rm"}, "answer"))
	if err != nil || vs[0].Status != record.StatusOK {
		t.Fatalf("reward over mTLS: %v %+v", err, vs)
	}
	mu.Lock()
	defer mu.Unlock()
	if hdr.Get("Authorization") != "Bearer sk-rm" || hdr.Get("X-Tenant") != "t1" || rs.seen()[0] != "4242" {
		t.Fatalf("reward request: headers %v, client certificates %v", hdr, rs.seen())
	}
}

func TestJudgeTransportKeepsItsSettings(t *testing.T) {
	tlsCfg := &tls.Config{ServerName: "x"}
	c, err := judgeHTTPClient(nil, pool.Config{Endpoints: []pool.Endpoint{{URL: "https://a", MaxInFlight: 300}}}, tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	tr := c.Transport.(*http.Transport)
	if tr.Proxy == nil || tr.TLSClientConfig != tlsCfg || tr.MaxIdleConnsPerHost != 300 || !tr.ForceAttemptHTTP2 {
		t.Fatalf("transport: proxy set %v, tls %v, idle per host %d, h2 %v", tr.Proxy != nil, tr.TLSClientConfig, tr.MaxIdleConnsPerHost, tr.ForceAttemptHTTP2)
	}
	// A given client keeps its settings; TLS goes on a clone of its transport.
	given := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 7}, Timeout: time.Minute}
	c, err = judgeHTTPClient(given, pool.Config{}, tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	if tr := c.Transport.(*http.Transport); c.Timeout != time.Minute || tr.MaxConnsPerHost != 7 || tr.TLSClientConfig != tlsCfg || given.Transport.(*http.Transport).TLSClientConfig == tlsCfg {
		t.Fatalf("given client: timeout %s, max conns %d, tls %p (want %p), given's tls %v", c.Timeout, tr.MaxConnsPerHost, tr.TLSClientConfig, tlsCfg, given.Transport.(*http.Transport).TLSClientConfig)
	}
	if c, err := judgeHTTPClient(given, pool.Config{}, nil); err != nil || c != given {
		t.Fatal("without TLS the given client is used as it is")
	}
	if _, err := judgeHTTPClient(&http.Client{Transport: roundTripFunc(nil)}, pool.Config{}, tlsCfg); err == nil {
		t.Fatal("TLS on a transport it cannot be applied to: no error")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
