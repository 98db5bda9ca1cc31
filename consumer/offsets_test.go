package consumer

import "testing"

func TestOffsetTrackerCommitsOnlyContiguousDone(t *testing.T) {
	tr := NewOffsetTracker()
	p0 := TopicPartition{Topic: "t", Partition: 0}
	p1 := TopicPartition{Topic: "t", Partition: 1}
	for _, off := range []int64{10, 11, 12, 13} {
		if err := tr.Track(p0, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Track(p1, 5); err != nil {
		t.Fatal(err)
	}
	if c := tr.Committable(); len(c) != 0 {
		t.Fatalf("nothing done yet, Committable = %v", c)
	}
	// Out of order: 12 and 11 finish before 10.
	tr.Done(p0, 12)
	tr.Done(p0, 11)
	if c := tr.Committable(); len(c) != 0 {
		t.Fatalf("offset 10 still pending, Committable = %v", c)
	}
	tr.Done(p0, 10)
	c := tr.Committable()
	if c[p0] != 13 || len(c) != 1 {
		t.Fatalf("Committable = %v, want t/0 → 13", c)
	}
	if c := tr.Committable(); len(c) != 0 {
		t.Fatalf("unchanged watermark handed out twice: %v", c)
	}
	tr.Done(p1, 5)
	tr.Done(p0, 13)
	c = tr.Committable()
	if c[p0] != 14 || c[p1] != 6 {
		t.Fatalf("Committable = %v", c)
	}
	if tr.Pending() != 0 {
		t.Fatalf("Pending = %d", tr.Pending())
	}
}

func TestOffsetTrackerRejectsStaleRedelivery(t *testing.T) {
	tr := NewOffsetTracker()
	tp := TopicPartition{Topic: "t", Partition: 0}
	_ = tr.Track(tp, 5)
	if err := tr.Track(tp, 5); err == nil {
		t.Fatal("duplicate offset accepted")
	}
	tr.Done(tp, 5)
	if err := tr.Track(tp, 3); err == nil {
		t.Fatal("offset below the done watermark accepted")
	}
	// Gaps (compacted topics, transaction markers) are fine.
	if err := tr.Track(tp, 9); err != nil {
		t.Fatal(err)
	}
	tr.Done(tp, 9)
	if c := tr.Committable(); c[tp] != 10 {
		t.Fatalf("Committable = %v", c)
	}
}

func TestOffsetTrackerUncommitRetries(t *testing.T) {
	tr := NewOffsetTracker()
	tp := TopicPartition{Topic: "t", Partition: 0}
	_ = tr.Track(tp, 0)
	tr.Done(tp, 0)
	c := tr.Committable()
	tr.Uncommit(c)
	if again := tr.Committable(); again[tp] != 1 {
		t.Fatalf("after Uncommit, Committable = %v", again)
	}
}

// PendingIn counts only the named partitions' offsets still in flight (what a revoked
// partition's hand-back waits for).
func TestOffsetTrackerPendingInCountsOnlyTheNamedPartitions(t *testing.T) {
	tr := NewOffsetTracker()
	p0, p1, p2 := TopicPartition{Topic: "t", Partition: 0}, TopicPartition{Topic: "t", Partition: 1}, TopicPartition{Topic: "t", Partition: 2}
	for _, tp := range []TopicPartition{p0, p0, p1} {
		if err := tr.Track(tp, int64(tr.PendingIn([]TopicPartition{tp}))); err != nil {
			t.Fatal(err)
		}
	}
	if n := tr.PendingIn([]TopicPartition{p0}); n != 2 {
		t.Errorf("PendingIn(t/0) = %d, want 2", n)
	}
	if n := tr.PendingIn([]TopicPartition{p1, p2}); n != 1 {
		t.Errorf("PendingIn(t/1, t/2) = %d, want 1 (t/2 was never tracked)", n)
	}
	tr.Done(p0, 0)
	tr.Done(p0, 1)
	if n := tr.PendingIn([]TopicPartition{p0, p1}); n != 1 {
		t.Errorf("after t/0 is done, PendingIn(t/0, t/1) = %d, want 1", n)
	}
}
