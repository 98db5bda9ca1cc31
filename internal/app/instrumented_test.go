package app

// Samples of real GenAI instrumentation traffic (issue 14): OTLP spans and logs that the
// openai Python client, instrumented by opentelemetry-instrumentation-openai-v2,
// OpenInference and OpenLLMetry, sent through the dev stack's collector to Kafka
// (scripts/genai-instrumented.sh; TestIntegrationGenAIInstrumented captures them). This
// file renders them as a compact, stable dump (instrumentedDumpFile) that the decoder
// authors read, and checks the committed samples against it.

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

var updateInstrumented = flag.Bool("update-instrumented", false,
	"TestIntegrationGenAIInstrumented rewrites the samples under "+instrumentedDir+"; TestInstrumentedSamples rewrites their dump")

const (
	instrumentedDir      = "../../consumer/testdata/inputs/instrumented"
	instrumentedDumpFile = "dump.txt"
	// instrumentedModeAttr is the resource attribute chat.py marks each mode's process with.
	instrumentedModeAttr = "raterd.genai.mode"
)

// instrumentedMode is what one mode of deploy/genai-instrumented/chat.py sends: 4 chat
// spans (3 answered, 1 failed with 400) under one parent span, and logs records.
type instrumentedMode struct {
	name       string
	logRecords int    // log records per run
	contentIn  string // "spans" or "logs": the signal that carries the prompt text
}

var instrumentedModes = []instrumentedMode{
	{"openai-v2-legacy", 14, "logs"},
	{"openai-v2-latest-span", 0, "spans"},
	{"openai-v2-latest-event", 4, "logs"},
	{"openinference", 0, "spans"},
	{"traceloop", 0, "spans"},
	{"traceloop-events", 14, "logs"},
}

const (
	instrumentedChatSpans  = 4 // GenAI client spans per mode, the failed call's included
	instrumentedParentSpan = "handle-travel-request"
	instrumentedPrompt     = "What is the capital of France?" // chat.py's first question
)

// instrumentedSample names a captured message value: <mode>-<spans|logs>.<pb|json>.
func instrumentedSample(mode, signal, ext string) string {
	return filepath.Join(instrumentedDir, mode+"-"+signal+"."+ext)
}

// decodeInstrumented decodes an otlp_proto message value of signal "spans" or "logs".
func decodeInstrumented(signal string, b []byte) (proto.Message, error) {
	var m proto.Message = &coltrace.ExportTraceServiceRequest{}
	if signal == "logs" {
		m = &collogs.ExportLogsServiceRequest{}
	}
	return m, proto.Unmarshal(b, m)
}

// resourceAttr returns a string attribute of a resource's attribute list.
func resourceAttr(attrs []*commonpb.KeyValue, key string) string {
	for _, a := range attrs {
		if a.GetKey() == key {
			return a.GetValue().GetStringValue()
		}
	}
	return ""
}

// instrumentedResources returns the service.name and raterd.genai.mode of each resource
// of a decoded message.
func instrumentedResources(m proto.Message) (services, modes []string) {
	add := func(attrs []*commonpb.KeyValue) {
		services = append(services, resourceAttr(attrs, "service.name"))
		modes = append(modes, resourceAttr(attrs, instrumentedModeAttr))
	}
	switch m := m.(type) {
	case *coltrace.ExportTraceServiceRequest:
		for _, rs := range m.GetResourceSpans() {
			add(rs.GetResource().GetAttributes())
		}
	case *collogs.ExportLogsServiceRequest:
		for _, rl := range m.GetResourceLogs() {
			add(rl.GetResource().GetAttributes())
		}
	}
	return services, modes
}

// dumpValue renders an attribute value with its OTLP type; long strings are cut.
func dumpValue(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		s := x.StringValue
		kind := "string"
		if json.Valid([]byte(s)) && (strings.HasPrefix(s, "[") || strings.HasPrefix(s, "{")) {
			kind = "string(JSON)"
		}
		if len(s) > 110 {
			s = s[:100] + "…"
		}
		return kind + " " + strconv.Quote(s)
	case *commonpb.AnyValue_IntValue:
		return "int " + strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return "double " + strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *commonpb.AnyValue_BoolValue:
		return "bool " + strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_BytesValue:
		return fmt.Sprintf("bytes[%d]", len(x.BytesValue))
	case *commonpb.AnyValue_ArrayValue:
		parts := make([]string, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, dumpValue(e))
		}
		return "array[" + strings.Join(parts, ", ") + "]"
	case *commonpb.AnyValue_KvlistValue:
		parts := make([]string, 0, len(x.KvlistValue.GetValues()))
		for _, kv := range x.KvlistValue.GetValues() {
			parts = append(parts, kv.GetKey()+": "+dumpValue(kv.GetValue()))
		}
		return "kvlist{" + strings.Join(parts, ", ") + "}"
	case nil:
		return "empty"
	}
	return fmt.Sprintf("%T", v.GetValue())
}

// dumpAttrs writes one line per attribute; the resource's telemetry.sdk.* and
// service.name are the same everywhere and left out of resources.
func dumpAttrs(b *bytes.Buffer, indent string, attrs []*commonpb.KeyValue) {
	for _, a := range attrs {
		if strings.Contains(a.GetValue().GetStringValue(), "Traceback (most recent call last)") {
			fmt.Fprintf(b, "%s%s: string (a Python traceback)\n", indent, a.GetKey())
			continue
		}
		fmt.Fprintf(b, "%s%s: %s\n", indent, a.GetKey(), dumpValue(a.GetValue()))
	}
}

// dumpInstrumented renders a decoded sample: resources, scopes, then each span (name,
// kind, status, parent or root, attributes, events) or log record (event name, severity,
// whether it carries a trace and span id, body, attributes).
func dumpInstrumented(m proto.Message) string {
	var b bytes.Buffer
	resource := func(attrs []*commonpb.KeyValue) {
		var keep []*commonpb.KeyValue
		for _, a := range attrs {
			if !strings.HasPrefix(a.GetKey(), "telemetry.sdk.") {
				keep = append(keep, a)
			}
		}
		b.WriteString("resource\n")
		dumpAttrs(&b, "  ", keep)
	}
	switch m := m.(type) {
	case *coltrace.ExportTraceServiceRequest:
		for _, rs := range m.GetResourceSpans() {
			resource(rs.GetResource().GetAttributes())
			for _, ss := range rs.GetScopeSpans() {
				fmt.Fprintf(&b, "  scope %s %s (schema %q)\n", ss.GetScope().GetName(), ss.GetScope().GetVersion(), ss.GetSchemaUrl())
				for _, s := range ss.GetSpans() {
					parent := "root"
					if len(s.GetParentSpanId()) > 0 {
						parent = "child"
					}
					fmt.Fprintf(&b, "    span %q kind=%s status=%s %s\n", s.GetName(),
						strings.TrimPrefix(s.GetKind().String(), "SPAN_KIND_"),
						strings.TrimPrefix(s.GetStatus().GetCode().String(), "STATUS_CODE_"), parent)
					dumpAttrs(&b, "      ", s.GetAttributes())
					for _, e := range s.GetEvents() {
						fmt.Fprintf(&b, "      event %q\n", e.GetName())
						dumpAttrs(&b, "        ", e.GetAttributes())
					}
				}
			}
		}
	case *collogs.ExportLogsServiceRequest:
		for _, rl := range m.GetResourceLogs() {
			resource(rl.GetResource().GetAttributes())
			for _, sl := range rl.GetScopeLogs() {
				fmt.Fprintf(&b, "  scope %s %s (schema %q)\n", sl.GetScope().GetName(), sl.GetScope().GetVersion(), sl.GetSchemaUrl())
				for _, r := range sl.GetLogRecords() {
					ids := "no trace/span id"
					if len(r.GetTraceId()) > 0 && len(r.GetSpanId()) > 0 {
						ids = "trace+span id"
					}
					fmt.Fprintf(&b, "    log event_name=%q severity=%s %s\n", r.GetEventName(),
						strings.TrimPrefix(r.GetSeverityNumber().String(), "SEVERITY_NUMBER_"), ids)
					if r.GetBody() != nil {
						fmt.Fprintf(&b, "      body: %s\n", dumpValue(r.GetBody()))
					}
					dumpAttrs(&b, "      ", r.GetAttributes())
				}
			}
		}
	}
	return b.String()
}

// TestInstrumentedSamples: every committed sample decodes (otlp_proto and otlp_json), holds
// the one resource of its mode with the expected spans or log records, carries the prompt
// text in the signal the README says, and the dump (dump.txt) matches the samples
// (go test -run TestInstrumentedSamples -update-instrumented rewrites it).
func TestInstrumentedSamples(t *testing.T) {
	if _, err := os.Stat(instrumentedDir); err != nil {
		t.Fatalf("%s: %v", instrumentedDir, err)
	}
	var dump strings.Builder
	dump.WriteString("# Generated by TestInstrumentedSamples from the *.pb samples beside it; do not edit.\n")
	dump.WriteString("# String values over 110 bytes are cut at 100 (…); string(JSON) is a string holding JSON.\n")
	for _, mode := range instrumentedModes {
		for _, signal := range []string{"spans", "logs"} {
			pb, err := os.ReadFile(instrumentedSample(mode.name, signal, "pb"))
			if signal == "logs" && mode.logRecords == 0 {
				if err == nil {
					t.Errorf("%s: no logs expected, but %s exists", mode.name, instrumentedSample(mode.name, signal, "pb"))
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			m, err := decodeInstrumented(signal, pb)
			if err != nil {
				t.Fatalf("%s-%s.pb: %v", mode.name, signal, err)
			}
			checkInstrumented(t, mode, signal, m, pb)
			js, err := os.ReadFile(instrumentedSample(mode.name, signal, "json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := checkInstrumentedJSON(signal, js, countInstrumented(m)); err != nil {
				t.Errorf("%s-%s.json: %v", mode.name, signal, err)
			}
			fmt.Fprintf(&dump, "\n## %s-%s.pb\n%s", mode.name, signal, dumpInstrumented(m))
		}
	}
	path := filepath.Join(instrumentedDir, instrumentedDumpFile)
	if *updateInstrumented {
		if err := os.WriteFile(path, []byte(dump.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run TestInstrumentedSamples -update-instrumented writes it)", err)
	}
	if string(want) != dump.String() {
		t.Errorf("%s is out of date with the samples; run go test ./internal/app -run TestInstrumentedSamples -update-instrumented", path)
	}
}

// countInstrumented counts the spans or log records of a decoded message.
func countInstrumented(m proto.Message) int {
	n := 0
	switch m := m.(type) {
	case *coltrace.ExportTraceServiceRequest:
		for _, rs := range m.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				n += len(ss.GetSpans())
			}
		}
	case *collogs.ExportLogsServiceRequest:
		for _, rl := range m.GetResourceLogs() {
			for _, sl := range rl.GetScopeLogs() {
				n += len(sl.GetLogRecords())
			}
		}
	}
	return n
}

// checkInstrumented checks one decoded sample of a mode (raw is its message value).
func checkInstrumented(t *testing.T, mode instrumentedMode, signal string, m proto.Message, raw []byte) {
	t.Helper()
	if _, modes := instrumentedResources(m); !slices.Equal(modes, []string{mode.name}) {
		t.Errorf("%s-%s: resources of modes %q, want one of %s", mode.name, signal, modes, mode.name)
	}
	if signal == "spans" {
		var chat, parent int
		for _, rs := range m.(*coltrace.ExportTraceServiceRequest).GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					if s.GetName() == instrumentedParentSpan {
						parent++
					} else {
						chat++
					}
				}
			}
		}
		if chat != instrumentedChatSpans || parent != 1 {
			t.Errorf("%s: %d chat spans and %d %q spans, want %d and 1", mode.name, chat, parent, instrumentedParentSpan, instrumentedChatSpans)
		}
	} else if n := countInstrumented(m); n != mode.logRecords {
		t.Errorf("%s: %d log records, want %d", mode.name, n, mode.logRecords)
	}
	if has := bytes.Contains(raw, []byte(instrumentedPrompt)); has != (signal == mode.contentIn) {
		t.Errorf("%s-%s: holds the prompt text %v, want %v (content in %s)", mode.name, signal, has, !has, mode.contentIn)
	}
}

// checkInstrumentedJSON checks that an otlp_json message value is OTLP/JSON of signal
// with n spans or log records.
func checkInstrumentedJSON(signal string, b []byte, n int) error {
	var doc struct {
		ResourceSpans []struct {
			ScopeSpans []struct {
				Spans []json.RawMessage `json:"spans"`
			} `json:"scopeSpans"`
		} `json:"resourceSpans"`
		ResourceLogs []struct {
			ScopeLogs []struct {
				LogRecords []json.RawMessage `json:"logRecords"`
			} `json:"scopeLogs"`
		} `json:"resourceLogs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	got := 0
	for _, rs := range doc.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			got += len(ss.Spans)
		}
	}
	for _, rl := range doc.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			got += len(sl.LogRecords)
		}
	}
	if got != n {
		return fmt.Errorf("%d %s in OTLP/JSON, %d in the otlp_proto sample", got, signal, n)
	}
	return nil
}
