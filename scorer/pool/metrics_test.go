package pool

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	opts, _ := testOptions()
	opts.Telemetry.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	p := newTestPool(t, Config{Endpoints: []Endpoint{{URL: "http://a.test", MaxInFlight: 16}}, MaxAttempts: 2,
		Breaker: Breaker{Failures: 10}}, opts)
	ok := func(context.Context, string) error { return nil }
	p.Do(t.Context(), 0, ok)
	p.Do(t.Context(), 0, ok)
	p.Do(t.Context(), 0, func(context.Context, string) error { return errors.New("bad answer") })
	p.Do(t.Context(), 0, func(context.Context, string) error { return StatusError(500, nil, nil) }) // not an overload signal

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	byName := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			byName[m.Name] = m.Data
		}
	}
	attempts, _ := byName[MetricAttempts].(metricdata.Sum[int64])
	got := map[string]int64{}
	for _, dp := range attempts.DataPoints {
		o, _ := dp.Attributes.Value(attribute.Key("outcome"))
		e, _ := dp.Attributes.Value(attribute.Key("endpoint"))
		pl, _ := dp.Attributes.Value(attribute.Key("pool"))
		if e.AsString() != "http://a.test" || pl.AsString() != "test" {
			t.Errorf("attributes %v", dp.Attributes.ToSlice())
		}
		got[o.AsString()] = dp.Value
	}
	if got["ok"] != 2 || got["permanent"] != 1 || got["retryable"] != 2 {
		t.Errorf("attempts by outcome: %v", got)
	}
	if r, _ := byName[MetricRetries].(metricdata.Sum[int64]); len(r.DataPoints) != 1 || r.DataPoints[0].Value != 1 {
		t.Errorf("retries: %+v", byName[MetricRetries])
	}
	if h, _ := byName[MetricWait].(metricdata.Histogram[float64]); len(h.DataPoints) != 1 || h.DataPoints[0].Count != 5 {
		t.Errorf("wait histogram: %+v", byName[MetricWait])
	}
	for name, want := range map[string]int64{MetricInFlight: 0, MetricLimit: 8, MetricBreaker: 0} {
		g, _ := byName[name].(metricdata.Gauge[int64])
		if len(g.DataPoints) != 1 || g.DataPoints[0].Value != want {
			t.Errorf("%s: %+v, want one point of %d", name, byName[name], want)
		}
	}
}
