package consumer

import (
	"testing"
	"time"
)

// The read-ahead budget is shared by a generation's partitions, with a floor per partition.
func TestPartitionQueueSplitsTheReadAheadBudget(t *testing.T) {
	cfg := Config{Batch: BatchPolicy{MaxRecords: 256}}
	for _, tc := range []struct{ partitions, want int }{{0, 256}, {1, 256}, {4, 64}, {64, 8}, {1000, groupFetchQueueMin}} {
		if got := partitionQueue(cfg, tc.partitions); got != tc.want {
			t.Errorf("%d partitions: %d messages each, want %d", tc.partitions, got, tc.want)
		}
	}
	if got := partitionQueue(Config{Batch: BatchPolicy{MaxRecords: 10}}, 2); got != 50 {
		t.Errorf("a small batch still leaves 100 messages to share: got %d each of 2, want 50", got)
	}
}

// The hand-back keeps half the rebalance timeout, and ends before the session does:
// kafka-go stops heartbeating when a generation ends.
func TestHandBackTimeoutEndsBeforeTheSession(t *testing.T) {
	for _, tc := range []struct {
		session, rebalance, want time.Duration
	}{
		{30 * time.Second, 30 * time.Second, 15 * time.Second},
		{6 * time.Second, 20 * time.Second, 6*time.Second - 2*600*time.Millisecond},
		{10 * time.Second, 4 * time.Second, 2 * time.Second},
	} {
		cfg := Config{SessionTimeout: tc.session, RebalanceTimeout: tc.rebalance}
		if got := handBackTimeout(cfg); got != tc.want {
			t.Errorf("session %s, rebalance %s: hand-back %s, want %s", tc.session, tc.rebalance, got, tc.want)
		}
	}
}
