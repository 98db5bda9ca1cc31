package scorer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"raterd/record"
	"raterd/scorer/pool"
)

// fakeChat is a FAKE chat-completions server for unit tests: answer decides each reply
// from the request. It records every request.
type fakeChat struct {
	srv    *httptest.Server
	answer func(req chatReq) (status int, content string, logprobs []openaiTokenLogprob)

	mu   sync.Mutex
	reqs []chatReq
	hdrs []http.Header
}

type chatReq struct {
	Path        string
	Model       string              `json:"model"`
	Messages    []openaiChatMessage `json:"messages"`
	Temperature float64             `json:"temperature"`
	MaxTokens   int                 `json:"max_tokens"`
	Logprobs    bool                `json:"logprobs"`
	TopLogprobs int                 `json:"top_logprobs"`
	// Grammar and ChatTemplateKwargs: llama.cpp's guide, a guard's template arguments.
	Grammar            string         `json:"grammar"`
	ChatTemplateKwargs map[string]any `json:"chat_template_kwargs"`
}

// user is the first user message (the rendered prompt).
func (r chatReq) user() string {
	for _, m := range r.Messages {
		if m.Role == "user" {
			return m.Content
		}
	}
	return ""
}

func newFakeChat(t *testing.T, answer func(chatReq) (int, string, []openaiTokenLogprob)) *fakeChat {
	t.Helper()
	f := &fakeChat{answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req chatReq
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Path = r.URL.Path
		f.mu.Lock()
		f.reqs = append(f.reqs, req)
		f.hdrs = append(f.hdrs, r.Header.Clone())
		f.mu.Unlock()
		status, content, lp := f.answer(req)
		if status != http.StatusOK {
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":{"message":"fake failure %d"}}`, status)
			return
		}
		choice := map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": content}, "finish_reason": "stop"}
		if lp != nil {
			choice["logprobs"] = map[string]any{"content": lp}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "chat.completion", "choices": []any{choice}})
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeChat) requests() []chatReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]chatReq(nil), f.reqs...)
}

// constant answers every request with the same content.
func constant(content string) func(chatReq) (int, string, []openaiTokenLogprob) {
	return func(chatReq) (int, string, []openaiTokenLogprob) { return http.StatusOK, content, nil }
}

func testEvaluator(fields ...string) *Evaluator {
	if len(fields) == 0 {
		fields = []string{FieldPrompt, FieldResponse}
	}
	return &Evaluator{
		Name:     "helpfulness",
		Judge:    "pool-a",
		Task:     TaskPointwise,
		Criteria: "Is the response helpful, correct and complete?",
		Scale:    Scale{Min: 1, Max: 5},
		Fields:   fields,
	}
}

func preparedModelEvaluator(t *testing.T, e *Evaluator) *Evaluator {
	t.Helper()
	if err := e.Prepare("evaluators[0]", KindModel); err != nil {
		t.Fatal(err)
	}
	return e
}

func testRecord(id string) *record.Record {
	return &record.Record{
		ID:         id,
		Model:      "support-llm-v7",
		Prompt:     "How do I reset my password?",
		Response:   "Open Settings, choose Security, then click Reset password and follow the email link.",
		Reference:  "GOLD-REFERENCE-TEXT",
		Candidates: []record.Candidate{{Model: "support-llm-v6", Response: "Contact support."}},
	}
}

// testJudge builds a judge over the given servers; mutate may change the config.
func testJudge(t *testing.T, mutate func(*OpenAIConfig), urls ...string) *OpenAIJudge {
	t.Helper()
	cfg := OpenAIConfig{Model: "judge-model"}
	for _, u := range urls {
		cfg.Endpoints = append(cfg.Endpoints, pool.Endpoint{URL: u + "/v1"})
	}
	cfg.MaxAttempts = 2
	cfg.Timeout = 5 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	j, err := NewOpenAIJudge(cfg, JudgeSettings{Key: "judges.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close(context.Background()) })
	return j
}

func judgeOne(t *testing.T, j *OpenAIJudge, e *Evaluator, r *record.Record) Verdict {
	t.Helper()
	vs, err := j.Judge(context.Background(), []Task{{Evaluator: e, Record: r}})
	if err != nil {
		t.Fatalf("Judge: %v", err)
	}
	if len(vs) != 1 {
		t.Fatalf("got %d verdicts for 1 task", len(vs))
	}
	return vs[0]
}

func TestOpenAIConfigValidate(t *testing.T) {
	good := func() OpenAIConfig {
		return OpenAIConfig{Model: "m", Config: pool.Config{Endpoints: []pool.Endpoint{{URL: "http://vllm-0:8000/v1"}}}}
	}
	c := good()
	if err := c.Validate("judges.pool-a"); err != nil {
		t.Fatal(err)
	}
	if c.MaxTokens != 512 || c.TopLogprobs != 20 || c.FormatReminder == nil || !*c.FormatReminder {
		t.Fatalf("defaults not filled: %+v", c)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*OpenAIConfig)
		want   string
	}{
		{"no model", func(c *OpenAIConfig) { c.Model = " " }, "judges.pool-a.model: required"},
		{"tokens", func(c *OpenAIConfig) { c.MaxTokens = -5 }, "judges.pool-a.max_tokens: -5"},
		{"top logprobs", func(c *OpenAIConfig) { c.TopLogprobs = 21 }, "judges.pool-a.top_logprobs: 21"},
		{"api key", func(c *OpenAIConfig) { c.APIKey = "a\nb" }, "judges.pool-a.api_key: contains a line break"},
		{"pool", func(c *OpenAIConfig) { c.Endpoints[0].URL = "ftp://x" }, "judges.pool-a.endpoints[0].url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.mutate(&c)
			err := c.Validate("judges.pool-a")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestOpenAIRequestShape(t *testing.T) {
	f := newFakeChat(t, constant("Reasoning: fine.\nScore: 4"))
	j := testJudge(t, func(c *OpenAIConfig) { c.APIKey = "sk-test"; c.Logprobs = true; c.TopLogprobs = 5 }, f.srv.URL)
	e := preparedModelEvaluator(t, testEvaluator(FieldPrompt, FieldResponse, FieldReference))
	v := judgeOne(t, j, e, testRecord("r1"))
	if v.Status != record.StatusOK || v.Value != 4 || v.Explanation != "fine." || v.Attempts != 1 {
		t.Fatalf("verdict = %+v", v)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Path != "/v1/chat/completions" || r.Model != "judge-model" || r.Temperature != 0 || r.MaxTokens != 512 || !r.Logprobs || r.TopLogprobs != 5 {
		t.Fatalf("request = %+v", r)
	}
	if len(r.Messages) != 2 || r.Messages[0].Role != "system" || r.Messages[1].Role != "user" {
		t.Fatalf("messages = %+v", r.Messages)
	}
	for _, want := range []string{"How do I reset my password?", "Open Settings", "GOLD-REFERENCE-TEXT", "Is the response helpful"} {
		if !strings.Contains(r.user(), want) {
			t.Errorf("prompt lacks %q", want)
		}
	}
	if got := f.hdrs[0].Get("Authorization"); got != "Bearer sk-test" {
		t.Errorf("Authorization = %q", got)
	}
}

func TestOpenAIPointwiseInEachFormat(t *testing.T) {
	answers := map[string]string{
		FormatFLAMe:       "Reasoning: Clear steps.\nScore: 4",
		FormatPrometheus2: "The response gives clear steps. [RESULT] 4",
		FormatSelene:      "**Reasoning:** Clear steps.\n\n**Result:** 4",
	}
	for name, ans := range answers {
		t.Run(name, func(t *testing.T) {
			f := newFakeChat(t, constant(ans))
			j := testJudge(t, nil, f.srv.URL)
			e := testEvaluator()
			e.Format = name
			v := judgeOne(t, j, preparedModelEvaluator(t, e), testRecord("r1"))
			if v.Status != record.StatusOK || v.Value != 4 || v.Confidence != 1 || v.Explanation == "" {
				t.Fatalf("verdict = %+v", v)
			}
		})
	}
}

// tokens splits text into fake tokens: each result candidate gets alternatives.
func tokensWithAlternatives(text, resultToken string, alts map[string]float64) []openaiTokenLogprob {
	i := strings.LastIndex(text, resultToken)
	var out []openaiTokenLogprob
	if i > 0 {
		out = append(out, openaiTokenLogprob{Token: text[:i], Logprob: -0.01})
	}
	tok := openaiTokenLogprob{Token: resultToken, Logprob: math.Log(alts[resultToken])}
	for t, p := range alts {
		tok.TopLogprobs = append(tok.TopLogprobs, struct {
			Token   string  `json:"token"`
			Logprob float64 `json:"logprob"`
		}{t, math.Log(p)})
	}
	out = append(out, tok)
	if rest := text[i+len(resultToken):]; rest != "" {
		out = append(out, openaiTokenLogprob{Token: rest, Logprob: -0.01})
	}
	return out
}

func TestOpenAILogprobsWeightTheScore(t *testing.T) {
	text := "Reasoning: Mostly right.\nScore: 4"
	f := newFakeChat(t, func(chatReq) (int, string, []openaiTokenLogprob) {
		return http.StatusOK, text, tokensWithAlternatives(text, " 4", map[string]float64{" 4": 0.6, " 5": 0.3, " 3": 0.05, " the": 0.05})
	})
	j := testJudge(t, func(c *OpenAIConfig) { c.Logprobs = true }, f.srv.URL)
	v := judgeOne(t, j, preparedModelEvaluator(t, testEvaluator()), testRecord("r1"))
	want := (0.6*4 + 0.3*5 + 0.05*3) / 0.95 // " the" is not on the scale
	if v.Status != record.StatusOK || math.Abs(v.Value-want) > 1e-9 || math.Abs(v.Confidence-0.6) > 1e-9 {
		t.Fatalf("verdict = %+v, want value %.4f confidence 0.6", v, want)
	}
}

func TestOpenAILogprobsThatDoNotSpellTheAnswerAreIgnored(t *testing.T) {
	f := newFakeChat(t, func(chatReq) (int, string, []openaiTokenLogprob) {
		return http.StatusOK, "Reasoning: ok\nScore: 4", tokensWithAlternatives("something else 4", " 4", map[string]float64{" 4": 0.5, " 5": 0.5})
	})
	j := testJudge(t, func(c *OpenAIConfig) { c.Logprobs = true }, f.srv.URL)
	v := judgeOne(t, j, preparedModelEvaluator(t, testEvaluator()), testRecord("r1"))
	if v.Value != 4 || v.Confidence != 1 {
		t.Fatalf("verdict = %+v, want the parsed 4 with no probability", v)
	}
}

func TestOpenAIClassification(t *testing.T) {
	text := "Reasoning: The claim is not in the context.\nLabel: not_supported"
	f := newFakeChat(t, func(chatReq) (int, string, []openaiTokenLogprob) {
		return http.StatusOK, text, tokensWithAlternatives(text, " not_supported", map[string]float64{" not_supported": 0.8, " supported": 0.2})
	})
	j := testJudge(t, func(c *OpenAIConfig) { c.Logprobs = true }, f.srv.URL)
	e := testEvaluator(FieldPrompt, FieldResponse)
	e.Task, e.Labels = TaskClassification, []string{"supported", "not_supported"}
	e = preparedModelEvaluator(t, e)
	v := judgeOne(t, j, e, testRecord("r1"))
	if v.Status != record.StatusOK || v.Label != "not_supported" || v.Value != 0 || math.Abs(v.Confidence-0.8) > 1e-9 {
		t.Fatalf("verdict = %+v", v)
	}
	if !strings.Contains(f.requests()[0].user(), "Label: <one of: supported, not_supported>") {
		t.Errorf("prompt does not ask for a label:\n%s", f.requests()[0].user())
	}
}

// blockA returns the text of the RESPONSE A block of a flame prompt.
var blockA = regexp.MustCompile(`(?s)<<<RESPONSE A>>>\n(.*?)\n<<<END RESPONSE A>>>`)

func TestOpenAIPairwiseRunsBothOrders(t *testing.T) {
	rec := testRecord("r1")
	rec.Response = "GOOD: open Settings, then Security, then Reset password."
	for _, tc := range []struct {
		name       string
		answer     func(chatReq) (int, string, []openaiTokenLogprob)
		wantValue  float64
		wantLabel  string
		wantConfid float64
	}{
		{"consistent judge prefers the response", func(r chatReq) (int, string, []openaiTokenLogprob) {
			m := blockA.FindStringSubmatch(r.user())
			if m != nil && strings.HasPrefix(m[1], "GOOD") {
				return http.StatusOK, "Reasoning: A is better.\nPreference: A", nil
			}
			return http.StatusOK, "Reasoning: B is better.\nPreference: B", nil
		}, 1, "first", 1},
		{"position-biased judge always says A", constant("Reasoning: A.\nPreference: A"), 0.5, "inconsistent", 0},
		{"consistent judge prefers the candidate", func(r chatReq) (int, string, []openaiTokenLogprob) {
			m := blockA.FindStringSubmatch(r.user())
			if m != nil && strings.HasPrefix(m[1], "GOOD") {
				return http.StatusOK, "Reasoning: B.\nPreference: B", nil
			}
			return http.StatusOK, "Reasoning: A.\nPreference: A", nil
		}, 0, "second", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeChat(t, tc.answer)
			j := testJudge(t, nil, f.srv.URL)
			e := testEvaluator()
			e.Task, e.Fields = TaskPairwise, nil
			e = preparedModelEvaluator(t, e)
			v := judgeOne(t, j, e, rec)
			if v.Status != record.StatusOK || v.Value != tc.wantValue || v.Label != tc.wantLabel || v.Confidence != tc.wantConfid || v.Attempts != 2 {
				t.Fatalf("verdict = %+v", v)
			}
			reqs := f.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want one per order", len(reqs))
			}
			var firsts []string
			for _, r := range reqs {
				firsts = append(firsts, blockA.FindStringSubmatch(r.user())[1])
			}
			if firsts[0] == firsts[1] {
				t.Fatalf("both orders showed %q as A", firsts[0])
			}
		})
	}
}

func TestOpenAIUnparseableAnswerIsAskedAgainWithAReminder(t *testing.T) {
	var n atomic.Int32
	f := newFakeChat(t, func(chatReq) (int, string, []openaiTokenLogprob) {
		if n.Add(1) == 1 {
			return http.StatusOK, "I think it deserves a four out of five.", nil
		}
		return http.StatusOK, "Reasoning: Good.\nScore: 4", nil
	})
	j := testJudge(t, nil, f.srv.URL)
	v := judgeOne(t, j, preparedModelEvaluator(t, testEvaluator()), testRecord("r1"))
	if v.Status != record.StatusOK || v.Value != 4 || v.Attempts != 2 {
		t.Fatalf("verdict = %+v", v)
	}
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	m := reqs[1].Messages
	if len(m) != 4 || m[2].Role != "assistant" || m[2].Content != "I think it deserves a four out of five." || m[3].Role != "user" || m[3].Content == "" {
		t.Fatalf("retry messages = %+v", m)
	}
}

func TestOpenAIParseFailureIsCountedNeverInvented(t *testing.T) {
	f := newFakeChat(t, constant("Score: 9"))
	j := testJudge(t, func(c *OpenAIConfig) { off := false; c.FormatReminder = &off }, f.srv.URL)
	v := judgeOne(t, j, preparedModelEvaluator(t, testEvaluator()), testRecord("r1"))
	if v.Status != record.StatusParseFailure || v.Value != 0 || v.Confidence != 0 || v.Err != nil || !strings.Contains(v.Explanation, "Score: 9") {
		t.Fatalf("verdict = %+v", v)
	}
	reqs := f.requests()
	if len(reqs) != 2 || len(reqs[1].Messages) != len(reqs[0].Messages) {
		t.Fatalf("want the same request twice without a reminder, got %d requests", len(reqs))
	}
}

func TestOpenAIPermanentErrorIsAJudgeErrorRow(t *testing.T) {
	f := newFakeChat(t, func(chatReq) (int, string, []openaiTokenLogprob) { return http.StatusBadRequest, "", nil })
	j := testJudge(t, nil, f.srv.URL)
	v := judgeOne(t, j, preparedModelEvaluator(t, testEvaluator()), testRecord("r1"))
	if v.Status != record.StatusJudgeError || v.Err == nil || errors.Is(v.Err, ErrJudgeUnavailable) || !strings.Contains(v.Err.Error(), "400") {
		t.Fatalf("verdict = %+v", v)
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("a 400 was sent %d times", n)
	}
}

func TestOpenAIPoolOutageMakesTheJudgeUnavailable(t *testing.T) {
	f := newFakeChat(t, func(chatReq) (int, string, []openaiTokenLogprob) { return http.StatusServiceUnavailable, "", nil })
	j := testJudge(t, nil, f.srv.URL)
	v := judgeOne(t, j, preparedModelEvaluator(t, testEvaluator()), testRecord("r1"))
	if v.Status != record.StatusJudgeError || !errors.Is(v.Err, ErrJudgeUnavailable) {
		t.Fatalf("verdict = %+v, want ErrJudgeUnavailable", v)
	}
	if n := len(f.requests()); n != 2 {
		t.Fatalf("%d requests, want max_attempts = 2", n)
	}
}

func TestOpenAIContextCancelEndsTheCall(t *testing.T) {
	release := make(chan struct{})
	f := newFakeChat(t, func(chatReq) (int, string, []openaiTokenLogprob) {
		<-release
		return http.StatusOK, "Score: 3", nil
	})
	defer close(release)
	j := testJudge(t, nil, f.srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	e := preparedModelEvaluator(t, testEvaluator())
	done := make(chan error, 1)
	go func() {
		_, err := j.Judge(ctx, []Task{{Evaluator: e, Record: testRecord("a")}, {Evaluator: e, Record: testRecord("b")}})
		done <- err
	}()
	for len(f.requests()) < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Judge did not return after cancel")
	}
}

// A result split over several tokens (" 1" then "0" for 10) is weighted along its path:
// P(10) = P(" 1")·P("0" | " 1"), P(9) = P(" 9") (nothing on 1–10 extends 9), and its
// confidence is the product over its tokens.
func TestOpenAILogprobsOfAMultiTokenResult(t *testing.T) {
	text := "Reasoning: Excellent.\nScore: 10"
	f := newFakeChat(t, func(chatReq) (int, string, []openaiTokenLogprob) {
		lp := tokensWithAlternatives(text[:len(text)-1], " 1", map[string]float64{" 1": 0.5, " 9": 0.5})
		return http.StatusOK, text, append(lp, openaiTokenLogprob{Token: "0", Logprob: math.Log(0.8)})
	})
	j := testJudge(t, func(c *OpenAIConfig) { c.Logprobs = true }, f.srv.URL)
	e := testEvaluator()
	e.Scale = Scale{Min: 1, Max: 10}
	v := judgeOne(t, j, preparedModelEvaluator(t, e), testRecord("r1"))
	if want := (0.5*9 + 0.4*10) / 0.9; math.Abs(v.Value-want) > 1e-9 || math.Abs(v.Confidence-0.4) > 1e-9 || v.Judge != "" {
		t.Fatalf("verdict = %+v, want %v with confidence 0.5×0.8 under the +logprobs identity", v, want)
	}
	if j.Identity() != "openai:judge-model+logprobs" {
		t.Errorf("identity %q does not say the scores are probability-weighted", j.Identity())
	}
}

// vLLM writes −9999 for a logprob of −inf: the result then had (almost) no chance, and
// its confidence says so instead of falling back to certainty.
func TestOpenAILogprobsOfAnAlmostImpossibleResult(t *testing.T) {
	for _, tc := range []struct {
		name    string
		logprob float64
		want    float64
	}{
		{"vllm -inf", -9999, 0},
		{"underflow", -800, 0},
		{"tiny", math.Log(1e-300), 1e-300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := "Reasoning: Off topic.\nLabel: bad"
			f := newFakeChat(t, func(chatReq) (int, string, []openaiTokenLogprob) {
				return http.StatusOK, text, []openaiTokenLogprob{{Token: "Reasoning: Off topic.\nLabel:", Logprob: 0}, {Token: " bad", Logprob: tc.logprob}}
			})
			j := testJudge(t, func(c *OpenAIConfig) { c.Logprobs = true }, f.srv.URL)
			e := testEvaluator()
			e.Task, e.Labels = TaskClassification, []string{"good", "bad"}
			v := judgeOne(t, j, preparedModelEvaluator(t, e), testRecord("r1"))
			if v.Status != record.StatusOK || v.Label != "bad" || math.Abs(v.Confidence-tc.want) > 1e-310 {
				t.Fatalf("verdict = %+v, want label bad with confidence %g", v, tc.want)
			}
		})
	}
}

// A logprob above 0 is a probability above 1, which no correct server sends: it is read as
// certainty, never as more; alternatives that add up to more than certainty do not weight
// the score.
func TestOpenAIPositiveLogprobsNeverExceedCertainty(t *testing.T) {
	text := "Reasoning: fine.\nScore: 4"
	for _, tc := range []struct {
		name      string
		alts      map[string]float64 // token → logprob
		resultLP  float64
		wantValue float64
	}{
		{"positive result logprob", nil, 0.7, 4},
		{"positive alternatives", map[string]float64{" 4": 0.7, " 5": 3}, 0.7, 4},
		{"alternatives over 1", map[string]float64{" 4": math.Log(0.9), " 5": math.Log(0.9)}, math.Log(0.9), 4},
		{"rounded alternatives", map[string]float64{" 4": math.Log(0.5), " 5": math.Log(0.5004)}, math.Log(0.5), (0.5*4 + 0.5004*5) / 1.0004},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeChat(t, func(chatReq) (int, string, []openaiTokenLogprob) {
				tok := openaiTokenLogprob{Token: " 4", Logprob: tc.resultLP}
				for a, lp := range tc.alts {
					tok.TopLogprobs = append(tok.TopLogprobs, struct {
						Token   string  `json:"token"`
						Logprob float64 `json:"logprob"`
					}{a, lp})
				}
				return http.StatusOK, text, []openaiTokenLogprob{{Token: "Reasoning: fine.\nScore:", Logprob: 0}, tok}
			})
			j := testJudge(t, func(c *OpenAIConfig) { c.Logprobs = true }, f.srv.URL)
			v := judgeOne(t, j, preparedModelEvaluator(t, testEvaluator()), testRecord("r1"))
			wantConf := math.Exp(min(tc.resultLP, 0))
			if v.Status != record.StatusOK || math.Abs(v.Value-tc.wantValue) > 1e-9 || math.Abs(v.Confidence-wantConf) > 1e-9 {
				t.Fatalf("verdict = %+v, want value %v confidence %v", v, tc.wantValue, wantConf)
			}
		})
	}
}
