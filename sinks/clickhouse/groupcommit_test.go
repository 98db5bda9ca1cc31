package clickhouse

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"raterd/record"
)

// recordingSink is a FAKE next sink: it records the size of every write and can fail.
type recordingSink struct {
	mu     sync.Mutex
	writes []int
	fail   error
}

func (r *recordingSink) WriteScores(_ context.Context, rows []record.Score) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, len(rows))
	return r.fail
}

func (r *recordingSink) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.writes...)
}

func writeConcurrently(t *testing.T, g *GroupCommit, n, rows int) []error {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = g.WriteScores(context.Background(), make([]record.Score, rows)) })
	}
	wg.Wait()
	return errs
}

func TestGroupCommitFlushWritesTheOpenGroupOnce(t *testing.T) {
	next := &recordingSink{}
	g := NewGroupCommit(next, GroupCommitOptions{Interval: time.Hour})
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- g.WriteScores(context.Background(), make([]record.Score, 10)) }()
	}
	// Wait until all three joined the group, then flush it.
	for {
		g.mu.Lock()
		n := 0
		if g.cur != nil {
			n = g.cur.waiters
		}
		g.mu.Unlock()
		if n == 3 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	g.Flush()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	g.Flush() // no open group: nothing to write
	if got := next.sizes(); len(got) != 1 || got[0] != 30 {
		t.Fatalf("writes %v, want one of 30 rows", got)
	}
	if st := g.Stats(); st.Flushes != 1 || st.Rows != 30 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGroupCommitFlushesAtMaxRows(t *testing.T) {
	next := &recordingSink{}
	g := NewGroupCommit(next, GroupCommitOptions{MaxRows: 25, Interval: time.Hour})
	for _, err := range writeConcurrently(t, g, 2, 15) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := next.sizes(); len(got) != 1 || got[0] != 30 {
		t.Fatalf("writes %v, want one of 30 rows (the second call filled the group)", got)
	}
}

func TestGroupCommitFlushesAtTheInterval(t *testing.T) {
	next := &recordingSink{}
	g := NewGroupCommit(next, GroupCommitOptions{Interval: 10 * time.Millisecond})
	if err := g.WriteScores(context.Background(), make([]record.Score, 5)); err != nil {
		t.Fatal(err)
	}
	if got := next.sizes(); len(got) != 1 || got[0] != 5 {
		t.Fatalf("writes %v, want one of 5 rows", got)
	}
}

func TestGroupCommitFailureReachesEveryCallerOfTheGroup(t *testing.T) {
	next := &recordingSink{fail: errors.New("clickhouse down")}
	g := NewGroupCommit(next, GroupCommitOptions{MaxRows: 6, Interval: time.Hour})
	for _, err := range writeConcurrently(t, g, 2, 3) {
		if err == nil || err.Error() != "clickhouse down" {
			t.Fatalf("err = %v, want the write's error", err)
		}
	}
	next.mu.Lock()
	next.fail = nil
	next.mu.Unlock()
	for _, err := range writeConcurrently(t, g, 2, 3) {
		if err != nil {
			t.Fatalf("the next group: %v", err)
		}
	}
	if st := g.Stats(); st.Flushes != 2 || st.Failed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGroupCommitCallerContextEnds(t *testing.T) {
	next := &recordingSink{}
	g := NewGroupCommit(next, GroupCommitOptions{Interval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.WriteScores(ctx, make([]record.Score, 1)) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WriteScores did not return when its context ended")
	}
	if got := next.sizes(); len(got) != 0 {
		t.Fatalf("an unacknowledged group was written at once: %v", got)
	}
	// The group is still written (its rows may reach ClickHouse; a replay collapses them).
	g.Flush()
	for len(next.sizes()) == 0 {
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommitHandsChunksToScores: in front of Scores, a group's micro-batches go
// into one insert as they are, every row once, in the order they joined.
func TestGroupCommitHandsChunksToScores(t *testing.T) {
	conn := &fakeConn{}
	scores := NewScores(conn, Config{Database: "raterd", WriteTimeout: time.Second, InsertAttempts: 1}, quiet)
	g := NewGroupCommit(scores, GroupCommitOptions{MaxRows: 9, Interval: time.Hour})
	first, second := testScores(4), testScores(5)
	for i := range second {
		second[i].RecordID += "-second"
	}
	done := make(chan error, 1)
	go func() { done <- g.WriteScores(context.Background(), first) }()
	for {
		g.mu.Lock()
		joined := g.cur != nil && g.cur.waiters == 1
		g.mu.Unlock()
		if joined {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := g.WriteScores(context.Background(), second); err != nil { // fills the group: 9 rows
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if conn.rows != 9 {
		t.Fatalf("%d rows inserted, want 9", conn.rows)
	}
	if st := g.Stats(); st.Flushes != 1 || st.Rows != 9 {
		t.Errorf("stats %+v, want one flush of 9 rows", st)
	}
	var want []any
	for _, r := range append(first, second...) {
		want = append(want, r.RecordID)
	}
	if len(conn.batches) != 1 || !reflect.DeepEqual(conn.batches[0].cols[2], want) {
		t.Errorf("record ids inserted in %d batches: %v, want one batch of %v", len(conn.batches), conn.batches[0].cols[2], want)
	}
}
