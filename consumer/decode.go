package consumer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"raterd/internal/text"
	"raterd/record"
)

// Reasons a message is dead-lettered. They are stable strings: they appear in DLQ headers,
// in the dead_letters table and as a metric attribute.
const (
	ReasonTooLarge     = "too_large"
	ReasonInvalidUTF8  = "invalid_utf8"
	ReasonInvalidJSON  = "invalid_json"
	ReasonMissingField = "missing_field"
	ReasonInvalidField = "invalid_field"
	// ReasonUnknownFormat: with format auto, the value is neither a JSON object nor OTLP
	// protobuf.
	ReasonUnknownFormat = "unknown_format"
	// ReasonTooManyRecords: the message would yield more records than
	// kafka.max_records_per_message.
	ReasonTooManyRecords = "too_many_records"
	// ReasonJudgeFailed: the record's judgements kept failing (Config.PoisonAttempts batch
	// attempts) while the other records of its batch were judged.
	ReasonJudgeFailed = "judge_failed"
)

// DefaultMaxRecordBytes is the default size cap of one message value (1 MiB).
const DefaultMaxRecordBytes = 1 << 20

// DecodeError says why a message value is not a valid record. It is permanent: the same
// bytes never decode, so the message goes to the dead-letter topic instead of being retried.
type DecodeError struct {
	// Reason is one of the Reason* constants.
	Reason string
	// Field names the offending field, when there is one.
	Field string
	// Err is the underlying error, if any.
	Err error
}

// Error implements error: the reason, the field and the cause.
func (e *DecodeError) Error() string {
	msg := e.Reason
	if e.Field != "" {
		msg += ": field " + strconv.Quote(e.Field)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *DecodeError) Unwrap() error { return e.Err }

// wireRecord mirrors the JSON contract. Pointers tell an absent field from an empty one.
type wireRecord struct {
	ID         string             `json:"id"`
	Timestamp  string             `json:"timestamp"`
	Model      *string            `json:"model"`
	App        string             `json:"app"`
	Prompt     string             `json:"prompt"`
	Messages   []record.Message   `json:"messages"`
	Response   *string            `json:"response"`
	Reference  string             `json:"reference"`
	Candidates []record.Candidate `json:"candidates"`
	Metadata   map[string]string  `json:"metadata"`
	TraceID    string             `json:"trace_id"`

	System         string            `json:"system"`
	Context        []string          `json:"context"`
	ToolCalls      []record.ToolCall `json:"tool_calls"`
	Usage          *record.Usage     `json:"usage"`
	LatencyMS      float64           `json:"latency_ms"`
	FinishReason   string            `json:"finish_reason"`
	ConversationID string            `json:"conversation_id"`
	SpanID         string            `json:"span_id"`
}

// decodeRaterd is the FormatRaterd decoder: one record per message.
func decodeRaterd(value []byte, src record.Source, msgTime time.Time, lim Limits) (DecodeResult, error) {
	r, err := Decode(value, src, msgTime, 0) // the caller checked the size cap
	if err != nil {
		return DecodeResult{}, err
	}
	if lim.MaxMessagesPerRecord > 0 && len(r.Messages) > lim.MaxMessagesPerRecord {
		return DecodeResult{}, &DecodeError{Reason: ReasonInvalidField, Field: "messages",
			Err: fmt.Errorf("%d messages exceed kafka.max_messages_per_record (%d)", len(r.Messages), lim.MaxMessagesPerRecord)}
	}
	return DecodeResult{Records: []*record.Record{r}}, nil
}

// Decode parses one Kafka message value into a record. msgTime is the Kafka message time,
// used when the record has no timestamp; src fills the record id when it has none. Errors
// are always *DecodeError.
func Decode(value []byte, src record.Source, msgTime time.Time, maxBytes int) (*record.Record, error) {
	if maxBytes > 0 && len(value) > maxBytes {
		return nil, &DecodeError{Reason: ReasonTooLarge, Err: fmt.Errorf("%d bytes exceeds the %d-byte cap", len(value), maxBytes)}
	}
	if !utf8.Valid(value) {
		return nil, &DecodeError{Reason: ReasonInvalidUTF8, Err: errors.New("message value is not valid UTF-8")}
	}
	var w wireRecord
	if err := json.Unmarshal(value, &w); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, &DecodeError{Reason: ReasonInvalidField, Field: typeErr.Field, Err: fmt.Errorf("expected %s, got JSON %s", typeErr.Type, typeErr.Value)}
		}
		return nil, &DecodeError{Reason: ReasonInvalidJSON, Err: err}
	}
	if w.Model == nil || *w.Model == "" {
		return nil, &DecodeError{Reason: ReasonMissingField, Field: "model"}
	}
	if w.Response == nil {
		return nil, &DecodeError{Reason: ReasonMissingField, Field: "response"}
	}
	r := &record.Record{
		ID:         w.ID,
		Model:      *w.Model,
		App:        w.App,
		Prompt:     w.Prompt,
		Messages:   w.Messages,
		Response:   *w.Response,
		Reference:  w.Reference,
		Candidates: w.Candidates,
		Metadata:   w.Metadata,
		TraceID:    w.TraceID,

		System:         w.System,
		Context:        w.Context,
		ToolCalls:      w.ToolCalls,
		Usage:          w.Usage,
		FinishReason:   w.FinishReason,
		ConversationID: w.ConversationID,
		SpanID:         w.SpanID,
		Format:         FormatRaterd,
		Source:         src,
		SizeBytes:      len(value),
	}
	if w.LatencyMS < 0 || w.LatencyMS > maxLatencyMS {
		return nil, &DecodeError{Reason: ReasonInvalidField, Field: "latency_ms", Err: fmt.Errorf("%g is outside 0 to %d", w.LatencyMS, int64(maxLatencyMS))}
	}
	r.Latency = time.Duration(w.LatencyMS * float64(time.Millisecond))
	if r.ID == "" {
		r.ID = fmt.Sprintf("%s/%d/%d", src.Topic, src.Partition, src.Offset)
	}
	if w.Timestamp == "" {
		r.Timestamp = fallbackEventTime(msgTime)
	} else {
		ts, err := time.Parse(time.RFC3339Nano, w.Timestamp)
		if err != nil {
			return nil, &DecodeError{Reason: ReasonInvalidField, Field: "timestamp", Err: fmt.Errorf("not RFC 3339: %q", text.ClipMarkedAfter(w.Timestamp, 64, text.Ellipsis))}
		}
		if ts.Unix() < 0 || ts.Unix() > maxEventUnix {
			return nil, &DecodeError{Reason: ReasonInvalidField, Field: "timestamp", Err: fmt.Errorf("%s is outside 1970–2106, the range of event times stored", w.Timestamp)}
		}
		r.Timestamp = ts.UTC()
	}
	return r, nil
}

// fallbackEventTime is the event time of a record whose input has none: the Kafka message
// time, or UnknownEventTime when that is missing (message formats without a timestamp
// report zero) or outside the 1970–2106 range of stored event times. Never the time it
// was read: the event time is part of a score row's identity (its hour is in the sorting
// key), so a replay of the message must get the same one to collapse with the first copy.
func fallbackEventTime(msgTime time.Time) time.Time {
	t := msgTime.UTC()
	if t.Unix() <= 0 || t.Unix() > maxEventUnix {
		return UnknownEventTime()
	}
	return t
}

// UnknownEventTime is the event time of a record that has none of its own and whose
// Kafka message has no usable time either: 1970-01-01T00:00:00Z, the first second
// ClickHouse's DateTime holds. A fixed marker, so that every read of the message (a
// replay after a crash, a rescore) gives the row the same identity; such records are
// counted in raterd.consumer.event_time_unknown. See docs/sql.md (Replays).
func UnknownEventTime() time.Time { return time.Unix(0, 0).UTC() }

// maxLatencyMS bounds latency_ms at about 49.7 days, what ClickHouse's UInt32
// milliseconds hold.
const maxLatencyMS = 1<<32 - 1

// maxEventUnix is the last second ClickHouse's DateTime (UInt32) can hold.
const maxEventUnix = 1<<32 - 1
