package htmlreport

import (
	"bytes"
	"cmp"
	"fmt"
	"html"
	"html/template"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// palette is Okabe and Ito's colour-blind-safe palette, yellow last (it is the faintest on
// white). Series also differ by glyph shape (and, for bars, outline dashes), so colour is
// never the only cue.
var palette = [...]color.Color{
	rgb(0x00, 0x72, 0xB2), // blue
	rgb(0xE6, 0x9F, 0x00), // orange
	rgb(0x00, 0x9E, 0x73), // bluish green
	rgb(0xCC, 0x79, 0xA7), // reddish purple
	rgb(0x56, 0xB4, 0xE9), // sky blue
	rgb(0xD5, 0x5E, 0x00), // vermillion
	rgb(0x00, 0x00, 0x00), // black
	rgb(0xF0, 0xE4, 0x42), // yellow
}

var glyphs = [...]draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PlusGlyph{},
	draw.CrossGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{},
}

// dashes are line patterns that tell series apart without colour.
var dashes = [...][]vg.Length{nil, {vg.Points(6), vg.Points(3)}, {vg.Points(2), vg.Points(2)},
	{vg.Points(8), vg.Points(2), vg.Points(2), vg.Points(2)}, {vg.Points(1), vg.Points(3)}}

// The colours of the volume and failure charts: scored rows blue, failures vermillion.
var (
	colorScored = palette[0]
	colorFailed = palette[5]
)

func rgb(r, g, b uint8) color.Color { return color.RGBA{R: r, G: g, B: b, A: 0xff} }

// Chart sizes, in points. The page scales them to its width (viewBox) but never below
// 30rem (scrolling sideways on a phone instead), so 10-point tick labels stay about 10 px.
const (
	chartWidth   = 16 * vg.Centimeter
	trendHeight  = 8 * vg.Centimeter
	volHeight    = 6 * vg.Centimeter
	judgesHeight = 8 * vg.Centimeter
	// rowHeight is the height per row of the comparison, alert and pairwise charts.
	rowHeight = 0.9 * vg.Centimeter
)

// newPlot returns a plot with the page's text style: sans-serif, titled and labelled.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	for _, v := range []*font.Variant{
		&p.Title.TextStyle.Font.Variant, &p.X.Label.TextStyle.Font.Variant,
		&p.Y.Label.TextStyle.Font.Variant, &p.X.Tick.Label.Font.Variant,
		&p.Y.Tick.Label.Font.Variant,
	} {
		*v = "Sans"
	}
	p.X.Tick.Label.Font.Size = vg.Points(10)
	p.Y.Tick.Label.Font.Size = vg.Points(10)
	return p
}

// timeAxis sets p's x axis to the report's range, ticked at round UTC times.
func timeAxis(p *plot.Plot, d Data) {
	p.X.Min = float64(d.From.Unix())
	p.X.Max = float64(d.To.Unix())
	p.X.Tick.Marker = timeTicks{}
}

// tickSteps are the spacings, in seconds, of the time axis' ticks.
var tickSteps = [...]int64{60, 5 * 60, 10 * 60, 15 * 60, 30 * 60, 3600, 2 * 3600, 3 * 3600, 6 * 3600,
	12 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400, 91 * 86400, 182 * 86400, 364 * 86400}

// countTicks labels whole numbers only (row counts have no fractions): gonum's default
// ticks, with a fractional major tick turned minor and the labels printed as integers.
type countTicks struct{}

// Ticks implements plot.Ticker.
func (countTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		switch {
		case t.Label == "":
		case t.Value != math.Trunc(t.Value):
			ticks[i].Label = ""
		default:
			ticks[i].Label = strconv.FormatFloat(t.Value, 'f', 0, 64)
		}
	}
	return ticks
}

// timeTicks puts at most 6 ticks at multiples of a round step since the epoch: minutes,
// hours, midnights UTC, or weeks (Thursdays, as the epoch was).
type timeTicks struct{}

// Ticks implements plot.Ticker.
func (timeTicks) Ticks(lo, hi float64) []plot.Tick {
	step := tickSteps[len(tickSteps)-1]
	for _, st := range tickSteps {
		if (hi-lo)/float64(st) <= 6 {
			step = st
			break
		}
	}
	for (hi-lo)/float64(step) > 6 {
		step *= 2
	}
	format := "Jan 2\n15:04"
	switch {
	case hi-lo > 300*86400:
		format = "2006-01-02"
	case step >= 86400:
		format = "Jan 2"
	}
	var ticks []plot.Tick
	for t := int64(math.Ceil(lo/float64(step))) * step; float64(t) <= hi; t += step {
		ticks = append(ticks, plot.Tick{Value: float64(t), Label: time.Unix(t, 0).UTC().Format(format)})
	}
	return ticks
}

func unix(t time.Time) float64 { return float64(t.Unix()) }

// midpoint is where a bucket's point sits on a time axis running [from, to]: the middle of
// the part of the bucket inside the range. A partial first or last bucket (the range need
// not align to buckets) would otherwise put its point outside the range: gonum then widens
// this chart's axis alone, out of line with the charts stacked on the same time axis, or
// leaves the point undrawn where the axis is fixed.
func midpoint(start time.Time, bucket time.Duration, from, to time.Time) float64 {
	lo, hi := start, start.Add(bucket)
	if lo.Before(from) {
		lo = from
	}
	if hi.After(to) {
		hi = to
	}
	if !lo.Before(hi) { // a bucket outside the range: pin it to the nearer end
		if start.Before(from) {
			return unix(from)
		}
		return unix(to)
	}
	return (unix(lo) + unix(hi)) / 2
}

// chart is a plot ready to draw: its size, its title (the SVG's <title>) and the number of
// data points it plots.
type chart struct {
	plot   *plot.Plot
	w, h   vg.Length
	title  string
	points int
	// legend is drawn right of the plot, not over its data (the plot's own legend stays
	// empty); labels are its entries' labels.
	legend plot.Legend
	labels []string
	// minLegend is the least width of the legend's column: charts stacked on one time
	// axis get the same, so that their plot areas line up.
	minLegend vg.Length
}

func newChart(p *plot.Plot, title string, h vg.Length) *chart {
	return &chart{plot: p, w: chartWidth, h: h, title: title}
}

// addLegend adds a legend entry, its label clipped to legendRunes.
func (ch *chart) addLegend(label string, thumbs ...plot.Thumbnailer) {
	if ch.labels == nil {
		ch.legend = plot.NewLegend()
		ch.legend.TextStyle.Font.Variant = "Sans"
		ch.legend.TextStyle.Font.Size = vg.Points(10)
		ch.legend.Top, ch.legend.Left = true, true
		ch.legend.Padding = vg.Points(3) // entries of 10 pt text touch without it
	}
	label = clip(legendRunes, label)
	ch.labels = append(ch.labels, label)
	ch.legend.Add(label, thumbs...)
}

const legendRunes = 24

// draw draws the chart on c (of the chart's size), the legend right of the plot.
func (ch *chart) draw(c vg.CanvasSizer) {
	p := ch.plot
	dc := draw.New(c)
	if len(ch.labels) == 0 {
		p.Draw(dc)
		return
	}
	lw := max(ch.legendWidth(), ch.minLegend)
	p.Draw(draw.Crop(dc, 0, -lw, 0, 0))
	title := p.Title.TextStyle.Height(p.Title.Text) + p.Title.Padding
	ch.legend.Draw(draw.Crop(dc, ch.w-lw+2*vg.Millimeter, 0, 0, -title-2*vg.Millimeter))
}

// legendWidth is the width of the legend's column: its widest label, the thumbnail and
// some padding, at most 2/5 of the chart; 0 without a legend.
func (ch *chart) legendWidth() vg.Length {
	if ch == nil || len(ch.labels) == 0 {
		return 0
	}
	var lw vg.Length
	for _, l := range ch.labels {
		lw = max(lw, ch.legend.TextStyle.Width(l))
	}
	lw += ch.legend.ThumbnailWidth + 3*vg.Millimeter
	return min(lw, ch.w*2/5)
}

// alignLegends gives the charts (nil ones skipped) legend columns of one width.
func alignLegends(cs ...*chart) {
	var w vg.Length
	for _, c := range cs {
		w = max(w, c.legendWidth())
	}
	for _, c := range cs {
		if c != nil {
			c.minLegend = w
		}
	}
}

// figure is one chart as the page shows it.
type figure struct {
	// ID is the figure's element id; the svg's <title> is ID + "-title".
	ID string
	// Points is the number of data points the chart plots (> 0).
	Points int
	SVG    template.HTML
}

// figure draws the chart as an SVG element for inlining in the page: the XML prolog and
// namespace declarations dropped, a <title> first (what aria-labelledby names) and
// role="img". Its text was escaped by vgsvg (html.EscapeString) and the title here, which
// is why the result may be trusted as template.HTML. A nil chart draws nothing (nil).
func (ch *chart) figure(id string) (_ *figure, err error) {
	if ch == nil || ch.points == 0 {
		return nil, nil
	}
	label := ch.title
	// gonum panics on data it cannot draw (an axis range too narrow for float64); the
	// aggregate bounds scores so that it should not, and a chart that still fails is an
	// error, not a crash.
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("drawing %q: %v", label, v)
		}
	}()
	c := vgsvg.New(ch.w, ch.h)
	ch.draw(c)
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("drawing %q: %w", label, err)
	}
	s := b.String()
	i := strings.Index(s, "<svg ")
	if i < 0 {
		return nil, fmt.Errorf("drawing %q: no <svg> element in gonum's output", label)
	}
	s = s[i+len("<svg "):]
	j := strings.IndexByte(s, '>')
	if j < 0 {
		return nil, fmt.Errorf("drawing %q: unterminated <svg> tag in gonum's output", label)
	}
	titleID := id + "-title"
	s = `<svg role="img" aria-labelledby="` + titleID + `" ` + s[:j+1] +
		`<title id="` + titleID + `">` + html.EscapeString(label) + `</title>` + s[j+1:]
	// Inline SVG in HTML is in the SVG namespace without saying so; dropping the
	// declarations leaves the page without a single http:// string.
	s = strings.NewReplacer(svgNS, "", xlinkNS, "").Replace(s)
	return &figure{ID: id, Points: ch.points, SVG: template.HTML(s)}, nil
}

const (
	svgNS   = `xmlns="http://www.w3.org/2000/svg"`
	xlinkNS = `xmlns:xlink="http://www.w3.org/1999/xlink"`
)

// runs splits a series' points into runs of consecutive buckets with a finite mean: one
// line per run, so an empty bucket leaves a gap instead of a line across it.
func runs(pts []Point, bucket time.Duration, from, to time.Time) []plotter.XYs {
	var out []plotter.XYs
	var cur plotter.XYs
	var last time.Time
	for _, p := range pts {
		if math.IsNaN(p.Mean) || math.IsInf(p.Mean, 0) {
			continue
		}
		if len(cur) > 0 && !p.Start.Equal(last.Add(bucket)) {
			out = append(out, cur)
			cur = nil
		}
		cur = append(cur, plotter.XY{X: midpoint(p.Start, bucket, from, to), Y: p.Mean})
		last = p.Start
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// lineSeries draws runs of points as lines (where a run has two points or more) and
// glyphs, in style i of the palette; it returns the legend thumbnails and the number of
// points drawn.
func lineSeries(p *plot.Plot, rs []plotter.XYs, i int) ([]plot.Thumbnailer, int, error) {
	col := palette[i%len(palette)]
	var all plotter.XYs
	var line *plotter.Line
	for _, r := range rs {
		all = append(all, r...)
		if len(r) < 2 {
			continue
		}
		l, err := plotter.NewLine(r)
		if err != nil {
			return nil, 0, err
		}
		l.Color = col
		l.Width = vg.Points(1.5)
		l.Dashes = dashes[(i/len(palette)+i)%len(dashes)]
		p.Add(l)
		line = l
	}
	if len(all) == 0 {
		return nil, 0, nil
	}
	sc, err := plotter.NewScatter(all)
	if err != nil {
		return nil, 0, err
	}
	sc.Color = col
	sc.Shape = glyphs[i%len(glyphs)]
	sc.Radius = vg.Points(2.5)
	p.Add(sc)
	if line != nil {
		return []plot.Thumbnailer{line, sc}, len(all), nil
	}
	return []plot.Thumbnailer{sc}, len(all), nil
}

// trendChart draws the mean score per bucket of each model of e, one colour, glyph and
// dash pattern per model, each point at the middle of its bucket.
func trendChart(e Evaluator, d Data) (*chart, error) {
	title := "Mean score of " + e.Name + " per model"
	p := newPlot(title, "event time (UTC), "+bucketText(d.Bucket)+" buckets", yScale(e))
	timeAxis(p, d)
	ch := newChart(p, title, trendHeight)
	for i, s := range e.Series {
		thumbs, n, err := lineSeries(p, runs(s.Points, d.Bucket, d.From, d.To), i)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			ch.addLegend(shown(s.Model), thumbs...)
			ch.points += n
		}
	}
	return ch, nil
}

// yScale names the trend chart's y axis with the score's scale.
func yScale(e Evaluator) string {
	switch e.TaskType {
	case TaskPairwise:
		return "mean preference (0–1)"
	case TaskClassification:
		return "mean score (0–1)"
	}
	return "mean score (rubric scale)"
}

// volumeChart draws the scored and failed rows per bucket over all models of e, stacked:
// the failed rows on top of the scored ones.
func volumeChart(e Evaluator, d Data) (*chart, error) {
	title := "Rows judged by " + e.Name + ": scored and failed"
	p := newPlot(title, "event time (UTC)", "rows per "+bucketText(d.Bucket)+" bucket")
	timeAxis(p, d)
	ch := newChart(p, title, volHeight)
	var total, scored []plotter.HistogramBin
	for _, v := range e.Volume {
		lo, hi := unix(v.Start), unix(v.Start.Add(d.Bucket))
		total = append(total, plotter.HistogramBin{Min: lo, Max: hi, Weight: float64(v.Scored + v.Failed)})
		scored = append(scored, plotter.HistogramBin{Min: lo, Max: hi, Weight: float64(v.Scored)})
	}
	if len(total) == 0 {
		return nil, nil
	}
	// The total drawn in the failure colour, then the scored rows over it: what shows of the
	// total above the scored bar is the failed rows.
	width := d.Bucket.Seconds()
	failedBars := &plotter.Histogram{Bins: total, FillColor: colorFailed, Width: width}
	scoredBars := &plotter.Histogram{Bins: scored, FillColor: colorScored, Width: width}
	failedBars.LineStyle.Width = 0
	scoredBars.LineStyle.Width = 0
	p.Add(failedBars, scoredBars)
	p.Y.Min = 0
	p.Y.Tick.Marker = countTicks{}
	ch.addLegend("scored", scoredBars)
	ch.addLegend("failed (on top)", failedBars)
	ch.points = len(total)
	return ch, nil
}

// errPoints are points with horizontal error bars.
type errPoints struct {
	plotter.XYs
	plotter.XErrors
}

// compareChart draws each comparison of e as its difference B − A (a point) with its 95%
// interval (error bars) against a dashed zero line, one row per comparison.
func compareChart(e Evaluator) (*chart, error) {
	var pts plotter.XYs
	var bars errPoints
	var names []string
	for _, c := range slices.Backward(e.Comparisons) {
		if !finite(c.Diff) {
			continue
		}
		y := float64(len(names))
		names = append(names, clip(28, shown(c.ModelB))+" − "+clip(28, shown(c.ModelA)))
		pts = append(pts, plotter.XY{X: c.Diff, Y: y})
		if finite(c.Low) && finite(c.High) {
			bars.XYs = append(bars.XYs, plotter.XY{X: c.Diff, Y: y})
			bars.XErrors = append(bars.XErrors, struct{ Low, High float64 }{c.Diff - c.Low, c.High - c.Diff})
		}
	}
	if len(pts) == 0 {
		return nil, nil
	}
	title := "Model comparisons under " + e.Name + ": B − A with 95% CI"
	p := newPlot(title, "difference of mean scores, B − A (rubric scale)", "")
	ch := newChart(p, title, 3*vg.Centimeter+rowHeight*vg.Length(len(names)))
	zero, err := plotter.NewLine(plotter.XYs{{X: 0, Y: -0.5}, {X: 0, Y: float64(len(names)) - 0.5}})
	if err != nil {
		return nil, err
	}
	zero.Color, zero.Dashes = palette[6], dashes[1]
	p.Add(zero)
	if len(bars.XYs) > 0 {
		eb, err := plotter.NewXErrorBars(bars)
		if err != nil {
			return nil, err
		}
		eb.Color, eb.Width, eb.CapWidth = palette[0], vg.Points(1.5), vg.Points(8)
		p.Add(eb)
		// Error bars have no legend thumbnail: a line in their style stands for them.
		thumb, err := plotter.NewLine(plotter.XYs{{}, {}})
		if err != nil {
			return nil, err
		}
		thumb.LineStyle = eb.LineStyle
		ch.addLegend("95% CI", thumb)
	}
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, err
	}
	sc.Color, sc.Shape, sc.Radius = palette[5], draw.CircleGlyph{}, vg.Points(3.5)
	p.Add(sc)
	ch.addLegend("B − A", sc)
	ch.addLegend("no difference", zero)
	p.NominalY(names...)
	// The x range always shows 0 and the intervals, with a margin.
	lo, hi := 0.0, 0.0
	for _, q := range pts {
		lo, hi = min(lo, q.X), max(hi, q.X)
	}
	for i, q := range bars.XYs {
		lo, hi = min(lo, q.X-bars.XErrors[i].Low), max(hi, q.X+bars.XErrors[i].High)
	}
	pad := (hi - lo) * 0.08
	if pad == 0 {
		pad = 0.1
	}
	p.X.Min, p.X.Max = lo-pad, hi+pad
	ch.points = len(pts)
	return ch, nil
}

// shown names an empty name for the page: "(none)".
func shown(name string) string {
	if name == "" {
		return "(none)"
	}
	return name
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// alertStates are the alert states in legend order, each with its colour and glyph.
var alertStates = [...]struct {
	name  string
	color color.Color
	glyph draw.GlyphDrawer
}{
	{"firing", palette[5], draw.TriangleGlyph{}},
	{"pending", palette[1], draw.SquareGlyph{}},
	{"resolved", palette[2], draw.CircleGlyph{}},
	{"other", palette[6], draw.CrossGlyph{}},
}

func alertState(s string) int {
	for i, st := range alertStates[:len(alertStates)-1] {
		if strings.EqualFold(s, st.name) {
			return i
		}
	}
	return len(alertStates) - 1
}

// maxAlertRows bounds the rows of the alert timeline; the table lists every alert.
const maxAlertRows = 40

// alertsChart draws each alert as a bar from its start to its resolution (a pending or
// firing one to the range's end), one row per
// alert (the latest maxAlertRows), its state shown by colour, marker and legend.
func alertsChart(alerts []Alert, d Data) (*chart, error) {
	if len(alerts) == 0 || d.Bucket == 0 {
		return nil, nil
	}
	if len(alerts) > maxAlertRows {
		alerts = alerts[len(alerts)-maxAlertRows:]
	}
	title := "Alerts in the range, from start to resolution (or the range end)"
	p := newPlot(title, "event time (UTC)", "")
	timeAxis(p, d)
	ch := newChart(p, title, 3*vg.Centimeter+rowHeight*vg.Length(len(alerts)))
	lo, hi := unix(d.From), unix(d.To)
	var names []string
	var legend [len(alertStates)]bool
	for i, a := range alerts {
		st := alertStates[alertState(a.State)]
		end := a.UpdatedAt
		if end.Before(a.Since) {
			end = a.Since
		}
		if a.Ongoing() {
			end = d.To
		}
		x0, x1 := min(max(unix(a.Since), lo), hi), min(max(unix(end), lo), hi)
		y := float64(i)
		l, err := plotter.NewLine(plotter.XYs{{X: x0, Y: y}, {X: x1, Y: y}})
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = st.color, vg.Points(6)
		sc, err := plotter.NewScatter(plotter.XYs{{X: x1, Y: y}})
		if err != nil {
			return nil, err
		}
		sc.Color, sc.Shape, sc.Radius = palette[6], st.glyph, vg.Points(4)
		p.Add(l, sc)
		if k := alertState(a.State); !legend[k] {
			legend[k] = true
			ch.addLegend(st.name, l, sc)
		}
		name := a.Rule
		if a.Evaluator != "" {
			name += " · " + a.Evaluator
		}
		if a.Model != "" {
			name += " · " + a.Model
		}
		names = append(names, clip(36, name))
	}
	p.NominalY(names...)
	ch.points = len(alerts)
	return ch, nil
}

// pairwiseChart draws each model's verdict labels under e as a horizontal bar of 100%,
// stacked first, second, tie, inconsistent, other; each label a colour and an outline
// pattern.
func pairwiseChart(e Evaluator) (*chart, error) {
	ps := e.Pairwise
	if len(ps) == 0 {
		return nil, nil
	}
	title := "Verdicts of " + e.Name + " per model (share of scored rows)"
	p := newPlot(title, "share of verdicts (%)", "")
	ch := newChart(p, title, 3*vg.Centimeter+rowHeight*vg.Length(len(ps)))
	var names []string
	for _, s := range slices.Backward(ps) {
		names = append(names, clip(36, shown(s.Model)))
	}
	var below *plotter.BarChart
	for li, label := range pairwiseLabels {
		vs := make(plotter.Values, len(ps))
		any := false
		for i, s := range slices.Backward(ps) {
			vs[len(ps)-1-i] = s.Share(li)
			if s.Counts[li] > 0 {
				any = true
				ch.points++
			}
		}
		if !any {
			continue
		}
		b, err := plotter.NewBarChart(vs, rowHeight*0.6)
		if err != nil {
			return nil, err
		}
		b.Horizontal = true
		b.Color = pairwiseColors[li]
		b.LineStyle.Color = palette[6]
		b.LineStyle.Width = vg.Points(0.75)
		b.LineStyle.Dashes = dashes[li%len(dashes)]
		if below != nil {
			b.StackOn(below)
		}
		below = b
		p.Add(b)
		ch.addLegend(label, b)
	}
	p.NominalY(names...)
	p.X.Min, p.X.Max = 0, 100
	return ch, nil
}

// pairwiseColors are the label colours: first blue, second orange, tie sky blue,
// inconsistent vermillion (the one to notice), other reddish purple.
var pairwiseColors = [...]color.Color{palette[0], palette[1], palette[4], palette[5], palette[3]}

// judgesChart draws the failed rows (parse failures and judge errors) per bucket of each
// judge that failed at least once, the most failing first, at most len(palette); a
// broken judge shows as a spike.
func judgesChart(js []JudgeFailures, d Data) (*chart, error) {
	js = slices.Clone(js)
	slices.SortStableFunc(js, func(x, y JudgeFailures) int {
		return cmp.Compare(y.ParseFailures+y.JudgeErrors, x.ParseFailures+x.JudgeErrors)
	})
	title := "Parse failures and judge errors per judge"
	p := newPlot(title, "event time (UTC), "+bucketText(d.Bucket)+" buckets", "failed rows per bucket")
	timeAxis(p, d)
	ch := newChart(p, title, judgesHeight)
	for i, j := range js {
		if j.ParseFailures+j.JudgeErrors == 0 || i == len(palette) || d.Bucket == 0 {
			break
		}
		var run plotter.XYs
		var rs []plotter.XYs
		var last time.Time
		for _, q := range j.Points {
			if len(run) > 0 && !q.Start.Equal(last.Add(d.Bucket)) {
				rs, run = append(rs, run), nil
			}
			run = append(run, plotter.XY{X: midpoint(q.Start, d.Bucket, d.From, d.To), Y: float64(q.ParseFailures + q.JudgeErrors)})
			last = q.Start
		}
		if len(run) > 0 {
			rs = append(rs, run)
		}
		thumbs, n, err := lineSeries(p, rs, i)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			ch.addLegend(shown(j.Judge), thumbs...)
			ch.points += n
		}
	}
	p.Y.Min = 0
	p.Y.Tick.Marker = countTicks{}
	return ch, nil
}

// bucketText names a bucket width: "5-minute", "3-hour", "1-day", "1-week".
func bucketText(b time.Duration) string {
	switch {
	case b <= 0:
		return "no"
	case b%(7*24*time.Hour) == 0:
		return fmt.Sprintf("%d-week", b/(7*24*time.Hour))
	case b%(24*time.Hour) == 0:
		return fmt.Sprintf("%d-day", b/(24*time.Hour))
	case b%time.Hour == 0:
		return fmt.Sprintf("%d-hour", b/time.Hour)
	case b%time.Minute == 0:
		return fmt.Sprintf("%d-minute", b/time.Minute)
	}
	return b.String()
}
