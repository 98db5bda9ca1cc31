package baseline

import (
	"context"
	"fmt"
	"time"

	"raterd/consumer"
	"raterd/internal/telemetry"
	"raterd/internal/text"
	"raterd/record"
	"raterd/scorer"
	"raterd/sinks/clickhouse"
)

// NaiveConfig configures RunNaive.
type NaiveConfig struct {
	// Kafka says what to consume and when to stop.
	Kafka KafkaConfig
	// Evaluators are the prepared evaluators (scorer.Evaluator.Prepare) each record is
	// judged with, where they apply (scorer.Evaluator.Applies: match filters, sampling,
	// a pairwise candidate). Every one is answered by Judge, whatever judge it names.
	// Required.
	Evaluators []*scorer.Evaluator
	// Judge answers every evaluator. Required.
	Judge scorer.Judge
	// ClickHouse is where the score rows go: <Database>.scores, already migrated
	// (clickhouse.Migrate). Addrs is required; the other defaults are ClickHouseConfig's.
	ClickHouse clickhouse.Config
	// Telemetry receives the sink's and the Kafka client's logs and the sink's metrics.
	// Unset fields mean telemetry.Settings.WithDefaults.
	Telemetry telemetry.Settings
}

// Validate fills defaults and rejects bad values.
func (c *NaiveConfig) Validate() error {
	if err := c.Kafka.Validate("kafka"); err != nil {
		return err
	}
	if len(c.Evaluators) == 0 {
		return fmt.Errorf("evaluators: at least one is required")
	}
	for i, e := range c.Evaluators {
		if e == nil || e.RubricVersion() == "" {
			return fmt.Errorf("evaluators[%d]: not prepared (call Prepare)", i)
		}
	}
	if c.Judge == nil {
		return fmt.Errorf("judge: required")
	}
	if err := c.ClickHouse.Validate("clickhouse"); err != nil {
		return err
	}
	c.Telemetry = c.Telemetry.WithDefaults()
	return nil
}

// RunNaive consumes cfg.Kafka.Topic as the naive baseline, one message at a time: fetch
// it; decode it (a message that does not decode is counted and committed); judge the
// record with one Judge call holding a task per applicable evaluator (the package comment
// says why that is fair); build a score row per verdict; insert the rows with one INSERT; commit the message's offset and wait for
// the commit; then fetch the next. A failed judge call, insert or commit ends the run with
// an error, the message uncommitted. It stops after cfg.Kafka.Records messages (error:
// none) or when ctx ends (error: none if Records is 0, else one wrapping the context's
// error). The Result is valid in every case.
func RunNaive(ctx context.Context, cfg NaiveConfig) (Result, error) {
	var res Result
	if err := cfg.Validate(); err != nil {
		return res, fmt.Errorf("baseline naive: %w", err)
	}
	clk := newClock()
	conn, err := clickhouse.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return res, fmt.Errorf("baseline naive: %w", err)
	}
	defer conn.Close()
	scores := clickhouse.NewScores(conn, cfg.ClickHouse, cfg.Telemetry)
	judge := cfg.Judge.Identity()
	r := cfg.Kafka.newReader(cfg.Telemetry)

	var runErr error
	for cfg.Kafka.Records == 0 || res.Records < cfg.Kafka.Records {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			runErr = stopErr(ctx, fmt.Errorf("kafka fetch after %d records: %w", res.Records, err), res.Records, cfg.Kafka.Records)
			break
		}
		clk.firstMessage(&res)
		src := record.Source{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
		rec, err := consumer.Decode(m.Value, src, m.Time, cfg.Kafka.MaxRecordBytes)
		if err != nil {
			res.DecodeErrors++
		} else {
			res.Decoded++
			rows, err := judgeRecord(ctx, cfg.Judge, judge, cfg.Evaluators, rec, &res)
			if err == nil && len(rows) > 0 {
				err = scores.WriteScores(ctx, rows)
				if err == nil {
					res.Inserts++
					res.Rows += int64(len(rows))
				}
			}
			if err != nil {
				runErr = stopErr(ctx, fmt.Errorf("record %s (%s/%d/%d): %w", rec.ID, m.Topic, m.Partition, m.Offset, err), res.Records, cfg.Kafka.Records)
				break
			}
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			runErr = stopErr(ctx, fmt.Errorf("kafka commit of %s/%d/%d: %w", m.Topic, m.Partition, m.Offset, err), res.Records, cfg.Kafka.Records)
			break
		}
		res.Commits++
		res.Records++
	}
	clk.stop(&res)
	if err := closeReader(r, runErr); err != nil {
		return res, fmt.Errorf("baseline naive: %w", err)
	}
	return res, nil
}

// judgeRecord asks judge for a verdict from every evaluator that applies to rec, in one
// call, and returns a score row per verdict (docs/architecture.md, "Score row").
func judgeRecord(ctx context.Context, judge scorer.Judge, identity string, evaluators []*scorer.Evaluator, rec *record.Record, res *Result) ([]record.Score, error) {
	tasks := make([]scorer.Task, 0, len(evaluators))
	for _, e := range evaluators {
		if e.Applies(rec) {
			tasks = append(tasks, scorer.Task{Evaluator: e, Record: rec})
		}
	}
	if len(tasks) == 0 {
		return nil, nil
	}
	res.JudgeCalls++
	verdicts, err := judge.Judge(ctx, tasks)
	if err != nil {
		return nil, fmt.Errorf("judge %s: %w", identity, err)
	}
	if len(verdicts) != len(tasks) {
		return nil, fmt.Errorf("judge %s returned %d verdicts for %d tasks", identity, len(verdicts), len(tasks))
	}
	now := time.Now().UTC()
	rows := make([]record.Score, len(tasks))
	for i, v := range verdicts {
		e := tasks[i].Evaluator
		status, expl := v.Status, v.Explanation
		if status == "" {
			status = record.StatusOK
		}
		if v.Err != nil {
			res.JudgeErrors++
			status, expl = record.StatusJudgeError, v.Err.Error()
		}
		rows[i] = record.Score{
			EventTime: rec.Timestamp, ScoredAt: now, RecordID: rec.ID, TraceID: rec.TraceID,
			Source: rec.Source, Model: rec.Model, App: rec.App, Labels: rec.Metadata,
			Evaluator: e.Name, RubricVersion: e.RubricVersion(), Judge: identity, TaskType: e.Task,
			Value: v.Value, Label: v.Label, Confidence: v.Confidence,
			Explanation: text.Clip(expl, scorer.DefaultMaxExplanationBytes), Status: status,
			JudgeLatency: v.Latency, Attempts: v.Attempts,
		}
	}
	return rows, nil
}
