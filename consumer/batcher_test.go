package consumer

import (
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestBatcherFlushesByCountBytesAndLinger(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	policy := BatchPolicy{MaxRecords: 3, MaxBytes: 100, Linger: time.Second}
	if err := policy.Validate("batch"); err != nil {
		t.Fatal(err)
	}
	b := NewBatcher[int](policy, clock.now)
	if d := b.UntilNext(); d >= 0 {
		t.Fatalf("empty batch UntilNext = %v, want negative", d)
	}
	if b.Add(1, 10) || b.Add(2, 10) {
		t.Fatal("flush requested before the count was reached")
	}
	if !b.Add(3, 10) {
		t.Fatal("no flush at MaxRecords")
	}
	items, size := b.Flush()
	if len(items) != 3 || size != 30 || b.Len() != 0 {
		t.Fatalf("Flush = %v, %d; Len %d", items, size, b.Len())
	}

	if !b.Add(4, 150) {
		t.Fatal("no flush at MaxBytes")
	}
	b.Flush()

	b.Add(5, 1)
	clock.t = clock.t.Add(400 * time.Millisecond)
	if d := b.UntilNext(); d != 600*time.Millisecond {
		t.Fatalf("UntilNext = %v, want 600ms", d)
	}
	clock.t = clock.t.Add(2 * time.Second)
	if d := b.UntilNext(); d != 0 {
		t.Fatalf("UntilNext after linger = %v, want 0", d)
	}
}

func TestBatchPolicyValidate(t *testing.T) {
	for _, tt := range []struct {
		p    BatchPolicy
		want string
	}{
		{BatchPolicy{MaxRecords: -1}, "batch.max_records"},
		{BatchPolicy{MaxBytes: -5}, "batch.max_bytes"},
		{BatchPolicy{Linger: -time.Second}, "batch.linger"},
	} {
		err := tt.p.Validate("batch")
		if err == nil || !contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tt.p, err, tt.want)
		}
	}
	var p BatchPolicy
	if err := p.Validate("batch"); err != nil || p.MaxRecords != 256 || p.MaxBytes != 4<<20 || p.Linger != 200*time.Millisecond {
		t.Fatalf("defaults: %+v, %v", p, err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
