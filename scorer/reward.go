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
	if s.MaxBatch == 0 {
		s.MaxBatch = rewardDefaultMaxBatch
	}
	if s.MaxBatch < 1 || s.MaxBatch > rewardMaxMaxBatch {
		return fmt.Errorf("%s.reward.max_batch: %d is not in 1..%d", key, s.MaxBatch, rewardMaxMaxBatch)
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

// Identity is "reward:<model>@<api>", plus the class read and a hash of a custom input
// template.
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
	var texts []string
	tokens := 0
	for i, t := range tasks {
		text, err := j.render(t)
		if err != nil {
			out[i] = Verdict{Status: record.StatusJudgeError, Err: fmt.Errorf("%s: evaluator %q: record %q: render input: %w", j.identity, t.Evaluator.Name, t.Record.ID, err)}
			continue
		}
		idx = append(idx, i)
		texts = append(texts, text)
		tokens += len(text)/4 + 1
	}
	if len(idx) == 0 {
		return
	}
	start := time.Now()
	var items []rewardItem
	res, err := j.pool.Do(ctx, tokens, func(actx context.Context, base string) error {
		var err error
		items, err = j.request(actx, strings.TrimRight(base, "/"), texts)
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

// request makes one attempt for a batch of texts.
func (j *RewardJudge) request(ctx context.Context, base string, texts []string) ([]rewardItem, error) {
	var url string
	var body any
	switch j.cfg.Settings.API {
	case RewardTEIPredict:
		// TEI reads ["a","b"] as one text pair; a batch of single texts is [["a"],["b"]].
		batch := make([][]string, len(texts))
		for i, t := range texts {
			batch[i] = []string{t}
		}
		url, body = base+"/predict", map[string]any{"inputs": batch}
	case RewardVLLMClassify:
		url, body = base+"/classify", map[string]any{"model": j.cfg.Model, "input": texts}
	default:
		url, body = base+"/pooling", map[string]any{"model": j.cfg.Model, "input": texts}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	data, err := postJSON(ctx, j.client, url, b, j.header)
	if err != nil {
		return nil, err
	}
	items, err := j.decode(data, len(texts))
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
