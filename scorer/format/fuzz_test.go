package format

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzTarget picks a format and a spec from one byte: format, task, and one of two scales
// (FuzzRender also reads sel/18%2: whether to add the system, context and tool_calls
// fields).
func fuzzTarget(t *testing.T, sel uint8) (*Format, Spec) {
	names := Names()
	f, err := Lookup(names[int(sel)%len(names)])
	if err != nil {
		t.Fatal(err)
	}
	s := testSpec(knownTasks[int(sel)/len(names)%len(knownTasks)])
	if sel/9%2 == 1 {
		s.Min, s.Max = -3, 12
		s.Labels = append(s.Labels, "Partly")
	}
	return f, s
}

// FuzzParse (seed corpus: testdata/fuzz/FuzzParse) checks that Parse never panics, that every result is one of Choices, and that
// ResultStart points at the result as written in the answer.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, sel uint8, answer string) {
		fm, s := fuzzTarget(t, sel)
		p, err := fm.Parse(s, answer)
		if _, terr := fm.task(s.Task); terr != nil {
			if err == nil || errors.Is(err, ErrUnparseable) {
				t.Fatalf("unsupported task: err = %v, want a spec error", err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrUnparseable) {
				t.Fatalf("err = %v, want ErrUnparseable", err)
			}
			if msg := err.Error(); !utf8.ValidString(msg) || len(msg) > 400 || strings.Contains(msg, "\n") {
				t.Fatalf("error not bounded, valid UTF-8 and on one line: %q", msg)
			}
			return
		}
		if !slices.Contains(Choices(s), p.Result) {
			t.Fatalf("result %q is not one of %v", p.Result, Choices(s))
		}
		if p.ResultStart < 0 || p.ResultStart+len(p.Result) > len(answer) ||
			!asciiEqualFold(answer[p.ResultStart:p.ResultStart+len(p.Result)], p.Result) {
			t.Fatalf("ResultStart %d does not point at %q in %q", p.ResultStart, p.Result, answer)
		}
		if p.Explanation != strings.TrimSpace(p.Explanation) {
			t.Fatalf("explanation %q is not trimmed", p.Explanation)
		}
	})
}

// FuzzRender (seed corpus: testdata/fuzz/FuzzRender) checks that judged text, however it is escaped, never changes the block or
// section structure of a prompt and never reaches it unescaped.
func FuzzRender(f *testing.F) {
	tokens := make(map[string][]string)
	for _, name := range Names() {
		tokens[name] = markers(f, name)
	}
	f.Fuzz(func(t *testing.T, sel uint8, prompt, response, candidate string) {
		fm, s := fuzzTarget(t, sel)
		if _, err := fm.task(s.Task); err != nil {
			return
		}
		tokens := tokens[fm.Name()]
		build := func(p, r, c string) Spec {
			s.Inputs = []Input{{Field: "prompt", Text: p}, {Field: "response", Text: r}, {Field: "metadata.x", Text: c}}
			if s.Task == TaskPairwise {
				s.Inputs[2].Field = "candidates"
			}
			if sel/18%2 == 1 { // the fields of richer inputs, holding the same texts
				s.Inputs = append(s.Inputs, Input{Field: "system", Text: p}, Input{Field: "context", Text: r}, Input{Field: "tool_calls", Text: c})
			}
			return s
		}
		benign, err := fm.Render(build("p", "r", "c"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := fm.Render(build(prompt, response, candidate))
		if err != nil {
			t.Fatal(err)
		}
		if skeleton(got.User, tokens) != skeleton(benign.User, tokens) {
			t.Fatalf("judged text changed the structure:\n%s\nwant:\n%s", skeleton(got.User, tokens), skeleton(benign.User, tokens))
		}
		if !utf8.ValidString(got.User) || got.System != benign.System {
			t.Fatalf("user message not valid UTF-8, or system message changed")
		}
	})
}
