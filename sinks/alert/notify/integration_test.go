package notify_test

// Integration tests of the Kafka and ClickHouse channels against the real servers of
// scripts/services.sh: skipped without RATERD_TEST_KAFKA / RATERD_TEST_CLICKHOUSE, failed
// with RATERD_REQUIRE_SERVICES set (as in .ci/run).

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/internal/telemetry"
	"raterd/internal/testkit"
	"raterd/sinks/alert/notify"
	"raterd/sinks/clickhouse"
)

func notifyUnique(prefix string) string { return prefix + strconv.FormatInt(time.Now().UnixNano(), 36) }

// TestKafkaChannel produces a lifecycle to a fresh 3-partition topic and reads it back:
// keys are alert ids (so one alert's changes share a partition, in order), values decode
// to the notifications, headers carry state and rule.
func TestKafkaChannel(t *testing.T) {
	broker := testkit.Service(t, "RATERD_TEST_KAFKA", "Kafka broker")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := notifyUnique("raterd-alert-test-")
	testkit.CreateTopic(t, broker, topic, 3)

	ch, err := notify.NewKafkaChannel("alerts-topic", notify.KafkaChannelConfig{Brokers: []string{broker}, Topic: topic}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sent []notify.Notification
	for i, state := range []string{notify.StatePending, notify.StateFiring, notify.StateResolved} {
		n := notifySample(state)
		n.At = notifyAt.Add(time.Duration(i) * time.Minute)
		sent = append(sent, n)
	}
	other := notifySample(notify.StateFiring)
	other.AlertID, other.Series.Model = "b7d01e44", "support-llm-v8"
	sent = append(sent, other)
	for _, n := range sent {
		// Auto-created topics and fresh leaders can refuse the first write; retry as the
		// Deliverer would.
		var err error
		for attempt := 0; attempt < 20; attempt++ {
			if err = ch.Notify(ctx, n); err == nil || errors.Is(err, notify.ErrPermanent) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("Notify %s %s: %v", n.AlertID, n.State, err)
		}
	}
	if err := ch.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	type got struct {
		partition int
		offset    int64
		n         notify.Notification
		headers   map[string]string
	}
	byAlert := map[string][]got{}
	total := 0
	for p := range 3 {
		conn, err := kafka.DialLeader(ctx, "tcp", broker, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		if err != nil {
			t.Fatal(err)
		}
		if last > 0 {
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			batch := conn.ReadBatch(1, 10<<20)
			for {
				m, err := batch.ReadMessage()
				if err != nil {
					t.Fatalf("read %s/%d: %v", topic, p, err)
				}
				var n notify.Notification
				if err := json.Unmarshal(m.Value, &n); err != nil {
					t.Fatalf("value is not a Notification: %v\n%s", err, m.Value)
				}
				if string(m.Key) != n.AlertID {
					t.Errorf("key %q, want the alert id %q", m.Key, n.AlertID)
				}
				h := map[string]string{}
				for _, kv := range m.Headers {
					h[kv.Key] = string(kv.Value)
				}
				byAlert[n.AlertID] = append(byAlert[n.AlertID], got{p, m.Offset, n, h})
				total++
				if m.Offset+1 >= last {
					break
				}
			}
			_ = batch.Close()
		}
		_ = conn.Close()
	}
	if total != len(sent) {
		t.Fatalf("read %d messages, want %d", total, len(sent))
	}
	life := byAlert[sent[0].AlertID]
	if len(life) != 3 {
		t.Fatalf("alert %s has %d messages, want 3", sent[0].AlertID, len(life))
	}
	for i, g := range life {
		if g.partition != life[0].partition {
			t.Errorf("alert %s spread over partitions %d and %d", sent[0].AlertID, life[0].partition, g.partition)
		}
		if !reflect.DeepEqual(g.n, sent[i]) {
			t.Errorf("message %d decodes to %+v, want %+v", i, g.n, sent[i])
		}
		if g.headers[notify.KafkaHeaderState] != sent[i].State || g.headers[notify.KafkaHeaderRule] != sent[i].Rule {
			t.Errorf("message %d headers %v", i, g.headers)
		}
	}
	if b := byAlert[other.AlertID]; len(b) != 1 || !reflect.DeepEqual(b[0].n, other) {
		t.Errorf("alert %s: %+v", other.AlertID, b)
	}
}

// TestClickHouseChannel migrates a fresh database, writes two alerts' state changes
// (one through a Deliverer, which drains on Close) and reads the latest state of each
// from alerts FINAL.
func TestClickHouseChannel(t *testing.T) {
	addr := testkit.Service(t, "RATERD_TEST_CLICKHOUSE", "ClickHouse")
	cfg := clickhouse.Config{Addrs: []string{addr}, Database: notifyUnique("raterd_alert_test_")}
	if err := cfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database); err != nil {
			t.Errorf("drop database %s: %v", cfg.Database, err)
		}
		_ = conn.Close()
	})
	quiet := slog.New(slog.DiscardHandler)
	if _, err := clickhouse.Migrate(ctx, conn, cfg.Database, telemetry.Settings{Logger: quiet}); err != nil {
		t.Fatalf("migrate: %v", err)
	}

	ch, err := notify.NewClickHouseChannel("history", conn, notify.ClickHouseChannelConfig{Database: cfg.Database})
	if err != nil {
		t.Fatal(err)
	}
	var life []notify.Notification
	for i, state := range []string{notify.StatePending, notify.StateFiring, notify.StateResolved} {
		n := notifySample(state)
		n.At = notifyAt.Add(time.Duration(i) * time.Minute)
		life = append(life, n)
		if err := ch.Notify(ctx, n); err != nil {
			t.Fatalf("Notify %s: %v", state, err)
		}
	}
	// A resent insert (a retry whose answer was lost) merges away.
	if err := ch.Notify(ctx, life[2]); err != nil {
		t.Fatal(err)
	}

	// The second alert goes through a Deliverer; Close drains it.
	d, err := notify.NewDeliverer(ch, notify.DeliveryConfig{}, notify.DeliveryOptions{Telemetry: telemetry.Settings{Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	other := notifySample(notify.StatePending)
	other.AlertID, other.Series.App, other.Examples, other.Severity = "c0ffee01", "", nil, "warning"
	d.Enqueue(other)
	other.State, other.At = notify.StateFiring, other.At.Add(time.Minute)
	d.Enqueue(other)
	if err := d.Close(ctx); err != nil {
		t.Fatalf("Deliverer.Close: %v", err)
	}
	if s := d.Stats(); s.Delivered != 2 {
		t.Fatalf("deliverer stats %+v, want 2 delivered", s)
	}

	type row struct {
		alertID, rule, evaluator, model, app, judge, state, severity string
		observed, expected, low, high                                float64
		sampleSize                                                   uint64
		since, updated                                               time.Time
		examples                                                     []string
		message, sql                                                 string
	}
	rows, err := conn.Query(ctx, "SELECT alert_id, rule, evaluator, model, app, judge, toString(state), severity, "+
		"observed, expected, interval_low, interval_high, sample_size, since, updated_at, example_record_ids, message, drilldown_sql "+
		"FROM "+cfg.Database+".alerts FINAL ORDER BY alert_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.alertID, &r.rule, &r.evaluator, &r.model, &r.app, &r.judge, &r.state, &r.severity,
			&r.observed, &r.expected, &r.low, &r.high, &r.sampleSize, &r.since, &r.updated, &r.examples, &r.message, &r.sql); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("alerts FINAL holds %d rows, want 2 (one per alert): %+v", len(got), got)
	}
	n := life[2]
	want := row{n.AlertID, n.Rule, n.Series.Evaluator, n.Series.Model, n.Series.App, n.Series.Judge, "resolved", n.Severity,
		n.Observed, n.Expected, n.Lower, n.Upper, uint64(n.SampleSize), n.Since, n.At, []string{"req-7f3a", "req-81c0"},
		n.Message, n.DrilldownSQL}
	r := got[0]
	if r.alertID != want.alertID || r.rule != want.rule || r.evaluator != want.evaluator || r.model != want.model ||
		r.app != want.app || r.judge != want.judge || r.state != want.state || r.severity != want.severity ||
		r.observed != want.observed || r.expected != want.expected || r.low != want.low || r.high != want.high ||
		r.sampleSize != want.sampleSize || !r.since.Equal(want.since) || !r.updated.Equal(want.updated) ||
		!slices.Equal(r.examples, want.examples) || r.message != want.message || r.sql != want.sql {
		t.Errorf("latest row of %s:\n%+v\nwant\n%+v", n.AlertID, r, want)
	}
	if o := got[1]; o.alertID != other.AlertID || o.state != "firing" || o.app != "" || o.severity != "warning" ||
		len(o.examples) != 0 || !o.updated.Equal(other.At) {
		t.Errorf("latest row of %s: %+v, want firing at %s", other.AlertID, o, other.At)
	}

	// A state the table's Enum8 cannot hold is refused before any I/O, permanently.
	bad := notifySample("acknowledged")
	if err := ch.Notify(ctx, bad); !errors.Is(err, notify.ErrPermanent) {
		t.Errorf("Notify with state %q = %v, want ErrPermanent", bad.State, err)
	}
}
