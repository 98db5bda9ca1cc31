package consumer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"raterd/record"
)

// sampleFormat is the format of a file under testdata/inputs, from its directory and name.
func sampleFormat(path string) string {
	dir, name := filepath.Base(filepath.Dir(path)), filepath.Base(path)
	switch dir {
	case "openai":
		return FormatOpenAI
	case "litellm":
		return FormatLiteLLM
	}
	logs := strings.Contains(name, "logs.")
	switch {
	case strings.HasSuffix(name, ".pb") && logs:
		return FormatOTLPLogsProto
	case strings.HasSuffix(name, ".pb"):
		return FormatOTLPProto
	case logs:
		return FormatOTLPLogsJSON
	}
	return FormatOTLPJSON
}

// TestDetectFormatOnTheSDKSamples: format auto picks, for every sample the real SDKs and
// the Collector wrote, the format its topic would name, and decodes it as that format does.
func TestDetectFormatOnTheSDKSamples(t *testing.T) {
	files, err := filepath.Glob("testdata/inputs/*/*")
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(Limits{MaxRecordsPerMessage: DefaultMaxRecordsPerMessage, MaxMessagesPerRecord: DefaultMaxMessagesPerRecord})
	seen := map[string]int{}
	for _, path := range files {
		if ext := filepath.Ext(path); ext != ".json" && ext != ".pb" {
			continue
		}
		value, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := sampleFormat(path)
		if got := DetectFormat(value); got != want {
			t.Errorf("%s: detected %q, want %q", path, got, want)
			continue
		}
		seen[want]++
		src := record.Source{Topic: "t", Offset: 1}
		explicit, errExplicit := d.DecodeMessage(want, value, src, time.Unix(1, 0))
		auto, errAuto := d.DecodeMessage(FormatAuto, value, src, time.Unix(1, 0))
		if (errExplicit == nil) != (errAuto == nil) || len(explicit.Records) != len(auto.Records) || auto.Format != want {
			t.Errorf("%s: auto gave %d records (%v, format %q), %s gave %d (%v)", path, len(auto.Records), errAuto, auto.Format, want, len(explicit.Records), errExplicit)
		}
	}
	for _, f := range []string{FormatOTLPProto, FormatOTLPJSON, FormatOTLPLogsProto, FormatOTLPLogsJSON, FormatOpenAI, FormatLiteLLM} {
		if seen[f] == 0 {
			t.Errorf("no sample of %s under testdata/inputs", f)
		}
	}
}

func TestDetectFormatOtherValues(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{`{"model":"m","response":"r"}`, FormatRaterd},
		{` {"id":"x"}`, FormatRaterd}, // the raterd decoder names what is missing
		{`{"model":`, FormatRaterd},   // and reports the JSON error
		{`{"request":{},"response":{}}`, FormatOpenAI},
		{`{"request":"x","response":{}}`, FormatRaterd}, // not the envelope's shape
		{"\x00\x01\x02 junk", ""},
		{"hi", ""}, // parses as an empty protobuf export: pdata skips unknown fields
		{"", ""},
		{`[1,2]`, ""},
	} {
		if got := DetectFormat([]byte(tc.value)); got != tc.want {
			t.Errorf("DetectFormat(%q) = %q, want %q", tc.value, got, tc.want)
		}
	}
	d := NewDecoder(Limits{})
	_, err := d.DecodeMessage(FormatAuto, []byte("\x00\x01\x02 junk"), record.Source{}, time.Unix(1, 0))
	if de, ok := err.(*DecodeError); !ok || de.Reason != ReasonUnknownFormat {
		t.Errorf("junk with format auto: %v, want %s", err, ReasonUnknownFormat)
	}
}

// FuzzDecodeAuto: format auto on any value either dead-letters it with a *DecodeError or
// yields records that meet the record contract, whatever format it detects. The seeds are
// the SDK-written samples under testdata/inputs, plus the other formats' fuzz seeds.
func FuzzDecodeAuto(f *testing.F) {
	files, _ := filepath.Glob("testdata/inputs/*/*")
	for _, path := range files {
		if ext := filepath.Ext(path); ext != ".json" && ext != ".pb" {
			continue
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() > 64<<10 {
			continue // the big bad-shape exports mutate too slowly to be useful seeds
		}
		if v, err := os.ReadFile(path); err == nil {
			f.Add(v)
		}
	}
	f.Add([]byte(`{"model":"m","response":"r"}`))
	lim := Limits{MaxRecordBytes: DefaultMaxRecordBytes, MaxRecordsPerMessage: 50, MaxMessagesPerRecord: 20}
	d := NewDecoder(lim)
	f.Fuzz(func(t *testing.T, value []byte) {
		res, err := d.DecodeMessage(FormatAuto, value, record.Source{Topic: "t", Partition: 1, Offset: 9}, time.Unix(1700000000, 0))
		if err != nil {
			if _, ok := err.(*DecodeError); !ok {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			return
		}
		if res.Format == FormatAuto || res.Format == "" {
			t.Fatalf("result format %q: want the detected one", res.Format)
		}
		if len(res.Records) > lim.MaxRecordsPerMessage {
			t.Fatalf("%d records over the cap of %d", len(res.Records), lim.MaxRecordsPerMessage)
		}
		for _, r := range res.Records {
			if r.Model == "" || r.ID == "" || r.Format != res.Format {
				t.Fatalf("record breaks the contract: model %q id %q format %q", r.Model, r.ID, r.Format)
			}
			if r.Timestamp.Unix() < 0 || r.Timestamp.Unix() > maxEventUnix {
				t.Fatalf("timestamp %v out of range", r.Timestamp)
			}
			if len(r.Messages) > lim.MaxMessagesPerRecord {
				t.Fatalf("%d messages over the cap of %d", len(r.Messages), lim.MaxMessagesPerRecord)
			}
		}
	})
}

func TestOTLPJSONRefusesObjectsThatAreNoExport(t *testing.T) {
	d := NewDecoder(Limits{})
	for _, format := range []string{FormatOTLPJSON, FormatOTLPLogsJSON} {
		_, err := d.DecodeMessage(format, []byte(`{"model":"m","response":"a raterd record on the wrong topic"}`), record.Source{}, time.Unix(1, 0))
		if de, ok := err.(*DecodeError); !ok || de.Reason != ReasonInvalidOTLP {
			t.Errorf("%s: a raterd record gave %v, want %s (a dead letter, not an empty export)", format, err, ReasonInvalidOTLP)
		}
		key, other := "resourceSpans", "resourceLogs"
		if format == FormatOTLPLogsJSON {
			key, other = other, key
		}
		for _, empty := range []string{`{}`, `{"` + key + `":[]}`} {
			if _, err := d.DecodeMessage(format, []byte(empty), record.Source{}, time.Unix(1, 0)); err != nil {
				t.Errorf("%s: %s: %v, want an empty export", format, empty, err)
			}
		}
		if _, err := d.DecodeMessage(format, []byte(`{"`+other+`":[]}`), record.Source{}, time.Unix(1, 0)); err == nil {
			t.Errorf("%s: the other signal's export was accepted", format)
		}
	}
}

// TestFallbackEventTime: a record without its own time takes the Kafka message time, or
// UnknownEventTime (1970-01-01T00:00:00Z) when that is missing or outside what
// ClickHouse's DateTime stores, in every format. Issue 17 found the time it was read
// there: a replay of the message then landed in another hour and did not collapse with
// the first copy.
func TestFallbackEventTime(t *testing.T) {
	ok := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	if got := fallbackEventTime(ok); !got.Equal(ok) {
		t.Errorf("in range: %v", got)
	}
	for _, bad := range []time.Time{{}, time.Unix(0, 0), time.Unix(-5, 0), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if got := fallbackEventTime(bad); !got.Equal(UnknownEventTime()) || got.Unix() != 0 {
			t.Errorf("%v: %v, want the marker %v", bad, got, UnknownEventTime())
		}
	}
	d := NewDecoder(Limits{})
	late := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	for format, value := range map[string]string{
		FormatRaterd: `{"model":"m","response":"r"}`,
		FormatOpenAI: `{"request":{"model":"m","messages":[{"role":"user","content":"q"}]},"response":{"choices":[{"message":{"role":"assistant","content":"a"}}]}}`,
	} {
		res, err := d.DecodeMessage(format, []byte(value), record.Source{}, late)
		if err != nil || len(res.Records) != 1 || !res.Records[0].Timestamp.Equal(UnknownEventTime()) {
			t.Errorf("%s with a message time in 2200: %v %+v", format, err, res.Records)
		}
		// A replay of the message (read again later, by another process) gets the same
		// event time, so its rows collapse with the first copy's.
		again, err := d.DecodeMessage(format, []byte(value), record.Source{}, time.Time{})
		if err != nil || len(again.Records) != 1 || !again.Records[0].Timestamp.Equal(res.Records[0].Timestamp) {
			t.Errorf("%s: a replay without a message time got event time %v, the first read %v", format, again.Records[0].Timestamp, res.Records[0].Timestamp)
		}
	}
}
