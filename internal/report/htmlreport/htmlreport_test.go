package htmlreport

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"raterd/record"
)

var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// rows returns a handful of rows: two models over three hours under one evaluator, a
// parse failure and a judge error, and a label and explanation that try to inject markup.
func rows() []record.Score {
	row := func(h int, model string, v float64, status string) record.Score {
		return record.Score{EventTime: t0.Add(time.Duration(h)*time.Hour + 5*time.Minute), Model: model,
			Evaluator: "helpfulness", Judge: "judge-a", RecordID: "r" + model, Value: v, Status: status}
	}
	rs := []record.Score{
		row(0, "m1", 0.8, record.StatusOK), row(1, "m1", 0.6, record.StatusOK), row(2, "m1", 0.7, record.StatusOK),
		row(0, "m2", 0.9, record.StatusOK), row(1, "m2", 0.95, record.StatusOK), row(2, "m2", 0, record.StatusParseFailure),
		row(2, "m2", 0, record.StatusJudgeError),
	}
	rs[1].Label = `<script>alert("label")</script>`
	rs[1].Explanation = `</td><script>alert(1)</script><img src="https://evil.example/x.png">`
	rs[3].Model = `m2`
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

// checkSelfContained fails the test when the page has a script, an element the parser
// made from input text, or a reference to anything outside the page.
func checkSelfContained(t testing.TB, doc *html.Node, page string) {
	t.Helper()
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.Data {
		case "script", "img", "iframe", "object", "embed", "link", "b":
			t.Errorf("the page has a <%s> element", n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s> has an event handler %s", n.Data, a.Key)
			}
			if a.Key == "src" || strings.HasSuffix(a.Key, "href") {
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
}

// charts returns the page's <svg> elements.
func charts(doc *html.Node) []*html.Node {
	var out []*html.Node
	walk(doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "svg" {
			out = append(out, n)
		}
	})
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

func TestRenderHandfulOfRows(t *testing.T) {
	d := FromScores(rows(), Options{})
	if d.Rows != 7 || len(d.Evaluators) != 1 || d.Bucket != time.Hour {
		t.Fatalf("Data: %d rows, %d evaluators, bucket %v; want 7, 1, 1h", d.Rows, len(d.Evaluators), d.Bucket)
	}
	e := d.Evaluators[0]
	if len(e.Series) != 2 || e.Series[0].Model != "m1" || e.Series[0].Scored != 3 || e.Series[1].Failed != 2 {
		t.Errorf("series: %+v", e.Series)
	}
	if got := e.Series[0].Mean; math.Abs(got-0.7) > 1e-9 {
		t.Errorf("m1 mean %v, want 0.7", got)
	}
	if len(e.Worst) != 5 || e.Worst[0].Score != 0.6 {
		t.Errorf("worst: %+v", e.Worst)
	}
	if len(d.Judges) != 2 || d.Judges[1].ParseFailures != 1 || d.Judges[0].JudgeErrors != 1 {
		t.Errorf("judges: %+v", d.Judges)
	}

	page := render(t, d)
	doc := parse(t, page)
	checkSelfContained(t, doc, page)
	svgs := charts(doc)
	// trend, volume, failures per judge
	if len(svgs) != 3 {
		t.Fatalf("%d <svg> elements, want 3", len(svgs))
	}
	for _, s := range svgs {
		if attr(s, "role") != "img" || attr(s, "aria-label") == "" || attr(s, "viewBox") == "" {
			t.Errorf("<svg> %q lacks role, label or viewBox", attr(s, "aria-label"))
		}
		// Axes and ticks alone are a few dozen paths; data points add one each.
		if k := marks(s); k < 10 {
			t.Errorf("<svg> %q has %d paths", attr(s, "aria-label"), k)
		}
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
		"Mean score (rubric scale)", "Event time (UTC, 1-hour buckets)",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

func TestRenderEmptyRange(t *testing.T) {
	d := FromScores(rows(), Options{From: t0.Add(24 * time.Hour), To: t0.Add(48 * time.Hour)})
	if d.Rows != 0 || len(d.Evaluators) != 0 {
		t.Fatalf("Data: %+v", d)
	}
	page := render(t, d)
	checkSelfContained(t, parse(t, page), page)
	if !strings.Contains(page, "No score rows in the range") {
		t.Errorf("the page does not explain that the range is empty")
	}
	if strings.Contains(page, "<svg") {
		t.Errorf("an empty range drew a chart")
	}
	// No rows at all and an open range: no dates to show, still a page.
	page = render(t, FromScores(nil, Options{}))
	if !strings.Contains(page, "No score rows in the range") {
		t.Errorf("no rows: the page does not explain that the range is empty")
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

// TestLargeInputBounded: a year of hourly rows for a dozen models is drawn with at most
// MaxPoints buckets and MaxModels models per chart.
func TestLargeInputBounded(t *testing.T) {
	a := NewAggregator(Options{})
	for h := range 365 * 24 {
		for m := range 12 {
			a.Add(&record.Score{EventTime: t0.Add(time.Duration(h) * time.Hour), Evaluator: "e",
				Model: string(rune('a' + m)), Value: float64(h%10) / 10, Status: record.StatusOK})
		}
	}
	d := a.Data()
	if d.Bucket <= 24*time.Hour {
		t.Errorf("bucket %v for a year of hours", d.Bucket)
	}
	e := d.Evaluators[0]
	if len(e.Series) != 8 || len(e.OtherModels) != 4 {
		t.Errorf("%d series drawn, %d others; want 8 and 4", len(e.Series), len(e.OtherModels))
	}
	for _, s := range e.Series {
		if len(s.Points) > 168 {
			t.Errorf("model %s: %d points", s.Model, len(s.Points))
		}
	}
	page := render(t, d)
	if n := len(page); n > 1<<20 {
		t.Errorf("page of %d bytes", n)
	}
}

// allowed are the elements the page itself writes.
var allowed = map[string]bool{
	"html": true, "head": true, "body": true, "meta": true, "title": true, "style": true,
	"header": true, "main": true, "section": true, "footer": true, "h1": true, "h2": true,
	"h3": true, "p": true, "figure": true, "figcaption": true, "div": true, "table": true,
	"caption": true, "thead": true, "tbody": true, "tr": true, "th": true, "td": true,
	"code": true, "svg": true, "g": true, "path": true, "text": true,
}

func FuzzRender(f *testing.F) {
	f.Add("helpfulness", "m1", "judge", "<script>x</script>", "ok", "a & b", 0.5, int64(0))
	f.Add("", "", "", "", "parse_failure", "\xff\xfe", math.Inf(1), int64(-1<<40))
	f.Add("e\"'", "<svg onload=x>", "</svg>", "]]>", "judge_error", "<!--", -1e308, int64(1<<40))
	f.Add("<p>", "</p><p>", "<td>", "</td></tr>", "ok", "</text></g></svg><script>", 1e308, int64(1<<30))
	f.Fuzz(func(t *testing.T, evaluator, model, judge, label, status, explanation string, v float64, sec int64) {
		extra := record.Score{EventTime: time.Unix(sec%(1<<35), 0), Evaluator: evaluator, Model: model,
			Judge: judge, Label: label, Explanation: explanation, Status: status, Value: v, RecordID: label}
		// The same row with plain text: what the page says whatever the input.
		plain := extra
		plain.Evaluator, plain.Model, plain.Judge, plain.Label, plain.Explanation, plain.RecordID = "Z", "Z", "Z", "Z", "Z", "Z"
		for _, o := range []Options{{}, {Evaluators: []string{evaluator}, From: t0, To: t0.Add(time.Hour)}} {
			page := render(t, FromScores(append(rows(), extra), o))
			doc := parse(t, page)
			checkSelfContained(t, doc, page)
			walk(doc, func(n *html.Node) {
				if n.Type == html.ElementNode && !allowed[n.Data] {
					t.Errorf("the page has a <%s> element", n.Data)
				}
			})
			// Input text holding markup appears only escaped: where it appears verbatim,
			// the page of plain text has it too (it is the page's own markup).
			page0 := render(t, FromScores(append(rows(), plain), o))
			for _, s := range []string{evaluator, model, judge, label, explanation} {
				if strings.ContainsAny(s, "<>&") && strings.Contains(page, s) && !strings.Contains(page0, s) {
					t.Fatalf("input %q appears unescaped", s)
				}
			}
		}
	})
}
