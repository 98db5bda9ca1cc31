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
	"clip":   clip,
	"bucket": bucketText,
}).Parse(pageSource))

// view is what the template reads: the Data and its charts.
type view struct {
	Data
	Sections    []section
	JudgesChart template.HTML // empty when no judge failed
}

type section struct {
	Evaluator
	Trend, Volume template.HTML // empty when there is nothing to draw
}

// Render writes the page for d to w: one HTML document with its CSS and SVG charts inline,
// no scripts and no external resources.
func Render(w io.Writer, d Data) error {
	v := view{Data: d}
	for _, e := range d.Evaluators {
		s := section{Evaluator: e}
		var err error
		if s.Trend, err = inline(trendChart(e, d)); err != nil {
			return err
		}
		if s.Volume, err = inline(volumeChart(e, d)); err != nil {
			return err
		}
		v.Sections = append(v.Sections, s)
	}
	var err error
	if v.JudgesChart, err = inline(judgesChart(d.Judges)); err != nil {
		return err
	}
	// Executed into a buffer first so that a failure leaves no half-written page.
	var b bytes.Buffer
	if err := page.Execute(&b, v); err != nil {
		return fmt.Errorf("report html: %w", err)
	}
	_, err = b.WriteTo(w)
	return err
}

// inline draws a chart as SVG for the page.
func inline(c *chart, err error) (template.HTML, error) {
	if err != nil {
		return "", err
	}
	return c.svg()
}

func formatScore(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
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
