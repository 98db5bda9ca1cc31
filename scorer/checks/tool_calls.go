package checks

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// NameToolCalls is the check of scope trace that checks the structure of an agent run's
// tool calls.
const NameToolCalls = "tool_calls"

// Problems the tool_calls check reports, as the explanation names them.
const (
	toolUnnamed       = "no name"
	toolBadArguments  = "arguments are not valid JSON"
	toolNoResult      = "no result"
	toolErrorResult   = "the result is an error"
	toolIgnoredFailed = "the answer ignores the failed call"
)

// toolCallAt is a tool call with its 1-based turn and position in the turn.
type toolCallAt struct {
	turn, idx int
	c         ToolCall
}

// toolErrorPrefixes are how an error result starts (lowercase, after leading spaces).
func toolErrorPrefixes() []string {
	return []string{"error", "err:", "failed", "failure", "fatal", "exception", "traceback", `{"error"`}
}

// toolErrorMarks are what an error result contains anywhere (lowercase).
func toolErrorMarks() []string {
	return []string{"exception", "traceback (most recent call last)", "stack trace", `"error":`}
}

// toolAcknowledgements are normalized words of an answer that mentions a failure.
func toolAcknowledgements() []string {
	return []string{"error", "failed", "fail", "unable", "couldn t", "could not", "can t", "cannot",
		"not available", "unavailable", "sorry", "problem", "issue", "went wrong", "try again"}
}

// toolFailed reports whether a tool result looks like an error: it starts with
// "error", "failed", "fatal", "exception", "traceback" or {"error" (case ignored), or
// holds "exception", a Python traceback, "stack trace" or an "error": key.
func toolFailed(result string) bool {
	r := strings.ToLower(strings.TrimSpace(result))
	for _, p := range toolErrorPrefixes() {
		if strings.HasPrefix(r, p) {
			return true
		}
	}
	for _, m := range toolErrorMarks() {
		if strings.Contains(r, m) {
			return true
		}
	}
	return false
}

// checkToolCalls checks the structure of the tool calls of an agent run. A call has a
// problem when:
//
//   - it has no name;
//   - its arguments look like JSON (start with '{' or '[') and do not parse;
//   - it has no result;
//   - its result looks like an error (toolFailed);
//   - it failed, no later call of the same tool succeeded (no retry fixed it), and the
//     answer after it (its turn's answer, else the next non-empty one) does not
//     acknowledge the failure ("error", "unable", "sorry", "could not" …).
//
// The value is the share of calls without a problem (a run without tool calls scores 1,
// label "no_tool_calls"); the label is "ok" when no call has a problem, else
// "tool_call_problems", and the explanation names each problem by turn, call number and
// tool name (at most five). Arguments and results are never quoted.
func checkToolCalls(turns []Turn) Result {
	var calls []toolCallAt
	for i, t := range turns {
		for j, c := range t.ToolCalls {
			calls = append(calls, toolCallAt{turn: i + 1, idx: j + 1, c: c})
		}
	}
	if len(calls) == 0 {
		return Result{Value: 1, Label: "no_tool_calls", Confidence: 1, Explanation: "The agent run made no tool calls."}
	}
	var problems []string
	bad := 0
	for k, cl := range calls {
		var p []string
		c := cl.c
		if strings.TrimSpace(c.Name) == "" {
			p = append(p, toolUnnamed)
		}
		if a := strings.TrimSpace(c.Arguments); (strings.HasPrefix(a, "{") || strings.HasPrefix(a, "[")) && !json.Valid([]byte(a)) {
			p = append(p, toolBadArguments)
		}
		switch {
		case strings.TrimSpace(c.Result) == "":
			p = append(p, toolNoResult)
		case toolFailed(c.Result):
			p = append(p, toolErrorResult)
			if !retried(calls[k+1:], c.Name) && !acknowledged(turns, cl.turn-1) {
				p = append(p, toolIgnoredFailed)
			}
		}
		if len(p) > 0 {
			bad++
			problems = append(problems, fmt.Sprintf("turn %d call %d (%s): %s", cl.turn, cl.idx, toolLabel(c.Name), strings.Join(p, ", ")))
		}
	}
	value := float64(len(calls)-bad) / float64(len(calls))
	if bad == 0 {
		return Result{Value: 1, Label: "ok", Confidence: 0.8,
			Explanation: fmt.Sprintf("All %d tool calls are named, have parseable arguments and a result that is not an error.", len(calls))}
	}
	if len(problems) > 5 {
		problems = append(problems[:5], fmt.Sprintf("and %d more", len(problems)-5))
	}
	return Result{Value: value, Label: "tool_call_problems", Confidence: 0.8,
		Explanation: fmt.Sprintf("%d of %d tool calls have problems: %s.", bad, len(calls), strings.Join(problems, "; "))}
}

// retried reports whether a later call of the tool name succeeded (has a result that is
// not an error).
func retried(later []toolCallAt, name string) bool {
	for _, x := range later {
		if c := x.c; c.Name == name && strings.TrimSpace(c.Result) != "" && !toolFailed(c.Result) {
			return true
		}
	}
	return false
}

// acknowledged reports whether the answer after a failed call in turns[i] mentions the
// failure: that turn's answer, or the next non-empty one. No answer at all is not an
// acknowledgement.
func acknowledged(turns []Turn, i int) bool {
	for ; i < len(turns); i++ {
		if a := normalized(turns[i].Assistant); a != "" {
			return anyPhrase(a, toolAcknowledgements()) != ""
		}
	}
	return false
}

// toolLabel is a tool name as an explanation shows it: at most 40 bytes of valid UTF-8,
// "unnamed" when empty.
func toolLabel(name string) string {
	name = strings.TrimSpace(name)
	if name == "" {
		return "unnamed"
	}
	if len(name) > 40 {
		name = name[:40]
		for !utf8.ValidString(name) {
			name = name[:len(name)-1]
		}
		name += "…"
	}
	return name
}
