// Package kafka is raterd's Kafka dead-letter side: the DLQ producer (DeadLetters), the
// creation of the dead-letter topics (EnsureDLQTopics), the replay of dead letters to their
// source topics (ReplayDeadLetters), and the raterd-* header contract they share
// (headers.go).
package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"raterd/internal/telemetry"
	"raterd/record"
)

// dlqHeadroom is what a dead letter may add to the largest accepted value: headers,
// key, record overhead.
const dlqHeadroom = 256 << 10

// DLQTopic is the dead-letter topic of a source topic.
func DLQTopic(source string) string { return source + ".dlq" }

// DeadLetters produces dead letters to <source topic>.dlq with the original key, value
// and headers, plus raterd's headers. WriteDeadLetters returns once every broker replica
// acknowledged (acks=all).
type DeadLetters struct {
	w       *kafkago.Writer
	metrics *producerMetrics
}

// NewDeadLetters returns a DLQ producer for the brokers. A nil transport gets one of
// its own: kafka-go's shared DefaultTransport caches topic metadata process-wide, which
// would hide a DLQ topic created after another client's last refresh.
//
// maxValueBytes is the largest message value the consumer accepts (kafka.max_record_bytes):
// the producer allows dead letters that large plus headers. Its metrics (raterd.kafka.dlq.*)
// go to tel's meter provider (unset: telemetry.Settings.WithDefaults).
func NewDeadLetters(brokers []string, transport kafkago.RoundTripper, maxValueBytes int, tel telemetry.Settings) *DeadLetters {
	if transport == nil {
		transport = &kafkago.Transport{}
	}
	tel = tel.WithDefaults()
	return &DeadLetters{metrics: newProducerMetrics(tel.MeterProvider), w: &kafkago.Writer{
		BatchBytes:             int64(maxValueBytes + dlqHeadroom),
		Addr:                   kafkago.TCP(brokers...),
		Balancer:               &kafkago.Hash{},
		RequiredAcks:           kafkago.RequireAll,
		AllowAutoTopicCreation: true,
		BatchTimeout:           time.Millisecond, // WriteMessages is called with whole batches
		Transport:              transport,
	}}
}

// WriteDeadLetters implements DeadLetterSink: one attempt of BeginDeadLetters' write.
func (k *DeadLetters) WriteDeadLetters(ctx context.Context, letters []record.DeadLetter) error {
	return k.BeginDeadLetters(letters)(ctx)
}

// BeginDeadLetters implements sinks.ResumableDeadLetterSink: the returned write sends the
// letters, and each call after an error sends again only those the brokers did not
// acknowledge, so a retried batch puts no second copy of a letter on the topic. (A
// letter whose acknowledgement was lost — a timeout, a broker failing between the write
// and its answer — is sent again: the producer is not idempotent; see
// docs/reliability.md.)
//
// A dead letter the DLQ topic refuses as too large (its max.message.bytes is below the
// letter: a topic created by hand, or auto-created with the broker's default) is sent
// again with only the first DLQKeepBytes of its value and HeaderOriginalSize, so that
// one oversized poison record never blocks the partition behind it.
func (k *DeadLetters) BeginDeadLetters(letters []record.DeadLetter) func(ctx context.Context) error {
	pending := slices.Clone(letters) // not acknowledged yet, each as it is sent next
	return func(ctx context.Context) error {
		if len(pending) == 0 {
			return nil
		}
		n := len(pending)
		start := time.Now()
		var err error
		pending, err = k.send(ctx, pending)
		k.metrics.write(ctx, time.Since(start), err)
		if err != nil {
			return fmt.Errorf("kafka dead-letter write of %d messages (%d not acknowledged): %w", n, len(pending), err)
		}
		return nil
	}
}

// send writes letters and returns those that were not acknowledged, cut where the topic
// refused them as too large, with the errors.
func (k *DeadLetters) send(ctx context.Context, letters []record.DeadLetter) ([]record.DeadLetter, error) {
	msgs := make([]kafkago.Message, len(letters))
	for i := range letters {
		msgs[i] = deadLetterMessage(letters[i])
	}
	err := k.w.WriteMessages(ctx, msgs...)
	if err == nil {
		k.metrics.written(ctx, msgs...)
		return nil, nil
	}
	var werrs kafkago.WriteErrors
	if !errors.As(err, &werrs) || len(werrs) != len(msgs) {
		// Which of them landed is unknown: all are sent again.
		return letters, err
	}
	// The producer batches messages, so one oversized letter fails its neighbours too:
	// send each refused one alone, cut when it is the large one.
	var rest, again []record.DeadLetter
	var errs []error
	for i, e := range werrs {
		switch {
		case e == nil:
			k.metrics.written(ctx, msgs[i])
		case errors.Is(e, kafkago.MessageSizeTooLarge):
			d := letters[i]
			if len(d.Value) > DLQKeepBytes {
				d.OriginalSize = max(d.OriginalSize, len(d.Value))
				d.Value = d.Value[:DLQKeepBytes]
			}
			again = append(again, d)
		default:
			rest = append(rest, letters[i])
			errs = append(errs, e)
		}
	}
	for _, d := range again {
		m := deadLetterMessage(d)
		if err := k.w.WriteMessages(ctx, m); err != nil {
			rest = append(rest, d)
			errs = append(errs, err)
			continue
		}
		k.metrics.written(ctx, m)
		if d.OriginalSize > 0 {
			k.metrics.truncated.Add(ctx, 1)
		}
	}
	return rest, errors.Join(errs...)
}

// DLQKeepBytes is how much of its value a dead letter keeps when the dead-letter topic
// refuses the whole message as too large.
const DLQKeepBytes = 64 << 10

// deadLetterMessage is d as a message of its source's dead-letter topic: the original key,
// value and headers, then raterd's headers. An original header named like one of raterd's
// dead-letter headers is kept under HeaderInputPrefix + its name, so that it cannot pass
// for raterd's.
func deadLetterMessage(d record.DeadLetter) kafkago.Message {
	hs := make([]kafkago.Header, 0, len(d.Headers)+8)
	for _, h := range d.Headers {
		key := h.Key
		if isDeadLetterHeader(key) {
			key = HeaderInputPrefix + key
		}
		hs = append(hs, kafkago.Header{Key: key, Value: h.Value})
	}
	hs = append(hs,
		kafkago.Header{Key: HeaderErrorClass, Value: []byte(d.Reason)},
		kafkago.Header{Key: HeaderError, Value: []byte(d.Error)},
		kafkago.Header{Key: HeaderSourceTopic, Value: []byte(d.Source.Topic)},
		kafkago.Header{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(d.Source.Partition))},
		kafkago.Header{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(d.Source.Offset, 10))},
		kafkago.Header{Key: HeaderAttempts, Value: []byte(strconv.Itoa(d.Attempts))},
		kafkago.Header{Key: HeaderFirstSeen, Value: []byte(d.FirstSeen.UTC().Format(time.RFC3339Nano))},
	)
	if d.OriginalSize > 0 {
		hs = append(hs, kafkago.Header{Key: HeaderOriginalSize, Value: []byte(strconv.Itoa(d.OriginalSize))})
	}
	return kafkago.Message{Topic: DLQTopic(d.Source.Topic), Key: d.Key, Value: d.Value, Headers: hs}
}

// Close flushes and closes the producer.
func (k *DeadLetters) Close() error { return k.w.Close() }

// EnsureDLQTopics creates the dead-letter topic of each source topic when it is missing,
// with the source's partition count and replication, so that the first dead letter does
// not wait for auto-creation. Source topics that do not exist yet are skipped (the writer
// still auto-creates their DLQ later). It returns the DLQ topics it created.
//
// Created topics accept messages of maxValueBytes plus header room (max.message.bytes),
// so a dead letter as large as the largest accepted record fits.
//
// transport connects to the brokers (consumer.Config.Transport() for the config's TLS and
// SASL), and its idle connections are closed on return; nil: a plaintext one of its own.
// Not the shared DefaultTransport: it answers Metadata from a cache that can be seconds
// stale, which would hide a topic created moments ago.
func EnsureDLQTopics(ctx context.Context, brokers []string, sources []string, maxValueBytes int, transport *kafkago.Transport) ([]string, error) {
	tr := transport
	if tr == nil {
		tr = &kafkago.Transport{}
	}
	defer tr.CloseIdleConnections()
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second, Transport: tr}
	want := make([]string, 0, 2*len(sources))
	for _, s := range sources {
		want = append(want, s, DLQTopic(s))
	}
	meta, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: want})
	if err != nil {
		return nil, fmt.Errorf("kafka metadata for %v: %w", want, err)
	}
	exists := map[string]kafkago.Topic{}
	for _, t := range meta.Topics {
		if t.Error == nil && len(t.Partitions) > 0 {
			exists[t.Name] = t
		}
	}
	var create []kafkago.TopicConfig
	for _, s := range sources {
		src, ok := exists[s]
		if _, dlqExists := exists[DLQTopic(s)]; !ok || dlqExists {
			continue
		}
		create = append(create, kafkago.TopicConfig{
			Topic: DLQTopic(s), NumPartitions: len(src.Partitions), ReplicationFactor: max(len(src.Partitions[0].Replicas), 1),
			ConfigEntries: []kafkago.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(maxValueBytes + dlqHeadroom)}},
		})
	}
	if len(create) == 0 {
		return nil, nil
	}
	resp, err := client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: create})
	if err != nil {
		return nil, fmt.Errorf("create dead-letter topics: %w", err)
	}
	var created []string
	for _, c := range create {
		switch err := resp.Errors[c.Topic]; {
		case err == nil:
			created = append(created, c.Topic)
		case errors.Is(err, kafkago.TopicAlreadyExists):
		default:
			return created, fmt.Errorf("create dead-letter topic %s: %w", c.Topic, err)
		}
	}
	// Creation is asynchronous; wait until every partition has a leader so the first
	// dead letter can be written at once.
	for len(created) > 0 {
		meta, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: created})
		ready := err == nil && len(meta.Topics) == len(created)
		if ready {
			for _, t := range meta.Topics {
				ready = ready && t.Error == nil && len(t.Partitions) > 0
				for _, p := range t.Partitions {
					ready = ready && p.Error == nil && p.Leader.Host != ""
				}
			}
		}
		if ready {
			break
		}
		select {
		case <-ctx.Done():
			return created, fmt.Errorf("dead-letter topics %v created but not ready: %w", created, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return created, nil
}
