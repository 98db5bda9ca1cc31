package judgesim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// distinct is the i-th of many distinct prompts.
func distinct(i int) []byte {
	return chatBody(flamePrompt("pointwise", 1, 5, nil, fmt.Sprintf("answer %d", i), ""), nil)
}

// validAnswer: the answer follows the grammar, with a valid label for classification.
func validAnswer(format, task, answer string, labels []string) bool {
	m := grammars[format][task].FindStringSubmatch(answer)
	return m != nil && (task != "classification" || slices.Contains(labels, m[1]))
}

func within(t *testing.T, what string, got, n int, rate float64) {
	t.Helper()
	if share := float64(got) / float64(n); share < rate-0.1 || share > rate+0.1 {
		t.Errorf("%s: %d of %d, want about %.0f%%", what, got, n, 100*rate)
	}
}

func TestErrorRate(t *testing.T) {
	if code, _ := post(t, newSim(t, fast(Config{ErrorRate: 1})), distinct(0)); code != http.StatusInternalServerError {
		t.Fatalf("error rate 1: status %d", code)
	}
	sim := newSim(t, fast(Config{ErrorRate: 0.3}))
	const n = 400
	firstFailed := -1
	for i := range n {
		code, _ := post(t, sim, distinct(i))
		if code == http.StatusInternalServerError && firstFailed < 0 {
			firstFailed = i
		}
	}
	st := sim.Stats()
	if st.Failed+st.Completed != n {
		t.Fatalf("stats %+v", st)
	}
	within(t, "failed", int(st.Failed), n, 0.3)
	// The same sequence on a fresh simulator: deterministic.
	again := newSim(t, fast(Config{ErrorRate: 0.3}))
	for i := range n {
		post(t, again, distinct(i))
	}
	if again.Stats().Failed != st.Failed {
		t.Fatalf("failures %d then %d", st.Failed, again.Stats().Failed)
	}
	// A retry of a failed request can succeed.
	for try := 0; ; try++ {
		if code, _ := post(t, sim, distinct(firstFailed)); code == http.StatusOK {
			break
		}
		if try > 50 {
			t.Fatal("a failed request never succeeds on retry")
		}
	}
}

func TestMalformedRate(t *testing.T) {
	sim := newSim(t, fast(Config{MalformedRate: 0.3}))
	const n = 200
	bad := 0
	for i := range n {
		for _, format := range []string{"flame", "prometheus2", "selene"} {
			task := []string{"pointwise", "classification", "pairwise"}[i%3]
			user := builders[format](task, 1, 5, []string{"yes", "no"}, fmt.Sprintf("answer %d", i), goodAnswer)
			code, cr := post(t, sim, chatBody(user, map[string]any{"logprobs": true, "top_logprobs": 2}))
			if code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			if !validAnswer(format, task, cr.content(), []string{"yes", "no"}) {
				bad++
				checkLogprobs(t, cr.content(), cr.Choices[0].Logprobs.Content, 2, -1, "")
			}
		}
	}
	if st := sim.Stats(); st.Malformed != int64(bad) || st.Completed != 3*n {
		t.Fatalf("%d malformed answers, stats %+v", bad, st)
	}
	within(t, "malformed", bad, 3*n, 0.3)
}

func TestHangRate(t *testing.T) {
	sim := newSim(t, fast(Config{HangRate: 0.25}))
	const n = 200
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered := 0
	for i := range n {
		wg.Go(func() {
			if code, _ := postCtx(ctx, t, sim, distinct(i)); code == http.StatusOK {
				mu.Lock()
				answered++
				mu.Unlock()
			}
		})
	}
	// Every request is answered or hangs; the hung ones hold until their client leaves.
	waitFor(t, "every request answered or hung", func() bool { st := sim.Stats(); return st.Completed+st.Hung == n })
	time.Sleep(10 * time.Millisecond)
	if st := sim.Stats(); st.Canceled != 0 {
		t.Fatalf("hung requests ended by themselves: %+v", st)
	}
	cancel()
	wg.Wait()
	st := sim.Stats()
	if st.Canceled != st.Hung || int64(answered) != st.Completed {
		t.Fatalf("answered %d, stats %+v", answered, st)
	}
	within(t, "hung", int(st.Hung), n, 0.25)
}

func TestSlow(t *testing.T) {
	// Alone in the batch, one at a time: a slow request's service is its steps × 3.
	cfg := Config{StepBase: 20 * time.Microsecond, StepPerSeq: -1, PrefillPerToken: -1, SlowRate: 1, SlowFactor: 3}
	sim := newSim(t, cfg)
	for i := range 5 {
		code, cr := post(t, sim, distinct(i))
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		if _, service := cr.durations(t); service != time.Duration(3*cr.Usage.CompletionTokens)*20*time.Microsecond {
			t.Fatalf("slow service %s for %d tokens", service, cr.Usage.CompletionTokens)
		}
	}
	sim = newSim(t, fast(Config{SlowRate: 0.5}))
	const n = 300
	for i := range n {
		post(t, sim, distinct(i))
	}
	within(t, "slowed", int(sim.Stats().Slowed), n, 0.5)
}

func TestServerHang(t *testing.T) {
	sim := newSim(t, Config{Hang: true, StepBase: 10 * time.Microsecond, StepPerSeq: -1, PrefillPerToken: -1})
	// A scoring request and a health check hang until the client leaves.
	for _, path := range []string{"/v1/chat/completions", "/health", "/healthz", "/pooling"} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			method, body := http.MethodPost, distinct(0)
			if strings.HasPrefix(path, "/health") {
				method, body = http.MethodGet, nil
			}
			done <- do(ctx, sim, method, path, body).Body.Len()
		}()
		time.Sleep(5 * time.Millisecond)
		select {
		case <-done:
			t.Fatalf("%s answered while hung", path)
		default:
		}
		cancel()
		if n := <-done; n != 0 {
			t.Fatalf("%s: %d bytes written by a hung server", path, n)
		}
	}
	if st := sim.Stats(); st.Hung != 2 || st.Canceled != 2 || st.Completed != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Switching Hang off releases the held requests, which are then served.
	held := make(chan int, 1)
	go func() { code, _ := post(t, sim, distinct(1)); held <- code }()
	waitFor(t, "held", func() bool { return sim.Stats().Hung == 3 })
	rec := do(context.Background(), sim, http.MethodPost, "/admin/faults", []byte(`{"hang":false}`))
	if rec.Code != http.StatusOK {
		t.Fatalf("admin: %d %s", rec.Code, rec.Body)
	}
	if code := <-held; code != http.StatusOK {
		t.Fatalf("released request: %d", code)
	}
	if rec := do(context.Background(), sim, http.MethodGet, "/health", nil); rec.Code != http.StatusOK {
		t.Fatalf("health after hang: %d", rec.Code)
	}
	// And on again at run time.
	if rec := do(context.Background(), sim, http.MethodPost, "/admin/faults", []byte(`{"hang":true}`)); rec.Code != http.StatusOK {
		t.Fatalf("admin: %d", rec.Code)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { code, _ := postCtx(ctx, t, sim, distinct(2)); done <- code }()
	waitFor(t, "hung again", func() bool { return sim.Stats().Hung == 4 })
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("hung request answered %d", code)
	}
}

func TestAdminFaults(t *testing.T) {
	sim := newSim(t, fast(Config{ErrorRate: 0.1}))
	ctx := context.Background()
	read := func() Faults {
		t.Helper()
		rec := do(ctx, sim, http.MethodGet, "/admin/faults", nil)
		var f Faults
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &f) != nil {
			t.Fatalf("GET /admin/faults: %d %s", rec.Code, rec.Body)
		}
		return f
	}
	if f := read(); f != (Faults{ErrorRate: 0.1, SlowFactor: DefaultSlowFactor}) {
		t.Fatalf("faults %+v", f)
	}
	// Fields left out keep their values.
	if rec := do(ctx, sim, http.MethodPost, "/admin/faults", []byte(`{"malformed_rate":0.5,"slow_rate":0.2,"slow_factor":4}`)); rec.Code != http.StatusOK {
		t.Fatalf("POST: %d %s", rec.Code, rec.Body)
	}
	if f := read(); f != (Faults{ErrorRate: 0.1, MalformedRate: 0.5, SlowRate: 0.2, SlowFactor: 4}) {
		t.Fatalf("faults %+v", f)
	}
	for body, want := range map[string]string{
		`{"error_rate":2}`:    "error_rate",
		`{"slow_factor":0.5}`: "slow_factor",
		`{"hang_rate":-1}`:    "hang_rate",
		`{"nope":1}`:          "nope",
		`{"hang":"yes"}`:      "hang",
		`not json`:            "invalid",
	} {
		rec := do(ctx, sim, http.MethodPost, "/admin/faults", []byte(body))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s: %d %s", body, rec.Code, rec.Body)
		}
	}
	if f := read(); f.ErrorRate != 0.1 || f.MalformedRate != 0.5 {
		t.Fatalf("a rejected POST changed the faults: %+v", f)
	}
	if rec := do(ctx, sim, http.MethodPut, "/admin/faults", nil); rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("PUT: %d", rec.Code)
	}
	if err := sim.SetFaults(Faults{ErrorRate: 3}); err == nil {
		t.Fatal("SetFaults accepted error rate 3")
	}
	// The faults apply to the next requests.
	if err := sim.SetFaults(Faults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	if code, _ := post(t, sim, distinct(0)); code != http.StatusInternalServerError {
		t.Fatalf("after SetFaults: %d", code)
	}
}
