package kafka

import (
	"context"
	"raterd/internal/telemetry"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// producerMetrics are the DLQ producer's OTel instruments:
//
//   - raterd.kafka.dlq.messages: dead letters the brokers acknowledged;
//   - raterd.kafka.dlq.bytes: their key, value and header bytes;
//   - raterd.kafka.dlq.truncated: dead letters sent again with only a prefix of the value
//     (the topic refused the whole message as too large);
//   - raterd.kafka.dlq.headers_clipped: dead letters sent again with their original
//     headers clipped (still too large for the topic with the value cut);
//   - raterd.kafka.dlq.errors: WriteDeadLetters calls that failed;
//   - raterd.kafka.dlq.write.duration: time of one WriteDeadLetters call, by result (ok,
//     error).
type producerMetrics struct {
	messages, bytes, truncated, errors metric.Int64Counter
	headersClipped                     metric.Int64Counter
	duration                           metric.Float64Histogram

	ok, failed metric.MeasurementOption
}

func newProducerMetrics(mp metric.MeterProvider) *producerMetrics {
	m := &producerMetrics{
		ok:     metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "ok"))),
		failed: metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "error"))),
	}
	in := telemetry.NewInstruments(mp, "raterd/sinks/kafka")
	m.messages = in.Counter("raterd.kafka.dlq.messages", "{message}", "dead letters the brokers acknowledged")
	m.bytes = in.Counter("raterd.kafka.dlq.bytes", "By", "key, value and header bytes of the acknowledged dead letters")
	m.truncated = in.Counter("raterd.kafka.dlq.truncated", "{message}",
		"dead letters sent again with only a prefix of the value, the whole being too large for the topic")
	m.headersClipped = in.Counter("raterd.kafka.dlq.headers_clipped", "{message}",
		"dead letters sent again with their original headers clipped, the letter being too large for the topic with its value cut")
	m.errors = in.Counter("raterd.kafka.dlq.errors", "{write}", "dead-letter writes that failed")
	m.duration = in.Histogram("raterd.kafka.dlq.write.duration", "s",
		"time of one dead-letter write, by result (ok, error)", telemetry.IOSeconds()...)
	if err := in.Err(); err != nil {
		otel.Handle(err)
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
