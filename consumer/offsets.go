package consumer

import (
	"fmt"
	"sync"
)

// TopicPartition names one partition of one topic.
type TopicPartition struct {
	Topic     string
	Partition int
}

// String is "topic/partition".
func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

// partitionOffsets tracks the fetched but not yet committable offsets of one partition.
// Offsets are tracked in fetch order (ascending); completion may come in any order.
type partitionOffsets struct {
	pending []int64        // fetched offsets not yet below the watermark, ascending
	done    map[int64]bool // pending offsets that completed out of order
	// abandoned are pending offsets that will never be done here: an open conversation
	// held them and was dropped when the partition was revoked. The watermark stops at
	// the first; the partition's next owner reads them again.
	abandoned map[int64]bool
	// next is the offset to commit: every record below it is fully done. -1 until the
	// first record of the partition completes.
	next      int64
	committed int64 // the last next value handed out by Committable, -1 if none
	// epoch tells this state from an earlier one of the same partition (Assigned forgets
	// a partition's state): a Done of an earlier epoch — a batch of a generation that
	// ended, finishing late — must not mark an offset read again since.
	epoch uint64
}

// OffsetTracker knows, per partition, the highest offset below which every record is fully
// done (scored and written, or dead-lettered). Only that offset may be committed, so a crash
// never skips an unfinished record. Safe for concurrent use: the batch loop tracks, the
// workers mark done, the committer reads.
type OffsetTracker struct {
	mu         sync.Mutex
	partitions map[TopicPartition]*partitionOffsets
	epochs     uint64 // the last epoch handed out
}

// NewOffsetTracker returns an empty tracker.
func NewOffsetTracker() *OffsetTracker {
	return &OffsetTracker{partitions: make(map[TopicPartition]*partitionOffsets)}
}

// Track registers a fetched offset. Offsets of one partition must be tracked in ascending
// order; an offset at or below one already tracked is rejected (kafka-go may redeliver
// after a rebalance), and the caller should skip that message — except an abandoned
// offset (Abandon), which is accepted again.
func (t *OffsetTracker) Track(tp TopicPartition, offset int64) error {
	_, err := t.TrackEpoch(tp, offset)
	return err
}

// TrackEpoch is Track that also returns the epoch of the partition's state, for DoneIn
// and AbandonIn.
func (t *OffsetTracker) TrackEpoch(tp TopicPartition, offset int64) (uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.partitions[tp]
	if p == nil {
		t.epochs++
		p = &partitionOffsets{done: make(map[int64]bool), next: -1, committed: -1, epoch: t.epochs}
		t.partitions[tp] = p
	}
	if p.abandoned[offset] {
		// Read again after a revoke dropped the conversation that held it: it is still
		// pending at its place, in flight once more.
		delete(p.abandoned, offset)
		return p.epoch, nil
	}
	if n := len(p.pending); n > 0 && offset <= p.pending[n-1] || offset < p.next {
		return 0, fmt.Errorf("offset %d of %s is not after the offsets already tracked", offset, tp)
	}
	p.pending = append(p.pending, offset)
	return p.epoch, nil
}

// Done marks a tracked offset fully processed and advances the partition's watermark past
// every contiguous done offset.
func (t *OffsetTracker) Done(tp TopicPartition, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.partitions[tp]; p != nil {
		p.markDone(offset)
	}
}

// DoneIn is Done for an offset tracked in the given epoch (TrackEpoch): nothing when the
// partition's state has been forgotten since.
func (t *OffsetTracker) DoneIn(tp TopicPartition, offset int64, epoch uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.partitions[tp]; p != nil && p.epoch == epoch {
		p.markDone(offset)
	}
}

// markDone is Done on one partition's state.
func (p *partitionOffsets) markDone(offset int64) {
	if offset < p.next {
		return // below the watermark already
	}
	p.done[offset] = true
	i := 0
	for i < len(p.pending) && p.done[p.pending[i]] {
		delete(p.done, p.pending[i])
		p.next = p.pending[i] + 1
		i++
	}
	if i > 0 {
		// Copy down rather than reslice so the backing array does not grow forever.
		p.pending = append(p.pending[:0], p.pending[i:]...)
	}
}

// Committable returns, for each partition whose watermark moved since the last call, the
// next offset to commit (the Kafka convention: the offset of the next record to read).
func (t *OffsetTracker) Committable() map[TopicPartition]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out map[TopicPartition]int64
	for tp, p := range t.partitions {
		if p.next > p.committed {
			if out == nil {
				out = make(map[TopicPartition]int64)
			}
			out[tp] = p.next
			p.committed = p.next
		}
	}
	return out
}

// Uncommit puts back watermarks that Committable handed out but that could not be
// committed, so the next call returns them again.
func (t *OffsetTracker) Uncommit(failed map[TopicPartition]int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for tp, next := range failed {
		if p := t.partitions[tp]; p != nil && p.committed == next {
			p.committed = -1
		}
	}
}

// AbandonIn marks offsets tracked in epoch that will never be done here (see
// partitionOffsets.abandoned): the watermark never passes them, and they no longer count
// as pending.
func (t *OffsetTracker) AbandonIn(tp TopicPartition, epoch uint64, offsets ...int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.partitions[tp]
	if p == nil || p.epoch != epoch {
		return
	}
	if p.abandoned == nil {
		p.abandoned = make(map[int64]bool)
	}
	for _, off := range offsets {
		if off >= p.next && !p.done[off] {
			p.abandoned[off] = true
		}
	}
}

// Assigned tells the tracker a generation's assignment: each partition this member owns
// and the group's committed offset it starts at (< 0: none). The state of a partition
// holding abandoned offsets is kept when the partition is assigned here again at or below
// the first of them — the group resumes where this member stopped, and TrackEpoch revives
// each abandoned offset as it is read again — and forgotten otherwise: another member
// has the partition, or processed past those offsets. A forgotten partition starts afresh
// (a new epoch) if it comes back.
func (t *OffsetTracker) Assigned(assigned map[TopicPartition]int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for tp, p := range t.partitions {
		if len(p.abandoned) == 0 {
			continue
		}
		first := int64(-1)
		for off := range p.abandoned {
			if first < 0 || off < first {
				first = off
			}
		}
		start, ok := assigned[tp]
		if !ok || start < 0 || start > first {
			delete(t.partitions, tp)
		}
	}
}

// unfinished is the number of pending offsets that are neither done nor abandoned.
func (p *partitionOffsets) unfinished() int {
	n := 0
	for _, off := range p.pending {
		if !p.done[off] && !p.abandoned[off] {
			n++
		}
	}
	return n
}

// Pending is the number of tracked offsets not yet below a watermark, over all partitions.
func (t *OffsetTracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.partitions {
		n += len(p.pending)
	}
	return n
}

// PendingIn is the number of tracked offsets not yet below a watermark in the given
// partitions that are neither done (behind an offset still held) nor abandoned.
func (t *OffsetTracker) PendingIn(parts []TopicPartition) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, tp := range parts {
		if p := t.partitions[tp]; p != nil {
			n += p.unfinished()
		}
	}
	return n
}
