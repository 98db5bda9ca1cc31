package report

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/internal/report/htmlreport"
	"raterd/sinks/clickhouse"
)

// ---------------------------------------------------------------------------------------
// Running queries

// resultTable is a query answer: column names and rows of normalised cells (nil, string,
// int64, uint64, float64, bool, time.Time in UTC, or []any of those).
type resultTable struct {
	Columns []string
	Rows    [][]any
}

// col returns the index of the named column, or -1.
func (t *resultTable) col(name string) int { return slices.Index(t.Columns, name) }

// connect opens ClickHouse as the connection flags say.
func (c reportCmd) connect(ctx context.Context, f *reportFlags) (driver.Conn, clickhouse.Config, error) {
	cfg, err := f.ch.resolve(c.getenv)
	if err != nil {
		return nil, cfg, err
	}
	conn, err := clickhouse.Open(ctx, cfg)
	return conn, cfg, err
}

// runQuery connects within the command's timeout, runs one cookbook query and closes.
func (c reportCmd) runQuery(ctx context.Context, f *reportFlags, q clickhouse.CookbookQuery, params map[string]string) (*resultTable, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	conn, cfg, err := c.connect(ctx, f)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return runCookbook(ctx, conn, cfg.Database, q, params)
}

// runCookbook renders q with params for the database and runs it.
func runCookbook(ctx context.Context, conn driver.Conn, db string, q clickhouse.CookbookQuery, params map[string]string) (*resultTable, error) {
	sql, err := q.Render(db, params)
	if err != nil {
		return nil, err
	}
	t, err := scanTable(ctx, conn, sql)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", q.Name, err)
	}
	return t, nil
}

// scanTable runs sql and reads every row generically (htmlreport.ScanQuery), each value
// normalized into a cell.
func scanTable(ctx context.Context, conn driver.Conn, sql string) (*resultTable, error) {
	raw, err := htmlreport.ScanQuery(ctx, conn, sql)
	if err != nil {
		return nil, err
	}
	t := &resultTable{Columns: raw.Columns, Rows: raw.Rows}
	for _, row := range t.Rows {
		for i, v := range row {
			row[i] = normalizeValue(reflect.ValueOf(v))
		}
	}
	return t, nil
}

// normalizeValue turns a scanned value into a cell (see resultTable).
func normalizeValue(v reflect.Value) any {
	if !v.IsValid() { // a nil interface
		return nil
	}
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if t, ok := v.Interface().(time.Time); ok {
		return t.UTC()
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return v.Float()
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 && v.Kind() == reflect.Slice {
			return string(v.Bytes())
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = normalizeValue(v.Index(i))
		}
		return out
	}
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprint(v.Interface())
}

// ---------------------------------------------------------------------------------------
// Output

// formatFloat formats a number for the table: 3 decimals; nan, inf, -inf.
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	s := strconv.FormatFloat(f, 'f', 3, 64)
	if s == "-0.000" {
		s = "0.000"
	}
	return s
}

// exactFloat formats a number for csv and json: the shortest text that reads back as the
// same float64, without an exponent in the usual range; nan, inf, -inf.
func exactFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// tableCell formats a cell for the table; numeric reports whether it is right-aligned.
func tableCell(v any) (s string, numeric bool) {
	switch x := v.(type) {
	case nil:
		return "null", false
	case string:
		if strings.ContainsFunc(x, unicode.IsControl) || !utf8.ValidString(x) {
			q := strconv.Quote(x)
			return q[1 : len(q)-1], false
		}
		return x, false
	case bool:
		return strconv.FormatBool(x), false
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		return formatFloat(x), true
	case time.Time:
		return x.UTC().Format(time.DateTime), false
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i], _ = tableCell(e)
		}
		return "[" + strings.Join(parts, ", ") + "]", false
	}
	return fmt.Sprint(v), false
}

// csvCell formats a cell for csv: numbers exact, times RFC 3339, arrays as JSON.
func csvCell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return exactFloat(x)
	case time.Time:
		return rfc3339(x)
	case []any:
		var b strings.Builder
		writeJSONValue(&b, x)
		return b.String()
	}
	s, _ := tableCell(v)
	return s
}

// writeJSONValue writes a cell as JSON: numbers exact, nan/inf as strings, times RFC 3339.
func writeJSONValue(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case uint64:
		b.WriteString(strconv.FormatUint(x, 10))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			writeJSONString(b, exactFloat(x))
		} else {
			b.WriteString(exactFloat(x))
		}
	case time.Time:
		writeJSONString(b, rfc3339(x))
	case string:
		writeJSONString(b, x)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONValue(b, e)
		}
		b.WriteByte(']')
	default:
		writeJSONString(b, fmt.Sprint(v))
	}
}

func writeJSONString(b *strings.Builder, s string) {
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	b.WriteString(strings.TrimSuffix(buf.String(), "\n"))
}

// writeTable prints t as aligned columns, numbers right-aligned, or "(no rows)".
func writeTable(w io.Writer, t *resultTable) error {
	cells := make([][]string, len(t.Rows)+1)
	cells[0] = slices.Clone(t.Columns)
	right := make([]bool, len(t.Columns))
	for c := range right {
		right[c] = len(t.Rows) > 0
	}
	for r, row := range t.Rows {
		cells[r+1] = make([]string, len(row))
		for c, v := range row {
			s, numeric := tableCell(v)
			cells[r+1][c] = s
			if v != nil && !numeric {
				right[c] = false
			}
		}
	}
	writeAligned(w, cells, right)
	if len(t.Rows) == 0 {
		_, err := fmt.Fprintln(w, "(no rows)")
		return err
	}
	return nil
}

// writeAligned prints rows of cells in columns two spaces apart, padding by runes, with
// trailing blanks trimmed.
func writeAligned(w io.Writer, cells [][]string, right []bool) {
	width := make([]int, len(right))
	for _, row := range cells {
		for c, s := range row {
			width[c] = max(width[c], utf8.RuneCountInString(s))
		}
	}
	for _, row := range cells {
		var b strings.Builder
		for c, s := range row {
			if c > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[c]-utf8.RuneCountInString(s))
			if right[c] {
				b.WriteString(pad + s)
			} else {
				b.WriteString(s + pad)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// writeCSV prints t as CSV with a header row.
func writeCSV(w io.Writer, t *resultTable) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(t.Columns); err != nil {
		return err
	}
	rec := make([]string, len(t.Columns))
	for _, row := range t.Rows {
		for i, v := range row {
			rec[i] = csvCell(v)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeJSON prints t as a JSON array of objects, one per line, keys in column order.
func writeJSON(w io.Writer, t *resultTable) error {
	if len(t.Rows) == 0 {
		_, err := fmt.Fprintln(w, "[]")
		return err
	}
	var b strings.Builder
	b.WriteString("[\n")
	for r, row := range t.Rows {
		b.WriteString("  {")
		for c, v := range row {
			if c > 0 {
				b.WriteString(", ")
			}
			writeJSONString(&b, t.Columns[c])
			b.WriteString(": ")
			writeJSONValue(&b, v)
		}
		b.WriteString("}")
		if r < len(t.Rows)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeResult prints t in the chosen format.
func writeResult(w io.Writer, format outputFormat, t *resultTable) error {
	switch format {
	case formatCSV:
		return writeCSV(w, t)
	case formatJSON:
		return writeJSON(w, t)
	}
	return writeTable(w, t)
}
