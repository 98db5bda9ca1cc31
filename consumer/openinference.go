package consumer

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// OpenInference (Arize, spec/semantic_conventions.md): the span kind, the flattened message
// lists llm.input_messages.N.message.* and llm.output_messages.N.message.*, the model and
// token counts, input.value / output.value and retrieval.documents.N.document.content.

// OpenInference attribute names.
const (
	attrOISpanKind          = "openinference.span.kind"
	attrOIModelName         = "llm.model_name"
	attrOIRequestModelName  = "llm.request.model_name"
	attrOIResponseModelName = "llm.response.model_name"
	attrOIProvider          = "llm.provider"
	attrOISystem            = "llm.system"
	attrOIPromptTokens      = "llm.token_count.prompt"
	attrOICompletionTokens  = "llm.token_count.completion"
	attrOIFinishReason      = "llm.finish_reason"
	attrOIInputValue        = "input.value"
	attrOIOutputValue       = "output.value"
	attrOIToolName          = "tool.name"
	attrOIToolDescription   = "tool.description"
	attrOIToolID            = "tool.id"
	attrOIToolCallID        = "tool_call.id"
	attrOIToolCallName      = "tool_call.function.name"
	attrOIToolCallArgs      = "tool_call.function.arguments"
	attrOIAgentName         = "agent.name"
	prefixOIInputMessages   = "llm.input_messages."
	prefixOIOutputMessages  = "llm.output_messages."
	prefixOIRetrievalDocs   = "retrieval.documents."
)

// OpenInference span kinds raterd tells apart.
const (
	oiKindLLM       = "LLM"
	oiKindRetriever = "RETRIEVER"
	oiKindTool      = "TOOL"
	oiKindAgent     = "AGENT"
	oiKindChain     = "CHAIN"
)

// openInferenceFacts is the OpenInference part of genaiFacts.
type openInferenceFacts struct {
	spanKind, model, reqModel, respModel, provider, system, finish string
	inputValue, outputValue                                        string
	toolName, toolDesc, toolID, callID, callName, callArgs, agent  string
	promptTokens, completionTokens                                 int64
	hasPromptTokens, hasCompletionTokens                           bool
	input, output, docs                                            []flatAttr
}

// scan reads one attribute (any key the GenAI scan did not take).
func (f *openInferenceFacts) scan(k string, v pcommon.Value) {
	switch k {
	case attrOISpanKind:
		setStr(&f.spanKind, v)
	case attrOIModelName:
		setStr(&f.model, v)
	case attrOIRequestModelName:
		setStr(&f.reqModel, v)
	case attrOIResponseModelName:
		setStr(&f.respModel, v)
	case attrOIProvider:
		setStr(&f.provider, v)
	case attrOISystem:
		setStr(&f.system, v)
	case attrOIFinishReason:
		setStr(&f.finish, v)
	case attrOIInputValue:
		if f.inputValue == "" {
			f.inputValue = attrStr(v)
		}
	case attrOIOutputValue:
		if f.outputValue == "" {
			f.outputValue = attrStr(v)
		}
	case attrOIToolName:
		setStr(&f.toolName, v)
	case attrOIToolDescription:
		setStr(&f.toolDesc, v)
	case attrOIToolID:
		setStr(&f.toolID, v)
	case attrOIToolCallID:
		setStr(&f.callID, v)
	case attrOIToolCallName:
		setStr(&f.callName, v)
	case attrOIToolCallArgs:
		if f.callArgs == "" {
			f.callArgs = attrStr(v)
		}
	case attrOIAgentName:
		setStr(&f.agent, v)
	case attrOIPromptTokens:
		if n, ok := attrInt(v); ok && !f.hasPromptTokens {
			f.promptTokens, f.hasPromptTokens = n, true
		}
	case attrOICompletionTokens:
		if n, ok := attrInt(v); ok && !f.hasCompletionTokens {
			f.completionTokens, f.hasCompletionTokens = n, true
		}
	default:
		switch {
		case strings.HasPrefix(k, prefixOIInputMessages):
			f.input = appendFlat(f.input, k[len(prefixOIInputMessages):], v)
		case strings.HasPrefix(k, prefixOIOutputMessages):
			f.output = appendFlat(f.output, k[len(prefixOIOutputMessages):], v)
		case strings.HasPrefix(k, prefixOIRetrievalDocs):
			f.docs = appendFlat(f.docs, k[len(prefixOIRetrievalDocs):], v)
		}
	}
}

// openInferenceMessages turns grouped llm.input_messages / llm.output_messages attributes
// into messages: message.role, message.content, else the text items of
// message.contents.M.message_content.{type,text} in order, and
// message.tool_calls.M.tool_call.{id,function.name,function.arguments}.
func openInferenceMessages(groups [][]flatAttr) []chatMsg {
	msgs := make([]chatMsg, 0, len(groups))
	for _, g := range groups {
		var m chatMsg
		var contents, calls []flatAttr
		for _, a := range g {
			switch a.tail {
			case "message.role":
				m.role = attrStr(a.v)
			case "message.content":
				m.text = joinText(m.text, attrStr(a.v))
			default:
				if rest, ok := strings.CutPrefix(a.tail, "message.contents."); ok {
					contents = appendFlat(contents, rest, a.v)
				} else if rest, ok := strings.CutPrefix(a.tail, "message.tool_calls."); ok {
					calls = appendFlat(calls, rest, a.v)
				}
			}
		}
		if m.text == "" && len(contents) > 0 {
			items, _ := groupFlat(contents, 0)
			for _, item := range items {
				typ, text := "", ""
				for _, a := range item {
					switch a.tail {
					case "message_content.type":
						typ = attrStr(a.v)
					case "message_content.text":
						text = attrStr(a.v)
					}
				}
				if typ == "" || typ == "text" {
					m.text = joinText(m.text, text)
				}
			}
		}
		m.calls = flatToolCalls(calls, func(tail string) string {
			switch tail {
			case "tool_call.id":
				return "id"
			case "tool_call.function.name":
				return "name"
			case "tool_call.function.arguments":
				return "arguments"
			}
			return ""
		})
		msgs = append(msgs, m)
	}
	return msgs
}

// openInferenceDocs reads retrieval.documents.N.document.content, in index order, up to
// otlpMaxContextDocs documents in all.
func openInferenceDocs(list []flatAttr, docs []string) []string {
	groups, _ := groupFlat(list, 0)
	for _, g := range groups {
		if len(docs) >= otlpMaxContextDocs {
			break
		}
		for _, a := range g {
			if a.tail == "document.content" {
				if c := attrStr(a.v); c != "" {
					docs = append(docs, validUTF8(c))
				}
				break
			}
		}
	}
	return docs
}
