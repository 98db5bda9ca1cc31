package checks

import (
	"strings"
	"testing"
)

// conv builds a conversation from alternating user and assistant texts.
func conv(texts ...string) []Turn {
	var out []Turn
	for i := 0; i < len(texts); i += 2 {
		t := Turn{User: texts[i]}
		if i+1 < len(texts) {
			t.Assistant = texts[i+1]
		}
		out = append(out, t)
	}
	return out
}

// transcriptCase is one table row of the transcript checks' tests.
type transcriptCase struct {
	name     string
	response string
	turns    []Turn
	label    string
	pass     bool     // value 1 (pass) or below (fail)
	explain  []string // substrings the explanation must hold
	absent   []string // substrings it must not hold (personal data is never quoted)
}

func runTranscriptCases(t *testing.T, check string, cases []transcriptCase) {
	t.Helper()
	c, ok := New().Lookup(check)
	if !ok {
		t.Fatalf("no check %s", check)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.Run(Input{Response: tc.response, Turns: tc.turns})
			if r.Label != tc.label || (r.Value == 1) != tc.pass {
				t.Errorf("got %q value %v (%s), want %q pass=%v", r.Label, r.Value, r.Explanation, tc.label, tc.pass)
			}
			if !(r.Value >= 0 && r.Value <= 1) || !(r.Confidence >= 0 && r.Confidence <= 1) || r.Explanation == "" {
				t.Errorf("incomplete result %+v", r)
			}
			for _, s := range tc.explain {
				if !strings.Contains(r.Explanation, s) {
					t.Errorf("explanation %q lacks %q", r.Explanation, s)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(r.Explanation, s) {
					t.Errorf("explanation %q quotes %q", r.Explanation, s)
				}
			}
		})
	}
}

func TestTurnRepetition(t *testing.T) {
	const answer = "To reset your password, open Settings, choose Security and click Reset password."
	runTranscriptCases(t, NameTurnRepetition, []transcriptCase{
		{name: "verbatim", turns: conv("How do I reset it?", answer, "It did not work.", answer),
			label: "repeated_answer", explain: []string{"turn 2 repeats turn 1", "100%"}},
		{name: "case and punctuation", turns: conv("q", answer, "q2", "x", "q3", strings.ToUpper(strings.ReplaceAll(answer, ",", ""))),
			label: "repeated_answer", explain: []string{"turn 3 repeats turn 1"}},
		{name: "near verbatim", turns: conv("q", answer, "q2", answer+" Then log in again."),
			label: "repeated_answer", explain: []string{"turn 2 repeats turn 1"}},
		{name: "different answers", turns: conv("q", answer, "q2", "Your order A-17 has shipped with DHL and should arrive tomorrow."),
			label: "no_repetition", pass: true},
		{name: "short answers repeat freely", turns: conv("thanks", "You're welcome!", "thanks again", "You're welcome!"),
			label: "no_repetition", pass: true},
		{name: "one turn", turns: conv("q", answer), label: "no_repetition", pass: true},
		{name: "no turns", label: "no_repetition", pass: true},
		{name: "same topic, other words", turns: conv("q", answer, "and the email?", "To change your email address, open Settings, choose Profile and edit the address field."),
			label: "no_repetition", pass: true},
	})
}

func TestUnresolved(t *testing.T) {
	runTranscriptCases(t, NameUnresolved, []transcriptCase{
		{name: "unanswered question", turns: []Turn{{User: "Where is my order?", Assistant: "It shipped."}, {User: "When will it arrive?"}},
			label: "unresolved", explain: []string{"not answered", "turn 2"}},
		{name: "contact support", turns: conv("My card was charged twice.", "I'm sorry, I can't help with billing. Please contact support."),
			label: "unresolved", explain: []string{"defers", "turn 1"}},
		{name: "don't know", turns: conv("q", "a", "Why is the export empty?", "I'm sorry, I don't know."),
			label: "unresolved", explain: []string{"turn 2"}},
		{name: "user says not solved", turns: conv("q", "Restart the router.", "It still doesn't work.", "Then try resetting it to factory settings."),
			label: "unresolved", explain: []string{"not solved", "turn 2"}},
		{name: "resolved", turns: conv("How do I reset my password?", "Open Settings, Security, Reset password.", "That worked, thanks!", "Glad it helped!"),
			label: "resolved", pass: true},
		{name: "long answer with a support pointer", turns: conv("How do I export my data?",
			"Open Settings, choose Privacy, click Export data, pick the JSON format and confirm with your password. The archive arrives by email within an hour and holds your messages, files and settings. If it does not arrive within a day, contact support and mention the export request."),
			label: "resolved", pass: true},
		{name: "earlier deferral, later resolved", turns: conv("q", "I don't know.", "Try again: how do I log out?", "Click your avatar, then Log out."),
			label: "resolved", pass: true},
		{name: "no turns", label: "resolved", pass: true},
	})
}

func TestFrustration(t *testing.T) {
	runTranscriptCases(t, NameFrustration, []transcriptCase{
		{name: "calm", turns: conv("How do I reset my password?", "Open Settings.", "Thanks, that worked!", "Glad to help."),
			label: "none", pass: true},
		{name: "single exclamation marks", turns: conv("Great!", "ok", "Thanks!", "ok"), label: "none", pass: true},
		{name: "short repeats are not frustration", turns: conv("yes", "ok?", "yes", "done"), label: "none", pass: true},
		{name: "already told you", turns: conv("My email is jane@example.com", "What is your email?", "I already told you, it is jane@example.com", "Thanks."),
			label: "mild", explain: []string{"frustrated phrase (turn 2)"}, absent: []string{"jane", "example.com"}},
		{name: "repeated message", turns: conv("How do I cancel my subscription?", "Our plans are great.", "How do I cancel my subscription?", "We offer many plans."),
			label: "mild", explain: []string{"repeated message (turn 2)"}},
		{name: "many cues", turns: conv("How do I cancel my subscription?", "Plans are great.",
			"How do I cancel my subscription?", "We have plans.", "THIS IS USELESS, LET ME TALK TO A HUMAN!!!", "Sorry."),
			label: "frustrated", explain: []string{"repeated message (turn 2)", "frustrated phrase (turn 3)", "asks for a human (turn 3)", "all caps (turn 3)", "multiple exclamation marks (turn 3)"},
			absent: []string{"subscription"}},
		{name: "no turns", label: "none", pass: true},
	})
	c, _ := New().Lookup(NameFrustration)
	mild := c.Run(Input{Turns: conv("this is useless", "sorry")})
	many := c.Run(Input{Turns: conv("this is useless", "sorry", "SPEAK TO A HUMAN NOW!!!", "sorry")})
	if !(mild.Value < 1 && many.Value < mild.Value) {
		t.Errorf("the score does not fall with the number of cues: %v, %v", mild.Value, many.Value)
	}
}

func TestToolCalls(t *testing.T) {
	call := func(name, args, result string) ToolCall { return ToolCall{Name: name, Arguments: args, Result: result} }
	run := func(answer string, calls ...ToolCall) []Turn {
		return []Turn{{User: "Where is order A-17?", Assistant: answer, ToolCalls: calls}}
	}
	runTranscriptCases(t, NameToolCalls, []transcriptCase{
		{name: "all fine", turns: run("It shipped.", call("lookup_order", `{"id": "A-17"}`, `{"status": "shipped"}`), call("now", "", "2026-12-07")),
			label: "ok", pass: true},
		{name: "no calls", turns: run("Hello."), label: "no_tool_calls", pass: true},
		{name: "plain-text arguments are fine", turns: run("Done.", call("search", "order A-17", "found")), label: "ok", pass: true},
		{name: "unnamed", turns: run("It shipped.", call("", `{}`, "ok")),
			label: "tool_call_problems", explain: []string{"turn 1 call 1 (unnamed): no name"}},
		{name: "bad JSON arguments", turns: run("It shipped.", call("lookup_order", `{"id": "A-17"`, "shipped")),
			label: "tool_call_problems", explain: []string{"arguments are not valid JSON"}, absent: []string{"A-17"}},
		{name: "no result", turns: run("It shipped.", call("lookup_order", `{}`, "")),
			label: "tool_call_problems", explain: []string{"lookup_order", "no result"}},
		{name: "error acknowledged", turns: run("Sorry, I could not look up the order right now.", call("lookup_order", `{}`, "Error: timeout")),
			label: "tool_call_problems", explain: []string{"the result is an error"}},
		{name: "error ignored", turns: run("Your order has shipped.", call("lookup_order", `{}`, "Traceback (most recent call last):\n  KeyError")),
			label: "tool_call_problems", explain: []string{"the answer ignores the failed call"}},
		{name: "error fixed by a retry", turns: run("Your order has shipped.", call("lookup_order", `{}`, "ERROR 503"), call("lookup_order", `{}`, `{"status": "shipped"}`)),
			label: "tool_call_problems", explain: []string{"1 of 2", "the result is an error"}},
	})
	c, _ := New().Lookup(NameToolCalls)
	ignored := c.Run(Input{Turns: run("Your order has shipped.", call("lookup_order", `{}`, "exception: boom"))})
	if strings.Contains(c.Run(Input{Turns: run("Your order has shipped.", call("lookup_order", `{}`, "ERROR 503"), call("lookup_order", `{}`, "ok"))}).Explanation, "ignores") ||
		!strings.Contains(ignored.Explanation, "ignores") {
		t.Errorf("a retried failure counts as ignored, or an ignored one does not: %s", ignored.Explanation)
	}
}

func TestGroundedAnswer(t *testing.T) {
	tools := []Turn{{User: "Where is my order A-17?", ToolCalls: []ToolCall{{Name: "lookup_order", Arguments: `{"id": "A-17"}`,
		Result: `{"status": "shipped", "carrier": "DHL", "eta": "2026-12-09", "parcels": 2}`}}}}
	runTranscriptCases(t, NameGroundedAnswer, []transcriptCase{
		{name: "grounded", response: "Your order A-17 has shipped with DHL in 2 parcels; the eta is 2026-12-09.", turns: tools,
			label: "grounded", pass: true, explain: []string{"content words and numbers", "pass: 50%"}},
		{name: "invented number", response: "Your order A-17 shipped with DHL and arrives in 5 days for 39.90 EUR.", turns: tools,
			label: "ungrounded", explain: []string{"2 of its 3 numbers appear in no tool result"}, absent: []string{"39.90"}},
		{name: "invented words", response: "Unfortunately the warehouse flooded yesterday, delaying every shipment considerably.", turns: tools,
			label: "ungrounded"},
		{name: "no tool results", response: "It shipped.", turns: conv("Where is it?", "It shipped."), label: "no_tool_results", pass: true},
		{name: "empty answer", response: "  ", turns: tools, label: "empty_answer"},
		{name: "too short", response: "Yes.", turns: tools, label: "too_short", pass: true},
	})
}

// FuzzTranscriptChecks feeds arbitrary two-turn transcripts with a tool call to every
// transcript check: each returns a complete verdict with Value and Confidence in [0,1],
// deterministically, and never panics.
func FuzzTranscriptChecks(f *testing.F) {
	f.Add("Where is A-17?", "It shipped.", "I ALREADY TOLD YOU!!!", "I'm sorry, I don't know.", "lookup", `{"id": 1`, "Error: boom")
	f.Add("", "", "", "", "", "", "")
	f.Add("same words here again", "same answer words repeated here", "same words here again", "same answer words repeated here", "f", "[]", "42")
	set := New()
	var cs []*Check
	for _, name := range Names() {
		if c, _ := set.Lookup(name); c.Scope != ScopeRecord {
			cs = append(cs, c)
		}
	}
	f.Fuzz(func(t *testing.T, u1, a1, u2, a2, name, args, result string) {
		in := Input{Response: a2, Turns: []Turn{
			{User: u1, Assistant: a1, ToolCalls: []ToolCall{{Name: name, Arguments: args, Result: result}}},
			{User: u2, Assistant: a2},
		}}
		for _, c := range cs {
			r := c.Run(in)
			if !(r.Value >= 0 && r.Value <= 1) || !(r.Confidence >= 0 && r.Confidence <= 1) || r.Label == "" || r.Explanation == "" {
				t.Fatalf("%s: incomplete or out-of-range result %+v", c.Name, r)
			}
			if again := c.Run(in); again != r {
				t.Fatalf("%s: not deterministic: %+v, then %+v", c.Name, r, again)
			}
		}
	})
}
