package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/consumer"
	"raterd/scorer"
	"raterd/scorer/cache"
	"raterd/sinks"
	"raterd/sinks/alert"
	"raterd/sinks/clickhouse"
	"raterd/sinks/kafka"
)

// stack is every stage of raterd built from one Config. cmd/ is the only place that knows
// all packages; run, demo and the integration tests all build through here.
type Stack struct {
	Scorer     *scorer.Scorer
	Scores     consumer.ScoreSink
	DeadLetter consumer.DeadLetterSink
	ClickHouse driver.Conn // nil when ClickHouse is not configured
	Cache      cache.Cache // nil when off
	// ScoreInserts groups score rows into ClickHouse inserts; nil without ClickHouse.
	ScoreInserts *clickhouse.GroupCommit
	CacheDesc    string
	closers      []io.Closer
	judges       map[string]scorer.Judge

	// Alerts is the alert manager; nil without an alerting section.
	Alerts *alert.Manager
}

// judgeDrainTimeout bounds how long closing waits for judge requests still in flight
// (the pipeline has drained by then, so normally none are).
const judgeDrainTimeout = 10 * time.Second

// Close releases every connection the stack opened and drains the judge pools; safe to
// call twice.
func (s *Stack) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), judgeDrainTimeout)
	defer cancel()
	scorer.CloseJudges(ctx, s.judges)
	s.judges = nil
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i].Close())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// Build wires judges, cache and sinks. A ClickHouse schema that is behind the
// migrations this build needs is a start-up error naming the missing migration.
func Build(ctx context.Context, cfg *Config, tel *Telemetry, logger *slog.Logger, httpClient *http.Client) (*Stack, error) {
	st := &Stack{}
	judges, err := scorer.NewJudges(cfg.Judges, scorer.JudgeSettings{Key: "judges", HTTPClient: httpClient, Logger: logger, MeterProvider: tel.Meters})
	if err != nil {
		return nil, err
	}
	st.judges = judges
	c, closers, desc := cache.New(ctx, cfg.Redis, logger, tel.Meters)
	st.closers = append(st.closers, closers...)
	st.Cache, st.CacheDesc = c, desc
	st.Scorer, err = scorer.New(cfg.Evaluators, judges, scorer.Options{
		// The cache bounds each Redis call itself; this is a backstop for the whole call.
		Cache: c, CacheTimeout: 2 * cfg.Redis.Timeout, MaxExplanationBytes: cfg.Scoring.MaxExplanationBytes,
		Logger: logger, MeterProvider: tel.Meters, TracerProvider: tel.Tracers,
	})
	if err != nil {
		_ = st.Close()
		return nil, err
	}

	var scoreSinks sinks.MultiScoreSink
	deadSinks := sinks.MultiDeadLetterSink{}
	ectx, cancel := context.WithTimeout(ctx, 15*time.Second)
	created, err := kafka.EnsureDLQTopics(ectx, cfg.Kafka.Brokers, cfg.Kafka.Topics, cfg.Kafka.MaxRecordBytes)
	cancel()
	if err != nil {
		// Not fatal: the producer auto-creates the topic on first use where the broker allows.
		logger.Warn("could not create dead-letter topics", "err", err)
	} else if len(created) > 0 {
		logger.Info("created dead-letter topics", "topics", created)
	}
	dlq := kafka.NewDeadLetters(cfg.Kafka.Brokers, nil, cfg.Kafka.MaxRecordBytes, kafka.WithMeterProvider(tel.Meters))
	st.closers = append(st.closers, dlq)
	deadSinks = append(deadSinks, dlq)
	if cfg.ClickHouse != nil {
		conn, err := clickhouse.Open(ctx, *cfg.ClickHouse)
		if err != nil {
			_ = st.Close()
			return nil, err
		}
		st.closers = append(st.closers, conn)
		if err := clickhouse.CheckSchema(ctx, conn, cfg.ClickHouse.Database); err != nil {
			_ = st.Close()
			return nil, err
		}
		st.ClickHouse = conn
		// Micro-batches written together share one insert: ClickHouse prefers few big
		// inserts, and each batch is still acknowledged only once its rows are in.
		st.ScoreInserts = clickhouse.NewGroupCommit(clickhouse.NewScores(conn, *cfg.ClickHouse, logger, clickhouse.WithMeterProvider(tel.Meters)), clickhouse.GroupCommitOptions{
			MaxRows: cfg.ClickHouse.InsertMaxRows, Interval: cfg.ClickHouse.InsertInterval,
		})
		scoreSinks = append(scoreSinks, st.ScoreInserts)
		deadSinks = append(deadSinks, clickhouse.NewDeadLetters(conn, *cfg.ClickHouse, clickhouse.WithMeterProvider(tel.Meters)))
	}
	if cfg.ScoresFile != "" {
		f, err := sinks.NewNDJSONFile(cfg.ScoresFile)
		if err != nil {
			_ = st.Close()
			return nil, err
		}
		st.closers = append(st.closers, f)
		scoreSinks = append(scoreSinks, f)
	}
	if len(scoreSinks) == 0 {
		_ = st.Close()
		return nil, errors.New("config: no score sink: set clickhouse.addrs (or RATERD_CLICKHOUSE_ADDR) or scores_file")
	}
	st.Scores = scoreSinks
	if cfg.Alerting != nil {
		m, closers, err := buildAlerting(ctx, cfg, st.ClickHouse, httpClient, logger, tel.Meters)
		if err != nil {
			_ = st.Close()
			return nil, err
		}
		st.closers = append(st.closers, closers...)
		st.Alerts = m
		st.Scores = alertsAfter{MultiScoreSink: scoreSinks, alerts: m}
	}
	st.DeadLetter = deadSinks
	return st, nil
}

// newPipeline builds the consumer pipeline on a consumer-group member.
func NewPipeline(cfg *Config, st *Stack, tel *Telemetry, logger *slog.Logger) (*consumer.Pipeline, io.Closer, error) {
	reader, err := consumer.NewGroupReader(cfg.Kafka, nil, logger)
	if err != nil {
		return nil, nil, err
	}
	p, err := consumer.New(cfg.Kafka, reader, st.Scorer, st.Scores, st.DeadLetter, consumer.Options{
		Logger: logger, MeterProvider: tel.Meters, TracerProvider: tel.Tracers,
	})
	if err != nil {
		_ = reader.Close()
		return nil, nil, err
	}
	return p, reader, nil
}
