package scorer

// The judge registry: what each judges.<name>.type value of raterd.yaml means.
//
// Adding a judge type touches three files: a new judge file in this package (its
// settings with Validate(key), its constructor taking JudgeSettings), its entry in
// judgeTypes below (with its settings' key on JudgeConfig, if it has its own section),
// and its keys in docs/configuration.md. Nothing outside this package switches on judge
// types.

import (
	"raterd/scorer/format"

	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"raterd/internal/telemetry"
)

// Judge types: the values of judges.<name>.type.
const (
	// JudgeHeuristic is the built-in CPU checks (NewHeuristicJudge).
	JudgeHeuristic = "heuristic"
	// JudgeOpenAI is a judge model behind OpenAI-compatible chat-completions endpoints
	// (NewOpenAIJudge).
	JudgeOpenAI = "openai"
	// JudgeReward is a reward or classifier model (NewRewardJudge).
	JudgeReward = "reward"
)

// judgeType is one registry entry: how a judge of that type is validated, which rules
// its evaluators follow, and how it is built.
type judgeType struct {
	// kind is the scorer's view of the type, for Evaluator.Prepare.
	kind JudgeKind
	// validate checks the judge's keys and fills their defaults; key is
	// "judges.<name>", and errors name the full key of the bad value.
	validate func(key string, c *JudgeConfig) error
	// checkEvaluator, when set, rejects an evaluator (already prepared) that the judge
	// cannot answer; key is the evaluator's, e.g. "evaluators[2]".
	checkEvaluator func(key string, c *JudgeConfig, e *Evaluator) error
	// build makes the judge from a validated config.
	build func(c *JudgeConfig, set JudgeSettings) (Judge, error)
}

// judgeTypes is the registry, keyed by type name.
var judgeTypes = map[string]judgeType{
	JudgeHeuristic: {
		kind: KindHeuristic,
		validate: func(key string, c *JudgeConfig) error {
			if !reflect.DeepEqual(c.OpenAIConfig, OpenAIConfig{}) || c.Reward != nil {
				return fmt.Errorf("%s: a heuristic judge takes no other keys than type (model, endpoints, pool and reward settings are for openai and reward judges)", key)
			}
			return nil
		},
		build: func(*JudgeConfig, JudgeSettings) (Judge, error) { return NewHeuristicJudge(), nil },
	},
	JudgeOpenAI: {
		kind: KindModel,
		validate: func(key string, c *JudgeConfig) error {
			if c.Reward != nil {
				return fmt.Errorf("%s.reward: only reward judges take reward settings", key)
			}
			return c.OpenAIConfig.Validate(key)
		},
		build: func(c *JudgeConfig, set JudgeSettings) (Judge, error) { return NewOpenAIJudge(c.OpenAIConfig, set) },
	},
	JudgeReward: {
		kind: KindReward,
		validate: func(key string, c *JudgeConfig) error {
			for _, k := range []struct {
				name string
				set  bool
			}{{"max_tokens", c.MaxTokens != 0}, {"logprobs", c.Logprobs}, {"top_logprobs", c.TopLogprobs != 0}, {"format_reminder", c.FormatReminder != nil}} {
				if k.set {
					return fmt.Errorf("%s.%s: only openai judges take it, not reward judges", key, k.name)
				}
			}
			if c.Reward == nil {
				c.Reward = &RewardSettings{}
			}
			if err := c.OpenAIConfig.resolveAPIKey(key); err != nil {
				return err
			}
			rc := c.RewardConfig()
			if err := rc.Validate(key); err != nil {
				return err
			}
			c.OpenAIConfig.Config, *c.Reward = rc.Pool, rc.Settings
			return nil
		},
		checkEvaluator: func(key string, c *JudgeConfig, e *Evaluator) error {
			if e.Task == TaskClassification && !c.Reward.Labels() {
				return fmt.Errorf("%s (%s).task: judge %q (api %s) returns a number, not a label; use task pointwise or api %s/%s",
					key, e.Name, e.Judge, c.Reward.API, RewardVLLMClassify, RewardTEIPredict)
			}
			return c.Reward.CheckEvaluator(key, e)
		},
		build: func(c *JudgeConfig, set JudgeSettings) (Judge, error) { return NewRewardJudge(c.RewardConfig(), set) },
	},
}

// JudgeTypes lists the registered judge types, sorted.
func JudgeTypes() []string { return slices.Sorted(maps.Keys(judgeTypes)) }

// judgeTypeList is the registered types as prose: "heuristic, openai or reward".
func judgeTypeList() string {
	t := JudgeTypes()
	if len(t) == 1 {
		return t[0]
	}
	return strings.Join(t[:len(t)-1], ", ") + " or " + t[len(t)-1]
}

// JudgeConfig is one judge pool of raterd.yaml, judges.<name>. Which keys apply depends
// on Type; Validate rejects the others.
type JudgeConfig struct {
	// Type is "heuristic" (built-in CPU checks), "openai" (a judge model behind an
	// OpenAI-compatible chat-completions server: vLLM, SGLang, TGI, llama.cpp, OpenAI) or
	// "reward" (a reward or classifier model: vLLM pooling/classify, TEI predict).
	// Required; no default.
	Type string `yaml:"type"`
	// OpenAIConfig holds the model, access and pool settings, inline: model, api_key,
	// api_key_file, headers, tls, endpoints or dns, concurrency, timeout, deadline, max_attempts, breaker, rate_limit, and for
	// openai judges max_tokens, logprobs, top_logprobs, format_reminder (defaults on
	// OpenAIConfig and pool.Config). Env override for the key:
	// RATERD_JUDGE_<NAME>_API_KEY.
	OpenAIConfig `yaml:",inline"`
	// Reward holds the reward-specific settings (reward judges only): api, max_batch,
	// label_index, label, input_template, input, truncate, truncation_direction,
	// truncate_prompt_tokens, max_client_batch_size. Default: the defaults of RewardSettings.
	Reward *RewardSettings `yaml:"reward"`
}

// Validate fills defaults and rejects bad values for the judge's type; key is its config
// path, "judges.<name>", and errors name the full key of the bad value. A nil j is an
// empty definition, an error.
func (j *JudgeConfig) Validate(key string) error {
	if j == nil {
		return fmt.Errorf("%s: empty judge definition", key)
	}
	t, ok := judgeTypes[j.Type]
	switch {
	case j.Type == "":
		return fmt.Errorf("%s.type: required (%s)", key, judgeTypeList())
	case !ok:
		return fmt.Errorf("%s.type: %q is not %s", key, j.Type, judgeTypeList())
	}
	return t.validate(key, j)
}

// Kind is the scorer's view of the judge's type, for Evaluator.Prepare; KindModel for an
// unknown type (which Validate rejects).
func (j *JudgeConfig) Kind() JudgeKind {
	if t, ok := judgeTypes[j.Type]; ok {
		return t.kind
	}
	return KindModel
}

// RewardConfig is the reward judge's config assembled from the shared keys (model,
// api_key, the pool) and the reward settings.
func (j *JudgeConfig) RewardConfig() RewardConfig {
	rc := RewardConfig{Model: j.Model, APIKey: j.APIKey, Headers: j.Headers, TLS: j.TLS, Pool: j.OpenAIConfig.Config}
	if j.Reward != nil {
		rc.Settings = *j.Reward
	}
	return rc
}

// PrepareEvaluator prepares e (Evaluator.Prepare) for this judge, which must have passed
// Validate, and rejects an evaluator the judge cannot answer (a classification asked of a
// reward model that returns no labels). key is the evaluator's config path, e.g.
// "evaluators[2]". A nil j (the evaluator names no judge) prepares e as for a judge model,
// and Prepare reports the missing judge.
func (j *JudgeConfig) PrepareEvaluator(key string, e *Evaluator) error {
	if j == nil {
		return e.Prepare(key, KindModel)
	}
	if err := e.Prepare(key, j.Kind()); err != nil {
		return err
	}
	if e.Guided != nil {
		switch {
		case j.Kind() != KindModel:
			return fmt.Errorf("%s (%s).guided: only model judges decode guided; judge %q is a %s judge", key, e.Name, e.Judge, j.Type)
		case *e.Guided && j.GuidedDecoding == "":
			return fmt.Errorf("%s (%s).guided: judge %q has no guided_decoding (set judges.%s.guided_decoding to its server's dialect: %s)",
				key, e.Name, e.Judge, e.Judge, strings.Join(guidedDialects(), ", "))
		}
	}
	if g, ok := guardFor(e.Format); ok && j.Kind() == KindModel && j.GuidedDecoding != "" && e.GuidedOn() {
		e.useGuide(g.fingerprint(), 0) // a guard's answer has no explanation to bound
	} else if j.Kind() == KindModel && j.GuidedDecoding != "" && e.GuidedOn() {
		f, err := format.Lookup(e.Format)
		if err != nil {
			return fmt.Errorf("%s (%s).format: %w", key, e.Name, err)
		}
		e.useGuide(f.GuideFingerprint(), j.GuidedExplanationChars)
	}
	if t := judgeTypes[j.Type]; t.checkEvaluator != nil {
		return t.checkEvaluator(key, j, e)
	}
	return nil
}

// ValidateJudges validates every judge of the judges section (at least one is required);
// key is the section's config path, "judges", and each judge is validated under
// key.<name>, in name order.
func ValidateJudges(key string, judges map[string]*JudgeConfig) error {
	if len(judges) == 0 {
		return fmt.Errorf("%s: at least one judge is required", key)
	}
	for _, name := range slices.Sorted(maps.Keys(judges)) {
		if err := judges[name].Validate(key + "." + name); err != nil {
			return err
		}
	}
	return nil
}

// JudgeSettings is what a judge constructor takes besides its config.
type JudgeSettings struct {
	// Key is the judge's config path, e.g. "judges.pool-a": a constructor validates its
	// config again under it (a no-op for a config that passed Validate, the defaults for
	// one that did not), so that its errors name the keys of the config file. Required
	// by NewOpenAIJudge and NewRewardJudge; NewJudges takes the section's key ("judges")
	// here and gives each judge Key.<name>.
	Key string
	// HTTPClient sends the judge's requests. Default: a pooled transport with an idle
	// connection per in-flight slot.
	HTTPClient *http.Client
	// Telemetry gets the judge's logs and its pool's metrics; unset fields mean
	// telemetry.Settings.WithDefaults. NewJudges adds the attribute judge=<name> to the
	// logger of each judge.
	Telemetry telemetry.Settings
}

// NewJudges builds one judge per entry of judges, which must have passed ValidateJudges
// under set.Key (default "judges"). An error names the judge's key and closes the judges
// already built.
func NewJudges(judges map[string]*JudgeConfig, set JudgeSettings) (map[string]Judge, error) {
	if set.Key == "" {
		set.Key = "judges"
	}
	set.Telemetry = set.Telemetry.WithDefaults()
	out := make(map[string]Judge, len(judges))
	for _, name := range slices.Sorted(maps.Keys(judges)) {
		c := judges[name]
		key := set.Key + "." + name
		if c == nil {
			CloseJudges(context.Background(), out)
			return nil, fmt.Errorf("%s: empty judge definition", key)
		}
		t, ok := judgeTypes[c.Type]
		if !ok {
			CloseJudges(context.Background(), out)
			return nil, fmt.Errorf("%s.type: %q is not %s", key, c.Type, judgeTypeList())
		}
		js := set
		js.Key, js.Telemetry.Logger = key, set.Telemetry.Logger.With("judge", name)
		j, err := t.build(c, js)
		if err != nil {
			CloseJudges(context.Background(), out)
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		out[name] = j
	}
	return out, nil
}

// JudgeCloser is an optional interface of a Judge that holds a pool of connections and
// workers (the openai and reward judges): Close stops taking calls, waits for those in
// flight until ctx ends, and releases the pool. Judges without one hold nothing to close.
type JudgeCloser interface {
	Close(ctx context.Context) error
}

// CloseJudges drains the pools of the judges that have one (JudgeCloser), until ctx ends.
func CloseJudges(ctx context.Context, judges map[string]Judge) {
	for _, j := range judges {
		if c, ok := j.(JudgeCloser); ok {
			_ = c.Close(ctx)
		}
	}
}

// errNoKey is returned by constructors called without JudgeSettings.Key.
var errNoKey = errors.New("JudgeSettings.Key is required: the judge's config path, e.g. \"judges.pool-a\"")
