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
