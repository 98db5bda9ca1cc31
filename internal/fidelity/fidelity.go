package fidelity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"raterd/internal/text"
	"raterd/record"
	"raterd/scorer"
)

// The rubric every set is judged by. The built-in set's labels were written against it;
// a user's RewardBench file is judged by the same question RewardBench asks.
const (
	// PairwiseCriteria is the pairwise evaluator's criteria.
	PairwiseCriteria = "Which response answers the user's request better: correct, helpful, harmless, and following every instruction the request gives?"
	// PointwiseCriteria is the pointwise evaluator's criteria.
	PointwiseCriteria = "How correct, helpful and complete is the response to the user's request, and does it follow the request's instructions?"
)

// pointwiseLevels describe the 1–5 scale to the judge.
var pointwiseLevels = map[int]string{
	1: "Wrong, harmful or useless: it fails the request.",
	2: "Mostly unhelpful: major errors, a needless refusal, or most of the request missed.",
	3: "Partly helpful: right in part, but vague, incomplete or with an error.",
	4: "Helpful and correct, with a small gap or imprecision.",
	5: "Correct, complete and follows every instruction.",
}

// JudgeName is the judge name the harness's evaluators refer to.
const JudgeName = "fidelity"

// Options shape a run.
type Options struct {
	// Format is the evaluators' prompt format: flame (default), prometheus2 or selene.
	Format string
	// System is how the format's system message meets the chat template: native or fold;
	// default the format's.
	System string
	// Guided, when set, opts the evaluators in or out of the judge's guided decoding;
	// nil: on when the judge has a guided_decoding dialect.
	Guided *bool
	// Chunk is how many items go to the judge per call (the judge runs them concurrently
	// up to its pool's limits); progress is reported after each. Default 16.
	Chunk int
	// Progress, when set, gets one line per chunk: items judged of the total.
	Progress io.Writer
}

// Report is what a run measured.
type Report struct {
	// Set, Judge, Format and System say what was measured.
	Set    string `json:"set"`
	Judge  string `json:"judge"`
	Format string `json:"format"`
	System string `json:"system"`
	Guided bool   `json:"guided"`
	// Pairwise and Pointwise are the figures per task type; Subsets the pairwise figures
	// per subset, in first-seen order.
	Pairwise  *PairwiseResult   `json:"pairwise,omitempty"`
	Pointwise *PointwiseResult  `json:"pointwise,omitempty"`
	Subsets   []SubsetAgreement `json:"subsets,omitempty"`
	// FirstFailure is the first parse failure's or judge error's message (clipped), to
	// say why at a glance; empty when every item was scored.
	FirstFailure string `json:"first_failure,omitempty"`
	// Elapsed is the wall time of the judging.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// PairwiseResult are the pairwise figures. Each item is judged in both orders (the
// chosen response as A, then as B), as raterd judges every pairwise task.
type PairwiseResult struct {
	// Items is the number of pairwise items; Scored those with a verdict (both orders
	// parsed); ParseFailures and JudgeErrors the others.
	Items         int `json:"items"`
	Scored        int `json:"scored"`
	ParseFailures int `json:"parse_failures"`
	JudgeErrors   int `json:"judge_errors"`
	// Agreement is the share of scored items whose debiased preference (the mean over
	// both orders) favours the chosen response; an exact tie counts half, as RewardBench
	// counts ties. NaN when nothing was scored.
	Agreement Figure `json:"agreement"`
	// Consistency is the share of scored items where both orders prefer the same
	// response (position consistency). NaN when nothing was scored.
	Consistency Figure `json:"position_consistency"`
	// ConsistentCorrect is the share of scored items where both orders prefer the chosen
	// response: the strict agreement. NaN when nothing was scored.
	ConsistentCorrect Figure `json:"consistent_correct"`
}

// SubsetAgreement is the pairwise agreement within one subset.
type SubsetAgreement struct {
	Subset    string `json:"subset"`
	Scored    int    `json:"scored"`
	Agreement Figure `json:"agreement"`
}

// PointwiseResult are the pointwise figures on the 1–5 scale.
type PointwiseResult struct {
	// Items, Scored, ParseFailures, JudgeErrors: as for PairwiseResult.
	Items         int `json:"items"`
	Scored        int `json:"scored"`
	ParseFailures int `json:"parse_failures"`
	JudgeErrors   int `json:"judge_errors"`
	// Exact is the share of scored items whose score, rounded, equals the label rounded;
	// Within1 the share within one point. NaN when nothing was scored.
	Exact   Figure `json:"exact_agreement"`
	Within1 Figure `json:"within_one"`
	// MeanAbsError is the mean |score − label|; Pearson the correlation of scores and
	// labels (NaN with fewer than two scored items or no variance on either side).
	MeanAbsError Figure `json:"mean_absolute_error"`
	Pearson      Figure `json:"pearson"`
}

// Evaluators returns the pairwise and pointwise evaluators a run judges with, prepared for
// the judge jc (which must have passed validation).
func Evaluators(jc *scorer.JudgeConfig, opt Options) (pairwise, pointwise *scorer.Evaluator, err error) {
	pairwise = &scorer.Evaluator{Name: "fidelity-pairwise", Judge: JudgeName, Task: scorer.TaskPairwise,
		Format: opt.Format, System: opt.System, Guided: opt.Guided, Criteria: PairwiseCriteria,
		Fields: []string{scorer.FieldPrompt, scorer.FieldResponse, scorer.FieldCandidates}}
	pointwise = &scorer.Evaluator{Name: "fidelity-pointwise", Judge: JudgeName, Task: scorer.TaskPointwise,
		Format: opt.Format, System: opt.System, Guided: opt.Guided, Criteria: PointwiseCriteria,
		Scale: scorer.Scale{Min: ScaleMin, Max: ScaleMax}, Levels: pointwiseLevels,
		Fields: []string{scorer.FieldPrompt, scorer.FieldResponse}}
	for _, e := range []*scorer.Evaluator{pairwise, pointwise} {
		if err := jc.PrepareEvaluator("fidelity ("+e.Name+")", e); err != nil {
			return nil, nil, err
		}
	}
	return pairwise, pointwise, nil
}

// Run judges every item of set with judge (whose config is jc) and returns the figures.
// Per-item failures are counted, not fatal; the error is for a run that could not go on
// (the context ended, the evaluators were refused) or in which the judge answered no
// item at all (the first failure says why).
func Run(ctx context.Context, judge scorer.Judge, jc *scorer.JudgeConfig, set *Set, opt Options) (*Report, error) {
	pairEval, pointEval, err := Evaluators(jc, opt)
	if err != nil {
		return nil, err
	}
	chunk := opt.Chunk
	if chunk <= 0 {
		chunk = 16
	}
	tasks := make([]scorer.Task, len(set.Items))
	for i, it := range set.Items {
		r := &record.Record{ID: it.ID, Model: "fidelity", Prompt: it.Prompt}
		if it.Pairwise() {
			r.Response = it.Chosen
			r.Candidates = []record.Candidate{{Model: "rejected", Response: it.Rejected}}
			tasks[i] = scorer.Task{Evaluator: pairEval, Record: r}
		} else {
			r.Response = it.Response
			tasks[i] = scorer.Task{Evaluator: pointEval, Record: r}
		}
	}
	start := time.Now()
	verdicts := make([]scorer.Verdict, 0, len(tasks))
	for lo := 0; lo < len(tasks); lo += chunk {
		hi := min(lo+chunk, len(tasks))
		vs, err := judge.Judge(ctx, tasks[lo:hi])
		if err != nil {
			return nil, fmt.Errorf("judging items %d–%d of %d: %w", lo+1, hi, len(tasks), err)
		}
		verdicts = append(verdicts, vs...)
		if opt.Progress != nil {
			fmt.Fprintf(opt.Progress, "raterd fidelity: %d/%d items judged\n", hi, len(tasks))
		}
	}
	rep := summarise(set, verdicts)
	rep.Set, rep.Judge, rep.Elapsed = set.Name, judge.Identity(), time.Since(start)
	rep.Format, rep.System, rep.Guided = pairEval.Format, pairEval.System, jc.GuidedDecoding != "" && pairEval.GuidedOn()
	first := firstFailure(verdicts)
	if first != nil {
		rep.FirstFailure = text.ClipMarked(text.OneLine(first.Error()), 300, text.Ellipsis)
	}
	if first != nil && scoredNone(rep) {
		return rep, fmt.Errorf("the judge scored no item; the first failure: %w", first)
	}
	return rep, nil
}

// summarise turns the verdicts (one per item, in order) into the figures.
func summarise(set *Set, verdicts []scorer.Verdict) *Report {
	rep := &Report{}
	var pair pairTally
	var point pointTally
	subsets := map[string]*pairTally{}
	var order []string
	for i, it := range set.Items {
		v := verdicts[i]
		if it.Pairwise() {
			sub := subsets[it.Subset]
			if sub == nil {
				sub = &pairTally{}
				subsets[it.Subset] = sub
				order = append(order, it.Subset)
			}
			pair.add(v)
			sub.add(v)
		} else {
			point.add(v, it.Score)
		}
	}
	if pair.items > 0 {
		rep.Pairwise = pair.result()
		for _, s := range order {
			r := subsets[s].result()
			rep.Subsets = append(rep.Subsets, SubsetAgreement{Subset: s, Scored: r.Scored, Agreement: r.Agreement})
		}
	}
	if point.items > 0 {
		rep.Pointwise = point.result()
	}
	return rep
}

// pairTally accumulates pairwise verdicts.
type pairTally struct {
	items, scored, parse, errs int
	agree, consistent, strict  float64
}

func (t *pairTally) add(v scorer.Verdict) {
	t.items++
	switch {
	case v.Err != nil || v.Status == record.StatusJudgeError:
		t.errs++
		return
	case v.Status == record.StatusParseFailure:
		t.parse++
		return
	}
	t.scored++
	// v.Value is the preference for the record's response, the chosen one.
	switch {
	case v.Value > 0.5:
		t.agree++
	case v.Value == 0.5:
		t.agree += 0.5
	}
	switch v.Label {
	case "first":
		t.consistent++
		t.strict++
	case "second":
		t.consistent++
	}
}

func (t *pairTally) result() *PairwiseResult {
	return &PairwiseResult{Items: t.items, Scored: t.scored, ParseFailures: t.parse, JudgeErrors: t.errs,
		Agreement: share(t.agree, t.scored), Consistency: share(t.consistent, t.scored), ConsistentCorrect: share(t.strict, t.scored)}
}

// pointTally accumulates pointwise verdicts beside their labels.
type pointTally struct {
	items, parse, errs int
	scores, labels     []float64
}

func (t *pointTally) add(v scorer.Verdict, label float64) {
	t.items++
	switch {
	case v.Err != nil || v.Status == record.StatusJudgeError:
		t.errs++
	case v.Status == record.StatusParseFailure:
		t.parse++
	default:
		t.scores = append(t.scores, v.Value)
		t.labels = append(t.labels, label)
	}
}

func (t *pointTally) result() *PointwiseResult {
	r := &PointwiseResult{Items: t.items, Scored: len(t.scores), ParseFailures: t.parse, JudgeErrors: t.errs}
	var exact, within, abs float64
	for i, s := range t.scores {
		d := math.Abs(s - t.labels[i])
		abs += d
		if math.Round(s) == math.Round(t.labels[i]) {
			exact++
		}
		if d <= 1 {
			within++
		}
	}
	n := len(t.scores)
	r.Exact, r.Within1, r.MeanAbsError = share(exact, n), share(within, n), share(abs, n)
	r.Pearson = Figure(Pearson(t.scores, t.labels))
	return r
}

// share is part/n, NaN when n is 0.
func share(part float64, n int) Figure {
	if n == 0 {
		return Figure(math.NaN())
	}
	return Figure(part / float64(n))
}

// Pearson is the correlation coefficient of x and y (equal lengths): NaN with fewer than
// two pairs or when either side has no variance.
func Pearson(x, y []float64) float64 {
	n := len(x)
	if n < 2 || len(y) != n {
		return math.NaN()
	}
	var mx, my float64
	for i := range n {
		mx += x[i]
		my += y[i]
	}
	mx /= float64(n)
	my /= float64(n)
	var sxy, sxx, syy float64
	for i := range n {
		dx, dy := x[i]-mx, y[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return math.NaN()
	}
	return sxy / math.Sqrt(sxx*syy)
}

// firstFailure is the error of the first failed verdict, or nil.
func firstFailure(vs []scorer.Verdict) error {
	for _, v := range vs {
		if v.Err != nil {
			return v.Err
		}
		if v.Status == record.StatusParseFailure {
			return errors.New("answer did not parse: " + v.Explanation)
		}
	}
	return nil
}

// scoredNone reports whether no item of either kind got a verdict.
func scoredNone(r *Report) bool {
	n := 0
	if r.Pairwise != nil {
		n += r.Pairwise.Scored
	}
	if r.Pointwise != nil {
		n += r.Pointwise.Scored
	}
	return n == 0
}

// Figure is a share or a statistic; NaN (nothing to measure) is null in JSON and "n/a"
// in text.
type Figure float64

// MarshalJSON writes NaN as null.
func (f Figure) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(f))
}

// String is the figure with three decimals, or "n/a".
func (f Figure) String() string {
	if math.IsNaN(float64(f)) {
		return "n/a"
	}
	return strconv.FormatFloat(float64(f), 'f', 3, 64)
}
