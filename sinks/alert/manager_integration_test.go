package alert_test

// Integration tests of the Manager against the real Redis and ClickHouse that
// scripts/services.sh starts. They skip when RATERD_TEST_REDIS / RATERD_TEST_CLICKHOUSE
// are unset, and fail instead when RATERD_REQUIRE_SERVICES is set.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"raterd/internal/telemetry"
	"raterd/internal/testkit"
	"raterd/sinks/alert"
	"raterd/sinks/alert/detect"
	"raterd/sinks/alert/notify"
	"raterd/sinks/clickhouse"
)

// testRedis returns a client of the test Redis and a private key prefix, whose keys are
// deleted after the test.
func testRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: testkit.Service(t, "RATERD_TEST_REDIS", "Redis")})
	prefix := fmt.Sprintf("raterd-test:%s:%d:", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := c.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			_ = c.Del(ctx, keys...).Err()
		}
		_ = c.Close()
	})
	return c, prefix
}

func TestAlertManagerRedisSharedState(t *testing.T) {
	c, prefix := testRedis(t)
	testSharedState(t, func() alert.Store { return alert.NewRedisStore(c, prefix) })
	// Everything lives under the private prefix, and every state key expires.
	keys, err := c.Keys(context.Background(), prefix+"*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys under %s: %v, %v; want the index and one state", prefix, keys, err)
	}
	for _, k := range keys {
		if strings.Contains(k, ":state:") {
			if ttl := c.PTTL(context.Background(), k).Val(); ttl <= 0 {
				t.Errorf("%s has no expiry (%v)", k, ttl)
			}
		}
	}
}

// TestAlertManagerRedisContention: two processes evaluate the same 40 series at the same
// moments, round after round; each series fires exactly once and resolves exactly once.
func TestAlertManagerRedisContention(t *testing.T) {
	c, prefix := testRedis(t)
	clock := &fakeClock{t: mgrT0}
	cfg := func() alert.Config { return passRateRule(nil) }
	a := newMgr(t, cfg(), alert.NewRedisStore(c, prefix), clock)
	b := newMgr(t, cfg(), alert.NewRedisStore(c, prefix), clock)
	const n = 40
	series := func(i int) notify.Series { s := mgrSeries; s.Model = fmt.Sprintf("m%02d", i); return s }
	round := func(start time.Time, v float64) map[string][]string {
		for i := range n {
			_ = a.m.WriteScores(context.Background(), mgrRows(series(i), "a", start, repeat(v, 6)...))
			_ = b.m.WriteScores(context.Background(), mgrRows(series(i), "b", start, repeat(v, 6)...))
		}
		clock.Advance(time.Minute)
		var wg sync.WaitGroup
		for _, e := range []*mgrEnv{a, b, a, b} { // two evaluations each, at once
			wg.Go(func() {
				if err := e.m.EvaluateNow(context.Background()); err != nil {
					t.Errorf("EvaluateNow: %v", err)
				}
			})
		}
		wg.Wait()
		got := map[string][]string{}
		for _, x := range append(a.ch.take(), b.ch.take()...) {
			got[x.Series.Model] = append(got[x.Series.Model], x.State)
		}
		return got
	}
	check := func(got map[string][]string, want string) {
		t.Helper()
		for i := range n {
			if s := strings.Join(got[series(i).Model], ","); s != want {
				t.Errorf("series %s: notified %q, want %q", series(i).Model, s, want)
			}
		}
	}
	check(round(mgrT0, 0), notify.StateFiring)
	check(round(mgrT0.Add(time.Minute), 0), "")
	check(round(mgrT0.Add(3*time.Hour), 1), notify.StateResolved)
	check(round(mgrT0.Add(3*time.Hour+time.Minute), 1), "")
}

// TestAlertDrilldownSQLRunsOnClickHouse: the drill-down query of a series whose names
// hold quotes, backslashes and control characters runs on the real server and finds
// exactly that series' rows, worst first.
func TestAlertDrilldownSQLRunsOnClickHouse(t *testing.T) {
	addr := testkit.Service(t, "RATERD_TEST_CLICKHOUSE", "ClickHouse")
	db := fmt.Sprintf("raterd_alert_it_%d", time.Now().UnixNano())
	cfg := clickhouse.Config{Addrs: []string{addr}, Database: db}
	if err := cfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		t.Fatal(err)
	}
	if _, err := clickhouse.Migrate(ctx, conn, db, telemetry.Settings{}); err != nil {
		t.Fatal(err)
	}
	evil := notify.Series{Model: "m'; DROP TABLE x; --", App: `a\' OR 1=1`, Evaluator: "e\n\tx", Judge: "j`\\"}
	other := evil
	other.App = "a"
	rows := append(mgrRows(evil, "evil", mgrT0, 1, 0, 1, 0.5), mgrRows(other, "other", mgrT0, 0, 0)...)
	for i := range rows {
		rows[i].ScoredAt, rows[i].RubricVersion = mgrT0, "v1"
	}
	if err := clickhouse.NewScores(conn, cfg, telemetry.Settings{}).WriteScores(ctx, rows); err != nil {
		t.Fatal(err)
	}
	r := &alert.RuleConfig{Name: "r", Detector: alert.DetectorCUSUM}
	q := alert.DrilldownSQL(db, r, evil, detect.Decision{At: mgrT0.Add(3 * time.Second), Since: mgrT0, State: detect.StateAlert}, mgrT0)
	res, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatalf("drill-down query fails: %v\n%s", err, q)
	}
	defer res.Close()
	var got []string
	for res.Next() {
		var at time.Time
		var model, id, label, expl, rubric string
		var score float64
		if err := res.Scan(&at, &model, &id, &score, &label, &expl, &rubric); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s=%g", id, score))
	}
	if want := "evil-1=0,evil-3=0.5,evil-2=1,evil-0=1"; strings.Join(got, ",") != want {
		t.Fatalf("drill-down rows %v, want %s\n%s", got, want, q)
	}
}

// TestAlertRedisStoreUpdateIsAtomic: an update whose read is overtaken by another
// process's commit runs again on the committed state, so neither change is lost and a
// transition decided on a stale state is never written.
func TestAlertRedisStoreUpdateIsAtomic(t *testing.T) {
	c, prefix := testRedis(t)
	ctx := context.Background()
	a, b := alert.NewRedisStore(c, prefix), alert.NewRedisStore(c, prefix)
	started, committed, done := make(chan struct{}), make(chan struct{}), make(chan error)
	runs := 0
	go func() {
		done <- a.Update(ctx, "x", time.Minute, func(cur alert.Stored) (alert.Stored, alert.Op, error) {
			runs++
			if runs == 1 {
				close(started)
				<-committed // the other process commits between this read and this write
			}
			return alert.Stored{Lifecycle: append(cur.Lifecycle, 'a'), Detector: []byte("d")}, alert.OpWrite, nil
		})
	}()
	<-started
	if err := b.Update(ctx, "x", time.Minute, func(cur alert.Stored) (alert.Stored, alert.Op, error) {
		return alert.Stored{Lifecycle: append(cur.Lifecycle, 'b')}, alert.OpWrite, nil
	}); err != nil {
		t.Fatal(err)
	}
	close(committed)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err := a.Lifecycles(ctx, []string{"x", "absent"})
	if err != nil || string(got[0]) != "ba" || got[1] != nil || runs != 2 {
		t.Fatalf("lifecycles %q, err %v, runs %d; want \"ba\" after one re-run", got, err, runs)
	}
	if err := b.Update(ctx, "x", time.Minute, func(cur alert.Stored) (alert.Stored, alert.Op, error) {
		if string(cur.Detector) != "d" {
			t.Errorf("detector field %q, want the one written with the lifecycle", cur.Detector)
		}
		return alert.Stored{}, alert.OpDelete, nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(ctx, prefix+"state:x").Val(); n != 0 {
		t.Fatal("state not deleted")
	}
}
