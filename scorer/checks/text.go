package checks

import (
	"unicode"
)

// Helpers that more than one check uses: word counts and byte classes.

// countWords counts whitespace-separated words, stopping early at limit so that a check
// that only needs "more than N" does not scan 100 KB.
func countWords(s string, limit int) int {
	n := 0
	in := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			in = false
			continue
		}
		if !in {
			n++
			if n >= limit {
				return n
			}
			in = true
		}
	}
	return n
}

// countWordsCJK is countWords where each Han, Hiragana or Katakana character counts as a
// word, since those scripts do not separate words with spaces.
func countWordsCJK(s string, limit int) int {
	n := 0
	in := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			in = false
			continue
		case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana):
			in = false
			n++
		case !in:
			in = true
			n++
		default:
			continue
		}
		if n >= limit {
			return n
		}
	}
	return n
}

func isDigit(c byte) bool     { return c >= '0' && c <= '9' }
func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
