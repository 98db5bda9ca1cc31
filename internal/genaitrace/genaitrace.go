// Package genaitrace builds realistic OTLP traces of GenAI model calls, following the
// current OpenTelemetry GenAI semantic conventions (gen_ai.input.messages and friends,
// v1.37 and later), for demos, benchmarks and tests: one trace per chat with an HTTP server
// root span, an optional retrieval span holding the chat's context documents, the chat
// span itself and a few more non-GenAI spans. Trace and span ids derive from a seed, so the
// same options give the same bytes.
package genaitrace

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"raterd/record"
)

// Chat is one model call: what the chat span records.
type Chat struct {
	// Model is the model asked for and answering (gen_ai.request.model and
	// gen_ai.response.model).
	Model string
	// Provider is gen_ai.provider.name (e.g. openai); empty: openai.
	Provider string
	// System is the system instruction (gen_ai.system_instructions); empty: none.
	System string
	// History are earlier turns of the conversation (user, assistant, tool…), recorded
	// before the user message in gen_ai.input.messages; empty: none.
	History []Message
	// Prompt is the user message; empty with a History: the input messages are the
	// History alone.
	Prompt string
	// Response is the assistant's answer; empty: the span carries no output messages.
	Response string
	// Context are documents a retrieval span of the same trace returned; empty: no
	// retrieval span.
	Context []string
	// ConversationID is gen_ai.conversation.id; empty: none.
	ConversationID string
	// InputTokens and OutputTokens are the usage (gen_ai.usage.*); 0: not recorded.
	InputTokens, OutputTokens int64
	// FinishReason is the output message's finish_reason; empty: stop.
	FinishReason string
	// ResponseID is gen_ai.response.id; empty: chatcmpl-N, N the chat's index.
	ResponseID string
}

// Message is one turn of a Chat's History.
type Message struct {
	Role    string
	Content string
}

// Options shape a batch of traces.
type Options struct {
	// Service is the resource's service.name.
	Service string
	// Seed derives every trace and span id (IDs).
	Seed uint64
	// First is the index of the first chat: chat k of the slice gets the ids and the
	// start time of chat First+k, so that batches built apart (one per message, say)
	// never share ids. 0: the chats are numbered from 0.
	First int
	// Start is the start time of chat 0, later chats one second apart; zero:
	// 2026-01-01T00:00:00Z.
	Start time.Time
	// Latency is each model call's duration; 0: 800 ms.
	Latency time.Duration
	// NonGenAI is the number of non-GenAI spans per trace besides the HTTP root (database
	// queries); negative: no HTTP root either.
	NonGenAI int
	// Structured records the messages as structured attribute values (lists of maps), as
	// the conventions recommend, instead of JSON strings, as most SDKs still do.
	Structured bool
}

// Scope is the instrumentation scope name of the spans built here.
const Scope = "raterd/internal/genaitrace"

// Span roles within a chat's trace, as IDs numbers them.
const (
	spanRoot = iota
	spanChat
	spanRetrieval
	spanOther // and up
)

// IDs returns the trace id of chat i and the span id of its chat span: the record id a
// decoder gives it is trace hex "-" span hex (RecordID).
func IDs(seed uint64, i int) (pcommon.TraceID, pcommon.SpanID) {
	return traceID(seed, i), spanID(seed, i, spanChat)
}

// RecordID is the record id raterd's OTLP decoders give chat i.
func RecordID(seed uint64, i int) string {
	t, s := IDs(seed, i)
	return t.String() + "-" + s.String()
}

// splitmix64 is a fixed mixing function (no state): distinct inputs, well-spread outputs.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func traceID(seed uint64, i int) pcommon.TraceID {
	var id [16]byte
	h := splitmix64(seed ^ splitmix64(uint64(i)))
	binary.BigEndian.PutUint64(id[:8], h)
	binary.BigEndian.PutUint64(id[8:], splitmix64(h))
	return id
}

func spanID(seed uint64, i, role int) pcommon.SpanID {
	var id [8]byte
	h := splitmix64(splitmix64(seed^splitmix64(uint64(i))) + uint64(role) + 1)
	if h == 0 {
		h = 1
	}
	binary.BigEndian.PutUint64(id[:], h)
	return id
}

// newExport starts an export of o's traces: one resource (service.name o.Service) and
// scope, whose span slice it returns, with o's start time and model-call latency or their
// defaults (2026-01-01T00:00:00Z, 800 ms).
func newExport(o Options) (td ptrace.Traces, spans ptrace.SpanSlice, start time.Time, latency time.Duration) {
	td = ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", o.Service)
	rs.Resource().Attributes().PutStr("telemetry.sdk.language", "go")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(Scope)
	start = o.Start
	if start.IsZero() {
		start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	latency = o.Latency
	if latency <= 0 {
		latency = 800 * time.Millisecond
	}
	return td, ss.Spans(), start, latency
}

// Traces builds one trace per chat, all under one resource (service.name o.Service) and
// scope, in chat order; chat k is chat o.First+k to IDs and RecordID.
func Traces(o Options, chats []Chat) ptrace.Traces {
	td, spans, start, latency := newExport(o)
	for k, c := range chats {
		i := o.First + k
		t0 := start.Add(time.Duration(i) * time.Second)
		tid := traceID(o.Seed, i)
		root := spanID(o.Seed, i, spanRoot)
		parent := root
		at := t0
		if o.NonGenAI >= 0 {
			s := spans.AppendEmpty()
			setSpan(s, tid, root, pcommon.SpanID{}, "POST /v1/answer", ptrace.SpanKindServer, t0, t0.Add(latency+200*time.Millisecond))
			s.Attributes().PutStr("http.request.method", "POST")
			s.Attributes().PutStr("http.route", "/v1/answer")
			s.Attributes().PutInt("http.response.status_code", 200)
			at = t0.Add(5 * time.Millisecond)
		} else {
			parent = pcommon.SpanID{}
		}
		for k := 0; k < o.NonGenAI; k++ {
			s := spans.AppendEmpty()
			setSpan(s, tid, spanID(o.Seed, i, spanOther+k), parent, "SELECT documents", ptrace.SpanKindClient, at, at.Add(3*time.Millisecond))
			s.Attributes().PutStr("db.system.name", "postgresql")
			s.Attributes().PutStr("db.operation.name", "SELECT")
		}
		if len(c.Context) > 0 {
			s := spans.AppendEmpty()
			setSpan(s, tid, spanID(o.Seed, i, spanRetrieval), parent, "retrieval docs", ptrace.SpanKindClient, at, at.Add(20*time.Millisecond))
			s.Attributes().PutStr("gen_ai.operation.name", "retrieval")
			s.Attributes().PutStr("gen_ai.data_source.id", "docs")
			docs := make([]map[string]any, len(c.Context))
			for j, d := range c.Context {
				docs[j] = map[string]any{"id": fmt.Sprintf("doc-%d", j), "score": 1 - float64(j)/10, "content": d}
			}
			putAny(s.Attributes(), "gen_ai.retrieval.documents", docs, o.Structured)
			at = at.Add(20 * time.Millisecond)
		}
		s := spans.AppendEmpty()
		setSpan(s, tid, spanID(o.Seed, i, spanChat), parent, "chat "+c.Model, ptrace.SpanKindClient, at, at.Add(latency))
		chatAttributes(s.Attributes(), c, i, o.Structured)
	}
	return td
}

// TracesByService builds one trace per chat as Traces does, grouped by service into one
// resource each (service.name services[k] for chats[k]; o.Service is not used), services
// in order of first appearance and chats in order within one, as a Collector's batch of
// several services' exports is. Chat k of the grouped order is chat o.First+k to IDs and
// RecordID. services must be as long as chats.
func TracesByService(o Options, chats []Chat, services []string) ptrace.Traces {
	if len(services) != len(chats) {
		panic(fmt.Sprintf("genaitrace: %d services for %d chats", len(services), len(chats)))
	}
	var order []string
	byService := map[string][]Chat{}
	for k, c := range chats {
		if _, ok := byService[services[k]]; !ok {
			order = append(order, services[k])
		}
		byService[services[k]] = append(byService[services[k]], c)
	}
	td := ptrace.NewTraces()
	for _, svc := range order {
		group := byService[svc]
		p := o
		p.Service = svc
		Traces(p, group).ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
		o.First += len(group)
	}
	return td
}

// FromRecord returns the chat a GenAI chat span records for a raterd record, so that
// raterd's OTLP decoders give back the same model, system prompt, prompt or messages,
// response, context, conversation, finish reason and usage (the app becomes the
// resource's service.name: see TracesByService). A record with a Prompt keeps its Prompt
// (record.Record.PromptText ignores its Messages too); one with Messages has its system
// and developer messages joined into System (after r.System, one per line), as the
// decoders read them back, the others as History, and a last user message as the Prompt.
// The record id travels as gen_ai.response.id (the decoded record's id is trace-span).
// Reference, Candidates, Metadata and TraceID have no place in the conventions and are
// left out.
func FromRecord(r *record.Record) Chat {
	c := Chat{
		Model: r.Model, System: r.System, Prompt: r.Prompt, Response: r.Response, Context: r.Context,
		ConversationID: r.ConversationID, FinishReason: r.FinishReason, ResponseID: r.ID,
	}
	if r.Usage != nil {
		c.InputTokens, c.OutputTokens = r.Usage.InputTokens, r.Usage.OutputTokens
	}
	if r.Prompt != "" {
		return c
	}
	for _, m := range r.Messages {
		switch m.Role {
		case "system", "developer":
			if c.System != "" && m.Content != "" {
				c.System += "\n"
			}
			c.System += m.Content
		default:
			c.History = append(c.History, Message{Role: m.Role, Content: m.Content})
		}
	}
	if n := len(c.History); n > 0 && c.History[n-1].Role == "user" {
		c.Prompt = c.History[n-1].Content
		c.History = c.History[:n-1]
	}
	return c
}

func setSpan(s ptrace.Span, tid pcommon.TraceID, sid, parent pcommon.SpanID, name string, kind ptrace.SpanKind, start, end time.Time) {
	s.SetTraceID(tid)
	s.SetSpanID(sid)
	if !parent.IsEmpty() {
		s.SetParentSpanID(parent)
	}
	s.SetName(name)
	s.SetKind(kind)
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
}

// chatAttributes writes the current GenAI conventions of one chat span.
func chatAttributes(a pcommon.Map, c Chat, i int, structured bool) {
	provider := c.Provider
	if provider == "" {
		provider = "openai"
	}
	finish := c.FinishReason
	if finish == "" {
		finish = "stop"
	}
	a.PutStr("gen_ai.operation.name", "chat")
	a.PutStr("gen_ai.provider.name", provider)
	a.PutStr("gen_ai.request.model", c.Model)
	a.PutStr("gen_ai.response.model", c.Model)
	respID := c.ResponseID
	if respID == "" {
		respID = fmt.Sprintf("chatcmpl-%d", i)
	}
	a.PutStr("gen_ai.response.id", respID)
	if c.ConversationID != "" {
		a.PutStr("gen_ai.conversation.id", c.ConversationID)
	}
	if c.InputTokens > 0 {
		a.PutInt("gen_ai.usage.input_tokens", c.InputTokens)
	}
	if c.OutputTokens > 0 {
		a.PutInt("gen_ai.usage.output_tokens", c.OutputTokens)
	}
	a.PutEmptySlice("gen_ai.response.finish_reasons").AppendEmpty().SetStr(finish)
	if c.System != "" {
		putAny(a, "gen_ai.system_instructions", []map[string]any{{"type": "text", "content": c.System}}, structured)
	}
	input := make([]map[string]any, 0, len(c.History)+1)
	for _, m := range c.History {
		input = append(input, map[string]any{"role": m.Role, "parts": []any{map[string]any{"type": "text", "content": m.Content}}})
	}
	if c.Prompt != "" || len(c.History) == 0 {
		input = append(input, map[string]any{"role": "user", "parts": []any{map[string]any{"type": "text", "content": c.Prompt}}})
	}
	putAny(a, "gen_ai.input.messages", input, structured)
	if c.Response != "" {
		putAny(a, "gen_ai.output.messages", []map[string]any{
			{"role": "assistant", "parts": []any{map[string]any{"type": "text", "content": c.Response}}, "finish_reason": finish},
		}, structured)
	}
}

// putAny records v as a JSON string, or as a structured value.
func putAny(a pcommon.Map, key string, v []map[string]any, structured bool) {
	if !structured {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err) // maps of strings and numbers always marshal
		}
		a.PutStr(key, string(b))
		return
	}
	list := a.PutEmptySlice(key)
	list.EnsureCapacity(len(v))
	for _, m := range v {
		setRaw(list.AppendEmpty(), m)
	}
}

// setRaw sets dst to x as pcommon.Value.FromRaw does, but with map keys in sorted order,
// so that equal values marshal to equal bytes (Go's map order is random).
func setRaw(dst pcommon.Value, x any) {
	switch x := x.(type) {
	case map[string]any:
		m := dst.SetEmptyMap()
		m.EnsureCapacity(len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			setRaw(m.PutEmpty(k), x[k])
		}
	case []any:
		s := dst.SetEmptySlice()
		s.EnsureCapacity(len(x))
		for _, e := range x {
			setRaw(s.AppendEmpty(), e)
		}
	default:
		if err := dst.FromRaw(x); err != nil {
			panic(err) // strings, numbers, booleans and nil are valid raw values
		}
	}
}

// MarshalProto encodes td as the Collector's Kafka exporter does with encoding otlp_proto.
func MarshalProto(td ptrace.Traces) ([]byte, error) {
	var m ptrace.ProtoMarshaler
	b, err := m.MarshalTraces(td)
	if err != nil {
		return nil, fmt.Errorf("genaitrace: marshal otlp_proto: %w", err)
	}
	return b, nil
}

// MarshalJSON encodes td as the Collector's Kafka exporter does with encoding otlp_json.
func MarshalJSON(td ptrace.Traces) ([]byte, error) {
	var m ptrace.JSONMarshaler
	b, err := m.MarshalTraces(td)
	if err != nil {
		return nil, fmt.Errorf("genaitrace: marshal otlp_json: %w", err)
	}
	return b, nil
}

// Sample returns n varied, realistic chats (support questions over a small product
// knowledge base), the same for the same n and seed.
func Sample(n int, seed uint64) []Chat {
	models := []string{"gpt-4o-mini", "claude-sonnet-4", "gemini-2.5-flash", "llama-3.3-70b"}
	providers := []string{"openai", "anthropic", "gcp.gemini", "groq"}
	topics := []struct{ q, a, doc string }{
		{"How do I reset my password?", "Open Settings > Security, choose Reset password and follow the e-mailed link.", "Passwords are reset from Settings > Security; a link valid for 30 minutes is e-mailed."},
		{"What is the refund window?", "You can ask for a refund within 30 days of purchase.", "Refunds are granted within 30 days of purchase, on the original payment method."},
		{"Can I export my data?", "Yes: Settings > Data > Export writes a ZIP of all your records.", "Settings > Data > Export produces a ZIP archive with every record in CSV."},
		{"Which regions do you host in?", "We host in eu-west-1 and us-east-1.", "Customer data is stored in eu-west-1 (EU) or us-east-1 (US), chosen at sign-up."},
	}
	chats := make([]Chat, n)
	for i := range chats {
		h := splitmix64(seed ^ splitmix64(uint64(i)+0x5eed))
		m := int(h % uint64(len(models)))
		t := topics[int(h>>8)%len(topics)]
		chats[i] = Chat{
			Model:          models[m],
			Provider:       providers[m],
			System:         "You are a concise support assistant. Answer from the context only.",
			Prompt:         fmt.Sprintf("%s (ticket %d)", t.q, i),
			Response:       t.a,
			Context:        []string{t.doc},
			ConversationID: fmt.Sprintf("conv-%d", h%1000),
			InputTokens:    int64(40 + h%200),
			OutputTokens:   int64(10 + (h>>16)%120),
		}
	}
	return chats
}
