package otlp

// Score events against the real OpenTelemetry Collector of the dev stack
// (scripts/services.sh; skipped without RATERD_TEST_OTELCOL, failed with
// RATERD_REQUIRE_SERVICES=1). The collector writes what it receives to a JSON-lines file
// (OTLP/JSON, one export request per line: RATERD_TEST_OTELCOL_FILE), which the test reads.

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"

	"raterd/internal/testkit"
	"raterd/record"
)

// otlpJSONLine is the part of one line of the collector's file export this test reads.
type otlpJSONLine struct {
	ResourceLogs []struct {
		Resource  otlpJSONResource `json:"resource"`
		ScopeLogs []struct {
			Scope struct {
				Name string `json:"name"`
			} `json:"scope"`
			LogRecords []otlpJSONLogRecord `json:"logRecords"`
		} `json:"scopeLogs"`
	} `json:"resourceLogs"`
	ResourceSpans []struct {
		Resource   otlpJSONResource `json:"resource"`
		ScopeSpans []struct {
			Spans []struct {
				Name    string `json:"name"`
				TraceID string `json:"traceId"`
				SpanID  string `json:"spanId"`
			} `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
}

type otlpJSONLogRecord struct {
	EventName    string          `json:"eventName"`
	TimeUnixNano string          `json:"timeUnixNano"`
	TraceID      string          `json:"traceId"`
	SpanID       string          `json:"spanId"`
	SeverityText string          `json:"severityText"`
	Attributes   []otlpJSONAttr  `json:"attributes"`
	Body         json.RawMessage `json:"body"`
}

type otlpJSONAttr struct {
	Key   string `json:"key"`
	Value struct {
		StringValue *string  `json:"stringValue"`
		DoubleValue *float64 `json:"doubleValue"`
	} `json:"value"`
}

type otlpJSONResource struct {
	Attributes []otlpJSONAttr `json:"attributes"`
}

func (r otlpJSONResource) serviceName() string {
	for _, a := range r.Attributes {
		if a.Key == "service.name" && a.Value.StringValue != nil {
			return *a.Value.StringValue
		}
	}
	return ""
}

// collected is what the collector wrote for the test's two services.
type collected struct {
	spans  map[string]string // span id → trace id, of the judged app's spans
	events []otlpJSONLogRecord
}

func readExport(t *testing.T, path, appService, raterdService string) collected {
	t.Helper()
	c := collected{spans: map[string]string{}}
	testkit.CollectorExport(t, path, []string{appService, raterdService}, func(line *otlpJSONLine) {
		for _, rs := range line.ResourceSpans {
			if rs.Resource.serviceName() != appService {
				continue
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					c.spans[s.SpanID] = s.TraceID
				}
			}
		}
		for _, rl := range line.ResourceLogs {
			if rl.Resource.serviceName() != raterdService {
				continue
			}
			for _, sl := range rl.ScopeLogs {
				if sl.Scope.Name != ScopeName {
					t.Errorf("event scope %q, want %q", sl.Scope.Name, ScopeName)
				}
				c.events = append(c.events, sl.LogRecords...)
			}
		}
	})
	return c
}

// TestIntegrationScoreEventsReachTheCollectorInTheJudgedSpan: an application exports a
// span (the judged LLM call) to the collector; raterd emits score events for two rows of
// that span (one ok, one judge error) and one untraced row. The collector has every
// event, with eventName gen_ai.evaluation.result, the span's traceId and spanId, and the
// convention's attributes.
func TestIntegrationScoreEventsReachTheCollectorInTheJudgedSpan(t *testing.T) {
	collector := testkit.Service(t, "RATERD_TEST_OTELCOL", "OpenTelemetry Collector")
	exportFile := testkit.Service(t, "RATERD_TEST_OTELCOL_FILE", "the OpenTelemetry Collector's export file")
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	appService, raterdService := "it-llm-app-"+suffix, "it-raterd-events-"+suffix
	ctx := context.Background()

	// The judged span, exported by "the application".
	texp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(collector), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(texp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(appService))))
	_, span := tp.Tracer("it").Start(ctx, "chat support-llm-v7")
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("exporting the judged span: %v", err)
	}
	judged := span.SpanContext()
	traceHex, spanHex := judged.TraceID().String(), judged.SpanID().String()

	cfg := Config{Endpoint: collector, Insecure: new(bool), Interval: 50 * time.Millisecond, Timeout: 10 * time.Second}
	*cfg.Insecure = true
	if err := cfg.Validate("score_events"); err != nil {
		t.Fatal(err)
	}
	e, err := New(ctx, cfg, Options{Resource: resource.NewSchemaless(semconv.ServiceName(raterdService))})
	if err != nil {
		t.Fatal(err)
	}
	scoredAt := time.Now().UTC().Truncate(time.Millisecond)
	ok := record.Score{
		ScoredAt: scoredAt, RecordID: "chatcmpl-" + suffix, TraceID: traceHex, SpanID: spanHex,
		Source: record.Source{Topic: "llm", Partition: 0, Offset: 1}, Model: "support-llm-v7",
		Evaluator: "helpfulness", RubricVersion: "0123456789abcdef", Judge: "openai:prometheus-2",
		Value: 4, Label: "pass", Explanation: "answers the question", Status: record.StatusOK,
	}
	failed := ok
	failed.Evaluator, failed.Status, failed.Value, failed.Label, failed.Explanation = "faithfulness", record.StatusJudgeError, 0, "", "HTTP 400"
	untraced := ok
	untraced.Evaluator, untraced.TraceID, untraced.SpanID = "conciseness", "", ""
	if err := e.WriteScores(ctx, []record.Score{ok, failed, untraced}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil { // flushes the queue to the collector
		t.Fatalf("closing the score events sink: %v", err)
	}

	var got collected
	deadline := time.Now().Add(30 * time.Second) // the collector writes its file asynchronously
	for {
		got = readExport(t, exportFile, appService, raterdService)
		if len(got.events) >= 3 && got.spans[spanHex] != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s the collector has %d spans of %s and %d events of %s; want the judged span and 3 events",
				len(got.spans), appService, len(got.events), raterdService)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(got.events) != 3 {
		t.Errorf("%d events, want 3", len(got.events))
	}
	if got.spans[spanHex] != traceHex {
		t.Errorf("the judged span %s is in trace %s, want %s", spanHex, got.spans[spanHex], traceHex)
	}
	byName := map[string]otlpJSONLogRecord{}
	for _, ev := range got.events {
		if ev.EventName != EventName {
			t.Errorf("eventName %q, want %q", ev.EventName, EventName)
		}
		if ev.TimeUnixNano != strconv.FormatInt(scoredAt.UnixNano(), 10) {
			t.Errorf("timeUnixNano %s, want scored_at %d", ev.TimeUnixNano, scoredAt.UnixNano())
		}
		for _, a := range ev.Attributes {
			if a.Key == "gen_ai.evaluation.name" && a.Value.StringValue != nil {
				byName[*a.Value.StringValue] = ev
			}
		}
	}
	str := func(ev otlpJSONLogRecord, key string) string {
		for _, a := range ev.Attributes {
			if a.Key == key && a.Value.StringValue != nil {
				return *a.Value.StringValue
			}
		}
		return ""
	}
	double := func(ev otlpJSONLogRecord, key string) *float64 {
		for _, a := range ev.Attributes {
			if a.Key == key {
				return a.Value.DoubleValue
			}
		}
		return nil
	}
	for _, name := range []string{"helpfulness", "faithfulness"} {
		ev, found := byName[name]
		if !found {
			t.Errorf("no event of %s", name)
			continue
		}
		if ev.TraceID != traceHex || ev.SpanID != spanHex {
			t.Errorf("%s event in trace %q span %q, want the judged span %s %s", name, ev.TraceID, ev.SpanID, traceHex, spanHex)
		}
		if got := str(ev, "gen_ai.response.id"); got != ok.RecordID {
			t.Errorf("%s event gen_ai.response.id %q, want %q", name, got, ok.RecordID)
		}
		if str(ev, "raterd.rubric_version") != ok.RubricVersion || str(ev, "raterd.judge") != ok.Judge {
			t.Errorf("%s event lacks raterd.rubric_version or raterd.judge: %+v", name, ev.Attributes)
		}
	}
	if ev := byName["helpfulness"]; double(ev, "gen_ai.evaluation.score.value") == nil || *double(ev, "gen_ai.evaluation.score.value") != 4 ||
		str(ev, "gen_ai.evaluation.score.label") != "pass" || str(ev, "gen_ai.evaluation.explanation") != "answers the question" {
		t.Errorf("ok event attributes %+v", ev.Attributes)
	}
	if ev := byName["faithfulness"]; str(ev, "error.type") != record.StatusJudgeError || double(ev, "gen_ai.evaluation.score.value") != nil {
		t.Errorf("judge_error event attributes %+v: want error.type and no score value", ev.Attributes)
	}
	if ev, found := byName["conciseness"]; !found || ev.TraceID != "" || ev.SpanID != "" {
		t.Errorf("untraced event: found %v, trace %q span %q; want it without trace context", found, ev.TraceID, ev.SpanID)
	}
	t.Logf("the collector has the judged span %s/%s and its %d score events", traceHex, spanHex, len(got.events))
}
