package consumer

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"raterd/record"
)

// OTLP logs (otlp_logs_proto, otlp_logs_json): GenAI events. The
// gen_ai.client.inference.operation.details event carries a whole model call in the same
// gen_ai.* attributes as a span and becomes one record; the older per-message events
// (gen_ai.system.message, gen_ai.user.message, gen_ai.assistant.message, gen_ai.tool.message,
// gen_ai.choice) of one span within one message are grouped into one record. An event and
// its span meet by id: both records get "<trace id>-<span id>" (docs/inputs.md).

// GenAI event names.
const (
	eventInferenceDetails = "gen_ai.client.inference.operation.details"
	eventSystemMessage    = "gen_ai.system.message"
	eventUserMessage      = "gen_ai.user.message"
	eventAssistantMessage = "gen_ai.assistant.message"
	eventToolMessage      = "gen_ai.tool.message"
	eventChoice           = "gen_ai.choice"
	// attrEventName carries the event name for emitters older than the LogRecord's
	// event_name field.
	attrEventName = "event.name"
)

// Skip reasons of the OTLP logs decoders.
const (
	// otlpSkipNotGenAIEvent: a log record that is no GenAI event raterd reads.
	otlpSkipNotGenAIEvent = "not_genai_event"
	// otlpSkipNoSpanContext: a per-message event without trace and span id, which cannot
	// be grouped with the other messages of its call.
	otlpSkipNoSpanContext = "no_span_context"
)

// decodeOTLPLogsProto is the FormatOTLPLogsProto decoder.
func decodeOTLPLogsProto(value []byte, _ record.Source, msgTime time.Time, lim Limits) (DecodeResult, error) {
	var u plog.ProtoUnmarshaler
	ld, err := u.UnmarshalLogs(value)
	if err != nil {
		return DecodeResult{}, &DecodeError{Reason: ReasonInvalidOTLP, Err: cleanErr(fmt.Errorf("not an OTLP LogsData in protobuf: %w", err))}
	}
	if len(value) > 0 && ld.ResourceLogs().Len() == 0 {
		return DecodeResult{}, errNoOTLPProto("LogsData")
	}
	return decodeLogs(ld, msgTime, lim)
}

// decodeOTLPLogsJSON is the FormatOTLPLogsJSON decoder.
func decodeOTLPLogsJSON(value []byte, _ record.Source, msgTime time.Time, lim Limits) (DecodeResult, error) {
	var u plog.JSONUnmarshaler
	ld, err := u.UnmarshalLogs(value)
	if err != nil {
		return DecodeResult{}, otlpJSONError("LogsData", value, err)
	}
	if ld.ResourceLogs().Len() == 0 {
		if err := otlpJSONNamesNothing(value, "resourceLogs", looksLikeOTLPLogsJSON); err != nil {
			return DecodeResult{}, err
		}
	}
	return decodeLogs(ld, msgTime, lim)
}

// spanKey identifies the span an event belongs to.
type spanKey struct {
	trace pcommon.TraceID
	span  pcommon.SpanID
}

// eventGroup gathers the per-message events of one span.
type eventGroup struct {
	key     spanKey
	res     pcommon.Resource
	scope   pcommon.InstrumentationScope
	first   uint64 // earliest event time, Unix nanoseconds
	facts   genaiFacts
	choice  int64 // index of the choice kept (the lowest)
	tooMany bool
}

// decodeLogs turns the GenAI events of ld into records.
func decodeLogs(ld plog.Logs, msgTime time.Time, lim Limits) (DecodeResult, error) {
	var res DecodeResult
	var groups []*eventGroup
	var byKey map[spanKey]*eventGroup
	total := 0
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			lrs := sl.LogRecords()
			total += lrs.Len()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				name := lr.EventName()
				if name == "" {
					if v, ok := lr.Attributes().Get(attrEventName); ok {
						name = v.Str()
					}
				}
				switch name {
				case eventInferenceDetails:
					var f genaiFacts
					f.scan(lr.Attributes())
					if lr.Body().Type() == pcommon.ValueTypeMap {
						f.scan(lr.Body().Map())
					}
					it := otlpItem{traceID: lr.TraceID(), spanID: lr.SpanID(), start: logTime(lr),
						res: rl.Resource(), scope: sl.Scope(), convention: conventionGenAIEvent}
					r, skip := buildRecord(&f, it, msgTime, lim)
					if skip != "" {
						res.Skip(skip)
						continue
					}
					res.Records = append(res.Records, r)
					if err := checkRecordCap(len(res.Records), lim); err != nil {
						return DecodeResult{}, err
					}
				case eventSystemMessage, eventUserMessage, eventAssistantMessage, eventToolMessage, eventChoice:
					key := spanKey{lr.TraceID(), lr.SpanID()}
					if key.trace.IsEmpty() || key.span.IsEmpty() {
						res.Skip(otlpSkipNoSpanContext)
						continue
					}
					g := byKey[key]
					if g == nil {
						if byKey == nil {
							byKey = map[spanKey]*eventGroup{}
						}
						g = &eventGroup{key: key, res: rl.Resource(), scope: sl.Scope(), choice: -1}
						g.facts.fromEvents = true
						byKey[key] = g
						groups = append(groups, g)
					}
					g.add(name, lr, lim)
				default:
					res.Skip(otlpSkipNotGenAIEvent)
				}
			}
		}
	}
	if total == 0 {
		res.Skip(otlpSkipEmptyExport)
	}
	for _, g := range groups {
		if g.tooMany {
			res.Skip(otlpSkipTooManyMessages)
			continue
		}
		it := otlpItem{traceID: g.key.trace, spanID: g.key.span, start: g.first,
			res: g.res, scope: g.scope, convention: conventionGenAIMessages}
		r, skip := buildRecord(&g.facts, it, msgTime, lim)
		if skip != "" {
			res.Skip(skip)
			continue
		}
		res.Records = append(res.Records, r)
		if err := checkRecordCap(len(res.Records), lim); err != nil {
			return DecodeResult{}, err
		}
	}
	return res, nil
}

// logTime is a log record's time: Timestamp, else ObservedTimestamp (0 when neither).
func logTime(lr plog.LogRecord) uint64 {
	if t := uint64(lr.Timestamp()); t != 0 {
		return t
	}
	return uint64(lr.ObservedTimestamp())
}

// add adds one per-message event to the group. Its attributes (gen_ai.system, and a model
// where an emitter adds one) go through the span scan; its body holds the message.
func (g *eventGroup) add(name string, lr plog.LogRecord, lim Limits) {
	if t := logTime(lr); t != 0 && (g.first == 0 || t < g.first) {
		g.first = t
	}
	g.facts.scan(lr.Attributes())
	if g.tooMany {
		return
	}
	var body pcommon.Map
	if lr.Body().Type() == pcommon.ValueTypeMap {
		body = lr.Body().Map()
	} else {
		body = pcommon.NewMap()
		if lr.Body().Type() == pcommon.ValueTypeStr {
			body.PutStr("content", lr.Body().Str())
		}
	}
	if name == eventChoice {
		idx := int64(0)
		if v, ok := body.Get("index"); ok {
			if n, ok := attrInt(v); ok {
				idx = n
			}
		}
		if g.choice >= 0 && idx >= g.choice {
			g.facts.choices++
			return
		}
		m := chatMsg{role: "assistant"}
		if v, ok := body.Get("finish_reason"); ok {
			m.finish = attrStr(v)
		}
		if v, ok := body.Get("message"); ok && v.Type() == pcommon.ValueTypeMap {
			eventMessage(v.Map(), &m)
		}
		eventMessage(body, &m) // tool_calls at the top level, as the conventions put them
		g.choice = idx
		g.facts.msgOut = []chatMsg{m}
		g.facts.choices++
		return
	}
	if lim.MaxMessagesPerRecord > 0 && len(g.facts.msgIn) >= lim.MaxMessagesPerRecord {
		g.tooMany = true
		g.facts.msgIn = nil
		return
	}
	m := chatMsg{role: name[len("gen_ai.") : len(name)-len(".message")]}
	eventMessage(body, &m)
	g.facts.msgIn = append(g.facts.msgIn, m)
}

// eventMessage reads the body of a per-message event (or a choice's message): role,
// content (a string, or a list of content parts whose text is kept) and tool_calls
// [{id, type, function: {name, arguments}}].
func eventMessage(body pcommon.Map, m *chatMsg) {
	for k, v := range body.All() {
		switch k {
		case "role":
			if s := attrStr(v); s != "" {
				m.role = s
			}
		case "content":
			m.text = joinText(m.text, bodyText(v))
		case "tool_calls":
			if v.Type() != pcommon.ValueTypeSlice {
				continue
			}
			s := v.Slice()
			for i := 0; i < s.Len() && len(m.calls) < otlpMaxToolCalls; i++ {
				if e := s.At(i); e.Type() == pcommon.ValueTypeMap {
					var c record.ToolCall
					if id, ok := e.Map().Get("id"); ok {
						c.ID = attrStr(id)
					}
					if fn, ok := e.Map().Get("function"); ok && fn.Type() == pcommon.ValueTypeMap {
						if n, ok := fn.Map().Get("name"); ok {
							c.Name = attrStr(n)
						}
						if a, ok := fn.Map().Get("arguments"); ok {
							c.Arguments = attrStr(a)
						}
					}
					if c.Name != "" || c.Arguments != "" {
						m.calls = append(m.calls, c)
					}
				}
			}
		}
	}
}

// bodyText reads a content value: a string (an OpenAI content-part list in JSON reduced to
// its text), or a structured list of parts whose "text" or "content" is kept.
func bodyText(v pcommon.Value) string {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return openAIContentText(v.Str())
	case pcommon.ValueTypeSlice:
		var text string
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			e := s.At(i)
			switch e.Type() {
			case pcommon.ValueTypeStr:
				text = joinText(text, e.Str())
			case pcommon.ValueTypeMap:
				if t, ok := e.Map().Get("text"); ok {
					text = joinText(text, attrStr(t))
				} else if t, ok := e.Map().Get("content"); ok {
					text = joinText(text, attrStr(t))
				}
			}
		}
		return text
	}
	return attrStr(v)
}
