package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"raterd/internal/testkit"
)

// llamaServer is a llama.cpp server's own endpoints (not the OpenAI-compatible ones): it
// applies the served model's chat template and tokenizes with its tokenizer.
type llamaServer struct {
	root   string // the URL without /v1
	client *http.Client
}

func (s llamaServer) post(t *testing.T, path string, body, out any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.client.Post(s.root+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
}

// tokens applies the chat template to p's messages in mode and tokenizes the result as
// the server would for a chat completion; it also returns the templated text.
func (s llamaServer) tokens(t *testing.T, p Prompt, mode string) ([]int, string) {
	t.Helper()
	var msgs []map[string]string
	for _, m := range p.Messages(mode) {
		msgs = append(msgs, map[string]string{"role": m.Role, "content": m.Content})
	}
	var tmpl struct{ Prompt string }
	s.post(t, "/apply-template", map[string]any{"messages": msgs}, &tmpl)
	var tok struct{ Tokens []int }
	s.post(t, "/tokenize", map[string]any{"content": tmpl.Prompt, "add_special": false, "parse_special": true}, &tok)
	return tok.Tokens, tmpl.Prompt
}

// TestLlamaCppStablePrefixTokens measures the shared prefix where a server's prefix
// cache sees it: in tokens of two records' requests after the served model's real chat
// template (Llama 3's for flame, selene and lynx; Mistral v0.2's for prometheus2, its
// system message folded). The two records' token sequences must agree up to the token
// that holds the first field's first byte, so the template adds nothing record-specific
// ahead of the fields. The log is the token table of docs/prompt-prefix.md (-v).
func TestLlamaCppStablePrefixTokens(t *testing.T) {
	client := &http.Client{Timeout: 60 * time.Second}
	servers := map[string]llamaServer{
		"llama":   {strings.TrimSuffix(testkit.Service(t, "RATERD_TEST_LLAMA", "a llama.cpp server with a Llama 3 model (scripts/services.sh)"), "/v1"), client},
		"mistral": {strings.TrimSuffix(testkit.Service(t, "RATERD_TEST_LLAMA_MISTRAL", "a llama.cpp server with a Mistral v0.2 model (scripts/services.sh)"), "/v1"), client},
	}
	for _, name := range Names() {
		f, _ := Lookup(name)
		srv := servers["llama"]
		if name == "prometheus2" {
			srv = servers["mistral"]
		}
		for _, task := range f.Tasks() {
			ev := typicalEvaluator(task)
			fields := []string{"prompt", "response"}
			switch {
			case task == TaskPairwise:
				fields = append(fields, "candidates")
			case name == "lynx":
				ev.Labels = []string{"PASS", "FAIL"}
				fields = []string{"prompt", "context", "response"}
			}
			t.Run(name+"/"+task, func(t *testing.T) {
				mode := f.SystemMode()
				var toks [2][]int
				for i := range toks {
					p, err := f.Render(withInputs(ev, i, fields...))
					if err != nil {
						t.Fatal(err)
					}
					toks[i], _ = srv.tokens(t, p, mode)
				}
				shared := 0
				for shared < min(len(toks[0]), len(toks[1])) && toks[0][shared] == toks[1][shared] {
					shared++
				}
				// The templated text ahead of the first field, tokenized alone: the
				// most two records can share, give or take the token at the boundary.
				a := withInputs(ev, 0, fields...)
				_, templated := srv.tokens(t, mustRender(t, f, a), mode)
				start, _, err := f.fieldStart(a, mode)
				if err != nil {
					t.Fatal(err)
				}
				// The last message (which holds the fields) up to the first field.
				pa := mustRender(t, f, a)
				msgs := pa.Messages(mode)
				text := RequestText(pa, mode)
				head := text[len(text)-len(msgs[len(msgs)-1].Content)-1 : start]
				at := strings.Index(templated, head)
				if at < 0 {
					t.Fatalf("the message text ahead of the first field is not in the templated prompt:\n%s", head)
				}
				var before struct{ Tokens []int }
				srv.post(t, "/tokenize", map[string]any{"content": templated[:at+len(head)], "add_special": false, "parse_special": true}, &before)
				if k := len(before.Tokens); shared < k-1 {
					t.Errorf("two records share %d tokens; the text ahead of the first field is %d", shared, k)
				}
				t.Logf("| %s | %s | %s | %d | %d | %d | %d%% |", name, task, strings.Join(fields, ", "), shared, len(toks[0]), shared/16*16, 100*shared/len(toks[0]))
			})
		}
	}
}

// mustRender renders s or fails the test.
func mustRender(t *testing.T, f *Format, s Spec) Prompt {
	t.Helper()
	p, err := f.Render(s)
	if err != nil {
		t.Fatal(fmt.Errorf("render: %w", err))
	}
	return p
}
