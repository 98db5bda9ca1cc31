package genaitrace

import (
	"bytes"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestTracesDeterministic(t *testing.T) {
	o := Options{Service: "shop", Seed: 42, NonGenAI: 1}
	a, err := MarshalProto(Traces(o, Sample(5, 1)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := MarshalProto(Traces(o, Sample(5, 1)))
	if !bytes.Equal(a, b) {
		t.Fatal("same options, different bytes")
	}
	o.Seed = 43
	c, _ := MarshalProto(Traces(o, Sample(5, 1)))
	if bytes.Equal(a, c) {
		t.Fatal("another seed, same bytes")
	}
}

func TestTracesShape(t *testing.T) {
	chats := Sample(3, 9)
	chats[1].Context = nil
	td := Traces(Options{Service: "shop", Seed: 1, NonGenAI: 2, Structured: true}, chats)
	// Per chat: HTTP root, 2 database spans, a retrieval span when there is context, the chat.
	if n := td.SpanCount(); n != 3*4+2 {
		t.Fatalf("%d spans", n)
	}
	js, err := MarshalJSON(td)
	if err != nil {
		t.Fatal(err)
	}
	var u ptrace.JSONUnmarshaler
	back, err := u.UnmarshalTraces(js)
	if err != nil || back.SpanCount() != td.SpanCount() {
		t.Fatalf("JSON round trip: %v", err)
	}
	seen := map[string]bool{}
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := 0; i < spans.Len(); i++ {
		s := spans.At(i)
		id := s.TraceID().String() + "-" + s.SpanID().String()
		if seen[id] || s.TraceID().IsEmpty() || s.SpanID().IsEmpty() {
			t.Fatalf("span %d: id %s repeated or empty", i, id)
		}
		seen[id] = true
		if op, ok := s.Attributes().Get("gen_ai.operation.name"); ok && op.Str() == "chat" {
			if v, _ := s.Attributes().Get("gen_ai.input.messages"); v.Slice().Len() != 1 {
				t.Fatalf("structured input messages: %v", v.AsRaw())
			}
		}
	}
	for i := range chats {
		if !seen[RecordID(1, i)] {
			t.Fatalf("RecordID(1, %d) names no span", i)
		}
	}
}
