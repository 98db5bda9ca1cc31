package consumer

import (
	"errors"
	"time"

	"raterd/record"
)

// Placeholders until the OTLP decoders land (issue 14).

func decodeOTLPTracesProto(value []byte, src record.Source, msgTime time.Time, lim Limits) (DecodeResult, error) {
	return DecodeResult{}, &DecodeError{Reason: ReasonInvalidField, Field: "format", Err: errors.New("otlp_proto: not implemented")}
}

func decodeOTLPTracesJSON(value []byte, src record.Source, msgTime time.Time, lim Limits) (DecodeResult, error) {
	return DecodeResult{}, &DecodeError{Reason: ReasonInvalidField, Field: "format", Err: errors.New("otlp_json: not implemented")}
}

func decodeOTLPLogsProto(value []byte, src record.Source, msgTime time.Time, lim Limits) (DecodeResult, error) {
	return DecodeResult{}, &DecodeError{Reason: ReasonInvalidField, Field: "format", Err: errors.New("otlp_logs_proto: not implemented")}
}

func decodeOTLPLogsJSON(value []byte, src record.Source, msgTime time.Time, lim Limits) (DecodeResult, error) {
	return DecodeResult{}, &DecodeError{Reason: ReasonInvalidField, Field: "format", Err: errors.New("otlp_logs_json: not implemented")}
}
