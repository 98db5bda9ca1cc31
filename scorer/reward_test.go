package scorer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"raterd/record"
	"raterd/scorer/pool"
)

// fakeReward is a FAKE reward server for unit tests: it answers each API's shape with a
// score derived from the input text's length, and records the batch sizes it saw.
type fakeReward struct {
	srv     *httptest.Server
	mu      sync.Mutex
	batches []int
	paths   []string
	status  int    // non-zero: answer every request with it
	reject  string // non-empty: answer 400 to a request with an input containing it
	wild    string // non-empty: an input containing it gets probabilities [-3 7] (classify), score 5 (predict), reward -3 (pooling)
}

func newFakeReward(t *testing.T) *fakeReward {
	t.Helper()
	f := &fakeReward{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Input  []string   `json:"input"`  // vLLM
			Inputs [][]string `json:"inputs"` // TEI: a batch of one-text sequences
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		texts := body.Input
		for _, seq := range body.Inputs {
			if len(seq) != 1 {
				http.Error(w, "want one text per sequence", http.StatusUnprocessableEntity)
				return
			}
			texts = append(texts, seq[0])
		}
		f.mu.Lock()
		f.batches = append(f.batches, len(texts))
		f.paths = append(f.paths, r.URL.Path)
		status := f.status
		for _, t := range texts {
			if f.reject != "" && strings.Contains(t, f.reject) {
				status = http.StatusBadRequest
			}
		}
		f.mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/pooling":
			var data []map[string]any
			for i, t := range texts {
				reward := float64(len(t))
				if f.wild != "" && strings.Contains(t, f.wild) {
					reward = -3
				}
				data = append(data, map[string]any{"index": i, "object": "pooling", "data": []float64{reward}})
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data})
		case "/classify":
			var data []map[string]any
			for i, t := range texts {
				p1 := 0.9
				if strings.Contains(t, "BAD") {
					p1 = 0.2
				}
				label := "LABEL_1"
				if p1 < 0.5 {
					label = "LABEL_0"
				}
				probs := []float64{1 - p1, p1}
				if f.wild != "" && strings.Contains(t, f.wild) {
					probs = []float64{-3, 7}
				}
				data = append(data, map[string]any{"index": i, "label": label, "probs": probs, "num_classes": 2})
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data})
		case "/predict":
			var out [][]map[string]any
			for _, t := range texts {
				if f.wild != "" && strings.Contains(t, f.wild) {
					out = append(out, []map[string]any{{"label": "entailment", "score": 5}, {"label": "contradiction", "score": -4}})
				} else if strings.Contains(t, "BAD") {
					out = append(out, []map[string]any{{"label": "contradiction", "score": 0.7}, {"label": "entailment", "score": 0.3}})
				} else {
					out = append(out, []map[string]any{{"label": "entailment", "score": 0.8}, {"label": "contradiction", "score": 0.2}})
				}
			}
			_ = json.NewEncoder(w).Encode(out)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func rewardJudge(t *testing.T, url string, s RewardSettings) *RewardJudge {
	t.Helper()
	j, err := NewRewardJudge(RewardConfig{Model: "rm", Settings: s, Pool: pool.Config{
		Endpoints: []pool.Endpoint{{URL: url}}, MaxAttempts: 2, Timeout: 5 * time.Second,
	}}, JudgeSettings{Key: "judges.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close(context.Background()) })
	return j
}

func rewardTasks(t *testing.T, e *Evaluator, responses ...string) []Task {
	t.Helper()
	if err := e.Prepare("evaluators[0]", KindReward); err != nil {
		t.Fatal(err)
	}
	var tasks []Task
	for i, r := range responses {
		tasks = append(tasks, Task{Evaluator: e, Record: &record.Record{ID: fmt.Sprint(i), Model: "m", Prompt: "P", Response: r}})
	}
	return tasks
}

func TestRewardPoolingScoresAMicroBatchPerRequest(t *testing.T) {
	f := newFakeReward(t)
	j := rewardJudge(t, f.srv.URL, RewardSettings{MaxBatch: 4})
	tasks := rewardTasks(t, &Evaluator{Name: "reward", Judge: "rm"}, "a", "bb", "ccc", "dddd", "eeeee", "ffffff")
	vs, err := j.Judge(context.Background(), tasks)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		// The default input is "User: P\n\nAssistant: <response>".
		want := float64(len("User: P\n\nAssistant: ") + i + 1)
		if v.Status != record.StatusOK || v.Value != want {
			t.Errorf("task %d: verdict %+v, want score %g", i, v, want)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.batches) != 2 || f.batches[0]+f.batches[1] != 6 || max(f.batches[0], f.batches[1]) != 4 {
		t.Fatalf("batches = %v, want two requests of at most 4", f.batches)
	}
	if !strings.HasPrefix(j.Identity(), "reward:rm@vllm-pooling") {
		t.Errorf("identity = %q", j.Identity())
	}
}

func TestRewardClassifyAndPredictLabels(t *testing.T) {
	for _, tc := range []struct {
		api      string
		labels   []string
		positive string
		wantGood string
		wantBad  string
	}{
		{RewardVLLMClassify, []string{"LABEL_1", "LABEL_0"}, "", "LABEL_1", "LABEL_0"},
		{RewardTEIPredict, []string{"entailment", "contradiction"}, "entailment", "entailment", "contradiction"},
	} {
		t.Run(tc.api, func(t *testing.T) {
			f := newFakeReward(t)
			j := rewardJudge(t, f.srv.URL, RewardSettings{API: tc.api})
			e := &Evaluator{Name: "cls", Judge: "rm", Task: TaskClassification, Labels: tc.labels, PositiveLabel: tc.positive}
			vs, err := j.Judge(context.Background(), rewardTasks(t, e, "fine answer", "BAD answer"))
			if err != nil {
				t.Fatal(err)
			}
			if vs[0].Label != tc.wantGood || vs[0].Value != 1 || vs[0].Confidence < 0.5 {
				t.Errorf("good: %+v", vs[0])
			}
			if vs[1].Label != tc.wantBad || vs[1].Value != 0 {
				t.Errorf("bad: %+v", vs[1])
			}
		})
	}
}

func TestRewardClassifyPointwiseIsTheClassProbability(t *testing.T) {
	f := newFakeReward(t)
	j := rewardJudge(t, f.srv.URL, RewardSettings{API: RewardVLLMClassify})
	vs, err := j.Judge(context.Background(), rewardTasks(t, &Evaluator{Name: "p", Judge: "rm"}, "fine", "BAD"))
	if err != nil {
		t.Fatal(err)
	}
	if vs[0].Value != 0.9 || vs[1].Value != 0.2 {
		t.Fatalf("verdicts = %+v", vs)
	}
}

func TestRewardLabelOutsideTheEvaluatorsIsAParseFailure(t *testing.T) {
	f := newFakeReward(t)
	j := rewardJudge(t, f.srv.URL, RewardSettings{API: RewardTEIPredict})
	e := &Evaluator{Name: "cls", Judge: "rm", Task: TaskClassification, Labels: []string{"yes", "no"}}
	vs, err := j.Judge(context.Background(), rewardTasks(t, e, "fine"))
	if err != nil {
		t.Fatal(err)
	}
	if vs[0].Status != record.StatusParseFailure || vs[0].Label != "" {
		t.Fatalf("verdict = %+v", vs[0])
	}
}

func TestRewardInputTemplateAndIdentity(t *testing.T) {
	f := newFakeReward(t)
	j := rewardJudge(t, f.srv.URL, RewardSettings{InputTemplate: `<q>{{index . "prompt"}}</q><a>{{index . "response"}}</a>`})
	vs, err := j.Judge(context.Background(), rewardTasks(t, &Evaluator{Name: "r", Judge: "rm"}, "xyz"))
	if err != nil {
		t.Fatal(err)
	}
	if want := float64(len("<q>P</q><a>xyz</a>")); vs[0].Value != want {
		t.Fatalf("score = %g, want the length of the templated input %g", vs[0].Value, want)
	}
	if !strings.Contains(j.Identity(), "+tmpl:") {
		t.Errorf("identity %q does not name the custom template", j.Identity())
	}
}

func TestRewardOutageIsUnavailableAndBadRequestIsAnError(t *testing.T) {
	for _, tc := range []struct {
		status      int
		unavailable bool
	}{{http.StatusServiceUnavailable, true}, {http.StatusBadRequest, false}} {
		f := newFakeReward(t)
		f.status = tc.status
		j := rewardJudge(t, f.srv.URL, RewardSettings{})
		vs, err := j.Judge(context.Background(), rewardTasks(t, &Evaluator{Name: "r", Judge: "rm"}, "a", "b"))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			if v.Status != record.StatusJudgeError || errors.Is(v.Err, ErrJudgeUnavailable) != tc.unavailable {
				t.Errorf("HTTP %d: verdict %+v, unavailable want %v", tc.status, v, tc.unavailable)
			}
		}
	}
}

func TestRewardSettingsValidate(t *testing.T) {
	idx := 1
	for _, tc := range []struct {
		s    RewardSettings
		want string
	}{
		{RewardSettings{API: "grpc"}, "judges.rm.reward.api"},
		{RewardSettings{MaxBatch: 5000}, "judges.rm.reward.max_batch"},
		{RewardSettings{LabelIndex: &idx}, "judges.rm.reward.label_index"},
		{RewardSettings{Label: "x"}, "judges.rm.reward.label"},
		{RewardSettings{InputTemplate: "{{"}, "judges.rm.reward.input_template"},
	} {
		if err := tc.s.Validate("judges.rm"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.s, err, tc.want)
		}
	}
}

// One input the server refuses for good (over the context length, say) fails alone: the
// request is split until the offending item is by itself.
func TestRewardOneBadItemFailsAlone(t *testing.T) {
	f := newFakeReward(t)
	f.reject = "TOO-LONG"
	j := rewardJudge(t, f.srv.URL, RewardSettings{MaxBatch: 8})
	vs, err := j.Judge(context.Background(), rewardTasks(t, &Evaluator{Name: "r", Judge: "rm"}, "a", "b", "c", "TOO-LONG", "e", "f", "g", "h"))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		if i == 3 {
			if v.Status != record.StatusJudgeError || errors.Is(v.Err, ErrJudgeUnavailable) {
				t.Errorf("the refused item: %+v", v)
			}
			continue
		}
		if v.Status != record.StatusOK {
			t.Errorf("item %d failed with the refused one: %+v", i, v)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.batches) > 2*8 {
		t.Errorf("%d requests for 8 items", len(f.batches))
	}
}

// Class probabilities (vLLM /classify) and label scores (TEI /predict) are probabilities:
// one outside [0,1] is a malformed answer, and only its item fails, with the field named.
// A pooled reward is any finite number.
func TestRewardProbabilitiesOutsideUnitIntervalAreMalformed(t *testing.T) {
	for _, tc := range []struct {
		api     string
		task    string
		wantErr string // empty: the wild item scores
	}{
		{RewardVLLMClassify, TaskClassification, "probs[0] is -3, not a probability in [0,1]"},
		{RewardVLLMClassify, TaskPointwise, "probs[0] is -3, not a probability in [0,1]"},
		{RewardTEIPredict, TaskClassification, "score 0 is 5, not a probability in [0,1]"},
		{RewardTEIPredict, TaskPointwise, "score 0 is 5, not a probability in [0,1]"},
		{RewardVLLMPooling, TaskPointwise, ""},
	} {
		t.Run(tc.api+"/"+tc.task, func(t *testing.T) {
			f := newFakeReward(t)
			f.wild = "WILD"
			s := RewardSettings{API: tc.api, MaxBatch: 4}
			e := &Evaluator{Name: "e", Judge: "rm", Task: tc.task}
			switch {
			case tc.api == RewardTEIPredict && tc.task == TaskPointwise:
				s.Label = "entailment"
			case tc.api == RewardTEIPredict:
				e.PositiveLabel = "entailment"
			case tc.task == TaskClassification:
				e.PositiveLabel = "LABEL_1"
			}
			j := rewardJudge(t, f.srv.URL, s)
			vs, err := j.Judge(context.Background(), rewardTasks(t, e, "fine", "WILD", "fine too", "BAD"))
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range vs {
				if v.Confidence < 0 || v.Confidence > 1 {
					t.Errorf("item %d: confidence %v outside [0,1]", i, v.Confidence)
				}
				if i != 1 || tc.wantErr == "" {
					if v.Status != record.StatusOK {
						t.Errorf("item %d failed with the malformed one: %+v", i, v)
					}
					continue
				}
				if v.Status != record.StatusJudgeError || v.Err == nil || errors.Is(v.Err, ErrJudgeUnavailable) || !strings.Contains(v.Err.Error(), tc.wantErr) {
					t.Errorf("malformed item: %+v, want judge_error with %q", v, tc.wantErr)
				}
			}
			if tc.wantErr == "" && vs[1].Value != -3 {
				t.Errorf("pooled reward: %+v, want -3", vs[1])
			}
		})
	}
}
