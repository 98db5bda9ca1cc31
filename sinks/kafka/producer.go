// Package kafka is raterd's Kafka dead-letter side: the DLQ producer (DeadLetters), the
// creation of the dead-letter topics (EnsureDLQTopics), the replay of dead letters to their
// source topics (ReplayDeadLetters), and the raterd-* header contract they share
// (headers.go).
package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"raterd/internal/telemetry"
	"raterd/internal/text"
	"raterd/record"
	"raterd/sinks"
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
// A dead letter too large for the DLQ topic (its max.message.bytes is below the letter:
// a topic created by hand, or auto-created with the broker's default), or for the
// producer's own limit, is cut down step by step until it fits, so that one oversized
// poison record never blocks the partition behind it: first its value is cut to
// DLQKeepBytes (HeaderOriginalSize says the original size); then, when it is still too
// large (its headers alone are), the original headers are clipped to
// DLQKeepHeaderBytes and raterd-error to DLQKeepErrorBytes, keeping every other raterd-*
// header (HeaderHeadersClipped says how many original headers were dropped). A letter
// still too large after that, and a write the brokers refuse for good (authorization,
// an invalid topic), is a sinks.PermanentError.
func (k *DeadLetters) BeginDeadLetters(letters []record.DeadLetter) func(ctx context.Context) error {
	pending := make([]pendingLetter, len(letters)) // not acknowledged yet
	for i := range letters {
		pending[i] = pendingLetter{d: letters[i]}
	}
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

// pendingLetter is a dead letter not yet acknowledged, with how far it was cut down to
// fit the topic.
type pendingLetter struct {
	d record.DeadLetter
	// step: 0 whole; stepValueCut: value cut to DLQKeepBytes (when it was larger);
	// stepHeadersClipped: original headers clipped too.
	step int
	// dropped is how many original headers stepHeadersClipped dropped.
	dropped int
	// valueCut: stepValueCut cut the value (it was over DLQKeepBytes).
	valueCut bool
}

// The steps of cutting a dead letter down (pendingLetter.step).
const (
	stepValueCut = 1 + iota
	stepHeadersClipped
)

// DLQKeepHeaderBytes is how many bytes of original headers (names and values) a dead
// letter keeps when it is too large for the topic even with its value cut: the first
// headers, in order, that fit; the others are dropped and counted in
// HeaderHeadersClipped.
const DLQKeepHeaderBytes = 8 << 10

// DLQKeepErrorBytes is how much of raterd-error a dead letter keeps when its headers are
// clipped.
const DLQKeepErrorBytes = 1 << 10

// cut moves l to its next step and reports whether there was one. The value step is
// skipped when the value is within DLQKeepBytes.
func (l *pendingLetter) cut() bool {
	switch {
	case l.step < stepValueCut && len(l.d.Value) > DLQKeepBytes:
		l.step, l.valueCut = stepValueCut, true
		l.d.OriginalSize = max(l.d.OriginalSize, len(l.d.Value))
		l.d.Value = l.d.Value[:DLQKeepBytes]
		return true
	case l.step < stepHeadersClipped:
		l.step = stepHeadersClipped
		var kept []record.Header
		budget := DLQKeepHeaderBytes
		for _, h := range l.d.Headers {
			if n := len(h.Key) + len(h.Value); n <= budget {
				kept = append(kept, h)
				budget -= n
				continue
			}
			l.dropped++
		}
		l.d.Headers = kept
		l.d.Error = text.ClipMarkedAfter(l.d.Error, DLQKeepErrorBytes, text.Ellipsis)
		return true
	}
	return false
}

// message is l as a Kafka message.
func (l *pendingLetter) message() kafkago.Message {
	m := deadLetterMessage(l.d)
	if l.step >= stepHeadersClipped {
		m.Headers = append(m.Headers, kafkago.Header{Key: HeaderHeadersClipped, Value: []byte(strconv.Itoa(l.dropped))})
	}
	return m
}

// messageSize is an upper bound of what m counts against the producer's BatchBytes
// (kafka-go's Message.totalSize: varint lengths of at most 5 bytes, fixed fields).
func messageSize(m kafkago.Message) int64 {
	n := int64(64 + len(m.Key) + len(m.Value))
	for _, h := range m.Headers {
		n += int64(10 + len(h.Key) + len(h.Value))
	}
	return n
}

// send writes letters and returns those that were not acknowledged, cut further where
// the topic refused them as too large, with the errors.
func (k *DeadLetters) send(ctx context.Context, letters []pendingLetter) ([]pendingLetter, error) {
	var rest []pendingLetter
	var errs []error
	// A message over the producer's own limit fails the whole WriteMessages call before
	// anything is sent: cut it first.
	fit := letters[:0:0]
	for _, l := range letters {
		for messageSize(l.message()) > k.w.BatchBytes && l.cut() {
		}
		if size := messageSize(l.message()); size > k.w.BatchBytes {
			rest = append(rest, l)
			errs = append(errs, sinks.Permanent(ClassMessageTooLarge, fmt.Errorf(
				"dead letter of %s/%d/%d: %d bytes with its value cut and headers clipped, over the producer's %d",
				l.d.Source.Topic, l.d.Source.Partition, l.d.Source.Offset, size, k.w.BatchBytes)))
			continue
		}
		fit = append(fit, l)
	}
	if len(fit) == 0 {
		return rest, errors.Join(errs...)
	}
	msgs := make([]kafkago.Message, len(fit))
	for i := range fit {
		msgs[i] = fit[i].message()
	}
	err := k.w.WriteMessages(ctx, msgs...)
	if err == nil {
		for i := range fit {
			k.acked(ctx, fit[i], msgs[i])
		}
		return rest, errors.Join(errs...)
	}
	var werrs kafkago.WriteErrors
	if !errors.As(err, &werrs) || len(werrs) != len(msgs) {
		// Which of them landed is unknown: all are sent again.
		return append(rest, fit...), errors.Join(append(errs, classify(err))...)
	}
	// The producer batches messages, so one oversized letter fails its neighbours too:
	// send each refused one alone, cut further until it fits.
	var again []pendingLetter
	for i, e := range werrs {
		switch {
		case e == nil:
			k.acked(ctx, fit[i], msgs[i])
		case errors.Is(e, kafkago.MessageSizeTooLarge):
			again = append(again, fit[i])
		default:
			rest = append(rest, fit[i])
			errs = append(errs, classify(e))
		}
	}
	for _, l := range again {
		if len(msgs) > 1 {
			// Refused with a large neighbour: it may fit alone as it is.
			m := l.message()
			err := k.writeOne(ctx, m)
			if err == nil {
				k.acked(ctx, l, m)
				continue
			}
			if !errors.Is(err, kafkago.MessageSizeTooLarge) {
				rest = append(rest, l)
				errs = append(errs, classify(err))
				continue
			}
		}
		for {
			if !l.cut() {
				rest = append(rest, l)
				errs = append(errs, sinks.Permanent(ClassMessageTooLarge, fmt.Errorf(
					"dead letter of %s/%d/%d: too large for %s with its value cut and headers clipped: %w",
					l.d.Source.Topic, l.d.Source.Partition, l.d.Source.Offset, DLQTopic(l.d.Source.Topic), kafkago.MessageSizeTooLarge)))
				break
			}
			m := l.message()
			err := k.writeOne(ctx, m)
			if err == nil {
				k.acked(ctx, l, m)
				break
			}
			if !errors.Is(err, kafkago.MessageSizeTooLarge) {
				rest = append(rest, l)
				errs = append(errs, classify(err))
				break
			}
		}
	}
	return rest, errors.Join(errs...)
}

// acked counts l, sent as m, acknowledged: its bytes, and whether it was cut down.
func (k *DeadLetters) acked(ctx context.Context, l pendingLetter, m kafkago.Message) {
	k.metrics.written(ctx, m)
	if l.valueCut {
		k.metrics.truncated.Add(ctx, 1)
	}
	if l.step >= stepHeadersClipped {
		k.metrics.headersClipped.Add(ctx, 1)
	}
}

// writeOne writes one message; its error is the message's own (not kafka-go's
// WriteErrors of one), so that errors.Is sees the broker's error code.
func (k *DeadLetters) writeOne(ctx context.Context, m kafkago.Message) error {
	err := k.w.WriteMessages(ctx, m)
	var werrs kafkago.WriteErrors
	if errors.As(err, &werrs) && len(werrs) == 1 && werrs[0] != nil {
		return werrs[0]
	}
	return err
}

// Classes of the permanent dead-letter write errors (sinks.PermanentError.Class).
const (
	// ClassMessageTooLarge: a dead letter is too large for its topic even with its value
	// cut and its headers clipped (its key alone is, or the topic's max.message.bytes is
	// below a few KiB).
	ClassMessageTooLarge = "kafka_message_too_large"
	// ClassAuthorization: the brokers refuse raterd's principal (topic or cluster
	// authorization, SASL authentication).
	ClassAuthorization = "kafka_authorization"
	// ClassInvalid: the brokers refuse the request itself (an invalid topic name, a
	// policy violation, a corrupt record).
	ClassInvalid = "kafka_invalid"
)

// classify wraps err as a sinks.PermanentError when the brokers refused the write with
// an error the same write meets again; other errors are returned as they are.
func classify(err error) error {
	var ke kafkago.Error
	if err == nil || sinks.PermanentClass(err) != "" || !errors.As(err, &ke) {
		return err
	}
	switch ke {
	case kafkago.TopicAuthorizationFailed, kafkago.ClusterAuthorizationFailed,
		kafkago.SASLAuthenticationFailed, kafkago.UnsupportedSASLMechanism, kafkago.IllegalSASLState:
		return sinks.Permanent(ClassAuthorization, err)
	case kafkago.InvalidTopic, kafkago.PolicyViolation, kafkago.InvalidRecord, kafkago.InvalidRequiredAcks:
		return sinks.Permanent(ClassInvalid, err)
	case kafkago.RecordListTooLarge:
		return sinks.Permanent(ClassMessageTooLarge, err)
	}
	return err
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
