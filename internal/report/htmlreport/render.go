package htmlreport

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

//go:embed report.html.tmpl
var pageSource string

// page is parsed once; html/template escapes every value by its context.
var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"time":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"score":  formatScore,
	"signed": signed,
	"pct":    func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + "%" },
	"clip":   clip,
	"name":   shown,
	"bucket": bucketText,
	"label":  func(i int) string { return pairwiseLabels[i] },
}).Parse(pageSource))

// view is what the template reads: the Data and its charts.
type view struct {
	Data
	Evaluators  []evaluatorView
	Pairwise    []evaluatorView // the pairwise evaluators
	Compared    bool            // some evaluator has a comparison
	AlertsChart *figure
	JudgesChart *figure
	Failures    bool // some judge failed
}

// evaluatorView is one evaluator with its charts; a nil chart has nothing to draw.
type evaluatorView struct {
	Evaluator
	Trend, Volume, Compare, PairwiseChart *figure
	// MostInconsistent is the pairwise model with the largest inconsistent share; nil
	// when no model has an inconsistent verdict.
	MostInconsistent *PairwiseShare
}

// Render writes the page for d to w: one HTML document with its CSS and SVG charts inline,
// no scripts and no external resources.
func Render(w io.Writer, d Data) error {
	v := view{Data: d}
	for i, e := range d.Evaluators {
		ev := evaluatorView{Evaluator: e}
		n := strconv.Itoa(i + 1)
		var err error
		if d.Bucket > 0 {
			trend, err := trendChart(e, d)
			if err != nil {
				return fmt.Errorf("chart trend-%s: %w", n, err)
			}
			vol, err := volumeChart(e, d)
			if err != nil {
				return fmt.Errorf("chart volume-%s: %w", n, err)
			}
			alignLegends(trend, vol)
			if ev.Trend, err = trend.figure("trend-" + n); err != nil {
				return err
			}
			if ev.Volume, err = vol.figure("volume-" + n); err != nil {
				return err
			}
		}
		if ev.Compare, err = inline("compare-" + n)(compareChart(e)); err != nil {
			return err
		}
		if ev.PairwiseChart, err = inline("pairwise-" + n)(pairwiseChart(e)); err != nil {
			return err
		}
		for j := range e.Pairwise {
			p := &e.Pairwise[j]
			if p.Share(3) > 0 && (ev.MostInconsistent == nil || p.Share(3) > ev.MostInconsistent.Share(3)) {
				ev.MostInconsistent = p
			}
		}
		v.Compared = v.Compared || len(e.Comparisons) > 0
		v.Evaluators = append(v.Evaluators, ev)
		if e.TaskType == TaskPairwise {
			v.Pairwise = append(v.Pairwise, ev)
		}
	}
	var err error
	if v.AlertsChart, err = inline("alerts-timeline")(alertsChart(d.Alerts, d)); err != nil {
		return err
	}
	if d.Bucket > 0 {
		if v.JudgesChart, err = inline("judges-failures")(judgesChart(d.Judges, d)); err != nil {
			return err
		}
	}
	for _, j := range d.Judges {
		v.Failures = v.Failures || j.ParseFailures+j.JudgeErrors > 0
	}
	// Executed into a buffer first so that a failure leaves no half-written page.
	var b bytes.Buffer
	if err := page.Execute(&b, v); err != nil {
		return fmt.Errorf("report html: %w", err)
	}
	_, err = b.WriteTo(w)
	return err
}

// inline returns a function that draws a chart as the figure of that id.
func inline(id string) func(*chart, error) (*figure, error) {
	return func(c *chart, err error) (*figure, error) {
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", id, err)
		}
		return c.figure(id)
	}
}

func formatScore(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// signed formats v like formatScore with an explicit + on positive numbers.
func signed(v float64) string {
	s := formatScore(v)
	if v > 0 && s != "0.000" && s != "–" {
		return "+" + s
	}
	return s
}

// clip shortens s to n runes, marking the cut; long judge explanations would swamp the
// table.
func clip(n int, s string) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
