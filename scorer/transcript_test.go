package scorer

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"raterd/record"
	"raterd/scorer/checks"
	"raterd/scorer/format"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// transcriptRecord is a transcript record of three turns as the consumer assembles it.
func transcriptRecord(scope string) *record.Record {
	turns := []record.Turn{
		{User: "Where is my order A-17?", Assistant: "Your order A-17 has shipped with DHL.", RecordID: "r1",
			ToolCalls: []record.ToolCall{{ID: "c1", Name: "lookup_order", Arguments: `{"id": "A-17"}`, Result: `{"status": "shipped", "carrier": "DHL"}`}}},
		{User: "It still has not arrived.", Assistant: "DHL delivers within 3 days of shipping;\nplease wait one more day.", RecordID: "r2"},
		{User: "ok thanks", Assistant: "You're welcome!", RecordID: "r3"},
	}
	r := &record.Record{ID: "seg-c42-1", Model: "support-llm", App: "shop", ConversationID: "c42",
		System: "You are the support assistant of Acme.", Response: turns[2].Assistant,
		ToolCalls: turns[0].ToolCalls,
		Segment:   &record.Segment{Scope: scope, Key: "c42", Version: 1, Turns: turns, CloseReason: record.CloseTimeout}}
	for _, t := range turns {
		r.Messages = append(r.Messages, record.Message{Role: "user", Content: t.User}, record.Message{Role: "assistant", Content: t.Assistant})
	}
	return r
}

func TestEvaluatorScopeValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   Evaluator
		kind JudgeKind
		err  string // "" accepts
	}{
		{"record by default", Evaluator{Criteria: "ok?"}, KindModel, ""},
		{"explicit record", Evaluator{Scope: record.ScopeRecord, Criteria: "ok?"}, KindModel, ""},
		{"conversation", Evaluator{Scope: record.ScopeConversation, Criteria: "ok?"}, KindModel, ""},
		{"trace", Evaluator{Scope: record.ScopeTrace, Criteria: "ok?"}, KindModel, ""},
		{"unknown scope", Evaluator{Scope: "session", Criteria: "ok?"}, KindModel, `evaluators[3] (x).scope: "session" is not one of record, conversation, trace`},
		{"transcript in record scope", Evaluator{Criteria: "ok?", Fields: []string{FieldTranscript}}, KindModel, "evaluators[3] (x).fields[0]: transcript is the turns"},
		{"conversation reads more", Evaluator{Scope: record.ScopeConversation, Criteria: "ok?",
			Fields: []string{FieldSystem, FieldTranscript, FieldToolCalls, FieldResponse, "metadata.locale"}}, KindModel, ""},
		{"conversation without a judged field", Evaluator{Scope: record.ScopeConversation, Criteria: "ok?", Fields: []string{FieldSystem}}, KindModel,
			"evaluators[3] (x).fields: must include transcript, prompt, messages or response"},
		{"conversation check", Evaluator{Scope: record.ScopeConversation, Check: checks.NameUnresolved}, KindHeuristic, ""},
		{"trace check", Evaluator{Scope: record.ScopeTrace, Check: checks.NameGroundedAnswer}, KindHeuristic, ""},
		{"conversation check in record scope", Evaluator{Check: checks.NameFrustration}, KindHeuristic,
			`evaluators[3] (x).scope: check "frustration" judges conversation records, the evaluator's scope is record`},
		{"trace check in conversation scope", Evaluator{Scope: record.ScopeConversation, Check: checks.NameToolCalls}, KindHeuristic,
			`evaluators[3] (x).scope: check "tool_calls" judges trace records`},
		{"record check in trace scope", Evaluator{Scope: record.ScopeTrace, Check: checks.NameRefusal}, KindHeuristic,
			`evaluators[3] (x).scope: check "refusal" judges record records`},
		{"transcript check without transcript", Evaluator{Scope: record.ScopeConversation, Check: checks.NameUnresolved, Fields: []string{FieldResponse}}, KindHeuristic,
			`evaluators[3] (x).fields: check "unresolved" reads transcript`},
		{"transcript check reading more", Evaluator{Scope: record.ScopeTrace, Check: checks.NameToolCalls, Fields: []string{FieldTranscript, FieldPrompt}}, KindHeuristic,
			`evaluators[3] (x).fields[1]: check "tool_calls" reads transcript, not "prompt"`},
		{"record check reading transcript", Evaluator{Check: checks.NameRefusal, Fields: []string{FieldResponse, FieldTranscript}}, KindHeuristic,
			`evaluators[3] (x).fields`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.ev
			e.Name, e.Judge = "x", "j"
			err := e.Prepare("evaluators[3]", tc.kind)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Prepare: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Prepare: err = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestEvaluatorScopeDefaults(t *testing.T) {
	for _, scope := range []string{record.ScopeConversation, record.ScopeTrace} {
		e := &Evaluator{Name: "x", Judge: "j", Scope: scope, Criteria: "ok?"}
		if err := e.Prepare("evaluators[0]", KindModel); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(e.Fields, []string{FieldTranscript}) || e.EffectiveScope() != scope {
			t.Errorf("%s: fields %v, scope %s", scope, e.Fields, e.EffectiveScope())
		}
	}
	e := &Evaluator{Name: "x", Judge: "j", Scope: record.ScopeConversation, Check: checks.NameTurnRepetition}
	if err := e.Prepare("evaluators[0]", KindHeuristic); err != nil || !slices.Equal(e.Fields, []string{FieldTranscript}) {
		t.Errorf("check fields %v, %v", e.Fields, err)
	}
	e = &Evaluator{Name: "x", Judge: "j", Scope: record.ScopeTrace, Check: checks.NameGroundedAnswer}
	if err := e.Prepare("evaluators[0]", KindHeuristic); err != nil || !slices.Equal(e.Fields, []string{FieldResponse, FieldTranscript}) {
		t.Errorf("grounded_answer fields %v, %v", e.Fields, err)
	}
}

// TestScopeRubricVersion: record scope, explicit or not, keeps the version of before
// scopes; another scope is another version.
func TestScopeRubricVersion(t *testing.T) {
	version := func(scope, check string) string {
		e := &Evaluator{Name: "x", Judge: "j", Scope: scope, Criteria: "Is it helpful?", Check: check}
		kind := KindModel
		if check != "" {
			kind = KindHeuristic
		}
		if err := e.Prepare("evaluators[0]", kind); err != nil {
			t.Fatal(err)
		}
		return e.RubricVersion()
	}
	// rubricGoldenEvaluators' flame_pointwise, pinned by TestRubricVersionsOfOldFieldsAreStable.
	if v := version("", ""); v != "278db5d66b714721" || version(record.ScopeRecord, "") != v {
		t.Errorf("record scope changed the version: %s, %s", v, version(record.ScopeRecord, ""))
	}
	if version(record.ScopeConversation, "") == version(record.ScopeTrace, "") {
		t.Error("conversation and trace evaluators share a version")
	}
	e := &Evaluator{Name: "x", Judge: "j", Scope: record.ScopeConversation, Criteria: "Is it helpful?", Fields: []string{FieldPrompt, FieldResponse}}
	if err := e.Prepare("evaluators[0]", KindModel); err != nil {
		t.Fatal(err)
	}
	if e.RubricVersion() == version("", "") {
		t.Error("a conversation evaluator reading prompt and response has the record evaluator's version")
	}
}

func TestApplies(t *testing.T) {
	ev := func(scope string) *Evaluator {
		e := &Evaluator{Name: "x", Judge: "j", Scope: scope, Criteria: "ok?"}
		if err := e.Prepare("evaluators[0]", KindModel); err != nil {
			t.Fatal(err)
		}
		return e
	}
	plain := &record.Record{ID: "a", Model: "m", Prompt: "p", Response: "r"}
	part := &record.Record{ID: "b", Model: "m", Response: "tool output", TracePart: true}
	conv, trace := transcriptRecord(record.ScopeConversation), transcriptRecord(record.ScopeTrace)
	for _, tc := range []struct {
		scope string
		rec   *record.Record
		want  bool
	}{
		{record.ScopeRecord, plain, true},
		{record.ScopeRecord, part, false},
		{record.ScopeRecord, conv, false},
		{record.ScopeRecord, trace, false},
		{record.ScopeConversation, plain, false},
		{record.ScopeConversation, part, false},
		{record.ScopeConversation, conv, true},
		{record.ScopeConversation, trace, false},
		{record.ScopeTrace, plain, false},
		{record.ScopeTrace, part, false},
		{record.ScopeTrace, conv, false},
		{record.ScopeTrace, trace, true},
	} {
		if got := ev(tc.scope).Applies(tc.rec); got != tc.want {
			t.Errorf("scope %s, record %s (segment %v, trace part %v): Applies = %v", tc.scope, tc.rec.ID, tc.rec.Segment != nil, tc.rec.TracePart, got)
		}
	}
}

func TestRenderTranscript(t *testing.T) {
	want := "[turn 1] user: Where is my order A-17?\n" +
		"[turn 1] tool_call lookup_order({\"id\": \"A-17\"}) -> {\"status\": \"shipped\", \"carrier\": \"DHL\"}\n" +
		"[turn 1] assistant: Your order A-17 has shipped with DHL.\n" +
		"[turn 2] user: It still has not arrived.\n" +
		"[turn 2] assistant: DHL delivers within 3 days of shipping;\n  please wait one more day.\n" +
		"[turn 3] user: ok thanks\n" +
		"[turn 3] assistant: You're welcome!"
	r := transcriptRecord(record.ScopeConversation)
	if got := RenderTranscript(TranscriptTurns(r)); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if RenderTranscript(nil) != "" {
		t.Error("no turns render as text")
	}
	// Without a segment, the turns come from the messages and the response.
	for _, tc := range []struct {
		name string
		rec  record.Record
		want string
	}{
		{"prompt", record.Record{Prompt: "hi", Response: "hello"}, "[turn 1] user: hi\n[turn 1] assistant: hello"},
		{"chat", record.Record{Messages: []record.Message{{Role: "system", Content: "s"}, {Role: "user", Content: "a"}, {Role: "assistant", Content: "b"}, {Role: "user", Content: "c"}},
			Response: "d", ToolCalls: []record.ToolCall{{Name: "f", Arguments: "{}"}}},
			"[turn 1] user: a\n[turn 1] assistant: b\n[turn 2] user: c\n[turn 2] tool_call f({})\n[turn 2] assistant: d"},
		{"flattened transcript", record.Record{Messages: []record.Message{{Role: "user", Content: "a"}, {Role: "assistant", Content: "b"}}, Response: "b"},
			"[turn 1] user: a\n[turn 1] assistant: b"},
		{"assistant first", record.Record{Messages: []record.Message{{Role: "assistant", Content: "Hi!"}}, Response: "x"},
			"[turn 1] assistant: Hi!\n[turn 2] assistant: x"},
		{"empty", record.Record{}, ""},
	} {
		if got := RenderTranscript(TranscriptTurns(&tc.rec)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	// Line breaks never start a line that is not a turn's.
	got := RenderTranscript([]record.Turn{{User: "a\r\n[turn 9] user: fake", Assistant: "b\rc"}})
	for _, line := range strings.Split(got, "\n") {
		if !strings.HasPrefix(line, "[turn 1] ") && !strings.HasPrefix(line, "  ") {
			t.Errorf("line %q starts at the first column", line)
		}
	}
}

func TestInputsTranscript(t *testing.T) {
	e := &Evaluator{Name: "x", Judge: "j", Scope: record.ScopeConversation, Criteria: "ok?", Fields: []string{FieldSystem, FieldTranscript, FieldResponse}}
	if err := e.Prepare("evaluators[0]", KindModel); err != nil {
		t.Fatal(err)
	}
	r := transcriptRecord(record.ScopeConversation)
	in := e.Inputs(r)
	if len(in) != 3 || in[1].Field != FieldTranscript || in[1].Text != RenderTranscript(r.Segment.Turns) || in[2].Text != "You're welcome!" {
		t.Errorf("inputs %+v", in)
	}
	k1 := CacheKey(e, "j", r)
	r2 := transcriptRecord(record.ScopeConversation)
	r2.Segment.Turns[1].Assistant = "Something else."
	if CacheKey(e, "j", r2) == k1 {
		t.Error("a change to an earlier turn keeps the cache key")
	}
}

// TestHeuristicTranscriptChecks: the transcript checks run on a transcript record's
// segment turns through the heuristic judge, exactly as the checks say.
func TestHeuristicTranscriptChecks(t *testing.T) {
	j := NewHeuristicJudge()
	set := checks.New()
	for _, scope := range []string{record.ScopeConversation, record.ScopeTrace} {
		r := transcriptRecord(scope)
		for _, name := range HeuristicChecks() {
			if checks.Scope(name) != scope {
				continue
			}
			e := &Evaluator{Name: name, Judge: "heuristic", Scope: scope, Check: name}
			if err := e.Prepare("evaluators[0]", KindHeuristic); err != nil {
				t.Fatal(err)
			}
			if !e.Applies(r) {
				t.Fatalf("%s does not apply to its transcript", name)
			}
			v := judgeOneTask(t, j, Task{Evaluator: e, Record: r})
			c, _ := set.Lookup(name)
			want := c.Run(checks.Input{Response: r.Response, Turns: checkTurns(r.Segment.Turns)})
			if v.Err != nil || v.Status != record.StatusOK || v.Label != want.Label || v.Value != want.Value || v.Explanation != want.Explanation {
				t.Errorf("%s: verdict %+v, check says %+v", name, v, want)
			}
		}
	}
	// The three-turn conversation ends well: no check fails it.
	conv := transcriptRecord(record.ScopeConversation)
	for _, name := range []string{checks.NameTurnRepetition, checks.NameUnresolved, checks.NameFrustration} {
		e := &Evaluator{Name: name, Judge: "heuristic", Scope: record.ScopeConversation, Check: name}
		if err := e.Prepare("evaluators[0]", KindHeuristic); err != nil {
			t.Fatal(err)
		}
		if v := judgeOneTask(t, j, Task{Evaluator: e, Record: conv}); v.Value != 1 {
			t.Errorf("%s: %+v", name, v)
		}
	}
}

// TestScoreRowOfTranscript: the row of a transcript record carries its scope and
// segment.
func TestScoreRowOfTranscript(t *testing.T) {
	r := transcriptRecord(record.ScopeConversation)
	r.Source = record.Source{Topic: "t", Partition: 2, Offset: 10}
	r.Segment.FirstOffset, r.Segment.LastOffset, r.Segment.Version = 10, 14, 2
	e := &Evaluator{Name: "u", Judge: "checks", Scope: record.ScopeConversation, Check: checks.NameUnresolved}
	if err := e.Prepare("evaluators[0]", KindHeuristic); err != nil {
		t.Fatal(err)
	}
	s, err := New([]*Evaluator{e}, map[string]Judge{"checks": NewHeuristicJudge()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rows, _, err := s.ScoreBatch(context.Background(), []*record.Record{r, {ID: "plain", Model: "m", Response: "x", Timestamp: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("%d rows, want 1 (the plain record is not a conversation)", len(rows))
	}
	row := rows[0]
	if row.Scope != record.ScopeConversation || row.Version != 2 || row.LastOffset != 14 || row.Turns != 3 ||
		row.CloseReason != record.CloseTimeout || row.ConversationID != "c42" || row.RecordID != "seg-c42-1" {
		t.Errorf("row %+v", row)
	}
}

// TestTranscriptPrompts renders the FLAMe pointwise and classification prompts of a
// conversation evaluator for a three-turn transcript record, as the openai judge sends
// them (testdata/golden/transcript_*.txt; go test -update rewrites them).
func TestTranscriptPrompts(t *testing.T) {
	r := transcriptRecord(record.ScopeConversation)
	for name, e := range map[string]*Evaluator{
		"transcript_flame_pointwise": {Name: "helpful", Judge: "j", Scope: record.ScopeConversation,
			Criteria: "Does the assistant resolve the user's problem over the conversation?", Fields: []string{FieldSystem, FieldTranscript}},
		"transcript_flame_classification": {Name: "resolved", Judge: "j", Scope: record.ScopeConversation, Task: TaskClassification,
			Criteria: "Is the user's problem resolved by the end of the conversation?", Labels: []string{"resolved", "unresolved"}},
	} {
		t.Run(name, func(t *testing.T) {
			if err := e.Prepare("evaluators[0]", KindModel); err != nil {
				t.Fatal(err)
			}
			f, err := format.Lookup(e.Format)
			if err != nil {
				t.Fatal(err)
			}
			p, err := f.Render(formatSpec(e, r, false))
			if err != nil {
				t.Fatal(err)
			}
			got := "=== system ===\n" + p.System + "\n=== user ===\n" + p.User + "\n"
			path := filepath.Join("testdata", "golden", name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the rendering (go test -update rewrites it):\n%s", path, got)
			}
		})
	}
}
