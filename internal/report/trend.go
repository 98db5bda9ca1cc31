package report

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"raterd/sinks/clickhouse"
)

// ---------------------------------------------------------------------------------------
// report trend

// trendQuery returns the cookbook's score_trend taking its model and app filters as
// asked: a filter that is not asked for is left out of the query, and its parameter is
// refused. model and app are sorting-key columns that every replayed copy of a row shares,
// so the filtered query stays exact under replays.
func trendQuery(model, app bool) (clickhouse.CookbookQuery, error) {
	q, ok := clickhouse.CookbookQueryNamed("score_trend")
	if !ok {
		return q, errors.New("the cookbook has no score_trend query")
	}
	var filters []string
	if model {
		filters = append(filters, "model")
	}
	if app {
		filters = append(filters, "app")
	}
	return q.WithFilters(filters...)
}

func (c reportCmd) trend(ctx context.Context, args []string) error {
	var f reportFlags
	if err := c.parseReportFlags("trend", args, func(fs *flag.FlagSet) {
		f.registerTrend(fs)
		f.registerCommon(fs)
	}); err != nil {
		return err
	}
	if err := requireText("--evaluator", f.evaluator); err != nil {
		return err
	}
	if err := checkText("--model", f.model); err != nil {
		return err
	}
	if err := checkText("--app", f.app); err != nil {
		return err
	}
	from, to, err := timeRange("--from", f.from, "--to", f.to, c.now())
	if err != nil {
		return err
	}
	q, err := trendQuery(f.model != "", f.app != "")
	if err != nil {
		return err
	}
	params := map[string]string{"evaluator": f.evaluator, "from": rfc3339(from), "to": rfc3339(to)}
	if f.model != "" {
		params["model"] = f.model
	}
	if f.app != "" {
		params["app"] = f.app
	}
	t, err := c.runQuery(ctx, &f, q, params)
	if err != nil {
		return err
	}
	if f.format != formatTable {
		return writeResult(c.stdout, f.format, t)
	}
	points, err := trendPoints(t)
	if err != nil {
		return err
	}
	return renderTrend(c.stdout, trendSpec{Evaluator: f.evaluator, Model: f.model, App: f.app, From: from, To: to}, points)
}

// trendPoint is one row of score_trend: one model in one hour.
type trendPoint struct {
	Hour           time.Time
	Model          string
	Scored, Failed uint64
	Mean           float64 // over the scored rows; nan when none
}

// trendPoints reads score_trend's answer.
func trendPoints(t *resultTable) ([]trendPoint, error) {
	idx := map[string]int{}
	for _, name := range []string{"hour", "model", "scored", "failed", "mean_score"} {
		i := t.col(name)
		if i < 0 {
			return nil, fmt.Errorf("score_trend: no %s column in %v", name, t.Columns)
		}
		idx[name] = i
	}
	points := make([]trendPoint, 0, len(t.Rows))
	for _, row := range t.Rows {
		var p trendPoint
		var ok1, ok2, ok3, ok4, ok5 bool
		p.Hour, ok1 = row[idx["hour"]].(time.Time)
		p.Model, ok2 = row[idx["model"]].(string)
		p.Scored, ok3 = cellUint(row[idx["scored"]])
		p.Failed, ok4 = cellUint(row[idx["failed"]])
		p.Mean, ok5 = cellFloat(row[idx["mean_score"]])
		if !(ok1 && ok2 && ok3 && ok4 && ok5) {
			return nil, fmt.Errorf("score_trend: unexpected row %v", row)
		}
		points = append(points, p)
	}
	return points, nil
}

func cellUint(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint64:
		return x, true
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

func cellFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case nil:
		return math.NaN(), true
	}
	return 0, false
}

// trendSpec says what a trend covers, for its heading.
type trendSpec struct {
	Evaluator, Model, App string
	From, To              time.Time
}

// sparkLevels are the marks of a sparkline, lowest first.
var sparkLevels = []rune("▁▂▃▄▅▆▇█")

// maxSparkMarks bounds the sparkline width; longer ranges get one mark per several hours.
const maxSparkMarks = 72

// sparkBucket returns the hours per mark for a range of n hours: 1, 2, 3, 4, 6, 8, 12, or
// whole days, the smallest that keeps the line within maxSparkMarks.
func sparkBucket(hours int) int {
	for _, b := range []int{1, 2, 3, 4, 6, 8, 12, 24} {
		if (hours+b-1)/b <= maxSparkMarks {
			return b
		}
	}
	days := (hours + 24*maxSparkMarks - 1) / (24 * maxSparkMarks)
	return 24 * days
}

// sparkline renders values on the scale [lo, hi]; nan is a gap (a blank).
func sparkline(values []float64, lo, hi float64) string {
	var b strings.Builder
	for _, v := range values {
		switch {
		case math.IsNaN(v):
			b.WriteRune(' ')
		case !(hi > lo):
			b.WriteRune(sparkLevels[len(sparkLevels)/2-1])
		default:
			i := int(math.Floor((v - lo) / (hi - lo) * float64(len(sparkLevels))))
			b.WriteRune(sparkLevels[min(max(i, 0), len(sparkLevels)-1)])
		}
	}
	return b.String()
}

// renderTrend prints the trend table: per model the scored and failed rows, the mean score
// and a sparkline of the mean per hour (or per bucket of hours, weighted by scored rows),
// all models on one scale.
func renderTrend(w io.Writer, spec trendSpec, points []trendPoint) error {
	start := spec.From.UTC().Truncate(time.Hour)
	hours := max(int((spec.To.Sub(start)+time.Hour-1)/time.Hour), 1)
	bucket := sparkBucket(hours)
	marks := (hours + bucket - 1) / bucket

	type series struct {
		scored, failed uint64
		sum            float64 // Σ mean × scored over the hours
		bSum           []float64
		bN             []uint64
	}
	byModel := map[string]*series{}
	for _, p := range points {
		s := byModel[p.Model]
		if s == nil {
			s = &series{bSum: make([]float64, marks), bN: make([]uint64, marks)}
			byModel[p.Model] = s
		}
		s.scored += p.Scored
		s.failed += p.Failed
		if p.Scored == 0 || math.IsNaN(p.Mean) {
			continue
		}
		s.sum += p.Mean * float64(p.Scored)
		i := int(p.Hour.Sub(start) / time.Hour / time.Duration(bucket))
		if i >= 0 && i < marks {
			s.bSum[i] += p.Mean * float64(p.Scored)
			s.bN[i] += p.Scored
		}
	}
	models := make([]string, 0, len(byModel))
	for m := range byModel {
		models = append(models, m)
	}
	sort.Strings(models)

	lo, hi := math.Inf(1), math.Inf(-1)
	means := map[string][]float64{}
	for _, m := range models {
		s := byModel[m]
		vals := make([]float64, marks)
		for i := range vals {
			vals[i] = math.NaN()
			if s.bN[i] > 0 {
				vals[i] = s.bSum[i] / float64(s.bN[i])
				lo, hi = min(lo, vals[i]), max(hi, vals[i])
			}
		}
		means[m] = vals
	}

	var filters []string
	if spec.Model != "" {
		filters = append(filters, "model "+spec.Model)
	}
	if spec.App != "" {
		filters = append(filters, "app "+spec.App)
	}
	heading := fmt.Sprintf("score trend of %s, %s to %s UTC", spec.Evaluator,
		spec.From.UTC().Format(time.DateTime), spec.To.UTC().Format(time.DateTime))
	if len(filters) > 0 {
		heading += " (" + strings.Join(filters, ", ") + ")"
	}
	fmt.Fprintln(w, heading)
	if len(models) == 0 {
		_, err := fmt.Fprintln(w, "(no rows)")
		return err
	}
	per := "hour"
	if bucket > 1 {
		per = strconv.Itoa(bucket) + " hours"
	}
	scale := "no scored rows"
	if hi >= lo {
		scale = fmt.Sprintf("%c %s … %c %s", sparkLevels[0], formatFloat(lo), sparkLevels[len(sparkLevels)-1], formatFloat(hi))
	}
	fmt.Fprintf(w, "trend: mean score per %s from %s UTC, blank without scored rows; scale %s\n\n",
		per, start.Format("2006-01-02 15:04"), scale)

	cells := [][]string{{"model", "scored", "failed", "mean", "trend"}}
	for _, m := range models {
		s := byModel[m]
		mean := math.NaN()
		if s.scored > 0 {
			mean = s.sum / float64(s.scored)
		}
		cells = append(cells, []string{m, strconv.FormatUint(s.scored, 10), strconv.FormatUint(s.failed, 10),
			formatFloat(mean), sparkline(means[m], lo, hi)})
	}
	writeAligned(w, cells, []bool{false, true, true, true, false})
	return nil
}
