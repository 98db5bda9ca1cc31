package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"raterd/consumer"
	"raterd/internal/testkit"
	"raterd/internal/tlsfiles/tlstest"
)

// secureRunConfig is readyzRunConfig on a secured listener: kafka.tls and kafka.sasl as
// given (YAML lines under kafka:, indented by four spaces).
func secureRunConfig(t *testing.T, broker, topic, group, security string) (*Config, error) {
	t.Helper()
	text := fmt.Sprintf(`
kafka:
  brokers: [%s]
  topics: [%s]
  group_id: %s
  batch: {max_records: 100, linger: 20ms}
  commit_interval: 100ms
%s
judges:
  checks: {type: heuristic}
evaluators:
  - {name: refusal, judge: checks, check: refusal}
scores_file: %s
admin: {listen: "off"}
`, broker, topic, group, security, filepath.Join(t.TempDir(), "scores.ndjson"))
	return ParseConfig([]byte(text), func(string) string { return "" })
}

// TestIntegrationKafkaSecurePipeline runs the whole pipeline (group, DLQ topics and
// producer, scores) over SASL_SSL with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN, and over
// mutual TLS, against the dev broker's secured listeners.
func TestIntegrationKafkaSecurePipeline(t *testing.T) {
	s := testkit.RequireServices(t)
	k := testkit.RequireKafkaSecure(t)
	for _, tc := range []struct{ name, broker, security string }{
		{"sasl_ssl_scram_sha_512", k.SASLSSL, fmt.Sprintf(`  tls: {ca_file: %q}
  sasl: {mechanism: SCRAM-SHA-512, username: %q, password: %q}`, k.CA, k.User, k.Password)},
		// The listener enables SCRAM-SHA-256 and PLAIN too (PLAIN only ever over TLS).
		{"sasl_ssl_scram_sha_256", k.SASLSSL, fmt.Sprintf(`  tls: {ca_file: %q}
  sasl: {mechanism: SCRAM-SHA-256, username: %q, password: %q}`, k.CA, k.User, k.Password)},
		{"sasl_ssl_plain", k.SASLSSL, fmt.Sprintf(`  tls: {ca_file: %q}
  sasl: {mechanism: PLAIN, username: %q, password: %q}`, k.CA, k.User, k.Password)},
		{"mtls", k.MTLS, fmt.Sprintf(`  tls: {ca_file: %q, cert_file: %q, key_file: %q, min_version: "1.3"}`, k.CA, k.ClientCert, k.ClientKey)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
			topic := "it-kafka-sec-" + tc.name + "-" + strings.ReplaceAll(suffix, "_", "-")
			t.Cleanup(func() { testkit.DeleteTopics(s.Kafka, topic, topic+".dlq") })
			testkit.CreateTopic(t, s.Kafka, topic, 2)
			cfg, err := secureRunConfig(t, tc.broker, topic, "it-kafka-sec-"+suffix, tc.security)
			if err != nil {
				t.Fatal(err)
			}
			values, _, _ := integrationTraffic(20)
			// Produced through the secured listener too.
			if err := produceOver(context.Background(), cfg.Kafka, topic, values); err != nil {
				t.Fatalf("produce over %s: %v", tc.name, err)
			}
			logs := &logBuffer{}
			stop := startRun(t, cfg, logs)
			waitScores(t, cfg.ScoresFile, len(values), 60*time.Second)
			stop()
			if strings.Contains(logs.String(), k.Password) {
				t.Errorf("the password is in the logs:\n%s", logs)
			}
		})
	}
}

// TestIntegrationKafkaSecureFailures: a wrong password, an untrusted certificate (either
// way), a plaintext client on the TLS port and a TLS client on the plaintext port each end
// raterd run within seconds with an error naming the config key.
func TestIntegrationKafkaSecureFailures(t *testing.T) {
	s := testkit.RequireServices(t)
	k := testkit.RequireKafkaSecure(t)
	otherCA, otherCert, otherKey := untrustedCerts(t)
	for _, tc := range []struct{ name, broker, security, key string }{
		{"wrong_password", k.SASLSSL, fmt.Sprintf(`  tls: {ca_file: %q}
  sasl: {mechanism: SCRAM-SHA-512, username: %q, password: not-the-password}`, k.CA, k.User), "kafka.sasl.password"},
		{"untrusted_server_certificate", k.SASLSSL, fmt.Sprintf(`  tls: {ca_file: %q}
  sasl: {mechanism: SCRAM-SHA-512, username: %q, password: %q}`, otherCA, k.User, k.Password), "kafka.tls.ca_file"},
		{"untrusted_client_certificate", k.MTLS, fmt.Sprintf(`  tls: {ca_file: %q, cert_file: %q, key_file: %q}`, k.CA, otherCert, otherKey), "kafka.tls.cert_file"},
		{"plaintext_client_on_tls_port", k.MTLS, "", "kafka.tls"},
		{"tls_client_on_plaintext_port", s.Kafka, fmt.Sprintf(`  tls: {ca_file: %q}`, k.CA), "kafka.tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := secureRunConfig(t, tc.broker, "it-kafka-sec-fail", "it-kafka-sec-fail", tc.security)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			err = run(ctx, cfg, slog.New(slog.NewTextHandler(&logBuffer{}, nil)))
			took := time.Since(start)
			var keyErr *consumer.ConnectionKeyError
			if !errors.As(err, &keyErr) || keyErr.Key != tc.key || !strings.Contains(err.Error(), tc.key+":") {
				t.Fatalf("run: %v; want a ConnectionKeyError naming %s", err, tc.key)
			}
			if took > 10*time.Second {
				t.Errorf("run failed after %s, want within seconds", took)
			}
			if strings.Contains(err.Error(), k.Password) || strings.Contains(err.Error(), "not-the-password") {
				t.Errorf("the password is in the error: %v", err)
			}
			t.Logf("after %s: %v", took.Round(time.Millisecond), err)
		})
	}
}

// produceOver loads values into topic through cfg's connection (TLS, SASL).
func produceOver(ctx context.Context, cfg consumer.Config, topic string, values [][]byte) error {
	return ProduceOver(ctx, cfg, topic, values)
}

// untrustedCerts writes a CA the broker does not trust, and a client certificate signed by
// it, returning the three PEM file paths.
func untrustedCerts(t *testing.T) (ca, cert, key string) {
	t.Helper()
	f := tlstest.NewCA(t, "untrusted-ca").WriteFiles(t, t.TempDir(), "client", tlstest.Leaf{Name: "untrusted-client"})
	return f.CA, f.Cert, f.Key
}
