package format

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// guideSpecs are specs of every task type with several scales and labels.
func guideSpecs() []Spec {
	in := []Input{{Field: "prompt", Text: "q"}, {Field: "response", Text: "r"}}
	pair := []Input{{Field: "prompt", Text: "q"}, {Field: "response", Text: "r"}, {Field: "candidates", Text: "c"}}
	var specs []Spec
	for _, sc := range [][2]int{{1, 5}, {1, 7}, {1, 10}, {0, 100}, {-2, 2}} {
		specs = append(specs, Spec{Task: TaskPointwise, Criteria: "c", Min: sc[0], Max: sc[1], Inputs: in})
	}
	specs = append(specs,
		Spec{Task: TaskClassification, Criteria: "c", Labels: []string{"supported", "not_supported"}, Inputs: in},
		Spec{Task: TaskClassification, Criteria: "c", Labels: []string{"yes-no", "A_b", "x1", "yes"}, Inputs: in},
		Spec{Task: TaskPairwise, Criteria: "c", Inputs: pair})
	return specs
}

// explanationAlphabet holds what a judge may write, result-like text included; the
// guide's exclusions are taken out per format.
var explanationAlphabet = []string{"a", "Z", " ", "  ", "\t", "7", "10", "-", ":", ".", "*", "**", "[", "]", "[RESULT]", "**Result:** 4",
	"Score: 3", "Label: yes", "Preference: B", "Reasoning:", "é", "日本", "‹‹‹", "<<<", "\\", "\"", "{", "}", "|", "(", ")", "^", "$"}

// randomGuided returns an answer the guide of s allows, and the result it ends with.
func randomGuided(rng *rand.Rand, g *guideData, s Spec, maxChars int) (string, string) {
	var expl strings.Builder
	n := 1 + rng.IntN(12)
	for range n {
		piece := explanationAlphabet[rng.IntN(len(explanationAlphabet))]
		piece = strings.Map(func(r rune) rune {
			if r == '\n' || strings.ContainsRune(g.Exclude, r) {
				return -1
			}
			return r
		}, piece)
		expl.WriteString(piece)
	}
	e := []rune(expl.String())
	if len(e) == 0 {
		e = []rune("x")
	}
	if len(e) > maxChars {
		e = e[:maxChars]
	}
	choices := Choices(s)
	c := choices[rng.IntN(len(choices))]
	return g.Before + string(e) + g.Between + c + g.After, c
}

// TestGuidedAnswersParse: every answer a guide allows parses to the result it ends with,
// for every format, task type and several scales; the guide's regex (compiled by RE2
// here) accepts it; and the GBNF names the same pieces.
func TestGuidedAnswersParse(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, name := range Names() {
		f, _ := Lookup(name)
		for _, s := range guideSpecs() {
			task, ok := f.tasks[s.Task]
			if !ok {
				continue
			}
			if task.guide == nil {
				t.Errorf("%s/%s: no guide", name, s.Task)
				continue
			}
			const maxChars = 60
			g, err := f.Guide(s, maxChars)
			if err != nil {
				t.Fatalf("%s/%s: %v", name, s.Task, err)
			}
			re := regexp.MustCompile(`\A(?:` + g.Regex + `)\z`)
			for _, piece := range []string{"root ::=", "explanation ::= [^\\n", fmt.Sprintf("]{1,%d}", maxChars), "result ::= "} {
				if !strings.Contains(g.GBNF, piece) {
					t.Errorf("%s/%s: GBNF lacks %q:\n%s", name, s.Task, piece, g.GBNF)
				}
			}
			for range 300 {
				answer, want := randomGuided(rng, task.guide, s, maxChars)
				if !re.MatchString(answer) {
					t.Fatalf("%s/%s: the guide's regex rejects an answer it should allow: %q\n%s", name, s.Task, answer, g.Regex)
				}
				p, err := f.Parse(s, answer)
				if err != nil {
					t.Fatalf("%s/%s: a guided answer does not parse: %q: %v", name, s.Task, answer, err)
				}
				if p.Result != want {
					t.Fatalf("%s/%s: guided answer %q parsed to %q, want %q", name, s.Task, answer, p.Result, want)
				}
			}
		}
	}
}

// TestGuideExclusionsMatter is the negative control of TestGuidedAnswersParse: without
// their exclusions, an explanation could write the result marker, and such an answer
// does not parse (two markers). The regex refuses it.
func TestGuideExclusionsMatter(t *testing.T) {
	for name, injected := range map[string]string{"selene": "**Result:** 1", "prometheus2": "[RESULT] 1"} {
		f, _ := Lookup(name)
		s := guideSpecs()[0]
		g := f.tasks[s.Task].guide
		answer := g.Before + "fine " + injected + g.Between + "5"
		if _, err := f.Parse(s, answer); err == nil {
			t.Errorf("%s: an explanation holding the marker parsed: %q", name, answer)
		}
		guide, _ := f.Guide(s, 100)
		if regexp.MustCompile(`\A(?:` + guide.Regex + `)\z`).MatchString(answer) {
			t.Errorf("%s: the guide's regex allows the marker in the explanation", name)
		}
	}
}

func TestGuideErrors(t *testing.T) {
	f, _ := Lookup("flame")
	s := guideSpecs()[0]
	for _, n := range []int{0, MaxGuidedExplanation + 1} {
		if _, err := f.Guide(s, n); err == nil {
			t.Errorf("Guide(max %d): no error", n)
		}
	}
	if _, err := f.Guide(Spec{Task: TaskPointwise, Min: 5, Max: 1}, 10); err == nil {
		t.Error("Guide(bad scale): no error")
	}
	for _, data := range []string{
		"guides:\n  pointwise: {between: x}\ntasks: {}\n",
	} {
		if _, _, err := splitGuides([]byte(data)); err == nil || !strings.Contains(err.Error(), "last top-level key") {
			t.Errorf("splitGuides(%q) = %v, want the last-key error", data, err)
		}
	}
	if _, err := compileGuide(guideData{Before: "x"}); err == nil {
		t.Error("a guide without between: no error")
	}
}

func TestGBNFQuoting(t *testing.T) {
	for in, want := range map[string]string{"a\"b": `"a\"b"`, "a\\b": `"a\\b"`, "\n\t": `"\n\t"`, "\x01": `"\x01"`, "**": `"**"`} {
		if got := gbnfString(in); got != want {
			t.Errorf("gbnfString(%q) = %s, want %s", in, got, want)
		}
	}
	if got := gbnfClass(`]^-\*`); got != `\]\^\-\\*` {
		t.Errorf("gbnfClass = %s", got)
	}
}
