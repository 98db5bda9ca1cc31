package htmlreport

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"raterd/sinks/clickhouse"
)

// fakeQuerier is a fake Querier: it answers each cookbook query by name from tables and
// records the parameters it was given. It renders every query first, as the real one
// does, so parameters the cookbook would refuse fail here too.
type fakeQuerier struct {
	tables map[string]Table
	fail   map[string]error
	params map[string]map[string]string
}

func (f *fakeQuerier) QueryCookbook(_ context.Context, q clickhouse.CookbookQuery, params map[string]string) (Table, error) {
	if _, err := q.Render("raterd", params); err != nil {
		return Table{}, err
	}
	if f.params == nil {
		f.params = map[string]map[string]string{}
	}
	f.params[q.Name] = params
	if err := f.fail[q.Name]; err != nil {
		return Table{}, err
	}
	return f.tables[q.Name], nil
}

// recorder is a fake sink: it keeps what fill feeds it.
type recorder struct {
	cells  []Cell
	judges []JudgeCell
	worst  []Row
	labels []LabelCount
	alerts []Alert
}

func (r *recorder) AddCell(c Cell)           { r.cells = append(r.cells, c) }
func (r *recorder) AddJudgeCell(c JudgeCell) { r.judges = append(r.judges, c) }
func (r *recorder) AddWorst(w Row)           { r.worst = append(r.worst, w) }
func (r *recorder) AddPairwise(c LabelCount) { r.labels = append(r.labels, c) }
func (r *recorder) AddAlert(a Alert)         { r.alerts = append(r.alerts, a) }

var (
	t12 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	t13 = t12.Add(time.Hour)
)

// fakeTables are answers in the Go types clickhouse-go scans the columns into (UInt64
// counts, Float64 sums, DateTime as time.Time in the server's zone, a Nullable score).
func fakeTables() map[string]Table {
	berlin := time.FixedZone("CET", 3600)
	nullScore := (*float64)(nil)
	return map[string]Table{
		"report_cells": {
			Columns: []string{"evaluator", "model", "task_type", "bucket", "scored", "parse_failures", "judge_errors", "sum_score", "sum_squares", "skipped"},
			Rows: [][]any{
				{"helpfulness", "v7", "pointwise", t12.In(berlin), uint64(10), uint64(0), uint64(0), 70.0, 510.0, uint64(0)},
				{"helpfulness", "v7", "pointwise", t13, uint64(5), uint64(2), uint64(1), 20.0, 90.0, uint64(3)},
			},
		},
		"report_judge_cells": {
			Columns: []string{"judge", "bucket", "ok", "parse_failures", "judge_errors"},
			Rows:    [][]any{{"selene", t13, uint64(8), uint64(1), uint64(0)}},
		},
		"report_worst": {
			Columns: []string{"event_time", "evaluator", "model", "app", "record_id", "judge", "label", "explanation", "score"},
			Rows: [][]any{
				{t13, "helpfulness", "v7", "legacy", "h13-v7-00", "selene", "<b>bad</b>", "it's <script>x</script>", 2.0},
				{t12, "helpfulness", "v6", "billing", "h12-v6-00", "selene", "", "", nullScore},
			},
		},
		"report_pairwise": {
			Columns: []string{"evaluator", "model", "label", "verdicts"},
			Rows:    [][]any{{"preference", "v6", "inconsistent", uint64(2)}, {"preference", "v6", "second", uint64(1)}},
		},
		"alerts_in_range": {
			Columns: []string{"alert_id", "rule", "evaluator", "model", "app", "judge", "state", "severity", "observed",
				"expected", "interval_low", "interval_high", "sample_size", "since", "updated_at", "message"},
			Rows: [][]any{{"a1", "score_drop", "helpfulness", "v7", "", "", "resolved", "warning", 5.4, 5.5, 5.1, 5.7,
				uint64(15), t13, t13.Add(2 * time.Hour), "recovered"}},
		},
	}
}

func TestFillReadsEveryQuery(t *testing.T) {
	q := &fakeQuerier{tables: fakeTables()}
	var rec recorder
	opts := Options{Evaluators: []string{"helpfulness", "it's"}, Apps: []string{"legacy"}, From: t12, To: t12.Add(24 * time.Hour), Worst: 3}
	if err := fill(context.Background(), q, opts, 15*time.Minute, &rec); err != nil {
		t.Fatal(err)
	}
	wantCells := []Cell{
		{Evaluator: "helpfulness", Model: "v7", TaskType: "pointwise", Start: t12, Scored: 10, Sum: 70, SumSquares: 510},
		{Evaluator: "helpfulness", Model: "v7", TaskType: "pointwise", Start: t13, Scored: 5, ParseFailures: 2, JudgeErrors: 1, Sum: 20, SumSquares: 90, Skipped: 3},
	}
	if !reflect.DeepEqual(rec.cells, wantCells) {
		t.Errorf("cells\n%+v\nwant\n%+v", rec.cells, wantCells)
	}
	if want := []JudgeCell{{Judge: "selene", Start: t13, OK: 8, ParseFailures: 1}}; !reflect.DeepEqual(rec.judges, want) {
		t.Errorf("judge cells %+v, want %+v", rec.judges, want)
	}
	wantWorst := Row{EventTime: t13, Evaluator: "helpfulness", Model: "v7", App: "legacy", RecordID: "h13-v7-00", Judge: "selene",
		Label: "<b>bad</b>", Explanation: "it's <script>x</script>", Score: 2}
	if len(rec.worst) != 2 || !reflect.DeepEqual(rec.worst[0], wantWorst) || rec.worst[1].RecordID != "h12-v6-00" ||
		rec.worst[1].App != "billing" || !math.IsNaN(rec.worst[1].Score) {
		t.Errorf("worst rows %+v, want %+v and h12-v6-00 with a NaN score", rec.worst, wantWorst)
	}
	if want := []LabelCount{{"preference", "v6", "inconsistent", 2}, {"preference", "v6", "second", 1}}; !reflect.DeepEqual(rec.labels, want) {
		t.Errorf("labels %+v, want %+v", rec.labels, want)
	}
	wantAlert := Alert{ID: "a1", Rule: "score_drop", Evaluator: "helpfulness", Model: "v7", State: "resolved", Severity: "warning",
		Message: "recovered", Observed: 5.4, Expected: 5.5, Low: 5.1, High: 5.7, SampleSize: 15, Since: t13, UpdatedAt: t13.Add(2 * time.Hour)}
	if len(rec.alerts) != 1 || !reflect.DeepEqual(rec.alerts[0], wantAlert) {
		t.Errorf("alerts %+v, want %+v", rec.alerts, wantAlert)
	}

	// Every query got the range and the list filters; the cells their bucket, worst its limit.
	for _, name := range []string{"report_cells", "report_judge_cells", "report_worst", "report_pairwise", "alerts_in_range"} {
		p := q.params[name]
		if p["from"] != "2026-11-24T12:00:00Z" || p["to"] != "2026-11-25T12:00:00Z" ||
			p["evaluator"] != `["helpfulness","it's"]` || p["app"] != `["legacy"]` {
			t.Errorf("%s params %v", name, p)
		}
		if _, ok := p["model"]; ok {
			t.Errorf("%s: model filter given though Options.Models is empty: %v", name, p)
		}
	}
	if q.params["report_cells"]["bucket_seconds"] != "900" || q.params["report_judge_cells"]["bucket_seconds"] != "900" {
		t.Errorf("bucket_seconds %q, %q, want 900", q.params["report_cells"]["bucket_seconds"], q.params["report_judge_cells"]["bucket_seconds"])
	}
	if q.params["report_worst"]["limit"] != "3" {
		t.Errorf("report_worst limit %q, want 3", q.params["report_worst"]["limit"])
	}
}

func TestFillErrors(t *testing.T) {
	boom := errors.New("connection reset")
	q := &fakeQuerier{tables: fakeTables(), fail: map[string]error{"report_worst": boom}}
	opts := Options{From: t12, To: t13}
	err := fill(context.Background(), q, opts, time.Minute, &recorder{})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "report_worst") {
		t.Errorf("a failing query: %v, want it wrapped with the query's name", err)
	}

	for name, mutate := range map[string]func(Table) Table{
		"a missing column": func(tb Table) Table { tb.Columns = tb.Columns[:3]; return tb },
		"a string count":   func(tb Table) Table { tb.Rows[0][4] = "10"; return tb },
		"a negative count": func(tb Table) Table { tb.Rows[0][4] = int64(-1); return tb },
		"a number model":   func(tb Table) Table { tb.Rows[0][1] = 7; return tb },
		"a text bucket":    func(tb Table) Table { tb.Rows[0][3] = "2026-11-24"; return tb },
	} {
		tables := fakeTables()
		tables["report_cells"] = mutate(tables["report_cells"])
		err := fill(context.Background(), &fakeQuerier{tables: tables}, opts, time.Minute, &recorder{})
		if err == nil || !strings.Contains(err.Error(), "report_cells: row 1") {
			t.Errorf("%s: %v, want an error naming report_cells' row 1", name, err)
		}
	}
}

func TestClickHouseRange(t *testing.T) {
	now := time.Date(2026, 12, 7, 13, 30, 15, 500, time.UTC)
	from, to, err := ClickHouseRange(Options{}, now)
	if err != nil || !to.Equal(now.Truncate(time.Second).Add(time.Second)) {
		t.Errorf("default range %s … %s, %v; want it to end at now, rounded up to the second", from, to, err)
	}
	if !from.Equal(now.Add(-DefaultRange).Truncate(time.Second)) {
		t.Errorf("default from %s, want 24 h before now", from)
	}
	from, to, err = ClickHouseRange(Options{From: t12}, now)
	if err != nil || !from.Equal(t12) || !to.After(now) {
		t.Errorf("from only: %s … %s, %v", from, to, err)
	}
	from, to, err = ClickHouseRange(Options{To: t13}, now)
	if err != nil || !from.Equal(t13.Add(-DefaultRange)) || !to.Equal(t13) {
		t.Errorf("to only: %s … %s, %v", from, to, err)
	}
	if _, _, err := ClickHouseRange(Options{From: t13, To: t12}, now); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("a reversed range: %v", err)
	}
	if _, _, err := ClickHouseRange(Options{From: now.Add(time.Hour)}, now); err == nil {
		t.Error("a range starting after now with To unset: nil error")
	}
}

// TestFromClickHouseBucket: the bucket width follows the range and MaxPoints.
func TestFromClickHouseBucket(t *testing.T) {
	for _, c := range []struct {
		span      time.Duration
		maxPoints int
		want      string
	}{
		{24 * time.Hour, 0, "900"}, // 96 quarter hours ≤ 120
		{24 * time.Hour, 24, "3600"},
		{2 * time.Hour, 120, "60"},
		{30 * 24 * time.Hour, 120, "21600"},
		// Past 7d the widths go on in whole weeks: 28 weeks make 10 buckets, 27 would make 11.
		{5 * 365 * 24 * time.Hour, 10, "16934400"},
		{10 * 365 * 24 * time.Hour, 120, "3024000"}, // 5 weeks: 105 buckets; 4 weeks would make 131
	} {
		q := &fakeQuerier{tables: fakeTables()}
		if _, err := FromClickHouse(context.Background(), q, Options{From: t12, To: t12.Add(c.span), MaxPoints: c.maxPoints}); err != nil {
			t.Fatal(err)
		}
		if got := q.params["report_cells"]["bucket_seconds"]; got != c.want {
			t.Errorf("span %s, MaxPoints %d: bucket_seconds %s, want %s", c.span, c.maxPoints, got, c.want)
		}
	}
}

// FuzzFillRows feeds arbitrary values into every column of every query: fill never
// panics, and either fails naming a query or feeds one entry per row.
func FuzzFillRows(f *testing.F) {
	f.Add("x", int64(3), 1.5, true)
	f.Add("", int64(-1), math.NaN(), false)
	f.Add("<script>", int64(math.MaxInt64), math.Inf(1), true)
	f.Fuzz(func(t *testing.T, s string, n int64, x float64, asTime bool) {
		tables := fakeTables()
		for name, tb := range tables {
			for i := range tb.Rows {
				for j := range tb.Rows[i] {
					switch (i + j) % 4 {
					case 0:
						tb.Rows[i][j] = s
					case 1:
						tb.Rows[i][j] = n
					case 2:
						tb.Rows[i][j] = x
					default:
						if asTime {
							tb.Rows[i][j] = time.Unix(n%1e10, 0)
						}
					}
				}
			}
			tables[name] = tb
		}
		var rec recorder
		err := fill(context.Background(), &fakeQuerier{tables: tables}, Options{From: t12, To: t13}, time.Hour, &rec)
		if err != nil && !strings.Contains(err.Error(), "row ") {
			t.Fatalf("error without the row: %v", err)
		}
		if err == nil && len(rec.alerts) != len(tables["alerts_in_range"].Rows) {
			t.Fatalf("%d alerts fed from %d rows", len(rec.alerts), len(tables["alerts_in_range"].Rows))
		}
	})
}
