package checks

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
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
	set := New()
	var cs []*Check
	for _, name := range Names() {
		c, ok := set.Lookup(name)
		if !ok {
			f.Fatalf("Names lists %q, which Lookup does not find", name)
		}
		cs = append(cs, c)
	}
	f.Fuzz(func(t *testing.T, prompt, response string) {
		// As the heuristic judge runs each check with its default fields: only json
		// reads the prompt.
		run := func(c *Check) Result {
			return c.Run(Input{Response: response, Prompt: prompt, HasPrompt: c.Reads(FieldPrompt)})
		}
		vs := make([]Result, len(cs))
		for i, c := range cs {
			vs[i] = run(c)
		}
		for i, v := range vs {
			check := cs[i].Name
			if !(v.Value >= 0 && v.Value <= 1) || !(v.Confidence >= 0 && v.Confidence <= 1) {
				t.Fatalf("%s: value %v confidence %v out of [0,1]", check, v.Value, v.Confidence)
			}
			if v.Label == "" || v.Explanation == "" {
				t.Fatalf("%s: incomplete verdict %+v", check, v)
			}
			if a := run(cs[i]); a.Label != v.Label || a.Value != v.Value || a.Explanation != v.Explanation {
				t.Fatalf("%s: not deterministic: %+v then %+v", check, v, a)
			}
			if !utf8.ValidString(v.Explanation) && utf8.ValidString(response) {
				t.Fatalf("%s: explanation is not valid UTF-8: %q", check, v.Explanation)
			}
		}
		byCheck := func(name string) Result {
			for i, c := range cs {
				if c.Name == name {
					return vs[i]
				}
			}
			t.Fatalf("no verdict for %s", name)
			return Result{}
		}
		if v := byCheck(NamePII); v.Label == "pii" {
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
		if v := byCheck(NameJSON); v.Label != "not_requested" && json.Valid([]byte(strings.TrimSpace(response))) && v.Label != "valid_json" {
			t.Fatalf("json: valid JSON response labelled %q: %s", v.Label, v.Explanation)
		}
		words := len(strings.FieldsFunc(response, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.Is(unicode.Mn, r) }))
		if v := byCheck(NameRepetition); words < repMinWords && utf8.ValidString(response) && !strings.ContainsFunc(response, func(r rune) bool { return r >= 0x2E80 || unicode.IsSymbol(r) }) && v.Label != "ok" {
			t.Fatalf("repetition: short response labelled %q", v.Label)
		}
	})
}
