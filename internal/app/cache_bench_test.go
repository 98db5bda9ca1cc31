package app

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"raterd/internal/testkit"
	"raterd/internal/testkit/chtest"
	"raterd/internal/trafficgen"
	"raterd/scorer/cache"
)

// BenchmarkCacheZipf measures what the verdict cache saves on traffic that repeats like
// production traffic: Zipf-distributed prompts (s = 1.1 over 10,000 distinct prompts, each
// with one fixed answer), through the whole pipeline on the real Kafka, Redis and
// ClickHouse, judged by an in-process judgesim. One topic, three consumer groups in turn:
//
//   - cold: an empty Redis key space — model judge calls should equal the distinct keys;
//   - warm: the same key space again — model judge calls should be 0;
//   - off: no cache at all (redis unset, memory_bytes -1) — the baseline.
//
// The heuristic check is never cached (scorer.UncachedJudge: running it costs less than a
// cache key), so it is judged once per task in every run. Reported per run: records/s end
// to end (from starting the consumer, group join included, to the last offset done),
// judge_calls/record (gpu_judge_calls/record: the model judge's share, without the free
// heuristic check) against distinct_keys/record (the minimum for the model judge: one per
// distinct (rubric version, judge, inputs) key), the mean
// redis_round_trips/batch and the cache's hits. The cold and warm targets are checked.
//
//	scripts/services.sh up && eval "$(scripts/services.sh env)"
//	go test -run='^$' -bench=CacheZipf -benchtime=1x -v ./cmd/raterd/
//
// RATERD_CACHEBENCH_RECORDS sets the record count (default 20000).
func BenchmarkCacheZipf(b *testing.B) {
	s := testkit.RequireServices(b)
	n := 20000
	if v := os.Getenv("RATERD_CACHEBENCH_RECORDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("RATERD_CACHEBENCH_RECORDS=%q: want a positive integer", v)
		}
	}
	opts := trafficgen.DefaultOptions()
	opts.Count, opts.ExactRepeats, opts.ZipfS, opts.DistinctPrompts, opts.InvalidShare, opts.Seed = n, true, 1.1, 10000, 0, 1
	values := trafficgen.Generate(opts)
	prompts, pairs := trafficgen.DistinctKeys(values)

	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, db := "bench-cache-"+suffix, "raterd_benchcache_"+suffix
	testkit.CreateTopic(b, s.Kafka, topic, 4)
	if err := Produce(context.Background(), []string{s.Kafka}, topic, values); err != nil {
		b.Fatal(err)
	}
	chtest.Migrated(b, s.ClickHouse, db)
	simURL, _ := startSimulator(b)
	b.Logf("%d records: %d distinct prompts, %d distinct prompt+response pairs", n, prompts, pairs)

	for _, run := range []struct {
		name  string
		redis bool
	}{{"cold", true}, {"warm", true}, {"off", false}} {
		b.Run(run.name, func(b *testing.B) {
			for range b.N {
				cfg := cacheBenchConfig(b, s, topic, "bench-cache-"+run.name+"-"+suffix, db, simURL, "bench-"+suffix+":", run.redis)
				p, st, leave := startPipeline(b, cfg)
				keys, uncached := judgeCallsWanted(b, cfg, st, values)
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error, 1)
				start := time.Now()
				go func() { errc <- p.Run(ctx) }()
				deadline := start.Add(10 * time.Minute)
				for p.Stats().Done < int64(n) {
					if time.Now().After(deadline) {
						b.Fatalf("%s: %d of %d done after 10 minutes", run.name, p.Stats().Done, n)
					}
					time.Sleep(10 * time.Millisecond)
				}
				elapsed := time.Since(start)
				cancel()
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
				tot, ps := st.Scorer.Totals(), p.Stats()
				b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
				b.ReportMetric(float64(tot.JudgeCalls)/float64(n), "judge_calls/record")
				b.ReportMetric(float64(tot.JudgeCallsBy["sim"])/float64(n), "gpu_judge_calls/record")
				b.ReportMetric(float64(keys)/float64(n), "distinct_keys/record")
				b.ReportMetric(float64(tot.Tasks)/float64(n), "tasks/record")
				// The targets, checked: a benchmark that drifts from them says so.
				switch {
				case run.name == "cold" && tot.JudgeCalls != keys+uncached:
					b.Errorf("cold cache: %d judge calls, want exactly the %d distinct keys plus the %d built-in check tasks", tot.JudgeCalls, keys, uncached)
				case run.name == "warm" && tot.JudgeCalls != uncached:
					b.Errorf("warm cache: %d judge calls, want only the %d built-in check tasks", tot.JudgeCalls, uncached)
				}
				if t, ok := st.Cache.(*cache.Tiered); ok && ps.Batches > 0 {
					cs := t.Stats()
					b.ReportMetric(float64(cs.RoundTrips)/float64(ps.Batches), "redis_round_trips/batch")
					if cs.RoundTrips > 2*int64(ps.Batches) {
						b.Errorf("%d Redis round trips for %d batches, want at most 2 per batch", cs.RoundTrips, ps.Batches)
					}
					b.Logf("%s: cache %+v", run.name, cs)
				}
				if ins := st.ScoreInserts; ins != nil {
					is := ins.Stats()
					if is.Flushes > 0 {
						b.ReportMetric(float64(is.Rows)/float64(is.Flushes), "clickhouse_rows/insert")
						b.ReportMetric(float64(is.Flushes)/elapsed.Seconds(), "clickhouse_inserts/s")
					}
				}
				b.Logf("%s: %d tasks, %d judge calls (distinct keys %d), %d cache hits, %d in-batch duplicates, %d in-flight joins, %d batches, %s",
					run.name, tot.Tasks, tot.JudgeCalls, keys, tot.CacheHits, tot.Deduplicated, tot.InFlightJoins, ps.Batches, elapsed.Round(time.Millisecond))
				b.ReportMetric(0, "ns/op")
				leave()
			}
		})
	}
}

// cacheBenchConfig is the pipeline of the cache benchmark: a heuristic check, a
// prompt+response rubric and a prompt-only rubric on judgesim, Redis under keyPrefix (or
// no cache at all), scores to ClickHouse.
func cacheBenchConfig(b testing.TB, s testkit.Services, topic, group, db, simURL, keyPrefix string, withRedis bool) *Config {
	b.Helper()
	redis := fmt.Sprintf("redis: {addrs: [%s], key_prefix: %q}", s.Redis, keyPrefix)
	if !withRedis {
		redis = "redis: {memory_bytes: -1}"
	}
	text := fmt.Sprintf(`
kafka:
  brokers: [%s]
  topics: [%s]
  group_id: %s
  start_offset: earliest
  batch: {max_records: 256, linger: 50ms}
  workers: 4
  commit_interval: 200ms
%s
clickhouse:
  addrs: [%s]
  database: %s
judges:
  checks: {type: heuristic}
  sim:
    type: openai
    model: judgesim-bench
    endpoints: [{url: %q, max_in_flight: 64}]
evaluators:
  - {name: refusal, judge: checks, check: refusal}
  - {name: helpfulness, judge: sim, criteria: "Is the answer helpful and correct?"}
  - {name: prompt_clarity, judge: sim, fields: [prompt], criteria: "Is the request clear and answerable?"}
admin: {listen: "off"}
`, s.Kafka, topic, group, redis, s.ClickHouse, db, simURL)
	cfg, err := ParseConfig([]byte(text), func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}
