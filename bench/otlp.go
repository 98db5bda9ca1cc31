package bench

// --format otlp_proto|otlp_json: the same valid records as OTLP trace exports, as an
// OpenTelemetry Collector's Kafka exporter writes them, consumed by a second raterd run
// with topic_formats: {<topic>: <format>}.

import (
	"fmt"
	"time"

	"raterd/consumer"
	"raterd/internal/genaitrace"
	"raterd/record"
	"raterd/scorer"
)

// Formats `raterd bench --format` takes.
const (
	benchFormatRaterd    = consumer.FormatRaterd
	benchFormatOTLPProto = consumer.FormatOTLPProto
	benchFormatOTLPJSON  = consumer.FormatOTLPJSON
)

// otlpNonGenAISpans is the number of non-GenAI (database) spans each generated trace holds
// besides its HTTP root, as real traces do: the decoder skips and counts them.
const otlpNonGenAISpans = 2

// otlpSpansPerTrace is the spans of one generated trace: the HTTP root, the non-GenAI
// spans and the chat span (the records carry no context, so there is no retrieval span).
const otlpSpansPerTrace = otlpNonGenAISpans + 2

// otlpMaxSpansPerMessage bounds --spans-per-message.
const otlpMaxSpansPerMessage = 4096

// otlpMaxMessageBytes caps one generated export: under raterd's default max_record_bytes
// (1 MiB) and Kafka's default message.max.bytes (1,048,588) with kafka-go's batch framing.
const otlpMaxMessageBytes = 1_000_000

// runOTLPPrefix names the OTLP run: raterd-otlp_proto or raterd-otlp_json.
const runOTLPPrefix = "raterd-"

// otlpRunName is the report name of the raterd run over the OTLP topic.
func otlpRunName(format string) string { return runOTLPPrefix + format }

// otlpTraffic describes the OTLP copy of the traffic.
type otlpTraffic struct {
	Format string `json:"format"`
	Topic  string `json:"topic"`
	// Messages are the OTLP exports (one Kafka message each), Records the chat spans
	// (one per valid raterd record), Spans every span.
	Messages int `json:"messages"`
	Records  int `json:"records"`
	Spans    int `json:"spans"`
	// SpansPerMessage and RecordsPerMessage are means over the messages.
	SpansPerMessage   float64 `json:"spans_per_message"`
	RecordsPerMessage float64 `json:"records_per_message"`
	// Resources counts the ResourceSpans over all messages (one per app in a message).
	Resources int   `json:"resources"`
	Bytes     int64 `json:"bytes"`
	// InvalidLeftOut: invalid messages of the raterd traffic, which have no OTLP copy.
	InvalidLeftOut int `json:"invalid_left_out"`
	// NonGenAISpansPerTrace: the non-GenAI spans each trace holds besides its HTTP root.
	NonGenAISpansPerTrace int `json:"non_genai_spans_per_trace"`
}

// otlpValues converts the valid records among the raterd message values into OTLP trace
// exports in format: chatsPerMessage consecutive records per export (the last may hold
// fewer), each as one trace (HTTP root, otlpNonGenAISpans database spans, the chat span;
// genaitrace.FromRecord), grouped by app into one ResourceSpans per app (service.name =
// app; "" for a record without one), as a Collector batch of several services' exports
// is (genaitrace.TracesByService). Chat i (in export
// order) has the record id genaitrace.RecordID(seed, i). Invalid messages are left out:
// they have no content to convert.
func otlpValues(values [][]byte, format string, chatsPerMessage int, seed uint64, topic string) ([][]byte, otlpTraffic, error) {
	info := otlpTraffic{Format: format, Topic: topic, NonGenAISpansPerTrace: otlpNonGenAISpans}
	var recs []*record.Record
	for i, v := range values {
		rec, err := consumer.Decode(v, record.Source{Offset: int64(i)}, time.Time{}, 0)
		if err != nil {
			info.InvalidLeftOut++
			continue
		}
		recs = append(recs, rec)
	}
	var start time.Time
	if len(recs) > 0 {
		start = recs[0].Timestamp
	}
	var out [][]byte
	next := 0 // index of the next chat
	for from := 0; from < len(recs); from += chatsPerMessage {
		batch := recs[from:min(from+chatsPerMessage, len(recs))]
		chats, apps := make([]genaitrace.Chat, len(batch)), make([]string, len(batch))
		for k, r := range batch {
			chats[k], apps[k] = genaitrace.FromRecord(r), r.App
		}
		td := genaitrace.TracesByService(genaitrace.Options{Seed: seed, First: next, Start: start, NonGenAI: otlpNonGenAISpans}, chats, apps)
		next += len(chats)
		info.Spans += td.SpanCount()
		info.Resources += td.ResourceSpans().Len()
		var b []byte
		var err error
		if format == benchFormatOTLPJSON {
			b, err = genaitrace.MarshalJSON(td)
		} else {
			b, err = genaitrace.MarshalProto(td)
		}
		if err != nil {
			return nil, info, fmt.Errorf("--format %s: %w", format, err)
		}
		if len(b) > otlpMaxMessageBytes {
			return nil, info, fmt.Errorf("--spans-per-message: export %d is %d bytes, over the %d-byte cap (raterd's max_record_bytes, Kafka's message.max.bytes); ask for fewer spans per message",
				len(out), len(b), otlpMaxMessageBytes)
		}
		info.Bytes += int64(len(b))
		out = append(out, b)
	}
	info.Messages, info.Records = len(out), len(recs)
	if len(out) > 0 {
		info.SpansPerMessage = float64(info.Spans) / float64(len(out))
		info.RecordsPerMessage = float64(info.Records) / float64(len(out))
	}
	return out, info, nil
}

// otlpExpected decodes the OTLP exports as the raterd run will and returns the score rows
// raterd stores for them (one per record × applicable evaluator), the records and the
// spans skipped.
func otlpExpected(evaluators []*scorer.Evaluator, format string, values [][]byte) (rows, records, skipped int64, err error) {
	d := consumer.NewDecoder(consumer.Limits{MaxRecordBytes: consumer.DefaultMaxRecordBytes,
		MaxRecordsPerMessage: consumer.DefaultMaxRecordsPerMessage, MaxMessagesPerRecord: consumer.DefaultMaxMessagesPerRecord})
	for i, v := range values {
		res, err := d.DecodeMessage(format, v, record.Source{Offset: int64(i)}, time.Now())
		if err != nil {
			return 0, 0, 0, fmt.Errorf("--format %s: generated export %d does not decode: %w", format, i, err)
		}
		for _, n := range res.Skipped {
			skipped += int64(n)
		}
		for _, r := range res.Records {
			records++
			for _, e := range evaluators {
				if e.Applies(r) {
					rows++
				}
			}
		}
	}
	return rows, records, skipped, nil
}

// chatsPerMessage is the chats (traces) an export of spansPerMessage spans holds.
func chatsPerMessage(spansPerMessage int) int {
	return max(spansPerMessage/otlpSpansPerTrace, 1)
}
