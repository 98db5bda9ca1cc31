// Package baseline holds the consumers raterd's end-to-end benchmark measures it against,
// on the same records, the same Kafka and the same ClickHouse:
//
//   - Bare (RunBare) is a plain segmentio/kafka-go consumer-group reader that fetches each
//     message, decodes it with raterd's decoder (consumer.Decode) and commits offsets
//     periodically: no judging, no writes. It is the floor the Kafka client sets; no
//     pipeline built on this client consumes faster.
//   - Naive (RunNaive) is the evaluator consumer a team writes in an afternoon, written
//     plainly and fairly: one message at a time, it fetches, decodes, judges the record
//     with every evaluator through a scorer.Judge, inserts its score rows into ClickHouse
//     with one INSERT (sinks.ClickHouseScores), and commits the message's offset
//     synchronously before fetching the next.
//
// The recipe is "fetch one record, judge it, insert one row, commit". With one
// evaluator Naive does exactly that. With several, it asks the judge for all of a
// record's evaluators in one Judge call, and inserts their rows in one INSERT. That is how
// the scorer.Judge interface is meant to be called, and it is the stronger of the two
// plain readings: the openai judge sends a call's requests concurrently, and a record
// costs one round trip to ClickHouse, not one per evaluator. So raterd's ratio to Naive
// errs on the low side, never the high side.
//
// Both read through consumer.NewKafkaReader with raterd's defaults, so a comparison
// measures the processing model, not the client tuning. Each run stops after a given
// number of messages or when its context ends, and reports a Result: counts, the wall
// time, and the CPU time the process used meanwhile.
package baseline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/consumer"
	"raterd/internal/telemetry"
)

// KafkaConfig says what a baseline consumes and when it stops.
type KafkaConfig struct {
	// Brokers are the bootstrap addresses (host:port). Required.
	Brokers []string
	// Topic is the topic consumed. Required.
	Topic string
	// GroupID is the consumer group; a group with no committed offsets starts at the
	// earliest offset. Required: use a fresh group per run to read the topic again.
	GroupID string
	// Records stops the run once this many messages are done (committed), valid or not.
	// Default 0: run until the context ends.
	Records int64
	// MaxRecordBytes is the decoder's cap on a message value; larger values count as
	// decode errors. Default consumer.DefaultMaxRecordBytes (1 MiB).
	MaxRecordBytes int
	// TLS and SASL are the connection to the brokers, raterd's kafka.tls and kafka.sasl
	// sections. Default: plaintext, no SASL.
	TLS  consumer.TLSConfig
	SASL consumer.SASLConfig

	reader consumer.Config // raterd's consumer config for the same topic and group, defaults filled by Validate
}

// Validate fills defaults and rejects bad values; key prefixes the key names in errors.
func (c *KafkaConfig) Validate(key string) error {
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = consumer.DefaultMaxRecordBytes
	}
	switch {
	case len(c.Brokers) == 0:
		return fmt.Errorf("%s.brokers: at least one broker is required", key)
	case c.Topic == "":
		return fmt.Errorf("%s.topic: required", key)
	case c.GroupID == "":
		return fmt.Errorf("%s.group_id: required", key)
	case c.Records < 0:
		return fmt.Errorf("%s.records: %d is negative", key, c.Records)
	case c.MaxRecordBytes < 0:
		return fmt.Errorf("%s.max_record_bytes: %d is negative", key, c.MaxRecordBytes)
	}
	// raterd's consumer config for the same brokers, topic and group, everything else at
	// its defaults (earliest start, default batch size, session and rebalance timeouts).
	c.reader = consumer.Config{Brokers: c.Brokers, Topics: []string{c.Topic}, GroupID: c.GroupID, MaxRecordBytes: c.MaxRecordBytes,
		TLS: c.TLS, SASL: c.SASL}
	return c.reader.Validate(key)
}

// newReader returns the consumer-group reader raterd itself would use for this topic and
// group (consumer.NewKafkaReader): the same fetch settings, and synchronous commits, made
// only when the baseline calls CommitMessages. Call Validate first.
func (c *KafkaConfig) newReader(tel telemetry.Settings) *kafka.Reader {
	return consumer.NewKafkaReader(c.reader, nil, tel)
}

// CPUTime is CPU time used by the whole process (getrusage RUSAGE_SELF): every goroutine
// counts, the Kafka client's and anything else running in the process at the same time
// (in a benchmark, nothing else should).
type CPUTime struct {
	// User is CPU time spent in user mode.
	User time.Duration
	// System is CPU time spent in the kernel on the process's behalf.
	System time.Duration
}

// Total is user plus system time.
func (c CPUTime) Total() time.Duration { return c.User + c.System }

// Sub returns c - o: the CPU time used between two readings.
func (c CPUTime) Sub(o CPUTime) CPUTime {
	return CPUTime{User: c.User - o.User, System: c.System - o.System}
}

// ProcessCPU returns the CPU time the whole process has used so far: getrusage
// RUSAGE_SELF where the platform has it, zero elsewhere. It is the clock of Result.CPU,
// exported so that a benchmark measures the other phases of the same process alike
// (ProcessCPU().Sub(before)).
func ProcessCPU() CPUTime { return processCPU() }

// Result is what one baseline run did and what it cost.
type Result struct {
	// Records counts the messages done: processed and committed, valid or not.
	Records int64
	// Decoded counts the messages that decoded into a valid record.
	Decoded int64
	// DecodeErrors counts the messages that did not decode (consumer.DecodeError); they
	// are committed and skipped, not dead-lettered.
	DecodeErrors int64
	// JudgeCalls counts Judge calls (Naive: one per decoded record with an applicable
	// evaluator; Bare: 0).
	JudgeCalls int64
	// JudgeErrors counts tasks whose verdict carried an error; Naive stores them as
	// judge_error rows, as raterd does for permanent failures.
	JudgeErrors int64
	// Rows counts score rows ClickHouse acknowledged (Naive only).
	Rows int64
	// Inserts counts INSERT statements sent to ClickHouse (Naive only).
	Inserts int64
	// Commits counts offset commit requests acknowledged by the group coordinator.
	Commits int64
	// Startup is the time from the start of the run to the first message in hand:
	// connecting, joining the group, getting partitions assigned, the first fetch.
	Startup time.Duration
	// Elapsed is the wall time from the first message in hand to the last commit
	// acknowledged: the steady-state window. Zero when no message arrived.
	Elapsed time.Duration
	// CPU is the process's CPU time over the Elapsed window (see CPUTime).
	CPU CPUTime
}

// RecordsPerSecond is Records over Elapsed; 0 when nothing was timed.
func (r Result) RecordsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.Elapsed.Seconds()
}

// CPUPerRecord is the process CPU time per record done; 0 when none was.
func (r Result) CPUPerRecord() time.Duration {
	if r.Records == 0 {
		return 0
	}
	return r.CPU.Total() / time.Duration(r.Records)
}

// clock measures a run: Startup up to the first message, then wall and CPU time.
type clock struct {
	start, first time.Time
	cpu0         CPUTime
	started      bool
}

func newClock() clock { return clock{start: time.Now()} }

// firstMessage starts the Elapsed window, once.
func (c *clock) firstMessage(res *Result) {
	if c.started {
		return
	}
	c.started = true
	c.first = time.Now()
	res.Startup = c.first.Sub(c.start)
	c.cpu0 = processCPU()
}

// stop fills Elapsed and CPU.
func (c *clock) stop(res *Result) {
	if !c.started {
		res.Startup = time.Since(c.start)
		return
	}
	res.Elapsed = time.Since(c.first)
	res.CPU = processCPU().Sub(c.cpu0)
}

// stopErr turns the error that stopped a run (a fetch, judge call, insert or commit that
// failed) into the run's outcome. When ctx has ended, that is how the run stopped, not a
// failure: nil for a run without a record count, else an error naming how far it got.
// Otherwise err itself.
func stopErr(ctx context.Context, err error, done, want int64) error {
	if ctx.Err() != nil {
		if want == 0 {
			return nil
		}
		return fmt.Errorf("stopped after %d of %d records: %w", done, want, context.Cause(ctx))
	}
	return err
}

// closeReader closes r (leaving the group) and joins its error to err.
func closeReader(r *kafka.Reader, err error) error {
	if cerr := r.Close(); cerr != nil {
		return errors.Join(err, fmt.Errorf("kafka reader close: %w", cerr))
	}
	return err
}
