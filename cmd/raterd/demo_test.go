package main

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"raterd/consumer"
	"raterd/internal/app"
	"raterd/record"
	"raterd/scorer"
	"raterd/sinks"
)

// demoChecks are the built-in checks of the demo's embedded config (internal/app/demo.go),
// each run on every record (but the trace parts of agent runs); demoConversationChecks on
// every conversation, demoRunChecks on every agent run.
var (
	demoChecks             = []string{"empty", "json_validity", "pii", "refusal", "repetition", "truncated"}
	demoConversationChecks = []string{"conv_unresolved", "conv_frustration", "conv_repetition"}
	demoRunChecks          = []string{"run_tool_calls", "run_grounded"}
)

// TestDemoCommand runs `raterd demo`, the README's main job, as a user does (from the
// repository root, default traffic file, through runMain and its flags) and checks its
// summary against the traffic it read and the score rows it wrote: every count in the
// summary is one a reader can trust.
func TestDemoCommand(t *testing.T) {
	t.Chdir("../..") // the README runs it from the repository root: the default --traffic is relative to it
	dir := t.TempDir()
	out, report := filepath.Join(dir, "scores.ndjson"), filepath.Join(dir, "report.html")
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"demo", "--quiet", "--out", out, "--report", report}, &stdout, &stderr); code != 0 {
		t.Fatalf("raterd demo: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	summary := stdout.String()
	t.Logf("raterd demo:\n%s", summary)

	// What the traffic holds, counted here from the file: messages, the valid records
	// among them, those the sampled helpfulness rubric (sample_rate 0.5) and the pairwise
	// preference (records with a candidate) apply to.
	want := demoTrafficCounts(t, "testdata/traffic.jsonl")

	num := func(re string) []int {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(summary)
		if m == nil {
			t.Fatalf("the summary has no match for %s", re)
		}
		ns := make([]int, len(m)-1)
		for i, s := range m[1:] {
			ns[i], _ = strconv.Atoi(s)
		}
		return ns
	}
	msgs := num(`(?m)^messages\s+(\d+)\s+\((\d+) decoded into (\d+) records, (\d+) dead-lettered\)`)
	if got := [4]int(msgs); got != [4]int{want.messages, want.valid, want.records, want.messages - want.valid} {
		t.Errorf("messages line: %v (messages, valid, records, dead letters); the traffic has %d messages, %d valid, %d records",
			got, want.messages, want.valid, want.records)
	}
	rowsLine := num(`(?m)^score rows\s+(\d+)\s+\((\d+) batches\)`)
	// The HTML report of the run: named in the summary, written, holding every row.
	if got := regexp.MustCompile(`(?m)^report\s+(\S+)\s+\(open it in a browser: .* from (\d+) score rows in (\S+);`).FindStringSubmatch(summary); got == nil || got[1] != report || got[3] != out || got[2] != strconv.Itoa(rowsLine[0]) {
		t.Errorf("report line %q: want %s, with the %d score rows of %s", got, report, rowsLine[0], out)
	}
	if fi, err := os.Stat(report); err != nil || fi.Size() == 0 {
		t.Errorf("the report %s was not written: %v", report, err)
	}
	// The README shows this summary: its deterministic counts are this run's.
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`(?m)^messages\s+\d+\s+\(\d+ decoded into \d+ records, \d+ dead-lettered\)$`, `(?m)^score rows\s+\d+\s`} {
		doc := regexp.MustCompile(re).Find(readme)
		run := regexp.MustCompile(re).FindString(summary)
		if doc == nil || strings.Join(strings.Fields(string(doc)), " ") != strings.Join(strings.Fields(run), " ") {
			t.Errorf("README.md's demo summary shows %q, the demo prints %q", doc, run)
		}
	}
	cache := num(`\(of (\d+) model judgements: (\d+) cache hits, (\d+) in-batch duplicates, (\d+) joined in flight; (\d+) built-in checks are not cached\)`)
	calls := num(`(?m)^judge calls\s+(\d+)\s+\(checks (\d+), judgesim (\d+); the judgesim simulator answered (\d+) requests\)`)

	// The rows the demo wrote, per evaluator and model, as the table should show them.
	rows := demoRows(t, out)
	total, byEval := 0, map[string]int{}
	for k, a := range rows {
		total += a.rows
		byEval[k[0]] += a.rows
		if a.ok != a.rows {
			t.Errorf("%s × %s: %d of %d rows ok; the demo's judges do not fail", k[0], k[1], a.ok, a.rows)
		}
	}
	// The model judges: helpfulness and preference on records, conv_resolution on every
	// conversation.
	modelJudgements := want.helpfulness + want.preference + want.conversations
	checks := len(demoChecks)*want.judged + len(demoConversationChecks)*want.conversations + len(demoRunChecks)*want.runs
	wantRows := checks + modelJudgements
	if rowsLine[0] != wantRows || total != wantRows {
		t.Errorf("score rows: the summary says %d, the NDJSON file holds %d; want %d (%d checks × %d records + %d × %d conversations + %d × %d agent runs + %d helpfulness + %d preference + %d conv_resolution)",
			rowsLine[0], total, wantRows, len(demoChecks), want.judged, len(demoConversationChecks), want.conversations, len(demoRunChecks), want.runs,
			want.helpfulness, want.preference, want.conversations)
	}
	for _, check := range demoChecks {
		if byEval[check] != want.judged {
			t.Errorf("%s: %d rows for %d records", check, byEval[check], want.judged)
		}
	}
	for _, check := range append(slices.Clone(demoConversationChecks), "conv_resolution") {
		if byEval[check] != want.conversations {
			t.Errorf("%s: %d rows for %d conversations", check, byEval[check], want.conversations)
		}
	}
	for _, check := range demoRunChecks {
		if byEval[check] != want.runs {
			t.Errorf("%s: %d rows for %d agent runs", check, byEval[check], want.runs)
		}
	}
	if byEval["helpfulness"] != want.helpfulness || byEval["preference"] != want.preference {
		t.Errorf("helpfulness %d rows, preference %d; the traffic's sample and candidates give %d and %d",
			byEval["helpfulness"], byEval["preference"], want.helpfulness, want.preference)
	}
	if rowsLine[1] < 1 {
		t.Errorf("%d batches", rowsLine[1])
	}

	// Every model judgement is answered once: by the judge, the cache, another record of
	// the batch, or a judgement in flight. The checks are judged every time, never cached.
	if cache[0] != modelJudgements || cache[4] != checks {
		t.Errorf("cache line: %d model judgements and %d checks; want %d and %d", cache[0], cache[4], modelJudgements, checks)
	}
	judgesim := calls[2]
	if answered := judgesim + cache[1] + cache[2] + cache[3]; answered != modelJudgements {
		t.Errorf("judgesim %d + cache hits %d + in-batch duplicates %d + joined in flight %d = %d, want the %d model judgements",
			judgesim, cache[1], cache[2], cache[3], answered, modelJudgements)
	}
	if calls[1] != checks || calls[0] != checks+judgesim {
		t.Errorf("judge calls line: %v; want checks %d and a total of checks + judgesim", calls, checks)
	}
	// Pairwise judgements ask both orders: between one and two requests per call.
	if req := calls[3]; req < judgesim || req > 2*judgesim {
		t.Errorf("judgesim answered %d requests for %d judge calls", req, judgesim)
	}

	// The table: one line per evaluator and model with the file's rows, mean and cached.
	_, table, ok := strings.Cut(summary, "scores per evaluator and model (mean over ok rows)\n")
	if !ok {
		t.Fatal("the summary has no table of scores per evaluator and model")
	}
	lineRE := regexp.MustCompile(`^\s*(\S+)\s+(\S+)\s+(\d+)\s+([0-9.]+)\s+(\d+)$`)
	seen := 0
	for i, line := range strings.Split(strings.TrimRight(table, "\n"), "\n") {
		if i == 0 {
			continue // the header
		}
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("table line %q", line)
			continue
		}
		a := rows[[2]string{m[1], m[2]}]
		if a == nil {
			t.Errorf("table line %q: no such rows in the file", line)
			continue
		}
		seen++
		n, _ := strconv.Atoi(m[3])
		mean, _ := strconv.ParseFloat(m[4], 64)
		cached, _ := strconv.Atoi(m[5])
		if n != a.rows || cached != a.cached || math.Abs(mean-a.sum/float64(a.ok)) > 0.0006 {
			t.Errorf("table line %q; the file has %d rows, mean %.4f, %d cached", line, a.rows, a.sum/float64(a.ok), a.cached)
		}
	}
	if seen != len(rows) {
		t.Errorf("the table has %d lines, the file %d evaluator × model pairs", seen, len(rows))
	}
}

// trafficCounts is what the demo's traffic holds for its evaluators: messages, the valid
// ones, the records they decode into, the records record evaluators judge (all but the
// trace parts of agent runs), those in the helpfulness rubric's 0.5 sample, those with a
// candidate, the conversations and the agent runs.
type trafficCounts struct {
	messages, valid, records, judged, helpfulness, preference, conversations, runs int
}

// demoTrafficCounts counts what the demo reads: the non-empty lines of a traffic file and
// the demo's conversations (raterd records, consumer.Decode) and agent runs (OTLP spans,
// the consumer's decoder).
func demoTrafficCounts(t *testing.T, path string) trafficCounts {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c trafficCounts
	conversations := map[string]bool{}
	add := func(r *record.Record) {
		c.records++
		if r.ConversationID != "" {
			conversations[r.ConversationID] = true
		}
		if r.TracePart {
			return
		}
		c.judged++
		if scorer.InSample(r.ID, 0.5) {
			c.helpfulness++
		}
		if len(r.Candidates) > 0 {
			c.preference++
		}
	}
	convLines, agentRuns, err := app.DemoExtraTraffic()
	if err != nil {
		t.Fatal(err)
	}
	lines := slices.Collect(bytes.Lines(data))
	for _, line := range append(lines, convLines...) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		c.messages++
		r, err := consumer.Decode(bytes.TrimSpace(line), record.Source{Topic: "llm-traffic"}, time.Unix(1, 0), 0)
		if err != nil {
			continue
		}
		c.valid++
		add(r)
	}
	dec := consumer.NewDecoder(consumer.Limits{OTLPUnknownModel: consumer.DefaultOTLPUnknownModel})
	for _, m := range agentRuns {
		c.messages++
		res, err := dec.DecodeMessage(consumer.FormatOTLPProto, m, record.Source{Topic: "agent-runs"}, time.Unix(1, 0))
		if err != nil {
			t.Fatalf("an agent run does not decode: %v", err)
		}
		c.valid++
		c.runs++
		for _, r := range res.Records {
			add(r)
		}
	}
	c.conversations = len(conversations)
	if c.messages == 0 || c.records == 0 || c.valid == c.messages || c.preference == 0 || c.conversations == 0 || c.runs == 0 {
		t.Fatalf("%s: %+v; the demo traffic has valid records, bad ones, pairs, conversations and agent runs", path, c)
	}
	return c
}

// rowAgg is the rows of one evaluator × model.
type rowAgg struct {
	rows, ok, cached int
	sum              float64
}

// demoRows reads the demo's NDJSON score rows, per evaluator and model.
func demoRows(t *testing.T, path string) map[[2]string]*rowAgg {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	aggs := map[[2]string]*rowAgg{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		row, err := sinks.DecodeNDJSONScore(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		k := [2]string{row.Evaluator, row.Model}
		a := aggs[k]
		if a == nil {
			a = &rowAgg{}
			aggs[k] = a
		}
		a.rows++
		if row.Cached {
			a.cached++
		}
		if row.Status == record.StatusOK {
			a.ok++
			a.sum += row.Value
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(aggs) == 0 {
		t.Fatalf("%s: no score rows", path)
	}
	return aggs
}
