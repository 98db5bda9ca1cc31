package pool

import (
	"math/rand/v2"
	"testing"
	"time"
)

// batchingServer is a continuous-batching GPU server in virtual time, as vLLM or SGLang
// run one: up to seqs requests decode together, one token each per step; a step takes
// base + perSeq × running, so latency grows with the batch (about 4× from 1 to 256
// sequences in judgesim's vllm-h100-8b profile) while throughput still rises; requests
// beyond seqs wait in the server's queue. Each request needs tokens drawn from
// [minTokens, maxTokens].
type batchingServer struct {
	seqs                 int
	base, perSeq         time.Duration
	minTokens, maxTokens int
}

// run feeds n completions to l from a closed loop that keeps l.current() requests in
// flight, and returns the median limit and the share of the server's sequence slots in
// use over the second half.
func (s batchingServer) run(l *limiter, n int, seed uint64) (medianLimit int, slotUse float64) {
	r := rand.New(rand.NewPCG(seed, 11))
	type req struct {
		sent time.Time
		left int
	}
	now := time.Unix(0, 0)
	var inFlight []*req // running first (the first seqs of them), then waiting
	var limits []int
	var slotTime, wall time.Duration
	done := 0
	for done < n {
		for len(inFlight) < l.current() {
			inFlight = append(inFlight, &req{sent: now, left: s.minTokens + r.IntN(s.maxTokens-s.minTokens+1)})
		}
		running := min(len(inFlight), s.seqs)
		step := s.base + time.Duration(running)*s.perSeq
		now = now.Add(step)
		if done >= n/2 {
			slotTime += time.Duration(running) * step
			wall += step
		}
		kept := inFlight[:0]
		for i, q := range inFlight {
			if i < running {
				q.left--
			}
			if q.left > 0 {
				kept = append(kept, q)
				continue
			}
			l.onSuccess(now.Sub(q.sent), len(inFlight), now)
			limits = append(limits, l.current())
			done++
		}
		inFlight = kept
	}
	late := limits[len(limits)/2:]
	return median(late), slotTime.Seconds() / (float64(s.seqs) * wall.Seconds())
}

// On a continuous-batching server, latency grows with the batch while throughput still
// rises: the limit must climb past the server's max_num_seqs (a full batch and a short
// queue) instead of stopping where latency first doubles. The probes show that the extra
// concurrency bought throughput, and let the baseline follow.
func TestLimiterFillsAContinuousBatchingServer(t *testing.T) {
	srv := batchingServer{seqs: 256, base: 6 * time.Millisecond, perSeq: 75 * time.Microsecond, minTokens: 100, maxTokens: 400}
	for seed := uint64(1); seed <= 3; seed++ {
		l := newLimiter(Concurrency{Mode: ModeAdaptive, Min: 1, LatencyTolerance: 2}, 1024)
		m, use := srv.run(&l, 30000, seed)
		t.Logf("seed %d: median limit %d, %.1f%% of the sequence slots in use", seed, m, 100*use)
		// The limiter that ended slow start on latency held 55–118 here (23–45% of the
		// slots): it stopped where latency first doubled.
		if use < 0.95 || m < srv.seqs {
			t.Errorf("seed %d: median limit %d, slots %.1f%% in use: want the limit above %d and ≥ 95%% in use", seed, m, 100*use, srv.seqs)
		}
		if m > 2*srv.seqs {
			t.Errorf("seed %d: median limit %d: more than twice max_num_seqs only queues in the server", seed, m)
		}
	}
}

// An endpoint that starts under light load (its limit unused) is still in slow start when
// a backlog arrives: windows it did not fill say nothing about the server's rate.
func TestLimiterSlowStartOutlivesLightLoad(t *testing.T) {
	l := newLimiter(Concurrency{Mode: ModeAdaptive, Min: 1, LatencyTolerance: 2}, 1024)
	now := time.Unix(0, 0)
	for range 200 {
		now = now.Add(10 * time.Millisecond)
		l.onSuccess(20*time.Millisecond, 1, now) // 1 of 8 in use
	}
	if !l.slowStart {
		t.Fatal("slow start ended while the endpoint was app-limited")
	}
	_, util := simServer{128, 20 * time.Millisecond, 0.2}.run(&l, 4000, 1)
	if util < 0.85 {
		t.Errorf("server %.0f%% busy after a light start, want ≥ 85%%", 100*util)
	}
}

// Boosted growth ends at any decrease, an overload's too.
func TestLimiterOverloadEndsBoost(t *testing.T) {
	l := newLimiter(Concurrency{Mode: ModeAdaptive, Min: 1, LatencyTolerance: 2}, 1024)
	l.slowStart, l.boost = false, true
	l.onOverload(time.Second, time.Unix(100, 0))
	if l.boost {
		t.Fatal("still boosted after an overload backoff")
	}
}

// With a latency tolerance near 1 the drained limit is nearly the limit: a probe that
// kept the throughput must not start the next one at once, forever.
func TestLimiterNoEndlessProbesAtLowTolerance(t *testing.T) {
	for _, tol := range []float64{1.05, 1.1} {
		probes, draining, total := 0, 0, 0
		was := false
		// A saturated queueing server of capacity 16: latency grows with what is in flight.
		l2 := newLimiter(Concurrency{Mode: ModeAdaptive, Min: 1, LatencyTolerance: tol}, 256)
		now := time.Unix(0, 0)
		for i := range 6000 {
			now = now.Add(time.Millisecond)
			inFlight := l2.current()
			lat := time.Duration(float64(20*time.Millisecond) * float64(max(inFlight, 16)) / 16)
			l2.onSuccess(lat, inFlight, now)
			if l2.draining && !was {
				probes++
			}
			if l2.draining {
				draining++
			}
			was = l2.draining
			total = i + 1
		}
		if share := float64(draining) / float64(total); share > 0.5 {
			t.Errorf("tolerance %.2f: %d probes, %.0f%% of completions while draining", tol, probes, 100*share)
		}
	}
}
