package alert

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"raterd/sinks/alert/notify"
)

type seriesSnap struct {
	attrs         attribute.Set
	mean          float64
	has           bool
	state, firing int64
}

func (m *Manager) initMetrics(mp metric.MeterProvider) error {
	meter := mp.Meter("raterd/sinks/alert")
	var err error
	var mean metric.Float64ObservableGauge
	var state, firing metric.Int64ObservableGauge
	errs := []error{}
	mean, err = meter.Float64ObservableGauge("raterd.alert.series.mean",
		metric.WithDescription("Mean score of each alerted series over the last hour of event time (a pass rate for 0/1 checks; a canary's candidate)"))
	errs = append(errs, err)
	state, err = meter.Int64ObservableGauge("raterd.alert.series.state",
		metric.WithDescription("Each alerted series' detector verdict: -1 unknown (too little data), 0 ok, 1 warning, 2 alert"))
	errs = append(errs, err)
	firing, err = meter.Int64ObservableGauge("raterd.alert.series.firing",
		metric.WithDescription("1 while the series' alert fires (a regression held for the rule's for, or missing data), else 0"))
	errs = append(errs, err)
	m.emitted, err = meter.Int64Counter("raterd.alert.notifications.emitted",
		metric.WithDescription("Alert state changes notified (once each, whatever the channels), by rule and state; deliveries are counted per channel in raterd.alert.notifications"))
	errs = append(errs, err)
	m.dropped, err = meter.Int64Counter("raterd.alert.observations.dropped",
		metric.WithDescription("Score rows alerting dropped, by reason: queue_full, backlog (state store unreachable), series_limit, closed"))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("alert metrics: %w", err)
	}
	m.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m.snapMu.Lock()
		defer m.snapMu.Unlock()
		for _, s := range m.snap {
			if s.has {
				o.ObserveFloat64(mean, s.mean, metric.WithAttributeSet(s.attrs))
			}
			o.ObserveInt64(state, s.state, metric.WithAttributeSet(s.attrs))
			o.ObserveInt64(firing, s.firing, metric.WithAttributeSet(s.attrs))
		}
		return nil
	}, mean, state, firing)
	if err != nil {
		return fmt.Errorf("alert metrics: %w", err)
	}
	return nil
}

// publish refreshes the snapshot the metric callback reads.
func (m *Manager) publish() {
	snap := make([]seriesSnap, 0, len(m.series))
	for _, t := range m.series {
		if t.life == nil {
			continue
		}
		s := seriesSnap{attrs: t.attrs, mean: t.mean, has: t.has, state: int64(t.life.Decision.State) - 1}
		if t.life.Phase == notify.StateFiring {
			s.firing = 1
		}
		snap = append(snap, s)
	}
	m.snapMu.Lock()
	m.snap = snap
	m.snapMu.Unlock()
}
