package app

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/consumer"
	"raterd/internal/testkit"
	"raterd/internal/testkit/chtest"
	"raterd/record"
	"raterd/sinks/clickhouse"
)

// TestIntegrationGatewayLogsThroughKafka: the OpenAI (Chat Completions and Responses) and
// LiteLLM payloads the real SDKs wrote (consumer/testdata/inputs/{openai,litellm}, with
// their generators) and the OTLP exports the real Collector wrote, all on one topic read
// with format auto, through the real Kafka into ClickHouse: every record the decoders
// yield gets its rows, with its id, model and format-specific fields; skipped payloads (a
// failed call, an embedding) commit without rows; nothing is dead-lettered.
func TestIntegrationGatewayLogsThroughKafka(t *testing.T) {
	s := testkit.RequireServices(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, db := "it-gateway-"+suffix, "raterd_gateway_"+suffix
	conn := chtest.Migrated(t, s.ClickHouse, db)
	testkit.CreateTopic(t, s.Kafka, topic, 2)
	t.Cleanup(func() { testkit.DeleteTopics(s.Kafka, topic+".dlq") })

	var files []string
	for _, dir := range []string{"openai", "litellm", "otlp"} {
		matches, err := filepath.Glob(filepath.Join("..", "..", "consumer", "testdata", "inputs", dir, "*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && fi.Size() < 256<<10 && (strings.HasSuffix(m, ".json") || strings.HasSuffix(m, ".pb")) {
				files = append(files, m)
			}
		}
	}
	// What the decoders make of them, as raterd run will: the expected rows.
	cfg := readyzRunConfig(t, s.Kafka, topic, "it-gateway-"+suffix)
	cfg.Kafka.Format = consumer.FormatAuto
	dec := consumer.NewDecoder(cfg.Kafka.Limits())
	var msgs []kafka.Message
	want := map[string]*record.Record{}
	formats := map[string]int{}
	empty := 0
	for i, f := range files {
		v, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := dec.DecodeMessage(consumer.FormatAuto, v, record.Source{Topic: topic}, time.Now())
		if err != nil {
			t.Fatalf("%s: %v (the samples all decode)", f, err)
		}
		formats[res.Format]++
		if len(res.Records) == 0 {
			empty++
		}
		for _, r := range res.Records {
			if r.TracePart {
				continue // a tool or agent span: only trace evaluators read it
			}
			want[r.ID] = r
		}
		msgs = append(msgs, kafka.Message{Key: []byte(strconv.Itoa(i)), Value: v})
	}
	for _, f := range []string{consumer.FormatOpenAI, consumer.FormatLiteLLM, consumer.FormatOTLPProto, consumer.FormatOTLPJSON, consumer.FormatOTLPLogsProto, consumer.FormatOTLPLogsJSON} {
		if formats[f] == 0 {
			t.Fatalf("no %s sample among %d files: %v", f, len(files), formats)
		}
	}
	testkit.ProduceMessages(t, s.Kafka, topic, msgs)

	cfg.ClickHouse = chConfig(t, s.ClickHouse, db)
	stats, _ := runGroup(t, cfg, int64(len(msgs)))
	if stats.DeadLetters != 0 || stats.Empty != int64(empty) {
		t.Errorf("stats %+v: want no dead letter and %d messages without a record", stats, empty)
	}
	// The otlp samples hold proto and JSON copies of the same spans: their records share
	// ids, and FINAL keeps one row per record.
	rows, err := conn.Query(context.Background(), "SELECT record_id, model, span_id, conversation_id FROM "+db+".scores FINAL WHERE evaluator = 'refusal'")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for rows.Next() {
		var id, model, span, conv string
		if err := rows.Scan(&id, &model, &span, &conv); err != nil {
			t.Fatal(err)
		}
		r, ok := want[id]
		switch {
		case !ok:
			t.Errorf("row for record %s, which no sample yields", id)
		case model != r.Model || span != r.SpanID || conv != r.ConversationID:
			t.Errorf("record %s: model %q span %q conversation %q, want %q %q %q", id, model, span, conv, r.Model, r.SpanID, r.ConversationID)
		}
		got[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var missing []string
	for id := range want {
		if !got[id] {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("%d of %d records have no row: %v", len(missing), len(want), missing)
	}
	t.Logf("%d messages (%v), %d records, %d without a record, %d rows", len(msgs), formats, len(want), empty, len(got))
}

// chConfig is a ClickHouse section for db on addr.
func chConfig(t *testing.T, addr, db string) *clickhouse.Config {
	t.Helper()
	c := &clickhouse.Config{Addrs: []string{addr}, Database: db}
	if err := c.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	return c
}
