package consumer

import (
	"errors"
	"time"

	"raterd/record"
)

// Placeholder until the LiteLLM decoder lands (issue 14).
func decodeLiteLLM(value []byte, src record.Source, msgTime time.Time, lim Limits) (DecodeResult, error) {
	return DecodeResult{}, &DecodeError{Reason: ReasonInvalidField, Field: "format", Err: errors.New("litellm: not implemented")}
}
