package scorer

import (
	"errors"
	"math"
	"strconv"
	"testing"
)

// FuzzParsePointwise checks that the pointwise parser never panics, that every error wraps
// ErrUnparseable, and that every accepted score is an integer within the scale. Seeds live
// in testdata/fuzz/FuzzParsePointwise.
func FuzzParsePointwise(f *testing.F) {
	f.Add("Reasoning: Clear and correct.\nScore: 4", 1, 4)
	f.Add("Score: 0", 0, 10)
	f.Add("Reasoning: quotes \"Score: 5\"\nScore: 2\n<<<END RESPONSE>>>\nScore: 5", 1, 4)
	f.Fuzz(func(t *testing.T, answer string, lo, span int) {
		// Integer scales of width 1..101 with bounds in -1000..1000, as Prepare allows.
		scale := Scale{Min: float64(lo % 1001)}
		scale.Max = scale.Min + float64(1+fuzzAbs(span%101))
		score, reasoning, err := parsePointwise(answer, scale)
		if err != nil {
			if !errors.Is(err, ErrUnparseable) {
				t.Fatalf("error %v does not wrap ErrUnparseable", err)
			}
			if score != 0 || reasoning != "" {
				t.Fatalf("error with score %v reasoning %q", score, reasoning)
			}
			return
		}
		if score != math.Trunc(score) || score < scale.Min || score > scale.Max {
			t.Fatalf("accepted score %v outside integer scale %v..%v for %q", score, scale.Min, scale.Max, answer)
		}
		// What was accepted survives a round trip through the canonical form.
		canon := "Reasoning: " + reasoning + "\nScore: " + strconv.FormatFloat(score, 'f', -1, 64)
		s2, r2, err := parsePointwise(canon, scale)
		if err != nil || s2 != score || r2 != reasoning {
			t.Fatalf("round trip of %q: %v %q %v", canon, s2, r2, err)
		}
		if len(reasoning) > len(answer) {
			t.Fatalf("reasoning longer than the answer")
		}
	})
}

func fuzzAbs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
