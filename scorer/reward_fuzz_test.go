package scorer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"raterd/internal/telemetry"
	"raterd/record"
	"raterd/scorer/pool"
)

// Fuzz target for what a reward judge reads back: vLLM /pooling and /classify and TEI
// /predict answers. Seed corpus: testdata/fuzz/FuzzRewardResponse.

// fzRewardSettings are the judges an input picks from: each API, and the class or label
// settings that change how an answer is read.
func fzRewardSettings() []RewardSettings {
	zero := 0
	return []RewardSettings{
		{API: RewardVLLMPooling},
		{API: RewardVLLMClassify},
		{API: RewardVLLMClassify, LabelIndex: &zero},
		{API: RewardTEIPredict},
		{API: RewardTEIPredict, Label: "entailment"},
	}
}

func fzRewardJudge(tb testing.TB, tr http.RoundTripper, s RewardSettings) *RewardJudge {
	tb.Helper()
	j, err := NewRewardJudge(RewardConfig{Model: "rm", Settings: s, Pool: pool.Config{
		Endpoints: []pool.Endpoint{{URL: "http://reward.fuzz.invalid"}}, MaxAttempts: 1, Timeout: 10 * time.Second,
		Concurrency: pool.Concurrency{Mode: pool.ModeFixed},
	}}, JudgeSettings{Key: "judges.fuzz", HTTPClient: &http.Client{Transport: tr}, Telemetry: telemetry.Settings{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = j.Close(context.Background()) })
	return j
}

// fzRewardEvaluators: pointwise, classification taking any label, classification with
// a fixed label set.
func fzRewardEvaluators(tb testing.TB) []*Evaluator {
	tb.Helper()
	es := []*Evaluator{
		{Name: "reward", Judge: "rm"},
		{Name: "classes", Judge: "rm", Task: TaskClassification, PositiveLabel: "LABEL_1"},
		{Name: "nli", Judge: "rm", Task: TaskClassification, Labels: []string{"entailment", "contradiction"}},
	}
	for i, e := range es {
		if err := e.Prepare(fmt.Sprintf("evaluators[%d]", i), KindReward); err != nil {
			tb.Fatal(err)
		}
	}
	return es
}

// fzCanonicalReward writes items back in the API's answer shape, so that decoding it
// must give the same items.
func fzCanonicalReward(s RewardSettings, items []rewardItem) any {
	switch s.API {
	case RewardTEIPredict:
		out := make([][]map[string]any, len(items))
		for i, it := range items {
			out[i] = []map[string]any{{"label": it.label, "score": it.prob}}
			if it.noScore != "" {
				if s.Label == "" { // two predictions, neither the default label
					out[i] = append(out[i], map[string]any{"label": it.label, "score": it.prob})
				}
				continue
			}
			want := s.Label
			if want == "" {
				want = rewardDefaultTEILabel
			}
			out[i] = append(out[i], map[string]any{"label": want, "score": it.score})
		}
		return out
	case RewardVLLMClassify:
		data := make([]map[string]any, len(items))
		for i, it := range items {
			probs := []float64{it.prob, it.score} // the last class is read by default
			if s.LabelIndex != nil {
				probs = []float64{it.score, it.prob}
			}
			data[i] = map[string]any{"index": i, "label": it.label, "probs": probs}
		}
		return map[string]any{"data": data}
	default:
		data := make([]map[string]any, len(items))
		for i, it := range items {
			data[i] = map[string]any{"index": i, "data": []float64{it.score}}
		}
		return map[string]any{"data": data}
	}
}

// FuzzRewardResponse feeds arbitrary bodies as a reward server's 200 answer to a batch
// of 1–8 inputs, for each API.
//
// Decoding (decode): it never panics; an accepted answer has one finite-scored item per
// input, a classifier's probability is its largest class probability (so at least the
// score read from it), an item without a score has none; decoding is deterministic and
// survives writing the items back in the API's shape; errors are one line of valid UTF-8.
//
// Verdicts (Judge): one per task, the Verdict contract (known status, error exactly on
// judge_error, finite numbers, confidence in [0,1], a label from the evaluator's set,
// the decoded score as a pointwise value), an answer the decoder rejects for every batch
// size fails its items as judge_error rows without making the judge unavailable, and the
// same answer gives the same verdicts.
func FuzzRewardResponse(f *testing.F) {
	f.Add(uint8(0), uint8(1), []byte(`{"object":"list","data":[{"index":1,"data":[0.5,2.5]},{"index":0,"data":-1.25}]}`))
	f.Add(uint8(1), uint8(1), []byte(`{"data":[{"index":0,"label":"LABEL_1","probs":[0.1,0.9]},{"index":1,"label":"LABEL_0","probs":[0.8,0.2]}]}`))
	f.Add(uint8(8), uint8(1), []byte(`[[{"label":"entailment","score":0.8},{"label":"contradiction","score":0.2}],[{"label":"contradiction","score":0.7},{"label":"entailment","score":0.3}]]`))
	f.Add(uint8(3), uint8(0), []byte(`[[{"label":"LABEL_0","score":0.6}]]`))
	f.Add(uint8(0), uint8(0), []byte(`{"data":[{"index":0,"data":[]}]}`))
	f.Add(uint8(1), uint8(0), []byte(`{"data":[{"index":0,"probs":[]}]}`))
	f.Add(uint8(0), uint8(1), []byte(`{"data":[{"index":0,"data":[1]},{"index":0,"data":[2]}]}`))
	f.Add(uint8(0), uint8(0), []byte(`{"data":[{"index":0,"data":1e400}]}`))
	f.Add(uint8(2), uint8(0), []byte(`null`))
	tr := &fzBodyTransport{}
	settings := fzRewardSettings()
	judges := make([]*RewardJudge, len(settings))
	for i, s := range settings {
		judges[i] = fzRewardJudge(f, tr, s)
	}
	evals := fzRewardEvaluators(f)
	f.Fuzz(func(t *testing.T, sel, count uint8, body []byte) {
		if len(body) > 64<<10 {
			return
		}
		k := int(sel) % len(judges)
		j, s, e := judges[k], judges[k].cfg.Settings, evals[int(sel)/len(judges)%len(evals)]
		n := 1 + int(count)%8
		tr.set(body)

		items, err := j.decode(body, n)
		items2, err2 := j.decode(body, n)
		if (err == nil) != (err2 == nil) || !slices.Equal(items, items2) {
			t.Fatalf("decoding the same answer twice differs: %+v %v / %+v %v", items, err, items2, err2)
		}
		if err != nil {
			if items != nil {
				t.Fatalf("rejected answer returned items %+v", items)
			}
			if msg := err.Error(); !utf8.ValidString(msg) || strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error is not one line of valid UTF-8: %q", msg)
			}
		} else {
			if len(items) != n {
				t.Fatalf("%d items for %d inputs", len(items), n)
			}
			for i, it := range items {
				if math.IsNaN(it.score) || math.IsInf(it.score, 0) || math.IsNaN(it.prob) || math.IsInf(it.prob, 0) {
					t.Fatalf("item %d is not finite: %+v", i, it)
				}
				switch s.API {
				case RewardVLLMPooling:
					if it.label != "" || it.prob != 0 || it.noScore != "" {
						t.Fatalf("a pooled output has a label or probability: %+v", it)
					}
				default:
					if !isProbability(it.prob) || !isProbability(it.score) {
						t.Fatalf("item %d: a class probability outside [0,1] was accepted: %+v", i, it)
					}
					if it.noScore == "" && it.prob < it.score {
						t.Fatalf("item %d: probability %v of the best class is below the score read %v", i, it.prob, it.score)
					}
					if it.noScore != "" && (it.score != 0 || s.API != RewardTEIPredict) {
						t.Fatalf("item %d: %+v", i, it)
					}
				}
			}
			canon, merr := json.Marshal(fzCanonicalReward(s, items))
			if merr != nil {
				t.Fatal(merr)
			}
			back, berr := j.decode(canon, n)
			if berr != nil || !slices.EqualFunc(back, items, func(a, b rewardItem) bool {
				return a.score == b.score && a.label == b.label && a.prob == b.prob && (a.noScore == "") == (b.noScore == "")
			}) {
				t.Fatalf("round trip through %s:\n%+v\n%+v %v", canon, items, back, berr)
			}
		}

		tasks := make([]Task, n)
		for i := range tasks {
			tasks[i] = Task{Evaluator: e, Record: &record.Record{ID: fmt.Sprint("r", i), Model: "m", Prompt: "P", Response: fmt.Sprint("answer ", i)}}
		}
		vs, jerr := j.Judge(context.Background(), tasks)
		if jerr != nil || len(vs) != n {
			t.Fatalf("Judge: %d verdicts for %d tasks, %v", len(vs), n, jerr)
		}
		// A request that fails for good is split in halves and retried, so an answer is
		// wrong for the batch only if it is wrong for every batch size the split tries.
		anySize := false
		for m := 1; m <= n && !anySize; m++ {
			_, merr := j.decode(body, m)
			anySize = merr == nil
		}
		for i, v := range vs {
			if !slices.Contains(fzValidStatus, v.Status) || (v.Err != nil) != (v.Status == record.StatusJudgeError) {
				t.Fatalf("verdict %d: status %q with error %v", i, v.Status, v.Err)
			}
			if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) || math.IsNaN(v.Confidence) || math.IsInf(v.Confidence, 0) {
				t.Fatalf("verdict %d is not finite: %+v", i, v)
			}
			if v.Confidence < 0 || v.Confidence > 1 {
				t.Fatalf("verdict %d: confidence %v outside [0,1]", i, v.Confidence)
			}
			if errors.Is(v.Err, ErrJudgeUnavailable) {
				t.Fatalf("verdict %d: a malformed answer made the judge unavailable: %v", i, v.Err)
			}
			if !anySize && v.Status != record.StatusJudgeError {
				t.Fatalf("verdict %d: an answer the decoder rejects for any batch size gave %+v", i, v)
			}
			if v.Status == record.StatusOK && e.Task == TaskClassification {
				if v.Label == "" || len(e.Labels) > 0 && !slices.Contains(e.Labels, v.Label) {
					t.Fatalf("verdict %d: label %q is not one of %v", i, v.Label, e.Labels)
				}
				if want := map[bool]float64{true: 1, false: 0}[v.Label == e.PositiveLabel]; v.Value != want {
					t.Fatalf("verdict %d: label %q scores %v", i, v.Label, v.Value)
				}
			}
			if v.Status == record.StatusOK && e.Task == TaskPointwise && err == nil && v.Value != items[i].score {
				t.Fatalf("verdict %d: value %v, decoded score %v", i, v.Value, items[i].score)
			}
		}
		again, _ := j.Judge(context.Background(), tasks)
		for i := range vs {
			if !fzSameVerdict(vs[i], again[i]) {
				t.Fatalf("verdict %d differs on the same answer:\n%+v\n%+v", i, vs[i], again[i])
			}
		}
	})
}
