package htmlreport

// Tests for the review's findings: alerts past 1,000, buckets past 7 days, skipped cells,
// points of partial buckets, redaction before clipping, the NDJSON line cap and the
// inconsistency callout.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"raterd/record"
)

// TestAlertsKeepNewest: past maxAlerts the newest alerts by Since are kept, in whatever
// order they arrive, and the older ones are counted.
func TestAlertsKeepNewest(t *testing.T) {
	const n = maxAlerts + 5
	alert := func(i int) Alert {
		return Alert{ID: fmt.Sprintf("a%04d", i), Rule: "r", State: "resolved",
			Since: t0.Add(time.Duration(i) * time.Minute), UpdatedAt: t0.Add(time.Duration(i+1) * time.Minute)}
	}
	for _, order := range []string{"oldest first", "newest first", "interleaved"} {
		a := NewAggregator(Options{From: t0, To: t0.Add(48 * time.Hour), Now: t0})
		for k := 0; k < n; k++ {
			i := k
			switch order {
			case "newest first":
				i = n - 1 - k
			case "interleaved":
				i = (k * 7) % n // 7 and 1005 are coprime: every alert once
			}
			a.AddAlert(alert(i))
		}
		d := a.Data()
		if len(d.Alerts) != maxAlerts || d.AlertsDropped != 5 {
			t.Fatalf("%s: %d alerts, %d dropped; want %d and 5", order, len(d.Alerts), d.AlertsDropped, maxAlerts)
		}
		if first, last := d.Alerts[0].ID, d.Alerts[len(d.Alerts)-1].ID; first != "a0005" || last != fmt.Sprintf("a%04d", n-1) {
			t.Errorf("%s: alerts %s … %s, want a0005 … the newest", order, first, last)
		}
	}
}

// TestFromClickHouseAlertsLimit: alerts_in_range is asked for maxAlerts+1 rows; when it
// returns that many, the page says that at least one older alert is left out.
func TestFromClickHouseAlertsLimit(t *testing.T) {
	tables := fakeTables()
	al := tables["alerts_in_range"]
	proto := al.Rows[0]
	al.Rows = nil
	for i := 0; i <= maxAlerts; i++ { // newest first, as the query orders them
		row := append([]any(nil), proto...)
		row[0] = "a" + strconv.Itoa(i)
		row[13] = t13.Add(-time.Duration(i) * time.Second)
		al.Rows = append(al.Rows, row)
	}
	tables["alerts_in_range"] = al
	q := &fakeQuerier{tables: tables}
	d, err := FromClickHouse(context.Background(), q, Options{From: t12, To: t12.Add(24 * time.Hour), Now: t12})
	if err != nil {
		t.Fatal(err)
	}
	if got := q.params["alerts_in_range"]["limit"]; got != strconv.Itoa(maxAlerts+1) {
		t.Errorf("alerts_in_range limit %q, want %d", got, maxAlerts+1)
	}
	if len(d.Alerts) != maxAlerts || d.AlertsDropped != 1 || !d.AlertsDroppedAtLeast {
		t.Fatalf("%d alerts, %d dropped (at least: %v); want %d, 1, true", len(d.Alerts), d.AlertsDropped, d.AlertsDroppedAtLeast, maxAlerts)
	}
	if d.Alerts[len(d.Alerts)-1].ID != "a0" {
		t.Errorf("the newest alert a0 is not the last shown: %s", d.Alerts[len(d.Alerts)-1].ID)
	}
	if txt := text(parse(t, render(t, d))); !strings.Contains(txt, "At least 1 older alerts in the range are not shown") {
		t.Errorf("the page does not say older alerts are left out")
	}
}

// TestLongRangeBuckets: past 7 days the page's buckets are whole weeks, as many as it
// takes to stay within MaxPoints, and the same width as BucketFor.
func TestLongRangeBuckets(t *testing.T) {
	from, to := t0, t0.Add(10*365*24*time.Hour)
	a := NewAggregator(Options{From: from, To: to, Now: t0})
	for d := time.Duration(0); d < 10*365*24*time.Hour; d += 24 * time.Hour {
		a.Add(&record.Score{EventTime: from.Add(d), Evaluator: "e", Model: "m", Value: 1, Status: record.StatusOK})
	}
	d := a.Data()
	if want := BucketFor(from, to, DefaultMaxPoints); d.Bucket != want || d.Bucket%(7*24*time.Hour) != 0 {
		t.Errorf("bucket %v, want BucketFor's %v, a multiple of 7d", d.Bucket, want)
	}
	if n := len(d.Evaluators[0].Series[0].Points); n > DefaultMaxPoints {
		t.Errorf("%d points, more than %d", n, DefaultMaxPoints)
	}
	if got := a.SourceBucket(); got != d.Bucket {
		t.Errorf("SourceBucket %v, Data's bucket %v", got, d.Bucket)
	}
}

// TestCellSkipped: a cell's skipped rows count in Rows and Skipped.
func TestCellSkipped(t *testing.T) {
	a := NewAggregator(Options{From: t0, To: t0.Add(time.Hour), Now: t0})
	a.AddCell(Cell{Evaluator: "e", Model: "m", Start: t0, Scored: 2, Sum: 3, SumSquares: 5, Skipped: 3})
	d := a.Data()
	if d.Rows != 5 || d.Skipped != 3 || d.Evaluators[0].Series[0].Scored != 2 {
		t.Errorf("rows %d, skipped %d, scored %d; want 5, 3, 2", d.Rows, d.Skipped, d.Evaluators[0].Series[0].Scored)
	}
}

// TestPartialBucketPointsOnAxis: a range that starts and ends mid-bucket still puts the
// first and last buckets' points inside the range, on an axis that stays the range.
func TestPartialBucketPointsOnAxis(t *testing.T) {
	from, to := t0.Add(40*time.Minute), t0.Add(3*time.Hour+20*time.Minute)
	var rs []record.Score
	for _, off := range []time.Duration{45 * time.Minute, 90 * time.Minute, 150 * time.Minute, 190 * time.Minute} {
		rs = append(rs, record.Score{EventTime: t0.Add(off), Evaluator: "e", Model: "m", Value: 1, Status: record.StatusOK})
	}
	d := FromScores(rs, Options{From: from, To: to, MaxPoints: 4, Now: t0})
	if d.Bucket != time.Hour {
		t.Fatalf("bucket %v, want 1h", d.Bucket)
	}
	ch, err := trendChart(d.Evaluators[0], d)
	if err != nil {
		t.Fatal(err)
	}
	if ch.points != 4 {
		t.Errorf("%d points counted, want 4", ch.points)
	}
	// The axis is the range, as the volume chart's under it: a point outside it would
	// either widen this axis alone (gonum fits the axis to the data added) or not be drawn.
	if ch.plot.X.Min != unix(d.From) || ch.plot.X.Max != unix(d.To) {
		t.Errorf("axis [%v, %v], want the range [%v, %v]", time.Unix(int64(ch.plot.X.Min), 0).UTC(),
			time.Unix(int64(ch.plot.X.Max), 0).UTC(), d.From, d.To)
	}
	// trendChart plots exactly runs' points.
	drawn := 0
	for _, r := range runs(d.Evaluators[0].Series[0].Points, d.Bucket, d.From, d.To) {
		for _, xy := range r {
			if xy.X < ch.plot.X.Min || xy.X > ch.plot.X.Max {
				t.Errorf("point at %v is off the axis [%v, %v]", time.Unix(int64(xy.X), 0).UTC(),
					time.Unix(int64(ch.plot.X.Min), 0).UTC(), time.Unix(int64(ch.plot.X.Max), 0).UTC())
				continue
			}
			drawn++
		}
	}
	if drawn != ch.points {
		t.Errorf("%d points on the axis, %d counted", drawn, ch.points)
	}
}

// TestRedactBeforeClip: a token that straddles the display clip is redacted whole, in a
// label (200 runes) and in an explanation (4000), from rows and from ClickHouse's rows.
func TestRedactBeforeClip(t *testing.T) {
	email := regexp.MustCompile(`[a-z]+@[a-z]+\.com`)
	redact := func(s string) string { return email.ReplaceAllString(s, "[email]") }
	label := strings.Repeat("x", maxName-10) + " alice@example.com"
	explanation := strings.Repeat("y", maxText-10) + " alice@example.com and more"
	check := func(name string, d Data) {
		t.Helper()
		w := d.Evaluators[0].Worst
		if len(w) != 1 {
			t.Fatalf("%s: worst rows %+v", name, w)
		}
		for _, s := range []string{w[0].Label, w[0].Explanation} {
			if strings.Contains(s, "alice") || !strings.Contains(s, "[email]") {
				t.Errorf("%s: the address escaped redaction: …%s", name, s[max(0, len(s)-40):])
			}
		}
		if got := len([]rune(w[0].Label)); got > maxName+1 {
			t.Errorf("%s: label of %d runes", name, got)
		}
	}
	rows := []record.Score{{EventTime: t0, Evaluator: "e", Model: "m", Value: 1, Status: record.StatusOK,
		Label: label, Explanation: explanation}}
	check("rows", FromScores(rows, Options{Redact: redact, Now: t0}))
	a := NewAggregator(Options{Redact: redact, Now: t0, From: t0, To: t0.Add(time.Hour)})
	a.AddCell(Cell{Evaluator: "e", Model: "m", Start: t0, Scored: 1, Sum: 1, SumSquares: 1})
	a.AddWorst(Row{EventTime: t0, Evaluator: "e", Model: "m", Label: label, Explanation: explanation, Score: 1})
	check("cells", a.Data())
	// The raw copy held is bounded: twice the display length.
	if got := len([]rune(rawClip(maxText, strings.Repeat("é", 3*maxText)))); got != 2*maxText {
		t.Errorf("rawClip kept %d runes, want %d", got, 2*maxText)
	}
}

// TestNDJSONLineCap: a line over the cap is an error naming its line, whether it fits the
// reader's buffer or not; lines under it are read whole.
func TestNDJSONLineCap(t *testing.T) {
	line := func(explanation string) string {
		return `{"event_time":"2026-11-28T10:00:00Z","evaluator":"e","model":"m","status":"ok","score":0.5,"explanation":"` +
			explanation + `"}` + "\n"
	}
	short, long := line("fine"), line(strings.Repeat("z", 600<<10)) // long: past the 256 KiB buffer
	in := short + "\n" + long
	a := NewAggregator(Options{})
	if err := addNDJSON(strings.NewReader(in), a, 1<<20); err != nil {
		t.Fatalf("under the cap: %v", err)
	}
	if d := a.Data(); d.Rows != 2 {
		t.Errorf("%d rows read, want 2", d.Rows)
	}
	for _, limit := range []int{len(long) - 2, len(short) - 1} { // just under the long line; just the short one
		err := addNDJSON(strings.NewReader(in), NewAggregator(Options{}), limit)
		if !errors.Is(err, ErrLineTooLong) || !strings.Contains(err.Error(), "line 3") {
			t.Errorf("cap %d: %v, want ErrLineTooLong on line 3", limit, err)
		}
	}
	// A line of exactly the cap (its newline not counted) is read.
	if err := addNDJSON(strings.NewReader(long), NewAggregator(Options{}), len(long)-1); err != nil {
		t.Errorf("a line of exactly the cap: %v", err)
	}
	if err := addNDJSON(bytes.NewReader(nil), NewAggregator(Options{}), 10); err != nil {
		t.Errorf("empty input: %v", err)
	}
}

// TestNoInconsistencyCallout: a pairwise evaluator without inconsistent verdicts gets no
// callout (not "0.0% of … are inconsistent").
func TestNoInconsistencyCallout(t *testing.T) {
	var rs []record.Score
	for i, l := range []string{"first", "second", "tie"} {
		rs = append(rs, record.Score{EventTime: t0.Add(time.Duration(i) * time.Minute), Evaluator: "duel",
			TaskType: TaskPairwise, Model: "m1", Label: l, Value: 0.5, Status: record.StatusOK})
	}
	txt := text(parse(t, render(t, FromScores(rs, Options{Now: t0}))))
	if !strings.Contains(txt, "Pairwise evaluators") {
		t.Fatalf("no pairwise section")
	}
	if strings.Contains(txt, "verdicts are inconsistent") {
		t.Errorf("a callout for no inconsistent verdicts")
	}
}
