package scorer

// The real-engine suite: llama.cpp's OpenAI-compatible server (built from the
// llama-cpp-python sdist by scripts/services.sh), serving tiny random-weight models with
// real tokenizers and the judge families' real chat templates (testdata/chat-templates.md).
// The models answer nonsense; what is under test is raterd against the real server:
// the chat template applied by the server, guided decoding in its GBNF dialect, logprobs
// in its shapes, its errors, its parallel slots. Skipped without RATERD_TEST_LLAMA, failed
// with RATERD_REQUIRE_SERVICES=1.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"raterd/internal/testkit"
	"raterd/record"
	"raterd/scorer/format"
	"raterd/scorer/pool"
)

// llamaJudge is an openai judge on a llama.cpp server.
func llamaJudge(t *testing.T, url string, mutate func(*OpenAIConfig)) (*OpenAIJudge, *JudgeConfig) {
	t.Helper()
	cfg := OpenAIConfig{Model: "tiny", MaxTokens: 64, Logprobs: true, TopLogprobs: 5,
		GuidedDecoding: GuidedLlamaCpp, GuidedExplanationChars: 24}
	cfg.Endpoints = []pool.Endpoint{{URL: url, MaxInFlight: 4}}
	cfg.Timeout = 60 * time.Second
	cfg.MaxAttempts = 2
	if mutate != nil {
		mutate(&cfg)
	}
	jc := &JudgeConfig{Type: JudgeOpenAI, OpenAIConfig: cfg}
	if err := jc.Validate("judges.llama"); err != nil {
		t.Fatal(err)
	}
	j, err := NewOpenAIJudge(jc.OpenAIConfig, JudgeSettings{Key: "judges.llama"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close(context.Background()) })
	return j, jc
}

// llamaEvaluators are evaluators of every shipped format and task type.
func llamaEvaluators() []*Evaluator {
	fields := []string{FieldSystem, FieldPrompt, FieldContext, FieldResponse}
	var out []*Evaluator
	for _, f := range []string{FormatFLAMe, FormatSelene, FormatPrometheus2} {
		out = append(out,
			&Evaluator{Name: f + "-pointwise", Judge: "llama", Format: f, Criteria: "Is it correct?", Scale: Scale{Min: 1, Max: 10}, Fields: fields},
			&Evaluator{Name: f + "-pairwise", Judge: "llama", Format: f, Task: TaskPairwise, Criteria: "Which is better?"})
		if f != FormatPrometheus2 {
			out = append(out, &Evaluator{Name: f + "-classification", Judge: "llama", Format: f, Task: TaskClassification,
				Criteria: "Is it grounded?", Labels: []string{"supported", "not_supported"}, Fields: fields})
		}
	}
	// Lynx: classification only, PASS or FAIL, over the question, documents and answer.
	out = append(out, &Evaluator{Name: "lynx-classification", Judge: "llama", Format: FormatLynx, Task: TaskClassification,
		Criteria: "Is the answer faithful to the documents?", Labels: []string{"PASS", "FAIL"}, Fields: []string{FieldPrompt, FieldContext, FieldResponse}})
	return out
}

func llamaRecords(n int) []*record.Record {
	var out []*record.Record
	for i := range n {
		out = append(out, &record.Record{ID: fmt.Sprintf("llama-%d", i), Model: "m", System: "You are SupportBot.",
			Prompt:     fmt.Sprintf("Question %d: how do I reset my password?", i),
			Context:    []string{"Settings > Security > Reset password."},
			Response:   "Open Settings, choose Security and click Reset.",
			Candidates: []record.Candidate{{Model: "base", Response: "Call support."}}})
	}
	return out
}

// llamaURLs are the two servers: Llama 3's tokenizer and template, and Mistral v0.2's.
func llamaURLs(t *testing.T) (llama3, mistral string) {
	t.Helper()
	return testkit.Service(t, "RATERD_TEST_LLAMA", "llama.cpp server (Llama 3 tokenizer)"), testkit.Service(t, "RATERD_TEST_LLAMA_MISTRAL", "llama.cpp server (Mistral v0.2 template)")
}

// judgeAll runs every evaluator over the records on j and returns the verdicts.
func judgeAll(t *testing.T, j *OpenAIJudge, jc *JudgeConfig, evals []*Evaluator, recs []*record.Record) []Verdict {
	t.Helper()
	var tasks []Task
	for _, e := range evals {
		if err := jc.PrepareEvaluator("evaluators[0]", e); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			tasks = append(tasks, Task{Evaluator: e, Record: r})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	vs, err := j.Judge(ctx, tasks)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestLlamaCppGuidedEveryFormat: with guided decoding in llama.cpp's GBNF, every format
// and task type, through the server's own chat templates (prometheus2 folded for Mistral
// v0.2's), yields a parsed verdict on the scale, and the logprobs of the server's real
// tokens give each a probability.
func TestLlamaCppGuidedEveryFormat(t *testing.T) {
	llama3, mistral := llamaURLs(t)
	recs := llamaRecords(3)
	for _, server := range []struct{ name, url string }{{"llama3", llama3}, {"mistral", mistral}} {
		j, jc := llamaJudge(t, server.url, nil)
		evals := llamaEvaluators()
		vs := judgeAll(t, j, jc, evals, recs)
		weighted := 0
		for i, v := range vs {
			e := evals[i/len(recs)]
			if v.Err != nil || v.Status != record.StatusOK {
				t.Errorf("%s, %s: status %q, err %v, explanation %q", server.name, e.Name, v.Status, v.Err, v.Explanation)
				continue
			}
			// The server's real tokens spell the answer, so its logprobs are used: the
			// verdict keeps the judge's +logprobs identity (Judge empty). A pointwise
			// score on 1–10 may be left unweighted when a digit could begin "10", which
			// gives the plain identity; labels and preferences never do.
			if e.Task != TaskPointwise && v.Judge != "" {
				t.Errorf("%s, %s: judge %q: the server's logprobs were not used", server.name, e.Name, v.Judge)
			}
			if v.Judge == "" {
				weighted++
			}
			if v.Confidence < 0 || v.Confidence > 1 {
				t.Errorf("%s, %s: confidence %v", server.name, e.Name, v.Confidence)
			}
			switch e.Task {
			case TaskPointwise:
				if v.Value < e.Scale.Min || v.Value > e.Scale.Max {
					t.Errorf("%s, %s: score %v off the scale", server.name, e.Name, v.Value)
				}
			case TaskClassification:
				if !slices.Contains(e.Labels, v.Label) {
					t.Errorf("%s, %s: label %q", server.name, e.Name, v.Label)
				}
			}
		}
		t.Logf("%s: %d of %d verdicts weighted by the server's logprobs", server.name, weighted, len(vs))
	}
}

// applyTemplate renders messages with the server's own chat template (llama-server's
// /apply-template, the text it would feed the model).
func applyTemplate(t *testing.T, base string, msgs []format.Message) string {
	t.Helper()
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	var body struct {
		Messages []msg `json:"messages"`
	}
	for _, m := range msgs {
		body.Messages = append(body.Messages, msg{m.Role, m.Content})
	}
	b, _ := json.Marshal(body)
	resp, err := http.Post(strings.TrimSuffix(base, "/v1")+"/apply-template", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Prompt string `json:"prompt"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/apply-template: status %d, %v", resp.StatusCode, err)
	}
	return out.Prompt
}

// TestLlamaCppChatTemplates: what the servers feed their models. On the Mistral v0.2
// server, prometheus2's folded default is one [INST] turn holding the system prompt, a
// blank line and the user message, as prometheus-eval sends it. A native system turn is
// not refused here: llama.cpp's template engine sees that the template has no system
// role and folds the system message into the first user turn itself (with one line
// break), where vLLM and transformers, which render with Jinja2, raise the template's
// "Conversation roles must alternate" (TestChatTemplatesRenderFormats shows that). On
// the Llama 3 server a native system turn gets the template's system header.
func TestLlamaCppChatTemplates(t *testing.T) {
	llama3, mistral := llamaURLs(t)
	f, err := format.Lookup(FormatPrometheus2)
	if err != nil {
		t.Fatal(err)
	}
	spec := format.Spec{Task: format.TaskPointwise, Criteria: "Is it correct?", Min: 1, Max: 5,
		Inputs: []format.Input{{Field: "prompt", Text: "How do I reset my password?"}, {Field: "response", Text: "Open Settings."}}}
	p, err := f.Render(spec)
	if err != nil {
		t.Fatal(err)
	}
	if f.SystemMode() != format.SystemFold || p.System == "" {
		t.Fatalf("prometheus2: system mode %s, system %q; want fold and a system prompt", f.SystemMode(), p.System)
	}
	if got, want := applyTemplate(t, mistral, p.Messages(format.SystemFold)), "[INST] "+p.System+"\n\n"+p.User+" [/INST]"; got != want {
		t.Errorf("fold on Mistral v0.2's template:\n%q\nwant\n%q", got, want)
	}
	if got, want := applyTemplate(t, mistral, p.Messages(format.SystemNative)), "[INST] "+p.System+"\n"+p.User+" [/INST]"; got != want {
		t.Errorf("native on Mistral v0.2's template, llama.cpp's own fold:\n%q\nwant\n%q", got, want)
	}
	got := applyTemplate(t, llama3, p.Messages(format.SystemNative))
	if !strings.Contains(got, "<|start_header_id|>system<|end_header_id|>") || !strings.Contains(got, p.System+"<|eot_id|>") {
		t.Errorf("native on Llama 3.1's template: no system turn:\n%q", got)
	}
}

// TestLlamaCppContextOverflow: a prompt over the server's context gets the server's own
// error (400, exceed_context_size_error), which raterd keeps as the verdict's error after
// one attempt, not a retry loop.
func TestLlamaCppContextOverflow(t *testing.T) {
	llama3, _ := llamaURLs(t)
	j, jc := llamaJudge(t, llama3, nil)
	r := llamaRecords(1)[0]
	r.Response = strings.Repeat("word ", 6000)
	e := &Evaluator{Name: "long", Judge: "llama", Criteria: "Is it correct?"}
	vs := judgeAll(t, j, jc, []*Evaluator{e}, []*record.Record{r})
	if vs[0].Err == nil || !strings.Contains(vs[0].Err.Error(), "exceeds the available context size") || vs[0].Attempts != 1 {
		t.Fatalf("over the context: err %v after %d attempts; want the server's context error after one", vs[0].Err, vs[0].Attempts)
	}
}

// TestLlamaCppParseFailures measures what guided decoding is for: the share of answers
// that do not parse with and without it, on the random-weight model (which never writes
// the format unguided). The figures go to docs/judges.md.
func TestLlamaCppParseFailures(t *testing.T) {
	llama3, _ := llamaURLs(t)
	recs := llamaRecords(4)
	for _, guided := range []bool{true, false} {
		j, jc := llamaJudge(t, llama3, func(c *OpenAIConfig) {
			if !guided {
				c.GuidedDecoding = ""
			}
			f := false
			c.FormatReminder = &f
		})
		evals := llamaEvaluators() // every format and task type
		vs := judgeAll(t, j, jc, evals, recs)
		failures := 0
		byFormat := map[string][2]int{}
		for i, v := range vs {
			f := evals[i/len(recs)].Format
			n := byFormat[f]
			n[1]++
			if v.Status == record.StatusParseFailure {
				failures++
				n[0]++
			}
			byFormat[f] = n
		}
		t.Logf("guided %v: %d of %d verdicts are parse failures (by format, failures/verdicts: %v)", guided, failures, len(vs), byFormat)
		if guided && failures != 0 {
			t.Errorf("guided decoding: %d parse failures, want none", failures)
		}
		if !guided && failures == 0 {
			t.Errorf("unguided: no parse failure from a random-weight model: is the server really unconstrained?")
		}
	}
}
