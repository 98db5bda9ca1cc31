package clickhouse

// Connection options against the real test server: TLS verified against the CA that
// scripts/services.sh makes, password login, failover across addresses, and what the
// writer sends for deduplication (skipped without the services' env, failed with
// RATERD_REQUIRE_SERVICES=1).

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"raterd/internal/secret"
	"raterd/internal/testkit"
)

// tlsTestConfig is a validated config for the server's TLS port as the password user.
func tlsTestConfig(t *testing.T) Config {
	t.Helper()
	cfg := Config{
		Addrs:     []string{testkit.Service(t, "RATERD_TEST_CLICKHOUSE_TLS", "ClickHouse over TLS")},
		Database:  uniqueName("raterd_tls_test_"),
		Username:  testkit.Service(t, "RATERD_TEST_CLICKHOUSE_USER", "ClickHouse TLS user"),
		Password:  secret.Secret(testkit.Service(t, "RATERD_TEST_CLICKHOUSE_PASSWORD", "ClickHouse TLS password")),
		TLS:       true,
		TLSCAFile: testkit.Service(t, "RATERD_TEST_CLICKHOUSE_CA", "ClickHouse TLS CA file"),
	}
	if err := cfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestClickHouseTLSWithPassword(t *testing.T) {
	cfg := tlsTestConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open over TLS as %s: %v", cfg.Username, err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database)
		_ = conn.Close()
	})
	// currentUser() is newer than 18.16; the query sees itself in system.processes.
	var user string
	if err := conn.QueryRow(ctx, "SELECT user FROM system.processes WHERE query LIKE '%raterd_tls_probe%' LIMIT 1").Scan(&user); err != nil || user != cfg.Username {
		t.Fatalf("logged in as %q (%v), want %q", user, err, cfg.Username)
	}
	if _, err := Migrate(ctx, conn, cfg.Database, quiet); err != nil {
		t.Fatalf("Migrate over TLS: %v", err)
	}
	rows := testScores(40)
	if err := NewScores(conn, cfg, quiet).WriteScores(ctx, rows); err != nil {
		t.Fatalf("WriteScores over TLS: %v", err)
	}
	if got := countRows(t, conn, "SELECT count() FROM "+cfg.Database+".scores FINAL"); got != uint64(len(rows)) {
		t.Errorf("scores FINAL = %d rows, want %d", got, len(rows))
	}
}

func TestClickHouseTLSRejects(t *testing.T) {
	good := tlsTestConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, tc := range map[string]struct {
		mutate func(c *Config)
		want   string
	}{
		// The system roots do not know the test CA: the certificate must be refused.
		"unknown CA": {func(c *Config) { c.TLSCAFile = "" }, "certificate"},
		// The certificate is for 127.0.0.1/localhost.
		"wrong server name": {func(c *Config) { c.TLSServerName = "clickhouse.example.com" }, "certificate"},
		"wrong password":    {func(c *Config) { c.Password = "not-the-password" }, "password"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := good
			tc.mutate(&cfg)
			conn, err := Open(ctx, cfg)
			if err == nil {
				_ = conn.Close()
				t.Fatal("Open = nil error, want a refusal")
			}
			if !strings.Contains(strings.ToLower(err.Error()), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	// tls_insecure_skip_verify accepts the unknown CA (tests only; documented as such).
	cfg := good
	cfg.TLSCAFile, cfg.TLSInsecureSkipVerify = "", true
	conn, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("tls_insecure_skip_verify: %v", err)
	}
	_ = conn.Close()
}

func TestClickHouseFailover(t *testing.T) {
	addr := testkit.Service(t, "RATERD_TEST_CLICKHOUSE", "ClickHouse")
	// Port 1 on loopback refuses connections: the first address is down, the second up.
	cfg := Config{Addrs: []string{"127.0.0.1:1", addr}, Database: uniqueName("raterd_failover_test_")}
	if err := cfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open with the first address down: %v", err)
	}
	defer func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database)
		_ = conn.Close()
	}()
	if _, err := Migrate(ctx, conn, cfg.Database, quiet); err != nil {
		t.Fatalf("Migrate through the second address: %v", err)
	}
	if err := NewScores(conn, cfg, quiet).WriteScores(ctx, testScores(5)); err != nil {
		t.Fatalf("WriteScores through the second address: %v", err)
	}
	if _, err := Open(ctx, Config{Addrs: []string{"127.0.0.1:1"}, DialTimeout: time.Second, Database: "x"}); err == nil {
		t.Error("Open with every address down = nil error")
	}
}

// TestClickHouseDedupTokenSent shows the writer decides from the server version whether
// to send a deduplication token, and that when it does the setting reaches the server:
// 18.16 predates insert_deduplication_token and refuses it by name. (The token's effect
// on a current release is tested by TestCurrentReleaseSQL.)
func TestClickHouseDedupTokenSent(t *testing.T) {
	conn, cfg := newTestClickHouse(t)
	ctx := context.Background()
	if _, err := Migrate(ctx, conn, cfg.Database, quiet); err != nil {
		t.Fatal(err)
	}
	v, err := conn.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	s := NewScores(conn, cfg, quiet)
	wantDedup := serverVersion{int(v.Version.Major), int(v.Version.Minor)}.features().InsertDedup
	if s.dedup != wantDedup {
		t.Fatalf("server %s: dedup = %v, want %v", v, s.dedup, wantDedup)
	}
	if NewDeadLetters(conn, cfg, quiet).dedup != wantDedup {
		t.Errorf("dead letters: dedup differs from the score writer's")
	}
	if wantDedup {
		t.Skipf("server %s takes tokens; the refusal below needs a server before 22.2", v)
	}
	s.dedup = true
	s.cfg.InsertAttempts = 2
	err = s.WriteScores(ctx, testScores(3))
	if err == nil || !strings.Contains(err.Error(), "insert_deduplication_token") || !strings.Contains(err.Error(), "attempt 2 of 2") {
		t.Fatalf("WriteScores with a token on %s: %v; want the server to refuse the setting, after 2 attempts", v, err)
	}
	if got := countRows(t, conn, "SELECT count() FROM "+cfg.Database+".scores"); got != 0 {
		t.Errorf("%d rows stored by refused inserts", got)
	}
}

func TestClickHouseConfigTLSValidate(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"ca without tls":    {Config{TLSCAFile: notPEM}, "clickhouse.tls_ca_file: set, but clickhouse.tls is false"},
		"skip without tls":  {Config{TLSInsecureSkipVerify: true}, "clickhouse.tls_insecure_skip_verify: set"},
		"cert without key":  {Config{TLS: true, TLSCertFile: notPEM}, "give both or neither"},
		"missing ca file":   {Config{TLS: true, TLSCAFile: filepath.Join(dir, "nope.pem")}, "clickhouse.tls_ca_file: open"},
		"ca file not pem":   {Config{TLS: true, TLSCAFile: notPEM}, "holds no PEM certificate"},
		"bad key pair":      {Config{TLS: true, TLSCertFile: notPEM, TLSKeyFile: notPEM}, "clickhouse.tls_cert_file and clickhouse.tls_key_file: "},
		"attempts too many": {Config{InsertAttempts: 21}, "clickhouse.insert_attempts: 21"},
		"attempts negative": {Config{InsertAttempts: -1}, "clickhouse.insert_attempts: -1"},
	} {
		tc.cfg.Addrs = []string{"127.0.0.1:9000"}
		err := tc.cfg.Validate("clickhouse")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want an error containing %q", name, err, tc.want)
		}
	}
	ok := Config{Addrs: []string{"127.0.0.1:9440"}, TLS: true}
	if err := ok.Validate("clickhouse"); err != nil || ok.InsertAttempts != 3 {
		t.Errorf("tls with system roots: %v, insert_attempts %d", err, ok.InsertAttempts)
	}
}
