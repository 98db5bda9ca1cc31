package clickhouse

import (
	"context"
	"testing"
	"time"

	"raterd/consumer"
)

// TestClickHouseUnknownEventTimeReplayCollapses: a record with no time of its own nor in
// its Kafka message is stored at consumer.UnknownEventTime on every read, so its replay
// (scored later) collapses with the first copy in scores FINAL (issue 17d). Before, it got
// the time it was read: the replay landed in another hour, and FINAL counted it twice.
func TestClickHouseUnknownEventTimeReplayCollapses(t *testing.T) {
	conn, cfg := newTestClickHouse(t)
	if _, err := Migrate(context.Background(), conn, cfg.Database, quiet); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	sink := NewScores(conn, cfg, quiet)
	for _, scoredAt := range []time.Time{time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC)} {
		rows := testScores(1)
		rows[0].EventTime = consumer.UnknownEventTime()
		rows[0].ScoredAt = scoredAt
		if err := sink.WriteScores(context.Background(), rows); err != nil {
			t.Fatal(err)
		}
	}
	if got := countRows(t, conn, "SELECT count() FROM "+cfg.Database+".scores FINAL WHERE event_time = toDateTime(0)"); got != 1 {
		t.Fatalf("scores FINAL holds %d rows of the record and its replay, want 1", got)
	}
}
