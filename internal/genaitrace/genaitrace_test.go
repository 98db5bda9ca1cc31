package genaitrace

import (
	"bytes"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"raterd/record"
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

func TestTracesFirstHistoryAndResponseID(t *testing.T) {
	chats := Sample(3, 9)
	chats[2].History = []Message{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "hello"}}
	chats[2].ResponseID = "req-7"
	td := Traces(Options{Service: "shop", Seed: 5, First: 10, NonGenAI: -1}, chats)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	if spans.Len() != 3*2 {
		t.Fatalf("%d spans, want 6 (retrieval and chat per chat)", spans.Len())
	}
	var chatSpans []ptrace.Span
	for i := 0; i < spans.Len(); i++ {
		if op, _ := spans.At(i).Attributes().Get("gen_ai.operation.name"); op.Str() == "chat" {
			chatSpans = append(chatSpans, spans.At(i))
		}
	}
	for k, s := range chatSpans {
		if id := s.TraceID().String() + "-" + s.SpanID().String(); id != RecordID(5, 10+k) {
			t.Errorf("chat %d: id %s, want RecordID(5, %d) %s", k, id, 10+k, RecordID(5, 10+k))
		}
	}
	a := chatSpans[2].Attributes()
	if v, _ := a.Get("gen_ai.response.id"); v.Str() != "req-7" {
		t.Errorf("response id %q", v.Str())
	}
	if v, _ := a.Get("gen_ai.input.messages"); !bytes.Contains([]byte(v.Str()), []byte(`"role":"assistant"`)) ||
		!bytes.HasSuffix([]byte(v.Str()), []byte(`"role":"user"}]`)) {
		t.Errorf("input messages %s", v.Str())
	}
	if v, _ := chatSpans[0].Attributes().Get("gen_ai.response.id"); v.Str() != "chatcmpl-10" {
		t.Errorf("default response id %q", v.Str())
	}
}

func TestFromRecord(t *testing.T) {
	c := FromRecord(&record.Record{ID: "r1", Model: "m", Prompt: "p", Messages: []record.Message{{Role: "user", Content: "ignored"}}, Response: "a",
		Usage: &record.Usage{InputTokens: 3, OutputTokens: 4}})
	if c.Prompt != "p" || len(c.History) != 0 || c.ResponseID != "r1" || c.InputTokens != 3 || c.OutputTokens != 4 {
		t.Errorf("prompt record: %+v", c)
	}
	c = FromRecord(&record.Record{Model: "m", System: "s0", Response: "a", Messages: []record.Message{
		{Role: "system", Content: "s1"}, {Role: "user", Content: "u1"}, {Role: "assistant", Content: "a1"}, {Role: "user", Content: "u2"}}})
	if c.System != "s0\ns1" || c.Prompt != "u2" || len(c.History) != 2 || c.History[1] != (Message{Role: "assistant", Content: "a1"}) {
		t.Errorf("chat record: %+v", c)
	}
	c = FromRecord(&record.Record{Model: "m", Response: "a", Messages: []record.Message{{Role: "user", Content: "u1"}, {Role: "assistant", Content: "a1"}}})
	if c.Prompt != "" || len(c.History) != 2 {
		t.Errorf("a transcript ending on the assistant keeps every turn as history: %+v", c)
	}
}

func TestTracesByServiceGroupsAndNumbers(t *testing.T) {
	chats := Sample(5, 3)
	td := TracesByService(Options{Seed: 2, First: 7, NonGenAI: -1}, chats, []string{"a", "b", "a", "", "b"})
	rss := td.ResourceSpans()
	if rss.Len() != 3 {
		t.Fatalf("%d resources, want 3 (a, b, empty)", rss.Len())
	}
	k := 7
	for i, want := range []string{"a", "b", ""} {
		rs := rss.At(i)
		if v, _ := rs.Resource().Attributes().Get("service.name"); v.Str() != want {
			t.Errorf("resource %d: service.name %q, want %q", i, v.Str(), want)
		}
		spans := rs.ScopeSpans().At(0).Spans()
		for j := 0; j < spans.Len(); j++ {
			s := spans.At(j)
			if op, _ := s.Attributes().Get("gen_ai.operation.name"); op.Str() != "chat" {
				continue
			}
			if id := s.TraceID().String() + "-" + s.SpanID().String(); id != RecordID(2, k) {
				t.Errorf("chat %d: id %s, want RecordID(2, %d)", k, id, k)
			}
			k++
		}
	}
	if k != 7+len(chats) {
		t.Errorf("%d chats numbered, want %d", k-7, len(chats))
	}
}
