package bench

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"raterd/consumer"
	"raterd/internal/genaitrace"
	"raterd/record"
)

func TestBenchFormatFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--format", "raterd"},
		{"--format", "otlp_proto"},
		{"--format", "otlp_json", "--spans-per-message", "4"},
		{"--format", "otlp_proto", "--spans-per-message", "4096", "--records", "20000", "--baselines=false"},
	} {
		if err := CheckArgs(args); err != nil {
			t.Errorf("CheckArgs(%q): %v", args, err)
		}
	}
	var o benchOptions
	if err := CheckArgs([]string{"--format", "xml"}); err == nil || !strings.Contains(err.Error(), "--format") {
		t.Errorf("--format xml: %v", err)
	}
	fs := newTestFlagSet(&o)
	if err := fs.Parse(nil); err != nil || o.validate() != nil {
		t.Fatal(err)
	}
	if o.format != "raterd" || o.spansPerMessage != 64 {
		t.Errorf("defaults --format %q --spans-per-message %d; want raterd and 64", o.format, o.spansPerMessage)
	}
	if n := chatsPerMessage(64); n != 16 {
		t.Errorf("64 spans hold %d traces, want 16 (4 spans each)", n)
	}
	if n := chatsPerMessage(7); n != 1 {
		t.Errorf("7 spans hold %d traces, want 1", n)
	}
}

// wantOTLPRecord is what raterd's OTLP decoder should give for a raterd record: the
// system messages joined into System, the rest as Messages, a bare Prompt as one user
// message.
func wantOTLPRecord(r *record.Record) (system string, msgs []record.Message) {
	system = r.System
	if r.Prompt != "" {
		return system, []record.Message{{Role: "user", Content: r.Prompt}}
	}
	for _, m := range r.Messages {
		if m.Role == "system" || m.Role == "developer" {
			if system != "" {
				system += "\n"
			}
			system += m.Content
			continue
		}
		msgs = append(msgs, m)
	}
	return system, msgs
}

func TestOTLPValuesCarryTheSameRecords(t *testing.T) {
	o := benchOptions{invalid: 0.02, distinct: 1000}
	values, info := benchTraffic(o, 3, 600, "c")
	src := map[string]*record.Record{}
	for i, v := range values {
		if r, err := consumer.Decode(v, record.Source{Offset: int64(i)}, time.Time{}, 0); err == nil {
			src[r.ID] = r
		}
	}
	if len(src) != info.Valid || info.Invalid == 0 {
		t.Fatalf("%d distinct valid ids, traffic %+v", len(src), info)
	}
	evals := checkEvaluators(t)
	for _, format := range []string{benchFormatOTLPProto, benchFormatOTLPJSON} {
		t.Run(format, func(t *testing.T) {
			const seed = 11
			ov, oi, err := otlpValues(values, format, chatsPerMessage(64), seed, "topic")
			if err != nil {
				t.Fatal(err)
			}
			wantMsgs := (info.Valid + 15) / 16
			if oi.Records != info.Valid || oi.InvalidLeftOut != info.Invalid || oi.Messages != wantMsgs || len(ov) != wantMsgs ||
				oi.Spans != otlpSpansPerTrace*info.Valid || oi.Resources < oi.Messages || oi.Format != format || oi.Bytes == 0 {
				t.Fatalf("otlp traffic %+v; want %d records in %d messages, %d spans", oi, info.Valid, wantMsgs, otlpSpansPerTrace*info.Valid)
			}
			if format == benchFormatOTLPJSON && !bytes.HasPrefix(ov[0], []byte(`{"resourceSpans"`)) {
				t.Errorf("otlp_json export starts %.40q", ov[0])
			}
			d := consumer.NewDecoder(consumer.Limits{MaxRecordBytes: consumer.DefaultMaxRecordBytes})
			seen := map[string]bool{}
			n := 0
			for m, v := range ov {
				res, err := d.DecodeMessage(format, v, record.Source{Offset: int64(m)}, time.Time{})
				if err != nil {
					t.Fatalf("export %d: %v", m, err)
				}
				if got := res.Skipped["not_genai_span"]; got != (otlpNonGenAISpans+1)*len(res.Records) || len(res.Skipped) != 1 {
					t.Errorf("export %d: skipped %v for %d records", m, res.Skipped, len(res.Records))
				}
				for _, r := range res.Records {
					if r.ID != genaitrace.RecordID(seed, n) {
						t.Fatalf("record %d: id %s, want %s", n, r.ID, genaitrace.RecordID(seed, n))
					}
					n++
					id := r.Metadata["gen_ai.response.id"]
					s, ok := src[id]
					if !ok || seen[id] {
						t.Fatalf("record %s: response id %q is no raterd record, or repeats", r.ID, id)
					}
					seen[id] = true
					system, msgs := wantOTLPRecord(s)
					if r.Model != s.Model || r.App != s.App || r.Response != s.Response || r.System != system || r.Prompt != "" ||
						len(r.Messages) != len(msgs) {
						t.Fatalf("record %s: model %q app %q system %q, %d messages; want %q %q %q, %d (raterd record %s)",
							r.ID, r.Model, r.App, r.System, len(r.Messages), s.Model, s.App, system, len(msgs), id)
					}
					for k := range msgs {
						if r.Messages[k] != msgs[k] {
							t.Fatalf("record %s message %d: %+v, want %+v", r.ID, k, r.Messages[k], msgs[k])
						}
					}
					for _, e := range evals {
						if !e.Applies(r) {
							t.Errorf("record %s: %s does not apply", r.ID, e.Name)
						}
					}
				}
			}
			if n != info.Valid || len(seen) != info.Valid {
				t.Errorf("%d records decoded (%d distinct), want %d", n, len(seen), info.Valid)
			}
			rows, recs, skipped, err := otlpExpected(evals, format, ov)
			if err != nil || recs != int64(info.Valid) || rows != int64(len(evals)*info.Valid) || skipped != int64(oi.Spans-info.Valid) {
				t.Errorf("otlpExpected: %d rows, %d records, %d skipped, %v", rows, recs, skipped, err)
			}
		})
	}
}

func TestOTLPValuesRejectAnOversizedExport(t *testing.T) {
	values, _ := benchTraffic(benchOptions{distinct: 1000}, 1, 600, "big")
	if _, _, err := otlpValues(values, benchFormatOTLPJSON, 600, 1, "t"); err == nil || !strings.Contains(err.Error(), "--spans-per-message") {
		t.Errorf("600 records in one export: %v; want an error naming --spans-per-message", err)
	}
}

func TestFormatRatioPerValidRecord(t *testing.T) {
	rep := sampleReport()
	for i, r := range rep.Runs {
		if r.Name == runRaterd {
			rep.Runs[i].Valid = 9900 // 100 invalid: 2475 valid records/s, 250 ms / 9900
		}
	}
	o := benchRun{Name: otlpRunName(benchFormatOTLPProto), Records: 9900, Messages: 619, Valid: 9900, elapsed: 3 * time.Second, SpansPerMessage: 64, Skipped: 29700}
	o.cpu.User = 198 * time.Millisecond // 20 µs per record
	o.fillRates()
	rep.Runs = append(rep.Runs, o)
	rep.Ratios = benchRatios(rep.Runs)
	var got *benchRatio
	for i, r := range rep.Ratios {
		if r.Run == o.Name {
			got = &rep.Ratios[i]
		}
	}
	if got == nil || got.Baseline != runRaterd {
		t.Fatalf("no %s ratio in %+v", o.Name, rep.Ratios)
	}
	// 3300 records/s against 2475; 20 µs against 25.25 µs.
	if d := got.Throughput - 3300.0/2475; d > 1e-9 || d < -1e-9 {
		t.Errorf("throughput ratio %g, want %g", got.Throughput, 3300.0/2475)
	}
	if d := got.CPUPerRecord - 20/(250000.0/9900); d > 1e-9 || d < -1e-9 {
		t.Errorf("CPU ratio %g, want %g", got.CPUPerRecord, 20/(250000.0/9900))
	}
	var out bytes.Buffer
	printBenchReport(&out, rep)
	for _, want := range []string{"raterd-otlp_proto vs raterd (JSON), per valid record: throughput 1.33×, CPU/record 0.79×", "3300 records/s, 20.0 µs CPU/record, 9900 records in 619 messages (64.0 spans per message), 29700 spans skipped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// newTestFlagSet is the bench flag set on o with no environment.
func newTestFlagSet(o *benchOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	registerBenchFlags(fs, o, func(string) string { return "" })
	return fs
}
