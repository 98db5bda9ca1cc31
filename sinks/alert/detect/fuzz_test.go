package detect_test

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"raterd/sinks/alert/detect"
)

// fuzzRule restores a rule from state when that decodes (or starts from fresh), then
// applies ops: 9 bytes each, a control byte (bit 0: the canary arm; bits 1–7: seconds to
// advance, 127 meaning two hours back) and a little-endian float64. It checks that invalid
// input is refused and counted, that every verdict is sane, and that a rule restored from
// MarshalBinary halfway through decides exactly as the original.
func fuzzRule(t *testing.T, fresh func() detect.Rule, state, ops []byte) {
	r := fresh()
	if err := r.UnmarshalBinary(state); err != nil {
		if !errors.Is(err, detect.ErrInvalidState) {
			t.Fatalf("UnmarshalBinary: %v, want ErrInvalidState", err)
		}
		r = fresh()
	}
	var twin detect.Rule
	at, rejected := t0, r.Evaluate(time.Time{}).Rejected
	for i := 0; i+9 <= len(ops); i += 9 {
		if i == len(ops)/18*9 {
			data, err := r.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if twin = fresh(); twin.UnmarshalBinary(data) != nil {
				t.Fatalf("UnmarshalBinary of MarshalBinary: %s", data)
			}
		}
		ctl, x := ops[i], math.Float64frombits(binary.LittleEndian.Uint64(ops[i+1:]))
		if ctl>>1 == 127 {
			at = at.Add(-2 * time.Hour)
		} else {
			at = at.Add(time.Duration(ctl>>1) * time.Second)
		}
		d, err := observe(r, detect.Arm(ctl&1), x, at)
		if twin != nil {
			if d2, err2 := observe(twin, detect.Arm(ctl&1), x, at); !sameDecision(d, d2) || (err == nil) != (err2 == nil) {
				t.Fatalf("op %d: restored rule decided %+v, %v; original %+v, %v", i/9, d2, err2, d, err)
			}
		}
		if err != nil {
			rejected++
			if !errors.Is(err, detect.ErrInvalidObservation) {
				t.Fatalf("Observe(%v): %v, want ErrInvalidObservation", x, err)
			}
		} else if math.IsNaN(x) || math.IsInf(x, 0) {
			t.Fatalf("Observe(%v) accepted", x)
		}
		if d.Rejected != rejected {
			t.Fatalf("Rejected = %d, want %d", d.Rejected, rejected)
		}
		saneDecision(t, r, d)
	}
}

func observe(r detect.Rule, arm detect.Arm, x float64, at time.Time) (detect.Decision, error) {
	if c, ok := r.(*detect.Canary); ok {
		return c.Observe(arm, x, at)
	}
	return r.(detect.Detector).Observe(x, at)
}

func saneDecision(t *testing.T, r detect.Rule, d detect.Decision) {
	t.Helper()
	if d.State < detect.StateUnknown || d.State > detect.StateAlert || d.N < 0 {
		t.Fatalf("bad state or N: %+v", d)
	}
	if !finite(d.Observed, d.Lower, d.Upper, d.Expected, d.Statistic, d.Limit) || d.Lower > d.Observed || d.Observed > d.Upper {
		t.Fatalf("not finite or not ordered: %+v", d)
	}
	if _, ok := r.(*detect.Canary); ok && !(d.Statistic >= 0 && d.Statistic <= 1) {
		t.Fatalf("p-value %v", d.Statistic)
	}
	if d.State != detect.StateUnknown && d.Since.IsZero() && !d.At.IsZero() {
		t.Fatalf("judged without a Since: %+v", d)
	}
}

func FuzzThreshold(f *testing.F) {
	f.Fuzz(func(t *testing.T, state, ops []byte) {
		fuzzRule(t, func() detect.Rule {
			return must2(detect.NewThreshold(detect.ThresholdConfig{Alert: 3, Warning: ptr(3.5), MinSamples: 2, Window: time.Minute, Buckets: 6}))
		}, state, ops)
		fuzzRule(t, func() detect.Rule {
			return must2(detect.NewThreshold(detect.ThresholdConfig{Stat: detect.StatPassRate, Alert: 0.8, MinSamples: 2, Direction: detect.Above}))
		}, state, ops)
	})
}

func FuzzEWMA(f *testing.F) {
	f.Fuzz(func(t *testing.T, state, ops []byte) {
		fuzzRule(t, func() detect.Rule {
			return must2(detect.NewEWMA(detect.EWMAConfig{Lambda: 0.2, L: 3, BaselineConfig: detect.BaselineConfig{WarmUp: 3}}))
		}, state, ops)
	})
}

func FuzzCUSUM(f *testing.F) {
	f.Fuzz(func(t *testing.T, state, ops []byte) {
		fuzzRule(t, func() detect.Rule {
			return must2(detect.NewCUSUM(detect.CUSUMConfig{K: 0.5, H: 4,
				BaselineConfig: detect.BaselineConfig{Baseline: &detect.Baseline{Mean: 3, SD: 1}}}))
		}, state, ops)
	})
}

func FuzzCanary(f *testing.F) {
	f.Fuzz(func(t *testing.T, state, ops []byte) {
		fuzzRule(t, func() detect.Rule { return must2(detect.NewCanary(detect.CanaryConfig{MinSamples: 3})) }, state, ops)
	})
}
