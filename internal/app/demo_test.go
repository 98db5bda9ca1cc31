package app

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"raterd/sinks"
)

// TestDemoFormats runs `raterd demo` in each traffic format on the repository's demo
// traffic: every valid record with an answer is scored, whatever carried it, and the OTLP
// rows point back to their spans. Besides its traffic file, every run also reads the
// agent runs (OTLP spans on their own topic; each run's tool and agent spans are trace
// parts, which record evaluators skip), and the raterd and mixed runs the support
// conversations (raterd records).
func TestDemoFormats(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo four times")
	}
	records := regexp.MustCompile(`decoded into (\d+) records, (\d+) dead-lettered`)
	counts := map[string][2]int{}
	convTurns, _, err := DemoExtraTraffic()
	if err != nil {
		t.Fatal(err)
	}
	const agentParts = 2 * demoAgentRuns // each run's execute_tool and invoke_agent spans
	for _, format := range DemoFormats() {
		t.Run(format, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "scores.ndjson")
			var stdout, stderr bytes.Buffer
			err := Demo(context.Background(), DemoOptions{Traffic: "../../testdata/traffic.jsonl", Out: out, Quiet: true, Format: format}, &stdout, &stderr)
			if err != nil {
				t.Fatalf("demo --format %s: %v\n%s", format, err, stderr.String())
			}
			m := records.FindStringSubmatch(stdout.String())
			if m == nil {
				t.Fatalf("no record count in the summary:\n%s", stdout.String())
			}
			n, _ := strconv.Atoi(m[1])
			dead, _ := strconv.Atoi(m[2])
			counts[format] = [2]int{n, dead}

			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rows, refusal, withSpan := 0, 0, 0
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				row, err := sinks.DecodeNDJSONScore(sc.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				rows++
				if row.Evaluator == "refusal" {
					refusal++
				}
				if row.Source.Topic != demoTopic {
					continue // the agent runs: spans in every format
				}
				if row.SpanID != "" {
					withSpan++
					if row.RecordID != row.TraceID+"-"+row.SpanID {
						t.Fatalf("OTLP row %s: record id is not trace-span (%s-%s)", row.RecordID, row.TraceID, row.SpanID)
					}
				}
			}
			if refusal != n-agentParts {
				t.Errorf("%d refusal rows for %d records, %d of them trace parts: every other record gets the check", refusal, n, agentParts)
			}
			switch format {
			case "raterd":
				if withSpan != 0 {
					t.Errorf("%d JSON rows carry a span id", withSpan)
				}
			case "mixed":
				if withSpan == 0 || withSpan == rows {
					t.Errorf("mixed traffic: %d of %d rows with a span id, want some but not all", withSpan, rows)
				}
			default:
				if withSpan == 0 {
					t.Errorf("no OTLP row carries a span id")
				}
			}
		})
	}
	// The demo traffic holds records with an empty answer: as JSON they are scored (the
	// empty check is for them), as spans they carry no output and are skipped; bad lines
	// are dead-lettered in every format.
	json := counts["raterd"]
	json[0] -= len(convTurns)
	for _, format := range []string{"otlp_proto", "otlp_json", "mixed"} {
		c := counts[format]
		if format == "mixed" {
			c[0] -= len(convTurns)
		}
		if c[1] != json[1] || c[0] > json[0] || c[0] < json[0]-json[0]/20 {
			t.Errorf("%s: %d records, %d dead letters; the JSON run had %d and %d", format, c[0], c[1], json[0], json[1])
		}
	}
}
