package alert_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.yaml.in/yaml/v3"

	"raterd/internal/telemetry"
	"raterd/internal/testkit"
	"raterd/sinks/alert"
	"raterd/sinks/alert/notify"
)

// rulesFile is the example Prometheus alerting rules shipped under deploy/.
const rulesFile = "../../deploy/prometheus/raterd-alerts.yaml"

// alertMetricNames exports a Deliverer's and a Manager's metrics through the same OTel
// Prometheus exporter raterd's /metrics uses, after enough activity for each of them to
// have a sample (a delivery given up, dropped rows, a notified alert), and returns the
// metric family names.
func alertMetricNames(t *testing.T) []string {
	t.Helper()
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	quiet := slog.New(slog.DiscardHandler)
	fast := notify.DeliveryConfig{InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, AttemptTimeout: time.Second}
	d, err := notify.NewDeliverer(refusingNotifier{}, fast, notify.DeliveryOptions{Telemetry: telemetry.Settings{MeterProvider: mp, Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer func() { _ = d.Close(ctx) }()
	cfg := passRateRule(func(r *alert.RuleConfig) { r.Channels = nil })
	cfg.QueueRows = 20
	m, err := alert.NewManager(cfg, alert.Options{Telemetry: telemetry.Settings{MeterProvider: mp, Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	d.Enqueue(notify.Notification{AlertID: "a1f3c9e2", Rule: "refusals", Series: mgrSeries, State: notify.StateFiring, Fired: true, At: mgrT0})
	_ = m.WriteScores(ctx, mgrRows(mgrSeries, "r", mgrT0, repeat(0, 25)...)) // 5 dropped, 20 fire
	if err := m.EvaluateNow(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); d.Stats().Permanent != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the delivery was not given up in 10s")
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	return names
}

// refusingNotifier refuses every notification for good.
type refusingNotifier struct{}

func (refusingNotifier) Name() string { return "fake" }

func (refusingNotifier) Notify(context.Context, notify.Notification) error {
	return errors.Join(errors.New("refused"), notify.ErrPermanent)
}

// TestPrometheusRules checks deploy/prometheus/raterd-alerts.yaml: every rule is complete
// (severity, summary, description), and every raterd metric it reads is one raterd
// exports. Its subtest promtool runs `promtool check rules` and the rule unit tests in
// raterd-alerts.test.yaml (promtoolPath says which promtool, and when it is skipped).
func TestPrometheusRules(t *testing.T) {
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}

	// Metrics raterd exports: alerting's (the Deliverer's and the Manager's), exported
	// here for real, and the pipeline's, as listed by /metrics of `raterd run`
	// (cmd/raterd/run_integration_test.go checks a subset of them).
	known := alertMetricNames(t)
	for _, want := range []string{"raterd_alert_notifications_total", "raterd_alert_notify_attempts_total",
		"raterd_alert_channel_consecutive_failures", "raterd_alert_queue_length", "raterd_alert_series_mean",
		"raterd_alert_series_state", "raterd_alert_series_firing", "raterd_alert_notifications_emitted_total",
		"raterd_alert_observations_dropped_total"} {
		if !slices.Contains(known, want) {
			t.Errorf("alerting does not export %s (it exports %v)", want, known)
		}
	}
	// Every alerting metric the documentation names is one raterd exports.
	for _, doc := range []string{"../../README.md", "../../docs/alerting.md", "../../docs/configuration.md"} {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`\braterd_alert_[a-z_]+`).FindAllString(string(text), -1) {
			if !slices.Contains(known, m) {
				t.Errorf("%s names %s, which raterd does not export", doc, m)
			}
		}
	}
	known = append(known, "raterd_consumer_records_total", "raterd_consumer_dead_letters_total", "raterd_consumer_commits_total",
		"raterd_consumer_in_flight", "raterd_consumer_batch_retries_total", "raterd_consumer_batch_blocked", "raterd_pool_breaker_state",
		"raterd_pool_attempts_total", "raterd_pool_retries_total", "raterd_scorer_failures_total",
		"raterd_scorer_judge_calls_total")
	metricRE := regexp.MustCompile(`\braterd_[a-z_]+`)
	alerts := map[string]bool{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" {
				t.Errorf("group %s: a rule without alert or expr: %+v", g.Name, r)
				continue
			}
			if alerts[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			alerts[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: summary and description annotations are required", r.Alert)
			}
			for _, m := range metricRE.FindAllString(r.Expr, -1) {
				if !slices.Contains(known, m) {
					t.Errorf("%s reads %s, which raterd does not export", r.Alert, m)
				}
			}
		}
	}
	for _, want := range []string{"RaterdQualityRegression", "RaterdDeadLetterRateHigh", "RaterdJudgePoolUnavailable",
		"RaterdConsumerLagHigh", "RaterdAlertChannelFailing"} {
		if !alerts[want] {
			t.Errorf("no %s rule", want)
		}
	}

	t.Run("promtool", func(t *testing.T) {
		promtool := promtoolPath(t)
		dir := filepath.Dir(rulesFile)
		for _, args := range [][]string{{"check", "rules", "raterd-alerts.yaml"}, {"test", "rules", "raterd-alerts.test.yaml"}} {
			cmd := exec.Command(promtool, args...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	})
}

// promtoolPath returns the promtool to run: RATERD_TEST_PROMTOOL (scripts/services.sh
// installs it and prints it in `env`), else promtool on PATH. Without either the test is
// skipped, or failed with RATERD_REQUIRE_SERVICES set, so CI cannot pass without running
// the rule checks.
func promtoolPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("RATERD_TEST_PROMTOOL"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("RATERD_TEST_PROMTOOL: %v; run scripts/services.sh up", err)
		}
		return p
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	return testkit.Service(t, "RATERD_TEST_PROMTOOL", "promtool, for the Prometheus rule checks")
}
