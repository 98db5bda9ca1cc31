package consumer

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"raterd/record"
)

// Input formats: how the value of a message on a topic is read (docs/inputs.md).
const (
	// FormatRaterd is raterd's own JSON record (the default).
	FormatRaterd = "raterd"
	// FormatOTLPProto is an OTLP TracesData in protobuf, as an OpenTelemetry Collector's
	// Kafka exporter writes it with encoding otlp_proto.
	FormatOTLPProto = "otlp_proto"
	// FormatOTLPJSON is an OTLP TracesData in OTLP/JSON (encoding otlp_json).
	FormatOTLPJSON = "otlp_json"
	// FormatOTLPLogsProto is an OTLP LogsData in protobuf: GenAI events such as
	// gen_ai.client.inference.operation.details.
	FormatOTLPLogsProto = "otlp_logs_proto"
	// FormatOTLPLogsJSON is an OTLP LogsData in OTLP/JSON.
	FormatOTLPLogsJSON = "otlp_logs_json"
	// FormatOpenAI is a JSON object holding an OpenAI Chat Completions or Responses API
	// request and its response, as gateways log them.
	FormatOpenAI = "openai"
	// FormatLiteLLM is LiteLLM's StandardLoggingPayload.
	FormatLiteLLM = "litellm"
	// FormatAuto detects the format of each message (and counts what it detected).
	FormatAuto = "auto"
)

// Formats lists the format names a topic may be given, FormatAuto included.
func Formats() []string {
	return []string{FormatRaterd, FormatOTLPProto, FormatOTLPJSON, FormatOTLPLogsProto, FormatOTLPLogsJSON, FormatOpenAI, FormatLiteLLM, FormatAuto}
}

// Limits bound what one message may yield, so that a hostile or broken producer cannot
// exhaust memory or stall a partition.
type Limits struct {
	// MaxRecordBytes is the size cap of one message value; 0 means none.
	MaxRecordBytes int
	// MaxRecordsPerMessage caps the records one message yields; a message that would
	// yield more is dead-lettered whole (reason too_many_records). 0 means none.
	MaxRecordsPerMessage int
	// MaxMessagesPerRecord caps the chat messages of one record; a span or log entry with
	// more is skipped and counted (skip reason too_many_messages). 0 means none.
	MaxMessagesPerRecord int
	// OTLPUnknownModel is the model name an OTLP model call without one gets (labelled
	// raterd.model_unknown); "" skips such calls (skip reason no_model).
	OTLPUnknownModel string
}

// Default limits (kafka.max_records_per_message, kafka.max_messages_per_record) and the
// model of OTLP model calls that name none (kafka.otlp_unknown_model; OTLPUnknownModelSkip
// skips them).
const (
	DefaultMaxRecordsPerMessage = 10000
	DefaultMaxMessagesPerRecord = 1000
	DefaultOTLPUnknownModel     = "unknown"
	OTLPUnknownModelSkip        = "skip"
)

// DecodeResult is what one message value yields: zero or more records, and the parts of
// the message that were skipped on purpose (a non-GenAI span, a span with no output), by
// reason. Skips are not errors: a message whose every part is skipped is committed and
// counted.
type DecodeResult struct {
	// Format is the format the value was read as (for FormatAuto, the one detected).
	Format string
	// Records are the records, in message order; each has Source, SizeBytes and Format set.
	Records []*record.Record
	// Skipped counts the parts skipped, by a stable snake_case reason.
	Skipped map[string]int
}

// Skip counts one skipped part under reason.
func (r *DecodeResult) Skip(reason string) {
	if r.Skipped == nil {
		r.Skipped = map[string]int{}
	}
	r.Skipped[reason]++
}

// decodeFunc decodes one message value of a format. It returns every rejection of the
// message as a whole as a *DecodeError; parts it skips go to DecodeResult.Skipped.
type decodeFunc func(value []byte, src record.Source, msgTime time.Time, lim Limits) (DecodeResult, error)

// decoders maps a format name to its decoder (FormatAuto is handled by DecodeMessage).
func decoders() map[string]decodeFunc {
	return map[string]decodeFunc{
		FormatRaterd:        decodeRaterd,
		FormatOTLPProto:     decodeOTLPTracesProto,
		FormatOTLPJSON:      decodeOTLPTracesJSON,
		FormatOTLPLogsProto: decodeOTLPLogsProto,
		FormatOTLPLogsJSON:  decodeOTLPLogsJSON,
		FormatOpenAI:        decodeOpenAI,
		FormatLiteLLM:       decodeLiteLLM,
	}
}

// Decoder decodes message values by format. It holds no mutable state.
type Decoder struct {
	byName map[string]decodeFunc
	lim    Limits
}

// NewDecoder returns a decoder with the given limits.
func NewDecoder(lim Limits) *Decoder { return &Decoder{byName: decoders(), lim: lim} }

// DecodeMessage decodes value in the named format (FormatAuto detects it). The size cap
// is checked first, whatever the format. Every record of the result has its Source (the
// message's coordinates), Format and SizeBytes (its share of the value) set, and an id:
// the format's stable id (e.g. from trace and span id) or, for a message's only record
// without one, topic/partition/offset; further records without one get "#N" appended.
// Errors are always *DecodeError.
func (d *Decoder) DecodeMessage(format string, value []byte, src record.Source, msgTime time.Time) (DecodeResult, error) {
	if d.lim.MaxRecordBytes > 0 && len(value) > d.lim.MaxRecordBytes {
		return DecodeResult{}, &DecodeError{Reason: ReasonTooLarge, Err: fmt.Errorf("%d bytes exceeds the %d-byte cap", len(value), d.lim.MaxRecordBytes)}
	}
	if format == FormatAuto {
		if format = DetectFormat(value); format == "" {
			return DecodeResult{Format: FormatAuto}, &DecodeError{Reason: ReasonUnknownFormat,
				Err: errors.New("format auto: the value is neither a JSON object nor OTLP protobuf")}
		}
	}
	fn, ok := d.byName[format]
	if !ok {
		return DecodeResult{}, &DecodeError{Reason: ReasonInvalidField, Field: "format", Err: fmt.Errorf("unknown input format %q", format)}
	}
	res, err := fn(value, src, msgTime, d.lim)
	res.Format = format
	if err != nil {
		return res, err
	}
	if d.lim.MaxRecordsPerMessage > 0 && len(res.Records) > d.lim.MaxRecordsPerMessage {
		return DecodeResult{Format: format}, &DecodeError{Reason: ReasonTooManyRecords,
			Err: fmt.Errorf("message yields %d records, over the cap of %d (kafka.max_records_per_message)", len(res.Records), d.lim.MaxRecordsPerMessage)}
	}
	share := len(value) / max(len(res.Records), 1)
	for i, r := range res.Records {
		if format != FormatRaterd {
			boundRecord(r) // the raterd record is stored as sent, as it always was
		}
		r.Source, r.Format, r.SizeBytes = src, format, share
		if r.ID == "" {
			r.ID = fmt.Sprintf("%s/%d/%d", src.Topic, src.Partition, src.Offset)
			if i > 0 {
				r.ID += fmt.Sprintf("#%d", i)
			}
		}
	}
	return res, nil
}

// Bounds on what a record decoded from a third-party format carries besides its text:
// metadata becomes every score row's labels, and tool calls enter judge prompts.
const (
	maxRecordMetadataKeys = 64
	maxRecordToolCalls    = 64
)

// boundRecord keeps at most maxRecordMetadataKeys metadata entries (the first in key
// order, so a replay keeps the same ones), keys and values clipped like the OTLP
// decoders' (clipMeta), and the first maxRecordToolCalls tool calls.
func boundRecord(r *record.Record) {
	if len(r.Metadata) > 0 {
		keys := make([]string, 0, len(r.Metadata))
		for k := range r.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		md := make(map[string]string, min(len(keys), maxRecordMetadataKeys))
		for _, k := range keys[:min(len(keys), maxRecordMetadataKeys)] {
			md[clipMeta(k)] = clipMeta(r.Metadata[k])
		}
		r.Metadata = md
	}
	if len(r.ToolCalls) > maxRecordToolCalls {
		r.ToolCalls = r.ToolCalls[:maxRecordToolCalls]
	}
}

// DetectFormat guesses the format of a message value for FormatAuto: JSON objects by
// their keys (resourceSpans, resourceLogs, the OpenAI and LiteLLM shapes, else raterd);
// anything else as OTLP protobuf, traces if it parses as traces, else logs; "" when it is
// none of them.
func DetectFormat(value []byte) string {
	return detectFormat(value)
}

// validFormat checks a format name; key names the config key in the error.
func validFormat(key, name string) error {
	if slices.Contains(Formats(), name) {
		return nil
	}
	names := Formats()
	sort.Strings(names)
	return fmt.Errorf("%s: unknown input format %q (one of %s)", key, name, strings.Join(names, ", "))
}
