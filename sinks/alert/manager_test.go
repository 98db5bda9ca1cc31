package alert_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.yaml.in/yaml/v3"

	"raterd/internal/telemetry"
	"raterd/record"
	"raterd/sinks/alert"
	"raterd/sinks/alert/detect"
	"raterd/sinks/alert/notify"
)

// fakeChannel is a test fake of a notification channel: it records what it is handed.
type fakeChannel struct {
	name string
	mu   sync.Mutex
	got  []notify.Notification
}

func (f *fakeChannel) Name() string { return f.name }

func (f *fakeChannel) Enqueue(n notify.Notification) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, n)
	return true
}

// take returns and forgets what the channel got.
func (f *fakeChannel) take() []notify.Notification {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.got
	f.got = nil
	return out
}

func states(ns []notify.Notification) string {
	var s []string
	for _, n := range ns {
		s = append(s, n.State)
	}
	return strings.Join(s, ",")
}

// fakeClock is the lifecycle's clock in tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var mgrT0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

var mgrSeries = notify.Series{Model: "support-llm-v8", App: "helpdesk", Evaluator: "refusal", Judge: "heuristic/v1"}

// mgrRows returns score rows of s, one per value, event times from start a second apart.
func mgrRows(s notify.Series, prefix string, start time.Time, values ...float64) []record.Score {
	out := make([]record.Score, len(values))
	for i, v := range values {
		out[i] = record.Score{EventTime: start.Add(time.Duration(i) * time.Second), RecordID: fmt.Sprintf("%s-%d", prefix, i),
			Model: s.Model, App: s.App, Evaluator: s.Evaluator, Judge: s.Judge, Value: v, Status: record.StatusOK}
	}
	return out
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// passRateRule is a threshold rule on the refusal pass rate: alert below 0.5 over
// a 1h window of at least 10 records.
func passRateRule(edit func(*alert.RuleConfig)) alert.Config {
	r := &alert.RuleConfig{Name: "refusals", Evaluators: []string{"refusal"}, Detector: alert.DetectorThreshold,
		Threshold: &detect.ThresholdConfig{Stat: detect.StatPassRate, Alert: 0.5, MinSamples: 10}, Channels: []string{"fake"}}
	if edit != nil {
		edit(r)
	}
	return alert.Config{Rules: []*alert.RuleConfig{r}}
}

type mgrEnv struct {
	m     *alert.Manager
	ch    *fakeChannel
	clock *fakeClock
	rd    *sdkmetric.ManualReader
}

func newMgr(t *testing.T, cfg alert.Config, store alert.Store, clock *fakeClock) *mgrEnv {
	t.Helper()
	if cfg.Interval == 0 {
		cfg.Interval = time.Hour // the test evaluates with EvaluateNow
	}
	if clock == nil {
		clock = &fakeClock{t: mgrT0}
	}
	ch := &fakeChannel{name: "fake"}
	rd := sdkmetric.NewManualReader()
	m, err := alert.NewManager(cfg, alert.Options{Store: store, Channels: map[string]alert.Channel{"fake": ch},
		Now: clock.Now, Telemetry: telemetry.Settings{Logger: slog.New(slog.DiscardHandler), MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))}, Database: "raterd_test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return &mgrEnv{m: m, ch: ch, clock: clock, rd: rd}
}

// step writes rows, advances the clock by d and evaluates.
func (e *mgrEnv) step(t *testing.T, d time.Duration, rows []record.Score) []notify.Notification {
	t.Helper()
	if err := e.m.WriteScores(context.Background(), rows); err != nil {
		t.Fatalf("WriteScores: %v", err)
	}
	e.clock.Advance(d)
	if err := e.m.EvaluateNow(context.Background()); err != nil {
		t.Fatalf("EvaluateNow: %v", err)
	}
	return e.ch.take()
}

func TestAlertManagerThresholdLifecycle(t *testing.T) {
	e := newMgr(t, passRateRule(nil), nil, nil)
	if got := e.step(t, time.Minute, mgrRows(mgrSeries, "ok", mgrT0, repeat(1, 20)...)); len(got) != 0 {
		t.Fatalf("good traffic notified: %v", states(got))
	}
	got := e.step(t, time.Minute, mgrRows(mgrSeries, "bad", mgrT0.Add(time.Minute), repeat(0, 30)...))
	if states(got) != notify.StateFiring {
		t.Fatalf("after the drop: %q, want one firing", states(got))
	}
	n := got[0]
	if n.AlertID != alert.AlertID("refusals", mgrSeries) || n.Series != mgrSeries || n.Rule != "refusals" || n.Severity != "warning" {
		t.Errorf("identity: %+v", n)
	}
	if n.Observed != 0.4 || n.Expected != 0.5 || n.SampleSize != 50 || !(n.Lower < 0.4 && n.Upper > 0.4) || n.NoData {
		t.Errorf("observed %v [%v, %v] vs %v on %d; want 20/50 = 0.4 vs 0.5", n.Observed, n.Lower, n.Upper, n.Expected, n.SampleSize)
	}
	if len(n.Examples) != 5 || n.Examples[0].Score != 0 || !strings.HasPrefix(n.Examples[0].RecordID, "bad-") {
		t.Errorf("examples: %+v, want 5 failing records", n.Examples)
	}
	if !n.Since.Equal(mgrT0.Add(2*time.Minute)) || !n.At.Equal(n.Since) || n.Message == "" {
		t.Errorf("since %v at %v message %q", n.Since, n.At, n.Message)
	}
	for _, want := range []string{"FROM `raterd_test`.scores FINAL", "evaluator = 'refusal'", "model = 'support-llm-v8'", "judge = 'heuristic/v1'", "ORDER BY score ASC"} {
		if !strings.Contains(n.DrilldownSQL, want) {
			t.Errorf("drill-down SQL lacks %q:\n%s", want, n.DrilldownSQL)
		}
	}
	// Still bad, more bad data, time passes: deduplicated, nothing more.
	for i := range 3 {
		if got := e.step(t, 10*time.Minute, mgrRows(mgrSeries, fmt.Sprintf("bad%d", i), mgrT0.Add(5*time.Minute), repeat(0, 5)...)); len(got) != 0 {
			t.Fatalf("firing alert notified again without renotify: %v", states(got))
		}
	}
	// Recovery: two hours later (event time) the window holds only passes.
	got = e.step(t, time.Minute, mgrRows(mgrSeries, "back", mgrT0.Add(3*time.Hour), repeat(1, 20)...))
	if states(got) != notify.StateResolved || got[0].AlertID != n.AlertID || got[0].Observed != 1 || !got[0].Since.Equal(n.Since) {
		t.Fatalf("after recovery: %+v, want one resolved of the same alert", got)
	}
	if got := e.step(t, time.Hour, mgrRows(mgrSeries, "more", mgrT0.Add(3*time.Hour+time.Minute), repeat(1, 5)...)); len(got) != 0 {
		t.Fatalf("after resolution: %v", states(got))
	}
}

func TestAlertManagerForRenotifyAndPendingClears(t *testing.T) {
	e := newMgr(t, passRateRule(func(r *alert.RuleConfig) { r.For = 5 * time.Minute; r.Renotify = 30 * time.Minute }), nil, nil)
	e.step(t, time.Minute, mgrRows(mgrSeries, "ok", mgrT0, repeat(1, 10)...))
	bad := mgrRows(mgrSeries, "bad", mgrT0.Add(time.Minute), repeat(0, 20)...)
	steps := []struct {
		d     time.Duration
		rows  []record.Score
		want  string
		fired bool // Notification.Fired
	}{
		{time.Minute, bad, notify.StatePending, false},
		{2 * time.Minute, nil, "", false},
		{3 * time.Minute, nil, notify.StateFiring, true}, // 5 minutes pending
		{29 * time.Minute, nil, "", false},
		{time.Minute, nil, notify.StateFiring, true}, // renotify after 30 minutes
		{10 * time.Minute, nil, "", false},
		{time.Minute, mgrRows(mgrSeries, "back", mgrT0.Add(2*time.Hour), repeat(1, 10)...), notify.StateResolved, true},
		// A new episode that clears while pending: pending, then a resolution that says
		// it never fired (channels that show no pending alerts skip it).
		{time.Minute, mgrRows(mgrSeries, "dip", mgrT0.Add(2*time.Hour+time.Minute), repeat(0, 15)...), notify.StatePending, false},
		{time.Minute, mgrRows(mgrSeries, "up", mgrT0.Add(2*time.Hour+2*time.Minute), repeat(1, 30)...), notify.StateResolved, false},
	}
	for i, s := range steps {
		got := e.step(t, s.d, s.rows)
		if states(got) != s.want {
			t.Fatalf("step %d: notified %+v, want %q", i, got, s.want)
		}
		if len(got) == 1 && got[0].Fired != s.fired {
			t.Errorf("step %d (%s): Fired = %v, want %v", i, s.want, got[0].Fired, s.fired)
		}
	}
}

func TestAlertManagerResolveHold(t *testing.T) {
	e := newMgr(t, passRateRule(func(r *alert.RuleConfig) { r.ResolveAfter = 10 * time.Minute }), nil, nil)
	if got := states(e.step(t, time.Minute, mgrRows(mgrSeries, "bad", mgrT0, repeat(0, 20)...))); got != notify.StateFiring {
		t.Fatalf("got %q", got)
	}
	if got := states(e.step(t, time.Minute, mgrRows(mgrSeries, "ok", mgrT0.Add(2*time.Hour), repeat(1, 20)...))); got != "" {
		t.Fatalf("resolved before the hold: %q", got)
	}
	if got := states(e.step(t, 9*time.Minute, nil)); got != "" {
		t.Fatalf("resolved before the hold: %q", got)
	}
	if got := states(e.step(t, time.Minute, nil)); got != notify.StateResolved {
		t.Fatalf("after the hold: %q", got)
	}
}

func TestAlertManagerNoData(t *testing.T) {
	for _, tc := range []struct {
		policy string
		want   []string // notified at: 11 minutes without data, then data back
	}{
		{alert.NoDataAlert, []string{notify.StateFiring, notify.StateResolved}},
		{alert.NoDataKeep, []string{"", ""}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			e := newMgr(t, passRateRule(func(r *alert.RuleConfig) { r.NoDataAfter = 10 * time.Minute; r.NoData = tc.policy }), nil, nil)
			e.step(t, time.Minute, mgrRows(mgrSeries, "ok", mgrT0, repeat(1, 20)...))
			got := e.step(t, 11*time.Minute, nil)
			if states(got) != tc.want[0] {
				t.Fatalf("after 11 minutes without data: %q, want %q", states(got), tc.want[0])
			}
			if len(got) == 1 && (!got[0].NoData || !strings.Contains(got[0].Message, "no records for 11m")) {
				t.Errorf("no-data alert: NoData %v, message %q", got[0].NoData, got[0].Message)
			}
			// Data is back, but below the rule's min_samples the verdict is unknown: still
			// no good news, nothing changes.
			if got := states(e.step(t, time.Minute, mgrRows(mgrSeries, "few", mgrT0.Add(time.Hour), repeat(1, 5)...))); got != "" {
				t.Fatalf("a few records back: %q", got)
			}
			if got := states(e.step(t, time.Minute, mgrRows(mgrSeries, "back", mgrT0.Add(time.Hour+time.Minute), repeat(1, 10)...))); got != tc.want[1] {
				t.Fatalf("data back: %q, want %q", got, tc.want[1])
			}
		})
	}
	t.Run(alert.NoDataOK, func(t *testing.T) {
		e := newMgr(t, passRateRule(func(r *alert.RuleConfig) { r.NoDataAfter = 10 * time.Minute; r.NoData = alert.NoDataOK }), nil, nil)
		if got := states(e.step(t, time.Minute, mgrRows(mgrSeries, "bad", mgrT0, repeat(0, 20)...))); got != notify.StateFiring {
			t.Fatalf("got %q", got)
		}
		if got := states(e.step(t, 11*time.Minute, nil)); got != notify.StateResolved {
			t.Fatalf("no data with policy ok: %q, want resolved", got)
		}
	})
}

// TestAlertManagerNoDataClearsWhenRecordsReturn: an alert that fired on missing data and
// still fires once records are back (too few for a verdict) is no longer about missing
// data: its re-notification says what the detector sees, not "no records".
func TestAlertManagerNoDataClearsWhenRecordsReturn(t *testing.T) {
	e := newMgr(t, passRateRule(func(r *alert.RuleConfig) { r.NoDataAfter = 10 * time.Minute; r.Renotify = 5 * time.Minute }), nil, nil)
	e.step(t, time.Minute, mgrRows(mgrSeries, "ok", mgrT0, repeat(1, 20)...))
	if got := e.step(t, 11*time.Minute, nil); states(got) != notify.StateFiring || !got[0].NoData {
		t.Fatalf("after 11 minutes without data: %+v, want a no-data firing", got)
	}
	// A few records (below min_samples: no verdict): the alert fires on.
	if got := e.step(t, time.Minute, mgrRows(mgrSeries, "few", mgrT0.Add(time.Hour), repeat(1, 5)...)); len(got) != 0 {
		t.Fatalf("a few records back: %q", states(got))
	}
	got := e.step(t, 5*time.Minute, mgrRows(mgrSeries, "more", mgrT0.Add(time.Hour+time.Minute), 1, 1))
	if states(got) != notify.StateFiring {
		t.Fatalf("renotify: %q, want firing", states(got))
	}
	if got[0].NoData || strings.Contains(got[0].Message, "no records") {
		t.Errorf("re-notification with records back still says no data: NoData %v, message %q", got[0].NoData, got[0].Message)
	}
}

// TestAlertManagerPrunesOrphanedIndex: index entries no process evaluates (a rule that was
// removed or renamed, an unreadable entry) are dropped once their state has expired, so
// the index, which every process reads every interval, does not grow forever; entries
// whose state lives (another process's rule) stay.
func TestAlertManagerPrunesOrphanedIndex(t *testing.T) {
	store := alert.NewMemoryStore()
	ctx := context.Background()
	retired := notify.Series{Model: "m", App: "a", Evaluator: "e", Judge: "j"}
	gone, live := alert.AlertID("retired", retired), alert.AlertID("elsewhere", retired)
	entry := func(rule string) []byte {
		return []byte(fmt.Sprintf(`{"rule":%q,"series":{"model":"m","app":"a","evaluator":"e","judge":"j"}}`, rule))
	}
	if err := store.AddIndex(ctx, map[string][]byte{gone: entry("retired"), live: entry("elsewhere"), "junk": []byte("{")}); err != nil {
		t.Fatal(err)
	}
	if err := store.Update(ctx, live, time.Hour, func(alert.Stored) (alert.Stored, alert.Op, error) {
		return alert.Stored{Lifecycle: []byte(`{"v":1}`)}, alert.OpWrite, nil
	}); err != nil {
		t.Fatal(err)
	}
	e := newMgr(t, passRateRule(nil), store, nil)
	e.step(t, time.Minute, mgrRows(mgrSeries, "ok", mgrT0, repeat(1, 20)...))
	idx, err := store.Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mine := alert.AlertID("refusals", mgrSeries)
	if len(idx) != 2 || idx[live] == nil || idx[mine] == nil {
		t.Fatalf("index holds %v; want only %s (state alive) and %s (this process's)", slices.Sorted(maps.Keys(idx)), live, mine)
	}
}

func TestAlertManagerSilence(t *testing.T) {
	cfg := passRateRule(nil)
	cfg.Silences = []*alert.Silence{
		{Matchers: map[string]string{"model": "support-llm-v8*", "rule": "refusals"}, StartsAt: mgrT0, EndsAt: mgrT0.Add(time.Hour)},
		{Matchers: map[string]string{"app": "other"}, EndsAt: mgrT0.Add(48 * time.Hour)},
	}
	e := newMgr(t, cfg, nil, nil)
	if got := states(e.step(t, time.Minute, mgrRows(mgrSeries, "bad", mgrT0, repeat(0, 20)...))); got != "" {
		t.Fatalf("silenced alert notified %q", got)
	}
	if v, f := gauge(t, e.rd, "raterd.alert.series.state", mgrSeries), gauge(t, e.rd, "raterd.alert.series.firing", mgrSeries); v != 2 || f != 1 {
		t.Fatalf("silenced alert: state gauge %v, firing gauge %v; want 2 (alert) and 1", v, f)
	}
	if got := states(e.step(t, time.Hour, nil)); got != notify.StateFiring {
		t.Fatalf("after the silence: %q, want firing", got)
	}
	other := mgrSeries
	other.App = "other"
	if got := states(e.step(t, time.Minute, mgrRows(other, "o", mgrT0, repeat(0, 20)...))); got != "" {
		t.Fatalf("alert silenced by app notified %q", got)
	}
}

func TestAlertManagerExpiresSeries(t *testing.T) {
	cfg := passRateRule(func(r *alert.RuleConfig) { r.NoDataAfter = 10 * time.Minute; r.NoData = alert.NoDataKeep })
	cfg.ExpireAfter = time.Hour
	store := alert.NewMemoryStore()
	e := newMgr(t, cfg, store, nil)
	if got := states(e.step(t, time.Minute, mgrRows(mgrSeries, "bad", mgrT0, repeat(0, 20)...))); got != notify.StateFiring {
		t.Fatalf("got %q", got)
	}
	got := e.step(t, time.Hour, nil)
	if states(got) != notify.StateResolved || !strings.Contains(got[0].Message, "forgotten") {
		t.Fatalf("expiry: %+v, want a resolved saying the series is forgotten", got)
	}
	if idx, _ := store.Index(context.Background()); len(idx) != 0 {
		t.Fatalf("index after expiry: %v", idx)
	}
	if v := gauge(t, e.rd, "raterd.alert.series.state", mgrSeries); !math.IsNaN(v) {
		t.Fatalf("expired series still exported: %v", v)
	}
}

func TestAlertManagerNeverBlocksAndCountsDrops(t *testing.T) {
	cfg := passRateRule(nil)
	cfg.QueueRows = 10
	e := newMgr(t, cfg, nil, nil)
	rows := mgrRows(mgrSeries, "r", mgrT0, repeat(1, 25)...)
	rows[0].Status = record.StatusParseFailure // not an observation: neither kept nor dropped
	if err := e.m.WriteScores(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	if got := counter(t, e.rd, "raterd.alert.observations.dropped", attribute.String("reason", "queue_full")); got != 14 {
		t.Fatalf("dropped %d, want 24 ok rows − 10 queued = 14", got)
	}
	if err := e.m.EvaluateNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.m.WriteScores(context.Background(), rows); err != nil {
		t.Fatalf("WriteScores after Close: %v", err)
	}
	if err := e.m.EvaluateNow(context.Background()); !errors.Is(err, alert.ErrClosed) {
		t.Fatalf("EvaluateNow after Close: %v", err)
	}
}

func TestAlertManagerSeriesLimit(t *testing.T) {
	cfg := passRateRule(nil)
	cfg.MaxSeries = 2
	e := newMgr(t, cfg, nil, nil)
	var rows []record.Score
	for i := range 4 {
		s := mgrSeries
		s.Model = fmt.Sprintf("m%d", i)
		rows = append(rows, mgrRows(s, s.Model, mgrT0, 1, 1)...)
	}
	e.step(t, time.Minute, rows)
	if got := counter(t, e.rd, "raterd.alert.observations.dropped", attribute.String("reason", "series_limit")); got != 4 {
		t.Fatalf("series_limit drops = %d, want 4 (two series of two rows)", got)
	}
}

func TestAlertManagerMetrics(t *testing.T) {
	e := newMgr(t, passRateRule(nil), nil, nil)
	e.step(t, time.Minute, mgrRows(mgrSeries, "r", mgrT0, append(repeat(1, 15), repeat(0, 5)...)...))
	if v := gauge(t, e.rd, "raterd.alert.series.mean", mgrSeries); math.Abs(v-0.75) > 1e-9 {
		t.Fatalf("mean gauge = %v, want 0.75", v)
	}
	if v, f := gauge(t, e.rd, "raterd.alert.series.state", mgrSeries), gauge(t, e.rd, "raterd.alert.series.firing", mgrSeries); v != 0 || f != 0 {
		t.Fatalf("state gauge = %v, firing gauge = %v; want 0 (ok), 0", v, f)
	}
	e.step(t, time.Minute, mgrRows(mgrSeries, "b", mgrT0.Add(time.Minute), repeat(0, 30)...))
	if v, f := gauge(t, e.rd, "raterd.alert.series.state", mgrSeries), gauge(t, e.rd, "raterd.alert.series.firing", mgrSeries); v != 2 || f != 1 {
		t.Fatalf("state gauge = %v, firing gauge = %v; want 2 (alert), 1", v, f)
	}
	// The mean is the last hour's, whatever the detector: 15 passes of 50.
	if v := gauge(t, e.rd, "raterd.alert.series.mean", mgrSeries); math.Abs(v-0.3) > 1e-9 {
		t.Fatalf("mean gauge = %v, want 0.3", v)
	}
	// Too few records in the rule's window: the verdict is unknown (−1).
	e.step(t, time.Minute, mgrRows(mgrSeries, "late", mgrT0.Add(5*time.Hour), 1, 1))
	if v, m := gauge(t, e.rd, "raterd.alert.series.state", mgrSeries), gauge(t, e.rd, "raterd.alert.series.mean", mgrSeries); v != -1 || m != 1 {
		t.Fatalf("state gauge = %v, mean %v; want -1 (unknown), 1", v, m)
	}
	if got := counter(t, e.rd, "raterd.alert.notifications.emitted", attribute.String("state", "firing")); got != 1 {
		t.Fatalf("emitted firing = %d", got)
	}
}

// TestAlertManagerSharedStore: two processes (Managers on one store) that each get part
// of a series' rows notify its firing and its resolution exactly once between them, and
// a restarted process resumes the state instead of firing again.
func TestAlertManagerSharedStore(t *testing.T) {
	store := alert.NewMemoryStore()
	testSharedState(t, func() alert.Store { return store })
}

func testSharedState(t *testing.T, store func() alert.Store) {
	cfg := func() alert.Config {
		return passRateRule(func(r *alert.RuleConfig) { r.NoDataAfter = 30 * time.Minute })
	}
	clock := &fakeClock{t: mgrT0}
	a, b := newMgr(t, cfg(), store(), clock), newMgr(t, cfg(), store(), clock)
	both := func(rowsA, rowsB []record.Score) []notify.Notification {
		t.Helper()
		_ = a.m.WriteScores(context.Background(), rowsA)
		_ = b.m.WriteScores(context.Background(), rowsB)
		clock.Advance(time.Minute)
		var wg sync.WaitGroup
		for _, e := range []*mgrEnv{a, b} {
			wg.Go(func() {
				if err := e.m.EvaluateNow(context.Background()); err != nil {
					t.Errorf("EvaluateNow: %v", err)
				}
			})
		}
		wg.Wait()
		return append(a.ch.take(), b.ch.take()...)
	}
	both(mgrRows(mgrSeries, "a-ok", mgrT0, repeat(1, 10)...), mgrRows(mgrSeries, "b-ok", mgrT0, repeat(1, 10)...))
	got := both(mgrRows(mgrSeries, "a-bad", mgrT0.Add(time.Minute), repeat(0, 15)...), mgrRows(mgrSeries, "b-bad", mgrT0.Add(time.Minute), repeat(0, 15)...))
	if states(got) != notify.StateFiring || got[0].SampleSize != 50 {
		t.Fatalf("two processes notified %q (sample %d); want one firing over all 50 rows", states(got), got[0].SampleSize)
	}
	for range 5 {
		if got := both(nil, mgrRows(mgrSeries, "b-more", mgrT0.Add(2*time.Minute), repeat(0, 3)...)); len(got) != 0 {
			t.Fatalf("duplicate: %q", states(got))
		}
	}
	// A process restarts: the state is resumed, nothing is notified again.
	_ = a.m.Close()
	a = newMgr(t, cfg(), store(), clock)
	if got := both(nil, nil); len(got) != 0 {
		t.Fatalf("after a restart: %q", states(got))
	}
	// Only the restarted process gets the recovery; it resolves once.
	got = both(mgrRows(mgrSeries, "a-back", mgrT0.Add(2*time.Hour), repeat(1, 20)...), nil)
	if states(got) != notify.StateResolved {
		t.Fatalf("recovery: %q, want one resolved", states(got))
	}
	// No process gets data any more: the missing data is alerted once, by one of them.
	clock.Advance(30 * time.Minute)
	if got := both(nil, nil); states(got) != notify.StateFiring || !got[0].NoData {
		t.Fatalf("no data: %+v, want one no-data firing", got)
	}
	if got := both(nil, nil); len(got) != 0 {
		t.Fatalf("no data again: %q", states(got))
	}
}

func TestAlertManagerCanary(t *testing.T) {
	cfg := alert.Config{Rules: []*alert.RuleConfig{{Name: "canary", Evaluators: []string{"helpfulness"}, Detector: alert.DetectorCanary,
		Canary:   &alert.CanaryRule{Candidate: "support-llm-v8*", Baseline: "support-llm-v7", CanaryConfig: detect.CanaryConfig{MinSamples: 20}},
		Channels: []string{"fake"}}}}
	e := newMgr(t, cfg, nil, nil)
	base := notify.Series{Model: "support-llm-v7", App: "helpdesk", Evaluator: "helpfulness", Judge: "sim"}
	cand := base
	cand.Model = "support-llm-v8-canary"
	// Baseline rows alone make no series.
	e.step(t, time.Minute, mgrRows(base, "early", mgrT0, 4, 5, 4))
	if v := gauge(t, e.rd, "raterd.alert.series.state", base); !math.IsNaN(v) {
		t.Fatalf("a baseline model became a series")
	}
	var got []notify.Notification
	for i := range 20 {
		vb := []float64{4, 5, 4, 4, 5, 3, 4, 5, 4, 4}
		vc := []float64{2, 3, 2, 3, 2, 2, 3, 2, 1, 2}
		rows := append(mgrRows(cand, fmt.Sprintf("c%d", i), mgrT0.Add(time.Duration(i)*time.Minute), vc...),
			mgrRows(base, fmt.Sprintf("b%d", i), mgrT0.Add(time.Duration(i)*time.Minute), vb...)...)
		got = append(got, e.step(t, time.Minute, rows)...)
	}
	if states(got) != notify.StateFiring || got[0].Series != cand || got[0].Observed > -1.5 {
		t.Fatalf("canary: %+v, want one firing on the candidate with a difference near −2", got)
	}
	if !strings.Contains(got[0].DrilldownSQL, "match(model, '^support-llm-v7$')") || !strings.Contains(got[0].Message, `baseline "support-llm-v7"`) {
		t.Errorf("canary drill-down or message lacks the baseline:\n%s\n%s", got[0].DrilldownSQL, got[0].Message)
	}
	for _, ex := range got[0].Examples {
		if !strings.HasPrefix(ex.RecordID, "c") || ex.Score > 2 {
			t.Errorf("example %+v is not one of the candidate's worst", ex)
		}
	}
}

func TestAlertDrilldownSQLQuotes(t *testing.T) {
	s := notify.Series{Model: "m'; DROP TABLE x; --", App: `a\' OR 1=1`, Evaluator: "e\n", Judge: "j`"}
	r := &alert.RuleConfig{Name: "r", Detector: alert.DetectorCUSUM}
	q := alert.DrilldownSQL("db`x", r, s, detect.Decision{At: mgrT0, Since: mgrT0.Add(-time.Minute), State: detect.StateAlert}, mgrT0)
	for _, want := range []string{"FROM `db\\`x`.scores FINAL", `model = 'm\'; DROP TABLE x; --'`, `app = 'a\\\' OR 1=1'`,
		`evaluator = 'e\x0A'`, "judge = 'j`'", "event_time >= toDateTime('2026-11-28 10:59:00', 'UTC')", "event_time < toDateTime('2026-11-28 12:00:01', 'UTC')"} {
		if !strings.Contains(q, want) {
			t.Errorf("query lacks %s:\n%s", want, q)
		}
	}
}

func TestAlertConfigYAMLAndErrors(t *testing.T) {
	const text = `
interval: 5s
rules:
  - name: refusals
    evaluators: [refusal]
    detector: threshold
    threshold: {stat: pass_rate, alert: 0.9, warning: 0.95, window: 30m, min_samples: 50, direction: below}
    for: 5m
    renotify: 4h
    no_data: ok
  - name: helpfulness
    evaluators: ["help*"]
    cusum: {k: 0.2, h: 20, baseline: {mean: 3.8, sd: 1}}
silences:
  - matchers: {model: "support-llm-v9*"}
    starts_at: 2026-11-28T12:00:00Z
    ends_at: 2026-11-28T14:00:00Z
`
	var cfg alert.Config
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate("alerting"); err != nil {
		t.Fatal(err)
	}
	th, cu := cfg.Rules[0].Threshold, cfg.Rules[1].CUSUM
	if cfg.Interval != 5*time.Second || th.Stat != detect.StatPassRate || *th.Warning != 0.95 || th.Window != 30*time.Minute || th.MinSamples != 50 ||
		cfg.Rules[0].NoData != alert.NoDataOK || cfg.Rules[1].Detector != alert.DetectorCUSUM || cu.H != 20 || cu.Baseline.Mean != 3.8 ||
		cfg.Rules[1].NoDataAfter != time.Hour || cfg.Rules[1].Severity != "warning" || !cfg.Silences[0].EndsAt.Equal(mgrT0.Add(2*time.Hour)) {
		t.Fatalf("decoded %+v %+v %+v", cfg, *th, *cu)
	}

	for _, tc := range []struct{ edit, want string }{
		{"rules: []", "alerting.rules: at least one"},
		{"rules: [{evaluators: [x]}]", "alerting.rules[0].name"},
		{"rules: [{name: a}]", "alerting.rules[0] (a).evaluators"},
		{"rules: [{name: a, evaluators: ['[']}]", "alerting.rules[0] (a).evaluators[0]"},
		{"rules: [{name: a, evaluators: [x], detector: zscore}]", "alerting.rules[0] (a).detector"},
		{"rules: [{name: a, evaluators: [x], detector: threshold}]", "alerting.rules[0] (a).threshold.alert: required"},
		{"rules: [{name: a, evaluators: [x], ewma: {lambda: 0.1}}]", "alerting.rules[0] (a).ewma: parameters for a detector the rule does not use"},
		{"rules: [{name: a, evaluators: [x], detector: ewma, ewma: {lambda: 2}}]", "alerting.rules[0] (a).ewma.lambda: alert: invalid config: Lambda"},
		{"rules: [{name: a, evaluators: [x], detector: ewma, ewma: {baseline: {mean: 3, sd: -1}}}]", "alerting.rules[0] (a).ewma.baseline.sd: "},
		{"rules: [{name: a, evaluators: [x], cusum: {warm_up: 1}}]", "alerting.rules[0] (a).cusum.warm_up: "},
		{"rules: [{name: a, evaluators: [x], detector: threshold, threshold: {alert: 3, min_samples: -1}}]", "alerting.rules[0] (a).threshold.min_samples: "},
		{"rules: [{name: a, evaluators: [x], detector: canary, canary: {candidate: v8, baseline: v7, alpha: 0.1, warn_alpha: 0.05}}]", "alerting.rules[0] (a).canary.warn_alpha: "},
		{"rules: [{name: a, evaluators: [x], detector: canary, canary: {candidate: v8}}]", "alerting.rules[0] (a).canary: candidate and baseline"},
		{"rules: [{name: a, evaluators: [x], no_data: maybe}]", "alerting.rules[0] (a).no_data"},
		{"rules: [{name: a, evaluators: [x], for: -1s}]", "alerting.rules[0] (a).for"},
		{"rules: [{name: a, evaluators: [x]}, {name: a, evaluators: [y]}]", "alerting.rules[1] (a).name: \"a\" is used twice"},
		{"rules: [{name: a, evaluators: [x], no_data_after: 48h}]", "alerting.rules[0] (a).no_data_after"},
		{"rules: [{name: a, evaluators: [x]}]\nsilences: [{matchers: {team: x}, ends_at: 2026-01-01T00:00:00Z}]", "alerting.silences[0].matchers.team"},
		{"rules: [{name: a, evaluators: [x]}]\nsilences: [{matchers: {rule: x}}]", "alerting.silences[0].ends_at"},
	} {
		var c alert.Config
		err := yaml.Unmarshal([]byte(tc.edit), &c)
		if err == nil {
			err = c.Validate("alerting")
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tc.edit, err, tc.want)
		}
	}
	if _, err := alert.NewManager(passRateRule(func(r *alert.RuleConfig) { r.Channels = []string{"pager"} }), alert.Options{}); err == nil ||
		!strings.Contains(err.Error(), `alerting.rules[0] (refusals).channels[0]: "pager" is not a configured channel`) {
		t.Fatalf("unknown channel: %v", err)
	}
	var d detect.Direction
	if err := yaml.Unmarshal([]byte("sideways"), &d); err == nil {
		t.Fatal("direction sideways accepted")
	}
}

// collect reads the manual reader's metrics.
func collect(t *testing.T, rd *sdkmetric.ManualReader) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := rd.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

// gauge returns the value of the series' gauge, or NaN when it is not exported.
func gauge(t *testing.T, rd *sdkmetric.ManualReader, name string, s notify.Series) float64 {
	t.Helper()
	for _, sm := range collect(t, rd).ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			match := func(set attribute.Set) bool {
				v, _ := set.Value("model")
				a, _ := set.Value("app")
				return v.AsString() == s.Model && a.AsString() == s.App
			}
			switch d := m.Data.(type) {
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						return p.Value
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						return float64(p.Value)
					}
				}
			}
		}
	}
	return math.NaN()
}

// counter sums the counter's points that carry attr.
func counter(t *testing.T, rd *sdkmetric.ManualReader, name string, attr attribute.KeyValue) int64 {
	t.Helper()
	var n int64
	for _, sm := range collect(t, rd).ScopeMetrics {
		for _, m := range sm.Metrics {
			if d, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, p := range d.DataPoints {
					if v, ok := p.Attributes.Value(attr.Key); ok && v == attr.Value {
						n += p.Value
					}
				}
			}
		}
	}
	return n
}

// downStore is a test fake of a store that can be unreachable.
type downStore struct {
	*alert.MemoryStore
	mu   sync.Mutex
	down bool
}

var errDown = errors.New("store unreachable")

func (s *downStore) set(down bool) { s.mu.Lock(); s.down = down; s.mu.Unlock() }
func (s *downStore) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errDown
	}
	return nil
}
func (s *downStore) Index(ctx context.Context) (map[string][]byte, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.MemoryStore.Index(ctx)
}

// TestAlertManagerStoreOutage: while the state store is unreachable, observations are kept
// (within queue_rows, the rest dropped as backlog) and applied once it answers.
func TestAlertManagerStoreOutage(t *testing.T) {
	store := &downStore{MemoryStore: alert.NewMemoryStore()}
	cfg := passRateRule(nil)
	cfg.QueueRows = 50
	e := newMgr(t, cfg, store, nil)
	e.step(t, time.Minute, mgrRows(mgrSeries, "ok", mgrT0, repeat(1, 20)...))
	store.set(true)
	for i := range 3 {
		_ = e.m.WriteScores(context.Background(), mgrRows(mgrSeries, fmt.Sprintf("bad%d", i), mgrT0.Add(time.Minute), repeat(0, 20)...))
		e.clock.Advance(time.Minute)
		if err := e.m.EvaluateNow(context.Background()); !errors.Is(err, errDown) {
			t.Fatalf("EvaluateNow during the outage: %v", err)
		}
	}
	if got := counter(t, e.rd, "raterd.alert.observations.dropped", attribute.String("reason", "backlog")); got != 10 {
		t.Fatalf("backlog drops = %d, want 60 − 50 = 10", got)
	}
	store.set(false)
	got := e.step(t, time.Minute, nil)
	if states(got) != notify.StateFiring || got[0].SampleSize != 70 {
		t.Fatalf("after the outage: %+v, want one firing over 20 + 50 records", got)
	}
}
