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
// white). Series also differ by glyph shape, so colour is never the only cue.
var palette = []color.Color{
	rgb(0x00, 0x72, 0xB2), // blue
	rgb(0xE6, 0x9F, 0x00), // orange
	rgb(0x00, 0x9E, 0x73), // bluish green
	rgb(0xCC, 0x79, 0xA7), // reddish purple
	rgb(0x56, 0xB4, 0xE9), // sky blue
	rgb(0xD5, 0x5E, 0x00), // vermillion
	rgb(0x00, 0x00, 0x00), // black
	rgb(0xF0, 0xE4, 0x42), // yellow
}

var glyphs = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PlusGlyph{},
	draw.CrossGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{},
}

// The colours of the volume and failure charts: scored rows blue, failures vermillion and
// orange.
var (
	colorScored       = palette[0]
	colorFailed       = palette[5]
	colorParseFailure = palette[1]
)

func rgb(r, g, b uint8) color.Color { return color.RGBA{R: r, G: g, B: b, A: 0xff} }

// Chart sizes, in points. The page scales them to its width (viewBox), so they set the
// aspect ratio and the text size relative to the plot.
const (
	chartWidth   = 16 * vg.Centimeter
	trendHeight  = 8 * vg.Centimeter
	volHeight    = 6 * vg.Centimeter
	judgesHeight = 8 * vg.Centimeter
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
	return p
}

// timeAxis sets p's x axis to the report's range, ticked at round UTC times.
func timeAxis(p *plot.Plot, d Data) {
	p.X.Min = float64(d.From.Unix())
	p.X.Max = float64(d.To.Unix())
	p.X.Tick.Marker = timeTicks{}
}

// tickSteps are the spacings, in seconds, of the time axis' ticks.
var tickSteps = []int64{3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400,
	14 * 86400, 28 * 86400, 91 * 86400, 182 * 86400, 364 * 86400}

// timeTicks puts at most 6 ticks at multiples of a round step since the epoch: hours,
// midnights UTC, or weeks (Thursdays, as the epoch was).
type timeTicks struct{}

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

// chart is a plot ready to draw, its size and its title (the SVG's accessible label).
type chart struct {
	plot  *plot.Plot
	w, h  vg.Length
	title string
	// legend is drawn right of the plot, not over its data (the plot's own legend stays
	// empty); labels are its entries' labels.
	legend plot.Legend
	labels []string
}

// addLegend adds a legend entry, its label clipped to legendRunes.
func (ch *chart) addLegend(label string, thumbs ...plot.Thumbnailer) {
	if ch.labels == nil {
		ch.legend = plot.NewLegend()
		ch.legend.TextStyle.Font.Variant = "Sans"
		ch.legend.Top, ch.legend.Left = true, true
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
	} else {
		// The legend's column: its widest label, the thumbnail and some padding.
		var lw vg.Length
		for _, l := range ch.labels {
			lw = max(lw, ch.legend.TextStyle.Width(l))
		}
		lw += ch.legend.ThumbnailWidth + 3*vg.Millimeter
		lw = min(lw, ch.w*2/5)
		p.Draw(draw.Crop(dc, 0, -lw, 0, 0))
		title := p.Title.TextStyle.Height(p.Title.Text) + p.Title.Padding
		ch.legend.Draw(draw.Crop(dc, ch.w-lw+2*vg.Millimeter, 0, 0, -title-2*vg.Millimeter))
	}
}

// svg draws the chart as an SVG element for inlining in the page: the XML prolog dropped,
// and a role and label for screen readers. Its text was escaped by vgsvg
// (html.EscapeString), which is why the result may be trusted as template.HTML. A nil
// chart draws nothing.
func (ch *chart) svg() (_ template.HTML, err error) {
	if ch == nil {
		return "", nil
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
		return "", fmt.Errorf("drawing %q: %w", label, err)
	}
	s := b.String()
	i := strings.Index(s, "<svg ")
	if i < 0 {
		return "", fmt.Errorf("drawing %q: no <svg> element in gonum's output", label)
	}
	s = `<svg role="img" aria-label="` + html.EscapeString(label) + `" ` + s[i+len("<svg "):]
	// Inline SVG in HTML is in the SVG namespace without saying so; dropping the
	// declarations leaves the page without a single http:// string.
	s = strings.NewReplacer(svgNS, "", xlinkNS, "").Replace(s)
	return template.HTML(s), nil
}

const (
	svgNS   = `xmlns="http://www.w3.org/2000/svg"`
	xlinkNS = `xmlns:xlink="http://www.w3.org/1999/xlink"`
)

// runs splits a series' points into runs of consecutive buckets with a finite mean: one
// line per run, so an empty bucket leaves a gap instead of a line across it.
func runs(pts []Point, bucket time.Duration) []plotter.XYs {
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
		cur = append(cur, plotter.XY{X: unix(p.Start.Add(bucket / 2)), Y: p.Mean})
		last = p.Start
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// trendChart draws the mean score per bucket of each model of e, one colour and glyph per
// model, each point at the middle of its bucket.
func trendChart(e Evaluator, d Data) (*chart, error) {
	title := "Mean score of " + e.Name + " per model"
	p := newPlot(title, "Event time (UTC, "+bucketText(d.Bucket)+" buckets)", "Mean score (rubric scale)")
	timeAxis(p, d)
	ch := &chart{plot: p, w: chartWidth, h: trendHeight, title: title}
	drawn := false
	for i, s := range e.Series {
		col := palette[i%len(palette)]
		var all plotter.XYs
		var line *plotter.Line
		for _, r := range runs(s.Points, d.Bucket) {
			all = append(all, r...)
			if len(r) < 2 {
				continue
			}
			l, err := plotter.NewLine(r)
			if err != nil {
				return nil, err
			}
			l.Color = col
			l.Width = vg.Points(1.5)
			p.Add(l)
			line = l
		}
		if len(all) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(all)
		if err != nil {
			return nil, err
		}
		sc.Color = col
		sc.Shape = glyphs[i%len(glyphs)]
		sc.Radius = vg.Points(2.5)
		p.Add(sc)
		if line != nil {
			ch.addLegend(s.Model, line, sc)
		} else {
			ch.addLegend(s.Model, sc)
		}
		drawn = true
	}
	if !drawn {
		return nil, nil
	}
	return ch, nil
}

// volumeChart draws the scored and failed rows per bucket over all models of e, stacked:
// the failed rows on top of the scored ones.
func volumeChart(e Evaluator, d Data) (*chart, error) {
	title := "Rows judged by " + e.Name + ": scored and failed"
	p := newPlot(title, "Event time (UTC)", "Rows per "+bucketText(d.Bucket)+" bucket")
	timeAxis(p, d)
	ch := &chart{plot: p, w: chartWidth, h: volHeight, title: title}
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
	failedBars := &plotter.Histogram{Bins: total, FillColor: colorFailed, Width: unix(d.From.Add(d.Bucket)) - unix(d.From)}
	scoredBars := &plotter.Histogram{Bins: scored, FillColor: colorScored, Width: failedBars.Width}
	failedBars.LineStyle.Width = 0
	scoredBars.LineStyle.Width = 0
	p.Add(failedBars, scoredBars)
	p.Y.Min = 0
	ch.addLegend("scored", scoredBars)
	ch.addLegend("failed", failedBars)
	return ch, nil
}

// judgesChart draws the parse failures and judge errors per judge, side by side; judges
// without failures are left out. At most maxJudges judges are drawn, the most failing.
func judgesChart(js []JudgeFailures) (*chart, error) {
	js = slices.Clone(js)
	slices.SortStableFunc(js, func(x, y JudgeFailures) int {
		return cmp.Compare(y.ParseFailures+y.JudgeErrors, x.ParseFailures+x.JudgeErrors)
	})
	var names []string
	var parse, errs plotter.Values
	for _, j := range js {
		if j.ParseFailures+j.JudgeErrors == 0 || len(names) == maxJudges {
			break
		}
		names = append(names, j.Judge)
		parse = append(parse, float64(j.ParseFailures))
		errs = append(errs, float64(j.JudgeErrors))
	}
	if len(names) == 0 {
		return nil, nil
	}
	title := "Parse failures and judge errors per judge"
	p := newPlot(title, "Judge", "Rows")
	ch := &chart{plot: p, w: chartWidth, h: judgesHeight, title: title}
	w := vg.Points(14)
	pb, err := plotter.NewBarChart(parse, w)
	if err != nil {
		return nil, err
	}
	eb, err := plotter.NewBarChart(errs, w)
	if err != nil {
		return nil, err
	}
	pb.Color, pb.LineStyle.Width, pb.Offset = colorParseFailure, 0, -w/2
	eb.Color, eb.LineStyle.Width, eb.Offset = colorFailed, 0, w/2
	p.Add(pb, eb)
	p.Y.Min = 0
	ch.addLegend("parse failures", pb)
	ch.addLegend("judge errors", eb)
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = draw.XRight
	return ch, nil
}

// maxJudges bounds the judges of the failure chart; the table lists all.
const maxJudges = 24

func bucketText(b time.Duration) string {
	switch h := int(b / time.Hour); {
	case h <= 1:
		return "1-hour"
	case h%24 == 0:
		return fmt.Sprintf("%d-day", h/24)
	default:
		return fmt.Sprintf("%d-hour", h)
	}
}
