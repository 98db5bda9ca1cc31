package genaitrace

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// agentSpans returns the spans of td's only resource and scope.
func agentSpans(t *testing.T, td ptrace.Traces) ptrace.SpanSlice {
	t.Helper()
	if td.ResourceSpans().Len() != 1 || td.ResourceSpans().At(0).ScopeSpans().Len() != 1 {
		t.Fatalf("%d resources, want 1 with one scope", td.ResourceSpans().Len())
	}
	return td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
}

func str(s ptrace.Span, key string) string {
	v, ok := s.Attributes().Get(key)
	if !ok {
		return ""
	}
	return v.AsString()
}

// messages decodes a JSON-string messages attribute.
func messages(t *testing.T, s ptrace.Span, key string) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(str(s, key)), &out); err != nil {
		t.Fatalf("%s of %s: %v", key, s.Name(), err)
	}
	return out
}

func TestAgentRunsShape(t *testing.T) {
	runs := SampleAgentRuns(12, 3)
	o := Options{Service: "agents", Seed: 7, First: 4, Latency: 600 * time.Millisecond}
	td := AgentRuns(o, runs)
	if n := td.SpanCount(); n != AgentSpans*len(runs) {
		t.Fatalf("%d spans, want %d", n, AgentSpans*len(runs))
	}
	spans := agentSpans(t, td)
	byTrace := map[pcommon.TraceID][]ptrace.Span{}
	var traces []pcommon.TraceID
	for i := 0; i < spans.Len(); i++ {
		s := spans.At(i)
		if _, ok := byTrace[s.TraceID()]; !ok {
			traces = append(traces, s.TraceID())
		}
		byTrace[s.TraceID()] = append(byTrace[s.TraceID()], s)
	}
	if len(traces) != len(runs) {
		t.Fatalf("%d traces, want one per run (%d)", len(traces), len(runs))
	}
	spanIDs := map[pcommon.SpanID]bool{}
	for k, tid := range traces {
		run := runs[k]
		ss := byTrace[tid]
		wantTID, wantRoot := AgentIDs(o.Seed, o.First+k)
		if tid != wantTID {
			t.Fatalf("run %d: trace %s, want AgentIDs' %s", k, tid, wantTID)
		}
		if chatTID, _ := IDs(o.Seed, o.First+k); chatTID == tid {
			t.Fatalf("run %d: agent trace id equals Traces' chat trace id", k)
		}
		names := make([]string, len(ss))
		for j, s := range ss {
			names[j] = s.Name()
			if spanIDs[s.SpanID()] || s.SpanID().IsEmpty() {
				t.Fatalf("run %d: span id %s empty or repeated", k, s.SpanID())
			}
			spanIDs[s.SpanID()] = true
		}
		wantNames := []string{"chat " + run.Model, "execute_tool " + run.ToolName, "chat " + run.Model, "invoke_agent " + run.Agent}
		if strings.Join(names, "|") != strings.Join(wantNames, "|") {
			t.Fatalf("run %d: spans %q, want %q", k, names, wantNames)
		}
		call, tool, answer, root := ss[0], ss[1], ss[2], ss[3]
		// The root has no parent; the others are its children, nested in its time.
		if !root.ParentSpanID().IsEmpty() || root.SpanID() != wantRoot {
			t.Fatalf("run %d: root parent %s, id %s (want %s)", k, root.ParentSpanID(), root.SpanID(), wantRoot)
		}
		for _, c := range ss[:3] {
			if c.ParentSpanID() != root.SpanID() {
				t.Fatalf("run %d: %s has parent %s, want the root %s", k, c.Name(), c.ParentSpanID(), root.SpanID())
			}
			if c.StartTimestamp() <= root.StartTimestamp() || c.EndTimestamp() >= root.EndTimestamp() || c.EndTimestamp() <= c.StartTimestamp() {
				t.Fatalf("run %d: %s [%v, %v] not inside the root [%v, %v]", k, c.Name(), c.StartTimestamp(), c.EndTimestamp(), root.StartTimestamp(), root.EndTimestamp())
			}
		}
		if !(call.EndTimestamp() < tool.StartTimestamp() && tool.EndTimestamp() < answer.StartTimestamp()) {
			t.Fatalf("run %d: chat, tool and answer overlap", k)
		}
		wantStart := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(o.First+k) * time.Second)
		if got := root.StartTimestamp().AsTime(); !got.Equal(wantStart) {
			t.Fatalf("run %d: starts %s, want %s", k, got, wantStart)
		}

		// Attributes.
		for _, tt := range []struct {
			span      ptrace.Span
			key, want string
		}{
			{root, "gen_ai.operation.name", "invoke_agent"},
			{root, "gen_ai.agent.name", run.Agent},
			{root, "gen_ai.conversation.id", run.ConversationID},
			{call, "gen_ai.operation.name", "chat"},
			{call, "gen_ai.request.model", run.Model},
			{call, "gen_ai.provider.name", run.Provider},
			{tool, "gen_ai.operation.name", "execute_tool"},
			{tool, "gen_ai.tool.name", run.ToolName},
			{tool, "gen_ai.tool.type", "function"},
			{tool, "gen_ai.tool.call.arguments", run.ToolArgs},
			{tool, "gen_ai.tool.call.result", run.ToolResult},
			{answer, "gen_ai.operation.name", "chat"},
		} {
			if got := str(tt.span, tt.key); got != tt.want {
				t.Errorf("run %d: %s %s = %q, want %q", k, tt.span.Name(), tt.key, got, tt.want)
			}
		}
		callID := str(tool, "gen_ai.tool.call.id")
		if !strings.HasPrefix(callID, "call_") {
			t.Fatalf("run %d: tool call id %q", k, callID)
		}
		if wantErr := run.ToolError; (tool.Status().Code() == ptrace.StatusCodeError) != wantErr || (str(tool, "error.type") != "") != wantErr {
			t.Errorf("run %d: tool error %v, span status %v", k, wantErr, tool.Status().Code())
		}

		// The first chat asks for the tool with the call id; the last reads its response.
		out := messages(t, call, "gen_ai.output.messages")
		part := out[0]["parts"].([]any)[0].(map[string]any)
		if part["type"] != "tool_call" || part["id"] != callID || part["name"] != run.ToolName || out[0]["finish_reason"] != "tool_call" {
			t.Fatalf("run %d: first chat output %v", k, out)
		}
		if _, isObject := part["arguments"].(map[string]any); isObject == (run.Kind == AgentBadArguments) {
			t.Fatalf("run %d (%s): tool call arguments %v", k, run.Kind, part["arguments"])
		}
		in := messages(t, answer, "gen_ai.input.messages")
		if len(in) != 3 || in[0]["role"] != "user" || in[1]["role"] != "assistant" || in[2]["role"] != "tool" {
			t.Fatalf("run %d: last chat input %v", k, in)
		}
		resp := in[2]["parts"].([]any)[0].(map[string]any)
		if resp["type"] != "tool_call_response" || resp["id"] != callID || resp["response"] != run.ToolResult {
			t.Fatalf("run %d: tool call response part %v", k, resp)
		}
		for _, s := range []ptrace.Span{answer, root} {
			out := messages(t, s, "gen_ai.output.messages")
			if text := out[0]["parts"].([]any)[0].(map[string]any)["content"]; text != run.Answer {
				t.Fatalf("run %d: %s output %v, want the answer %q", k, s.Name(), text, run.Answer)
			}
		}
	}
}

func TestAgentRunsRoundTripAndDeterminism(t *testing.T) {
	runs := SampleAgentRuns(20, 1)
	tests := []struct {
		name string
		o    Options
	}{
		{"json strings", Options{Service: "agents", Seed: 1}},
		{"structured", Options{Service: "agents", Seed: 1, Structured: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := MarshalProto(AgentRuns(tt.o, runs))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := MarshalProto(AgentRuns(tt.o, runs))
			if !bytes.Equal(a, b) {
				t.Fatal("equal options, different bytes")
			}
			var u ptrace.ProtoUnmarshaler
			back, err := u.UnmarshalTraces(a)
			if err != nil {
				t.Fatal(err)
			}
			if back.SpanCount() != AgentSpans*len(runs) {
				t.Fatalf("%d spans after the round trip, want %d", back.SpanCount(), AgentSpans*len(runs))
			}
			again, _ := MarshalProto(back)
			if !bytes.Equal(a, again) {
				t.Fatal("re-marshalled bytes differ")
			}
			o := tt.o
			o.Seed++
			if c, _ := MarshalProto(AgentRuns(o, runs)); bytes.Equal(a, c) {
				t.Fatal("another seed, same bytes")
			}
		})
	}
}

// numbers are the numeric tokens of a text: dates whole, amounts with their decimals.
var numbers = regexp.MustCompile(`\d{4}-\d{2}-\d{2}|\d+(?:\.\d+)?`)

func TestSampleAgentRuns(t *testing.T) {
	const n = 200
	runs := SampleAgentRuns(n, 5)
	if again := SampleAgentRuns(n, 5); len(again) != n || again[17] != runs[17] || again[n-1] != runs[n-1] {
		t.Fatal("not deterministic")
	}
	got := map[string]int{}
	for i, r := range runs {
		got[r.Kind]++
		if r.Agent == "" || r.Model == "" || r.Question == "" || r.ToolName == "" || r.Answer == "" || r.ToolResult == "" {
			t.Fatalf("run %d: empty field: %+v", i, r)
		}
		inResult := map[string]bool{}
		for _, x := range numbers.FindAllString(r.ToolResult, -1) {
			inResult[x] = true
		}
		var missing []string
		for _, x := range numbers.FindAllString(r.Answer, -1) {
			if !inResult[x] {
				missing = append(missing, x)
			}
		}
		validArgs := json.Valid([]byte(r.ToolArgs))
		switch r.Kind {
		case AgentGrounded:
			if len(missing) > 0 || r.ToolError || !validArgs {
				t.Errorf("run %d grounded: numbers %v not in the result %s", i, missing, r.ToolResult)
			}
		case AgentUngrounded:
			if len(missing) == 0 || r.ToolError || !validArgs {
				t.Errorf("run %d ungrounded: every number of %q is in the result %s", i, r.Answer, r.ToolResult)
			}
		case AgentToolError:
			if !r.ToolError || !strings.HasPrefix(r.ToolResult, "error: ") || !validArgs || strings.Contains(strings.ToLower(r.Answer), "sorry") {
				t.Errorf("run %d tool error: %+v", i, r)
			}
		case AgentBadArguments:
			if validArgs || !r.ToolError {
				t.Errorf("run %d bad arguments: %q is valid JSON", i, r.ToolArgs)
			}
		default:
			t.Fatalf("run %d: kind %q", i, r.Kind)
		}
	}
	want := AgentKindCounts(n)
	if want[AgentGrounded] != 100 || want[AgentUngrounded] != 40 || want[AgentToolError] != 30 || want[AgentBadArguments] != 30 {
		t.Fatalf("AgentKindCounts(%d) = %v", n, want)
	}
	for k, c := range want {
		if got[k] != c {
			t.Errorf("%d %s runs, want %d", got[k], k, c)
		}
	}
	if len(SampleAgentRuns(0, 1)) != 0 || len(SampleAgentRuns(-3, 1)) != 0 {
		t.Fatal("runs for n <= 0")
	}
}

// Structured attribute values are built with sorted map keys, so they marshal to the
// same bytes every time (Go's map order is random).
func TestStructuredDeterministic(t *testing.T) {
	o := Options{Service: "shop", Seed: 3, NonGenAI: 1, Structured: true}
	chats, runs := Sample(10, 2), SampleAgentRuns(10, 2)
	a, _ := MarshalProto(Traces(o, chats))
	b, _ := MarshalProto(AgentRuns(o, runs))
	for range 10 {
		if c, _ := MarshalProto(Traces(o, chats)); !bytes.Equal(a, c) {
			t.Fatal("Traces: equal options, different bytes")
		}
		if c, _ := MarshalProto(AgentRuns(o, runs)); !bytes.Equal(b, c) {
			t.Fatal("AgentRuns: equal options, different bytes")
		}
	}
}

func BenchmarkAgentRunsProto(b *testing.B) {
	runs := SampleAgentRuns(100, 1)
	o := Options{Service: "agents", Seed: 1}
	for b.Loop() {
		if _, err := MarshalProto(AgentRuns(o, runs)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(runs))*float64(b.N)/b.Elapsed().Seconds(), "runs/s")
}
