package scorer

import (
	"context"
	"sync"
	"testing"
	"time"

	"raterd/record"
)

// TestBeginReturnsWhileTheRemoteJudgeWorks: Begin runs the in-process checks in the
// caller and returns while the remote judge still holds its call; Wait returns every row
// once the judge answers. The caller is free to begin the next batch meanwhile.
func TestBeginReturnsWhileTheRemoteJudgeWorks(t *testing.T) {
	remote := &gatedJudge{countingJudge: countingJudge{ident: "fake:v1"}, entered: make(chan struct{}, 4), gate: make(chan struct{})}
	checks := &uncachedJudge{countingJudge{ident: "checks/v1"}}
	model := prepared(t, &Evaluator{Name: "helpful", Judge: "remote", Criteria: "be helpful"})
	check := prepared(t, &Evaluator{Name: "length", Judge: "checks", Criteria: "short"})
	s, err := New([]*Evaluator{model, check}, map[string]Judge{"remote": remote, "checks": checks}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	first := s.Begin(context.Background(), recs(3, 3))
	<-remote.entered
	if checks.calls != 3 {
		t.Fatalf("Begin returned with %d check tasks judged, want 3 (in-process judges run in the caller)", checks.calls)
	}
	// The next batch begins while the first batch's remote call is still held.
	second := s.Begin(context.Background(), recs(6, 6)[3:])
	<-remote.entered
	close(remote.gate)
	for n, sc := range []*Scoring{first, second} {
		rows, err := sc.Wait()
		if err != nil || len(rows) != 6 {
			t.Fatalf("batch %d: %d rows, err %v", n, len(rows), err)
		}
		for _, r := range rows {
			if r.Status != record.StatusOK {
				t.Fatalf("batch %d: row %+v", n, r)
			}
		}
	}
	if tot := s.Totals(); tot.Tasks != 12 || tot.JudgeCalls != 12 || tot.JudgeCallsBy["remote"] != 6 {
		t.Fatalf("totals %+v", tot)
	}
	if _, err := second.Wait(); err == nil {
		t.Fatal("a second Wait on one Scoring succeeded")
	}
}

// TestJudgeConcurrentlyAdmitsCallsInArrivalOrder: calls sharing one sender bound start
// their tasks in the order the calls came, so an older batch is never overtaken by a
// newer one waiting for the same room; and no more tasks run at once than the bound.
func TestJudgeConcurrentlyAdmitsCallsInArrivalOrder(t *testing.T) {
	senders := newSenders(1) // one at a time: the start order is the admission order
	var mu sync.Mutex
	var order []string
	running, peak := 0, 0
	release := make(chan struct{})
	one := func(_ context.Context, task Task) Verdict {
		mu.Lock()
		order = append(order, task.Record.ID)
		running++
		peak = max(peak, running)
		mu.Unlock()
		<-release
		time.Sleep(time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return Verdict{Status: record.StatusOK}
	}
	batch := func(prefix string) []Task {
		var ts []Task
		for i := range 3 {
			ts = append(ts, Task{Record: &record.Record{ID: prefix + string(rune('0'+i))}})
		}
		return ts
	}
	var wg sync.WaitGroup
	started := func(n int) {
		for {
			mu.Lock()
			got := len(order)
			mu.Unlock()
			if got >= n {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	wg.Go(func() { _, _ = judgeConcurrently(context.Background(), "t", senders, batch("a"), one) })
	started(1) // a0 holds the room; a1 and a2 wait
	wg.Go(func() { _, _ = judgeConcurrently(context.Background(), "t", senders, batch("b"), one) })
	time.Sleep(20 * time.Millisecond) // the second call waits for its turn

	close(release)
	wg.Wait()
	want := []string{"a0", "a1", "a2", "b0", "b1", "b2"}
	if len(order) != len(want) {
		t.Fatalf("order %v", order)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("start order %v, want %v", order, want)
		}
	}
	if peak > 1 {
		t.Fatalf("%d tasks ran at once with a bound of 1", peak)
	}
}
