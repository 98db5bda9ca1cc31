package cache

import (
	"bytes"
	"testing"
	"time"
)

// fuzzNow is the clock FuzzDecodeEnvelope and its seed corpus under
// testdata/fuzz/FuzzDecodeEnvelope decode against.
var fuzzNow = time.Unix(1_800_000_000, 0)

func TestDecodeEnvelope(t *testing.T) {
	now := fuzzNow
	tests := []struct {
		name        string
		in          []byte
		wantOK      bool
		wantExpires time.Time
		wantPayload string
	}{
		{"round trip", encodeEnvelope(now.Add(time.Hour), []byte(`{"value":4}`)), true, now.Add(time.Hour), `{"value":4}`},
		{"empty payload", encodeEnvelope(now.Add(time.Nanosecond), nil), true, now.Add(time.Nanosecond), ""},
		{"at the max TTL", encodeEnvelope(now.Add(maxEnvelopeTTL), []byte("v")), true, now.Add(maxEnvelopeTTL), "v"},
		{"beyond the max TTL", encodeEnvelope(now.Add(maxEnvelopeTTL+1), []byte("v")), false, time.Time{}, ""},
		{"expires now", encodeEnvelope(now, []byte("v")), false, time.Time{}, ""},
		{"expired", encodeEnvelope(now.Add(-time.Hour), []byte("v")), false, time.Time{}, ""},
		{"older format (plain JSON)", []byte(`{"value":3,"label":"ok"}`), false, time.Time{}, ""},
		{"older format (text)", []byte(" plain value"), false, time.Time{}, ""},
		{"too short", []byte{1, 2, 3, 4, 5, 6, 7}, false, time.Time{}, ""},
		{"nil", nil, false, time.Time{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp, payload, ok := decodeEnvelope(tt.in, now)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			if !exp.Equal(tt.wantExpires) || string(payload) != tt.wantPayload || payload == nil {
				t.Fatalf("decoded %v %q (nil %v), want %v %q", exp, payload, payload == nil, tt.wantExpires, tt.wantPayload)
			}
		})
	}
}

// FuzzDecodeEnvelope: decoding never panics, and what it accepts is a live envelope that
// encodes back to exactly the input.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(encodeEnvelope(fuzzNow.Add(time.Minute), []byte(`{"value":1}`)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		exp, payload, ok := decodeEnvelope(b, fuzzNow)
		if !ok {
			if payload != nil {
				t.Fatalf("rejected input returned payload %q", payload)
			}
			return
		}
		if payload == nil {
			t.Fatal("accepted input returned a nil payload (a miss)")
		}
		if !exp.After(fuzzNow) || exp.Sub(fuzzNow) > maxEnvelopeTTL {
			t.Fatalf("accepted expiry %v outside (now, now+%s]", exp, maxEnvelopeTTL)
		}
		if re := encodeEnvelope(exp, payload); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding gives %x, input was %x", re, b)
		}
	})
}
