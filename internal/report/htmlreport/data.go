// Package htmlreport builds `raterd report html`: one self-contained HTML page (inline CSS,
// inline SVG charts drawn with gonum/plot, no scripts, nothing fetched over the network)
// from score rows.
//
// The page is built in two steps. An Aggregator folds score rows into a Data: hourly cells
// per evaluator and model (scored rows, failed rows, sum of scores), the lowest-scored rows
// per evaluator and the failures per judge. Its memory is bounded by the number of
// (evaluator, model, hour) cells, not by the number of rows, so a large NDJSON file streams
// through it. Render then draws the Data, widening the time buckets so that no chart has
// more than Options.MaxPoints points.
//
// Only the NDJSON score output is a source today (FromScores, Aggregator.Add). A ClickHouse
// source would fill the same hourly cells from the cookbook's score_trend rows.
package htmlreport

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

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
	// MaxPoints bounds the time buckets per chart (default 168, a week of hours): longer
	// ranges get buckets of several hours.
	MaxPoints int
	// MaxModels bounds the models drawn per evaluator chart (default 8, the palette's
	// size); the models with the most scored rows are drawn, the others are listed.
	MaxModels int
}

func (o Options) withDefaults() Options {
	if o.Worst <= 0 {
		o.Worst = 10
	}
	if o.MaxPoints <= 0 {
		o.MaxPoints = 168
	}
	if o.MaxModels <= 0 {
		o.MaxModels = len(palette)
	}
	return o
}

// maxScore bounds the magnitude of a score the report takes: no rubric scale comes near it,
// and beyond it sums overflow and chart axes lose the precision to tell min from max.
const maxScore = 1e12

// Data is what the page shows.
type Data struct {
	// From and To are the range shown: the options' range, or where a side is open, the
	// rows' range widened to whole buckets. Zero when no row is in the range and the
	// options leave it open.
	From, To time.Time
	// Filters describes the options' filters for the page header ("evaluator = x", …).
	Filters []string
	// Bucket is the width of one time bucket: one hour, or wider for long ranges.
	Bucket time.Duration
	// Rows counts the rows in the range (every status); Skipped counts scored rows in the
	// range left out because their score was not a number within ±1e12 (maxScore).
	Rows, Skipped int
	Evaluators    []Evaluator
	// Judges holds the failures per judge, judges sorted by name.
	Judges []JudgeFailures
}

// Evaluator is one evaluator's section of the page.
type Evaluator struct {
	Name string
	// Series holds one series per model, most scored rows first; at most Options.MaxModels.
	Series []Series
	// Volume holds the scored and failed rows per bucket over all models (Mean unset).
	Volume []Point
	// OtherModels names the models left out of Series, most scored rows first.
	OtherModels []string
	// Worst holds the lowest-scored rows, lowest first.
	Worst []Row
}

// Series is one model's trend under one evaluator.
type Series struct {
	Model string
	// Points are the buckets with any row, in time order.
	Points []Point
	// Scored, Failed and Mean summarise the whole range.
	Scored, Failed int
	Mean           float64
}

// Point is one time bucket of a series.
type Point struct {
	Start          time.Time
	Scored, Failed int
	// Mean is the mean score of the scored rows; NaN when none.
	Mean float64
}

// Row is one score row as the worst-rows table shows it.
type Row struct {
	EventTime                                  time.Time
	Model, RecordID, Judge, Label, Explanation string
	Score                                      float64
}

// JudgeFailures counts one judge's rows by outcome.
type JudgeFailures struct {
	Judge                              string
	Scored, ParseFailures, JudgeErrors int
}

// cellKey addresses one hourly cell.
type cellKey struct {
	evaluator, model string
	hour             int64 // Unix hour
}

type cell struct {
	scored, failed int
	sum            float64
}

// Aggregator folds score rows into a Data. The zero value is not usable: use NewAggregator.
type Aggregator struct {
	opts                     Options
	evaluators, models, apps map[string]bool
	cells                    map[cellKey]*cell
	worst                    map[string][]Row
	judges                   map[string]*JudgeFailures
	rows, skipped            int
	minHour, maxHour         int64
}

// NewAggregator returns an empty aggregator for opts.
func NewAggregator(opts Options) *Aggregator {
	return &Aggregator{
		opts:       opts.withDefaults(),
		evaluators: set(opts.Evaluators),
		models:     set(opts.Models),
		apps:       set(opts.Apps),
		cells:      map[cellKey]*cell{},
		worst:      map[string][]Row{},
		judges:     map[string]*JudgeFailures{},
		minHour:    math.MaxInt64,
		maxHour:    math.MinInt64,
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

// Add folds one row in; rows outside the options' filters and range are ignored.
func (a *Aggregator) Add(r *record.Score) {
	if a.evaluators != nil && !a.evaluators[r.Evaluator] ||
		a.models != nil && !a.models[r.Model] ||
		a.apps != nil && !a.apps[r.App] {
		return
	}
	t := r.EventTime
	if !a.opts.From.IsZero() && t.Before(a.opts.From) || !a.opts.To.IsZero() && !t.Before(a.opts.To) {
		return
	}
	a.rows++
	ok := r.Status == record.StatusOK
	if ok && !(math.Abs(r.Value) <= maxScore) { // NaN and infinities too
		a.skipped++
		return
	}
	hour := floorDiv(t.Unix(), 3600)
	a.minHour, a.maxHour = min(a.minHour, hour), max(a.maxHour, hour)
	k := cellKey{r.Evaluator, r.Model, hour}
	c := a.cells[k]
	if c == nil {
		c = &cell{}
		a.cells[k] = c
	}
	j := a.judges[r.Judge]
	if j == nil {
		j = &JudgeFailures{Judge: r.Judge}
		a.judges[r.Judge] = j
	}
	switch r.Status {
	case record.StatusOK:
		c.scored++
		c.sum += r.Value
		j.Scored++
		a.addWorst(r)
	case record.StatusParseFailure:
		c.failed++
		j.ParseFailures++
	default: // judge_error, and any status this version does not know
		c.failed++
		j.JudgeErrors++
	}
}

// addWorst keeps the opts.Worst lowest-scored rows of r's evaluator: a sorted slice,
// bounded, so memory stays small whatever the input.
func (a *Aggregator) addWorst(r *record.Score) {
	w := a.worst[r.Evaluator]
	row := Row{EventTime: r.EventTime, Model: r.Model, RecordID: r.RecordID, Judge: r.Judge,
		Label: r.Label, Explanation: r.Explanation, Score: r.Value}
	i, _ := slices.BinarySearchFunc(w, row, compareRows)
	if i >= a.opts.Worst {
		return
	}
	if len(w) == a.opts.Worst {
		w = w[:len(w)-1]
	}
	a.worst[r.Evaluator] = slices.Insert(w, i, row)
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

// bucketHours are the bucket widths, in hours, that a range may get: the same steps as
// `raterd report trend`'s sparkline, then whole days.
var bucketHours = []int64{1, 2, 3, 4, 6, 8, 12, 24}

// Data returns the aggregate. It can be called more than once.
func (a *Aggregator) Data() Data {
	o := a.opts
	d := Data{Rows: a.rows, Skipped: a.skipped, Filters: filters(o), From: o.From.UTC(), To: o.To.UTC()}
	for _, j := range a.judges {
		d.Judges = append(d.Judges, *j)
	}
	slices.SortFunc(d.Judges, func(x, y JudgeFailures) int { return cmp.Compare(x.Judge, y.Judge) })

	// The range in hours, [first, last+1), from the options where given, else the rows.
	first, end := a.minHour, a.maxHour+1
	if !o.From.IsZero() {
		first = floorDiv(o.From.Unix(), 3600)
	}
	if !o.To.IsZero() {
		end = floorDiv(o.To.Unix()-1, 3600) + 1
	}
	if first >= end { // no rows and an open side
		return d
	}
	step := bucketHours[len(bucketHours)-1]
	for _, h := range bucketHours {
		if (end-first+h-1)/h <= int64(o.MaxPoints) {
			step = h
			break
		}
	}
	for (end-first+step-1)/step > int64(o.MaxPoints) {
		step += 24
	}
	// Buckets align to multiples of step hours since the epoch (UTC), so two reports of
	// overlapping ranges share their bucket edges.
	first = floorDiv(first, step) * step
	end = floorDiv(end+step-1, step) * step
	d.Bucket = time.Duration(step) * time.Hour
	if o.From.IsZero() {
		d.From = time.Unix(first*3600, 0).UTC()
	}
	if o.To.IsZero() {
		d.To = time.Unix(end*3600, 0).UTC()
	}

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
		b := floorDiv(k.hour, step)
		bc := s.buckets[b]
		if bc == nil {
			bc = &cell{}
			s.buckets[b] = bc
		}
		bc.scored += c.scored
		bc.failed += c.failed
		bc.sum += c.sum
		s.total.scored += c.scored
		s.total.failed += c.failed
		s.total.sum += c.sum
	}
	byEvaluator := map[string][]Series{}
	for sk, s := range series {
		sr := Series{Model: sk.model, Scored: s.total.scored, Failed: s.total.failed, Mean: mean(s.total)}
		for b, c := range s.buckets {
			sr.Points = append(sr.Points, Point{Start: time.Unix(b*step*3600, 0).UTC(),
				Scored: c.scored, Failed: c.failed, Mean: mean(*c)})
		}
		slices.SortFunc(sr.Points, func(x, y Point) int { return x.Start.Compare(y.Start) })
		byEvaluator[sk.evaluator] = append(byEvaluator[sk.evaluator], sr)
	}
	for name, ss := range byEvaluator {
		slices.SortFunc(ss, func(x, y Series) int {
			return cmp.Or(cmp.Compare(y.Scored, x.Scored), cmp.Compare(y.Failed, x.Failed), cmp.Compare(x.Model, y.Model))
		})
		e := Evaluator{Name: name, Worst: slices.Clone(a.worst[name]), Volume: volume(ss)}
		if len(ss) > o.MaxModels {
			for _, s := range ss[o.MaxModels:] {
				e.OtherModels = append(e.OtherModels, s.Model)
			}
			ss = ss[:o.MaxModels]
		}
		e.Series = ss
		d.Evaluators = append(d.Evaluators, e)
	}
	slices.SortFunc(d.Evaluators, func(x, y Evaluator) int { return cmp.Compare(x.Name, y.Name) })
	return d
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
			fs = append(fs, name+" ∈ {"+strings.Join(vs, ", ")+"}")
		}
	}
	add("evaluator", o.Evaluators)
	add("model", o.Models)
	add("app", o.Apps)
	return fs
}
