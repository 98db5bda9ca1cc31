package app

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"raterd/internal/testkit"
	"raterd/internal/testkit/chtest"
)

// TestIntegrationRedisRestartMidRun stops the cache's Redis while one pipeline keeps
// running, and starts it again: nothing is lost, scoring never stalls, and cache use
// resumes. Three phases of the same repeated traffic (fresh record ids each time) go
// through the real Kafka and ClickHouse: with Redis up, down, and back (empty).
func TestIntegrationRedisRestartMidRun(t *testing.T) {
	s := testkit.RequireServices(t)
	rds := testkit.StartPrivateRedis(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, db, group := "it-redisrestart-"+suffix, "raterd_itredis_"+suffix, "it-redisrestart-"+suffix
	testkit.CreateTopic(t, s.Kafka, topic, 2)
	conn := chtest.Migrated(t, s.ClickHouse, db)
	simURL, _ := startSimulator(t)
	withRedis := s
	withRedis.Redis = rds.Addr()
	cfg := integrationConfig(t, withRedis, topic, group, db, simURL)
	cfg.Redis.LocalBytes = -1 // every hit must come from Redis
	cfg.Redis.Breaker.Cooldown, cfg.Redis.Breaker.MaxCooldown = 100*time.Millisecond, 200*time.Millisecond

	p, st, leave := startPipeline(t, cfg)
	defer leave()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()

	base, invalid, _ := integrationTraffic(600)
	valid := len(base) - invalid
	var produced int64
	// A phase produces the traffic twice, each wave once the one before is done: the
	// second wave repeats the first's keys, which only the cache can answer (within a
	// wave, repeats join the judgement in flight).
	phase := func(name string) (hits int) {
		t.Helper()
		before := st.Scorer.Totals()
		for _, wave := range []string{"a", "b"} {
			values := make([][]byte, len(base))
			for i, v := range base {
				values[i] = bytes.ReplaceAll(v, []byte(`"id":"it-`), []byte(`"id":"`+name+wave+`-`))
			}
			if err := Produce(context.Background(), []string{s.Kafka}, topic, values); err != nil {
				t.Fatal(err)
			}
			produced += int64(len(values))
			deadline := time.Now().Add(2 * time.Minute)
			for p.Stats().Done < produced {
				if time.Now().After(deadline) {
					t.Fatalf("%s: scoring stalled at %d of %d messages: %+v", name, p.Stats().Done, produced, p.Stats())
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		after := st.Scorer.Totals()
		joins := after.InFlightJoins - before.InFlightJoins
		t.Logf("%s: %d cache hits, %d joined in flight, %d judge calls, bypass so far %v", name, after.CacheHits-before.CacheHits, joins, after.JudgeCalls-before.JudgeCalls, after.CacheBypass)
		return after.CacheHits - before.CacheHits
	}

	if hits := phase("up"); hits == 0 {
		t.Fatal("no cache hits with Redis up")
	}
	rds.Stop()
	if hits := phase("down"); hits != 0 {
		t.Fatalf("%d cache hits with Redis down and no local tier", hits)
	}
	rds.Start()
	time.Sleep(300 * time.Millisecond) // past the breaker's cooldown
	if hits := phase("back"); hits == 0 {
		t.Fatal("cache use did not resume after Redis came back")
	}
	if !st.Scorer.Totals().CacheBypass || p.Stats().Retries != 0 {
		t.Fatalf("scorer %+v, pipeline %+v: want the outage bypassed, never a failed batch", st.Scorer.Totals(), p.Stats())
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	var rows uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".scores FINAL").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if want := uint64(6 * valid * len(cfg.Evaluators)); rows != want {
		t.Fatalf("scores FINAL = %d, want 3 phases × 2 waves × %d valid records × %d evaluators = %d", rows, valid, len(cfg.Evaluators), want)
	}
}
