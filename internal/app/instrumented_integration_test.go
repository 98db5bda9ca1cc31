package app

// Real GenAI instrumentation traffic through the dev stack's OpenTelemetry Collector to
// Kafka (issue 14): scripts/genai-instrumented.sh runs the openai Python client under
// each instrumentation mode against a judgesim this test serves, and the spans and logs
// must arrive on the collector's Kafka topics in both encodings; raterd then scores the
// captured messages from private topics into ClickHouse (scoreInstrumented). Skipped
// without Kafka, the collector, ClickHouse or a buildable virtualenv; failed instead with
// RATERD_REQUIRE_SERVICES=1.
//
// Regenerate the samples under consumer/testdata/inputs/instrumented and their dump:
//
//	go test ./internal/app -count=1 -run 'TestIntegrationGenAIInstrumented|TestInstrumentedSamples' -update-instrumented

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"raterd/consumer"
	"raterd/internal/testkit"
	"raterd/internal/testkit/chtest"
)

// The collector's Kafka topics (deploy/otelcol/collector.yaml).
var instrumentedTopics = []struct{ topic, signal, ext string }{
	{"otlp-spans-proto", "spans", "pb"},
	{"otlp-logs-proto", "logs", "pb"},
	{"otlp-spans-json", "spans", "json"},
	{"otlp-logs-json", "logs", "json"},
}

// instrumentedVenv builds (or finds) the virtualenv of scripts/genai-instrumented.sh:
// about 20 seconds the first time, then cached. It skips the test when that fails, or
// fails it with RATERD_REQUIRE_SERVICES set.
func instrumentedVenv(t *testing.T, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, script, "setup").CombinedOutput()
	if err == nil {
		return
	}
	msg := "scripts/genai-instrumented.sh setup failed (" + err.Error() + "): " + strings.TrimSpace(string(out))
	if os.Getenv(testkit.RequireServicesEnv) != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// instrumentedJSONResource returns the service.name and raterd.genai.mode of the first
// resource of an OTLP/JSON message value.
func instrumentedJSONResource(b []byte) (service, mode string) {
	var doc struct {
		ResourceSpans []struct {
			Resource otlpResource `json:"resource"`
		} `json:"resourceSpans"`
		ResourceLogs []struct {
			Resource otlpResource `json:"resource"`
		} `json:"resourceLogs"`
	}
	if json.Unmarshal(b, &doc) != nil {
		return "", ""
	}
	var r otlpResource
	switch {
	case len(doc.ResourceSpans) > 0:
		r = doc.ResourceSpans[0].Resource
	case len(doc.ResourceLogs) > 0:
		r = doc.ResourceLogs[0].Resource
	}
	for _, a := range r.Attributes {
		if a.Key == instrumentedModeAttr {
			mode = a.Value.StringValue
		}
	}
	return r.serviceName(), mode
}

func TestIntegrationGenAIInstrumented(t *testing.T) {
	broker := testkit.Service(t, "RATERD_TEST_KAFKA", "Kafka broker")
	collector := testkit.Service(t, "RATERD_TEST_OTELCOL", "OpenTelemetry Collector")
	clickhouseAddr := testkit.Service(t, "RATERD_TEST_CLICKHOUSE", "ClickHouse")
	script, err := filepath.Abs("../../scripts/genai-instrumented.sh")
	if err != nil {
		t.Fatal(err)
	}
	instrumentedVenv(t, script)

	// Where each topic ends now: this run's messages come after. On a fresh broker the
	// collector has not created its topics yet.
	from := map[string]map[int]int64{}
	for _, tp := range instrumentedTopics {
		testkit.EnsureTopic(t, broker, tp.topic, 4)
		from[tp.topic] = testkit.EndOffsets(t, broker, tp.topic)
	}
	baseURL, _ := testkit.StartJudgesim(t, testkit.FastJudgesim)
	service := "raterd-genai-it-" + strconv.FormatInt(time.Now().UnixNano(), 36)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "run", "--base-url", baseURL, "--otlp", collector, "--service-name", service)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/genai-instrumented.sh run: %v\n%s", err, out)
	}

	// The collector's OTLP receiver answers before its Kafka exporters have written: poll.
	// got[mode][topic] holds this run's message values.
	got := map[string]map[string][][]byte{}
	read := func() {
		for _, tp := range instrumentedTopics {
			for _, m := range testkit.ReadTopic(t, broker, tp.topic, from[tp.topic]) {
				from[tp.topic][m.Partition] = m.Offset + 1
				if svc, mode := instrumentedMessageResource(t, tp.ext, tp.signal, m); svc == service {
					if got[mode] == nil {
						got[mode] = map[string][][]byte{}
					}
					got[mode][tp.topic] = append(got[mode][tp.topic], m.Value)
				}
			}
		}
	}
	complete := func() bool {
		for _, mode := range instrumentedModes {
			for _, tp := range instrumentedTopics {
				if tp.signal == "logs" && mode.logRecords == 0 {
					continue
				}
				if len(got[mode.name][tp.topic]) == 0 {
					return false
				}
			}
		}
		return true
	}
	deadline := time.Now().Add(30 * time.Second)
	for !complete() {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s the Kafka topics hold, per mode and topic, only %v", instrumentedCounts(got))
		}
		time.Sleep(300 * time.Millisecond)
		read()
	}
	// Give a late second export (a mode's batch split in two) a moment to show up.
	time.Sleep(time.Second)
	read()

	for _, mode := range instrumentedModes {
		for _, tp := range instrumentedTopics {
			values := got[mode.name][tp.topic]
			if tp.signal == "logs" && mode.logRecords == 0 {
				if len(values) != 0 {
					t.Errorf("%s: %d messages on %s, want none", mode.name, len(values), tp.topic)
				}
				continue
			}
			if len(values) != 1 {
				// One process exports each signal once (chat.py flushes at exit); more
				// would mean the batch was split, which the samples should not be.
				t.Errorf("%s: %d messages on %s, want 1", mode.name, len(values), tp.topic)
				continue
			}
			if tp.ext == "pb" {
				m, err := decodeInstrumented(tp.signal, values[0])
				if err != nil {
					t.Fatalf("%s on %s: %v", mode.name, tp.topic, err)
				}
				checkInstrumented(t, mode, tp.signal, m, values[0])
			}
			if *updateInstrumented {
				path := instrumentedSample(mode.name, tp.signal, tp.ext)
				if err := os.WriteFile(path, values[0], 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("wrote %s (%d bytes)", path, len(values[0]))
			}
		}
	}

	scoreInstrumented(t, clickhouseAddr, broker, baseURL, service, got)
}

// instrumentedMessageResource returns the service.name and mode of a Kafka message value
// of the collector's topics in encoding ext ("pb" or "json").
func instrumentedMessageResource(t *testing.T, ext, signal string, m kafka.Message) (service, mode string) {
	t.Helper()
	if ext == "json" {
		return instrumentedJSONResource(m.Value)
	}
	pm, err := decodeInstrumented(signal, m.Value)
	if err != nil {
		t.Fatalf("%s: not OTLP protobuf: %v", testkit.Coordinates(m), err)
	}
	services, modes := instrumentedResources(pm)
	if len(services) == 0 {
		return "", ""
	}
	return services[0], modes[0]
}

// instrumentedCounts summarises what arrived, for a failure message.
func instrumentedCounts(got map[string]map[string][][]byte) map[string]map[string]int {
	out := map[string]map[string]int{}
	for mode, topics := range got {
		out[mode] = map[string]int{}
		for topic, values := range topics {
			out[mode][topic] = len(values)
		}
	}
	return out
}

// instrumentedScored is how many chat calls of each mode raterd scores: the three
// answered ones where a record carries the content and the model, none where it cannot.
// The failed streaming call has no output anywhere and is never scored. scoreInstrumented
// also derives the scored calls from what the mode emitted (its spans and logs messages),
// so that a change of an instrumentation shows as a disagreement with this table.
// consumer's TestDecodeInstrumentedSamples pins the same on the committed samples.
var instrumentedScored = map[string]int{
	// Semconv 1.30 per-message events (gen_ai.user.message, …, gen_ai.choice) carry the
	// content and only gen_ai.system; the model is on the span, which has no content and
	// travels in another Kafka message. The decoder holds no state across messages, so each
	// answered call's group is scored under kafka.otlp_unknown_model ("unknown", labelled
	// raterd.model_unknown), and the span is skipped as no_output: docs/inputs.md,
	// "Per-message events".
	"openai-v2-legacy": 3,
	// Content on the span (JSON strings), model on the span: one record per answered call.
	"openai-v2-latest-span": 3,
	// Content and model on the gen_ai.client.inference.operation.details event of each
	// call (the span has no content and is skipped as no_output).
	"openai-v2-latest-event": 3,
	// Flattened llm.input_messages / llm.output_messages and llm.model_name on LLM spans.
	"openinference": 3,
	// OpenLLMetry 0.62.4: gen_ai.input/output.messages on the span.
	"traceloop": 3,
	// As openai-v2-legacy: per-message events with gen_ai.provider.name and no model.
	"traceloop-events": 3,
}

// instrumentedChatSpan is a chat span of this run, as the spans-proto message holds it.
type instrumentedChatSpan struct {
	mode, traceID, spanID, respModel string
	failed                           bool // status ERROR: the call judgesim refused
	content                          bool // the span carries the output (gen_ai.output.messages, llm.output_messages.*)
}

// listInstrumentedChats decodes a mode's otlp_proto spans messages with pdata and lists
// its chat spans: every span but the root handle-travel-request. It also returns how many
// spans the messages hold in all.
func listInstrumentedChats(t *testing.T, mode string, values [][]byte) (chats []instrumentedChatSpan, spans int) {
	t.Helper()
	for _, v := range values {
		var u ptrace.ProtoUnmarshaler
		td, err := u.UnmarshalTraces(v)
		if err != nil {
			t.Fatalf("%s: spans message: %v", mode, err)
		}
		spans += td.SpanCount()
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					if s.Name() == instrumentedParentSpan {
						continue
					}
					c := instrumentedChatSpan{mode: mode, traceID: s.TraceID().String(), spanID: s.SpanID().String(),
						failed: s.Status().Code() == ptrace.StatusCodeError}
					for k, a := range s.Attributes().All() {
						switch {
						case k == "gen_ai.response.model" || k == "llm.model_name":
							c.respModel = a.Str()
						case k == "gen_ai.output.messages" || strings.HasPrefix(k, "llm.output_messages."):
							c.content = true
						}
					}
					chats = append(chats, c)
				}
			}
		}
	}
	return chats, spans
}

// instrumentedLogUnits reads a mode's otlp_proto logs messages: per span id, the model of
// the record an event gives that call — a gen_ai.client.inference.operation.details event
// with gen_ai.output.messages and a model (the response model), or per-message events that
// include a gen_ai.choice (their model attribute, or kafka.otlp_unknown_model's default
// when they carry none) — and how many parts the decoder counts (each details event, each
// span's group of per-message events).
func instrumentedLogUnits(t *testing.T, mode string, values [][]byte) (scorable map[string]string, units int) {
	t.Helper()
	scorable = map[string]string{}
	type group struct {
		choice bool
		model  string
	}
	for _, v := range values {
		var u plog.ProtoUnmarshaler
		ld, err := u.UnmarshalLogs(v)
		if err != nil {
			t.Fatalf("%s: logs message: %v", mode, err)
		}
		groups := map[string]*group{}
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					span := lr.SpanID().String()
					model := ""
					for _, k := range []string{"gen_ai.request.model", "gen_ai.response.model"} { // the latter wins
						if v, ok := lr.Attributes().Get(k); ok {
							model = v.Str()
						}
					}
					switch name := lr.EventName(); {
					case name == "gen_ai.client.inference.operation.details":
						units++
						if _, ok := lr.Attributes().Get("gen_ai.output.messages"); ok && model != "" {
							scorable[span] = model
						}
					case strings.HasPrefix(name, "gen_ai.") && (strings.HasSuffix(name, ".message") || name == "gen_ai.choice"):
						g := groups[span]
						if g == nil {
							g = &group{}
							groups[span] = g
							units++
						}
						g.choice = g.choice || name == "gen_ai.choice"
						g.model = cmp.Or(model, g.model)
					default:
						units++ // not_genai_event (none expected)
					}
				}
			}
		}
		for span, g := range groups {
			if g.choice {
				scorable[span] = cmp.Or(g.model, consumer.DefaultOTLPUnknownModel)
			}
		}
	}
	return scorable, units
}

// scoreInstrumented produces this run's captured message values (the collector's own
// bytes, got[mode][collector topic]) to four private topics, runs raterd over them with
// the collector topics' formats, a heuristic and an LLM evaluator on judgesim (simURL),
// and checks the score rows in ClickHouse against the chat spans of the spans messages:
// per mode, exactly the calls whose content and model reach a record are scored, once per
// evaluator after FINAL although proto and JSON copies both were, with the spans' trace
// and span ids and the response model.
// It is no helper (no t.Helper): failures name the assertion's line.
func scoreInstrumented(t *testing.T, clickhouseAddr, broker, simURL, service string, got map[string]map[string][][]byte) {
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	db := "raterd_instr_" + suffix
	conn := chtest.Migrated(t, clickhouseAddr, db)

	// One private topic per collector topic; every mode's messages in the same order.
	private := map[string]string{}
	var topics, formats []string
	messages := 0
	for _, tp := range instrumentedTopics {
		topic := "it-instr-" + strings.TrimPrefix(tp.topic, "otlp-") + "-" + suffix
		private[tp.topic] = topic
		testkit.CreateTopic(t, broker, topic, 1)
		topics = append(topics, topic)
		formats = append(formats, topic+": "+collectorTopics[tp.topic])
		var msgs []kafka.Message
		for _, mode := range instrumentedModes {
			for _, v := range got[mode.name][tp.topic] {
				msgs = append(msgs, kafka.Message{Value: v})
			}
		}
		if len(msgs) > 0 {
			testkit.ProduceMessages(t, broker, topic, msgs)
		}
		messages += len(msgs)
	}

	// What to expect, from what each mode emitted.
	type expectation struct {
		scored map[string]instrumentedChatSpan // by span id
		chats  map[string]instrumentedChatSpan // every chat span, by span id
	}
	expect := map[string]expectation{}
	byTrace := map[string]string{} // trace id → mode
	var wantRecords, wantSkipped, wantEmpty int64
	for _, mode := range instrumentedModes {
		chats, spans := listInstrumentedChats(t, mode.name, got[mode.name]["otlp-spans-proto"])
		logScorable, logUnits := instrumentedLogUnits(t, mode.name, got[mode.name]["otlp-logs-proto"])
		e := expectation{scored: map[string]instrumentedChatSpan{}, chats: map[string]instrumentedChatSpan{}}
		failed, fromSpans, fromLogs := 0, 0, 0
		for _, c := range chats {
			e.chats[c.spanID] = c
			byTrace[c.traceID] = mode.name
			switch {
			case c.failed:
				failed++
			case c.content && c.respModel != "":
				e.scored[c.spanID] = c
				fromSpans++
			case logScorable[c.spanID] != "":
				c.respModel = logScorable[c.spanID] // the record's model: the event's
				e.scored[c.spanID] = c
				fromLogs++
			}
		}
		if len(chats) != instrumentedChatSpans || failed != 1 {
			t.Fatalf("%s: %d chat spans, %d failed, want %d and 1", mode.name, len(chats), failed, instrumentedChatSpans)
		}
		if len(e.scored) != instrumentedScored[mode.name] {
			t.Errorf("%s: what the mode emitted makes %d calls scorable (%d by their span, %d by their events), the test pins %d (instrumentedScored)",
				mode.name, len(e.scored), fromSpans, fromLogs, instrumentedScored[mode.name])
		}
		expect[mode.name] = e
		// Each message arrives in two encodings. A spans message counts each span once, as
		// a record or a skip; a logs message each details event and each span's group of
		// per-message events.
		wantRecords += int64(2 * len(e.scored))
		wantSkipped += int64(2 * (spans - fromSpans + logUnits - fromLogs))
		if fromSpans == 0 {
			wantEmpty += int64(2 * len(got[mode.name]["otlp-spans-proto"]))
		}
		if fromLogs == 0 {
			wantEmpty += int64(2 * len(got[mode.name]["otlp-logs-proto"]))
		}
	}

	text := fmt.Sprintf(`
kafka:
  brokers: [%s]
  topics: [%s]
  topic_formats: {%s}
  group_id: it-instr-%s
  batch: {max_records: 100, linger: 20ms}
  commit_interval: 100ms
clickhouse: {addrs: [%s], database: %s}
judges:
  checks: {type: heuristic}
  sim: {type: openai, model: judgesim-it, endpoints: [{url: %q}]}
evaluators:
  - {name: refusal, judge: checks, check: refusal}
  - {name: helpfulness, judge: sim, criteria: "Is the answer helpful and correct?"}
admin: {listen: "off"}
`, broker, strings.Join(topics, ", "), strings.Join(formats, ", "), suffix, clickhouseAddr, db, simURL)
	cfg, err := ParseConfig([]byte(text), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	evaluators := []string{"helpfulness", "refusal"}
	stats, _ := runGroup(t, cfg, int64(messages))
	if stats.Valid != int64(messages) || stats.DeadLetters != 0 || stats.Records != wantRecords ||
		stats.Skipped != wantSkipped || stats.Empty != wantEmpty || stats.Scores != wantRecords*int64(len(evaluators)) {
		t.Errorf("pipeline stats %+v; want Valid %d, DeadLetters 0, Records %d, Skipped %d, Empty %d, Scores %d (a record per scored call and encoding, per evaluator)",
			stats, messages, wantRecords, wantSkipped, wantEmpty, wantRecords*int64(len(evaluators)))
	}

	type row struct{ recordID, traceID, spanID, app, model, evaluator, status string }
	rows, err := conn.Query(context.Background(),
		"SELECT record_id, trace_id, span_id, app, model, evaluator, status FROM "+db+".scores FINAL ORDER BY trace_id, span_id, evaluator")
	if err != nil {
		t.Fatal(err)
	}
	bySpan := map[string][]row{}
	total := 0
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.recordID, &r.traceID, &r.spanID, &r.app, &r.model, &r.evaluator, &r.status); err != nil {
			t.Fatal(err)
		}
		bySpan[r.spanID] = append(bySpan[r.spanID], r)
		total++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for span, rs := range bySpan {
		mode := byTrace[rs[0].traceID]
		if _, ok := expect[mode].scored[span]; !ok {
			c, chat := expect[mode].chats[span]
			t.Errorf("rows %+v for span %s (mode %q, a chat span: %v %+v), which should not be scored", rs, span, mode, chat, c)
		}
	}
	for _, mode := range instrumentedModes {
		for span, c := range expect[mode.name].scored {
			rs := bySpan[span]
			var evs []string
			for _, r := range rs {
				evs = append(evs, r.evaluator)
				if r.traceID != c.traceID || r.recordID != c.traceID+"-"+c.spanID || r.app != service || r.status != "ok" || r.model != c.respModel {
					t.Errorf("%s: row %+v; want trace %s, record id %s-%s, app %s, status ok, model %q (the response model judgesim, or %q where the events name none)",
						mode.name, r, c.traceID, c.traceID, c.spanID, service, c.respModel, consumer.DefaultOTLPUnknownModel)
				}
			}
			// The proto and the JSON copy of the call were both scored (stats.Scores); the
			// rows share their sorting key and FINAL keeps one per evaluator.
			if !slices.Equal(evs, evaluators) {
				t.Errorf("%s: span %s has rows for evaluators %v after FINAL, want one each of %v", mode.name, span, evs, evaluators)
			}
		}
	}
	if want := int(wantRecords) / 2 * len(evaluators); total != want {
		t.Errorf("%d rows after FINAL, want %d (one per scored call and evaluator)", total, want)
	}
	var raw uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".scores").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	t.Logf("raterd over %d captured messages: %d records, %d parts skipped, %d score rows written (%d stored before merges), %d after FINAL; scored per mode: %v",
		messages, stats.Records, stats.Skipped, stats.Scores, raw, total, instrumentedScored)
}
