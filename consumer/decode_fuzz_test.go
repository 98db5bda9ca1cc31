package consumer

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"raterd/record"
)

// FuzzDecodeRoundTrip (seed corpus: testdata/fuzz/FuzzDecodeRoundTrip) complements
// FuzzDecode: every rejection is one of the stable reasons with a message of valid UTF-8,
// the size cap is enforced first, decoding is deterministic, and an accepted record
// written back in the contract's JSON (record.Record's encoding) decodes to the same
// record.
func FuzzDecodeRoundTrip(f *testing.F) {
	f.Add([]byte(`{"id":"a","model":"m","response":"r","prompt":"p","metadata":{"x":"y"},"candidates":[{"model":"m2","response":"r2"}]}`), uint16(0))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"response":"","timestamp":"2026-11-28T12:00:00.123456789+05:30"}`), uint16(0))
	f.Add([]byte(`{"model":"m","response":"r","timestamp":"2106-02-07T06:28:16Z"}`), uint16(0))
	f.Add([]byte(`{"model":"m","response":"r","metadata":{}, "messages":[]}`), uint16(0))
	f.Add([]byte(`{"model":"m","response":"r"}`), uint16(5))
	f.Add([]byte(`{"model":"m","response":7}`), uint16(0))
	f.Fuzz(func(t *testing.T, value []byte, capBytes uint16) {
		src := record.Source{Topic: "traffic", Partition: 3, Offset: 42}
		msgTime := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
		r, err := Decode(value, src, msgTime, int(capBytes))
		r2, err2 := Decode(value, src, msgTime, int(capBytes))
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() || err == nil && !fzSameRecord(r, r2) {
			t.Fatalf("not deterministic: %v / %v", err, err2)
		}
		if capBytes > 0 && len(value) > int(capBytes) {
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason != ReasonTooLarge {
				t.Fatalf("%d bytes over a %d-byte cap: %v", len(value), capBytes, err)
			}
			return
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || !slices.Contains([]string{ReasonInvalidUTF8, ReasonInvalidJSON, ReasonMissingField, ReasonInvalidField}, de.Reason) {
				t.Fatalf("error %v is not a DecodeError with a stable reason", err)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("error is not valid UTF-8: %q", err)
			}
			return
		}
		if r.SizeBytes != len(value) || r.Source != src || r.Model == "" || r.ID == "" {
			t.Fatalf("accepted record: %+v", r)
		}
		if u := r.Timestamp.Unix(); u < 0 || u > maxEventUnix || r.Timestamp.Location() != time.UTC {
			t.Fatalf("event time %s", r.Timestamp)
		}
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("encode %+v: %v", r, err)
		}
		back, err := Decode(enc, src, time.Unix(7, 0), 0)
		if err != nil {
			t.Fatalf("re-encoded record %s does not decode: %v", enc, err)
		}
		if !fzSameRecord(r, back) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v\n(%s)", r, back, enc)
		}
		// encoding/json matches keys case-insensitively ("iD" is the id too), and a key may
		// be written with escapes: ask the decoder's own rules whether an id was given.
		var keys map[string]json.RawMessage
		_ = json.Unmarshal(value, &keys)
		givenID := slices.ContainsFunc(slices.Collect(maps.Keys(keys)), func(k string) bool { return strings.EqualFold(k, "id") })
		if !givenID && r.ID != "traffic/3/42" {
			t.Fatalf("record without an id got id %q", r.ID)
		}
	})
}

// fzSameRecord compares what the contract carries; an empty list or map equals none.
func fzSameRecord(a, b *record.Record) bool {
	return a.ID == b.ID && a.Timestamp.Equal(b.Timestamp) && a.Model == b.Model && a.App == b.App && a.Prompt == b.Prompt &&
		slices.Equal(a.Messages, b.Messages) && a.Response == b.Response && a.Reference == b.Reference &&
		slices.Equal(a.Candidates, b.Candidates) && maps.Equal(a.Metadata, b.Metadata) && a.TraceID == b.TraceID &&
		a.System == b.System && slices.Equal(a.Context, b.Context) && slices.Equal(a.ToolCalls, b.ToolCalls) &&
		(a.Usage == nil) == (b.Usage == nil) && (a.Usage == nil || *a.Usage == *b.Usage) &&
		a.FinishReason == b.FinishReason && a.ConversationID == b.ConversationID && a.SpanID == b.SpanID
}
