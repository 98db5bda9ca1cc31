package judgesim

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// VirtualRequest is one request of a workload for SimulateVirtual: one sequence.
type VirtualRequest struct {
	// Arrival is when the request arrives, from the start of the run.
	Arrival time.Duration
	// PromptTokens is the prompt's length; 0 takes len(Prompt)/4 rounded up.
	PromptTokens int
	// Prompt is the prompt text, used only for prefix caching (its 64-byte blocks are
	// its 16-token KV blocks); it may be empty.
	Prompt string
	// OutputTokens is the tokens the request generates (at least 1).
	OutputTokens int
}

// VirtualResult is what SimulateVirtual measured.
type VirtualResult struct {
	Requests     int           // requests finished (all of them)
	Duration     time.Duration // from the first arrival until the last request finished
	PromptTokens int64         // of the requests
	OutputTokens int64         // generated
	// RequestsPerSecond and OutputTokensPerSecond are over Duration, as vLLM's
	// benchmark_serving reports them.
	RequestsPerSecond, OutputTokensPerSecond float64
	// MeanLatency is the mean of arrival until the last token; MeanTTFT of arrival
	// until the first token.
	MeanLatency, MeanTTFT time.Duration
	Steps                 int64
	MaxStepTokens         int // most tokens computed in one step (decodes and prefill chunks)
	MaxRunning            int // most sequences holding a slot at once
	PrefillTokens         int64
	PrefillSavedTokens    int64
	DecodeTokens          int64
	Preemptions           int64
	PeakKVBlocksUsed      int64
}

// SimulateVirtual runs workload through the same scheduling logic as a Simulator
// (engine: slots, KV blocks and preemption, chunked prefill, prefix caching, step
// times, Speed) in virtual time: nothing sleeps, and the result is deterministic. The
// queue is unbounded (QueueLimit does not apply) and there are no faults; cfg's zero
// fields get their defaults.
func SimulateVirtual(cfg Config, workload []VirtualRequest) (VirtualResult, error) {
	if err := cfg.Validate(); err != nil {
		return VirtualResult{}, fmt.Errorf("simulate: %w", err)
	}
	cfg = cfg.WithDefaults()
	reqs := slices.Clone(workload)
	slices.SortStableFunc(reqs, func(a, b VirtualRequest) int {
		return int(max(min(a.Arrival-b.Arrival, 1), -1))
	})
	var res VirtualResult
	if len(reqs) == 0 {
		return res, nil
	}
	e := newEngine(cfg)
	arrival := make(map[*seq]time.Duration, len(reqs))
	t, start := reqs[0].Arrival, reqs[0].Arrival
	var latency, ttft time.Duration
	next, done := 0, 0
	const maxSteps = 1 << 30
	for done < len(reqs) {
		for next < len(reqs) && reqs[next].Arrival <= t {
			r := reqs[next]
			p := r.PromptTokens
			if p == 0 {
				p = tokens(len(r.Prompt))
			}
			q := &seq{g: &group{}, prompt: p, need: max(r.OutputTokens, 1)}
			if cfg.PrefixCaching {
				q.chain = promptChain(r.Prompt)
			}
			arrival[q] = r.Arrival
			res.PromptTokens += int64(p)
			e.waiting = append(e.waiting, q)
			next++
		}
		e.refill()
		res.MaxRunning = max(res.MaxRunning, len(e.running))
		if len(e.running) == 0 {
			t = reqs[next].Arrival
			continue
		}
		if res.Steps++; res.Steps > maxSteps {
			return res, errors.New("simulate: no progress")
		}
		p := e.plan()
		t += p.d
		tokens := 0
		for i, q := range p.batch {
			tokens += p.chunks[i]
			if q.emitted == 0 && p.chunks[i] == q.needTokens() {
				ttft += t - arrival[q]
			}
		}
		res.MaxStepTokens = max(res.MaxStepTokens, tokens)
		for _, q := range e.commit(p) {
			done++
			latency += t - arrival[q]
			res.OutputTokens += int64(q.emitted)
		}
	}
	res.Requests = done
	res.Duration = t - start
	if s := res.Duration.Seconds(); s > 0 {
		res.RequestsPerSecond = float64(done) / s
		res.OutputTokensPerSecond = float64(res.OutputTokens) / s
	}
	res.MeanLatency = latency / time.Duration(done)
	res.MeanTTFT = ttft / time.Duration(done)
	res.PrefillTokens = e.prefillComputed
	res.PrefillSavedTokens = e.prefillSaved
	res.DecodeTokens = e.decodeTokens
	res.Preemptions = e.preemptions
	if e.kv != nil {
		res.PeakKVBlocksUsed = int64(e.kv.peak)
	}
	return res, nil
}
