package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/consumer"
	"raterd/internal/app"
	"raterd/internal/cli"
)

// lagPollInterval is how often lag --wait reads the offsets again, and lagProgressInterval
// how often it says on stderr how far behind the group still is.
const (
	lagPollInterval     = time.Second
	lagProgressInterval = 5 * time.Second
)

// cmdLag prints how many records the consumer group has not finished, per partition;
// with --wait it first waits (bounded) until that is zero.
func cmdLag(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("lag", "lag [--config raterd.yaml] [--wait DURATION]", stderr)
	configPath := fs.String("config", "raterd.yaml", "path of the YAML config file (its kafka section is used)")
	wait := fs.Duration("wait", 0, "wait at most this long for a lag of 0 (every record produced so far scored or dead-lettered, and committed); exit status 1 if it is not reached. 0: print the lag now")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if *wait < 0 {
		return cli.FlagErrorf("--wait: must be >= 0, got %s", *wait)
	}
	cfg, err := app.LoadConfig(*configPath, os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := cli.SignalContext(stderr)
	defer stop()
	lags, err := waitForLag(ctx, cfg.Kafka, *wait, stderr)
	if lags != nil {
		printLag(stdout, cfg.Kafka.GroupID, lags)
	}
	return err
}

// waitForLag reads the group's lag until it is zero or wait has passed (once when wait is
// 0), reporting progress on stderr. It returns the last lag read.
func waitForLag(ctx context.Context, cfg consumer.Config, wait time.Duration, stderr io.Writer) ([]consumer.PartitionLag, error) {
	start := time.Now()
	deadline := start.Add(wait)
	lastProgress := start
	for {
		callCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		lags, err := consumer.GroupLag(callCtx, cfg, nil)
		cancel()
		var keyErr *consumer.ConnectionKeyError
		if err = cfg.ConnectionError("kafka", err); errors.As(err, &keyErr) {
			return nil, err // a wrong password or certificate: waiting does not help
		}
		now := time.Now()
		var status string
		switch {
		case err != nil && (wait == 0 || !retryableLagError(ctx, err)):
			return nil, err
		case err != nil && !now.Before(deadline):
			return nil, fmt.Errorf("lag: still failing after waiting %s: %w", wait, err)
		case err != nil:
			// A fresh broker creates its offsets topic on the first group request: the
			// coordinator is not available for a moment.
			status = fmt.Sprintf("cannot read the offsets yet (%v)", err)
		default:
			total := consumer.TotalLag(lags)
			if wait == 0 || total == 0 {
				return lags, nil
			}
			if !now.Before(deadline) {
				return lags, fmt.Errorf("lag: consumer group %s is still %d records behind after waiting %s", cfg.GroupID, total, wait)
			}
			status = fmt.Sprintf("is %d records behind", total)
		}
		if now.Sub(lastProgress) >= lagProgressInterval {
			fmt.Fprintf(stderr, "raterd lag: consumer group %s %s; waiting (%s left)\n",
				cfg.GroupID, status, deadline.Sub(now).Round(time.Second))
			lastProgress = now
		}
		select {
		case <-ctx.Done():
			return lags, fmt.Errorf("lag: %w", ctx.Err())
		case <-time.After(min(lagPollInterval, deadline.Sub(now))):
		}
	}
}

// printLag writes the per-partition table and the total.
func printLag(w io.Writer, group string, lags []consumer.PartitionLag) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "topic\tpartition\tcommitted\tend\tlag\t")
	for _, l := range lags {
		committed := "none"
		if l.Committed >= 0 {
			committed = fmt.Sprint(l.Committed)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t\n", l.Topic, l.Partition, committed, l.End, l.Lag())
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "consumer group %s: %d records behind\n", group, consumer.TotalLag(lags))
}

// retryableLagError reports whether a failed offset read may succeed if tried again: a
// temporary Kafka error (coordinator not available or loading, a leader election), but
// not a missing topic, or one call timing out while ctx is still alive.
func retryableLagError(ctx context.Context, err error) bool {
	if errors.Is(err, kafka.UnknownTopicOrPartition) {
		return false // kafka-go calls it temporary; here it is a topic that does not exist
	}
	var kerr kafka.Error
	if errors.As(err, &kerr) {
		return kerr.Temporary()
	}
	return errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil
}
