package report

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"raterd/internal/cli"
	"raterd/sinks/clickhouse"
)

// reportNow is the fixed clock of the report tests.
var reportNow = time.Date(2026, 1, 5, 14, 30, 15, 500_000_000, time.UTC)

// testReportCmd returns a report command with an empty environment and the fixed clock,
// and its captured stdout and stderr.
func testReportCmd() (reportCmd, *strings.Builder, *strings.Builder) {
	var out, errb strings.Builder
	return reportCmd{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }, now: func() time.Time { return reportNow }}, &out, &errb
}

func TestReportParseTime(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		in   string
		want time.Time
	}{
		{"now", at("2026-01-05T14:30:15Z")}, // fractional seconds dropped
		{"-24h", at("2026-01-04T14:30:15Z")},
		{"-90m", at("2026-01-05T13:00:15Z")},
		{"-1h30m", at("2026-01-05T13:00:15Z")},
		{"-15s", at("2026-01-05T14:30:00Z")},
		{"-7d", at("2025-12-29T14:30:15Z")},
		{"-2w", at("2025-12-22T14:30:15Z")},
		{"-0d", at("2026-01-05T14:30:15Z")},
		{"2026-01-05", at("2026-01-05T00:00:00Z")},
		{"2026-01-05 10:00:00", at("2026-01-05T10:00:00Z")},
		{"2026-01-05T10:00:00", at("2026-01-05T10:00:00Z")},
		{"2026-01-05T10:00:00Z", at("2026-01-05T10:00:00Z")},
		{"2026-01-05T12:00:00+02:00", at("2026-01-05T10:00:00Z")},
	}
	for _, c := range cases {
		got, err := parseReportTime(c.in, reportNow)
		if err != nil || !got.Equal(c.want) || got.Location() != time.UTC {
			t.Errorf("parseReportTime(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "yesterday", "24h", "7d", "--1h", "-+1h", "-1.5d", "-1d12h", "-d",
		"-100001d", "-60000w", "-9999999h", "1969-12-31", "2106-01-01", "2026-01-05T10:00:00.5Z", "05/01/2026"} {
		if got, err := parseReportTime(in, reportNow); err == nil {
			t.Errorf("parseReportTime(%q) = %v, want an error", in, got)
		}
	}
}

func TestReportFlagErrorsNameTheFlag(t *testing.T) {
	cases := []struct {
		args []string
		want string // in the error, which is a usage error
	}{
		{[]string{"trend", "--from", "-24h"}, "--evaluator is required"},
		{[]string{"trend", "--evaluator", "h"}, "--from is required"},
		{[]string{"trend", "--evaluator", "h", "--from", "yesterday"}, `--from: "yesterday" is not a timestamp`},
		{[]string{"trend", "--evaluator", "h", "--from", "-1h", "--to", "tomorrow"}, `--to: "tomorrow"`},
		{[]string{"trend", "--evaluator", "h", "--from", "2026-01-06"}, "--from 2026-01-06T00:00:00Z is not before --to 2026-01-05T14:30:15Z"},
		{[]string{"trend", "--evaluator", "h", "--from", "-1h", "--format", "xml"}, `invalid value "xml" for flag --format: "xml" is not table, csv or json`},
		{[]string{"trend", "--evaluator", "h", "--from", "-1h", "--frm", "x"}, "flag provided but not defined: --frm"},
		{[]string{"trend", "--evaluator", "h", "--from", "-1h", "extra"}, `unexpected argument "extra"`},
		{[]string{"trend", "--evaluator", "h", "--model", "\xff", "--from", "-1h"}, "--model: \"\\xff\" is not valid UTF-8"},
		{[]string{"trend", "--evaluator", "h", "--from", "-1h"}, "no ClickHouse address: pass --clickhouse, --config or set RATERD_CLICKHOUSE_ADDR"},
		{[]string{"trend", "--evaluator", "h", "--from", "-1h", "--clickhouse", "localhost"}, `--clickhouse: "localhost" is not host:port`},
		{[]string{"trend", "--evaluator", "h", "--from", "-1h", "--clickhouse", "127.0.0.1:1", "--database", "x; DROP"}, `--database: "x; DROP" is not a plain identifier`},
		{[]string{"compare", "--model-a", "a", "--model-b", "b", "--from", "-1d"}, "--evaluator is required"},
		{[]string{"compare", "--evaluator", "h", "--model-b", "b", "--from", "-1d"}, "--model-a is required"},
		{[]string{"compare", "--evaluator", "h", "--model-a", "a", "--from", "-1d"}, "--model-b is required"},
		{[]string{"compare", "--evaluator", "h", "--model-a", "a", "--model-b", "a", "--from", "-1d"}, `--model-b: "a" is also --model-a`},
		{[]string{"compare", "--evaluator", "h", "--model-a", "a", "--model-b", "b"}, "--from is required"},
		{[]string{"compare", "--evaluator", "h", "--model", "a", "--from", "-1d"}, "--model compares one model over two time windows"},
		{[]string{"compare", "--evaluator", "h", "--model", "a", "--window-a", "-2d,-1d"}, "--window-b is required"},
		{[]string{"compare", "--evaluator", "h", "--window-a", "-2d,-1d", "--window-b", "-1d,"}, "--model is required"},
		{[]string{"compare", "--evaluator", "h", "--model-a", "a", "--window-a", "-2d,-1d", "--window-b", "-1d,"}, "they do not combine with --model-a/--model-b"},
		{[]string{"compare", "--evaluator", "h", "--model", "a", "--from", "-2d", "--window-a", "-2d,-1d", "--window-b", "-1d,"}, "--from: with --window-a/--window-b"},
		{[]string{"compare", "--evaluator", "h", "--model", "a", "--window-a", "-2d", "--window-b", "-1d,"}, `--window-a: "-2d" is not FROM,TO`},
		{[]string{"compare", "--evaluator", "h", "--model", "a", "--window-a", "-1d,-2d", "--window-b", "-1d,"}, "--window-a FROM 2026-01-04T14:30:15Z is not before --window-a TO 2026-01-03T14:30:15Z"},
		{[]string{"compare", "--evaluator", "h", "--model", "a", "--window-a", "-2d,-1d", "--window-b", "x,"}, `--window-b FROM: "x" is not a timestamp`},
		{[]string{"nosuchquery"}, `unknown report "nosuchquery": want trend, compare, conversations, html, list or a cookbook query (score_trend, compare_models,`},
		{[]string{"--evaluator", "h"}, "--evaluator: the first argument is a subcommand"},
		{[]string{"worst_apps", "--param", "evaluator=h", "--param", "from=-7d"}, "--param: worst_apps needs min_rows=UInt64, limit=UInt64"},
		{[]string{"worst_apps", "--param", "evaluator=h", "--param", "from=-7d", "--param", "min_rows=1", "--param", "limit=ten"}, `--param: cookbook worst_apps: parameter limit: "ten" is not an unsigned integer`},
		{[]string{"worst_apps", "--param", "evaluator=h", "--param", "app=x"}, "--param app: worst_apps takes no such parameter (it takes evaluator String, from DateTime, to DateTime, min_rows UInt64, limit UInt64)"},
		{[]string{"worst_apps", "--param", "from=yesterday"}, `--param from: "yesterday" is not a timestamp`},
		{[]string{"worst_apps", "--param", "evaluator"}, `invalid value "evaluator" for flag --param: "evaluator" is not name=value`},
		{[]string{"worst_apps", "--param", "limit=1", "--param", "limit=2"}, "parameter limit is given twice"},
		{[]string{"list", "--format", "yaml"}, `"yaml" is not table, csv or json`},
		{[]string{"conversations", "--from", "-1d"}, "--evaluator is required"},
		{[]string{"conversations", "--evaluator", "conversation_quality"}, "--from is required"},
		{[]string{"conversations", "--evaluator", "q", "--from", "-1d", "--limit", "0"}, "--limit: 0 lists no conversation"},
		{[]string{"conversations", "--evaluator", "q", "--from", "-1d", "--limit", "-1"}, `invalid value "-1" for flag --limit`},
		{[]string{"conversations", "--evaluator", "q", "--from", "-1d", "--only", "best"}, `--only: "best" is not resolution, worst or close_reasons`},
		{[]string{"conversations", "--evaluator", "q", "--from", "-1d", "--format", "csv"}, "--format csv prints one table: pass --only"},
		{[]string{"conversations", "--evaluator", "q", "--resolution", "\xff", "--from", "-1d"}, "--resolution: \"\\xff\" is not valid UTF-8"},
		{[]string{"conversations", "--evaluator", "q", "--from", "-1d", "--only", "worst"}, "no ClickHouse address"},
	}
	for _, c := range cases {
		cmd, out, errb := testReportCmd()
		err := cmd.run(context.Background(), c.args)
		if err == nil || !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("report %q: error %v, want a usage error containing %q", c.args, err, c.want)
			continue
		}
		if !strings.Contains(errb.String(), c.want) || !strings.Contains(errb.String(), "--help' for the flags") {
			t.Errorf("report %q: stderr %q lacks the error and the hint", c.args, errb.String())
		}
		if out.Len() != 0 {
			t.Errorf("report %q: stdout %q, want nothing", c.args, out.String())
		}
	}
}

func TestReportQueryParams(t *testing.T) {
	q, _ := clickhouse.CookbookQueryNamed("worst_apps")
	got, err := queryParams(q, map[string]string{"evaluator": "h", "from": "-7d", "min_rows": "5", "limit": "10"}, reportNow)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"evaluator": "h", "from": "2025-12-29T14:30:15Z", "to": "2026-01-05T14:30:15Z", "min_rows": "5", "limit": "10"}
	if len(got) != len(want) {
		t.Fatalf("params %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("param %s = %q, want %q", k, got[k], v)
		}
	}
	if _, err := q.Render("raterd", got); err != nil {
		t.Fatal(err)
	}
}

func TestReportTrendQuery(t *testing.T) {
	base, _ := clickhouse.CookbookQueryNamed("score_trend")
	q, err := trendQuery(false, false)
	if err != nil || q.SQL != base.SQL {
		t.Fatalf("without filters: %v, SQL changed", err)
	}
	q, err = trendQuery(true, true)
	if err != nil {
		t.Fatal(err)
	}
	sql, err := q.Render("raterd", map[string]string{"evaluator": "h", "from": "2026-01-05", "to": "2026-01-06", "model": "m'a", "app": `x\`})
	if err != nil {
		t.Fatal(err)
	}
	want := "    AND event_time < toDateTime('2026-01-06 00:00:00', 'UTC')\n    AND model = 'm\\'a'\n    AND app = 'x\\\\'\nGROUP BY hour, model"
	if !strings.Contains(sql, want) {
		t.Fatalf("filtered trend SQL lacks\n%s\nin\n%s", want, sql)
	}
	q, _ = trendQuery(false, true)
	if _, err := q.Render("raterd", map[string]string{"evaluator": "h", "from": "2026-01-05", "to": "2026-01-06", "model": "m"}); err == nil {
		t.Fatal("app-only trend query took a model parameter")
	}
}

func TestReportSparkline(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		values []float64
		lo, hi float64
		want   string
	}{
		{[]float64{0, 1, 2, 3, 4, 5, 6, 7}, 0, 7, "▁▂▃▄▅▆▇█"},
		{[]float64{0.3, 0.65, nan, 0.9}, 0.3, 0.9, "▁▅ █"},
		{[]float64{nan, 0.5, nan}, 0.5, 0.5, " ▄ "},   // flat: the middle mark
		{[]float64{-1, 11}, 0, 10, "▁█"},              // clamped
		{[]float64{1, 1.124, 1.126, 2}, 1, 2, "▁▁▂█"}, // eighths
		{nil, 0, 1, ""},
	}
	for _, c := range cases {
		if got := sparkline(c.values, c.lo, c.hi); got != c.want {
			t.Errorf("sparkline(%v, %g, %g) = %q, want %q", c.values, c.lo, c.hi, got, c.want)
		}
	}
	for hours, want := range map[int]int{1: 1, 24: 1, 72: 1, 73: 2, 168: 3, 288: 4, 720: 12, 1728: 24, 1729: 48, 24 * 365: 144} {
		if got := sparkBucket(hours); got != want {
			t.Errorf("sparkBucket(%d) = %d, want %d", hours, got, want)
		}
	}
}

func TestReportRenderTrend(t *testing.T) {
	h := func(hour int) time.Time { return time.Date(2026, 1, 5, hour, 0, 0, 0, time.UTC) }
	points := []trendPoint{
		{h(10), "m-a", 2, 1, 0.3},
		{h(10), "m-b", 2, 0, 0.8},
		{h(11), "m-a", 1, 0, 0.65},
		{h(12), "m-b", 1, 0, 0.5},
		{h(12), "m-c", 0, 3, math.NaN()}, // only failures
		{h(13), "m-a", 2, 0, 0.9},
	}
	var b strings.Builder
	if err := renderTrend(&b, trendSpec{Evaluator: "helpfulness", From: h(10), To: h(14)}, points); err != nil {
		t.Fatal(err)
	}
	want := `score trend of helpfulness, 2026-01-05 10:00:00 to 2026-01-05 14:00:00 UTC
trend: mean score per hour from 2026-01-05 10:00 UTC, blank without scored rows; scale ▁ 0.300 … █ 0.900

model  scored  failed   mean  trend
m-a         5       1  0.610  ▁▅ █
m-b         3       0  0.700  ▇ ▃
m-c         0       3    nan
`
	if b.String() != want {
		t.Errorf("trend table:\n%s\nwant:\n%s", b.String(), want)
	}

	// Eight days: one mark per 3 hours, each the mean weighted by scored rows.
	b.Reset()
	from := time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)
	points = []trendPoint{
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "m", 1, 0, 0.0},
		{time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC), "m", 3, 0, 1.0}, // same mark: (0 + 3) / 4
		{time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC), "m", 1, 0, 1.0},
		{time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC), "m", 1, 0, 0.0},
	}
	if err := renderTrend(&b, trendSpec{Evaluator: "e", Model: "m", App: "chat", From: from, To: from.Add(8 * 24 * time.Hour)}, points); err != nil {
		t.Fatal(err)
	}
	want = `score trend of e, 2026-01-01 00:30:00 to 2026-01-09 00:30:00 UTC (model m, app chat)
trend: mean score per 3 hours from 2026-01-01 00:00 UTC, blank without scored rows; scale ▁ 0.000 … █ 1.000

model  scored  failed   mean  trend
m           6       0  0.667  ▇█ ▁
`
	if b.String() != want {
		t.Errorf("bucketed trend table:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	if err := renderTrend(&b, trendSpec{Evaluator: "e", From: h(10), To: h(14)}, nil); err != nil {
		t.Fatal(err)
	}
	if want := "score trend of e, 2026-01-05 10:00:00 to 2026-01-05 14:00:00 UTC\n(no rows)\n"; b.String() != want {
		t.Errorf("empty trend: %q, want %q", b.String(), want)
	}
}

// formatFixture has every kind of cell the formatters handle.
func formatFixture() *resultTable {
	h := func(hour int) time.Time { return time.Date(2026, 1, 5, hour, 0, 0, 0, time.UTC) }
	return &resultTable{
		Columns: []string{"hour", "model", "n", "delta", "mean", "note", "tags"},
		Rows: [][]any{
			{h(10), "m-a", uint64(5), int64(-2), 0.6, `says "hi", ok`, []any{"x", "y"}},
			{h(11), "m-b", uint64(12), int64(3), math.NaN(), "", []any{}},
			{h(12), "m-c", uint64(0), int64(0), math.Inf(1), "tab\there", []any{uint64(1)}},
			{h(13), "m-d", uint64(1), int64(10), math.Inf(-1), nil, nil},
			{h(14), "m-e", uint64(1), int64(10), 2.0 / 3, "<&>", []any{}},
		},
	}
}

func TestReportFormatTable(t *testing.T) {
	var b strings.Builder
	if err := writeTable(&b, formatFixture()); err != nil {
		t.Fatal(err)
	}
	want := `hour                 model   n  delta   mean  note           tags
2026-01-05 10:00:00  m-a     5     -2  0.600  says "hi", ok  [x, y]
2026-01-05 11:00:00  m-b    12      3    nan                 []
2026-01-05 12:00:00  m-c     0      0    inf  tab\there      [1]
2026-01-05 13:00:00  m-d     1     10   -inf  null           null
2026-01-05 14:00:00  m-e     1     10  0.667  <&>            []
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := writeTable(&b, &resultTable{Columns: []string{"app", "scored"}}); err != nil {
		t.Fatal(err)
	}
	if want := "app  scored\n(no rows)\n"; b.String() != want {
		t.Errorf("empty table %q, want %q", b.String(), want)
	}
	for f, want := range map[float64]string{0: "0.000", -0.0004: "0.000", 1234.5678: "1234.568", -2.0005: "-2.001", 1e-9: "0.000"} {
		if got := formatFloat(f); got != want {
			t.Errorf("formatFloat(%g) = %q, want %q", f, got, want)
		}
	}
}

func TestReportFormatCSV(t *testing.T) {
	var b strings.Builder
	if err := writeCSV(&b, formatFixture()); err != nil {
		t.Fatal(err)
	}
	want := "hour,model,n,delta,mean,note,tags\n" +
		"2026-01-05T10:00:00Z,m-a,5,-2,0.6,\"says \"\"hi\"\", ok\",\"[\"\"x\"\",\"\"y\"\"]\"\n" +
		"2026-01-05T11:00:00Z,m-b,12,3,nan,,[]\n" +
		"2026-01-05T12:00:00Z,m-c,0,0,inf,tab\there,[1]\n" +
		"2026-01-05T13:00:00Z,m-d,1,10,-inf,,\n" +
		"2026-01-05T14:00:00Z,m-e,1,10,0.6666666666666666,<&>,[]\n"
	if b.String() != want {
		t.Errorf("csv:\n%s\nwant:\n%s", b.String(), want)
	}
	for f, want := range map[float64]string{1e6: "1000000", 1e-7: "1e-07", 1e21: "1e+21", 0.1: "0.1"} {
		if got := exactFloat(f); got != want {
			t.Errorf("exactFloat(%g) = %q, want %q", f, got, want)
		}
	}
}

func TestReportFormatJSON(t *testing.T) {
	var b strings.Builder
	if err := writeJSON(&b, formatFixture()); err != nil {
		t.Fatal(err)
	}
	want := `[
  {"hour": "2026-01-05T10:00:00Z", "model": "m-a", "n": 5, "delta": -2, "mean": 0.6, "note": "says \"hi\", ok", "tags": ["x","y"]},
  {"hour": "2026-01-05T11:00:00Z", "model": "m-b", "n": 12, "delta": 3, "mean": "nan", "note": "", "tags": []},
  {"hour": "2026-01-05T12:00:00Z", "model": "m-c", "n": 0, "delta": 0, "mean": "inf", "note": "tab\there", "tags": [1]},
  {"hour": "2026-01-05T13:00:00Z", "model": "m-d", "n": 1, "delta": 10, "mean": "-inf", "note": null, "tags": null},
  {"hour": "2026-01-05T14:00:00Z", "model": "m-e", "n": 1, "delta": 10, "mean": 0.6666666666666666, "note": "<&>", "tags": []}
]
`
	if b.String() != want {
		t.Errorf("json:\n%s\nwant:\n%s", b.String(), want)
	}
	var decoded []map[string]any
	if err := json.Unmarshal([]byte(b.String()), &decoded); err != nil || len(decoded) != 5 {
		t.Fatalf("json output does not parse: %v", err)
	}
	b.Reset()
	if err := writeJSON(&b, &resultTable{Columns: []string{"a"}}); err != nil || b.String() != "[]\n" {
		t.Errorf("empty json %q, %v", b.String(), err)
	}
}

func TestReportWelchAndVerdict(t *testing.T) {
	// Window A: 0.1, 0.2, 0.1, 0.2; window B: 0.8, 0.9, 0.8, 0.9: equal variances 1/300, df 6.
	r := welch(sampleStats{4, 0.15, 0.01 / 3}, sampleStats{4, 0.85, 0.01 / 3})
	near := func(name string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol {
			t.Errorf("%s = %.6f, want %.6f", name, got, want)
		}
	}
	near("diff", r.Diff, 0.7, 1e-12)
	near("std_err", r.StdErr, math.Sqrt(0.01/6), 1e-12)
	near("welch_df", r.DF, 6, 1e-9)
	near("t_crit", r.TCrit, 2.4469, 0.0005) // Student's t, 0.975, 6 df
	near("ci95_low", r.Low, 0.7-2.446806*math.Sqrt(0.01/6), 1e-5)
	if s, long := verdict(r.Low, r.High); s != "significant" || !strings.Contains(long, "significant at 5%") || !strings.Contains(long, "B scores higher") {
		t.Errorf("verdict %q / %q", s, long)
	}
	// compare_models' 1 ≤ df < 2 and 2 ≤ df < 3 rows.
	if r := welch(sampleStats{2, 0, 1}, sampleStats{100, 0, 0.0001}); r.TCrit != 12.7062 {
		t.Errorf("df %.3f: t_crit %v, want 12.7062", r.DF, r.TCrit)
	}
	if r := welch(sampleStats{3, 0, 1}, sampleStats{100, 0, 0.0001}); r.TCrit != 4.3027 {
		t.Errorf("df %.3f: t_crit %v, want 4.3027", r.DF, r.TCrit)
	}
	// Fewer than 2 rows on a side: no interval, no verdict.
	r = welch(sampleStats{1, 0.5, math.Inf(1)}, sampleStats{10, 0.7, 0.01})
	if !math.IsNaN(r.Low) || !math.IsNaN(r.High) {
		t.Errorf("n_a = 1: interval [%v, %v], want nan", r.Low, r.High)
	}
	if s, _ := verdict(r.Low, r.High); s != "undefined" {
		t.Errorf("n_a = 1: verdict %q", s)
	}
	if s, long := verdict(-0.3, 0.5); s != "not significant" || !strings.Contains(long, "includes 0") {
		t.Errorf("verdict across 0: %q / %q", s, long)
	}
	if _, long := verdict(-0.5, -0.1); !strings.Contains(long, "B scores lower") {
		t.Errorf("verdict below 0: %q", long)
	}
}

func TestReportHelp(t *testing.T) {
	var out, errb strings.Builder
	if code := runMain([]string{"report", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("report --help: exit %d, stderr %q", code, errb.String())
	}
	help := out.String()
	for _, want := range []string{"raterd report trend", "raterd report compare", "raterd report list", "raterd report <query>",
		"raterd report conversations", "--resolution", "--limit", "--only", "close_reasons",
		"--evaluator", "--model", "--app", "--from", "--to", "--model-a", "--model-b", "--window-a", "--window-b", "--param",
		"--clickhouse", "--config", "--database", "--format", "--timeout", "-24h", "-7d", "RFC 3339", "2026-11-24 ",
		"RATERD_CLICKHOUSE_ADDR", "significant at 5%", "▁▂▃▄▅▆▇█", "nan"} {
		if !strings.Contains(help, want) {
			t.Errorf("report --help lacks %q", want)
		}
	}
	for _, q := range clickhouse.Cookbook() {
		if !strings.Contains(help, q.Name) || !strings.Contains(help, q.Title) {
			t.Errorf("report --help lacks query %s", q.Name)
		}
	}

	for _, args := range [][]string{{"report", "trend", "--help"}, {"report", "compare", "-h"}, {"report", "conversations", "--help"},
		{"report", "worst_conversations", "--help"}, {"report", "worst_apps", "--help"}, {"report", "list", "--help"}} {
		out.Reset()
		if code := runMain(args, &out, &errb); code != 0 || !strings.Contains(out.String(), "Usage:") {
			t.Errorf("%q: exit %d, out %q", args, code, out.String())
		}
	}
	if !strings.Contains(out.String(), "params: evaluator String") {
		t.Errorf("report list --help lacks the queries:\n%s", out.String())
	}

	out.Reset()
	errb.Reset()
	if code := runMain([]string{"report"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "Usage:") {
		t.Errorf("report without arguments: exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := runMain([]string{"report", "trend", "--evaluator", "h"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--from is required") {
		t.Errorf("report trend without --from: exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	if code := runMain([]string{"report", "list"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "pass_rate_after_deploy") {
		t.Errorf("report list: exit %d, out %q", code, out.String())
	}
}

func TestReportConnectionFlags(t *testing.T) {
	env := map[string]string{"RATERD_CLICKHOUSE_ADDR": "ch1:9000, ch2:9000", "RATERD_CLICKHOUSE_USER": "u", "RATERD_CLICKHOUSE_PASSWORD": "p"}
	getenv := func(k string) string { return env[k] }
	cfg, err := (&clickHouseFlags{}).resolve(getenv)
	if err != nil || strings.Join(cfg.Addrs, ",") != "ch1:9000,ch2:9000" || cfg.Database != "raterd" || cfg.Username != "u" || cfg.Password != "p" {
		t.Fatalf("from env: %+v, %v", cfg, err)
	}
	cfg, err = (&clickHouseFlags{addr: "ch3:9000", database: "analytics"}).resolve(getenv)
	if err != nil || strings.Join(cfg.Addrs, ",") != "ch3:9000" || cfg.Database != "analytics" {
		t.Fatalf("flags over env: %+v, %v", cfg, err)
	}
	cfg, err = (&clickHouseFlags{config: "../app/starter.yaml", database: "other"}).resolve(func(string) string { return "" })
	if err != nil || len(cfg.Addrs) == 0 || cfg.Database != "other" {
		t.Fatalf("from the config: %+v, %v", cfg, err)
	}
	if _, err := (&clickHouseFlags{config: "/nonexistent.yaml"}).resolve(getenv); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("missing config: %v", err)
	}
}

// runMain runs `raterd report …` the way the raterd command does (Main, then cli.Exit),
// so that these tests see the exit status and messages a user sees.
func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "report" {
		panic("runMain: args must start with \"report\"")
	}
	return cli.Exit(args[0], Main(args[1:], stdout, stderr), stderr)
}

// TestReportComparisonTStatistic: the printed t is the t statistic, difference / std.
// error, and the critical value is printed as t crit beside the interval; csv and json
// carry both, as t_stat and t_crit.
func TestReportComparisonTStatistic(t *testing.T) {
	// By hand. A = 1, 2, 3: n 3, mean 2, sample variance (1 + 0 + 1)/2 = 1.
	// B = 2, 4, 6: n 3, mean 4, sample variance (4 + 0 + 4)/2 = 4.
	// diff = 4 − 2 = 2; std_err = √(1/3 + 4/3) = √(5/3) = 1.290994;
	// t = diff / std_err = 2 / 1.290994 = 1.549193;
	// Welch df = (5/3)² / ((1/3)²/2 + (4/3)²/2) = (25/9) / (17/18) = 50/17 = 2.941176;
	// 2 ≤ df < 3: t crit 4.3027, CI 2 ± 4.3027 × 1.290994 = 2 ± 5.554758 = [−3.555, 7.555]:
	// not significant, since |t| = 1.549 < t crit.
	const tStat, tCrit = 1.5491933384829668, 4.3027
	r := welch(sampleStats{3, 2, 1}, sampleStats{3, 4, 4})
	if math.Abs(r.T-tStat) > 1e-12 || r.TCrit != tCrit || math.Abs(r.DF-50.0/17) > 1e-12 {
		t.Fatalf("t %v, t crit %v, df %v; want %v, %v, 50/17", r.T, r.TCrit, r.DF, tStat, tCrit)
	}
	side := &resultTable{Columns: []string{"", "model", "n", "mean"}, Rows: [][]any{
		{"A", "a", r.NA, r.MeanA},
		{"B", "b", r.NB, r.MeanB},
	}}
	_, long := verdict(r.Low, r.High)
	var out strings.Builder
	if err := printComparison(&out, side, r, long); err != nil {
		t.Fatal(err)
	}
	want := `   model  n   mean
A  a      3  2.000
B  b      3  4.000

difference B − A: +2.000 (std. error 1.291, Welch df 2.941, t +1.549)
95% CI: [-3.555, 7.555] (difference ± t crit 4.303 × std. error)
verdict: not significant at 5% (the 95% CI includes 0)
`
	if out.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", out.String(), want)
	}
	// B − A negative: t is negative too.
	r2 := welch(sampleStats{3, 4, 4}, sampleStats{3, 2, 1})
	out.Reset()
	if err := printComparison(&out, side, r2, long); err != nil || !strings.Contains(out.String(), "t -1.549)") {
		t.Errorf("swapped sides: %v\n%s", err, out.String())
	}

	// csv of a window comparison: t_crit and t_stat, by name.
	at := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
	var b strings.Builder
	if err := writeResult(&b, formatCSV, windowTable("m", [4]time.Time{at, at, at, at}, r, "not significant")); err != nil {
		t.Fatal(err)
	}
	checkTColumns(t, "window csv", csvObject(t, b.String()), tStat, tCrit)

	// json of a model comparison: compare_models' row (no t statistic) gets one.
	row := &resultTable{
		Columns: []string{"model_a", "model_b", "n_a", "n_b", "mean_a", "mean_b", "diff", "std_err", "welch_df", "t_crit", "ci95_low", "ci95_high"},
		Rows:    [][]any{{"a", "b", uint64(3), uint64(3), r.MeanA, r.MeanB, r.Diff, r.StdErr, r.DF, r.TCrit, r.Low, r.High}},
	}
	fromRow, err := welchFromRow(row)
	if err != nil || fromRow != r {
		t.Fatalf("welchFromRow: %+v, %v; want %+v", fromRow, err, r)
	}
	b.Reset()
	if err := writeResult(&b, formatJSON, withTStatAndVerdict(row, fromRow, "not significant")); err != nil {
		t.Fatal(err)
	}
	var objs []map[string]any
	if err := json.Unmarshal([]byte(b.String()), &objs); err != nil || len(objs) != 1 {
		t.Fatalf("json %q: %v", b.String(), err)
	}
	got := map[string]string{}
	for k, v := range objs[0] {
		got[k] = fmt.Sprint(v)
	}
	checkTColumns(t, "models json", got, tStat, tCrit)
}

// csvObject reads a csv answer of one row as column → value.
func csvObject(t *testing.T, s string) map[string]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(s)).ReadAll()
	if err != nil || len(recs) != 2 || len(recs[0]) != len(recs[1]) {
		t.Fatalf("csv %q: %v", s, err)
	}
	m := make(map[string]string, len(recs[0]))
	for i, c := range recs[0] {
		m[c] = recs[1][i]
	}
	return m
}

func checkTColumns(t *testing.T, what string, row map[string]string, tStat, tCrit float64) {
	t.Helper()
	for col, want := range map[string]float64{"t_stat": tStat, "t_crit": tCrit} {
		v, err := strconv.ParseFloat(row[col], 64)
		if err != nil || math.Abs(v-want) > 1e-12 {
			t.Errorf("%s: %s = %q, want %v (%v)", what, col, row[col], want, err)
		}
	}
	if row["verdict"] != "not significant" {
		t.Errorf("%s: verdict %q", what, row["verdict"])
	}
}

// TestReportConversationsPlan: report conversations runs resolution_rate on --resolution
// (default --evaluator), worst_conversations on --evaluator with --limit, and
// conversation_close_reasons on scope conversation; --model becomes the queries' model
// filter, and --only picks one section.
func TestReportConversationsPlan(t *testing.T) {
	for _, c := range []struct {
		name       string
		f          reportFlags
		sections   string
		resolution string
		modelSQL   bool
	}{
		{"defaults", reportFlags{evaluator: "conversation_resolution", from: "-1d", limit: 5}, "resolution,worst,close_reasons", "conversation_resolution", false},
		{"resolution and model", reportFlags{evaluator: "conversation_quality", resolution: "conversation_resolution", model: "m", from: "-1d", limit: 3},
			"resolution,worst,close_reasons", "conversation_resolution", true},
		{"only worst", reportFlags{evaluator: "q", from: "-1d", limit: 1, only: "worst"}, "worst", "q", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := c.f
			plan, from, to, err := planConversations(&f, reportNow)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(plan.sections, ","); got != c.sections {
				t.Errorf("sections %s, want %s", got, c.sections)
			}
			if !to.Equal(reportNow.Truncate(time.Second)) || !from.Equal(to.Add(-24*time.Hour)) {
				t.Errorf("range %s … %s", from, to)
			}
			if got := plan.params[sectionResolution]["evaluator"]; got != c.resolution {
				t.Errorf("resolution evaluator %q, want %q", got, c.resolution)
			}
			if got := plan.params[sectionWorst]["limit"]; got != fmt.Sprint(f.limit) {
				t.Errorf("limit %q, want %d", got, f.limit)
			}
			if got := plan.params[sectionCloseReasons]["scope"]; got != "conversation" {
				t.Errorf("close reasons scope %q", got)
			}
			for _, s := range []string{sectionResolution, sectionWorst, sectionCloseReasons} {
				sql, err := plan.queries[s].Render("raterd", plan.params[s])
				if err != nil {
					t.Fatalf("%s: %v", s, err)
				}
				if s != sectionCloseReasons && strings.Contains(sql, "AND model = 'm'") != c.modelSQL {
					t.Errorf("%s: model filter in the SQL = %v, want %v:\n%s", s, !c.modelSQL, c.modelSQL, sql)
				}
			}
		})
	}
}

// TestReportRenderConversations: the table has a heading per section and cuts long
// explanations; json is one object with an array per section, or the one array of --only.
func TestReportRenderConversations(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	results := map[string]*resultTable{
		sectionResolution: {Columns: []string{"day", "model", "conversations", "resolved", "resolution_rate", "failed"},
			Rows: [][]any{{day, "m", uint64(3), uint64(2), 2.0 / 3, uint64(1)}}},
		sectionWorst: {Columns: []string{"model", "conversation_id", "version", "turn_count", "score", "label", "explanation", "close_reason", "first_offset", "last_offset"},
			Rows: [][]any{{"m", "c2", uint64(1), uint64(12), 3.0, "", strings.Repeat("long ", 20), "max_turns", uint64(2001), uint64(2040)}}},
		sectionCloseReasons: {Columns: []string{"model", "close_reason", "segments", "mean_turns", "max_turns"},
			Rows: [][]any{{"m", "evicted", uint64(1), 3.0, uint64(3)}}},
	}
	all := []string{sectionResolution, sectionWorst, sectionCloseReasons}
	f := reportFlags{evaluator: "conversation_quality", resolution: "conversation_resolution", limit: 2, format: formatTable}
	var out strings.Builder
	if err := renderConversations(&out, f, day, day.Add(48*time.Hour), all, results); err != nil {
		t.Fatal(err)
	}
	want := `conversations of every model, first turns 2026-12-01 00:00:00 to 2026-12-03 00:00:00 UTC

resolution rate of conversation_resolution per day (score 1 = resolved; failed rows left out of the rate)
day                  model  conversations  resolved  resolution_rate  failed
2026-12-01 00:00:00  m                  3         2            0.667       1

worst conversations by conversation_quality (lowest 2 per model)
model  conversation_id  version  turn_count  score  label  explanation                                                   close_reason  first_offset  last_offset
m      c2                     1          12  3.000         long long long long long long long long long long long long…  max_turns             2001         2040

why segments closed (max_turns, max_bytes, max_duration, evicted: cut short by the bounds)
model  close_reason  segments  mean_turns  max_turns
m      evicted              1       3.000          3
`
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}

	f.format = formatJSON
	out.Reset()
	if err := renderConversations(&out, f, day, day, all, results); err != nil {
		t.Fatal(err)
	}
	var obj map[string][]map[string]any
	if err := json.Unmarshal([]byte(out.String()), &obj); err != nil {
		t.Fatalf("json %q: %v", out.String(), err)
	}
	if len(obj) != 3 || len(obj["resolution_rate"]) != 1 || obj["worst_conversations"][0]["explanation"] != strings.Repeat("long ", 20) ||
		obj["close_reasons"][0]["close_reason"] != "evicted" {
		t.Errorf("json: %v", obj)
	}
	out.Reset()
	if err := renderConversations(&out, f, day, day, []string{sectionWorst}, results); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "[\n  {\"model\": \"m\", \"conversation_id\": \"c2\"") {
		t.Errorf("json --only worst: %s", out.String())
	}
}
