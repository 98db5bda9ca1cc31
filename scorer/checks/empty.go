package checks

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// NameEmpty is the name of the check that fails a response without content.
const NameEmpty = "empty"

// checkEmptyResponse fails a response that carries no content: nothing, whitespace,
// invisible format characters, punctuation, or only filler such as model special tokens
// ("</s>", "<|im_end|>"), serialisation artefacts ("null", "undefined", "NaN", "N/A") and
// hesitation sounds ("um", "hmm"). Words like "none" or "no" stay content: they are
// legitimate short answers.
func checkEmptyResponse(s string) Result {
	sawPunct, sawFiller := false, false
	for tok := range strings.FieldsSeq(s) {
		switch {
		case isSpecialToken(tok):
			sawFiller = true
		default:
			core, ok := tokenCore(tok)
			switch {
			case !ok:
				return Result{Value: 1, Label: "non_empty", Confidence: 1, Explanation: "The response has content."}
			case core == "":
				sawPunct = true
			case isFillerWord(core):
				sawFiller = true
			default:
				return Result{Value: 1, Label: "non_empty", Confidence: 1, Explanation: "The response has content."}
			}
		}
	}
	switch {
	case sawFiller:
		return Result{Value: 0, Label: "empty", Confidence: 0.8, Explanation: "The response holds only filler (special tokens, null/undefined or similar) and punctuation."}
	case sawPunct:
		return Result{Value: 0, Label: "empty", Confidence: 1, Explanation: "The response holds only punctuation or symbols without words."}
	case s == "":
		return Result{Value: 0, Label: "empty", Confidence: 1, Explanation: "The response is empty."}
	default:
		return Result{Value: 0, Label: "empty", Confidence: 1, Explanation: "The response is whitespace only."}
	}
}

// isSpecialToken reports tokenizer control tokens leaking into text: <s>, </s>, <eos>,
// <|endoftext|>, <|im_end|>, [PAD], [UNK] and the like.
func isSpecialToken(tok string) bool {
	if len(tok) < 3 || len(tok) > 32 {
		return false
	}
	open, close := tok[0], tok[len(tok)-1]
	if !(open == '<' && close == '>') && !(open == '[' && close == ']') {
		return false
	}
	inner := strings.Trim(tok[1:len(tok)-1], "|/")
	if inner == "" {
		return false
	}
	upper := open == '['
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		switch {
		case c >= 'a' && c <= 'z':
			if upper {
				return false // [note] is prose, [PAD] is a token
			}
		case c >= 'A' && c <= 'Z', c == '_':
		default:
			return false
		}
	}
	return true
}

// tokenCore strips punctuation, format and control characters from a whitespace-free
// token and lower-cases what remains. ok is false when the core is long enough that it
// cannot be filler, which lets the caller stop at the first real word.
func tokenCore(tok string) (core string, ok bool) {
	var buf [16]byte
	n := 0
	for _, r := range tok {
		if unicode.IsPunct(r) || (r < utf8.RuneSelf && unicode.IsSymbol(r)) || unicode.In(r, unicode.Cf, unicode.Cc) || r == utf8.RuneError {
			continue
		}
		if r >= utf8.RuneSelf || n == len(buf) {
			return "", false // non-ASCII letters, symbols and emoji are content
		}
		if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		buf[n] = byte(r)
		n++
	}
	return string(buf[:n]), true
}

func isFillerWord(w string) bool {
	switch w {
	case "null", "nil", "undefined", "nan", "na", "um", "umm", "uh", "uhm", "hmm", "hm", "er", "erm":
		return true
	}
	return false
}
