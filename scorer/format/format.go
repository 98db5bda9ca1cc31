// Package format renders judge prompts and parses judge answers in the text-to-text
// formats judge models are trained on: raterd's FLAMe-style unified format, Prometheus 2
// and Atla Selene Mini. A format is data — a file under formats/ holding the templates
// and the output grammar of each task type — not a code path per judge.
//
// The code here is generic: it validates a Spec, escapes the judged text with the
// format's replacement pairs, executes the format's templates, and reads answers with
// the format's anchored regexp (named groups "explanation" and "result") before checking
// the result against the task type.
package format

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
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
	// Field is prompt, messages, response, reference, candidates, system, context,
	// tool_calls, transcript or metadata.<key>.
	Field string
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

// How a prompt's system message meets the judge model's chat template.
const (
	// SystemNative sends the system message as a system turn.
	SystemNative = "native"
	// SystemFold puts the system message ahead of the user message, in the same user
	// turn, separated by a blank line: what prometheus-eval does for Prometheus 2, whose
	// base model's chat template (Mistral-7B-Instruct v0.2) refuses a system turn
	// ("Conversation roles must alternate user/assistant"). Gemma 2's template refuses
	// one too.
	SystemFold = "fold"
)

// Message is one chat message of a judge request.
type Message struct {
	Role    string // "system" or "user"
	Content string
}

// Messages returns the prompt as chat messages in mode (SystemNative or SystemFold): a
// system turn (when the prompt has a system message) and a user turn, or one user turn.
func (p Prompt) Messages(mode string) []Message {
	switch {
	case p.System == "":
		return []Message{{Role: "user", Content: p.User}}
	case mode == SystemFold:
		return []Message{{Role: "user", Content: p.System + "\n\n" + p.User}}
	}
	return []Message{{Role: "system", Content: p.System}, {Role: "user", Content: p.User}}
}

// Parsed is a judge answer read through the output grammar.
type Parsed struct {
	Result      string // as declared: "4", "A"/"B", or the canonical label
	ResultStart int    // byte offset in the answer where the result is written
	Explanation string
}

// Format is one prompt and output format. Formats are immutable and safe for
// concurrent use.
type Format struct {
	name        string
	fingerprint string
	compat      compatData // zero when the file has no compat section
	escape      *strings.Replacer
	tasks       map[string]*task
	system      string // SystemNative or SystemFold
	// guideFingerprint hashes the file's guides section; empty without one.
	guideFingerprint string
}

// Lookup returns a built-in format by name, or an error naming the valid ones.
func Lookup(name string) (*Format, error) {
	all, err := builtins()
	if err != nil {
		return nil, err
	}
	f, ok := all[name]
	if !ok {
		return nil, fmt.Errorf("unknown prompt format %q (valid: %s)", name, strings.Join(Names(), ", "))
	}
	return f, nil
}

// Names lists the built-in formats, sorted.
func Names() []string { return formatNames() }

// Name is the format's name.
func (f *Format) Name() string { return f.name }

// Fingerprint is a hash of the format's data file (16 hex digits of its SHA-256), so a
// rubric version changes whenever a template or grammar does.
func (f *Format) Fingerprint() string { return f.fingerprint }

// FingerprintFor is the fingerprint that a prompt reading the given input fields depends
// on: Fingerprint, or the earlier file's fingerprint named in the format's compat section
// when none of the fields is one that the earlier file did not know (its prompts for them
// are unchanged). Rubric versions hash it, so they change exactly when a template change
// can reach the judge.
func (f *Format) FingerprintFor(fields []string) string {
	if f.compat.Fingerprint == "" || slices.ContainsFunc(fields, func(fl string) bool { return slices.Contains(f.compat.Without, fl) }) {
		return f.fingerprint
	}
	return f.compat.Fingerprint
}

// SystemMode is how the format's system message meets the judge's chat template by
// default: SystemNative or SystemFold (its file's system key).
func (f *Format) SystemMode() string { return f.system }

// Tasks lists the task types the format supports, sorted.
func (f *Format) Tasks() []string { return slices.Sorted(maps.Keys(f.tasks)) }

// Render builds the prompt for s: judged text is escaped so that it can neither close
// its own block or section nor write a result marker. It fails for an invalid spec or a
// task the format does not support; retrying cannot help.
func (f *Format) Render(s Spec) (Prompt, error) {
	t, err := f.task(s.Task)
	if err != nil {
		return Prompt{}, err
	}
	v, err := f.view(s)
	if err != nil {
		return Prompt{}, fmt.Errorf("format %s: %w", f.name, err)
	}
	var p Prompt
	if t.hasSystem {
		if p.System, err = t.execute("system", v); err != nil {
			return Prompt{}, fmt.Errorf("format %s: %w", f.name, err)
		}
	}
	if p.User, err = t.execute("user", v); err != nil {
		return Prompt{}, fmt.Errorf("format %s: %w", f.name, err)
	}
	return p, nil
}

// Parse reads a judge answer for s. An answer that breaks the output grammar, or whose
// result is not one of Choices(s), yields an error wrapping ErrUnparseable that says why
// in at most a few hundred bytes of valid UTF-8. Other errors mean the spec is invalid
// or its task unsupported.
func (f *Format) Parse(s Spec, answer string) (Parsed, error) {
	t, err := f.task(s.Task)
	if err != nil {
		return Parsed{}, err
	}
	if err := checkResultSpec(s); err != nil {
		return Parsed{}, fmt.Errorf("format %s: %w", f.name, err)
	}
	return t.parse(s, answer)
}

// Reminder is the follow-up user message for a judge whose answer failed to parse: it
// says the answer did not follow the output format, quotes parseErr briefly (nil quotes
// nothing) and restates the exact output format. It is empty when Render would fail for
// s.
func (f *Format) Reminder(s Spec, parseErr error) string {
	t, err := f.task(s.Task)
	if err != nil || checkResultSpec(s) != nil {
		return ""
	}
	v := &view{Min: s.Min, Max: s.Max, Labels: s.Labels}
	if parseErr != nil {
		msg := strings.TrimPrefix(parseErr.Error(), ErrUnparseable.Error()+": ")
		// Not escaped: it quotes the judge's own answer, already in the conversation.
		v.Error = oneLine(msg, maxReminderError)
	}
	out, err := t.execute("reminder", v)
	if err != nil {
		return ""
	}
	return out
}

// Choices lists every valid Result for the spec, in order: the scale's integers, the
// labels, or "A" and "B". It is nil for an invalid spec.
func Choices(s Spec) []string {
	if checkResultSpec(s) != nil {
		return nil
	}
	switch s.Task {
	case TaskPointwise:
		out := make([]string, 0, s.Max-s.Min+1)
		for n := s.Min; n <= s.Max; n++ {
			out = append(out, fmt.Sprint(n))
		}
		return out
	case TaskClassification:
		return append([]string(nil), s.Labels...)
	default:
		return []string{"A", "B"}
	}
}

// task returns the templates and grammar of one task type.
func (f *Format) task(name string) (*task, error) {
	t, ok := f.tasks[name]
	if !ok {
		return nil, fmt.Errorf("format %s has no %q task (it supports %s)", f.name, name, strings.Join(f.Tasks(), ", "))
	}
	return t, nil
}
