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

// TestAdminFaultsEachField switches each fault flag's field alone through POST
// /admin/faults on a fresh simulator, then checks that GET answers it (and the other
// fields unchanged) and that the next request shows the fault.
func TestAdminFaultsEachField(t *testing.T) {
	ctx := context.Background()
	// hangs posts a request that must hang, then lets it go.
	hangs := func(t *testing.T, sim *Simulator) {
		t.Helper()
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan int, 1)
		go func() { code, _ := postCtx(rctx, t, sim, distinct(0)); done <- code }()
		waitFor(t, "a hung request", func() bool { return sim.Stats().Hung == 1 })
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("a hung request answered %d", code)
		}
	}
	for _, tc := range []struct {
		field  string // JSON field, as the flag with _ for -
		cfg    Config
		body   string
		change func(*Faults)
		effect func(*testing.T, *Simulator)
	}{
		{"error_rate", fast(Config{}), `{"error_rate":1}`, func(f *Faults) { f.ErrorRate = 1 },
			func(t *testing.T, sim *Simulator) {
				if code, _ := post(t, sim, distinct(0)); code != http.StatusInternalServerError {
					t.Fatalf("status %d, want 500", code)
				}
			}},
		{"slow_rate", fast(Config{}), `{"slow_rate":1}`, func(f *Faults) { f.SlowRate = 1 },
			func(t *testing.T, sim *Simulator) {
				post(t, sim, distinct(0))
				if st := sim.Stats(); st.Slowed != 1 {
					t.Fatalf("slowed %d, want 1", st.Slowed)
				}
			}},
		// Every request slow, 20µs steps alone in the batch: the service time is
		// slow_factor × tokens × 20µs.
		{"slow_factor", Config{SlowRate: 1, StepBase: 20 * time.Microsecond, StepPerSeq: -1, PrefillPerToken: -1},
			`{"slow_factor":3}`, func(f *Faults) { f.SlowFactor = 3 },
			func(t *testing.T, sim *Simulator) {
				_, cr := post(t, sim, distinct(0))
				if _, service := cr.durations(t); service != time.Duration(3*cr.Usage.CompletionTokens)*20*time.Microsecond {
					t.Fatalf("service %s for %d tokens, want slow factor 3", service, cr.Usage.CompletionTokens)
				}
			}},
		{"hang_rate", fast(Config{}), `{"hang_rate":1}`, func(f *Faults) { f.HangRate = 1 }, hangs},
		{"malformed_rate", fast(Config{}), `{"malformed_rate":1}`, func(f *Faults) { f.MalformedRate = 1 },
			func(t *testing.T, sim *Simulator) {
				_, cr := post(t, sim, distinct(0))
				if st := sim.Stats(); st.Malformed != 1 || validAnswer("flame", "pointwise", cr.content(), nil) {
					t.Fatalf("malformed %d, answer %q", st.Malformed, cr.content())
				}
			}},
		{"hang", fast(Config{}), `{"hang":true}`, func(f *Faults) { f.Hang = true }, hangs},
		// Response A is the worse one: only the bias makes the answer A.
		{"position_bias", fast(Config{}), `{"position_bias":1}`, func(f *Faults) { f.PositionBias = 1 },
			func(t *testing.T, sim *Simulator) {
				_, cr := post(t, sim, chatBody(flamePrompt("pairwise", 0, 0, nil, "Short.", goodAnswer), nil))
				if !strings.HasSuffix(cr.content(), "Preference: A") {
					t.Fatalf("answer %q, want A", cr.content())
				}
			}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			if !slices.Contains(FaultFields(), tc.field) {
				t.Fatalf("FaultFields %q lacks %s", FaultFields(), tc.field)
			}
			sim := newSim(t, tc.cfg)
			want := sim.Faults()
			tc.change(&want)
			rec := do(ctx, sim, http.MethodPost, "/admin/faults", []byte(tc.body))
			var posted Faults
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &posted) != nil || posted != want {
				t.Fatalf("POST %s: %d %s, want %+v", tc.body, rec.Code, rec.Body, want)
			}
			rec = do(ctx, sim, http.MethodGet, "/admin/faults", nil)
			var got map[string]any
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
				t.Fatalf("GET: %d %s", rec.Code, rec.Body)
			}
			if len(got) != len(FaultFields()) {
				t.Errorf("GET answers %d fields, want all %d: %s", len(got), len(FaultFields()), rec.Body)
			}
			var read Faults
			if err := json.Unmarshal(rec.Body.Bytes(), &read); err != nil || read != want || sim.Faults() != want {
				t.Fatalf("GET %s (Faults() %+v), want %+v", rec.Body, sim.Faults(), want)
			}
			tc.effect(t, sim)
		})
	}
}

// TestAdminFaultsRejects: an unknown field is a 400 that names it and lists the accepted
// fields; bad values and an empty body are 400s naming the problem; none changes a field.
func TestAdminFaultsRejects(t *testing.T) {
	ctx := context.Background()
	sim := newSim(t, fast(Config{ErrorRate: 0.2, PositionBias: 0.1}))
	before := sim.Faults()
	accepted := "error_rate, slow_rate, slow_factor, hang_rate, malformed_rate, hang, position_bias"
	for body, wants := range map[string][]string{
		`{"positon_bias":0.5}`:                  {`unknown field \"positon_bias\"`, accepted},
		`{"error_rate":0.5,"seed":3}`:           {`unknown field \"seed\"`, accepted},
		`{"position_bias":1.5}`:                 {"position_bias: 1.5 is not in [0,1]"},
		`{"position_bias":-0.1,"hang":false}`:   {"position_bias"},
		`{"slow_factor":2e6}`:                   {"slow_factor"},
		`{"position_bias":"high"}`:              {"position_bias"},
		``:                                      {"empty body", accepted},
		`{"error_rate":0.5} {"error_rate":0.6}`: {"more than one JSON value"},
	} {
		rec := do(ctx, sim, http.MethodPost, "/admin/faults", []byte(body))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d %s, want 400", body, rec.Code, rec.Body)
			continue
		}
		for _, want := range wants {
			if !strings.Contains(rec.Body.String(), want) {
				t.Errorf("%s: %s lacks %s", body, rec.Body, want)
			}
		}
	}
	if f := sim.Faults(); f != before {
		t.Fatalf("rejected POSTs changed the faults: %+v, was %+v", f, before)
	}
	if got := strings.Join(FaultFields(), ", "); got != accepted {
		t.Fatalf("FaultFields: %s", got)
	}
}
