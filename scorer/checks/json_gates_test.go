package checks

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"raterd/internal/trafficgen"
	"raterd/record"
)

// jsonPromptSentences are requests for JSON and talk about JSON, for every pattern and
// negation: the gates of each must let all of them through.
var jsonPromptSentences = []string{
	"Extract the person. Respond in JSON.", "Return a JSON object with keys name and age.", "Output valid JSON only.",
	"Give me the result as JSON.", "List three colours in JSON format.", "Your answer must be valid JSON.",
	"The reply should be in strict JSON.", "It has to be formatted as JSON.", "Use JSON mode.", "json-only please",
	"format: json", `response_format = {"type": "json_object"}`, "Output format: JSON", "return type: json_schema",
	"Convert this table to JSON.", "Transform the CSV rows into a JSON array.", "Rewrite the list as valid JSON.",
	"How do I return JSON from a Flask route?", "Write a JSON parser in Go.", "What is JSON and why is it popular?",
	"Our config is stored as JSON. Why is startup slow?", "a function that returns JSON for a user",
	"Summarise this. Do not respond in JSON, use plain prose.", "Answer in plain text, not JSON.", "Don't use JSON.",
	"Never answer with JSON.", "No need to format it as JSON.", "Avoid JSON in the reply.", "Reply not in JSON but YAML.",
	"Use YAML instead of JSON.", "Plain text rather than JSON, please.", "A summary without JSON.", "no JSON, please",
	"Please don't reply in JSON.", "Answer as prose, not using JSON.", "The JSON-formatted logs are big.",
}

// jsonPromptCorpus returns the prompts of the JSON tests: jsonPromptSentences alone and
// inside longer text, and the prompts of generated traffic.
func jsonPromptCorpus(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, s := range jsonPromptSentences {
		out = append(out, s, "We have the meeting notes below. "+s+"\n\nNotes: the team met on Monday.")
	}
	for _, opts := range []trafficgen.Options{{Seed: 3, Count: 3000, ExactRepeats: true, DistinctPrompts: 3000}, {Seed: 4, Count: 3000}} {
		for _, line := range trafficgen.Generate(opts) {
			var rec record.Record
			if json.Unmarshal(line, &rec) == nil {
				out = append(out, rec.PromptText())
			}
		}
	}
	return out
}

// ungatedJSONDetector is d with every pattern run on every window: the reference the
// gated detector must agree with.
func ungatedJSONDetector(d *jsonDetector) *jsonDetector {
	u := *d
	u.jsonNegGates = nil
	u.jsonAskGates = make([][]string, len(d.jsonAsk))
	return &u
}

// TestJSONGates checks the gate literals of the JSON-request patterns and of the negation
// pattern: every match of a gated pattern in the windows of the corpus contains one of
// its literals, so skipping a window without them never loses a match; every gated
// pattern matches somewhere; and the gated detector answers what the ungated one does.
func TestJSONGates(t *testing.T) {
	d := New().json
	u := ungatedJSONDetector(d)
	if len(d.jsonAskGates) != len(d.jsonAsk) {
		t.Fatalf("%d gate lists for %d patterns", len(d.jsonAskGates), len(d.jsonAsk))
	}
	type gated struct {
		name    string
		re      *regexp.Regexp
		lits    []string
		matches int
	}
	var gs []*gated
	for i, re := range d.jsonAsk {
		if d.jsonAskGates[i] != nil {
			gs = append(gs, &gated{name: "ask pattern " + string(rune('0'+i)), re: re, lits: d.jsonAskGates[i]})
		}
	}
	gs = append(gs, &gated{name: "negation", re: d.jsonNeg, lits: d.jsonNegGates})
	asked := 0
	for _, prompt := range jsonPromptCorpus(t) {
		// Windows as jsonRequested cuts them, and the whole lower-cased prompt.
		windows := []string{strings.ToLower(prompt)}
		for from := 0; ; {
			k := indexFoldJSON(prompt[from:])
			if k < 0 {
				break
			}
			at := from + k
			from = at + 4
			windows = append(windows, strings.ToLower(prompt[max(0, at-120):min(len(prompt), at+40)]))
		}
		for _, w := range windows {
			for _, g := range gs {
				for _, m := range g.re.FindAllString(w, -1) {
					g.matches++
					if !containsAny(m, g.lits) {
						t.Errorf("%s matched %q in %q without any of its gate literals %q", g.name, m, w, g.lits)
					}
				}
			}
		}
		got, want := d.jsonRequested(prompt), u.jsonRequested(prompt)
		if got != want {
			t.Errorf("jsonRequested(%q) = %v, without gates %v", prompt, got, want)
		}
		if want {
			asked++
		}
	}
	for _, g := range gs {
		if g.matches == 0 {
			t.Errorf("%s matched nothing in the corpus; add a sentence for it", g.name)
		}
	}
	if asked < 50 {
		t.Errorf("only %d prompts of the corpus ask for JSON", asked)
	}
}

// FuzzJSONRequested checks on arbitrary prompts that the gated JSON-request detection
// answers what running every pattern on every window answers.
func FuzzJSONRequested(f *testing.F) {
	for _, s := range jsonPromptSentences {
		f.Add(s)
	}
	d := New().json
	u := ungatedJSONDetector(d)
	f.Fuzz(func(t *testing.T, prompt string) {
		if got, want := d.jsonRequested(prompt), u.jsonRequested(prompt); got != want {
			t.Fatalf("jsonRequested(%q) = %v, without gates %v", prompt, got, want)
		}
	})
}
