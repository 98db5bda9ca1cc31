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
	"raterd/sinks/otlp"
)

// Stack is every stage behind the consumer, built from one Config by Build: the judges,
// the cache, the scorer, and the score and dead-letter sinks.
type Stack struct {
	// Scorer scores batches: cache lookup, dedup, judge calls, cache fill.
	Scorer *scorer.Scorer
	// Scores is where score rows go: ClickHouse (grouped into inserts) and/or the scores
	// file, then the alert manager and the score events once they are acknowledged
	// (sinks.AfterAck).
	Scores consumer.ScoreSink
	// DeadLetter is where bad records go: the <topic>.dlq topics and, with ClickHouse,
	// raterd.dead_letters.
	DeadLetter consumer.DeadLetterSink
	// ClickHouse is the connection; nil when ClickHouse is not configured.
	ClickHouse driver.Conn
	// Cache is the verdict cache; nil when off.
	Cache cache.Cache
	// CacheDesc describes the cache for logs.
	CacheDesc string
	// ScoreInserts groups score rows into ClickHouse inserts; nil without ClickHouse.
	ScoreInserts *clickhouse.GroupCommit
	// Alerts is the alert manager; nil without an alerting section.
	Alerts *alert.Manager
	// ScoreEvents sends the acknowledged rows as OTel gen_ai.evaluation.result events;
	// nil without a score_events section.
	ScoreEvents *otlp.Events

	// What Close releases, one field per step of the shutdown order.
	judges       map[string]scorer.Judge
	alertClosers []io.Closer // in opening order: alert-state Redis, channels, manager
	scoreEvents  io.Closer
	scoresFile   io.Closer
	deadLetters  io.Closer   // the DLQ producer
	cacheClosers []io.Closer // in opening order: Redis client, tier
}

// judgeDrainTimeout bounds how long closing waits for judge requests still in flight
// (the pipeline has drained by then, so normally none are).
const judgeDrainTimeout = 10 * time.Second

// Close releases what Build opened; safe to call twice, and on a Stack that Build left
// half-built. The pipeline must have stopped (App.Close leaves the group first).
//
// Shutdown order — the one place it is written down:
//  1. the judges' pools drain what is still in flight (normally nothing), so no verdict
//     is written after its sink closed;
//  2. alerting: the manager makes its final evaluation and enqueues notifications, the
//     channels deliver their queues (bounded), then the alert-state Redis client closes;
//  3. score events: the queued events are exported, within score_events.timeout (the
//     rest are lost and counted), and the exporter's connection closes;
//  4. the scores file is flushed and closed;
//  5. the ClickHouse connection closes (the pipeline's last insert is acknowledged by
//     then: the pipeline waits for every write before Run returns);
//  6. the dead-letter producer closes;
//  7. the verdict cache: the tier (its breaker), then the Redis client.
//
// Telemetry is shut down after all of this, by App.Close, so the last metrics and spans
// of the steps above are exported.
func (s *Stack) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), judgeDrainTimeout)
	defer cancel()
	scorer.CloseJudges(ctx, s.judges)
	s.judges = nil
	var errs []error
	// Each group is closed last opened, first closed.
	closeAll := func(cs ...io.Closer) {
		for i := len(cs) - 1; i >= 0; i-- {
			if cs[i] != nil {
				errs = append(errs, cs[i].Close())
			}
		}
	}
	closeAll(s.alertClosers...)
	closeAll(s.scoreEvents)
	closeAll(s.scoresFile)
	if s.ClickHouse != nil {
		errs = append(errs, s.ClickHouse.Close())
	}
	closeAll(s.deadLetters)
	closeAll(s.cacheClosers...)
	s.alertClosers, s.scoreEvents, s.scoresFile, s.ClickHouse, s.deadLetters, s.cacheClosers = nil, nil, nil, nil, nil, nil
	return errors.Join(errs...)
}

// Build wires judges, cache and sinks. A ClickHouse schema that is behind the
// migrations this build needs is a start-up error naming the missing migration.
func Build(ctx context.Context, cfg *Config, tel *Telemetry, logger *slog.Logger, httpClient *http.Client) (*Stack, error) {
	st := &Stack{}
	set := tel.Settings(logger)
	judges, err := scorer.NewJudges(cfg.Judges, scorer.JudgeSettings{Key: "judges", HTTPClient: httpClient, Telemetry: set})
	if err != nil {
		return nil, err
	}
	st.judges = judges
	c, closers, desc := cache.New(ctx, cfg.Redis, set)
	st.cacheClosers = closers
	st.Cache, st.CacheDesc = c, desc
	st.Scorer, err = scorer.New(cfg.Evaluators, judges, scorer.Options{
		// The cache bounds each Redis call itself; this is a backstop for the whole call.
		Cache: c, CacheTimeout: 2 * cfg.Redis.Timeout, MaxExplanationBytes: cfg.Scoring.MaxExplanationBytes,
		Telemetry: set,
	})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	for _, e := range cfg.Evaluators {
		if e.Off() {
			logger.Info("evaluator off (sample_rate: 0): it judges no record", "evaluator", e.Name)
		}
	}

	var scoreSinks sinks.MultiScoreSink
	deadSinks := sinks.MultiDeadLetterSink{}
	ectx, cancel := context.WithTimeout(ctx, 15*time.Second)
	created, err := kafka.EnsureDLQTopics(ectx, cfg.Kafka.Brokers, cfg.Kafka.Topics, cfg.Kafka.MaxRecordBytes, cfg.Kafka.Transport())
	cancel()
	if err != nil {
		// Not fatal: the producer auto-creates the topic on first use where the broker allows.
		logger.Warn("could not create dead-letter topics", "err", err)
	} else if len(created) > 0 {
		logger.Info("created dead-letter topics", "topics", created)
	}
	dlq := kafka.NewDeadLetters(cfg.Kafka.Brokers, cfg.Kafka.Transport(), cfg.Kafka.MaxRecordBytes, set)
	st.deadLetters = dlq
	deadSinks = append(deadSinks, dlq)
	if cfg.ClickHouse != nil {
		conn, err := clickhouse.Open(ctx, *cfg.ClickHouse)
		if err != nil {
			_ = st.Close()
			return nil, err
		}
		st.ClickHouse = conn
		if err := clickhouse.CheckSchema(ctx, conn, cfg.ClickHouse.Database); err != nil {
			_ = st.Close()
			return nil, err
		}
		// Micro-batches written together share one insert: ClickHouse prefers few big
		// inserts, and each batch is still acknowledged only once its rows are in.
		st.ScoreInserts = clickhouse.NewGroupCommit(clickhouse.NewScores(conn, *cfg.ClickHouse, set), clickhouse.GroupCommitOptions{
			MaxRows: cfg.ClickHouse.InsertMaxRows, Interval: cfg.ClickHouse.InsertInterval,
		})
		scoreSinks = append(scoreSinks, st.ScoreInserts)
		deadSinks = append(deadSinks, clickhouse.NewDeadLetters(conn, *cfg.ClickHouse, set))
	}
	if cfg.ScoresFile != "" {
		f, err := sinks.NewNDJSONFile(cfg.ScoresFile)
		if err != nil {
			_ = st.Close()
			return nil, err
		}
		st.scoresFile = f
		scoreSinks = append(scoreSinks, f)
	}
	if len(scoreSinks) == 0 {
		_ = st.Close()
		return nil, errors.New("config: no score sink: set clickhouse.addrs (or RATERD_CLICKHOUSE_ADDR) or scores_file")
	}
	st.Scores = scoreSinks
	// The observers see only rows the sinks above acknowledged; both return at once and
	// never fail the write (bounded buffers that drop and count).
	var observers sinks.MultiScoreSink
	if cfg.Alerting != nil {
		m, closers, err := buildAlerting(ctx, cfg, st.ClickHouse, httpClient, set)
		if err != nil {
			_ = st.Close()
			return nil, err
		}
		st.alertClosers = closers
		st.Alerts = m
		observers = append(observers, m)
	}
	if cfg.ScoreEvents != nil {
		ev, err := otlp.New(ctx, *cfg.ScoreEvents, otlp.Options{Telemetry: set, Resource: serviceResource(cfg.Telemetry)})
		if err != nil {
			_ = st.Close()
			return nil, err
		}
		st.scoreEvents, st.ScoreEvents = ev, ev
		observers = append(observers, ev)
	}
	switch len(observers) {
	case 0:
	case 1:
		st.Scores = sinks.AfterAck{Durable: scoreSinks, Observer: observers[0]}
	default:
		st.Scores = sinks.AfterAck{Durable: scoreSinks, Observer: observers}
	}
	st.DeadLetter = deadSinks
	return st, nil
}

// NewPipeline builds the consumer pipeline on a consumer-group member.
func NewPipeline(cfg *Config, st *Stack, tel *Telemetry, logger *slog.Logger) (*consumer.Pipeline, io.Closer, error) {
	set := tel.Settings(logger)
	reader, err := consumer.NewGroupReader(cfg.Kafka, nil, set)
	if err != nil {
		return nil, nil, err
	}
	assemblers, err := cfg.Assemblers(nil)
	if err != nil {
		_ = reader.Close()
		return nil, nil, err
	}
	p, err := consumer.New(cfg.Kafka, reader, st.Scorer, st.Scores, st.DeadLetter, consumer.Options{Telemetry: set, Assemblers: assemblers})
	if err != nil {
		_ = reader.Close()
		return nil, nil, err
	}
	return p, reader, nil
}
