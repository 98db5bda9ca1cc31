package judgesim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestConcurrencyBound(t *testing.T) {
	const maxSeqs, n = 4, 60
	sim := newSim(t, Config{MaxSeqs: maxSeqs, StepBase: 20 * time.Microsecond, StepPerSeq: 5 * time.Microsecond, PrefillPerToken: -1})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	cfg := sim.Config()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := chatBody(flamePrompt("pointwise", 1, 5, nil, fmt.Sprintf("answer %d. %s", i, goodAnswer), ""), nil)
			resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d", resp.StatusCode)
				return
			}
			// Service is at least alone in the batch and at most in a full one.
			var cr chatResp
			cr.header = resp.Header
			_, service := cr.durations(t)
			c := tokens(len("Reasoning: ")) // any answer has more tokens than this
			if service < cfg.ServiceTime(0, c, 1) || service > cfg.ServiceTime(0, 200, maxSeqs) {
				t.Errorf("service %s", service)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	st := sim.Stats()
	if st.Requests != n || st.Completed != n || st.MaxRunning > maxSeqs || st.MaxRunning < 1 || st.Running != 0 ||
		st.Queued != 0 || st.Steps <= 0 || st.BusyTime <= 0 || st.BusySeqTime < st.BusyTime || st.Sequences != n {
		t.Fatalf("stats %+v", st)
	}
	if u := Utilization(st, wall); !(u > 0 && u <= 1) {
		t.Fatalf("utilization %g over %s, stats %+v", u, wall, st)
	}
	t.Logf("max running %d (max seqs %d), max queued %d, %d steps, utilization %.2f", st.MaxRunning, maxSeqs, st.MaxQueued, st.Steps, Utilization(st, wall))
}

func TestQueueOverflow(t *testing.T) {
	const maxSeqs, queue = 2, 3
	sim, steps := manual(t, Config{MaxSeqs: maxSeqs, QueueLimit: queue, StepBase: time.Millisecond})
	codes := make(chan int, maxSeqs+queue)
	send := func(i int) {
		code, _ := post(t, sim, chatBody(flamePrompt("pointwise", 1, 5, nil, fmt.Sprintf("%d %s", i, goodAnswer), ""), nil))
		codes <- code
	}
	for i := range maxSeqs {
		go send(i)
	}
	waitFor(t, "running slots", func() bool { return sim.Stats().Running == maxSeqs })
	for i := range queue {
		go send(maxSeqs + i)
	}
	waitFor(t, "queued requests", func() bool { return sim.Stats().Queued == queue })
	if code, _ := post(t, sim, chatBody(goodAnswer, nil)); code != http.StatusTooManyRequests {
		t.Fatalf("over the queue: status %d, want 429", code)
	}
	// A reward batch that does not fit either; one that never can is refused for good.
	if rec := do(context.Background(), sim, http.MethodPost, "/pooling", []byte(`{"input":["a"]}`)); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("pooling over the queue: %d", rec.Code)
	}
	if rec := do(context.Background(), sim, http.MethodPost, "/pooling", []byte(`{"input":["a","b","c","d","e","f"]}`)); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("pooling over max-seqs+queue-limit: %d", rec.Code)
	}
	steps.until(t, "all answered", func() bool { return len(codes) == maxSeqs+queue })
	for range maxSeqs + queue {
		if code := <-codes; code != http.StatusOK {
			t.Errorf("status %d", code)
		}
	}
	st := sim.Stats()
	if st.Requests != maxSeqs+queue+3 || st.Completed != maxSeqs+queue || st.Rejected != 2 || st.BadRequests != 1 ||
		st.MaxRunning != maxSeqs || st.MaxQueued != queue || st.Running != 0 || st.Queued != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNoQueue(t *testing.T) {
	sim, steps := manual(t, Config{MaxSeqs: 1, QueueLimit: -1, StepBase: time.Millisecond})
	done := make(chan int, 1)
	go func() {
		code, _ := post(t, sim, chatBody(goodAnswer, nil))
		done <- code
	}()
	waitFor(t, "the running request", func() bool { return sim.Stats().Running == 1 })
	if code, _ := post(t, sim, chatBody(goodAnswer, nil)); code != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", code)
	}
	steps.until(t, "the answer", func() bool { return len(done) == 1 })
	if code := <-done; code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
}

// TestStepModel: the service time is the model's, exactly, and grows with the batch.
func TestStepModel(t *testing.T) {
	cfg := Config{MaxSeqs: 4, StepBase: time.Millisecond, StepPerSeq: 100 * time.Microsecond, PrefillPerToken: 10 * time.Microsecond}
	sim, steps := manual(t, cfg)
	cfg = sim.Config()
	type result struct {
		code int
		cr   chatResp
	}
	send := func(body []byte) chan result {
		ch := make(chan result, 1)
		go func() {
			code, cr := post(t, sim, body)
			ch <- result{code, cr}
		}()
		return ch
	}
	get := func(ch chan result) chatResp {
		steps.until(t, "an answer", func() bool { return len(ch) == 1 })
		r := <-ch
		if r.code != http.StatusOK {
			t.Fatalf("status %d", r.code)
		}
		return r.cr
	}
	short := chatBody(flamePrompt("pointwise", 1, 5, nil, "Short answer.", ""), map[string]any{"max_tokens": 2})
	long := chatBody(flamePrompt("pointwise", 1, 5, nil, goodAnswer, ""), nil)

	// Alone: exactly ServiceTime(p, c, 1), and no queueing to speak of.
	alone := get(send(short))
	_, sAlone := alone.durations(t)
	if want := cfg.ServiceTime(alone.Usage.PromptTokens, 2, 1); alone.Usage.CompletionTokens != 2 || sAlone != want {
		t.Fatalf("alone: service %s, want %s (usage %+v)", sAlone, want, alone.Usage)
	}

	// The short request joins while the long one runs: it runs in a batch of 2.
	lch := send(long)
	waitFor(t, "the long request running", func() bool { return sim.Stats().Running == 1 })
	sch := send(short)
	waitFor(t, "the short request admitted", func() bool { return sim.Stats().Running == 2 })
	s, l := get(sch), get(lch)
	_, sService := s.durations(t)
	_, lService := l.durations(t)
	if want := cfg.ServiceTime(s.Usage.PromptTokens, 2, 2); sService != want || sService <= sAlone {
		t.Fatalf("in a batch of 2: service %s, want %s (alone %s)", sService, want, sAlone)
	}
	// The long one ran alone except for the short one's two steps, whose prefill it waited out.
	want := cfg.ServiceTime(l.Usage.PromptTokens, l.Usage.CompletionTokens, 1) + 2*cfg.StepPerSeq + time.Duration(s.Usage.PromptTokens)*cfg.PrefillPerToken
	if lService != want {
		t.Fatalf("long: service %s, want %s", lService, want)
	}
	st := sim.Stats()
	if st.Steps != int64(2+l.Usage.CompletionTokens) || st.BusySeqTime != sAlone+sService+lService {
		t.Fatalf("stats %+v; services %s %s %s", st, sAlone, sService, lService)
	}
}

// TestRewardBatchIsOneStep: a batch of N items costs the prefill and one step.
func TestRewardBatchIsOneStep(t *testing.T) {
	cfg := Config{MaxSeqs: 8, StepBase: 30 * time.Microsecond, StepPerSeq: 7 * time.Microsecond, PrefillPerToken: time.Microsecond}
	sim := newSim(t, cfg)
	body, _ := json.Marshal(map[string]any{"input": []string{goodAnswer, "short", "", "12345678"}})
	rec := do(context.Background(), sim, http.MethodPost, "/pooling", body)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d %s", rec.Code, rec.Body)
	}
	service, err := time.ParseDuration(rec.Header().Get("X-Judgesim-Service-Time"))
	prompt := tokens(len(goodAnswer)) + 2 + 1 + 2 // each item at least one token
	if want := 30*time.Microsecond + 4*7*time.Microsecond + time.Duration(prompt)*time.Microsecond; err != nil || service != want {
		t.Fatalf("service %s (%v), want %s", service, err, want)
	}
	if st := sim.Stats(); st.Steps != 1 || st.Sequences != 4 || st.MaxRunning != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCanceledWhileRunningOrQueued(t *testing.T) {
	sim, steps := manual(t, Config{MaxSeqs: 1, StepBase: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	running := make(chan int, 1)
	go func() { code, _ := postCtx(ctx, t, sim, chatBody(goodAnswer, nil)); running <- code }()
	waitFor(t, "running", func() bool { return sim.Stats().Running == 1 })
	qctx, qcancel := context.WithCancel(context.Background())
	queued := make(chan int, 1)
	go func() { code, _ := postCtx(qctx, t, sim, chatBody("other "+goodAnswer, nil)); queued <- code }()
	waitFor(t, "queued", func() bool { return sim.Stats().Queued == 1 })
	qcancel()
	<-queued
	waitFor(t, "the queue emptied", func() bool { return sim.Stats().Queued == 0 })
	cancel()
	<-running
	// The canceled sequence leaves the batch at the end of its step.
	steps.until(t, "the slot freed", func() bool { return sim.Stats().Running == 0 })
	if st := sim.Stats(); st.Canceled != 2 || st.Completed != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The slot serves the next request.
	next := make(chan int, 1)
	go func() { code, _ := post(t, sim, chatBody(goodAnswer, nil)); next <- code }()
	steps.until(t, "the next answer", func() bool { return len(next) == 1 })
	if code := <-next; code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
}

// TestCloseStopsScheduler: Close answers what is held with 503 and stops the scheduler
// goroutine; it is idempotent.
func TestCloseStopsScheduler(t *testing.T) {
	before := runtime.NumGoroutine()
	sim := newSimulator(Config{MaxSeqs: 1, StepBase: time.Hour}, nil)
	codes := make(chan int, 2)
	for i := range 2 {
		go func() { code, _ := post(t, sim, chatBody(fmt.Sprint(i), nil)); codes <- code }()
	}
	waitFor(t, "running and queued", func() bool { st := sim.Stats(); return st.Running == 1 && st.Queued == 1 })
	sim.Close()
	for range 2 {
		if code := <-codes; code != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", code)
		}
	}
	select {
	case <-sim.done:
	default:
		t.Fatal("scheduler still running after Close")
	}
	sim.Close()
	if err := sim.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, _ := post(t, sim, chatBody("after", nil)); code != http.StatusServiceUnavailable {
		t.Fatalf("after Close: %d", code)
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// TestShutdownDrains: Shutdown answers hung and new requests 503, lets running ones
// finish, then stops.
func TestShutdownDrains(t *testing.T) {
	sim, steps := manual(t, Config{MaxSeqs: 2, StepBase: time.Millisecond})
	running := make(chan int, 1)
	go func() { code, _ := post(t, sim, chatBody(goodAnswer, nil)); running <- code }()
	waitFor(t, "running", func() bool { return sim.Stats().Running == 1 })
	if err := sim.SetFaults(Faults{HangRate: 1}); err != nil {
		t.Fatal(err)
	}
	hung := make(chan int, 1)
	go func() { code, _ := post(t, sim, chatBody("hang", nil)); hung <- code }()
	waitFor(t, "hung", func() bool { return sim.Stats().Hung == 1 })
	if err := sim.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	shut := make(chan error, 1)
	go func() { shut <- sim.Shutdown(context.Background()) }()
	if code := <-hung; code != http.StatusServiceUnavailable {
		t.Fatalf("hung request at shutdown: %d", code)
	}
	waitFor(t, "new requests refused", func() bool {
		code, _ := post(t, sim, chatBody("new", nil))
		return code == http.StatusServiceUnavailable
	})
	steps.until(t, "drained", func() bool { return len(shut) == 1 })
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if code := <-running; code != http.StatusOK {
		t.Fatalf("running request at shutdown: %d", code)
	}
	// Past its deadline, Shutdown stops what is left.
	sim2, _ := manual(t, Config{MaxSeqs: 1, StepBase: time.Millisecond})
	left := make(chan int, 1)
	go func() { code, _ := post(t, sim2, chatBody(goodAnswer, nil)); left <- code }()
	waitFor(t, "running", func() bool { return sim2.Stats().Running == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := sim2.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown past its deadline returned nil")
	}
	if code := <-left; code != http.StatusServiceUnavailable {
		t.Fatalf("left at shutdown: %d", code)
	}
}
