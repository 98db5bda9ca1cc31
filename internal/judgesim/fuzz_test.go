package judgesim

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

var fuzzPaths = []string{"/v1/chat/completions", "/pooling", "/classify", "/predict", "/admin/faults"}

// FuzzRequest: whatever the body, the request decoders never panic, answer a known
// status, and a chat answer's logprobs spell its content. Seeds: testdata/fuzz/FuzzRequest.
func FuzzRequest(f *testing.F) {
	f.Add(uint8(0), []byte(`{"messages":[{"role":"user","content":"<<<RESPONSE>>>\nFine.\n<<<END RESPONSE>>>\nScore: <integer from 1 to 5>"}],"logprobs":true,"top_logprobs":3}`))
	f.Add(uint8(1), []byte(`{"model":"rm","input":["a","b"]}`))
	f.Add(uint8(2), []byte(`{"input":"x"}`))
	f.Add(uint8(3), []byte(`{"inputs":[["a","b"],["c"]],"raw_scores":true}`))
	f.Add(uint8(4), []byte(`{"error_rate":0.5}`))
	sim := New(fast(Config{MaxSeqs: 4}))
	f.Cleanup(func() { sim.Close() })
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := fuzzPaths[int(which)%len(fuzzPaths)]
		if path == "/admin/faults" {
			// Change the faults, but never to ones that hang the fuzzer.
			rec := do(context.Background(), sim, http.MethodPost, path, body)
			_ = sim.SetFaults(Faults{})
			if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
				t.Fatalf("admin: status %d", rec.Code)
			}
			return
		}
		rec := do(context.Background(), sim, http.MethodPost, path, body)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		default:
			t.Fatalf("%s %q: status %d %s", path, body, rec.Code, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s: answer is not JSON: %s", path, rec.Body)
		}
		if path != "/v1/chat/completions" || rec.Code != http.StatusOK {
			return
		}
		var cr chatResp
		if err := json.Unmarshal(rec.Body.Bytes(), &cr); err != nil || len(cr.Choices) != 1 {
			t.Fatalf("answer %s: %v", rec.Body, err)
		}
		if lp := cr.Choices[0].Logprobs; lp != nil {
			var b strings.Builder
			for _, tok := range lp.Content {
				b.WriteString(tok.Token)
			}
			if b.String() != cr.content() {
				t.Fatalf("tokens spell %q, content %q", b.String(), cr.content())
			}
		}
	})
}

// FuzzJudgeAnswer: whatever the prompt, the answer follows the grammar of the format and
// task detected, with a valid result, the same prompt gets the same answer, and the
// logprobs spell it. Seeds: testdata/fuzz/FuzzJudgeAnswer.
func FuzzJudgeAnswer(f *testing.F) {
	for _, format := range []string{"flame", "prometheus2", "selene"} {
		for _, task := range []string{"pointwise", "classification", "pairwise"} {
			f.Add(builders[format](task, 1, 5, []string{"yes", "no"}, "Fine answer.", "Other."))
		}
	}
	f.Add("<<<RESPONSE>>>\n\n<<<END RESPONSE>>>\nScore: <integer from 5 to 1>")
	f.Add("no blocks at all")
	s := New(Config{})
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, user string) {
		sum := sha256.Sum256([]byte(user))
		p := parsePrompt(user)
		a := s.judge(p, sum, 0.3)
		m := grammars[p.format][p.task.String()].FindStringSubmatchIndex(a.text)
		if m == nil {
			t.Fatalf("%s %s answer breaks the grammar: %q", p.format, p.task, a.text)
		}
		result := a.text[m[2]:m[3]]
		if !slices.Contains(a.choices, result) || a.choices[a.chosen] != result || m[2] != a.resStart {
			t.Fatalf("result %q at %d, choices %q, chosen %d at %d", result, m[2], a.choices, a.chosen, a.resStart)
		}
		if p.task == taskPointwise && (len(a.choices) != p.hi-p.lo+1 || p.hi <= p.lo) {
			t.Fatalf("scale %d..%d, choices %d", p.lo, p.hi, len(a.choices))
		}
		if again := s.judge(parsePrompt(user), sum, 0.3); again.text != a.text {
			t.Fatal("same prompt, different answer")
		}
		checkLogprobs(t, a.text, logprobs(a, sum, 2), 2, a.resStart, result)
		// A malformed answer does not parse as a valid one.
		bad := malformed(p, a, sum)
		if mm := grammars[p.format][p.task.String()].FindStringSubmatch(bad.text); mm != nil && slices.Contains(a.choices, mm[1]) {
			t.Fatalf("malformed answer is valid: %q", bad.text)
		}
	})
}
