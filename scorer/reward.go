package scorer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	"raterd/internal/secret"
	"raterd/record"
	"raterd/scorer/pool"
)

// Reward APIs: how a reward or classifier model server is asked for a number per item.
const (
	// RewardVLLMPooling is vLLM's POST /pooling ({"input": [...]}); the score of an item
	// is the last value of its pooled output (a reward model's reward).
	RewardVLLMPooling = "vllm-pooling"
	// RewardVLLMClassify is vLLM's POST /classify; an item's score is the probability of
	// class LabelIndex, its label the most probable class.
	RewardVLLMClassify = "vllm-classify"
	// RewardTEIPredict is Hugging Face Text Embeddings Inference's POST /predict; an
	// item's score is the score of Label, its label the best-scoring one.
	RewardTEIPredict = "tei-predict"
)

// RewardAPIs lists the supported reward APIs.
func RewardAPIs() []string { return []string{RewardVLLMPooling, RewardVLLMClassify, RewardTEIPredict} }

// Reward inputs: what one item is sent as (reward.input).
const (
	// RewardInputText sends one rendered text per item (input_template, or the default
	// "User: …\n\nAssistant: …" layout), many items per request. The default.
	RewardInputText = "text"
	// RewardInputMessages (vllm-pooling) sends the conversation as chat messages —
	// {"model", "messages": [system, user…, assistant]} — so that the server renders it
	// with the model's own chat template (what reward models such as Skywork-Reward are
	// trained on). vLLM's /pooling takes one conversation per request: each item is a
	// request of its own, bounded by the pool's in-flight limit.
	RewardInputMessages = "messages"
	// RewardInputPair (tei-predict) sends each item as a [premise, hypothesis] text pair
	// for an NLI cross-encoder: the premise is every field read but the response (the
	// retrieved documents joined by blank lines), the hypothesis the response.
	RewardInputPair = "pair"
)

// RewardInputs lists the supported reward inputs.
func RewardInputs() []string { return []string{RewardInputText, RewardInputMessages, RewardInputPair} }

// RewardSettings are the reward-specific keys of a reward judge (under "reward:").
type RewardSettings struct {
	// API is vllm-pooling (default), vllm-classify or tei-predict.
	API string `yaml:"api"`
	// MaxBatch is how many items one request carries; a micro-batch is split into
	// requests of at most this many. Default 32, at most 1024.
	MaxBatch int `yaml:"max_batch"`
	// LabelIndex (vllm-classify) is the class whose probability is a pointwise score.
	// Default: the last class (the positive class of a binary classifier).
	LabelIndex *int `yaml:"label_index"`
	// Label (tei-predict) is the label whose score is a pointwise score. Default: the
	// only label when one is returned, else "LABEL_1".
	Label string `yaml:"label"`
	// InputTemplate renders an item's text from the fields the evaluator reads, as a Go
	// text/template over a map from field name to text, e.g.
	// `{{index . "prompt"}}` — put the model's chat template here. Default:
	// "User: <prompt>\n\nAssistant: <response>" with only the fields read, others as
	// "<Field>: <text>" paragraphs.
	InputTemplate string `yaml:"input_template"`
	// Input is what an item is sent as: text (default), messages (vllm-pooling only) or
	// pair (tei-predict only); see RewardInputText and the others.
	Input string `yaml:"input"`
	// Truncate asks the server to cut an input longer than the model's maximum length
	// instead of refusing it: TEI's "truncate": true (with "truncation_direction"), vLLM's
	// "truncate_prompt_tokens". Default false: such an item fails alone (judge_error).
	Truncate bool `yaml:"truncate"`
	// TruncationDirection (tei-predict, with truncate) is the end TEI cuts: right
	// (default, TEI's default) or left.
	TruncationDirection string `yaml:"truncation_direction"`
	// TruncatePromptTokens (vllm-pooling, vllm-classify; with truncate) is sent as
	// truncate_prompt_tokens: k keeps the last k tokens (vLLM truncates on the left);
	// default -1, the model's maximum length.
	TruncatePromptTokens int `yaml:"truncate_prompt_tokens"`
	// MaxClientBatchSize (tei-predict) is the server's --max-client-batch-size: TEI
	// refuses a request with more inputs, so max_batch may not exceed it. Default 32,
	// TEI's default; set it to the server's value to batch more.
	MaxClientBatchSize int `yaml:"max_client_batch_size"`
}

// RewardConfig configures a reward judge: a reward or classifier model that returns a
// number per item, asked one request per micro-batch.
type RewardConfig struct {
	// Model is the model name sent in requests (vLLM) and part of the identity. Required.
	Model string
	// APIKey is an optional bearer token (already resolved: JudgeConfig.Validate reads
	// api_key_file into it).
	APIKey secret.Secret
	// Headers are extra headers of every request and health probe (see
	// OpenAIConfig.Headers).
	Headers map[string]secret.Secret
	// TLS is TLS to https endpoints (see OpenAIConfig.TLS); nil: Go's defaults.
	TLS *JudgeTLSConfig
	// Settings are the reward-specific keys.
	Settings RewardSettings
	// Pool is the endpoints, concurrency, retries and breaker (see scorer/pool).
	Pool pool.Config
}

// Defaults and bounds of RewardSettings.
const (
	rewardDefaultMaxBatch = 32
	rewardMaxMaxBatch     = 1024
	rewardDefaultTEILabel = "LABEL_1"
	// rewardTEIClientBatch is TEI's default --max-client-batch-size.
	rewardTEIClientBatch = 32
)

// Validate fills defaults and rejects bad values; key is the judge's config path (e.g.
// "judges.rm") and errors name the full key.
func (s *RewardSettings) Validate(key string) error {
	if s.API == "" {
		s.API = RewardVLLMPooling
	}
	if !slices.Contains(RewardAPIs(), s.API) {
		return fmt.Errorf("%s.reward.api: %q is not one of %s", key, s.API, strings.Join(RewardAPIs(), ", "))
	}
	if s.Input == "" {
		s.Input = RewardInputText
	}
	switch {
	case !slices.Contains(RewardInputs(), s.Input):
		return fmt.Errorf("%s.reward.input: %q is not one of %s", key, s.Input, strings.Join(RewardInputs(), ", "))
	case s.Input == RewardInputMessages && s.API != RewardVLLMPooling:
		return fmt.Errorf("%s.reward.input: messages only with api %s (its chat form)", key, RewardVLLMPooling)
	case s.Input == RewardInputPair && s.API != RewardTEIPredict:
		return fmt.Errorf("%s.reward.input: pair only with api %s (vLLM's /classify takes single texts, and /score one number per pair, not class probabilities)", key, RewardTEIPredict)
	case s.Input != RewardInputText && s.InputTemplate != "":
		return fmt.Errorf("%s.reward.input_template: only with input text, not %s", key, s.Input)
	}
	if s.Input == RewardInputMessages {
		// vLLM's /pooling takes one conversation per request (PoolingChatRequest).
		if s.MaxBatch > 1 {
			return fmt.Errorf("%s.reward.max_batch: input messages sends one conversation per request (vLLM's /pooling takes one messages list); leave it unset or 1, and bound concurrency with max_in_flight", key)
		}
		s.MaxBatch = 1
	}
	if s.MaxClientBatchSize != 0 && s.API != RewardTEIPredict {
		return fmt.Errorf("%s.reward.max_client_batch_size: only for api %s", key, RewardTEIPredict)
	}
	if s.API == RewardTEIPredict && s.MaxClientBatchSize == 0 {
		s.MaxClientBatchSize = rewardTEIClientBatch
	}
	if s.MaxClientBatchSize < 0 || s.MaxClientBatchSize > rewardMaxMaxBatch {
		return fmt.Errorf("%s.reward.max_client_batch_size: %d is not in 1..%d", key, s.MaxClientBatchSize, rewardMaxMaxBatch)
	}
	if s.MaxBatch == 0 {
		s.MaxBatch = rewardDefaultMaxBatch
		if s.MaxClientBatchSize != 0 {
			s.MaxBatch = min(s.MaxBatch, s.MaxClientBatchSize)
		}
	}
	if s.MaxBatch < 1 || s.MaxBatch > rewardMaxMaxBatch {
		return fmt.Errorf("%s.reward.max_batch: %d is not in 1..%d", key, s.MaxBatch, rewardMaxMaxBatch)
	}
	if s.MaxClientBatchSize != 0 && s.MaxBatch > s.MaxClientBatchSize {
		return fmt.Errorf("%s.reward.max_batch: %d is over the server's client batch limit %d (TEI's --max-client-batch-size, default 32): TEI would refuse every full request; lower it, or set %s.reward.max_client_batch_size to the server's value", key, s.MaxBatch, s.MaxClientBatchSize, key)
	}
	switch {
	case s.TruncationDirection != "" && (s.API != RewardTEIPredict || !s.Truncate):
		return fmt.Errorf("%s.reward.truncation_direction: only for api %s with truncate: true (vLLM keeps the last tokens)", key, RewardTEIPredict)
	case s.TruncationDirection != "" && s.TruncationDirection != "right" && s.TruncationDirection != "left":
		return fmt.Errorf("%s.reward.truncation_direction: %q is not right or left", key, s.TruncationDirection)
	case s.TruncatePromptTokens != 0 && (s.API == RewardTEIPredict || !s.Truncate):
		return fmt.Errorf("%s.reward.truncate_prompt_tokens: only for the vLLM apis with truncate: true", key)
	case s.TruncatePromptTokens < -1:
		return fmt.Errorf("%s.reward.truncate_prompt_tokens: %d is not -1 (the model's maximum length) or a token count", key, s.TruncatePromptTokens)
	}
	if s.Truncate {
		if s.API == RewardTEIPredict && s.TruncationDirection == "" {
			s.TruncationDirection = "right"
		}
		if s.API != RewardTEIPredict && s.TruncatePromptTokens == 0 {
			s.TruncatePromptTokens = -1
		}
	}
	if s.LabelIndex != nil && (s.API != RewardVLLMClassify || *s.LabelIndex < 0) {
		return fmt.Errorf("%s.reward.label_index: only for api %s, and not negative", key, RewardVLLMClassify)
	}
	if s.Label != "" && s.API != RewardTEIPredict {
		return fmt.Errorf("%s.reward.label: only for api %s", key, RewardTEIPredict)
	}
	if s.InputTemplate != "" {
		if _, err := template.New("input").Option("missingkey=zero").Parse(s.InputTemplate); err != nil {
			return fmt.Errorf("%s.reward.input_template: %w", key, err)
		}
	}
	return nil
}

// CheckEvaluator rejects an evaluator whose fields the configured input cannot send;
// key is the evaluator's config path (e.g. "evaluators[2]").
func (s *RewardSettings) CheckEvaluator(key string, e *Evaluator) error {
	switch s.Input {
	case RewardInputMessages:
		if !slices.Contains(e.Fields, FieldResponse) {
			return fmt.Errorf("%s (%s).fields: judge %q sends chat messages (reward.input messages), which end with the response; include response", key, e.Name, e.Judge)
		}
		for _, f := range e.Fields {
			if !slices.Contains([]string{FieldSystem, FieldPrompt, FieldMessages, FieldResponse}, f) {
				return fmt.Errorf("%s (%s).fields: judge %q sends chat messages (reward.input messages): system, prompt (or messages) and response, not %q; use reward.input text", key, e.Name, e.Judge, f)
			}
		}
		if slices.Contains(e.Fields, FieldPrompt) && slices.Contains(e.Fields, FieldMessages) {
			return fmt.Errorf("%s (%s).fields: prompt and messages are the same turns in chat messages; read one", key, e.Name)
		}
	case RewardInputPair:
		if !slices.Contains(e.Fields, FieldResponse) || len(e.Fields) < 2 {
			return fmt.Errorf("%s (%s).fields: judge %q sends [premise, hypothesis] pairs (reward.input pair): the response is the hypothesis, the other fields the premise; read response and at least one other, e.g. [context, response]", key, e.Name, e.Judge)
		}
		if slices.Contains(e.Fields, FieldCandidates) {
			return fmt.Errorf("%s (%s).fields: judge %q sends [premise, hypothesis] pairs; not candidates", key, e.Name, e.Judge)
		}
	}
	return nil
}

// Labels reports whether the API returns labels (and so can answer classification).
func (s *RewardSettings) Labels() bool { return s.API != RewardVLLMPooling }

// Validate checks the whole reward judge config.
func (c *RewardConfig) Validate(key string) error {
	if strings.TrimSpace(c.Model) == "" {
		return fmt.Errorf("%s.model: required", key)
	}
	if err := c.Pool.Validate(key); err != nil {
		return err
	}
	access := OpenAIConfig{APIKey: c.APIKey, Headers: c.Headers, TLS: c.TLS, Config: c.Pool}
	if err := access.validateAccess(key); err != nil {
		return err
	}
	return c.Settings.Validate(key)
}

// RewardJudge scores tasks with a reward or classifier model, one HTTP request per
// micro-batch (split at MaxBatch items), through a pool.
type RewardJudge struct {
	cfg      RewardConfig
	identity string
	tmpl     *template.Template // nil: the default rendering
	pool     *pool.Pool
	client   *http.Client
	header   http.Header // api key and configured headers of every request
}

// NewRewardJudge starts the judge's pool (Close stops it). cfg should have passed
// Validate(set.Key); it is validated again under set.Key (required), so that a caller that
// did not validate still gets the defaults and errors name the keys of the config file.
// Nil settings get the defaults of JudgeSettings.
func NewRewardJudge(cfg RewardConfig, set JudgeSettings) (*RewardJudge, error) {
	if set.Key == "" {
		return nil, fmt.Errorf("scorer: NewRewardJudge: %w", errNoKey)
	}
	cfg.Pool.Endpoints = append([]pool.Endpoint(nil), cfg.Pool.Endpoints...)
	if err := cfg.Validate(set.Key); err != nil {
		return nil, err
	}
	client, header, err := judgeAccess(set.Key, set.HTTPClient, cfg.Pool, cfg.APIKey, cfg.Headers, cfg.TLS, set.Telemetry.WithDefaults().Logger)
	if err != nil {
		return nil, err
	}
	j := &RewardJudge{cfg: cfg, client: client, header: header}
	// The identity names everything that changes the numbers: model, API, the class
	// read and the input rendering.
	id := "reward:" + cfg.Model + "@" + cfg.Settings.API
	switch {
	case cfg.Settings.LabelIndex != nil:
		id += fmt.Sprintf("#%d", *cfg.Settings.LabelIndex)
	case cfg.Settings.Label != "":
		id += "#" + cfg.Settings.Label
	}
	// Text input (the default) without truncation names neither, so the judges configured
	// before those keys existed keep their identity (and cache and rubric versions).
	if cfg.Settings.Input != RewardInputText {
		id += "+" + cfg.Settings.Input
	}
	if cfg.Settings.Truncate {
		id += "+trunc"
		switch {
		case cfg.Settings.TruncationDirection == "left":
			id += ":left"
		case cfg.Settings.TruncatePromptTokens > 0:
			id += fmt.Sprintf(":%d", cfg.Settings.TruncatePromptTokens)
		}
	}
	if cfg.Settings.InputTemplate != "" {
		sum := sha256.Sum256([]byte(cfg.Settings.InputTemplate))
		id += "+tmpl:" + hex.EncodeToString(sum[:4])
		j.tmpl = template.Must(template.New("input").Option("missingkey=zero").Parse(cfg.Settings.InputTemplate))
	}
	j.identity = id
	p, err := pool.New(cfg.Pool, pool.Options{Key: set.Key, Name: id, DefaultHealthPath: "health", Client: j.client,
		Telemetry: set.Telemetry, ProbeHeader: header})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", id, err)
	}
	j.pool = p
	return j, nil
}

// Identity is "reward:<model>@<api>", plus the class read, the input when not text
// ("+messages", "+pair"), truncation ("+trunc", "+trunc:left", "+trunc:<tokens>") and a
// hash of a custom input template.
func (j *RewardJudge) Identity() string { return j.identity }

// Close drains the pool.
func (j *RewardJudge) Close(ctx context.Context) error { return j.pool.Close(ctx) }

// rewardItem is one item's answer: a score and, for classifiers, the best label and its
// probability.
type rewardItem struct {
	score float64
	label string
	prob  float64
	// noScore says why the answer has no score for a pointwise evaluator (a TEI
	// prediction without the configured label); classification does not need one.
	noScore string
}

// Judge sends the tasks in requests of at most MaxBatch items, concurrently, and returns
// one verdict per task. A request that fails fails its items alone.
func (j *RewardJudge) Judge(ctx context.Context, tasks []Task) ([]Verdict, error) {
	verdicts := make([]Verdict, len(tasks))
	var wg sync.WaitGroup
	for lo := 0; lo < len(tasks); lo += j.cfg.Settings.MaxBatch {
		hi := min(lo+j.cfg.Settings.MaxBatch, len(tasks))
		wg.Go(func() { j.judgeChunk(ctx, tasks[lo:hi], verdicts[lo:hi]) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		for _, v := range verdicts {
			if v.Err != nil && errors.Is(v.Err, err) {
				return verdicts, fmt.Errorf("%s: %w", j.identity, context.Cause(ctx))
			}
		}
	}
	return verdicts, nil
}

// judgeChunk judges up to MaxBatch tasks in one request. Failures stay per item: an
// input that cannot be rendered fails alone, and a request the server refuses for good
// (say, one item over the model's context length) is split in halves and retried, so
// only the offending items end up as judge_error rows. A request that fails after its
// retries with an error of the server's own (a 500) is bisected the same way, so only
// the items that fail alone stay unavailable — and, the pool having answered the
// others, become poison suspects (see poisonSuspects) instead of stalling the batch or
// taking healthy items with them.
func (j *RewardJudge) judgeChunk(ctx context.Context, tasks []Task, out []Verdict) {
	var idx []int
	var inputs []rewardInput
	tokens := 0
	for i, t := range tasks {
		in, err := j.input(t)
		if err != nil {
			out[i] = Verdict{Status: record.StatusJudgeError, Err: fmt.Errorf("%s: evaluator %q: record %q: render input: %w", j.identity, t.Evaluator.Name, t.Record.ID, err)}
			continue
		}
		idx = append(idx, i)
		inputs = append(inputs, in)
		tokens += in.size()/4 + 1
	}
	if len(idx) == 0 {
		return
	}
	start := time.Now()
	var items []rewardItem
	res, err := j.pool.Do(ctx, tokens, func(actx context.Context, base string) error {
		var err error
		items, err = j.request(actx, strings.TrimRight(base, "/"), inputs)
		return err
	})
	latency := time.Since(start)
	unavailable := err != nil && (errors.Is(err, pool.ErrUnavailable) || ctx.Err() != nil)
	// A request the server keeps failing with an error of its own (a 500, not an
	// overload or an outage: see scopeOf) is split too, so that one input it cannot
	// handle ends up alone; the pool being down or overloaded is not split.
	if err != nil && (!unavailable || ctx.Err() == nil && scopeOf(err) == scopeItem) && len(idx) > 1 {
		sub := make([]Task, len(idx))
		subOut := make([]Verdict, len(idx))
		for k, i := range idx {
			sub[k] = tasks[i]
		}
		half := len(sub) / 2
		var wg sync.WaitGroup
		wg.Go(func() { j.judgeChunk(ctx, sub[:half], subOut[:half]) })
		wg.Go(func() { j.judgeChunk(ctx, sub[half:], subOut[half:]) })
		wg.Wait()
		for k, i := range idx {
			subOut[k].Attempts += res.Attempts
			out[i] = subOut[k]
		}
		return
	}
	for k, i := range idx {
		t := tasks[i]
		v := Verdict{Latency: latency, Attempts: res.Attempts}
		if err != nil {
			v.Status = record.StatusJudgeError
			v.Err = fmt.Errorf("%s: evaluator %q: record %q: %w", j.identity, t.Evaluator.Name, t.Record.ID, err)
			if unavailable {
				v.Err = fmt.Errorf("%w: %w", ErrJudgeUnavailable, v.Err)
			}
			out[i] = v
			continue
		}
		out[i] = j.verdict(t, items[k], v)
	}
}

// verdict maps one item's answer onto the evaluator's task.
func (j *RewardJudge) verdict(t Task, it rewardItem, v Verdict) Verdict {
	v.Status = record.StatusOK
	v.Confidence = 1
	if t.Evaluator.Task == TaskClassification {
		if it.label == "" {
			v.Status = record.StatusJudgeError
			v.Err = fmt.Errorf("%s: api %s returns no label; evaluator %q needs one", j.identity, j.cfg.Settings.API, t.Evaluator.Name)
			return v
		}
		if len(t.Evaluator.Labels) > 0 && !slices.Contains(t.Evaluator.Labels, it.label) {
			v.Status = record.StatusParseFailure
			v.Confidence = 0
			v.Explanation = fmt.Sprintf("the classifier answered label %q, not one of %s", it.label, strings.Join(t.Evaluator.Labels, ", "))
			return v
		}
		v.Label, v.Confidence = it.label, it.prob
		if it.label == t.Evaluator.PositiveLabel {
			v.Value = 1
		}
		return v
	}
	if it.noScore != "" {
		v.Status = record.StatusJudgeError
		v.Err = fmt.Errorf("%s: evaluator %q: %s", j.identity, t.Evaluator.Name, it.noScore)
		return v
	}
	v.Value = it.score
	return v
}

// rewardInput is one item as sent: a text (input text), a [premise, hypothesis] pair
// (input pair) or a conversation (input messages).
type rewardInput struct {
	text     string
	pair     [2]string
	messages []record.Message
}

// size is the item's length in bytes, for the pool's token estimate.
func (in rewardInput) size() int {
	n := len(in.text) + len(in.pair[0]) + len(in.pair[1])
	for _, m := range in.messages {
		n += len(m.Content)
	}
	return n
}

// input builds one item from the fields its evaluator reads, as reward.input asks.
func (j *RewardJudge) input(t Task) (rewardInput, error) {
	switch j.cfg.Settings.Input {
	case RewardInputMessages:
		return rewardInput{messages: conversation(t)}, nil
	case RewardInputPair:
		return rewardInput{pair: nliPair(t)}, nil
	}
	text, err := j.render(t)
	return rewardInput{text: text}, err
}

// conversation is the chat messages of input messages: the system prompt (when read and
// set), the record's messages (or its prompt as one user turn), then the response as the
// assistant's turn. Contents are redacted as the evaluator's inputs are.
func conversation(t Task) []record.Message {
	e, r := t.Evaluator, t.Record
	var msgs []record.Message
	if slices.Contains(e.Fields, FieldSystem) && r.System != "" {
		msgs = append(msgs, record.Message{Role: "system", Content: e.redactor.Redact(r.System)})
	}
	if slices.Contains(e.Fields, FieldPrompt) || slices.Contains(e.Fields, FieldMessages) {
		if len(r.Messages) > 0 {
			for _, m := range r.Messages {
				msgs = append(msgs, record.Message{Role: m.Role, Content: e.redactor.Redact(m.Content)})
			}
		} else if r.Prompt != "" || !slices.Contains(e.Fields, FieldMessages) {
			msgs = append(msgs, record.Message{Role: "user", Content: e.redactor.Redact(r.Prompt)})
		}
	}
	return append(msgs, record.Message{Role: "assistant", Content: e.redactor.Redact(r.Response)})
}

// nliPair is the [premise, hypothesis] of input pair: the premise is every field read
// but the response, in the evaluator's order and joined by blank lines — the retrieved
// documents as they are, without the [n] numbers judges read, one per paragraph — and
// the hypothesis is the response.
func nliPair(t Task) [2]string {
	var premise []string
	var hypothesis string
	for _, in := range t.Evaluator.Inputs(t.Record) {
		switch in.Field {
		case FieldResponse:
			hypothesis = in.Text
		case FieldContext:
			for _, d := range t.Record.Context {
				premise = append(premise, t.Evaluator.redactor.Redact(d))
			}
		default:
			premise = append(premise, in.Text)
		}
	}
	return [2]string{strings.Join(premise, "\n\n"), hypothesis}
}

// render builds one item's text from the fields its evaluator reads.
func (j *RewardJudge) render(t Task) (string, error) {
	inputs := t.Evaluator.Inputs(t.Record)
	if j.tmpl != nil {
		data := make(map[string]string, len(inputs))
		for _, in := range inputs {
			data[in.Field] = in.Text
		}
		var b strings.Builder
		if err := j.tmpl.Execute(&b, data); err != nil {
			return "", err
		}
		return b.String(), nil
	}
	var parts []string
	for _, in := range inputs {
		switch in.Field {
		case FieldPrompt, FieldMessages:
			parts = append(parts, "User: "+in.Text)
		case FieldResponse:
			parts = append(parts, "Assistant: "+in.Text)
		default:
			parts = append(parts, in.Field+": "+in.Text)
		}
	}
	return strings.Join(parts, "\n\n"), nil
}

// requestBody is the path and JSON body of one request for a batch of inputs. Shapes
// (docs/configuration.md, "Reward judges"): vLLM 0.10's /pooling (PoolingRequest's
// "input", or PoolingChatRequest's "messages") and /classify, with
// "truncate_prompt_tokens"; TEI 1.5's /predict, with "truncate" and
// "truncation_direction".
func (j *RewardJudge) requestBody(inputs []rewardInput) (string, map[string]any) {
	s := j.cfg.Settings
	if s.API == RewardTEIPredict {
		// TEI reads ["a","b"] as one text pair; a batch is [["a"],["b"]] or
		// [["premise","hypothesis"], …].
		batch := make([][]string, len(inputs))
		for i, in := range inputs {
			if s.Input == RewardInputPair {
				batch[i] = []string{in.pair[0], in.pair[1]}
			} else {
				batch[i] = []string{in.text}
			}
		}
		body := map[string]any{"inputs": batch}
		if s.Truncate {
			body["truncate"] = true
			body["truncation_direction"] = map[string]string{"right": "Right", "left": "Left"}[s.TruncationDirection]
		}
		return "/predict", body
	}
	path := "/pooling"
	if s.API == RewardVLLMClassify {
		path = "/classify"
	}
	body := map[string]any{"model": j.cfg.Model}
	if s.Input == RewardInputMessages {
		// One conversation per request (max_batch is 1): vLLM renders it with the
		// model's chat template, which adds the special tokens itself.
		body["messages"] = inputs[0].messages
	} else {
		texts := make([]string, len(inputs))
		for i, in := range inputs {
			texts[i] = in.text
		}
		body["input"] = texts
	}
	if s.Truncate {
		body["truncate_prompt_tokens"] = s.TruncatePromptTokens
	}
	return path, body
}

// request makes one attempt for a batch of inputs.
func (j *RewardJudge) request(ctx context.Context, base string, inputs []rewardInput) ([]rewardItem, error) {
	path, body := j.requestBody(inputs)
	url := base + path
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	data, err := postJSON(ctx, j.client, url, b, j.header)
	if err != nil {
		return nil, err
	}
	items, err := j.decode(data, len(inputs))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", url, err, bodyExcerpt(data, openaiErrorBodyExcerpt))
	}
	return items, nil
}

// decode reads the answer of the configured API into one item per input.
func (j *RewardJudge) decode(data []byte, n int) ([]rewardItem, error) {
	items := make([]rewardItem, n)
	switch j.cfg.Settings.API {
	case RewardTEIPredict:
		var batch [][]struct {
			Label string  `json:"label"`
			Score float64 `json:"score"`
		}
		if err := json.Unmarshal(data, &batch); err != nil {
			return nil, fmt.Errorf("not a TEI predict batch answer: %w", err)
		}
		if len(batch) != n {
			return nil, fmt.Errorf("%d predictions for %d inputs", len(batch), n)
		}
		for i, preds := range batch {
			if len(preds) == 0 {
				return nil, fmt.Errorf("prediction %d is empty", i)
			}
			best := preds[0]
			for k, p := range preds {
				// TEI's scores are probabilities (softmax, or sigmoid for one label) unless
				// raw_scores is asked for, which it is not.
				if !isProbability(p.Score) {
					return nil, fmt.Errorf("prediction %d: score %d is %v, not a probability in [0,1]", i, k, p.Score)
				}
				if p.Score > best.Score {
					best = p
				}
			}
			items[i].label, items[i].prob = best.Label, best.Score
			want := j.cfg.Settings.Label
			if want == "" && len(preds) == 1 {
				want = preds[0].Label
			} else if want == "" {
				want = rewardDefaultTEILabel
			}
			found := false
			for _, p := range preds {
				if p.Label == want {
					items[i].score, found = p.Score, true
				}
			}
			if !found {
				items[i].noScore = fmt.Sprintf("the prediction has no label %q to score (set reward.label)", want)
			}
		}
	case RewardVLLMClassify:
		var resp struct {
			Data []struct {
				Index int       `json:"index"`
				Label string    `json:"label"`
				Probs []float64 `json:"probs"`
			} `json:"data"`
		}
		if err := json.Unmarshal(data, &resp); err != nil {
			return nil, fmt.Errorf("not a vLLM classify answer: %w", err)
		}
		if len(resp.Data) != n {
			return nil, fmt.Errorf("%d classifications for %d inputs", len(resp.Data), n)
		}
		seen := make([]bool, n)
		for _, d := range resp.Data {
			if d.Index < 0 || d.Index >= n || seen[d.Index] || len(d.Probs) == 0 {
				return nil, fmt.Errorf("classification with index %d (repeated or out of range) or without probabilities", d.Index)
			}
			seen[d.Index] = true
			k := len(d.Probs) - 1
			if j.cfg.Settings.LabelIndex != nil {
				k = *j.cfg.Settings.LabelIndex
			}
			if k >= len(d.Probs) {
				return nil, fmt.Errorf("label_index %d, but only %d classes", k, len(d.Probs))
			}
			for c, p := range d.Probs {
				if !isProbability(p) {
					return nil, fmt.Errorf("classification %d: probs[%d] is %v, not a probability in [0,1]", d.Index, c, p)
				}
			}
			items[d.Index] = rewardItem{score: d.Probs[k], label: d.Label, prob: slices.Max(d.Probs)}
		}
	default:
		var resp struct {
			Data []struct {
				Index int             `json:"index"`
				Data  json.RawMessage `json:"data"`
			} `json:"data"`
		}
		if err := json.Unmarshal(data, &resp); err != nil {
			return nil, fmt.Errorf("not a vLLM pooling answer: %w", err)
		}
		if len(resp.Data) != n {
			return nil, fmt.Errorf("%d pooled outputs for %d inputs", len(resp.Data), n)
		}
		seen := make([]bool, n)
		for _, d := range resp.Data {
			if d.Index < 0 || d.Index >= n || seen[d.Index] {
				return nil, fmt.Errorf("pooled output with index %d, repeated or out of range", d.Index)
			}
			seen[d.Index] = true
			v, err := lastNumber(d.Data)
			if err != nil {
				return nil, fmt.Errorf("pooled output %d: %w", d.Index, err)
			}
			items[d.Index].score = v
		}
	}
	for i, it := range items {
		if math.IsNaN(it.score) || math.IsInf(it.score, 0) {
			return nil, fmt.Errorf("item %d: score is not a finite number", i)
		}
	}
	return items, nil
}

// isProbability reports whether p is in [0,1] (false for NaN). Only what an API defines
// as a probability is checked: a pooled reward may be any finite number.
func isProbability(p float64) bool { return p >= 0 && p <= 1 }

// lastNumber returns the last number of a JSON number or (nested) array of numbers: a
// reward model's reward is its final (or only) pooled value.
func lastNumber(raw json.RawMessage) (float64, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, err
	}
	for {
		switch x := v.(type) {
		case float64:
			return x, nil
		case []any:
			if len(x) == 0 {
				return 0, errors.New("empty array")
			}
			v = x[len(x)-1]
		default:
			return 0, fmt.Errorf("%T is not a number", v)
		}
	}
}
