// Package scorer turns a batch of records into score rows: it picks the evaluators that
// apply to each record, looks their judgements up in the cache, asks the judges for the
// misses, and fills the cache. The Judge interface hides whether a verdict comes from a
// CPU heuristic or from a GPU scoring pool.
package scorer

import (
	"context"
	"errors"
	"time"

	"raterd/record"
)

// Task asks a judge for one evaluator's verdict on one record.
type Task struct {
	Evaluator *Evaluator
	Record    *record.Record
}

// Verdict is a judge's answer to one Task. Err is set when the judgement failed for this
// task alone; the other tasks of the same call are unaffected.
type Verdict struct {
	// Value is the numeric score on the evaluator's scale.
	Value float64
	// Label is the class (classification) or a short outcome word (heuristics).
	Label string
	// Confidence is in [0,1]; 1 when the judge gives no probability.
	Confidence float64
	// Explanation is the judge's reasoning, bounded by the scorer before storage.
	Explanation string
	// Status is record.StatusOK, record.StatusParseFailure, or record.StatusJudgeError
	// alongside Err.
	Status string
	// Latency is the wall time the judge spent on this task.
	Latency time.Duration
	// Attempts counts the judge calls made for this task (retries included).
	Attempts int
	// Err is a per-task failure; a failed task yields a row with record.StatusJudgeError.
	Err error
	// Judge, when set, is the identity this verdict was made under, stored on its row
	// instead of the judge's Identity: a judge that asks for logprobs ("+logprobs") but
	// scored this task without them (missing, not lining up with the answer, or a
	// multi-digit score they cannot weight) gives its plain identity, so that a row never
	// claims a probability-weighted score it does not hold. Empty: the judge's Identity.
	Judge string
}

// Judge scores tasks. Implementations must return exactly one Verdict per task, in order,
// and must be safe for concurrent use. The returned error is for failures of the whole
// call (the context ended); per-task failures go in Verdict.Err.
type Judge interface {
	// Identity names the judge and its model, e.g. "heuristic/v1" or
	// "openai:prometheus-7b-v2.0". It is part of every score row and cache key, so that a
	// judge change never returns an old score.
	Identity() string
	// Judge returns one verdict per task.
	Judge(ctx context.Context, tasks []Task) ([]Verdict, error)
}

// UncachedJudge is implemented by judges whose verdicts cost less to compute again than
// to cache: the built-in CPU checks take microseconds, while a cache key hashes the
// record's fields and a lookup and fill are Redis round trips. The scorer sends their tasks
// straight to the judge — no cache key, no lookup or fill, no waiting on another batch —
// and their rows are never marked cached. Such a judge is also taken to run in-process:
// Scorer.Begin calls it in the caller (the consumer's worker), where remote judges are
// only started; a judge that waits on a server must not implement it.
type UncachedJudge interface {
	// Uncached reports that the judge's verdicts are not worth caching.
	Uncached() bool
}

// ErrJudgeUnavailable marks a per-task failure that was transient (the judge pool was
// unreachable, overloaded or timing out) and outlived the judge's bounded retries. The
// scorer then fails the whole batch instead of storing a failure row, so the batch is
// retried with backoff and consumption pauses until the pool answers again. Judges wrap
// such errors with it (fmt.Errorf("…: %w", ErrJudgeUnavailable)); a permanent failure
// (a rejected request) is left unwrapped and stored as a judge_error row.
var ErrJudgeUnavailable = errors.New("judge unavailable")
