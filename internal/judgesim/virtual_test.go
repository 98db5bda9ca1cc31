package judgesim

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// TestCalibration: the vllm-h100-8b profile reproduces the published vLLM figure
// (CalibrationSource) on the published workload within CalibrationTolerance.
func TestCalibration(t *testing.T) {
	cfg, err := ProfileConfig(ProfileVLLMH1008B)
	if err != nil {
		t.Fatal(err)
	}
	w := CalibrationWorkload()
	var in, out int
	for _, r := range w {
		in += r.PromptTokens
		out += r.OutputTokens
	}
	if len(w) != CalibrationRequests || in != CalibrationInputTokens || out != CalibrationOutputTokens {
		t.Fatalf("workload: %d requests, %d in, %d out", len(w), in, out)
	}
	res, err := SimulateVirtual(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		sim, want float64
	}{
		{"requests/s", res.RequestsPerSecond, CalibrationRequestsPerSec},
		{"output tokens/s", res.OutputTokensPerSecond, CalibrationOutputTokensPerS},
	} {
		if dev := c.sim/c.want - 1; math.Abs(dev) > CalibrationTolerance {
			t.Errorf("%s: simulated %.2f, published %.2f (%+.1f%%, tolerance ±%.0f%%)", c.name, c.sim, c.want, 100*dev, 100*CalibrationTolerance)
		}
	}
	if res.Requests != CalibrationRequests || res.OutputTokens != CalibrationOutputTokens || res.DecodeTokens != CalibrationOutputTokens {
		t.Fatalf("result %+v", res)
	}
	t.Logf("simulated %.2f req/s, %.1f output tok/s in %s (published %.2f, %.2f in 30.85s); mean TTFT %s",
		res.RequestsPerSecond, res.OutputTokensPerSecond, res.Duration, CalibrationRequestsPerSec, CalibrationOutputTokensPerS, res.MeanTTFT)
}

// TestVirtualDeterministic: the same run twice gives the same result.
func TestVirtualDeterministic(t *testing.T) {
	cfg, _ := ProfileConfig(ProfileVLLMH1008B)
	a, _ := SimulateVirtual(cfg, CalibrationWorkload())
	b, _ := SimulateVirtual(cfg, CalibrationWorkload())
	if a != b {
		t.Fatalf("%+v\n%+v", a, b)
	}
}

func uniform(n, prompt, output int) []VirtualRequest {
	w := make([]VirtualRequest, n)
	for i := range w {
		w[i] = VirtualRequest{PromptTokens: prompt, OutputTokens: output}
	}
	return w
}

// TestVirtualPreemption: a KV cache too small for the batch preempts, the preempted
// sequences prefill again, and every request still finishes with all its tokens.
func TestVirtualPreemption(t *testing.T) {
	base := Config{MaxSeqs: 16, StepBase: time.Millisecond, StepPerSeq: 10 * time.Microsecond, PrefillPerToken: time.Microsecond}
	w := uniform(32, 100, 200)
	big, err := SimulateVirtual(func() Config { c := base; c.KVCacheTokens = 1 << 20; return c }(), w)
	if err != nil {
		t.Fatal(err)
	}
	small := base
	small.KVCacheTokens = 16 * 100 // 100 blocks; 16 sequences of 300 tokens need 304
	res, err := SimulateVirtual(small, w)
	if err != nil {
		t.Fatal(err)
	}
	if big.Preemptions != 0 || res.Preemptions == 0 {
		t.Fatalf("preemptions: big cache %d, small cache %d", big.Preemptions, res.Preemptions)
	}
	if res.Requests != 32 || res.OutputTokens != 32*200 || res.DecodeTokens != 32*200 {
		t.Fatalf("small cache: %+v", res)
	}
	if res.PrefillTokens <= big.PrefillTokens || big.PrefillTokens != 32*100 {
		t.Fatalf("re-prefill: small cache computed %d prefill tokens, big %d", res.PrefillTokens, big.PrefillTokens)
	}
	if res.PeakKVBlocksUsed > 100 {
		t.Fatalf("peak %d blocks of 100", res.PeakKVBlocksUsed)
	}
	if res.Duration <= big.Duration {
		t.Fatalf("small cache %s, big %s", res.Duration, big.Duration)
	}
}

// TestVirtualPrefixCaching: prompts sharing a long prefix compute it once; distinct
// prompts save nothing.
func TestVirtualPrefixCaching(t *testing.T) {
	cfg := Config{MaxSeqs: 8, StepBase: time.Millisecond, StepPerSeq: 10 * time.Microsecond, PrefillPerToken: time.Microsecond,
		KVCacheTokens: 1 << 16, PrefixCaching: true}
	shared := strings.Repeat("You are a careful judge. Score the answer from 1 to 5. ", 40) // 2,200 bytes
	var same, distinct []VirtualRequest
	for i := range 20 {
		tail := fmt.Sprintf("<<<ANSWER %d>>> the answer text number %d", i, i)
		same = append(same, VirtualRequest{Arrival: time.Duration(i) * 50 * time.Millisecond, Prompt: shared + tail, OutputTokens: 10})
		distinct = append(distinct, VirtualRequest{Arrival: time.Duration(i) * 50 * time.Millisecond, Prompt: tail + shared, OutputTokens: 10})
	}
	s, err := SimulateVirtual(cfg, same)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := SimulateVirtual(cfg, distinct)
	blocks := len(shared) / blockBytes
	if want := int64(19 * blocks * BlockTokens); s.PrefillSavedTokens != want {
		t.Fatalf("shared prefix: saved %d tokens, want %d (19 requests × %d blocks)", s.PrefillSavedTokens, want, blocks)
	}
	if d.PrefillSavedTokens != 0 {
		t.Fatalf("distinct prompts saved %d", d.PrefillSavedTokens)
	}
	if s.PrefillTokens+s.PrefillSavedTokens != d.PrefillTokens || s.MeanLatency >= d.MeanLatency {
		t.Fatalf("shared %+v\ndistinct %+v", s, d)
	}
	// Off, nothing is saved.
	cfg.PrefixCaching = false
	if o, _ := SimulateVirtual(cfg, same); o.PrefillSavedTokens != 0 || o.PrefillTokens != d.PrefillTokens {
		t.Fatalf("caching off: %+v", o)
	}
}

// TestVirtualPrefixEviction: cached blocks are evicted when running sequences need the
// space, and a cache smaller than the prefixes saves less.
func TestVirtualPrefixEviction(t *testing.T) {
	cfg := Config{MaxSeqs: 1, StepBase: time.Millisecond, KVCacheTokens: 64 * BlockTokens, PrefixCaching: true}
	a := strings.Repeat("a", 40*blockBytes)
	b := strings.Repeat("b", 40*blockBytes)
	// a, b, a: the second a finds its blocks evicted by b (40+40 blocks > 64).
	w := []VirtualRequest{{Prompt: a, OutputTokens: 1}, {Arrival: time.Second, Prompt: b, OutputTokens: 1}, {Arrival: 2 * time.Second, Prompt: a, OutputTokens: 1}}
	res, err := SimulateVirtual(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	if res.PrefillSavedTokens >= 39*BlockTokens || res.PeakKVBlocksUsed > 64 {
		t.Fatalf("%+v", res)
	}
	// a, a: the second one hits all but its last block.
	res, _ = SimulateVirtual(cfg, []VirtualRequest{{Prompt: a, OutputTokens: 1}, {Arrival: time.Second, Prompt: a, OutputTokens: 1}})
	if res.PrefillSavedTokens != 39*BlockTokens {
		t.Fatalf("a, a: saved %d, want %d", res.PrefillSavedTokens, 39*BlockTokens)
	}
}

// TestVirtualChunkedPrefill: no step computes more than MaxBatchedTokens, and long
// prompts are split over several steps.
func TestVirtualChunkedPrefill(t *testing.T) {
	cfg := Config{MaxSeqs: 32, StepBase: time.Millisecond, StepPerSeq: 10 * time.Microsecond, PrefillPerToken: time.Microsecond, MaxBatchedTokens: 512}
	w := uniform(40, 3000, 20)
	res, err := SimulateVirtual(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	if res.MaxStepTokens > 512 || res.MaxStepTokens < 500 || res.PrefillTokens != 40*3000 || res.Requests != 40 {
		t.Fatalf("%+v", res)
	}
	if res.Steps < 40*3000/512 {
		t.Fatalf("%d steps for %d prefill tokens at 512 a step", res.Steps, 40*3000)
	}
	cfg.MaxBatchedTokens = 0
	whole, _ := SimulateVirtual(cfg, w)
	if whole.MaxStepTokens <= 512 {
		t.Fatalf("unchunked: %+v", whole)
	}
}

// TestVirtualSpeed: a faster endpoint finishes the same work sooner, by its factor.
func TestVirtualSpeed(t *testing.T) {
	cfg, _ := ProfileConfig(ProfileVLLMH1008B)
	w := uniform(300, 400, 100)
	cfg.Speed = 1
	fast, _ := SimulateVirtual(cfg, w)
	cfg.Speed = 0.6
	slow, _ := SimulateVirtual(cfg, w)
	if !(fast.RequestsPerSecond > slow.RequestsPerSecond) {
		t.Fatalf("fast %.2f req/s, slow %.2f", fast.RequestsPerSecond, slow.RequestsPerSecond)
	}
	if r := slow.Duration.Seconds() / fast.Duration.Seconds(); math.Abs(r-1/0.6) > 0.01 {
		t.Fatalf("duration ratio %.3f, want %.3f", r, 1/0.6)
	}
}

// TestVirtualLegacyModel: with the engine features off, SimulateVirtual is the plain
// step model: a request alone takes ServiceTime(p, c, 1).
func TestVirtualLegacyModel(t *testing.T) {
	cfg := Config{StepBase: time.Millisecond, StepPerSeq: 100 * time.Microsecond, PrefillPerToken: 10 * time.Microsecond}
	res, err := SimulateVirtual(cfg, []VirtualRequest{{PromptTokens: 500, OutputTokens: 40}})
	if err != nil {
		t.Fatal(err)
	}
	if want := cfg.ServiceTime(500, 40, 1); res.Duration != want || res.MeanLatency != want {
		t.Fatalf("%+v, want %s", res, want)
	}
}

// TestAnswerTokens: drawn lengths stay in their bounds and max_tokens, are spread,
// and have about the configured median.
func TestAnswerTokens(t *testing.T) {
	cfg, _ := ProfileConfig(ProfileVLLMH1008BReasoning)
	cfg = cfg.WithDefaults()
	var ls []int
	for i := range 2000 {
		n := answerTokens(cfg, subHash([32]byte{}, "t", i), 0)
		if n < 100 || n > 400 {
			t.Fatalf("length %d outside [100,400]", n)
		}
		ls = append(ls, n)
		if m := answerTokens(cfg, subHash([32]byte{}, "t", i), 150); m > 150 {
			t.Fatalf("max_tokens 150: %d", m)
		}
	}
	below := 0
	for _, n := range ls {
		if n < 200 {
			below++
		}
	}
	if below < 850 || below > 1150 {
		t.Fatalf("%d of 2000 below the median 200", below)
	}
	if answerTokens(Config{}.WithDefaults(), [32]byte{}, 0) != 0 {
		t.Fatal("lengths on at zero values")
	}
}

// TestSpeedServiceTime: a lone request on a slower endpoint takes ServiceTime, which
// divides by Speed.
func TestSpeedServiceTime(t *testing.T) {
	cfg := Config{StepBase: time.Millisecond, StepPerSeq: 100 * time.Microsecond, PrefillPerToken: 10 * time.Microsecond, Speed: 0.5}
	res, err := SimulateVirtual(cfg, []VirtualRequest{{PromptTokens: 500, OutputTokens: 40}})
	if err != nil {
		t.Fatal(err)
	}
	plain := cfg
	plain.Speed = 1
	if want := cfg.ServiceTime(500, 40, 1); res.Duration != want || want != 2*plain.ServiceTime(500, 40, 1) {
		t.Fatalf("%s, want %s", res.Duration, want)
	}
	if c, p := cfg.Capacity(500, 40), plain.Capacity(500, 40); math.Abs(c-p/2) > 1e-9 {
		t.Fatalf("capacity %g, plain %g", c, p)
	}
}

// TestVirtualOversizedSequence: a sequence larger than the whole KV cache runs over it,
// alone, without preempting itself.
func TestVirtualOversizedSequence(t *testing.T) {
	cfg := Config{StepBase: time.Millisecond, KVCacheTokens: 4 * BlockTokens}
	res, err := SimulateVirtual(cfg, []VirtualRequest{{PromptTokens: 100, OutputTokens: 200}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Preemptions != 0 || res.OutputTokens != 200 || res.PrefillTokens != 100 || res.Steps > 202 {
		t.Fatalf("%+v", res)
	}
}
