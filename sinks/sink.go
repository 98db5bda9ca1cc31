// Package sinks stores what the pipeline produces: score rows and dead letters. It holds the
// sink interfaces, the Multi sinks and the NDJSON file sink; the sinks of each external
// system live in a package of their own: sinks/clickhouse (score and dead-letter tables,
// group commit, schema migrations, the SQL cookbook) and sinks/kafka (the dead-letter
// topics, their replay and header contract). A sink's nil error is the acknowledgement
// that lets the consumer commit the records' offsets, so no sink may return nil before its
// data is durable.
package sinks

import (
	"context"
	"errors"

	"raterd/record"
)

// ScoreSink stores score rows.
type ScoreSink interface {
	// WriteScores stores the rows; nil means they are durably accepted.
	WriteScores(ctx context.Context, rows []record.Score) error
}

// DeadLetterSink stores messages that will not be retried.
type DeadLetterSink interface {
	// WriteDeadLetters stores the dead letters; nil means they are durably accepted.
	WriteDeadLetters(ctx context.Context, letters []record.DeadLetter) error
}

// Flusher is an optional interface of a ScoreSink that groups the rows of several
// batches into one write (clickhouse.GroupCommit): Flush starts writing what it holds
// without waiting. It is the consumer's consumer.Flusher, seen from the sinks' side; every
// sink here that wraps others implements it and forwards it to them.
type Flusher interface {
	Flush()
}

// MultiScoreSink writes to every sink in order and fails if any fails. A replay after a
// partial failure writes the rows again; ReplacingMergeTree absorbs the duplicates.
type MultiScoreSink []ScoreSink

// WriteScores implements ScoreSink.
func (m MultiScoreSink) WriteScores(ctx context.Context, rows []record.Score) error {
	var errs []error
	for _, s := range m {
		if err := s.WriteScores(ctx, rows); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Flush asks every member that groups its writes (GroupCommit) to write now.
func (m MultiScoreSink) Flush() {
	for _, s := range m {
		if f, ok := s.(Flusher); ok {
			f.Flush()
		}
	}
}

// ResumableDeadLetterSink is a DeadLetterSink whose write of a batch of letters can be
// resumed after an error without writing again what was acknowledged: BeginDeadLetters
// returns the batch's write, and each call of it after an error sends only the letters
// (or, for MultiDeadLetterSink, to the sinks) that have not acknowledged yet. The
// consumer calls BeginDeadLetters once per batch and retries the returned write, so a
// dead letter reaches each sink once per bad offset even when another sink fails (the
// DLQ topic is not written again because the ClickHouse table refused the batch).
type ResumableDeadLetterSink interface {
	DeadLetterSink
	BeginDeadLetters(letters []record.DeadLetter) func(ctx context.Context) error
}

// BeginDeadLetters returns the resumable write of letters to s: s's own when it is a
// ResumableDeadLetterSink, otherwise one that writes the whole batch until it succeeds
// once and is a no-op after.
func BeginDeadLetters(s DeadLetterSink, letters []record.DeadLetter) func(ctx context.Context) error {
	if r, ok := s.(ResumableDeadLetterSink); ok {
		return r.BeginDeadLetters(letters)
	}
	done := false
	return func(ctx context.Context) error {
		if done {
			return nil
		}
		if err := s.WriteDeadLetters(ctx, letters); err != nil {
			return err
		}
		done = true
		return nil
	}
}

// MultiDeadLetterSink writes to every sink in order and fails if any fails. Through
// BeginDeadLetters a retry writes only to the sinks that failed.
type MultiDeadLetterSink []DeadLetterSink

// WriteDeadLetters implements DeadLetterSink: one attempt of BeginDeadLetters' write.
func (m MultiDeadLetterSink) WriteDeadLetters(ctx context.Context, letters []record.DeadLetter) error {
	return m.BeginDeadLetters(letters)(ctx)
}

// BeginDeadLetters implements ResumableDeadLetterSink: each call of the write resumes
// every member's own write (see the package function BeginDeadLetters) and skips the
// members that acknowledged, so a sink that took the letters never gets them twice
// because another failed. Not safe for concurrent calls of one write.
func (m MultiDeadLetterSink) BeginDeadLetters(letters []record.DeadLetter) func(ctx context.Context) error {
	writes := make([]func(context.Context) error, len(m))
	for i, s := range m {
		writes[i] = BeginDeadLetters(s, letters)
	}
	done := make([]bool, len(m))
	return func(ctx context.Context) error {
		var errs []error
		for i, w := range writes {
			if done[i] {
				continue
			}
			if err := w(ctx); err != nil {
				errs = append(errs, err)
				continue
			}
			done[i] = true
		}
		return errors.Join(errs...)
	}
}

// AfterAck writes score rows to Durable and hands them to Observer only once Durable has
// acknowledged them, so that an observer (the alert manager) sees only rows that are
// stored: a batch retried after a failed write is observed once. An Observer error fails
// the write like a Durable one. (Replays after a crash are observed again; observers must
// tolerate that.)
type AfterAck struct {
	// Durable stores the rows: its nil error is the acknowledgement.
	Durable ScoreSink
	// Observer sees the rows after Durable acknowledged them.
	Observer ScoreSink
}

// WriteScores implements ScoreSink.
func (a AfterAck) WriteScores(ctx context.Context, rows []record.Score) error {
	if err := a.Durable.WriteScores(ctx, rows); err != nil {
		return err
	}
	return a.Observer.WriteScores(ctx, rows)
}

// Flush implements Flusher: it flushes Durable (the observer holds nothing back).
func (a AfterAck) Flush() {
	if f, ok := a.Durable.(Flusher); ok {
		f.Flush()
	}
}

var (
	_ ResumableDeadLetterSink = MultiDeadLetterSink(nil)
	_ Flusher                 = MultiScoreSink(nil)
	_ Flusher                 = AfterAck{}
)
