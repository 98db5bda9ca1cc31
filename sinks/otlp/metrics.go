package otlp

import (
	"context"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"raterd/internal/telemetry"
)

// Metric names of the sink.
const (
	// MetricRecords counts score events by outcome: queued (handed to the exporter's
	// queue), exported (the collector acknowledged them), failed (their export failed
	// after the exporter's retries, or did not end within the timeout), dropped (the
	// queue was full, or the sink closed), skipped (no trace id, with skip_untraced).
	MetricRecords = "raterd.score_events.records"
	// MetricQueued is the number of events waiting for export.
	MetricQueued = "raterd.score_events.queued"
)

// metrics are the sink's OTel instruments.
type metrics struct {
	records metric.Int64Counter
	reg     metric.Registration

	queuedOpt, exportedOpt, failedOpt, droppedOpt, skippedOpt metric.AddOption
}

// newMetrics creates the instruments on mp; queued is read by the gauge.
func newMetrics(mp metric.MeterProvider, queued *atomic.Int64) *metrics {
	outcome := func(v string) metric.AddOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", v)))
	}
	m := &metrics{
		queuedOpt: outcome("queued"), exportedOpt: outcome("exported"), failedOpt: outcome("failed"),
		droppedOpt: outcome("dropped"), skippedOpt: outcome("skipped"),
	}
	in := telemetry.NewInstruments(mp, ScopeName)
	m.records = in.Counter(MetricRecords, "{event}",
		"score events by outcome: queued, exported, failed, dropped (queue full or closed), skipped (untraced)")
	meter := in.Meter()
	gauge, err := meter.Int64ObservableGauge(MetricQueued, metric.WithUnit("{event}"),
		metric.WithDescription("score events waiting for export"))
	in.Fail(err)
	if err == nil && gauge != nil {
		m.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			o.ObserveInt64(gauge, max(queued.Load(), 0))
			return nil
		}, gauge)
		in.Fail(err)
	}
	if err := in.Err(); err != nil {
		otel.Handle(err)
	}
	return m
}

// add counts one WriteScores call's events.
func (m *metrics) add(ctx context.Context, queued, skipped, dropped int64) {
	if queued > 0 {
		m.records.Add(ctx, queued, m.queuedOpt)
	}
	if skipped > 0 {
		m.records.Add(ctx, skipped, m.skippedOpt)
	}
	if dropped > 0 {
		m.records.Add(ctx, dropped, m.droppedOpt)
	}
}

// exported counts one export of n events that ended with err.
func (m *metrics) exported(ctx context.Context, n int64, err error) {
	if err != nil {
		m.records.Add(ctx, n, m.failedOpt)
		return
	}
	m.records.Add(ctx, n, m.exportedOpt)
}

// close unregisters the gauge's callback.
func (m *metrics) close() {
	if m.reg != nil {
		_ = m.reg.Unregister()
	}
}
