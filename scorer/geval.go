package scorer

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"raterd/scorer/format"
)

// lpStatus says what became of an answer's logprobs: used, or why not. A verdict built
// without them is written under the judge's plain identity (never "+logprobs") and
// counted in raterd.judge.logprobs.unused by reason.
type lpStatus int

const (
	lpNotAsked      lpStatus = iota // the judge does not ask for logprobs
	lpUsed                          // the verdict is weighted by them (or carries their probability)
	lpMissing                       // the server sent none
	lpMisaligned                    // neither the token strings nor their bytes spell the answer
	lpInvalid                       // a NaN, or alternatives adding up to more than certainty
	lpAmbiguous                     // a multi-digit score's mass cannot be split from its prefix
	lpNoAlternative                 // no alternative at the result token is a valid choice
)

// reason is the metric attribute of a status that is not lpUsed.
func (s lpStatus) reason() string {
	switch s {
	case lpMissing:
		return "missing"
	case lpMisaligned:
		return "misaligned"
	case lpInvalid:
		return "invalid"
	case lpAmbiguous:
		return "ambiguous"
	case lpNoAlternative:
		return "no_alternative"
	default:
		return "unused"
	}
}

// gevalAmbiguityTolerance is how far apart, as a fraction of the scale's range, the
// lowest and highest weighted means that the unsplittable mass allows may be for the
// score still to be weighted (by the mass that can be split).
const gevalAmbiguityTolerance = 0.01

// alignTokens returns the text of each token when the tokens spell the answer: their
// strings, or else their bytes (OpenAI's "bytes" field, which holds what byte-fallback
// tokens stand for when their strings do not). ok is false when neither does.
func alignTokens(lp []openaiTokenLogprob, text string) ([]string, bool) {
	var b strings.Builder
	for _, t := range lp {
		b.WriteString(t.Token)
	}
	if b.String() == text {
		out := make([]string, len(lp))
		for i, t := range lp {
			out[i] = t.Token
		}
		return out, true
	}
	raw := make([]byte, 0, len(text))
	out := make([]string, len(lp))
	for i, t := range lp {
		if t.Bytes == nil && t.Token != "" {
			return nil, false // no bytes to fall back on
		}
		start := len(raw)
		for _, c := range t.Bytes {
			if c < 0 || c > 255 {
				return nil, false
			}
			raw = append(raw, byte(c))
		}
		out[i] = string(raw[start:])
	}
	if string(raw) != text {
		return nil, false
	}
	return out, true
}

// readLogprobs reads an answer's logprobs at its parsed result. probs is the
// distribution the verdict weights by: for a pointwise score, the probability of each
// score on the scale (see scoreDistribution); for a label or preference, the probability
// of each choice at the result token when that token is the whole result. resultP is
// the probability of the result as written (the product over its tokens), valid when
// hasP. st says whether the logprobs were used and, if not, why.
func readLogprobs(lp []openaiTokenLogprob, text string, p format.Parsed, spec format.Spec) (probs map[string]float64, resultP float64, hasP bool, st lpStatus) {
	if len(lp) == 0 || p.Result == "" {
		return nil, 0, false, lpMissing
	}
	texts, ok := alignTokens(lp, text)
	if !ok {
		return nil, 0, false, lpMisaligned
	}
	// The tokens covering [start, end) of the result.
	start, end := p.ResultStart, p.ResultStart+len(p.Result)
	offset, first, firstStart := 0, -1, 0
	resultP = 1.0
	for i, tt := range texts {
		tokStart, tokEnd := offset, offset+len(tt)
		offset = tokEnd
		if tokEnd <= start || tokStart >= end {
			continue
		}
		if first < 0 {
			first, firstStart = i, tokStart
		}
		tp, ok := logprobP(lp[i].Logprob)
		if !ok {
			return nil, 0, false, lpInvalid // not a probability: do not guess
		}
		resultP *= tp
	}
	if first < 0 {
		return nil, 0, false, lpMisaligned
	}
	choices := format.Choices(spec)
	if spec.Task == format.TaskPointwise {
		dist, st := scoreDistribution(lp, texts, first, texts[first][:start-firstStart], choices, float64(spec.Max-spec.Min))
		return dist, resultP, true, st
	}
	// A label or preference: the alternatives at the result token are alternatives for
	// the result only when that one token is the whole result; otherwise the result's
	// probability stands alone (a label's confidence).
	// A label's probability is its confidence, read whatever its alternatives say; a
	// preference needs the probabilities of A and B.
	fallback := lpNoAlternative
	if spec.Task == format.TaskClassification {
		fallback = lpUsed
	}
	if strings.TrimSpace(texts[first]) != p.Result {
		return nil, resultP, true, fallback
	}
	alts, ok := alternatives(lp[first], texts[first])
	if !ok {
		if fallback == lpNoAlternative {
			fallback = lpInvalid
		}
		return nil, resultP, true, fallback
	}
	valid := make(map[string]bool, len(choices))
	for _, c := range choices {
		valid[c] = true
	}
	probs = make(map[string]float64)
	for _, a := range alts {
		if c := strings.TrimSpace(a.text); valid[c] {
			probs[c] += a.p
		}
	}
	if spec.Task == format.TaskPairwise && probs["A"]+probs["B"] <= 0 {
		return probs, resultP, true, lpNoAlternative
	}
	return probs, resultP, true, lpUsed
}

// gevalAlt is one alternative at a token: its text, probability, and whether it is the
// token the answer took.
type gevalAlt struct {
	text   string
	p      float64
	chosen bool
}

// alternatives lists a token's alternatives, the chosen token among them (added when the
// server did not list it). ok is false when one is not a probability or they add up to
// more than certainty: alternatives of one token are disjoint, so more than 1 in all (a
// token listed twice, clamped positive logprobs) is no distribution to weight by.
func alternatives(tok openaiTokenLogprob, text string) ([]gevalAlt, bool) {
	var out []gevalAlt
	seen, mass := false, 0.0
	for _, a := range tok.TopLogprobs {
		p, ok := logprobP(a.Logprob)
		if !ok {
			return nil, false
		}
		chosen := a.Token == tok.Token
		seen = seen || chosen
		out = append(out, gevalAlt{text: a.Token, p: p, chosen: chosen})
		mass += p
	}
	if !seen {
		p, ok := logprobP(tok.Logprob)
		if !ok {
			return nil, false
		}
		out = append(out, gevalAlt{text: text, p: p, chosen: true})
		mass += p
	}
	if mass > 1+openaiMassTolerance {
		return nil, false
	}
	return out, true
}

// numberPrefix splits s into its leading number characters (ASCII digits, after a '-'
// when sign) and the rest.
func numberPrefix(s string, sign bool) (n, rest string) {
	i := 0
	if sign && i < len(s) && s[i] == '-' {
		i++
	}
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

// scoreDistribution is the probability of each score on the scale, read from the
// server's tokens along the answer's path through the result (G-Eval, prefix-aware).
//
// From the result's first token on, each alternative a (probability P(a | path so far))
// adds to the number written so far, N = path digits + a's leading digits:
//
//   - a ends the number (anything but digits follows in a, or a has no digits after the
//     first token): P(score N) += q·P(a), where q is the probability of the path so far;
//   - a is all digits and is the token taken: the path goes on to the next token, with
//     q·P(a) — so the probability of "1" followed by end-of-number and of "1" followed by
//     "0" come from the next token's alternatives, never from a guess;
//   - a is all digits and is the token taken, the answer's last: the answer ended there,
//     and the end it took is all that is reported: P(score N) += q·P(a);
//   - a is all digits and not taken: where it goes next is not known. When no valid score extends N, the number must end there:
//     P(score N) += q·P(a) if N is valid. When one does ("1" on 1–10 may be 1 or 10), the
//     mass q·P(a) is unsplittable between N and its extensions.
//
// Alternatives before the result's first digit that differ from the taken token only in
// leading whitespace count as the same position. The weighted score is
// Σ_s P(s)·s / Σ_s P(s) over the scores with known mass. With unsplittable mass, the
// true mean lies between the lowest and the highest mean any split allows; when those are
// more than gevalAmbiguityTolerance × (max − min) apart, the status is lpAmbiguous and the
// score is not weighted; otherwise the known mass alone weights it (an error within the
// tolerance).
func scoreDistribution(lp []openaiTokenLogprob, texts []string, first int, pre string, choices []string, scaleRange float64) (map[string]float64, lpStatus) {
	valid := make(map[string]float64, len(choices))
	for _, c := range choices {
		n, err := parseInt(c)
		if err != nil {
			return nil, lpInvalid
		}
		valid[c] = float64(n)
	}
	// extensions returns the lowest and highest valid scores that N is a strict prefix
	// of, and whether there is one.
	extensions := func(n string) (lo, hi float64, ok bool) {
		for _, c := range choices {
			if len(c) > len(n) && strings.HasPrefix(c, n) {
				v := valid[c]
				if !ok {
					lo, hi, ok = v, v, true
				}
				lo, hi = min(lo, v), max(hi, v)
			}
		}
		return lo, hi, ok
	}
	dist := make(map[string]float64)
	var unsplit []unsplitMass
	open := func(n string, mass float64) {
		lo, hi, ext := extensions(n)
		v, isValid := valid[n]
		switch {
		case !ext && isValid:
			dist[n] += mass
		case ext:
			if isValid {
				lo, hi = min(lo, v), max(hi, v)
			}
			unsplit = append(unsplit, unsplitMass{mass, lo, hi})
		}
	}
	path, q := "", 1.0
	for k := first; k < len(lp); k++ {
		alts, ok := alternatives(lp[k], texts[k])
		if !ok {
			return nil, lpInvalid
		}
		next, nextPath := -1, ""
		for i, a := range alts {
			s := a.text
			if a.chosen {
				s = texts[k]
			}
			if k == first {
				switch {
				case strings.HasPrefix(s, pre):
					s = s[len(pre):]
				case strings.TrimSpace(pre) == "":
					s = strings.TrimLeft(s, " \t\r\n")
				default:
					continue // another text before the number: not an alternative score
				}
			}
			digits, rest := numberPrefix(s, path == "")
			n := path + digits
			switch {
			case k == first && (digits == "" || digits == "-" && rest != ""):
				// not a number
			case rest != "" || digits == "":
				if _, ok := valid[n]; ok {
					dist[n] += q * a.p
				}
			case a.chosen && next < 0 && k+1 < len(lp):
				next, nextPath = i, n
			case a.chosen && next < 0:
				// The answer ends here: the end it took is the only one reported.
				if _, ok := valid[n]; ok {
					dist[n] += q * a.p
				}
			default:
				open(n, q*a.p)
			}
		}
		if next < 0 {
			break
		}
		path, q = nextPath, q*alts[next].p
	}
	var known, sum float64
	for _, c := range slices.Sorted(maps.Keys(dist)) {
		known += dist[c]
		sum += dist[c] * valid[c]
	}
	if known <= 0 {
		if len(unsplit) > 0 {
			return nil, lpAmbiguous
		}
		return nil, lpNoAlternative
	}
	if lo, hi := meanBounds(known, sum, unsplit); hi-lo > gevalAmbiguityTolerance*scaleRange {
		return nil, lpAmbiguous
	}
	return dist, lpUsed
}

// unsplitMass is probability mass that lands on some score in [lo, hi], not known which.
type unsplitMass struct{ mass, lo, hi float64 }

// meanBounds is the lowest and highest weighted mean that the known mass and sum give
// with any part of each unsplit mass on any score of its range: for the lowest, the
// pieces are added at their lo, lowest first, while they pull the mean down (for the
// highest, at their hi, highest first, while they pull it up).
func meanBounds(known, sum float64, unsplit []unsplitMass) (lo, hi float64) {
	extreme := func(value func(unsplitMass) float64, dir float64) float64 {
		ps := slices.Clone(unsplit)
		slices.SortStableFunc(ps, func(a, b unsplitMass) int { return cmp.Compare(dir*value(b), dir*value(a)) })
		m, s := known, sum
		for _, p := range ps {
			if dir*value(p) <= dir*s/m {
				break
			}
			m, s = m+p.mass, s+p.mass*value(p)
		}
		return s / m
	}
	return extreme(func(p unsplitMass) float64 { return p.lo }, -1), extreme(func(p unsplitMass) float64 { return p.hi }, 1)
}
