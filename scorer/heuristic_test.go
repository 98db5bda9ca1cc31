package scorer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"raterd/record"
	"raterd/scorer/checks"
)

// The tests of the checks themselves live in package checks; these test the
// HeuristicJudge adapter: evaluators and fields, verdict status, errors, order,
// cancellation and concurrency.

// Check names, as this package's tests spell them.
const (
	checkEmpty      = checks.NameEmpty
	checkJSON       = checks.NameJSON
	checkPII        = checks.NamePII
	checkRefusal    = checks.NameRefusal
	checkRepetition = checks.NameRepetition
	checkTruncated  = checks.NameTruncated
)

// heuristicTask builds a prepared task for one check, as the scorer would.
func heuristicTask(t testing.TB, check, prompt, response string) Task {
	t.Helper()
	ev := &Evaluator{Name: "h-" + check, Judge: "heuristic", Check: check}
	if err := ev.Prepare("evaluators[0]", KindHeuristic); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	return Task{Evaluator: ev, Record: &record.Record{ID: "r1", Model: "m", Prompt: prompt, Response: response}}
}

// judgeOneTask runs a single task through the public API and checks the invariants that
// hold for every verdict.
func judgeOneTask(t testing.TB, j *HeuristicJudge, task Task) Verdict {
	t.Helper()
	vs, err := j.Judge(context.Background(), []Task{task})
	if err != nil {
		t.Fatalf("Judge: %v", err)
	}
	if len(vs) != 1 {
		t.Fatalf("Judge returned %d verdicts for 1 task", len(vs))
	}
	v := vs[0]
	if v.Err != nil {
		t.Fatalf("verdict error: %v", v.Err)
	}
	if v.Value < 0 || v.Value > 1 || v.Confidence < 0 || v.Confidence > 1 {
		t.Fatalf("value %v / confidence %v out of [0,1]", v.Value, v.Confidence)
	}
	if v.Label == "" || v.Explanation == "" || v.Status != record.StatusOK || v.Attempts != 1 {
		t.Fatalf("incomplete verdict %+v", v)
	}
	return v
}

// checkResult runs the check of ev on rec directly, with the fields ev declares.
func checkResult(t testing.TB, set *checks.Set, ev *Evaluator, rec *record.Record) checks.Result {
	t.Helper()
	c, ok := set.Lookup(ev.Check)
	if !ok {
		t.Fatalf("no check %q", ev.Check)
	}
	in := checks.Input{Response: rec.Response}
	if c.Reads(checks.FieldPrompt) && slices.Contains(ev.Fields, FieldPrompt) {
		in.Prompt, in.HasPrompt = rec.PromptText(), true
	}
	return c.Run(in)
}

// sameResult reports whether a verdict carries exactly the result of the check.
func sameResult(v Verdict, r checks.Result) bool {
	return v.Value == r.Value && v.Label == r.Label && v.Confidence == r.Confidence && v.Explanation == r.Explanation
}

// TestHeuristicJudgeAgreesWithChecks: for every check, with default and explicit fields,
// the judge's verdict is the check's result on the fields the evaluator declares, with
// status ok and one attempt.
func TestHeuristicJudgeAgreesWithChecks(t *testing.T) {
	j := NewHeuristicJudge()
	set := checks.New()
	recs := trafficRecords(64, 5)
	for _, resp := range []string{"", "   ", "I'm sorry, but I can't help with that.", `{"a": [1, 2]}`, "```json\n{\"a\": 1\n",
		"Call +44 20 7946 0958 or mail a.b@corp.io.", strings.Repeat("loop ", 64), "The answer is", "Paris."} {
		for _, prompt := range []string{"", "Respond in JSON.", "What is the capital of France?"} {
			recs = append(recs, &record.Record{ID: "x", Model: "m", Prompt: prompt, Response: resp})
		}
		recs = append(recs, &record.Record{ID: "chat", Model: "m", Response: resp,
			Messages: []record.Message{{Role: "system", Content: "Always respond in JSON."}, {Role: "user", Content: "hi"}}})
	}
	for _, c := range recordChecks() {
		for _, fields := range [][]string{nil, {FieldResponse}, {FieldPrompt, FieldResponse}, {FieldResponse, FieldReference}} {
			ev := &Evaluator{Name: "h-" + c, Judge: "heuristic", Check: c, Fields: slices.Clone(fields)}
			if err := ev.Prepare("evaluators[0]", KindHeuristic); err != nil {
				t.Fatalf("%s %v: Prepare: %v", c, fields, err)
			}
			for _, rec := range recs {
				v := judgeOneTask(t, j, Task{Evaluator: ev, Record: rec})
				if r := checkResult(t, set, ev, rec); !sameResult(v, r) {
					t.Errorf("%s, fields %v, record %s: verdict %+v, check says %+v", c, fields, rec.ID, v, r)
				}
			}
		}
	}
}

// FuzzHeuristicJudge feeds arbitrary prompt/response pairs through the judge for every
// built-in check (FuzzHeuristicChecks in package checks fuzzes the checks themselves):
// every verdict is complete, with status ok and one attempt, and is exactly the check's
// result.
func FuzzHeuristicJudge(f *testing.F) {
	f.Add("Respond in JSON.", `{"a": [1, 2, {"b": null}]}`)
	f.Add("", "I'm sorry, but I can't help with that.")
	f.Add("", "Call +44 20 7946 0958 or mail a.b@corp.io; card 4242 4242 4242 4242.")
	f.Add("", strings.Repeat("loop ", 64))
	f.Add("", "```go\nfunc main() {\n")
	f.Add("", "\u200b <|endoftext|>")
	j := NewHeuristicJudge()
	set := checks.New()
	evs := make([]*Evaluator, 0, len(recordChecks()))
	for _, c := range recordChecks() {
		ev := &Evaluator{Name: "fuzz-" + c, Judge: "heuristic", Check: c}
		if err := ev.Prepare("evaluators[0]", KindHeuristic); err != nil {
			f.Fatal(err)
		}
		evs = append(evs, ev)
	}
	f.Fuzz(func(t *testing.T, prompt, response string) {
		rec := &record.Record{ID: "fuzz", Model: "m", Prompt: prompt, Response: response}
		tasks := make([]Task, len(evs))
		for i, ev := range evs {
			tasks[i] = Task{Evaluator: ev, Record: rec}
		}
		vs, err := j.Judge(context.Background(), tasks)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != len(tasks) {
			t.Fatalf("%d verdicts for %d tasks", len(vs), len(tasks))
		}
		for i, v := range vs {
			check := evs[i].Check
			if v.Err != nil {
				t.Fatalf("%s: unexpected error %v", check, v.Err)
			}
			if !(v.Value >= 0 && v.Value <= 1) || !(v.Confidence >= 0 && v.Confidence <= 1) {
				t.Fatalf("%s: value %v confidence %v out of [0,1]", check, v.Value, v.Confidence)
			}
			if v.Label == "" || v.Explanation == "" || v.Status != record.StatusOK || v.Attempts != 1 {
				t.Fatalf("%s: incomplete verdict %+v", check, v)
			}
			if r := checkResult(t, set, evs[i], rec); !sameResult(v, r) {
				t.Fatalf("%s: verdict %+v, check says %+v", check, v, r)
			}
		}
	})
}

func TestHeuristicJSONDetails(t *testing.T) {
	j := NewHeuristicJudge()
	// The request may come from a system message of a chat transcript.
	task := heuristicTask(t, checkJSON, "", "not json")
	task.Record.Messages = []record.Message{{Role: "system", Content: "Always respond in JSON."}, {Role: "user", Content: "hi"}}
	v := judgeOneTask(t, j, task)
	if v.Label != "invalid_json" || !strings.Contains(v.Explanation, "invalid character") {
		t.Errorf("chat request: got %q: %s", v.Label, v.Explanation)
	}
	// An evaluator that reads only the response always expects JSON.
	ev := &Evaluator{Name: "j", Judge: "heuristic", Check: checkJSON, Fields: []string{FieldResponse}}
	if err := ev.Prepare("evaluators[0]", KindHeuristic); err != nil {
		t.Fatal(err)
	}
	v = judgeOneTask(t, j, Task{Evaluator: ev, Record: &record.Record{Prompt: "What is 2+2?", Response: "4"}})
	if v.Label != "valid_json" {
		t.Errorf("response-only evaluator: got %q: %s", v.Label, v.Explanation)
	}
	v = judgeOneTask(t, j, Task{Evaluator: ev, Record: &record.Record{Prompt: "What is 2+2?", Response: "four"}})
	if v.Label != "invalid_json" {
		t.Errorf("response-only evaluator: got %q: %s", v.Label, v.Explanation)
	}
}

func TestHeuristicJudgeOrderAndErrors(t *testing.T) {
	j := NewHeuristicJudge()
	if got := j.Identity(); got != "heuristic/v1" {
		t.Errorf("Identity = %q", got)
	}
	if !slices.IsSorted(HeuristicChecks()) || len(HeuristicChecks()) != 11 || len(recordChecks()) != 6 {
		t.Errorf("HeuristicChecks = %v", HeuristicChecks())
	}
	for _, c := range recordChecks() {
		want := []string{FieldResponse}
		if c == checkJSON {
			want = []string{FieldPrompt, FieldResponse}
		}
		if got := heuristicFields(c); !slices.Equal(got, want) {
			t.Errorf("heuristicFields(%q) = %v, want %v", c, got, want)
		}
	}
	tasks := []Task{
		heuristicTask(t, checkEmpty, "", ""),
		heuristicTask(t, checkRefusal, "", "I can't help with that."),
		heuristicTask(t, checkJSON, "Respond in JSON.", "{}"),
		{Evaluator: &Evaluator{Name: "bad", Judge: "heuristic", Check: "sentiment"}, Record: &record.Record{Response: "x"}},
		heuristicTask(t, checkPII, "", "mail me: a.b@corp.io"),
		{Evaluator: nil, Record: &record.Record{}},
		heuristicTask(t, checkTruncated, "", "Done."),
		heuristicTask(t, checkRepetition, "", "short"),
	}
	vs, err := j.Judge(context.Background(), tasks)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(tasks) {
		t.Fatalf("%d verdicts for %d tasks", len(vs), len(tasks))
	}
	want := []string{"empty", "refusal", "valid_json", "", "pii", "", "complete", "ok"}
	for i, v := range vs {
		if want[i] == "" {
			if v.Err == nil {
				t.Errorf("task %d: want an error, got %+v", i, v)
			}
			continue
		}
		if v.Err != nil || v.Label != want[i] || v.Attempts != 1 || v.Status != record.StatusOK {
			t.Errorf("task %d: got %+v, want label %q", i, v, want[i])
		}
	}
	if !strings.Contains(vs[3].Err.Error(), "sentiment") {
		t.Errorf("unknown-check error %q does not name the check", vs[3].Err)
	}

	// A check must not read a field the evaluator does not declare (it would not be in
	// the cache key): Prepare rejects such an evaluator, and the judge refuses it anyway.
	ev := &Evaluator{Name: "p", Judge: "heuristic", Check: checkRefusal, Fields: []string{FieldPrompt}}
	if err := ev.Prepare("evaluators[0]", KindHeuristic); err == nil {
		t.Error("Prepare accepted a refusal check that does not read the response")
	}
	vs, err = j.Judge(context.Background(), []Task{{Evaluator: ev, Record: &record.Record{Response: "x"}}})
	if err != nil || vs[0].Err == nil {
		t.Errorf("prompt-only refusal evaluator: got %+v, %v; want a per-task error", vs, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := j.Judge(ctx, tasks); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: err = %v", err)
	}
}

func TestHeuristicConcurrent(t *testing.T) {
	j := NewHeuristicJudge()
	done := make(chan struct{})
	for g := 0; g < 8; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 50; i++ {
				for _, c := range recordChecks() {
					task := heuristicTask(t, c, "Respond in JSON.", strings.Repeat(fmt.Sprintf("word%d ", i%7), 40+g))
					if vs, err := j.Judge(context.Background(), []Task{task}); err != nil || vs[0].Err != nil {
						t.Errorf("%s: %v %v", c, err, vs[0].Err)
					}
				}
			}
		}()
	}
	for g := 0; g < 8; g++ {
		<-done
	}
}

// recordChecks are the built-in checks of scope record: those that read one record's
// prompt and response.
func recordChecks() []string {
	var out []string
	for _, c := range HeuristicChecks() {
		if checks.Scope(c) == checks.ScopeRecord {
			out = append(out, c)
		}
	}
	return out
}
