package consumer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"raterd/internal/text"
	"raterd/record"
)

// The openai format (FormatOpenAI, docs/inputs.md "## openai") is one JSON object per
// message, the envelope an API gateway logs for one OpenAI call:
//
//	{"id": "…", "timestamp": "RFC 3339" | unix seconds, "app": "…",
//	 "metadata": {"k": "v"}, "latency_ms": 12.5, "conversation_id": "…",
//	 "request": {…the request body…}, "response": {…the response body…}}
//
// Only request and response are required. Both the Chat Completions API (request.messages,
// response.choices) and the Responses API (request.instructions and input,
// response.output) are read; unknown fields are ignored.

// openAIEnvelope is the openai format's top level.
type openAIEnvelope struct {
	ID             string            `json:"id"`
	Timestamp      json.RawMessage   `json:"timestamp"`
	App            string            `json:"app"`
	Metadata       map[string]string `json:"metadata"`
	LatencyMS      *float64          `json:"latency_ms"`
	ConversationID string            `json:"conversation_id"`
	Request        *openAIRequest    `json:"request"`
	Response       *openAIResponse   `json:"response"`
}

// openAIRequest is the part of a Chat Completions or Responses API request body raterd
// reads.
type openAIRequest struct {
	Model    string              `json:"model"`
	Messages []openAIChatMessage `json:"messages"`
	// Instructions is the Responses API system prompt (a string).
	Instructions json.RawMessage `json:"instructions"`
	// Input is the Responses API input: a string or a list of items.
	Input    json.RawMessage   `json:"input"`
	Metadata map[string]string `json:"metadata"`
}

// openAIChatMessage is one Chat Completions message, of a request or a response choice.
type openAIChatMessage struct {
	Role       string           `json:"role"`
	Content    json.RawMessage  `json:"content"`
	Refusal    *string          `json:"refusal"`
	ToolCalls  []openAIToolCall `json:"tool_calls"`
	ToolCallID string           `json:"tool_call_id"`
}

// openAIToolCall is one Chat Completions tool call.
type openAIToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// openAIItem is one Responses API input or output item: a message (role, content), a
// function_call (call_id, name, arguments) or a function_call_output (call_id, output).
type openAIItem struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Output    json.RawMessage `json:"output"`
}

// openAIResponse is the part of a Chat Completions or Responses API response body raterd
// reads.
type openAIResponse struct {
	ID     string `json:"id"`
	Object string `json:"object"`
	Model  string `json:"model"`
	// Created is the Chat Completions creation time, unix seconds.
	Created *int64 `json:"created"`
	// CreatedAt is the Responses API creation time, unix seconds (some SDKs write a float).
	CreatedAt *float64       `json:"created_at"`
	Choices   []openAIChoice `json:"choices"`
	// Output is the Responses API output; Status and IncompleteDetails say how it ended.
	Output            []openAIItem `json:"output"`
	Status            string       `json:"status"`
	IncompleteDetails *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
	Usage *openAIUsage    `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// openAIChoice is one Chat Completions choice (or a legacy completion's, with Text).
type openAIChoice struct {
	Message      *openAIChatMessage `json:"message"`
	Text         *string            `json:"text"`
	FinishReason string             `json:"finish_reason"`
}

// openAIUsage holds both APIs' token counts (Chat Completions: prompt_tokens and
// completion_tokens; Responses API: input_tokens and output_tokens).
type openAIUsage struct {
	PromptTokens     *int64 `json:"prompt_tokens"`
	CompletionTokens *int64 `json:"completion_tokens"`
	InputTokens      *int64 `json:"input_tokens"`
	OutputTokens     *int64 `json:"output_tokens"`
}

// decodeOpenAI is the FormatOpenAI decoder: one record per message, or none when the
// logged call failed (skip reason failed_call) or had not finished (not_finished).
func decodeOpenAI(value []byte, _ record.Source, msgTime time.Time, lim Limits) (DecodeResult, error) {
	var env openAIEnvelope
	if err := oaUnmarshalObject(value, &env); err != nil {
		return DecodeResult{}, err
	}
	if env.Response == nil {
		return DecodeResult{}, &DecodeError{Reason: ReasonMissingField, Field: "response", Err: errors.New("the openai format needs the logged response")}
	}
	if env.Request == nil {
		env.Request = &openAIRequest{}
	}
	var res DecodeResult
	if skip := openAIResponseSkip(env.Response); skip != "" {
		res.Skip(skip)
		return res, nil
	}
	r := &record.Record{
		ID:             env.ID,
		App:            env.App,
		ConversationID: env.ConversationID,
	}
	if r.ID == "" {
		r.ID = env.Response.ID
	}
	r.Model = env.Response.Model
	if r.Model == "" {
		r.Model = env.Request.Model
	}
	if r.Model == "" {
		return DecodeResult{}, &DecodeError{Reason: ReasonMissingField, Field: "response.model", Err: errors.New("neither response.model nor request.model names the model")}
	}
	if err := openAIMapRequest(env.Request, r, lim); err != nil {
		return DecodeResult{}, err
	}
	if err := openAIMapResponse(env.Response, "response", r); err != nil {
		return DecodeResult{}, err
	}
	r.Metadata = openAIMetadata(env.Request.Metadata, env.Metadata)
	if env.LatencyMS != nil {
		lat, err := oaLatency(*env.LatencyMS, "latency_ms")
		if err != nil {
			return DecodeResult{}, err
		}
		r.Latency = lat
	}
	ts, err := openAITimestamp(env.Timestamp, env.Response, msgTime)
	if err != nil {
		return DecodeResult{}, err
	}
	r.Timestamp = ts
	res.Records = []*record.Record{r}
	return res, nil
}

// openAIResponseSkip names the skip reason of a response that holds no answer: an error
// body, or a Responses API response that failed, was cancelled or has not finished.
func openAIResponseSkip(resp *openAIResponse) string {
	switch resp.Status {
	case "failed", "cancelled":
		return "failed_call"
	case "queued", "in_progress":
		return "not_finished"
	}
	if resp.Choices == nil && resp.Output == nil && len(resp.Error) > 0 && !bytes.Equal(resp.Error, []byte("null")) {
		return "failed_call"
	}
	return ""
}

// openAIMetadata merges the request's metadata and the envelope's (which wins); nil when
// both are empty.
func openAIMetadata(fromRequest, fromEnvelope map[string]string) map[string]string {
	if len(fromRequest)+len(fromEnvelope) == 0 {
		return nil
	}
	md := make(map[string]string, len(fromRequest)+len(fromEnvelope))
	for k, v := range fromRequest {
		md[k] = v
	}
	for k, v := range fromEnvelope {
		md[k] = v
	}
	return md
}

// openAIMapRequest reads the request's conversation into r: request.messages (Chat
// Completions) or request.instructions and request.input (Responses API).
func openAIMapRequest(req *openAIRequest, r *record.Record, lim Limits) error {
	if req.Messages != nil {
		return oaChatMessages(req.Messages, "request.messages", r, lim)
	}
	if err := openAIInstructions(req.Instructions, r); err != nil {
		return err
	}
	return oaResponsesInput(req.Input, "request.input", r, lim)
}

// openAIInstructions reads the Responses API instructions (a string, or a list of input
// items) into r.System.
func openAIInstructions(raw json.RawMessage, r *record.Record) error {
	if oaIsNull(raw) {
		return nil
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return &DecodeError{Reason: ReasonInvalidField, Field: "request.instructions", Err: fmt.Errorf("not a string: %w", err)}
		}
		r.System = s
		return nil
	}
	// The Response object echoes instructions as input items; treat them like input.
	tmp := &record.Record{}
	if err := oaResponsesInput(raw, "request.instructions", tmp, Limits{}); err != nil {
		return err
	}
	parts := []string{tmp.System}
	for _, m := range tmp.Messages {
		parts = append(parts, m.Content)
	}
	r.System = oaJoin(parts, "\n\n")
	return nil
}

// oaChatMessages maps Chat Completions messages: system and developer messages to
// System, the others to Messages (assistant messages that only call tools are left out of
// Messages), assistant tool calls to ToolCalls and tool messages to their call's Result.
func oaChatMessages(msgs []openAIChatMessage, field string, r *record.Record, lim Limits) error {
	if lim.MaxMessagesPerRecord > 0 && len(msgs) > lim.MaxMessagesPerRecord {
		return &DecodeError{Reason: ReasonInvalidField, Field: field,
			Err: fmt.Errorf("%d messages exceed kafka.max_messages_per_record (%d)", len(msgs), lim.MaxMessagesPerRecord)}
	}
	var system []string
	for i, m := range msgs {
		f := fmt.Sprintf("%s[%d].content", field, i)
		content, err := oaContentText(m.Content, f)
		if err != nil {
			return err
		}
		switch m.Role {
		case "system", "developer":
			system = append(system, content)
			continue
		case "tool", "function":
			oaSetToolResult(r, m.ToolCallID, content)
		case "assistant":
			for _, tc := range m.ToolCalls {
				r.ToolCalls = append(r.ToolCalls, record.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
			}
			if content == "" && m.Refusal != nil {
				content = *m.Refusal
			}
			if content == "" && len(m.ToolCalls) > 0 {
				continue
			}
		case "":
			return &DecodeError{Reason: ReasonMissingField, Field: fmt.Sprintf("%s[%d].role", field, i)}
		}
		r.Messages = append(r.Messages, record.Message{Role: m.Role, Content: content})
	}
	r.System = oaJoin(append([]string{r.System}, system...), "\n\n")
	return nil
}

// oaResponsesInput maps the Responses API input: a string (one user message) or a
// list of items (messages, function calls and their outputs).
func oaResponsesInput(raw json.RawMessage, field string, r *record.Record, lim Limits) error {
	if oaIsNull(raw) {
		return nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return &DecodeError{Reason: ReasonInvalidField, Field: field, Err: fmt.Errorf("not a string: %w", err)}
		}
		r.Messages = append(r.Messages, record.Message{Role: "user", Content: s})
		return nil
	}
	var items []openAIItem
	if err := json.Unmarshal(raw, &items); err != nil {
		return oaFieldTypeError(field, "a string or a list of input items", err)
	}
	if lim.MaxMessagesPerRecord > 0 && len(items) > lim.MaxMessagesPerRecord {
		return &DecodeError{Reason: ReasonInvalidField, Field: field,
			Err: fmt.Errorf("%d items exceed kafka.max_messages_per_record (%d)", len(items), lim.MaxMessagesPerRecord)}
	}
	var system []string
	for i, it := range items {
		switch it.Type {
		case "function_call":
			r.ToolCalls = append(r.ToolCalls, record.ToolCall{ID: it.CallID, Name: it.Name, Arguments: it.Arguments})
		case "function_call_output":
			out, err := oaContentText(it.Output, fmt.Sprintf("%s[%d].output", field, i))
			if err != nil {
				return err
			}
			oaSetToolResult(r, it.CallID, out)
			r.Messages = append(r.Messages, record.Message{Role: "tool", Content: out})
		case "", "message":
			content, err := oaContentText(it.Content, fmt.Sprintf("%s[%d].content", field, i))
			if err != nil {
				return err
			}
			switch it.Role {
			case "system", "developer":
				system = append(system, content)
			case "":
				return &DecodeError{Reason: ReasonMissingField, Field: fmt.Sprintf("%s[%d].role", field, i)}
			default:
				r.Messages = append(r.Messages, record.Message{Role: it.Role, Content: content})
			}
		}
		// Other items (reasoning, built-in tool calls, item references) carry nothing
		// a judge reads.
	}
	r.System = oaJoin(append([]string{r.System}, system...), "\n\n")
	return nil
}

// openAIMapResponse maps a Chat Completions response (choices[0]) or a Responses API
// response (output) into r: Response, ToolCalls, FinishReason and Usage. field names the
// response in errors.
func openAIMapResponse(resp *openAIResponse, field string, r *record.Record) error {
	switch {
	case resp.Choices != nil:
		if len(resp.Choices) == 0 {
			return &DecodeError{Reason: ReasonMissingField, Field: field + ".choices", Err: errors.New("no choice")}
		}
		c := resp.Choices[0]
		r.FinishReason = c.FinishReason
		switch {
		case c.Message != nil:
			content, err := oaContentText(c.Message.Content, field+".choices[0].message.content")
			if err != nil {
				return err
			}
			if content == "" && c.Message.Refusal != nil {
				content = *c.Message.Refusal
			}
			r.Response = content
			for _, tc := range c.Message.ToolCalls {
				r.ToolCalls = append(r.ToolCalls, record.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
			}
		case c.Text != nil:
			r.Response = *c.Text
		default:
			return &DecodeError{Reason: ReasonMissingField, Field: field + ".choices[0].message"}
		}
	case resp.Output != nil || resp.Object == "response":
		var texts []string
		calls := false
		for i, it := range resp.Output {
			switch it.Type {
			case "message":
				t, err := oaContentText(it.Content, fmt.Sprintf("%s.output[%d].content", field, i))
				if err != nil {
					return err
				}
				texts = append(texts, t)
			case "function_call":
				calls = true
				r.ToolCalls = append(r.ToolCalls, record.ToolCall{ID: it.CallID, Name: it.Name, Arguments: it.Arguments})
			}
		}
		r.Response = oaJoin(texts, "\n\n")
		r.FinishReason = oaFinishReason(resp, calls)
	default:
		return &DecodeError{Reason: ReasonMissingField, Field: field + ".choices", Err: errors.New("the response has neither choices (Chat Completions) nor output (Responses API)")}
	}
	if u := resp.Usage; u != nil {
		in, out := oaFirstInt(u.PromptTokens, u.InputTokens), oaFirstInt(u.CompletionTokens, u.OutputTokens)
		if in < 0 || out < 0 {
			return &DecodeError{Reason: ReasonInvalidField, Field: field + ".usage", Err: fmt.Errorf("negative token count (%d, %d)", in, out)}
		}
		if in > 0 || out > 0 {
			r.Usage = &record.Usage{InputTokens: in, OutputTokens: out}
		}
	}
	return nil
}

// oaFinishReason puts a Responses API status in Chat Completions terms: completed
// is stop (tool_calls when the output calls functions), incomplete is the
// incomplete_details reason (max_output_tokens as length); other statuses are kept.
func oaFinishReason(resp *openAIResponse, calls bool) string {
	switch resp.Status {
	case "completed":
		if calls {
			return "tool_calls"
		}
		return "stop"
	case "incomplete":
		if resp.IncompleteDetails == nil || resp.IncompleteDetails.Reason == "" {
			return "incomplete"
		}
		if resp.IncompleteDetails.Reason == "max_output_tokens" {
			return "length"
		}
		return resp.IncompleteDetails.Reason
	}
	return resp.Status
}

// openAITimestamp picks the event time: the envelope's timestamp (RFC 3339 or unix
// seconds), else the response's creation time, else the Kafka message time (the arrival
// time when that is unset).
func openAITimestamp(raw json.RawMessage, resp *openAIResponse, msgTime time.Time) (time.Time, error) {
	if !oaIsNull(raw) {
		if raw[0] == '"' {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return time.Time{}, &DecodeError{Reason: ReasonInvalidField, Field: "timestamp", Err: fmt.Errorf("not a string: %w", err)}
			}
			ts, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return time.Time{}, &DecodeError{Reason: ReasonInvalidField, Field: "timestamp", Err: fmt.Errorf("not RFC 3339 or unix seconds: %q", text.ClipMarkedAfter(s, 64, text.Ellipsis))}
			}
			if ts.Unix() < 0 || ts.Unix() > maxEventUnix {
				return time.Time{}, &DecodeError{Reason: ReasonInvalidField, Field: "timestamp", Err: fmt.Errorf("%s is outside 1970–2106, the range of event times stored", s)}
			}
			return ts.UTC(), nil
		}
		var sec float64
		if err := json.Unmarshal(raw, &sec); err != nil {
			return time.Time{}, &DecodeError{Reason: ReasonInvalidField, Field: "timestamp", Err: errors.New("expected an RFC 3339 string or unix seconds")}
		}
		return oaUnixSeconds(sec, "timestamp")
	}
	if resp.Created != nil {
		return oaUnixSeconds(float64(*resp.Created), "response.created")
	}
	if resp.CreatedAt != nil {
		return oaUnixSeconds(*resp.CreatedAt, "response.created_at")
	}
	return fallbackEventTime(msgTime), nil
}

// oaUnixSeconds converts unix seconds to a UTC time, rejecting times outside the stored
// range (1970–2106) as invalid_field.
func oaUnixSeconds(sec float64, field string) (time.Time, error) {
	if math.IsNaN(sec) || sec < 0 || sec >= maxEventUnix+1 {
		return time.Time{}, &DecodeError{Reason: ReasonInvalidField, Field: field, Err: fmt.Errorf("%g is outside 1970–2106, the range of event times stored", sec)}
	}
	whole, frac := math.Modf(sec)
	return time.Unix(int64(whole), int64(math.Round(frac*1e6))*1e3).UTC(), nil
}

// oaLatency converts a latency in milliseconds, rejecting negative and too large
// values (see maxLatencyMS) as invalid_field.
func oaLatency(ms float64, field string) (time.Duration, error) {
	if math.IsNaN(ms) || ms < 0 || ms > maxLatencyMS {
		return 0, &DecodeError{Reason: ReasonInvalidField, Field: field, Err: fmt.Errorf("%g ms is outside 0 to %d", ms, int64(maxLatencyMS))}
	}
	return time.Duration(ms * float64(time.Millisecond)), nil
}

// oaContentText reads message content: a string, null, or a list of parts whose text parts
// (type text, input_text or output_text; refusal parts by their refusal) are joined by a
// newline. Other parts (images, audio, files) are left out.
func oaContentText(raw json.RawMessage, field string) (string, error) {
	if oaIsNull(raw) {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", &DecodeError{Reason: ReasonInvalidField, Field: field, Err: fmt.Errorf("not a string: %w", err)}
		}
		return s, nil
	case '[':
		var parts []struct {
			Type    string `json:"type"`
			Text    string `json:"text"`
			Refusal string `json:"refusal"`
		}
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", oaFieldTypeError(field, "a string or a list of content parts", err)
		}
		var b strings.Builder
		for _, p := range parts {
			t := ""
			switch p.Type {
			case "text", "input_text", "output_text":
				t = p.Text
			case "refusal":
				t = p.Refusal
			}
			if t == "" {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(t)
		}
		return b.String(), nil
	}
	return "", &DecodeError{Reason: ReasonInvalidField, Field: field, Err: errors.New("expected a string or a list of content parts")}
}

// oaSetToolResult sets the result of the tool call with the given id (the last one, when
// ids repeat); a result without a matching call becomes a call of its own.
func oaSetToolResult(r *record.Record, id, result string) {
	for i := len(r.ToolCalls) - 1; i >= 0; i-- {
		if id != "" && r.ToolCalls[i].ID == id {
			r.ToolCalls[i].Result = result
			return
		}
	}
	r.ToolCalls = append(r.ToolCalls, record.ToolCall{ID: id, Result: result})
}

// oaUnmarshalObject checks that value is valid UTF-8 and a JSON object and decodes it
// into v; errors are *DecodeError (invalid_utf8, invalid_json, or invalid_field naming the
// field of the wrong type).
func oaUnmarshalObject(value []byte, v any) error {
	if !utf8.Valid(value) {
		return &DecodeError{Reason: ReasonInvalidUTF8, Err: errors.New("message value is not valid UTF-8")}
	}
	trimmed := bytes.TrimLeft(value, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return &DecodeError{Reason: ReasonInvalidJSON, Err: errors.New("message value is not a JSON object")}
	}
	if err := json.Unmarshal(value, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return &DecodeError{Reason: ReasonInvalidField, Field: typeErr.Field, Err: fmt.Errorf("expected %s, got JSON %s: %w", typeErr.Type, typeErr.Value, err)}
		}
		return &DecodeError{Reason: ReasonInvalidJSON, Err: err}
	}
	return nil
}

// oaFieldTypeError turns a json error in the value of field into an invalid_field
// DecodeError, naming the nested field when json says which.
func oaFieldTypeError(field, want string, err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return &DecodeError{Reason: ReasonInvalidField, Field: field + "." + typeErr.Field, Err: fmt.Errorf("expected %s, got JSON %s: %w", typeErr.Type, typeErr.Value, err)}
	}
	return &DecodeError{Reason: ReasonInvalidField, Field: field, Err: fmt.Errorf("expected %s: %w", want, err)}
}

// oaIsNull reports whether raw is absent or JSON null.
func oaIsNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(raw, []byte("null"))
}

// oaFirstInt returns the first non-nil value, or 0.
func oaFirstInt(vs ...*int64) int64 {
	for _, v := range vs {
		if v != nil {
			return *v
		}
	}
	return 0
}

// oaJoin joins the non-empty strings with sep.
func oaJoin(parts []string, sep string) string {
	var b strings.Builder
	for _, p := range parts {
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(sep)
		}
		b.WriteString(p)
	}
	return b.String()
}

// looksLikeOpenAI reports whether the top-level keys of a JSON object are the openai
// format's: a "request" and a "response" key, both JSON objects. The raterd format has
// "response" as a string, and LiteLLM's payload has no "request", so neither matches.
func looksLikeOpenAI(obj map[string]json.RawMessage) bool {
	req, okReq := obj["request"]
	resp, okResp := obj["response"]
	return okReq && okResp && oaIsObject(req) && oaIsObject(resp)
}

// oaIsObject reports whether raw starts a JSON object.
func oaIsObject(raw json.RawMessage) bool {
	t := bytes.TrimLeft(raw, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}
