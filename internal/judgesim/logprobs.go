package judgesim

import (
	"math"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Logprobs in the OpenAI chat-completions shape (choices[].logprobs.content).
type (
	topLogprob struct {
		Token   string  `json:"token"`
		Logprob float64 `json:"logprob"`
		Bytes   []int   `json:"bytes"`
	}
	tokenLogprob struct {
		Token       string       `json:"token"`
		Logprob     float64      `json:"logprob"`
		Bytes       []int        `json:"bytes"`
		TopLogprobs []topLogprob `json:"top_logprobs"`
	}
)

// maxTopLogprobs is the most alternatives a request may ask for (OpenAI's limit).
const maxTopLogprobs = 20

// minLogprob stands for a probability too small to write (vLLM writes -9999 too).
const minLogprob = -9999

// decoys are alternative tokens of small probability; none is a number or A/B, and any
// equal to a valid result is skipped.
var decoys = []string{
	" the", " a", ".", ",", "\n", " and", " is", " of", " to", " The", " I", " it", " in",
	":", " response", " -", " (", "**", " This", " score", " not", " be", " on", " with",
	" as", " for", " that", " an", " was", " are",
}

// tokenize splits text like a BPE tokenizer would, roughly: runs of letters and digits,
// single other characters, runs of newlines, with spaces attached to the following
// token (" 4"). The tokens concatenate to text.
func tokenize(text string) []string {
	var out []string
	for i := 0; i < len(text); {
		if text[i] == '\n' {
			j := i
			for j < len(text) && text[j] == '\n' {
				j++
			}
			out = append(out, text[i:j])
			i = j
			continue
		}
		j := i
		for j < len(text) {
			r, n := utf8.DecodeRuneInString(text[j:])
			if r == '\n' || !unicode.IsSpace(r) {
				break
			}
			j += n
		}
		if j == len(text) || text[j] == '\n' {
			out = append(out, text[i:j])
			i = j
			continue
		}
		r, n := utf8.DecodeRuneInString(text[j:])
		j += n
		if isWord(r) {
			for j < len(text) {
				r, n := utf8.DecodeRuneInString(text[j:])
				if !isWord(r) {
					break
				}
				j += n
			}
		}
		out = append(out, text[i:j])
		i = j
	}
	return out
}

func isWord(r rune) bool { return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r)) }

// logprobs returns the answer's tokens with log-probabilities and k alternatives each.
// The result (when the answer has one inside the text) is one token, with the spaces
// before it, and its alternatives spread probability over the neighbouring valid
// results; other tokens are near-certain.
func logprobs(a answer, content [32]byte, k int) []tokenLogprob {
	var out []tokenLogprob
	plain := func(text string) {
		for _, tok := range tokenize(text) {
			i := len(out)
			h := subHash(content, "token", i)
			lp := -(1e-4 + 0.02*unit(h[:8]))
			out = append(out, tokenLogprob{Token: tok, Logprob: lp, Bytes: byteList(tok),
				TopLogprobs: alternatives(tok, lp, nil, k)})
		}
	}
	if a.resStart < 0 || a.resEnd > len(a.text) {
		plain(a.text)
		return out
	}
	head := a.text[:a.resStart]
	ws := len(head) - len(strings.TrimRight(head, " \t"))
	plain(head[:len(head)-ws])
	lead := head[len(head)-ws:]
	tok := lead + a.text[a.resStart:a.resEnd]
	probs := resultProbs(a, content)
	alts := make([]candidate, 0, len(a.choices))
	for i, c := range a.choices {
		if i != a.chosen {
			alts = append(alts, candidate{lead + c, probs[i]})
		}
	}
	invalid := make(map[string]bool, len(a.choices))
	for _, c := range a.choices {
		invalid[c] = true
	}
	lp := logOf(probs[a.chosen])
	out = append(out, tokenLogprob{Token: tok, Logprob: lp, Bytes: byteList(tok),
		TopLogprobs: alternatives(tok, lp, alts, k, invalid)})
	plain(a.text[a.resEnd:])
	return out
}

// resultProbs spreads probability over the valid results: the chosen one gets 0.5–0.9,
// the others share 90% of the rest, weighted by 2^-distance in the list; the last 10%
// is left to tokens that are no valid result.
func resultProbs(a answer, content [32]byte) []float64 {
	h := subHash(content, "result", a.chosen)
	pc := 0.5 + 0.4*unit(h[:8])
	probs := make([]float64, len(a.choices))
	var wsum float64
	for i := range probs {
		if i != a.chosen {
			probs[i] = math.Pow(0.5, math.Abs(float64(i-a.chosen)))
			wsum += probs[i]
		}
	}
	for i := range probs {
		if i != a.chosen && wsum > 0 {
			probs[i] *= 0.9 * (1 - pc) / wsum
		}
	}
	probs[a.chosen] = pc
	return probs
}

type candidate struct {
	token string
	p     float64
}

// alternatives lists the k most likely tokens at a position: the token itself (of
// log-probability lp) first, then alts and decoys by probability. The decoys share half the mass left (halving),
// so the probabilities sum below 1. Decoys equal to the token, to an alternative or
// (after trimming spaces) to a key of invalid are skipped.
func alternatives(tok string, lp float64, alts []candidate, k int, invalid ...map[string]bool) []topLogprob {
	out := make([]topLogprob, 0, k)
	if k <= 0 {
		return out
	}
	rest := 1 - math.Exp(lp)
	for _, c := range alts {
		rest -= c.p
	}
	used := map[string]bool{tok: true}
	for _, c := range alts {
		used[c.token] = true
	}
	all := append([]candidate(nil), alts...)
	share := max(rest, 0) / 2
	for _, d := range decoys {
		if len(all) >= k+len(alts) {
			break
		}
		if used[d] || (len(invalid) > 0 && invalid[0][strings.TrimSpace(d)]) {
			continue
		}
		used[d] = true
		all = append(all, candidate{d, share})
		share /= 2
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].p > all[j].p })
	out = append(out, topLogprob{Token: tok, Logprob: lp, Bytes: byteList(tok)})
	for _, c := range all {
		if len(out) == k {
			break
		}
		out = append(out, topLogprob{Token: c.token, Logprob: logOf(c.p), Bytes: byteList(c.token)})
	}
	return out
}

func logOf(p float64) float64 {
	if !(p > 0) {
		return minLogprob
	}
	return max(math.Log(p), minLogprob)
}

func byteList(s string) []int {
	b := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		b[i] = int(s[i])
	}
	return b
}
