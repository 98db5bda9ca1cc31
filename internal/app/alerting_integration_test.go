package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"raterd/internal/telemetry"
	"raterd/internal/testkit"
	"raterd/sinks/alert"
	"raterd/sinks/alert/notify"
	"raterd/sinks/clickhouse"
)

// alertReceiver is a real HTTP endpoint standing in for a team's webhook: it checks each
// request's HMAC signature and records the notifications.
type alertReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	got   []notify.Notification
	ids   []string // X-Raterd-Event-Id of each request
	wrong []string // what did not verify
}

func newAlertReceiver(t *testing.T, secret string) *alertReceiver {
	r := &alertReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		var n notify.Notification
		if err == nil {
			err = notify.VerifyWebhookSignature([]byte(secret), req.Header, body, time.Now(), 0)
		}
		if err == nil {
			err = json.Unmarshal(body, &n)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.wrong = append(r.wrong, err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.got = append(r.got, n)
		r.ids = append(r.ids, req.Header.Get("X-Raterd-Event-Id"))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *alertReceiver) notifications() []notify.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]notify.Notification(nil), r.got...)
}

// waitFor polls until the receiver has a notification in state, within a generous deadline.
func (r *alertReceiver) waitFor(t *testing.T, state string) notify.Notification {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		for _, n := range r.notifications() {
			if n.State == state {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s notification after 2 minutes; got %+v", state, r.notifications())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIntegrationAlerting: a model starts refusing mid-stream; the records flow through the
// real pipeline (Kafka, the heuristic refusal check, ClickHouse, alert state in Redis), and
// the webhook receiver gets exactly one firing alert for that series with what a responder
// needs, and once quality recovers exactly one resolved alert — nothing else.
func TestIntegrationAlerting(t *testing.T) {
	s := testkit.RequireServices(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, db, group := "it-alert-"+suffix, "raterd_alert_"+suffix, "it-alert-"+suffix
	testkit.CreateTopic(t, s.Kafka, topic, 1) // one partition: the phases arrive in order
	ctx := context.Background()

	chCfg := clickhouse.Config{Addrs: []string{s.ClickHouse}, Database: db}
	if err := chCfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(ctx, chCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		t.Fatal(err)
	}
	if _, err := clickhouse.Migrate(ctx, conn, db, telemetry.Settings{}); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.Redis})
	keyPrefix := "it-alert-" + suffix + ":"
	t.Cleanup(func() {
		if keys, _ := rdb.Keys(context.Background(), keyPrefix+"*").Result(); len(keys) > 0 {
			_ = rdb.Del(context.Background(), keys...).Err()
		}
		_ = rdb.Close()
	})

	const secret = "it-s3cret"
	recv := newAlertReceiver(t, secret)
	// The threshold rule alerts when under half of the last 30 minutes' records (event
	// time) pass the refusal check, once the window holds 40. Each phase below is 200
	// records 5 s apart (17 minutes) and starts two hours after the previous one, so the
	// window (and the hour behind raterd_alert_series_mean) holds one phase at a time:
	// 0% refusals, then 100%, then 0% again — far from the threshold either way.
	text := fmt.Sprintf(`
kafka:
  brokers: [%s]
  topics: [%s]
  group_id: %s
  batch: {max_records: 50, linger: 20ms}
  commit_interval: 100ms
redis:
  addrs: [%s]
  key_prefix: "%scache:"
clickhouse:
  addrs: [%s]
  database: %s
  insert_interval: 50ms
judges:
  checks: {type: heuristic}
evaluators:
  - {name: refusal, judge: checks, check: refusal}
admin: {listen: "off"}
alerting:
  interval: 200ms
  key_prefix: "%s"
  channels:
    hook: {type: webhook, url: %q, secret: %s, delivery: {initial_backoff: 50ms}}
  rules:
    - name: refusals
      evaluators: [refusal]
      detector: threshold
      threshold: {stat: pass_rate, alert: 0.5, window: 30m, buckets: 30, min_samples: 40}
      severity: critical
      channels: [hook]
`, s.Kafka, topic, group, s.Redis, keyPrefix, s.ClickHouse, db, keyPrefix, recv.URL, secret)
	cfg, err := ParseConfig([]byte(text), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Alerting.State != alert.StateRedis {
		t.Fatalf("alert state %q, want redis", cfg.Alerting.State)
	}

	tel, err := NewTelemetry(ctx, cfg.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := Build(ctx, cfg, tel, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, reader, err := NewPipeline(cfg, st, tel, logger)
	if err != nil {
		_ = st.Close()
		t.Fatal(err)
	}
	var once sync.Once
	leave := func() { once.Do(func() { _ = reader.Close(); _ = st.Close() }) }
	t.Cleanup(leave)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(runCtx) }()

	const model, app, perPhase = "support-llm-v8", "helpdesk", 200
	base := time.Now().UTC().Add(-6 * time.Hour).Truncate(time.Hour)
	phase := func(name string, start time.Time, response string) [][]byte {
		var out [][]byte
		for i := range perPhase {
			out = append(out, fmt.Appendf(nil, `{"id":"al-%s-%d","timestamp":%q,"model":%q,"app":%q,"prompt":"How do I reset my password?","response":%q}`,
				name, i, start.Add(time.Duration(i)*5*time.Second).Format(time.RFC3339), model, app, response))
		}
		return out
	}
	const answer, refusal = "Sure. To reset your password, open Settings, choose Security and click Reset.", "I'm sorry, but I can't help with that."
	if err := Produce(ctx, []string{s.Kafka}, topic, append(phase("a", base, answer), phase("b", base.Add(2*time.Hour), refusal)...)); err != nil {
		t.Fatal(err)
	}
	firing := recv.waitFor(t, notify.StateFiring)
	series := notify.Series{Model: model, App: app, Evaluator: "refusal", Judge: "heuristic/v1"}
	if firing.Series != series || firing.Rule != "refusals" || firing.Severity != "critical" || firing.AlertID != alert.AlertID("refusals", series) || firing.NoData {
		t.Fatalf("firing alert: %+v", firing)
	}
	if firing.Observed != 0 || firing.Expected != 0.5 || firing.SampleSize < 40 || firing.Upper <= 0 || firing.Message == "" || firing.Since.IsZero() {
		t.Errorf("firing alert: observed %v [%v, %v] vs %v on %d records, since %v, message %q",
			firing.Observed, firing.Lower, firing.Upper, firing.Expected, firing.SampleSize, firing.Since, firing.Message)
	}
	if len(firing.Examples) != 5 {
		t.Errorf("examples: %+v, want 5", firing.Examples)
	}
	for _, e := range firing.Examples {
		if !strings.HasPrefix(e.RecordID, "al-b-") || e.Score != 0 {
			t.Errorf("example %+v is not a refused record", e)
		}
	}
	// The drill-down SQL runs as sent and shows the refused records.
	rows, err := conn.Query(ctx, firing.DrilldownSQL)
	if err != nil {
		t.Fatalf("drill-down SQL: %v\n%s", err, firing.DrilldownSQL)
	}
	n := 0
	for rows.Next() {
		var at time.Time
		var m, id, label, expl, rubric string
		var score float64
		if err := rows.Scan(&at, &m, &id, &score, &label, &expl, &rubric); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(id, "al-b-") || score != 0 || m != model {
			t.Errorf("drill-down row %s %s %v is not a refused record", m, id, score)
		}
		n++
	}
	rows.Close()
	if n == 0 {
		t.Errorf("drill-down SQL found no rows:\n%s", firing.DrilldownSQL)
	}

	// While it fires, Prometheus sees it too.
	for deadline := time.Now().Add(time.Minute); promGauge(t, tel, "raterd_alert_series_firing", model) != 1; {
		if time.Now().After(deadline) {
			t.Fatal("raterd_alert_series_firing is not 1 while the alert fires")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := promGauge(t, tel, "raterd_alert_series_state", model); v != 2 {
		t.Errorf("raterd_alert_series_state = %v while firing, want 2 (alert)", v)
	}

	// Quality recovers.
	if err := Produce(ctx, []string{s.Kafka}, topic, phase("c", base.Add(4*time.Hour), answer)); err != nil {
		t.Fatal(err)
	}
	resolved := recv.waitFor(t, notify.StateResolved)
	if resolved.AlertID != firing.AlertID || resolved.Observed != 1 || !resolved.Since.Equal(firing.Since) {
		t.Errorf("resolved alert: %+v", resolved)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for p.Stats().Done < 3*perPhase {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d records done after 2 minutes", p.Stats().Done, 3*perPhase)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for range 3 { // more evaluations with nothing new: nothing more is notified
		if err := st.Alerts.EvaluateNow(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The per-series metrics reach Prometheus.
	state, mean := promGauge(t, tel, "raterd_alert_series_state", model), promGauge(t, tel, "raterd_alert_series_mean", model)
	if firing := promGauge(t, tel, "raterd_alert_series_firing", model); state != 0 || mean != 1 || firing != 0 {
		t.Errorf("raterd_alert_series_state = %v, _mean = %v, _firing = %v; want 0 (ok), 1 and 0", state, mean, firing)
	}
	if keys, _ := rdb.Keys(ctx, keyPrefix+"state:*").Result(); len(keys) != 1 {
		t.Errorf("alert state keys in Redis: %v, want one", keys)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	leave() // the last evaluation and every queued delivery happen here

	got := recv.notifications()
	var seq []string
	for _, n := range got {
		seq = append(seq, n.State+" "+n.AlertID)
	}
	if want := []string{"firing " + firing.AlertID, "resolved " + firing.AlertID}; strings.Join(seq, ",") != strings.Join(want, ",") {
		t.Fatalf("the receiver got %v, want exactly %v", seq, want)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.wrong) > 0 || recv.ids[0] == recv.ids[1] || !strings.HasPrefix(recv.ids[0], firing.AlertID+":firing:") {
		t.Errorf("signatures or event ids: wrong %v, ids %v", recv.wrong, recv.ids)
	}
}

// promGauge returns the value of the gauge's sample whose model label is model.
func promGauge(t *testing.T, tel *Telemetry, name, model string) float64 {
	t.Helper()
	mfs, err := tel.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "model" && l.GetValue() == model {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{model=%q} in the Prometheus registry", name, model)
	return 0
}
