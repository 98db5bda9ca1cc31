package app

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"raterd/consumer"
)

// RewindGroup resets the consumer group's committed offsets to the first message at or
// after from on every partition of the configured topics (raterd run --from), and logs
// each partition's old and new offset and how many records it will score again.
func RewindGroup(ctx context.Context, cfg *Config, from time.Time, logger *slog.Logger) ([]consumer.OffsetReset, error) {
	resets, err := consumer.ResetGroupToTime(ctx, cfg.Kafka, from, nil)
	if err != nil {
		return nil, fmt.Errorf("--from %s: %w", from.Format(time.RFC3339Nano), cfg.Kafka.ConnectionError("kafka", err))
	}
	var total int64
	for _, r := range resets {
		old := "none"
		if r.Committed >= 0 {
			old = strconv.FormatInt(r.Committed, 10)
		}
		attrs := []any{"topic", r.Topic, "partition", r.Partition, "old_offset", old, "new_offset", r.New,
			"end_offset", r.End, "records", r.Records()}
		if r.Kept() {
			logger.Warn("--from: the group is behind this time on this partition; kept its offset so that no unscored record is skipped",
				append(attrs, "offset_at_from", r.Target)...)
		} else {
			logger.Info("--from: reset offset", attrs...)
		}
		total += r.Records()
	}
	logger.Info("--from: consumer group rewound", "group", cfg.Kafka.GroupID, "from", from.Format(time.RFC3339Nano),
		"partitions", len(resets), "records", total)
	return resets, nil
}
