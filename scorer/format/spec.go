package format

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Limits on a spec, so that Choices and prompts stay small.
const (
	maxScaleSpan = 1000 // Max-Min of a pointwise scale
	maxLabel     = 64   // bytes in a classification label
)

// Field names of Input.Field.
const (
	fieldPrompt     = "prompt"
	fieldMessages   = "messages"
	fieldResponse   = "response"
	fieldReference  = "reference"
	fieldCandidates = "candidates"
	fieldSystem     = "system"     // the system prompt the judged model was given
	fieldContext    = "context"    // the retrieved documents, numbered
	fieldToolCalls  = "tool_calls" // the model's tool calls, one per line
	fieldTranscript = "transcript" // a conversation's or agent run's turns, numbered
	metadataPrefix  = "metadata."
)

// knownFields lists the input fields besides metadata.<key>, in the order error messages
// name them.
var knownFields = []string{fieldPrompt, fieldMessages, fieldResponse, fieldReference, fieldCandidates, fieldSystem, fieldContext, fieldToolCalls, fieldTranscript}

// view is the data every template sees; text in it is already escaped.
type view struct {
	Criteria string
	Min, Max int
	Levels   []level // the given levels, by score
	Labels   []string
	Inputs   []inputView
	Error    string // the parse error a reminder quotes
}

// level is one pointwise level description.
type level struct {
	Score int
	Text  string
}

// inputView is one input as templates see it. Field is prompt, messages, response,
// reference, system, context, tool_calls, transcript or metadata, and for pairwise response_a or response_b in place of response
// and candidates; Key is the metadata key.
type inputView struct {
	Field, Key, Text string
}

// Has reports whether any of the fields is among the inputs.
func (v *view) Has(fields ...string) bool {
	return slices.ContainsFunc(v.Inputs, func(in inputView) bool { return slices.Contains(fields, in.Field) })
}

// view validates s and builds the template data, escaping every interpolated text.
func (f *Format) view(s Spec) (*view, error) {
	if err := checkResultSpec(s); err != nil {
		return nil, err
	}
	if strings.TrimSpace(s.Criteria) == "" {
		return nil, errors.New("criteria: required")
	}
	v := &view{Criteria: f.text(strings.TrimSpace(s.Criteria)), Min: s.Min, Max: s.Max, Labels: s.Labels}
	for score, text := range s.Levels {
		v.Levels = append(v.Levels, level{Score: score, Text: f.text(strings.TrimSpace(text))})
	}
	slices.SortFunc(v.Levels, func(a, b level) int { return a.Score - b.Score })
	inputs, err := f.inputs(s)
	if err != nil {
		return nil, err
	}
	v.Inputs = inputs
	return v, nil
}

// inputs checks the spec's inputs and maps them to template inputs, in order. For
// pairwise, A takes the place of whichever of response and candidates comes first.
func (f *Format) inputs(s Spec) ([]inputView, error) {
	if len(s.Inputs) == 0 {
		return nil, errors.New("inputs: none given")
	}
	seen := make(map[string]bool)
	out := make([]inputView, 0, len(s.Inputs))
	for i, in := range s.Inputs {
		if seen[in.Field] {
			return nil, fmt.Errorf("inputs[%d]: field %q repeats", i, in.Field)
		}
		seen[in.Field] = true
		iv := inputView{Field: in.Field, Text: f.text(in.Text)}
		if !slices.Contains(knownFields, in.Field) {
			key, ok := strings.CutPrefix(in.Field, metadataPrefix)
			if !ok || key == "" {
				return nil, fmt.Errorf("inputs[%d]: unknown field %q (one of %s, metadata.<key>)", i, in.Field, strings.Join(knownFields, ", "))
			}
			iv.Field, iv.Key = "metadata", safeKey(key)
		}
		out = append(out, iv)
	}
	if s.Task != TaskPairwise {
		if seen[fieldCandidates] {
			return nil, errors.New("inputs: only pairwise tasks read candidates")
		}
		if !seen[fieldPrompt] && !seen[fieldMessages] && !seen[fieldResponse] && !seen[fieldTranscript] {
			return nil, errors.New("inputs: need prompt, messages, response or transcript")
		}
		return out, nil
	}
	if !seen[fieldResponse] || !seen[fieldCandidates] {
		return nil, errors.New("inputs: a pairwise task needs response and candidates")
	}
	r := slices.IndexFunc(out, func(in inputView) bool { return in.Field == fieldResponse })
	c := slices.IndexFunc(out, func(in inputView) bool { return in.Field == fieldCandidates })
	a, b := out[r].Text, out[c].Text // unswapped, the response is A
	if s.Swap {
		a, b = b, a
	}
	// A takes the place of whichever of the two was listed first.
	first, second := min(r, c), max(r, c)
	out[first] = inputView{Field: "response_a", Text: a}
	out[second] = inputView{Field: "response_b", Text: b}
	return out, nil
}

// text prepares judged or configured text for a template: valid UTF-8, escaped.
func (f *Format) text(s string) string {
	return f.escape.Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

// checkResultSpec checks what Parse and Choices need: the task, and its scale or labels.
func checkResultSpec(s Spec) error {
	switch s.Task {
	case TaskPointwise:
		if span := s.Max - s.Min; s.Min >= s.Max || span > maxScaleSpan || span < 0 { // < 0: overflow
			return fmt.Errorf("scale: want min < max at most %d apart, got %d..%d", maxScaleSpan, s.Min, s.Max)
		}
		for score, text := range s.Levels {
			if score < s.Min || score > s.Max {
				return fmt.Errorf("levels.%d: not on the scale %d..%d", score, s.Min, s.Max)
			}
			if strings.TrimSpace(text) == "" {
				return fmt.Errorf("levels.%d: empty description", score)
			}
		}
	case TaskClassification:
		if len(s.Labels) < 2 {
			return fmt.Errorf("labels: want at least two, got %d", len(s.Labels))
		}
		for i, l := range s.Labels {
			if !validLabel(l) {
				return fmt.Errorf("labels[%d]: %q must be 1–%d ASCII letters, digits, '_' or '-'", i, oneLine(l, 40), maxLabel)
			}
			if slices.Contains(s.Labels[:i], l) {
				return fmt.Errorf("labels[%d]: %q repeats", i, l)
			}
		}
	case TaskPairwise:
	default:
		return fmt.Errorf("task: %q is not one of %s", oneLine(s.Task, 40), strings.Join(knownTasks, ", "))
	}
	return nil
}

// validLabel mirrors the evaluator's label rule; it keeps labels one token that no
// format's escaping touches.
func validLabel(l string) bool {
	if l == "" || len(l) > maxLabel {
		return false
	}
	for _, c := range []byte(l) {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// safeKey keeps a metadata key to letters, digits, '_', '-' and '.', so that it can name
// a section or block in any format.
func safeKey(k string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, strings.ToValidUTF8(k, "_"))
}
