package scorer

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestGuidedDecodingDialects: with guided_decoding, each request carries the evaluator's
// output grammar in the server's field, and only that one; an evaluator's guided: false
// sends none. The server here is a FAKE that records raw request bodies.
func TestGuidedDecodingDialects(t *testing.T) {
	var mu sync.Mutex
	var bodies []map[string]json.RawMessage
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]json.RawMessage
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		bodies = append(bodies, m)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"choices":[{"message":{"content":"Reasoning: fine\nScore: 4"},"finish_reason":"stop"}]}`)
	}))
	t.Cleanup(srv.Close)
	fields := map[string]string{GuidedVLLM: "structured_outputs", GuidedVLLMLegacy: "guided_regex", GuidedSGLang: "regex", GuidedLlamaCpp: "grammar"}
	for dialect, field := range fields {
		for _, optOut := range []bool{false, true} {
			mu.Lock()
			bodies = nil
			mu.Unlock()
			j := testJudge(t, func(c *OpenAIConfig) { c.GuidedDecoding = dialect; c.GuidedExplanationChars = 77 }, srv.URL)
			e := testEvaluator()
			if optOut {
				f := false
				e.Guided = &f
			}
			jc := &JudgeConfig{Type: JudgeOpenAI, OpenAIConfig: j.cfg}
			if err := jc.PrepareEvaluator("evaluators[0]", e); err != nil {
				t.Fatal(err)
			}
			if v := judgeOne(t, j, e, testRecord("r1")); v.Err != nil || v.Value != 4 {
				t.Fatalf("%s: verdict %+v", dialect, v)
			}
			mu.Lock()
			body := bodies[0]
			mu.Unlock()
			for _, other := range fields {
				_, has := body[other]
				switch want := other == field && !optOut; {
				case has && !want:
					t.Errorf("%s (opt out %v): request carries %s", dialect, optOut, other)
				case !has && want:
					t.Errorf("%s: request lacks %s", dialect, other)
				}
			}
			if !optOut && !strings.Contains(string(body[field]), "{1,77}") {
				t.Errorf("%s: %s = %s, want the explanation bound 77", dialect, field, body[field])
			}
		}
	}
}

// TestGuidedRubricVersions: guided decoding is part of the rubric version; guided: true
// without a guided judge, or on a reward judge, is a config error naming the key.
func TestGuidedRubricVersions(t *testing.T) {
	plain := &JudgeConfig{Type: JudgeOpenAI, OpenAIConfig: OpenAIConfig{Model: "m"}}
	guided := &JudgeConfig{Type: JudgeOpenAI, OpenAIConfig: OpenAIConfig{Model: "m", GuidedDecoding: GuidedLlamaCpp}}
	version := func(j *JudgeConfig, guidedOpt *bool, chars int) (string, error) {
		j.GuidedExplanationChars = chars
		e := testEvaluator()
		e.Guided = guidedOpt
		err := j.PrepareEvaluator("evaluators[1]", e)
		return e.RubricVersion(), err
	}
	off := false
	on := true
	a, _ := version(plain, nil, 1000)
	b, _ := version(guided, nil, 1000)
	c, _ := version(guided, &off, 1000)
	d, _ := version(guided, nil, 500)
	if a == b || b == d || a != c {
		t.Errorf("rubric versions: unguided %s, guided %s, opted out %s, guided with 500 chars %s: want guided ones apart, opted out = unguided", a, b, c, d)
	}
	if _, err := version(plain, &on, 1000); err == nil || !strings.Contains(err.Error(), "evaluators[1] (helpfulness).guided") {
		t.Errorf("guided: true on a judge without guided_decoding: %v", err)
	}
	bad := OpenAIConfig{Model: "m", GuidedDecoding: "outlines"}
	bad.Endpoints = testJudge(t, nil, "http://127.0.0.1:1").cfg.Endpoints
	if err := bad.Validate("judges.x"); err == nil || !strings.Contains(err.Error(), "judges.x.guided_decoding") {
		t.Errorf("guided_decoding: outlines: %v", err)
	}
}
