package scorer

import (
	"testing"

	"raterd/record"
)

// FuzzDecodeVerdict: a corrupt or foreign cache value is a miss, never a crash, and a
// decoded verdict survives a round trip.
func FuzzDecodeVerdict(f *testing.F) {
	f.Add(encodeVerdict(Verdict{Value: 4, Label: "ok", Confidence: 0.9, Explanation: "fine"}))
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":"x"}`))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, ok := decodeVerdict(b)
		if !ok {
			return
		}
		if v.Status != record.StatusOK {
			t.Fatalf("decoded verdict has status %q", v.Status)
		}
		again, ok := decodeVerdict(encodeVerdict(v))
		if !ok || again.Value != v.Value || again.Label != v.Label || again.Explanation != v.Explanation {
			t.Fatalf("round trip changed %+v into %+v", v, again)
		}
	})
}
