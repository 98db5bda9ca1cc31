package sinks

import (
	"context"
	"errors"
	"testing"

	"raterd/record"
)

// flushingSink is a fake grouping sink: it records writes and counts Flush calls.
type flushingSink struct {
	fakeScoreSink
	flushes int
}

func (f *flushingSink) Flush() { f.flushes++ }

func TestAfterAckObservesOnlyAcknowledgedRows(t *testing.T) {
	rows := []record.Score{{RecordID: "a"}, {RecordID: "b"}}
	durable, observer := &fakeScoreSink{err: errors.New("clickhouse down")}, &fakeScoreSink{}
	s := AfterAck{Durable: durable, Observer: observer}
	if err := s.WriteScores(context.Background(), rows); err == nil {
		t.Fatal("a failed durable write was acknowledged")
	}
	if len(observer.calls) != 0 {
		t.Fatalf("the observer saw %d writes of rows the durable sink refused", len(observer.calls))
	}
	durable.err = nil
	if err := s.WriteScores(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	if len(durable.calls) != 2 || len(observer.calls) != 1 || len(observer.calls[0]) != 2 {
		t.Fatalf("durable %d writes, observer %d: want 2 and 1 (the retried batch observed once)", len(durable.calls), len(observer.calls))
	}
	observer.err = errors.New("alerts refused")
	if err := s.WriteScores(context.Background(), rows); err == nil {
		t.Fatal("an observer error was not reported")
	}
}

// TestFlushReachesWrappedSinks guards the flush path through every wrapper: a wrapper
// that does not forward Flush leaves grouped rows waiting for the sink's interval.
func TestFlushReachesWrappedSinks(t *testing.T) {
	inner := &flushingSink{}
	var s ScoreSink = AfterAck{Durable: MultiScoreSink{&fakeScoreSink{}, inner}, Observer: &fakeScoreSink{}}
	f, ok := s.(Flusher)
	if !ok {
		t.Fatal("AfterAck is not a Flusher")
	}
	f.Flush()
	MultiScoreSink{AfterAck{Durable: inner, Observer: &fakeScoreSink{}}}.Flush()
	if inner.flushes != 2 {
		t.Fatalf("the grouping sink was flushed %d times, want 2", inner.flushes)
	}
	// A durable sink that groups nothing is simply not flushed.
	AfterAck{Durable: &fakeScoreSink{}, Observer: &fakeScoreSink{}}.Flush()
}
