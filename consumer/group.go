package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/internal/telemetry"
)

// GroupReader is the MessageReader raterd runs with: a consumer group member that knows
// which partitions it owns in each generation. kafka-go's group *kafka.Reader does not
// say, so it commits whatever it is handed, also for partitions the group has since given
// to another member — and a late commit from the old owner can move that member's
// committed offset back. GroupReader, built on kafka-go's ConsumerGroup:
//   - commits only offsets of partitions it owns in the current generation (the others
//     are dropped, and their records replay on their new owner);
//   - when a generation ends (a rebalance), stops fetching, gives the pipeline up to half
//     of Config.RebalanceTimeout, and less than the session timeout (handBackTimeout), to
//     finish the records in flight and commit them (see OnRevoke), and only then lets the
//     group move on;
//   - never commits below the offset a partition was assigned at in this generation;
//   - fetches each assigned partition with its own kafka-go reader, from the committed
//     offset (or Config.StartOffset for a new group).
//
// Memory: besides the pipeline's own in-flight bounds, the partition readers of a
// generation share a read-ahead of max(batch.max_records, 100) messages, but hold at least
// groupFetchQueueMin (8) each, plus one each waiting to be handed over: with more than a
// dozen partitions per member the read-ahead grows with them, by 9 messages each.
type GroupReader struct {
	group  *kafka.ConsumerGroup
	cfg    Config
	dialer *kafka.Dialer
	logger *slog.Logger

	out       chan kafka.Message
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	// topics checks which partitions no member owns, for the topic watcher.
	topics *TopicChecker
	// unownedRejoins counts the rejoins in a row that the topic watcher asked for
	// because partitions were unowned; it spaces the next ones out (watchWait). Only
	// the watchers touch it, one generation at a time.
	unownedRejoins atomic.Int32

	mu  sync.Mutex
	gen *kafka.Generation
	// owned maps each partition of the current generation to the offset it was assigned
	// at (-1 when the group had none committed): a commit below it would move the group's
	// offset back past what another member did meanwhile.
	owned    map[TopicPartition]int64
	onRevoke func(ctx context.Context, partitions []TopicPartition)
	onAssign func(assigned map[TopicPartition]int64)
}

// ErrRebalancing is returned by GroupReader.CommitMessages while the group has no active
// generation: the commit is retried once it has one.
var ErrRebalancing = errors.New("kafka group: no active generation (rebalancing)")

// groupFetchQueueMin is the fewest messages a partition reader holds ahead, so that a
// member owning many partitions still reads each in batches.
const groupFetchQueueMin = 8

// partitionQueue splits the read-ahead budget — as much as kafka-go's group reader holds
// for all partitions: max(batch.max_records, 100) — among a generation's partitions.
func partitionQueue(cfg Config, partitions int) int {
	return max(groupFetchQueueMin, max(cfg.Batch.MaxRecords, 100)/max(partitions, 1))
}

// heartbeatInterval is a tenth of the session timeout: nine heartbeats may be lost before
// the coordinator gives up on the member.
func heartbeatInterval(cfg Config) time.Duration {
	return max(cfg.SessionTimeout/10, 100*time.Millisecond)
}

// handBackTimeout bounds the revoke hook. The coordinator waits RebalanceTimeout for
// members to rejoin, so the hook keeps half of it; and kafka-go stops heartbeating when a
// generation ends, so the hook must also end before the session times out, or the member
// is dropped and its hand-back commits are refused.
func handBackTimeout(cfg Config) time.Duration {
	return max(min(cfg.RebalanceTimeout/2, cfg.SessionTimeout-2*heartbeatInterval(cfg)), 0)
}

// NewGroupReader joins cfg.GroupID for cfg.Topics. A nil dialer uses cfg.Dialer() (the
// config's TLS and SASL). Its logs and the Kafka client's go to tel's logger. Close it to
// leave the group.
func NewGroupReader(cfg Config, dialer *kafka.Dialer, tel telemetry.Settings) (*GroupReader, error) {
	if dialer == nil {
		dialer = cfg.Dialer()
	}
	logger := tel.WithDefaults().Logger
	start := kafka.FirstOffset
	if cfg.StartOffset == StartLatest {
		start = kafka.LastOffset
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                cfg.GroupID,
		Brokers:           cfg.Brokers,
		Dialer:            dialer,
		Topics:            cfg.Topics,
		SessionTimeout:    cfg.SessionTimeout,
		RebalanceTimeout:  cfg.RebalanceTimeout,
		HeartbeatInterval: heartbeatInterval(cfg),
		// raterd's own watcher (watchTopics) instead: kafka-go's misses topics created
		// while the group joins.
		WatchPartitionChanges: false,
		StartOffset:           start,
		Logger:                debugLogger(logger, "kafka group: "),
		ErrorLogger:           kafka.LoggerFunc(func(msg string, args ...any) { logger.Warn("kafka group: " + BrokerText(fmt.Sprintf(msg, args...))) }),
	})
	if err != nil {
		return nil, fmt.Errorf("kafka consumer group %s: %w", cfg.GroupID, err)
	}
	r := &GroupReader{group: group, cfg: cfg, dialer: dialer, logger: logger, topics: NewTopicChecker(cfg, dialer),
		out: make(chan kafka.Message), closed: make(chan struct{})}
	r.wg.Add(1)
	go r.run()
	return r, nil
}

// OnRevoke sets the function called when this member's partitions are taken away (every
// rebalance, since kafka-go rebalances eagerly), once their partition readers have
// stopped: it should finish or abandon the records of those partitions before ctx ends
// (see handBackTimeout) and commit what is done; commits still reach the old generation
// until it returns. It is not called when the reader is closed: the pipeline has made its
// final commit by then. Set it before the first FetchMessage.
func (r *GroupReader) OnRevoke(fn func(ctx context.Context, partitions []TopicPartition)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onRevoke = fn
}

// OnAssign sets the function called with each generation's partitions and the
// committed offsets they are assigned at (< 0: none), before any of them is fetched. Set
// it before the first FetchMessage.
func (r *GroupReader) OnAssign(fn func(assigned map[TopicPartition]int64)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onAssign = fn
}

// Owned returns the partitions this member owns in the current generation, sorted; none
// while the group rebalances.
func (r *GroupReader) Owned() []TopicPartition {
	r.mu.Lock()
	defer r.mu.Unlock()
	parts := make([]TopicPartition, 0, len(r.owned))
	for tp := range r.owned {
		parts = append(parts, tp)
	}
	sortPartitions(parts)
	return parts
}

func sortPartitions(parts []TopicPartition) { slices.SortFunc(parts, compareTopicPartitions) }

// FetchMessage returns the next message of any owned partition.
func (r *GroupReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	select {
	case m := <-r.out:
		return m, nil
	case <-ctx.Done():
		return kafka.Message{}, ctx.Err()
	case <-r.closed:
		return kafka.Message{}, io.EOF
	}
}

// CommitMessages commits, for each message, the offset after it — for the partitions
// this member owns now, and only forward of the offset each was assigned at. Messages of
// other partitions are skipped (logged): their records replay on the partition's new
// owner. It fails with ErrRebalancing while no generation is active.
func (r *GroupReader) CommitMessages(ctx context.Context, msgs ...kafka.Message) error {
	r.mu.Lock()
	gen, owned := r.gen, r.owned
	r.mu.Unlock()
	if gen == nil {
		return ErrRebalancing
	}
	offsets := map[string]map[int]int64{}
	var skipped, behind []string
	for _, m := range msgs {
		tp := TopicPartition{Topic: m.Topic, Partition: m.Partition}
		start, ok := owned[tp]
		if !ok {
			skipped = append(skipped, tp.String())
			continue
		}
		if m.Offset+1 < start {
			// Work of an earlier generation finishing late: another member has committed
			// past it since.
			behind = append(behind, tp.String())
			continue
		}
		if offsets[m.Topic] == nil {
			offsets[m.Topic] = map[int]int64{}
		}
		offsets[m.Topic][m.Partition] = max(offsets[m.Topic][m.Partition], m.Offset+1)
	}
	if len(skipped) > 0 {
		r.logger.Info("not committing partitions this member no longer owns; their records replay on the new owner", "partitions", skipped)
	}
	if len(behind) > 0 {
		r.logger.Info("not moving committed offsets back below where this generation started", "partitions", behind)
	}
	if len(offsets) == 0 {
		return nil
	}
	// Generation.CommitOffsets takes no context; bound the wait here.
	errc := make(chan error, 1)
	go func() { errc <- gen.CommitOffsets(offsets) }()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("kafka group %s generation %d: commit: %w", r.cfg.GroupID, gen.ID, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka group %s: commit: %w", r.cfg.GroupID, ctx.Err())
	}
}

// Close leaves the group and stops the partition readers; FetchMessage then returns
// io.EOF. The revoke hook is not called for the generation it ends.
func (r *GroupReader) Close() error {
	var err error
	r.closeOnce.Do(func() {
		close(r.closed) // first: the ending generation's watcher sees it and skips the hook
		err = r.group.Close()
		r.wg.Wait()
	})
	return err
}

// closing reports whether Close has been called.
func (r *GroupReader) closing() bool {
	select {
	case <-r.closed:
		return true
	default:
		return false
	}
}

// run follows the group's generations until the reader is closed.
func (r *GroupReader) run() {
	defer r.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-r.closed
		cancel()
	}()
	for {
		gen, err := r.group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return
			}
			r.logger.Warn("kafka group: joining the next generation failed; retrying", "group", r.cfg.GroupID, "err", err)
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			}
			continue
		}
		r.startGeneration(gen)
	}
}

// startGeneration records gen's assignment and starts one reader per partition, plus a
// watcher that hands the partitions back when the generation ends.
func (r *GroupReader) startGeneration(gen *kafka.Generation) {
	owned := map[TopicPartition]int64{}
	var parts []TopicPartition
	n := 0
	for _, assigned := range gen.Assignments {
		n += len(assigned)
	}
	queue := partitionQueue(r.cfg, n)
	assignedAt := map[TopicPartition]int64{}
	for topic, assigned := range gen.Assignments {
		for _, a := range assigned {
			assignedAt[TopicPartition{Topic: topic, Partition: a.ID}] = max(a.Offset, -1)
		}
	}
	r.mu.Lock()
	onAssign := r.onAssign
	r.mu.Unlock()
	if onAssign != nil {
		onAssign(assignedAt)
	}
	var fetchers sync.WaitGroup
	for topic, assigned := range gen.Assignments {
		for _, a := range assigned {
			tp := TopicPartition{Topic: topic, Partition: a.ID}
			owned[tp] = max(a.Offset, -1) // FirstOffset/LastOffset (< 0): nothing committed
			parts = append(parts, tp)
			fetchers.Add(1)
			gen.Start(func(ctx context.Context) {
				defer fetchers.Done()
				r.fetchPartition(ctx, tp, a.Offset, queue)
			})
		}
	}
	sortPartitions(parts)
	r.mu.Lock()
	r.gen, r.owned = gen, owned
	r.mu.Unlock()
	r.logger.Info("kafka group: partitions assigned", "group", r.cfg.GroupID, "generation", gen.ID, "partitions", len(parts))
	// Returning ends the generation (kafka-go ends it when any of its functions returns):
	// the group rebalances and assigns what no member owned.
	gen.Start(r.watchTopics)

	// Tracked by r.wg too: a generation that ended before this call runs the watcher
	// untracked by kafka-go, and Close must still wait for it.
	r.wg.Add(1)
	gen.Start(func(ctx context.Context) {
		defer r.wg.Done()
		<-ctx.Done() // the generation is ending: a rebalance, or Close
		// No message of these partitions reaches the pipeline once the hook runs.
		fetchers.Wait()
		r.mu.Lock()
		hook := r.onRevoke
		// A watcher run late, after the next generation began, must not hand back what
		// that generation may have assigned here again: the pipeline would skip those
		// partitions' messages and drop their open conversations.
		stale := r.gen != gen
		r.mu.Unlock()
		if stale {
			r.logger.Info("kafka group: a generation's revoke ran after the next one began; skipped", "group", r.cfg.GroupID, "generation", gen.ID)
		}
		if hook != nil && len(parts) > 0 && !r.closing() && !stale {
			// The group waits for this function before rejoining.
			rctx, cancel := context.WithTimeout(context.Background(), handBackTimeout(r.cfg))
			hook(rctx, parts)
			cancel()
		}
		r.mu.Lock()
		// A generation that ended before this watcher started runs it untracked, possibly
		// after the next generation began: leave a newer generation's state alone.
		if r.gen == gen {
			r.gen, r.owned = nil, nil
		}
		r.mu.Unlock()
	})
}

// maxTopicWatchWait bounds the spacing of rejoins that did not get unowned partitions
// assigned.
const maxTopicWatchWait = 5 * time.Minute

// watchWait is how long the topic watcher waits before its first check in a generation:
// TopicWatchInterval, doubled for each rejoin in a row it asked for that left partitions
// unowned, up to maxTopicWatchWait.
func watchWait(interval time.Duration, rejoins int32) time.Duration {
	wait := interval
	for range min(rejoins, 16) {
		wait *= 2
	}
	return min(wait, max(maxTopicWatchWait, interval))
}

// watchTopics checks, every TopicWatchInterval while the generation lasts, the
// configured topics, and returns — ending the generation, so that the group rebalances
// and assigns what it finds — when a topic has partitions no member of the group owns
// (created or grown after the group's last rebalance, or before this generation's first
// check), or when a topic's partition count changed since this generation's first check
// (grown, deleted, created, deleted and created again). It replaces kafka-go's partition
// watcher, which counts partitions from the moment it starts and so misses a topic created
// while the group joins, and stops for good at its first metadata error. A check that
// fails is skipped (debug log): readiness reports a cluster that cannot be asked.
func (r *GroupReader) watchTopics(ctx context.Context) {
	timer := time.NewTimer(watchWait(r.cfg.TopicWatchInterval, r.unownedRejoins.Load()))
	defer timer.Stop()
	var baseline map[string]int // partition counts at this generation's first check
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		cctx, cancel := context.WithTimeout(ctx, min(r.cfg.TopicWatchInterval, 10*time.Second))
		report, err := r.topics.Check(cctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.logger.Debug("kafka group: topic watch: metadata check failed; trying again", "group", r.cfg.GroupID, "err", err)
		case len(report.Unowned) > 0:
			n := r.unownedRejoins.Add(1)
			r.logger.Info("kafka group: partitions no member owns (a topic created or grown since the last rebalance); rejoining the group so they are assigned",
				"group", r.cfg.GroupID, "unowned", report.Unowned, "rejoins_in_a_row", n,
				"next_check_after", watchWait(r.cfg.TopicWatchInterval, n))
			return
		case baseline == nil:
			baseline = report.Partitions
			r.unownedRejoins.Store(0)
		case !maps.Equal(baseline, report.Partitions):
			r.logger.Info("kafka group: a topic's partition count changed (created, grown or deleted); rejoining the group",
				"group", r.cfg.GroupID, "was", baseline, "now", report.Partitions)
			return
		default:
			r.unownedRejoins.Store(0)
		}
		timer.Reset(r.cfg.TopicWatchInterval)
	}
}

// debugLogger passes kafka-go's chatter (joins, generations, fetch retries) to logger at
// debug level, and is nil — no formatting cost — when that level is off.
func debugLogger(logger *slog.Logger, prefix string) kafka.Logger {
	if !logger.Enabled(context.Background(), slog.LevelDebug) {
		return nil
	}
	return kafka.LoggerFunc(func(msg string, args ...any) { logger.Debug(prefix + BrokerText(fmt.Sprintf(msg, args...))) })
}

// fetchPartition reads one partition from offset into r.out until ctx ends, holding at
// most queue messages ahead.
func (r *GroupReader) fetchPartition(ctx context.Context, tp TopicPartition, offset int64, queue int) {
	rd := kafka.NewReader(kafka.ReaderConfig{
		Brokers:       r.cfg.Brokers,
		Topic:         tp.Topic,
		Partition:     tp.Partition,
		Dialer:        r.dialer,
		MinBytes:      1,
		MaxBytes:      max(r.cfg.MaxRecordBytes*2, 10<<20),
		MaxWait:       250 * time.Millisecond,
		QueueCapacity: queue,
		Logger:        debugLogger(r.logger, "kafka "+tp.String()+": "),
		ErrorLogger:   kafka.LoggerFunc(func(msg string, args ...any) { r.logger.Warn("kafka: " + BrokerText(fmt.Sprintf(msg, args...))) }),
	})
	defer rd.Close()
	if err := rd.SetOffset(offset); err != nil {
		r.logger.Error("kafka: cannot start reading partition", "partition", tp.String(), "offset", offset, "err", err)
		return
	}
	for {
		m, err := rd.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.logger.Warn("kafka fetch failed; retrying", "partition", tp.String(), "err", err)
			select {
			case <-time.After(time.Second):
				continue
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			return // the generation ended while this fetch was in hand: replayed by the next owner
		}
		select {
		case r.out <- m:
		case <-ctx.Done():
			return
		}
	}
}
