package scorer

import (
	"slices"
	"strings"
	"testing"

	"raterd/record"
)

// TestLynxEvaluatorDefaultsAndRules: format lynx defaults to classification into PASS
// and FAIL over [prompt, context, response], with Lynx's question as the criteria, and
// refuses what Lynx was not trained on, naming the key.
func TestLynxEvaluatorDefaultsAndRules(t *testing.T) {
	e := &Evaluator{Name: "faithful", Judge: "lynx", Format: FormatLynx}
	if err := e.Prepare("evaluators[0]", KindModel); err != nil {
		t.Fatal(err)
	}
	if e.Task != TaskClassification || !slices.Equal(e.Labels, []string{"PASS", "FAIL"}) || e.PositiveLabel != "PASS" ||
		!slices.Equal(e.Fields, []string{FieldPrompt, FieldContext, FieldResponse}) || e.Criteria == "" {
		t.Fatalf("defaults: %+v", e)
	}
	for _, tc := range []struct {
		e    Evaluator
		want string
	}{
		{Evaluator{Task: TaskPointwise}, "evaluators[0] (x).task: format lynx is classification only"},
		{Evaluator{Task: TaskClassification, Labels: []string{"yes", "no"}}, "evaluators[0] (x).labels: format lynx answers PASS or FAIL"},
		{Evaluator{Fields: []string{FieldPrompt, FieldResponse}}, "evaluators[0] (x).fields: format lynx judges the response against the context"},
		{Evaluator{Fields: []string{FieldContext, FieldResponse, FieldReference}}, `evaluators[0] (x).fields: format lynx reads the QUESTION (prompt or messages), the DOCUMENT (context) and the ANSWER (response), not "reference"`},
	} {
		e := tc.e
		e.Name, e.Judge, e.Format = "x", "lynx", FormatLynx
		if err := e.Prepare("evaluators[0]", KindModel); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.e, err, tc.want)
		}
	}
}

// TestLynxThroughAFakeJudge: a lynx evaluator sends Lynx's prompt (no system message)
// to a FAKE chat server and reads its JSON answer: the label and the reasoning.
func TestLynxThroughAFakeJudge(t *testing.T) {
	answer := `{"REASONING": ["The document says orders ship within 2 days.", "The answer says 5 days, which contradicts it."], "SCORE": "FAIL"}`
	f := newFakeChat(t, constant(answer))
	j := testJudge(t, nil, f.srv.URL)
	e := preparedModelEvaluator(t, &Evaluator{Name: "faithful", Judge: "pool-a", Format: FormatLynx})
	r := &record.Record{ID: "r1", Model: "m", Prompt: "When does my order ship?", Context: []string{"Orders ship within 2 days."}, Response: "Within 5 days."}
	v := judgeOne(t, j, e, r)
	if v.Status != record.StatusOK || v.Label != "FAIL" || v.Value != 0 || !strings.Contains(v.Explanation, "contradicts") {
		t.Fatalf("verdict = %+v", v)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	msgs := f.reqs[0].Messages
	if len(msgs) != 1 || msgs[0].Role != "user" {
		t.Fatalf("messages = %+v, want Lynx's one user message", msgs)
	}
	for _, want := range []string{"--\nQUESTION (THIS DOES NOT COUNT AS BACKGROUND INFORMATION):\nWhen does my order ship?\n\n--\nDOCUMENT:\n[1] Orders ship within 2 days.\n\n--\nANSWER:\nWithin 5 days.\n\n--\n",
		`"PASS" if the answer is faithful to the DOCUMENT and "FAIL" if the answer is not faithful to the DOCUMENT`} {
		if !strings.Contains(msgs[0].Content, want) {
			t.Errorf("prompt lacks %q:\n%s", want, msgs[0].Content)
		}
	}
}
