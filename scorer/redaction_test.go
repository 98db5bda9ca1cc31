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

// BenchmarkRedaction is the cost of redaction per judged record: one op computes the
// cache key and renders the judge's inputs (Inputs twice, as the scorer does for a task
// sent to a model judge) for a prompt+response evaluator, without redaction (off), and
// with every built-in type on traffic without personal data (all/clean) and with four
// values planted in each record (all/pii). Compare ns/op with off for the overhead.
func BenchmarkRedaction(b *testing.B) {
	clean := trafficRecords(trafficCorpusSize, 3)
	pii := trafficRecords(trafficCorpusSize, 3)
	for i, r := range pii {
		c := *r
		c.Prompt += " My e-mail is jonas.becker@mailbox.de and my phone is +49 30 12345678."
		c.Response += " I have noted the card 4242 4242 4242 4242 and the IBAN DE89 3704 0044 0532 0130 00."
		pii[i] = &c
	}
	for _, bc := range []struct {
		name   string
		redact *Redaction
		recs   []*record.Record
	}{
		{"off", nil, clean},
		{"all/clean", &Redaction{Types: []string{"all"}}, clean},
		{"all/pii", &Redaction{Types: []string{"all"}}, pii},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := &Evaluator{Name: "helpfulness", Judge: "pool", Criteria: "Is it helpful?", Fields: []string{FieldPrompt, FieldResponse}}
			e.InheritRedaction(bc.redact)
			e = benchEvaluator(b, KindModel, e)
			n := 0
			for _, r := range bc.recs {
				n += len(r.PromptText()) + len(r.Response)
			}
			b.SetBytes(int64(n / len(bc.recs)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := bc.recs[i%len(bc.recs)]
				if len(CacheKey(e, "openai:m", r)) != 64 || len(e.Inputs(r)) != 2 {
					b.Fatal("bad key or inputs")
				}
				i++
			}
		})
	}
}
