package consumer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"raterd/record"
)

// OTLP traces (otlp_proto, otlp_json) as an OpenTelemetry Collector's Kafka exporter writes
// them: one TracesData per message, decoded with the Collector's pdata library. GenAI model
// calls become records; tool executions and agent invocations become trace parts (records
// that only complete their trace's agent run); every other span is skipped and counted.
// docs/inputs.md has the rules and field maps.

// ReasonInvalidOTLP: the message value is not an OTLP TracesData or LogsData that the
// Collector's pdata library reads (binary junk, a truncated export, a logs export on a
// traces topic). JSON that does not parse at all is ReasonInvalidJSON instead.
const ReasonInvalidOTLP = "invalid_otlp"

// Skip reasons of the OTLP decoders: stable snake_case strings (DecodeResult.Skipped).
const (
	// otlpSkipNotGenAISpan: a span of no GenAI convention (HTTP, database, …).
	otlpSkipNotGenAISpan = "not_genai_span"
	// otlpSkipNotGenAIOperation: a GenAI span that is neither a model call nor part of an
	// agent run (embeddings, an unknown operation, an OpenInference EMBEDDING span, a CHAIN
	// span that is not its trace's root, …).
	otlpSkipNotGenAIOperation = "not_genai_operation"
	// otlpSkipRetrievalContext: a retrieval span, read as context for the model calls of
	// its trace in the same message, not a record itself.
	otlpSkipRetrievalContext = "retrieval_context"
	// otlpSkipNoOutput: a model call without output content (content capture off, or the
	// content travels on a log event).
	otlpSkipNoOutput = "no_output"
	// otlpSkipNoModel: a model call without a model name (never a trace part).
	otlpSkipNoModel = "no_model"
	// otlpSkipTooManyMessages: more chat messages than Limits.MaxMessagesPerRecord.
	otlpSkipTooManyMessages = "too_many_messages"
	// otlpSkipInvalidMessages: a messages attribute that is neither JSON nor a structured
	// list of messages (e.g. truncated by an attribute length limit).
	otlpSkipInvalidMessages = "invalid_messages"
	// otlpSkipEmptyExport: an export with no span (or log record) at all.
	otlpSkipEmptyExport = "empty_export"
)

// GenAI operations raterd reads (gen_ai.operation.name): model calls, retrieval, tool
// execution and agent invocation.
const (
	opChat            = "chat"
	opTextCompletion  = "text_completion"
	opGenerateContent = "generate_content"
	opRetrieval       = "retrieval"
	opExecuteTool     = "execute_tool"
	opInvokeAgent     = "invoke_agent"
	opCreateAgent     = "create_agent"
)

// Values of Metadata["raterd.trace_part"]: what a trace part record stands for.
const (
	tracePartTool  = "tool"
	tracePartAgent = "agent"
)

// otlpSpanKind is what a span is to raterd.
type otlpSpanKind int

const (
	spanNotGenAI otlpSpanKind = iota
	spanModelCall
	spanRetrieval
	spanOtherGenAI
	// spanTool is a tool execution (execute_tool, OpenInference TOOL): a trace part.
	spanTool
	// spanAgent is an agent invocation (invoke_agent, create_agent, OpenInference AGENT):
	// a trace part.
	spanAgent
	// spanChain is an OpenInference CHAIN: a trace part when it is its trace's root (the
	// request an agent run answers), else skipped like other GenAI spans.
	spanChain
)

// classifySpan tells a model call from a retrieval, a tool execution, an agent invocation,
// another GenAI span or a span of no GenAI convention, in one pass over the attributes
// without allocating: gen_ai.operation.name first, then OpenLLMetry's llm.request.type,
// then openinference.span.kind; a span with gen_ai.request.model, gen_ai.provider.name or
// gen_ai.system and none of the three (the conventions before v1.27) is a model call.
func classifySpan(attrs pcommon.Map) otlpSpanKind {
	var op, reqType, oiKind string
	legacy := false
	for k, v := range attrs.All() {
		switch k {
		case attrGenAIOperation:
			op = v.Str()
		case attrOpenLLMetryRequest:
			reqType = v.Str()
		case attrOISpanKind:
			oiKind = v.Str()
		case attrGenAIRequestModel, attrGenAIProvider, attrGenAISystem:
			legacy = true
		}
	}
	switch {
	case op != "":
		switch op {
		case opChat, opTextCompletion, opGenerateContent:
			return spanModelCall
		case opRetrieval:
			return spanRetrieval
		case opExecuteTool:
			return spanTool
		case opInvokeAgent, opCreateAgent:
			return spanAgent
		}
		return spanOtherGenAI
	case reqType != "":
		if reqType == "chat" || reqType == "completion" {
			return spanModelCall
		}
		return spanOtherGenAI
	case oiKind != "":
		switch strings.ToUpper(oiKind) {
		case oiKindLLM:
			return spanModelCall
		case oiKindRetriever:
			return spanRetrieval
		case oiKindTool:
			return spanTool
		case oiKindAgent:
			return spanAgent
		case oiKindChain:
			return spanChain
		}
		return spanOtherGenAI
	case legacy:
		return spanModelCall
	}
	return spanNotGenAI
}

// decodeOTLPTracesProto is the FormatOTLPProto decoder.
func decodeOTLPTracesProto(value []byte, _ record.Source, msgTime time.Time, lim Limits) (DecodeResult, error) {
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(value)
	if err != nil {
		return DecodeResult{}, &DecodeError{Reason: ReasonInvalidOTLP, Err: cleanErr(fmt.Errorf("not an OTLP TracesData in protobuf: %w", err))}
	}
	if len(value) > 0 && td.ResourceSpans().Len() == 0 {
		return DecodeResult{}, errNoOTLPProto("TracesData")
	}
	return decodeTraces(td, msgTime, lim)
}

// decodeOTLPTracesJSON is the FormatOTLPJSON decoder.
func decodeOTLPTracesJSON(value []byte, _ record.Source, msgTime time.Time, lim Limits) (DecodeResult, error) {
	var u ptrace.JSONUnmarshaler
	td, err := u.UnmarshalTraces(value)
	if err != nil {
		return DecodeResult{}, otlpJSONError("TracesData", value, err)
	}
	if td.ResourceSpans().Len() == 0 {
		if err := otlpJSONNamesNothing(value, "resourceSpans", looksLikeOTLPTracesJSON); err != nil {
			return DecodeResult{}, err
		}
	}
	return decodeTraces(td, msgTime, lim)
}

// otlpJSONNamesNothing tells an empty export from a JSON object that is no export at all
// (pdata's JSON reader ignores unknown keys, so a raterd record on an otlp_json topic
// would read as an empty export): an object with keys but not the export's key is
// invalid_otlp, so that it is dead-lettered instead of skipped.
func otlpJSONNamesNothing(value []byte, key string, has func(map[string]json.RawMessage) bool) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(value, &obj); err != nil || len(obj) == 0 || has(obj) {
		return nil
	}
	return &DecodeError{Reason: ReasonInvalidOTLP, Err: fmt.Errorf("a JSON object without %q: not an OTLP/JSON export", key)}
}

// otlpJSONError classifies a pdata JSON error: invalid_json when the value is no JSON at
// all, else invalid_otlp.
func otlpJSONError(what string, value []byte, err error) error {
	if !json.Valid(value) {
		return &DecodeError{Reason: ReasonInvalidJSON, Err: cleanErr(fmt.Errorf("not JSON: %w", err))}
	}
	return &DecodeError{Reason: ReasonInvalidOTLP, Err: cleanErr(fmt.Errorf("not an OTLP %s in JSON: %w", what, err))}
}

// cleanErr keeps err unless its text is not valid UTF-8 (pdata may quote the input), in
// which case the text is repaired (and the chain is lost, which nothing inspects).
func cleanErr(err error) error {
	if msg := err.Error(); !utf8.ValidString(msg) {
		return errors.New(strings.ToValidUTF8(msg, "\uFFFD"))
	}
	return err
}

// spanRef points at one span of a message that becomes a record: a model call or a trace
// part.
type spanRef struct {
	res   pcommon.Resource
	scope pcommon.InstrumentationScope
	span  ptrace.Span
	kind  otlpSpanKind // spanModelCall, spanTool or spanAgent
}

// decodeTraces turns the model-call spans of td into records, and its tool and agent spans
// into trace parts. Pass one classifies every span and gathers the retrieved documents of
// each trace; pass two builds the records, so that a retrieval span after its model call in
// the batch still counts. At most lim.MaxRecordsPerMessage+1 records are built: one more is
// a dead letter anyway.
func decodeTraces(td ptrace.Traces, msgTime time.Time, lim Limits) (DecodeResult, error) {
	var res DecodeResult
	var calls []spanRef
	var docs map[pcommon.TraceID][]string
	total := 0
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			total += spans.Len()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				kind := classifySpan(span.Attributes())
				if kind == spanChain {
					kind = spanOtherGenAI
					if span.ParentSpanID().IsEmpty() {
						kind = spanAgent
					}
				}
				switch kind {
				case spanModelCall, spanTool, spanAgent:
					calls = append(calls, spanRef{res: rs.Resource(), scope: ss.Scope(), span: span, kind: kind})
				case spanRetrieval:
					res.Skip(otlpSkipRetrievalContext)
					if docs == nil {
						docs = map[pcommon.TraceID][]string{}
					}
					tid := span.TraceID()
					docs[tid] = retrievalDocs(span.Attributes(), docs[tid])
				case spanOtherGenAI:
					res.Skip(otlpSkipNotGenAIOperation)
				default:
					res.Skip(otlpSkipNotGenAISpan)
				}
			}
		}
	}
	if total == 0 {
		res.Skip(otlpSkipEmptyExport)
	}
	for _, c := range calls {
		var f genaiFacts
		f.scan(c.span.Attributes())
		it := otlpItem{
			traceID: c.span.TraceID(), spanID: c.span.SpanID(),
			start: uint64(c.span.StartTimestamp()), end: uint64(c.span.EndTimestamp()),
			res: c.res, scope: c.scope, docs: docs[c.span.TraceID()],
			root: c.span.ParentSpanID().IsEmpty(),
		}
		var r *record.Record
		var skip string
		switch c.kind {
		case spanTool:
			it.docs = nil
			r = buildToolRecord(&f, it, msgTime, lim)
		case spanAgent:
			it.part = tracePartAgent
			r, skip = buildRecord(&f, it, msgTime, lim)
		default:
			r, skip = buildRecord(&f, it, msgTime, lim)
		}
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

// checkRecordCap stops building records once a message holds more than the cap; the
// dispatcher dead-letters the message whole (the same error DecodeMessage would give).
func checkRecordCap(n int, lim Limits) error {
	if lim.MaxRecordsPerMessage > 0 && n > lim.MaxRecordsPerMessage {
		return &DecodeError{Reason: ReasonTooManyRecords,
			Err: fmt.Errorf("message yields more than %d records (kafka.max_records_per_message)", lim.MaxRecordsPerMessage)}
	}
	return nil
}

// retrievalDocs reads the documents of a retrieval span: gen_ai.retrieval.documents, else
// OpenInference's retrieval.documents.N.document.content.
func retrievalDocs(attrs pcommon.Map, docs []string) []string {
	if v, ok := attrs.Get(attrGenAIRetrievalDocs); ok {
		return retrievalDocsGenAI(v, docs)
	}
	var oi openInferenceFacts
	for k, v := range attrs.All() {
		if strings.HasPrefix(k, prefixOIRetrievalDocs) {
			oi.docs = appendFlat(oi.docs, k[len(prefixOIRetrievalDocs):], v)
		}
	}
	return openInferenceDocs(oi.docs, docs)
}

// otlpItem is what a span or log record gives a record besides its GenAI attributes.
type otlpItem struct {
	traceID    pcommon.TraceID
	spanID     pcommon.SpanID
	start, end uint64 // Unix nanoseconds; 0 unknown
	res        pcommon.Resource
	scope      pcommon.InstrumentationScope
	docs       []string // shared between the records of a trace: read only
	convention string   // set by the caller for events; else the family the content came from
	// part is set for a trace part (tracePartAgent, tracePartTool): a span decoded only to
	// complete its trace's agent run, which needs no output and no model.
	part string
	// root: the span has no parent (record.Record.TraceRoot). Always false for events.
	root bool
}

// genaiContent is the content of a model call (or an agent invocation): the input and
// output messages, or a prompt, and the convention family the output came from.
type genaiContent struct {
	in, out            []chatMsg
	prompt, convention string
}

// readContent reads the input and output of f, or says why they cannot be read
// (too_many_messages, invalid_messages).
func readContent(f *genaiFacts, maxMsgs int) (genaiContent, string) {
	var c genaiContent

	// Input: current conventions, else OpenLLMetry, else OpenInference.
	switch {
	case f.fromEvents:
		c.in = f.msgIn
	case f.hasInput:
		msgs, ok, tooMany := parseGenAIMessages(f.inputMsgs, maxMsgs)
		if tooMany {
			return c, otlpSkipTooManyMessages
		}
		if !ok {
			return c, otlpSkipInvalidMessages
		}
		c.in = msgs
	case len(f.olPrompt) > 0:
		groups, ok := groupFlat(f.olPrompt, maxMsgs)
		if !ok {
			return c, otlpSkipTooManyMessages
		}
		c.in = openLLMetryMessages(groups)
	case len(f.oi.input) > 0:
		groups, ok := groupFlat(f.oi.input, maxMsgs)
		if !ok {
			return c, otlpSkipTooManyMessages
		}
		c.in = openInferenceMessages(groups)
	default:
		c.prompt = f.oi.inputValue
	}

	// Output, in the same order; the first message is the response.
	switch {
	case f.fromEvents:
		c.out = f.msgOut
	case f.hasOutput:
		msgs, ok, tooMany := parseGenAIMessages(f.outputMsgs, maxMsgs)
		if tooMany {
			return c, otlpSkipTooManyMessages
		}
		if !ok {
			return c, otlpSkipInvalidMessages
		}
		c.out, c.convention = msgs, conventionGenAI
	case len(f.olCompletion) > 0:
		groups, ok := groupFlat(f.olCompletion, maxMsgs)
		if !ok {
			return c, otlpSkipTooManyMessages
		}
		c.out, c.convention = openLLMetryMessages(groups), conventionOpenLLMetry
	case len(f.oi.output) > 0:
		groups, ok := groupFlat(f.oi.output, maxMsgs)
		if !ok {
			return c, otlpSkipTooManyMessages
		}
		c.out, c.convention = openInferenceMessages(groups), conventionOpenInference
	case f.oi.outputValue != "":
		c.out, c.convention = []chatMsg{{role: "assistant", text: f.oi.outputValue}}, conventionOpenInference
	}
	return c, ""
}

// hasOutput tells whether the first output message has text or a tool call.
func (c *genaiContent) hasOutput() bool {
	return len(c.out) > 0 && (c.out[0].text != "" || len(c.out[0].calls) > 0)
}

// spanFamily is the convention family of a trace part without content: gen_ai when the
// span names a GenAI operation, else openinference.
func spanFamily(f *genaiFacts) string {
	if f.opName != "" {
		return conventionGenAI
	}
	return conventionOpenInference
}

// recordModel is the record's model, or the skip reason no_model. A model call without
// one gets lim.OTLPUnknownModel (skipped when that is ""); a trace part is never skipped
// for it and gets DefaultOTLPUnknownModel when the fallback is "" (skip).
func recordModel(f *genaiFacts, part bool, lim Limits) (model string, unknown bool, skip string) {
	model = firstNonEmpty(f.respModel, f.reqModel, f.oi.respModel, f.oi.model, f.oi.reqModel)
	if model != "" {
		return model, false, ""
	}
	if lim.OTLPUnknownModel == "" && !part {
		return "", true, otlpSkipNoModel
	}
	// The per-message events of opentelemetry-instrumentation-openai-v2's default mode
	// carry no model (it is on their span, in another message): scored under the fallback
	// name, and labelled so, rather than not at all. Tool spans name no model at all.
	return firstNonEmpty(lim.OTLPUnknownModel, DefaultOTLPUnknownModel), true, ""
}

// newOTLPRecord makes the fields every OTLP record has: ids, times, model, app,
// conversation, trace part and root.
func newOTLPRecord(f *genaiFacts, it otlpItem, msgTime time.Time, model string) *record.Record {
	r := &record.Record{
		Model:          model,
		TraceID:        it.traceID.String(),
		SpanID:         it.spanID.String(),
		Timestamp:      eventTime(it.start, msgTime),
		Latency:        spanLatency(it.start, it.end),
		ConversationID: firstNonEmpty(f.convID, f.sessionID),
		Context:        it.docs,
		TracePart:      it.part != "",
		TraceRoot:      it.root,
	}
	if r.TraceID != "" && r.SpanID != "" {
		r.ID = r.TraceID + "-" + r.SpanID
	}
	if v, ok := it.res.Attributes().Get("service.name"); ok {
		r.App = attrStr(v)
	}
	return r
}

// otlpMeta makes the Metadata every OTLP record has (docs/inputs.md, "Metadata").
func otlpMeta(f *genaiFacts, it otlpItem, convention, model string, modelUnknown bool) map[string]string {
	meta := map[string]string{"raterd.convention": convention}
	if modelUnknown {
		meta["raterd.model_unknown"] = "true"
	}
	putMeta(meta, "raterd.trace_part", it.part)
	putMeta(meta, "gen_ai.provider.name", firstNonEmpty(f.provider, f.system, f.oi.provider, f.oi.system))
	putMeta(meta, "gen_ai.operation.name", firstNonEmpty(f.opName, f.llmRequestType))
	if req := firstNonEmpty(f.reqModel, f.oi.reqModel); req != model {
		putMeta(meta, "gen_ai.request.model", req)
	}
	putMeta(meta, "gen_ai.response.id", f.respID)
	putMeta(meta, "gen_ai.agent.name", firstNonEmpty(f.agentName, f.oi.agent))
	putMeta(meta, "server.address", f.serverAddr)
	putMeta(meta, "user.id", f.userID)
	putMeta(meta, "otel.scope.name", it.scope.Name())
	for _, k := range []string{"service.version", "deployment.environment.name", "deployment.environment"} {
		if v, ok := it.res.Attributes().Get(k); ok {
			putMeta(meta, k, attrStr(v))
		}
	}
	return meta
}

// buildRecord makes the record of one model call (or agent invocation: it.part), or says
// why it is skipped. An agent invocation is a trace part: its content (the run's input and
// final answer) is carried when it has some, and it is never skipped, so that its trace's
// root is seen: content it cannot read is left out and named in
// Metadata["raterd.content_skipped"].
func buildRecord(f *genaiFacts, it otlpItem, msgTime time.Time, lim Limits) (*record.Record, string) {
	c, skip := readContent(f, lim.MaxMessagesPerRecord)
	var contentSkipped string
	if skip != "" {
		if it.part == "" {
			return nil, skip
		}
		c, contentSkipped = genaiContent{}, skip
	}
	if !c.hasOutput() {
		if it.part == "" {
			return nil, otlpSkipNoOutput
		}
		c.out = nil
	}
	convention := c.convention
	if it.convention != "" {
		convention = it.convention
	}
	if convention == "" {
		convention = spanFamily(f)
	}

	model, modelUnknown, skip := recordModel(f, it.part != "", lim)
	if skip != "" {
		return nil, skip
	}
	r := newOTLPRecord(f, it, msgTime, model)

	// System: the instructions, then the system messages of the history, which leave the
	// messages.
	var system string
	if f.hasSysInstr {
		system = parseSystemInstructions(f.sysInstr)
	}
	msgs := make([]record.Message, 0, len(c.in))
	for _, m := range c.in {
		if m.role == "system" || m.role == "developer" {
			system = joinText(system, m.text)
			continue
		}
		content := renderContent(m)
		if m.role == "" && content == "" {
			continue
		}
		msgs = append(msgs, record.Message{Role: m.role, Content: content})
	}
	r.System = system
	prompt := c.prompt
	if f.opName == opTextCompletion || f.llmRequestType == "completion" {
		// A completion has a prompt, not a conversation.
		for _, m := range msgs {
			prompt = joinText(prompt, m.Content)
		}
		msgs = nil
	}
	r.Prompt = prompt
	if len(msgs) > 0 {
		r.Messages = msgs
	}

	if len(c.out) > 0 {
		first := c.out[0]
		r.Response = first.text
		r.ToolCalls = first.calls
		r.FinishReason = first.finish
	}
	if r.FinishReason == "" && f.hasFinishReasons {
		r.FinishReason = firstFinishReason(f.finishReasons)
	}
	if r.FinishReason == "" {
		r.FinishReason = f.oi.finish
	}

	inTok, hasIn := f.inTokens, f.hasInTokens
	if !hasIn {
		inTok, hasIn = f.oi.promptTokens, f.oi.hasPromptTokens
	}
	outTok, hasOut := f.outTokens, f.hasOutTokens
	if !hasOut {
		outTok, hasOut = f.oi.completionTokens, f.oi.hasCompletionTokens
	}
	if hasIn || hasOut {
		r.Usage = &record.Usage{InputTokens: inTok, OutputTokens: outTok}
	}

	meta := otlpMeta(f, it, convention, model, modelUnknown)
	putMeta(meta, "raterd.content_skipped", contentSkipped)
	if n := max(len(c.out), f.choices); n > 1 {
		meta["gen_ai.output.choices"] = strconv.Itoa(n)
	}
	r.Metadata = meta
	sanitizeRecord(r)
	return r, ""
}

// buildToolRecord makes the trace part of one tool execution span: one tool call with its
// id, name, arguments and result (GenAI gen_ai.tool.*, else OpenInference tool.*,
// tool_call.*, input.value and output.value), each of the two texts clipped to
// otlpMaxToolText bytes (Metadata["raterd.tool_call.clipped"]). It has no response and is
// never skipped.
func buildToolRecord(f *genaiFacts, it otlpItem, msgTime time.Time, lim Limits) *record.Record {
	it.part = tracePartTool
	model, modelUnknown, _ := recordModel(f, true, lim)
	r := newOTLPRecord(f, it, msgTime, model)
	var args, result string
	if f.hasToolArgs {
		args = attrStr(f.toolArgs)
	}
	if f.hasToolResult {
		result = attrStr(f.toolResult)
	}
	args, clippedArgs := clipText(firstNonEmpty(args, f.oi.callArgs, f.oi.inputValue), otlpMaxToolText)
	result, clippedResult := clipText(firstNonEmpty(result, f.oi.outputValue), otlpMaxToolText)
	r.ToolCalls = []record.ToolCall{{
		ID:        firstNonEmpty(f.toolCallID, f.oi.callID, f.oi.toolID),
		Name:      firstNonEmpty(f.toolName, f.oi.toolName, f.oi.callName),
		Arguments: args,
		Result:    result,
	}}
	meta := otlpMeta(f, it, spanFamily(f), model, modelUnknown)
	putMeta(meta, "gen_ai.tool.type", f.toolType)
	putMeta(meta, "gen_ai.tool.description", firstNonEmpty(f.toolDesc, f.oi.toolDesc))
	if clippedArgs || clippedResult {
		meta["raterd.tool_call.clipped"] = "true"
	}
	r.Metadata = meta
	sanitizeRecord(r)
	return r
}

// renderContent is a message's content for record.Message: its text, then one line per
// tool call it made ("tool_call NAME(ARGUMENTS)").
func renderContent(m chatMsg) string {
	text := m.text
	for _, c := range m.calls {
		text = joinText(text, "tool_call "+c.Name+"("+c.Arguments+")")
	}
	return text
}

// putMeta sets a Metadata entry, clipped, when the value is not empty.
func putMeta(meta map[string]string, k, v string) {
	if v != "" {
		meta[k] = clipMeta(v)
	}
}

// firstNonEmpty returns the first non-empty string.
func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// eventTime is a record's event time from Unix nanoseconds: msgTime when 0 or past what
// the store holds (2106), and UnknownEventTime when msgTime is unusable too, as Decode
// does (fallbackEventTime).
func eventTime(ns uint64, msgTime time.Time) time.Time {
	if ns != 0 && ns/uint64(time.Second) <= maxEventUnix {
		return time.Unix(0, int64(ns)).UTC()
	}
	return fallbackEventTime(msgTime)
}

// spanLatency is end - start, or 0 when unknown, negative or past what the store holds.
func spanLatency(start, end uint64) time.Duration {
	if start == 0 || end <= start {
		return 0
	}
	d := end - start
	if d/uint64(time.Millisecond) > maxLatencyMS {
		return 0
	}
	return time.Duration(d)
}

// sanitizeRecord makes every string of r valid UTF-8 (Context is repaired when read).
func sanitizeRecord(r *record.Record) {
	for _, p := range []*string{&r.Model, &r.App, &r.Prompt, &r.Response, &r.System, &r.FinishReason, &r.ConversationID} {
		*p = validUTF8(*p)
	}
	for i := range r.Messages {
		r.Messages[i].Role = validUTF8(r.Messages[i].Role)
		r.Messages[i].Content = validUTF8(r.Messages[i].Content)
	}
	for i := range r.ToolCalls {
		c := &r.ToolCalls[i]
		c.ID, c.Name, c.Arguments, c.Result = validUTF8(c.ID), validUTF8(c.Name), validUTF8(c.Arguments), validUTF8(c.Result)
	}
}

// looksLikeOTLPTracesJSON tells an OTLP/JSON TracesData by its top-level key.
func looksLikeOTLPTracesJSON(obj map[string]json.RawMessage) bool {
	_, ok := obj["resourceSpans"]
	return ok
}

// looksLikeOTLPLogsJSON tells an OTLP/JSON LogsData by its top-level key.
func looksLikeOTLPLogsJSON(obj map[string]json.RawMessage) bool {
	_, ok := obj["resourceLogs"]
	return ok
}

// otlpProtoKind tells OTLP protobuf traces from logs by parsing: FormatOTLPProto,
// FormatOTLPLogsProto, or "" when neither parses. pdata checks wire types, so a LogsData
// with a log record does not parse as traces (a log record's time fields are fixed64, a
// span's ids are bytes; tested). An export that parses as both (empty, or resources
// without records) is traces unless only the logs reading finds records.
func otlpProtoKind(value []byte) string {
	var tu ptrace.ProtoUnmarshaler
	td, terr := tu.UnmarshalTraces(value)
	if terr == nil && td.SpanCount() > 0 {
		return FormatOTLPProto
	}
	var lu plog.ProtoUnmarshaler
	ld, lerr := lu.UnmarshalLogs(value)
	switch {
	case lerr == nil && ld.LogRecordCount() > 0:
		return FormatOTLPLogsProto
	case terr == nil && td.ResourceSpans().Len() > 0:
		return FormatOTLPProto
	case lerr == nil && ld.ResourceLogs().Len() > 0:
		return FormatOTLPLogsProto
	}
	// Nothing, or only fields neither message knows: pdata skips unknown fields, so short
	// text or another schema's protobuf would read as an empty export.
	return ""
}

// errNoOTLPProto is the dead letter of a non-empty value that holds no resource of the
// export: pdata skips unknown fields, so text or another schema's protobuf reads as an
// empty export, while a real empty export encodes to no bytes at all.
func errNoOTLPProto(what string) error {
	return &DecodeError{Reason: ReasonInvalidOTLP, Err: fmt.Errorf("no resource in %s: not an OTLP export in protobuf", what)}
}
