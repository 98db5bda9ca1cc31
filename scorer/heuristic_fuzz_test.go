package scorer

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"raterd/record"
)

// FuzzHeuristicChecks feeds arbitrary prompt/response pairs to every built-in check. Each
// must return a complete verdict with Value and Confidence in [0,1] and never panic; a
// few per-check properties are checked on the way (the PII explanation never carries
// digits of the response, a whole-JSON response to a JSON request is valid, short
// responses are never degenerate, results are deterministic). Seeds live in
// testdata/fuzz/FuzzHeuristicChecks.
func FuzzHeuristicChecks(f *testing.F) {
	f.Add("Respond in JSON.", `{"a": [1, 2, {"b": null}]}`)
	f.Add("", "I'm sorry, but I can't help with that.")
	f.Add("", "Call +44 20 7946 0958 or mail a.b@corp.io; card 4242 4242 4242 4242.")
	f.Add("", strings.Repeat("loop ", 64))
	f.Add("", "```go\nfunc main() {\n")
	f.Add("", "\u200b <|endoftext|>")
	j := NewHeuristicJudge()
	evs := make([]*Evaluator, 0, len(HeuristicChecks()))
	for _, c := range HeuristicChecks() {
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
		again, _ := j.Judge(context.Background(), tasks)
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
			if a := again[i]; a.Label != v.Label || a.Value != v.Value || a.Explanation != v.Explanation {
				t.Fatalf("%s: not deterministic: %+v then %+v", check, v, a)
			}
			if !utf8.ValidString(v.Explanation) && utf8.ValidString(response) {
				t.Fatalf("%s: explanation is not valid UTF-8: %q", check, v.Explanation)
			}
		}
		byCheck := func(c string) Verdict {
			for i, ev := range evs {
				if ev.Check == c {
					return vs[i]
				}
			}
			t.Fatalf("no verdict for %s", c)
			return Verdict{}
		}
		if v := byCheck(checkPII); v.Label == "pii" {
			// The explanation may say "×2" but never repeat the response's digits or
			// addresses: it is stored in ClickHouse.
			for _, f := range strings.FieldsFunc(v.Explanation, func(r rune) bool { return !unicode.IsDigit(r) }) {
				if len(f) >= 3 {
					t.Fatalf("pii explanation %q carries a digit run", v.Explanation)
				}
			}
			if strings.Contains(v.Explanation, "@") {
				t.Fatalf("pii explanation %q carries an address", v.Explanation)
			}
		}
		if v := byCheck(checkJSON); v.Label != "not_requested" && json.Valid([]byte(strings.TrimSpace(response))) && v.Label != "valid_json" {
			t.Fatalf("json: valid JSON response labelled %q: %s", v.Label, v.Explanation)
		}
		words := len(strings.FieldsFunc(response, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.Is(unicode.Mn, r) }))
		if v := byCheck(checkRepetition); words < repMinWords && utf8.ValidString(response) && !strings.ContainsFunc(response, func(r rune) bool { return r >= 0x2E80 || unicode.IsSymbol(r) }) && v.Label != "ok" {
			t.Fatalf("repetition: short response labelled %q", v.Label)
		}
	})
}
