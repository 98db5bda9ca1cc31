package consumer

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"raterd/record"
)

// The litellm format (FormatLiteLLM, docs/inputs.md "## litellm") is LiteLLM's
// StandardLoggingPayload: the standard_logging_object its callbacks receive (and its
// generic API, S3 or Kafka-style loggers write), one JSON object per message. The type is
// litellm/types/utils.py StandardLoggingPayload (litellm 1.110.2); unknown fields are
// ignored.

// liteLLMPayload is the part of a StandardLoggingPayload raterd reads.
type liteLLMPayload struct {
	ID                string           `json:"id"`
	TraceID           string           `json:"trace_id"`
	SessionID         string           `json:"session_id"`
	CallType          string           `json:"call_type"`
	Status            string           `json:"status"`
	Model             string           `json:"model"`
	ModelGroup        *string          `json:"model_group"`
	CustomLLMProvider *string          `json:"custom_llm_provider"`
	StartTime         *float64         `json:"startTime"`
	EndTime           *float64         `json:"endTime"`
	ResponseTime      *float64         `json:"response_time"`
	Messages          json.RawMessage  `json:"messages"`
	Response          json.RawMessage  `json:"response"`
	PromptTokens      *int64           `json:"prompt_tokens"`
	CompletionTokens  *int64           `json:"completion_tokens"`
	Metadata          *liteLLMMetadata `json:"metadata"`
	CacheHit          *bool            `json:"cache_hit"`
	EndUser           *string          `json:"end_user"`
}

// liteLLMMetadata is the part of a StandardLoggingMetadata raterd reads.
type liteLLMMetadata struct {
	UserAPIKeyAlias     *string                    `json:"user_api_key_alias"`
	UserAPIKeyTeamAlias *string                    `json:"user_api_key_team_alias"`
	UserAPIKeyTeamID    *string                    `json:"user_api_key_team_id"`
	UserAPIKeyUserID    *string                    `json:"user_api_key_user_id"`
	TeamAlias           *string                    `json:"team_alias"`
	RequesterMetadata   map[string]json.RawMessage `json:"requester_metadata"`
}

// decodeLiteLLM is the FormatLiteLLM decoder: one record per successful chat, text
// completion or Responses API call; a failed call is skipped (failed_call), as is a call
// without chat content such as an embedding (not_chat).
func decodeLiteLLM(value []byte, _ record.Source, msgTime time.Time, lim Limits) (DecodeResult, error) {
	var p liteLLMPayload
	if err := oaUnmarshalObject(value, &p); err != nil {
		return DecodeResult{}, err
	}
	var res DecodeResult
	if p.Status == "failure" {
		res.Skip("failed_call")
		return res, nil
	}
	if oaIsNull(p.Response) {
		return DecodeResult{}, &DecodeError{Reason: ReasonMissingField, Field: "response", Err: errors.New("a successful call's payload needs its response")}
	}
	r := &record.Record{
		ID:             p.ID,
		TraceID:        p.TraceID,
		ConversationID: p.SessionID,
	}
	var resp openAIResponse
	switch p.Response[0] {
	case '"':
		if err := json.Unmarshal(p.Response, &r.Response); err != nil {
			return DecodeResult{}, &DecodeError{Reason: ReasonInvalidField, Field: "response", Err: fmt.Errorf("not a string: %w", err)}
		}
	case '{':
		if err := json.Unmarshal(p.Response, &resp); err != nil {
			return DecodeResult{}, oaFieldTypeError("response", "a response object", err)
		}
		if resp.Choices == nil && resp.Output == nil && resp.Object != "response" {
			res.Skip("not_chat") // embeddings, images, audio, rerank, …
			return res, nil
		}
		if skip := openAIResponseSkip(&resp); skip != "" {
			res.Skip(skip)
			return res, nil
		}
	default:
		res.Skip("not_chat")
		return res, nil
	}
	r.Model = p.Model
	if r.Model == "" && p.ModelGroup != nil {
		r.Model = *p.ModelGroup
	}
	if r.Model == "" {
		r.Model = resp.Model
	}
	if r.Model == "" {
		return DecodeResult{}, &DecodeError{Reason: ReasonMissingField, Field: "model", Err: errors.New("neither model, model_group nor response.model names the model")}
	}
	// The conversation first, so that its tool calls come before the response's.
	if err := liteLLMMessages(p.Messages, r, lim); err != nil {
		return DecodeResult{}, err
	}
	if p.Response[0] == '{' {
		if err := openAIMapResponse(&resp, "response", r); err != nil {
			return DecodeResult{}, err
		}
	}
	if err := liteLLMUsage(&p, r); err != nil {
		return DecodeResult{}, err
	}
	var err error
	if p.StartTime != nil {
		if r.Timestamp, err = oaUnixSeconds(*p.StartTime, "startTime"); err != nil {
			return DecodeResult{}, err
		}
	} else {
		r.Timestamp = fallbackEventTime(msgTime)
	}
	if r.Latency, err = liteLLMLatency(&p); err != nil {
		return DecodeResult{}, err
	}
	r.App, r.Metadata = liteLLMAppAndMetadata(&p)
	res.Records = []*record.Record{r}
	return res, nil
}

// liteLLMMessages reads the logged input: a list of chat messages, or a string (a text
// completion's prompt). Other shapes carry no prompt raterd reads.
func liteLLMMessages(raw json.RawMessage, r *record.Record, lim Limits) error {
	if oaIsNull(raw) {
		return nil
	}
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &r.Prompt); err != nil {
			return &DecodeError{Reason: ReasonInvalidField, Field: "messages", Err: fmt.Errorf("not a string: %w", err)}
		}
	case '[':
		var msgs []openAIChatMessage
		if err := json.Unmarshal(raw, &msgs); err != nil {
			return oaFieldTypeError("messages", "a list of chat messages", err)
		}
		return oaChatMessages(msgs, "messages", r, lim)
	}
	return nil
}

// liteLLMUsage sets Usage from prompt_tokens and completion_tokens, when either is set,
// over what the response reported.
func liteLLMUsage(p *liteLLMPayload, r *record.Record) error {
	in, out := oaFirstInt(p.PromptTokens), oaFirstInt(p.CompletionTokens)
	if in < 0 || out < 0 {
		return &DecodeError{Reason: ReasonInvalidField, Field: "prompt_tokens", Err: fmt.Errorf("negative token count (%d, %d)", in, out)}
	}
	if in > 0 || out > 0 {
		r.Usage = &record.Usage{InputTokens: in, OutputTokens: out}
	}
	return nil
}

// liteLLMLatency is endTime - startTime, else response_time (both in seconds); 0 when
// neither is there, or when endTime is before startTime (clock skew between the proxy's
// workers must not cost the record).
func liteLLMLatency(p *liteLLMPayload) (time.Duration, error) {
	if p.StartTime != nil && p.EndTime != nil {
		if d := *p.EndTime - *p.StartTime; d < 0 && !math.IsInf(d, 0) {
			return 0, nil
		}
		return oaLatency((*p.EndTime-*p.StartTime)*1000, "endTime")
	}
	if p.ResponseTime != nil {
		return oaLatency(*p.ResponseTime*1000, "response_time")
	}
	return 0, nil
}

// liteLLMAppAndMetadata picks the app (the team alias of the proxy key, else the team
// alias, else the key alias) and the metadata: the caller's requester_metadata (scalar
// values, as text) and a few litellm.* keys, which win.
func liteLLMAppAndMetadata(p *liteLLMPayload) (string, map[string]string) {
	md := map[string]string{}
	set := func(k string, v *string) {
		if v != nil && *v != "" {
			md[k] = *v
		}
	}
	app := ""
	if m := p.Metadata; m != nil {
		for k, raw := range m.RequesterMetadata {
			if v, ok := llScalarText(raw); ok {
				md[k] = v
			}
		}
		for _, v := range []*string{m.UserAPIKeyTeamAlias, m.TeamAlias, m.UserAPIKeyAlias} {
			if v != nil && *v != "" {
				app = *v
				break
			}
		}
		set("litellm.key_alias", m.UserAPIKeyAlias)
		set("litellm.team_id", m.UserAPIKeyTeamID)
		set("litellm.user_id", m.UserAPIKeyUserID)
	}
	set("litellm.call_type", &p.CallType)
	set("litellm.provider", p.CustomLLMProvider)
	set("litellm.model_group", p.ModelGroup)
	set("litellm.end_user", p.EndUser)
	if p.CacheHit != nil && *p.CacheHit {
		md["litellm.cache_hit"] = "true"
	}
	if len(md) == 0 {
		md = nil
	}
	return app, md
}

// llScalarText renders a JSON string, number or boolean as text; other values are not
// scalars.
func llScalarText(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case c == 't' || c == 'f':
		return string(raw), true
	case c == '-' || (c >= '0' && c <= '9'):
		if _, err := strconv.ParseFloat(string(raw), 64); err != nil {
			return "", false
		}
		return string(raw), true
	}
	return "", false
}

// looksLikeLiteLLM reports whether the top-level keys of a JSON object are a
// StandardLoggingPayload's: "call_type" and "startTime" (LiteLLM's camelCase, which no
// other accepted format uses) are both there.
func looksLikeLiteLLM(obj map[string]json.RawMessage) bool {
	_, callType := obj["call_type"]
	_, start := obj["startTime"]
	return callType && start
}
