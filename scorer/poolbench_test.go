package scorer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"raterd/internal/judgesim"
	"raterd/record"
	"raterd/scorer"
	"raterd/scorer/format"
	"raterd/scorer/pool"
)

// BenchmarkJudgePool measures how well a client keeps judgesim pools of known capacity
// busy: raterd's openai judge (adaptive per-endpoint limits, least-outstanding routing,
// breaker) against two naive clients with a fixed concurrency of 1 and 64 that send the
// same requests round-robin. Each run warms up, then measures a window:
//
//   - util_%: busy sequence-seconds of the healthy simulators over their capacity
//     (MaxSeqs × window) — how full the GPUs' batches were;
//   - req/s and capacity_req/s: answers per second, and the simulators' saturated
//     capacity for the requests' measured sizes (judgesim's Capacity formula);
//   - added_p50_ms / added_p99_ms: per request, the client-observed latency minus the
//     simulator's pure service time — the queueing the client's concurrency causes;
//     added_p99/service divides the p99 by the median service time.
//
// A benchmark, not a test: run it on purpose, with one iteration per scenario:
//
//	go test -run='^$' -bench=JudgePool -benchtime=1x ./scorer/
//
// RATERD_POOLBENCH_SECONDS sets the measured window (default 10); a warm-up as long comes
// first. With -v, raterd's runs log each endpoint's in-flight count and limit per second.
func BenchmarkJudgePool(b *testing.B) {
	window := 10 * time.Second
	if s := os.Getenv("RATERD_POOLBENCH_SECONDS"); s != "" {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
			b.Fatalf("RATERD_POOLBENCH_SECONDS=%q: want a positive integer", s)
		}
		window = time.Duration(n) * time.Second
	}
	for _, sc := range []struct {
		name            string
		endpoints, hung int
	}{
		{"1-endpoint", 1, 0},
		{"4-endpoints", 4, 0},
		{"4-endpoints-1-hung", 4, 1},
	} {
		for _, client := range []string{"raterd", "naive-c1", "naive-c64"} {
			b.Run(sc.name+"/"+client, func(b *testing.B) {
				for range b.N {
					runPoolBench(b, sc.endpoints, sc.hung, client, window)
				}
			})
		}
	}
}

// poolBenchSim is the simulated GPU server of the benchmark, shaped like a 7B judge on one
// GPU: 32 sequences, decode steps of 6ms + 62.5µs per running sequence (8ms at a full
// batch), prefill 5µs per prompt token.
func poolBenchSim() judgesim.Config {
	return judgesim.Config{MaxSeqs: 32, StepBase: 6 * time.Millisecond, StepPerSeq: 62500 * time.Nanosecond, PrefillPerToken: 5 * time.Microsecond}
}

// Timeouts for both kinds of client: a request that takes longer is abandoned.
const poolBenchTimeout = 2 * time.Second

// latencyRecorder is an http.RoundTripper that times every answered request and reads
// judgesim's service-time header, counting only answers within the measured window.
type latencyRecorder struct {
	next     http.RoundTripper
	from, to atomic.Int64 // window, unix nanoseconds; 0 = not started
	mu       sync.Mutex
	added    []time.Duration
	service  []time.Duration
	answered int
}

func (l *latencyRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := l.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	// Read the (small) body so the latency covers the whole answer.
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return resp, nil
	}
	end := time.Now()
	svc, perr := time.ParseDuration(resp.Header.Get("X-Judgesim-Service-Time"))
	from, to := l.from.Load(), l.to.Load()
	if perr == nil && from != 0 && end.UnixNano() >= from && (to == 0 || end.UnixNano() < to) {
		l.mu.Lock()
		l.answered++
		l.added = append(l.added, max(0, end.Sub(start)-svc))
		l.service = append(l.service, svc)
		l.mu.Unlock()
	}
	return resp, nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// benchTask is the i-th distinct task: a prompt of ~900 and a response of ~500 characters.
func benchTask(ev *scorer.Evaluator, i int) scorer.Task {
	words := strings.Fields("the order was delayed because the warehouse moved stock to a new region and the carrier changed its pickup schedule so customers should expect tracking updates within two business days after dispatch")
	var p, r strings.Builder
	fmt.Fprintf(&p, "Ticket %d: ", i)
	for k := 0; p.Len() < 900; k++ {
		p.WriteString(words[(i+k*7)%len(words)] + " ")
	}
	for k := 0; r.Len() < 500; k++ {
		r.WriteString(words[(i*3+k*5)%len(words)] + " ")
	}
	r.WriteString("Thanks for your patience.")
	return scorer.Task{Evaluator: ev, Record: &record.Record{ID: fmt.Sprint("bench-", i), Model: "m", Prompt: p.String(), Response: r.String()}}
}

func runPoolBench(b *testing.B, endpoints, hung int, client string, window time.Duration) {
	b.Helper()
	var sims []*judgesim.Simulator
	var urls []string
	for i := range endpoints {
		cfg := poolBenchSim()
		cfg.Hang = i < hung
		sim := judgesim.New(cfg)
		srv := httptest.NewServer(sim)
		defer sim.Close()
		defer srv.Close()
		sims = append(sims, sim)
		urls = append(urls, srv.URL+"/v1")
	}
	rec := &latencyRecorder{next: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 0}}
	httpClient := &http.Client{Transport: rec}
	ev := &scorer.Evaluator{Name: "helpfulness", Judge: "pool", Criteria: "Is the response helpful, correct and complete?"}
	if err := ev.Prepare("evaluators[0]", scorer.KindModel); err != nil {
		b.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var next atomic.Int64
	var poolStats func() []pool.EndpointStats
	switch client {
	case "raterd":
		cfg := scorer.OpenAIConfig{Model: "judgesim", Config: pool.Config{Timeout: poolBenchTimeout, Deadline: time.Minute}}
		for _, u := range urls {
			cfg.Endpoints = append(cfg.Endpoints, pool.Endpoint{URL: u, MaxInFlight: 128})
		}
		j, err := scorer.NewOpenAIJudge(cfg, scorer.JudgeSettings{Key: "judges.bench", HTTPClient: httpClient})
		if err != nil {
			b.Fatal(err)
		}
		defer j.Close(context.Background())
		poolStats = j.PoolStats
		// Like the pipeline: 8 workers, each judging batches of 64 records — enough
		// outstanding work (512 tasks) to fill four 32-sequence servers past their knee
		// even while some workers wait on the slowest task of their batch.
		for range 8 {
			wg.Go(func() {
				for ctx.Err() == nil {
					tasks := make([]scorer.Task, 64)
					for k := range tasks {
						tasks[k] = benchTask(ev, int(next.Add(1)))
					}
					_, _ = j.Judge(ctx, tasks)
				}
			})
		}
	default:
		conc := 1
		if client == "naive-c64" {
			conc = 64
		}
		f, err := format.Lookup(ev.Format)
		if err != nil {
			b.Fatal(err)
		}
		naive := &http.Client{Transport: rec, Timeout: poolBenchTimeout}
		for range conc {
			wg.Go(func() {
				for ctx.Err() == nil {
					i := int(next.Add(1))
					t := benchTask(ev, i)
					spec := format.Spec{Task: ev.Task, Criteria: ev.Criteria, Min: 1, Max: 5}
					for _, in := range ev.Inputs(t.Record) {
						spec.Inputs = append(spec.Inputs, format.Input{Field: in.Field, Text: in.Text})
					}
					p, _ := f.Render(spec)
					body, _ := json.Marshal(map[string]any{"model": "judgesim", "temperature": 0, "max_tokens": 512,
						"messages": []map[string]string{{"role": "system", "content": p.System}, {"role": "user", "content": p.User}}})
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, urls[i%len(urls)]+"/chat/completions", bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					if resp, err := naive.Do(req); err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			})
		}
	}

	var limitsLog []string
	if poolStats != nil {
		// Log the endpoints' limits every second, to show how they adapt.
		wg.Go(func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for ctx.Err() == nil {
				select {
				case <-t.C:
					var ls []string
					for _, st := range poolStats() {
						l := fmt.Sprintf("%d/%d", st.InFlight, st.Limit)
						if st.Breaker != pool.BreakerClosed {
							l += "(" + st.Breaker + ")"
						}
						ls = append(ls, l)
					}
					limitsLog = append(limitsLog, strings.Join(ls, ","))
				case <-ctx.Done():
				}
			}
		})
	}
	time.Sleep(window) // warm-up: limits adapt, breakers trip
	before := make([]judgesim.Stats, len(sims))
	for i, s := range sims {
		before[i] = s.Stats()
	}
	start := time.Now()
	rec.from.Store(start.UnixNano())
	time.Sleep(window)
	end := time.Now()
	rec.to.Store(end.UnixNano())
	elapsed := end.Sub(start)
	var busy time.Duration
	var promptTok, complTok, completed int64
	for i, s := range sims[hung:] {
		after := s.Stats()
		bs := before[i+hung]
		busy += after.BusySeqTime - bs.BusySeqTime
		promptTok += after.PromptTokens - bs.PromptTokens
		complTok += after.CompletionTokens - bs.CompletionTokens
		completed += after.Completed - bs.Completed
	}
	cancel()
	wg.Wait()

	healthy := endpoints - hung
	cfg := sims[len(sims)-1].Config()
	capacity := 0.0
	if completed > 0 {
		capacity = float64(healthy) * cfg.Capacity(int(promptTok/completed), int(complTok/completed))
	}
	util := busy.Seconds() / (float64(cfg.MaxSeqs*healthy) * elapsed.Seconds())
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rps := float64(rec.answered) / elapsed.Seconds()
	svc := percentile(rec.service, 0.5)
	p50, p99 := percentile(rec.added, 0.5), percentile(rec.added, 0.99)
	b.ReportMetric(100*util, "util_%")
	b.ReportMetric(rps, "req/s")
	b.ReportMetric(capacity, "capacity_req/s")
	b.ReportMetric(float64(p50.Microseconds())/1000, "added_p50_ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "added_p99_ms")
	b.ReportMetric(float64(svc.Microseconds())/1000, "service_p50_ms")
	if svc > 0 {
		b.ReportMetric(float64(p99)/float64(svc), "added_p99/service")
	}
	if completed > 0 {
		b.Logf("requests: %d prompt and %d completion tokens on average; capacity %.1f req/s per healthy server",
			promptTok/completed, complTok/completed, capacity/float64(healthy))
	}
	if len(limitsLog) > 0 {
		b.Logf("in flight/limit per endpoint, each second: %s", strings.Join(limitsLog, " "))
	}
	b.ReportMetric(0, "ns/op") // wall time per iteration is the fixed window, not a result
}
