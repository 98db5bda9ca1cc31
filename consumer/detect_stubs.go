package consumer

import "encoding/json"

// Placeholders until the decoders land (issue 14); removed at their merge.

func looksLikeOTLPTracesJSON(obj map[string]json.RawMessage) bool {
	_, ok := obj["resourceSpans"]
	return ok
}
func looksLikeOTLPLogsJSON(obj map[string]json.RawMessage) bool {
	_, ok := obj["resourceLogs"]
	return ok
}
func looksLikeLiteLLM(obj map[string]json.RawMessage) bool { return false }
func looksLikeOpenAI(obj map[string]json.RawMessage) bool  { return false }
func otlpProtoKind(value []byte) string                    { return "" }
