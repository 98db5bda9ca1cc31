package consumer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// OffsetReset is what ResetGroupToTime did to one partition of a consumer group.
type OffsetReset struct {
	TopicPartition
	// Committed is the group's committed offset before the reset; -1 when it had none.
	Committed int64
	// Target is the first offset whose message timestamp is at or after the reset time;
	// End when no message is that recent.
	Target int64
	// End is the partition's end offset (the offset of the next message produced) when the
	// reset was made.
	End int64
	// New is the committed offset after the reset: Target, or Committed when that was
	// below Target (see Kept).
	New int64
}

// Kept reports that the committed offset was below the target and was left alone: moving
// it forward would skip records that were never scored.
func (r OffsetReset) Kept() bool { return r.New != r.Target }

// Records is how many records the group reads again (or for the first time) from New to
// the end offset seen at the reset.
func (r OffsetReset) Records() int64 { return max(r.End-r.New, 0) }

// rewoundOffset is the offset to commit for a partition: the target, unless the group's
// committed offset is already below it (a group that lags never skips records).
func rewoundOffset(committed, target int64) int64 {
	if committed >= 0 && committed < target {
		return committed
	}
	return target
}

// ResetGroupToTime commits, for every partition of cfg.Topics, the offset of the first
// message whose timestamp is at or after at (the end offset when there is none) as the
// consumer group cfg.GroupID's position, so that the group reads again — and raterd scores
// again — every record from that time on. A partition whose committed offset is already
// below that point keeps it (see OffsetReset.Kept). Message timestamps are Kafka's (the
// producer's CreateTime, or LogAppendTime on topics configured so), not the records'
// "timestamp" fields.
//
// The group must have no active members: offsets of a group that is consuming can only be
// committed by its members, so every raterd process of the group has to be stopped first.
// A nil transport gets one of its own (cfg.Transport()). The resets are returned sorted by topic and
// partition.
func ResetGroupToTime(ctx context.Context, cfg Config, at time.Time, transport kafka.RoundTripper) ([]OffsetReset, error) {
	if err := checkGroupAdminConfig(cfg); err != nil {
		return nil, fmt.Errorf("reset offsets: %w", err)
	}
	client, done := groupAdminClient(cfg, transport)
	defer done()

	if err := checkGroupEmpty(ctx, client, cfg.GroupID); err != nil {
		return nil, err
	}
	partitions, err := topicPartitions(ctx, client, cfg.Topics)
	if err != nil {
		return nil, fmt.Errorf("reset offsets: %w", err)
	}

	byTime := map[string][]kafka.OffsetRequest{}
	byEnd := map[string][]kafka.OffsetRequest{}
	for topic, ids := range partitions {
		for _, id := range ids {
			byTime[topic] = append(byTime[topic], kafka.TimeOffsetOf(id, at))
			byEnd[topic] = append(byEnd[topic], kafka.LastOffsetOf(id))
		}
	}
	// Two requests: a partition may appear once per ListOffsets request.
	ends, err := listOffsets(ctx, client, byEnd, func(p kafka.PartitionOffsets) int64 { return p.LastOffset })
	if err != nil {
		return nil, fmt.Errorf("reset offsets: end offsets: %w", err)
	}
	targets, err := listOffsets(ctx, client, byTime, func(p kafka.PartitionOffsets) int64 {
		for off := range p.Offsets {
			return off // one time was asked: one offset, -1 when no message is that recent
		}
		return -1
	})
	if err != nil {
		return nil, fmt.Errorf("reset offsets: offsets at %s: %w", at.UTC().Format(time.RFC3339), err)
	}

	old, err := fetchCommittedOffsets(ctx, client, cfg.GroupID, partitions)
	if err != nil {
		return nil, fmt.Errorf("reset offsets: %w", err)
	}

	var resets []OffsetReset
	commits := map[string][]kafka.OffsetCommit{}
	for topic, ids := range partitions {
		for _, id := range ids {
			tp := TopicPartition{Topic: topic, Partition: id}
			r := OffsetReset{TopicPartition: tp, Committed: -1, End: ends[tp], Target: targets[tp]}
			if c, ok := old[tp]; ok {
				r.Committed = c
			}
			if r.Target < 0 || r.Target > r.End {
				r.Target = r.End
			}
			r.New = rewoundOffset(r.Committed, r.Target)
			resets = append(resets, r)
			commits[topic] = append(commits[topic], kafka.OffsetCommit{Partition: id, Offset: r.New})
		}
	}
	slices.SortFunc(resets, func(a, b OffsetReset) int { return compareTopicPartitions(a.TopicPartition, b.TopicPartition) })

	// Generation -1 and no member id: the commit of an administrator, which the
	// coordinator accepts only while the group has no members.
	resp, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: cfg.GroupID, GenerationID: -1, Topics: commits})
	if err != nil {
		return nil, fmt.Errorf("reset offsets: commit for group %s: %w", cfg.GroupID, err)
	}
	var errs []error
	for topic, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				errs = append(errs, fmt.Errorf("%s/%d: %w", topic, p.Partition, p.Error))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		if errors.Is(err, kafka.UnknownMemberId) || errors.Is(err, kafka.IllegalGeneration) || errors.Is(err, kafka.RebalanceInProgress) {
			return nil, fmt.Errorf("reset offsets: group %s gained members during the reset; stop every raterd of the group and retry: %w", cfg.GroupID, err)
		}
		return nil, fmt.Errorf("reset offsets: commit for group %s: %w", cfg.GroupID, err)
	}
	return resets, nil
}

// checkGroupEmpty fails when the group has active members.
func checkGroupEmpty(ctx context.Context, client *kafka.Client, group string) error {
	resp, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return fmt.Errorf("reset offsets: describe group %s: %w", group, err)
	}
	for _, g := range resp.Groups {
		if g.Error != nil && !errors.Is(g.Error, kafka.GroupIdNotFound) {
			return fmt.Errorf("reset offsets: describe group %s: %w", group, g.Error)
		}
		if len(g.Members) > 0 {
			return fmt.Errorf("reset offsets: consumer group %s (kafka.group_id) has %d active member(s) (state %s): stop every raterd of the group first; offsets of a consuming group cannot be reset", group, len(g.Members), g.GroupState)
		}
	}
	return nil
}

// topicPartitions returns the partition ids of each topic; a missing topic is an error.
func topicPartitions(ctx context.Context, client *kafka.Client, topics []string) (map[string][]int, error) {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("metadata of %v: %w", topics, err)
	}
	out := map[string][]int{}
	for _, t := range meta.Topics {
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("kafka.topics: topic %s does not exist: %w", t.Name, t.Error)
		}
		if t.Error != nil {
			return nil, fmt.Errorf("kafka.topics: %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			out[t.Name] = append(out[t.Name], p.ID)
		}
	}
	for _, t := range topics {
		if len(out[t]) == 0 {
			return nil, fmt.Errorf("kafka.topics: topic %s does not exist", t)
		}
	}
	return out, nil
}

// listOffsets runs one ListOffsets request and picks one offset per partition.
func listOffsets(ctx context.Context, client *kafka.Client, req map[string][]kafka.OffsetRequest, pick func(kafka.PartitionOffsets) int64) (map[TopicPartition]int64, error) {
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return nil, err
	}
	out := map[TopicPartition]int64{}
	for topic, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("%s/%d: %w", topic, p.Partition, p.Error)
			}
			out[TopicPartition{Topic: topic, Partition: p.Partition}] = pick(p)
		}
	}
	for topic, rs := range req {
		for _, r := range rs {
			if _, ok := out[TopicPartition{Topic: topic, Partition: r.Partition}]; !ok {
				return nil, fmt.Errorf("%s/%d: no offset in the answer", topic, r.Partition)
			}
		}
	}
	return out, nil
}

// checkGroupAdminConfig checks what every administrative call on the group needs (a
// reset, a lag read), naming the missing key.
func checkGroupAdminConfig(cfg Config) error {
	switch {
	case len(cfg.Brokers) == 0:
		return errors.New("kafka.brokers: at least one broker is required")
	case len(cfg.Topics) == 0:
		return errors.New("kafka.topics: at least one topic is required")
	case cfg.GroupID == "":
		return errors.New("kafka.group_id: required")
	}
	return nil
}

// groupAdminClient returns a client of cfg.Brokers over transport; a nil transport gets
// one of its own (cfg.Transport(): the config's TLS and SASL), whose connections done
// closes.
func groupAdminClient(cfg Config, transport kafka.RoundTripper) (client *kafka.Client, done func()) {
	done = func() {}
	if transport == nil {
		// Not kafka-go's shared DefaultTransport: its metadata cache can be seconds stale.
		tr := cfg.Transport()
		transport, done = tr, tr.CloseIdleConnections
	}
	return &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second, Transport: transport}, done
}

// fetchCommittedOffsets returns the group's committed offset of each of partitions that has
// one.
func fetchCommittedOffsets(ctx context.Context, client *kafka.Client, group string, partitions map[string][]int) (map[TopicPartition]int64, error) {
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: partitions})
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %s: %w", group, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("committed offsets of group %s: %w", group, resp.Error)
	}
	out := map[TopicPartition]int64{}
	for topic, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("committed offset of %s/%d: %w", topic, p.Partition, p.Error)
			}
			if p.CommittedOffset >= 0 {
				out[TopicPartition{Topic: topic, Partition: p.Partition}] = p.CommittedOffset
			}
		}
	}
	return out, nil
}

// compareTopicPartitions orders by topic, then partition.
func compareTopicPartitions(a, b TopicPartition) int {
	return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}
