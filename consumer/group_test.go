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

// The default session timeout is what a restart after a crash (kill -9, OOM) waits for:
// the dead member keeps its partitions until its session expires, since kafka-go's group
// has no static membership to rejoin as. 10s, within the broker's floor (6s) and with
// heartbeats every second, keeps that wait at a third of kafka-go's 30s default and
// leaves the hand-back 8s (docs/reliability.md, Restart).
func TestDefaultSessionTimeoutBoundsCrashRestart(t *testing.T) {
	cfg := Config{Brokers: []string{"127.0.0.1:9092"}, Topics: []string{"t"}}
	if err := cfg.Validate("kafka"); err != nil {
		t.Fatal(err)
	}
	if cfg.SessionTimeout != 10*time.Second {
		t.Errorf("default session_timeout %s, want 10s", cfg.SessionTimeout)
	}
	if hb := heartbeatInterval(cfg); hb != time.Second {
		t.Errorf("heartbeat every %s, want 1s", hb)
	}
	if hb := handBackTimeout(cfg); hb != 8*time.Second {
		t.Errorf("hand-back %s, want 8s", hb)
	}
}
