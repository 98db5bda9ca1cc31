package judgesim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Profile names for ProfileConfig.
const (
	// ProfileVLLMH1008B is vLLM V1 serving a Llama 3.1 8B class model (bf16) on one
	// H100 80GB, calibrated against a published vLLM benchmark (see CalibrationSource):
	// 256 sequences, 8192 batched tokens with chunked prefill, a KV cache of 442,368
	// tokens (27,648 blocks) with prefix caching; answers as long as their text.
	ProfileVLLMH1008B = "vllm-h100-8b"
	// ProfileVLLMH1008BReasoning is ProfileVLLMH1008B for "reasoning" judges: answers
	// of 100 to 400 tokens (log-normal, median 200, sigma 0.35), the explanation padded
	// to length.
	ProfileVLLMH1008BReasoning = "vllm-h100-8b-reasoning"
)

// CalibrationSource is the published figure ProfileVLLMH1008B reproduces (within
// CalibrationTolerance) on the published workload; docs/judgesim.md has the details.
//
// vLLM pull request #18566, "Support datasets in `vllm bench serve` and sync with
// benchmark_[serving,datasets].py" (https://github.com/vllm-project/vllm/pull/18566,
// description by mgoin, 2025-05-22): `vllm serve meta-llama/Llama-3.1-8B-Instruct`
// (defaults) benchmarked with `vllm bench serve` on ShareGPT (Aeala/ShareGPT_Vicuna_
// unfiltered, chat endpoint, request rate inf): 1000 successful requests, 229,711 input
// and 203,068 generated tokens in 30.85 s: 32.42 requests/s and 6,582.87 output
// tokens/s, mean ITL 38.13 ms. The text does not name the GPU; it is taken to be one
// H100 (an assumption, stated as such in docs/judgesim.md).
const CalibrationSource = "https://github.com/vllm-project/vllm/pull/18566"

// calibrationSigma is the log-normal sigma of CalibrationWorkload's lengths.
const calibrationSigma = 0.5

// Published figures of CalibrationSource and the tolerance the calibration test holds
// the simulation to.
const (
	CalibrationRequests         = 1000    // successful requests
	CalibrationInputTokens      = 229711  // total input tokens
	CalibrationOutputTokens     = 203068  // total generated tokens
	CalibrationRequestsPerSec   = 32.42   // request throughput (req/s)
	CalibrationOutputTokensPerS = 6582.87 // output token throughput (tok/s)
	CalibrationTolerance        = 0.15    // the simulation's allowed relative deviation
)

// ProfileNames returns the profile names ProfileConfig knows.
func ProfileNames() []string {
	return []string{ProfileVLLMH1008B, ProfileVLLMH1008BReasoning}
}

// ProfileConfig returns the Config of a named profile (see ProfileNames); the fault
// fields and the rest are zero, to be set by the caller.
func ProfileConfig(name string) (Config, error) {
	base := Config{
		MaxSeqs:          256,
		QueueLimit:       1 << 16,
		StepBase:         6 * time.Millisecond,
		StepPerSeq:       75 * time.Microsecond,
		PrefillPerToken:  25 * time.Microsecond,
		KVCacheTokens:    27648 * BlockTokens,
		MaxBatchedTokens: 8192,
		PrefixCaching:    true,
		Model:            "meta-llama/Llama-3.1-8B-Instruct (judgesim)",
	}
	switch name {
	case ProfileVLLMH1008B:
		return base, nil
	case ProfileVLLMH1008BReasoning:
		base.AnswerMedianTokens = 200
		base.AnswerSigma = 0.35
		base.AnswerMinTokens = 100
		base.AnswerMaxTokens = 400
		return base, nil
	}
	return Config{}, fmt.Errorf("profile: unknown %q (known: %s)", name, strings.Join(ProfileNames(), ", "))
}

// CalibrationWorkload is the workload of CalibrationSource as SimulateVirtual runs it:
// CalibrationRequests requests arriving at once (request rate inf), with ShareGPT-like
// long-tailed prompt and output lengths (log-normal, sigma 0.9, from a fixed seed)
// scaled so that their totals are the published CalibrationInputTokens and
// CalibrationOutputTokens. The prompts are distinct (no prefix is shared).
func CalibrationWorkload() []VirtualRequest { return calibrationWorkload(calibrationSigma) }

func calibrationWorkload(sigma float64) []VirtualRequest {
	r := rand.New(rand.NewPCG(18566, 2025))
	normal := func() float64 {
		u1 := max(float64(r.Uint64()>>11)/(1<<53), 1e-12)
		u2 := float64(r.Uint64()>>11) / (1 << 53)
		return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
	}
	n := CalibrationRequests
	in, out := make([]float64, n), make([]float64, n)
	var sumIn, sumOut float64
	for i := range n {
		in[i] = math.Exp(sigma * normal())
		out[i] = math.Exp(sigma * normal())
		sumIn += in[i]
		sumOut += out[i]
	}
	w := make([]VirtualRequest, n)
	scale := func(v []float64, sum float64, total int) []int {
		ints := make([]int, n)
		got := 0
		for i := range v {
			ints[i] = max(int(v[i]*float64(total)/sum), 1)
			got += ints[i]
		}
		// Spread the rounding remainder so the total is exact.
		for i := 0; got != total; i = (i + 1) % n {
			switch {
			case got < total:
				ints[i]++
				got++
			case ints[i] > 1:
				ints[i]--
				got--
			}
		}
		return ints
	}
	ins, outs := scale(in, sumIn, CalibrationInputTokens), scale(out, sumOut, CalibrationOutputTokens)
	for i := range w {
		w[i] = VirtualRequest{PromptTokens: ins[i], OutputTokens: outs[i]}
	}
	return slices.Clip(w)
}
