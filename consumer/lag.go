package consumer

import (
	"context"
	"fmt"
	"slices"

	"github.com/segmentio/kafka-go"
)

// PartitionLag is how far a consumer group is behind on one partition.
type PartitionLag struct {
	TopicPartition
	// Committed is the group's committed offset: the next record it will read. -1 when
	// the group has committed nothing on this partition.
	Committed int64
	// First is the partition's oldest offset still held (retention deletes older ones).
	First int64
	// End is the partition's end offset: the offset the next message produced will get.
	End int64
	// StartLatest is kafka.start_offset: latest: a partition the group has committed
	// nothing on is read from the end, so none of its records count as lag.
	StartLatest bool
}

// Lag is the number of records the group has not finished. On a partition it has
// committed nothing on, that is every record still held (from First) with
// kafka.start_offset: earliest, and none with latest.
func (l PartitionLag) Lag() int64 {
	switch {
	case l.Committed >= 0:
		return max(l.End-l.Committed, 0)
	case l.StartLatest:
		return 0
	default:
		return max(l.End-max(l.First, 0), 0)
	}
}

// TotalLag sums the lag of every partition.
func TotalLag(lags []PartitionLag) int64 {
	var n int64
	for _, l := range lags {
		n += l.Lag()
	}
	return n
}

// GroupLag reads the committed offset of consumer group cfg.GroupID and the end offset
// of every partition of cfg.Topics. raterd commits an offset only when every record below
// it has its scores acknowledged or is dead-lettered, so a lag of 0 means every record
// produced so far is done. A missing topic is an error naming it. A nil transport gets
// one of its own (cfg.Transport()). The lags are sorted by topic and partition.
func GroupLag(ctx context.Context, cfg Config, transport kafka.RoundTripper) ([]PartitionLag, error) {
	if err := checkGroupAdminConfig(cfg); err != nil {
		return nil, fmt.Errorf("consumer lag: %w", err)
	}
	client, done := groupAdminClient(cfg, transport)
	defer done()

	partitions, err := topicPartitions(ctx, client, cfg.Topics)
	if err != nil {
		return nil, fmt.Errorf("consumer lag: %w", err)
	}
	byEnd := map[string][]kafka.OffsetRequest{}
	byFirst := map[string][]kafka.OffsetRequest{}
	for topic, ids := range partitions {
		for _, id := range ids {
			byEnd[topic] = append(byEnd[topic], kafka.LastOffsetOf(id))
			byFirst[topic] = append(byFirst[topic], kafka.FirstOffsetOf(id))
		}
	}
	// Two requests: a partition may appear once per ListOffsets request.
	ends, err := listOffsets(ctx, client, byEnd, func(p kafka.PartitionOffsets) int64 { return p.LastOffset })
	if err != nil {
		return nil, fmt.Errorf("consumer lag: end offsets: %w", err)
	}
	firsts, err := listOffsets(ctx, client, byFirst, func(p kafka.PartitionOffsets) int64 { return p.FirstOffset })
	if err != nil {
		return nil, fmt.Errorf("consumer lag: first offsets: %w", err)
	}
	old, err := fetchCommittedOffsets(ctx, client, cfg.GroupID, partitions)
	if err != nil {
		return nil, fmt.Errorf("consumer lag: %w", err)
	}

	var lags []PartitionLag
	for topic, ids := range partitions {
		for _, id := range ids {
			tp := TopicPartition{Topic: topic, Partition: id}
			l := PartitionLag{TopicPartition: tp, Committed: -1, First: firsts[tp], End: ends[tp],
				StartLatest: cfg.StartOffset == StartLatest}
			if c, ok := old[tp]; ok {
				l.Committed = c
			}
			lags = append(lags, l)
		}
	}
	slices.SortFunc(lags, func(a, b PartitionLag) int { return compareTopicPartitions(a.TopicPartition, b.TopicPartition) })
	return lags, nil
}
