package kafka

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"raterd/internal/telemetry"
	"raterd/internal/testkit"
	"raterd/record"
	"raterd/sinks"
)

// uniqueName returns prefix followed by a suffix unique to this run.
func uniqueName(prefix string) string {
	return prefix + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// topicPartitions returns the partition count of topic, or 0 when it does not exist. It
// asks the broker through a fresh transport: kafkago.Client.Metadata answers from its
// transport's cache, and kafkago.Conn.ReadPartitions would auto-create a missing topic.
func topicPartitions(t *testing.T, broker, topic string) int {
	t.Helper()
	tr := &kafkago.Transport{}
	defer tr.CloseIdleConnections()
	client := &kafkago.Client{Addr: kafkago.TCP(broker), Timeout: 10 * time.Second, Transport: tr}
	meta, err := client.Metadata(context.Background(), &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range meta.Topics {
		if tp.Name == topic && tp.Error == nil {
			return len(tp.Partitions)
		}
	}
	return 0
}

// TestEnsureDLQTopics: the DLQ of an existing source topic is created with its partition
// count, once; a source that does not exist yet is skipped.
func TestEnsureDLQTopics(t *testing.T) {
	broker := testkit.Service(t, "RATERD_TEST_KAFKA", "Kafka broker")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	source := uniqueName("raterd-sinks-test-src-")
	missing := uniqueName("raterd-sinks-test-missing-")
	testkit.CreateTopic(t, broker, source, 3)
	t.Cleanup(func() { testkit.DeleteTopics(broker, DLQTopic(source), missing, DLQTopic(missing)) })

	created, err := EnsureDLQTopics(ctx, []string{broker}, []string{source, missing}, 1<<20, nil)
	if err != nil {
		t.Fatalf("EnsureDLQTopics: %v", err)
	}
	if len(created) != 1 || created[0] != DLQTopic(source) {
		t.Fatalf("EnsureDLQTopics created %q, want [%q]", created, DLQTopic(source))
	}
	if got := topicPartitions(t, broker, DLQTopic(source)); got != 3 {
		t.Errorf("%s has %d partitions, want 3 like its source", DLQTopic(source), got)
	}
	// The missing source is skipped: neither it nor its DLQ gets created.
	for _, tp := range []string{missing, DLQTopic(missing)} {
		if got := topicPartitions(t, broker, tp); got != 0 {
			t.Errorf("EnsureDLQTopics created %s (%d partitions) for a missing source", tp, got)
		}
	}

	again, err := EnsureDLQTopics(ctx, []string{broker}, []string{source, missing}, 1<<20, nil)
	if err != nil {
		t.Fatalf("second EnsureDLQTopics: %v", err)
	}
	if len(again) != 0 {
		t.Fatalf("second EnsureDLQTopics created %q, want nothing", again)
	}
}

// readAll reads every message of every partition of topic up to its current end.
func readAll(t *testing.T, broker, topic string) []kafkago.Message {
	t.Helper()
	var msgs []kafkago.Message
	for p := 0; p < topicPartitions(t, broker, topic); p++ {
		conn, err := kafkago.DialLeader(context.Background(), "tcp", broker, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		if err != nil {
			t.Fatal(err)
		}
		if last == 0 {
			_ = conn.Close()
			continue
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Seek(0, kafkago.SeekAbsolute); err != nil {
			t.Fatal(err)
		}
		batch := conn.ReadBatch(1, 10<<20)
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				t.Fatalf("read %s/%d: %v", topic, p, err)
			}
			msgs = append(msgs, m)
			if m.Offset+1 >= last {
				break
			}
		}
		_ = batch.Close()
		_ = conn.Close()
	}
	return msgs
}

func TestKafkaDeadLetters(t *testing.T) {
	broker := testkit.Service(t, "RATERD_TEST_KAFKA", "Kafka broker")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	source := uniqueName("raterd-sinks-test-dl-")
	testkit.CreateTopic(t, broker, source, 3)
	t.Cleanup(func() { testkit.DeleteTopics(broker, DLQTopic(source)) })
	if _, err := EnsureDLQTopics(ctx, []string{broker}, []string{source}, 1<<20, nil); err != nil {
		t.Fatal(err)
	}

	seen := time.Date(2026, 11, 28, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	letters := []record.DeadLetter{
		{Source: record.Source{Topic: source, Partition: 0, Offset: 5}, Key: []byte("key-0"), Value: []byte(`{"id":`),
			Headers: []record.Header{{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}, {Key: "content-type", Value: []byte("application/json")}},
			Reason:  "invalid_json", Error: "unexpected end of JSON input", FirstSeen: seen, Attempts: 1},
		{Source: record.Source{Topic: source, Partition: 2, Offset: 1 << 40}, Key: []byte("key-1"), Value: []byte{0xff, 0x00, 0xfe, 0x80, 'x', 0},
			Headers: []record.Header{{Key: "x-tenant", Value: []byte("ünï")}},
			Reason:  "invalid_utf8", Error: "value is not valid UTF-8", FirstSeen: seen.Add(time.Second), Attempts: 3},
		{Source: record.Source{Topic: source, Partition: 1, Offset: 0}, Key: nil, Value: []byte("plain prefix"), OriginalSize: 2000000,
			Reason: "too_large", Error: "value of 2000000 bytes exceeds 1048576", FirstSeen: seen.Add(2 * time.Second), Attempts: 0},
		// A record just under the 1 MiB cap that failed to decode must fit the DLQ whole.
		{Source: record.Source{Topic: source, Partition: 0, Offset: 9}, Key: []byte("big"), Value: bytes.Repeat([]byte("{"), 1<<20-1),
			Reason: "invalid_json", Error: "unexpected end of JSON input", FirstSeen: seen.Add(3 * time.Second), Attempts: 1},
	}
	sink := NewDeadLetters([]string{broker}, nil, 1<<20, telemetry.Settings{})
	t.Cleanup(func() { _ = sink.Close() })
	// A topic created a moment ago is unknown to the broker's metadata for some tens of
	// milliseconds (KRaft propagation), and kafka-go's Writer returns that as
	// UnknownTopicOrPartition before producing anything, without retrying. The pipeline
	// retries a failed batch; do the same here, only for that error, bounded by ctx.
	for {
		err := sink.WriteDeadLetters(ctx, letters)
		if err == nil {
			break
		}
		if !errors.Is(err, kafkago.UnknownTopicOrPartition) && !errors.Is(err, kafkago.LeaderNotAvailable) || ctx.Err() != nil {
			t.Fatalf("WriteDeadLetters: %v", err)
		}
		t.Logf("WriteDeadLetters: %v; retrying", err)
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := sink.WriteDeadLetters(ctx, nil); err != nil {
		t.Fatalf("WriteDeadLetters(nil): %v", err)
	}

	msgs := readAll(t, broker, DLQTopic(source))
	if len(msgs) != len(letters) {
		t.Fatalf("read %d messages from %s, want %d", len(msgs), DLQTopic(source), len(letters))
	}
	// Order by the first-seen header (distinct per letter): partitions keep no order among themselves.
	sort.Slice(msgs, func(i, j int) bool {
		return header(msgs[i], HeaderFirstSeen) < header(msgs[j], HeaderFirstSeen)
	})
	for i, d := range letters {
		m := msgs[i]
		if !bytes.Equal(m.Key, d.Key) || !bytes.Equal(m.Value, d.Value) {
			t.Errorf("letter %d: key, value = %q, %q; want %q, %q", i, m.Key, m.Value, d.Key, d.Value)
		}
		want := map[string]string{
			HeaderErrorClass:      d.Reason,
			HeaderError:           d.Error,
			HeaderSourceTopic:     d.Source.Topic,
			HeaderSourcePartition: strconv.Itoa(d.Source.Partition),
			HeaderSourceOffset:    strconv.FormatInt(d.Source.Offset, 10),
			HeaderAttempts:        strconv.Itoa(d.Attempts),
			HeaderFirstSeen:       d.FirstSeen.UTC().Format(time.RFC3339Nano),
		}
		for _, h := range d.Headers {
			want[h.Key] = string(h.Value)
		}
		if d.OriginalSize > 0 {
			want[HeaderOriginalSize] = strconv.Itoa(d.OriginalSize)
		}
		got := map[string]string{}
		for _, h := range m.Headers {
			if _, dup := got[h.Key]; dup {
				t.Errorf("letter %d: header %q appears twice", i, h.Key)
			}
			got[h.Key] = string(h.Value)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("letter %d: header %s = %q, want %q", i, k, got[k], v)
			}
		}
		if len(got) != len(want) {
			t.Errorf("letter %d: headers %v, want %v", i, got, want)
		}
		// The first-seen header parses back to the same instant.
		if ts, err := time.Parse(time.RFC3339Nano, got[HeaderFirstSeen]); err != nil || !ts.Equal(d.FirstSeen) {
			t.Errorf("letter %d: %s = %q does not parse back to %v (%v)", i, HeaderFirstSeen, got[HeaderFirstSeen], d.FirstSeen, err)
		}
	}
}

func header(m kafkago.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestKafkaDeadLettersTooLargeForTopic: a dead-letter topic made by hand with a small
// max.message.bytes refuses a large dead letter; the writer then keeps a prefix with the
// original size rather than failing the batch forever (which would stall its partition).
func TestKafkaDeadLettersTooLargeForTopic(t *testing.T) {
	broker := testkit.Service(t, "RATERD_TEST_KAFKA", "Kafka broker")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	source := uniqueName("raterd-sinks-test-dlbig-")
	client := &kafkago.Client{Addr: kafkago.TCP(broker), Timeout: 10 * time.Second, Transport: &kafkago.Transport{}}
	resp, err := client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
		Topic: DLQTopic(source), NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: []kafkago.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "200000"}},
	}}})
	if err != nil || resp.Errors[DLQTopic(source)] != nil {
		t.Fatalf("create %s: %v %v", DLQTopic(source), err, resp)
	}
	t.Cleanup(func() { testkit.DeleteTopics(broker, DLQTopic(source)) })

	big := bytes.Repeat([]byte("x"), 500_000)
	letters := []record.DeadLetter{
		{Source: record.Source{Topic: source, Partition: 0, Offset: 1}, Value: big, Reason: "invalid_json", Error: "bad", FirstSeen: time.Now()},
		{Source: record.Source{Topic: source, Partition: 0, Offset: 2}, Value: []byte("small"), Reason: "invalid_json", Error: "bad", FirstSeen: time.Now()},
	}
	sink := NewDeadLetters([]string{broker}, nil, 1<<20, telemetry.Settings{})
	t.Cleanup(func() { _ = sink.Close() })
	for {
		err := sink.WriteDeadLetters(ctx, letters)
		if err == nil {
			break
		}
		if !errors.Is(err, kafkago.UnknownTopicOrPartition) && !errors.Is(err, kafkago.LeaderNotAvailable) || ctx.Err() != nil {
			t.Fatalf("WriteDeadLetters with a letter over the topic's max.message.bytes: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	msgs := readAll(t, broker, DLQTopic(source))
	byOffset := map[string]kafkago.Message{}
	for _, m := range msgs {
		for _, h := range m.Headers {
			if h.Key == HeaderSourceOffset {
				byOffset[string(h.Value)] = m
			}
		}
	}
	if len(msgs) != 2 || len(byOffset) != 2 {
		t.Fatalf("read %d dead letters (%d distinct offsets), want 2", len(msgs), len(byOffset))
	}
	trunc := byOffset["1"]
	size := ""
	for _, h := range trunc.Headers {
		if h.Key == HeaderOriginalSize {
			size = string(h.Value)
		}
	}
	if len(trunc.Value) != DLQKeepBytes || !bytes.Equal(trunc.Value, big[:DLQKeepBytes]) || size != "500000" {
		t.Errorf("oversized dead letter: %d bytes, %s=%q; want the first %d bytes and 500000", len(trunc.Value), HeaderOriginalSize, size, DLQKeepBytes)
	}
	if string(byOffset["2"].Value) != "small" {
		t.Errorf("small dead letter value %q", byOffset["2"].Value)
	}
}

// TestKafkaDeadLettersHeadersTooLargeForTopic: issue 17 found that a dead letter whose
// original headers alone exceed the DLQ topic's max.message.bytes was retried forever
// (cutting the value does not help). Its original headers are now clipped — the first
// that fit DLQKeepHeaderBytes kept in order, raterd-headers-clipped counting the dropped
// — with every raterd-* contract header kept; the same for headers over the producer's
// own limit. A letter that cannot fit at all (its key alone is over the topic's limit)
// is a permanent error, not a silent loop.
func TestKafkaDeadLettersHeadersTooLargeForTopic(t *testing.T) {
	broker := testkit.Service(t, "RATERD_TEST_KAFKA", "Kafka broker")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	source := uniqueName("raterd-sinks-test-dlhdr-")
	client := &kafkago.Client{Addr: kafkago.TCP(broker), Timeout: 10 * time.Second, Transport: &kafkago.Transport{}}
	resp, err := client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
		Topic: DLQTopic(source), NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: []kafkago.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "200000"}},
	}}})
	if err != nil || resp.Errors[DLQTopic(source)] != nil {
		t.Fatalf("create %s: %v %v", DLQTopic(source), err, resp)
	}
	t.Cleanup(func() { testkit.DeleteTopics(broker, DLQTopic(source)) })

	sink := NewDeadLetters([]string{broker}, nil, 1<<20, telemetry.Settings{})
	t.Cleanup(func() { _ = sink.Close() })
	write := func(letters []record.DeadLetter) error {
		t.Helper()
		w := sink.BeginDeadLetters(letters)
		for {
			err := w(ctx)
			if err == nil || !errors.Is(err, kafkago.UnknownTopicOrPartition) && !errors.Is(err, kafkago.LeaderNotAvailable) || ctx.Err() != nil {
				return err
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	letter := func(offset int64, headers ...record.Header) record.DeadLetter {
		return record.DeadLetter{Source: record.Source{Topic: source, Partition: 0, Offset: offset}, Value: []byte(`{"bad`),
			Headers: headers, Reason: "invalid_json", Error: strings.Repeat("e", 5000), FirstSeen: time.Now(), Attempts: 1}
	}
	small := record.Header{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}
	overTopic := record.Header{Key: "blob", Value: bytes.Repeat([]byte("h"), 300_000)}      // over the topic's 200,000
	overProducer := record.Header{Key: "blob", Value: bytes.Repeat([]byte("p"), 2_000_000)} // over the producer's limit too
	if err := write([]record.DeadLetter{letter(1, small, overTopic, small), letter(2, small)}); err != nil {
		t.Fatalf("letter whose headers exceed the topic's max.message.bytes: %v", err)
	}
	if err := write([]record.DeadLetter{letter(3, overProducer, small)}); err != nil {
		t.Fatalf("letter whose headers exceed the producer's limit: %v", err)
	}
	msgs := readAll(t, broker, DLQTopic(source))
	if len(msgs) != 3 {
		t.Fatalf("read %d dead letters, want 3", len(msgs))
	}
	for _, m := range msgs {
		off := header(m, HeaderSourceOffset)
		for _, h := range []string{HeaderErrorClass, HeaderError, HeaderSourceTopic, HeaderSourcePartition, HeaderSourceOffset, HeaderAttempts, HeaderFirstSeen} {
			if header(m, h) == "" {
				t.Errorf("letter of offset %s lacks %s", off, h)
			}
		}
		var names []string
		for _, h := range m.Headers {
			if !strings.HasPrefix(h.Key, "raterd-") {
				names = append(names, h.Key)
			}
		}
		switch off {
		case "1":
			if got := header(m, HeaderHeadersClipped); got != "1" || strings.Join(names, ",") != "traceparent,traceparent" {
				t.Errorf("offset 1: %s=%q, original headers %v; want 1 dropped, both traceparent kept", HeaderHeadersClipped, got, names)
			}
			if n := len(header(m, HeaderError)); n > DLQKeepErrorBytes+len("…") {
				t.Errorf("offset 1: raterd-error of %d bytes, want at most %d", n, DLQKeepErrorBytes+len("…"))
			}
		case "2":
			if _, clipped := headerPresent(m, HeaderHeadersClipped); clipped || len(header(m, HeaderError)) != 5000 {
				t.Errorf("offset 2 (small, batched with the large one) was clipped")
			}
		case "3":
			if got := header(m, HeaderHeadersClipped); got != "1" || strings.Join(names, ",") != "traceparent" {
				t.Errorf("offset 3: %s=%q, original headers %v; want 1 dropped, traceparent kept", HeaderHeadersClipped, got, names)
			}
		default:
			t.Errorf("unexpected letter of offset %q", off)
		}
	}

	// A key over the topic's limit: nothing left to cut.
	huge := letter(4)
	huge.Key = bytes.Repeat([]byte("k"), 300_000)
	err = write([]record.DeadLetter{huge})
	if got := sinks.PermanentClass(err); got != ClassMessageTooLarge {
		t.Fatalf("letter with a key over the topic's limit: %v (class %q), want a permanent %s", err, got, ClassMessageTooLarge)
	}
}

// headerPresent returns the value of m's header key and whether it has one.
func headerPresent(m kafkago.Message, key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}
