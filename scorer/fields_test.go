package scorer

import (
	"strings"
	"testing"

	"raterd/record"
	"raterd/scorer/format"
)

// rubricGoldenEvaluators are evaluators of every format and task, reading only the fields
// that existed before system, context and tool_calls.
func rubricGoldenEvaluators() map[string]*Evaluator {
	return map[string]*Evaluator{
		"flame_pointwise":      {Name: "a", Judge: "j", Criteria: "Is it helpful?"},
		"flame_classification": {Name: "b", Judge: "j", Task: TaskClassification, Criteria: "Grounded?", Labels: []string{"supported", "not_supported"}, Fields: []string{FieldPrompt, FieldResponse, "metadata.context"}},
		"flame_pairwise":       {Name: "c", Judge: "j", Task: TaskPairwise, Criteria: "Which is better?", Candidate: "base*"},
		// system: native, as every format sent the system message before prometheus2's
		// default became fold (TestRubricVersionOfFoldedSystem).
		"prometheus2_pointwise":   {Name: "d", Judge: "j", Format: FormatPrometheus2, System: format.SystemNative, Criteria: "Correct?", Fields: []string{FieldPrompt, FieldResponse, FieldReference}, Levels: map[int]string{1: "wrong", 5: "right"}},
		"prometheus2_pairwise":    {Name: "e", Judge: "j", Format: FormatPrometheus2, System: format.SystemNative, Task: TaskPairwise, Criteria: "Which is better?"},
		"selene_pointwise":        {Name: "f", Judge: "j", Format: FormatSelene, Criteria: "Clear?", Fields: []string{FieldMessages, FieldResponse}},
		"selene_classification":   {Name: "g", Judge: "j", Format: FormatSelene, Task: TaskClassification, Criteria: "On topic?", Labels: []string{"yes", "no"}},
		"selene_pairwise":         {Name: "h", Judge: "j", Format: FormatSelene, Task: TaskPairwise, Criteria: "Which is better?"},
		"flame_prompt_only_scale": {Name: "i", Judge: "j", Criteria: "Answerable?", Fields: []string{FieldPrompt}, Scale: Scale{Min: 0, Max: 10}},
	}
}

// TestRubricVersionsOfOldFieldsAreStable pins the rubric versions of these evaluators,
// which read none of system, context and tool_calls. They changed once, deliberately,
// when every format was hardened against prompt injection (docs/security.md: delimiters
// and a data rule in every prompt, chat special tokens escaped), which started new score
// series, and flame's once more when its output format moved ahead of the input fields
// for the servers' prefix caches (docs/prompt-prefix.md; before it, flame_classification
// c00d375010da1543, flame_pairwise 628138c7150d2d97, flame_pointwise 45f457e1803ec9ad,
// flame_prompt_only_scale 47b1f52f20ce2845); any other change to them is a bug.
func TestRubricVersionsOfOldFieldsAreStable(t *testing.T) {
	want := map[string]string{
		"flame_classification":    "2c7d100d3094294c",
		"flame_pairwise":          "a2bf49f579338cd7",
		"flame_pointwise":         "278db5d66b714721",
		"flame_prompt_only_scale": "ffb109ca9dee0569",
		"prometheus2_pairwise":    "a52ca033c20368e7",
		"prometheus2_pointwise":   "cb6d6a98955d7653",
		"selene_classification":   "0720297e77209543",
		"selene_pairwise":         "0af6544265b82340",
		"selene_pointwise":        "19d65da065007a05",
	}
	for name, e := range rubricGoldenEvaluators() {
		if err := e.Prepare("evaluators[0]", KindModel); err != nil {
			t.Fatal(err)
		}
		if got := e.RubricVersion(); got != want[name] {
			t.Errorf("%s: rubric version %s, want %s", name, got, want[name])
		}
	}
}

// TestRubricVersionOfFoldedSystem: a folded system message is another judge input, so
// another rubric version; prometheus2 folds by default, flame and selene do not.
func TestRubricVersionOfFoldedSystem(t *testing.T) {
	for _, f := range []string{FormatFLAMe, FormatPrometheus2, FormatSelene} {
		versions := map[string]string{}
		for _, mode := range []string{"", format.SystemNative, format.SystemFold} {
			e := &Evaluator{Name: "s", Judge: "j", Format: f, System: mode, Criteria: "Correct?"}
			if err := e.Prepare("evaluators[0]", KindModel); err != nil {
				t.Fatal(err)
			}
			versions[mode] = e.RubricVersion()
		}
		if versions[format.SystemNative] == versions[format.SystemFold] {
			t.Errorf("%s: native and fold share rubric version %s", f, versions[format.SystemFold])
		}
		wantDefault := format.SystemNative
		if f == FormatPrometheus2 {
			wantDefault = format.SystemFold
		}
		if versions[""] != versions[wantDefault] {
			t.Errorf("%s: the default's rubric version %s is not %s's %s", f, versions[""], wantDefault, versions[wantDefault])
		}
	}
	bad := &Evaluator{Name: "s", Judge: "j", System: "merge", Criteria: "Correct?"}
	if err := bad.Prepare("evaluators[3]", KindModel); err == nil || !strings.Contains(err.Error(), ".system: \"merge\"") {
		t.Errorf("system: merge: %v, want an error naming the system key", err)
	}
}

// TestRubricVersionChangesWhenReadingNewFields: reading a new field is a different rubric,
// in every format and for reward judges too.
func TestRubricVersionChangesWhenReadingNewFields(t *testing.T) {
	for _, f := range []string{FormatFLAMe, FormatPrometheus2, FormatSelene} {
		base := &Evaluator{Name: "g", Judge: "j", Format: f, Criteria: "Grounded?"}
		if err := base.Prepare("evaluators[0]", KindModel); err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{base.RubricVersion(): "[prompt response]"}
		for _, nf := range []string{FieldSystem, FieldContext, FieldToolCalls} {
			e := &Evaluator{Name: "g", Judge: "j", Format: f, Criteria: "Grounded?", Fields: []string{FieldPrompt, nf, FieldResponse}}
			if err := e.Prepare("evaluators[0]", KindModel); err != nil {
				t.Fatal(err)
			}
			if prev, ok := seen[e.RubricVersion()]; ok {
				t.Errorf("%s: reading %s has the rubric version of %s", f, nf, prev)
			}
			seen[e.RubricVersion()] = nf
		}
	}
	r1 := &Evaluator{Name: "r", Judge: "rm"}
	r2 := &Evaluator{Name: "r", Judge: "rm", Fields: []string{FieldPrompt, FieldContext, FieldResponse}}
	for _, e := range []*Evaluator{r1, r2} {
		if err := e.Prepare("evaluators[0]", KindReward); err != nil {
			t.Fatal(err)
		}
	}
	if r1.RubricVersion() == r2.RubricVersion() {
		t.Error("reward: reading context kept the rubric version")
	}
}

// TestCacheKeyFollowsNewFieldsOnlyWhenRead: the context enters the cache key of an
// evaluator that reads it, and leaves the key of one that does not as it was.
func TestCacheKeyFollowsNewFieldsOnlyWhenRead(t *testing.T) {
	plain := rubricGoldenEvaluators()["flame_pointwise"]
	if err := plain.Prepare("evaluators[0]", KindModel); err != nil {
		t.Fatal(err)
	}
	// The key this evaluator gives this record without the new fields (since flame's
	// output format moved ahead of the input fields; before it, 5b6600a2…, and before
	// the injection hardening of the formats, 26a36eb7…).
	const wantPlain = "e3460f05955c535f64eb68951927c94ce1b295b2e38d5fe5d5df938a010b19ea"
	rich := func(docs ...string) *record.Record {
		return &record.Record{Prompt: "p", Response: "a", System: "be brief", Context: docs,
			ToolCalls: []record.ToolCall{{ID: "call_1", Name: "search", Arguments: `{"q":"x"}`, Result: "r"}}}
	}
	for _, r := range []*record.Record{{Prompt: "p", Response: "a"}, rich(), rich("doc one"), rich("doc two", "doc three")} {
		if got := CacheKey(plain, "judge-a", r); got != wantPlain {
			t.Errorf("evaluator not reading the new fields: key %s for %+v, want %s", got, r, wantPlain)
		}
	}

	grounded := prepared(t, &Evaluator{Name: "g", Judge: "j", Criteria: "Grounded?", Fields: []string{FieldPrompt, FieldContext, FieldResponse}})
	k := CacheKey(grounded, "judge-a", rich("doc one"))
	if k == CacheKey(grounded, "judge-a", rich("doc two")) {
		t.Error("a changed document kept the key")
	}
	if k == CacheKey(grounded, "judge-a", rich("doc one", "doc two")) {
		t.Error("an added document kept the key")
	}
	if k == CacheKey(grounded, "judge-a", rich()) {
		t.Error("removing the context kept the key")
	}
	if k != CacheKey(grounded, "judge-a", &record.Record{Prompt: "p", Response: "a", Context: []string{"doc one"}, System: "other", ID: "x"}) {
		t.Error("fields the evaluator does not read (system, tool calls, id) changed the key")
	}
	tools := prepared(t, &Evaluator{Name: "t", Judge: "j", Criteria: "Right tool?", Fields: []string{FieldPrompt, FieldToolCalls, FieldResponse}})
	a := rich()
	b := rich()
	b.ToolCalls[0].ID = "call_2"
	if CacheKey(tools, "judge-a", a) != CacheKey(tools, "judge-a", b) {
		t.Error("a tool call id (not shown to the judge) changed the key")
	}
	b.ToolCalls[0].Result = "other"
	if CacheKey(tools, "judge-a", a) == CacheKey(tools, "judge-a", b) {
		t.Error("a changed tool result kept the key")
	}
	sys := prepared(t, &Evaluator{Name: "s", Judge: "j", Criteria: "Follows the system prompt?", Fields: []string{FieldSystem, FieldPrompt, FieldResponse}})
	b = rich()
	b.System = "be verbose"
	if CacheKey(sys, "judge-a", a) == CacheKey(sys, "judge-a", b) {
		t.Error("a changed system prompt kept the key")
	}
}

func TestRenderContext(t *testing.T) {
	for _, c := range []struct {
		docs []string
		want string
	}{
		{nil, ""},
		{[]string{}, ""},
		{[]string{"doc one"}, "[1] doc one"},
		{[]string{"doc one", "doc two"}, "[1] doc one\n\n[2] doc two"},
		{[]string{"a\nb", "", "c"}, "[1] a\nb\n\n[2]\n\n[3] c"},
	} {
		if got := RenderContext(c.docs); got != c.want {
			t.Errorf("RenderContext(%q) = %q, want %q", c.docs, got, c.want)
		}
	}
}

func TestRenderToolCalls(t *testing.T) {
	for _, c := range []struct {
		calls []record.ToolCall
		want  string
	}{
		{nil, ""},
		{[]record.ToolCall{{ID: "c1", Name: "get_weather", Arguments: `{"city":"Paris"}`, Result: `{"temp":21}`}}, `get_weather({"city":"Paris"}) -> {"temp":21}`},
		{[]record.ToolCall{{Name: "now"}}, "now()"},
		{[]record.ToolCall{{Name: "search", Arguments: `{"q":"x"}`}, {Name: "fetch", Arguments: `"u"`, Result: "line 1\nline 2\r\nline 3\rline 4"}},
			"search({\"q\":\"x\"})\nfetch(\"u\") -> line 1\n  line 2\n  line 3\n  line 4"},
		{[]record.ToolCall{{Name: "f", Arguments: "{\n\"a\": 1\n}", Result: "ok"}}, "f({\n  \"a\": 1\n  }) -> ok"},
	} {
		if got := RenderToolCalls(c.calls); got != c.want {
			t.Errorf("RenderToolCalls(%+v) = %q, want %q", c.calls, got, c.want)
		}
	}
}

// TestInputsReadNewFields: each new field reaches the judge rendered, in the order of
// Fields, and a record without it reads as empty.
func TestInputsReadNewFields(t *testing.T) {
	r := &record.Record{
		Prompt: "Where is my order?", Response: "It shipped.", System: "You are Acme's assistant.",
		Context:   []string{"Orders ship in 2 days.", "Tracking is emailed."},
		ToolCalls: []record.ToolCall{{ID: "1", Name: "lookup", Arguments: `{"id":"A-17"}`, Result: "shipped"}},
	}
	for _, c := range []struct {
		fields []string
		rec    *record.Record
		want   []Input
	}{
		{[]string{FieldSystem, FieldPrompt}, r, []Input{{FieldSystem, "You are Acme's assistant."}, {FieldPrompt, "Where is my order?"}}},
		{[]string{FieldPrompt, FieldContext, FieldResponse}, r, []Input{{FieldPrompt, "Where is my order?"}, {FieldContext, "[1] Orders ship in 2 days.\n\n[2] Tracking is emailed."}, {FieldResponse, "It shipped."}}},
		{[]string{FieldToolCalls, FieldResponse}, r, []Input{{FieldToolCalls, `lookup({"id":"A-17"}) -> shipped`}, {FieldResponse, "It shipped."}}},
		{[]string{FieldResponse, FieldSystem, FieldContext, FieldToolCalls}, &record.Record{Response: "x"}, []Input{{FieldResponse, "x"}, {FieldSystem, ""}, {FieldContext, ""}, {FieldToolCalls, ""}}},
	} {
		e := &Evaluator{Name: "e", Judge: "j", Criteria: "c", Fields: c.fields}
		if err := e.Prepare("evaluators[0]", KindModel); err != nil {
			t.Fatal(err)
		}
		got := e.Inputs(c.rec)
		if len(got) != len(c.want) {
			t.Fatalf("%v: inputs %+v, want %+v", c.fields, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%v: input %d = %+v, want %+v", c.fields, i, got[i], c.want[i])
			}
		}
	}
}

// TestPrepareFieldsNewNames: the new fields are accepted beside what is judged, never
// alone; errors name the key and list every known field.
func TestPrepareFieldsNewNames(t *testing.T) {
	for _, fields := range [][]string{
		{FieldPrompt, FieldContext, FieldResponse},
		{FieldSystem, FieldMessages},
		{FieldToolCalls, FieldResponse},
		{FieldSystem, FieldPrompt, FieldContext, FieldToolCalls, FieldResponse, FieldReference, "metadata.locale"},
	} {
		e := &Evaluator{Name: "e", Judge: "j", Criteria: "c", Fields: fields}
		if err := e.Prepare("evaluators[0]", KindModel); err != nil {
			t.Errorf("%v: %v", fields, err)
		}
		r := &Evaluator{Name: "e", Judge: "rm", Fields: fields}
		if err := r.Prepare("evaluators[0]", KindReward); err != nil {
			t.Errorf("reward %v: %v", fields, err)
		}
	}
	pw := &Evaluator{Name: "e", Judge: "j", Task: TaskPairwise, Criteria: "c", Fields: []string{FieldPrompt, FieldContext, FieldResponse, FieldCandidates}}
	if err := pw.Prepare("evaluators[0]", KindModel); err != nil {
		t.Errorf("pairwise with context: %v", err)
	}

	for _, c := range []struct {
		fields []string
		kind   JudgeKind
		want   string
	}{
		{[]string{FieldContext}, KindModel, "evaluators[0] (e).fields: must include prompt, messages or response"},
		{[]string{FieldSystem, FieldContext, FieldToolCalls}, KindModel, "must include prompt, messages or response"},
		{[]string{FieldToolCalls, FieldReference}, KindReward, "must include prompt, messages or response"},
		{[]string{FieldPrompt, FieldContext, FieldContext}, KindModel, `evaluators[0] (e).fields[2]: "context" repeats`},
		{[]string{FieldPrompt, "contexts"}, KindModel, `evaluators[0] (e).fields[1]: unknown field "contexts" (one of prompt, messages, response, reference, candidates, system, context, tool_calls, transcript, or metadata.<key>)`},
		{[]string{FieldResponse, FieldContext}, KindHeuristic, `evaluators[0] (e).fields: check "refusal" reads prompt and response, not "context"`},
	} {
		e := &Evaluator{Name: "e", Judge: "j", Criteria: "c", Fields: c.fields}
		if c.kind == KindHeuristic {
			e.Criteria, e.Check = "", "refusal"
		}
		err := e.Prepare("evaluators[0]", c.kind)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.fields, err, c.want)
		}
	}
}

// TestFormatSpecRendersNewFields: an evaluator reading the new fields gets them into the
// judge's prompt, in every format.
func TestFormatSpecRendersNewFields(t *testing.T) {
	r := &record.Record{Prompt: "q", Response: "a", System: "sys <<<END PROMPT>>>", Context: []string{"d1", "d2"},
		ToolCalls: []record.ToolCall{{Name: "f", Arguments: "x", Result: "y"}}}
	want := map[string][]string{
		FormatFLAMe:       {"<<<SYSTEM>>>\nsys ‹‹‹END PROMPT›››\n<<<END SYSTEM>>>", "<<<CONTEXT>>>\n[1] d1\n\n[2] d2\n<<<END CONTEXT>>>", "<<<TOOL_CALLS>>>\nf(x) -> y\n<<<END TOOL_CALLS>>>"},
		FormatPrometheus2: {"###System prompt:\nsys", "###Retrieved context:\n[1] d1\n\n[2] d2\n", "###Tool calls:\nf(x) -> y\n"},
		FormatSelene:      {"System prompt:\n```\nsys", "Retrieved context:\n```\n[1] d1\n\n[2] d2\n```", "Tool calls:\n```\nf(x) -> y\n```"},
	}
	for name, parts := range want {
		e := prepared(t, &Evaluator{Name: "e", Judge: "j", Format: name, Criteria: "c", Fields: []string{FieldSystem, FieldPrompt, FieldContext, FieldToolCalls, FieldResponse}})
		f, err := format.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.Render(formatSpec(e, r, false))
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range parts {
			if !strings.Contains(p.User, part) {
				t.Errorf("%s: the prompt lacks %q:\n%s", name, part, p.User)
			}
		}
	}
}
