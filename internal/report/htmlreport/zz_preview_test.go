package htmlreport

import (
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"raterd/record"
)

func TestZZPreview(t *testing.T) {
	out := os.Getenv("PREVIEW_OUT")
	if out == "" {
		t.Skip()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	a := NewAggregator(Options{Now: t0})
	for i := range 3000 {
		ts := t0.Add(time.Duration(rng.IntN(3600)) * time.Second)
		for _, ev := range []string{"helpfulness", "duel"} {
			m := []string{"gpt-base", "canary-v2", "small"}[i%3]
			r := record.Score{EventTime: ts, Evaluator: ev, Model: m, Judge: "judge-" + ev, App: "shop", RecordID: "rec-1",
				Status: record.StatusOK, Value: rng.Float64()*0.5 + 0.3, Explanation: "The answer is fine but long.", Label: "good"}
			if m == "canary-v2" {
				r.Value += 0.1
			}
			if ev == "duel" {
				r.TaskType = TaskPairwise
				r.Label = []string{"first", "second", "inconsistent", "first"}[rng.IntN(4)]
			}
			if ts.Sub(t0) > 40*time.Minute && ts.Sub(t0) < 45*time.Minute && ev == "duel" {
				r.Status = record.StatusParseFailure
			}
			a.Add(&r)
		}
	}
	a.AddAlert(Alert{ID: "a1", Rule: "mean_drop", Evaluator: "helpfulness", Model: "small", State: "firing", Severity: "page",
		Observed: 0.5, Expected: 0.6, Low: 0.45, High: 0.55, SampleSize: 300, Since: t0.Add(20 * time.Minute), UpdatedAt: t0.Add(50 * time.Minute), Message: "mean fell"})
	a.AddAlert(Alert{ID: "a2", Rule: "judge_errors", Judge: "judge-duel", State: "resolved", Since: t0.Add(40 * time.Minute), UpdatedAt: t0.Add(46 * time.Minute)})
	f, _ := os.Create(out)
	defer f.Close()
	if err := Render(f, a.Data()); err != nil {
		t.Fatal(err)
	}
}
