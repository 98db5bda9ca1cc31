package checks

import (
	"fmt"
	"strings"
	"unicode"
)

// Helpers of the transcript checks: word tokens, shingle overlap and turn lists.

// maxTranscriptTurns bounds the turns a transcript check compares pairwise, so that a
// very long conversation costs at most maxTranscriptTurns² comparisons; the checks look
// at the last ones.
const maxTranscriptTurns = 200

// lastTurns returns at most the last maxTranscriptTurns turns and the index of the first
// one returned in turns.
func lastTurns(turns []Turn) ([]Turn, int) {
	if len(turns) <= maxTranscriptTurns {
		return turns, 0
	}
	off := len(turns) - maxTranscriptTurns
	return turns[off:], off
}

// words splits s into lowercase words of letters and digits; everything else separates
// words.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// normalized is s as lowercase words joined by single spaces: case, punctuation and
// spacing do not tell two texts apart.
func normalized(s string) string { return strings.Join(words(s), " ") }

// shingleSize is the number of consecutive words in a shingle.
const shingleSize = 3

// shingles returns the set of shingleSize-word sequences of ws; a text shorter than a
// shingle is one shingle of all its words.
func shingles(ws []string) map[string]struct{} {
	set := make(map[string]struct{})
	if len(ws) < shingleSize {
		if len(ws) > 0 {
			set[strings.Join(ws, " ")] = struct{}{}
		}
		return set
	}
	for i := 0; i+shingleSize <= len(ws); i++ {
		set[strings.Join(ws[i:i+shingleSize], " ")] = struct{}{}
	}
	return set
}

// jaccard is |a ∩ b| / |a ∪ b|, 0 for two empty sets.
func jaccard(a, b map[string]struct{}) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 0
	}
	inter := 0
	for k := range a {
		if _, ok := b[k]; ok {
			inter++
		}
	}
	return float64(inter) / float64(len(a)+len(b)-inter)
}

// containsPhrase reports whether the normalized text norm holds the normalized phrase
// as whole words.
func containsPhrase(norm, phrase string) bool {
	return strings.Contains(" "+norm+" ", " "+phrase+" ")
}

// anyPhrase returns the first of phrases (normalized) that norm holds, or "".
func anyPhrase(norm string, phrases []string) string {
	for _, p := range phrases {
		if containsPhrase(norm, p) {
			return p
		}
	}
	return ""
}

// turnList writes 1-based turn numbers as "turn 3" or "turns 2, 4 and 5".
func turnList(ns []int) string {
	if len(ns) == 1 {
		return fmt.Sprintf("turn %d", ns[0])
	}
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprint(n)
	}
	return "turns " + strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}
