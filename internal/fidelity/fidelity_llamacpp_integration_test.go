package fidelity

// The harness against the real engine: llama.cpp's server (scripts/services.sh starts it
// with a random-weight model carrying Llama 3's tokenizer and chat template, and one with
// Mistral v0.2's). The figures mean nothing with random weights; what is asserted is the
// path: real chat templates, guided decoding that makes every answer parse, logprobs in
// the server's real shapes, both orders of every pair, the command's flags and output.

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"raterd/internal/testkit"
	"raterd/scorer"
)

// mixedSet is a few items of each kind and subset of the built-in set.
func mixedSet(t *testing.T) *Set {
	t.Helper()
	all, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	out := &Set{Name: all.Name}
	seen := map[string]int{}
	for _, it := range all.Items {
		if seen[it.Subset] < 2 {
			seen[it.Subset]++
			out.Items = append(out.Items, it)
		}
	}
	return out
}

// inUnit reports whether f is a number in [0,1].
func inUnit(f Figure) bool { return !math.IsNaN(float64(f)) && f >= 0 && f <= 1 }

func TestLlamaCppFidelityGuided(t *testing.T) {
	llama3 := testkit.Service(t, "RATERD_TEST_LLAMA", "llama.cpp server (Llama 3 tokenizer)")
	mistral := testkit.Service(t, "RATERD_TEST_LLAMA_MISTRAL", "llama.cpp server (Mistral v0.2 template)")
	set := mixedSet(t)
	for _, tc := range []struct{ url, format string }{
		{llama3, scorer.FormatFLAMe},
		{llama3, scorer.FormatSelene},
		{mistral, scorer.FormatPrometheus2}, // folded: Mistral v0.2's template refuses a system turn
	} {
		t.Run(tc.format, func(t *testing.T) {
			_, jc, err := cmd{getenv: func(string) string { return "" }}.judgeConfig(flags{endpoint: tc.url, model: "tiny",
				guidedDecoding: scorer.GuidedLlamaCpp, logprobs: true, maxTokens: 64})
			if err != nil {
				t.Fatal(err)
			}
			jc.GuidedExplanationChars = 24 // short answers: a random model writes to the bound
			judges, err := scorer.NewJudges(map[string]*scorer.JudgeConfig{JudgeName: jc}, scorer.JudgeSettings{})
			if err != nil {
				t.Fatal(err)
			}
			defer scorer.CloseJudges(context.Background(), judges)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			rep, err := Run(ctx, judges[JudgeName], jc, set, Options{Format: tc.format})
			if err != nil {
				t.Fatal(err)
			}
			p, q := rep.Pairwise, rep.Pointwise
			// Guided decoding: every answer parses, so every item is scored.
			if p.Items != 8 || p.Scored != 8 || q.Items != 2 || q.Scored != 2 {
				t.Fatalf("pairwise %+v, pointwise %+v: want 8 and 2 items, all scored (first failure: %s)", p, q, rep.FirstFailure)
			}
			for name, f := range map[string]Figure{"agreement": p.Agreement, "consistency": p.Consistency, "consistent and right": p.ConsistentCorrect,
				"exact": q.Exact, "within one": q.Within1} {
				if !inUnit(f) {
					t.Errorf("%s = %v, want a share in [0,1]", name, f)
				}
			}
			if p.ConsistentCorrect > p.Consistency || float64(q.MeanAbsError) > ScaleMax-ScaleMin {
				t.Errorf("figures out of their bounds: %+v %+v", p, q)
			}
			if rep.Judge != "openai:tiny+logprobs" && rep.Judge != "openai:tiny" {
				t.Errorf("judge = %q", rep.Judge)
			}
			wantSystem := "native"
			if tc.format == scorer.FormatPrometheus2 {
				wantSystem = "fold"
			}
			if !rep.Guided || rep.System != wantSystem || rep.Format != tc.format {
				t.Errorf("report header: guided %v, system %q, format %q", rep.Guided, rep.System, rep.Format)
			}
			t.Logf("%s: pairwise agreement %s, consistency %s; pointwise exact %s (random weights: meaningless)", tc.format, p.Agreement, p.Consistency, q.Exact)
		})
	}
}

// TestLlamaCppFidelityCommand runs the command as a user would, unguided, and reads its
// JSON: every item is accounted for as scored, a parse failure or a judge error.
func TestLlamaCppFidelityCommand(t *testing.T) {
	llama3 := testkit.Service(t, "RATERD_TEST_LLAMA", "llama.cpp server (Llama 3 tokenizer)")
	var stdout, stderr bytes.Buffer
	err := cmd{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}.run(context.Background(),
		[]string{"--endpoint", llama3, "--model", "tiny", "--max-tokens", "48", "--limit", "4", "--json"})
	var got Report
	if jerr := json.Unmarshal(stdout.Bytes(), &got); jerr != nil {
		t.Fatalf("run error %v; output %q is not the JSON report: %v\n%s", err, stdout.String(), jerr, stderr.String())
	}
	// A random model writes whatever it likes without a grammar: the run may score
	// nothing (an error saying why), but every item must be accounted for.
	if p := got.Pairwise; p == nil || p.Items != 4 || p.Scored+p.ParseFailures+p.JudgeErrors != 4 {
		t.Fatalf("pairwise = %+v, want 4 items accounted for", p)
	}
	if err != nil && !strings.Contains(err.Error(), "the judge scored no item") {
		t.Fatalf("error = %v", err)
	}
	if got.Guided || got.Judge != "openai:tiny" {
		t.Errorf("guided %v, judge %q: want unguided openai:tiny", got.Guided, got.Judge)
	}
	t.Logf("unguided: %d of 4 pairs scored, %d parse failures", got.Pairwise.Scored, got.Pairwise.ParseFailures)
}
