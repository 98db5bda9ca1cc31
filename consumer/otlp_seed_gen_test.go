package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestGenerateOTLPSeeds regenerates the OTLP seed inputs (testdata/inputs/otlp) and fuzz
// corpora (testdata/fuzz/FuzzDecodeOTLP*) from real SDK output: the OTel Go SDK sends GenAI
// spans and events of every convention family raterd reads to the dev stack's
// OpenTelemetry Collector (RATERD_TEST_OTELCOL), whose Kafka exporters write them to
// otlp-spans-proto, otlp-spans-json, otlp-logs-proto and otlp-logs-json
// (deploy/otelcol/collector.yaml); the test reads those topics back (RATERD_TEST_KAFKA) and
// keeps this run's messages, told apart by a service.name unique to the run. Opt in with
// RATERD_GEN_SEEDS=1; RATERD_GEN_SEEDS_FAMILIES (a comma-separated list, e.g.
// genai_agent,openinference_agent) regenerates only those families:
//
//	eval "$(cd /work/main && scripts/services.sh env)"
//	RATERD_GEN_SEEDS=1 go test ./consumer -run TestGenerateOTLPSeeds -v
func TestGenerateOTLPSeeds(t *testing.T) {
	if os.Getenv("RATERD_GEN_SEEDS") != "1" {
		t.Skip("set RATERD_GEN_SEEDS=1 (and the dev stack's RATERD_TEST_OTELCOL, RATERD_TEST_KAFKA) to regenerate the OTLP seeds")
	}
	col, brokers := os.Getenv("RATERD_TEST_OTELCOL"), os.Getenv("RATERD_TEST_KAFKA")
	if col == "" || brokers == "" {
		t.Fatal("RATERD_TEST_OTELCOL and RATERD_TEST_KAFKA must be set (scripts/services.sh env)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	families := []seedFamilyEmitter{
		{"genai_current", seedGenAICurrent},
		{"genai_event", seedGenAIEvent},
		{"genai_v136", seedGenAIV136},
		{"openllmetry", seedOpenLLMetry},
		{"openinference", seedOpenInference},
		{"bad_shapes", seedBadShapes},
		{"genai_agent", seedGenAIAgent},
		{"openinference_agent", seedOpenInferenceAgent},
	}
	if only := os.Getenv("RATERD_GEN_SEEDS_FAMILIES"); only != "" {
		names := strings.Split(only, ",")
		families = slices.DeleteFunc(families, func(f seedFamilyEmitter) bool { return !slices.Contains(names, f.name) })
		if len(families) != len(names) {
			t.Fatalf("RATERD_GEN_SEEDS_FAMILIES=%s names an unknown family", only)
		}
	}
	for _, fam := range families {
		emitFamily(ctx, t, col, "raterd-seed-"+fam.name+"-"+run, fam.emit)
	}

	topics := map[string]string{ // topic: file suffix
		"otlp-spans-proto": "traces.pb", "otlp-spans-json": "traces.json",
		"otlp-logs-proto": "logs.pb", "otlp-logs-json": "logs.json",
	}
	want := map[string]bool{} // family.suffix
	for _, fam := range families {
		want[fam.name+".traces.pb"], want[fam.name+".traces.json"] = true, true
	}
	for _, fam := range families {
		if fam.name == "genai_event" || fam.name == "genai_v136" {
			want[fam.name+".logs.pb"], want[fam.name+".logs.json"] = true, true
		}
	}
	got := map[string][]byte{}
	for topic, suffix := range topics {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(want)), func(k string) bool { return strings.HasSuffix(k, suffix) }) {
			continue // no family of this run writes to the topic
		}
		readSeedTopic(ctx, t, brokers, topic, func(value []byte) bool {
			fam := seedFamily(value, suffix, run)
			if fam == "" {
				return false
			}
			name := fam + "." + suffix
			for n := 2; got[name] != nil; n++ { // a family split over several exports
				name = fmt.Sprintf("%s_%d.%s", fam, n, suffix)
			}
			got[name] = append([]byte(nil), value...)
			for k := range want {
				if strings.HasSuffix(k, suffix) && got[k] == nil {
					return false
				}
			}
			return true
		})
	}
	for k := range want {
		if got[k] == nil {
			t.Errorf("no message for %s came back from Kafka", k)
		}
	}
	fuzzDir := map[string]string{
		"traces.pb": "FuzzDecodeOTLPTracesProto", "traces.json": "FuzzDecodeOTLPTracesJSON",
		"logs.pb": "FuzzDecodeOTLPLogsProto", "logs.json": "FuzzDecodeOTLPLogsJSON",
	}
	for name, value := range got {
		writeSeed(t, filepath.Join("testdata", "inputs", "otlp", name), value)
		fam, suffix, _ := strings.Cut(name, ".")
		if len(value) > 64<<10 {
			continue // too big to mutate quickly; the decoding tests read it from inputs/otlp
		}
		writeSeed(t, filepath.Join("testdata", "fuzz", fuzzDir[suffix], "sdk_"+fam), []byte("go test fuzz v1\n[]byte("+strconv.Quote(string(value))+")\n"))
		t.Logf("%s: %d bytes", name, len(value))
	}
}

// seedFamilyEmitter is one family of seeds: its name (the files' prefix) and what it sends.
type seedFamilyEmitter struct {
	name string
	emit func(ctx context.Context, tr trace.Tracer, lg otellog.Logger)
}

// emitFamily sends one family's spans and events through a fresh tracer and logger
// provider (resource service.name svc) and flushes them: one OTLP export each.
func emitFamily(ctx context.Context, t *testing.T, col, svc string, emit func(context.Context, trace.Tracer, otellog.Logger)) {
	t.Helper()
	res := resource.NewSchemaless(attribute.String("service.name", svc), attribute.String("service.version", "1.4.2"),
		attribute.String("deployment.environment.name", "seed"))
	texp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(col), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatalf("trace exporter: %v", err)
	}
	lexp, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(col), otlploggrpc.WithInsecure())
	if err != nil {
		t.Fatalf("log exporter: %v", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(texp, sdktrace.WithBatchTimeout(time.Hour), sdktrace.WithMaxExportBatchSize(100000), sdktrace.WithMaxQueueSize(100000)))
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewBatchProcessor(lexp, sdklog.WithExportInterval(time.Hour), sdklog.WithExportMaxBatchSize(100000), sdklog.WithMaxQueueSize(100000))))
	emit(ctx, tp.Tracer("raterd-seed"), lp.Logger("raterd-seed"))
	if err := errors.Join(tp.ForceFlush(ctx), lp.ForceFlush(ctx), tp.Shutdown(ctx), lp.Shutdown(ctx)); err != nil {
		t.Fatalf("%s: flush: %v", svc, err)
	}
}

// readSeedTopic reads every partition of topic from the start until done says all this
// run's messages are in (the receiver acks before the Kafka write, so it polls).
func readSeedTopic(ctx context.Context, t *testing.T, brokers, topic string, done func(value []byte) bool) {
	t.Helper()
	conn, err := kafka.DialContext(ctx, "tcp", brokers)
	if err != nil {
		t.Fatalf("kafka: %v", err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	msgs := make(chan []byte)
	rctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for _, p := range parts {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{brokers}, Topic: topic, Partition: p.ID, MaxBytes: 16 << 20})
		if err := r.SetOffset(kafka.FirstOffset); err != nil {
			t.Fatalf("offset: %v", err)
		}
		go func() {
			defer r.Close()
			for {
				m, err := r.ReadMessage(rctx)
				if err != nil {
					return
				}
				select {
				case msgs <- m.Value:
				case <-rctx.Done():
					return
				}
			}
		}()
	}
	for {
		select {
		case v := <-msgs:
			if done(v) {
				return
			}
		case <-rctx.Done():
			t.Errorf("%s: timed out waiting for this run's messages", topic)
			return
		}
	}
}

// seedFamily returns the family of a message of this run ("" for other messages).
func seedFamily(value []byte, suffix, run string) string {
	var res []pcommon.Resource
	switch suffix {
	case "traces.pb", "traces.json":
		var td ptrace.Traces
		var err error
		if suffix == "traces.pb" {
			var u ptrace.ProtoUnmarshaler
			td, err = u.UnmarshalTraces(value)
		} else {
			var u ptrace.JSONUnmarshaler
			td, err = u.UnmarshalTraces(value)
		}
		if err != nil {
			return ""
		}
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			res = append(res, td.ResourceSpans().At(i).Resource())
		}
	default:
		var ld plog.Logs
		var err error
		if suffix == "logs.pb" {
			var u plog.ProtoUnmarshaler
			ld, err = u.UnmarshalLogs(value)
		} else {
			var u plog.JSONUnmarshaler
			ld, err = u.UnmarshalLogs(value)
		}
		if err != nil {
			return ""
		}
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			res = append(res, ld.ResourceLogs().At(i).Resource())
		}
	}
	for _, r := range res {
		if v, ok := r.Attributes().Get("service.name"); ok {
			if s, ok := strings.CutPrefix(v.Str(), "raterd-seed-"); ok {
				if fam, ok := strings.CutSuffix(s, "-"+run); ok {
					return fam
				}
			}
		}
	}
	return ""
}

func writeSeed(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// span starts and ends one span with attributes, child of ctx's span; it returns the
// context of the span.
func seedSpan(ctx context.Context, tr trace.Tracer, name string, kind trace.SpanKind, d time.Duration, attrs ...attribute.KeyValue) context.Context {
	start := time.Now()
	ctx, s := tr.Start(ctx, name, trace.WithSpanKind(kind), trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	s.End(trace.WithTimestamp(start.Add(d)))
	return ctx
}

// seedGenAICurrent: the current conventions (v1.37+), content as JSON strings, as the Go
// and most Python instrumentations record it on spans: an HTTP root, a retrieval span, a
// chat with system instructions, a tool-calling turn, an embeddings and a tool span.
func seedGenAICurrent(ctx context.Context, tr trace.Tracer, _ otellog.Logger) {
	ctx, root := tr.Start(ctx, "POST /v1/answer", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", "POST"), attribute.String("http.route", "/v1/answer")))
	seedSpan(ctx, tr, "retrieval kb", trace.SpanKindClient, 20*time.Millisecond,
		attribute.String("gen_ai.operation.name", "retrieval"), attribute.String("gen_ai.data_source.id", "kb"),
		attribute.String("gen_ai.retrieval.documents", `[{"id":"kb-12","score":0.91,"content":"Refunds are granted within 30 days of purchase."},{"id":"kb-7","score":0.55,"content":"Refunds go to the original payment method."}]`))
	seedSpan(ctx, tr, "embeddings text-embedding-3-small", trace.SpanKindClient, 30*time.Millisecond,
		attribute.String("gen_ai.operation.name", "embeddings"), attribute.String("gen_ai.provider.name", "openai"),
		attribute.String("gen_ai.request.model", "text-embedding-3-small"))
	seedSpan(ctx, tr, "chat gpt-4o-mini", trace.SpanKindClient, 850*time.Millisecond,
		attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.provider.name", "openai"),
		attribute.String("gen_ai.request.model", "gpt-4o-mini"), attribute.String("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
		attribute.String("gen_ai.response.id", "chatcmpl-seed-1"), attribute.String("gen_ai.conversation.id", "conv-refunds-1"),
		attribute.Int("gen_ai.usage.input_tokens", 52), attribute.Int("gen_ai.usage.output_tokens", 14),
		attribute.StringSlice("gen_ai.response.finish_reasons", []string{"stop"}),
		attribute.String("server.address", "api.openai.com"),
		attribute.String("gen_ai.system_instructions", `[{"type":"text","content":"You are a support assistant. Answer from the context."}]`),
		attribute.String("gen_ai.input.messages", `[{"role":"user","parts":[{"type":"text","content":"What is the refund window?"}]}]`),
		attribute.String("gen_ai.output.messages", `[{"role":"assistant","parts":[{"type":"text","content":"You can ask for a refund within 30 days of purchase."}],"finish_reason":"stop"}]`))
	seedSpan(ctx, tr, "chat gpt-4o", trace.SpanKindClient, 1200*time.Millisecond,
		attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.provider.name", "openai"),
		attribute.String("gen_ai.request.model", "gpt-4o"),
		attribute.String("gen_ai.input.messages", `[{"role":"user","parts":[{"type":"text","content":"Weather in Paris?"}]},`+
			`{"role":"assistant","parts":[{"type":"tool_call","id":"call_1","name":"get_weather","arguments":{"location":"Paris"}}]},`+
			`{"role":"tool","parts":[{"type":"tool_call_response","id":"call_1","response":"rainy, 57°F"}]}]`),
		attribute.String("gen_ai.output.messages", `[{"role":"assistant","parts":[{"type":"tool_call","id":"call_2","name":"get_forecast","arguments":{"location":"Paris","days":2}}],"finish_reason":"tool_calls"}]`))
	seedSpan(ctx, tr, "execute_tool get_weather", trace.SpanKindInternal, 40*time.Millisecond,
		attribute.String("gen_ai.operation.name", "execute_tool"), attribute.String("gen_ai.tool.name", "get_weather"))
	root.End()
}

// seedGenAIEvent: a chat span without content (content capture to events) and its
// gen_ai.client.inference.operation.details event with structured messages, plus an
// unrelated log record.
func seedGenAIEvent(ctx context.Context, tr trace.Tracer, lg otellog.Logger) {
	ctx, s := tr.Start(ctx, "chat claude-sonnet-4", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.provider.name", "anthropic"),
		attribute.String("gen_ai.request.model", "claude-sonnet-4"), attribute.String("gen_ai.response.model", "claude-sonnet-4-20250514"),
		attribute.Int("gen_ai.usage.input_tokens", 31), attribute.Int("gen_ai.usage.output_tokens", 9)))
	part := func(text string) attribute.Value {
		return attribute.MapValue(attribute.String("type", "text"), attribute.String("content", text))
	}
	var rec otellog.Record
	rec.SetEventName("gen_ai.client.inference.operation.details")
	rec.SetTimestamp(time.Now())
	rec.SetSeverity(otellog.SeverityInfo)
	rec.AddAttributes(
		attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.provider.name", "anthropic"),
		attribute.String("gen_ai.request.model", "claude-sonnet-4"), attribute.String("gen_ai.response.model", "claude-sonnet-4-20250514"),
		attribute.String("gen_ai.conversation.id", "conv-42"),
		attribute.Int64("gen_ai.usage.input_tokens", 31), attribute.Int64("gen_ai.usage.output_tokens", 9),
		attribute.Slice("gen_ai.response.finish_reasons", attribute.StringValue("end_turn")),
		attribute.Slice("gen_ai.system_instructions", part("Answer in one sentence.")),
		attribute.Slice("gen_ai.input.messages",
			attribute.MapValue(attribute.String("role", "user"), attribute.Slice("parts", part("Why is the sky blue?")))),
		attribute.Slice("gen_ai.output.messages",
			attribute.MapValue(attribute.String("role", "assistant"), attribute.Slice("parts", part("Air scatters blue light more than red (Rayleigh scattering).")),
				attribute.String("finish_reason", "end_turn"))),
	)
	lg.Emit(ctx, rec)
	var other otellog.Record
	other.SetTimestamp(time.Now())
	other.SetBody(attribute.StringValue("cache warmed in 12 ms"))
	lg.Emit(ctx, other)
	s.End()
}

// seedGenAIV136: the conventions up to v1.36 as opentelemetry-instrumentation-openai-v2
// emits them by default: a span with gen_ai.system and the model but no content, and one
// event per message (gen_ai.system.message, gen_ai.user.message, gen_ai.choice) whose only
// attribute is gen_ai.system; a second call from an emitter that adds the model to its
// events.
func seedGenAIV136(ctx context.Context, tr trace.Tracer, lg otellog.Logger) {
	call := func(model string, modelOnEvents bool, user, answer string) {
		ctx, s := tr.Start(ctx, "chat "+model, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
			attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.system", "openai"),
			attribute.String("gen_ai.request.model", model), attribute.String("gen_ai.response.model", model),
			attribute.Int("gen_ai.usage.prompt_tokens", 20), attribute.Int("gen_ai.usage.completion_tokens", 7),
			attribute.StringSlice("gen_ai.response.finish_reasons", []string{"stop"})))
		emit := func(name string, body attribute.Value) {
			var rec otellog.Record
			rec.SetEventName(name)
			rec.SetTimestamp(time.Now())
			rec.AddAttributes(attribute.String("gen_ai.system", "openai"))
			if modelOnEvents {
				rec.AddAttributes(attribute.String("gen_ai.request.model", model))
			}
			rec.SetBody(body)
			lg.Emit(ctx, rec)
		}
		emit("gen_ai.system.message", attribute.MapValue(attribute.String("content", "You are terse.")))
		emit("gen_ai.user.message", attribute.MapValue(attribute.String("content", user)))
		emit("gen_ai.choice", attribute.MapValue(attribute.Int("index", 0), attribute.String("finish_reason", "stop"),
			attribute.Map("message", attribute.String("role", "assistant"), attribute.String("content", answer))))
		s.End()
	}
	call("gpt-4o-mini", false, "Capital of France?", "Paris.")
	call("gpt-4.1-nano", true, "Capital of Italy?", "Rome.")
}

// seedOpenLLMetry: Traceloop OpenLLMetry's indexed attributes (gen_ai.prompt.N.*,
// gen_ai.completion.N.*, llm.request.type) with the v1.36 names it still emits
// (gen_ai.system, gen_ai.usage.prompt_tokens): a chat, a tool call, a completion and an
// embedding.
func seedOpenLLMetry(ctx context.Context, tr trace.Tracer, _ otellog.Logger) {
	ctx, root := tr.Start(ctx, "rag.workflow", trace.WithAttributes(attribute.String("traceloop.span.kind", "workflow")))
	seedSpan(ctx, tr, "openai.chat", trace.SpanKindClient, 700*time.Millisecond,
		attribute.String("llm.request.type", "chat"), attribute.String("gen_ai.system", "openai"),
		attribute.String("gen_ai.request.model", "gpt-4o-mini"), attribute.String("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
		attribute.Int("gen_ai.usage.prompt_tokens", 25), attribute.Int("gen_ai.usage.completion_tokens", 8), attribute.Int("llm.usage.total_tokens", 33),
		attribute.String("gen_ai.prompt.0.role", "system"), attribute.String("gen_ai.prompt.0.content", "You translate to French."),
		attribute.String("gen_ai.prompt.1.role", "user"), attribute.String("gen_ai.prompt.1.content", "Good morning"),
		attribute.String("gen_ai.completion.0.role", "assistant"), attribute.String("gen_ai.completion.0.content", "Bonjour"),
		attribute.String("gen_ai.completion.0.finish_reason", "stop"))
	seedSpan(ctx, tr, "openai.chat", trace.SpanKindClient, 900*time.Millisecond,
		attribute.String("llm.request.type", "chat"), attribute.String("gen_ai.system", "openai"),
		attribute.String("gen_ai.request.model", "gpt-4o"),
		attribute.String("gen_ai.prompt.0.role", "user"), attribute.String("gen_ai.prompt.0.content", "Book a table for two at 8pm"),
		attribute.String("gen_ai.completion.0.role", "assistant"), attribute.String("gen_ai.completion.0.finish_reason", "tool_calls"),
		attribute.String("gen_ai.completion.0.tool_calls.0.id", "call_9"), attribute.String("gen_ai.completion.0.tool_calls.0.name", "book_table"),
		attribute.String("gen_ai.completion.0.tool_calls.0.arguments", `{"people":2,"time":"20:00"}`))
	seedSpan(ctx, tr, "openai.completion", trace.SpanKindClient, 400*time.Millisecond,
		attribute.String("llm.request.type", "completion"), attribute.String("gen_ai.system", "openai"),
		attribute.String("gen_ai.request.model", "gpt-3.5-turbo-instruct"),
		attribute.String("gen_ai.prompt.0.role", "user"), attribute.String("gen_ai.prompt.0.content", "Once upon a time"),
		attribute.String("gen_ai.completion.0.content", " there was a lighthouse keeper."), attribute.String("gen_ai.completion.0.finish_reason", "length"))
	seedSpan(ctx, tr, "openai.embeddings", trace.SpanKindClient, 50*time.Millisecond,
		attribute.String("llm.request.type", "embedding"), attribute.String("gen_ai.system", "openai"),
		attribute.String("gen_ai.request.model", "text-embedding-3-small"))
	root.End()
}

// seedOpenInference: Arize OpenInference spans: a CHAIN root, a RETRIEVER with documents,
// an LLM call with flattened messages (one with message.contents), and an LLM tool call.
func seedOpenInference(ctx context.Context, tr trace.Tracer, _ otellog.Logger) {
	ctx, root := tr.Start(ctx, "query", trace.WithAttributes(attribute.String("openinference.span.kind", "CHAIN"),
		attribute.String("input.value", "How long is the warranty?"), attribute.String("output.value", "Two years."),
		attribute.String("session.id", "sess-77")))
	seedSpan(ctx, tr, "retrieve", trace.SpanKindInternal, 25*time.Millisecond,
		attribute.String("openinference.span.kind", "RETRIEVER"), attribute.String("input.value", "warranty length"),
		attribute.String("retrieval.documents.0.document.id", "w-1"), attribute.Float64("retrieval.documents.0.document.score", 0.87),
		attribute.String("retrieval.documents.0.document.content", "All devices carry a two-year warranty."),
		attribute.String("retrieval.documents.1.document.id", "w-2"),
		attribute.String("retrieval.documents.1.document.content", "Batteries are covered for one year."))
	seedSpan(ctx, tr, "ChatOpenAI", trace.SpanKindInternal, 650*time.Millisecond,
		attribute.String("openinference.span.kind", "LLM"), attribute.String("llm.model_name", "gpt-4o-mini"),
		attribute.String("llm.provider", "openai"), attribute.String("llm.system", "openai"), attribute.String("session.id", "sess-77"),
		attribute.String("llm.invocation_parameters", `{"temperature":0}`),
		attribute.Int("llm.token_count.prompt", 61), attribute.Int("llm.token_count.completion", 5), attribute.Int("llm.token_count.total", 66),
		attribute.String("input.value", `{"messages":[{"role":"user","content":"How long is the warranty?"}]}`), attribute.String("input.mime_type", "application/json"),
		attribute.String("output.value", "Two years."),
		attribute.String("llm.input_messages.0.message.role", "system"), attribute.String("llm.input_messages.0.message.content", "Use the context."),
		attribute.String("llm.input_messages.1.message.role", "user"),
		attribute.String("llm.input_messages.1.message.contents.0.message_content.type", "text"),
		attribute.String("llm.input_messages.1.message.contents.0.message_content.text", "How long is the warranty?"),
		attribute.String("llm.output_messages.0.message.role", "assistant"), attribute.String("llm.output_messages.0.message.content", "Two years."))
	seedSpan(ctx, tr, "ChatOpenAI", trace.SpanKindInternal, 500*time.Millisecond,
		attribute.String("openinference.span.kind", "LLM"), attribute.String("llm.model_name", "gpt-4o"),
		attribute.String("llm.input_messages.0.message.role", "user"), attribute.String("llm.input_messages.0.message.content", "Open a ticket"),
		attribute.String("llm.output_messages.0.message.role", "assistant"),
		attribute.String("llm.output_messages.0.message.tool_calls.0.tool_call.id", "call_t1"),
		attribute.String("llm.output_messages.0.message.tool_calls.0.tool_call.function.name", "open_ticket"),
		attribute.String("llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments", `{"priority":"high"}`))
	root.End()
}

// seedBadShapes: what a real SDK sends that raterd must skip: a 10,000-message
// conversation, a messages attribute cut short by an attribute length limit, a chat without
// a model and one without output.
func seedBadShapes(ctx context.Context, tr trace.Tracer, _ otellog.Logger) {
	var b strings.Builder
	b.WriteString("[")
	for i := range 10000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"role":"user","parts":[{"type":"text","content":"m%d"}]}`, i)
	}
	b.WriteString("]")
	out := attribute.String("gen_ai.output.messages", `[{"role":"assistant","parts":[{"type":"text","content":"ok"}]}]`)
	seedSpan(ctx, tr, "chat huge", trace.SpanKindClient, time.Second,
		attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.request.model", "gpt-4o-mini"),
		attribute.String("gen_ai.input.messages", b.String()), out)
	seedSpan(ctx, tr, "chat truncated", trace.SpanKindClient, time.Second,
		attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.request.model", "gpt-4o-mini"),
		attribute.String("gen_ai.input.messages", `[{"role":"user","parts":[{"type":"text","content":"Summarise the follo`), out)
	seedSpan(ctx, tr, "chat", trace.SpanKindClient, time.Second,
		attribute.String("gen_ai.operation.name", "chat"), out,
		attribute.String("gen_ai.input.messages", `[{"role":"user","parts":[{"type":"text","content":"hi"}]}]`))
	seedSpan(ctx, tr, "chat gpt-4o-mini", trace.SpanKindClient, time.Second,
		attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.request.model", "gpt-4o-mini"),
		attribute.String("gen_ai.input.messages", `[{"role":"user","parts":[{"type":"text","content":"hi"}]}]`))
}

// seedGenAIAgent: one agent run in the current conventions, as agent frameworks record it
// (OpenAI Agents SDK, Semantic Kernel, pydantic-ai): an invoke_agent root without content,
// a chat that calls a tool, the execute_tool span with its (opt-in) arguments and result, and
// the chat that answers from the result.
func seedGenAIAgent(ctx context.Context, tr trace.Tracer, _ otellog.Logger) {
	ctx, root := tr.Start(ctx, "invoke_agent travel-agent", trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "invoke_agent"), attribute.String("gen_ai.provider.name", "openai"),
		attribute.String("gen_ai.agent.name", "travel-agent"), attribute.String("gen_ai.agent.id", "agent-7"),
		attribute.String("gen_ai.request.model", "gpt-4o"), attribute.String("gen_ai.conversation.id", "conv-trip-1")))
	chat := func(in, out string) {
		seedSpan(ctx, tr, "chat gpt-4o", trace.SpanKindClient, 900*time.Millisecond,
			attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.provider.name", "openai"),
			attribute.String("gen_ai.request.model", "gpt-4o"), attribute.String("gen_ai.response.model", "gpt-4o-2024-08-06"),
			attribute.String("gen_ai.conversation.id", "conv-trip-1"),
			attribute.String("gen_ai.input.messages", in), attribute.String("gen_ai.output.messages", out))
	}
	user := `{"role":"user","parts":[{"type":"text","content":"Do I need an umbrella in Paris tomorrow?"}]}`
	call := `{"role":"assistant","parts":[{"type":"tool_call","id":"call_w1","name":"get_forecast","arguments":{"city":"Paris","days":1}}],"finish_reason":"tool_calls"}`
	chat("["+user+"]", "["+call+"]")
	seedSpan(ctx, tr, "execute_tool get_forecast", trace.SpanKindInternal, 120*time.Millisecond,
		attribute.String("gen_ai.operation.name", "execute_tool"), attribute.String("gen_ai.tool.name", "get_forecast"),
		attribute.String("gen_ai.tool.call.id", "call_w1"), attribute.String("gen_ai.tool.type", "function"),
		attribute.String("gen_ai.tool.description", "Weather forecast for a city."),
		attribute.String("gen_ai.tool.call.arguments", `{"city":"Paris","days":1}`),
		attribute.String("gen_ai.tool.call.result", `{"city":"Paris","tomorrow":"rain, 80% chance, 14°C"}`))
	chat("["+user+","+call+`,{"role":"tool","parts":[{"type":"tool_call_response","id":"call_w1","response":{"city":"Paris","tomorrow":"rain, 80% chance, 14°C"}}]}]`,
		`[{"role":"assistant","parts":[{"type":"text","content":"Yes: rain is likely in Paris tomorrow (80%), take an umbrella."}],"finish_reason":"stop"}]`)
	root.End()
}

// seedOpenInferenceAgent: the same run as OpenInference records it (LangGraph, smolagents):
// an AGENT root with the request and the final answer, an LLM call that calls a tool, the
// TOOL span (input.value the arguments, output.value the result), the answering LLM call and
// a CHAIN inside the run.
func seedOpenInferenceAgent(ctx context.Context, tr trace.Tracer, _ otellog.Logger) {
	question, answer := "Do I need an umbrella in Paris tomorrow?", "Yes: rain is likely in Paris tomorrow (80%), take an umbrella."
	ctx, root := tr.Start(ctx, "agent", trace.WithAttributes(attribute.String("openinference.span.kind", "AGENT"),
		attribute.String("agent.name", "travel-agent"), attribute.String("session.id", "sess-trip-1"),
		attribute.String("input.value", question), attribute.String("output.value", answer)))
	seedSpan(ctx, tr, "ChatOpenAI", trace.SpanKindInternal, 800*time.Millisecond,
		attribute.String("openinference.span.kind", "LLM"), attribute.String("llm.model_name", "gpt-4o"), attribute.String("llm.provider", "openai"),
		attribute.String("llm.input_messages.0.message.role", "user"), attribute.String("llm.input_messages.0.message.content", question),
		attribute.String("llm.output_messages.0.message.role", "assistant"),
		attribute.String("llm.output_messages.0.message.tool_calls.0.tool_call.id", "call_w1"),
		attribute.String("llm.output_messages.0.message.tool_calls.0.tool_call.function.name", "get_forecast"),
		attribute.String("llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments", `{"city": "Paris", "days": 1}`))
	seedSpan(ctx, tr, "get_forecast", trace.SpanKindInternal, 110*time.Millisecond,
		attribute.String("openinference.span.kind", "TOOL"), attribute.String("tool.name", "get_forecast"),
		attribute.String("tool.description", "Weather forecast for a city."), attribute.String("tool.parameters", `{"city": "str", "days": "int"}`),
		attribute.String("tool_call.id", "call_w1"),
		attribute.String("input.value", `{"city": "Paris", "days": 1}`), attribute.String("output.value", "rain, 80% chance, 14°C"))
	seedSpan(ctx, tr, "ChatOpenAI", trace.SpanKindInternal, 700*time.Millisecond,
		attribute.String("openinference.span.kind", "LLM"), attribute.String("llm.model_name", "gpt-4o"), attribute.String("llm.provider", "openai"),
		attribute.String("llm.input_messages.0.message.role", "user"), attribute.String("llm.input_messages.0.message.content", question),
		attribute.String("llm.input_messages.1.message.role", "tool"), attribute.String("llm.input_messages.1.message.content", "rain, 80% chance, 14°C"),
		attribute.String("llm.output_messages.0.message.role", "assistant"), attribute.String("llm.output_messages.0.message.content", answer))
	seedSpan(ctx, tr, "should_continue", trace.SpanKindInternal, time.Millisecond,
		attribute.String("openinference.span.kind", "CHAIN"), attribute.String("input.value", "{}"), attribute.String("output.value", "end"))
	root.End()
}
