package scorer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"raterd/record"
	"raterd/scorer/pool"
)

// failureScope says what a transient judge failure (one wrapping ErrJudgeUnavailable)
// tells about its cause: the pool as a whole, the item it was asked about, or neither.
type failureScope int

const (
	// scopeUnknown: nothing in the error says; a timeout, or a judge that does not say
	// why. The record is a poison suspect only when its judge answered other live calls
	// of the same round.
	scopeUnknown failureScope = iota
	// scopePool: the pool is down, overloaded or misconfigured — a refused or reset
	// connection, 429, 502, 503, 504, 401, 403, 404, 408, every endpoint ejected by its
	// breaker, the pool closed, the context ended. Never a poison suspect: consumption
	// pauses until the pool answers again.
	scopePool
	// scopeItem: the server answered this request with an error of its own (500, 501,
	// 505 and up but 502–504) after every retry: it is up, and something in the input
	// may be what it cannot handle. A poison suspect when its judge answered other live
	// calls of the round, or when all the judge's failures of the round are this one
	// record's (the record is alone: nothing else can be blamed).
	scopeItem
)

// String names the scope for logs and tests.
func (s failureScope) String() string {
	switch s {
	case scopePool:
		return "pool"
	case scopeItem:
		return "item"
	default:
		return "unknown"
	}
}

// scopeOf classifies a transient failure. The last failure the pool saw decides (an
// ErrUnavailable wraps it); an ErrUnavailable without one (no endpoint had room, every
// breaker open, the pool closed) is the pool's.
func scopeOf(err error) failureScope {
	if err == nil {
		return scopeUnknown
	}
	if errors.Is(err, context.Canceled) {
		return scopePool
	}
	if he, ok := errors.AsType[*pool.HTTPError](err); ok {
		switch he.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
			http.StatusTooManyRequests, http.StatusRequestTimeout,
			http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
			return scopePool
		}
		if he.StatusCode >= 500 {
			return scopeItem
		}
		return scopeUnknown
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return scopePool
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return scopeUnknown // an attempt timed out: an overloaded server, or a slow input
	}
	if ne, ok := errors.AsType[net.Error](err); ok {
		if ne.Timeout() {
			return scopeUnknown
		}
		return scopePool
	}
	if errors.Is(err, pool.ErrUnavailable) {
		return scopePool // no attempt failed on its own: the pool could not take it
	}
	return scopeUnknown
}

// suspectFailure is one failed judgement of a round, for poisonSuspects.
type suspectFailure struct {
	judge  string // the evaluator's judge name
	record *record.Record
	scope  failureScope
}

// recentAnswerWindow is how long after a judge's last answer a lone failure on it still
// counts as the record's: a judge that answered within it is up, so an item error (a
// 500) that only this record gets is the record's. A judge that has answered nothing for
// longer (a server that answers 500 to everything since a deploy) blames nobody: its
// partitions pause instead of draining into the dead-letter topic one lone record at a
// time.
const recentAnswerWindow = 5 * time.Minute

// poisonSuspects decides which failed judgements of a round make their record a poison
// suspect. served names the judges that returned a verdict to some other live call of
// the round, recent those that answered any call within recentAnswerWindow. A pool-wide
// failure never does; an item failure does when its judge was served, or when every
// failure of its judge in the round is this record's and the judge answered recently; a
// failure of unknown scope only when its judge was served.
func poisonSuspects(failures []suspectFailure, served, recent map[string]bool) []bool {
	records := map[string]map[*record.Record]bool{} // judge → records it failed on
	for _, f := range failures {
		if records[f.judge] == nil {
			records[f.judge] = map[*record.Record]bool{}
		}
		records[f.judge][f.record] = true
	}
	out := make([]bool, len(failures))
	for i, f := range failures {
		switch f.scope {
		case scopeItem:
			out[i] = served[f.judge] || len(records[f.judge]) == 1 && recent[f.judge]
		case scopeUnknown:
			out[i] = served[f.judge]
		}
	}
	return out
}
