package scorer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"raterd/record"
	"raterd/scorer/checks"
)

// HeuristicChecks returns the names of the built-in checks (see package checks), sorted.
// It returns a fresh slice on every call because config code may keep and modify it.
func HeuristicChecks() []string { return checks.Names() }

// heuristicFields returns the record fields a check reads (see checks.Fields). Only these
// reach the cache key, so a check must never look at anything else: json needs the
// prompt to know whether JSON was asked for; every other check looks at the response
// alone, so that a repeated response hits the cache whatever prompt produced it; the
// transcript checks read the transcript (and grounded_answer the response). The checks
// package names fields as this package does (FieldPrompt, FieldResponse,
// FieldTranscript).
func heuristicFields(check string) []string {
	if f := checks.Fields(check); f != nil {
		return f
	}
	return []string{FieldResponse}
}

// HeuristicJudge runs the built-in CPU checks (see HeuristicChecks and package checks).
// They need no model and no GPU, so every record can be checked; they give the first,
// cheap quality signal (refusals, empty or cut-off answers, loops, leaked PII, broken
// JSON) next to the model judges. It is safe for concurrent use: its checks.Set is.
type HeuristicJudge struct {
	// checks holds the compiled check patterns and scratch buffers.
	checks *checks.Set
}

// NewHeuristicJudge compiles the check patterns once; the judge is then reused for every
// batch.
func NewHeuristicJudge() *HeuristicJudge {
	return &HeuristicJudge{checks: checks.New()}
}

// Identity names the judge and the version of its rules. It is part of every cache key
// and score row, so it must change whenever a check's logic changes.
func (*HeuristicJudge) Identity() string { return "heuristic/v1" }

var _ UncachedJudge = (*HeuristicJudge)(nil)

// Uncached reports that the checks are cheaper to run again than to cache (see
// UncachedJudge): the scorer never caches their verdicts.
func (*HeuristicJudge) Uncached() bool { return true }

// Judge runs each task's check and returns one verdict per task, in order. A bad task
// (unknown check, missing record) fails alone through Verdict.Err; the call fails only
// when ctx ends, which is checked between tasks.
func (j *HeuristicJudge) Judge(ctx context.Context, tasks []Task) ([]Verdict, error) {
	out := make([]Verdict, len(tasks))
	for i, t := range tasks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		v := j.judgeOne(t)
		v.Latency = time.Since(start)
		v.Attempts = 1
		if v.Err != nil {
			v.Status = record.StatusJudgeError
		} else {
			v.Status = record.StatusOK
		}
		out[i] = v
	}
	return out, nil
}

func (j *HeuristicJudge) judgeOne(t Task) Verdict {
	if t.Evaluator == nil || t.Record == nil {
		return Verdict{Err: errors.New("heuristic: task without evaluator or record")}
	}
	name := t.Evaluator.Check
	check, ok := j.checks.Lookup(name)
	if !ok {
		return Verdict{Err: fmt.Errorf("heuristic: unknown check %q (one of %s)", name, strings.Join(HeuristicChecks(), ", "))}
	}
	// Read only the fields the evaluator declares: they alone make up the cache key, so
	// reading anything else could serve one record's verdict for another.
	fields := t.Evaluator.Fields
	if len(fields) == 0 {
		fields = heuristicFields(name)
	}
	if check.Scope != checks.ScopeRecord {
		// A transcript check reads exactly its declared fields.
		for _, f := range check.Fields {
			if !slices.Contains(fields, f) {
				return Verdict{Err: fmt.Errorf("heuristic: check %q reads %s, but evaluator %q does not declare field %q", name, strings.Join(check.Fields, ", "), t.Evaluator.Name, f)}
			}
		}
	} else if !slices.Contains(fields, FieldResponse) {
		return Verdict{Err: fmt.Errorf("heuristic: check %q reads the response, but evaluator %q does not declare field %q", name, t.Evaluator.Name, FieldResponse)}
	}
	var in checks.Input
	if check.Reads(checks.FieldResponse) {
		in.Response = t.Record.Response
	}
	if check.Reads(checks.FieldPrompt) && slices.Contains(fields, FieldPrompt) {
		in.Prompt, in.HasPrompt = t.Record.PromptText(), true
	}
	if check.Reads(checks.FieldTranscript) {
		in.Turns = checkTurns(TranscriptTurns(t.Record))
	}
	r := check.Run(in)
	return Verdict{Value: r.Value, Label: r.Label, Confidence: r.Confidence, Explanation: r.Explanation}
}
