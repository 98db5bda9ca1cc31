package format

import (
	"fmt"
	"strconv"
	"strings"

	"raterd/internal/text"
)

// Bounds on answers and on the text of errors.
const (
	maxAnswer        = 1 << 20 // bytes of a judge answer Parse reads
	maxQuote         = 40      // bytes of answer text quoted in an error
	maxErrorMessage  = 300     // bytes of an unparseable error's reason
	maxReminderError = 200     // bytes of the error a reminder quotes
)

// parse reads answer through the task's grammar and checks the result against s.
func (t *task) parse(s Spec, answer string) (Parsed, error) {
	if strings.TrimSpace(answer) == "" {
		return Parsed{}, unparseable("empty answer")
	}
	if len(answer) > maxAnswer {
		return Parsed{}, unparseable("answer of %d bytes is over the %d-byte limit", len(answer), maxAnswer)
	}
	// Exactly one marker: an answer that echoes an injected result line before (or
	// after) its own is ambiguous, so it fails rather than risk reading the injection.
	markers := t.marker.FindAllStringIndex(answer, -1)
	switch {
	case len(markers) == 0:
		return Parsed{}, unparseable("no result: the answer must end with %s", t.quoted("result", s))
	case len(markers) > 1:
		return Parsed{}, unparseable("%d results: the answer must hold one, at its end: %s", len(markers), t.quoted("result", s))
	}
	m := t.answer.FindStringSubmatchIndex(answer)
	if m == nil {
		rest := answer[markers[0][1]:]
		if i := strings.IndexByte(rest, '\n'); i >= 0 && strings.TrimSpace(rest[i:]) != "" {
			return Parsed{}, unparseable("text after the result: %s", quote(strings.TrimSpace(rest[i:])))
		}
		return Parsed{}, unparseable("the answer does not follow the output format %s", t.quoted("output", s))
	}
	start, end := m[2*t.result], m[2*t.result+1]
	written := answer[start:end]
	if written == "" {
		return Parsed{}, unparseable("no value after the result marker: want %s", t.quoted("result", s))
	}
	result, err := checkResult(s, written)
	if err != nil {
		return Parsed{}, err
	}
	p := Parsed{Result: result, ResultStart: start}
	if m[2*t.expl] >= 0 {
		p.Explanation = strings.TrimSpace(answer[m[2*t.expl]:m[2*t.expl+1]])
	}
	return p, nil
}

// checkResult validates the written result for the task type and returns it as declared.
func checkResult(s Spec, written string) (string, error) {
	switch s.Task {
	case TaskPointwise:
		digits := strings.TrimPrefix(written, "-")
		if digits == "" || len(digits) > 18 || strings.Trim(digits, "0123456789") != "" {
			return "", unparseable("score %s is not an integer", quote(written))
		}
		n, _ := strconv.Atoi(written) // 18 digits always fit
		if canonical := strconv.Itoa(n); canonical != written {
			// "04" or "-0": the offset must point at the number as Choices spells it.
			return "", unparseable("score %s is not written as %s", quote(written), canonical)
		}
		if n < s.Min || n > s.Max {
			return "", unparseable("score %d is outside the scale %d..%d", n, s.Min, s.Max)
		}
		return written, nil
	case TaskClassification:
		// An exact match wins; otherwise a unique ASCII case-insensitive one, which keeps
		// the byte length, so ResultStart still spans the label.
		var found []string
		for _, l := range s.Labels {
			if l == written {
				return l, nil
			}
			if asciiEqualFold(l, written) {
				found = append(found, l)
			}
		}
		switch len(found) {
		case 1:
			return found[0], nil
		case 0:
			return "", unparseable("label %s is not one of %s", quote(written), strings.Join(s.Labels, ", "))
		default:
			return "", unparseable("label %s matches %s only up to case", quote(written), strings.Join(found, ", "))
		}
	default:
		if written != "A" && written != "B" {
			return "", unparseable("preference %s is not A or B", quote(written))
		}
		return written, nil
	}
}

// asciiEqualFold reports whether a and b are equal up to ASCII case. Unlike
// strings.EqualFold it never matches strings of different byte lengths (the Kelvin sign
// folds to 'k').
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// quoted renders the output format, or its result line, quoted on one line for an error.
func (t *task) quoted(name string, s Spec) string {
	text, err := t.execute(name, &view{Min: s.Min, Max: s.Max, Labels: s.Labels})
	if err != nil {
		return "(unknown)"
	}
	return strconv.Quote(oneLine(text, maxErrorMessage))
}

// unparseable returns an error wrapping ErrUnparseable with a bounded reason.
func unparseable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnparseable, oneLine(fmt.Sprintf(format, args...), maxErrorMessage))
}

// quote quotes the start of answer text for an error message.
func quote(s string) string { return strconv.Quote(oneLine(s, maxQuote)) }

// oneLine makes s valid UTF-8 on one line and cuts it to at most n bytes on a rune
// boundary, marking the cut.
func oneLine(s string, n int) string {
	return text.ClipMarked(text.OneLine(s), n, text.Ellipsis)
}
