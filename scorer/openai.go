package scorer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"raterd/internal/secret"
	"raterd/internal/text"
	"raterd/record"
	"raterd/scorer/format"
	"raterd/scorer/pool"
)

// OpenAIConfig configures an openai judge: one judge model served by one or more
// OpenAI-compatible chat-completions endpoints (vLLM, SGLang, TGI, llama.cpp's server,
// OpenAI itself), prompted in each evaluator's format.
type OpenAIConfig struct {
	// Model is the model name sent in every request, e.g. "prometheus-eval/prometheus-7b-v2.0".
	// Required. It is part of the judge identity ("openai:" + Model).
	Model string `yaml:"model"`
	// APIKey is an optional bearer token sent as "Authorization: Bearer …" (on health
	// probes too); usually set through the environment override
	// (RATERD_JUDGE_<NAME>_API_KEY, JudgeAPIKeyEnv) or APIKeyFile rather than in the file.
	// Never logged, redacted in any print of the config. Default: none.
	APIKey secret.Secret `yaml:"api_key"`
	// APIKeyFile is a file that holds the API key (a mounted Kubernetes secret; one
	// trailing newline is dropped), read by Validate into APIKey. Not with APIKey.
	APIKeyFile string `yaml:"api_key_file"`
	// Headers are extra headers of every request and health probe, name → value (an
	// API gateway's key, Authorization of another scheme). Values are secrets: redacted in
	// any print of the config. Names are HTTP tokens; not Content-Type, Content-Length,
	// Host, Connection or Transfer-Encoding, and not Authorization together with APIKey.
	// Default: none.
	Headers map[string]secret.Secret `yaml:"headers"`
	// TLS is TLS to https endpoints: a private CA, a client certificate (reloaded when
	// its files change), a server name, a minimum version. Default: Go's TLS, verified
	// against the system roots.
	TLS *JudgeTLSConfig `yaml:"tls"`
	// MaxTokens is the max_tokens of each request: the longest answer the judge may write.
	// Default 512.
	MaxTokens int `yaml:"max_tokens"`
	// Logprobs asks the endpoint for the log-probabilities of the answer's tokens, so a
	// pointwise score becomes the probability-weighted mean over the scale (G-Eval style)
	// and labels and preferences carry their probability. Default false.
	Logprobs bool `yaml:"logprobs"`
	// TopLogprobs is how many alternatives per token the endpoint returns with Logprobs.
	// Default 20 (the OpenAI API's maximum); 1..20.
	TopLogprobs int `yaml:"top_logprobs"`
	// FormatReminder: an answer that does not parse is asked again once, with the answer
	// and a reminder of the output format appended (true), or as the same request (false).
	// Default true.
	FormatReminder *bool `yaml:"format_reminder"`
	// GuidedDecoding sends each evaluator's output grammar (its format's guide) with every
	// request, in the dialect of the server, so that the judge can only write answers
	// that parse: "vllm" (structured_outputs.regex, vLLM 0.12 and later), "vllm-legacy"
	// (guided_regex, vLLM before 0.12), "sglang" (regex), "llama.cpp" (grammar, GBNF).
	// Default "" (none): OpenAI's API and other servers refuse unknown request fields,
	// and the dialect is the server's, so raterd cannot choose it. An evaluator's guided:
	// false opts out.
	GuidedDecoding string `yaml:"guided_decoding"`
	// GuidedExplanationChars bounds the explanation a guided answer may write, in
	// characters. Default 1000; 1..16384. Keep it under max_tokens: an answer cut off by
	// max_tokens does not parse.
	GuidedExplanationChars int `yaml:"guided_explanation_chars"`
	// Config is the pool: endpoints or dns, concurrency, timeout, deadline, max_attempts,
	// breaker, rate_limit (see package scorer/pool).
	pool.Config `yaml:",inline"`
}

// Defaults and bounds of OpenAIConfig.
const (
	openaiDefaultMaxTokens   = 512
	openaiMaxMaxTokens       = 1 << 20
	openaiDefaultTopLogprobs = 20
	// openaiDefaultGuidedChars is the default GuidedExplanationChars: room for the "one
	// short paragraph" the formats ask for.
	openaiDefaultGuidedChars = 1000
)

// Dialects of OpenAIConfig.GuidedDecoding.
const (
	GuidedVLLM       = "vllm"
	GuidedVLLMLegacy = "vllm-legacy"
	GuidedSGLang     = "sglang"
	GuidedLlamaCpp   = "llama.cpp"
)

// guidedDialects lists the GuidedDecoding values, for errors.
func guidedDialects() []string {
	return []string{GuidedVLLM, GuidedVLLMLegacy, GuidedSGLang, GuidedLlamaCpp}
}

// Validate fills defaults and rejects bad values. key is the config path of this judge,
// e.g. "judges.pool-a"; errors name the full key of the bad value.
func (c *OpenAIConfig) Validate(key string) error {
	if strings.TrimSpace(c.Model) == "" {
		return fmt.Errorf("%s.model: required", key)
	}
	if err := c.Config.Validate(key); err != nil {
		return err
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = openaiDefaultMaxTokens
	}
	if c.MaxTokens < 0 || c.MaxTokens > openaiMaxMaxTokens {
		return fmt.Errorf("%s.max_tokens: %d is not in 1..%d", key, c.MaxTokens, openaiMaxMaxTokens)
	}
	if c.TopLogprobs == 0 {
		c.TopLogprobs = openaiDefaultTopLogprobs
	}
	if c.TopLogprobs < 1 || c.TopLogprobs > 20 {
		return fmt.Errorf("%s.top_logprobs: %d is not in 1..20", key, c.TopLogprobs)
	}
	if c.FormatReminder == nil {
		t := true
		c.FormatReminder = &t
	}
	if c.GuidedDecoding != "" && !slices.Contains(guidedDialects(), c.GuidedDecoding) {
		return fmt.Errorf("%s.guided_decoding: %q is not one of %s", key, c.GuidedDecoding, strings.Join(guidedDialects(), ", "))
	}
	if c.GuidedExplanationChars == 0 {
		c.GuidedExplanationChars = openaiDefaultGuidedChars
	}
	if c.GuidedExplanationChars < 1 || c.GuidedExplanationChars > format.MaxGuidedExplanation {
		return fmt.Errorf("%s.guided_explanation_chars: %d is not in 1..%d", key, c.GuidedExplanationChars, format.MaxGuidedExplanation)
	}
	return c.validateAccess(key)
}

// ErrUnparseable marks a judge answer that does not follow the output grammar.
var ErrUnparseable = format.ErrUnparseable

// Bounds on what the judge reads back and keeps.
const (
	openaiMaxResponseBytes = 4 << 20 // a chat completion is a few KiB; more is a broken server
	openaiErrorBodyExcerpt = 200     // bytes of an error body quoted in Verdict.Err
	openaiAnswerExcerpt    = 512     // bytes of an unparseable answer kept in Explanation
	// openaiMinSenders and openaiMaxSenders clamp how many tasks one judge has started
	// at once, over every Judge call (see senderBound); the pool's in-flight limits
	// decide how many requests are actually sent.
	openaiMinSenders = 64
	openaiMaxSenders = 16384
	// openaiDNSSenders is the bound for a pool that discovers its endpoints by DNS, whose
	// number is not known at start.
	openaiDNSSenders = 4096
)

// senderBound is how many tasks a judge keeps started at once across all its Judge
// calls: enough to hold every endpoint at its in-flight ceiling (so the pool, not this
// bound, decides what is sent), and no more, because each started task is a goroutine
// waiting in the pool.
func senderBound(cfg pool.Config) int64 {
	n := 0
	for _, e := range cfg.Endpoints {
		n += max(e.MaxInFlight, pool.DefaultMaxInFlight)
	}
	if cfg.DNS != nil {
		n = max(n, openaiDNSSenders)
	}
	return int64(min(max(n, openaiMinSenders), openaiMaxSenders))
}

// OpenAIJudge asks a judge model served behind OpenAI-compatible chat-completions endpoints
// for pointwise, classification and pairwise verdicts, in the prompt format each
// evaluator names. Requests go through a pool (routing, adaptive concurrency, retries,
// circuit breaking). It is safe for concurrent use.
type OpenAIJudge struct {
	cfg    OpenAIConfig
	pool   *pool.Pool
	client *http.Client
	header http.Header // api key and configured headers of every request
	logger *slog.Logger
	// senders bounds the tasks started at once over every Judge call and starts them in
	// the order the calls came, so batches stream through the pool instead of each
	// waiting for its own slowest task.
	senders *senders
	// mUnused counts verdicts of a logprobs judge made without usable logprobs, by reason.
	mUnused metric.Int64Counter
}

// NewOpenAIJudge returns a judge for cfg and starts its pool (Close stops it). cfg should
// have passed Validate(set.Key); it is validated again under set.Key (required), so that a
// caller that did not validate still gets the defaults and errors name the keys of the
// config file. A nil set.HTTPClient gets a pooled transport; unset set.Telemetry fields
// get telemetry.Settings.WithDefaults.
func NewOpenAIJudge(cfg OpenAIConfig, set JudgeSettings) (*OpenAIJudge, error) {
	if set.Key == "" {
		return nil, fmt.Errorf("scorer: NewOpenAIJudge: %w", errNoKey)
	}
	cfg.Endpoints = append([]pool.Endpoint(nil), cfg.Endpoints...)
	if err := cfg.Validate(set.Key); err != nil {
		return nil, err
	}
	tel := set.Telemetry.WithDefaults()
	client, header, err := judgeAccess(set.Key, set.HTTPClient, cfg.Config, cfg.APIKey, cfg.Headers, cfg.TLS, tel.Logger)
	if err != nil {
		return nil, err
	}
	j := &OpenAIJudge{cfg: cfg, client: client, header: header, logger: tel.Logger,
		senders: newSenders(senderBound(cfg.Config))}
	j.mUnused, err = tel.MeterProvider.Meter("raterd/scorer").Int64Counter("raterd.judge.logprobs.unused",
		metric.WithDescription("verdicts of a logprobs judge scored without usable logprobs (stored under the judge's plain identity), by judge and reason: missing, misaligned, invalid, ambiguous, no_alternative"))
	if err != nil {
		return nil, fmt.Errorf("%s: metrics: %w", j.Identity(), err)
	}
	p, err := pool.New(cfg.Config, pool.Options{
		Key: set.Key, Name: j.Identity(), DefaultHealthPath: "models", Client: client, Telemetry: tel,
		ProbeHeader: header,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", j.Identity(), err)
	}
	j.pool = p
	return j, nil
}

// Identity is "openai:" + the model name, plus "+logprobs" when scores are
// probability-weighted: the two kinds of score must never share cache entries or look
// alike in storage.
func (j *OpenAIJudge) Identity() string {
	if j.cfg.Logprobs {
		return "openai:" + j.cfg.Model + "+logprobs"
	}
	return "openai:" + j.cfg.Model
}

// plainIdentity is the identity of a verdict scored without logprobs: "openai:" + model.
func (j *OpenAIJudge) plainIdentity() string { return "openai:" + j.cfg.Model }

// withoutLogprobs marks a verdict of a logprobs judge that its logprobs did not shape
// (see lpStatus): the row gets the plain identity, never "+logprobs", and the reason is
// counted. A verdict of a judge without logprobs, or one they shaped, is left alone.
func (j *OpenAIJudge) withoutLogprobs(ctx context.Context, v Verdict, st lpStatus) Verdict {
	if !j.cfg.Logprobs || st == lpUsed || v.Status != record.StatusOK {
		return v
	}
	v.Judge = j.plainIdentity()
	j.mUnused.Add(ctx, 1, metric.WithAttributes(attribute.String("judge", j.Identity()), attribute.String("reason", st.reason())))
	return v
}

// Close drains the pool: new calls fail, requests in flight finish until ctx ends.
func (j *OpenAIJudge) Close(ctx context.Context) error { return j.pool.Close(ctx) }

// PoolStats reports each endpoint's in-flight count, limit and breaker state.
func (j *OpenAIJudge) PoolStats() []pool.EndpointStats { return j.pool.Stats() }

// Judge judges every task concurrently (pairwise tasks as two requests, one per order)
// and returns one verdict per task in order. The error is non-nil only when ctx ended
// before every task was judged; the verdicts of the unfinished tasks then carry the
// context error.
func (j *OpenAIJudge) Judge(ctx context.Context, tasks []Task) ([]Verdict, error) {
	return judgeConcurrently(ctx, j.Identity(), j.senders, tasks, j.judgeOne)
}

// senders bounds the tasks one judge has started at once over all its Judge calls, and
// starts them in the order the calls came: a call feeds all its tasks before the next
// call feeds any, so an older batch is never overtaken by a newer one waiting for the
// same room, and calls overlap: the next batch's tasks start the moment this batch's
// tasks free room, never after this batch's slowest task.
type senders struct {
	turn chan struct{}       // held by the call feeding its tasks; waiting senders queue FIFO
	room *semaphore.Weighted // one unit per started task
}

func newSenders(n int64) *senders {
	return &senders{turn: make(chan struct{}, 1), room: semaphore.NewWeighted(n)}
}

// judgeConcurrently starts one goroutine per task as snd admits it, and applies the
// Judge contract when ctx ends early.
func judgeConcurrently(ctx context.Context, identity string, snd *senders, tasks []Task, one func(context.Context, Task) Verdict) ([]Verdict, error) {
	verdicts := make([]Verdict, len(tasks))
	if len(tasks) == 0 {
		return verdicts, nil
	}
	var wg sync.WaitGroup
	fed := 0
	select {
	case snd.turn <- struct{}{}:
		for ; fed < len(tasks); fed++ {
			if snd.room.Acquire(ctx, 1) != nil {
				break
			}
			i := fed // fed is shared by the loop; each goroutine needs its own index
			wg.Go(func() {
				defer snd.room.Release(1)
				verdicts[i] = one(ctx, tasks[i])
			})
		}
		<-snd.turn
	case <-ctx.Done():
	}
	wg.Wait()
	if ctx.Err() == nil {
		return verdicts, nil
	}
	cause := context.Cause(ctx)
	cut := fed < len(tasks)
	for i := fed; i < len(tasks); i++ {
		verdicts[i] = Verdict{Status: record.StatusJudgeError, Err: fmt.Errorf("%s: not judged: %w", identity, cause)}
	}
	for _, v := range verdicts[:fed] {
		cut = cut || (v.Err != nil && errors.Is(v.Err, cause))
	}
	if !cut { // ctx ended after the last task was judged
		return verdicts, nil
	}
	return verdicts, fmt.Errorf("%s: %w", identity, cause)
}

// formatSpec is what a format needs to know about one task.
func formatSpec(e *Evaluator, r *record.Record, swap bool) format.Spec {
	s := format.Spec{
		Task:     e.Task,
		Criteria: strings.TrimSpace(e.Criteria),
		Min:      int(e.Scale.Min),
		Max:      int(e.Scale.Max),
		Levels:   e.Levels,
		Labels:   e.Labels,
		Swap:     swap,
	}
	for _, in := range e.Inputs(r) {
		s.Inputs = append(s.Inputs, format.Input{Field: in.Field, Text: in.Text})
	}
	return s
}

// judgeOne judges one task: one request (two for pairwise), each retried once when its
// answer does not parse.
func (j *OpenAIJudge) judgeOne(ctx context.Context, t Task) Verdict {
	start := time.Now()
	v := j.judgeTask(ctx, t)
	v.Latency = time.Since(start)
	if v.Err != nil {
		v.Status = record.StatusJudgeError
		v.Confidence = 0
	}
	return v
}

func (j *OpenAIJudge) judgeTask(ctx context.Context, t Task) Verdict {
	if t.Evaluator == nil || t.Record == nil {
		return Verdict{Err: fmt.Errorf("%s: task without evaluator or record", j.Identity())}
	}
	e := t.Evaluator
	if g := e.guardFamily(); g != nil {
		return j.judgeGuard(ctx, t, g)
	}
	f, err := format.Lookup(e.Format)
	if err != nil {
		return Verdict{Err: fmt.Errorf("%s: evaluator %q: %w", j.Identity(), e.Name, err)}
	}
	if e.Task != TaskPairwise {
		a := j.ask(ctx, f, formatSpec(e, t.Record, false), e)
		v, st := j.verdictOf(t, a)
		return j.withoutLogprobs(ctx, v, st)
	}
	// Pairwise: both orders at once, so position bias shows and cancels out.
	var ab, ba answer
	var wg sync.WaitGroup
	wg.Go(func() { ab = j.ask(ctx, f, formatSpec(e, t.Record, false), e) })
	wg.Go(func() { ba = j.ask(ctx, f, formatSpec(e, t.Record, true), e) })
	wg.Wait()
	st := ab.lp
	if st == lpUsed {
		st = ba.lp
	}
	return j.withoutLogprobs(ctx, j.pairwiseVerdict(t, ab, ba), st)
}

// answer is the outcome of asking one prompt: a parsed result, or a parse failure, or an
// error.
type answer struct {
	parsed   format.Parsed
	probs    map[string]float64 // probability of each choice (see readLogprobs); nil without logprobs
	resultP  float64            // probability of the result as written, in [0,1]; valid when hasP
	hasP     bool               // resultP was read from the logprobs
	lp       lpStatus           // what became of the logprobs
	text     string             // the last answer text
	parseErr error
	err      error
	attempts int
}

// ask sends one prompt, its system message as e.System says (format.SystemNative or
// SystemFold) and constrained by the format's guide when the judge decodes guided and e
// does not opt out, and parses the answer, asking once more when it does not parse.
func (j *OpenAIJudge) ask(ctx context.Context, f *format.Format, spec format.Spec, e *Evaluator) answer {
	prompt, err := f.Render(spec)
	if err != nil {
		return answer{err: fmt.Errorf("render prompt: %w", err)}
	}
	var guide *format.Guide
	if j.cfg.GuidedDecoding != "" && e.GuidedOn() {
		g, err := f.Guide(spec, j.cfg.GuidedExplanationChars)
		if err != nil {
			return answer{err: fmt.Errorf("guide: %w", err)}
		}
		guide = &g
	}
	system := e.System
	var msgs []openaiChatMessage
	for _, m := range prompt.Messages(system) {
		msgs = append(msgs, openaiChatMessage{Role: m.Role, Content: m.Content})
	}
	var a answer
	for try := 1; try <= 2; try++ {
		text, lp, attempts, err := j.complete(ctx, msgs, guide)
		a.attempts += attempts
		if err != nil {
			if a.parseErr != nil && !isUnavailable(ctx, err) {
				// The reminder was refused (say, over the context length): the answer
				// we have did not parse, and that is what the row says.
				return a
			}
			a.err = err
			return a
		}
		a.text = text
		parsed, perr := f.Parse(spec, text)
		if perr == nil {
			a.parsed, a.parseErr = parsed, nil
			a.probs, a.resultP, a.hasP, a.lp = nil, 0, false, lpNotAsked
			if j.cfg.Logprobs {
				a.probs, a.resultP, a.hasP, a.lp = readLogprobs(lp, text, parsed, spec)
			}
			return a
		}
		a.parseErr = perr
		if *j.cfg.FormatReminder {
			msgs = append(msgs,
				openaiChatMessage{Role: "assistant", Content: text},
				openaiChatMessage{Role: "user", Content: f.Reminder(spec, perr)})
		}
	}
	return a
}

// verdictOf turns a pointwise or classification answer into a verdict, and says whether
// the logprobs shaped it: a pointwise score is weighted only by a distribution
// readLogprobs could read in full (lpUsed); otherwise it is the integer written.
func (j *OpenAIJudge) verdictOf(t Task, a answer) (Verdict, lpStatus) {
	v := Verdict{Attempts: a.attempts}
	if a.err != nil {
		v.Err = j.taskError(t, a.err)
		return v, a.lp
	}
	if a.parseErr != nil {
		return parseFailure(v, a), a.lp
	}
	e := t.Evaluator
	v.Status = record.StatusOK
	v.Explanation = a.parsed.Explanation
	v.Confidence = 1 // without logprobs the answer is all there is
	if a.hasP {
		v.Confidence = a.resultP // may be 0: a result the judge gave almost no chance
	}
	switch e.Task {
	case TaskClassification:
		v.Label = a.parsed.Result
		if v.Label == e.PositiveLabel {
			v.Value = 1
		}
	default:
		n, err := parseInt(a.parsed.Result)
		if err != nil { // the format accepted it, so this is a bug; never invent a score
			return parseFailure(v, answer{text: a.text, parseErr: err}), a.lp
		}
		v.Value = float64(n)
		if a.lp != lpUsed {
			break
		}
		if mean, ok := weightedMean(a.probs); ok {
			// A mean of on-scale integers is on the scale, but its floating-point sum can
			// overshoot an end by an ulp (5.000000000000001): keep it in range.
			v.Value = min(max(mean, e.Scale.Min), e.Scale.Max)
		} else {
			return v, lpNoAlternative
		}
	}
	return v, a.lp
}

// pairwiseVerdict combines the two orders into the debiased preference for the record's
// response (the first candidate): the mean of P(response preferred) over both orders.
// Label says whether the orders agreed: "first" or "second" when both prefer the same
// answer, "inconsistent" when each order prefers the answer in the same position.
// Confidence is 1 − |difference between the two orders' preferences|.
func (j *OpenAIJudge) pairwiseVerdict(t Task, ab, ba answer) Verdict {
	v := Verdict{Attempts: ab.attempts + ba.attempts}
	for _, a := range []answer{ab, ba} {
		if a.err != nil {
			v.Err = j.taskError(t, a.err)
			return v
		}
	}
	for _, a := range []answer{ab, ba} {
		if a.parseErr != nil {
			return parseFailure(v, a)
		}
	}
	// In ab the response is A; in ba it is B.
	p1 := preferenceForA(ab)
	p2 := 1 - preferenceForA(ba)
	v.Status = record.StatusOK
	v.Value = (p1 + p2) / 2
	v.Confidence = 1 - math.Abs(p1-p2)
	switch {
	case p1 > 0.5 && p2 > 0.5:
		v.Label = "first"
	case p1 < 0.5 && p2 < 0.5:
		v.Label = "second"
	default:
		v.Label = "inconsistent"
	}
	v.Explanation = "response as A: " + ab.parsed.Explanation + "\nresponse as B: " + ba.parsed.Explanation
	return v
}

// preferenceForA is P(A) from the logprobs at the result token, else 1 or 0.
func preferenceForA(a answer) float64 {
	pa, pb := a.probs["A"], a.probs["B"]
	if pa+pb > 0 {
		return pa / (pa + pb)
	}
	if a.parsed.Result == "A" {
		return 1
	}
	return 0
}

// parseFailure is the verdict of an answer that did not parse even when asked again: a
// counted failure with the answer's start kept, never a made-up score.
func parseFailure(v Verdict, a answer) Verdict {
	v.Status = record.StatusParseFailure
	v.Value, v.Label, v.Confidence = 0, "", 0
	v.Explanation = a.parseErr.Error() + "; answer: " + truncateUTF8(strings.TrimSpace(a.text), openaiAnswerExcerpt)
	return v
}

// isUnavailable reports whether a failed request says nothing of the answer: the pool
// could not answer now, or ctx ended.
func isUnavailable(ctx context.Context, err error) bool {
	return errors.Is(err, pool.ErrUnavailable) || ctx.Err() != nil
}

// taskError wraps a failed request; a pool that could not answer now marks the batch
// for a later retry (ErrJudgeUnavailable) instead of storing a failure row.
func (j *OpenAIJudge) taskError(t Task, err error) error {
	err = fmt.Errorf("%s: evaluator %q: record %q: %w", j.Identity(), t.Evaluator.Name, t.Record.ID, err)
	if errors.Is(err, pool.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrJudgeUnavailable, err)
	}
	return err
}

// openaiChatRequest is the request body of POST /chat/completions.
type openaiChatRequest struct {
	Model       string              `json:"model"`
	Messages    []openaiChatMessage `json:"messages"`
	Temperature float64             `json:"temperature"` // always sent: 0, greedy decoding
	MaxTokens   int                 `json:"max_tokens"`
	N           int                 `json:"n"`
	Stream      bool                `json:"stream"`
	Logprobs    bool                `json:"logprobs,omitempty"`
	TopLogprobs int                 `json:"top_logprobs,omitempty"`
	// Guided decoding, one of them per GuidedDecoding's dialect.
	StructuredOutputs *openaiStructuredOutputs `json:"structured_outputs,omitempty"` // vllm
	GuidedRegex       string                   `json:"guided_regex,omitempty"`       // vllm-legacy
	Regex             string                   `json:"regex,omitempty"`              // sglang
	Grammar           string                   `json:"grammar,omitempty"`            // llama.cpp
	// ChatTemplateKwargs are keyword arguments of the server's chat template (vLLM,
	// SGLang and llama.cpp read them): a guard's guardian_config. Omitted when nil.
	ChatTemplateKwargs map[string]any `json:"chat_template_kwargs,omitempty"`
}

// openaiStructuredOutputs is vLLM's structured_outputs request field.
type openaiStructuredOutputs struct {
	Regex string `json:"regex"`
}

// guide puts g into the request in the dialect's field.
func (r *openaiChatRequest) guide(dialect string, g *format.Guide) {
	if g == nil {
		return
	}
	switch dialect {
	case GuidedVLLM:
		r.StructuredOutputs = &openaiStructuredOutputs{Regex: g.Regex}
	case GuidedVLLMLegacy:
		r.GuidedRegex = g.Regex
	case GuidedSGLang:
		r.Regex = g.Regex
	case GuidedLlamaCpp:
		r.Grammar = g.GBNF
	}
}

type openaiChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// openaiTokenLogprob is one answer token with its log-probability and the alternatives.
type openaiTokenLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	// Bytes is the token's UTF-8 bytes (OpenAI's "bytes"), which spell the answer when
	// the token strings do not (byte-fallback tokens); nil when not sent.
	Bytes       []int `json:"bytes,omitempty"`
	TopLogprobs []struct {
		Token   string  `json:"token"`
		Logprob float64 `json:"logprob"`
	} `json:"top_logprobs"`
}

type openaiChatResponse struct {
	Choices []struct {
		Message struct {
			Content *string `json:"content"`
		} `json:"message"`
		Logprobs *struct {
			Content []openaiTokenLogprob `json:"content"`
		} `json:"logprobs"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
}

// complete sends one chat-completions request through the pool, constrained by guide
// when it is not nil, and returns the answer text, its token logprobs (nil when not
// asked for or not returned) and the attempts made.
func (j *OpenAIJudge) complete(ctx context.Context, msgs []openaiChatMessage, guide *format.Guide) (string, []openaiTokenLogprob, int, error) {
	return j.completeWith(ctx, msgs, guide, nil)
}

// completeWith is complete with the chat template's keyword arguments (a guard's
// guardian_config), sent as chat_template_kwargs when not nil.
func (j *OpenAIJudge) completeWith(ctx context.Context, msgs []openaiChatMessage, guide *format.Guide, kwargs map[string]any) (string, []openaiTokenLogprob, int, error) {
	req := openaiChatRequest{Model: j.cfg.Model, Messages: msgs, Temperature: 0, MaxTokens: j.cfg.MaxTokens, N: 1, ChatTemplateKwargs: kwargs}
	req.guide(j.cfg.GuidedDecoding, guide)
	if j.cfg.Logprobs {
		req.Logprobs, req.TopLogprobs = true, j.cfg.TopLogprobs
	}
	body, err := json.Marshal(req)
	if err != nil {
		return "", nil, 0, fmt.Errorf("encode request: %w", err)
	}
	// The rate limit counts the request (≈ bytes/4) and the longest answer allowed.
	tokens := len(body)/4 + j.cfg.MaxTokens
	var text string
	var lp []openaiTokenLogprob
	res, err := j.pool.Do(ctx, tokens, func(actx context.Context, base string) error {
		var err error
		text, lp, err = j.post(actx, strings.TrimRight(base, "/")+"/chat/completions", body)
		return err
	})
	return text, lp, res.Attempts, err
}

// post makes one attempt. Non-2xx answers become pool.StatusError, which the pool
// classifies as retryable or not.
func (j *OpenAIJudge) post(ctx context.Context, url string, body []byte) (string, []openaiTokenLogprob, error) {
	data, err := postJSON(ctx, j.client, url, body, j.header)
	if err != nil {
		return "", nil, err
	}
	var cr openaiChatResponse
	if err := json.Unmarshal(data, &cr); err != nil {
		return "", nil, fmt.Errorf("%s: response is not a chat completion: %w: %s", url, err, bodyExcerpt(data, openaiErrorBodyExcerpt))
	}
	if len(cr.Choices) == 0 {
		return "", nil, fmt.Errorf("%s: response has no choices: %s", url, bodyExcerpt(data, openaiErrorBodyExcerpt))
	}
	var lp []openaiTokenLogprob
	if l := cr.Choices[0].Logprobs; l != nil {
		lp = l.Content
	}
	if c := cr.Choices[0].Message.Content; c != nil {
		return *c, lp, nil
	}
	return "", nil, nil // an empty answer is the judge's answer: a parse failure, not a transport error
}

// postJSON POSTs a JSON body with header (the judge's API key and headers; may be nil)
// and returns the 2xx response body (bounded); a non-2xx answer is a pool.StatusError.
func postJSON(ctx context.Context, client *http.Client, url string, body []byte, header http.Header) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request for %s: %w", url, err)
	}
	for name, v := range header {
		req.Header[name] = v
	}
	req.Header.Set("Content-Type", "application/json")
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "raterd")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, openaiMaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read response: %w", url, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%s: %w", url, pool.StatusError(resp.StatusCode, resp.Header, data))
	}
	if len(data) > openaiMaxResponseBytes {
		return nil, fmt.Errorf("%s: response body over %d bytes", url, openaiMaxResponseBytes)
	}
	return data, nil
}

// openaiMassTolerance is how far above 1 the alternatives' probabilities may add up
// before they are not taken as a distribution: room for logprobs rounded by the server.
const openaiMassTolerance = 1e-3

// logprobP is the probability a token logprob stands for, in [0,1]. A logprob above 0
// (a probability above 1, which no correct server sends) is read as 0, i.e. certain;
// a very negative one (vLLM's −9999 for −inf) gives 0. ok is false for NaN.
func logprobP(logprob float64) (float64, bool) {
	if math.IsNaN(logprob) {
		return 0, false
	}
	return math.Exp(min(logprob, 0)), true
}

// weightedMean is Σ p·v / Σ p over numeric choices (G-Eval's probability-weighted score).
// It sums in the choices' sorted order: map order is random, and floating-point sums
// in another order can differ in the last bit, so the same answer would score
// differently from one judging to the next.
func weightedMean(probs map[string]float64) (float64, bool) {
	var sum, mass float64
	for _, c := range slices.Sorted(maps.Keys(probs)) {
		p := probs[c]
		n, err := parseInt(c)
		if err != nil {
			continue
		}
		sum += p * float64(n)
		mass += p
	}
	if mass <= 0 {
		return 0, false
	}
	return sum / mass, true
}

// parseInt reads an optional '-' and up to 18 ASCII digits.
func parseInt(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	d := strings.TrimPrefix(s, "-")
	if d == "" || len(d) > 18 {
		return 0, fmt.Errorf("%w: %q is not an integer", ErrUnparseable, truncateUTF8(s, 40))
	}
	var n int64
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, fmt.Errorf("%w: %q is not an integer", ErrUnparseable, truncateUTF8(s, 40))
		}
		n = n*10 + int64(d[i]-'0')
	}
	if neg {
		n = -n
	}
	return n, nil
}

// bodyExcerpt quotes the start of a response body, valid UTF-8 on one line: at most n
// bytes, then "…" where it was cut.
func bodyExcerpt(b []byte, n int) string {
	s := text.OneLine(string(b))
	if s == "" {
		return "(empty body)"
	}
	return text.ClipMarkedAfter(s, n, text.Ellipsis)
}

// truncateUTF8 replaces invalid UTF-8 in s and cuts it to at most n bytes on a rune
// boundary, then "…" where it was cut.
func truncateUTF8(s string, n int) string {
	return text.ClipMarkedAfter(strings.ToValidUTF8(s, "\uFFFD"), n, text.Ellipsis)
}
