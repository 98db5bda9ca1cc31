package clickhouse

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"raterd/record"
	"raterd/sinks"
)

// GroupCommitOptions configures a GroupCommit. Zero values mean the defaults.
type GroupCommitOptions struct {
	// MaxRows flushes a group once it holds this many rows. Default 50,000.
	MaxRows int
	// Interval flushes a group this long after its first rows arrived. Default 1s.
	Interval time.Duration
}

// GroupCommitStats counts what a GroupCommit sent.
type GroupCommitStats struct {
	Flushes int64 // writes to the next sink
	Rows    int64 // rows in them
	Failed  int64 // flushes the next sink refused
}

// GroupCommit combines the rows of concurrent WriteScores calls into one write to the next
// sink, so that ClickHouse gets a few big inserts rather than one small insert per
// micro-batch. A group is written at MaxRows, after Interval, or when Flush is called —
// the pipeline calls it when no more rows can come soon (the in-flight bounds stop
// fetching, every write slot is taken, or fetching ended). A call returns once the
// write that carried its rows was acknowledged (or failed, or the caller's context ended):
// the consumer still commits offsets only for rows ClickHouse accepted. Writes run on
// their own goroutines, so no caller's shutdown waits on an insert. Safe for concurrent
// use.
type GroupCommit struct {
	next sinks.ScoreSink
	opts GroupCommitOptions

	mu  sync.Mutex
	cur *commitGroup // the group taking rows; nil when none

	flushes, rows, failed atomic.Int64
}

// commitGroup is the rows of one future write and its outcome. The rows are kept as the
// callers' micro-batches (each copied once, at its exact size) rather than appended to
// one growing slice, whose doublings copied every row two or three times.
type commitGroup struct {
	chunks  [][]record.Score
	rows    int // rows in chunks
	waiters int
	flushed bool          // detached from GroupCommit.cur; no more rows join
	timer   *time.Timer   // fires the flush at Interval
	done    chan struct{} // closed when err is set
	err     error
}

// NewGroupCommit wraps next (usually Scores).
func NewGroupCommit(next sinks.ScoreSink, opts GroupCommitOptions) *GroupCommit {
	if opts.MaxRows <= 0 {
		opts.MaxRows = 50_000
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	return &GroupCommit{next: next, opts: opts}
}

// Stats returns the counters so far.
func (g *GroupCommit) Stats() GroupCommitStats {
	return GroupCommitStats{Flushes: g.flushes.Load(), Rows: g.rows.Load(), Failed: g.failed.Load()}
}

// WriteScores implements ScoreSink: the rows join the open group, and the call waits for
// that group's write.
func (g *GroupCommit) WriteScores(ctx context.Context, rows []record.Score) error {
	if len(rows) == 0 {
		return nil
	}
	g.mu.Lock()
	grp := g.cur
	if grp == nil {
		grp = &commitGroup{done: make(chan struct{})}
		g.cur = grp
		grp.timer = time.AfterFunc(g.opts.Interval, func() { g.flushIfCurrent(grp) })
	}
	grp.chunks = append(grp.chunks, slices.Clone(rows))
	grp.rows += len(rows)
	grp.waiters++
	if grp.rows >= g.opts.MaxRows {
		g.detachLocked(grp)
		go g.flush(grp)
	}
	g.mu.Unlock()
	select {
	case <-grp.done:
		return grp.err
	case <-ctx.Done():
		// The group is still written; without this call's acknowledgement its offsets
		// are not committed, and a replay's rows collapse in ReplacingMergeTree.
		return ctx.Err()
	}
}

// Flush writes the open group now, without waiting for its interval or size; a no-op
// without one. It does not wait for the write.
func (g *GroupCommit) Flush() {
	g.mu.Lock()
	grp := g.cur
	if grp != nil {
		g.detachLocked(grp)
	}
	g.mu.Unlock()
	if grp != nil {
		go g.flush(grp)
	}
}

// flushIfCurrent flushes grp when its interval ends, unless it left already.
func (g *GroupCommit) flushIfCurrent(grp *commitGroup) {
	g.mu.Lock()
	if grp.flushed {
		g.mu.Unlock()
		return
	}
	g.detachLocked(grp)
	g.mu.Unlock()
	g.flush(grp)
}

// detachLocked closes grp to new rows. g.mu is held.
func (g *GroupCommit) detachLocked(grp *commitGroup) {
	grp.flushed = true
	grp.timer.Stop()
	if g.cur == grp {
		g.cur = nil
	}
}

// flush writes a detached group and wakes its callers. The write is not tied to any one
// caller's context: the next sink bounds it (Config.WriteTimeout).
func (g *GroupCommit) flush(grp *commitGroup) {
	if s, ok := g.next.(*Scores); ok {
		grp.err = s.writeScoreChunks(context.Background(), grp.chunks)
	} else {
		grp.err = g.next.WriteScores(context.Background(), slices.Concat(grp.chunks...))
	}
	g.flushes.Add(1)
	g.rows.Add(int64(grp.rows))
	if grp.err != nil {
		g.failed.Add(1)
	}
	close(grp.done)
}
