package scorer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"raterd/record"
)

// Micro-benchmarks of the scorer's per-task CPU work on realistic traffic: cache-key
// hashing, score-row building, a whole batch through the scorer, and the heuristic checks
// over a traffic mix (BenchmarkHeuristic in package checks measures each check on one
// fixed 1.5 KB and one 100 KB answer; BenchmarkHeuristicTraffic here cycles through
// varied answers of 200–2,000 bytes). Names are stable for benchstat:
//
//	go test -run='^$' -bench='CacheKey|ScoreRow|ScoreBatch|HeuristicTraffic' -benchmem -count=10 ./scorer/ > new.txt
//	benchstat old.txt new.txt

// trafficCorpusSize is how many distinct records a benchmark cycles through.
const trafficCorpusSize = 256

// trafficText returns deterministic prose of at least n bytes (at most one word more),
// without a final full stop.
func trafficText(r *rand.Rand, n int) string {
	words := strings.Fields(`the a to and of for your is in it on with that you can this be
		account password reset settings billing invoice order refund shipping delivery error
		request response model service please thanks issue update version install configure
		café naïve 日本語 customer support ticket priority server timeout retry dashboard`)
	var b strings.Builder
	b.Grow(n + 16)
	for b.Len() < n {
		if b.Len() > 0 {
			switch r.IntN(14) {
			case 0:
				b.WriteString(". ")
			case 1:
				b.WriteString(".\n\n")
			case 2:
				b.WriteString(", ")
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.String()
}

// trafficResponse returns an answer of about n bytes (200–2,000) in one of the shapes the
// heuristic checks look for, chosen by kind: a plain Markdown answer, a refusal, an answer
// leaking an e-mail address, a phone number and a card number, a JSON object, JSON broken
// off mid-value, an answer cut off mid-sentence, and one that falls into a loop.
func trafficResponse(r *rand.Rand, kind, n int) string {
	switch kind {
	case 1:
		return "I'm sorry, but I can't help with that request. " + trafficText(r, n-49) + "."
	case 2:
		body := trafficText(r, n-120)
		cut := len(body) / 2
		for cut < len(body) && body[cut] != ' ' {
			cut++
		}
		return body[:cut] + " You can reach me at jane.doe@example.com or +1 415 555 0132; card 4111 1111 1111 1111." + body[cut:] + "."
	case 3, 4:
		var b strings.Builder
		b.WriteString(`{"summary": "`)
		b.WriteString(strings.ReplaceAll(trafficText(r, n/2), "\n", `\n`))
		b.WriteString(`", "items": [`)
		for i := 0; b.Len() < n-20; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, `{"id": %d, "label": %q, "score": %.2f}`, i, trafficText(r, 12), r.Float64())
		}
		b.WriteString(`], "ok": true}`)
		if kind == 4 {
			return b.String()[:b.Len()*2/3] // broken off: not valid JSON
		}
		return b.String()
	case 5:
		s := trafficText(r, n)
		if i := strings.LastIndexByte(s, ' '); i > 0 {
			s = s[:i] // ends mid-sentence
		}
		return strings.TrimRight(s, ".,\n ") + " and the"
	case 6:
		loop := trafficText(r, 60+r.IntN(60)) + " "
		head := trafficText(r, n/3)
		return head + ". " + strings.Repeat(loop, max(1, (n-len(head))/len(loop)))
	default:
		return "Sure! Here is how to do it.\n\n1. " + trafficText(r, n/3) + ".\n2. " + trafficText(r, n/3) +
			".\n\n```sh\nraterd migrate --config raterd.yaml\n```\n\n" + trafficText(r, n/3-60) + ". Let me know if that helps."
	}
}

// trafficRecords returns n records, deterministic for a seed: prompts of 200–4,000 bytes
// (a quarter as chat transcripts; a quarter asking for JSON), responses of 200–2,000 bytes
// in the shapes of trafficResponse (about half plain answers), a reference and a candidate
// answer, metadata labels and a trace id.
func trafficRecords(n int, seed uint64) []*record.Record {
	r := rand.New(rand.NewPCG(seed, 0x7ea))
	base := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	out := make([]*record.Record, n)
	for i := range out {
		prompt := trafficText(r, 200+r.IntN(3801))
		if r.IntN(4) == 0 {
			prompt += " Respond in JSON with keys summary and items."
		}
		kind := r.IntN(14) // 0 and 7–13: plain answers
		rec := &record.Record{
			ID:         fmt.Sprintf("req-%08x", r.Uint32()),
			Timestamp:  base.Add(time.Duration(i) * time.Second),
			Model:      fmt.Sprintf("support-llm-v%d", 6+r.IntN(3)),
			App:        []string{"helpdesk", "billing", "search", "agent", "docs"}[r.IntN(5)],
			Response:   trafficResponse(r, kind, 200+r.IntN(1801)),
			Reference:  trafficText(r, 200+r.IntN(801)),
			Candidates: []record.Candidate{{Model: "support-llm-v5", Response: trafficText(r, 200+r.IntN(1801))}},
			Metadata:   map[string]string{"region": "eu-west-1", "tier": "pro", "route": "/v1/chat"},
			TraceID:    fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64()),
			Source:     record.Source{Topic: "llm-traffic", Partition: i % 8, Offset: int64(i)},
		}
		if r.IntN(4) == 0 {
			rec.Messages = []record.Message{
				{Role: "system", Content: "You are a helpful support assistant."},
				{Role: "user", Content: prompt[:len(prompt)/2]},
				{Role: "assistant", Content: "Could you tell me more?"},
				{Role: "user", Content: prompt[len(prompt)/2:]},
			}
		} else {
			rec.Prompt = prompt
		}
		out[i] = rec
	}
	return out
}

// benchEvaluator prepares e for a judge of the given kind, failing the benchmark on error.
func benchEvaluator(b *testing.B, kind JudgeKind, e *Evaluator) *Evaluator {
	b.Helper()
	if err := e.Prepare("evaluators[0]", kind); err != nil {
		b.Fatal(err)
	}
	return e
}

// benchModelEvaluator is a pointwise rubric reading fields.
func benchModelEvaluator(b *testing.B, task string, fields ...string) *Evaluator {
	e := &Evaluator{Name: "helpfulness", Judge: "pool", Task: task,
		Criteria: "Does the response fully and correctly address the request?", Fields: fields}
	if task == TaskPointwise {
		e.Scale = Scale{Min: 1, Max: 5}
	}
	return benchEvaluator(b, KindModel, e)
}

// BenchmarkCacheKey hashes the cache key of one record × evaluator, as the scorer does for
// every task; bytes/s counts the record fields hashed. Sub-benchmarks name the fields the
// evaluator reads.
func BenchmarkCacheKey(b *testing.B) {
	recs := trafficRecords(trafficCorpusSize, 1)
	for _, bc := range []struct {
		name string
		eval func(*testing.B) *Evaluator
	}{
		{"response", func(b *testing.B) *Evaluator {
			return benchEvaluator(b, KindHeuristic, &Evaluator{Name: "refusal", Judge: "checks", Check: checkRefusal})
		}},
		{"prompt+response", func(b *testing.B) *Evaluator {
			return benchModelEvaluator(b, TaskPointwise, FieldPrompt, FieldResponse)
		}},
		{"prompt+response+reference", func(b *testing.B) *Evaluator {
			return benchModelEvaluator(b, TaskPointwise, FieldPrompt, FieldResponse, FieldReference)
		}},
		{"messages+response", func(b *testing.B) *Evaluator {
			return benchModelEvaluator(b, TaskPointwise, FieldMessages, FieldResponse)
		}},
		{"pairwise", func(b *testing.B) *Evaluator {
			return benchModelEvaluator(b, TaskPairwise, FieldPrompt, FieldResponse, FieldCandidates)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := bc.eval(b)
			hashed := 0
			for _, r := range recs {
				for _, in := range e.Inputs(r) {
					hashed += len(in.Text)
				}
			}
			b.SetBytes(int64(hashed / len(recs)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if k := CacheKey(e, "openai:prometheus-7b-v2.0", recs[i%len(recs)]); len(k) != 64 {
					b.Fatalf("CacheKey = %q, want 64 hex digits", k)
				}
				i++
			}
		})
	}
}

// BenchmarkScoreRow builds one score row from a judge's verdict (what the scorer does for
// every task of a batch): a fresh verdict, one served from the cache, a judge error, and
// a 4 KiB explanation cut to the 1 KiB bound.
func BenchmarkScoreRow(b *testing.B) {
	recs := trafficRecords(trafficCorpusSize, 2)
	e := benchModelEvaluator(b, TaskPointwise, FieldPrompt, FieldResponse)
	s, err := New([]*Evaluator{e}, map[string]Judge{"pool": &countingJudge{ident: "openai:prometheus-7b-v2.0"}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 3))
	ok := Verdict{Value: 4, Label: "4", Confidence: 0.83, Explanation: trafficText(r, 300),
		Status: record.StatusOK, Latency: 412 * time.Millisecond, Attempts: 1}
	long := ok
	long.Explanation = trafficText(r, 4096)
	failed := Verdict{Err: fmt.Errorf("judge: HTTP 400: prompt of %d tokens exceeds the context window", 9000), Attempts: 1}
	now := time.Date(2026, 11, 28, 12, 0, 1, 0, time.UTC)
	for _, bc := range []struct {
		name   string
		v      Verdict
		cached bool
		status string
	}{
		{"ok", ok, false, record.StatusOK},
		{"cached", ok, true, record.StatusOK},
		{"judge_error", failed, false, record.StatusJudgeError},
		{"explanation=4KiB", long, false, record.StatusOK},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				row := s.row(Task{Evaluator: e, Record: recs[i%len(recs)]}, bc.v, bc.cached, now)
				if row.Status != bc.status || len(row.Explanation) > DefaultMaxExplanationBytes {
					b.Fatalf("row status %q, explanation %d bytes", row.Status, len(row.Explanation))
				}
				i++
			}
		})
	}
}

// BenchmarkScoreBatch scores a batch of 256 distinct records through the scorer without a
// cache: evaluator matching, cache keys, in-batch deduplication, in-flight claims, the
// judge calls and the rows. judge=fake isolates the scorer's own work (one rubric read by
// a judge that answers at once); judge=heuristic runs the six record-scope built-in checks, the CPU
// work of a checks-only deployment. records/s is in the custom metric.
func BenchmarkScoreBatch(b *testing.B) {
	recs := trafficRecords(256, 4)
	var checks []*Evaluator
	for _, c := range recordChecks() {
		checks = append(checks, benchEvaluator(b, KindHeuristic, &Evaluator{Name: c, Judge: "checks", Check: c}))
	}
	for _, bc := range []struct {
		name   string
		evals  []*Evaluator
		judges map[string]Judge
	}{
		{"judge=fake", []*Evaluator{benchModelEvaluator(b, TaskPointwise, FieldPrompt, FieldResponse)},
			map[string]Judge{"pool": &countingJudge{ident: "fake:v1"}}},
		{"judge=heuristic", checks, map[string]Judge{"checks": NewHeuristicJudge()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := New(bc.evals, bc.judges, Options{})
			if err != nil {
				b.Fatal(err)
			}
			want := len(recs) * len(bc.evals)
			b.ReportAllocs()
			for b.Loop() {
				rows, _, err := s.ScoreBatch(context.Background(), recs)
				if err != nil || len(rows) != want {
					b.Fatalf("ScoreBatch: %d rows, err %v; want %d rows", len(rows), err, want)
				}
			}
			b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkHeuristicTraffic runs each built-in check over a traffic mix (see
// trafficRecords), one task per call as the check would see one record; all runs the
// six record-scope checks of one record in one call. bytes/s counts response bytes checked.
func BenchmarkHeuristicTraffic(b *testing.B) {
	recs := trafficRecords(trafficCorpusSize, 5)
	respBytes := 0
	for _, r := range recs {
		respBytes += len(r.Response)
	}
	j := NewHeuristicJudge()
	evals := map[string]*Evaluator{}
	for _, c := range recordChecks() {
		evals[c] = benchEvaluator(b, KindHeuristic, &Evaluator{Name: c, Judge: "checks", Check: c})
	}
	for _, name := range append(recordChecks(), "all") {
		b.Run(name, func(b *testing.B) {
			checks := []string{name}
			if name == "all" {
				checks = recordChecks()
			}
			// One task list per record, built up front so that the loop measures the checks.
			tasks := make([][]Task, len(recs))
			for i, r := range recs {
				for _, c := range checks {
					tasks[i] = append(tasks[i], Task{Evaluator: evals[c], Record: r})
				}
			}
			b.SetBytes(int64(respBytes * len(checks) / len(recs)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				vs, err := j.Judge(context.Background(), tasks[i%len(tasks)])
				if err != nil || len(vs) != len(checks) {
					b.Fatalf("Judge: %d verdicts, err %v", len(vs), err)
				}
				for _, v := range vs {
					if v.Err != nil {
						b.Fatal(v.Err)
					}
				}
				i++
			}
		})
	}
}

// TestTrafficRecordsExerciseTheChecks keeps the benchmarks' traffic honest: its prompts
// and responses have the promised sizes, and every check but empty (no answer in the mix
// is empty) both passes and fails on some of it, so no check is measured on its fast path
// alone.
func TestTrafficRecordsExerciseTheChecks(t *testing.T) {
	recs := trafficRecords(trafficCorpusSize, 5)
	for _, r := range recs {
		if p := len(r.PromptText()); p < 200 || p > 4200 {
			t.Errorf("record %s: prompt of %d bytes, want 200–4,000 (plus a JSON request or chat roles)", r.ID, p)
		}
		if n := len(r.Response); n < 150 || n > 2100 {
			t.Errorf("record %s: response of %d bytes, want about 200–2,000", r.ID, n)
		}
	}
	j := NewHeuristicJudge()
	for _, c := range recordChecks() {
		e := &Evaluator{Name: c, Judge: "checks", Check: c}
		if err := e.Prepare("evaluators[0]", KindHeuristic); err != nil {
			t.Fatal(err)
		}
		tasks := make([]Task, len(recs))
		for i, r := range recs {
			tasks[i] = Task{Evaluator: e, Record: r}
		}
		vs, err := j.Judge(context.Background(), tasks)
		if err != nil {
			t.Fatal(err)
		}
		pass := 0
		for _, v := range vs {
			if v.Err != nil {
				t.Fatalf("%s: %v", c, v.Err)
			}
			if v.Value == 1 {
				pass++
			}
		}
		t.Logf("%s: %d of %d pass", c, pass, len(vs))
		if pass == 0 || pass == len(vs) && c != checkEmpty {
			t.Errorf("%s passes %d of %d records; want some of each outcome", c, pass, len(vs))
		}
	}
}
