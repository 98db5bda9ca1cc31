package app

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"raterd/consumer"
	"raterd/internal/judgesim"
	"raterd/internal/report/htmlreport"
	"raterd/record"
	"raterd/scorer"
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
			dir := t.TempDir()
			out := filepath.Join(dir, "scores.ndjson")
			// One format writes the HTML report too (the others check that none is
			// written without --report).
			var report string
			if format == "mixed" {
				report = filepath.Join(dir, "report.html")
			}
			var stdout, stderr bytes.Buffer
			err := Demo(context.Background(), DemoOptions{Traffic: "../../testdata/traffic.jsonl", Out: out, Report: report, Quiet: true, Format: format}, &stdout, &stderr)
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
			checkDemoReport(t, stdout.String(), report, out)

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

// checkDemoReport checks the demo's HTML report: named in the summary with the rows it
// holds, written, self-contained and built from every row of the scores file. Without a
// report path, the summary names none and no file is written.
func checkDemoReport(t *testing.T, summary, report, scores string) {
	t.Helper()
	line := regexp.MustCompile(`(?m)^report\s+(\S+)\s+\(open it in a browser: .* from (\d+) score rows in (\S+);`).FindStringSubmatch(summary)
	if report == "" {
		if line != nil || strings.Contains(summary, "\nreport ") {
			t.Errorf("the summary names a report that was not asked for:\n%s", summary)
		}
		return
	}
	if line == nil || line[1] != report || line[3] != scores {
		t.Fatalf("the summary does not name the report %s built from %s:\n%s", report, scores, summary)
	}
	page, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	// The rows the report counts are the file's.
	f, err := os.ReadFile(scores)
	if err != nil {
		t.Fatal(err)
	}
	if rows := bytes.Count(f, []byte("\n")); line[2] != strconv.Itoa(rows) {
		t.Errorf("the summary says the report holds %s rows; the scores file has %d", line[2], rows)
	}
	html := string(page)
	if !strings.HasPrefix(html, "<!DOCTYPE html>") || !strings.Contains(html, "</html>") {
		t.Errorf("%s is not a whole HTML page (%d bytes)", report, len(page))
	}
	for _, bad := range []string{"<script", "http://", "https://", "@import", "url("} {
		if strings.Contains(strings.ToLower(html), bad) {
			t.Errorf("%s holds %q: the report must be self-contained", report, bad)
		}
	}
	for _, e := range []string{"helpfulness", "preference", "refusal", "conv_resolution", "run_grounded"} {
		if !strings.Contains(html, e) {
			t.Errorf("%s does not show evaluator %s", report, e)
		}
	}
	if strings.Count(html, "<svg") < 2 {
		t.Errorf("%s draws %d charts", report, strings.Count(html, "<svg"))
	}
}

// TestDemoReportFromMemory: without an NDJSON file, the report folds in the rows as the
// demo's summary sink receives them, and is written like the file-built one.
func TestDemoReportFromMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.html")
	s := newScoreSummary()
	s.report = htmlreport.NewAggregator(htmlreport.Options{})
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	var rows []record.Score
	for i := range 10 {
		rows = append(rows, record.Score{EventTime: at.Add(time.Duration(i) * 10 * time.Minute), Evaluator: "helpfulness",
			Model: "m1", Judge: "judgesim", Value: float64(1 + i%5), Status: record.StatusOK, RecordID: fmt.Sprint("r", i)})
	}
	rows[3].Status = record.StatusParseFailure
	if err := s.WriteScores(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	r := writeDemoReport(DemoOptions{Report: path}, s)
	if r.err != nil || r.rows != len(rows) || r.source != "the rows written" {
		t.Fatalf("report: %+v, want %d rows from the rows written", r, len(rows))
	}
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "helpfulness") || !strings.Contains(string(page), "<svg") {
		t.Errorf("the report does not chart the rows:\n%.2000s", page)
	}
	// A report that cannot be written is an error the summary shows.
	r = writeDemoReport(DemoOptions{Report: filepath.Join(t.TempDir(), "missing", "report.html")}, s)
	if r.err == nil {
		t.Fatal("a report in a missing directory was written")
	}
	var out bytes.Buffer
	printDemoSummary(&out, consumer.Stats{}, scorer.BatchStats{}, s, judgesim.Stats{}, time.Second, nil, r)
	if !strings.Contains(out.String(), "(not written: ") {
		t.Errorf("the summary does not say the report failed:\n%s", out.String())
	}
}

// TestDemoReportDash: --report - is refused before anything runs (stdout is the summary's).
func TestDemoReportDash(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := Demo(context.Background(), DemoOptions{Traffic: "../../testdata/traffic.jsonl", Out: filepath.Join(t.TempDir(), "s.ndjson"), Report: "-", Quiet: true}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--report -") {
		t.Fatalf("err = %v, want a refusal of --report -", err)
	}
}
