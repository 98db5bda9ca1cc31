package consumer

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"raterd/record"
)

// GenAI semantic conventions (v1.37 and later, with the older names that instrumentations
// still emit by default) and OpenLLMetry's indexed attributes, as the OTLP span and event
// decoders read them. docs/inputs.md has the field maps; openinference.go reads the
// OpenInference family.

// Attribute names of the GenAI semantic conventions.
const (
	attrGenAIOperation        = "gen_ai.operation.name"
	attrGenAIProvider         = "gen_ai.provider.name"
	attrGenAISystem           = "gen_ai.system" // v1.36 and older: the provider
	attrGenAIRequestModel     = "gen_ai.request.model"
	attrGenAIResponseModel    = "gen_ai.response.model"
	attrGenAIResponseID       = "gen_ai.response.id"
	attrGenAIConversationID   = "gen_ai.conversation.id"
	attrGenAIInputMessages    = "gen_ai.input.messages"
	attrGenAIOutputMessages   = "gen_ai.output.messages"
	attrGenAISystemInstr      = "gen_ai.system_instructions"
	attrGenAIInputTokens      = "gen_ai.usage.input_tokens"
	attrGenAIOutputTokens     = "gen_ai.usage.output_tokens"
	attrGenAIPromptTokens     = "gen_ai.usage.prompt_tokens"     // v1.36 and older
	attrGenAICompletionTokens = "gen_ai.usage.completion_tokens" // v1.36 and older
	attrGenAIFinishReasons    = "gen_ai.response.finish_reasons"
	attrGenAIAgentName        = "gen_ai.agent.name"
	attrGenAIToolName         = "gen_ai.tool.name"
	attrGenAIToolCallID       = "gen_ai.tool.call.id"
	attrGenAIToolCallArgs     = "gen_ai.tool.call.arguments" // opt-in (content)
	attrGenAIToolCallResult   = "gen_ai.tool.call.result"    // opt-in (content)
	attrGenAIToolType         = "gen_ai.tool.type"
	attrGenAIToolDescription  = "gen_ai.tool.description"
	attrGenAIRetrievalDocs    = "gen_ai.retrieval.documents"
	attrOpenLLMetryRequest    = "llm.request.type"
	attrServerAddress         = "server.address"
	attrSessionID             = "session.id"
	attrUserID                = "user.id"
	attrEnduserID             = "enduser.id"
	prefixOpenLLMetryPrompt   = "gen_ai.prompt."
	prefixOpenLLMetryComplete = "gen_ai.completion."
)

// Convention families, as Metadata["raterd.convention"] names the one a record's content
// came from.
const (
	conventionGenAI         = "gen_ai"
	conventionOpenLLMetry   = "openllmetry"
	conventionOpenInference = "openinference"
	conventionGenAIEvent    = "gen_ai_event"
	conventionGenAIMessages = "gen_ai_message_events"
)

// Bounds of what one record carries beyond the chat messages.
const (
	// otlpMaxMetaValue clips each Metadata value (bytes).
	otlpMaxMetaValue = 256
	// otlpMaxContextDocs caps the retrieved documents of one trace.
	otlpMaxContextDocs = 64
	// otlpMaxToolCalls caps the tool calls of one record.
	otlpMaxToolCalls = 64
	// otlpMaxToolText clips the arguments and the result of a tool execution span
	// (bytes each): a tool may return a whole web page.
	otlpMaxToolText = 64 << 10
)

// flatAttr is one attribute of an indexed family (gen_ai.prompt.N.*, llm.input_messages.N.*,
// retrieval.documents.N.*): the index and the rest of the key after it.
type flatAttr struct {
	idx  int
	tail string
	v    pcommon.Value
}

// genaiFacts collects, in one pass over a span's (or event's) attributes, everything the
// record is built from. Values are kept as pcommon.Value and read only once the span is
// known to be a record.
type genaiFacts struct {
	// Current conventions.
	inputMsgs, outputMsgs, sysInstr  pcommon.Value
	hasInput, hasOutput, hasSysInstr bool
	finishReasons                    pcommon.Value
	hasFinishReasons                 bool

	opName, reqModel, respModel, provider, system string
	convID, respID, agentName, serverAddr, userID string
	inTokens, outTokens                           int64
	hasInTokens, hasOutTokens                     bool

	sessionID string

	// Tool execution (execute_tool spans): the call's arguments and result may be any
	// AnyValue (a JSON string, or a structured map).
	toolName, toolCallID, toolType, toolDesc string
	toolArgs, toolResult                     pcommon.Value
	hasToolArgs, hasToolResult               bool

	// OpenLLMetry.
	llmRequestType         string
	olPrompt, olCompletion []flatAttr

	// OpenInference.
	oi openInferenceFacts

	// Per-message events (decode_otlp_logs.go): the messages, already read.
	fromEvents    bool
	msgIn, msgOut []chatMsg
	choices       int
}

// scan reads the attributes of m into f. It is called for a span's attributes, or for a log
// record's attributes and then its body map, so a later call only fills what is still empty.
func (f *genaiFacts) scan(m pcommon.Map) {
	for k, v := range m.All() {
		switch k {
		case attrGenAIInputMessages:
			if !f.hasInput {
				f.inputMsgs, f.hasInput = v, true
			}
		case attrGenAIOutputMessages:
			if !f.hasOutput {
				f.outputMsgs, f.hasOutput = v, true
			}
		case attrGenAISystemInstr:
			if !f.hasSysInstr {
				f.sysInstr, f.hasSysInstr = v, true
			}
		case attrGenAIFinishReasons:
			if !f.hasFinishReasons {
				f.finishReasons, f.hasFinishReasons = v, true
			}
		case attrGenAIOperation:
			setStr(&f.opName, v)
		case attrGenAIRequestModel:
			setStr(&f.reqModel, v)
		case attrGenAIResponseModel:
			setStr(&f.respModel, v)
		case attrGenAIProvider:
			setStr(&f.provider, v)
		case attrGenAISystem:
			setStr(&f.system, v)
		case attrGenAIConversationID:
			setStr(&f.convID, v)
		case attrGenAIResponseID:
			setStr(&f.respID, v)
		case attrGenAIAgentName:
			setStr(&f.agentName, v)
		case attrGenAIToolName:
			setStr(&f.toolName, v)
		case attrGenAIToolCallID:
			setStr(&f.toolCallID, v)
		case attrGenAIToolType:
			setStr(&f.toolType, v)
		case attrGenAIToolDescription:
			setStr(&f.toolDesc, v)
		case attrGenAIToolCallArgs:
			if !f.hasToolArgs {
				f.toolArgs, f.hasToolArgs = v, true
			}
		case attrGenAIToolCallResult:
			if !f.hasToolResult {
				f.toolResult, f.hasToolResult = v, true
			}
		case attrServerAddress:
			setStr(&f.serverAddr, v)
		case attrSessionID:
			setStr(&f.sessionID, v)
		case attrUserID, attrEnduserID:
			setStr(&f.userID, v)
		case attrGenAIInputTokens, attrGenAIPromptTokens:
			if n, ok := attrInt(v); ok && !f.hasInTokens {
				f.inTokens, f.hasInTokens = n, true
			}
		case attrGenAIOutputTokens, attrGenAICompletionTokens:
			if n, ok := attrInt(v); ok && !f.hasOutTokens {
				f.outTokens, f.hasOutTokens = n, true
			}
		case attrOpenLLMetryRequest:
			setStr(&f.llmRequestType, v)
		default:
			switch {
			case strings.HasPrefix(k, prefixOpenLLMetryPrompt):
				f.olPrompt = appendFlat(f.olPrompt, k[len(prefixOpenLLMetryPrompt):], v)
			case strings.HasPrefix(k, prefixOpenLLMetryComplete):
				f.olCompletion = appendFlat(f.olCompletion, k[len(prefixOpenLLMetryComplete):], v)
			default:
				f.oi.scan(k, v)
			}
		}
	}
}

// setStr sets *dst to v's text when dst is still empty.
func setStr(dst *string, v pcommon.Value) {
	if *dst != "" {
		return
	}
	if v.Type() == pcommon.ValueTypeStr {
		*dst = v.Str()
		return
	}
	switch v.Type() {
	case pcommon.ValueTypeInt, pcommon.ValueTypeDouble, pcommon.ValueTypeBool:
		*dst = v.AsString()
	}
}

// attrStr returns v's text: the string itself, or the AnyValue rendered as pdata renders it
// (JSON for maps and lists).
func attrStr(v pcommon.Value) string {
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	if v.Type() == pcommon.ValueTypeEmpty {
		return ""
	}
	return v.AsString()
}

// attrInt reads a token count: an int, a whole double or a decimal string; negatives are
// ignored.
func attrInt(v pcommon.Value) (int64, bool) {
	var n int64
	switch v.Type() {
	case pcommon.ValueTypeInt:
		n = v.Int()
	case pcommon.ValueTypeDouble:
		d := v.Double()
		if d != d || d < 0 || d > 1<<53 {
			return 0, false
		}
		n = int64(d)
	case pcommon.ValueTypeStr:
		p, err := strconv.ParseInt(v.Str(), 10, 64)
		if err != nil {
			return 0, false
		}
		n = p
	default:
		return 0, false
	}
	return n, n >= 0
}

// appendFlat adds an indexed attribute "N.rest" (key without the family's prefix).
func appendFlat(list []flatAttr, rest string, v pcommon.Value) []flatAttr {
	idx, tail, ok := splitIndex(rest)
	if !ok {
		return list
	}
	return append(list, flatAttr{idx: idx, tail: tail, v: v})
}

// splitIndex splits "N.rest" into N and rest. N has at most 9 digits (no overflow).
func splitIndex(s string) (int, string, bool) {
	i := 0
	n := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if i == 9 {
			return 0, "", false
		}
		n = n*10 + int(s[i]-'0')
		i++
	}
	if i == 0 || i == len(s) || s[i] != '.' {
		return 0, "", false
	}
	return n, s[i+1:], true
}

// groupFlat sorts an indexed family by index (stable, so attribute order breaks ties) and
// returns the groups, one per distinct index. ok is false when there are more than max groups
// (max 0: no limit).
func groupFlat(list []flatAttr, max int) ([][]flatAttr, bool) {
	if len(list) == 0 {
		return nil, true
	}
	slices.SortStableFunc(list, func(a, b flatAttr) int { return a.idx - b.idx })
	n := 1
	for i := 1; i < len(list); i++ {
		if list[i].idx != list[i-1].idx {
			n++
		}
	}
	if max > 0 && n > max {
		return nil, false
	}
	groups := make([][]flatAttr, 0, n)
	start := 0
	for i := 1; i <= len(list); i++ {
		if i == len(list) || list[i].idx != list[start].idx {
			groups = append(groups, list[start:i])
			start = i
		}
	}
	return groups, true
}

// chatMsg is one message of any convention, before it becomes a record.Message (input) or
// the response (output).
type chatMsg struct {
	role   string
	text   string
	calls  []record.ToolCall
	finish string
}

// msgPart is one part of a current-conventions message (gen-ai-input-messages.json).
type msgPart struct {
	typ, content, id, name, args, response string
}

// apply adds the part to m: text and tool call responses to the text, tool calls to the
// calls; other parts (reasoning, blob, file_data, uri, …) are not carried.
func (p msgPart) apply(m *chatMsg) {
	switch p.typ {
	case "text", "":
		m.text = joinText(m.text, p.content)
	case "tool_call":
		if len(m.calls) < otlpMaxToolCalls {
			m.calls = append(m.calls, record.ToolCall{ID: p.id, Name: p.name, Arguments: p.args})
		}
	case "tool_call_response":
		m.text = joinText(m.text, p.response)
	}
}

// joinText appends s to text, a newline between.
func joinText(text, s string) string {
	if s == "" {
		return text
	}
	if text == "" {
		return s
	}
	return text + "\n" + s
}

// parseGenAIMessages reads gen_ai.input.messages or gen_ai.output.messages: a JSON string
// or a structured AnyValue list of {role, parts, finish_reason}. ok is false when the value
// has neither shape; tooMany when it holds more than max messages (max 0: no limit).
func parseGenAIMessages(v pcommon.Value, max int) (msgs []chatMsg, ok, tooMany bool) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return parseGenAIMessagesJSON(v.Str(), max)
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		if max > 0 && s.Len() > max {
			return nil, true, true
		}
		msgs = make([]chatMsg, 0, s.Len())
		for i := 0; i < s.Len(); i++ {
			e := s.At(i)
			if e.Type() != pcommon.ValueTypeMap {
				return nil, false, false
			}
			msgs = append(msgs, anyValueMessage(e.Map()))
		}
		return msgs, true, false
	case pcommon.ValueTypeMap:
		return []chatMsg{anyValueMessage(v.Map())}, true, false
	}
	return nil, false, false
}

// anyValueMessage reads one structured message.
func anyValueMessage(m pcommon.Map) chatMsg {
	var msg chatMsg
	for k, v := range m.All() {
		switch k {
		case "role":
			msg.role = attrStr(v)
		case "finish_reason":
			msg.finish = attrStr(v)
		case "content": // tolerated: an OpenAI-shaped {role, content}
			msg.text = joinText(msg.text, attrStr(v))
		case "parts":
			if v.Type() != pcommon.ValueTypeSlice {
				continue
			}
			parts := v.Slice()
			for i := 0; i < parts.Len(); i++ {
				if p := parts.At(i); p.Type() == pcommon.ValueTypeMap {
					anyValuePart(p.Map()).apply(&msg)
				}
			}
		}
	}
	return msg
}

// anyValuePart reads one structured part.
func anyValuePart(m pcommon.Map) msgPart {
	var p msgPart
	for k, v := range m.All() {
		switch k {
		case "type":
			p.typ = attrStr(v)
		case "content":
			p.content = attrStr(v)
		case "id":
			p.id = attrStr(v)
		case "name":
			p.name = attrStr(v)
		case "arguments":
			p.args = attrStr(v)
		case "response", "result":
			if p.response == "" {
				p.response = attrStr(v)
			}
		}
	}
	return p
}

// jsonMessage is one message of the JSON-string form; every field is read tolerantly.
type jsonMessage struct {
	Role         json.RawMessage              `json:"role"`
	Parts        []map[string]json.RawMessage `json:"parts"`
	FinishReason json.RawMessage              `json:"finish_reason"`
	Content      json.RawMessage              `json:"content"`
}

// parseGenAIMessagesJSON reads the JSON-string form of a messages attribute.
func parseGenAIMessagesJSON(s string, max int) (msgs []chatMsg, ok, tooMany bool) {
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, false, false
	}
	if max > 0 && len(raw) > max {
		return nil, true, true
	}
	msgs = make([]chatMsg, 0, len(raw))
	for _, r := range raw {
		var jm jsonMessage
		if err := json.Unmarshal(r, &jm); err != nil {
			return nil, false, false
		}
		msg := chatMsg{role: rawText(jm.Role), finish: rawText(jm.FinishReason), text: rawText(jm.Content)}
		for _, part := range jm.Parts {
			resp := rawText(part["response"])
			if resp == "" {
				resp = rawText(part["result"])
			}
			msgPart{typ: rawText(part["type"]), content: rawText(part["content"]), id: rawText(part["id"]),
				name: rawText(part["name"]), args: rawText(part["arguments"]), response: resp}.apply(&msg)
		}
		msgs = append(msgs, msg)
	}
	return msgs, true, false
}

// rawText reads a JSON value as text: a string's contents, null as "", anything else as its
// JSON text (tool call arguments are usually objects).
func rawText(r json.RawMessage) string {
	if len(r) == 0 || string(r) == "null" {
		return ""
	}
	if r[0] == '"' {
		var s string
		if json.Unmarshal(r, &s) == nil {
			return s
		}
		return ""
	}
	return string(r)
}

// parseSystemInstructions reads gen_ai.system_instructions: a list of parts (JSON string or
// structured) whose text parts are joined; a string that is not JSON is taken as the text.
func parseSystemInstructions(v pcommon.Value) string {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		s := strings.TrimSpace(v.Str())
		if !strings.HasPrefix(s, "[") && !strings.HasPrefix(s, "{") {
			return v.Str()
		}
		var parts []map[string]json.RawMessage
		if json.Unmarshal([]byte(s), &parts) != nil {
			return v.Str()
		}
		var m chatMsg
		for _, p := range parts {
			msgPart{typ: rawText(p["type"]), content: rawText(p["content"])}.apply(&m)
		}
		return m.text
	case pcommon.ValueTypeSlice:
		var m chatMsg
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			if e := s.At(i); e.Type() == pcommon.ValueTypeMap {
				anyValuePart(e.Map()).apply(&m)
			} else if e.Type() == pcommon.ValueTypeStr {
				m.text = joinText(m.text, e.Str())
			}
		}
		return m.text
	}
	return attrStr(v)
}

// firstFinishReason reads gen_ai.response.finish_reasons (a string list; a JSON list or a
// plain string tolerated).
func firstFinishReason(v pcommon.Value) string {
	switch v.Type() {
	case pcommon.ValueTypeSlice:
		if v.Slice().Len() > 0 {
			return attrStr(v.Slice().At(0))
		}
	case pcommon.ValueTypeStr:
		s := v.Str()
		var list []string
		if strings.HasPrefix(s, "[") && json.Unmarshal([]byte(s), &list) == nil {
			if len(list) > 0 {
				return list[0]
			}
			return ""
		}
		return s
	}
	return ""
}

// openLLMetryMessages turns gen_ai.prompt.N.* or gen_ai.completion.N.* into messages: role,
// content (an OpenAI content-part list in JSON is reduced to its text), finish_reason,
// tool_calls.M.{id,name,arguments}.
func openLLMetryMessages(groups [][]flatAttr) []chatMsg {
	msgs := make([]chatMsg, 0, len(groups))
	for _, g := range groups {
		var m chatMsg
		var calls []flatAttr
		for _, a := range g {
			switch a.tail {
			case "role":
				m.role = attrStr(a.v)
			case "content":
				m.text = joinText(m.text, openAIContentText(attrStr(a.v)))
			case "finish_reason":
				m.finish = attrStr(a.v)
			default:
				if rest, ok := strings.CutPrefix(a.tail, "tool_calls."); ok {
					calls = appendFlat(calls, rest, a.v)
				}
			}
		}
		m.calls = flatToolCalls(calls, func(tail string) string {
			switch tail {
			case "id", "name", "arguments":
				return tail
			}
			return ""
		})
		msgs = append(msgs, m)
	}
	return msgs
}

// flatToolCalls groups tool-call attributes by index; field maps an attribute tail to id,
// name or arguments ("" ignores it).
func flatToolCalls(list []flatAttr, field func(tail string) string) []record.ToolCall {
	groups, _ := groupFlat(list, 0)
	var calls []record.ToolCall
	for _, g := range groups {
		if len(calls) == otlpMaxToolCalls {
			break
		}
		var c record.ToolCall
		for _, a := range g {
			switch field(a.tail) {
			case "id":
				c.ID = attrStr(a.v)
			case "name":
				c.Name = attrStr(a.v)
			case "arguments":
				c.Arguments = attrStr(a.v)
			}
		}
		if c.Name != "" || c.Arguments != "" {
			calls = append(calls, c)
		}
	}
	return calls
}

// openAIContentText reduces an OpenAI content-part list written as JSON
// ([{"type":"text","text":"…"}, …]) to its text; anything else is returned as is.
func openAIContentText(s string) string {
	if !strings.HasPrefix(s, "[{") {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal([]byte(s), &parts) != nil {
		return s
	}
	var text string
	for _, p := range parts {
		if p.Type == "text" || p.Type == "input_text" || p.Type == "output_text" {
			text = joinText(text, p.Text)
		}
	}
	if text == "" {
		return s
	}
	return text
}

// retrievalDocsGenAI reads gen_ai.retrieval.documents (a list of {id, score, content, …}, as
// JSON or structured): the contents, in order.
func retrievalDocsGenAI(v pcommon.Value, docs []string) []string {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		var list []map[string]json.RawMessage
		if json.Unmarshal([]byte(v.Str()), &list) != nil {
			return docs
		}
		for _, d := range list {
			if len(docs) == otlpMaxContextDocs {
				break
			}
			if c := rawText(d["content"]); c != "" {
				docs = append(docs, validUTF8(c))
			}
		}
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		for i := 0; i < s.Len() && len(docs) < otlpMaxContextDocs; i++ {
			if e := s.At(i); e.Type() == pcommon.ValueTypeMap {
				if c, ok := e.Map().Get("content"); ok && attrStr(c) != "" {
					docs = append(docs, validUTF8(attrStr(c)))
				}
			}
		}
	}
	return docs
}

// validUTF8 replaces invalid UTF-8 with U+FFFD (sinks expect valid UTF-8).
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// clipMeta makes a Metadata value: valid UTF-8, at most otlpMaxMetaValue bytes, cut at a
// rune boundary.
func clipMeta(s string) string {
	s, _ = clipText(s, otlpMaxMetaValue)
	return s
}

// clipText makes s valid UTF-8 of at most n bytes, cut at a rune boundary; clipped says
// whether anything was cut.
func clipText(s string, n int) (_ string, clipped bool) {
	s = validUTF8(s)
	if len(s) <= n {
		return s, false
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut], true
}
