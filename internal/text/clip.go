// Package text holds raterd's string clipping: cutting text to a byte budget without
// splitting a UTF-8 sequence, with or without a marker that shows the cut, and the
// one-line form used in error messages and excerpts. It imports nothing of raterd.
//
// Every function here cuts at a rune boundary: at the last byte index i <= the budget
// where s[i] is not a UTF-8 continuation byte (10xxxxxx). The result is therefore always
// a prefix of the input (plus the marker, where one is added), and valid UTF-8 whenever
// the input is.
package text

import (
	"strings"
	"unicode/utf8"
)

// Ellipsis is the marker raterd puts where it cut text: "…" (U+2026, 3 bytes).
const Ellipsis = "…"

// Clip returns s when len(s) <= n, else the longest prefix of s of at most n bytes that
// ends on a rune boundary ("" when n <= 0). Nothing marks the cut.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ClipMarked returns s when len(s) <= n, else Clip(s, n-len(marker)) followed by
// marker: the whole result, marker included, is at most n bytes. When n < len(marker)
// there is no room for the marker, and the result is Clip(s, n) with none.
func ClipMarked(s string, n int, marker string) string {
	if len(s) <= n {
		return s
	}
	if n < len(marker) {
		return Clip(s, n)
	}
	return Clip(s, n-len(marker)) + marker
}

// ClipMarkedAfter returns s when len(s) <= n, else Clip(s, n) followed by marker: the
// text kept is at most n bytes and the marker comes on top, so the result is at most
// n+len(marker) bytes.
func ClipMarkedAfter(s string, n int, marker string) string {
	if len(s) <= n {
		return s
	}
	return Clip(s, n) + marker
}

// OneLine returns s as valid UTF-8 on one line: each run of invalid bytes becomes one
// U+FFFD, and each run of white space (unicode.IsSpace) becomes a single space, with none
// at either end.
func OneLine(s string) string {
	return strings.Join(strings.Fields(strings.ToValidUTF8(s, "\uFFFD")), " ")
}
