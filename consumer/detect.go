package consumer

import (
	"encoding/json"
)

// detectFormat is DetectFormat: "" when the value is neither a JSON object nor OTLP
// protobuf.
//
// JSON objects are told apart by their top-level keys, most specific first: resourceSpans
// (OTLP/JSON traces), resourceLogs (OTLP/JSON logs), the LiteLLM payload's keys, an OpenAI
// request/response envelope's keys; any other object is a raterd record (whose decoder
// then names what is missing). A value that is not a JSON object is tried as OTLP
// protobuf, traces before logs: the two messages share field numbers but not wire types,
// so logs do not parse as traces (consumer tests check both ways).
func detectFormat(value []byte) string {
	first, ok := firstNonSpace(value)
	if !ok {
		return "" // empty: an empty protobuf would parse as an empty export of anything
	}
	if first == '{' {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(value, &obj); err != nil {
			return FormatRaterd // the raterd decoder reports the JSON error
		}
		switch {
		case looksLikeOTLPTracesJSON(obj):
			return FormatOTLPJSON
		case looksLikeOTLPLogsJSON(obj):
			return FormatOTLPLogsJSON
		case looksLikeLiteLLM(obj):
			return FormatLiteLLM
		case looksLikeOpenAI(obj):
			return FormatOpenAI
		}
		return FormatRaterd
	}
	return otlpProtoKind(value)
}

// firstNonSpace returns the first byte of value that is not JSON white space.
func firstNonSpace(value []byte) (byte, bool) {
	for _, c := range value {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c, true
	}
	return 0, false
}
