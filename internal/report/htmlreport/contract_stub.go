//go:build !rcore_merged

package htmlreport

// Stub until rcore merges: the shared contract's types and methods with no-op bodies, so
// that the ClickHouse source builds on this branch. The lead deletes this file at the
// merge (and drops the build constraint of contract_fields.go).

import "time"

// Cell is pre-aggregated input, as a ClickHouse source delivers it (stub until rcore merges).
type Cell struct {
	Evaluator, Model, TaskType         string // TaskType: pointwise, pairwise or classification
	Start                              time.Time
	Scored, ParseFailures, JudgeErrors int64
	Sum, SumSquares                    float64 // of the scored (status ok) rows' values
}

// AddCell folds in a pre-aggregated cell (stub until rcore merges: does nothing).
func (a *Aggregator) AddCell(c Cell) {}

// JudgeCell is one judge's rows in one time bucket (stub until rcore merges).
type JudgeCell struct {
	Judge                          string
	Start                          time.Time
	OK, ParseFailures, JudgeErrors int64
}

// AddJudgeCell folds in a judge cell (stub until rcore merges: does nothing).
func (a *Aggregator) AddJudgeCell(c JudgeCell) {}

// AddWorst offers a row for its evaluator's worst-rows table (stub until rcore merges:
// does nothing).
func (a *Aggregator) AddWorst(r Row) {}

// LabelCount is a pairwise evaluator's label count (stub until rcore merges).
type LabelCount struct {
	Evaluator, Model, Label string
	Rows                    int64
}

// AddPairwise folds in a label count (stub until rcore merges: does nothing).
func (a *Aggregator) AddPairwise(c LabelCount) {}

// Alert is one quality-regression alert (stub until rcore merges).
type Alert struct {
	ID, Rule, Evaluator, Model, App, Judge, State, Severity, Message string
	Observed, Expected, Low, High                                    float64
	SampleSize                                                       int64
	Since, UpdatedAt                                                 time.Time
}

// AddAlert adds an alert (stub until rcore merges: does nothing).
func (a *Aggregator) AddAlert(al Alert) {}

// stubLadder is the contract's bucket ladder (stub until rcore merges).
var stubLadder = [...]time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour,
	3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}

// BucketFor returns the smallest of 1m, 5m, 15m, 1h, 3h, 6h, 12h, 24h, 7d giving at most
// maxPoints epoch-aligned buckets over [from, to); 7d when none does (stub until rcore
// merges, following the contract).
func BucketFor(from, to time.Time, maxPoints int) time.Duration {
	for _, w := range stubLadder {
		s := int64(w / time.Second)
		if to.Unix() <= from.Unix() || floorDiv(to.Unix()-1, s)-floorDiv(from.Unix(), s)+1 <= int64(maxPoints) {
			return w
		}
	}
	return stubLadder[len(stubLadder)-1]
}

// apply is Settings.apply without the Options fields rcore adds (stub until rcore
// merges): only the range's clock is used.
func (s Settings) apply(o Options) Options { return o }

// worstRow builds a worst-rows entry (stub until rcore merges: Row has no Evaluator or
// App field yet).
func worstRow(w worst) Row {
	return Row{EventTime: w.eventTime, Model: w.model, RecordID: w.recordID, Judge: w.judge,
		Label: w.label, Explanation: w.explanation, Score: w.score}
}

// withCellWidth tells the aggregator the width the cells were queried with (stub until
// rcore merges: Options has no MinBucket yet).
func withCellWidth(o Options, _ time.Duration) Options { return o }

// optionsNow returns the options' clock (stub until rcore merges: Options has no Now yet).
func optionsNow(Options) time.Time { return time.Time{} }
