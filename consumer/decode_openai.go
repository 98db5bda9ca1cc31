package consumer

import (
	"errors"
	"time"

	"raterd/record"
)

// Placeholder until the OpenAI decoder lands (issue 14).
func decodeOpenAI(value []byte, src record.Source, msgTime time.Time, lim Limits) (DecodeResult, error) {
	return DecodeResult{}, &DecodeError{Reason: ReasonInvalidField, Field: "format", Err: errors.New("openai: not implemented")}
}
