package kafka

import (
	"context"
	"errors"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// producerMetrics are the DLQ producer's OTel instruments:
//
//   - raterd.kafka.dlq.messages: dead letters the brokers acknowledged;
//   - raterd.kafka.dlq.bytes: their key, value and header bytes;
//   - raterd.kafka.dlq.truncated: dead letters sent again with only a prefix of the value
//     (the topic refused the whole message as too large);
//   - raterd.kafka.dlq.errors: WriteDeadLetters calls that failed;
//   - raterd.kafka.dlq.write.duration: time of one WriteDeadLetters call, by result (ok,
//     error).
type producerMetrics struct {
	messages, bytes, truncated, errors metric.Int64Counter
	duration                           metric.Float64Histogram

	ok, failed metric.MeasurementOption
}

func newProducerMetrics(mp metric.MeterProvider) *producerMetrics {
	meter := mp.Meter("raterd/sinks/kafka")
	m := &producerMetrics{
		ok:     metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "ok"))),
		failed: metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "error"))),
	}
	var errs [5]error
	m.messages, errs[0] = meter.Int64Counter("raterd.kafka.dlq.messages", metric.WithUnit("{message}"),
		metric.WithDescription("dead letters the brokers acknowledged"))
	m.bytes, errs[1] = meter.Int64Counter("raterd.kafka.dlq.bytes", metric.WithUnit("By"),
		metric.WithDescription("key, value and header bytes of the acknowledged dead letters"))
	m.truncated, errs[2] = meter.Int64Counter("raterd.kafka.dlq.truncated", metric.WithUnit("{message}"),
		metric.WithDescription("dead letters sent again with only a prefix of the value, the whole being too large for the topic"))
	m.errors, errs[3] = meter.Int64Counter("raterd.kafka.dlq.errors", metric.WithUnit("{write}"),
		metric.WithDescription("dead-letter writes that failed"))
	m.duration, errs[4] = meter.Float64Histogram("raterd.kafka.dlq.write.duration", metric.WithUnit("s"),
		metric.WithDescription("time of one dead-letter write, by result (ok, error)"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	if err := errors.Join(errs[:]...); err != nil {
		otel.Handle(err)
	}
	// A provider that fails to create an instrument may return nil; record nowhere then.
	var nop noop.Meter
	for _, c := range []*metric.Int64Counter{&m.messages, &m.bytes, &m.truncated, &m.errors} {
		if *c == nil {
			*c, _ = nop.Int64Counter("")
		}
	}
	if m.duration == nil {
		m.duration, _ = nop.Float64Histogram("")
	}
	return m
}

// written counts acknowledged messages and their bytes.
func (m *producerMetrics) written(ctx context.Context, msgs ...kafkago.Message) {
	var size int64
	for _, msg := range msgs {
		size += int64(len(msg.Key) + len(msg.Value))
		for _, h := range msg.Headers {
			size += int64(len(h.Key) + len(h.Value))
		}
	}
	m.messages.Add(ctx, int64(len(msgs)))
	m.bytes.Add(ctx, size)
}

// write records one WriteDeadLetters call that took d and ended with err.
func (m *producerMetrics) write(ctx context.Context, d time.Duration, err error) {
	if err != nil {
		m.errors.Add(ctx, 1)
		m.duration.Record(ctx, d.Seconds(), m.failed)
		return
	}
	m.duration.Record(ctx, d.Seconds(), m.ok)
}
