package scorer

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"raterd/record"
)

// fakeRecordingReward is a FAKE reward server for unit tests: it records every request
// body as it arrived and answers with a canned body in the real server's shape.
type fakeRecordingReward struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []string
	paths  []string
}

// newFakeRecordingReward answers every request with answer(path, body).
func newFakeRecordingReward(t *testing.T, answer func(path string, body []byte) string) *fakeRecordingReward {
	t.Helper()
	f := &fakeRecordingReward{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.bodies = append(f.bodies, string(b))
		f.paths = append(f.paths, r.URL.Path)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answer(r.URL.Path, b))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// vLLM 0.10's PoolingResponse for a reward model: one pooled output per input, the
// reward as a one-element list.
const fakeVLLMPoolingAnswer = `{"id":"pool-8a1c","object":"list","created":1733500000,"model":"Skywork/Skywork-Reward-Llama-3.1-8B-v0.2",` +
	`"data":[{"index":0,"object":"pooling","data":[[3.4375]]}],"usage":{"prompt_tokens":41,"total_tokens":41,"completion_tokens":0,"prompt_tokens_details":null}}`

// TestRewardMessagesSendsOneConversationPerRequest: input messages posts vLLM's chat
// form of /pooling, one conversation a request, with the system prompt, the record's
// turns and the response as the assistant's turn.
func TestRewardMessagesSendsOneConversationPerRequest(t *testing.T) {
	f := newFakeRecordingReward(t, func(string, []byte) string { return fakeVLLMPoolingAnswer })
	j := rewardJudge(t, f.srv.URL, RewardSettings{Input: RewardInputMessages})
	if j.cfg.Settings.MaxBatch != 1 {
		t.Fatalf("max_batch = %d, want 1 for messages", j.cfg.Settings.MaxBatch)
	}
	e := &Evaluator{Name: "reward", Judge: "rm", Fields: []string{FieldSystem, FieldPrompt, FieldResponse}}
	if err := e.Prepare("evaluators[0]", KindReward); err != nil {
		t.Fatal(err)
	}
	tasks := []Task{
		{Evaluator: e, Record: &record.Record{ID: "a", Model: "m", System: "Be brief.", Prompt: "2+2?", Response: "4"}},
		{Evaluator: e, Record: &record.Record{ID: "b", Model: "m", Messages: []record.Message{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "hello"}, {Role: "user", Content: "bye?"}}, Response: "bye"}},
	}
	vs, err := j.Judge(context.Background(), tasks)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		if v.Status != record.StatusOK || v.Value != 3.4375 {
			t.Errorf("task %d: %+v", i, v)
		}
	}
	want := map[string]bool{
		`{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"2+2?"},{"role":"assistant","content":"4"}],"model":"rm"}`:                                 true,
		`{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"bye?"},{"role":"assistant","content":"bye"}],"model":"rm"}`: true,
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bodies) != 2 {
		t.Fatalf("%d requests, want one per conversation: %q", len(f.bodies), f.bodies)
	}
	for i, b := range f.bodies {
		if !want[b] || f.paths[i] != "/pooling" {
			t.Errorf("request %d: %s %s", i, f.paths[i], b)
		}
	}
	if j.Identity() != "reward:rm@vllm-pooling+messages" {
		t.Errorf("identity = %q", j.Identity())
	}
}

// TestRewardTextIdentityAndBodyUnchanged: a judge that sets none of the new keys sends
// the same body and keeps the same identity as before them.
func TestRewardTextIdentityAndBodyUnchanged(t *testing.T) {
	f := newFakeRecordingReward(t, func(string, []byte) string { return fakeVLLMPoolingAnswer })
	j := rewardJudge(t, f.srv.URL, RewardSettings{})
	if _, err := j.Judge(context.Background(), rewardTasks(t, &Evaluator{Name: "r", Judge: "rm"}, "R")); err != nil {
		t.Fatal(err)
	}
	if j.Identity() != "reward:rm@vllm-pooling" {
		t.Errorf("identity = %q", j.Identity())
	}
	if want := `{"input":["User: P\n\nAssistant: R"],"model":"rm"}`; f.bodies[0] != want {
		t.Errorf("body = %s, want %s", f.bodies[0], want)
	}
}

// TestRewardTruncateBodies: truncate sends TEI's truncate and truncation_direction, and
// vLLM's truncate_prompt_tokens (-1: the model's maximum length).
func TestRewardTruncateBodies(t *testing.T) {
	for _, tc := range []struct {
		s        RewardSettings
		answer   string
		body     string
		identity string
	}{
		{RewardSettings{API: RewardTEIPredict, Truncate: true}, `[[{"score":0.9,"label":"LABEL_1"},{"score":0.1,"label":"LABEL_0"}]]`,
			`{"inputs":[["User: P\n\nAssistant: R"]],"truncate":true,"truncation_direction":"Right"}`, "reward:rm@tei-predict+trunc"},
		{RewardSettings{API: RewardTEIPredict, Truncate: true, TruncationDirection: "left"}, `[[{"score":0.9,"label":"LABEL_1"},{"score":0.1,"label":"LABEL_0"}]]`,
			`{"inputs":[["User: P\n\nAssistant: R"]],"truncate":true,"truncation_direction":"Left"}`, "reward:rm@tei-predict+trunc:left"},
		{RewardSettings{Truncate: true}, fakeVLLMPoolingAnswer,
			`{"input":["User: P\n\nAssistant: R"],"model":"rm","truncate_prompt_tokens":-1}`, "reward:rm@vllm-pooling+trunc"},
		{RewardSettings{API: RewardVLLMClassify, Truncate: true, TruncatePromptTokens: 512},
			`{"id":"classify-1","object":"list","created":1733500000,"model":"rm","data":[{"index":0,"label":"LABEL_1","probs":[0.1,0.9],"num_classes":2}],"usage":{"prompt_tokens":9,"total_tokens":9,"completion_tokens":0,"prompt_tokens_details":null}}`,
			`{"input":["User: P\n\nAssistant: R"],"model":"rm","truncate_prompt_tokens":512}`, "reward:rm@vllm-classify+trunc:512"},
	} {
		f := newFakeRecordingReward(t, func(string, []byte) string { return tc.answer })
		j := rewardJudge(t, f.srv.URL, tc.s)
		vs, err := j.Judge(context.Background(), rewardTasks(t, &Evaluator{Name: "r", Judge: "rm"}, "R"))
		if err != nil {
			t.Fatal(err)
		}
		if vs[0].Status != record.StatusOK {
			t.Errorf("%s: %+v", tc.identity, vs[0])
		}
		if f.bodies[0] != tc.body {
			t.Errorf("%s: body %s, want %s", tc.identity, f.bodies[0], tc.body)
		}
		if j.Identity() != tc.identity {
			t.Errorf("identity %q, want %q", j.Identity(), tc.identity)
		}
	}
}

// TestRewardNLIPairs: input pair posts TEI /predict [premise, hypothesis] pairs — the
// record's documents joined by blank lines, then the response — and the entailment
// probability is the pointwise score, the best label the classification.
func TestRewardNLIPairs(t *testing.T) {
	// TEI 1.5's answer for a batch: per input, every label with its probability, best first.
	f := newFakeRecordingReward(t, func(_ string, body []byte) string {
		var req struct {
			Inputs [][]string `json:"inputs"`
		}
		_ = json.Unmarshal(body, &req)
		var out []string
		for _, p := range req.Inputs {
			if strings.Contains(p[1], "Mars") {
				out = append(out, `[{"score":0.91,"label":"contradiction"},{"score":0.06,"label":"neutral"},{"score":0.03,"label":"entailment"}]`)
			} else {
				out = append(out, `[{"score":0.95,"label":"entailment"},{"score":0.04,"label":"neutral"},{"score":0.01,"label":"contradiction"}]`)
			}
		}
		return "[" + strings.Join(out, ",") + "]"
	})
	j := rewardJudge(t, f.srv.URL, RewardSettings{API: RewardTEIPredict, Input: RewardInputPair, Label: "entailment"})
	if j.cfg.Settings.MaxBatch != 32 {
		t.Errorf("tei max_batch default = %d, want 32 (TEI's --max-client-batch-size)", j.cfg.Settings.MaxBatch)
	}
	docs := []string{"Paris is the capital of France.", "It lies on the Seine."}
	recs := []*record.Record{
		{ID: "a", Model: "m", Context: docs, Response: "The capital of France is Paris."},
		{ID: "b", Model: "m", Context: docs, Response: "The capital of France is on Mars."},
	}
	for _, task := range []string{TaskPointwise, TaskClassification} {
		e := &Evaluator{Name: "nli", Judge: "rm", Task: task, Fields: []string{FieldContext, FieldResponse}}
		if task == TaskClassification {
			e.Labels, e.PositiveLabel = []string{"entailment", "neutral", "contradiction"}, "entailment"
		}
		if err := e.Prepare("evaluators[0]", KindReward); err != nil {
			t.Fatal(err)
		}
		vs, err := j.Judge(context.Background(), []Task{{Evaluator: e, Record: recs[0]}, {Evaluator: e, Record: recs[1]}})
		if err != nil {
			t.Fatal(err)
		}
		if task == TaskPointwise && (vs[0].Value != 0.95 || vs[1].Value != 0.03) {
			t.Errorf("pointwise: %+v", vs)
		}
		if task == TaskClassification && (vs[0].Label != "entailment" || vs[0].Value != 1 || vs[1].Label != "contradiction" || vs[1].Confidence != 0.91) {
			t.Errorf("classification: %+v", vs)
		}
	}
	want := `{"inputs":[["Paris is the capital of France.\n\nIt lies on the Seine.","The capital of France is Paris."],["Paris is the capital of France.\n\nIt lies on the Seine.","The capital of France is on Mars."]]}`
	if f.bodies[0] != want {
		t.Errorf("body = %s\nwant   %s", f.bodies[0], want)
	}
	if j.Identity() != "reward:rm@tei-predict#entailment+pair" {
		t.Errorf("identity = %q", j.Identity())
	}
}

func TestRewardInputSettingsValidate(t *testing.T) {
	for _, tc := range []struct {
		s    RewardSettings
		want string
	}{
		{RewardSettings{Input: "chat"}, "judges.rm.reward.input"},
		{RewardSettings{API: RewardVLLMClassify, Input: RewardInputMessages}, "judges.rm.reward.input: messages only"},
		{RewardSettings{API: RewardVLLMClassify, Input: RewardInputPair}, "judges.rm.reward.input: pair only"},
		{RewardSettings{Input: RewardInputMessages, MaxBatch: 8}, "judges.rm.reward.max_batch"},
		{RewardSettings{Input: RewardInputMessages, InputTemplate: "x"}, "judges.rm.reward.input_template"},
		{RewardSettings{API: RewardTEIPredict, MaxBatch: 64}, "judges.rm.reward.max_batch: 64 is over the server's client batch limit 32"},
		{RewardSettings{MaxClientBatchSize: 64}, "judges.rm.reward.max_client_batch_size"},
		{RewardSettings{API: RewardTEIPredict, TruncationDirection: "left"}, "judges.rm.reward.truncation_direction"},
		{RewardSettings{API: RewardTEIPredict, Truncate: true, TruncationDirection: "up"}, "judges.rm.reward.truncation_direction"},
		{RewardSettings{TruncatePromptTokens: 5}, "judges.rm.reward.truncate_prompt_tokens"},
		{RewardSettings{Truncate: true, TruncatePromptTokens: -2}, "judges.rm.reward.truncate_prompt_tokens"},
	} {
		if err := tc.s.Validate("judges.rm"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.s, err, tc.want)
		}
	}
	ok := RewardSettings{API: RewardTEIPredict, MaxBatch: 64, MaxClientBatchSize: 128}
	if err := ok.Validate("judges.rm"); err != nil {
		t.Errorf("a server that allows more: %v", err)
	}
}

func TestRewardInputChecksTheEvaluatorsFields(t *testing.T) {
	judges := decodeJudges(t, `
rm: {type: reward, model: r, endpoints: [{url: "http://h"}], reward: {input: messages}}
nli: {type: reward, model: r, endpoints: [{url: "http://h"}], reward: {api: tei-predict, input: pair}}
`)
	if err := ValidateJudges("judges", judges); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		judge  string
		fields []string
		want   string // empty: accepted
	}{
		{"rm", []string{FieldPrompt, FieldResponse}, ""},
		{"rm", []string{FieldSystem, FieldMessages, FieldResponse}, ""},
		{"rm", []string{FieldContext, FieldResponse}, `not "context"`},
		{"rm", []string{FieldPrompt}, "include response"},
		{"nli", []string{FieldContext, FieldResponse}, ""},
		{"nli", []string{FieldResponse}, "[context, response]"},
	} {
		e := &Evaluator{Name: "e", Judge: tc.judge, Fields: tc.fields}
		err := judges[tc.judge].PrepareEvaluator("evaluators[0]", e)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s %v: err = %v, want %q", tc.judge, tc.fields, err, tc.want)
		}
	}
}
