// Package judgesim is a GPU scoring-pool SIMULATOR: an HTTP server that speaks the APIs
// of vLLM (and Hugging Face TEI) serving a judge or reward model, but runs no model. It
// stands in for the GPU pool in tests, demos and benchmarks wherever no GPU is present.
// cmd/judgesim serves it as a binary; raterd's demo and tests run it in-process (it is an
// http.Handler).
//
// # Endpoints
//
//	POST /v1/chat/completions   OpenAI chat completions (logprobs, top_logprobs, max_tokens)
//	POST /pooling               vLLM pooling: one reward per input
//	POST /classify              vLLM classify: class probabilities per input
//	POST /predict               TEI predict: [{label, score}] per input
//	GET  /v1/models, /health, /healthz, /stats (Stats as JSON)
//	GET, POST /admin/faults     read or change the fault injection at run time (Faults as JSON)
//
// # Latency model
//
// One scheduler goroutine runs decode steps like vLLM's continuous batching. At most
// MaxSeqs sequences run at once; further sequences wait in a FIFO queue of at most
// QueueLimit sequences, and a request that would overflow it is answered 429 at once. A
// chat request is one sequence; a reward request (/pooling, /classify, /predict) is one
// sequence per input item, admitted all or none.
//
// Sequences that arrive during a step join the batch at the next step. A step takes
//
//	step = StepBase + StepPerSeq × running + PrefillPerToken × (prompt tokens of the sequences joining at this step)
//
// where running is the batch size during the step, joining sequences included. Every
// running sequence emits one token per step (prefill emits the first), so a sequence
// needs as many steps as it has completion tokens: the answer's bytes/4, at least 1; a
// reward item needs one step. Tokens are estimated as bytes/4 throughout.
//
// So a request with p prompt tokens and c completion tokens, in a batch of n sequences
// (itself included) that nothing else joins while it runs, has the service time
//
//	ServiceTime(p, c, n) = p × PrefillPerToken + c × (StepBase + StepPerSeq × n)
//
// Under saturation the batch stays full (n = MaxSeqs) and a prefill stalls the whole
// batch, so each request also waits out the prefills of the about MaxSeqs requests
// admitted during its life; with every request alike the simulator completes
//
//	Capacity(p, c) = MaxSeqs / (MaxSeqs × p × PrefillPerToken + c × (StepBase + StepPerSeq × MaxSeqs))
//
// requests per second. With the defaults (32 sequences, 8ms + 0.25ms per sequence, 20µs
// per prompt token), a request with a 500-token prompt and a 40-token answer takes
// ServiceTime(500, 40, 1) = 10ms + 40×8.25ms = 340ms alone and
// ServiceTime(500, 40, 32) = 10ms + 40×16ms = 650ms in a full batch, plus up to 31×10ms
// of other requests' prefills under saturation, where the simulator completes
// 32 / (32×10ms + 40×16ms) ≈ 33 requests per second. A batch of 32 reward items of 500
// tokens costs one step: 8ms + 8ms + 320ms.
//
// # vLLM engine model
//
// Config's engine fields (KVCacheTokens, MaxBatchedTokens, PrefixCaching, Speed and the
// Answer* lengths) are off at their zero values, which keep the model above exactly.
// Switched on — ProfileConfig("vllm-h100-8b") sets them all — a step first gives one
// token to every decoding sequence (preempting the newest block holder when no KV
// block is free), then fills MaxBatchedTokens with prefill chunks, shares cached
// prompt blocks, and takes (StepBase + StepPerSeq × sequences emitting +
// PrefillPerToken × prefill tokens computed) / Speed. The same logic runs in virtual
// time in SimulateVirtual. docs/judgesim.md describes it, the profiles and their
// calibration against a published vLLM figure (CalibrationSource).
//
// The step time is slept (a timer per step, never a busy loop; an idle scheduler blocks on
// a channel), steps are scheduled on deadlines so timer overshoot does not erode
// throughput, and the durations reported — the X-Judgesim-Service-Time header, BusyTime,
// BusySeqTime — are the model's, not measured: they are exact and deterministic for a
// given batch composition. Each 200 answer carries
//
//	X-Judgesim-Queue-Time     arrival until the start of the request's first step (measured)
//	X-Judgesim-Service-Time   the summed durations of the steps the request ran in (modelled)
//
// as Go duration strings, so a client can separate server queueing from service.
// Utilization(stats, wall) is BusySeqTime / (MaxSeqs × wall).
//
// # Answers
//
// Answers are deterministic: the same request content always gets the same answer. The
// simulator detects the prompt format and the task from the user message — raterd's
// unified FLAMe-style format ("flame", judged text in <<<NAME>>> blocks, output format
// last), Prometheus 2 ("###Feedback:", "[RESULT]"), Atla Selene ("**Result:**") and
// Patronus AI's Lynx (QUESTION/DOCUMENT/ANSWER, a JSON answer) — reads
// the scale or labels, finds the judged text, and scores it with simple quality signals:
// empty or very short text and refusals score low, long and lexically varied text
// scores high, plus a stable hash of the content for spread. Classification picks the
// first label for high quality and later ones for lower; pairwise prefers the
// higher-quality response, except for a share PositionBias of contents that get "A"
// regardless. The answer depends on the judge prompt alone: in a conversation, the last
// user message that holds judged text (so a format reminder after a bad answer gets the
// verdict of the original prompt). With logprobs the answer's tokens come with
// OpenAI-shaped log-probabilities; the result is one token (with the space before it)
// whose alternatives spread probability over the neighbouring valid results.
//
// The reward endpoints score each input with the same quality signals (the text after
// the last "Assistant:" turn, or the second text of a TEI pair): /pooling returns a
// reward in [-5,5], /classify and /predict probabilities over ClassifyLabels peaked at
// the label matching the quality, worst first. /predict reads "inputs" as TEI does: a
// string or an array of one string is one input, an array of two strings is one pair,
// and a batch is an array of arrays.
//
// # Faults
//
// ErrorRate (HTTP 500), SlowRate (the decode steps multiplied by SlowFactor), HangRate
// (no answer until the client leaves) and MalformedRate (HTTP 200 with an answer outside
// the output grammar) each pick a share of requests. The pick is deterministic: the k-th
// request with the same content always gets the same fate, so a client's retry may
// succeed, as with a real flaky server. Hang makes every request, health checks
// included, hang until the client leaves or Hang is switched off. PositionBias makes a
// share of pairwise answers "A" (see Answers).
//
// Every fault can be switched at run time, as Faults (SetFaults) or over HTTP:
//
//	GET  /admin/faults   200 and the faults in effect, every field, as a JSON object
//	POST /admin/faults   a JSON object with any of the fields below; 200 and the faults
//	                     now in effect (as GET answers), or 400 and nothing changed
//
//	field            type     values                          judgesim flag
//	error_rate       number   [0,1]                           -error-rate
//	slow_rate        number   [0,1]                           -slow-rate
//	slow_factor      number   [1,1000000], 0: the default 10  -slow-factor
//	hang_rate        number   [0,1]                           -hang-rate
//	malformed_rate   number   [0,1]                           -malformed-rate
//	hang             boolean  true, false                     -hang
//	position_bias    number   [0,1]                           -position-bias
//
// A POST changes only the fields it names; the others keep their values, so
// {"hang":false} releases a hung server and leaves the rates alone ({} changes
// nothing). A field of the wrong type, a value out of range, an unknown field (the
// answer names it and lists the accepted ones), or anything after the object is a 400
// in the OpenAI error shape, and then no field changes. The new values apply to requests
// that arrive afterwards (and switching hang off releases the requests it holds); the
// fates of earlier requests stand.
package judgesim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Simulator. The zero value gets the defaults.
type Config struct {
	// MaxSeqs is how many sequences run at once (vLLM's max_num_seqs). Default 32.
	MaxSeqs int
	// StepBase is the fixed time of a decode step. Default 8ms; negative means none.
	StepBase time.Duration
	// StepPerSeq is the time a decode step adds per running sequence. Default 250µs;
	// negative means none.
	StepPerSeq time.Duration
	// PrefillPerToken is the time a step adds per prompt token of the sequences joining
	// the batch at that step (tokens ≈ bytes/4). Default 20µs; negative means none.
	PrefillPerToken time.Duration
	// QueueLimit is how many sequences may wait for a slot beyond the MaxSeqs running;
	// requests that would overflow it are answered 429. Default 1024; negative means no
	// queue.
	QueueLimit int

	// ErrorRate is the share of requests answered 500, in [0,1]. Default 0.
	ErrorRate float64
	// SlowRate is the share of requests whose decode steps are multiplied by SlowFactor,
	// in [0,1]. Default 0.
	SlowRate float64
	// SlowFactor multiplies the steps of a slow request; at least 1. Default 10.
	SlowFactor float64
	// HangRate is the share of requests never answered until the client leaves, in
	// [0,1]. Default 0.
	HangRate float64
	// MalformedRate is the share of requests answered 200 with an answer outside the
	// output grammar (for reward endpoints: a cut or short JSON answer), in [0,1].
	// Default 0.
	MalformedRate float64
	// Hang makes the whole server hang: every request, health checks included, waits
	// until the client leaves or Hang is switched off. Default false.
	Hang bool

	// PositionBias is the probability, in [0,1], that a pairwise answer is "A" whatever
	// the responses, deterministic per content. Default 0.
	PositionBias float64
	// ClassifyLabels are the classes of /classify and /predict, worst first: the last is
	// the positive class of a binary classifier. Default ["LABEL_0", "LABEL_1"].
	ClassifyLabels []string
	// Model is the model name reported in answers and by /v1/models. Requests may name
	// any model. Default "judgesim".
	Model string
	// Seed salts the content hashes: another seed gives other score spreads and other
	// fates. Default 0.
	Seed uint64

	// The vLLM engine model (docs/judgesim.md). Every field is off at its zero value,
	// which keeps the plain step model above; ProfileConfig("vllm-h100-8b") sets them.

	// KVCacheTokens is the KV-cache budget in tokens, in blocks of BlockTokens (16): a
	// sequence holds ceil((prompt + generated)/16) blocks, and when a decoding sequence
	// needs a block and none is free, the newest sequence holding blocks is preempted
	// (vLLM V1's recompute policy: back to the front of the queue, and its prompt and
	// output are prefilled again). 0: unlimited, no preemption.
	KVCacheTokens int
	// MaxBatchedTokens is the tokens one step computes at most (vLLM's
	// max_num_batched_tokens) with chunked prefill: a step gives one token to every
	// decoding sequence, then fills the rest with prefill chunks. 0: unlimited, every
	// prompt is prefilled whole in one step.
	MaxBatchedTokens int
	// PrefixCaching reuses computed prompt blocks (vLLM's automatic prefix caching):
	// a 16-token (64-byte) prompt block whose hash chain is cached is not computed
	// again. Cached blocks live in the KV budget, evicted least recently used first;
	// it needs KVCacheTokens. Default off.
	PrefixCaching bool
	// Speed scales the endpoint's step times: a step takes its modelled time divided
	// by Speed (0.5: twice as slow). 0 means 1.
	Speed float64

	// AnswerMedianTokens switches on long-tailed answer lengths: a chat answer's
	// tokens are drawn, per prompt and deterministically, from a log-normal
	// distribution with this median and AnswerSigma, clipped to [AnswerMinTokens,
	// AnswerMaxTokens] and to the request's max_tokens, and the explanation is padded
	// to that length (the result stays last, in the requested grammar). 0: answers are
	// as long as their text.
	AnswerMedianTokens int
	// AnswerSigma is the log-normal sigma of answer lengths (default 0.5 when
	// AnswerMedianTokens is set).
	AnswerSigma float64
	// AnswerMinTokens and AnswerMaxTokens clip the drawn answer length (0: no bound).
	AnswerMinTokens, AnswerMaxTokens int
}

// Defaults of Config.
const (
	DefaultMaxSeqs         = 32
	DefaultStepBase        = 8 * time.Millisecond
	DefaultStepPerSeq      = 250 * time.Microsecond
	DefaultPrefillPerToken = 20 * time.Microsecond
	DefaultQueueLimit      = 1024
	DefaultSlowFactor      = 10
	DefaultModel           = "judgesim"
	DefaultAnswerSigma     = 0.5
)

// DefaultClassifyLabels returns the default classes of /classify and /predict.
func DefaultClassifyLabels() []string { return []string{"LABEL_0", "LABEL_1"} }

// Faults is the fault injection of a Simulator, changeable at run time (SetFaults,
// POST /admin/faults): one field for each fault flag of judgesim. The fields mean what
// Config's fields of the same names mean; the JSON names are those of /admin/faults.
type Faults struct {
	ErrorRate     float64 `json:"error_rate"`
	SlowRate      float64 `json:"slow_rate"`
	SlowFactor    float64 `json:"slow_factor"`
	HangRate      float64 `json:"hang_rate"`
	MalformedRate float64 `json:"malformed_rate"`
	Hang          bool    `json:"hang"`
	PositionBias  float64 `json:"position_bias"`
}

// Faults returns the fault fields of c.
func (c Config) Faults() Faults {
	return Faults{ErrorRate: c.ErrorRate, SlowRate: c.SlowRate, SlowFactor: c.SlowFactor,
		HangRate: c.HangRate, MalformedRate: c.MalformedRate, Hang: c.Hang,
		PositionBias: c.PositionBias}
}

// FaultFields returns the JSON field names of Faults, the fields POST /admin/faults
// accepts, in declaration order.
func FaultFields() []string {
	t := reflect.TypeFor[Faults]()
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names = append(names, name)
	}
	return names
}

// Validate rejects rates and a position bias outside [0,1] and a slow factor outside
// [1,1000000] (0 means the default), naming the judgesim flag.
func (f Faults) Validate() error { return f.validate(false) }

func (f Faults) validate(jsonNames bool) error {
	name := func(flag string) string {
		if jsonNames {
			return strings.ReplaceAll(flag, "-", "_")
		}
		return flag
	}
	for _, r := range []struct {
		flag string
		v    float64
	}{{"error-rate", f.ErrorRate}, {"slow-rate", f.SlowRate}, {"hang-rate", f.HangRate}, {"malformed-rate", f.MalformedRate}, {"position-bias", f.PositionBias}} {
		if !(r.v >= 0 && r.v <= 1) {
			return fmt.Errorf("%s: %g is not in [0,1]", name(r.flag), r.v)
		}
	}
	if f.SlowFactor != 0 && !(f.SlowFactor >= 1 && f.SlowFactor <= 1e6) {
		return fmt.Errorf("%s: %g is not in [1,1000000] (0: the default %d)", name("slow-factor"), f.SlowFactor, DefaultSlowFactor)
	}
	return nil
}

func (f Faults) withDefaults() Faults {
	if f.SlowFactor == 0 {
		f.SlowFactor = DefaultSlowFactor
	}
	return f
}

// Validate rejects values that defaults cannot mend, naming the judgesim flag.
func (c Config) Validate() error {
	if c.MaxSeqs < 0 {
		return fmt.Errorf("max-seqs: %d is negative", c.MaxSeqs)
	}
	if err := c.Faults().Validate(); err != nil {
		return err
	}
	if c.ClassifyLabels != nil {
		if len(c.ClassifyLabels) < 2 {
			return fmt.Errorf("classify-labels: %d labels, need at least 2", len(c.ClassifyLabels))
		}
		seen := make(map[string]bool, len(c.ClassifyLabels))
		for i, l := range c.ClassifyLabels {
			switch {
			case strings.TrimSpace(l) == "":
				return fmt.Errorf("classify-labels: label %d is empty", i+1)
			case strings.ContainsAny(l, "\r\n"):
				return fmt.Errorf("classify-labels: label %q has a line break", l)
			case seen[l]:
				return fmt.Errorf("classify-labels: label %q is repeated", l)
			}
			seen[l] = true
		}
	}
	if strings.ContainsAny(c.Model, "\r\n") {
		return fmt.Errorf("model: %q has a line break", c.Model)
	}
	switch {
	case c.KVCacheTokens < 0:
		return fmt.Errorf("kv-cache-tokens: %d is negative", c.KVCacheTokens)
	case c.MaxBatchedTokens < 0:
		return fmt.Errorf("max-batched-tokens: %d is negative", c.MaxBatchedTokens)
	case c.PrefixCaching && c.KVCacheTokens == 0:
		return errors.New("prefix-caching: needs kv-cache-tokens (the cache lives in the KV budget)")
	case !(c.Speed >= 0 && c.Speed <= 1e6):
		return fmt.Errorf("speed: %g is not in (0,1000000] (0: the default 1)", c.Speed)
	case c.AnswerMedianTokens < 0:
		return fmt.Errorf("answer-median-tokens: %d is negative", c.AnswerMedianTokens)
	case !(c.AnswerSigma >= 0 && c.AnswerSigma <= 10):
		return fmt.Errorf("answer-sigma: %g is not in [0,10]", c.AnswerSigma)
	case c.AnswerMinTokens < 0 || c.AnswerMaxTokens < 0:
		return fmt.Errorf("answer-min-tokens, answer-max-tokens: %d, %d: negative", c.AnswerMinTokens, c.AnswerMaxTokens)
	case c.AnswerMaxTokens > 0 && c.AnswerMinTokens > c.AnswerMaxTokens:
		return fmt.Errorf("answer-min-tokens: %d is above answer-max-tokens %d", c.AnswerMinTokens, c.AnswerMaxTokens)
	}
	return nil
}

// WithDefaults returns c with zero fields set to their defaults, negative step costs and
// queue limits set to zero, and out-of-range rates clamped.
func (c Config) WithDefaults() Config {
	if c.MaxSeqs <= 0 {
		c.MaxSeqs = DefaultMaxSeqs
	}
	c.StepBase = durationDefault(c.StepBase, DefaultStepBase)
	c.StepPerSeq = durationDefault(c.StepPerSeq, DefaultStepPerSeq)
	c.PrefillPerToken = durationDefault(c.PrefillPerToken, DefaultPrefillPerToken)
	switch {
	case c.QueueLimit == 0:
		c.QueueLimit = DefaultQueueLimit
	case c.QueueLimit < 0:
		c.QueueLimit = 0
	}
	c.ErrorRate = clamp01(c.ErrorRate)
	c.SlowRate = clamp01(c.SlowRate)
	c.HangRate = clamp01(c.HangRate)
	c.MalformedRate = clamp01(c.MalformedRate)
	c.PositionBias = clamp01(c.PositionBias)
	if !(c.SlowFactor >= 1) { // also NaN
		c.SlowFactor = DefaultSlowFactor
	}
	c.SlowFactor = min(c.SlowFactor, 1e6)
	if len(c.ClassifyLabels) < 2 {
		c.ClassifyLabels = DefaultClassifyLabels()
	} else {
		c.ClassifyLabels = append([]string(nil), c.ClassifyLabels...)
	}
	if c.Model == "" {
		c.Model = DefaultModel
	}
	c.KVCacheTokens = max(c.KVCacheTokens, 0)
	c.MaxBatchedTokens = max(c.MaxBatchedTokens, 0)
	if c.KVCacheTokens == 0 {
		c.PrefixCaching = false
	}
	if !(c.Speed > 0) {
		c.Speed = 1
	}
	c.Speed = min(c.Speed, 1e6)
	c.AnswerMedianTokens = max(c.AnswerMedianTokens, 0)
	if c.AnswerMedianTokens > 0 && !(c.AnswerSigma > 0) {
		c.AnswerSigma = DefaultAnswerSigma
	}
	c.AnswerSigma = min(max(c.AnswerSigma, 0), 10)
	c.AnswerMinTokens = max(c.AnswerMinTokens, 0)
	c.AnswerMaxTokens = max(c.AnswerMaxTokens, 0)
	return c
}

func durationDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

func clamp01(v float64) float64 {
	if !(v > 0) { // also NaN
		return 0
	}
	return min(v, 1)
}

// ServiceTime is the service time of a request with the given prompt and completion
// tokens in a batch of running sequences (itself included) that nothing joins while it
// runs: promptTokens × PrefillPerToken + completionTokens × (StepBase + StepPerSeq ×
// running), divided by Speed. completionTokens is at least 1 and running is in
// 1..MaxSeqs. With the engine fields off, the X-Judgesim-Service-Time header of such a
// request is exactly this.
func (c Config) ServiceTime(promptTokens, completionTokens, running int) time.Duration {
	c = c.WithDefaults()
	completionTokens = max(completionTokens, 1)
	running = min(max(running, 1), c.MaxSeqs)
	d := time.Duration(max(promptTokens, 0))*c.PrefillPerToken +
		time.Duration(completionTokens)*(c.StepBase+time.Duration(running)*c.StepPerSeq)
	if c.Speed != 1 {
		d = time.Duration(float64(d) / c.Speed)
	}
	return d
}

// Capacity is the requests per second a saturated simulator completes when every
// request has the given prompt and completion tokens:
// MaxSeqs / (MaxSeqs × promptTokens × PrefillPerToken + completionTokens × (StepBase +
// StepPerSeq × MaxSeqs)). The prefill term counts every admitted request's prefill,
// which stalls the full batch; ServiceTime(p, c, MaxSeqs) alone leaves it out. For
// reward items use completionTokens 1; the result is then items per second. It is
// multiplied by Speed, and is the plain model's: KV, token budget and prefix caching
// are not in it (SimulateVirtual runs them).
func (c Config) Capacity(promptTokens, completionTokens int) float64 {
	c = c.WithDefaults()
	m := time.Duration(c.MaxSeqs)
	per := m*time.Duration(max(promptTokens, 0))*c.PrefillPerToken +
		time.Duration(max(completionTokens, 1))*(c.StepBase+m*c.StepPerSeq)
	if per <= 0 {
		return math.Inf(1)
	}
	return c.Speed * float64(c.MaxSeqs) / per.Seconds()
}

// Utilization is the share of sequence slots that were busy over wall:
// st.BusySeqTime / (st.MaxSeqs × wall), for Stats taken over wall since New.
func Utilization(st Stats, wall time.Duration) float64 {
	if wall <= 0 || st.MaxSeqs <= 0 {
		return 0
	}
	return st.BusySeqTime.Seconds() / (float64(st.MaxSeqs) * wall.Seconds())
}

// Stats counts what a Simulator did since New. Requests are those to the scoring
// endpoints (chat completions, pooling, classify, predict); running and queued count
// sequences (a reward request has one per item).
type Stats struct {
	MaxSeqs     int64         `json:"max_seqs"`     // the configured slots
	Requests    int64         `json:"requests"`     // scoring requests received
	Completed   int64         `json:"completed"`    // answered 200 (malformed answers included)
	Rejected    int64         `json:"rejected"`     // answered 429: the queue was full
	Failed      int64         `json:"failed"`       // answered 500 through ErrorRate
	BadRequests int64         `json:"bad_requests"` // answered 4xx other than 429
	Canceled    int64         `json:"canceled"`     // the client left before the answer (hung requests included)
	Hung        int64         `json:"hung"`         // requests that hung (HangRate or Hang)
	Slowed      int64         `json:"slowed"`       // requests slowed through SlowRate
	Malformed   int64         `json:"malformed"`    // answers made malformed through MalformedRate
	Sequences   int64         `json:"sequences"`    // sequences accepted by the scheduler (run, queued or canceled)
	Running     int64         `json:"running"`      // sequences holding a slot now
	Queued      int64         `json:"queued"`       // sequences waiting for a slot now
	MaxRunning  int64         `json:"max_running"`  // most running at once; never above MaxSeqs
	MaxQueued   int64         `json:"max_queued"`   // most waiting at once; never above QueueLimit
	Steps       int64         `json:"steps"`        // decode steps run
	BusyTime    time.Duration `json:"busy_ns"`      // sum of step durations: the time the simulated GPU was busy
	BusySeqTime time.Duration `json:"busy_seq_ns"`  // sum over sequences of step time spent in the batch
	// SaturatedTime sums the steps that had no room left: every slot taken, requests
	// waiting for one, the token budget used up, or sequences waiting for KV blocks. Over
	// a wall-clock window it is the share of the time the simulated GPU could not have
	// taken more work (Saturation): the utilization figure for an engine whose KV cache,
	// not its sequence slots, is the limit.
	SaturatedTime    time.Duration `json:"saturated_ns"`
	PromptTokens     int64         `json:"prompt_tokens"`     // estimated, completed requests
	CompletionTokens int64         `json:"completion_tokens"` // estimated, completed requests

	Finished           int64   `json:"finished"`             // requests whose sequences all finished in the scheduler
	PrefillTokens      int64   `json:"prefill_tokens"`       // prompt tokens computed (re-prefills after preemption included)
	PrefillSavedTokens int64   `json:"prefill_saved_tokens"` // prompt tokens not computed: prefix-cache hits
	DecodeTokens       int64   `json:"decode_tokens"`        // tokens emitted (one per sequence per step)
	Preemptions        int64   `json:"preemptions"`          // sequences preempted for KV blocks
	KVBlocks           int64   `json:"kv_blocks"`            // the KV-cache blocks (KVCacheTokens/16); 0: unlimited
	KVBlocksUsed       int64   `json:"kv_blocks_used"`       // blocks held by sequences now
	PeakKVBlocksUsed   int64   `json:"peak_kv_blocks_used"`  // most blocks held at once
	Speed              float64 `json:"speed"`                // the step-time speed factor
}

// Simulator is the http.Handler of the GPU scoring-pool simulator (see the package doc
// for its endpoints). It is safe for concurrent use. Close or Shutdown stops its
// scheduler goroutine.
type Simulator struct {
	cfg     Config
	mux     *http.ServeMux
	started time.Time

	faultsMu sync.Mutex                 // serializes SetFaults
	faults   atomic.Pointer[faultState] // current faults

	// The scheduler goroutine owns the sequences; handlers talk to it through these.
	submit   chan *group
	cancel   chan *group
	stopping chan struct{} // closed by Shutdown and Close: no new work, hung requests end
	quit     chan struct{} // closed by Close (or Shutdown past its deadline): stop now
	done     chan struct{} // closed when the scheduler has stopped
	stopOnce sync.Once
	quitOnce sync.Once
	after    func(time.Duration) <-chan time.Time // step timer, used by the scheduler only

	requests, completed, rejected, failed, badRequests, canceled atomic.Int64
	hung, slowed, malformed, sequences                           atomic.Int64
	promptTokens, completionTokens                               atomic.Int64
	// Written by the scheduler only.
	running, queued, maxRunning, maxQueued, steps, busyNanos, busySeqNanos atomic.Int64
	saturatedNanos                                                         atomic.Int64
	finished, prefillComputed, prefillSaved, preemptions, decodeTokens     atomic.Int64
	kvPeak, kvUsed                                                         atomic.Int64

	seenMu sync.Mutex
	seen   map[[8]byte]uint32 // occurrences per content, for the fault picks; bounded
}

// faultState is an immutable snapshot of the faults; unhang is closed when Hang is
// switched off.
type faultState struct {
	Faults
	unhang chan struct{}
}

// maxSeen bounds the occurrence map; it is cleared when full, which restarts the
// occurrence counts (still deterministic for any run that sees fewer distinct contents).
const maxSeen = 1 << 16

// maxRequestBytes bounds a request body.
const maxRequestBytes = 16 << 20

// New returns a simulator for cfg (zero fields get their defaults; call Validate first to
// reject bad values) and starts its scheduler goroutine; Close stops it.
func New(cfg Config) *Simulator { return newSimulator(cfg, nil) }

// newSimulator takes the step timer (nil: a real timer), so tests can run steps by hand.
func newSimulator(cfg Config, after func(time.Duration) <-chan time.Time) *Simulator {
	cfg = cfg.WithDefaults()
	s := &Simulator{
		cfg:      cfg,
		mux:      http.NewServeMux(),
		started:  time.Now(),
		submit:   make(chan *group),
		cancel:   make(chan *group),
		stopping: make(chan struct{}),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		after:    after,
		seen:     make(map[[8]byte]uint32),
	}
	if s.after == nil {
		t := time.NewTimer(time.Hour)
		t.Stop()
		s.after = func(d time.Duration) <-chan time.Time { t.Reset(d); return t.C }
	}
	fs := &faultState{Faults: cfg.Faults().withDefaults()}
	if fs.Hang {
		fs.unhang = make(chan struct{})
	}
	s.faults.Store(fs)
	s.routes()
	go s.run()
	return s
}

func (s *Simulator) routes() {
	post := func(name string, h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				w.Header().Set("Allow", http.MethodPost)
				writeError(w, http.StatusMethodNotAllowed, "BadRequestError", r.Method+" "+name+" is not allowed; use POST")
				return
			}
			h(w, r)
		}
	}
	s.mux.HandleFunc("/v1/chat/completions", post("/v1/chat/completions", s.chatCompletions))
	s.mux.HandleFunc("/pooling", post("/pooling", s.pooling))
	s.mux.HandleFunc("/classify", post("/classify", s.classify))
	s.mux.HandleFunc("/predict", post("/predict", s.predict))
	s.mux.HandleFunc("GET /v1/models", s.models)
	s.mux.HandleFunc("GET /health", s.health)
	s.mux.HandleFunc("GET /healthz", s.health)
	s.mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	s.mux.HandleFunc("/admin/faults", s.adminFaults)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotFoundError", "judgesim (a GPU scoring-pool simulator) does not serve "+r.URL.Path)
	})
}

// Config returns the configuration in use, defaults filled (the faults as configured at
// New; see Faults for the current ones).
func (s *Simulator) Config() Config {
	c := s.cfg
	c.ClassifyLabels = append([]string(nil), c.ClassifyLabels...)
	return c
}

// ServeHTTP serves the simulator's endpoints.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Faults returns the fault injection in effect.
func (s *Simulator) Faults() Faults { return s.faults.Load().Faults }

// SetFaults replaces the fault injection, every field (a SlowFactor of 0 gets the
// default; POST /admin/faults changes only the fields it names). Switching Hang off
// releases the requests it holds, which are then served.
func (s *Simulator) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.setFaults(f)
	return nil
}

func (s *Simulator) setFaults(f Faults) {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	s.setFaultsLocked(f)
}

func (s *Simulator) setFaultsLocked(f Faults) {
	old := s.faults.Load()
	next := &faultState{Faults: f.withDefaults()}
	switch {
	case next.Hang && old.Hang:
		next.unhang = old.unhang
	case next.Hang:
		next.unhang = make(chan struct{})
	case old.Hang:
		close(old.unhang)
	}
	s.faults.Store(next)
}

// Stats returns the counters so far.
func (s *Simulator) Stats() Stats {
	return Stats{
		MaxSeqs:          int64(s.cfg.MaxSeqs),
		Requests:         s.requests.Load(),
		Completed:        s.completed.Load(),
		Rejected:         s.rejected.Load(),
		Failed:           s.failed.Load(),
		BadRequests:      s.badRequests.Load(),
		Canceled:         s.canceled.Load(),
		Hung:             s.hung.Load(),
		Slowed:           s.slowed.Load(),
		Malformed:        s.malformed.Load(),
		Sequences:        s.sequences.Load(),
		Running:          s.running.Load(),
		Queued:           s.queued.Load(),
		MaxRunning:       s.maxRunning.Load(),
		MaxQueued:        s.maxQueued.Load(),
		Steps:            s.steps.Load(),
		BusyTime:         time.Duration(s.busyNanos.Load()),
		BusySeqTime:      time.Duration(s.busySeqNanos.Load()),
		SaturatedTime:    time.Duration(s.saturatedNanos.Load()),
		PromptTokens:     s.promptTokens.Load(),
		CompletionTokens: s.completionTokens.Load(),

		Finished:           s.finished.Load(),
		PrefillTokens:      s.prefillComputed.Load(),
		PrefillSavedTokens: s.prefillSaved.Load(),
		DecodeTokens:       s.decodeTokens.Load(),
		Preemptions:        s.preemptions.Load(),
		KVBlocks:           int64(s.cfg.KVCacheTokens / BlockTokens),
		KVBlocksUsed:       s.kvUsed.Load(),
		PeakKVBlocksUsed:   s.kvPeak.Load(),
		Speed:              s.cfg.Speed,
	}
}

// Shutdown stops the simulator gracefully: new requests and hung ones are answered 503
// at once, queued and running sequences finish, then the scheduler stops. When ctx ends
// first, the rest are answered 503 and ctx's error is returned. Idempotent.
func (s *Simulator) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopping) })
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
	}
	s.quitOnce.Do(func() { close(s.quit) })
	<-s.done
	return ctx.Err()
}

// Close stops the simulator at once: requests queued, running or hung are answered 503,
// and the scheduler goroutine has stopped when Close returns. Idempotent; always nil.
func (s *Simulator) Close() error {
	s.stopOnce.Do(func() { close(s.stopping) })
	s.quitOnce.Do(func() { close(s.quit) })
	<-s.done
	return nil
}

// serverHang holds a request while Hang is set. It reports false when the request must
// end: the client left (counted) or the simulator is stopping (answered 503).
func (s *Simulator) serverHang(w http.ResponseWriter, r *http.Request, scoring bool) bool {
	fs := s.faults.Load()
	if !fs.Hang {
		return true
	}
	if scoring {
		s.hung.Add(1)
	}
	select {
	case <-fs.unhang:
		return true
	case <-r.Context().Done():
		if scoring {
			s.canceled.Add(1)
		}
	case <-s.stopping:
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailableError", "judgesim: shutting down")
	}
	return false
}

func (s *Simulator) health(w http.ResponseWriter, r *http.Request) {
	if !s.serverHang(w, r, false) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

func (s *Simulator) models(w http.ResponseWriter, r *http.Request) {
	if !s.serverHang(w, r, false) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data": []map[string]any{{
			"id":       s.cfg.Model,
			"object":   "model",
			"created":  s.started.Unix(),
			"owned_by": "judgesim",
		}},
	})
}

// adminFaults serves /admin/faults. GET answers 200 and the faults in effect as a JSON
// object with every Faults field:
//
//	{"error_rate":0,"slow_rate":0,"slow_factor":10,"hang_rate":0,"malformed_rate":0,"hang":false,"position_bias":0}
//
// POST takes a JSON object with any of those fields (numbers: the rates and
// position_bias in [0,1], slow_factor in [1,1000000] or 0 for the default; hang a bool)
// and changes only the fields it names; it answers 200 and the faults now in effect. A
// body that is not one such object — an unknown field (named, with the accepted fields
// listed), a wrong type, a value out of range — is answered 400 and changes nothing.
// Other methods get 405.
func (s *Simulator) adminFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.Faults())
	case http.MethodPost:
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<16))
		if err != nil {
			writeError(w, http.StatusBadRequest, "BadRequestError", "faults: read request: "+err.Error())
			return
		}
		if len(bytes.TrimSpace(body)) == 0 {
			writeError(w, http.StatusBadRequest, "BadRequestError", "faults: empty body; send a JSON object with any of the fields "+strings.Join(FaultFields(), ", "))
			return
		}
		s.faultsMu.Lock()
		defer s.faultsMu.Unlock()
		f := s.faults.Load().Faults
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			msg := "faults: " + err.Error()
			if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
				msg = "faults: unknown field " + field + "; the accepted fields are " + strings.Join(FaultFields(), ", ")
			}
			writeError(w, http.StatusBadRequest, "BadRequestError", msg)
			return
		}
		if dec.More() {
			writeError(w, http.StatusBadRequest, "BadRequestError", "faults: more than one JSON value")
			return
		}
		if err := f.validate(true); err != nil {
			writeError(w, http.StatusBadRequest, "BadRequestError", "faults: "+err.Error())
			return
		}
		s.setFaultsLocked(f)
		writeJSON(w, http.StatusOK, s.faults.Load().Faults)
	default:
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, "BadRequestError", r.Method+" /admin/faults is not allowed; use GET or POST")
	}
}

// Scheduling outcomes other than success.
var (
	errRejected = errors.New("queue full")
	errStopping = errors.New("shutting down")
	errCanceled = errors.New("client left")
)

// readBody reads a scoring request's body, counting the request, and answers when it
// cannot. Reading the whole body also lets net/http notice a client that leaves.
func (s *Simulator) readBody(w http.ResponseWriter, r *http.Request, tei bool) ([]byte, bool) {
	s.requests.Add(1)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.badRequest(w, tei, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", maxRequestBytes))
			return nil, false
		}
		s.badRequest(w, tei, http.StatusBadRequest, "read request: "+err.Error())
		return nil, false
	}
	return body, s.serverHang(w, r, true)
}

// badRequest answers a 4xx and counts it.
func (s *Simulator) badRequest(w http.ResponseWriter, tei bool, code int, msg string) {
	s.badRequests.Add(1)
	if tei {
		writeTEIError(w, code, "validation", msg)
		return
	}
	writeError(w, code, "BadRequestError", msg)
}

// serve schedules a request's sequences and waits for them. It answers (and counts) the
// outcomes other than success and reports whether the caller answers 200.
func (s *Simulator) serve(w http.ResponseWriter, r *http.Request, g *group, tei bool) bool {
	n := len(g.seqs)
	err := s.schedule(r.Context(), g)
	switch {
	case err == nil:
		w.Header().Set("X-Judgesim-Queue-Time", g.queue.String())
		w.Header().Set("X-Judgesim-Service-Time", g.service.String())
		return true
	case errors.Is(err, errRejected):
		s.rejected.Add(1)
		msg := fmt.Sprintf("judgesim: all %d sequences busy and the queue of %d full (request of %d sequences)", s.cfg.MaxSeqs, s.cfg.QueueLimit, n)
		if tei {
			writeTEIError(w, http.StatusTooManyRequests, "overloaded", msg)
		} else {
			writeError(w, http.StatusTooManyRequests, "RateLimitError", msg)
		}
	case errors.Is(err, errCanceled):
		s.canceled.Add(1)
	default:
		if tei {
			writeTEIError(w, http.StatusServiceUnavailable, "unhealthy", "judgesim: shutting down")
		} else {
			writeError(w, http.StatusServiceUnavailable, "ServiceUnavailableError", "judgesim: shutting down")
		}
	}
	return false
}

// hangRequest holds a request picked by HangRate until the client leaves or the
// simulator stops.
func (s *Simulator) hangRequest(w http.ResponseWriter, r *http.Request, tei bool) {
	s.hung.Add(1)
	select {
	case <-r.Context().Done():
		s.canceled.Add(1)
	case <-s.stopping:
		if tei {
			writeTEIError(w, http.StatusServiceUnavailable, "unhealthy", "judgesim: shutting down")
		} else {
			writeError(w, http.StatusServiceUnavailable, "ServiceUnavailableError", "judgesim: shutting down")
		}
	}
}

// fail answers a request picked by ErrorRate.
func (s *Simulator) fail(w http.ResponseWriter, tei bool) {
	s.failed.Add(1)
	const msg = "judgesim: simulated server failure (error-rate)"
	if tei {
		writeTEIError(w, http.StatusInternalServerError, "backend", msg)
		return
	}
	writeError(w, http.StatusInternalServerError, "InternalServerError", msg)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers in the OpenAI error shape (as vLLM does).
func writeError(w http.ResponseWriter, code int, typ, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": code}})
}

// writeTEIError answers in TEI's error shape.
func writeTEIError(w http.ResponseWriter, code int, typ, msg string) {
	writeJSON(w, code, map[string]any{"error": msg, "error_type": typ})
}
