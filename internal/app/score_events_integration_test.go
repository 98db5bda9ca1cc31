package app

// Score events through `raterd run` against the real OpenTelemetry Collector of the dev
// stack (skipped without RATERD_TEST_OTELCOL, failed with RATERD_REQUIRE_SERVICES=1).

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"raterd/internal/testkit"
	"raterd/sinks/otlp"
)

// otlpLogsLine is the logs part of one line of the collector's file export.
type otlpLogsLine struct {
	ResourceLogs []struct {
		Resource  otlpResource `json:"resource"`
		ScopeLogs []struct {
			LogRecords []struct {
				EventName  string `json:"eventName"`
				TraceID    string `json:"traceId"`
				SpanID     string `json:"spanId"`
				Attributes []struct {
					Key   string `json:"key"`
					Value struct {
						StringValue string `json:"stringValue"`
					} `json:"value"`
				} `json:"attributes"`
			} `json:"logRecords"`
		} `json:"scopeLogs"`
	} `json:"resourceLogs"`
}

// scoreEvent is one gen_ai.evaluation.result event the collector got.
type scoreEvent struct{ evaluator, responseID, traceID, spanID string }

// collectorScoreEvents reads the collector's export file for service's score events.
func collectorScoreEvents(t *testing.T, path, service string) []scoreEvent {
	t.Helper()
	var out []scoreEvent
	testkit.CollectorExport(t, path, []string{service}, func(line *otlpLogsLine) {
		for _, rl := range line.ResourceLogs {
			if rl.Resource.serviceName() != service {
				continue
			}
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					if lr.EventName != "gen_ai.evaluation.result" {
						continue
					}
					ev := scoreEvent{traceID: lr.TraceID, spanID: lr.SpanID}
					for _, a := range lr.Attributes {
						switch a.Key {
						case "gen_ai.evaluation.name":
							ev.evaluator = a.Value.StringValue
						case "gen_ai.response.id":
							ev.responseID = a.Value.StringValue
						}
					}
					out = append(out, ev)
				}
			}
		}
	})
	return out
}

// TestIntegrationScoreEventsFromRun: `raterd run` with a score_events section scores records that carry trace and span ids,
// and the collector gets one gen_ai.evaluation.result event per score row, in each
// record's span.
func TestIntegrationScoreEventsFromRun(t *testing.T) {
	s := testkit.RequireServices(t)
	collector := testkit.Service(t, "RATERD_TEST_OTELCOL", "OpenTelemetry Collector")
	exportFile := testkit.Service(t, "RATERD_TEST_OTELCOL_FILE", "the OpenTelemetry Collector's export file")
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "it-score-events-" + suffix
	testkit.CreateTopic(t, s.Kafka, topic, 1)
	t.Cleanup(func() { testkit.DeleteTopics(s.Kafka, topic, topic+".dlq") })

	cfg := readyzRunConfig(t, s.Kafka, topic, "it-score-events-"+suffix)
	service := "raterd-score-events-" + suffix
	cfg.Telemetry.OTLPEndpoint, cfg.Telemetry.OTLPInsecure, cfg.Telemetry.ServiceName = collector, true, service
	// As `score_events: {interval: 100ms}` under this telemetry section reads (TestScoreEventsConfig).
	insecure := true
	cfg.ScoreEvents = &otlp.Config{Endpoint: collector, Insecure: &insecure, Interval: 100 * time.Millisecond}
	if err := cfg.ScoreEvents.Validate("score_events"); err != nil {
		t.Fatal(err)
	}
	const n = 10
	var values [][]byte
	want := map[string][2]string{} // record id → trace, span
	for i := range n {
		id := fmt.Sprintf("chatcmpl-%s-%d", suffix, i)
		traceHex := fmt.Sprintf("%016x%016x", time.Now().UnixNano(), i+1)
		spanHex := fmt.Sprintf("%016x", i+1)
		want[id] = [2]string{traceHex, spanHex}
		values = append(values, fmt.Appendf(nil,
			`{"id":%q,"model":"support-llm-v7","prompt":"hi","response":"I'm sorry, but I can't help with that.","trace_id":%q,"span_id":%q}`,
			id, traceHex, spanHex))
	}
	if err := Produce(context.Background(), []string{s.Kafka}, topic, values); err != nil {
		t.Fatal(err)
	}
	stop := startRun(t, cfg, &logBuffer{})
	waitScores(t, cfg.ScoresFile, n, 60*time.Second)
	stop() // closes the stack: the score events are flushed

	var got []scoreEvent
	deadline := time.Now().Add(30 * time.Second) // the collector writes its file asynchronously
	for {
		if got = collectorScoreEvents(t, exportFile, service); len(got) >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s the collector has %d score events from %s, want %d", len(got), service, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	seen := map[string]bool{}
	for _, ev := range got {
		ids, ok := want[ev.responseID]
		if !ok || ev.evaluator != "refusal" || ev.traceID != ids[0] || ev.spanID != ids[1] {
			t.Errorf("event %+v: want evaluator refusal in the span of its record (%v)", ev, ids)
		}
		seen[ev.responseID] = true
	}
	if len(seen) != n {
		t.Errorf("events for %d records, want %d", len(seen), n)
	}
}
