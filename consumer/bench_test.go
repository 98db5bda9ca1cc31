package consumer

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"raterd/record"
)

// Micro-benchmarks of the consumer's per-message work: decoding a message value and
// adding the record to the micro-batcher. Names are stable for benchstat:
//
//	go test -run='^$' -bench='Decode|Batcher' -benchmem -count=10 ./consumer/ > new.txt
//	benchstat old.txt new.txt

// benchCorpusSize is how many distinct message values a benchmark cycles through: enough
// that branch predictors and caches see varied input, few enough to build quickly.
const benchCorpusSize = 256

// benchText returns deterministic prose of about n bytes (at least n, at most one word
// more): support-desk vocabulary with punctuation, a JSON-escaped quote and newline now
// and then, and a little non-ASCII text, as real prompts and answers carry.
func benchText(r *rand.Rand, n int) string {
	words := strings.Fields(`the a to and of for your is in it on with that you can this be
		account password reset settings billing invoice order refund shipping delivery error
		request response model service please thanks issue update version install configure
		café naïve résumé 日本語 "quoted" customer support ticket priority server timeout retry`)
	var b strings.Builder
	b.Grow(n + 16)
	for b.Len() < n {
		if b.Len() > 0 {
			switch r.IntN(12) {
			case 0:
				b.WriteString(".\n")
			case 1:
				b.WriteString(", ")
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.String()
}

// benchValue is one message value in the wire format of the input record (docs/architecture.md).
type benchValue struct {
	ID         string             `json:"id,omitempty"`
	Timestamp  string             `json:"timestamp,omitempty"`
	Model      string             `json:"model"`
	App        string             `json:"app,omitempty"`
	Prompt     string             `json:"prompt,omitempty"`
	Messages   []record.Message   `json:"messages,omitempty"`
	Response   string             `json:"response"`
	Reference  string             `json:"reference,omitempty"`
	Candidates []record.Candidate `json:"candidates,omitempty"`
	Metadata   map[string]string  `json:"metadata,omitempty"`
	TraceID    string             `json:"trace_id,omitempty"`
}

// benchValues returns n message values of one shape, deterministic for a seed. Prompts
// are 200–4,000 bytes and responses 200–2,000 bytes. Shapes:
//
//   - prompt: id, timestamp, model, app, prompt, response, two metadata labels;
//   - messages: the prompt as a chat transcript of three to seven turns instead;
//   - full: prompt plus reference, a candidate, four labels and a trace id;
//   - no_id_no_timestamp: neither id nor timestamp, so both come from the Kafka message.
func benchValues(tb testing.TB, n int, seed uint64, shape string) [][]byte {
	tb.Helper()
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	base := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	out := make([][]byte, n)
	for i := range out {
		v := benchValue{
			ID:        fmt.Sprintf("req-%08x", r.Uint32()),
			Timestamp: base.Add(time.Duration(i) * time.Second).Format(time.RFC3339),
			Model:     fmt.Sprintf("support-llm-v%d", 6+r.IntN(3)),
			App:       []string{"helpdesk", "billing", "search", "agent", "docs"}[r.IntN(5)],
			Prompt:    benchText(r, 200+r.IntN(3801)),
			Response:  benchText(r, 200+r.IntN(1801)),
			Metadata:  map[string]string{"region": "eu-west-1", "tier": "pro"},
		}
		switch shape {
		case "prompt":
		case "messages":
			turns := 3 + r.IntN(5)
			total := len(v.Prompt)
			v.Prompt = ""
			for t := range turns {
				role := "user"
				if t == 0 {
					role = "system"
				} else if t%2 == 0 {
					role = "assistant"
				}
				v.Messages = append(v.Messages, record.Message{Role: role, Content: benchText(r, max(total/turns, 20))})
			}
		case "full":
			v.Reference = benchText(r, 200+r.IntN(801))
			v.Candidates = []record.Candidate{{Model: "support-llm-v5", Response: benchText(r, 200+r.IntN(1801))}}
			v.Metadata["customer"] = fmt.Sprintf("c-%d", r.IntN(10000))
			v.Metadata["route"] = "/v1/chat"
			v.TraceID = fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())
		case "no_id_no_timestamp":
			v.ID, v.Timestamp = "", ""
		default:
			tb.Fatalf("unknown shape %q", shape)
		}
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = b
	}
	return out
}

func totalBytes(values [][]byte) int {
	n := 0
	for _, v := range values {
		n += len(v)
	}
	return n
}

// BenchmarkDecode decodes message values as the pipeline does for every fetched message;
// bytes/s is message-value throughput. The invalid_json case is the dead-letter path: a
// value that breaks off in the middle of the response.
func BenchmarkDecode(b *testing.B) {
	msgTime := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for _, shape := range []string{"prompt", "messages", "full", "no_id_no_timestamp", "invalid_json"} {
		b.Run(shape, func(b *testing.B) {
			var values [][]byte
			wantErr := shape == "invalid_json"
			if wantErr {
				values = benchValues(b, benchCorpusSize, 1, "prompt")
				for i, v := range values {
					cut := len(v) * 3 / 4
					for !utf8.RuneStart(v[cut]) {
						cut--
					}
					values[i] = v[:cut]
					var de *DecodeError
					if _, err := Decode(values[i], record.Source{}, msgTime, DefaultMaxRecordBytes); !errors.As(err, &de) || de.Reason != ReasonInvalidJSON {
						b.Fatalf("cut value %d: err = %v, want %s", i, err, ReasonInvalidJSON)
					}
				}
			} else {
				values = benchValues(b, benchCorpusSize, 1, shape)
			}
			b.SetBytes(int64(totalBytes(values) / len(values)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				v := values[i%len(values)]
				src := record.Source{Topic: "llm-traffic", Partition: i % 8, Offset: int64(i)}
				rec, err := Decode(v, src, msgTime, DefaultMaxRecordBytes)
				if wantErr != (err != nil) || !wantErr && rec.Response == "" {
					b.Fatalf("Decode(value %d) = %v, %v", i%len(values), rec, err)
				}
				i++
			}
		})
	}
}

// BenchmarkBatcher adds decoded records to a batcher the way the batch loop does (Add,
// then UntilNext for the linger timer, Flush when Add says so); one op is one record.
// Sub-benchmarks flush by count (the default 256 records, and 16) and by bytes (a 256 KiB
// cap, reached after about 80 of these records, long before the count); records/batch
// reports the flushed batches' mean size.
func BenchmarkBatcher(b *testing.B) {
	values := benchValues(b, benchCorpusSize, 2, "prompt")
	items := make([]item, len(values))
	for i, v := range values {
		rec, err := Decode(v, record.Source{Topic: "llm-traffic", Offset: int64(i)}, time.Time{}, DefaultMaxRecordBytes)
		if err != nil {
			b.Fatal(err)
		}
		items[i] = item{recs: []*record.Record{rec}, size: len(v)}
	}
	for _, bc := range []struct {
		name   string
		policy BatchPolicy
	}{
		{"count=256", BatchPolicy{MaxRecords: 256}},
		{"count=16", BatchPolicy{MaxRecords: 16}},
		{"bytes=256KiB", BatchPolicy{MaxRecords: 4096, MaxBytes: 256 << 10}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			policy := bc.policy
			if err := policy.Validate("batch"); err != nil {
				b.Fatal(err)
			}
			bt := NewBatcher[item](policy, nil)
			b.ReportAllocs()
			i, flushes, flushed := 0, 0, 0
			for b.Loop() {
				it := items[i%len(items)]
				if bt.Add(it, it.size) {
					got, _ := bt.Flush()
					if len(got) == 0 {
						b.Fatal("Flush after Add returned true gave no items")
					}
					flushes++
					flushed += len(got)
				} else if bt.UntilNext() < 0 {
					b.Fatal("UntilNext < 0 with items waiting")
				}
				i++
			}
			if flushes > 0 {
				b.ReportMetric(float64(flushed)/float64(flushes), "records/batch")
			}
		})
	}
}
