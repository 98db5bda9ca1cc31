package consumer

import (
	"fmt"
	"time"
)

// BatchPolicy says when a micro-batch is flushed: whichever of count, bytes or linger time
// is reached first.
type BatchPolicy struct {
	// MaxRecords flushes once the batch holds this many records. Default 256.
	MaxRecords int `yaml:"max_records"`
	// MaxBytes flushes once the batch's message values add up to this many bytes.
	// Default 4 MiB.
	MaxBytes int `yaml:"max_bytes"`
	// Linger flushes a non-empty batch this long after its first record arrived.
	// Default 200ms.
	Linger time.Duration `yaml:"linger"`
}

// Validate fills defaults and rejects bad values; key prefixes the key names in errors.
func (p *BatchPolicy) Validate(key string) error {
	if p.MaxRecords == 0 {
		p.MaxRecords = 256
	}
	if p.MaxBytes == 0 {
		p.MaxBytes = 4 << 20
	}
	if p.Linger == 0 {
		p.Linger = 200 * time.Millisecond
	}
	switch {
	case p.MaxRecords < 1:
		return fmt.Errorf("%s.max_records: %d must be at least 1", key, p.MaxRecords)
	case p.MaxBytes < 1:
		return fmt.Errorf("%s.max_bytes: %d must be at least 1", key, p.MaxBytes)
	case p.Linger < 0:
		return fmt.Errorf("%s.linger: %s is negative", key, p.Linger)
	}
	return nil
}

// Batcher accumulates items until its policy says flush. It is not safe for concurrent
// use: one goroutine (the consumer's batch loop) owns it.
type Batcher[T any] struct {
	policy  BatchPolicy
	items   []T
	records int // records in items (a message may yield several)
	bytes   int
	started time.Time
	now     func() time.Time
}

// NewBatcher returns a batcher for a validated policy. now may be nil (time.Now); tests
// pass a fake clock.
func NewBatcher[T any](policy BatchPolicy, now func() time.Time) *Batcher[T] {
	if now == nil {
		now = time.Now
	}
	return &Batcher[T]{policy: policy, now: now}
}

// Add appends an item of the given size that counts as one record, and reports whether
// the batch should be flushed now (by count or bytes).
func (b *Batcher[T]) Add(item T, size int) bool { return b.AddN(item, 1, size) }

// AddN appends an item of the given size that holds records records (a message that
// yields several; at least 1 is counted, so that messages yielding none still flush), and
// reports whether the batch should be flushed now (by count or bytes).
func (b *Batcher[T]) AddN(item T, records, size int) bool {
	if len(b.items) == 0 {
		b.started = b.now()
	}
	b.items = append(b.items, item)
	b.records += max(records, 1)
	b.bytes += size
	return b.records >= b.policy.MaxRecords || b.bytes >= b.policy.MaxBytes
}

// Len is the number of items waiting.
func (b *Batcher[T]) Len() int { return len(b.items) }

// UntilNext is how long until the linger time forces a flush: 0 when it is due, and a
// negative value when the batch is empty (nothing to wait for).
func (b *Batcher[T]) UntilNext() time.Duration {
	if len(b.items) == 0 {
		return -1
	}
	d := b.policy.Linger - b.now().Sub(b.started)
	if d < 0 {
		return 0
	}
	return d
}

// Flush returns the waiting items and their total size, and starts a new batch.
func (b *Batcher[T]) Flush() ([]T, int) {
	items, size := b.items, b.bytes
	b.items = make([]T, 0, b.policy.MaxRecords)
	b.records, b.bytes = 0, 0
	return items, size
}
