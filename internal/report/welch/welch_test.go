package welch

import (
	"math"
	"testing"
)

// TestFromSumsMatchesSamples: the stats from sums equal the mean and sample variance
// computed from the values, and a constant sample's variance is 0, never negative.
func TestFromSumsMatchesSamples(t *testing.T) {
	xs := []float64{0.1, 0.4, 0.35, 0.9, 0.7}
	var sum, sq, mean, v float64
	for _, x := range xs {
		sum += x
		sq += x * x
	}
	mean = sum / float64(len(xs))
	for _, x := range xs {
		v += (x - mean) * (x - mean)
	}
	v /= float64(len(xs) - 1)
	s := FromSums(uint64(len(xs)), sum, sq)
	if math.Abs(s.Mean-mean) > 1e-12 || math.Abs(s.Variance-v) > 1e-12 {
		t.Errorf("FromSums = %+v, want mean %v variance %v", s, mean, v)
	}
	c := 0.1
	n := uint64(1000)
	var cs, cq float64
	for range n {
		cs += c
		cq += c * c
	}
	if s := FromSums(n, cs, cq); s.Variance < 0 || s.Variance > 1e-12 {
		t.Errorf("constant sample: variance %v", s.Variance)
	}
	if s := FromSums(1, 3, 9); s.Mean != 3 || !math.IsNaN(s.Variance) {
		t.Errorf("one value: %+v", s)
	}
	if s := FromSums(0, 0, 0); !math.IsNaN(s.Mean) {
		t.Errorf("no value: %+v", s)
	}
}

func TestCompare(t *testing.T) {
	// Two samples of 4 with variance 0.01/3 each, means 0.15 and 0.85: the standard error
	// is sqrt(2 × 0.01/12), df 6.
	r := Compare(Stats{4, 0.15, 0.01 / 3}, Stats{4, 0.85, 0.01 / 3})
	if math.Abs(r.Diff-0.7) > 1e-12 || math.Abs(r.DF-6) > 1e-9 || math.Abs(r.StdErr-math.Sqrt(0.02/12)) > 1e-12 {
		t.Errorf("Compare = %+v", r)
	}
	if !(r.Low > 0) || math.Abs(r.High-r.Diff-(r.Diff-r.Low)) > 1e-12 {
		t.Errorf("interval [%v, %v] around %v", r.Low, r.High, r.Diff)
	}
	if s, _ := Verdict(r.Low, r.High); s != "significant" {
		t.Errorf("verdict %q", s)
	}
	if s, _ := Verdict(math.NaN(), 1); s != "undefined" {
		t.Errorf("verdict of NaN %q", s)
	}
	if s, _ := Verdict(-1, 1); s != "not significant" {
		t.Errorf("verdict of [-1, 1] %q", s)
	}
}
