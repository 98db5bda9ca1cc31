package format

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// testSpec is the spec the parse tables use for a task.
func testSpec(task string) Spec {
	s := Spec{Task: task, Criteria: "Is it good?", Min: 1, Max: 5, Inputs: []Input{{Field: "prompt", Text: "q"}, {Field: "response", Text: "r"}}}
	switch task {
	case TaskClassification:
		s.Labels = []string{"on_topic", "off_topic"}
	case TaskPairwise:
		s.Inputs = append(s.Inputs, Input{Field: "candidates", Text: "c"})
	}
	return s
}

// TestParseAnswers reads golden judge answers, valid and malformed, through each format.
func TestParseAnswers(t *testing.T) {
	type answer struct {
		task, text string
		want, expl string // on success
		err        string // substring of the error; "" means success
	}
	cases := map[string][]answer{
		"flame": {
			{TaskPointwise, "Reasoning: Correct and complete.\nScore: 5", "5", "Correct and complete.", ""},
			{TaskPointwise, "Score: 3", "3", "", ""},
			{TaskPointwise, "  Reasoning: Line one.\nLine two.\r\nScore:4  \r\n", "4", "Line one.\nLine two.", ""},
			{TaskPointwise, "Reasoning: The score: 5 would be too high.\nScore: 4", "4", "The score: 5 would be too high.", ""},
			{TaskPointwise, "Reasoning: Fine.", "", "", "no result"},
			{TaskPointwise, "Reasoning: a\nScore: 4\nScore: 5", "", "", "2 results"},
			{TaskPointwise, "Reasoning: a\nScore: 6", "", "", "outside the scale 1..5"},
			{TaskPointwise, "Reasoning: a\nScore: 0", "", "", "outside the scale 1..5"},
			{TaskPointwise, "Reasoning: a\nScore: 4\nThanks!", "", "", "text after the result"},
			{TaskPointwise, "", "", "", "empty answer"},
			{TaskPointwise, " \n\t", "", "", "empty answer"},
			{TaskPointwise, "Reasoning: a\nScore: four", "", "", "is not an integer"},
			{TaskPointwise, "Reasoning: a\nScore: 4/5", "", "", "is not an integer"},
			{TaskPointwise, "Reasoning: a\nScore: ４", "", "", "is not an integer"},
			{TaskPointwise, "Reasoning: a\nScore: 04", "", "", `not written as 4`},
			{TaskPointwise, "Reasoning: a\nScore:", "", "", "no value after the result marker"},
			{TaskPointwise, "I think it is good.\nScore: 4", "", "", "does not follow the output format"},
			{TaskClassification, "Reasoning: Stays on topic.\nLabel: on_topic", "on_topic", "Stays on topic.", ""},
			{TaskClassification, "Reasoning: Drifts.\nLabel: OFF_TOPIC", "off_topic", "Drifts.", ""},
			{TaskClassification, "Reasoning: x\nLabel: maybe", "", "", `"maybe" is not one of on_topic, off_topic`},
			{TaskClassification, "Reasoning: x\nScore: 5", "", "", "no result"},
			{TaskClassification, "Reasoning: x\nLabel: on_topic\nLabel: off_topic", "", "", "2 results"},
			{TaskPairwise, "Reasoning: A is right.\nPreference: A", "A", "A is right.", ""},
			{TaskPairwise, "Preference: B", "B", "", ""},
			{TaskPairwise, "Reasoning: x\nPreference: tie", "", "", "is not A or B"},
			{TaskPairwise, "Reasoning: x\nPreference: a", "", "", "is not A or B"},
			{TaskPairwise, "Reasoning: x\nPreference: A\nPreference: B", "", "", "2 results"},
			{TaskPairwise, "Reasoning: x\nPreference: A.\nThat's all.", "", "", "text after the result"},
		},
		"prometheus2": {
			{TaskPointwise, "The response is correct and complete. [RESULT] 5", "5", "The response is correct and complete.", ""},
			{TaskPointwise, "Feedback: Correct. [RESULT] 4\n", "4", "Correct.", ""},
			{TaskPointwise, "Mostly right.\nMisses units. [RESULT] 3  ", "3", "Mostly right.\nMisses units.", ""},
			{TaskPointwise, "[RESULT] 1", "1", "", ""},
			{TaskPointwise, "Good answer overall.", "", "", "no result"},
			{TaskPointwise, "Good. [RESULT] 4 [RESULT] 5", "", "", "2 results"},
			{TaskPointwise, "Good. [RESULT] 7", "", "", "outside the scale 1..5"},
			{TaskPointwise, "Good. [RESULT] 4\nI hope this helps.", "", "", "text after the result"},
			{TaskPointwise, "Good. [RESULT] (4)", "", "", "is not an integer"},
			{TaskPointwise, "Good. [RESULT] 4 out of 5", "", "", "is not an integer"},
			{TaskPointwise, "", "", "", "empty answer"},
			{TaskPairwise, "Response A is correct; B is not. [RESULT] A", "A", "Response A is correct; B is not.", ""},
			{TaskPairwise, "B cites its sources. [RESULT] B\n\n", "B", "B cites its sources.", ""},
			{TaskPairwise, "Both fine. [RESULT] C", "", "", "is not A or B"},
			{TaskPairwise, "Both fine. [RESULT] A or B", "", "", "is not A or B"},
			{TaskPairwise, "Both fine.", "", "", "no result"},
		},
		"selene": {
			{TaskPointwise, "**Reasoning:** Correct.\n\n**Result:** 5", "5", "Correct.", ""},
			{TaskPointwise, "**Result:** 2", "2", "", ""},
			{TaskPointwise, "**Reasoning:** Two\nlines.\r\n\r\n**Result:** 3\n", "3", "Two\nlines.", ""},
			{TaskPointwise, "**Reasoning:** Correct.", "", "", "no result"},
			{TaskPointwise, "**Reasoning:** x\n**Result:** 4\n**Result:** 5", "", "", "2 results"},
			{TaskPointwise, "**Reasoning:** x\n**Result:** 0", "", "", "outside the scale 1..5"},
			{TaskPointwise, "**Reasoning:** x\n**Result:** 4\nDone.", "", "", "text after the result"},
			{TaskPointwise, "**Reasoning:** x **Result:** 4", "", "", "does not follow the output format"},
			{TaskPointwise, "Reasoning: x\nResult: 4", "", "", "no result"},
			{TaskPointwise, "", "", "", "empty answer"},
			{TaskClassification, "**Reasoning:** On topic.\n\n**Result:** On_Topic", "on_topic", "On topic.", ""},
			{TaskClassification, "**Reasoning:** x\n\n**Result:** Yes", "", "", "is not one of on_topic, off_topic"},
			{TaskPairwise, "**Reasoning:** B is right.\n\n**Result:** B", "B", "B is right.", ""},
			{TaskPairwise, "**Reasoning:** x\n\n**Result:** Both", "", "", "is not A or B"},
		},
	}
	cases["lynx"] = []answer{
		{TaskClassification, `{"REASONING": ["The answer stays on the question."], "SCORE": "on_topic"}`, "on_topic", `["The answer stays on the question."]`, ""},
		{TaskClassification, "```json\n{\"REASONING\": [\"a\", \"b\"],\n \"SCORE\": \"OFF_TOPIC\"}\n```", "off_topic", `["a", "b"]`, ""},
		{TaskClassification, `{"REASONING": "plain", "SCORE": on_topic}`, "on_topic", `"plain"`, ""},
		{TaskClassification, `{"SCORE": "on_topic"}`, "", "", "does not follow the output format"},
		{TaskClassification, `{"REASONING": ["x"], "SCORE": "maybe"}`, "", "", "is not one of on_topic, off_topic"},
		{TaskClassification, `{"REASONING": ["x"], "SCORE": "on_topic", "SCORE": "off_topic"}`, "", "", "2 results"},
		{TaskClassification, `{"REASONING": ["x"]}`, "", "", "no result"},
		{TaskClassification, `{"REASONING": ["x"], "SCORE": "on_topic"} Hope this helps.`, "", "", "does not follow the output format"},
		{TaskClassification, "", "", "", "empty answer"},
	}
	for name, answers := range cases {
		f, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range answers {
			p, err := f.Parse(testSpec(a.task), a.text)
			if a.err != "" {
				if !errors.Is(err, ErrUnparseable) || !strings.Contains(err.Error(), a.err) {
					t.Errorf("%s %s Parse(%q): err = %v, want ErrUnparseable containing %q", name, a.task, a.text, err, a.err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s %s Parse(%q): %v", name, a.task, a.text, err)
				continue
			}
			if p.Result != a.want || p.Explanation != a.expl {
				t.Errorf("%s %s Parse(%q) = %q, %q; want %q, %q", name, a.task, a.text, p.Result, p.Explanation, a.want, a.expl)
			}
			if written := a.text[p.ResultStart:]; !asciiEqualFold(written[:min(len(written), len(a.want))], a.want) {
				t.Errorf("%s %s Parse(%q): ResultStart %d points at %q", name, a.task, a.text, p.ResultStart, written)
			}
		}
	}
}

func TestParseResultStart(t *testing.T) {
	f, _ := Lookup("flame")
	answer := "Reasoning: ok\nScore:  -3 \n"
	p, err := f.Parse(Spec{Task: TaskPointwise, Min: -5, Max: 5}, answer)
	if err != nil {
		t.Fatal(err)
	}
	if p.Result != "-3" || p.ResultStart != strings.Index(answer, "-3") {
		t.Errorf("Parse = %+v, want -3 at %d", p, strings.Index(answer, "-3"))
	}
}

func TestParseErrorsBounded(t *testing.T) {
	f, _ := Lookup("selene")
	long := strings.Repeat("\xff€x", 500)
	for _, answer := range []string{
		"**Result:** " + long,
		"**Reasoning:** x\n**Result:** 4\n" + long,
		long,
	} {
		_, err := f.Parse(testSpec(TaskPointwise), answer)
		if err == nil {
			t.Fatalf("Parse(%.20q…) succeeded", answer)
		}
		if msg := err.Error(); len(msg) > 400 || !utf8.ValidString(msg) || strings.Contains(msg, "\n") {
			t.Errorf("error not bounded, valid UTF-8 and on one line: %q", msg)
		}
	}
	if _, err := f.Parse(testSpec(TaskPointwise), strings.Repeat("x", maxAnswer)+"\n**Result:** 4"); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("Parse of an oversized answer: err = %v, want the size limit", err)
	}
}

func TestParseSpecErrors(t *testing.T) {
	f, _ := Lookup("flame")
	for _, s := range []Spec{
		{Task: "ranking"},
		{Task: TaskPointwise, Min: 5, Max: 5},
		{Task: TaskPointwise, Min: 0, Max: 100000},
		{Task: TaskClassification, Labels: []string{"yes"}},
		{Task: TaskClassification, Labels: []string{"yes", "yes"}},
		{Task: TaskClassification, Labels: []string{"yes", "no way"}},
	} {
		if _, err := f.Parse(s, "Score: 1"); err == nil || errors.Is(err, ErrUnparseable) {
			t.Errorf("Parse with spec %+v: err = %v, want a spec error", s, err)
		}
		if Choices(s) != nil {
			t.Errorf("Choices(%+v) = %v, want nil", s, Choices(s))
		}
	}
}

func TestClassificationCaseAmbiguity(t *testing.T) {
	f, _ := Lookup("flame")
	s := Spec{Task: TaskClassification, Labels: []string{"Yes", "yes", "no"}}
	if p, err := f.Parse(s, "Label: yes"); err != nil || p.Result != "yes" {
		t.Errorf("exact match: %+v, %v", p, err)
	}
	if _, err := f.Parse(s, "Label: YES"); !errors.Is(err, ErrUnparseable) {
		t.Errorf("ambiguous label: err = %v, want ErrUnparseable", err)
	}
	// The Kelvin sign folds to 'k' in Unicode but must not match an ASCII label.
	if _, err := f.Parse(Spec{Task: TaskClassification, Labels: []string{"k", "x"}}, "Label: \u212a"); !errors.Is(err, ErrUnparseable) {
		t.Errorf("Kelvin sign: err = %v, want ErrUnparseable", err)
	}
}

func TestChoices(t *testing.T) {
	for _, c := range []struct {
		s    Spec
		want string
	}{
		{Spec{Task: TaskPointwise, Min: 1, Max: 5}, "1 2 3 4 5"},
		{Spec{Task: TaskPointwise, Min: -1, Max: 1}, "-1 0 1"},
		{Spec{Task: TaskClassification, Labels: []string{"yes", "no"}}, "yes no"},
		{Spec{Task: TaskPairwise}, "A B"},
	} {
		if got := strings.Join(Choices(c.s), " "); got != c.want {
			t.Errorf("Choices(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
}

// TestLynxParsesPatronusAnswers reads answers in the shape Patronus AI's Lynx writes
// (its model card's example output) with Lynx's own labels, and renders Lynx's prompt.
func TestLynxParsesPatronusAnswers(t *testing.T) {
	f, err := Lookup("lynx")
	if err != nil {
		t.Fatal(err)
	}
	s := Spec{Task: TaskClassification, Criteria: "Is the answer faithful to the document?", Labels: []string{"PASS", "FAIL"}, Inputs: []Input{
		{Field: "prompt", Text: "What is the capital of France?"},
		{Field: "context", Text: "[1] The capital of France is Paris."},
		{Field: "response", Text: "The capital of France is Lyon."},
	}}
	for answer, want := range map[string]string{
		`{"REASONING": ["The document states that the capital of France is Paris.", "The answer says Lyon, which contradicts the document."], "SCORE": "FAIL"}`: "FAIL",
		"{\"REASONING\": [\"The answer matches the document.\"], \"SCORE\": \"PASS\"}\n":                                                                        "PASS",
	} {
		p, err := f.Parse(s, answer)
		if err != nil || p.Result != want || !strings.HasPrefix(p.Explanation, `["The`) {
			t.Errorf("Parse(%q) = %+v, %v; want %s", answer, p, err, want)
		}
	}
	p, err := f.Render(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"PASS" if the answer is faithful to the DOCUMENT and "FAIL" if the answer is not faithful to the DOCUMENT. Show your reasoning.`,
		"--\nQUESTION (THIS DOES NOT COUNT AS BACKGROUND INFORMATION):\nWhat is the capital of France?\n\n--\nDOCUMENT:\n[1] The capital of France is Paris.\n\n--\nANSWER:\nThe capital of France is Lyon.\n\n--\n\n",
		`{"REASONING": <your reasoning as bullet points>, "SCORE": <your final score>}`,
	} {
		if !strings.Contains(p.User, want) {
			t.Errorf("user message lacks %q:\n%s", want, p.User)
		}
	}
	if p.System != "" {
		t.Errorf("system message %q, want none", p.System)
	}
}
