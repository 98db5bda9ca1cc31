package scorer

import (
	"context"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"raterd/record"
	"raterd/scorer/cache"
)

// echoJudge answers with an explanation that quotes everything the judge read.
type echoJudge struct{ seen []string }

func (j *echoJudge) Identity() string { return "echo:v1" }

func (j *echoJudge) Judge(_ context.Context, tasks []Task) ([]Verdict, error) {
	out := make([]Verdict, len(tasks))
	for i, t := range tasks {
		var b strings.Builder
		for _, in := range t.Evaluator.Inputs(t.Record) {
			b.WriteString(in.Text + " | ")
		}
		j.seen = append(j.seen, b.String())
		out[i] = Verdict{Value: 3, Status: record.StatusOK, Attempts: 1, Confidence: 1, Explanation: "You said: " + b.String() + " and card 4111 1111 1111 1111"}
	}
	return out, nil
}

// TestRedactionReachesJudgeCacheKeyAndExplanation: the judge reads the masked text, two
// records differing only in their personal data share one cache key, and the stored
// explanation is masked (also the cached one).
func TestRedactionReachesJudgeCacheKeyAndExplanation(t *testing.T) {
	ev := &Evaluator{Name: "helpful", Judge: "j", Criteria: "be helpful"}
	ev.InheritRedaction(&Redaction{Types: []string{"all"}})
	if err := ev.Prepare("evaluators[0]", KindModel); err != nil {
		t.Fatal(err)
	}
	judge := &echoJudge{}
	mem := cache.NewMemory(1 << 20)
	s, err := New([]*Evaluator{ev}, map[string]Judge{"j": judge}, Options{Cache: mem})
	if err != nil {
		t.Fatal(err)
	}
	recs := []*record.Record{
		{ID: "a", Prompt: "Mail me at ann.lee@corp.io", Response: "Sure, I wrote to ann.lee@corp.io."},
		{ID: "b", Prompt: "Mail me at bo.chen@firm.de", Response: "Sure, I wrote to bo.chen@firm.de."},
	}
	if CacheKey(ev, "echo:v1", recs[0]) != CacheKey(ev, "echo:v1", recs[1]) {
		t.Error("records differing only in their e-mail address have different cache keys")
	}
	rows, st, err := s.ScoreBatch(context.Background(), recs)
	if err != nil {
		t.Fatal(err)
	}
	if st.JudgeCalls != 1 || len(judge.seen) != 1 || judge.seen[0] != "Mail me at [EMAIL] | Sure, I wrote to [EMAIL]. | " {
		t.Fatalf("judge calls %d, judge saw %q", st.JudgeCalls, judge.seen)
	}
	for _, r := range rows {
		if strings.Contains(r.Explanation, "@") || strings.Contains(r.Explanation, "4111") || !strings.Contains(r.Explanation, "[CARD]") {
			t.Errorf("stored explanation %q is not masked", r.Explanation)
		}
	}
	rows, st, err = s.ScoreBatch(context.Background(), recs[:1])
	if err != nil || st.CacheHits != 1 || strings.Contains(rows[0].Explanation, "4111") {
		t.Fatalf("cached row: %+v, %+v, %v", rows, st, err)
	}
}

func TestRedactionYAML(t *testing.T) {
	var e Evaluator
	if err := yaml.Unmarshal([]byte("{name: x, redact: off}"), &e); err != nil || e.Redact == nil || !e.Redact.Off {
		t.Fatalf("off: %+v, %v", e.Redact, err)
	}
	e = Evaluator{}
	if err := yaml.Unmarshal([]byte("{name: x, redact: {types: [ip], patterns: [{name: a, pattern: b}]}}"), &e); err != nil ||
		e.Redact.Off || e.Redact.Types[0] != "ip" || e.Redact.Patterns[0].Pattern != "b" {
		t.Fatalf("mapping: %+v, %v", e.Redact, err)
	}
	if err := yaml.Unmarshal([]byte("{name: x, redact: {type: [ip]}}"), &e); err == nil {
		t.Fatal("unknown key accepted")
	}
}
