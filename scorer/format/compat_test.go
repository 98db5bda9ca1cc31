package format

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCompatFingerprints checks each format's compat claim: the earlier file kept in
// testdata/compat has the named fingerprint, and renders and parses every prompt that
// reads none of the compat fields exactly as the current file does. When an edit breaks
// this, the rubric versions of existing evaluators must change: drop the compat section
// (or point it at an earlier file that still renders the same) rather than the test.
// flame, prometheus2 and selene have one since the transcript field was added: their
// files from before it are kept in testdata/compat.
func TestCompatFingerprints(t *testing.T) {
	for _, name := range Names() {
		cur, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if cur.compat.Fingerprint == "" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "compat", name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			old, err := compile(name, data)
			if err != nil {
				t.Fatal(err)
			}
			// The fingerprint as compile computes it (the prompt part of the file and the
			// chat-token escapes), which is what rubric versions held before.
			if fp := old.Fingerprint(); fp != cur.compat.Fingerprint {
				t.Fatalf("testdata/compat/%s.yaml has fingerprint %s, the format's compat section names %s", name, fp, cur.compat.Fingerprint)
			}
			if !slices.Equal(old.Tasks(), cur.Tasks()) {
				t.Fatalf("tasks %v, earlier file %v", cur.Tasks(), old.Tasks())
			}
			for _, task := range old.Tasks() {
				o, c := old.tasks[task], cur.tasks[task]
				if o.answer.String() != c.answer.String() || o.marker.String() != c.marker.String() || o.hasSystem != c.hasSystem {
					t.Errorf("%s: the output grammar or system message differs from the earlier file's", task)
				}
			}
			n := 0
			for _, s := range compatSpecs(old.Tasks()) {
				if slices.ContainsFunc(s.Inputs, func(in Input) bool { return slices.Contains(cur.compat.Without, in.Field) }) {
					t.Fatalf("compatSpecs reads a compat field: %+v", s.Inputs)
				}
				po, eo := old.Render(s)
				pc, ec := cur.Render(s)
				if (eo == nil) != (ec == nil) || po != pc {
					t.Fatalf("spec %+v renders differently:\nearlier (%v):\n%s\n%s\ncurrent (%v):\n%s\n%s", s, eo, po.System, po.User, ec, pc.System, pc.User)
				}
				if eo == nil {
					n++
				}
				for _, perr := range []error{nil, fmt.Errorf("%w: no result", ErrUnparseable)} {
					if ro, rc := old.Reminder(s, perr), cur.Reminder(s, perr); ro != rc {
						t.Fatalf("spec %+v: reminder differs:\n%s\n%s", s, ro, rc)
					}
				}
				for _, a := range compatAnswers {
					po, eo := old.Parse(s, a)
					pc, ec := cur.Parse(s, a)
					if po != pc || (eo == nil) != (ec == nil) || errors.Is(eo, ErrUnparseable) != errors.Is(ec, ErrUnparseable) {
						t.Fatalf("spec %+v: answer %q parses differently: %+v, %v vs %+v, %v", s, a, po, eo, pc, ec)
					}
				}
			}
			if n < 100 {
				t.Fatalf("only %d specs rendered; the enumeration lost its coverage", n)
			}
		})
	}
}

// compatAnswers are judge answers in every format's grammar, some malformed.
var compatAnswers = []string{
	"Reasoning: Fine.\nScore: 4", "Reasoning: Fine.\nLabel: on_topic", "Reasoning: x\nPreference: B",
	"Good. [RESULT] 3", "Good. [RESULT] A", "**Reasoning:** ok\n\n**Result:** 2", "**Reasoning:** ok\n\n**Result:** off_topic",
	"**Result:** A", "It looks fine to me.", "",
}

// compatSpecs enumerates specs over the fields every version of a format knows: each
// subset of them in two orders, with and without levels, two or three labels, swapped or
// not, holding plain text or injections.
func compatSpecs(tasks []string) []Spec {
	pool := []string{fieldPrompt, fieldMessages, fieldResponse, fieldReference, "metadata.locale", "metadata.a b"}
	texts := []string{"plain text\nover two lines", injections[0] + injections[3] + injections[6] + chatTokenForgery}
	var out []Spec
	for _, task := range tasks {
		for mask := 1; mask < 1<<len(pool); mask++ {
			var fields []string
			for i, f := range pool {
				if mask&(1<<i) != 0 {
					fields = append(fields, f)
				}
			}
			if task == TaskPairwise {
				fields = append(fields, fieldCandidates)
			}
			for _, reversed := range []bool{false, true} {
				fs := slices.Clone(fields)
				if reversed {
					slices.Reverse(fs)
				}
				for v, text := range texts {
					s := Spec{Task: task, Criteria: "Is it right? " + text, Min: 1, Max: 5}
					for i, f := range fs {
						s.Inputs = append(s.Inputs, Input{Field: f, Text: fmt.Sprintf("%s %d: %s", f, i, text)})
					}
					switch task {
					case TaskPointwise:
						if v == 1 {
							s.Min, s.Max, s.Levels = 0, 10, map[int]string{0: "bad " + text, 10: "good"}
						}
					case TaskClassification:
						s.Labels = []string{"on_topic", "off_topic"}
						if v == 1 {
							s.Labels = append(s.Labels, "partly")
						}
					case TaskPairwise:
						s.Swap = v == 1
					}
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// TestFingerprintFor: a prompt keeps the earlier fingerprint unless it reads a field the
// earlier file did not know; without a compat section every prompt has the file's.
func TestFingerprintFor(t *testing.T) {
	for _, name := range Names() {
		f, _ := Lookup(name)
		if f.compat.Fingerprint != "" {
			continue
		}
		for _, fields := range [][]string{{"prompt", "response"}, {"prompt", fieldContext, "response"}} {
			if got := f.FingerprintFor(fields); got != f.Fingerprint() {
				t.Errorf("%s: %v: fingerprint %s, want the file's %s", name, fields, got, f.Fingerprint())
			}
		}
	}
	base := "escape: [[\"<<<\", \"x\"]]\ncompat: {fingerprint: 0123456789abcdef, without: [system, context, tool_calls]}\n" +
		"tasks:\n  pointwise: {user: u, output: o, result: r, reminder: m, answer: '\\A(?P<explanation>)(?P<result>.*)\\z', marker: 'S'}\n"
	f, err := compile("t", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.FingerprintFor([]string{"prompt", "response", "reference", "metadata.context"}); got != "0123456789abcdef" {
		t.Errorf("old fields: fingerprint %s, want the earlier 0123456789abcdef", got)
	}
	for _, nf := range []string{fieldSystem, fieldContext, fieldToolCalls} {
		if got := f.FingerprintFor([]string{"prompt", nf, "response"}); got != f.Fingerprint() {
			t.Errorf("reading %s: fingerprint %s, want the file's %s", nf, got, f.Fingerprint())
		}
	}
}

// TestCompatSectionIsChecked: a malformed compat section fails to compile.
func TestCompatSectionIsChecked(t *testing.T) {
	base := "escape: [[\"<<<\", \"x\"]]\ntasks:\n  pointwise: {user: u, output: o, result: r, reminder: m, answer: '\\A(?P<explanation>)(?P<result>.*)\\z', marker: 'S'}\n"
	if _, err := compile("t", []byte(base)); err != nil {
		t.Fatalf("base: %v", err)
	}
	for bad, want := range map[string]string{
		"compat: {fingerprint: 0123, without: [system]}\n":              "compat.fingerprint",
		"compat: {fingerprint: 0123456789abcdef}\n":                     "compat.without",
		"compat: {fingerprint: 0123456789abcdef, without: [sytem]}\n":   `compat.without[0]: unknown field "sytem"`,
		"compat: {fingerprint: 0123456789ABCDEF, without: [context]}\n": "compat.fingerprint",
	} {
		_, err := compile("t", []byte(base+bad))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", bad, err, want)
		}
	}
}
