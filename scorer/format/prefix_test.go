package format

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// keptAfter names, per format, the stable parts that the format keeps after the record's
// fields because the judge model was trained on a template that places them there
// (docs/prompt-prefix.md). Every other stable part must come before the first field.
var keptAfter = map[string][]string{
	"prometheus2": {"criteria", "levels"}, // "###Score Rubrics:" follows the response
	"selene":      {"criteria", "levels"}, // "Score Rubrics:" follows the data
	"lynx":        {"output"},             // the JSON output format follows the last "--"
}

// typicalText is about n bytes of prose that starts with lead, so that two texts with
// different leads differ from their first byte.
func typicalText(lead string, n int) string {
	words := []string{"the", "order", "was", "shipped", "on", "Monday", "and", "tracking", "shows", "a", "delay", "near", "the", "depot,", "so", "please", "explain", "what", "happens", "next."}
	var b strings.Builder
	b.WriteString(lead)
	for i := 0; b.Len() < n; i++ {
		b.WriteByte(' ')
		b.WriteString(words[(i*7+len(lead))%len(words)])
	}
	return b.String()
}

// typicalRecord is one record's input texts by field: a ~900-byte prompt and a
// ~500-byte answer, and the other fields an evaluator might read. which picks the
// record; the texts of two records differ from their first byte.
func typicalRecord(which int) map[string]string {
	lead := []string{"Hello,", "Why"}[which]
	return map[string]string{
		"prompt":          typicalText(lead+" my question:", 900),
		"messages":        typicalText([]string{"user: ", "system: "}[which]+lead, 900),
		"response":        typicalText([]string{"Sure,", "No,"}[which], 500),
		"candidates":      typicalText([]string{"Maybe", "Thanks"}[which], 500),
		"reference":       typicalText([]string{"Orders", "Parcels"}[which], 300),
		"system":          typicalText([]string{"You are", "Act as"}[which], 200),
		"context":         typicalText([]string{"[1] Orders", "[1] Parcels"}[which], 600),
		"tool_calls":      []string{`lookup({"id": 1}) -> shipped`, `track({"id": 2}) -> delayed`}[which],
		"metadata.locale": []string{"en-GB", "de-DE"}[which],
	}
}

// typicalEvaluator is an evaluator's spec without inputs: a 1–5 scale with a level
// description per score, two labels, or a pairwise preference.
func typicalEvaluator(task string) Spec {
	s := Spec{Task: task, Criteria: "Does the response address the user's request accurately, completely and concisely? A refusal of a benign request is unhelpful."}
	switch task {
	case TaskPointwise:
		s.Min, s.Max = 1, 5
		s.Levels = map[int]string{
			1: "Unhelpful, wrong, or a refusal of a benign request.",
			2: "Addresses the request but is mostly wrong or incomplete.",
			3: "Partly helpful: correct in the main, misses important details.",
			4: "Helpful and correct, with minor omissions or some verbosity.",
			5: "Fully helpful, correct, complete and concise.",
		}
	case TaskClassification:
		s.Labels = []string{"helpful", "unhelpful"}
	}
	return s
}

// withInputs is s reading fields, their texts taken from record which.
func withInputs(s Spec, which int, fields ...string) Spec {
	r := typicalRecord(which)
	s.Inputs = nil
	for _, f := range fields {
		s.Inputs = append(s.Inputs, Input{Field: f, Text: r[f]})
	}
	return s
}

// fieldSets are the input fields of the evaluators TestStablePrefix measures, per task.
func fieldSets(task string) [][]string {
	if task == TaskPairwise {
		return [][]string{
			{"prompt", "response", "candidates"},
			{"prompt", "context", "response", "candidates", "reference"},
			{"candidates", "response"},
		}
	}
	return [][]string{
		{"prompt", "response"},
		{"messages", "response"},
		{"prompt"},
		{"response"},
		{"prompt", "response", "reference"},
		{"system", "prompt", "context", "tool_calls", "response", "metadata.locale"},
		{"metadata.locale", "prompt", "context", "response"},
	}
}

// TestStablePrefix: for every format, task, field set and system mode, two records'
// requests share exactly everything ahead of the first record field (nothing
// record-specific comes before it), and every stable part of the prompt — the criteria,
// each level description, the output format — lies in that shared prefix, save the parts
// keptAfter names for the format.
func TestStablePrefix(t *testing.T) {
	for _, name := range Names() {
		f, _ := Lookup(name)
		for _, task := range f.Tasks() {
			for _, fields := range fieldSets(task) {
				for _, mode := range []string{SystemNative, SystemFold} {
					for _, swap := range []bool{false, true} {
						if swap && task != TaskPairwise {
							continue
						}
						ev := typicalEvaluator(task)
						ev.Swap = swap
						if name == "lynx" {
							ev.Labels = []string{"PASS", "FAIL"}
						}
						t.Run(fmt.Sprintf("%s/%s/%s/%s/swap=%v", name, task, strings.Join(fields, "+"), mode, swap), func(t *testing.T) {
							a, b := withInputs(ev, 0, fields...), withInputs(ev, 1, fields...)
							p, err := f.StablePrefix(a, b, mode)
							if err != nil {
								t.Fatal(err)
							}
							if p.Shared != p.FieldStart {
								pa, _ := f.Render(a)
								text := RequestText(pa, mode)
								t.Fatalf("the requests of two records share %d bytes, but the first field starts at %d:\n%s|<-shared\n", p.Shared, p.FieldStart, text[:p.Shared])
							}
							checkStableParts(t, f, a, mode, p.FieldStart)
						})
					}
				}
			}
		}
	}
}

// checkStableParts checks that the stable parts of s's request are in its first
// fieldStart bytes, or, for those keptAfter names, after them.
func checkStableParts(t *testing.T, f *Format, s Spec, mode string, fieldStart int) {
	t.Helper()
	p, err := f.Render(s)
	if err != nil {
		t.Fatal(err)
	}
	text := RequestText(p, mode)
	task, _ := f.task(s.Task)
	result, err := task.execute("result", &view{Min: s.Min, Max: s.Max, Labels: s.Labels})
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string][]string{"criteria": {f.text(s.Criteria)}, "output": {result}}
	for _, l := range s.Levels {
		parts["levels"] = append(parts["levels"], f.text(l))
	}
	for part, texts := range parts {
		after := slices.Contains(keptAfter[f.name], part)
		for _, pt := range texts {
			at := strings.LastIndex(text, pt)
			switch {
			case at < 0:
				if part != "criteria" || f.name != "lynx" { // Lynx asks its one fixed question
					t.Errorf("%s %q: not in the request", part, pt)
				}
			case after && at < fieldStart:
				t.Errorf("%s %q: before the first field, though keptAfter says the format keeps it after (update keptAfter and docs/prompt-prefix.md)", part, pt)
			case !after && at+len(pt) > fieldStart:
				t.Errorf("%s %q: ends at byte %d, after the first field starts (%d): the prefix cache cannot reuse it", part, pt, at+len(pt), fieldStart)
			}
		}
	}
}

// TestStablePrefixChecksEvaluator: StablePrefix measures two records of one evaluator,
// not two evaluators.
func TestStablePrefixChecksEvaluator(t *testing.T) {
	f, _ := Lookup("flame")
	a := withInputs(typicalEvaluator(TaskPointwise), 0, "prompt", "response")
	for name, edit := range map[string]func(*Spec){
		"criteria": func(s *Spec) { s.Criteria += " Be strict." },
		"scale":    func(s *Spec) { s.Max = 10 },
		"levels":   func(s *Spec) { s.Levels = map[int]string{1: "bad", 5: "good"} },
		"fields":   func(s *Spec) { s.Inputs[1].Field = "reference" },
		"count":    func(s *Spec) { s.Inputs = s.Inputs[:1] },
	} {
		b := withInputs(typicalEvaluator(TaskPointwise), 1, "prompt", "response")
		edit(&b)
		if _, err := f.StablePrefix(a, b, SystemNative); err == nil || !strings.Contains(err.Error(), "stable prefix") {
			t.Errorf("%s: err = %v, want the specs refused", name, err)
		}
	}
	b := withInputs(typicalEvaluator(TaskPointwise), 1, "prompt", "response")
	p, err := f.StablePrefix(a, a, SystemNative)
	if err != nil || p.Shared != p.Total {
		t.Errorf("one record twice: %+v, %v; want all of it shared", p, err)
	}
	if p, err = f.StablePrefix(a, b, SystemNative); err != nil || p.Shared == 0 || p.Shared >= p.Total || p.SharedTokens() != p.Shared/4 || p.TotalTokens() != p.Total/4 {
		t.Errorf("two records: %+v, %v", p, err)
	}
}

// TestStablePrefixTable logs, for the typical evaluator of each format and task (a
// ~900-byte prompt and a ~500-byte answer; pairwise, a ~500-byte candidate), the shared
// prefix and the whole request in estimated tokens and bytes, and the format's own text
// after the first field in estimated tokens, in the format's default system mode: the
// table of docs/prompt-prefix.md (go test -run
// TestStablePrefixTable -v).
func TestStablePrefixTable(t *testing.T) {
	for _, name := range Names() {
		f, _ := Lookup(name)
		for _, task := range f.Tasks() {
			ev := typicalEvaluator(task)
			fields := []string{"prompt", "response"}
			switch {
			case task == TaskPairwise:
				fields = append(fields, "candidates")
			case name == "lynx":
				ev.Labels = []string{"PASS", "FAIL"}
				fields = []string{"prompt", "context", "response"}
			}
			p, err := f.StablePrefix(withInputs(ev, 0, fields...), withInputs(ev, 1, fields...), f.SystemMode())
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("| %s | %s | %s | %d | %d | %d | %d | %d%% | %d |", name, task, strings.Join(fields, ", "),
				p.SharedTokens(), p.TotalTokens(), p.Shared, p.Total, 100*p.Shared/p.Total, p.Trailing/bytesPerToken)
		}
	}
}
