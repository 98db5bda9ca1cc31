package checks

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// NameTruncated is the name of the check that fails a response that was cut off.
const NameTruncated = "truncated"

// isFunctionWord reports English words that end no complete sentence; a response that
// stops on one was cut.
func isFunctionWord(w string) bool {
	switch w {
	case "the", "a", "an", "and", "or", "but", "of", "to", "in", "for", "with", "that", "which",
		"is", "are", "was", "were", "be", "because", "from", "by", "on", "at", "as", "if", "your",
		"my", "their", "its", "our", "will", "can", "should", "would", "could", "than", "then",
		"when", "while", "where", "who", "whose", "into", "such", "like", "including", "also",
		"not", "has", "have", "this", "these", "those", "between", "about":
		return true
	}
	return false
}

// checkTruncation fails a response that was cut off: an unclosed code fence, JSON that
// opens more brackets than it closes, or a last line that stops mid-sentence. Endings
// that are complete without a full stop — a closing fence, a closing bracket or quote,
// emoji, a table row, a URL, a list item, a short one-line answer ("Paris"), a sign-off —
// pass, the uncertain ones with lower confidence.
func checkTruncation(s string) Result {
	t := strings.TrimRightFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) })
	t = strings.TrimLeft(t, "\r\n")
	if strings.TrimSpace(t) == "" {
		return Result{Value: 1, Label: "complete", Confidence: 1, Explanation: "The response is empty; nothing was cut off (see the empty check)."}
	}
	truncated := func(conf float64, why string) Result {
		return Result{Value: 0, Label: "truncated", Confidence: conf, Explanation: why}
	}
	complete := func(conf float64, why string) Result {
		return Result{Value: 1, Label: "complete", Confidence: conf, Explanation: why}
	}
	open, lastCloses := fenceState(t)
	if open {
		return truncated(1, "The response ends inside an unclosed code fence.")
	}
	if lastCloses {
		return complete(1, "The response ends with a closed code block.")
	}
	if lead := strings.TrimSpace(t); lead[0] == '{' || lead[0] == '[' {
		if depth, inString := bracketDepth(t); depth > 0 || inString {
			return truncated(1, "The response looks like JSON but leaves brackets or a string unclosed.")
		}
	}
	lastRaw := t
	if i := strings.LastIndexByte(t, '\n'); i >= 0 {
		lastRaw = t[i+1:]
	}
	last := strings.TrimSpace(lastRaw)
	multiLine := len(lastRaw) < len(t)
	if multiLine && isBareListMarker(last) {
		return truncated(0.9, "The response ends with an empty list item.")
	}
	if strings.HasSuffix(last, "`") && strings.Count(last, "`")%2 == 0 {
		return complete(0.9, "The response ends with closed inline code.")
	}
	body := strings.TrimRight(last, "*_~`")
	if body == "" {
		body = last
	}
	r, size := utf8.DecodeLastRuneInString(body)
	switch {
	case strings.HasSuffix(body, "...") || r == '…':
		return complete(0.7, "The response trails off with an ellipsis.")
	case strings.ContainsRune(".!?。！？｡؟।॥", r):
		return complete(1, "The response ends with terminal punctuation.")
	case r == '"' || r == '\'':
		if size < len(body) && body[len(body)-size-1] == ' ' {
			return truncated(0.9, "The response ends on an opening quote.")
		}
		return complete(0.9, "The response ends with a closing quote.")
	case strings.ContainsRune(")]}”’»」』）】》〉>`", r):
		return complete(0.9, "The response ends with a closing bracket or quote.")
	case r == '|':
		if strings.HasPrefix(last, "|") {
			return complete(0.9, "The response ends with a table row.")
		}
		return truncated(0.8, "The response ends on a separator.")
	case r == ':':
		return truncated(0.8, "The response ends with a colon, before what was announced.")
	case r == ';':
		return complete(0.6, "The response ends with a semicolon, as code statements do.")
	case strings.ContainsRune(",–—([{、，", r):
		return truncated(1, "The response ends mid-sentence on a connecting punctuation mark.")
	case strings.ContainsRune("-+&=/\\", r) && size < len(body) && body[len(body)-size-1] == ' ':
		return truncated(1, "The response ends on a dangling operator or dash.")
	case unicode.IsSymbol(r):
		return complete(0.9, "The response ends with an emoji or symbol.")
	}
	// The last line ends on a letter, digit or other character without a sentence end.
	lastWord := last
	if i := strings.LastIndexFunc(last, unicode.IsSpace); i >= 0 {
		lastWord = last[i+1:]
	}
	lw := strings.ToLower(strings.TrimRight(lastWord, "*_~`"))
	switch {
	case strings.Count(last, "(") > strings.Count(last, ")"):
		return truncated(0.8, "The response stops inside an unclosed parenthesis.")
	case isFunctionWord(lw) && strings.ContainsRune(last, ' '):
		return truncated(1, "The response stops mid-sentence on a function word.")
	case strings.HasPrefix(lw, "http://") || strings.HasPrefix(lw, "https://") || strings.HasPrefix(lw, "www."):
		return complete(0.8, "The response ends with a link.")
	case isListItem(last):
		return complete(0.7, "The response ends with a list item, which often has no final punctuation.")
	case strings.HasPrefix(last, "#"):
		return truncated(0.7, "The response ends with a heading that has no content.")
	case strings.HasPrefix(last, "|"):
		return complete(0.7, "The response ends with a table row.")
	case !multiLine && countWordsCJK(t, 13) <= 12 && utf8.RuneCountInString(t) <= 60:
		return complete(0.6, "The response is a short answer without final punctuation.")
	case multiLine && countWords(last, 4) <= 3 && prevLineEnds(t):
		return complete(0.6, "The response ends with a short closing line (a sign-off or label).")
	case strings.HasPrefix(lastRaw, "  ") || strings.HasPrefix(lastRaw, "\t"):
		return complete(0.5, "The last line looks like code; a missing full stop says little.")
	}
	return truncated(0.9, "The response ends mid-sentence without terminal punctuation.")
}

// fenceState scans Markdown code fences (``` or ~~~ at the start of a line, indented or
// not; a closing fence uses the same character, at least as many, and no info
// string). It reports whether a fence is still open at the end and whether the last line
// closes one.
func fenceState(s string) (open, lastCloses bool) {
	var fch byte
	flen := 0
	for len(s) > 0 {
		line := s
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		lastCloses = false
		// Any indentation: models nest fences inside list items.
		l := strings.TrimLeft(line, " \t")
		if len(l) < 3 || (l[0] != '`' && l[0] != '~') {
			continue
		}
		c := l[0]
		n := 0
		for n < len(l) && l[n] == c {
			n++
		}
		if n < 3 {
			continue
		}
		switch {
		case !open:
			open, fch, flen = true, c, n
		case c == fch && n >= flen && strings.TrimSpace(l[n:]) == "":
			open, lastCloses = false, true
		}
	}
	return open, lastCloses
}

// bracketDepth returns how many JSON brackets remain open at the end of s and whether a
// string is left open, ignoring brackets inside strings.
func bracketDepth(s string) (depth int, inString bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth < 0 {
				return depth, false // not JSON after all
			}
		}
	}
	return depth, inString
}

// isListItem reports a Markdown list item: "- x", "* x", "+ x", "• x", "1. x", "1) x".
func isListItem(line string) bool {
	if line == "" {
		return false
	}
	if strings.HasPrefix(line, "- ") || strings.HasPrefix(line, "* ") || strings.HasPrefix(line, "+ ") || strings.HasPrefix(line, "• ") {
		return true
	}
	i := 0
	for i < len(line) && i < 4 && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	return i > 0 && i+1 < len(line) && (line[i] == '.' || line[i] == ')') && line[i+1] == ' '
}

// isBareListMarker reports a list marker with nothing after it ("-", "3.", "•").
func isBareListMarker(line string) bool {
	switch line {
	case "-", "*", "+", "•":
		return true
	}
	i := 0
	for i < len(line) && i < 4 && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	return i > 0 && i+1 == len(line) && (line[i] == '.' || line[i] == ')')
}

// prevLineEnds reports whether the non-empty line before the last one ends a sentence or
// a salutation ("Best regards,"), which makes a short last line a sign-off, not a cut.
func prevLineEnds(t string) bool {
	i := strings.LastIndexByte(t, '\n')
	if i < 0 {
		return false
	}
	prev := strings.TrimRightFunc(t[:i], unicode.IsSpace)
	r, _ := utf8.DecodeLastRuneInString(prev)
	return r != utf8.RuneError && strings.ContainsRune(".!?,:。！？)`", r) || unicode.IsSymbol(r)
}
