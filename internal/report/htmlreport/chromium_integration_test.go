package htmlreport_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"raterd/internal/report/htmlreport"
	"raterd/record"
)

// reportStart is the first hour of the pages' rows.
var reportStart = time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)

// Injection strings: names, labels and explanations that would run script, load
// something or break out of the SVG if the page did not escape them. Each that ran sets
// window.__raterdInjected or opens a dialog; an image would be a request.
const (
	injectEvaluator   = `<script>window.__raterdInjected=1;alert("evaluator")</script>`
	injectModel       = `"><img src=x onerror="window.__raterdInjected=2;alert('model')">`
	injectJudge       = `</svg><script>window.__raterdInjected=3</script>`
	injectLabel       = `</svg><svg onload="window.__raterdInjected=4;alert(4)">`
	injectExplanation = `</td></tr></table><script>alert(5)</script><iframe src="https://evil.example/"></iframe>`
	injectRecordID    = `javascript:alert(6)//<style>*{display:none}</style>`
)

// reportCase is one page the browser test loads, and what it expects of it.
type reportCase struct {
	name string
	data func(t *testing.T) htmlreport.Data
	// minCharts is the fewest charts the page must draw; 0 with wantEmpty: none at all.
	minCharts int
	// wantEmpty: the page has nothing to draw and must say so (p.empty).
	wantEmpty bool
	// texts must appear, as text, in the page.
	texts []string
	// maxBytes bounds the page's size (0: no bound): large inputs are aggregated.
	maxBytes int64
}

// score is a row with the fields the report reads.
func score(at time.Time, evaluator, task, model, judge string, value float64, status string) record.Score {
	return record.Score{EventTime: at, ScoredAt: at.Add(time.Second), RecordID: fmt.Sprintf("rec-%d-%s-%s", at.UnixNano(), model, evaluator),
		Model: model, App: "helpdesk", Evaluator: evaluator, TaskType: task, Judge: judge, Value: value, Status: status}
}

// realisticRows are a day of two evaluators' rows: a pointwise rubric (1..5) over three
// models, a pairwise preference with position-biased (inconsistent) verdicts, parse
// failures and judge errors.
func realisticRows() []record.Score {
	rng := rand.New(rand.NewPCG(1, 2))
	models := []string{"support-llm-v7", "support-llm-v8-canary", "support-llm-small"}
	var rows []record.Score
	for h := range 24 {
		for i := range 40 {
			at := reportStart.Add(time.Duration(h)*time.Hour + time.Duration(i)*90*time.Second)
			m := models[i%len(models)]
			// helpfulness: the canary drifts down in the afternoon.
			v := float64(3 + rng.IntN(3))
			if m == "support-llm-v8-canary" && h >= 14 {
				v = float64(1 + rng.IntN(3))
			}
			st := record.StatusOK
			switch {
			case i%17 == 0:
				st = record.StatusParseFailure
			case i%29 == 0:
				st = record.StatusJudgeError
			}
			r := score(at, "helpfulness", "pointwise", m, "prometheus-2", v, st)
			r.Label = fmt.Sprint(int(v))
			r.Explanation = "The response addresses the request; detail " + fmt.Sprint(i)
			rows = append(rows, r)
			// preference: first, second, tie or inconsistent (the verdict flipped with the order).
			label := []string{"first", "second", "tie", "inconsistent"}[rng.IntN(4)]
			pv := map[string]float64{"first": 1, "second": 0, "tie": 0.5, "inconsistent": 0.5}[label]
			pst := record.StatusOK
			if i%23 == 0 {
				pst = record.StatusParseFailure
			}
			p := score(at, "preference", "pairwise", m, "judgesim-7b", pv, pst)
			p.Label = label
			rows = append(rows, p)
		}
	}
	return rows
}

func build(rows []record.Score, opts htmlreport.Options) htmlreport.Data {
	a := htmlreport.NewAggregator(opts)
	for i := range rows {
		a.Add(&rows[i])
	}
	return a.Data()
}

func reportCases() []reportCase {
	return []reportCase{{
		name:      "realistic",
		data:      func(*testing.T) htmlreport.Data { return build(realisticRows(), htmlreport.Options{}) },
		minCharts: 5, // per evaluator a trend and a volume, and the failures per judge
		texts:     []string{"helpfulness", "preference", "support-llm-v8-canary", "prometheus-2", "judgesim-7b"},
	}, {
		name: "empty-range",
		data: func(*testing.T) htmlreport.Data {
			// Rows exist, but none in the range asked for.
			return build(realisticRows(), htmlreport.Options{From: reportStart.Add(-72 * time.Hour), To: reportStart.Add(-48 * time.Hour)})
		},
		wantEmpty: true,
	}, {
		name: "one-model",
		data: func(*testing.T) htmlreport.Data {
			var rows []record.Score
			for h := range 6 {
				rows = append(rows, score(reportStart.Add(time.Duration(h)*time.Hour), "helpfulness", "pointwise", "only-model", "prometheus-2", float64(1+h%5), record.StatusOK))
			}
			return build(rows, htmlreport.Options{})
		},
		minCharts: 1,
		texts:     []string{"only-model"},
	}, {
		name: "million-rows",
		data: func(t *testing.T) htmlreport.Data {
			// A million rows over 30 days: buckets widen, the page stays small. Streamed
			// into the aggregator, one row at a time.
			a := htmlreport.NewAggregator(htmlreport.Options{})
			rng := rand.New(rand.NewPCG(3, 4))
			models := []string{"m-a", "m-b", "m-c", "m-d"}
			const n = 1_000_000
			span := 30 * 24 * time.Hour
			var r record.Score
			for i := range n {
				at := reportStart.Add(time.Duration(int64(span) / n * int64(i)))
				st := record.StatusOK
				if rng.IntN(100) == 0 {
					st = record.StatusParseFailure
				}
				ev := "helpfulness"
				if i%2 == 1 {
					ev = "correctness"
				}
				r = score(at, ev, "pointwise", models[i%len(models)], "prometheus-2", float64(1+rng.IntN(5)), st)
				a.Add(&r)
			}
			return a.Data()
		},
		minCharts: 5,
		maxBytes:  3 << 20,
	}, {
		name: "markup-in-names",
		data: func(*testing.T) htmlreport.Data {
			var rows []record.Score
			for h := range 4 {
				at := reportStart.Add(time.Duration(h) * time.Hour)
				r := score(at, injectEvaluator, "pointwise", injectModel, injectJudge, float64(1+h), record.StatusOK)
				r.Label, r.Explanation, r.RecordID = injectLabel, injectExplanation, injectRecordID
				rows = append(rows, r, score(at, injectEvaluator, "pointwise", injectModel, injectJudge, 0, record.StatusParseFailure))
			}
			return build(rows, htmlreport.Options{})
		},
		minCharts: 1,
		texts:     []string{injectEvaluator, injectModel, injectJudge, injectLabel, injectExplanation, injectRecordID},
	}}
}

// pageFacts is what pageScript reports about the loaded page.
type pageFacts struct {
	Charts  []chartFacts
	Figures int // every <figure>, chart or not
	Empties []string
	// ScrollWidth and InnerWidth: the page must not be wider than the viewport;
	// Overflowing names elements (outside .scroll containers) that reach past it.
	ScrollWidth, InnerWidth, ScrollHeight float64
	Overflowing                           []string
	// What injected markup would have made: scripts, images, frames, event handler
	// attributes, the marker.
	Scripts, Images, Frames int
	Handlers                []string
	Injected                any
	Text                    string
	DocumentURL             string
}

type chartFacts struct {
	ID         string
	Points     string // data-points as written
	SVGs       int
	FirstChild string // tag of the svg's first child (element or non-blank text)
	Title      string
	Caption    bool
	Shapes     int // elements drawn in a colour: the data marks (and their legend keys)
	Box        rect
	// Frame is the figure's box; Scrolls says the svg is in a scroll container (the
	// figure or another), which may be narrower than the svg.
	Frame   rect
	Scrolls bool
}

// pageScript collects pageFacts; %d is the viewport's width. Shapes counts the svg's path, circle, rect, polygon,
// polyline, ellipse and line elements whose computed fill or stroke is chromatic: gonum's
// vgsvg draws everything as <path>, axes, ticks and text in black, the background white,
// and the data in the Okabe-Ito palette, so the coloured shapes are the data marks plus
// their legend keys — at least as many as the points drawn (no page here draws more than
// six series, so none is drawn in the palette's black).
const pageScript = `((width) => {
  const chromatic = (c) => {
    const m = /rgba?\((\d+),\s*(\d+),\s*(\d+)(?:,\s*([\d.]+))?\)/.exec(c || "");
    if (!m || (m[4] !== undefined && +m[4] === 0)) return false;
    const v = [+m[1], +m[2], +m[3]];
    return Math.max(...v) - Math.min(...v) >= 48;
  };
  // A scroll container: .scroll, or anything whose content scrolls sideways (a chart's
  // figure may, so a chart keeps a readable size on a phone).
  const scrolls = (el) => el.classList.contains("scroll") || ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  const inScroller = (el) => { for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) if (scrolls(p)) return true; return false; };
  const box = (el) => { const r = el.getBoundingClientRect(); return {X: r.left + scrollX, Y: r.top + scrollY, W: r.width, H: r.height}; };
  const charts = [...document.querySelectorAll("figure.chart")].map((f) => {
    const svgs = [...f.querySelectorAll("svg")].filter((s) => !s.parentElement.closest("svg"));
    const svg = svgs[0];
    let first = "", title = "", shapes = 0;
    if (svg) {
      for (const n of svg.childNodes) {
        if (n.nodeType === Node.ELEMENT_NODE) { first = n.tagName.toLowerCase(); break; }
        if (n.nodeType === Node.TEXT_NODE && n.textContent.trim() !== "") { first = "#text"; break; }
      }
      if (first === "title") title = svg.firstElementChild.textContent.trim();
      for (const s of svg.querySelectorAll("path, circle, rect, polygon, polyline, ellipse, line")) {
        const cs = getComputedStyle(s);
        if (chromatic(cs.fill) || chromatic(cs.stroke)) shapes++;
      }
    }
    return {ID: f.id, Points: f.getAttribute("data-points") ?? "", SVGs: svgs.length, FirstChild: first, Title: title,
      Caption: !!f.querySelector(":scope > figcaption"), Shapes: shapes, Box: svg ? box(svg) : box(f),
      Frame: box(f), Scrolls: svg ? inScroller(svg) : false};
  });
  const overflowing = [];
  for (const el of document.body.querySelectorAll("*")) {
    if (inScroller(el) || el.parentElement.closest("svg")) continue; // a chart is checked as one box
    const r = el.getBoundingClientRect();
    const cs = getComputedStyle(el);
    const clipped = cs.overflowX !== "visible" && cs.overflowX !== "";
    const wide = r.right > width + 0.5 || (el instanceof HTMLElement && !clipped && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1);
    if (wide && overflowing.length < 10)
      overflowing.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className && el.className.baseVal === undefined ? "." + el.className : "") + " right=" + Math.round(r.right) + " content=" + el.scrollWidth + "/" + el.clientWidth);
  }
  const handlers = [];
  for (const el of document.querySelectorAll("*"))
    for (const a of el.attributes)
      if (a.name.toLowerCase().startsWith("on")) handlers.push(el.tagName + "[" + a.name + "]");
  return {
    Charts: charts, Figures: document.querySelectorAll("figure").length,
    Empties: [...document.querySelectorAll("p.empty")].map((e) => e.textContent.trim()),
    ScrollWidth: document.documentElement.scrollWidth, InnerWidth: innerWidth, ScrollHeight: document.documentElement.scrollHeight,
    Overflowing: overflowing,
    Scripts: document.scripts.length, Images: document.images.length, Frames: document.querySelectorAll("iframe, object, embed").length,
    Handlers: handlers, Injected: window.__raterdInjected ?? null,
    Text: document.body.textContent, DocumentURL: document.URL,
  };
})(%d)`

// viewports are the widths the page is checked at: a laptop's and a phone's.
var viewports = []int64{1280, 375}

// TestIntegrationReportInChromium loads report pages from disk in headless Chromium with
// the network disabled and checks what a reader would see: every chart rendered (one
// non-empty SVG, titled, with at least as many drawn marks as the data points it
// declares), empty states explained, no request leaving the page, no script run by
// injected names, nothing wider than a laptop's or a phone's screen; and a full-page
// screenshot at each width that is a PNG of that width, as tall as the page, not blank,
// with ink where the charts are.
func TestIntegrationReportInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	shots := os.Getenv("RATERD_REPORT_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	heights := map[string]int{} // case/width → screenshot height
	for _, tc := range reportCases() {
		if testing.Short() && tc.name == "million-rows" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "report.html")
			if err := htmlreport.WriteFile(path, tc.data(t)); err != nil {
				t.Fatalf("WriteFile: %v", err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if tc.maxBytes > 0 && fi.Size() > tc.maxBytes {
				t.Errorf("page is %d bytes, want at most %d: large inputs must be aggregated", fi.Size(), tc.maxBytes)
			}
			b := newBrowser(t, chromium)
			for _, width := range viewports {
				if err := b.load(path, width); err != nil {
					t.Fatalf("load %s at %dpx: %v", path, width, err)
				}
				facts, err := evaluate[pageFacts](b, fmt.Sprintf(pageScript, width))
				if err != nil {
					t.Fatalf("page script at %dpx: %v", width, err)
				}
				checkPage(t, tc, width, facts)
				png, err := b.screenshot()
				if err != nil {
					t.Fatalf("screenshot at %dpx: %v", width, err)
				}
				file := filepath.Join(shots, fmt.Sprintf("%s-%d.png", tc.name, width))
				if err := os.WriteFile(file, png, 0o644); err != nil {
					t.Fatal(err)
				}
				heights[fmt.Sprintf("%s/%d", tc.name, width)] = checkScreenshot(t, width, png, facts)
				t.Logf("%dpx: %d charts, %d empty states, screenshot %s", width, len(facts.Charts), len(facts.Empties), file)
			}
			if reqs := b.foreignRequests(path); len(reqs) > 0 {
				t.Errorf("the page sent requests besides loading itself: %q", reqs)
			}
			if conns := b.trap.connections(); len(conns) > 0 {
				t.Errorf("the proxy trap saw %d connections (something tried to reach the network): %q", len(conns), conns)
			}
			if d := b.openedDialogs(); len(d) > 0 {
				t.Errorf("the page opened dialogs (injected script ran): %q", d)
			}
		})
	}
	// Height grows with the content: the realistic page is taller than the empty one, at
	// both widths.
	for _, w := range viewports {
		full, empty := heights[fmt.Sprintf("realistic/%d", w)], heights[fmt.Sprintf("empty-range/%d", w)]
		if full > 0 && empty > 0 && full <= empty {
			t.Errorf("at %dpx the realistic page's screenshot is %dpx tall, the empty page's %dpx: height does not grow with content", w, full, empty)
		}
	}
}

// checkPage checks the page's structure as the browser laid it out.
func checkPage(t *testing.T, tc reportCase, width int64, f pageFacts) {
	t.Helper()
	at := fmt.Sprintf("%dpx", width)
	if !strings.HasPrefix(f.DocumentURL, "file://") {
		t.Errorf("%s: the document is %s, not the file", at, f.DocumentURL)
	}
	if tc.wantEmpty {
		if len(f.Charts) != 0 || f.Figures != 0 {
			t.Errorf("%s: %d charts (%d figures) on a page with nothing to draw", at, len(f.Charts), f.Figures)
		}
		if len(f.Empties) == 0 {
			t.Errorf("%s: nothing to draw, and no p.empty says why", at)
		}
	} else if len(f.Charts) < tc.minCharts {
		t.Errorf("%s: %d figure.chart (of %d figures), want at least %d", at, len(f.Charts), f.Figures, tc.minCharts)
	}
	for _, e := range f.Empties {
		if len(e) < 20 {
			t.Errorf("%s: empty state %q does not explain why", at, e)
		}
	}
	ids := map[string]bool{}
	for i, c := range f.Charts {
		where := fmt.Sprintf("%s: chart %d (#%s)", at, i, c.ID)
		if c.ID == "" || ids[c.ID] {
			t.Errorf("%s: missing or repeated id", where)
		}
		ids[c.ID] = true
		var points int
		if _, err := fmt.Sscan(c.Points, &points); err != nil || points <= 0 {
			t.Errorf("%s: data-points %q, want a positive count", where, c.Points)
		}
		if c.SVGs != 1 {
			t.Errorf("%s: %d svg elements, want exactly one", where, c.SVGs)
			continue
		}
		if c.FirstChild != "title" || c.Title == "" {
			t.Errorf("%s: the svg's first child is %q (title %q), want a non-empty <title>", where, c.FirstChild, c.Title)
		}
		if !c.Caption {
			t.Errorf("%s: no figcaption", where)
		}
		if c.Box.W < 1 || c.Box.H < 1 {
			t.Errorf("%s: the svg's box is %.0f×%.0f", where, c.Box.W, c.Box.H)
		}
		if c.Shapes < points {
			t.Errorf("%s: %d coloured shapes drawn for %d data points", where, c.Shapes, points)
		}
		if c.Frame.X+c.Frame.W > float64(width)+0.5 || !c.Scrolls && c.Box.X+c.Box.W > float64(width)+0.5 {
			t.Errorf("%s: the chart (figure %+v, svg %+v, scrolls %v) reaches past the %dpx viewport", where, c.Frame, c.Box, c.Scrolls, width)
		}
	}
	if f.ScrollWidth > float64(width) || len(f.Overflowing) > 0 {
		t.Errorf("%s: the page is %.0fpx wide (viewport %.0fpx); outside .scroll containers, past the edge: %q", at, f.ScrollWidth, f.InnerWidth, f.Overflowing)
	}
	if f.Scripts != 0 || f.Images != 0 || f.Frames != 0 || len(f.Handlers) > 0 || f.Injected != nil {
		t.Errorf("%s: %d scripts, %d images, %d frames, handlers %q, marker %v: markup from the data became elements", at, f.Scripts, f.Images, f.Frames, f.Handlers, f.Injected)
	}
	for _, s := range tc.texts {
		if !strings.Contains(f.Text, s) {
			t.Errorf("%s: the page does not show %q as text", at, s)
		}
	}
}

// checkScreenshot checks a full-page screenshot structurally and returns its height.
func checkScreenshot(t *testing.T, width int64, data []byte, f pageFacts) int {
	t.Helper()
	img, err := decodePNG(data)
	if err != nil {
		t.Errorf("%dpx screenshot: %v", width, err)
		return 0
	}
	s := stats(img)
	if s.W != int(width) {
		t.Errorf("%dpx screenshot is %dpx wide", width, s.W)
	}
	// The whole page, not the viewport: as tall as the document (within rounding).
	if d := float64(s.H) - f.ScrollHeight; d < -2 || d > 2 {
		t.Errorf("%dpx screenshot is %dpx tall, the page %.0fpx", width, s.H, f.ScrollHeight)
	}
	if s.Colours < 8 || s.NonWhite < 0.005 {
		t.Errorf("%dpx screenshot looks blank: %d colours, %.2f%% not white", width, s.Colours, 100*s.NonWhite)
	}
	for i, c := range f.Charts {
		ink, colour := regionInk(img, intersect(c.Box, c.Frame))
		if ink < 0.01 || colour < 20 {
			t.Errorf("%dpx screenshot: chart %d (#%s) at %+v has %.2f%% ink and %d coloured pixels: not drawn", width, i, c.ID, c.Box, 100*ink, colour)
		}
	}
	return s.H
}

// TestIntegrationChromiumHarness is the browser test's control: a page that does what a
// report must never do (fetch an image over the network, run a script that sets the
// marker and opens a dialog, overflow a phone's width) is caught by every check the
// report test relies on, so that their silence there means something.
func TestIntegrationChromiumHarness(t *testing.T) {
	chromium := chromiumPath(t)
	path := filepath.Join(t.TempDir(), "bad.html")
	const bad = `<!DOCTYPE html><html><head><meta name="viewport" content="width=device-width"></head><body>
<p style="width:900px">wide</p><img src="http://203.0.113.7/x.png">
<figure class="chart" id="c" data-points="3"><svg width="10" height="10"><path d="M0,0L1,1" style="stroke:#000"/></svg></figure>
<script>window.__raterdInjected = 1; alert("control")</script></body></html>`
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, chromium)
	if err := b.load(path, 375); err != nil {
		t.Fatal(err)
	}
	f, err := evaluate[pageFacts](b, fmt.Sprintf(pageScript, 375))
	if err != nil {
		t.Fatal(err)
	}
	if f.Injected == nil || f.Scripts != 1 || f.Images != 1 {
		t.Errorf("marker %v, %d scripts, %d images: the page script does not see what ran", f.Injected, f.Scripts, f.Images)
	}
	if f.ScrollWidth <= 375 || len(f.Overflowing) == 0 {
		t.Errorf("scroll width %.0f, overflowing %q: a 900px paragraph went unnoticed", f.ScrollWidth, f.Overflowing)
	}
	if len(f.Charts) != 1 || f.Charts[0].FirstChild == "title" || f.Charts[0].Shapes >= 3 {
		t.Errorf("charts %+v: want the untitled, uncoloured chart seen as such", f.Charts)
	}
	if reqs := b.foreignRequests(path); !slices.ContainsFunc(reqs, func(r string) bool { return strings.Contains(r, "203.0.113.7") }) {
		t.Errorf("requests %q: the image request went unrecorded", reqs)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(b.openedDialogs()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if d := b.openedDialogs(); len(d) != 1 || !strings.Contains(d[0], "control") {
		t.Errorf("dialogs %q: the alert went unrecorded", d)
	}
}

// intersect is the part of a inside b: what shows of a chart inside its figure.
func intersect(a, b rect) rect {
	x0, y0 := max(a.X, b.X), max(a.Y, b.Y)
	x1, y1 := min(a.X+a.W, b.X+b.W), min(a.Y+a.H, b.Y+b.H)
	return rect{X: x0, Y: y0, W: max(0, x1-x0), H: max(0, y1-y0)}
}
