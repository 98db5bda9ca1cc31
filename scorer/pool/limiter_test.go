package pool

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// simServer is a simulated GPU server in virtual time: capacity requests run at once
// (0: unlimited), each for about service (± jitter), the rest queue FIFO. A closed loop
// of clients keeps the limiter's endpoint full.
type simServer struct {
	capacity int
	service  time.Duration
	jitter   float64
}

// run feeds n completions to l and returns the limit after each one, and the share of
// the server's capacity used over the second half.
func (s simServer) run(l *limiter, n int, seed uint64) (limits []int, utilisation float64) {
	r := rand.New(rand.NewPCG(seed, 7))
	now := time.Unix(0, 0)
	slots := make([]time.Time, s.capacity) // when each server slot is next free
	type req struct{ admitted, done time.Time }
	var running []req
	admit := func() {
		for len(running) < l.current() {
			svc := time.Duration(float64(s.service) * (1 + s.jitter*(2*r.Float64()-1)))
			if s.capacity == 0 {
				running = append(running, req{now, now.Add(svc)})
				continue
			}
			k := 0
			for i := range slots {
				if slots[i].Before(slots[k]) {
					k = i
				}
			}
			start := now
			if slots[k].After(start) {
				start = slots[k]
			}
			slots[k] = start.Add(svc)
			running = append(running, req{now, slots[k]})
		}
	}
	admit()
	var half time.Time
	for i := range n {
		k := 0
		for j := range running {
			if running[j].done.Before(running[k].done) {
				k = j
			}
		}
		done := running[k]
		running = append(running[:k], running[k+1:]...)
		now = done.done
		l.onSuccess(done.done.Sub(done.admitted), len(running)+1, now)
		admit()
		limits = append(limits, l.current())
		if i == n/2 {
			half = now
		}
	}
	if s.capacity > 0 {
		best := float64(n-n/2-1) * s.service.Seconds() / float64(s.capacity)
		utilisation = best / now.Sub(half).Seconds()
	}
	return limits, utilisation
}

func median(xs []int) int {
	s := append([]int(nil), xs...)
	sort.Ints(s)
	return s[len(s)/2]
}

// The limit settles a little above a queueing server's capacity, from below and from
// above, and keeps the server busy.
func TestLimiterSettlesAboveCapacity(t *testing.T) {
	for _, tc := range []struct {
		capacity, initial, max int
		jitter                 float64
	}{
		{4, 1, 64, 0}, {4, 32, 64, 0}, {4, 1, 64, 0.5}, {4, 48, 64, 0.5},
		{16, 1, 256, 0.3}, {16, 128, 256, 0.3}, {64, 8, 1024, 0.3},
	} {
		for seed := uint64(1); seed <= 3; seed++ {
			l := newLimiter(Concurrency{Mode: ModeAdaptive, Min: 1, Initial: tc.initial, LatencyTolerance: 2}, tc.max)
			limits, util := simServer{tc.capacity, 20 * time.Millisecond, tc.jitter}.run(&l, 8000, seed)
			late := limits[len(limits)/2:]
			if m := median(late); m < tc.capacity || m > 3*tc.capacity {
				t.Errorf("capacity %d, initial %d, jitter %.1f, seed %d: median limit %d, want within [%d, %d]",
					tc.capacity, tc.initial, tc.jitter, seed, m, tc.capacity, 3*tc.capacity)
			}
			if util < 0.85 {
				t.Errorf("capacity %d, initial %d, jitter %.1f, seed %d: server %.0f%% busy, want ≥ 85%%",
					tc.capacity, tc.initial, tc.jitter, seed, 100*util)
			}
		}
	}
}

// Under a server whose latency does not depend on load, the limit grows to its ceiling.
func TestLimiterGrowsUnderFastServer(t *testing.T) {
	l := newLimiter(Concurrency{Mode: ModeAdaptive, Min: 1, Initial: 1, LatencyTolerance: 2}, 64)
	simServer{0, 10 * time.Millisecond, 0.3}.run(&l, 4000, 1)
	if got := l.limit; got != 64 { // the limit, not current(): a probe may be draining
		t.Errorf("limit %.1f, want 64", got)
	}
}

// When the server gets slower for good, a probe moves the baseline up: the limit does
// not collapse to the minimum.
func TestLimiterFollowsSlowerServer(t *testing.T) {
	l := newLimiter(Concurrency{Mode: ModeAdaptive, Min: 1, Initial: 8, LatencyTolerance: 2}, 64)
	simServer{8, 20 * time.Millisecond, 0.2}.run(&l, 3000, 1)
	limits, util := simServer{8, 100 * time.Millisecond, 0.2}.run(&l, 6000, 2)
	if m := median(limits[len(limits)/2:]); m < 8 || m > 24 {
		t.Errorf("median limit %d after the slowdown, want within [8, 24]", m)
	}
	if util < 0.85 {
		t.Errorf("server %.0f%% busy, want ≥ 85%%", 100*util)
	}
}

func TestLimiterAppLimited(t *testing.T) {
	l := newLimiter(Concurrency{Mode: ModeAdaptive, Min: 1, Initial: 10, LatencyTolerance: 2}, 64)
	now := time.Unix(0, 0)
	for range 1000 {
		now = now.Add(10 * time.Millisecond)
		l.onSuccess(10*time.Millisecond, 2, now) // 2 of 10 in use
	}
	if got := l.current(); got != 10 {
		t.Errorf("app-limited endpoint: limit %d, want 10 (no evidence to grow)", got)
	}
}

func TestLimiterOverloadOncePerWindow(t *testing.T) {
	l := newLimiter(Concurrency{Mode: ModeAdaptive, Min: 2, Initial: 20, LatencyTolerance: 2}, 64)
	now := time.Unix(0, 0)
	l.onSuccess(time.Second, 20, now) // short = 1s
	before := l.limit
	for range 10 { // a burst of 429s within one latency window
		l.onOverload(time.Millisecond, now.Add(10*time.Millisecond))
	}
	if want := before * overloadBackoff; l.limit != want {
		t.Errorf("after a burst: limit %.2f, want %.2f", l.limit, want)
	}
	l.onOverload(time.Millisecond, now.Add(2*time.Second))
	if want := before * overloadBackoff * overloadBackoff; l.limit != want {
		t.Errorf("a window later: limit %.2f, want %.2f", l.limit, want)
	}
	for i := range 100 {
		l.onOverload(time.Millisecond, now.Add(time.Duration(3+2*i)*time.Second))
	}
	if l.current() != 2 {
		t.Errorf("limit %d, want the minimum 2", l.current())
	}
}

func TestLimiterOverloadBeforeAnySuccess(t *testing.T) {
	l := newLimiter(Concurrency{Mode: ModeAdaptive, Min: 1, Initial: 8, LatencyTolerance: 2}, 64)
	now := time.Unix(0, 0)
	for i := range 8 { // a hung endpoint's requests time out together
		l.onOverload(time.Second, now.Add(time.Duration(i)*time.Millisecond))
	}
	if l.current() != 7 {
		t.Errorf("limit %d after one burst of timeouts, want 7 (8 × 0.9 once)", l.current())
	}
}

func TestLimiterFixed(t *testing.T) {
	l := newLimiter(Concurrency{Mode: ModeFixed, Min: 1, Initial: 3, LatencyTolerance: 2}, 12)
	now := time.Unix(0, 0)
	for i := range 100 {
		now = now.Add(time.Second)
		l.onSuccess(time.Duration(i+1)*time.Second, 12, now)
		l.onOverload(time.Second, now)
	}
	if l.current() != 12 {
		t.Errorf("fixed limit %d, want 12", l.current())
	}
}

func TestBreakerTransitions(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBreaker(Breaker{Failures: 3, Cooldown: time.Second}, false)
	for i := range 2 {
		if b.failure(false, now) {
			t.Fatalf("opened after %d failures", i+1)
		}
	}
	b.success(false) // resets the count
	b.failure(false, now)
	b.failure(false, now)
	b.neutral(false) // a permanent failure does not reset it
	if !b.failure(false, now) || b.state != stateOpen {
		t.Fatalf("not open after 3 consecutive failures: %v", b.state)
	}
	if ok, _ := b.admits(now.Add(999 * time.Millisecond)); ok {
		t.Fatal("admits during the cooldown")
	}
	ok, changed := b.admits(now.Add(time.Second))
	if !ok || !changed || b.state != stateHalfOpen {
		t.Fatalf("after the cooldown: ok %v changed %v state %v", ok, changed, b.state)
	}
	if !b.acquired() {
		t.Fatal("first request after the cooldown is not the trial")
	}
	if ok, _ := b.admits(now.Add(time.Second)); ok {
		t.Fatal("admits a second request while the trial runs")
	}
	b.success(false) // a request from before the opening decides nothing
	if b.state != stateHalfOpen {
		t.Fatalf("state %v after an old request's success", b.state)
	}
	at := now.Add(2 * time.Second)
	if !b.failure(true, at) || b.state != stateOpen || b.cooldown != 2*time.Second {
		t.Fatalf("failed trial: state %v cooldown %s, want open for 2s", b.state, b.cooldown)
	}
	b.admits(at.Add(2 * time.Second))
	b.acquired()
	if !b.success(true) || b.state != stateClosed || b.cooldown != time.Second {
		t.Fatalf("successful trial: state %v cooldown %s, want closed, 1s", b.state, b.cooldown)
	}

	// With a health probe, the prober decides; the cooldown doubles up to the cap.
	p := newBreaker(Breaker{Failures: 1, Cooldown: 4 * time.Minute}, true)
	p.failure(false, now)
	if ok, _ := p.admits(now.Add(time.Hour)); ok {
		t.Fatal("a probed breaker admitted a request")
	}
	p.probing()
	p.probed(false, now)
	if p.state != stateOpen || p.cooldown != MaxBreakerCooldown {
		t.Fatalf("failed probe: %v %s", p.state, p.cooldown)
	}
	p.probed(true, now)
	if p.state != stateClosed {
		t.Fatalf("healthy probe: %v", p.state)
	}
}
