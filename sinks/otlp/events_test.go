package otlp

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"

	"raterd/internal/telemetry"
	"raterd/record"
)

// recordingExporter is the unit tests' OTLP exporter: it keeps what it is given, fails
// while err is set, and waits while gate is not nil and open.
type recordingExporter struct {
	mu      sync.Mutex
	records []sdklog.Record
	err     error
	gate    chan struct{}
}

func (x *recordingExporter) Export(ctx context.Context, recs []sdklog.Record) error {
	x.mu.Lock()
	gate, err := x.gate, x.err
	x.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range recs {
		x.records = append(x.records, recs[i].Clone())
	}
	return nil
}

func (*recordingExporter) Shutdown(context.Context) error   { return nil }
func (*recordingExporter) ForceFlush(context.Context) error { return nil }

func (x *recordingExporter) got() []sdklog.Record {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]sdklog.Record(nil), x.records...)
}

func (x *recordingExporter) setErr(err error) {
	x.mu.Lock()
	x.err = err
	x.mu.Unlock()
}

// harness is a sink on a recordingExporter with a manual metric reader and a log buffer.
type harness struct {
	*Events
	exp    *recordingExporter
	reader *sdkmetric.ManualReader
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func validConfig(t *testing.T, mod func(*Config)) Config {
	t.Helper()
	cfg := Config{Endpoint: "127.0.0.1:4317", Interval: 10 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate("score_events"); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{exp: &recordingExporter{}, reader: sdkmetric.NewManualReader(), logs: &syncBuffer{}}
	h.Events = newEvents(cfg, h.exp, Options{Telemetry: telemetry.Settings{
		Logger:        slog.New(slog.NewTextHandler(h.logs, nil)),
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader)),
	}})
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// counts returns raterd.score_events.records by outcome.
func (h *harness) counts(t *testing.T) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != MetricRecords {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				v, _ := dp.Attributes.Value("outcome")
				out[v.AsString()] += dp.Value
			}
		}
	}
	return out
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 5s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func attrs(r sdklog.Record) map[string]attribute.Value {
	out := map[string]attribute.Value{}
	r.WalkAttributes(func(kv attribute.KeyValue) bool {
		out[string(kv.Key)] = kv.Value
		return true
	})
	return out
}

const (
	traceHex = "4bf92f3577b34da6a3ce929d0e0e4736"
	spanHex  = "00f067aa0ba902b7"
)

func okRow() record.Score {
	return record.Score{
		ScoredAt: time.Date(2026, 11, 28, 12, 0, 1, 0, time.UTC), RecordID: "chatcmpl-123",
		TraceID: traceHex, SpanID: spanHex, Source: record.Source{Topic: "llm", Partition: 2, Offset: 7},
		Model: "support-llm-v7", Evaluator: "helpfulness", RubricVersion: "0123456789abcdef",
		Judge: "openai:prometheus-2", Value: 4, Label: "pass", Explanation: "answers the question",
		Status: record.StatusOK,
	}
}

func TestEventCarriesTheConventionAttributesAndTheJudgedSpan(t *testing.T) {
	h := newHarness(t, validConfig(t, nil))
	failed := okRow()
	failed.Evaluator, failed.Status, failed.Value, failed.Label = "faithfulness", record.StatusParseFailure, 0, ""
	failed.Explanation = "judge answer broke the grammar"
	errRow := okRow()
	errRow.Evaluator, errRow.Status, errRow.Value, errRow.Label = "toxicity", record.StatusJudgeError, 0, ""
	errRow.Explanation = "HTTP 400: bad request"
	errRow.TraceID = strings.ToUpper(traceHex) // either case is read

	// The caller's context carries raterd's own span: the events must not take it.
	own := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}})
	ctx := trace.ContextWithSpanContext(context.Background(), own)
	before := time.Now()
	if err := h.WriteScores(ctx, []record.Score{okRow(), failed, errRow}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 events exported", func() bool { return len(h.exp.got()) == 3 })
	got := h.exp.got()

	wantTrace, _ := trace.TraceIDFromHex(traceHex)
	wantSpan, _ := trace.SpanIDFromHex(spanHex)
	for i, r := range got {
		if r.EventName() != "gen_ai.evaluation.result" {
			t.Errorf("event %d: name %q", i, r.EventName())
		}
		if r.TraceID() != wantTrace || r.SpanID() != wantSpan {
			t.Errorf("event %d: trace %s span %s, want the judged span %s %s", i, r.TraceID(), r.SpanID(), traceHex, spanHex)
		}
		if !r.Timestamp().Equal(okRow().ScoredAt) {
			t.Errorf("event %d: timestamp %s, want scored_at", i, r.Timestamp())
		}
		if r.ObservedTimestamp().Before(before) {
			t.Errorf("event %d: observed %s, before the write", i, r.ObservedTimestamp())
		}
		if r.InstrumentationScope().Name != ScopeName {
			t.Errorf("event %d: scope %q", i, r.InstrumentationScope().Name)
		}
	}

	ok := attrs(got[0])
	want := map[string]attribute.Value{
		"gen_ai.evaluation.name":        attribute.StringValue("helpfulness"),
		"gen_ai.evaluation.score.value": attribute.Float64Value(4),
		"gen_ai.evaluation.score.label": attribute.StringValue("pass"),
		"gen_ai.evaluation.explanation": attribute.StringValue("answers the question"),
		"gen_ai.response.id":            attribute.StringValue("chatcmpl-123"),
		"raterd.rubric_version":         attribute.StringValue("0123456789abcdef"),
		"raterd.judge":                  attribute.StringValue("openai:prometheus-2"),
	}
	if len(ok) != len(want) {
		t.Errorf("ok event attributes %v, want exactly %v", ok, want)
	}
	for k, v := range want {
		if ok[k] != v {
			t.Errorf("ok event %s = %v, want %v", k, ok[k].String(), v.String())
		}
	}
	if got[0].Severity() != log.SeverityInfo {
		t.Errorf("ok event severity %v", got[0].Severity())
	}

	for i, status := range []string{record.StatusParseFailure, record.StatusJudgeError} {
		a := attrs(got[i+1])
		if _, has := a["gen_ai.evaluation.score.value"]; has {
			t.Errorf("%s event has a score value: %v", status, a)
		}
		if _, has := a["gen_ai.evaluation.score.label"]; has {
			t.Errorf("%s event has a label: %v", status, a)
		}
		if a["error.type"].AsString() != status {
			t.Errorf("%s event error.type = %q", status, a["error.type"].AsString())
		}
		if a["gen_ai.evaluation.explanation"].AsString() == "" {
			t.Errorf("%s event lost its explanation", status)
		}
		if got[i+1].Severity() != log.SeverityWarn {
			t.Errorf("%s event severity %v", status, got[i+1].Severity())
		}
	}
	if c := h.counts(t); c["queued"] != 3 || c["exported"] != 3 {
		t.Errorf("counts %v, want 3 queued and exported", c)
	}
}

func TestEventBoundsTheExplanationAndOmitsTheDefaultRecordID(t *testing.T) {
	r := okRow()
	r.Explanation = strings.Repeat("é", 100) // 200 bytes
	r.RecordID = "llm/2/7"                   // raterd's default: names no response
	a := attrs(func() sdklog.Record {
		h := newHarness(t, validConfig(t, func(c *Config) { c.MaxExplanationBytes = 20 }))
		if err := h.WriteScores(context.Background(), []record.Score{r}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "1 event exported", func() bool { return len(h.exp.got()) == 1 })
		return h.exp.got()[0]
	}())
	expl := a["gen_ai.evaluation.explanation"].AsString()
	if len(expl) > 20 || !strings.HasSuffix(expl, "…") || !strings.HasPrefix(expl, "é") {
		t.Errorf("explanation %q (%d bytes), want at most 20 bytes ending in the cut marker", expl, len(expl))
	}
	if _, has := a["gen_ai.response.id"]; has {
		t.Errorf("gen_ai.response.id set from the default record id: %v", a["gen_ai.response.id"].String())
	}
	r.RecordID = "llm/2/7#3" // a default of a message that yields several records
	if id := ResponseID(&r); id != "" {
		t.Errorf("ResponseID of a fan-out default id = %q", id)
	}
	r.TraceID, r.SpanID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	r.RecordID = r.TraceID + "-" + r.SpanID // the OTLP decoders' id: names a span, not a response
	if id := ResponseID(&r); id != "" {
		t.Errorf("ResponseID of an OTLP trace-span id = %q", id)
	}
	r.Labels = map[string]string{"gen_ai.response.id": "chatcmpl-9"} // the span's own
	if id := ResponseID(&r); id != "chatcmpl-9" {
		t.Errorf("ResponseID with the span's gen_ai.response.id label = %q, want chatcmpl-9", id)
	}
}

func TestUntracedRowsAreEmittedWithoutTraceOrSkipped(t *testing.T) {
	untraced := okRow()
	untraced.TraceID, untraced.SpanID = "", ""
	bad := okRow()
	bad.TraceID = "not-a-trace-id"
	traceOnly := okRow()
	traceOnly.SpanID = "xyz"
	rows := []record.Score{untraced, bad, traceOnly}

	h := newHarness(t, validConfig(t, nil))
	if err := h.WriteScores(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 events exported", func() bool { return len(h.exp.got()) == 3 })
	got := h.exp.got()
	for i := range 2 {
		if got[i].TraceID().IsValid() || got[i].SpanID().IsValid() {
			t.Errorf("untraced event %d has trace %s span %s", i, got[i].TraceID(), got[i].SpanID())
		}
	}
	if got[2].TraceID().String() != traceHex || got[2].SpanID().IsValid() {
		t.Errorf("trace-only event: trace %s span %s, want the trace under no span", got[2].TraceID(), got[2].SpanID())
	}

	skip := newHarness(t, validConfig(t, func(c *Config) { c.SkipUntraced = true }))
	if err := skip.WriteScores(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "1 event exported", func() bool { return len(skip.exp.got()) == 1 })
	if c := skip.counts(t); c["skipped"] != 2 || c["queued"] != 1 {
		t.Errorf("counts %v, want 2 skipped and 1 queued", c)
	}
}

func TestFullQueueDropsAndCountsWithoutWaiting(t *testing.T) {
	h := newHarness(t, validConfig(t, func(c *Config) { c.QueueSize, c.BatchSize = 8, 4 }))
	h.exp.mu.Lock()
	h.exp.gate = make(chan struct{}) // the collector hangs
	h.exp.mu.Unlock()
	rows := make([]record.Score, 100)
	for i := range rows {
		rows[i] = okRow()
	}
	start := time.Now()
	for range 10 {
		if err := h.WriteScores(context.Background(), rows); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("1,000 rows against a hung exporter took %s", d)
	}
	c := h.counts(t)
	if c["queued"]+c["dropped"] != 1000 || c["dropped"] < 1000-8-4 {
		t.Errorf("counts %v: want 1000 rows queued or dropped, at most queue_size plus a batch in export queued", c)
	}
	if n := strings.Count(h.logs.String(), "queue is full"); n != 1 {
		t.Errorf("%d queue-full warnings, want one per episode:\n%s", n, h.logs.String())
	}
	close(h.exp.gate)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	c = h.counts(t)
	if got := int64(len(h.exp.got())); got != c["queued"] || c["exported"] != got {
		t.Errorf("exported %d events, counts %v: every queued event reaches the exporter at Close", got, c)
	}
	// Closed: rows are dropped, never an error.
	if err := h.WriteScores(context.Background(), rows[:3]); err != nil {
		t.Fatal(err)
	}
	if c2 := h.counts(t); c2["dropped"] != c["dropped"]+3 {
		t.Errorf("after Close: counts %v, want 3 more dropped", c2)
	}
}

func TestExportFailuresAreCountedAndLoggedOncePerOutage(t *testing.T) {
	h := newHarness(t, validConfig(t, nil))
	h.exp.setErr(errors.New("unavailable"))
	for range 5 {
		if err := h.WriteScores(context.Background(), []record.Score{okRow()}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(15 * time.Millisecond) // one export each
	}
	waitFor(t, "5 events failed", func() bool { return h.counts(t)["failed"] == 5 })
	if n := strings.Count(h.logs.String(), "export to the collector failed"); n != 1 {
		t.Errorf("%d failure warnings, want one per outage:\n%s", n, h.logs.String())
	}
	h.exp.setErr(nil)
	if err := h.WriteScores(context.Background(), []record.Score{okRow()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the recovery logged", func() bool { return strings.Contains(h.logs.String(), "answers again") })
	if !strings.Contains(h.logs.String(), "lost=5") {
		t.Errorf("the recovery message does not count the events lost:\n%s", h.logs.String())
	}
}

// TestCollectorDownNeverStallsScoring: the real OTLP exporter against a closed port.
// WriteScores returns at once, the events that do not fit are dropped and counted, the
// failed exports are counted, and Close returns within its bound.
func TestCollectorDownNeverStallsScoring(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens here now
	cfg := validConfig(t, func(c *Config) {
		c.Endpoint, c.Insecure = addr, new(bool)
		*c.Insecure = true
		c.Timeout, c.QueueSize, c.BatchSize = 300*time.Millisecond, 16, 8
	})
	reader := sdkmetric.NewManualReader()
	logs := &syncBuffer{}
	e, err := New(context.Background(), cfg, Options{Telemetry: telemetry.Settings{
		Logger:        slog.New(slog.NewTextHandler(logs, nil)),
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{Events: e, reader: reader, logs: logs}
	rows := make([]record.Score, 500)
	for i := range rows {
		rows[i] = okRow()
	}
	for range 4 {
		start := time.Now()
		if err := e.WriteScores(context.Background(), rows); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("WriteScores of 500 rows with the collector down took %s", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitFor(t, "a failed export", func() bool { return h.counts(t)["failed"] > 0 })
	start := time.Now()
	_ = e.Close() // may report the flush's deadline
	if d := time.Since(start); d > cfg.Timeout+time.Second {
		t.Errorf("Close took %s, bound %s", d, cfg.Timeout)
	}
	c := h.counts(t)
	if c["queued"]+c["dropped"] != 2000 || c["dropped"] == 0 || c["exported"] != 0 {
		t.Errorf("counts %v: want 2000 rows queued or dropped, some dropped, none exported", c)
	}
	if n := strings.Count(logs.String(), "export to the collector failed"); n != 1 {
		t.Errorf("%d failure warnings, want 1:\n%s", n, logs.String())
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := Config{Endpoint: "collector:4317"}
	if err := cfg.Validate("score_events"); err != nil {
		t.Fatal(err)
	}
	if cfg.Timeout != DefaultTimeout || cfg.QueueSize != DefaultQueueSize || cfg.BatchSize != DefaultBatchSize ||
		cfg.Interval != DefaultInterval || cfg.MaxExplanationBytes != DefaultMaxExplanationBytes || cfg.Insecure == nil || *cfg.Insecure {
		t.Errorf("defaults not filled: %+v", cfg)
	}
	small := Config{Endpoint: "collector:4317", QueueSize: 10}
	if err := small.Validate("score_events"); err != nil || small.BatchSize != 10 {
		t.Errorf("queue_size 10: batch_size %d, err %v; want the batch bounded by the queue", small.BatchSize, err)
	}
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Endpoint = "" }, "score_events.endpoint: required"},
		{func(c *Config) { c.Endpoint = "http://collector:4317" }, "score_events.endpoint"},
		{func(c *Config) { c.Endpoint = "collector" }, "score_events.endpoint"},
		{func(c *Config) { c.Timeout = -time.Second }, "score_events.timeout"},
		{func(c *Config) { c.Timeout = time.Hour }, "score_events.timeout"},
		{func(c *Config) { c.QueueSize = -1 }, "score_events.queue_size"},
		{func(c *Config) { c.QueueSize, c.BatchSize = 10, 11 }, "score_events.batch_size"},
		{func(c *Config) { c.Interval = 2 * time.Minute }, "score_events.interval"},
		{func(c *Config) { c.MaxExplanationBytes = -1 }, "score_events.max_explanation_bytes"},
		{func(c *Config) { c.Headers = map[string]string{" ": "x"} }, "score_events.headers"},
	} {
		c := Config{Endpoint: "collector:4317"}
		tc.mod(&c)
		err := c.Validate("score_events")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want one naming %s", c, err, tc.want)
		}
	}
}

func TestSpanContext(t *testing.T) {
	for _, tc := range []struct {
		trace, span string
		ok, spanOK  bool
	}{
		{traceHex, spanHex, true, true},
		{strings.ToUpper(traceHex), strings.ToUpper(spanHex), true, true},
		{traceHex, "", true, false},
		{"", spanHex, false, false},
		{"00000000000000000000000000000000", spanHex, false, false},
		{traceHex[:31], spanHex, false, false},
	} {
		sc, ok := SpanContext(tc.trace, tc.span)
		if ok != tc.ok || sc.SpanID().IsValid() != tc.spanOK {
			t.Errorf("SpanContext(%q, %q) = %v, %v", tc.trace, tc.span, sc, ok)
		}
		if ok && (!sc.IsRemote() || !sc.IsSampled()) {
			t.Errorf("SpanContext(%q, %q) = %v: want remote and sampled", tc.trace, tc.span, sc)
		}
	}
}
