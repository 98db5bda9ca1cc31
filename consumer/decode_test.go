package consumer

import (
	"errors"
	"strings"
	"testing"
	"time"

	"raterd/record"
)

func TestDecode(t *testing.T) {
	src := record.Source{Topic: "traffic", Partition: 2, Offset: 41}
	msgTime := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		value      string
		maxBytes   int
		wantReason string
		wantField  string
		check      func(t *testing.T, r *record.Record)
	}{
		{name: "full record", value: `{"id":"req-1","timestamp":"2026-11-28T12:00:00Z","model":"m","app":"a","prompt":"p","response":"r","reference":"ref","metadata":{"k":"v"},"trace_id":"abc","candidates":[{"model":"b","response":"x"}]}`,
			check: func(t *testing.T, r *record.Record) {
				if r.ID != "req-1" || r.Model != "m" || r.App != "a" || r.Prompt != "p" || r.Response != "r" || r.Reference != "ref" || r.Metadata["k"] != "v" || r.TraceID != "abc" || len(r.Candidates) != 1 {
					t.Errorf("fields not decoded: %+v", r)
				}
				if !r.Timestamp.Equal(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)) {
					t.Errorf("timestamp = %v", r.Timestamp)
				}
				if r.Source != src {
					t.Errorf("source = %+v", r.Source)
				}
			}},
		{name: "defaults id and time from kafka", value: `{"model":"m","response":"r"}`,
			check: func(t *testing.T, r *record.Record) {
				if r.ID != "traffic/2/41" {
					t.Errorf("id = %q", r.ID)
				}
				if !r.Timestamp.Equal(msgTime) {
					t.Errorf("timestamp = %v", r.Timestamp)
				}
			}},
		{name: "empty response is valid", value: `{"model":"m","response":""}`},
		{name: "messages instead of prompt", value: `{"model":"m","messages":[{"role":"user","content":"hi"}],"response":"r"}`,
			check: func(t *testing.T, r *record.Record) {
				if r.PromptText() != "user: hi" {
					t.Errorf("prompt text = %q", r.PromptText())
				}
			}},
		{name: "unknown fields ignored", value: `{"model":"m","response":"r","future":1}`},
		{name: "not json", value: `hello`, wantReason: ReasonInvalidJSON},
		{name: "truncated json", value: `{"model":"m","response":"r`, wantReason: ReasonInvalidJSON},
		{name: "json array", value: `[1,2]`, wantReason: ReasonInvalidField},
		{name: "invalid utf8", value: "{\"model\":\"m\",\"response\":\"\xff\xfe\"}", wantReason: ReasonInvalidUTF8},
		{name: "missing model", value: `{"response":"r"}`, wantReason: ReasonMissingField, wantField: "model"},
		{name: "empty model", value: `{"model":"","response":"r"}`, wantReason: ReasonMissingField, wantField: "model"},
		{name: "missing response", value: `{"model":"m"}`, wantReason: ReasonMissingField, wantField: "response"},
		{name: "null response", value: `{"model":"m","response":null}`, wantReason: ReasonMissingField, wantField: "response"},
		{name: "wrong type", value: `{"model":"m","response":5}`, wantReason: ReasonInvalidField, wantField: "response"},
		{name: "metadata not strings", value: `{"model":"m","response":"r","metadata":{"k":1}}`, wantReason: ReasonInvalidField, wantField: "metadata"},
		{name: "bad timestamp", value: `{"model":"m","response":"r","timestamp":"yesterday"}`, wantReason: ReasonInvalidField, wantField: "timestamp"},
		{name: "timestamp before 1970", value: `{"model":"m","response":"r","timestamp":"1969-12-31T23:59:59Z"}`, wantReason: ReasonInvalidField, wantField: "timestamp"},
		{name: "timestamp after 2106", value: `{"model":"m","response":"r","timestamp":"2200-01-01T00:00:00Z"}`, wantReason: ReasonInvalidField, wantField: "timestamp"},
		{name: "too large", value: `{"model":"m","response":"` + strings.Repeat("x", 100) + `"}`, maxBytes: 64, wantReason: ReasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maxBytes := tt.maxBytes
			if maxBytes == 0 {
				maxBytes = DefaultMaxRecordBytes
			}
			r, err := Decode([]byte(tt.value), src, msgTime, maxBytes)
			if tt.wantReason != "" {
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("err = %v, want a DecodeError %s", err, tt.wantReason)
				}
				if de.Reason != tt.wantReason || (tt.wantField != "" && de.Field != tt.wantField) {
					t.Fatalf("got reason %q field %q, want %q %q (%v)", de.Reason, de.Field, tt.wantReason, tt.wantField, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if r.SizeBytes != len(tt.value) {
				t.Errorf("SizeBytes = %d", r.SizeBytes)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"a","model":"m","response":"r","prompt":"p","metadata":{"x":"y"}}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"response":""}`))
	f.Add([]byte(`{"model":"m","response":"r","timestamp":"2026-01-01T00:00:00.5+02:00"}`))
	f.Add([]byte("{\"model\":\"\xff\"}"))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, value []byte) {
		r, err := Decode(value, record.Source{Topic: "t"}, time.Unix(0, 0), 4096)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason == "" {
				t.Fatalf("error is not a classified DecodeError: %v", err)
			}
			return
		}
		if r.Model == "" || r.ID == "" || r.Timestamp.IsZero() && !strings.Contains(string(value), "timestamp") {
			t.Fatalf("accepted record misses required fields: %+v", r)
		}
	})
}
