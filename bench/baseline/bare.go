package baseline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/consumer"
	"raterd/internal/telemetry"
	"raterd/record"
)

// BareConfig configures RunBare.
type BareConfig struct {
	// Kafka says what to consume and when to stop.
	Kafka KafkaConfig
	// CommitInterval is how often the offsets of the messages decoded so far are
	// committed (checked after each message; whatever is left is committed when the run
	// stops). Default 1s, like raterd's kafka.commit_interval.
	CommitInterval time.Duration
	// Telemetry's logger receives the Kafka client's warnings. Unset fields mean
	// telemetry.Settings.WithDefaults.
	Telemetry telemetry.Settings
}

// Validate fills defaults and rejects bad values.
func (c *BareConfig) Validate() error {
	if err := c.Kafka.Validate("kafka"); err != nil {
		return err
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = time.Second
	}
	if c.CommitInterval < 0 {
		return fmt.Errorf("commit_interval: %s is negative", c.CommitInterval)
	}
	c.Telemetry = c.Telemetry.WithDefaults()
	return nil
}

// finalCommitTimeout bounds the commit of what is left when a run stops, which runs on a
// context of its own: the run's may have ended.
const finalCommitTimeout = 10 * time.Second

// RunBare consumes cfg.Kafka.Topic as the bare baseline: fetch a message, decode it with
// consumer.Decode, and note it as its partition's latest; a committer goroutine commits
// the latest message of every partition each CommitInterval (synchronously, so a failure
// is seen), and what is left is committed when the run stops. It stops after
// cfg.Kafka.Records messages (error: none) or when ctx ends (error: none if Records is 0,
// else one wrapping the context's error); a failed commit ends it with an error. The
// Result is valid in every case; its Records counts only messages whose offsets were
// committed.
func RunBare(ctx context.Context, cfg BareConfig) (Result, error) {
	var res Result
	if err := cfg.Validate(); err != nil {
		return res, fmt.Errorf("baseline bare: %w", err)
	}
	clk := newClock()
	r := cfg.Kafka.newReader(cfg.Telemetry)
	c := &committer{r: r, latest: make(map[int]kafka.Message)}

	// The committer ticks on its own goroutine, so that the messages fetched last are
	// committed while the reader waits for more; a failed commit ends the run.
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	stopCommitter := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(cfg.CommitInterval)
		defer t.Stop()
		for {
			select {
			case <-stopCommitter:
				return
			case <-t.C:
				if err := c.commit(runCtx); err != nil {
					stopRun(err)
					return
				}
			}
		}
	})

	var runErr error
	var fetched int64 // messages decoded, committed or not
	for cfg.Kafka.Records == 0 || fetched < cfg.Kafka.Records {
		m, err := r.FetchMessage(runCtx)
		if err != nil {
			if ctx.Err() == nil && runCtx.Err() != nil {
				runErr = context.Cause(runCtx) // the committer failed
			} else {
				runErr = stopErr(ctx, fmt.Errorf("kafka fetch after %d records: %w", fetched, err), fetched, cfg.Kafka.Records)
			}
			break
		}
		clk.firstMessage(&res)
		src := record.Source{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
		if _, err := consumer.Decode(m.Value, src, m.Time, cfg.Kafka.MaxRecordBytes); err != nil {
			res.DecodeErrors++
		} else {
			res.Decoded++
		}
		fetched++
		c.add(m)
	}
	close(stopCommitter)
	wg.Wait()
	// Commit what is left, also when ctx ended: those messages were decoded.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalCommitTimeout)
	if err := c.commit(cctx); err != nil {
		runErr = errors.Join(runErr, err)
	}
	cancel()
	clk.stop(&res)
	res.Records, res.Commits = c.records, c.commits
	if err := closeReader(r, runErr); err != nil {
		return res, fmt.Errorf("baseline bare: %w", err)
	}
	return res, nil
}

// committer holds the latest message fetched per partition and commits them. add is
// called by the fetch loop; commit by one goroutine at a time (the ticking committer,
// then RunBare once it has stopped).
type committer struct {
	r *kafka.Reader

	mu      sync.Mutex
	latest  map[int]kafka.Message // per partition: the last message fetched, not yet committed
	pending int64                 // messages fetched, not yet committed

	records int64 // messages committed
	commits int64 // successful commit requests
}

func (c *committer) add(m kafka.Message) {
	c.mu.Lock()
	c.latest[m.Partition] = m
	c.pending++
	c.mu.Unlock()
}

// commit commits the latest message of every partition and waits for the coordinator's
// answer. On failure the messages stay pending, under any newer ones fetched meanwhile.
func (c *committer) commit(ctx context.Context) error {
	c.mu.Lock()
	msgs := make([]kafka.Message, 0, len(c.latest))
	for _, m := range c.latest {
		msgs = append(msgs, m)
	}
	n := c.pending
	clear(c.latest)
	c.pending = 0
	c.mu.Unlock()
	if len(msgs) == 0 {
		return nil
	}
	if err := c.r.CommitMessages(ctx, msgs...); err != nil {
		c.mu.Lock()
		for _, m := range msgs {
			if _, newer := c.latest[m.Partition]; !newer {
				c.latest[m.Partition] = m
			}
		}
		c.pending += n
		c.mu.Unlock()
		return fmt.Errorf("kafka commit of %d partitions: %w", len(msgs), err)
	}
	c.records += n
	c.commits++
	return nil
}
