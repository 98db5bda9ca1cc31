package trafficgen

import (
	"testing"
	"time"

	"raterd/consumer"
	"raterd/record"
)

// FuzzDecodeAccepted (seed corpus: testdata/fuzz/FuzzDecodeAccepted) checks decodeAccepted
// against the consumer's decoder, which it claims to mirror: a line is accepted exactly
// when raterd accepts it, and then with the prompt and response the evaluators read, so
// that DistinctKeys counts the judge calls raterd makes.
func FuzzDecodeAccepted(f *testing.F) {
	f.Add([]byte(`{"id":"a","model":"m","prompt":"p","response":"r"}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"response":""}`))
	f.Add([]byte(`{"model":"","response":"r"}`))
	f.Add([]byte(`{"model":"m","response":"r","metadata":{"k":1}}`))
	f.Add([]byte(`{"model":"m","response":"r","timestamp":"2026-11-28T12:00:00Z"}`))
	f.Add([]byte("{\"model\":\"m\",\"response\":\"\xff\"}"))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, line []byte) {
		got, ok := decodeAccepted(line)
		want, err := consumer.Decode(line, record.Source{Topic: "t"}, time.Unix(1, 0), 0)
		if err != nil {
			if ok {
				t.Fatalf("decodeAccepted accepts %q, which the consumer rejects: %v", line, err)
			}
			return
		}
		if !ok {
			t.Fatalf("decodeAccepted rejects %q, which the consumer accepts", line)
		}
		if got.PromptText() != want.PromptText() || got.Response != want.Response || got.Model != want.Model {
			t.Fatalf("decodeAccepted reads %q as prompt %q response %q, the consumer as %q %q", line, got.PromptText(), got.Response, want.PromptText(), want.Response)
		}
	})
}
