package scorer

import (
	"fmt"
	"strings"

	"raterd/record"
	"raterd/scorer/checks"
)

// TranscriptTurns returns the turns a transcript field renders: the segment's turns of a
// transcript record; for a record without a Segment, turns rebuilt from its chat
// messages (each user message opens a turn, the next assistant message answers it;
// other roles are left out), with the response answering the last turn (or a turn of its
// own) and the record's tool calls in the last turn. A record with a prompt and no
// messages is one turn.
func TranscriptTurns(r *record.Record) []record.Turn {
	if r.Segment != nil {
		return r.Segment.Turns
	}
	var turns []record.Turn
	if len(r.Messages) == 0 && r.Prompt != "" {
		turns = append(turns, record.Turn{User: r.Prompt})
	}
	for _, m := range r.Messages {
		switch m.Role {
		case "user":
			turns = append(turns, record.Turn{User: m.Content})
		case "assistant":
			if n := len(turns); n > 0 && turns[n-1].Assistant == "" {
				turns[n-1].Assistant = m.Content
			} else {
				turns = append(turns, record.Turn{Assistant: m.Content})
			}
		}
	}
	if r.Response != "" || len(r.ToolCalls) > 0 {
		if n := len(turns); n == 0 || turns[n-1].Assistant != "" && turns[n-1].Assistant != r.Response {
			turns = append(turns, record.Turn{})
		}
		last := &turns[len(turns)-1]
		last.Assistant = r.Response
		last.ToolCalls = r.ToolCalls
	}
	return turns
}

// RenderTranscript renders turns as a judge reads them, numbered from 1, each turn as
// "[turn n] user: text" (left out when the turn has no user text), one
// "[turn n] tool_call name(arguments) -> result" line per tool call (as RenderToolCalls
// writes a call), and "[turn n] assistant: text". A line break inside any text is
// followed by two spaces, so every line that starts at its first column starts with
// "[turn ". No turns render as "".
func RenderTranscript(turns []record.Turn) string {
	var b strings.Builder
	line := func(n int, kind, text string) {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "[turn %d] %s", n, kind)
		if text != "" {
			b.WriteByte(' ')
			b.WriteString(text)
		}
	}
	for i, t := range turns {
		n := i + 1
		if t.User != "" {
			line(n, "user:", indentLines(t.User))
		}
		for _, c := range t.ToolCalls {
			line(n, "tool_call", RenderToolCalls([]record.ToolCall{c}))
		}
		line(n, "assistant:", indentLines(t.Assistant))
	}
	return b.String()
}

// checkTurns converts turns for the built-in checks, which do not depend on package
// record.
func checkTurns(turns []record.Turn) []checks.Turn {
	out := make([]checks.Turn, len(turns))
	for i, t := range turns {
		out[i] = checks.Turn{User: t.User, Assistant: t.Assistant}
		for _, c := range t.ToolCalls {
			out[i].ToolCalls = append(out[i].ToolCalls, checks.ToolCall{Name: c.Name, Arguments: c.Arguments, Result: c.Result})
		}
	}
	return out
}
