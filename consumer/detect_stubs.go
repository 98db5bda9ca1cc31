package consumer

import "encoding/json"

// Placeholders until the OpenAI and LiteLLM decoders land (issue 14); removed at their merge.

func looksLikeLiteLLM(obj map[string]json.RawMessage) bool { return false }
func looksLikeOpenAI(obj map[string]json.RawMessage) bool  { return false }
