package scorer

// Conversation judging against the real llama.cpp server (see llamacpp_integration_test.go):
// a transcript record's turns, rendered into FLAMe prompts, go through the server's chat
// template and guided decoding and come back as parsed verdicts. Skipped without
// RATERD_TEST_LLAMA, failed with RATERD_REQUIRE_SERVICES=1.

import (
	"slices"
	"testing"

	"raterd/internal/testkit"
	"raterd/record"
)

// TestLlamaCppConversationTranscript judges a three-turn conversation with a FLAMe
// pointwise evaluator and a resolved/unresolved classification evaluator of scope
// conversation: both verdicts parse (status ok) and lie on the scale or among the labels.
func TestLlamaCppConversationTranscript(t *testing.T) {
	url := testkit.Service(t, "RATERD_TEST_LLAMA", "llama.cpp server (Llama 3 tokenizer)")
	j, jc := llamaJudge(t, url, nil)
	evals := []*Evaluator{
		{Name: "conversation-quality", Judge: "llama", Scope: record.ScopeConversation, Format: FormatFLAMe,
			Criteria: "Does the assistant resolve the user's problem over the conversation?", Fields: []string{FieldSystem, FieldTranscript}},
		{Name: "conversation-resolved", Judge: "llama", Scope: record.ScopeConversation, Format: FormatFLAMe, Task: TaskClassification,
			Criteria: "Is the user's problem resolved by the end of the conversation?", Labels: []string{"resolved", "unresolved"}},
	}
	rec := transcriptRecord(record.ScopeConversation)
	vs := judgeAll(t, j, jc, evals, []*record.Record{rec})
	if len(vs) != len(evals) {
		t.Fatalf("%d verdicts for %d evaluators", len(vs), len(evals))
	}
	for i, v := range vs {
		e := evals[i]
		if !e.Applies(rec) {
			t.Errorf("%s does not apply to the transcript record", e.Name)
		}
		if v.Err != nil || v.Status != record.StatusOK {
			t.Errorf("%s: status %q, err %v, explanation %q", e.Name, v.Status, v.Err, v.Explanation)
			continue
		}
		switch e.Task {
		case TaskPointwise:
			if v.Value < e.Scale.Min || v.Value > e.Scale.Max {
				t.Errorf("%s: score %v off the scale", e.Name, v.Value)
			}
		case TaskClassification:
			if !slices.Contains(e.Labels, v.Label) {
				t.Errorf("%s: label %q", e.Name, v.Label)
			}
		}
		t.Logf("%s: value %v label %q explanation %q", e.Name, v.Value, v.Label, v.Explanation)
	}
}
