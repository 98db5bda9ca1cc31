package alert_test

import (
	"context"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"raterd/sinks/alert"
	"raterd/sinks/alert/notify"
)

const alertingYAML = `
interval: 5s
channels:
  oncall: {type: webhook, url: "https://hooks.example.com/raterd", delivery: {max_attempts: 4}}
  am: {type: alertmanager, urls: ["http://alertmanager:9093"]}
  topic: {type: kafka}
rules:
  - name: refusals
    evaluators: [refusal]
    detector: threshold
    threshold: {stat: pass_rate, alert: 0.9}
    renotify: 30m
    channels: [oncall, am, topic]
`

func parseAlerting(t *testing.T, text string) *alert.AlertingConfig {
	t.Helper()
	var a alert.AlertingConfig
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&a); err != nil {
		t.Fatal(err)
	}
	return &a
}

// TestAlertingConfigValidate: defaults come from the application's settings (Env), and
// errors name the configuration key.
func TestAlertingConfigValidate(t *testing.T) {
	env := alert.Env{RedisKeyPrefix: "p:", Channels: notify.Env{KafkaBrokers: []string{"k:9092"}}}
	a := parseAlerting(t, alertingYAML)
	if err := a.Validate("alerting", env); err != nil {
		t.Fatal(err)
	}
	if a.State != alert.StateMemory || a.KeyPrefix != "p:alert:" {
		t.Errorf("state %q, key prefix %q", a.State, a.KeyPrefix)
	}
	if k, _ := a.Channels["topic"].Decoded().(*notify.KafkaChannelConfig); k == nil || k.Brokers[0] != "k:9092" {
		t.Errorf("kafka channel: %+v", a.Channels["topic"].Decoded())
	}
	env.Redis = true
	if a := parseAlerting(t, alertingYAML); a.Validate("alerting", env) != nil || a.State != alert.StateRedis {
		t.Errorf("with Redis the state defaults to redis: %q", a.State)
	}
	for _, tc := range []struct{ from, to, want string }{
		{"type: webhook", "type: pager", `alerting.channels.oncall.type: "pager" is not webhook, slack, alertmanager, kafka or clickhouse`},
		{"type: webhook,", "", "alerting.channels.oncall.type: required (webhook, slack, alertmanager, kafka or clickhouse)"},
		{"type: kafka", "type: clickhouse", "alerting.channels.topic.type: a clickhouse channel needs the clickhouse section"},
		{"delivery:", "deliveryy:", "alerting.channels.oncall.deliveryy: not a key of a webhook channel (headers, secret, secret_file, timeout, url, url_file, delivery)"},
		{`url: "https://hooks.example.com/raterd"`, `url: "ftp://x"`, "alerting.channels.oncall.url"},
		{"renotify: 30m", "renotify: 2h", `alerting.rules[0] (refusals).renotify: 2h0m0s; alertmanager channel "am" needs re-notification below its resolve_timeout (1h0m0s), e.g. renotify: 30m0s`},
	} {
		a := parseAlerting(t, strings.Replace(alertingYAML, tc.from, tc.to, 1))
		if err := a.Validate("alerting", alert.Env{Channels: env.Channels}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s → %s: err = %v, want it to contain %q", tc.from, tc.to, err, tc.want)
		}
	}
}

// TestBuild builds a Manager and its channels from configuration and closes them.
func TestBuild(t *testing.T) {
	a := parseAlerting(t, strings.Replace(alertingYAML, "[oncall, am, topic]", "[oncall]", 1))
	if err := a.Validate("alerting", alert.Env{Channels: notify.Env{KafkaBrokers: []string{"127.0.0.1:1"}}}); err != nil {
		t.Fatal(err)
	}
	m, closers, err := alert.Build(context.Background(), a, alert.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if m == nil || len(closers) != 2 {
		t.Fatalf("manager %v, %d closers; want the channels' drain and the manager", m, len(closers))
	}
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i].Close(); err != nil {
			t.Error(err)
		}
	}
	a.State = alert.StateRedis
	if _, _, err := alert.Build(context.Background(), a, alert.Deps{}); err == nil {
		t.Error("redis state without Redis options: no error")
	}
}
