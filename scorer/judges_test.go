package scorer

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"raterd/scorer/pool"
)

// decodeJudges decodes a judges section as raterd.yaml does: unknown keys are errors.
func decodeJudges(t *testing.T, src string) map[string]*JudgeConfig {
	t.Helper()
	var judges map[string]*JudgeConfig
	dec := yaml.NewDecoder(bytes.NewReader([]byte(src)))
	dec.KnownFields(true)
	if err := dec.Decode(&judges); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return judges
}

func TestJudgeTypesRegistry(t *testing.T) {
	if got := JudgeTypes(); !slices.Equal(got, []string{JudgeHeuristic, JudgeOpenAI, JudgeReward}) {
		t.Fatalf("JudgeTypes() = %v", got)
	}
	for typ, want := range map[string]JudgeKind{JudgeHeuristic: KindHeuristic, JudgeOpenAI: KindModel, JudgeReward: KindReward, "magic": KindModel} {
		if got := (&JudgeConfig{Type: typ}).Kind(); got != want {
			t.Errorf("Kind(%q) = %v, want %v", typ, got, want)
		}
	}
}

func TestJudgeConfigDecodesInlineAndValidates(t *testing.T) {
	judges := decodeJudges(t, `
checks: {type: heuristic}
pool-a:
  type: openai
  model: m
  endpoints: [{url: "http://127.0.0.1:8000/v1/"}]
  logprobs: true
rm:
  type: reward
  model: r
  dns: {name: rm.svc, port: 8000}
  reward: {api: tei-predict}
`)
	if err := ValidateJudges("judges", judges); err != nil {
		t.Fatal(err)
	}
	a, rm := judges["pool-a"], judges["rm"]
	if a.Endpoints[0].URL != "http://127.0.0.1:8000/v1" || a.MaxTokens != openaiDefaultMaxTokens || !a.Logprobs || a.FormatReminder == nil {
		t.Errorf("openai defaults: %+v", a)
	}
	if rm.Reward.API != RewardTEIPredict || rm.Reward.MaxBatch != rewardDefaultMaxBatch || rm.DNS.Scheme != "http" || rm.MaxAttempts == 0 {
		t.Errorf("reward defaults: %+v %+v", rm.OpenAIConfig, rm.Reward)
	}

	var bad map[string]*JudgeConfig
	dec := yaml.NewDecoder(strings.NewReader("x: {type: openai, modle: m}\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&bad); err == nil || !strings.Contains(err.Error(), "modle") {
		t.Errorf("unknown key: err = %v", err)
	}
}

func TestJudgeConfigValidateNamesTheKey(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"no type", "j: {model: m}", "judges.j.type: required (heuristic, openai or reward)"},
		{"unknown type", "j: {type: magic}", `judges.j.type: "magic" is not heuristic, openai or reward`},
		{"empty", "j:", "judges.j: empty judge definition"},
		{"heuristic with keys", "j: {type: heuristic, model: m}", "judges.j: a heuristic judge takes no other keys"},
		{"openai with reward", `j: {type: openai, model: m, endpoints: [{url: "http://h"}], reward: {}}`, "judges.j.reward: only reward judges"},
		{"openai without model", `j: {type: openai, endpoints: [{url: "http://h"}]}`, "judges.j.model: required"},
		{"reward with openai key", `j: {type: reward, model: m, endpoints: [{url: "http://h"}], top_logprobs: 3}`, "judges.j.top_logprobs: only openai judges"},
		{"reward bad api", `j: {type: reward, model: m, endpoints: [{url: "http://h"}], reward: {api: x}}`, "judges.j.reward.api"},
		{"pool", `j: {type: reward, model: m, endpoints: [{url: "ftp://h"}]}`, "judges.j.endpoints[0].url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateJudges("judges", decodeJudges(t, tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if err := ValidateJudges("judges", nil); err == nil || err.Error() != "judges: at least one judge is required" {
		t.Errorf("no judges: err = %v", err)
	}
}

func TestPrepareEvaluatorAsksTheJudge(t *testing.T) {
	judges := decodeJudges(t, `
rm: {type: reward, model: r, endpoints: [{url: "http://h"}]}
cls: {type: reward, model: r, endpoints: [{url: "http://h"}], reward: {api: vllm-classify}}
checks: {type: heuristic}
`)
	if err := ValidateJudges("judges", judges); err != nil {
		t.Fatal(err)
	}
	classify := func(judge string) *Evaluator {
		return &Evaluator{Name: "c", Judge: judge, Task: TaskClassification, PositiveLabel: "good"}
	}
	err := judges["rm"].PrepareEvaluator("evaluators[0]", classify("rm"))
	if err == nil || !strings.Contains(err.Error(), `evaluators[0] (c).task: judge "rm" (api vllm-pooling) returns a number, not a label`) {
		t.Errorf("pooling classification: err = %v", err)
	}
	if err := judges["cls"].PrepareEvaluator("evaluators[0]", classify("cls")); err != nil {
		t.Errorf("classify classification: %v", err)
	}
	e := &Evaluator{Name: "p", Judge: "checks", Check: "pii"}
	if err := judges["checks"].PrepareEvaluator("evaluators[1]", e); err != nil || e.Task != TaskClassification {
		t.Errorf("heuristic: err %v, task %q", err, e.Task)
	}
	var none *JudgeConfig
	if err := none.PrepareEvaluator("evaluators[2]", &Evaluator{Name: "x"}); err == nil || !strings.Contains(err.Error(), "evaluators[2] (x).judge: required") {
		t.Errorf("no judge: err = %v", err)
	}
}

func TestNewJudges(t *testing.T) {
	judges := decodeJudges(t, `
checks: {type: heuristic}
pool-a: {type: openai, model: m, endpoints: [{url: "http://127.0.0.1:1/v1"}]}
rm: {type: reward, model: r, endpoints: [{url: "http://127.0.0.1:1"}]}
`)
	if err := ValidateJudges("judges", judges); err != nil {
		t.Fatal(err)
	}
	built, err := NewJudges(judges, JudgeSettings{})
	if err != nil {
		t.Fatal(err)
	}
	defer CloseJudges(context.Background(), built)
	for name, want := range map[string]string{"checks": "heuristic/v1", "pool-a": "openai:m", "rm": "reward:r@vllm-pooling"} {
		if j := built[name]; j == nil || j.Identity() != want {
			t.Errorf("%s: %v, want identity %q", name, j, want)
		}
	}
	if _, err := NewJudges(map[string]*JudgeConfig{"x": {Type: "magic"}}, JudgeSettings{}); err == nil || !strings.Contains(err.Error(), "judges.x.type") {
		t.Errorf("unknown type: err = %v", err)
	}
}

// TestConstructorsValidateUnderTheKey: a direct caller that skipped Validate gets the
// defaults, and errors name the key it passed, never an invented one.
func TestConstructorsValidateUnderTheKey(t *testing.T) {
	if _, err := NewOpenAIJudge(OpenAIConfig{}, JudgeSettings{Key: "judges.x"}); err == nil || !strings.HasPrefix(err.Error(), "judges.x.model: required") {
		t.Errorf("openai: err = %v", err)
	}
	if _, err := NewRewardJudge(RewardConfig{Model: "r"}, JudgeSettings{Key: "judges.rm"}); err == nil || !strings.HasPrefix(err.Error(), "judges.rm.endpoints: required") {
		t.Errorf("reward: err = %v", err)
	}
	if _, err := NewOpenAIJudge(OpenAIConfig{Model: "m"}, JudgeSettings{}); err == nil || !strings.Contains(err.Error(), "Key is required") {
		t.Errorf("no key: err = %v", err)
	}
	cfg := RewardConfig{Model: "r"}
	cfg.Pool.Endpoints = append(cfg.Pool.Endpoints, pool.Endpoint{URL: "http://127.0.0.1:1"})
	j, err := NewRewardJudge(cfg, JudgeSettings{Key: "judges.rm"})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close(context.Background())
	if j.cfg.Settings.MaxBatch != rewardDefaultMaxBatch || j.cfg.Pool.MaxAttempts == 0 {
		t.Errorf("defaults not filled: %+v", j.cfg)
	}
}
