package pool

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestBreakerKeepsDegradedEndpoint: runs of failures from an endpoint that fails a
// minority of requests do not open the breaker; an endpoint that stops answering still
// opens it within 4×threshold failures.
func TestBreakerKeepsDegradedEndpoint(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBreaker(Breaker{Failures: 5, Cooldown: time.Second}, false)
	for range 15 {
		b.success(false)
	}
	for i := range 5 { // a run of 5 after 15 successes: 5 of the last 20 failed
		if b.failure(false, now) {
			t.Fatalf("opened at failure %d of a run after 15 successes", i+1)
		}
	}
	// The endpoint stops answering: 15 of the last 20 failed opens it.
	opened := 0
	for i := range 20 {
		if b.failure(false, now) {
			opened = i + 1
			break
		}
	}
	if opened != 10 || b.state != stateOpen {
		t.Fatalf("opened after %d more failures (state %v), want 10: 15 of the last 20", opened, b.state)
	}

	// 30% errors at random over many requests: the breaker stays closed.
	rng := rand.New(rand.NewPCG(1, 2))
	d := newBreaker(Breaker{Failures: 5, Cooldown: time.Second}, false)
	runs := 0
	streak := 0
	for range 100_000 {
		if rng.Float64() < 0.3 {
			streak++
			if streak == 5 {
				runs++
			}
			if d.failure(false, now) {
				t.Fatalf("a 30%%-error endpoint was ejected (after %d runs of 5 failures)", runs)
			}
		} else {
			streak = 0
			d.success(false)
		}
	}
	if runs < 50 {
		t.Fatalf("only %d runs of 5 failures: the check above proved little", runs)
	}

	// A breaker that closes again starts with a clean history.
	b.close()
	for i := range 5 {
		if b.failure(false, now) != (i == 4) {
			t.Fatalf("after closing, failure %d: state %v", i+1, b.state)
		}
	}
}
