package scorer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"raterd/record"
	"raterd/scorer/pool"
)

// poisonAttempts is the consumer's kafka.poison_attempts in these tests.
const poisonAttempts = 3

// drainLikeTheConsumer scores batch as the consumer does (consumer.Pipeline.poisoned):
// a failed attempt counts one against each poison suspect, a record that was a suspect
// in poisonAttempts attempts leaves the batch as a dead letter, and the rest is scored
// again. It returns the dead records and whether the batch was scored, giving up after
// maxRounds attempts (a batch that stalls).
func drainLikeTheConsumer(t *testing.T, s *Scorer, batch []*record.Record, maxRounds int) (dead []*record.Record, rows []record.Score, done bool) {
	t.Helper()
	failures := map[*record.Record]int{}
	for range maxRounds {
		r, _, err := s.ScoreBatch(context.Background(), batch)
		if err == nil {
			return dead, r, true
		}
		var ue *UnavailableError
		if !errors.As(err, &ue) {
			t.Fatalf("ScoreBatch: %v, want an UnavailableError", err)
		}
		out := map[*record.Record]bool{}
		for _, r := range ue.PoisonSuspects() {
			failures[r]++
			if failures[r] >= poisonAttempts {
				out[r] = true
				dead = append(dead, r)
			}
		}
		keep := batch[:0:0]
		for _, r := range batch {
			if !out[r] {
				keep = append(keep, r)
			}
		}
		batch = keep
	}
	return dead, nil, false
}

// fakeCrashingReward is a FAKE reward server (vLLM /pooling) that answers 500 to any
// request carrying an input that contains crash, as a server does on an input it cannot
// handle, and counts requests.
type fakeCrashingReward struct {
	srv      *httptest.Server
	crash    string
	mu       sync.Mutex
	requests int
}

func newFakeCrashingReward(t *testing.T, crash string) *fakeCrashingReward {
	t.Helper()
	f := &fakeCrashingReward{crash: crash}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Input []string `json:"input"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.requests++
		f.mu.Unlock()
		var data []map[string]any
		for i, t := range body.Input {
			if strings.Contains(t, f.crash) {
				http.Error(w, "CUDA error: an illegal memory access was encountered", http.StatusInternalServerError)
				return
			}
			data = append(data, map[string]any{"index": i, "data": []float64{float64(len(t))}})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// poisonPool is a pool config for these tests: one attempt per request (no backoff to
// wait out), and a breaker that a few failures do not open (so the tests show the
// judge's and the scorer's logic, not the breaker's).
func poisonPool(url string) pool.Config {
	return pool.Config{Endpoints: []pool.Endpoint{{URL: url}}, MaxAttempts: 1, Timeout: 5 * time.Second,
		Breaker: pool.Breaker{Failures: 1000}}
}

func poisonBatch(n, poison int) []*record.Record {
	out := make([]*record.Record, n)
	for i := range out {
		resp := fmt.Sprintf("healthy answer %d", i)
		if i == poison {
			resp = "POISON answer"
		}
		out[i] = &record.Record{ID: fmt.Sprintf("r%d", i), Model: "m", Prompt: "p", Response: resp}
	}
	return out
}

// answeredOnce scores one healthy record through s, so that its judge has answered
// recently: a lone record's item failure is then the record's (recentAnswerWindow).
func answeredOnce(t *testing.T, s *Scorer) {
	t.Helper()
	healthy := &record.Record{ID: "warm-up", Model: "m", Prompt: "p", Response: "a healthy warm-up answer"}
	if _, _, err := s.ScoreBatch(context.Background(), []*record.Record{healthy}); err != nil {
		t.Fatalf("warm-up: %v", err)
	}
}

func rewardScorer(t *testing.T, cfg pool.Config, maxBatch int) *Scorer {
	t.Helper()
	j, err := NewRewardJudge(RewardConfig{Model: "rm", Settings: RewardSettings{MaxBatch: maxBatch}, Pool: cfg},
		JudgeSettings{Key: "judges.rm"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close(context.Background()) })
	ev := &Evaluator{Name: "reward", Judge: "rm"}
	if err := ev.Prepare("evaluators[0]", KindReward); err != nil {
		t.Fatal(err)
	}
	s, err := New([]*Evaluator{ev}, map[string]Judge{"rm": j}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// One poison item in a reward batch of any size, below, at or above max_batch, is
// bisected out of its request and is the only dead letter; every healthy item is scored.
func TestRewardPoisonItemIsTheOnlyDeadLetter(t *testing.T) {
	for _, tc := range []struct{ n, maxBatch, poison int }{
		{1, 32, 0}, {4, 32, 2}, {8, 32, 7}, {64, 32, 40}, {4, 4, 1}, {8, 4, 5}, {64, 8, 0},
	} {
		t.Run(fmt.Sprintf("batch%d_max%d", tc.n, tc.maxBatch), func(t *testing.T) {
			t.Parallel()
			f := newFakeCrashingReward(t, "POISON")
			s := rewardScorer(t, poisonPool(f.srv.URL), tc.maxBatch)
			answeredOnce(t, s)
			batch := poisonBatch(tc.n, tc.poison)
			dead, rows, done := drainLikeTheConsumer(t, s, batch, 2*poisonAttempts)
			if !done {
				t.Fatalf("the batch never got scored (dead so far: %d)", len(dead))
			}
			if len(dead) != 1 || dead[0] != batch[tc.poison] {
				t.Fatalf("dead letters %v, want only %s", ids(dead), batch[tc.poison].ID)
			}
			if len(rows) != tc.n-1 {
				t.Fatalf("%d rows, want %d (every healthy item)", len(rows), tc.n-1)
			}
			for _, r := range rows {
				if r.Status != record.StatusOK {
					t.Errorf("row %s: status %s, want ok", r.RecordID, r.Status)
				}
			}
		})
	}
}

func ids(rs []*record.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// A reward pool that is down (connection refused) or overloaded (429, 503) on every
// request pauses the batch and dead-letters nothing, whatever the batch size.
func TestRewardPoolDownDeadLettersNothing(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	refused := closed.URL
	closed.Close()
	for _, status := range []int{0, http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusBadGateway} {
		for _, n := range []int{1, 4, 64} {
			t.Run(fmt.Sprintf("status%d_batch%d", status, n), func(t *testing.T) {
				t.Parallel()
				url := refused
				if status != 0 {
					srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
					t.Cleanup(srv.Close)
					url = srv.URL
				}
				s := rewardScorer(t, poisonPool(url), 8)
				dead, _, done := drainLikeTheConsumer(t, s, poisonBatch(n, -1), 2*poisonAttempts)
				if done || len(dead) != 0 {
					t.Fatalf("scored %v, dead letters %v: want a paused batch and none", done, ids(dead))
				}
			})
		}
	}
}

// A pool that answers 500 to everything is not a poison record: with more than one
// record failing and none served, nothing is a suspect.
func TestRewardPoolFailingEverythingDeadLettersNothing(t *testing.T) {
	f := newFakeCrashingReward(t, "answer") // every input crashes it
	s := rewardScorer(t, poisonPool(f.srv.URL), 8)
	dead, _, done := drainLikeTheConsumer(t, s, poisonBatch(16, 3), 2*poisonAttempts)
	if done || len(dead) != 0 {
		t.Fatalf("scored %v, dead letters %v: want a paused batch and none", done, ids(dead))
	}
}

// fakePoisonChat is a FAKE chat-completions server that answers 500 to a prompt
// containing poison and a valid pointwise answer to every other.
func fakePoisonChat(t *testing.T, poison string) *fakeChat {
	return newFakeChat(t, func(r chatReq) (int, string, []openaiTokenLogprob) {
		if strings.Contains(r.user(), poison) {
			return http.StatusInternalServerError, "", nil
		}
		return http.StatusOK, "Feedback: fine. [RESULT] 4", nil
	})
}

func openaiScorer(t *testing.T, url string, maxAttempts int) *Scorer {
	t.Helper()
	j := testJudge(t, func(c *OpenAIConfig) { c.Breaker.Failures, c.MaxAttempts = 1000, maxAttempts }, url)
	ev := preparedModelEvaluator(t, testEvaluator())
	ev.Judge = "j"
	s, err := New([]*Evaluator{ev}, map[string]Judge{"j": j}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A poison record alone in its batch on the openai judge (no other live task shows the
// judge is up, but it answered a moment ago) is dead-lettered after poison_attempts
// attempts, and so is one among healthy records.
func TestOpenAIIsolatedPoisonRecordIsDeadLettered(t *testing.T) {
	for _, n := range []int{1, 4} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			f := fakePoisonChat(t, "POISON")
			s := openaiScorer(t, f.srv.URL, 2)
			answeredOnce(t, s)
			batch := poisonBatch(n, 0)
			dead, rows, done := drainLikeTheConsumer(t, s, batch, 2*poisonAttempts)
			if !done || len(dead) != 1 || dead[0] != batch[0] || len(rows) != n-1 {
				t.Fatalf("scored %v, dead letters %v, %d rows: want only r0 dead after %d attempts", done, ids(dead), len(rows), poisonAttempts)
			}
			// Each attempt asked twice (max_attempts 2): the letter came after a bounded
			// number of requests for it.
			poisoned := 0
			for _, r := range f.requests() {
				if strings.Contains(r.user(), "POISON") {
					poisoned++
				}
			}
			if poisoned != 2*poisonAttempts {
				t.Errorf("%d requests for the poison record, want %d", poisoned, 2*poisonAttempts)
			}
		})
	}
}

// An openai pool that is down or overloaded dead-letters nothing, even for a batch of one.
func TestOpenAIPoolDownDeadLettersNothing(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		for _, n := range []int{1, 3} {
			f := newFakeChat(t, func(chatReq) (int, string, []openaiTokenLogprob) { return status, "", nil })
			s := openaiScorer(t, f.srv.URL, 1)
			dead, _, done := drainLikeTheConsumer(t, s, poisonBatch(n, -1), 2*poisonAttempts)
			if done || len(dead) != 0 {
				t.Fatalf("HTTP %d, batch %d: scored %v, dead letters %v: want a paused batch and none", status, n, done, ids(dead))
			}
		}
	}
	// Two records that both fail with 500 and nothing served: the pool may be broken,
	// so neither is blamed.
	f := fakePoisonChat(t, "answer")
	s := openaiScorer(t, f.srv.URL, 1)
	if dead, _, done := drainLikeTheConsumer(t, s, poisonBatch(2, -1), 2*poisonAttempts); done || len(dead) != 0 {
		t.Fatalf("scored %v, dead letters %v: want none", done, ids(dead))
	}
}

func TestScopeOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want failureScope
	}{
		{fmt.Errorf("x: %w; last error: %w", pool.ErrUnavailable, pool.StatusError(500, nil, nil)), scopeItem},
		{fmt.Errorf("x: %w; last error: %w", pool.ErrUnavailable, pool.StatusError(503, nil, nil)), scopePool},
		{fmt.Errorf("x: %w; last error: %w", pool.ErrUnavailable, pool.StatusError(429, nil, nil)), scopePool},
		{fmt.Errorf("x: %w; last error: %w", pool.ErrUnavailable, pool.StatusError(404, nil, nil)), scopePool},
		{fmt.Errorf("every endpoint ejected: %w", pool.ErrUnavailable), scopePool},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), scopeUnknown},
		{fmt.Errorf("x: %w", context.Canceled), scopePool},
		{fmt.Errorf("timeout: %w", ErrJudgeUnavailable), scopeUnknown},
	} {
		if got := scopeOf(tc.err); got != tc.want {
			t.Errorf("scopeOf(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

// A judge that has answered nothing (a server answering 500 to everything since it
// started) blames no lone record: a trickling topic's batches of one pause instead of
// draining into the dead-letter topic one record at a time. With a recent answer, the
// same lone failure is the record's (TestOpenAIIsolatedPoisonRecordIsDeadLettered): the
// control.
func TestLoneFailureOnAJudgeThatNeverAnsweredBlamesNobody(t *testing.T) {
	f := newFakeChat(t, func(chatReq) (int, string, []openaiTokenLogprob) { return http.StatusInternalServerError, "", nil })
	s := openaiScorer(t, f.srv.URL, 1)
	for i := range 3 {
		dead, _, done := drainLikeTheConsumer(t, s, poisonBatch(1, -1)[0:1:1], 2*poisonAttempts)
		if done || len(dead) != 0 {
			t.Fatalf("batch %d of one on an all-500 judge: scored %v, dead letters %v: want a paused batch and none", i, done, ids(dead))
		}
	}
	rf := newFakeCrashingReward(t, "answer") // every input crashes it
	rs := rewardScorer(t, poisonPool(rf.srv.URL), 8)
	if dead, _, done := drainLikeTheConsumer(t, rs, poisonBatch(1, -1), 2*poisonAttempts); done || len(dead) != 0 {
		t.Fatalf("reward batch of one on an all-500 judge: scored %v, dead letters %v: want a paused batch and none", done, ids(dead))
	}
}

// TestRecentAnswerWindow: a judge's answer counts as recent for recentAnswerWindow, then
// no longer.
func TestRecentAnswerWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	s := &Scorer{opts: Options{Now: func() time.Time { return now }}}
	s.noteAnswered(map[string]bool{"a": true})
	if r := s.recentlyAnswered(); !r["a"] || r["b"] {
		t.Fatalf("just answered: %v", r)
	}
	now = now.Add(recentAnswerWindow)
	if r := s.recentlyAnswered(); !r["a"] {
		t.Fatalf("at the window's end: %v", r)
	}
	now = now.Add(time.Second)
	if r := s.recentlyAnswered(); r["a"] {
		t.Fatalf("after the window: %v", r)
	}
}
