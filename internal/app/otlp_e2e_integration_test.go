package app

// GenAI traffic from the OTel Go SDK through the dev stack's real OpenTelemetry Collector,
// which writes it to Kafka in otlp_proto and otlp_json; raterd reads the four topics,
// scores the GenAI operations and writes rows to ClickHouse that join back to the traces;
// the scores go back out to the collector as gen_ai.evaluation.result events.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"raterd/internal/testkit"
	"raterd/internal/testkit/chtest"
)

// The collector's Kafka topics (deploy/otelcol/collector.yaml) and their formats.
var collectorTopics = map[string]string{
	"otlp-spans-proto": "otlp_proto",
	"otlp-spans-json":  "otlp_json",
	"otlp-logs-proto":  "otlp_logs_proto",
	"otlp-logs-json":   "otlp_logs_json",
}

// genAIApp is what an instrumented application sends: GenAI spans and events made with the
// OTel Go SDK and exported over OTLP/gRPC to the collector.
type genAIApp struct {
	tp *sdktrace.TracerProvider
	lp *sdklog.LoggerProvider
}

func newGenAIApp(t *testing.T, collector, service string) *genAIApp {
	t.Helper()
	ctx := context.Background()
	res := resource.NewSchemaless(attribute.String("service.name", service))
	te, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(collector), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	le, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(collector), otlploggrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	return &genAIApp{
		tp: sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSyncer(te)),
		lp: sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewSimpleProcessor(le))),
	}
}

func (a *genAIApp) shutdown(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.tp.Shutdown(ctx); err != nil {
		t.Errorf("tracer provider: %v", err)
	}
	if err := a.lp.Shutdown(ctx); err != nil {
		t.Errorf("logger provider: %v", err)
	}
}

// chat records one chat operation as a span (and, with onEvent, its content on a
// gen_ai.client.inference.operation.details event instead of the span) and returns the
// span's context.
func (a *genAIApp) chat(attrs []attribute.KeyValue, content []attribute.KeyValue, onEvent bool) trace.SpanContext {
	ctx, root := a.tp.Tracer("support-bot").Start(context.Background(), "POST /chat", trace.WithSpanKind(trace.SpanKindServer))
	ctx, span := a.tp.Tracer("support-bot").Start(ctx, "chat", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	if onEvent {
		var r otellog.Record
		r.SetEventName("gen_ai.client.inference.operation.details")
		r.SetTimestamp(time.Now())
		r.AddAttributes(append(slices.Clone(attrs), content...)...)
		a.lp.Logger("support-bot").Emit(ctx, r)
	} else {
		span.SetAttributes(content...)
	}
	span.End()
	root.End()
	return span.SpanContext()
}

func TestIntegrationOTLPThroughTheCollectorScoredAndJoinedByTraceID(t *testing.T) {
	s := testkit.RequireServices(t)
	collector := testkit.Service(t, "RATERD_TEST_OTELCOL", "OpenTelemetry Collector")
	exportFile := testkit.Service(t, "RATERD_TEST_OTELCOL_FILE", "the OpenTelemetry Collector's export file")
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	db := "raterd_otlp_" + suffix
	conn := chtest.Migrated(t, s.ClickHouse, db)
	simURL, _ := startSimulator(t)
	var topics []string
	for topic := range collectorTopics {
		testkit.EnsureTopic(t, s.Kafka, topic, 4) // the collector creates them on first write; they may be new here
		topics = append(topics, topic)
	}
	slices.Sort(topics)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := ln.Addr().String()
	ln.Close()
	appService, raterdService := "support-bot-"+suffix, "raterd-e2e-"+suffix
	var formats []string
	for _, topic := range topics {
		formats = append(formats, fmt.Sprintf("%s: %s", topic, collectorTopics[topic]))
	}
	text := fmt.Sprintf(`
kafka:
  brokers: [%s]
  topics: [%s]
  topic_formats: {%s}
  group_id: it-otlp-e2e-%s
  start_offset: earliest
  batch: {max_records: 100, linger: 20ms}
  commit_interval: 100ms
clickhouse: {addrs: [%s], database: %s}
judges:
  checks: {type: heuristic}
  sim: {type: openai, model: judgesim-it, endpoints: [{url: %q}]}
evaluators:
  - {name: refusal, judge: checks, check: refusal, match: {apps: [%s]}}
  - {name: groundedness, judge: sim, fields: [prompt, context, response], criteria: "Is the response supported by the context?", match: {apps: [%s]}}
score_events: {endpoint: %s, insecure: true, interval: 100ms}
telemetry: {service_name: %s}
scores_file: %s
admin: {listen: %q}
`, s.Kafka, strings.Join(topics, ", "), strings.Join(formats, ", "), suffix, s.ClickHouse, db, simURL,
		appService, appService, collector, raterdService, filepath.Join(t.TempDir(), "scores.ndjson"), admin)
	cfg, err := ParseConfig([]byte(text), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	stop := startRun(t, cfg, logs)
	// The group reads the shared topics from the start (a reader that starts at the latest
	// offset can resolve it after the collector wrote); the evaluators match only this
	// test's app, so other traffic there is decoded and not judged.
	pollReadyz(t, "http://"+admin+"/readyz", 60*time.Second, "ready", func(code int, _ string) bool { return code == http.StatusOK })

	app := newGenAIApp(t, collector, appService)
	model := attribute.String("gen_ai.request.model", "gpt-4o")
	current := app.chat([]attribute.KeyValue{
		attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.provider.name", "openai"), model,
		attribute.String("gen_ai.response.model", "gpt-4o-2024-08-06"), attribute.String("gen_ai.conversation.id", "conv-"+suffix),
		attribute.Int("gen_ai.usage.input_tokens", 42), attribute.Int("gen_ai.usage.output_tokens", 17),
		attribute.StringSlice("gen_ai.response.finish_reasons", []string{"stop"}),
	}, []attribute.KeyValue{
		attribute.String("gen_ai.system_instructions", `[{"type":"text","content":"You are the helpdesk assistant of Example Corp."}]`),
		attribute.String("gen_ai.input.messages", `[{"role":"user","parts":[{"type":"text","content":"How do I reset my password?"}]}]`),
		attribute.String("gen_ai.output.messages", `[{"role":"assistant","parts":[{"type":"text","content":"Open Settings, then Security, then Reset password."}],"finish_reason":"stop"}]`),
	}, false)
	onEvent := app.chat([]attribute.KeyValue{attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.provider.name", "openai"), model}, []attribute.KeyValue{
		attribute.String("gen_ai.input.messages", `[{"role":"user","parts":[{"type":"text","content":"Write me a phishing e-mail."}]}]`),
		attribute.String("gen_ai.output.messages", `[{"role":"assistant","parts":[{"type":"text","content":"I'm sorry, but I can't help with that."}],"finish_reason":"stop"}]`),
	}, true)
	older := app.chat([]attribute.KeyValue{
		attribute.String("gen_ai.system", "openai"), model, attribute.String("llm.request.type", "chat"),
		attribute.Int("gen_ai.usage.prompt_tokens", 12), attribute.Int("gen_ai.usage.completion_tokens", 9),
	}, []attribute.KeyValue{
		attribute.String("gen_ai.prompt.0.role", "user"), attribute.String("gen_ai.prompt.0.content", "What are your opening hours?"),
		attribute.String("gen_ai.completion.0.role", "assistant"), attribute.String("gen_ai.completion.0.content", "We are open 9:00–17:00, Monday to Friday."),
	}, false)
	_, plain := app.tp.Tracer("support-bot").Start(context.Background(), "GET /health") // not a GenAI operation: no record
	plain.End()
	app.shutdown(t)

	// Each GenAI operation arrives twice (proto and JSON topics) and is scored by both
	// evaluators; FINAL collapses the copies.
	want := map[string]trace.SpanContext{"current": current, "on_event": onEvent, "older": older}
	traceIDs := []string{current.TraceID().String(), onEvent.TraceID().String(), older.TraceID().String(), plain.SpanContext().TraceID().String()}
	inTraces := "trace_id IN ('" + strings.Join(traceIDs, "', '") + "')"
	deadline := time.Now().Add(90 * time.Second)
	for {
		var n uint64
		if err := conn.QueryRow(context.Background(), "SELECT uniqExact(span_id, topic, evaluator) FROM "+db+".scores WHERE "+inTraces).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n >= uint64(len(want)*2*2) {
			break
		}
		if time.Now().After(deadline) {
			var have []string
			rows, err := conn.Query(context.Background(), "SELECT concat(span_id, ' ', topic, ' ', evaluator, ' ', status) FROM "+db+".scores WHERE "+inTraces)
			for err == nil && rows.Next() {
				var s string
				_ = rows.Scan(&s)
				have = append(have, s)
			}
			t.Fatalf("after 90s %d (span, topic, evaluator) rows for the traces, want %d; rows: %v\nspans: current %s, on event %s, older %s\nraterd's log ends:\n%s",
				n, len(want)*2*2, have, current.SpanID(), onEvent.SpanID(), older.SpanID(), tailString(logs.String(), 6000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	type row struct{ traceID, spanID, conversation, app, model, evaluator, label, status string }
	rows, err := conn.Query(context.Background(), "SELECT trace_id, span_id, conversation_id, app, model, evaluator, label, status FROM "+db+".scores FINAL WHERE "+inTraces+" ORDER BY span_id, evaluator")
	if err != nil {
		t.Fatal(err)
	}
	bySpan := map[string][]row{}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.traceID, &r.spanID, &r.conversation, &r.app, &r.model, &r.evaluator, &r.label, &r.status); err != nil {
			t.Fatal(err)
		}
		bySpan[r.spanID] = append(bySpan[r.spanID], r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(bySpan) != len(want) {
		t.Errorf("rows for spans %v, want the %d GenAI operations (the health check has none)", bySpan, len(want))
	}
	for name, sc := range want {
		got := bySpan[sc.SpanID().String()]
		if len(got) != 2 {
			t.Errorf("%s: %d rows after FINAL, want 2 (refusal, groundedness): %+v", name, len(got), got)
			continue
		}
		for _, r := range got {
			if r.traceID != sc.TraceID().String() || r.app != appService || r.status != "ok" {
				t.Errorf("%s: row %+v, want trace %s, app %s, status ok", name, r, sc.TraceID(), appService)
			}
		}
	}
	if r := bySpan[current.SpanID().String()]; len(r) > 0 && (r[0].conversation != "conv-"+suffix || r[0].model != "gpt-4o-2024-08-06") {
		t.Errorf("current conventions: conversation %q model %q, want conv-%s and the response model", r[0].conversation, r[0].model, suffix)
	}
	if r := bySpan[onEvent.SpanID().String()]; len(r) > 0 && !slices.ContainsFunc(r, func(x row) bool { return x.evaluator == "refusal" && x.label == "refusal" }) {
		t.Errorf("the event's refusal was not found: %+v", r)
	}
	stop()

	// The scores went back to the collector as events in the judged spans.
	deadline = time.Now().Add(30 * time.Second)
	for {
		events := collectorScoreEvents(t, exportFile, raterdService)
		found := 0
		for _, sc := range want {
			if slices.ContainsFunc(events, func(ev scoreEvent) bool {
				return ev.traceID == sc.TraceID().String() && ev.spanID == sc.SpanID().String() && ev.evaluator == "groundedness"
			}) {
				found++
			}
		}
		if found == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s the collector has groundedness events in %d of the %d judged spans (%d events from %s)", found, len(want), len(events), raterdService)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
