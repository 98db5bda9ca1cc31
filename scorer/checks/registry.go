// Package checks holds the built-in CPU checks of raterd's heuristic judge: cheap,
// model-free verdicts on one response (empty, refusal, truncated, repetition, pii,
// json), on the turns of one conversation (turn_repetition, unresolved, frustration) and
// on one agent run (tool_calls, grounded_answer). Each check is a pure function of its input in a file of its own; the registry
// below is the one place that lists them, with the record fields each reads. The scorer's
// HeuristicJudge adapts a Set to its Judge interface.
//
// Adding a check: write its file (a Name constant and a function returning a Result),
// then add one row to registry.
package checks

import (
	"slices"

	"raterd/scorer/redact"
)

// Record fields a check may read. They are the names the scorer uses for evaluator
// fields (scorer.FieldPrompt, scorer.FieldResponse).
const (
	// FieldPrompt is the prompt, or the chat messages rendered as text.
	FieldPrompt = "prompt"
	// FieldResponse is the response under evaluation.
	FieldResponse = "response"
	// FieldTranscript is the turns of a transcript record (Input.Turns).
	FieldTranscript = "transcript"
)

// Scopes a check judges: the names of the scorer's evaluator scopes (record.Scope*).
const (
	// ScopeRecord: one request/response.
	ScopeRecord = "record"
	// ScopeConversation: the turns of one conversation.
	ScopeConversation = "conversation"
	// ScopeTrace: the model calls and tool calls of one agent run.
	ScopeTrace = "trace"
)

// ToolCall is one tool call of a turn, with its result when known.
type ToolCall struct {
	Name      string
	Arguments string
	Result    string
}

// Turn is one turn of a transcript: what the user asked, the tool calls made while
// answering, and the assistant's answer.
type Turn struct {
	User      string
	Assistant string
	ToolCalls []ToolCall
}

// Input is what a check reads of one record.
type Input struct {
	// Response is the response under evaluation.
	Response string
	// Prompt is the prompt text; it is meaningful only when HasPrompt is set.
	Prompt string
	// HasPrompt reports whether the caller may read the prompt (the evaluator declares
	// it, so it is in the cache key). A check that uses the prompt and does not get it
	// falls back as its documentation says (json then always expects JSON).
	HasPrompt bool
	// Turns are a transcript record's turns, in order; set only for the checks that read
	// FieldTranscript.
	Turns []Turn
}

// Result is the verdict of one check on one response.
type Result struct {
	// Value is the score in [0,1]: 1 passes, 0 fails, in between is graded.
	Value float64
	// Label names the outcome ("empty", "refusal", "valid_json", …).
	Label string
	// Confidence in [0,1] says how sure the check is of Label.
	Confidence float64
	// Explanation says why, in one or two sentences; it never repeats personal data.
	Explanation string
}

// Check is one row of the registry: a check's name, the record fields it reads, and the
// function that runs it.
type Check struct {
	// Name is what an evaluator's check setting names.
	Name string
	// Fields are the record fields the check reads (FieldPrompt, FieldResponse,
	// FieldTranscript). Only these may reach a cache key, so a check must never look at
	// anything else.
	Fields []string
	// Scope is the scope of the records the check judges (ScopeRecord,
	// ScopeConversation, ScopeTrace); only evaluators of that scope may run it.
	Scope string
	// run runs the check with the compiled state of s.
	run func(s *Set, in Input) Result
	// set is the Set whose compiled state run uses (see Set.Lookup).
	set *Set
}

// registry is the ordered table of the built-in checks, sorted by name. json needs the
// prompt to know whether JSON was asked for; every other check looks at the response
// alone, so that a repeated response hits the cache whatever prompt produced it.
//
// The transcript checks read the turns (and grounded_answer the final answer too); each
// judges records of one scope only.
func registry() []Check {
	response := []string{FieldResponse}
	transcript := []string{FieldTranscript}
	return []Check{
		{Name: NameEmpty, Fields: response, Scope: ScopeRecord, run: func(_ *Set, in Input) Result { return checkEmptyResponse(in.Response) }},
		{Name: NameFrustration, Fields: transcript, Scope: ScopeConversation, run: func(_ *Set, in Input) Result { return checkFrustration(in.Turns) }},
		{Name: NameGroundedAnswer, Fields: []string{FieldResponse, FieldTranscript}, Scope: ScopeTrace, run: func(_ *Set, in Input) Result { return checkGroundedAnswer(in.Response, in.Turns) }},
		{Name: NameJSON, Fields: []string{FieldPrompt, FieldResponse}, Scope: ScopeRecord, run: func(s *Set, in Input) Result { return s.json.checkJSON(in) }},
		{Name: NamePII, Fields: response, Scope: ScopeRecord, run: func(s *Set, in Input) Result { return checkPIIResponse(s.pii, in.Response) }},
		{Name: NameRefusal, Fields: response, Scope: ScopeRecord, run: func(s *Set, in Input) Result { return s.refusal.checkRefusal(in.Response) }},
		{Name: NameRepetition, Fields: response, Scope: ScopeRecord, run: func(s *Set, in Input) Result { return s.repetition.checkRepetition(in.Response) }},
		{Name: NameToolCalls, Fields: transcript, Scope: ScopeTrace, run: func(_ *Set, in Input) Result { return checkToolCalls(in.Turns) }},
		{Name: NameTruncated, Fields: response, Scope: ScopeRecord, run: func(_ *Set, in Input) Result { return checkTruncation(in.Response) }},
		{Name: NameTurnRepetition, Fields: transcript, Scope: ScopeConversation, run: func(_ *Set, in Input) Result { return checkTurnRepetition(in.Turns) }},
		{Name: NameUnresolved, Fields: transcript, Scope: ScopeConversation, run: func(_ *Set, in Input) Result { return checkUnresolved(in.Turns) }},
	}
}

// Names returns the names of the built-in checks, sorted. It returns a fresh slice on
// every call because callers may keep and modify it.
func Names() []string {
	rows := registry()
	names := make([]string, len(rows))
	for i, c := range rows {
		names[i] = c.Name
	}
	slices.Sort(names)
	return names
}

// Fields returns the record fields the check called name reads, in a fresh slice, or nil
// when there is no such check.
func Fields(name string) []string {
	for _, c := range registry() {
		if c.Name == name {
			return slices.Clone(c.Fields)
		}
	}
	return nil
}

// Scope returns the scope of the records the check called name judges (ScopeRecord,
// ScopeConversation or ScopeTrace), or "" when there is no such check.
func Scope(name string) string {
	for _, c := range registry() {
		if c.Name == name {
			return c.Scope
		}
	}
	return ""
}

// Set is the built-in checks with their compiled state: refusal matchers, JSON-request
// patterns, and scratch buffers for the repetition check. Build it once with New and
// reuse it; it is safe for concurrent use (the patterns are read-only after New and the
// scratch buffers come from a pool).
type Set struct {
	checks     []Check
	refusal    *refusalMatcher
	json       *jsonDetector
	repetition *repetitionChecker
	pii        *redact.Redactor
}

// New compiles the check patterns once and returns the Set.
func New() *Set {
	s := &Set{
		refusal:    newRefusalMatcher(),
		json:       newJSONDetector(),
		repetition: newRepetitionChecker(),
		pii:        redact.All(),
	}
	s.checks = registry()
	for i := range s.checks {
		s.checks[i].set = s
	}
	return s
}

// Lookup returns the check called name, bound to s, and whether there is one. The check
// is shared by every caller: read it, run it, never modify it.
func (s *Set) Lookup(name string) (*Check, bool) {
	for i := range s.checks {
		if s.checks[i].Name == name {
			return &s.checks[i], true
		}
	}
	return nil, false
}

// Reads reports whether the check reads field.
func (c *Check) Reads(field string) bool { return slices.Contains(c.Fields, field) }

// Run runs the check on in.
func (c *Check) Run(in Input) Result { return c.run(c.set, in) }
