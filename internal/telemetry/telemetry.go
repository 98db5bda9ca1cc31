// Package telemetry is the one telemetry contract of raterd's components: a Settings
// value (logger, meter provider, tracer provider) that every component's options take as
// one field named Telemetry (or, for a constructor without an options struct, as one
// parameter in place of a logger or meter provider), and WithDefaults, the one place the
// fallbacks to the process-wide defaults are written.
//
// A component calls WithDefaults once, in its constructor, and from then on uses the
// fields as they are. It keeps its own refinements where it makes them: a
// Logger.With("judge", name), a meter named after its package.
//
// The package imports only the standard library and OpenTelemetry, so that every
// component (consumer, scorer, sinks) can import it.
package telemetry

import (
	"log/slog"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Settings are the telemetry providers injected into a component. The zero value is
// valid: every unset field means the process-wide default (see WithDefaults).
type Settings struct {
	// Logger receives the component's logs. Default slog.Default().
	Logger *slog.Logger
	// MeterProvider gets the component's metrics; a component names its meter after its
	// package (raterd/consumer, raterd/sinks/clickhouse, …). Default
	// otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// TracerProvider gets the component's spans. Default otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
}

// WithDefaults returns s with every unset field filled: Logger with slog.Default(),
// MeterProvider with otel.GetMeterProvider(), TracerProvider with
// otel.GetTracerProvider(), as they are when it is called. Set fields are kept as they
// are.
func (s Settings) WithDefaults() Settings {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.MeterProvider == nil {
		s.MeterProvider = otel.GetMeterProvider()
	}
	if s.TracerProvider == nil {
		s.TracerProvider = otel.GetTracerProvider()
	}
	return s
}
