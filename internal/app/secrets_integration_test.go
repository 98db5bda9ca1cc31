package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"raterd/internal/secret"
	"raterd/internal/telemetry"
	"raterd/internal/testkit"
	"raterd/sinks/clickhouse"
)

// TestIntegrationSecretsNeverLogged runs the pipeline against the real services with known
// secret values, every one of them given through a *_file key or the environment: the
// Redis password (a private Redis that requires it), the ClickHouse password (the TLS
// ClickHouse's user), a Slack webhook URL and a webhook URL and signing secret (local
// receivers, alerted by a rule that fires). It logs at Debug, then drives the error paths
// most likely to leak (a wrong ClickHouse and Redis password against the real servers,
// both a value and a file set, a config print) and checks that no log line, error or
// print holds any secret value.
func TestIntegrationSecretsNeverLogged(t *testing.T) {
	s := testkit.RequireServices(t)
	chTLS := testkit.Service(t, "RATERD_TEST_CLICKHOUSE_TLS", "ClickHouse over TLS")
	chUser := testkit.Service(t, "RATERD_TEST_CLICKHOUSE_USER", "ClickHouse TLS user")
	chPassword := testkit.Service(t, "RATERD_TEST_CLICKHOUSE_PASSWORD", "ClickHouse TLS password")
	chCA := testkit.Service(t, "RATERD_TEST_CLICKHOUSE_CA", "ClickHouse TLS CA file")

	const (
		redisPassword = "redis-pw-7Qk2vX9Lm4"
		slackToken    = "SLACKTOKEN-Zr8Wq3Np6"
		webhookToken  = "HOOKTOKEN-Bt5Yc1Hd0"
		signingSecret = "signing-secret-Ue4Jf7Ka2"
		wrongPassword = "wrong-pw-Gm3Rs8Tv1"
	)
	secrets := []string{redisPassword, slackToken, webhookToken, signingSecret, wrongPassword, chPassword}

	// A private Redis that requires the password.
	rds := testkit.StartPrivateRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: rds.Addr()})
	if err := rc.ConfigSet(context.Background(), "requirepass", redisPassword).Err(); err != nil {
		t.Fatal(err)
	}
	rc.Close()

	// Receivers for the alert channels; the tokens are in their URL paths.
	var posts atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if !strings.Contains(r.URL.Path, slackToken) && !strings.Contains(r.URL.Path, webhookToken) {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		posts.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	defer rcv.Close()

	dir := t.TempDir()
	file := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	redisFile := file("redis", redisPassword)
	chFile := file("clickhouse", chPassword)
	slackFile := file("slack", rcv.URL+"/services/T0/B0/"+slackToken)
	hookFile := file("hook", rcv.URL+"/hooks/"+webhookToken)
	signFile := file("sign", signingSecret)

	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, db := "it-secrets-"+suffix, "raterd_secrets_"+suffix
	testkit.CreateTopic(t, s.Kafka, topic, 2)
	values, invalid, _ := integrationTraffic(200)
	if err := Produce(context.Background(), []string{s.Kafka}, topic, values); err != nil {
		t.Fatal(err)
	}

	// Migrate the database on the TLS ClickHouse, as its password-protected user.
	chCfg := clickhouse.Config{Addrs: []string{chTLS}, Database: db, Username: chUser, PasswordFile: chFile, TLS: true, TLSCAFile: chCA}
	if err := chCfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(context.Background(), chCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	if err := conn.Exec(context.Background(), "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		t.Fatal(err)
	}
	if _, err := clickhouse.Migrate(context.Background(), conn, db, telemetry.Settings{}); err != nil {
		t.Fatalf("migrate: %v", err)
	}

	configText := func(redisExtra, chExtra string) string {
		return fmt.Sprintf(`
kafka:
  brokers: [%s]
  topics: [%s]
  group_id: it-secrets-%s
  batch: {max_records: 50, linger: 20ms}
  commit_interval: 100ms
redis:
  addrs: [%s]
  password_file: %s
  key_prefix: "secrets-%s:"
  %s
clickhouse:
  addrs: [%s]
  database: %s
  username: %s
  tls: true
  tls_ca_file: %s
  insert_interval: 100ms
  %s
judges:
  checks: {type: heuristic}
evaluators:
  - {name: refusal, judge: checks, check: refusal}
alerting:
  interval: 100ms
  channels:
    team: {type: slack, url_file: %s}
    oncall: {type: webhook, url_file: %s, secret_file: %s}
  rules:
    - name: refusals
      evaluators: [refusal]
      detector: threshold
      threshold: {stat: pass_rate, alert: 0.999, window: 10m, min_samples: 5}
      channels: [team, oncall]
admin: {listen: "off"}
`, s.Kafka, topic, suffix, rds.Addr(), redisFile, suffix, redisExtra, chTLS, db, chUser, chCA, chExtra, slackFile, hookFile, signFile)
	}
	var errs []string
	parse := func(text string, env map[string]string) (*Config, error) {
		cfg, err := ParseConfig([]byte(text), func(k string) string { return env[k] })
		if err != nil {
			errs = append(errs, err.Error())
		}
		return cfg, err
	}
	// The ClickHouse password from the environment, the others from files.
	chEnv := map[string]string{"RATERD_CLICKHOUSE_PASSWORD": chPassword}
	cfg, err := parse(configText("", ""), chEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Redis.Password.Reveal(); got != redisPassword {
		t.Fatalf("redis.password_file read %d bytes, want the password", len(got))
	}

	// Run at Debug until every message is done and both channels were posted to.
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, cfg, logger) }()
	deadline := time.Now().Add(90 * time.Second)
	for posts.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		errs = append(errs, err.Error())
		t.Errorf("run: %v", err)
	}
	if posts.Load() < 2 {
		t.Errorf("%d alert posts reached the receivers, want at least 2 (slack and webhook):\n%s", posts.Load(), tailString(logs.String(), 3000))
	}
	_ = invalid

	// Wrong passwords against the real servers: the errors name the key, never the value.
	for name, c := range map[string]struct {
		redisExtra, chExtra string
		env                 map[string]string
		key                 string
	}{
		"clickhouse env and file": {env: map[string]string{"RATERD_CLICKHOUSE_PASSWORD": wrongPassword}, chExtra: "password_file: " + chFile, key: "clickhouse.password"},
		"redis value and file":    {redisExtra: "password: " + wrongPassword, key: "redis.password"},
		"slack file missing":      {key: "url_file"},
	} {
		text := configText(c.redisExtra, c.chExtra)
		if name == "slack file missing" {
			text = strings.Replace(text, slackFile, filepath.Join(dir, "missing"), 1)
		}
		if _, err := parse(text, c.env); err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: err = %v, want one naming %s", name, err, c.key)
		}
	}
	wrongCH := chCfg
	wrongCH.PasswordFile, wrongCH.Password = "", secret.Secret(wrongPassword)
	if c, err := clickhouse.Open(context.Background(), wrongCH); err == nil {
		c.Close()
		t.Error("clickhouse.Open with a wrong password succeeded")
	} else {
		errs = append(errs, err.Error())
	}
	wrongCfg, err := parse(configText("", ""), chEnv)
	if err != nil {
		t.Fatal(err)
	}
	wrongCfg.Redis.Password = secret.Secret(wrongPassword)
	wrongCfg.ClickHouse.Password = secret.Secret(wrongPassword)
	wrongCfg.Kafka.GroupID += "-wrong"
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	if err := run(wctx, wrongCfg, logger); err != nil {
		errs = append(errs, err.Error())
	} else {
		t.Error("run with wrong passwords returned no error")
	}
	wcancel()

	// Every print of the config.
	prints := []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg),
		fmt.Sprintf("%+v %+v %+v", cfg.Redis, *cfg.ClickHouse, cfg.Alerting)}

	for _, out := range [][]string{strings.Split(logs.String(), "\n"), errs, prints} {
		for _, line := range out {
			for _, sv := range secrets {
				if strings.Contains(line, sv) {
					t.Errorf("a secret value is shown: %.300s", strings.ReplaceAll(line, sv, "<SECRET>"))
				}
			}
		}
	}
	if n := strings.Count(logs.String(), "\n"); n < 10 {
		t.Errorf("only %d log lines: the test checks too little", n)
	}
	t.Logf("%d log lines, %d errors, %d alert posts checked", strings.Count(logs.String(), "\n"), len(errs), posts.Load())
}
