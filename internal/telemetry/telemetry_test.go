package telemetry

import (
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// meters and tracers are providers with an identity: a test can tell a given one from
// the globals and from one another (the blank field keeps them from being zero-size,
// whose pointers need not be distinct).
type (
	meters struct {
		metricnoop.MeterProvider
		_ byte
	}
	tracers struct {
		tracenoop.TracerProvider
		_ byte
	}
)

func TestWithDefaultsFillsUnsetFields(t *testing.T) {
	got := Settings{}.WithDefaults()
	if got.Logger != slog.Default() {
		t.Errorf("Logger = %v, want slog.Default()", got.Logger)
	}
	if got.MeterProvider != otel.GetMeterProvider() {
		t.Errorf("MeterProvider = %v, want otel.GetMeterProvider()", got.MeterProvider)
	}
	if got.TracerProvider != otel.GetTracerProvider() {
		t.Errorf("TracerProvider = %v, want otel.GetTracerProvider()", got.TracerProvider)
	}
}

func TestWithDefaultsKeepsSetFields(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	mp, tp := &meters{}, &tracers{}
	set := Settings{Logger: logger, MeterProvider: mp, TracerProvider: tp}
	got := set.WithDefaults()
	if got.Logger != logger || got.MeterProvider != mp || got.TracerProvider != tp {
		t.Errorf("WithDefaults() = %+v, want the set fields %+v", got, set)
	}
	// Each field independently: one set, the others defaulted.
	if got := (Settings{MeterProvider: mp}).WithDefaults(); got.MeterProvider != mp || got.Logger != slog.Default() || got.TracerProvider != otel.GetTracerProvider() {
		t.Errorf("only MeterProvider set: WithDefaults() = %+v", got)
	}
	if got := (Settings{TracerProvider: tp}).WithDefaults(); got.TracerProvider != tp || got.Logger != slog.Default() || got.MeterProvider != otel.GetMeterProvider() {
		t.Errorf("only TracerProvider set: WithDefaults() = %+v", got)
	}
	if got := (Settings{Logger: logger}).WithDefaults(); got.Logger != logger || got.MeterProvider != otel.GetMeterProvider() || got.TracerProvider != otel.GetTracerProvider() {
		t.Errorf("only Logger set: WithDefaults() = %+v", got)
	}
}

func TestWithDefaultsLeavesReceiverAlone(t *testing.T) {
	var set Settings
	_ = set.WithDefaults()
	if set.Logger != nil || set.MeterProvider != nil || set.TracerProvider != nil {
		t.Errorf("WithDefaults changed its receiver: %+v", set)
	}
}
