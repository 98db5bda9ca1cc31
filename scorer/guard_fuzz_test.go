package scorer

import (
	"math"
	"regexp"
	"strings"
	"testing"
)

// FuzzGuardParse: for every guard family, an answer either parses to one of the
// family's labels, with its native word where the parse says, or fails with
// ErrUnparseable; every answer the family's guide allows parses; and the label
// probabilities read from any tokens spelling the answer are a distribution over the
// labels (non-negative, adding up to 1) whenever they are used.
func FuzzGuardParse(f *testing.F) {
	for _, s := range []string{
		"safe", "unsafe\nS1,S10", "\n\nunsafe\nS3", "safe\nS1", "unsafely", "Yes", "No, the prompt is fine.", "Yesterday",
		"<score> yes </score>", "<think>hmm</think>\n<score>no</score>", "<score> maybe </score>",
		"Safety: Controversial\nCategories: PII\nRefusal: No", "Safety: Safety", "Safety:Unsafe", "",
	} {
		f.Add(s, uint8(3), -0.5)
	}
	families := guardFamilies()
	res := map[string]*regexp.Regexp{}
	for name, g := range families {
		res[name] = regexp.MustCompile(`^(?:` + g.regex + `)$`)
	}
	f.Fuzz(func(t *testing.T, text string, cut uint8, logprob float64) {
		for name, g := range families {
			p, err := g.parse(text)
			if err != nil {
				if !strings.Contains(err.Error(), ErrUnparseable.Error()) {
					t.Fatalf("%s: %q: error %v is not a parse failure", name, text, err)
				}
				if res[name].MatchString(text) {
					t.Fatalf("%s: the guide allows %q but it does not parse: %v", name, text, err)
				}
				continue
			}
			if g.labelOf(p.native) != p.label || p.label == "" || p.start < 0 || !strings.HasPrefix(text[p.start:], p.native) {
				t.Fatalf("%s: %q parsed to %+v", name, text, p)
			}
			// Two tokens split at cut, the first with itself and a label word as alternatives.
			at := int(cut) % (len(text) + 1)
			first := tok(text[:at], 0.5, map[string]float64{text[:at]: 0.5, g.words[0].native: 0.25})
			first.TopLogprobs = append(first.TopLogprobs, topLP{g.words[len(g.words)-1].native, logprob})
			lp := []openaiTokenLogprob{first, tok(text[at:], 1, nil)}
			probs, labelP, st := guardProbs(g, lp, text, p)
			if st == lpUsed && !(labelP >= 0 && labelP <= 1) {
				t.Fatalf("%s: %q: label token probability %v", name, text, labelP)
			}
			if st != lpUsed || probs == nil {
				continue
			}
			sum := 0.0
			for l, q := range probs {
				if q < 0 || q > 1 || math.IsNaN(q) || g.labelOf(nativeOf(g, l)) != l {
					t.Fatalf("%s: %q: probability %v of %q", name, text, q, l)
				}
				sum += q
			}
			if math.Abs(sum-1) > 1e-9 {
				t.Fatalf("%s: %q: probabilities add up to %v", name, text, sum)
			}
		}
	})
}

// nativeOf is the native word of a label.
func nativeOf(g *guardFamily, label string) string {
	for _, w := range g.words {
		if w.label == label {
			return w.native
		}
	}
	return ""
}
