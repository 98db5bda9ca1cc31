// Package format renders judge prompts and parses judge answers in the text-to-text
// formats judge models are trained on: raterd's FLAMe-style unified format, Prometheus 2
// and Atla Selene Mini. A format is data — a file under formats/ holding the templates
// and the output grammar of each task type — not a code path per judge.
//
// CONTRACT STUB: the helper that owns this package replaces this file; the exported
// names and signatures below are what the rest of raterd calls.
package format

import (
	"errors"
)

// ErrUnparseable marks a judge answer that does not follow the declared output grammar.
var ErrUnparseable = errors.New("unparseable judge answer")

// Task types (the same strings as scorer.Task*).
const (
	TaskPointwise      = "pointwise"
	TaskClassification = "classification"
	TaskPairwise       = "pairwise"
)

// Input is one record field the judge reads.
type Input struct {
	Field string // prompt, messages, response, reference, candidates, metadata.<key>
	Text  string
}

// Spec is everything about one task that a format needs.
type Spec struct {
	Task     string
	Criteria string
	Min, Max int            // pointwise scale
	Levels   map[int]string // pointwise level descriptions, may be empty
	Labels   []string       // classification labels
	Inputs   []Input
	// Swap, for pairwise, presents the candidate as A and the response as B.
	Swap bool
}

// Prompt is the chat request for one task.
type Prompt struct {
	System string // may be empty: the format has no system message
	User   string
}

// Parsed is a judge answer read through the output grammar.
type Parsed struct {
	Result      string // as declared: "4", "A"/"B", or the canonical label
	ResultStart int    // byte offset in the answer where the result is written
	Explanation string
}

// Format is one prompt and output format.
type Format struct{ name string }

// Lookup returns a built-in format by name.
func Lookup(name string) (*Format, error) { return nil, errors.New("stub") }

// Names lists the built-in formats.
func Names() []string { return []string{"flame", "prometheus2", "selene"} }

// Name is the format's name.
func (f *Format) Name() string { return f.name }

// Fingerprint is a hash of the format's data file.
func (f *Format) Fingerprint() string { return "" }

// Render builds the prompt.
func (f *Format) Render(s Spec) (Prompt, error) { return Prompt{}, errors.New("stub") }

// Parse reads an answer.
func (f *Format) Parse(s Spec, answer string) (Parsed, error) { return Parsed{}, ErrUnparseable }

// Reminder is the follow-up user message asking for the format again.
func (f *Format) Reminder(s Spec, parseErr error) string { return "" }

// Choices lists every valid Result for the spec.
func Choices(s Spec) []string { return nil }
