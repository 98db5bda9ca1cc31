package pool

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names. Every metric carries the attribute pool (Options.Name); per-endpoint
// ones also endpoint (the base URL).
const (
	// MetricInFlight is a gauge of the attempts running on each endpoint.
	MetricInFlight = "raterd.pool.in_flight"
	// MetricLimit is a gauge of each endpoint's current in-flight limit.
	MetricLimit = "raterd.pool.limit"
	// MetricBreaker is a gauge of each endpoint's breaker state: 0 closed, 1 half-open,
	// 2 open.
	MetricBreaker = "raterd.pool.breaker.state"
	// MetricAttempts counts attempts per endpoint by outcome: ok, retryable, permanent,
	// canceled (cut short by the caller, the task deadline or Close).
	MetricAttempts = "raterd.pool.attempts"
	// MetricRetries counts retries, by the endpoint whose failure caused them.
	MetricRetries = "raterd.pool.retries"
	// MetricWait is a histogram of the seconds an attempt waited for the rate limit and a
	// free slot.
	MetricWait = "raterd.pool.wait.duration"
)

type metrics struct {
	attempts  metric.Int64Counter
	retries   metric.Int64Counter
	wait      metric.Float64Histogram
	poolAttrs metric.MeasurementOption
	reg       metric.Registration
}

// endpointAttrs are an endpoint's precomputed attribute sets.
type endpointAttrs struct {
	plain   metric.MeasurementOption
	outcome [numOutcomes]metric.MeasurementOption
}

func (m *metrics) endpointAttrs(pool, url string) endpointAttrs {
	base := []attribute.KeyValue{attribute.String("pool", pool), attribute.String("endpoint", url)}
	a := endpointAttrs{plain: metric.WithAttributeSet(attribute.NewSet(base...))}
	for o := range numOutcomes {
		a.outcome[o] = metric.WithAttributeSet(attribute.NewSet(append(base[:2:2], attribute.String("outcome", o.String()))...))
	}
	return a
}

func (m *metrics) init(p *Pool) error {
	meter := p.opts.Telemetry.MeterProvider.Meter("raterd/scorer/pool")
	m.poolAttrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("pool", p.opts.Name)))
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	var err error
	m.attempts, err = meter.Int64Counter(MetricAttempts, metric.WithDescription("attempts on an endpoint, by outcome"))
	add(err)
	m.retries, err = meter.Int64Counter(MetricRetries, metric.WithDescription("retries after a retryable failure"))
	add(err)
	m.wait, err = meter.Float64Histogram(MetricWait, metric.WithUnit("s"), metric.WithDescription("time an attempt waited for the rate limit and an in-flight slot"))
	add(err)
	inFlight, err := meter.Int64ObservableGauge(MetricInFlight, metric.WithDescription("attempts running on an endpoint"))
	add(err)
	limit, err := meter.Int64ObservableGauge(MetricLimit, metric.WithDescription("an endpoint's current in-flight limit"))
	add(err)
	state, err := meter.Int64ObservableGauge(MetricBreaker, metric.WithDescription("an endpoint's breaker state: 0 closed, 1 half-open, 2 open"))
	add(err)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pool metrics: %w", err)
	}
	m.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.eps {
			o.ObserveInt64(inFlight, int64(e.inFlight), e.attrs.plain)
			o.ObserveInt64(limit, int64(e.lim.current()), e.attrs.plain)
			o.ObserveInt64(state, int64(e.br.state), e.attrs.plain)
		}
		return nil
	}, inFlight, limit, state)
	if err != nil {
		return fmt.Errorf("pool metrics: %w", err)
	}
	return nil
}

// close stops the observations.
func (m *metrics) close() {
	if m.reg != nil {
		_ = m.reg.Unregister() // only fails for a foreign registration
	}
}
