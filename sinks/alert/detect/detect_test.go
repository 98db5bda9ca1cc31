package detect_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"raterd/sinks/alert/detect"
)

var (
	_ detect.Detector = (*detect.Threshold)(nil)
	_ detect.Detector = (*detect.EWMA)(nil)
	_ detect.Detector = (*detect.CUSUM)(nil)
	_ detect.Rule     = (*detect.Canary)(nil)
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// feed observes xs one second apart from start and returns the last decision.
func feed(t *testing.T, d detect.Detector, start time.Time, xs ...float64) detect.Decision {
	t.Helper()
	var dec detect.Decision
	for i, x := range xs {
		var err error
		if dec, err = d.Observe(x, start.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatalf("Observe(%v): %v", x, err)
		}
	}
	return dec
}

func check(t *testing.T, what string, got, want float64) {
	t.Helper()
	if !near(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	nan := math.NaN()
	for key, err := range map[string]error{
		"Stat":        must(detect.NewThreshold(detect.ThresholdConfig{Stat: 7})),
		"Alert":       must(detect.NewThreshold(detect.ThresholdConfig{Alert: nan})),
		"Warning":     must(detect.NewThreshold(detect.ThresholdConfig{Alert: 3, Warning: ptr(2.5)})),
		"Window":      must(detect.NewThreshold(detect.ThresholdConfig{Alert: 3, Window: time.Millisecond})),
		"MinSamples":  must(detect.NewThreshold(detect.ThresholdConfig{Alert: 3, MinSamples: -1})),
		"Confidence":  must(detect.NewThreshold(detect.ThresholdConfig{Alert: 3, Confidence: 1})),
		"Direction":   must(detect.NewThreshold(detect.ThresholdConfig{Alert: 3, Direction: 2})),
		"Lambda":      must(detect.NewEWMA(detect.EWMAConfig{Lambda: 1.5})),
		"L":           must(detect.NewEWMA(detect.EWMAConfig{L: -1})),
		"Baseline.SD": must(detect.NewEWMA(detect.EWMAConfig{BaselineConfig: detect.BaselineConfig{Baseline: &detect.Baseline{Mean: 3, SD: -1}}})),
		"WarmUp":      must(detect.NewCUSUM(detect.CUSUMConfig{BaselineConfig: detect.BaselineConfig{WarmUp: 1}})),
		"MinSD":       must(detect.NewCUSUM(detect.CUSUMConfig{BaselineConfig: detect.BaselineConfig{MinSD: -1}})),
		"Cap":         must(detect.NewCUSUM(detect.CUSUMConfig{H: 5, Cap: 4})),
		"K":           must(detect.NewCUSUM(detect.CUSUMConfig{K: math.Inf(1)})),
		"Alpha":       must(detect.NewCanary(detect.CanaryConfig{Alpha: 1})),
		"WarnAlpha":   must(detect.NewCanary(detect.CanaryConfig{Alpha: 0.1, WarnAlpha: 0.05})),
		"Margin":      must(detect.NewCanary(detect.CanaryConfig{Margin: -0.1})),
		"Tau":         must(detect.NewCanary(detect.CanaryConfig{Tau: -1})),
	} {
		if !errors.Is(err, detect.ErrInvalidConfig) || !strings.Contains(err.Error(), key+" ") {
			t.Errorf("%s: error %v, want ErrInvalidConfig naming %s", key, err, key)
		}
	}
}

func must[T any](_ T, err error) error { return err }

func TestThresholdMean(t *testing.T) {
	th, _ := detect.NewThreshold(detect.ThresholdConfig{Alert: 3.5, Warning: ptr(3.8), MinSamples: 5})
	if d := feed(t, th, t0, 1, 2, 3, 4); d.State != detect.StateUnknown || d.N != 4 {
		t.Fatalf("below MinSamples: %+v", d)
	}
	d := feed(t, th, t0.Add(10*time.Second), 5)
	if d.State != detect.StateAlert || d.N != 5 || !d.Since.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("mean 3 < 3.5: %+v", d)
	}
	check(t, "Observed", d.Observed, 3)
	check(t, "Upper", d.Upper, 3+1.959963984540054*math.Sqrt(2.5/5))
	if d = feed(t, th, t0.Add(20*time.Second), 5, 5, 5, 5, 5); d.State != detect.StateOK { // mean 4
		t.Errorf("mean 4: %v", d.State)
	}
	if d = feed(t, th, t0.Add(30*time.Second), 2, 3); d.State != detect.StateWarning { // mean 3.67
		t.Errorf("mean 3.67: %v", d.State)
	}
	// The window expires: without new data the verdict becomes unknown.
	d = th.Evaluate(t0.Add(2 * time.Hour))
	if d.State != detect.StateUnknown || d.N != 0 || !d.Since.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("after the window: %+v", d)
	}
	// Late data is refused and counted; the state does not change.
	if d, err := th.Observe(1, t0); !errors.Is(err, detect.ErrInvalidObservation) || d.Rejected != 1 || d.N != 0 {
		t.Errorf("late observation: %+v, %v", d, err)
	}
}

func TestThresholdSlidesByBucket(t *testing.T) {
	th, _ := detect.NewThreshold(detect.ThresholdConfig{Alert: 0, MinSamples: 1, Window: time.Hour, Buckets: 4})
	base := t0.Truncate(15 * time.Minute)
	feed(t, th, base, 1)                          // bucket 0
	feed(t, th, base.Add(20*time.Minute), 3)      // bucket 1
	d := feed(t, th, base.Add(50*time.Minute), 5) // bucket 3
	check(t, "mean of 3 buckets", d.Observed, 3)
	d = feed(t, th, base.Add(10*time.Minute), 2) // in-order again is fine: bucket 0 is still in the window
	check(t, "mean with a late one", d.Observed, 11.0/4)
	d = th.Evaluate(base.Add(61 * time.Minute)) // bucket 4 replaces bucket 0
	check(t, "bucket 0 expired", d.Observed, 4)
	if d.N != 2 {
		t.Errorf("N = %d, want 2", d.N)
	}
}

func TestThresholdPassRate(t *testing.T) {
	th, _ := detect.NewThreshold(detect.ThresholdConfig{Stat: detect.StatPassRate, Alert: 0.85, MinSamples: 10})
	d := feed(t, th, t0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1)
	if d.State != detect.StateAlert {
		t.Errorf("8/10 < 0.85: %v", d.State)
	}
	check(t, "Wilson lower", math.Round(d.Lower*1e4)/1e4, 0.4902)
	check(t, "Wilson upper", math.Round(d.Upper*1e4)/1e4, 0.9433)
	for _, x := range []float64{0.5, 2, math.NaN(), math.Inf(-1)} {
		if _, err := th.Observe(x, t0); !errors.Is(err, detect.ErrInvalidObservation) {
			t.Errorf("Observe(%v): %v, want ErrInvalidObservation", x, err)
		}
	}
	if d := th.Evaluate(time.Time{}); d.Rejected != 4 || d.N != 10 {
		t.Errorf("after 4 refused: %+v", d)
	}
	// All passes: a zero-variance window has a finite interval.
	th.Reset()
	d = feed(t, th, t0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	if d.State != detect.StateOK || d.Upper != 1 || !(d.Lower > 0.6 && d.Lower < 1) {
		t.Errorf("all passes: %+v", d)
	}
}

func TestThresholdAbove(t *testing.T) {
	th, _ := detect.NewThreshold(detect.ThresholdConfig{Stat: detect.StatPassRate, Alert: 0.2, Warning: ptr(0.1), MinSamples: 4, Direction: detect.Above})
	if d := feed(t, th, t0, 0, 0, 0, 1, 1); d.State != detect.StateAlert {
		t.Errorf("refusal rate 0.4 > 0.2: %v", d.State)
	}
}

func TestEWMAKnownValues(t *testing.T) {
	e, _ := detect.NewEWMA(detect.EWMAConfig{Lambda: 0.5, L: 2,
		BaselineConfig: detect.BaselineConfig{Baseline: &detect.Baseline{Mean: 3, SD: 1}}})
	// z1 = 2, σ_z = √(1/3·(1−¼)) = 0.5: limit 3−1 = 2, warning at 3−0.5.
	d := feed(t, e, t0, 1)
	check(t, "z1", d.Observed, 2)
	check(t, "limit1", d.Limit, 2)
	if d.State != detect.StateWarning {
		t.Errorf("z1 = limit: %v, want warning", d.State)
	}
	// z2 = 1.5, σ_z = √(1/3·(1−1/16)) = 0.5590: limit 1.882.
	d = feed(t, e, t0.Add(time.Second), 1)
	check(t, "z2", d.Observed, 1.5)
	check(t, "limit2", d.Limit, 3-2*math.Sqrt(0.3125))
	if d.State != detect.StateAlert || d.Upper >= d.Expected {
		t.Errorf("z2 below limit: %+v", d)
	}
	e.Reset()
	if d := e.Evaluate(time.Time{}); d.State != detect.StateOK || d.Observed != 3 || d.Rejected != 0 {
		t.Errorf("after Reset: %+v", d)
	}
}

func TestCUSUMKnownValues(t *testing.T) {
	c, _ := detect.NewCUSUM(detect.CUSUMConfig{K: 0.5, H: 2, Cap: 3,
		BaselineConfig: detect.BaselineConfig{Baseline: &detect.Baseline{Mean: 3, SD: 1}}})
	for i, want := range []struct {
		x, s  float64
		state detect.State
	}{
		{2, 0.5, detect.StateOK}, {1, 2, detect.StateWarning}, {2, 2.5, detect.StateAlert},
		{1, 3, detect.StateAlert} /* capped */, {5, 0.5, detect.StateOK}, {4, 0, detect.StateOK},
	} {
		d := feed(t, c, t0.Add(time.Duration(i)*time.Second), want.x)
		if !near(d.Statistic, want.s) || d.State != want.state {
			t.Errorf("step %d: S = %v %v, want %v %v", i, d.Statistic, d.State, want.s, want.state)
		}
		if i == 2 {
			check(t, "run mean", d.Observed, 5.0/3)
		}
	}
	if d := c.Evaluate(time.Time{}); d.N != 0 || d.Observed != 3 {
		t.Errorf("S back at 0: %+v", d)
	}
}

func TestWarmUp(t *testing.T) {
	c, _ := detect.NewCUSUM(detect.CUSUMConfig{K: 0.5, H: 2, BaselineConfig: detect.BaselineConfig{WarmUp: 4}})
	if d := feed(t, c, t0, 2, 4, 2); d.State != detect.StateUnknown || d.N != 3 {
		t.Fatalf("warming up: %+v", d)
	}
	d := feed(t, c, t0, 4) // mean 3, sd √(4/3)
	if d.State != detect.StateUnknown {
		t.Errorf("the last warm-up observation is not judged: %v", d.State)
	}
	d = feed(t, c, t0, 3-math.Sqrt(4.0/3))
	check(t, "S after one sd below", d.Statistic, 0.5)
	// A constant warm-up leaves σ at MinSD rather than zero.
	e, _ := detect.NewEWMA(detect.EWMAConfig{Lambda: 1, L: 3, BaselineConfig: detect.BaselineConfig{WarmUp: 3}})
	feed(t, e, t0, 4, 4, 4)
	if d := feed(t, e, t0, 3.75); d.State != detect.StateWarning || !near(d.Lower, 3.45) {
		t.Errorf("0.25 below a constant 4 with MinSD 0.1, L 3: %+v", d)
	}
	if d := feed(t, e, t0, 3.65); d.State != detect.StateAlert {
		t.Errorf("0.35 below: %v", d.State)
	}
}

func TestNonFiniteRejected(t *testing.T) {
	base := detect.BaselineConfig{Baseline: &detect.Baseline{Mean: 3, SD: 1}}
	e, _ := detect.NewEWMA(detect.EWMAConfig{BaselineConfig: base})
	c, _ := detect.NewCUSUM(detect.CUSUMConfig{BaselineConfig: base})
	for _, d := range []detect.Detector{e, c} {
		before := feed(t, d, t0, 2)
		for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			got, err := d.Observe(x, t0.Add(time.Minute))
			if !errors.Is(err, detect.ErrInvalidObservation) || got.Observed != before.Observed || got.Statistic != before.Statistic {
				t.Errorf("%T.Observe(%v) = %+v, %v; want the state unchanged and ErrInvalidObservation", d, x, got, err)
			}
		}
		if got := d.Evaluate(time.Time{}); got.Rejected != 3 {
			t.Errorf("%T: Rejected = %d, want 3", d, got.Rejected)
		}
	}
}

// canaryFeed alternates baseline and candidate observations.
func canaryFeed(t *testing.T, c *detect.Canary, base, cand []float64) detect.Decision {
	t.Helper()
	var d detect.Decision
	for i := range base {
		for arm, x := range map[detect.Arm]float64{detect.ArmBaseline: base[i], detect.ArmCandidate: cand[i]} {
			var err error
			if d, err = c.Observe(arm, x, t0.Add(time.Duration(i)*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return d
}

func alternating(n int, a, b float64) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = a
		if i%2 == 1 {
			xs[i] = b
		}
	}
	return xs
}

func TestCanaryKnownValues(t *testing.T) {
	c, _ := detect.NewCanary(detect.CanaryConfig{Tau: 0.5, Margin: 0.1, MinSamples: 20})
	n, tau := 20.0, 0.5
	d := canaryFeed(t, c, alternating(20, 4, 5), alternating(20, 3, 4))
	// Johari et al.'s form for n pairs: V = σ_c²+σ_b², Λ = √(V/(V+nτ'²))·exp(n²τ'²(Ȳ−θ0)²/(2V(V+nτ'²))),
	// with τ' = τ·pooled sd here.
	s2 := 0.25 * n / (n - 1)
	V, tau2 := 2*s2, tau*tau*s2
	lr := math.Sqrt(V/(V+n*tau2)) * math.Exp(n*n*tau2*math.Pow(-1+0.1, 2)/(2*V*(V+n*tau2)))
	check(t, "p", d.Statistic, 1/lr)
	check(t, "Observed", d.Observed, -1)
	check(t, "Expected", d.Expected, -0.1)
	half := math.Sqrt(2 * V / n * (V/n + tau2) / tau2 * (math.Log(20) + 0.5*math.Log((V/n+tau2)/(V/n))))
	check(t, "Upper", d.Upper, -1+half)
	if d.State != detect.StateAlert || d.Upper >= d.Expected || d.N != 40 {
		t.Errorf("1 worse with p %.2g: %+v", d.Statistic, d)
	}
	// The alert stands until Reset, even when later data improve.
	d = canaryFeed(t, c, alternating(200, 4, 5), alternating(200, 4, 5))
	if d.State != detect.StateAlert || d.Upper < d.Expected || d.Statistic >= 0.05 {
		t.Errorf("after good data: %+v", d)
	}
	c.Reset()
	if d := c.Evaluate(time.Time{}); d.State != detect.StateUnknown || d.Statistic != 1 || d.N != 0 {
		t.Errorf("after Reset: %+v", d)
	}
}

func TestCanaryEdgeCases(t *testing.T) {
	c, _ := detect.NewCanary(detect.CanaryConfig{MinSamples: 10})
	if d := canaryFeed(t, c, alternating(9, 4, 4), alternating(9, 4, 4)); d.State != detect.StateUnknown {
		t.Errorf("below MinSamples: %v", d.State)
	}
	// Identical constant arms: zero variance, no evidence, no NaN.
	d := canaryFeed(t, c, alternating(500, 4, 4), alternating(500, 4, 4))
	if d.State != detect.StateOK || d.Statistic != 1 || !finite(d.Lower, d.Upper) {
		t.Errorf("identical constants: %+v", d)
	}
	// Better candidate: never an alert, however much data.
	c.Reset()
	if d := canaryFeed(t, c, alternating(2000, 3, 4), alternating(2000, 4, 5)); d.State != detect.StateOK {
		t.Errorf("better candidate: %+v", d)
	}
	// Worse by less than the margin: no alert either.
	m, _ := detect.NewCanary(detect.CanaryConfig{Margin: 0.2})
	if d := canaryFeed(t, m, alternating(5000, 4, 5), alternating(5000, 3.9, 4.9)); d.State == detect.StateAlert {
		t.Errorf("0.1 worse, margin 0.2: %+v", d)
	}
	// Different constants: the variance floor keeps the evidence finite but decisive.
	c.Reset()
	if d := canaryFeed(t, c, alternating(10, 5, 5), alternating(10, 4, 4)); d.State != detect.StateAlert || !finite(d.Lower) {
		t.Errorf("constant 4 against constant 5: %+v", d)
	}
	if _, err := c.Observe(7, 1, t0); !errors.Is(err, detect.ErrInvalidObservation) {
		t.Errorf("unknown arm: %v", err)
	}
	if _, err := c.Observe(detect.ArmCandidate, math.NaN(), t0); !errors.Is(err, detect.ErrInvalidObservation) {
		t.Errorf("NaN: %v", err)
	}
	if d := c.Evaluate(time.Time{}); d.Rejected != 2 || d.N != 20 {
		t.Errorf("after 2 refused: %+v", d)
	}
}

func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// sameDecision compares decisions, times by instant.
func sameDecision(a, b detect.Decision) bool {
	ta, tb := [2]time.Time{a.Since, a.At}, [2]time.Time{b.Since, b.At}
	a.Since, a.At, b.Since, b.At = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b && ta[0].Equal(tb[0]) && ta[1].Equal(tb[1])
}

func TestStateRoundTrip(t *testing.T) {
	base := detect.BaselineConfig{WarmUp: 50}
	r := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, 900) // 300 records at 3.8, 300 at 3.4, 300 at 3.0
	for i := range xs {
		xs[i] = scores(3.8 - float64(i/300)*0.4).draw(r)
	}
	for name, orig := range map[string]detect.Rule{
		"threshold": must2(detect.NewThreshold(detect.ThresholdConfig{Alert: 3.5, Warning: ptr(3.7), Window: 10 * time.Minute})),
		"ewma":      must2(detect.NewEWMA(detect.EWMAConfig{BaselineConfig: base})),
		"cusum":     must2(detect.NewCUSUM(detect.CUSUMConfig{BaselineConfig: base, H: 5})),
		"canary":    must2(detect.NewCanary(detect.CanaryConfig{})),
	} {
		t.Run(name, func(t *testing.T) {
			step := func(r detect.Rule, i int) detect.Decision {
				at := t0.Add(time.Duration(i) * time.Second)
				if c, ok := r.(*detect.Canary); ok { // the candidate is 0.3 worse
					d, _ := c.Observe(detect.Arm(i%2), xs[i]-float64(i%2)*0.3, at)
					return d
				}
				d, _ := r.(detect.Detector).Observe(xs[i], at)
				return d
			}
			for i := range 400 {
				step(orig, i)
			}
			data, err := orig.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			// Restore into a zero value: the state carries the configuration.
			restored := reflect.New(reflect.TypeOf(orig).Elem()).Interface().(detect.Rule)
			if err := restored.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			if again, _ := restored.MarshalBinary(); string(again) != string(data) {
				t.Errorf("re-encoded state differs:\n%s\n%s", data, again)
			}
			alerted := false
			for i := 400; i < len(xs); i++ {
				a, b := step(orig, i), step(restored, i)
				if !sameDecision(a, b) {
					t.Fatalf("step %d: %+v\nrestored: %+v", i, a, b)
				}
				alerted = alerted || a.State == detect.StateAlert
			}
			if !alerted {
				t.Errorf("the stream never reached an alert; the test proves little")
			}
			for _, bad := range []string{"", "{", `{"V":2}`, string(data[:len(data)/2])} {
				if err := restored.UnmarshalBinary([]byte(bad)); !errors.Is(err, detect.ErrInvalidState) {
					t.Errorf("UnmarshalBinary(%.20q): %v, want ErrInvalidState", bad, err)
				}
			}
		})
	}
}

func must2[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestCorruptStateRejected(t *testing.T) {
	for name, tc := range map[string]struct {
		r    detect.Rule
		from string
		to   string
	}{
		"negative CUSUM":     {must2(detect.NewCUSUM(detect.CUSUMConfig{})), `"S":0`, `"S":-1`},
		"CUSUM over its cap": {must2(detect.NewCUSUM(detect.CUSUMConfig{})), `"S":0`, `"S":1e9`},
		"bad config":         {must2(detect.NewEWMA(detect.EWMAConfig{})), `"Lambda":0.01`, `"Lambda":7`},
		"p-value above 1":    {must2(detect.NewCanary(detect.CanaryConfig{})), `"P":1`, `"P":2`},
		"missing buckets":    {must2(detect.NewThreshold(detect.ThresholdConfig{Alert: 3, Buckets: 2})), `"Buckets":2`, `"Buckets":3`},
		"negative M2":        {must2(detect.NewCanary(detect.CanaryConfig{})), `"M2":0`, `"M2":-1`},
	} {
		data, _ := tc.r.MarshalBinary()
		bad := strings.Replace(string(data), tc.from, tc.to, 1)
		if bad == string(data) {
			t.Fatalf("%s: %q not in %s", name, tc.from, data)
		}
		if err := tc.r.UnmarshalBinary([]byte(bad)); !errors.Is(err, detect.ErrInvalidState) {
			t.Errorf("%s: %v, want ErrInvalidState", name, err)
		}
	}
}
