package consumer

import "testing"

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
