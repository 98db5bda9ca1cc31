package htmlreport

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"raterd/internal/report/welch"
	"raterd/record"
)

var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// rows returns a handful of rows: two models over three hours under one evaluator, a
// parse failure and a judge error, and a label and explanation that try to inject markup.
func rows() []record.Score {
	row := func(h int, model string, v float64, status string) record.Score {
		return record.Score{EventTime: t0.Add(time.Duration(h)*time.Hour + 5*time.Minute), Model: model,
			Evaluator: "helpfulness", TaskType: TaskPointwise, Judge: "judge-a", RecordID: "r" + model,
			App: "shop", Value: v, Status: status}
	}
	rs := []record.Score{
		row(0, "m1", 0.8, record.StatusOK), row(1, "m1", 0.6, record.StatusOK), row(2, "m1", 0.7, record.StatusOK),
		row(0, "m2", 0.9, record.StatusOK), row(1, "m2", 0.95, record.StatusOK), row(2, "m2", 0, record.StatusParseFailure),
		row(2, "m2", 0, record.StatusJudgeError),
	}
	rs[1].Label = `<script>alert("label")</script>`
	rs[1].Explanation = `</td><script>alert(1)</script><img src="https://evil.example/x.png">`
	rs[6].Judge = `<b>judge-b</b>`
	return rs
}

func render(t testing.TB, d Data) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, d); err != nil {
		t.Fatalf("Render: %v", err)
	}
	return b.String()
}

// parse parses the page as a browser would and fails the test when it is not a document.
func parse(t testing.TB, page string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	return n.Type == html.ElementNode && strings.Contains(" "+attr(n, "class")+" ", " "+class+" ")
}

// checkSelfContained fails the test when the page has a script, an element the parser
// made from input text, or a reference to anything outside the page.
func checkSelfContained(t testing.TB, doc *html.Node, page string) {
	t.Helper()
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.Data {
		case "script", "img", "iframe", "object", "embed", "link", "b", "foreignobject":
			t.Errorf("the page has a <%s> element", n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s> has an event handler %s", n.Data, a.Key)
			}
			if a.Key == "src" || strings.HasSuffix(a.Key, "href") && !strings.HasPrefix(a.Val, "#") {
				t.Errorf("<%s> references %s=%q", n.Data, a.Key, a.Val)
			}
		}
	})
	walk(doc, func(n *html.Node) {
		if n.Type == html.TextNode && n.Parent != nil && n.Parent.Data == "style" &&
			(strings.Contains(n.Data, "url(") || strings.Contains(n.Data, "@import")) {
			t.Errorf("the style sheet loads a resource")
		}
	})
	if strings.Contains(strings.ToLower(page), "<script") {
		t.Errorf("the page has <script")
	}
	for i := 0; i < len(page); i++ {
		if c := page[i]; c < 0x20 && c != '\n' && c != '\t' && c != '\r' {
			t.Fatalf("the page has control character %#x at %d", c, i)
		}
	}
}

// figures checks the chart contract of every chart on the page and returns the figures by
// id: <figure class="chart" id data-points="N > 0"> holding exactly one <svg> whose first
// child is its <title> (what aria-labelledby names), followed by a <figcaption>. Every
// <svg> on the page is such a chart.
func figures(t testing.TB, doc *html.Node) map[string]*html.Node {
	t.Helper()
	out := map[string]*html.Node{}
	svgs := 0
	walk(doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "svg" {
			svgs++
		}
		if n.Type != html.ElementNode || n.Data != "figure" {
			return
		}
		id := attr(n, "id")
		if !hasClass(n, "chart") || id == "" || out[id] != nil {
			t.Errorf("figure %q: class %q, duplicate %v", id, attr(n, "class"), out[id] != nil)
		}
		out[id] = n
		if k, err := strconv.Atoi(attr(n, "data-points")); err != nil || k <= 0 {
			t.Errorf("figure %q: data-points %q", id, attr(n, "data-points"))
		}
		var kids []*html.Node
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode {
				kids = append(kids, c)
			}
		}
		if len(kids) != 2 || kids[0].Data != "svg" || kids[1].Data != "figcaption" {
			t.Errorf("figure %q: children %v, want svg and figcaption", id, names(kids))
			return
		}
		svg := kids[0]
		title := svg.FirstChild
		if title == nil || title.Type != html.ElementNode || title.Data != "title" || title.FirstChild == nil ||
			strings.TrimSpace(title.FirstChild.Data) == "" {
			t.Errorf("figure %q: the svg's first child is not a non-empty <title>", id)
			return
		}
		if attr(svg, "role") != "img" || attr(svg, "aria-labelledby") != attr(title, "id") || attr(svg, "viewBox") == "" {
			t.Errorf("figure %q: svg role %q, aria-labelledby %q (title %q), viewBox %q", id, attr(svg, "role"),
				attr(svg, "aria-labelledby"), attr(title, "id"), attr(svg, "viewBox"))
		}
		if k := marks(svg); k < 10 {
			t.Errorf("figure %q: %d paths", id, k)
		}
	})
	if svgs != len(out) {
		t.Errorf("%d <svg> elements, %d chart figures", svgs, len(out))
	}
	return out
}

func names(ns []*html.Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Data)
	}
	return out
}

// marks counts the drawn shapes (paths) in an svg element.
func marks(svg *html.Node) int {
	k := 0
	walk(svg, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "path" {
			k++
		}
	})
	return k
}

// text returns the text of the page as a browser shows it (entities decoded).
func text(doc *html.Node) string {
	var b strings.Builder
	walk(doc, func(n *html.Node) {
		if n.Type == html.TextNode && (n.Parent == nil || n.Parent.Data != "style") {
			b.WriteString(n.Data)
			b.WriteByte(' ')
		}
	})
	return b.String()
}

// emptyStates returns the texts of the page's <p class="empty">.
func emptyStates(doc *html.Node) []string {
	var out []string
	walk(doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "p" && hasClass(n, "empty") {
			out = append(out, text(n))
		}
	})
	return out
}

func TestRenderHandfulOfRows(t *testing.T) {
	d := FromScores(rows(), Options{Now: t0})
	// 10:05 to 12:05 and one second: 121 one-minute buckets, more than 120.
	if d.Rows != 7 || len(d.Evaluators) != 1 || d.Bucket != 5*time.Minute || d.CellWidth != time.Minute {
		t.Fatalf("Data: %d rows, %d evaluators, bucket %v, cells %v; want 7, 1, 5m, 1m", d.Rows, len(d.Evaluators), d.Bucket, d.CellWidth)
	}
	if !d.From.Equal(t0.Add(5*time.Minute)) || !d.To.Equal(t0.Add(2*time.Hour+10*time.Minute)) {
		t.Errorf("range %v – %v", d.From, d.To)
	}
	e := d.Evaluators[0]
	if len(e.Series) != 2 || e.Series[0].Model != "m1" || e.Series[0].Scored != 3 || e.Series[1].Failed != 2 ||
		e.Series[1].ParseFailures != 1 || e.Series[1].JudgeErrors != 1 {
		t.Errorf("series: %+v", e.Series)
	}
	if got := e.Series[0].Mean; math.Abs(got-0.7) > 1e-9 {
		t.Errorf("m1 mean %v, want 0.7", got)
	}
	if len(e.Worst) != 5 || e.Worst[0].Score != 0.6 || e.Worst[0].App != "shop" || e.Worst[0].Evaluator != "helpfulness" {
		t.Errorf("worst: %+v", e.Worst)
	}
	if len(d.Judges) != 2 || d.Judges[1].ParseFailures != 1 || d.Judges[0].JudgeErrors != 1 ||
		len(d.Judges[1].Points) != 3 {
		t.Errorf("judges: %+v", d.Judges)
	}
	if len(e.Comparisons) != 1 || e.Comparisons[0].ModelA != "m1" || e.Comparisons[0].ModelB != "m2" {
		t.Errorf("comparisons: %+v", e.Comparisons)
	}

	page := render(t, d)
	doc := parse(t, page)
	checkSelfContained(t, doc, page)
	figs := figures(t, doc)
	for _, id := range []string{"trend-1", "volume-1", "compare-1", "judges-failures"} {
		if figs[id] == nil {
			t.Errorf("no chart %s; have %v", id, figs)
		}
	}
	if len(figs) != 4 {
		t.Errorf("%d charts, want 4", len(figs))
	}
	// 5 points of m1 and m2 on the trend, 3 buckets of volume, 2 judges' failure buckets.
	if got := attr(figs["trend-1"], "data-points"); got != "5" {
		t.Errorf("trend data-points %s, want 5", got)
	}
	if got := attr(figs["volume-1"], "data-points"); got != "3" {
		t.Errorf("volume data-points %s, want 3", got)
	}
	// Only the escaped explanation names a URL; the page itself names none (not even the
	// SVG namespace).
	if n := strings.Count(page, "http"); n != 1 {
		t.Errorf("the page has %d http strings, want 1 (the explanation)", n)
	}
	for _, want := range []string{
		"&lt;script&gt;alert(&#34;label&#34;)&lt;/script&gt;",
		"&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;",
		"&lt;b&gt;judge-b&lt;/b&gt;",
		"mean score (rubric scale)", "event time (UTC), 5-minute buckets",
		"Written 2026-11-28 10:00 UTC",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// Sections in order, each present.
	last := -1
	for _, id := range []string{`id="summary"`, `id="trends"`, `id="comparisons"`, `id="alerts"`, `id="pairwise"`, `id="worst"`, `id="judges"`} {
		i := strings.Index(page, id)
		if i <= last {
			t.Errorf("section %s at %d, after %d", id, i, last)
		}
		last = i
	}
	// NDJSON rows have no alerts and no pairwise evaluator: both sections say why.
	es := strings.Join(emptyStates(doc), "\n")
	if !strings.Contains(es, "ClickHouse") || !strings.Contains(es, "No pairwise evaluator") {
		t.Errorf("empty states: %s", es)
	}
}

func TestRenderEmptyRange(t *testing.T) {
	for name, d := range map[string]Data{
		"range without rows": FromScores(rows(), Options{From: t0.Add(24 * time.Hour), To: t0.Add(48 * time.Hour)}),
		"no rows at all":     FromScores(nil, Options{}),
	} {
		if d.Rows != 0 || len(d.Evaluators) != 0 {
			t.Fatalf("%s: Data: %+v", name, d)
		}
		page := render(t, d)
		doc := parse(t, page)
		checkSelfContained(t, doc, page)
		if strings.Contains(page, "<svg") || strings.Contains(page, "<figure") {
			t.Errorf("%s: an empty range drew a chart", name)
		}
		es := emptyStates(doc)
		// trends, comparisons, alerts, pairwise, worst, judges
		if len(es) != 6 || !strings.Contains(es[0], "No score rows in the range") {
			t.Errorf("%s: empty states %q", name, es)
		}
	}
}

func TestFilters(t *testing.T) {
	d := FromScores(rows(), Options{Models: []string{"m2"}, Evaluators: []string{"helpfulness"}})
	if d.Rows != 4 || len(d.Evaluators[0].Series) != 1 || d.Evaluators[0].Series[0].Model != "m2" {
		t.Errorf("model filter: %+v", d)
	}
	if d := FromScores(rows(), Options{Apps: []string{"other"}}); d.Rows != 0 {
		t.Errorf("app filter kept %d rows", d.Rows)
	}
}

func TestBucketFor(t *testing.T) {
	for _, tc := range []struct {
		span time.Duration
		max  int
		want time.Duration
	}{
		{time.Hour, 120, time.Minute},
		{time.Hour, 60, time.Minute},
		{time.Hour + time.Second, 60, 5 * time.Minute}, // 61 one-minute buckets
		{10 * time.Hour, 120, 5 * time.Minute},
		{24 * time.Hour, 120, 15 * time.Minute},
		{7 * 24 * time.Hour, 168, time.Hour},
		{30 * 24 * time.Hour, 120, 12 * time.Hour},
		{90 * 24 * time.Hour, 120, 24 * time.Hour},
		{10 * 365 * 24 * time.Hour, 120, 5 * 7 * 24 * time.Hour}, // past 7d, whole weeks: 105 buckets
		{3 * 365 * 24 * time.Hour, 120, 2 * 7 * 24 * time.Hour},  // 79 two-week buckets; 157 weeks
		{0, 10, time.Minute},
	} {
		from := t0 // aligned to every width but the week
		if got := BucketFor(from, from.Add(tc.span), tc.max); got != tc.want {
			t.Errorf("BucketFor(%v, %d) = %v, want %v", tc.span, tc.max, got, tc.want)
		}
	}
	// An unaligned range counts the buckets it touches: 10:30–11:30 touches 2 hours.
	if got := BucketFor(t0.Add(30*time.Minute), t0.Add(90*time.Minute), 1); got != 3*time.Hour {
		t.Errorf("unaligned hour: %v, want 3h", got)
	}
	midnight := t0.Truncate(24 * time.Hour)
	if got := NewAggregator(Options{From: midnight, To: midnight.Add(30 * 24 * time.Hour)}).SourceBucket(); got != 6*time.Hour {
		t.Errorf("SourceBucket for 30 days: %v, want 6h (120 buckets)", got)
	}
	// From 10:00 the 6-hour buckets are 121.
	if got := NewAggregator(Options{From: t0, To: t0.Add(30 * 24 * time.Hour)}).SourceBucket(); got != 12*time.Hour {
		t.Errorf("SourceBucket for 30 days from 10:00: %v, want 12h", got)
	}
	if got := NewAggregator(Options{From: t0, To: t0.Add(time.Hour), MinBucket: 2 * time.Hour}).SourceBucket(); got != 3*time.Hour {
		t.Errorf("SourceBucket with MinBucket 2h: %v, want 3h", got)
	}
	if got := BucketFor(t0, t0.Add(2*time.Hour), 0); got != time.Minute {
		t.Errorf("BucketFor with maxPoints 0: %v, want the default's 1m", got)
	}
	for i := 1; i < len(ladder); i++ {
		if ladder[i]%ladder[i-1] != 0 {
			t.Errorf("ladder width %v is not a multiple of %v", ladder[i], ladder[i-1])
		}
	}
}

// TestCoarsening: past MaxCells cells the aggregator merges into the next ladder width,
// and the totals and the displayed points are those of an aggregator that never merged.
func TestCoarsening(t *testing.T) {
	var rs []record.Score
	for m := range 6 * 60 { // six hours, one row a minute, two models, failures every 7th
		st := record.StatusOK
		if m%7 == 0 {
			st = record.StatusParseFailure
		}
		for _, model := range []string{"a", "b"} {
			rs = append(rs, record.Score{EventTime: t0.Add(time.Duration(m) * time.Minute), Evaluator: "e", Model: model,
				Judge: "j", Value: float64(m%10) / 10, Status: st})
		}
	}
	small := FromScores(rs, Options{MaxCells: 100, MaxPoints: 6})
	big := FromScores(rs, Options{MaxPoints: 6})
	// 6 hours × 2 models + 6 judge hours = 72 quarter-hour cells ≤ 100; 5-minute cells
	// are 216.
	if small.CellWidth != 15*time.Minute || big.CellWidth != time.Minute {
		t.Fatalf("cell widths %v and %v, want 15m and 1m", small.CellWidth, big.CellWidth)
	}
	if small.Bucket != time.Hour || big.Bucket != time.Hour {
		t.Fatalf("buckets %v and %v, want 1h", small.Bucket, big.Bucket)
	}
	se, be := small.Evaluators[0], big.Evaluators[0]
	for i := range se.Series {
		s, b := se.Series[i], be.Series[i]
		if s.Scored != b.Scored || s.Failed != b.Failed || math.Abs(s.Sum-b.Sum) > 1e-9 || len(s.Points) != len(b.Points) || len(s.Points) != 6 {
			t.Errorf("series %s: %+v vs %+v", s.Model, s, b)
		}
		for j := range s.Points {
			if s.Points[j].Scored != b.Points[j].Scored || math.Abs(s.Points[j].Mean-b.Points[j].Mean) > 1e-9 {
				t.Errorf("point %d: %+v vs %+v", j, s.Points[j], b.Points[j])
			}
		}
	}
	if small.Judges[0].ParseFailures != big.Judges[0].ParseFailures || small.Judges[0].ParseFailures != 2*52 {
		t.Errorf("judges: %+v vs %+v", small.Judges, big.Judges)
	}
	// The display is never finer than the cells.
	if d := FromScores(rs, Options{MaxCells: 100, MaxPoints: 1000}); d.Bucket != 15*time.Minute {
		t.Errorf("bucket %v, want the 15m cells", d.Bucket)
	}
}

// TestMillionRows: a million rows over 30 days aggregate in bounded memory (cells ≤
// MaxCells) into totals that add up, with at most MaxPoints points per chart.
func TestMillionRows(t *testing.T) {
	const n = 1_000_000
	a := NewAggregator(Options{MaxCells: 20_000})
	evaluators := []string{"helpfulness", "safety", "duel"}
	models := []string{"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"}
	span := int64(30 * 24 * 3600)
	var scored, failed int64
	var sum float64
	r := record.Score{Judge: "j", Status: record.StatusOK}
	for i := range int64(n) {
		r.EventTime = t0.Add(time.Duration(i*span/n) * time.Second)
		r.Evaluator = evaluators[i%3]
		r.TaskType = TaskPointwise
		if r.Evaluator == "duel" {
			r.TaskType, r.Label = TaskPairwise, pairwiseLabels[i%4]
		}
		r.Model = models[i%7]
		r.RecordID = strconv.FormatInt(i, 10)
		r.Value = float64(i%11) / 10
		r.Status = record.StatusOK
		if i%97 == 0 {
			r.Status = record.StatusJudgeError
			failed++
		} else {
			scored++
			sum += r.Value
		}
		a.Add(&r)
		if len(a.cells)+len(a.judgeCells) > 20_000 {
			t.Fatalf("row %d: %d cells", i, len(a.cells)+len(a.judgeCells))
		}
	}
	d := a.Data()
	var gotScored, gotFailed int64
	var gotSum float64
	for _, e := range d.Evaluators {
		for _, s := range e.Series {
			gotScored += s.Scored
			gotFailed += s.Failed
			gotSum += s.Sum
			if len(s.Points) > 120 {
				t.Errorf("%s/%s: %d points", e.Name, s.Model, len(s.Points))
			}
		}
		if len(e.Volume) > 120 {
			t.Errorf("%s: %d volume points", e.Name, len(e.Volume))
		}
		if len(e.Worst) != 10 || e.Worst[0].Score != 0 {
			t.Errorf("%s: worst %+v", e.Name, e.Worst)
		}
	}
	if d.Rows != n || gotScored != scored || gotFailed != failed || math.Abs(gotSum-sum) > 1e-6*sum {
		t.Errorf("rows %d, scored %d, failed %d, sum %v; want %d, %d, %d, %v", d.Rows, gotScored, gotFailed, gotSum, n, scored, failed, sum)
	}
	if len(d.Judges) != 1 || len(d.Judges[0].Points) > 120 || d.Judges[0].JudgeErrors != failed {
		t.Errorf("judges: %d, points %d", len(d.Judges), len(d.Judges[0].Points))
	}
	page := render(t, d)
	doc := parse(t, page)
	checkSelfContained(t, doc, page)
	for id, f := range figures(t, doc) {
		if k, _ := strconv.Atoi(attr(f, "data-points")); strings.HasPrefix(id, "volume") && k > 120 {
			t.Errorf("%s: %d points", id, k)
		}
	}
	if len(page) > 2<<20 {
		t.Errorf("page of %d bytes", len(page))
	}
}

// TestComparisonsMatchWelch: a comparison from sums is welch.Compare (what report compare
// runs) on the samples' own mean and two-pass sample variance.
func TestComparisonsMatchWelch(t *testing.T) {
	samples := map[string][]float64{
		"base":   {3, 4, 4, 5, 4, 3, 4, 5, 4, 4, 4, 3},
		"canary": {4, 5, 5, 4, 5, 4, 5},
		"third":  {1, 2},
	}
	var rs []record.Score
	for model, xs := range samples {
		for i, x := range xs {
			rs = append(rs, record.Score{EventTime: t0.Add(time.Duration(i) * time.Minute), Evaluator: "e",
				Model: model, Value: x, Status: record.StatusOK})
		}
	}
	stats := func(xs []float64) welch.Stats {
		var m, v float64
		for _, x := range xs {
			m += x
		}
		m /= float64(len(xs))
		for _, x := range xs {
			v += (x - m) * (x - m)
		}
		return welch.Stats{N: uint64(len(xs)), Mean: m, Variance: v / float64(len(xs)-1)}
	}
	d := FromScores(rs, Options{})
	cs := d.Evaluators[0].Comparisons
	if len(cs) != 2 || cs[0].ModelA != "base" || cs[0].ModelB != "canary" || cs[1].ModelB != "third" {
		t.Fatalf("comparisons: %+v", cs)
	}
	for _, c := range cs {
		want := welch.Compare(stats(samples[c.ModelA]), stats(samples[c.ModelB]))
		for name, v := range map[string][2]float64{"diff": {c.Diff, want.Diff}, "std_err": {c.StdErr, want.StdErr},
			"df": {c.DF, want.DF}, "low": {c.Low, want.Low}, "high": {c.High, want.High}} {
			if math.Abs(v[0]-v[1]) > 1e-9 {
				t.Errorf("%s − %s %s: %v, want %v", c.ModelB, c.ModelA, name, v[0], v[1])
			}
		}
		if short, long := welch.Verdict(want.Low, want.High); c.Verdict != short || c.VerdictText != long {
			t.Errorf("verdict %q", c.VerdictText)
		}
	}
	// Chosen models: one comparison, B against A.
	d = FromScores(rs, Options{ModelA: "canary", ModelB: "third"})
	if cs := d.Evaluators[0].Comparisons; len(cs) != 1 || cs[0].ModelA != "canary" || cs[0].ModelB != "third" {
		t.Errorf("chosen: %+v", cs)
	}
	// A chosen model that is missing falls back to the busiest, and says so.
	d = FromScores(rs, Options{ModelA: "canary", ModelB: "nope"})
	if e := d.Evaluators[0]; len(e.Comparisons) != 2 || !strings.Contains(e.NoComparison, "not both") {
		t.Errorf("missing model: %+v, %q", e.Comparisons, e.NoComparison)
	}
	// MaxModels bounds the comparisons to MaxModels − 1.
	if cs := FromScores(rs, Options{MaxModels: 2}).Evaluators[0].Comparisons; len(cs) != 1 {
		t.Errorf("MaxModels 2: %d comparisons", len(cs))
	}
	page := render(t, FromScores(rs, Options{}))
	doc := parse(t, page)
	if f := figures(t, doc)["compare-1"]; f == nil || attr(f, "data-points") != "2" {
		t.Errorf("comparison chart: %v", f)
	}
	if !strings.Contains(page, "significant at 5%") {
		t.Errorf("the page lacks the verdict")
	}
}

func TestOneModel(t *testing.T) {
	rs := rows()[:3]
	d := FromScores(rs, Options{})
	e := d.Evaluators[0]
	if len(e.Comparisons) != 0 || !strings.Contains(e.NoComparison, "only one model") {
		t.Fatalf("one model: %+v, %q", e.Comparisons, e.NoComparison)
	}
	page := render(t, d)
	doc := parse(t, page)
	if figures(t, doc)["compare-1"] != nil {
		t.Errorf("a comparison chart for one model")
	}
	if es := strings.Join(emptyStates(doc), "\n"); !strings.Contains(es, "No comparison: only one model (m1)") {
		t.Errorf("empty states: %s", es)
	}
}

func TestPairwise(t *testing.T) {
	var rs []record.Score
	labels := map[string][]string{
		"m1": {"first", "first", "second", "inconsistent"},
		"m2": {"inconsistent", "inconsistent", "tie", "weird"},
	}
	for model, ls := range labels {
		for i, l := range ls {
			rs = append(rs, record.Score{EventTime: t0.Add(time.Duration(i) * time.Minute), Evaluator: "duel",
				TaskType: TaskPairwise, Model: model, Label: l, Value: 0.25 * float64(i), Status: record.StatusOK})
		}
	}
	rs = append(rs, record.Score{EventTime: t0, Evaluator: "duel", TaskType: TaskPairwise, Model: "m1", Status: record.StatusJudgeError})
	a := NewAggregator(Options{})
	for i := range rs {
		a.Add(&rs[i])
	}
	a.AddPairwise(LabelCount{Evaluator: "duel", Model: "m3", Label: "second", Rows: 3})
	a.AddPairwise(LabelCount{Evaluator: "duel", Model: "m3", Label: "first", Rows: 1})
	d := a.Data()
	e := d.Evaluators[0]
	if e.TaskType != TaskPairwise || len(e.Pairwise) != 3 {
		t.Fatalf("pairwise: %+v", e)
	}
	want := map[string][5]int64{"m1": {2, 1, 0, 1, 0}, "m2": {0, 0, 1, 2, 1}, "m3": {1, 3, 0, 0, 0}}
	for _, p := range e.Pairwise {
		if p.Counts != want[p.Model] || p.Total != 4 {
			t.Errorf("%s: %v of %d, want %v", p.Model, p.Counts, p.Total, want[p.Model])
		}
	}
	if m2 := e.Pairwise[1]; m2.Model != "m2" || m2.Share(3) != 50 || math.Abs(m2.Preference-0.375) > 1e-12 {
		t.Errorf("m2: %+v", m2)
	}
	page := render(t, d)
	doc := parse(t, page)
	f := figures(t, doc)["pairwise-1"]
	if f == nil || attr(f, "data-points") != "8" { // 3 + 3 + 2 non-empty segments
		t.Errorf("pairwise chart: %v", f)
	}
	if !strings.Contains(text(doc), "50.0% of m2's verdicts are inconsistent") {
		t.Errorf("the inconsistent share is not called out")
	}
}

func TestAlerts(t *testing.T) {
	a := NewAggregator(Options{From: t0, To: t0.Add(3 * time.Hour), Evaluators: []string{"helpfulness"}, Now: t0})
	for i := range rows() {
		r := rows()[i]
		a.Add(&r)
	}
	a.AddAlert(Alert{ID: "a1", Rule: "mean_drop", Evaluator: "helpfulness", Model: "m1", State: "firing", Severity: "page",
		Observed: 0.6, Expected: 0.8, Low: 0.55, High: 0.65, SampleSize: 40, Since: t0.Add(30 * time.Minute),
		UpdatedAt: t0.Add(2 * time.Hour), Message: "mean fell"})
	a.AddAlert(Alert{ID: "a2", Rule: "canary", Evaluator: "helpfulness", State: "resolved", Since: t0.Add(-time.Hour),
		UpdatedAt: t0.Add(time.Hour)})
	a.AddAlert(Alert{ID: "a3", Rule: "judge_errors", Judge: "j", State: "pending", Since: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour)})
	a.AddAlert(Alert{ID: "other", Rule: "x", Evaluator: "safety", State: "firing", Since: t0, UpdatedAt: t0})
	a.AddAlert(Alert{ID: "late", Rule: "x", State: "firing", Since: t0.Add(5 * time.Hour), UpdatedAt: t0.Add(6 * time.Hour)})
	// Firing since before the range, last changed before it too: still firing in it.
	a.AddAlert(Alert{ID: "long", Rule: "mean_drop", State: "firing", Since: t0.Add(-3 * time.Hour), UpdatedAt: t0.Add(-2 * time.Hour)})
	// Resolved before the range began: not in it.
	a.AddAlert(Alert{ID: "over", Rule: "mean_drop", State: "resolved", Since: t0.Add(-3 * time.Hour), UpdatedAt: t0.Add(-2 * time.Hour)})
	d := a.Data()
	if len(d.Alerts) != 4 || d.Alerts[0].ID != "long" || d.Alerts[1].ID != "a2" || d.Alerts[3].ID != "a3" {
		t.Fatalf("alerts: %+v", d.Alerts)
	}
	page := render(t, d)
	doc := parse(t, page)
	checkSelfContained(t, doc, page)
	f := figures(t, doc)["alerts-timeline"]
	if f == nil || attr(f, "data-points") != "4" {
		t.Errorf("alerts chart: %v", f)
	}
	txt := text(doc)
	for _, want := range []string{"mean_drop", "firing", "resolved", "pending", "0.600", "0.800", "[0.550, 0.650]", "mean fell", "(judge j)"} {
		if !strings.Contains(txt, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

func TestRedact(t *testing.T) {
	d := FromScores(rows(), Options{Redact: func(s string) string { return strings.ReplaceAll(s, "script", "[redacted]") }})
	for _, r := range d.Evaluators[0].Worst {
		if strings.Contains(r.Label, "script") || strings.Contains(r.Explanation, "script") {
			t.Errorf("not redacted: %+v", r)
		}
	}
	if page := render(t, d); !strings.Contains(page, "[redacted]") {
		t.Errorf("the page shows no redaction")
	}
}

// hostile are names that try to break out of HTML, SVG, CDATA and attributes.
var hostile = []string{
	`<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`, `</title><script>x</script>`,
	`]]><script>y</script>`, "ctl\x00\x01\x1b[31m\x7f\u0085\u2028end", `' onload='z`, "\xff\xfe bad utf-8",
}

// TestHostileInput: hostile text in every field is escaped in HTML and in the SVG, and
// the page keeps its structure.
func TestHostileInput(t *testing.T) {
	var rs []record.Score
	a := NewAggregator(Options{Now: t0})
	for i, h := range hostile {
		for j, model := range []string{h, "plain", ""} {
			r := record.Score{EventTime: t0.Add(time.Duration(i*3+j) * time.Minute), Evaluator: h, Model: model,
				Judge: h, App: h, Label: h, Explanation: h + "\n" + h, RecordID: h, TaskType: []string{TaskPairwise, h, ""}[j],
				Value: float64(j), Status: record.StatusOK}
			rs = append(rs, r)
			r.Status = record.StatusParseFailure
			rs = append(rs, r)
		}
		a.AddAlert(Alert{ID: h, Rule: h, Evaluator: h, Model: h, App: h, Judge: h, State: h, Severity: h, Message: h,
			Since: t0, UpdatedAt: t0.Add(time.Minute)})
	}
	rs = append(rs, record.Score{EventTime: t0, Evaluator: "nan", Value: math.NaN(), Status: record.StatusOK},
		record.Score{EventTime: t0, Evaluator: "inf", Value: math.Inf(-1), Status: record.StatusOK},
		record.Score{EventTime: t0, Evaluator: "huge", Value: 1e300, Status: record.StatusOK},
		record.Score{EventTime: t0, Evaluator: "status", Value: 1, Status: "<b>new</b>"},
		record.Score{EventTime: t0, Evaluator: "odd", TaskType: "<i>mystery</i>", Value: 1, Status: record.StatusOK})
	for i := range rs {
		a.Add(&rs[i])
	}
	d := a.Data()
	if d.Skipped != 3 || d.Rows != len(rs) {
		t.Errorf("rows %d, skipped %d; want %d, 3", d.Rows, d.Skipped, len(rs))
	}
	page := render(t, d)
	doc := parse(t, page)
	checkSelfContained(t, doc, page)
	figs := figures(t, doc)
	if len(figs) < 5 {
		t.Errorf("%d charts", len(figs))
	}
	// No attribute anywhere holds the input (it would have broken out of its text).
	walk(doc, func(n *html.Node) {
		for _, at := range n.Attr {
			if strings.Contains(at.Val, "alert(") || strings.Contains(at.Val, "onerror") {
				t.Errorf("<%s %s=%q>", n.Data, at.Key, at.Val)
			}
		}
		if n.Type == html.ElementNode && n.Data == "title" && n.Parent.Data == "svg" && n.NextSibling != nil && n.NextSibling.Data == "script" {
			t.Errorf("a title was closed early")
		}
	})
	// What the page shows is the input as text (control characters replaced).
	txt := text(doc)
	for _, want := range []string{`<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`, "ctl\uFFFD\uFFFD\uFFFD[31m", "]]><script>y</script>"} {
		if !strings.Contains(txt, want) {
			t.Errorf("the page's text lacks %q", want)
		}
	}
	// The SVG text too: gonum's text elements hold the names as text.
	svgText := ""
	walk(doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "text" {
			svgText += text(n)
		}
	})
	if !strings.Contains(svgText, `<script>alert(1)</script>`) {
		t.Errorf("the charts' text lacks the model name as text")
	}
	if !strings.Contains(txt, "unknown to this version") {
		t.Errorf("an unknown task type is not noted")
	}
}

// TestCells: pre-aggregated cells give the Data that the same rows give.
func TestCells(t *testing.T) {
	rs := rows()
	fromRows := FromScores(rs, Options{MinBucket: time.Hour})
	a := NewAggregator(Options{MinBucket: time.Hour})
	type key struct {
		model string
		h     int
	}
	cells := map[key]*Cell{}
	judges := map[string]*JudgeCell{}
	for _, r := range rs {
		start := r.EventTime.Truncate(time.Hour)
		k := key{r.Model, start.Hour()}
		c := cells[k]
		if c == nil {
			c = &Cell{Evaluator: r.Evaluator, Model: r.Model, TaskType: r.TaskType, Start: start}
			cells[k] = c
		}
		jk := r.Judge + start.String()
		j := judges[jk]
		if j == nil {
			j = &JudgeCell{Judge: r.Judge, Start: start}
			judges[jk] = j
		}
		switch r.Status {
		case record.StatusOK:
			c.Scored++
			c.Sum += r.Value
			c.SumSquares += r.Value * r.Value
			j.OK++
			a.AddWorst(Row{EventTime: r.EventTime, Evaluator: r.Evaluator, Model: r.Model, App: r.App, RecordID: r.RecordID,
				Judge: r.Judge, Label: r.Label, Explanation: r.Explanation, Score: r.Value})
		case record.StatusParseFailure:
			c.ParseFailures++
			j.ParseFailures++
		default:
			c.JudgeErrors++
			j.JudgeErrors++
		}
	}
	for _, c := range cells {
		a.AddCell(*c)
	}
	for _, j := range judges {
		a.AddJudgeCell(*j)
	}
	d := a.Data()
	if d.Rows != fromRows.Rows || d.Bucket != time.Hour || fromRows.Bucket != time.Hour {
		t.Fatalf("rows %d vs %d, buckets %v, %v", d.Rows, fromRows.Rows, d.Bucket, fromRows.Bucket)
	}
	ge, we := d.Evaluators[0], fromRows.Evaluators[0]
	for i := range we.Series {
		g, w := ge.Series[i], we.Series[i]
		if g.Model != w.Model || g.Scored != w.Scored || g.Failed != w.Failed || len(g.Points) != len(w.Points) ||
			math.Abs(g.SumSquares-w.SumSquares) > 1e-12 {
			t.Errorf("series %d: %+v, want %+v", i, g, w)
		}
	}
	if len(ge.Worst) != len(we.Worst) || math.Abs(ge.Comparisons[0].Low-we.Comparisons[0].Low) > 1e-9 {
		t.Errorf("worst or comparison differ")
	}
	if len(d.Judges) != 2 || d.Judges[0].JudgeErrors != 1 || d.Judges[1].ParseFailures != 1 {
		t.Errorf("judges: %+v", d.Judges)
	}
	// Non-finite sums are skipped and counted.
	a.AddCell(Cell{Evaluator: "x", Model: "m", Start: t0, Scored: 3, Sum: math.NaN()})
	if d := a.Data(); d.Skipped != 3 {
		t.Errorf("skipped %d, want 3", d.Skipped)
	}
}

// allowed are the elements the page itself writes.
var allowed = map[string]bool{
	"html": true, "head": true, "body": true, "meta": true, "title": true, "style": true,
	"header": true, "main": true, "section": true, "footer": true, "nav": true, "ul": true, "li": true, "a": true,
	"h1": true, "h2": true, "h3": true, "p": true, "figure": true, "figcaption": true, "div": true, "table": true,
	"caption": true, "thead": true, "tbody": true, "tr": true, "th": true, "td": true,
	"code": true, "svg": true, "g": true, "path": true, "text": true,
}

func FuzzRender(f *testing.F) {
	f.Add("helpfulness", "m1", "judge", "<script>x</script>", "ok", "a & b", "pairwise", 0.5, int64(0))
	f.Add("", "", "", "", "parse_failure", "\xff\xfe", "", math.Inf(1), int64(-1<<40))
	f.Add("e\"'", "<svg onload=x>", "</svg>", "]]>", "judge_error", "<!--", "classification", -1e308, int64(1<<40))
	f.Add("<p>", "</p><p>", "<td>", "</td></tr>", "ok", "</text></g></svg><script>", "x", 1e308, int64(1<<30))
	f.Add("</title>", "\x00", "\u2028", "inconsistent", "ok", "\r\n", "pairwise", 0.0, int64(1764324000))
	f.Fuzz(func(t *testing.T, evaluator, model, judge, label, status, explanation, taskType string, v float64, sec int64) {
		extra := record.Score{EventTime: time.Unix(sec%(1<<35), 0), Evaluator: evaluator, Model: model, TaskType: taskType,
			Judge: judge, Label: label, Explanation: explanation, Status: status, Value: v, RecordID: label}
		// The same row with plain text: what the page says whatever the input.
		plain := extra
		plain.Evaluator, plain.Model, plain.Judge, plain.Label, plain.Explanation, plain.RecordID = "Z", "Z", "Z", "Z", "Z", "Z"
		for _, filtered := range []bool{false, true} {
			build := func(r record.Score) string {
				var o Options
				if filtered {
					o = Options{Evaluators: []string{r.Evaluator}, From: t0, To: t0.Add(time.Hour), ModelA: r.Model, ModelB: "m1"}
				}
				a := NewAggregator(o)
				for _, x := range append(rows(), r) {
					a.Add(&x)
				}
				a.AddAlert(Alert{ID: r.Label, Rule: r.Label, Evaluator: r.Evaluator, Model: r.Model, Judge: r.Judge,
					State: r.Status, Message: r.Explanation, Since: r.EventTime, UpdatedAt: r.EventTime.Add(time.Hour), Observed: r.Value})
				a.AddPairwise(LabelCount{Evaluator: r.Evaluator, Model: r.Model, Label: r.Label, Rows: 2})
				return render(t, a.Data())
			}
			page := build(extra)
			doc := parse(t, page)
			checkSelfContained(t, doc, page)
			figures(t, doc)
			walk(doc, func(n *html.Node) {
				if n.Type == html.ElementNode && !allowed[n.Data] {
					t.Errorf("the page has a <%s> element", n.Data)
				}
			})
			// Input text holding markup appears only escaped: where it appears verbatim,
			// the page of plain text has it too (it is the page's own markup).
			page0 := build(plain)
			for _, s := range []string{evaluator, model, judge, label, explanation} {
				if strings.ContainsAny(s, "<>&") && strings.Contains(page, s) && !strings.Contains(page0, s) {
					t.Fatalf("input %q appears unescaped", s)
				}
			}
		}
	})
}

func FuzzAddNDJSON(f *testing.F) {
	f.Add([]byte(`{"event_time":"2026-11-28T10:00:00Z","evaluator":"e","model":"m","status":"ok","score":0.5}` + "\n"))
	f.Add([]byte("\n\n"))
	f.Add([]byte(`{"evaluator":"<script>"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, in []byte) {
		a := NewAggregator(Options{})
		if err := AddNDJSON(bytes.NewReader(in), a); err != nil && !strings.Contains(err.Error(), "line ") {
			t.Fatalf("error without a line number: %v", err)
		}
		d := a.Data()
		page := render(t, d)
		checkSelfContained(t, parse(t, page), page)
	})
}
