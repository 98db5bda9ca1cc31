// Package otlp sends score rows back out over OTLP: each row becomes one OpenTelemetry
// gen_ai.evaluation.result event (a log record with an event name), placed in the trace
// context of the judged span, so that a tracing backend shows the score beside the
// trace it scores.
//
// The event follows the GenAI semantic conventions (the gen_ai.evaluation.result event,
// development stability, first in semantic conventions v1.38.0; attribute keys from
// go.opentelemetry.io/otel/semconv/v1.41.0):
//
//   - gen_ai.evaluation.name (required): the evaluator's name;
//   - gen_ai.evaluation.score.value (conditionally required, "if applicable"): the score,
//     on ok rows only, since a parse failure or judge error has no score;
//   - gen_ai.evaluation.score.label (conditionally required, "if applicable"): the label,
//     when the row has one;
//   - gen_ai.evaluation.explanation (recommended): the explanation, cut to
//     Config.MaxExplanationBytes;
//   - gen_ai.response.id (recommended, "when available"): the input's response id (the
//     span's gen_ai.response.id label), else the record id when the input gave one (not
//     raterd's topic/partition/offset default, nor an OTLP "<trace>-<span>" id);
//   - error.type (conditionally required, if the evaluation ended in an error): the row's
//     status, parse_failure or judge_error;
//
// and two raterd attributes, raterd.rubric_version and raterd.judge: with the evaluator
// they say which rubric and which judge made the number (a rubric or judge change makes
// new rows next to the old ones, so two events of one evaluator on one span can differ
// only by these), and they join the event to its row of raterd.scores.
//
// The event's timestamp is the row's scored_at, its observed timestamp the time it was
// emitted; its trace and span ids are the row's TraceID and SpanID (hex), passed in the
// context given to the OTel logger, never the caller's context (which may carry
// raterd's own write span). A row without a valid trace id is emitted without trace
// context, or skipped with Config.SkipUntraced; a row with a trace id but no valid span id
// is emitted in the trace, under no span.
//
// The channel is optional and best effort: WriteScores never fails and never waits on
// the network. Events go into a bounded queue (Config.QueueSize) that the OTel SDK's batch
// processor exports in the background; an event that finds the queue full is dropped and
// counted. An outage is logged once when it starts and once when it ends. Events are sent
// at most once: a replayed batch (after a crash) sends its events again, with the same
// attributes and timestamps.
package otlp

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"raterd/internal/telemetry"
	"raterd/internal/text"
	"raterd/record"
)

// EventName is the OTel event name of a score.
const EventName = "gen_ai.evaluation.result"

// The raterd attributes of a score event.
const (
	// AttrRubricVersion is the row's rubric version.
	AttrRubricVersion = attribute.Key("raterd.rubric_version")
	// AttrJudge is the row's judge identity.
	AttrJudge = attribute.Key("raterd.judge")
)

// ScopeName is the instrumentation scope of the events and the name of the sink's meter.
const ScopeName = "raterd/sinks/otlp"

// Options are what the application hands the sink besides its section.
type Options struct {
	// Telemetry: the logger gets the outage messages, the meter provider the sink's
	// metrics (raterd.score_events.*). Unset fields: telemetry.Settings.WithDefaults.
	Telemetry telemetry.Settings
	// Resource describes raterd (service.name, service.version) on every exported event.
	// Default: the SDK's default resource.
	Resource *resource.Resource
}

// Events is a score sink that emits each row as a gen_ai.evaluation.result event over
// OTLP. Its WriteScores always returns nil: hand it rows only after the durable sinks
// acknowledged them (sinks.AfterAck). Safe for concurrent use.
type Events struct {
	cfg      Config
	logger   *slog.Logger
	provider *sdklog.LoggerProvider
	emitter  log.Logger
	metrics  *metrics
	exp      *countingExporter

	// queued counts the events handed to the batch processor that have not reached the
	// exporter yet: at least the processor's queue length, so keeping it at most
	// QueueSize keeps the processor from ever overwriting a queued event.
	queued atomic.Int64
	// dropping is set while events are being dropped (logged once per episode).
	dropping atomic.Bool

	closeOnce sync.Once
	closed    atomic.Bool
	closeErr  error
}

// New builds the sink from a validated section: an OTLP/gRPC log exporter to
// cfg.Endpoint behind the SDK's batch processor. It does not connect: the first export
// does, and an endpoint that does not answer costs only dropped events.
func New(ctx context.Context, cfg Config, opts Options) (*Events, error) {
	eo := []otlploggrpc.Option{otlploggrpc.WithEndpoint(cfg.Endpoint), otlploggrpc.WithTimeout(cfg.Timeout)}
	if cfg.Insecure != nil && *cfg.Insecure {
		eo = append(eo, otlploggrpc.WithInsecure())
	}
	if len(cfg.Headers) > 0 {
		eo = append(eo, otlploggrpc.WithHeaders(cfg.Headers))
	}
	exp, err := otlploggrpc.New(ctx, eo...)
	if err != nil {
		return nil, fmt.Errorf("score events: otlp log exporter: %w", err)
	}
	return newEvents(cfg, exp, opts), nil
}

// newEvents builds the sink on any exporter (the tests' recording one).
func newEvents(cfg Config, exp sdklog.Exporter, opts Options) *Events {
	tel := opts.Telemetry.WithDefaults()
	e := &Events{cfg: cfg, logger: tel.Logger.With("component", "score_events")}
	e.metrics = newMetrics(tel.MeterProvider, &e.queued)
	e.exp = &countingExporter{next: exp, events: e}
	proc := sdklog.NewBatchProcessor(e.exp,
		sdklog.WithMaxQueueSize(cfg.QueueSize),
		sdklog.WithExportMaxBatchSize(cfg.BatchSize),
		sdklog.WithExportInterval(cfg.Interval),
		sdklog.WithExportTimeout(cfg.Timeout),
	)
	po := []sdklog.LoggerProviderOption{sdklog.WithProcessor(proc)}
	if opts.Resource != nil {
		po = append(po, sdklog.WithResource(opts.Resource))
	}
	e.provider = sdklog.NewLoggerProvider(po...)
	e.emitter = e.provider.Logger(ScopeName)
	return e
}

// WriteScores implements sinks.ScoreSink: it queues one event per row and returns nil
// at once. Rows that find the queue full (or the sink closed) are dropped and counted.
// ctx is not used: an event's context is the judged span's, never the caller's.
func (e *Events) WriteScores(ctx context.Context, rows []record.Score) error {
	now := time.Now()
	var emitted, skipped, dropped int64
	for i := range rows {
		r := &rows[i]
		sc, traced := SpanContext(r.TraceID, r.SpanID)
		if !traced && e.cfg.SkipUntraced {
			skipped++
			continue
		}
		if e.closed.Load() {
			dropped++
			continue
		}
		if e.queued.Add(1) > int64(e.cfg.QueueSize) {
			e.queued.Add(-1)
			dropped++
			continue
		}
		ectx := context.Background()
		if traced {
			ectx = trace.ContextWithSpanContext(ectx, sc)
		}
		rec := Event(r, e.cfg.MaxExplanationBytes)
		rec.SetObservedTimestamp(now)
		e.emitter.Emit(ectx, rec)
		emitted++
	}
	e.metrics.add(ctx, emitted, skipped, dropped)
	if dropped > 0 && !e.dropping.Swap(true) {
		e.logger.Warn("score events: the queue is full, events are dropped until the exporter catches up",
			"queue_size", e.cfg.QueueSize, "endpoint", e.cfg.Endpoint)
	}
	return nil
}

// Event is the gen_ai.evaluation.result log record of row r, explanation cut to
// maxExplanation bytes, without trace context (the logger takes that from the context
// it is emitted with) and observed timestamp.
func Event(r *record.Score, maxExplanation int) log.Record {
	var rec log.Record
	rec.SetEventName(EventName)
	rec.SetTimestamp(r.ScoredAt)
	rec.SetSeverity(log.SeverityInfo)
	attrs := make([]attribute.KeyValue, 0, 7)
	attrs = append(attrs, semconv.GenAIEvaluationName(r.Evaluator))
	if r.Status == record.StatusOK {
		attrs = append(attrs, semconv.GenAIEvaluationScoreValue(r.Value))
	} else {
		rec.SetSeverity(log.SeverityWarn)
		attrs = append(attrs, semconv.ErrorTypeKey.String(r.Status))
	}
	if r.Label != "" {
		attrs = append(attrs, semconv.GenAIEvaluationScoreLabel(r.Label))
	}
	if expl := text.ClipMarked(r.Explanation, maxExplanation, text.Ellipsis); expl != "" {
		attrs = append(attrs, semconv.GenAIEvaluationExplanation(expl))
	}
	if id := ResponseID(r); id != "" {
		attrs = append(attrs, semconv.GenAIResponseID(id))
	}
	attrs = append(attrs, AttrRubricVersion.String(r.RubricVersion), AttrJudge.String(r.Judge))
	rec.AddAttributes(attrs...)
	rec.SetSeverityText(rec.Severity().String())
	return rec
}

// ResponseID is the gen_ai.response.id of row r: the label of that name when the input
// carried one (the OTLP decoders keep the span's), else its record id — unless that id
// names no response: raterd's default for a record without one (topic/partition/offset of
// its message) or the OTLP decoders' "<trace id>-<span id>" — then "".
func ResponseID(r *record.Score) string {
	if id := r.Labels["gen_ai.response.id"]; id != "" {
		return id
	}
	def := fmt.Sprintf("%s/%d/%d", r.Source.Topic, r.Source.Partition, r.Source.Offset)
	if r.RecordID == "" || strings.HasPrefix(r.RecordID, def) || (r.TraceID != "" && r.RecordID == r.TraceID+"-"+r.SpanID) {
		return ""
	}
	return r.RecordID
}

// SpanContext is the span context of the judged span: traceHex and spanHex are the
// row's ids as hex (either case). ok is false when traceHex is not a valid trace id;
// an invalid spanHex leaves the span id zero (the event is then in the trace, under no
// span). The context is remote and sampled: the span was recorded, since raterd read it.
func SpanContext(traceHex, spanHex string) (sc trace.SpanContext, ok bool) {
	tid, err := trace.TraceIDFromHex(strings.ToLower(traceHex))
	if err != nil {
		return trace.SpanContext{}, false
	}
	cfg := trace.SpanContextConfig{TraceID: tid, TraceFlags: trace.FlagsSampled, Remote: true}
	if sid, err := trace.SpanIDFromHex(strings.ToLower(spanHex)); err == nil {
		cfg.SpanID = sid
	}
	return trace.NewSpanContext(cfg), true
}

// Close flushes the queued events and shuts the exporter down, waiting at most
// Config.Timeout; events still queued then are lost. Safe to call twice.
func (e *Events) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeout)
	defer cancel()
	return e.Shutdown(ctx)
}

// Shutdown is Close within ctx's deadline.
func (e *Events) Shutdown(ctx context.Context) error {
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		if err := e.provider.Shutdown(ctx); err != nil {
			e.closeErr = fmt.Errorf("score events: shutdown: %w", err)
		}
		e.metrics.close()
	})
	return e.closeErr
}

// countingExporter counts what the batch processor hands the OTLP exporter, logs the
// start and end of an outage, and swallows export errors: they are counted and logged
// here, so the SDK does not also report every failed batch to the process-wide OTel
// error handler.
type countingExporter struct {
	next   sdklog.Exporter
	events *Events
	// down is set while exports fail.
	down atomic.Bool
	// lost counts the events lost in the current outage.
	lost atomic.Int64
}

// Export implements sdklog.Exporter.
func (c *countingExporter) Export(ctx context.Context, records []sdklog.Record) error {
	n := int64(len(records))
	e := c.events
	e.queued.Add(-n)
	err := c.next.Export(ctx, records)
	e.metrics.exported(ctx, n, err)
	if err != nil {
		c.lost.Add(n)
		if !c.down.Swap(true) {
			e.logger.Warn("score events: export to the collector failed; events are dropped until it answers",
				"endpoint", e.cfg.Endpoint, "err", err)
		}
		return nil
	}
	if c.down.Swap(false) {
		e.logger.Info("score events: the collector answers again", "endpoint", e.cfg.Endpoint, "lost", c.lost.Swap(0))
	}
	if e.dropping.Swap(false) {
		e.logger.Info("score events: the queue has room again", "endpoint", e.cfg.Endpoint)
	}
	return nil
}

// Shutdown implements sdklog.Exporter.
func (c *countingExporter) Shutdown(ctx context.Context) error { return c.next.Shutdown(ctx) }

// ForceFlush implements sdklog.Exporter.
func (c *countingExporter) ForceFlush(ctx context.Context) error { return c.next.ForceFlush(ctx) }
