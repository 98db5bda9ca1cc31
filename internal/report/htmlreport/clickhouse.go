package htmlreport

// The ClickHouse source of the report: the cookbook's report_* queries and alerts_in_range,
// run over a Querier, fold into an Aggregator as pre-aggregated cells.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/sinks/clickhouse"
)

// Table is the answer of one query: its column names and rows. A value is a string, a
// number (any Go integer or float type) or a time.Time.
type Table struct {
	Columns []string
	Rows    [][]any
}

// Querier runs one cookbook query with its parameters. ConnQuerier runs them on a
// clickhouse-go connection; tests use a fake.
type Querier interface {
	QueryCookbook(ctx context.Context, q clickhouse.CookbookQuery, params map[string]string) (Table, error)
}

// ConnQuerier runs cookbook queries on Conn against the scores and alerts tables of
// Database.
type ConnQuerier struct {
	Conn     driver.Conn
	Database string
}

// QueryCookbook renders q for the database and reads every row generically, with the Go
// types the driver scans each column into.
func (c ConnQuerier) QueryCookbook(ctx context.Context, q clickhouse.CookbookQuery, params map[string]string) (Table, error) {
	sql, err := q.Render(c.Database, params)
	if err != nil {
		return Table{}, err
	}
	return ScanQuery(ctx, c.Conn, sql)
}

// ScanQuery runs sql on conn and reads every row generically: the column names, and each
// value as the Go type the driver scans its column into. `raterd report`'s tables read
// their answers through it too.
func ScanQuery(ctx context.Context, conn driver.Conn, sql string) (Table, error) {
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return Table{}, err
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	t := Table{Columns: make([]string, len(types))}
	for i, ct := range types {
		t.Columns[i] = ct.Name()
	}
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return Table{}, fmt.Errorf("scan: %w", err)
		}
		row := make([]any, len(dest))
		for i, d := range dest {
			row[i] = reflect.ValueOf(d).Elem().Interface()
		}
		t.Rows = append(t.Rows, row)
	}
	return t, rows.Err()
}

// DefaultRange is the range FromClickHouse reads when Options.From is zero: the last 24
// hours up to Options.To (or now).
const DefaultRange = 24 * time.Hour

// defaultWorst stands in for an unset Options.Worst when report_worst is sized.
const defaultWorst = 10

// ClickHouseRange returns the range FromClickHouse reads for opts at now: [From, To) as
// given, To defaulting to now and From to DefaultRange before To. It fails when the range
// is empty.
func ClickHouseRange(opts Options, now time.Time) (from, to time.Time, err error) {
	from, to = opts.From.UTC(), opts.To.UTC()
	if to.IsZero() {
		to = now.UTC()
	}
	if from.IsZero() {
		from = to.Add(-DefaultRange)
	}
	// DateTime parameters hold whole seconds: widen the range to them.
	from = from.Truncate(time.Second)
	if t := to.Truncate(time.Second); t.Before(to) {
		to = t.Add(time.Second)
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("the range %s … %s is empty", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return from, to, nil
}

// FromClickHouse builds the report from ClickHouse through q: the range is ClickHouseRange
// of opts (the last 24 hours when From is zero, up to Now), the bucket width BucketFor(from,
// to, MaxPoints) but at least MinBucket, as SourceBucket picks it (and set as MinBucket, so
// the page charts whole buckets of the source), and the cookbook queries report_cells, report_judge_cells, report_worst,
// report_pairwise and alerts_in_range, filtered by opts' evaluators, models and apps, feed
// one Aggregator. Its size is bounded by the queries: at most MaxPoints cells per
// evaluator and model or per judge, Worst rows per evaluator, one count per pairwise
// label, one row per alert.
func FromClickHouse(ctx context.Context, q Querier, opts Options) (Data, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	from, to, err := ClickHouseRange(opts, now)
	if err != nil {
		return Data{}, err
	}
	opts.From, opts.To = from, to
	bucket := sourceBucket(from, to, opts.MaxPoints, opts.MinBucket)
	opts.MinBucket = bucket // the page charts whole buckets of the source
	a := NewAggregator(opts)
	if err := fill(ctx, q, opts, bucket, a); err != nil {
		return Data{}, err
	}
	d := a.Data()
	// alerts_in_range delivers the newest maxAlerts+1: one left out says there were more.
	d.AlertsDroppedAtLeast = d.AlertsDropped > 0
	return d, nil
}

// sink is what fill feeds: *Aggregator, or a recorder in tests.
type sink interface {
	AddCell(Cell)
	AddJudgeCell(JudgeCell)
	AddWorst(Row)
	AddPairwise(LabelCount)
	AddAlert(Alert)
}

// fill runs the five queries over [opts.From, opts.To) with buckets of width bucket and
// feeds their rows to s.
func fill(ctx context.Context, q Querier, opts Options, bucket time.Duration, s sink) error {
	filters := map[string]string{}
	for name, vs := range map[string][]string{"evaluator": opts.Evaluators, "model": opts.Models, "app": opts.Apps} {
		if len(vs) > 0 {
			filters[name] = clickhouse.ListValue(vs)
		}
	}
	rng := map[string]string{"from": opts.From.UTC().Format(time.RFC3339), "to": opts.To.UTC().Format(time.RFC3339)}
	secs := strconv.FormatInt(int64(bucket/time.Second), 10)
	worstN := opts.Worst
	if worstN <= 0 {
		worstN = defaultWorst
	}
	run := func(name string, extra map[string]string, row func(r *reader) error) error {
		cq, ok := clickhouse.CookbookQueryNamed(name)
		if !ok {
			return fmt.Errorf("the cookbook has no %s query", name)
		}
		params := map[string]string{}
		for _, m := range []map[string]string{filters, rng, extra} {
			for k, v := range m {
				params[k] = v
			}
		}
		t, err := q.QueryCookbook(ctx, cq, params)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		idx := make(map[string]int, len(t.Columns))
		for i, c := range t.Columns {
			idx[c] = i
		}
		for i, values := range t.Rows {
			if err := row(&reader{idx: idx, row: values}); err != nil {
				return fmt.Errorf("%s: row %d: %w", name, i+1, err)
			}
		}
		return nil
	}
	err := run("report_cells", map[string]string{"bucket_seconds": secs}, func(r *reader) error {
		s.AddCell(Cell{Evaluator: r.str("evaluator"), Model: r.str("model"), TaskType: r.str("task_type"),
			Start: r.time("bucket"), Scored: r.int("scored"), ParseFailures: r.int("parse_failures"),
			JudgeErrors: r.int("judge_errors"), Sum: r.float("sum_score"), SumSquares: r.float("sum_squares"),
			Skipped: r.int("skipped")})
		return r.err
	})
	if err != nil {
		return err
	}
	err = run("report_judge_cells", map[string]string{"bucket_seconds": secs}, func(r *reader) error {
		s.AddJudgeCell(JudgeCell{Judge: r.str("judge"), Start: r.time("bucket"), OK: r.int("ok"),
			ParseFailures: r.int("parse_failures"), JudgeErrors: r.int("judge_errors")})
		return r.err
	})
	if err != nil {
		return err
	}
	err = run("report_worst", map[string]string{"limit": strconv.Itoa(worstN)}, func(r *reader) error {
		s.AddWorst(Row{EventTime: r.time("event_time"), Evaluator: r.str("evaluator"), Model: r.str("model"),
			App: r.str("app"), RecordID: r.str("record_id"), Judge: r.str("judge"), Label: r.str("label"),
			Explanation: r.str("explanation"), Score: r.float("score")})
		return r.err
	})
	if err != nil {
		return err
	}
	err = run("report_pairwise", nil, func(r *reader) error {
		s.AddPairwise(LabelCount{Evaluator: r.str("evaluator"), Model: r.str("model"), Label: r.str("label"), Rows: r.int("verdicts")})
		return r.err
	})
	if err != nil {
		return err
	}
	return run("alerts_in_range", map[string]string{"limit": strconv.Itoa(maxAlerts + 1)}, func(r *reader) error {
		s.AddAlert(Alert{ID: r.str("alert_id"), Rule: r.str("rule"), Evaluator: r.str("evaluator"), Model: r.str("model"),
			App: r.str("app"), Judge: r.str("judge"), State: r.str("state"), Severity: r.str("severity"),
			Message: r.str("message"), Observed: r.float("observed"), Expected: r.float("expected"),
			Low: r.float("interval_low"), High: r.float("interval_high"), SampleSize: r.int("sample_size"),
			Since: r.time("since"), UpdatedAt: r.time("updated_at")})
		return r.err
	})
}

// reader reads the named columns of one row; the first problem is kept in err and later
// reads return zero values.
type reader struct {
	idx map[string]int
	row []any
	err error
}

var errNoColumn = errors.New("no such column")

func (r *reader) value(name string) any {
	i, ok := r.idx[name]
	if !ok || i >= len(r.row) {
		r.fail(fmt.Errorf("%s: %w", name, errNoColumn))
		return nil
	}
	return r.row[i]
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) str(name string) string {
	switch v := r.value(name).(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		r.fail(fmt.Errorf("%s: %T is not a string", name, v))
		return ""
	}
}

func (r *reader) time(name string) time.Time {
	switch v := r.value(name).(type) {
	case time.Time:
		return v.UTC()
	case nil:
		return time.Time{}
	default:
		r.fail(fmt.Errorf("%s: %T is not a time", name, v))
		return time.Time{}
	}
}

// float reads any number; a nullable column's NULL (a nil pointer) reads as NaN.
func (r *reader) float(name string) float64 {
	v := r.value(name)
	if v == nil {
		return math.NaN()
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return math.NaN()
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	}
	r.fail(fmt.Errorf("%s: %T is not a number", name, v))
	return 0
}

// int reads a count: a whole number from 0 to 2^63−1.
func (r *reader) int(name string) int64 {
	v := r.value(name)
	if v == nil {
		return 0
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n := rv.Int(); n >= 0 {
			return n
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if n := rv.Uint(); n <= math.MaxInt64 {
			return int64(n)
		}
	case reflect.Float32, reflect.Float64:
		if f := rv.Float(); f >= 0 && f <= math.MaxInt64 && f == math.Trunc(f) {
			return int64(f)
		}
	}
	r.fail(fmt.Errorf("%s: %v is not a count", name, v))
	return 0
}
