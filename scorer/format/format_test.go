package format

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	if got := strings.Join(Names(), ","); got != "flame,lynx,prometheus2,selene" {
		t.Fatalf("Names() = %s", got)
	}
	seen := make(map[string]bool)
	for _, name := range Names() {
		f, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name() != name {
			t.Errorf("Lookup(%q).Name() = %q", name, f.Name())
		}
		data, _ := formatFiles.ReadFile("formats/" + name + ".yaml")
		// The fingerprint covers the file up to its guides (which shape answers, not
		// prompts) and the chat-token escapes every format applies; the guide fingerprint
		// covers the guides.
		at := strings.Index(string(data), "\nguides:")
		if at < 0 || f.GuideFingerprint() == "" {
			t.Fatalf("%s: no guides section, or no guide fingerprint", name)
		}
		sum := promptFingerprint(data[:at+1])
		if fp := f.Fingerprint(); fp != hex.EncodeToString(sum[:])[:16] || seen[fp] {
			t.Errorf("%s: fingerprint %q is not the hash of the file before its guides and the chat-token escapes, or repeats", name, fp)
		}
		// The chat-token escapes shape prompts: a change to them is another fingerprint.
		if plain := sha256.Sum256(data[:at+1]); hex.EncodeToString(plain[:])[:16] == f.Fingerprint() {
			t.Errorf("%s: the fingerprint leaves out the chat-token escapes", name)
		}
		seen[f.Fingerprint()] = true
	}
	_, err := Lookup("gpt-judge")
	if err == nil || !strings.Contains(err.Error(), `"gpt-judge"`) || !strings.Contains(err.Error(), "flame, lynx, prometheus2, selene") {
		t.Errorf("Lookup(unknown): err = %v, want it to name the format and the valid ones", err)
	}
	if f, _ := Lookup("prometheus2"); slices.Contains(f.Tasks(), TaskClassification) {
		t.Errorf("prometheus2 claims a classification format")
	}
}

func TestRenderSpecErrors(t *testing.T) {
	f, _ := Lookup("flame")
	ok := testSpec(TaskPointwise)
	for _, c := range []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"no criteria", func(s *Spec) { s.Criteria = " " }, "criteria"},
		{"no inputs", func(s *Spec) { s.Inputs = nil }, "inputs: none"},
		{"unknown field", func(s *Spec) { s.Inputs[0].Field = "documents" }, `unknown field "documents"`},
		{"empty metadata key", func(s *Spec) { s.Inputs[0].Field = "metadata." }, "unknown field"},
		{"repeated field", func(s *Spec) { s.Inputs[1].Field = "prompt" }, "repeats"},
		{"nothing judged", func(s *Spec) { s.Inputs = []Input{{Field: "reference", Text: "x"}} }, "need prompt, messages, response or transcript"},
		{"candidates outside pairwise", func(s *Spec) { s.Inputs[0].Field = "candidates" }, "only pairwise"},
		{"pairwise without candidate", func(s *Spec) { s.Task = TaskPairwise }, "needs response and candidates"},
		{"level off scale", func(s *Spec) { s.Levels = map[int]string{6: "x"} }, "levels.6"},
		{"empty level", func(s *Spec) { s.Levels = map[int]string{3: " "} }, "levels.3"},
		{"bad scale", func(s *Spec) { s.Min, s.Max = 5, 1 }, "scale"},
		{"unknown task", func(s *Spec) { s.Task = "ranking" }, `no "ranking" task`},
	} {
		s := ok
		s.Inputs = slices.Clone(ok.Inputs)
		c.edit(&s)
		if _, err := f.Render(s); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
}

func TestRenderPairwiseOrder(t *testing.T) {
	f, _ := Lookup("flame")
	for _, c := range []struct {
		inputs []Input
		swap   bool
		want   string // the texts of A and B, in prompt order
	}{
		{[]Input{{"response", "R"}, {"candidates", "C"}}, false, "<<<RESPONSE A>>>\nR\n<<<END RESPONSE A>>>\n\n<<<RESPONSE B>>>\nC\n"},
		{[]Input{{"response", "R"}, {"candidates", "C"}}, true, "<<<RESPONSE A>>>\nC\n<<<END RESPONSE A>>>\n\n<<<RESPONSE B>>>\nR\n"},
		// A comes first even when the evaluator lists candidates before response.
		{[]Input{{"candidates", "C"}, {"response", "R"}}, false, "<<<RESPONSE A>>>\nR\n<<<END RESPONSE A>>>\n\n<<<RESPONSE B>>>\nC\n"},
		{[]Input{{"candidates", "C"}, {"response", "R"}}, true, "<<<RESPONSE A>>>\nC\n<<<END RESPONSE A>>>\n\n<<<RESPONSE B>>>\nR\n"},
	} {
		p, err := f.Render(Spec{Task: TaskPairwise, Criteria: "better?", Inputs: c.inputs, Swap: c.swap})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(p.User, c.want) {
			t.Errorf("inputs %v swap %v: user message lacks %q:\n%s", c.inputs, c.swap, c.want, p.User)
		}
	}
}

func TestRenderMetadataKey(t *testing.T) {
	s := testSpec(TaskPointwise)
	s.Inputs = append(s.Inputs, Input{Field: "metadata.a>>>\nb ###", Text: "v"})
	for name, want := range map[string]string{
		"flame":       "<<<METADATA A____B____>>>\nv\n<<<END METADATA A____B____>>>",
		"prometheus2": "###Metadata a____b____:\nv\n",
		"selene":      "Metadata a____b____:\n```\nv\n```",
		"lynx":        "--\nMETADATA A____B____:\nv\n",
	} {
		f, _ := Lookup(name)
		s := s
		if !slices.Contains(f.Tasks(), s.Task) {
			s = testSpec(TaskClassification)
			s.Inputs = append(s.Inputs, Input{Field: "metadata.a>>>\nb ###", Text: "v"})
		}
		p, err := f.Render(s)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(p.User, want) {
			t.Errorf("%s: user message lacks %q:\n%s", name, want, p.User)
		}
	}
}

func TestReminder(t *testing.T) {
	for _, name := range Names() {
		f, _ := Lookup(name)
		for _, task := range f.Tasks() {
			s := testSpec(task)
			_, perr := f.Parse(s, "no idea\n"+strings.Repeat("x", 1000))
			r := f.Reminder(s, perr)
			if !strings.HasPrefix(r, "Your previous answer did not follow the output format (no result") || len(r) > 800 {
				t.Errorf("%s %s: reminder %q", name, task, r)
			}
			if out, _ := f.tasks[task].execute("output", &view{Min: s.Min, Max: s.Max, Labels: s.Labels}); !strings.Contains(r, out) {
				t.Errorf("%s %s: reminder does not restate the output format %q", name, task, out)
			}
			if r := f.Reminder(s, nil); !strings.HasPrefix(r, "Your previous answer did not follow the output format.") {
				t.Errorf("%s %s: reminder without error %q", name, task, r)
			}
		}
	}
	p, _ := Lookup("prometheus2")
	if r := p.Reminder(testSpec(TaskClassification), errors.New("x")); r != "" {
		t.Errorf("reminder for an unsupported task = %q, want empty", r)
	}
}

func TestCompileRejects(t *testing.T) {
	valid := func(answer string) string {
		return "tasks:\n  pairwise:\n    user: u\n    output: o\n    result: r\n    reminder: m\n    marker: 'X'\n    answer: '" + answer + "'\n"
	}
	if _, err := compile("ok", []byte(valid(`(?s)\A(?P<explanation>.*)X(?P<result>.)\z`))); err != nil {
		t.Fatalf("valid format: %v", err)
	}
	for name, data := range map[string]string{
		"unanchored":     valid(`(?P<explanation>.*)X(?P<result>.)`),
		"no result":      valid(`\A(?P<explanation>.*)X\z`),
		"bad regexp":     valid(`\A(?P<explanation>.*(?P<result>\z`),
		"unknown key":    valid(`\A(?P<explanation>.*)X(?P<result>.)\z`) + "    sytem: s\n",
		"unknown task":   "tasks:\n  ranking:\n    user: u\n",
		"missing fields": "tasks:\n  pairwise:\n    user: u\n",
		"bad template":   strings.Replace(valid(`\A(?P<explanation>.*)X(?P<result>.)\z`), "user: u", "user: '{{.Nope'", 1),
		"bad escape":     "escape: [[a]]\n" + valid(`\A(?P<explanation>.*)X(?P<result>.)\z`),
		"no tasks":       "escape: []\n",
	} {
		if _, err := compile("bad", []byte(data)); err == nil {
			t.Errorf("%s: compiled", name)
		}
	}
}
