package consumer

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/internal/telemetry"
	"raterd/record"
)

// fanoutFormat is a fake format for pipeline tests: a value "a,b,c" yields one record
// per comma-separated name (ids <offset>-a, …), "-" names a skipped part, and "!" fails.
func fanoutFormat(value []byte, src record.Source, _ time.Time, _ Limits) (DecodeResult, error) {
	if string(value) == "!" {
		return DecodeResult{}, &DecodeError{Reason: ReasonInvalidJSON, Err: fmt.Errorf("fanout: broken")}
	}
	var res DecodeResult
	for _, name := range strings.Split(string(value), ",") {
		if name == "-" || name == "" {
			res.Skip("not_wanted")
			continue
		}
		res.Records = append(res.Records, &record.Record{ID: fmt.Sprintf("%d-%s", src.Offset, name), Model: "m", Response: name, Timestamp: time.Unix(1, 0)})
	}
	return res, nil
}

func fanoutPipeline(t *testing.T, cfg Config, values []string, sc Scorer) (*Pipeline, *fakeReader, *recordingSink) {
	t.Helper()
	var msgs []kafka.Message
	for i, v := range values {
		msgs = append(msgs, kafka.Message{Topic: "t", Partition: 0, Offset: int64(i), Value: []byte(v)})
	}
	reader := &fakeReader{msgs: msgs, commits: map[TopicPartition]int64{}}
	sink := &recordingSink{}
	p, err := New(cfg, reader, sc, sink, sink, Options{Telemetry: telemetry.Settings{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	p.decoder.byName[FormatRaterd] = fanoutFormat
	return p, reader, sink
}

func TestPipelineFansOutMessagesAndCommitsOnlyWhenAllTheirRecordsAreDone(t *testing.T) {
	values := []string{"a,b,c", "-,-", "!", "d", "e,-,f,g,h,i"}
	// The sink fails its first writes: no offset may be committed before the rows of
	// every record of a message are written.
	p, reader, sink := fanoutPipeline(t, testConfig(), values, fakeScorer{})
	sink.failFirst = 2
	sink.beforeWrite = func() {
		sink.mu.Lock()
		written := map[string]bool{}
		for _, r := range sink.rows {
			written[r.RecordID] = true
		}
		sink.mu.Unlock()
		next := reader.committed()[TopicPartition{"t", 0}]
		for off := int64(0); off < next; off++ {
			res, _ := fanoutFormat([]byte(values[off]), record.Source{Offset: off}, time.Time{}, Limits{})
			for _, r := range res.Records {
				if !written[r.ID] {
					t.Errorf("offset %d committed (next %d) before record %s was written", off, next, r.ID)
				}
			}
		}
	}
	runUntilDone(t, p, int64(len(values)))

	ids := map[string]int{}
	for _, r := range sink.rows {
		ids[r.RecordID]++
	}
	want := []string{"0-a", "0-b", "0-c", "3-d", "4-e", "4-f", "4-g", "4-h", "4-i"}
	if len(sink.rows) != len(want) {
		t.Errorf("%d rows (%v), want %d", len(sink.rows), ids, len(want))
	}
	for _, id := range want {
		if ids[id] != 1 {
			t.Errorf("record %s has %d rows, want 1", id, ids[id])
		}
	}
	if len(sink.dead) != 1 || sink.dead[0].Source.Offset != 2 || string(sink.dead[0].Value) != "!" {
		t.Errorf("dead letters %+v, want offset 2 whole", sink.dead)
	}
	if got := reader.committed()[TopicPartition{"t", 0}]; got != int64(len(values)) {
		t.Errorf("committed %d, want %d (the empty message commits too)", got, len(values))
	}
	s := p.Stats()
	if s.Valid != 4 || s.Records != 9 || s.Empty != 1 || s.Skipped != 3 || s.DeadLetters != 1 || s.Scores != 9 {
		t.Errorf("stats = %+v; want 4 valid messages, 9 records, 1 empty, 3 skipped, 1 dead letter, 9 scores", s)
	}
}

func TestPipelineDeadLettersAFannedOutMessageOnceWhenOneOfItsRecordsIsPoison(t *testing.T) {
	cfg := testConfig()
	cfg.PoisonAttempts = 2
	cfg.Batch.MaxRecords = 8 // every message in one batch, so that healthy records share it
	values := []string{"a,b", "c,bad1,bad2,d", "e"}
	sc := &poisonScorer{poison: map[string]bool{"1-bad1": true, "1-bad2": true}}
	p, reader, sink := fanoutPipeline(t, cfg, values, sc)
	runUntilDone(t, p, int64(len(values)))
	if len(sink.dead) != 1 || sink.dead[0].Source.Offset != 1 || sink.dead[0].Reason != ReasonJudgeFailed {
		t.Fatalf("dead letters %+v, want offset 1 once with reason %s", sink.dead, ReasonJudgeFailed)
	}
	if !strings.Contains(sink.dead[0].Error, `record "1-bad1" (one of 4 in the message)`) {
		t.Errorf("dead letter error %q does not name the record", sink.dead[0].Error)
	}
	ids := map[string]bool{}
	for _, r := range sink.rows {
		ids[r.RecordID] = true
	}
	// The letter's siblings (1-c, 1-d) leave with it: its replay scores them.
	if len(sink.rows) != 3 || !ids["0-a"] || !ids["0-b"] || !ids["2-e"] {
		t.Errorf("rows %v, want 0-a, 0-b, 2-e", ids)
	}
	if got := reader.committed()[TopicPartition{"t", 0}]; got != 3 {
		t.Errorf("committed %d, want 3", got)
	}
}

func TestDecodeMessageFillsIDsSourcesAndCapsRecordsPerMessage(t *testing.T) {
	d := NewDecoder(Limits{MaxRecordsPerMessage: 3})
	d.byName[FormatRaterd] = func(value []byte, src record.Source, t time.Time, lim Limits) (DecodeResult, error) {
		var res DecodeResult
		for range strings.Count(string(value), "x") {
			res.Records = append(res.Records, &record.Record{Model: "m"})
		}
		return res, nil
	}
	src := record.Source{Topic: "t", Partition: 1, Offset: 7}
	res, err := d.DecodeMessage(FormatRaterd, []byte("xxx"), src, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"t/1/7", "t/1/7#1", "t/1/7#2"} {
		r := res.Records[i]
		if r.ID != want || r.Source != src || r.Format != FormatRaterd || r.SizeBytes != 1 {
			t.Errorf("record %d = id %q source %+v format %q size %d; want id %q", i, r.ID, r.Source, r.Format, r.SizeBytes, want)
		}
	}
	_, err = d.DecodeMessage(FormatRaterd, []byte("xxxx"), src, time.Time{})
	if de, ok := err.(*DecodeError); !ok || de.Reason != ReasonTooManyRecords || !strings.Contains(err.Error(), "kafka.max_records_per_message") {
		t.Errorf("4 records over a cap of 3: %v, want %s naming the key", err, ReasonTooManyRecords)
	}
	if _, err := d.DecodeMessage("nope", []byte("x"), src, time.Time{}); err == nil || !strings.Contains(err.Error(), `unknown input format "nope"`) {
		t.Errorf("unknown format: %v", err)
	}
}

func TestConfigFormats(t *testing.T) {
	base := func() Config { return Config{Brokers: []string{"x:1"}, Topics: []string{"a", "b"}} }
	c := base()
	c.TopicFormats = map[string]string{"b": FormatOTLPProto}
	if err := c.Validate("kafka"); err != nil {
		t.Fatal(err)
	}
	if c.FormatOf("a") != FormatRaterd || c.FormatOf("b") != FormatOTLPProto {
		t.Errorf("FormatOf a=%q b=%q", c.FormatOf("a"), c.FormatOf("b"))
	}
	for _, tc := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.Format = "xml" }, `kafka.format: unknown input format "xml" (one of auto, litellm, openai, otlp_json`},
		{func(c *Config) { c.TopicFormats = map[string]string{"c": FormatAuto} }, `kafka.topic_formats: "c" is not one of kafka.topics`},
		{func(c *Config) { c.TopicFormats = map[string]string{"a": "otlp"} }, `kafka.topic_formats["a"]: unknown input format "otlp"`},
		{func(c *Config) { c.MaxRecordsPerMessage = -1 }, "kafka.max_records_per_message: -1 must be at least 1"},
		{func(c *Config) { c.MaxMessagesPerRecord = -2 }, "kafka.max_messages_per_record: -2 must be at least 1"},
		{func(c *Config) { c.OTLPUnknownModel = " unknown" }, "kafka.otlp_unknown_model: \" unknown\" must be a model name"},
		{func(c *Config) { c.OTLPUnknownModel = "Skip" }, `kafka.otlp_unknown_model: "Skip": write "skip"`},
	} {
		c := base()
		tc.mut(&c)
		if err := c.Validate("kafka"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate = %v, want %q", err, tc.want)
		}
	}
}

func TestRaterdFormatCapsMessagesPerRecord(t *testing.T) {
	d := NewDecoder(Limits{MaxMessagesPerRecord: 2})
	ok := `{"model":"m","response":"r","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}`
	if res, err := d.DecodeMessage(FormatRaterd, []byte(ok), record.Source{}, time.Unix(1, 0)); err != nil || len(res.Records) != 1 {
		t.Fatalf("2 messages at a cap of 2: %v", err)
	}
	over := `{"model":"m","response":"r","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}]}`
	_, err := d.DecodeMessage(FormatRaterd, []byte(over), record.Source{}, time.Unix(1, 0))
	if de, isDE := err.(*DecodeError); !isDE || de.Reason != ReasonInvalidField || de.Field != "messages" || !strings.Contains(err.Error(), "kafka.max_messages_per_record") {
		t.Errorf("3 messages at a cap of 2: %v, want invalid_field naming messages and the key", err)
	}
}

// TestThirdPartyRecordsAreBounded: metadata and tool calls from third-party formats are
// capped (they become every row's labels and enter judge prompts); raterd's own record is
// stored as sent.
func TestThirdPartyRecordsAreBounded(t *testing.T) {
	md := map[string]string{}
	for i := range 200 {
		md[fmt.Sprintf("k%03d", i)] = strings.Repeat("v", 1000)
	}
	var calls []record.ToolCall
	for i := range 100 {
		calls = append(calls, record.ToolCall{Name: fmt.Sprintf("t%d", i)})
	}
	d := NewDecoder(Limits{})
	d.byName[FormatOpenAI] = func([]byte, record.Source, time.Time, Limits) (DecodeResult, error) {
		return DecodeResult{Records: []*record.Record{{Model: "m", Metadata: maps.Clone(md), ToolCalls: slices.Clone(calls)}}}, nil
	}
	d.byName[FormatRaterd] = d.byName[FormatOpenAI]
	res, err := d.DecodeMessage(FormatOpenAI, []byte("x"), record.Source{}, time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	r := res.Records[0]
	if len(r.Metadata) != maxRecordMetadataKeys || len(r.Metadata["k000"]) != 256 || r.Metadata["k063"] == "" || len(r.ToolCalls) != maxRecordToolCalls {
		t.Errorf("openai record: %d metadata keys (k000 %d bytes), %d tool calls; want %d, 256 bytes, the first keys, %d",
			len(r.Metadata), len(r.Metadata["k000"]), len(r.ToolCalls), maxRecordMetadataKeys, maxRecordToolCalls)
	}
	res, _ = d.DecodeMessage(FormatRaterd, []byte("x"), record.Source{}, time.Unix(1, 0))
	if r := res.Records[0]; len(r.Metadata) != 200 || len(r.ToolCalls) != 100 {
		t.Errorf("raterd record changed: %d metadata keys, %d tool calls", len(r.Metadata), len(r.ToolCalls))
	}
}
