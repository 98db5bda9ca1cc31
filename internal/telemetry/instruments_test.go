package telemetry

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestInstrumentsRecord(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	in := NewInstruments(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), "raterd/test")
	c := in.Counter("raterd.test.rows", "{row}", "rows")
	h := in.Histogram("raterd.test.duration", "s", "time", IOSeconds()...)
	if err := in.Err(); err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 3)
	h.Record(context.Background(), 0.02)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != "raterd/test" {
			t.Errorf("scope %q, want raterd/test", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			got[m.Name] = true
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && sum.DataPoints[0].Value != 3 {
				t.Errorf("%s = %d, want 3", m.Name, sum.DataPoints[0].Value)
			}
			if m.Unit == "" {
				t.Errorf("%s has no unit", m.Name)
			}
		}
	}
	if !got["raterd.test.rows"] || !got["raterd.test.duration"] {
		t.Fatalf("collected %v, want both instruments", got)
	}
}

// failingMeter refuses every instrument, returning nil with the error, as a provider may.
type failingMeter struct{ noop.Meter }

func (failingMeter) Int64Counter(string, ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	return nil, errors.New("no counters here")
}

func (failingMeter) Float64Histogram(string, ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	return nil, errors.New("no histograms here")
}

type failingProvider struct{ noop.MeterProvider }

func (failingProvider) Meter(string, ...metric.MeterOption) metric.Meter { return failingMeter{} }

func TestInstrumentsNeverNil(t *testing.T) {
	in := NewInstruments(failingProvider{}, "raterd/test")
	c := in.Counter("a", "{x}", "a")
	h := in.Histogram("b", "s", "b")
	if c == nil || h == nil {
		t.Fatal("a failed creation handed out a nil instrument")
	}
	c.Add(context.Background(), 1) // records nowhere, must not panic
	h.Record(context.Background(), 1)
	in.Fail(nil)
	err := in.Err()
	if err == nil || len(err.(interface{ Unwrap() []error }).Unwrap()) != 2 {
		t.Fatalf("Err() = %v, want both creation errors", err)
	}
	if NewInstruments(nil, "raterd/test").Counter("c", "{x}", "c") == nil {
		t.Fatal("a nil provider handed out a nil instrument")
	}
}
