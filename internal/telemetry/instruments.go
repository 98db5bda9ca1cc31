package telemetry

import (
	"errors"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Instruments creates the instruments of one meter and never hands out a nil one: an
// instrument the provider fails to create records nowhere, and what failed is kept for
// Err, so that a component reports its instrument errors once (otel.Handle, or its own
// error) instead of checking each creation.
type Instruments struct {
	meter metric.Meter
	errs  []error
}

// NewInstruments starts the instruments of the meter named scope (the component's
// package path, e.g. "raterd/sinks/kafka"); a nil provider is a no-op one.
func NewInstruments(mp metric.MeterProvider, scope string) *Instruments {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	return &Instruments{meter: mp.Meter(scope)}
}

// Meter is the meter, for what the helpers below do not cover (observable gauges and
// their callbacks).
func (in *Instruments) Meter() metric.Meter { return in.meter }

// Counter creates an Int64Counter with a unit ("{row}", "By", …) and a description.
func (in *Instruments) Counter(name, unit, description string) metric.Int64Counter {
	c, err := in.meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(description))
	if err != nil {
		in.errs = append(in.errs, err)
	}
	if c == nil {
		c, _ = noop.Meter{}.Int64Counter(name)
	}
	return c
}

// Histogram creates a Float64Histogram with a unit, a description and explicit bucket
// boundaries (none: the SDK's defaults).
func (in *Instruments) Histogram(name, unit, description string, bounds ...float64) metric.Float64Histogram {
	opts := []metric.Float64HistogramOption{metric.WithUnit(unit), metric.WithDescription(description)}
	if len(bounds) > 0 {
		opts = append(opts, metric.WithExplicitBucketBoundaries(bounds...))
	}
	h, err := in.meter.Float64Histogram(name, opts...)
	if err != nil {
		in.errs = append(in.errs, err)
	}
	if h == nil {
		h, _ = noop.Meter{}.Float64Histogram(name)
	}
	return h
}

// Fail records an error the caller met creating something else on Meter.
func (in *Instruments) Fail(err error) {
	if err != nil {
		in.errs = append(in.errs, err)
	}
}

// Err is every creation error so far, joined; nil when all succeeded.
func (in *Instruments) Err() error { return errors.Join(in.errs...) }

// IOSeconds are histogram boundaries, in seconds, for one I/O call to a server (an insert,
// a produce): 1 ms to 30 s.
func IOSeconds() []float64 {
	return []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
}
