package consumer

// The real GenAI instrumentation samples under testdata/inputs/instrumented (issue 14;
// their README says what produced them and what each mode emits), decoded the way raterd
// reads the collector's topics. This pins, without the Python virtualenv or any service,
// what raterd makes of each instrumentation: which chat calls become records and why the
// others are skipped. internal/app's TestIntegrationGenAIInstrumented checks the same on
// freshly captured traffic, through Kafka to ClickHouse.

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"raterd/record"
)

// instrumentedSampleDir holds the samples: <mode>-<spans|logs>.<pb|json>.
var instrumentedSampleDir = filepath.Join("testdata", "inputs", "instrumented")

// instrumentedDecode is what one sample message decodes to.
type instrumentedDecode struct {
	records int
	skipped map[string]int
}

// Each mode's process makes four chat calls (three answered, the fourth a streaming call
// that judgesim fails with 400) inside one parent span handle-travel-request, which is no
// GenAI span (not_genai_span). A failed call has no output (no_output) wherever its content
// travels.
var instrumentedWant = []struct {
	mode        string
	spans, logs instrumentedDecode // logs: zero for a mode that sends none
	convention  string             // raterd.convention of the records
	// unknownModel: the records name no model and get kafka.otlp_unknown_model's default.
	unknownModel bool
}{
	// Semconv 1.30: no content on the spans (no_output); the content travels on
	// per-message events (gen_ai.user.message, …, gen_ai.choice) whose only attribute is
	// gen_ai.system: the model is on the span alone, in another Kafka message, and the
	// decoder keeps no state across messages. Each answered call's group is a record under
	// kafka.otlp_unknown_model's default, "unknown" (docs/inputs.md, "Per-message
	// events"; with "skip" they are skipped as no_model, TestDecodeInstrumentedUnknownModelSkip),
	// the failed one (no gen_ai.choice) is skipped as no_output.
	{mode: "openai-v2-legacy", convention: conventionGenAIMessages, unknownModel: true,
		spans: instrumentedDecode{0, map[string]int{otlpSkipNotGenAISpan: 1, otlpSkipNoOutput: 4}},
		logs:  instrumentedDecode{3, map[string]int{otlpSkipNoOutput: 1}}},
	// Content on the span as JSON strings: one record per answered call.
	{mode: "openai-v2-latest-span", convention: conventionGenAI,
		spans: instrumentedDecode{3, map[string]int{otlpSkipNotGenAISpan: 1, otlpSkipNoOutput: 1}}},
	// Content on gen_ai.client.inference.operation.details events, which repeat the
	// span's attributes (the response model included): the spans have no output, each
	// answered call's event is a record with the span's id.
	{mode: "openai-v2-latest-event", convention: conventionGenAIEvent,
		spans: instrumentedDecode{0, map[string]int{otlpSkipNotGenAISpan: 1, otlpSkipNoOutput: 4}},
		logs:  instrumentedDecode{3, map[string]int{otlpSkipNoOutput: 1}}},
	// Flattened llm.input_messages / llm.output_messages on LLM spans.
	{mode: "openinference", convention: conventionOpenInference,
		spans: instrumentedDecode{3, map[string]int{otlpSkipNotGenAISpan: 1, otlpSkipNoOutput: 1}}},
	// OpenLLMetry 0.62.4 writes the current gen_ai.input/output.messages.
	{mode: "traceloop", convention: conventionGenAI,
		spans: instrumentedDecode{3, map[string]int{otlpSkipNotGenAISpan: 1, otlpSkipNoOutput: 1}}},
	// As openai-v2-legacy: per-message events with gen_ai.provider.name and no model.
	{mode: "traceloop-events", convention: conventionGenAIMessages, unknownModel: true,
		spans: instrumentedDecode{0, map[string]int{otlpSkipNotGenAISpan: 1, otlpSkipNoOutput: 4}},
		logs:  instrumentedDecode{3, map[string]int{otlpSkipNoOutput: 1}}},
}

// instrumentedChat is a chat span of a sample.
type instrumentedChat struct {
	traceID, spanID, respModel string
	failed                     bool
}

// instrumentedChats lists the GenAI chat spans of a spans sample (every span but the root
// handle-travel-request), with their response model (gen_ai.response.model, OpenInference's
// llm.model_name), and the resource's service.name.
func instrumentedChats(t *testing.T, mode string) (chats []instrumentedChat, service string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(instrumentedSampleDir, mode+"-spans.pb"))
	if err != nil {
		t.Fatal(err)
	}
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(b)
	if err != nil {
		t.Fatalf("%s-spans.pb: %v", mode, err)
	}
	for _, rs := range td.ResourceSpans().All() {
		if v, ok := rs.Resource().Attributes().Get("service.name"); ok {
			service = v.Str()
		}
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				if s.ParentSpanID().IsEmpty() {
					continue // handle-travel-request
				}
				c := instrumentedChat{traceID: s.TraceID().String(), spanID: s.SpanID().String(),
					failed: s.Status().Code() == ptrace.StatusCodeError}
				for _, k := range []string{attrGenAIResponseModel, "llm.model_name"} {
					if v, ok := s.Attributes().Get(k); ok && c.respModel == "" {
						c.respModel = v.Str()
					}
				}
				chats = append(chats, c)
			}
		}
	}
	return chats, service
}

// TestDecodeInstrumentedSamples decodes every instrumented sample in the format of its
// collector topic (otlp_proto, otlp_json, otlp_logs_proto, otlp_logs_json) and checks,
// per mode, the records and skips, that the proto and JSON copies agree, and that each
// record is one answered chat span of the mode's trace (its trace and span id, the
// response model, the service.name as app).
func TestDecodeInstrumentedSamples(t *testing.T) {
	formats := map[string]map[string]string{
		"spans": {"pb": FormatOTLPProto, "json": FormatOTLPJSON},
		"logs":  {"pb": FormatOTLPLogsProto, "json": FormatOTLPLogsJSON},
	}
	seen := map[string]bool{}
	for _, w := range instrumentedWant {
		t.Run(w.mode, func(t *testing.T) {
			chats, service := instrumentedChats(t, w.mode)
			answered := map[string]instrumentedChat{}
			failed := 0
			for _, c := range chats {
				if c.failed {
					failed++
				} else {
					answered[c.traceID+"-"+c.spanID] = c
				}
			}
			if len(chats) != 4 || failed != 1 {
				t.Fatalf("%d chat spans, %d failed; the sample should hold 4 chat calls, 1 failed", len(chats), failed)
			}
			for _, signal := range []string{"spans", "logs"} {
				want := w.spans
				if signal == "logs" {
					want = w.logs
				}
				var ids [][]string
				for _, ext := range []string{"pb", "json"} {
					name := w.mode + "-" + signal + "." + ext
					seen[name] = true
					value, err := os.ReadFile(filepath.Join(instrumentedSampleDir, name))
					if want.skipped == nil {
						if err == nil {
							t.Errorf("%s exists; this mode should send no %s", name, signal)
						}
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					res, err := instrumentedDecoder().DecodeMessage(formats[signal][ext], value, record.Source{Topic: "t"}, time.Unix(otlpTestUnix, 0))
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if len(res.Records) != want.records || !maps.Equal(res.Skipped, want.skipped) {
						t.Errorf("%s: %d records, skipped %v; want %d records, skipped %v", name, len(res.Records), res.Skipped, want.records, want.skipped)
					}
					var got []string
					for _, r := range res.Records {
						checkOTLPRecord(t, r, DefaultMaxMessagesPerRecord)
						c, ok := answered[r.ID]
						switch {
						case !ok:
							t.Errorf("%s: record %s is no answered chat span of %s-spans.pb", name, r.ID, w.mode)
						case w.unknownModel && (r.Model != DefaultOTLPUnknownModel || r.Metadata["raterd.model_unknown"] != "true"):
							t.Errorf("%s: record %s model %q, labels %v; want %q labelled raterd.model_unknown", name, r.ID, r.Model, r.Metadata, DefaultOTLPUnknownModel)
						case !w.unknownModel && (r.Model != c.respModel || r.Model != "judgesim"):
							t.Errorf("%s: record %s model %q, want the response model %q (judgesim)", name, r.ID, r.Model, c.respModel)
						}
						if r.App != service || r.Response == "" || r.Metadata["raterd.convention"] != w.convention {
							t.Errorf("%s: record %s app %q, response %q, convention %q; want app %q, a response, convention %q",
								name, r.ID, r.App, r.Response, r.Metadata["raterd.convention"], service, w.convention)
						}
						got = append(got, r.ID)
					}
					slices.Sort(got)
					if len(slices.Compact(slices.Clone(got))) != len(got) {
						t.Errorf("%s: duplicate record ids %v", name, got)
					}
					ids = append(ids, got)
				}
				if len(ids) == 2 && !slices.Equal(ids[0], ids[1]) {
					t.Errorf("%s-%s: proto records %v, JSON records %v", w.mode, signal, ids[0], ids[1])
				}
			}
		})
	}
	// Every sample file belongs to a mode of the table.
	files, err := filepath.Glob(filepath.Join(instrumentedSampleDir, "*-*.*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if base := filepath.Base(f); (strings.HasSuffix(base, ".pb") || strings.HasSuffix(base, ".json")) && !seen[base] {
			t.Errorf("%s: a sample of no mode in instrumentedWant", base)
		}
	}
}

// instrumentedDecoder decodes as raterd run does with the default config (cfg.Limits()).
func instrumentedDecoder() *Decoder {
	cfg := Config{Brokers: []string{"x:1"}, Topics: []string{"t"}}
	if err := cfg.Validate("kafka"); err != nil {
		panic(err)
	}
	lim := cfg.Limits()
	lim.MaxRecordBytes = 4 << 20
	return NewDecoder(lim)
}

// TestDecodeInstrumentedUnknownModelSkip: with kafka.otlp_unknown_model: skip, the
// per-message events that name no model are skipped and counted as no_model.
func TestDecodeInstrumentedUnknownModelSkip(t *testing.T) {
	cfg := Config{Brokers: []string{"x:1"}, Topics: []string{"t"}, OTLPUnknownModel: OTLPUnknownModelSkip}
	if err := cfg.Validate("kafka"); err != nil {
		t.Fatal(err)
	}
	value, err := os.ReadFile(filepath.Join(instrumentedSampleDir, "openai-v2-legacy-logs.pb"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := NewDecoder(cfg.Limits()).DecodeMessage(FormatOTLPLogsProto, value, record.Source{Topic: "t"}, time.Unix(otlpTestUnix, 0))
	if err != nil || len(res.Records) != 0 || res.Skipped[otlpSkipNoModel] != 3 {
		t.Errorf("skip: %d records, skipped %v, err %v; want none, 3 no_model", len(res.Records), res.Skipped, err)
	}
}
