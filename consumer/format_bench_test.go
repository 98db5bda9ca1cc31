package consumer_test

import (
	"runtime"
	"testing"
	"time"

	"raterd/consumer"
	"raterd/internal/genaitrace"
	"raterd/internal/trafficgen"
	"raterd/record"
)

// formatBenchRecords is how many records BenchmarkDecodeFormats decodes per pass: 64
// OTLP exports of 16 traces.
const formatBenchRecords = 1024

// formatBenchSpans is the spans per OTLP export (a typical Collector batch), 4 per trace:
// the HTTP root, two database spans and the chat span, as `raterd bench --format` makes
// them.
const formatBenchSpans = 64

// formatCorpus returns the same valid records as raterd JSON message values (one record
// each) and as OTLP exports in protobuf and JSON (formatBenchSpans spans each, grouped by
// app into resources), generated as `raterd bench` generates its traffic (trafficgen's
// exact-repeat records, prompts of 200–4,000 characters, responses of 200–2,000).
func formatCorpus(tb testing.TB) (raterd, proto, json [][]byte) {
	tb.Helper()
	values := trafficgen.Generate(trafficgen.Options{Seed: 1, Count: formatBenchRecords + 64, ExactRepeats: true, DistinctPrompts: 4 * formatBenchRecords})
	var recs []*record.Record
	for i, v := range values {
		r, err := consumer.Decode(v, record.Source{Offset: int64(i)}, time.Time{}, 0)
		if err != nil {
			continue // trafficgen's deliberately invalid lines
		}
		if len(recs) < formatBenchRecords {
			raterd, recs = append(raterd, v), append(recs, r)
		}
	}
	if len(recs) != formatBenchRecords {
		tb.Fatalf("%d valid records, want %d", len(recs), formatBenchRecords)
	}
	perExport := formatBenchSpans / 4
	for from := 0; from < len(recs); from += perExport {
		batch := recs[from:min(from+perExport, len(recs))]
		chats, apps := make([]genaitrace.Chat, len(batch)), make([]string, len(batch))
		for k, r := range batch {
			chats[k], apps[k] = genaitrace.FromRecord(r), r.App
		}
		td := genaitrace.TracesByService(genaitrace.Options{Seed: 1, First: from, NonGenAI: 2}, chats, apps)
		pb, err := genaitrace.MarshalProto(td)
		if err != nil {
			tb.Fatal(err)
		}
		js, err := genaitrace.MarshalJSON(td)
		if err != nil {
			tb.Fatal(err)
		}
		proto, json = append(proto, pb), append(json, js)
	}
	return raterd, proto, json
}

// BenchmarkDecodeFormats decodes the same 1,024 valid records as each input format, with
// the Decoder the pipeline uses: raterd JSON (one record per message), otlp_proto and
// otlp_json (64 spans, 16 records, per export; the 48 non-GenAI spans are skipped). One op
// is one message; ns/record, B/record and allocs/record divide by the records decoded, and
// the OTLP cases report ratio-ns/record and ratio-allocs/record against the raterd case run
// first in the same process (with -count, its last repetition):
//
//	go test ./consumer -run '^$' -bench BenchmarkDecodeFormats -benchmem -count 3
func BenchmarkDecodeFormats(b *testing.B) {
	raterd, proto, json := formatCorpus(b)
	d := consumer.NewDecoder(consumer.Limits{MaxRecordBytes: consumer.DefaultMaxRecordBytes,
		MaxRecordsPerMessage: consumer.DefaultMaxRecordsPerMessage, MaxMessagesPerRecord: consumer.DefaultMaxMessagesPerRecord})
	msgTime := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var baseNs, baseAllocs float64 // the raterd case's figures per record, this run
	for _, bc := range []struct {
		format string
		values [][]byte
	}{
		{consumer.FormatRaterd, raterd},
		{consumer.FormatOTLPProto, proto},
		{consumer.FormatOTLPJSON, json},
	} {
		b.Run(bc.format, func(b *testing.B) {
			var bytes int
			for _, v := range bc.values {
				bytes += len(v)
			}
			b.SetBytes(int64(bytes / len(bc.values)))
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			i, records := 0, 0
			for b.Loop() {
				v := bc.values[i%len(bc.values)]
				res, err := d.DecodeMessage(bc.format, v, record.Source{Topic: "llm-traffic", Partition: i % 4, Offset: int64(i)}, msgTime)
				if err != nil || len(res.Records) == 0 {
					b.Fatalf("%s message %d: %d records, %v", bc.format, i%len(bc.values), len(res.Records), err)
				}
				records += len(res.Records)
				i++
			}
			runtime.ReadMemStats(&after)
			ns := float64(b.Elapsed().Nanoseconds()) / float64(records)
			allocs := float64(after.Mallocs-before.Mallocs) / float64(records)
			b.ReportMetric(ns, "ns/record")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(records), "B/record")
			b.ReportMetric(allocs, "allocs/record")
			if bc.format == consumer.FormatRaterd {
				baseNs, baseAllocs = ns, allocs
			} else if baseNs > 0 && baseAllocs > 0 {
				b.ReportMetric(ns/baseNs, "ratio-ns/record")
				b.ReportMetric(allocs/baseAllocs, "ratio-allocs/record")
			}
		})
	}
}
