package app

import (
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"raterd/internal/tlsfiles/tlstest"
)

// TestConfigTLSAndJudgeAccessKeys: the redis tls_* keys and the judges' api_key_file,
// headers and tls keys are read from raterd.yaml (the unknown-key check knows them),
// errors name them, the env override of the API key still applies, and a print of the
// config redacts the key and the header values.
func TestConfigTLSAndJudgeAccessKeys(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	f := ca.WriteFiles(t, dir, "client", tlstest.Leaf{})
	keyFile := tlstest.WriteFile(t, dir, "api-key", []byte("sk-FILE-SECRET\n"))
	text := strings.Replace(validConfig, `    endpoints: [{url: "http://127.0.0.1:8000/v1"}]`, fmt.Sprintf(`    endpoints: [{url: "https://127.0.0.1:8443/v1"}]
    api_key_file: %s
    headers: {X-Gateway-Key: gw-HEADER-SECRET}
    tls: {ca_file: %s, cert_file: %s, key_file: %s, server_name: judge.internal, min_version: "1.3"}`, keyFile, f.CA, f.Cert, f.Key), 1)
	text += fmt.Sprintf("redis: {addrs: [127.0.0.1:6380], tls_ca_file: %s, tls_cert_file: %s, tls_key_file: %s, tls_server_name: redis.internal}\n", f.CA, f.Cert, f.Key)
	cfg, err := ParseConfig([]byte(text), noEnvironment)
	if err != nil {
		t.Fatal(err)
	}
	j := cfg.Judges["pool-a"]
	if j.APIKey.Reveal() != "sk-FILE-SECRET" || j.Headers["X-Gateway-Key"].Reveal() != "gw-HEADER-SECRET" || j.TLS.ServerName != "judge.internal" {
		t.Fatalf("judge keys not read: %+v", j)
	}
	if !cfg.Redis.TLSOn() || cfg.Redis.TLSServerName != "redis.internal" {
		t.Fatalf("redis tls keys not read: %+v", cfg.Redis)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(out) + fmt.Sprintf("%+v", cfg.Judges["pool-a"]); strings.Contains(s, "SECRET") {
		t.Fatalf("a print of the config shows a secret:\n%s", s)
	}

	// The env override and the file together: an error naming both.
	env := map[string]string{"RATERD_JUDGE_POOL_A_API_KEY": "sk-env"}
	if _, err := ParseConfig([]byte(text), func(k string) string { return env[k] }); err == nil ||
		!strings.Contains(err.Error(), "judges.pool-a.api_key (or RATERD_JUDGE_POOL_A_API_KEY) and judges.pool-a.api_key_file are both set") {
		t.Fatalf("env and file: %v", err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{"tls_server_name: redis.internal", "tls_server_nam: redis.internal", `unknown key "redis.tls_server_nam"`},
		{"X-Gateway-Key: gw-HEADER-SECRET", `"X Gateway": gw-HEADER-SECRET`, "judges.pool-a.headers.X Gateway: "},
		{"server_name: judge.internal", "server_nam: judge.internal", `unknown key "judges.pool-a.tls.server_nam"`},
	} {
		_, err := ParseConfig([]byte(strings.Replace(text, tc.from, tc.to, 1)), noEnvironment)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: %v, want %q", tc.to, err, tc.want)
		}
	}
}

// noEnvironment is an empty environment.
func noEnvironment(string) string { return "" }
