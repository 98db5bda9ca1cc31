package scorer

// The injection corpus (format/testdata/injection.yaml) against the real llama.cpp
// servers: the verdicts of guided decoding, and what the servers' chat templates and
// tokenizers make of the judged text. Skipped without RATERD_TEST_LLAMA, failed with
// RATERD_REQUIRE_SERVICES=1.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"raterd/record"
	"raterd/scorer/format"
)

// injectionCase is one case of format/testdata/injection.yaml (see that file).
type injectionCase struct {
	ID       string `yaml:"id"`
	Category string `yaml:"category"`
	Field    string `yaml:"field"`
	Target   string `yaml:"target"`
	Attack   string `yaml:"attack"`
	Holds    string `yaml:"holds"`
}

// injectionCorpus reads every case of format/testdata/injection.yaml.
func injectionCorpus(t *testing.T) []injectionCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("format", "testdata", "injection.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []injectionCase `yaml:"cases"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cases) == 0 {
		t.Fatal("the injection corpus is empty")
	}
	return doc.Cases
}

// injectionSubset is the first n cases of each category.
func injectionSubset(cases []injectionCase, n int) []injectionCase {
	var out []injectionCase
	per := map[string]int{}
	for _, c := range cases {
		if per[c.Category] < n {
			out = append(out, c)
			per[c.Category]++
		}
	}
	return out
}

// injectionRecord is a record whose field c.Field holds the attack.
func injectionRecord(c injectionCase) *record.Record {
	r := &record.Record{ID: "inject-" + c.ID, Model: "m", System: "You are SupportBot.",
		Prompt: "How do I reset my password?", Reference: "Settings > Security > Reset.",
		Context:    []string{"Settings > Security > Reset password."},
		ToolCalls:  []record.ToolCall{{Name: "search", Arguments: `{"q":"reset"}`, Result: "found"}},
		Response:   "Open Settings, choose Security and click Reset.",
		Metadata:   map[string]string{"note": "plain"},
		Candidates: []record.Candidate{{Model: "base", Response: "Call support."}}}
	switch c.Field {
	case FieldPrompt:
		r.Prompt = c.Attack
	case FieldReference:
		r.Reference = c.Attack
	case FieldSystem:
		r.System = c.Attack
	case FieldContext:
		r.Context = []string{c.Attack}
	case FieldToolCalls:
		r.ToolCalls[0].Result = c.Attack
	case "metadata.note":
		r.Metadata["note"] = c.Attack
	case FieldCandidates:
		r.Candidates[0].Response = c.Attack
	default:
		r.Response = c.Attack
	}
	return r
}

// injectionEvaluators read every field a corpus case may hold, in every format and task.
func injectionEvaluators() []*Evaluator {
	fields := []string{FieldSystem, FieldPrompt, FieldContext, FieldToolCalls, FieldResponse, FieldReference, "metadata.note"}
	var out []*Evaluator
	for _, f := range []string{FormatFLAMe, FormatSelene, FormatPrometheus2} {
		out = append(out,
			&Evaluator{Name: f + "-pointwise", Judge: "llama", Format: f, Criteria: "Is it correct?", Scale: Scale{Min: 1, Max: 5}, Fields: fields},
			&Evaluator{Name: f + "-pairwise", Judge: "llama", Format: f, Task: TaskPairwise, Criteria: "Which is better?",
				Fields: append(slices.Clone(fields), FieldCandidates)})
		if f != FormatPrometheus2 {
			out = append(out, &Evaluator{Name: f + "-classification", Judge: "llama", Format: f, Task: TaskClassification,
				Criteria: "Is it on topic?", Labels: []string{"on_topic", "off_topic"}, Fields: fields})
		}
	}
	return out
}

// TestLlamaCppInjectionVerdicts: two cases of each category of the corpus through the
// Llama 3 server with guided decoding, in every format and task: every verdict parses to
// a result on the scale.
// The random-weight model's judgement means nothing; what holds is the format.
func TestLlamaCppInjectionVerdicts(t *testing.T) {
	llama3, _ := llamaURLs(t)
	cases := injectionSubset(injectionCorpus(t), 2)
	var recs []*record.Record
	for _, c := range cases {
		recs = append(recs, injectionRecord(c))
	}
	j, jc := llamaJudge(t, llama3, nil)
	evals := injectionEvaluators()
	vs := judgeAll(t, j, jc, evals, recs)
	if len(vs) != len(evals)*len(recs) {
		t.Fatalf("%d verdicts, want %d", len(vs), len(evals)*len(recs))
	}
	for i, v := range vs {
		e, c := evals[i/len(recs)], cases[i%len(recs)]
		if v.Err != nil || v.Status != record.StatusOK {
			t.Errorf("%s, %s: status %q, err %v, explanation %q", e.Name, c.ID, v.Status, v.Err, v.Explanation)
			continue
		}
		switch e.Task {
		case TaskPointwise:
			if v.Value < 1 || v.Value > 5 {
				t.Errorf("%s, %s: score %v off the scale", e.Name, c.ID, v.Value)
			}
		case TaskClassification:
			if v.Label != "on_topic" && v.Label != "off_topic" {
				t.Errorf("%s, %s: label %q", e.Name, c.ID, v.Label)
			}
		}
	}
	t.Logf("%d cases × %d evaluators: %d verdicts", len(cases), len(evals), len(vs))
}

// tokenPiece is one token of llama-server's /tokenize with pieces.
type tokenPiece struct {
	ID    int             `json:"id"`
	Piece json.RawMessage `json:"piece"` // a string, or bytes that are not valid UTF-8
}

// tokenize runs the server's tokenizer over text, parsing special tokens as the server
// does for a chat request's templated prompt.
func tokenize(t *testing.T, base, text string) []tokenPiece {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"content": text, "add_special": false, "parse_special": true, "with_pieces": true})
	resp, err := http.Post(strings.TrimSuffix(base, "/v1")+"/tokenize", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Tokens []tokenPiece `json:"tokens"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/tokenize: status %d, %v", resp.StatusCode, err)
	}
	return out.Tokens
}

// chatSpecials are the chat templates' special tokens the formats escape.
var chatSpecials = []string{"<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|begin_of_text|>", "<|python_tag|>", "<|eom_id|>",
	"<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|end|>", "<|assistant|>",
	"<start_of_turn>", "<end_of_turn>", "<s>", "</s>", "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>"}

// specialIDs are the ids of the chatSpecials that the server's tokenizer reads as one
// special token.
func specialIDs(t *testing.T, base string) map[int]string {
	t.Helper()
	out := map[int]string{}
	for _, s := range chatSpecials {
		toks := tokenize(t, base, s)
		var piece string
		if len(toks) == 1 && json.Unmarshal(toks[0].Piece, &piece) == nil && piece == s {
			out[toks[0].ID] = s
		}
	}
	return out
}

// countSpecials counts the special tokens among toks.
func countSpecials(toks []tokenPiece, ids map[int]string) int {
	n := 0
	for _, tk := range toks {
		if _, ok := ids[tk.ID]; ok {
			n++
		}
	}
	return n
}

// TestLlamaCppInjectionTemplates: what the servers feed their models for every case of
// the corpus. Unescaped, llama.cpp tokenizes a chat special token written inside a message's
// content as the special token itself (so a judged text could end the user turn and open
// an assistant turn); every format escapes them, so the templated prompt of an attack
// holds exactly the special tokens of the plain prompt's, on both servers, and the
// server passes the rendered user message through unchanged (but for Llama 3.1's trim).
func TestLlamaCppInjectionTemplates(t *testing.T) {
	llama3, mistral := llamaURLs(t)
	cases := injectionCorpus(t)
	for _, server := range []struct{ name, url string }{{"llama3", llama3}, {"mistral", mistral}} {
		ids := specialIDs(t, server.url)
		if len(ids) == 0 {
			t.Fatalf("%s: no special tokens among %v", server.name, chatSpecials)
		}
		// The finding that the escape answers: raw special tokens become specials.
		raw := 0
		for _, c := range cases {
			if c.Category == "chat_token" && countSpecials(tokenize(t, server.url, c.Attack), ids) > 0 {
				raw++
			}
		}
		if raw == 0 {
			t.Errorf("%s: no chat_token attack tokenizes to a special token unescaped; the test no longer shows why formats escape them", server.name)
		}
		t.Logf("%s: specials %v; %d chat_token attacks tokenize to specials unescaped", server.name, slices.Sorted(func(yield func(string) bool) {
			for _, s := range ids {
				if !yield(s) {
					return
				}
			}
		}), raw)
		for _, name := range format.Names() {
			f, err := format.Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			spec := func(text string) format.Spec {
				s := format.Spec{Task: format.TaskPointwise, Criteria: "Is it correct?", Min: 1, Max: 5,
					Inputs: []format.Input{{Field: "system", Text: text}, {Field: "prompt", Text: text}, {Field: "response", Text: text}}}
				if !slices.Contains(f.Tasks(), format.TaskPointwise) { // lynx: classification only
					s.Task, s.Min, s.Max, s.Labels = format.TaskClassification, 0, 0, []string{"PASS", "FAIL"}
				}
				return s
			}
			plain, err := f.Render(spec("plain text"))
			if err != nil {
				t.Fatal(err)
			}
			want := countSpecials(tokenize(t, server.url, applyTemplate(t, server.url, plain.Messages(f.SystemMode()))), ids)
			for _, c := range cases {
				p, err := f.Render(spec(c.Attack))
				if err != nil {
					t.Fatal(err)
				}
				templated := applyTemplate(t, server.url, p.Messages(f.SystemMode()))
				// Llama 3.1's template trims each message's content.
				if !strings.Contains(templated, strings.TrimSpace(p.User)) {
					t.Errorf("%s, %s, %s: the server changed the user message", server.name, name, c.ID)
				}
				if got := countSpecials(tokenize(t, server.url, templated), ids); got != want {
					t.Errorf("%s, %s, %s: %d special tokens in the templated prompt, want %d (the plain prompt's)", server.name, name, c.ID, got, want)
				}
			}
		}
	}
}
