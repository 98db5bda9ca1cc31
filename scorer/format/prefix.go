package format

import (
	"errors"
	"fmt"
	"strings"
)

// Prefix measures how much of one evaluator's requests a server's prefix cache can reuse
// from one record to the next. vLLM's automatic prefix caching and SGLang's radix cache
// keep the KV cache of prompts they have seen and reuse that of a new prompt's longest
// cached prefix (vLLM in whole blocks of 16 tokens), so every byte ahead of the first
// record-specific one is computed once per evaluator rather than once per record.
//
// Offsets are into the request as RequestText writes it: its messages in order, each as
// its role, a newline, its content and a newline, which stands in for the chat
// template's rendering (whose own tokens around the messages are the same for every
// record).
type Prefix struct {
	// Shared is the number of bytes the two requests have in common from their first
	// byte.
	Shared int
	// Total is the length of the first request in bytes.
	Total int
	// FieldStart is where the first request's first record field begins: the most that
	// two records whose fields differ from their first byte can share.
	FieldStart int
	// Trailing is how many bytes of the first request come from the format, not the
	// record, after FieldStart: the framing between the fields, and whatever stable text
	// (criteria, levels, output format) the format keeps after them.
	Trailing int
}

// SharedTokens estimates Shared in tokens (4 bytes a token).
func (p Prefix) SharedTokens() int { return p.Shared / bytesPerToken }

// TotalTokens estimates Total in tokens (4 bytes a token).
func (p Prefix) TotalTokens() int { return p.Total / bytesPerToken }

// bytesPerToken is the rough size of a token of English text for the estimates.
const bytesPerToken = 4

// RequestText is the text of the chat messages a prompt sends in mode (SystemNative or
// SystemFold), as Prefix measures it: each message's role, a newline, its content and a
// newline, in order.
func RequestText(p Prompt, mode string) string {
	var b strings.Builder
	for _, m := range p.Messages(mode) {
		b.WriteString(m.Role)
		b.WriteByte('\n')
		b.WriteString(m.Content)
		b.WriteByte('\n')
	}
	return b.String()
}

// StablePrefix renders a and b, one evaluator's specs for two different records (the
// same task, criteria, scale, levels, labels and input fields; other texts), as
// requests in mode (SystemNative or SystemFold, the evaluator's system setting), and
// measures the prefix they share and where the first record field starts. A format
// whose stable parts all come first shares exactly FieldStart bytes between two records
// whose fields differ from their first byte. It fails when Render fails for either spec,
// or when the specs are not of one evaluator.
func (f *Format) StablePrefix(a, b Spec, mode string) (Prefix, error) {
	if err := sameEvaluator(a, b); err != nil {
		return Prefix{}, fmt.Errorf("format %s: %w", f.name, err)
	}
	pa, err := f.Render(a)
	if err != nil {
		return Prefix{}, err
	}
	pb, err := f.Render(b)
	if err != nil {
		return Prefix{}, err
	}
	ta, tb := RequestText(pa, mode), RequestText(pb, mode)
	start, trailing, err := f.fieldStart(a, mode)
	if err != nil {
		return Prefix{}, err
	}
	return Prefix{Shared: commonPrefix(ta, tb), Total: len(ta), FieldStart: start, Trailing: trailing}, nil
}

// fieldStart renders s with a sentinel in place of every input text and returns the
// offset of the first sentinel in the request and the template bytes after it.
func (f *Format) fieldStart(s Spec, mode string) (start, trailing int, err error) {
	marked := s
	marked.Inputs = make([]Input, len(s.Inputs))
	sentinels := 0
	for i, in := range s.Inputs {
		// NUL and the field's index: in no template, untouched by every escape pair.
		marked.Inputs[i] = Input{Field: in.Field, Text: fmt.Sprintf("\x00%d\x00", i)}
		sentinels += len(marked.Inputs[i].Text)
	}
	p, err := f.Render(marked)
	if err != nil {
		return 0, 0, err
	}
	text := RequestText(p, mode)
	start = strings.IndexByte(text, 0)
	if start < 0 {
		return 0, 0, fmt.Errorf("format %s: no input field in the rendered request", f.name)
	}
	return start, len(text) - start - sentinels, nil
}

// sameEvaluator checks that two specs differ in their input texts only.
func sameEvaluator(a, b Spec) error {
	if a.Task != b.Task || a.Criteria != b.Criteria || a.Min != b.Min || a.Max != b.Max ||
		a.Swap != b.Swap || fmt.Sprint(a.Levels) != fmt.Sprint(b.Levels) || strings.Join(a.Labels, "\n") != strings.Join(b.Labels, "\n") {
		return errors.New("stable prefix: the specs are not of one evaluator (task, criteria, scale, levels, labels or swap differ)")
	}
	if len(a.Inputs) != len(b.Inputs) {
		return errors.New("stable prefix: the specs read different input fields")
	}
	for i := range a.Inputs {
		if a.Inputs[i].Field != b.Inputs[i].Field {
			return fmt.Errorf("stable prefix: inputs[%d]: field %q and %q", i, a.Inputs[i].Field, b.Inputs[i].Field)
		}
	}
	return nil
}

// commonPrefix is the length in bytes of the longest common prefix of a and b.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
