package app

import (
	"os"
	"strings"
	"testing"
	"time"

	"raterd/sinks/alert"
	"raterd/sinks/alert/detect"
	"raterd/sinks/alert/notify"
)

const alertingSection = `
alerting:
  interval: 5s
  channels:
    oncall: {type: webhook, url: "https://hooks.example.com/raterd", secret: s3cret, delivery: {max_attempts: 4}}
    chat: {type: slack, url: "https://hooks.slack.com/services/T/B/X"}
    am: {type: alertmanager, urls: ["http://alertmanager:9093"]}
    topic: {type: kafka}
    history: {type: clickhouse}
  rules:
    - name: refusals
      evaluators: [refusal]
      detector: threshold
      threshold: {stat: pass_rate, alert: 0.9, window: 30m}
      renotify: 30m
      channels: [oncall, chat, am, topic, history]
`

func TestAlertingConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(validConfig+alertingSection), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Alerting
	if a.State != alert.StateMemory || a.KeyPrefix != "raterd:alert:" || a.Interval != 5*time.Second || a.Rules[0].Threshold.Stat != detect.StatPassRate {
		t.Fatalf("alerting: %+v", a)
	}
	if w, _ := a.Channels["oncall"].Decoded().(*notify.WebhookConfig); w == nil || w.Secret != "s3cret" || w.Timeout != 10*time.Second || a.Channels["oncall"].Delivery.MaxAttempts != 4 {
		t.Fatalf("webhook channel: %+v", a.Channels["oncall"])
	}
	if k, _ := a.Channels["topic"].Decoded().(*notify.KafkaChannelConfig); k == nil || k.Brokers[0] != "127.0.0.1:9092" || k.Topic != "raterd.alerts" {
		t.Fatalf("kafka channel takes kafka.brokers: %+v", k)
	}
	if c, _ := a.Channels["history"].Decoded().(*notify.ClickHouseChannelConfig); c == nil || c.Database != "raterd" {
		t.Fatalf("clickhouse channel: %+v", c)
	}
	cfg, err = ParseConfig([]byte(validConfig+alertingSection), func(k string) string {
		return map[string]string{"RATERD_REDIS_ADDR": "redis:6379"}[k]
	})
	if err != nil || cfg.Alerting.State != alert.StateRedis {
		t.Fatalf("with redis.addrs the state should default to redis: %v %+v", err, cfg)
	}
}

func TestAlertingConfigRejectsNamingTheKey(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{"type: webhook, url", "type: pager, url", `alerting.channels.oncall.type: "pager" is not`},
		{"secret: s3cret", "secrett: s3cret", `config: unknown key "alerting.channels.oncall.secrett" (line 20); did you mean "alerting.channels.oncall.secret"?`},
		{`url: "https://hooks.example.com/raterd"`, `url: "ftp://x"`, "alerting.channels.oncall.url"},
		{"{max_attempts: 4}", "{max_attempts: -1}", "alerting.channels.oncall.delivery.max_attempts"},
		{"channels: [oncall, chat", "channels: [pager, chat", `alerting.rules[0] (refusals).channels[0]: "pager" is not defined under alerting.channels`},
		{"renotify: 30m", "renotify: 0s", "alerting.rules[0] (refusals).renotify: 0s; alertmanager channel \"am\" needs re-notification"},
		{"interval: 5s", "interval: 5s\n  state: etcd", "alerting.state"},
		{"interval: 5s", "interval: 5s\n  state: redis", "alerting.state: redis needs redis.addrs"},
		{"alert: 0.9,", "alert: 1.9,", "alerting.rules[0] (refusals).threshold.alert: "},
	} {
		text := strings.Replace(validConfig+alertingSection, tc.from, tc.to, 1)
		_, err := ParseConfig([]byte(text), func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s → %s: err = %v, want it to contain %q", tc.from, tc.to, err, tc.want)
		}
	}
	noCH := strings.Replace(validConfig, "clickhouse:\n  addrs: [127.0.0.1:9000]\n", "scores_file: x.ndjson\n", 1)
	if _, err := ParseConfig([]byte(noCH+alertingSection), func(string) string { return "" }); err == nil ||
		!strings.Contains(err.Error(), "alerting.channels.history.type: a clickhouse channel needs the clickhouse section") {
		t.Errorf("clickhouse channel without clickhouse: %v", err)
	}
}

// TestAlertingDocExamplesParse: the alerting examples the README and docs show are valid
// configuration.
func TestAlertingDocExamplesParse(t *testing.T) {
	for _, doc := range []struct{ file, after string }{
		{"../../README.md", "## Alerting"},
		{"../../docs/configuration.md", "## `alerting`"},
		{"../../docs/alerting.md", "## Alerts: lifecycle"},
	} {
		data, err := os.ReadFile(doc.file)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, ok := strings.Cut(string(data), doc.after)
		_, block, ok2 := strings.Cut(rest, "```yaml\n")
		block, _, ok3 := strings.Cut(block, "```")
		if !ok || !ok2 || !ok3 {
			t.Fatalf("%s: no yaml block after %q", doc.file, doc.after)
		}
		if _, err := ParseConfig([]byte(validConfig+block), func(string) string { return "" }); err != nil {
			t.Errorf("%s: the example after %q does not parse: %v", doc.file, doc.after, err)
		}
	}
}
