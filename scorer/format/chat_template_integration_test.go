package format_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"raterd/internal/testkit"
	"raterd/scorer/format"
)

// The chat templates of the judge model families (testdata/chat-templates.md names each
// source), with the special tokens their tokenizers define.
var chatFamilies = map[string]struct{ bos, eos string }{
	"llama-3.1":    {"<|begin_of_text|>", "<|eot_id|>"}, // Selene Mini, Llama Guard 3
	"gemma-2":      {"<bos>", "<eos>"},                  // ShieldGemma
	"granite-3.3":  {"", "<|end_of_text|>"},             // Granite Guardian 3.3
	"qwen3":        {"", "<|im_end|>"},                  // Qwen3Guard
	"mistral-v0.2": {"<s>", "</s>"},                     // Prometheus 2
}

// formatFamilies are the families each shipped format is used with: its default system
// mode must render on every one of them.
var formatFamilies = map[string][]string{
	"flame":       {"llama-3.1", "granite-3.3", "qwen3"},
	"selene":      {"llama-3.1"},
	"prometheus2": {"mistral-v0.2"},
	"lynx":        {"llama-3.1"}, // Lynx 8B is built on Llama 3
}

// templateRefusal is what the families that have no system role raise on one.
var templateRefusal = map[string]string{
	"mistral-v0.2": "Conversation roles must alternate",
	"gemma-2":      "System role not supported",
}

// jinja renders messages through real chat templates with Jinja2, the way Hugging Face's
// apply_chat_template does (scripts/llama/render_chat.py).
type jinja struct {
	dir string
	in  *json.Encoder
	out *bufio.Scanner
}

func startJinja(t *testing.T) *jinja {
	t.Helper()
	python := testkit.Service(t, "RATERD_TEST_LLAMA_PYTHON", "Python with jinja2 (scripts/services.sh)")
	dir := testkit.Service(t, "RATERD_TEST_LLAMA_TEMPLATES", "the judge families' chat templates (scripts/services.sh)")
	cmd := exec.Command(python, "../../scripts/llama/render_chat.py")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("render_chat.py: %v\n%s", err, stderr.String())
		}
	})
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	return &jinja{dir: dir, in: json.NewEncoder(stdin), out: sc}
}

// render returns the rendered text, or the template's error.
func (j *jinja) render(t *testing.T, family string, msgs []format.Message) (string, error) {
	t.Helper()
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	req := struct {
		Template string `json:"template"`
		Messages []msg  `json:"messages"`
		BOS      string `json:"bos_token"`
		EOS      string `json:"eos_token"`
	}{Template: filepath.Join(j.dir, family+".jinja"), BOS: chatFamilies[family].bos, EOS: chatFamilies[family].eos}
	for _, m := range msgs {
		req.Messages = append(req.Messages, msg{m.Role, m.Content})
	}
	if err := j.in.Encode(req); err != nil {
		t.Fatal(err)
	}
	if !j.out.Scan() {
		t.Fatalf("render_chat.py: no answer: %v", j.out.Err())
	}
	var resp struct{ Text, Error string }
	if err := json.Unmarshal(j.out.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Error != "" {
		return "", fmt.Errorf("%s", resp.Error)
	}
	return resp.Text, nil
}

// chatSpecs are specs of each task type, reading the system prompt and context too.
func chatSpecs() []format.Spec {
	in := []format.Input{{Field: "system", Text: "You are SupportBot."}, {Field: "prompt", Text: "How do I reset my password?"},
		{Field: "context", Text: "[1] Settings > Security > Reset."}, {Field: "response", Text: "Open Settings and click Reset."}}
	return []format.Spec{
		{Task: format.TaskPointwise, Criteria: "CRITERIA-MARK: correct?", Min: 1, Max: 5, Inputs: in},
		{Task: format.TaskClassification, Criteria: "CRITERIA-MARK: grounded?", Labels: []string{"yes", "no"}, Inputs: in},
		{Task: format.TaskPairwise, Criteria: "CRITERIA-MARK: better?", Inputs: append(slices.Clone(in), format.Input{Field: "candidates", Text: "Call support."})},
	}
}

// TestChatTemplatesRenderFormats renders every shipped format and task through the real
// chat templates of the model families it is used with, with Jinja2:
//   - each format's default system mode renders on its families, with the criteria and the
//     system message in the text;
//   - fold renders on every family, the format reminder's follow-up turns too;
//   - native, with a system message, is refused by Mistral v0.2's and Gemma 2's templates
//     with their own errors: the negative control that shows this test would catch a
//     format sending a system turn to them (prometheus2 did, before fold).
func TestChatTemplatesRenderFormats(t *testing.T) {
	j := startJinja(t)
	families := slices.Sorted(func(yield func(string) bool) {
		for f := range chatFamilies {
			if !yield(f) {
				return
			}
		}
	})
	for _, name := range format.Names() {
		f, err := format.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, spec := range chatSpecs() {
			if !slices.Contains(f.Tasks(), spec.Task) {
				continue
			}
			p, err := f.Render(spec)
			if err != nil {
				t.Fatal(err)
			}
			for _, fam := range families {
				for _, mode := range []string{format.SystemNative, format.SystemFold} {
					msgs := p.Messages(mode)
					text, err := j.render(t, fam, msgs)
					isDefault := mode == f.SystemMode() && slices.Contains(formatFamilies[name], fam)
					refusal, refuses := templateRefusal[fam]
					switch {
					case mode == format.SystemNative && p.System != "" && refuses:
						if err == nil || !strings.Contains(err.Error(), refusal) {
							t.Errorf("%s/%s native on %s: %v, want the template's refusal %q", name, spec.Task, fam, err, refusal)
						}
						if isDefault {
							t.Errorf("%s/%s: the default mode %s is refused by %s, one of its families", name, spec.Task, mode, fam)
						}
					case err != nil:
						t.Errorf("%s/%s %s on %s: %v", name, spec.Task, mode, fam, err)
					case strings.Contains(p.User, "CRITERIA-MARK") && !strings.Contains(text, "CRITERIA-MARK") ||
						!strings.Contains(text, "How do I reset my password?") ||
						p.System != "" && !strings.Contains(text, strings.TrimSpace(p.System)[:20]):
						t.Errorf("%s/%s %s on %s: the rendered text lacks the criteria, the judged prompt or the system message:\n%s", name, spec.Task, mode, fam, text)
					}
				}
				// The format reminder appends the answer and a follow-up: still alternating.
				followUp := append(p.Messages(format.SystemFold),
					format.Message{Role: "assistant", Content: "Score: seven"},
					format.Message{Role: "user", Content: f.Reminder(spec, nil)})
				if _, err := j.render(t, fam, followUp); err != nil {
					t.Errorf("%s/%s: the reminder turns, folded, on %s: %v", name, spec.Task, fam, err)
				}
			}
		}
	}
}
