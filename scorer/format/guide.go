package format

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A guide is a task's output grammar for constrained ("guided") decoding: the judge
// server samples only answers the grammar allows, so every answer parses. Each format
// file declares one per task, in its guides section:
//
//	answer := Before explanation Between result After
//	explanation := 1..N characters, none a line break or in Exclude
//	result := one of Choices(spec)
//
// Exclude keeps the explanation from writing the result marker (selene's "**Result:**",
// prometheus2's "[RESULT]"; flame's markers open a line, which the explanation cannot).
// After closes an answer that does not end with its result (lynx's JSON object).
// TestGuidedAnswersParse checks, for every format, task and several scales, that random
// answers the grammar allows parse to the result they end with.
type guideData struct {
	// Before is the literal text ahead of the explanation, e.g. "Reasoning: ".
	Before string `yaml:"before"`
	// Exclude lists characters the explanation may not hold, besides line breaks.
	Exclude string `yaml:"exclude"`
	// Between is the literal text between the explanation and the result, e.g.
	// "\nScore: ".
	Between string `yaml:"between"`
	// After is the literal text after the result, e.g. `"}` closing a JSON answer;
	// usually empty.
	After string `yaml:"after"`
}

// guidesKey is the format file's top-level key of the guides. It must come last: the
// format's fingerprint covers the file up to it, since guides shape the answer, not the
// prompt (an evaluator that uses one puts GuideFingerprint in its rubric version).
const guidesKey = "guides:"

// splitGuides returns the part of a format file that shapes prompts, and the guides
// section (empty when the file has none). Nothing but the guides may follow their key.
func splitGuides(data []byte) (prompt, guides []byte, err error) {
	at := guidesAt(data)
	if at < 0 {
		return data, nil, nil
	}
	rest := data[at+len(guidesKey):]
	for _, line := range bytes.Split(rest, []byte("\n")) {
		if len(line) > 0 && line[0] != ' ' && line[0] != '#' && line[0] != '\t' {
			return nil, nil, fmt.Errorf("%s must be the last top-level key of the file (found %q after it)", strings.TrimSuffix(guidesKey, ":"), bytes.TrimSpace(line))
		}
	}
	return data[:at], data[at:], nil
}

// guidesAt is the offset of the guides key at the start of a line, or -1.
func guidesAt(data []byte) int {
	if bytes.HasPrefix(data, []byte(guidesKey)) {
		return 0
	}
	if i := bytes.Index(data, []byte("\n"+guidesKey)); i >= 0 {
		return i + 1
	}
	return -1
}

// compileGuide checks one task's guide.
func compileGuide(g guideData) (*guideData, error) {
	if g.Between == "" {
		return nil, errors.New("between: required (the text between the explanation and the result)")
	}
	for _, s := range []struct{ key, text string }{{"before", g.Before}, {"exclude", g.Exclude}, {"between", g.Between}, {"after", g.After}} {
		if !utf8.ValidString(s.text) || strings.ContainsRune(s.text, 0) {
			return nil, fmt.Errorf("%s: not valid UTF-8 without NUL", s.key)
		}
	}
	if strings.ContainsAny(g.Exclude, "\n") {
		return nil, errors.New("exclude: line breaks are always excluded")
	}
	return &g, nil
}

// Guide is a task's output grammar for one spec, in the dialects judge servers take.
type Guide struct {
	// Regex is the grammar as a regular expression over the whole answer, in the common
	// subset of Python's re, xgrammar, Outlines and Go's RE2 (vLLM's
	// structured_outputs.regex, SGLang's regex).
	Regex string
	// GBNF is the grammar in llama.cpp's GBNF (its server's grammar field).
	GBNF string
}

// MaxGuidedExplanation bounds the explanation length a guide allows, in characters.
const MaxGuidedExplanation = 16384

// Guide returns the output grammar of s's task with an explanation of at most
// maxExplanation characters (1 to MaxGuidedExplanation). It fails for an invalid spec, a
// task the format does not support or has no guide for.
func (f *Format) Guide(s Spec, maxExplanation int) (Guide, error) {
	t, err := f.task(s.Task)
	if err != nil {
		return Guide{}, err
	}
	if t.guide == nil {
		return Guide{}, fmt.Errorf("format %s: task %s has no guide", f.name, s.Task)
	}
	if err := checkResultSpec(s); err != nil {
		return Guide{}, fmt.Errorf("format %s: %w", f.name, err)
	}
	if maxExplanation < 1 || maxExplanation > MaxGuidedExplanation {
		return Guide{}, fmt.Errorf("explanation length %d is not in 1..%d", maxExplanation, MaxGuidedExplanation)
	}
	g := t.guide
	choices := Choices(s)
	var re, gr strings.Builder
	// Regex.
	re.WriteString(regexp.QuoteMeta(g.Before))
	re.WriteString("[^")
	re.WriteString(regexClass(g.Exclude))
	fmt.Fprintf(&re, "]{1,%d}", maxExplanation)
	re.WriteString(quoteRegex(g.Between))
	re.WriteString("(")
	for i, c := range choices {
		if i > 0 {
			re.WriteString("|")
		}
		re.WriteString(regexp.QuoteMeta(c))
	}
	re.WriteString(")")
	re.WriteString(quoteRegex(g.After))
	// GBNF.
	gr.WriteString("root ::= ")
	if g.Before != "" {
		gr.WriteString(gbnfString(g.Before) + " ")
	}
	gr.WriteString("explanation " + gbnfString(g.Between) + " result")
	if g.After != "" {
		gr.WriteString(" " + gbnfString(g.After))
	}
	gr.WriteString("\n")
	fmt.Fprintf(&gr, "explanation ::= [^\\n%s]{1,%d}\n", gbnfClass(g.Exclude), maxExplanation)
	gr.WriteString("result ::= ")
	for i, c := range choices {
		if i > 0 {
			gr.WriteString(" | ")
		}
		gr.WriteString(gbnfString(c))
	}
	gr.WriteString("\n")
	return Guide{Regex: re.String(), GBNF: gr.String()}, nil
}

// GuideFingerprint identifies the format's guides (16 hex digits); empty when it has
// none. An evaluator that decodes with a guide puts it in its rubric version.
func (f *Format) GuideFingerprint() string { return f.guideFingerprint }

// guideFingerprintOf hashes the guides section of a format file.
func guideFingerprintOf(guides []byte) string {
	if len(guides) == 0 {
		return ""
	}
	sum := sha256.Sum256(guides)
	return hex.EncodeToString(sum[:])[:16]
}

// quoteRegex quotes literal text for Regex, writing a line break as \n (Python's re and
// RE2 both read it) so that the pattern stays on one line.
func quoteRegex(s string) string {
	return strings.ReplaceAll(regexp.QuoteMeta(s), "\n", `\n`)
}

// regexClass writes the line break and the characters of exclude for a negated
// character class.
func regexClass(exclude string) string {
	var b strings.Builder
	b.WriteString(`\n`)
	for _, r := range exclude {
		if strings.ContainsRune(`\]^-[`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// gbnfString quotes text as a GBNF string literal.
func gbnfString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				b.WriteString(`\x` + strconv.FormatInt(int64(r)+0x100, 16)[1:])
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// gbnfClass writes the characters of exclude for a GBNF negated class (after \n).
func gbnfClass(exclude string) string {
	var b strings.Builder
	for _, r := range exclude {
		switch {
		case strings.ContainsRune(`\]^-[`, r):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// guideTasks lists the tasks of a guides section that the format lacks, for an error.
func guideTasks(guides map[string]guideData, tasks map[string]*task) []string {
	var extra []string
	for name := range guides {
		if _, ok := tasks[name]; !ok {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	return extra
}
