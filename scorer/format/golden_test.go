package format

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenCases are the fixed specs rendered for every format.
func goldenCases() map[string]Spec {
	return map[string]Spec{
		"pointwise_levels_reference": {
			Task:     TaskPointwise,
			Criteria: "Is the answer factually correct and complete?",
			Min:      1, Max: 5,
			Levels: map[int]string{
				1: "Wrong or harmful.",
				3: "Partly correct; misses important facts.",
				5: "Correct and complete.",
			},
			Inputs: []Input{
				{Field: "prompt", Text: "What is the boiling point of water at sea level?"},
				{Field: "response", Text: "100 °C (212 °F)."},
				{Field: "reference", Text: "Water boils at 100 degrees Celsius at sea level."},
			},
		},
		"pointwise_prompt_only": {
			Task:     TaskPointwise,
			Criteria: "Is the prompt clear and answerable?",
			Min:      0, Max: 10,
			Inputs: []Input{{Field: "prompt", Text: "how do i reset it"}},
		},
		"classification": {
			Task:     TaskClassification,
			Criteria: "Does the response stay on the topic of the user's question?",
			Labels:   []string{"on_topic", "off_topic"},
			Inputs: []Input{
				{Field: "messages", Text: "user: How do I reset my password?"},
				{Field: "response", Text: "Open Settings, then Security, then Reset password."},
				{Field: "metadata.locale", Text: "en-GB"},
			},
		},
		"pairwise":         pairwiseSpec(false),
		"pairwise_swapped": pairwiseSpec(true),
		// The fields of richer inputs, as scorer.Evaluator.Inputs renders them.
		"pointwise_system_context_tools": {
			Task:     TaskPointwise,
			Criteria: "Does the response answer from the order status the tool returned, following the system prompt?",
			Min:      1, Max: 5,
			Inputs: []Input{
				{Field: "system", Text: "You are the support assistant of Acme. Answer in one sentence."},
				{Field: "prompt", Text: "Where is my order A-17?"},
				{Field: "context", Text: "[1] Orders ship within 2 days.\n\n[2] Tracking links are sent by email."},
				{Field: "tool_calls", Text: "lookup_order({\"id\": \"A-17\"}) -> {\"status\": \"shipped\",\n  \"carrier\": \"DHL\"}"},
				{Field: "response", Text: "Your order A-17 has shipped with DHL."},
			},
		},
		"classification_context": {
			Task:     TaskClassification,
			Criteria: "Is every claim of the response supported by the context?",
			Labels:   []string{"supported", "not_supported"},
			Inputs: []Input{
				{Field: "prompt", Text: "How long does shipping take?"},
				{Field: "context", Text: "[1] Orders ship within 2 days.\n\n[2] Delivery takes 3 to 5 days after shipping."},
				{Field: "response", Text: "Shipping takes 2 days, and delivery 3 to 5 more."},
			},
		},
		// A conversation's transcript, as scorer.RenderTranscript writes three turns.
		"pointwise_transcript": {
			Task:     TaskPointwise,
			Criteria: "Does the assistant resolve the user's problem over the conversation?",
			Min:      1, Max: 5,
			Inputs: []Input{
				{Field: "system", Text: "You are the support assistant of Acme."},
				{Field: "transcript", Text: goldenTranscript},
			},
		},
		"classification_transcript": {
			Task:     TaskClassification,
			Criteria: "Is the user's problem resolved by the end of the conversation?",
			Labels:   []string{"resolved", "unresolved"},
			Inputs:   []Input{{Field: "transcript", Text: goldenTranscript}},
		},
		"pairwise_context": {
			Task:     TaskPairwise,
			Criteria: "Which response is better grounded in the context?",
			Inputs: []Input{
				{Field: "prompt", Text: "How long does shipping take?"},
				{Field: "context", Text: "[1] Orders ship within 2 days."},
				{Field: "response", Text: "Within 2 days."},
				{Field: "candidates", Text: "About a week."},
			},
		},
	}
}

// goldenTranscript is a three-turn conversation with a tool call, as
// scorer.RenderTranscript renders it.
const goldenTranscript = "[turn 1] user: Where is my order A-17?\n" +
	"[turn 1] tool_call lookup_order({\"id\": \"A-17\"}) -> {\"status\": \"shipped\", \"carrier\": \"DHL\"}\n" +
	"[turn 1] assistant: Your order A-17 has shipped with DHL.\n" +
	"[turn 2] user: It still has not arrived.\n" +
	"[turn 2] assistant: DHL delivers within 3 days of shipping;\n  please wait one more day.\n" +
	"[turn 3] user: ok thanks\n" +
	"[turn 3] assistant: You're welcome!"

func pairwiseSpec(swap bool) Spec {
	return Spec{
		Task:     TaskPairwise,
		Criteria: "Which response answers the question more helpfully?",
		Inputs: []Input{
			{Field: "prompt", Text: "Name a prime number greater than 10."},
			{Field: "response", Text: "11 is prime."},
			{Field: "candidates", Text: "12."},
		},
		Swap: swap,
	}
}

// TestRenderGolden renders every format × case and compares system, user and reminder
// messages with testdata/golden/<format>_<case>.txt (go test -update rewrites them).
func TestRenderGolden(t *testing.T) {
	for _, name := range Names() {
		f, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		for cname, spec := range goldenCases() {
			if name == "lynx" && strings.HasSuffix(cname, "_transcript") {
				continue // lynx reads no transcript (an evaluator config error)
			}
			t.Run(name+"_"+cname, func(t *testing.T) {
				p, err := f.Render(spec)
				if !slices.Contains(f.Tasks(), spec.Task) { // prometheus2's classification, lynx's pointwise and pairwise
					if err == nil || !strings.Contains(err.Error(), `no "`+spec.Task+`" task`) {
						t.Fatalf("Render: err = %v, want no %s task", err, spec.Task)
					}
					if _, err := f.Parse(spec, "ok [RESULT] on_topic"); err == nil || errors.Is(err, ErrUnparseable) {
						t.Fatalf("Parse: err = %v, want an unsupported-task error", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				_, parseErr := f.Parse(spec, "It looks fine to me.")
				got := "=== system ===\n" + p.System + "\n=== user ===\n" + p.User + "\n=== reminder ===\n" + f.Reminder(spec, parseErr) + "\n"
				path := filepath.Join("testdata", "golden", name+"_"+cname+".txt")
				if *update {
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
}
