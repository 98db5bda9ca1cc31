package kafka

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"raterd/internal/telemetry"
	"raterd/internal/testkit"
	"raterd/record"
)

// counters collects every int64 counter of the reader as name → total, and every
// histogram as name → count.
func counters(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[m.Name] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[m.Name] += int64(p.Count)
				}
			}
		}
	}
	return out
}

// TestDeadLettersMetricsError: a write that cannot reach a broker counts one error and no
// message. No broker needed: the address is a closed port.
func TestDeadLettersMetricsError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	reader := sdkmetric.NewManualReader()
	sink := NewDeadLetters([]string{addr}, nil, 1<<20, telemetry.Settings{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	t.Cleanup(func() { _ = sink.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := sink.WriteDeadLetters(ctx, []record.DeadLetter{{Source: record.Source{Topic: "t"}, Value: []byte("x")}}); err == nil {
		t.Fatal("WriteDeadLetters to a closed port = nil")
	}
	got := counters(t, reader)
	if got["raterd.kafka.dlq.errors"] != 1 || got["raterd.kafka.dlq.messages"] != 0 || got["raterd.kafka.dlq.write.duration"] != 1 {
		t.Errorf("metrics after a failed write = %v, want 1 error, 0 messages, 1 timed write", got)
	}
}

// TestDeadLettersMetrics: acknowledged dead letters count as messages with their bytes.
func TestDeadLettersMetrics(t *testing.T) {
	broker := testkit.Service(t, "RATERD_TEST_KAFKA", "Kafka broker")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	source := uniqueName("raterd-sinks-test-metrics-")
	testkit.CreateTopic(t, broker, source, 1)
	t.Cleanup(func() { testkit.DeleteTopics(broker, DLQTopic(source)) })
	if _, err := EnsureDLQTopics(ctx, []string{broker}, []string{source}, 1<<20, nil); err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	sink := NewDeadLetters([]string{broker}, nil, 1<<20, telemetry.Settings{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	t.Cleanup(func() { _ = sink.Close() })
	letters := []record.DeadLetter{
		{Source: record.Source{Topic: source}, Key: []byte("k1"), Value: []byte("v1"), Reason: "invalid_json"},
		{Source: record.Source{Topic: source}, Key: []byte("k2"), Value: []byte("v2"), Reason: "invalid_json"},
	}
	// As in TestKafkaDeadLetters: a topic created a moment ago may be unknown for a while.
	failures := int64(0)
	for {
		err := sink.WriteDeadLetters(ctx, letters)
		if err == nil {
			break
		}
		if !errors.Is(err, kafkago.UnknownTopicOrPartition) && !errors.Is(err, kafkago.LeaderNotAvailable) || ctx.Err() != nil {
			t.Fatalf("WriteDeadLetters: %v", err)
		}
		failures++
		time.Sleep(20 * time.Millisecond)
	}
	got := counters(t, reader)
	if got["raterd.kafka.dlq.messages"] != 2 {
		t.Errorf("dlq.messages = %d, want 2 (%v)", got["raterd.kafka.dlq.messages"], got)
	}
	if got["raterd.kafka.dlq.bytes"] < 8 {
		t.Errorf("dlq.bytes = %d, want at least the keys and values (8)", got["raterd.kafka.dlq.bytes"])
	}
	if got["raterd.kafka.dlq.errors"] != failures {
		t.Errorf("dlq.errors = %d, want %d (the retried writes)", got["raterd.kafka.dlq.errors"], failures)
	}
}
