// Package htmlreport builds `raterd report html`: one self-contained HTML page (inline CSS,
// inline SVG charts drawn with gonum/plot, no scripts, nothing fetched over the network)
// from score rows, or from the pre-aggregated cells a ClickHouse source delivers.
//
// The page is built in two steps. An Aggregator folds rows and cells into a Data: cells per
// evaluator, model and time bucket (scored rows, parse failures, judge errors, sum and sum
// of squares of the scores), cells per judge and bucket, the pairwise evaluators' label
// counts, the lowest-scored rows per evaluator and the alerts. Render then draws the Data.
//
// Memory is bounded by the number of cells, not of rows, so a large NDJSON file streams
// through it. Cells start 1 minute wide; when there are more than Options.MaxCells of them
// (default 100,000: a few tens of MB) the aggregator merges them all into the next width of
// the ladder 1m, 5m, 15m, 1h, 3h, 6h, 12h, 24h, 7d and keeps adding at that width. At
// Data time the cells are merged again into the display width, BucketFor(from, to,
// MaxPoints) (past 7d a multiple of 7d) and never finer than the cells, so that no chart
// has more than Options.MaxPoints points in time.
package htmlreport

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"raterd/internal/report/welch"
	"raterd/record"
)

// Options select the rows a report covers and bound its size.
type Options struct {
	// Evaluators, Models and Apps keep only rows whose field is one of the values; empty
	// keeps every value.
	Evaluators, Models, Apps []string
	// From and To bound the event time, half-open [From, To); a zero time leaves that side
	// open (the range is then the rows' own).
	From, To time.Time
	// Worst is how many lowest-scored rows to keep per evaluator (default 10).
	Worst int
	// MaxPoints bounds the time buckets per chart (default 120): longer ranges get wider
	// buckets.
	MaxPoints int
	// MaxModels bounds the models drawn per evaluator chart (default 8, the palette's
	// size); the models with the most scored rows are drawn, the others are listed. It
	// also bounds the comparisons per evaluator to MaxModels − 1.
	MaxModels int
	// ModelA and ModelB choose the comparison: B against A. When either is empty (or not
	// among an evaluator's models) each model is compared against the evaluator's busiest
	// model (most scored rows).
	ModelA, ModelB string
	// Now is the time the page says it was written (for tests); zero: time.Now().
	Now time.Time
	// Redact, when set, is applied to every label and explanation shown (worst rows).
	Redact func(string) string
	// MinBucket is the finest display bucket: a pre-aggregated source (AddCell) sets the
	// width it queried with. Rounded up to a width of the ladder; zero: 1 minute.
	MinBucket time.Duration
	// MaxCells bounds the cells held before they are merged into wider ones (default
	// 100,000).
	MaxCells int
}

func (o Options) withDefaults() Options {
	if o.Worst <= 0 {
		o.Worst = 10
	}
	if o.MaxPoints <= 0 {
		o.MaxPoints = DefaultMaxPoints
	}
	if o.MaxModels <= 0 {
		o.MaxModels = len(palette)
	}
	if o.MaxCells <= 0 {
		o.MaxCells = 100_000
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	return o
}

// DefaultMaxPoints is Options.MaxPoints' default.
const DefaultMaxPoints = 120

// maxScore bounds the magnitude of a score the report takes: no rubric scale comes near it,
// and beyond it sums overflow and chart axes lose the precision to tell min from max.
const maxScore = 1e12

// maxAlerts bounds the alerts a report holds: the newest by Since are kept, older ones are
// counted, not kept.
const maxAlerts = 1000

// ladder are the cell and bucket widths, finest first. Each divides the next, and buckets
// align to multiples of their width since the Unix epoch (UTC), so cells merge exactly into
// any wider bucket of the ladder.
var ladder = [...]time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour,
	3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}

// BucketFor returns the smallest width of the ladder 1m, 5m, 15m, 1h, 3h, 6h, 12h, 24h, 7d,
// continued past 7d by its multiples 14d, 21d, 28d, …, whose buckets, aligned to multiples
// of the width since the Unix epoch, cover [from, to) in at most maxPoints buckets. An
// empty range gets 1m; maxPoints ≤ 0 means DefaultMaxPoints.
func BucketFor(from, to time.Time, maxPoints int) time.Duration {
	if maxPoints <= 0 {
		maxPoints = DefaultMaxPoints
	}
	return time.Duration(bucketAtLeast(from.Unix(), to.Unix(), 0, int64(maxPoints))) * time.Second
}

// bucketAtLeast returns the smallest width in seconds, at least minW, of the ladder
// continued by multiples of 7d, whose aligned buckets cover [from, to) (Unix seconds) in at
// most maxPoints buckets. Every width it returns is a multiple of each narrower ladder width, so
// cells of any width of the ladder merge exactly into its buckets.
func bucketAtLeast(from, to, minW, maxPoints int64) int64 {
	for _, w := range ladder {
		ws := int64(w / time.Second)
		if ws >= minW && buckets(from, to, ws) <= maxPoints {
			return ws
		}
	}
	week := int64(ladder[len(ladder)-1] / time.Second)
	k := max(1, (minW+week-1)/week)
	if to > from {
		// The fewest weeks per bucket that could do, then step up to one that does.
		k = max(k, (to-from)/week/maxPoints)
	}
	for buckets(from, to, k*week) > maxPoints {
		k++
	}
	return k * week
}

// buckets counts the aligned buckets of width w seconds that [from, to) touches.
func buckets(from, to, w int64) int64 {
	if to <= from {
		return 0
	}
	return floorDiv(to-1, w) - floorDiv(from, w) + 1
}

// ladderAtLeast returns the narrowest ladder width ≥ d (the widest when none is).
func ladderAtLeast(d time.Duration) time.Duration {
	for _, w := range ladder {
		if w >= d {
			return w
		}
	}
	return ladder[len(ladder)-1]
}

// Task types, as record.Score.TaskType and Cell.TaskType name them.
const (
	TaskPointwise      = "pointwise"
	TaskPairwise       = "pairwise"
	TaskClassification = "classification"
)

// Pairwise label categories, in the order the page stacks them.
var pairwiseLabels = [...]string{"first", "second", "tie", "inconsistent", "other"}

// labelCategory maps a pairwise verdict's label to its index in pairwiseLabels.
func labelCategory(label string) int {
	for i, l := range pairwiseLabels[:len(pairwiseLabels)-1] {
		if strings.EqualFold(strings.TrimSpace(label), l) {
			return i
		}
	}
	return len(pairwiseLabels) - 1
}

// Cell is pre-aggregated input, as a ClickHouse source delivers it: one evaluator's and
// model's rows in one time bucket (times UTC, Start aligned to the bucket width the source
// queried with).
type Cell struct {
	Evaluator, Model, TaskType         string // TaskType: pointwise, pairwise or classification
	Start                              time.Time
	Scored, ParseFailures, JudgeErrors int64
	Sum, SumSquares                    float64 // of the scored (status ok) rows' values
	// Skipped counts the ok rows left out of Scored and the sums because their score was
	// not a finite number within ±1e12; Data.Skipped adds them up.
	Skipped int64
}

// JudgeCell is pre-aggregated input: one judge's rows in one time bucket, by outcome.
type JudgeCell struct {
	Judge                          string
	Start                          time.Time
	OK, ParseFailures, JudgeErrors int64
}

// LabelCount is pre-aggregated input: how many scored rows of a pairwise evaluator and
// model got a label (first, second, tie, inconsistent, …).
type LabelCount struct {
	Evaluator, Model, Label string
	Rows                    int64
}

// Alert is one quality-regression alert, as the ClickHouse alerts table holds it.
type Alert struct {
	ID, Rule, Evaluator, Model, App, Judge, State, Severity, Message string
	Observed, Expected, Low, High                                    float64
	SampleSize                                                       int64
	Since, UpdatedAt                                                 time.Time
}

// Ongoing reports whether the alert was still pending or firing at its last update: it
// lasts until it resolves, whatever the time of that update.
func (al Alert) Ongoing() bool { return al.State != "resolved" }

// Data is what the page shows.
type Data struct {
	// From and To are the range shown: the options' range, or where a side is open, the
	// rows' range widened to whole buckets. Zero when there is no data and the options
	// leave the range open.
	From, To time.Time
	// Generated is when the report was written (Options.Now).
	Generated time.Time
	// Filters describes the options' filters for the page header ("evaluator ∈ {x}", …).
	Filters []string
	// ModelA and ModelB are the options' comparison choice, empty when not set.
	ModelA, ModelB string
	// Bucket is the width of one time bucket of the charts; zero when there is no range.
	Bucket time.Duration
	// CellWidth is the width of the aggregator's cells when Data was called: the finest
	// bucket the data allows.
	CellWidth time.Duration
	// Rows counts the rows in the range (every status); Skipped counts scored rows in the
	// range left out because their score was not a number within ±1e12 (maxScore).
	Rows, Skipped int
	// Evaluators holds one entry per evaluator, by name.
	Evaluators []Evaluator
	// Alerts holds the newest 1000 alerts in the range (by Since, whatever the order they
	// were added in), sorted oldest first; AlertsDropped counts the older ones left out. When
	// AlertsDroppedAtLeast is set the source delivered only some of them (FromClickHouse
	// asks for the newest 1001), so AlertsDropped is a lower bound.
	Alerts               []Alert
	AlertsDropped        int
	AlertsDroppedAtLeast bool
	// Judges holds the rows per judge, judges sorted by name.
	Judges []JudgeFailures
}

// Evaluator is one evaluator's part of the page.
type Evaluator struct {
	Name string
	// TaskType is the evaluator's task type as the rows name it (pointwise, pairwise,
	// classification; anything else is drawn as pointwise).
	TaskType string
	// Series holds one series per model, most scored rows first; at most Options.MaxModels.
	Series []Series
	// Volume holds the scored and failed rows per bucket over all models (Mean unset).
	Volume []Point
	// OtherModels names the models left out of Series, most scored rows first.
	OtherModels []string
	// Worst holds the lowest-scored rows, lowest first.
	Worst []Row
	// Comparisons holds the model comparisons; NoComparison says why there are none.
	Comparisons  []Comparison
	NoComparison string
	// Pairwise holds the label shares per model of a pairwise evaluator.
	Pairwise []PairwiseShare
}

// KnownTaskType reports whether the evaluator's task type is one this version knows.
func (e Evaluator) KnownTaskType() bool {
	switch e.TaskType {
	case TaskPointwise, TaskPairwise, TaskClassification, "":
		return true
	}
	return false
}

// Series is one model's trend under one evaluator.
type Series struct {
	Model string
	// Points are the buckets with any row, in time order.
	Points []Point
	// Scored, ParseFailures, JudgeErrors, Sum and SumSquares summarise the whole range;
	// Failed is ParseFailures + JudgeErrors and Mean is Sum / Scored (NaN when none).
	Scored, Failed, ParseFailures, JudgeErrors int64
	Sum, SumSquares, Mean                      float64
}

// Point is one time bucket of a series.
type Point struct {
	Start          time.Time
	Scored, Failed int64
	// Mean is the mean score of the scored rows; NaN when none.
	Mean float64
}

// Row is one score row as the worst-rows table shows it.
type Row struct {
	EventTime                                                  time.Time
	Evaluator, Model, App, RecordID, Judge, Label, Explanation string
	Score                                                      float64
}

// Comparison is model B against model A under one evaluator over the whole range.
type Comparison struct {
	ModelA, ModelB string
	welch.Result
	// Verdict and VerdictText are welch.Verdict's short word and sentence.
	Verdict, VerdictText string
}

// PairwiseShare is one model's verdict labels under a pairwise evaluator.
type PairwiseShare struct {
	Model string
	// Counts holds the rows per label: first, second, tie, inconsistent, other.
	Counts [5]int64
	Total  int64
	// Preference is the mean score (the preference for the response), NaN when unknown.
	Preference float64
}

// Share returns the share of label i (0 first … 4 other) in percent.
func (p PairwiseShare) Share(i int) float64 {
	if p.Total == 0 || i < 0 || i >= len(p.Counts) {
		return 0
	}
	return 100 * float64(p.Counts[i]) / float64(p.Total)
}

// JudgeFailures counts one judge's rows by outcome, over the range and per bucket.
type JudgeFailures struct {
	Judge                              string
	Scored, ParseFailures, JudgeErrors int64
	// Points are the buckets with any row, in time order.
	Points []JudgePoint
}

// FailureShare is the share of the judge's rows that failed, in percent.
func (j JudgeFailures) FailureShare() float64 {
	n := j.Scored + j.ParseFailures + j.JudgeErrors
	if n == 0 {
		return 0
	}
	return 100 * float64(j.ParseFailures+j.JudgeErrors) / float64(n)
}

// JudgePoint is one time bucket of a judge's rows.
type JudgePoint struct {
	Start                          time.Time
	OK, ParseFailures, JudgeErrors int64
}

type cellKey struct {
	evaluator, model string
	start            int64 // Unix seconds, a multiple of the cell width
}

type cell struct {
	scored, parse, errs int64
	sum, sumsq          float64
}

func (c *cell) add(o cell) {
	c.scored += o.scored
	c.parse += o.parse
	c.errs += o.errs
	c.sum += o.sum
	c.sumsq += o.sumsq
}

type judgeKey struct {
	judge string
	start int64
}

type judgeCell struct{ ok, parse, errs int64 }

type labelKey struct {
	evaluator, model string
	label            int
}

// Aggregator folds rows and cells into a Data. The zero value is not usable: use
// NewAggregator.
type Aggregator struct {
	opts                     Options
	evaluators, models, apps map[string]bool
	width                    int64 // cell width, seconds
	cells                    map[cellKey]*cell
	judgeCells               map[judgeKey]*judgeCell
	taskTypes                map[string]string
	labels                   map[labelKey]int64
	worst                    map[string][]Row
	alerts                   []Alert
	alertsDropped            int
	rows, skipped            int
	minT, maxT               int64 // Unix seconds of the data seen, [minT, maxT)
}

// NewAggregator returns an empty aggregator for opts.
func NewAggregator(opts Options) *Aggregator {
	return &Aggregator{
		opts:       opts.withDefaults(),
		evaluators: set(opts.Evaluators),
		models:     set(opts.Models),
		apps:       set(opts.Apps),
		width:      int64(ladder[0] / time.Second),
		cells:      map[cellKey]*cell{},
		judgeCells: map[judgeKey]*judgeCell{},
		taskTypes:  map[string]string{},
		labels:     map[labelKey]int64{},
		worst:      map[string][]Row{},
		minT:       math.MaxInt64,
		maxT:       math.MinInt64,
	}
}

func set(vs []string) map[string]bool {
	if len(vs) == 0 {
		return nil
	}
	m := make(map[string]bool, len(vs))
	for _, v := range vs {
		m[v] = true
	}
	return m
}

// FromScores aggregates rows (the NDJSON sink's rows, decoded) into a Data.
func FromScores(rows []record.Score, opts Options) Data {
	a := NewAggregator(opts)
	for i := range rows {
		a.Add(&rows[i])
	}
	return a.Data()
}

// keep reports whether the filters keep a row of evaluator, model and app.
func (a *Aggregator) keep(evaluator, model, app string) bool {
	return (a.evaluators == nil || a.evaluators[evaluator]) &&
		(a.models == nil || a.models[model]) &&
		(a.apps == nil || a.apps[app])
}

// inRange reports whether t is in the options' range.
func (a *Aggregator) inRange(t time.Time) bool {
	return (a.opts.From.IsZero() || !t.Before(a.opts.From)) && (a.opts.To.IsZero() || t.Before(a.opts.To))
}

func (a *Aggregator) seen(from, to int64) {
	a.minT, a.maxT = min(a.minT, from), max(a.maxT, to)
}

// Add folds one score row in; rows outside the options' filters and range are ignored.
func (a *Aggregator) Add(r *record.Score) {
	if !a.keep(r.Evaluator, r.Model, r.App) || !a.inRange(r.EventTime) {
		return
	}
	a.rows++
	ok := r.Status == record.StatusOK
	if ok && !(math.Abs(r.Value) <= maxScore) { // NaN and infinities too
		a.skipped++
		return
	}
	ev, model := clean(r.Evaluator), clean(r.Model)
	a.taskType(ev, r.TaskType)
	sec := r.EventTime.Unix()
	a.seen(sec, sec+1)
	var c cell
	var j judgeCell
	switch r.Status {
	case record.StatusOK:
		c = cell{scored: 1, sum: r.Value, sumsq: r.Value * r.Value}
		j.ok = 1
	case record.StatusParseFailure:
		c.parse, j.parse = 1, 1
	default: // judge_error, and any status this version does not know
		c.errs, j.errs = 1, 1
	}
	a.addCell(ev, model, sec, c)
	a.addJudge(clean(r.Judge), sec, j)
	if ok {
		a.addWorst(Row{EventTime: r.EventTime, Evaluator: ev, Model: model, App: clean(r.App),
			RecordID: clean(r.RecordID), Judge: clean(r.Judge), Label: rawClip(maxName, r.Label),
			Explanation: rawClip(maxText, r.Explanation), Score: r.Value})
		if strings.EqualFold(a.taskTypes[ev], TaskPairwise) {
			a.labels[labelKey{ev, model, labelCategory(r.Label)}]++
		}
	}
}

// SourceBucket is the bucket width a pre-aggregated source should query with for the
// options' range (both sides set): the width the page will chart, BucketFor(From, To,
// MaxPoints) and at least MinBucket. Cells of that width chart without gaps.
func (a *Aggregator) SourceBucket() time.Duration {
	o := a.opts
	return sourceBucket(o.From, o.To, o.MaxPoints, o.MinBucket)
}

// sourceBucket is SourceBucket's width for [from, to): the smallest width of the ladder
// continued by multiples of 7d that is at least minBucket and gives at most maxPoints
// buckets (BucketFor's rule). FromClickHouse queries with it and Data charts with it.
func sourceBucket(from, to time.Time, maxPoints int, minBucket time.Duration) time.Duration {
	if maxPoints <= 0 {
		maxPoints = DefaultMaxPoints
	}
	minW := int64(ladderAtLeastOrWeeks(minBucket) / time.Second)
	return time.Duration(bucketAtLeast(from.Unix(), to.Unix(), minW, int64(maxPoints))) * time.Second
}

// ladderAtLeastOrWeeks returns the narrowest width of the ladder continued by multiples of
// 7d that is ≥ d.
func ladderAtLeastOrWeeks(d time.Duration) time.Duration {
	week := ladder[len(ladder)-1]
	if d <= week {
		return ladderAtLeast(d)
	}
	return (d + week - 1) / week * week
}

// AddCell folds in a pre-aggregated cell, at the cell width (1 minute unless merged) its
// Start falls in: the source should query with SourceBucket's width, or set
// Options.MinBucket to the width it used, so that the page charts whole source buckets; cells outside the options' filters, or whose
// sums are not finite numbers within range, are ignored (the latter counted as skipped).
// The source is trusted to have applied the time range.
func (a *Aggregator) AddCell(c Cell) {
	if !a.keep(c.Evaluator, c.Model, "") || c.Scored < 0 || c.ParseFailures < 0 || c.JudgeErrors < 0 || c.Skipped < 0 {
		return
	}
	a.rows += int(c.Scored + c.ParseFailures + c.JudgeErrors + c.Skipped)
	a.skipped += int(c.Skipped)
	if !(math.Abs(c.Sum) <= maxScore*float64(max(c.Scored, 1))) || !(c.SumSquares >= 0) || math.IsInf(c.SumSquares, 0) {
		a.skipped += int(c.Scored)
		c.Scored, c.Sum, c.SumSquares = 0, 0, 0
	}
	ev := clean(c.Evaluator)
	a.taskType(ev, c.TaskType)
	sec := c.Start.Unix()
	a.seen(sec, sec+1)
	a.addCell(ev, clean(c.Model), sec, cell{scored: c.Scored, parse: c.ParseFailures, errs: c.JudgeErrors,
		sum: c.Sum, sumsq: c.SumSquares})
}

// AddJudgeCell folds in a pre-aggregated judge cell.
func (a *Aggregator) AddJudgeCell(c JudgeCell) {
	if c.OK < 0 || c.ParseFailures < 0 || c.JudgeErrors < 0 {
		return
	}
	sec := c.Start.Unix()
	a.seen(sec, sec+1)
	a.addJudge(clean(c.Judge), sec, judgeCell{ok: c.OK, parse: c.ParseFailures, errs: c.JudgeErrors})
}

// AddWorst offers a row for its evaluator's worst-rows table, which keeps the
// Options.Worst lowest-scored; rows outside the filters or with a score that is not a
// finite number are ignored.
func (a *Aggregator) AddWorst(r Row) {
	if !a.keep(r.Evaluator, r.Model, r.App) || !(math.Abs(r.Score) <= maxScore) {
		return
	}
	for _, s := range []*string{&r.Evaluator, &r.Model, &r.App, &r.RecordID, &r.Judge} {
		*s = clean(*s)
	}
	r.Label, r.Explanation = rawClip(maxName, r.Label), rawClip(maxText, r.Explanation)
	a.addWorst(r)
}

// AddPairwise folds in a pairwise evaluator's label count; the evaluator is taken as
// pairwise.
func (a *Aggregator) AddPairwise(c LabelCount) {
	if !a.keep(c.Evaluator, c.Model, "") || c.Rows <= 0 {
		return
	}
	ev := clean(c.Evaluator)
	a.taskType(ev, TaskPairwise)
	a.labels[labelKey{ev, clean(c.Model), labelCategory(c.Label)}] += c.Rows
}

// AddAlert adds an alert; alerts of another evaluator, model or app than the filters keep
// (an empty field matches any filter), or outside the range, are ignored.
func (a *Aggregator) AddAlert(al Alert) {
	if al.Evaluator != "" && a.evaluators != nil && !a.evaluators[al.Evaluator] ||
		al.Model != "" && a.models != nil && !a.models[al.Model] ||
		al.App != "" && a.apps != nil && !a.apps[al.App] {
		return
	}
	end := al.UpdatedAt
	if end.Before(al.Since) {
		end = al.Since
	}
	if al.Ongoing() && !a.opts.To.IsZero() && end.Before(a.opts.To) {
		end = a.opts.To // still pending or firing: it lasts to the end of the range
	}
	if !a.opts.To.IsZero() && !al.Since.Before(a.opts.To) || !a.opts.From.IsZero() && end.Before(a.opts.From) {
		return
	}
	for _, s := range []*string{&al.ID, &al.Rule, &al.Evaluator, &al.Model, &al.App, &al.Judge, &al.State, &al.Severity} {
		*s = clean(*s)
	}
	al.Message = cleanText(al.Message)
	if len(a.alerts) >= maxAlerts {
		// Keep the newest: replace the oldest kept alert when this one is newer.
		a.alertsDropped++
		oldest := 0
		for i := range a.alerts {
			if compareAlerts(a.alerts[i], a.alerts[oldest]) < 0 {
				oldest = i
			}
		}
		if compareAlerts(al, a.alerts[oldest]) <= 0 {
			return
		}
		a.alerts[oldest] = al
	} else {
		a.alerts = append(a.alerts, al)
	}
	a.seen(al.Since.Unix(), end.Unix()+1)
}

// compareAlerts orders alerts by start time, then id: the order the page lists them in.
func compareAlerts(x, y Alert) int {
	return cmp.Or(x.Since.Compare(y.Since), cmp.Compare(x.ID, y.ID))
}

// taskType records an evaluator's task type: the first non-empty one seen.
func (a *Aggregator) taskType(ev, tt string) {
	if a.taskTypes[ev] == "" && tt != "" {
		a.taskTypes[ev] = clean(tt)
	} else if _, ok := a.taskTypes[ev]; !ok {
		a.taskTypes[ev] = ""
	}
}

func (a *Aggregator) addCell(ev, model string, sec int64, c cell) {
	k := cellKey{ev, model, floorDiv(sec, a.width) * a.width}
	if p := a.cells[k]; p != nil {
		p.add(c)
		return
	}
	a.cells[k] = &c
	a.bound()
}

func (a *Aggregator) addJudge(judge string, sec int64, c judgeCell) {
	k := judgeKey{judge, floorDiv(sec, a.width) * a.width}
	if p := a.judgeCells[k]; p != nil {
		p.ok += c.ok
		p.parse += c.parse
		p.errs += c.errs
		return
	}
	a.judgeCells[k] = &c
	a.bound()
}

// bound merges the cells into the next width of the ladder while there are more than
// Options.MaxCells of them (and a wider width is left).
func (a *Aggregator) bound() {
	for len(a.cells)+len(a.judgeCells) > a.opts.MaxCells && a.width < int64(ladder[len(ladder)-1]/time.Second) {
		a.width = int64(ladderAtLeast(time.Duration(a.width+1)*time.Second) / time.Second)
		cells := make(map[cellKey]*cell, len(a.cells)/2)
		for k, c := range a.cells {
			k.start = floorDiv(k.start, a.width) * a.width
			if p := cells[k]; p != nil {
				p.add(*c)
			} else {
				cells[k] = c
			}
		}
		a.cells = cells
		judges := make(map[judgeKey]*judgeCell, len(a.judgeCells)/2)
		for k, c := range a.judgeCells {
			k.start = floorDiv(k.start, a.width) * a.width
			if p := judges[k]; p != nil {
				p.ok += c.ok
				p.parse += c.parse
				p.errs += c.errs
			} else {
				judges[k] = c
			}
		}
		a.judgeCells = judges
	}
}

// addWorst keeps the opts.Worst lowest-scored rows of r's evaluator: a sorted slice,
// bounded, so memory stays small whatever the input.
func (a *Aggregator) addWorst(row Row) {
	w := a.worst[row.Evaluator]
	i, _ := slices.BinarySearchFunc(w, row, compareRows)
	if i >= a.opts.Worst {
		return
	}
	if len(w) == a.opts.Worst {
		w = w[:len(w)-1]
	}
	a.worst[row.Evaluator] = slices.Insert(w, i, row)
}

// compareRows orders rows lowest score first; ties by event time, then record id, so the
// table does not depend on input order.
func compareRows(x, y Row) int {
	return cmp.Or(cmp.Compare(x.Score, y.Score), x.EventTime.Compare(y.EventTime),
		cmp.Compare(x.RecordID, y.RecordID), cmp.Compare(x.Model, y.Model))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Display lengths in runes: of a name or label, and of free text.
const (
	maxName = 200
	maxText = 4000
)

// clean makes a name safe to show: invalid UTF-8 and control characters become U+FFFD,
// and it is clipped to 200 runes. Escaping is the page's job; this keeps text that no
// escaping makes legible (and that XML forbids inside SVG) out.
func clean(s string) string {
	return clip(maxName, sanitize(s, false))
}

// cleanText is clean for free text (explanations, messages): newlines and tabs stay, and
// the clip is at 4000 runes.
func cleanText(s string) string {
	return clip(maxText, sanitize(s, true))
}

// rawClip bounds text held before redaction to 2·n runes (twice the display clip n):
// redaction then sees every token around the display clip whole, and the worst rows held
// stay bounded.
func rawClip(n int, s string) string {
	runes := 0
	for i := range s {
		if runes == 2*n {
			return s[:i]
		}
		runes++
	}
	return s
}

func sanitize(s string, text bool) string {
	fine := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			fine = false
			break
		}
	}
	if fine {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case text && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r == utf8.RuneError || unicode.IsControl(r) || r == '\uFEFF' || r >= 0xFFFE && r <= 0xFFFF:
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Data returns the aggregate. It can be called more than once.
func (a *Aggregator) Data() Data {
	o := a.opts
	d := Data{Rows: a.rows, Skipped: a.skipped, Filters: filters(o), From: o.From.UTC(), To: o.To.UTC(),
		Generated: o.Now.UTC(), ModelA: clean(o.ModelA), ModelB: clean(o.ModelB),
		CellWidth: time.Duration(a.width) * time.Second, AlertsDropped: a.alertsDropped}
	d.Alerts = slices.Clone(a.alerts)
	slices.SortStableFunc(d.Alerts, compareAlerts)

	// The range [first, end) in seconds, from the options where given, else the data.
	first, end := a.minT, a.maxT
	if !o.From.IsZero() {
		first = o.From.Unix()
	}
	if !o.To.IsZero() {
		end = o.To.Unix()
	}
	if first >= end { // no data and an open side
		d.From, d.To = time.Time{}, time.Time{}
		d.Judges = a.judges(1)
		d.Evaluators = a.evaluatorsWithoutRange()
		return d
	}
	step := int64(sourceBucket(time.Unix(first, 0), time.Unix(end, 0), o.MaxPoints,
		max(time.Duration(a.width)*time.Second, o.MinBucket)) / time.Second)
	d.Bucket = time.Duration(step) * time.Second
	if o.From.IsZero() {
		d.From = time.Unix(floorDiv(first, step)*step, 0).UTC()
	}
	if o.To.IsZero() {
		d.To = time.Unix((floorDiv(end-1, step)+1)*step, 0).UTC()
	}
	d.Judges = a.judges(step)

	type seriesKey struct{ evaluator, model string }
	type acc struct {
		buckets map[int64]*cell
		total   cell
	}
	series := map[seriesKey]*acc{}
	for k, c := range a.cells {
		sk := seriesKey{k.evaluator, k.model}
		s := series[sk]
		if s == nil {
			s = &acc{buckets: map[int64]*cell{}}
			series[sk] = s
		}
		b := floorDiv(k.start, step) * step
		bc := s.buckets[b]
		if bc == nil {
			bc = &cell{}
			s.buckets[b] = bc
		}
		bc.add(*c)
		s.total.add(*c)
	}
	byEvaluator := map[string][]Series{}
	for ev := range a.taskTypes {
		byEvaluator[ev] = nil
	}
	for sk, s := range series {
		sr := seriesOf(sk.model, s.total)
		for b, c := range s.buckets {
			sr.Points = append(sr.Points, Point{Start: time.Unix(b, 0).UTC(),
				Scored: c.scored, Failed: c.parse + c.errs, Mean: mean(*c)})
		}
		slices.SortFunc(sr.Points, func(x, y Point) int { return x.Start.Compare(y.Start) })
		byEvaluator[sk.evaluator] = append(byEvaluator[sk.evaluator], sr)
	}
	for name, ss := range byEvaluator {
		d.Evaluators = append(d.Evaluators, a.evaluator(name, ss))
	}
	slices.SortFunc(d.Evaluators, func(x, y Evaluator) int { return cmp.Compare(x.Name, y.Name) })
	return d
}

// evaluatorsWithoutRange lists the evaluators known only from label counts or worst rows
// when there is no time range (no cells); normally empty.
func (a *Aggregator) evaluatorsWithoutRange() []Evaluator {
	var out []Evaluator
	for name := range a.taskTypes {
		out = append(out, a.evaluator(name, nil))
	}
	slices.SortFunc(out, func(x, y Evaluator) int { return cmp.Compare(x.Name, y.Name) })
	return out
}

func seriesOf(model string, c cell) Series {
	return Series{Model: model, Scored: c.scored, ParseFailures: c.parse, JudgeErrors: c.errs,
		Failed: c.parse + c.errs, Sum: c.sum, SumSquares: c.sumsq, Mean: mean(c)}
}

// evaluator finishes one evaluator's part from its series (in any order).
func (a *Aggregator) evaluator(name string, ss []Series) Evaluator {
	o := a.opts
	slices.SortFunc(ss, func(x, y Series) int {
		return cmp.Or(cmp.Compare(y.Scored, x.Scored), cmp.Compare(y.Failed, x.Failed), cmp.Compare(x.Model, y.Model))
	})
	e := Evaluator{Name: name, TaskType: a.taskTypes[name], Volume: volume(ss)}
	for _, r := range a.worst[name] {
		// Label and Explanation are held raw (clipped at twice the display length): redact
		// first, so that the clip cannot cut a token the redaction would match, then clean.
		if o.Redact != nil {
			r.Label, r.Explanation = o.Redact(r.Label), o.Redact(r.Explanation)
		}
		r.Label, r.Explanation = clean(r.Label), cleanText(r.Explanation)
		e.Worst = append(e.Worst, r)
	}
	e.Comparisons, e.NoComparison = comparisons(ss, o)
	e.Pairwise = a.pairwise(name, ss)
	if strings.EqualFold(e.TaskType, TaskPairwise) || len(e.Pairwise) > 0 {
		e.TaskType = TaskPairwise
	}
	if len(ss) > o.MaxModels {
		for _, s := range ss[o.MaxModels:] {
			e.OtherModels = append(e.OtherModels, s.Model)
		}
		ss = ss[:o.MaxModels]
	}
	e.Series = ss
	return e
}

// comparisons picks and computes an evaluator's comparisons (ss sorted busiest first):
// Options.ModelB against ModelA when both are set and present, else each other model
// against the busiest, at most MaxModels − 1. When there is none, the reason says why.
func comparisons(ss []Series, o Options) ([]Comparison, string) {
	find := func(m string) int {
		return slices.IndexFunc(ss, func(s Series) bool { return s.Model == m })
	}
	var pairs [][2]int
	reason := ""
	ia, ib := find(clean(o.ModelA)), find(clean(o.ModelB))
	switch {
	case len(ss) == 0:
		return nil, "no model of this evaluator has rows in the range"
	case o.ModelA != "" && o.ModelB != "" && ia >= 0 && ib >= 0 && ia != ib:
		pairs = [][2]int{{ia, ib}}
	case len(ss) == 1:
		return nil, "only one model (" + ss[0].Model + ") has rows in the range: there is nothing to compare it with"
	default:
		if o.ModelA != "" && o.ModelB != "" {
			reason = "the chosen models are not both among this evaluator's models, so each model is compared with the busiest"
		}
		for i := 1; i < len(ss) && i < o.MaxModels; i++ {
			pairs = append(pairs, [2]int{0, i})
		}
	}
	var out []Comparison
	for _, p := range pairs {
		sa, sb := ss[p[0]], ss[p[1]]
		r := welch.Compare(welch.FromSums(uint64(sa.Scored), sa.Sum, sa.SumSquares),
			welch.FromSums(uint64(sb.Scored), sb.Sum, sb.SumSquares))
		short, long := welch.Verdict(r.Low, r.High)
		out = append(out, Comparison{ModelA: sa.Model, ModelB: sb.Model, Result: r, Verdict: short, VerdictText: long})
	}
	return out, reason
}

// pairwise returns the label shares per model of evaluator ev, in the order of ss (most
// scored first), then models known only from label counts, by name.
func (a *Aggregator) pairwise(ev string, ss []Series) []PairwiseShare {
	byModel := map[string]*PairwiseShare{}
	for k, n := range a.labels {
		if k.evaluator != ev {
			continue
		}
		p := byModel[k.model]
		if p == nil {
			p = &PairwiseShare{Model: k.model, Preference: math.NaN()}
			byModel[k.model] = p
		}
		p.Counts[k.label] += n
		p.Total += n
	}
	var out []PairwiseShare
	for _, s := range ss {
		if p := byModel[s.Model]; p != nil {
			p.Preference = s.Mean
			out = append(out, *p)
			delete(byModel, s.Model)
		}
	}
	rest := make([]PairwiseShare, 0, len(byModel))
	for _, p := range byModel {
		rest = append(rest, *p)
	}
	slices.SortFunc(rest, func(x, y PairwiseShare) int { return cmp.Compare(x.Model, y.Model) })
	out = append(out, rest...)
	if len(out) > a.opts.MaxModels {
		out = out[:a.opts.MaxModels]
	}
	return out
}

// judges returns the rows per judge with their points in buckets of step seconds.
func (a *Aggregator) judges(step int64) []JudgeFailures {
	type acc struct {
		j       JudgeFailures
		buckets map[int64]*judgeCell
	}
	m := map[string]*acc{}
	for k, c := range a.judgeCells {
		j := m[k.judge]
		if j == nil {
			j = &acc{j: JudgeFailures{Judge: k.judge}, buckets: map[int64]*judgeCell{}}
			m[k.judge] = j
		}
		j.j.Scored += c.ok
		j.j.ParseFailures += c.parse
		j.j.JudgeErrors += c.errs
		b := floorDiv(k.start, step) * step
		bc := j.buckets[b]
		if bc == nil {
			bc = &judgeCell{}
			j.buckets[b] = bc
		}
		bc.ok += c.ok
		bc.parse += c.parse
		bc.errs += c.errs
	}
	out := make([]JudgeFailures, 0, len(m))
	for _, j := range m {
		for b, c := range j.buckets {
			j.j.Points = append(j.j.Points, JudgePoint{Start: time.Unix(b, 0).UTC(), OK: c.ok, ParseFailures: c.parse, JudgeErrors: c.errs})
		}
		slices.SortFunc(j.j.Points, func(x, y JudgePoint) int { return x.Start.Compare(y.Start) })
		out = append(out, j.j)
	}
	slices.SortFunc(out, func(x, y JudgeFailures) int { return cmp.Compare(x.Judge, y.Judge) })
	return out
}

// volume sums the series' buckets (all of them, drawn or not).
func volume(ss []Series) []Point {
	m := map[time.Time]*Point{}
	for _, s := range ss {
		for _, p := range s.Points {
			v := m[p.Start]
			if v == nil {
				v = &Point{Start: p.Start, Mean: math.NaN()}
				m[p.Start] = v
			}
			v.Scored += p.Scored
			v.Failed += p.Failed
		}
	}
	out := make([]Point, 0, len(m))
	for _, v := range m {
		out = append(out, *v)
	}
	slices.SortFunc(out, func(x, y Point) int { return x.Start.Compare(y.Start) })
	return out
}

func mean(c cell) float64 {
	if c.scored == 0 {
		return math.NaN()
	}
	return c.sum / float64(c.scored)
}

func filters(o Options) []string {
	var fs []string
	add := func(name string, vs []string) {
		if len(vs) > 0 {
			cs := make([]string, len(vs))
			for i, v := range vs {
				cs[i] = clean(v)
			}
			fs = append(fs, name+" ∈ {"+strings.Join(cs, ", ")+"}")
		}
	}
	add("evaluator", o.Evaluators)
	add("model", o.Models)
	add("app", o.Apps)
	return fs
}
