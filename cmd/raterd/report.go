package main

// raterd report: the SQL cookbook (clickhouse.Cookbook) as a command. Every statement sent to
// ClickHouse is a clickhouse.CookbookQuery rendered by its Render method, so parameters are
// validated and quoted by the cookbook's rules and nothing typed on the command line is
// concatenated into SQL unchecked.

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/sinks/clickhouse"
)

// reportCmd runs `raterd report`. Its fields are the process's surroundings, injected so
// that tests can fix the clock and the environment.
type reportCmd struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
}

func cmdReport(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signalContext(stderr)
	defer stop()
	return reportCmd{stdout: stdout, stderr: stderr, getenv: os.Getenv, now: time.Now}.run(ctx, args)
}

// flagError is a command-line mistake found while reading the flags; its message names the
// flag. It matches errUsage, so runMain exits with status 2.
type flagError struct{ msg string }

func (e *flagError) Error() string        { return e.msg }
func (e *flagError) Is(target error) bool { return target == errUsage }

func flagErrorf(format string, args ...any) error {
	return &flagError{msg: fmt.Sprintf(format, args...)}
}

// run executes one report command. A command-line mistake is printed to stderr with a hint
// and returned as a *flagError; other errors are returned for the caller to print.
func (c reportCmd) run(ctx context.Context, args []string) error {
	err := c.dispatch(ctx, args)
	var fe *flagError
	if errors.As(err, &fe) {
		sub := "report"
		if len(args) > 0 {
			if _, isQuery := clickhouse.CookbookQueryNamed(args[0]); isQuery || reportSubcommands[args[0]] {
				sub += " " + args[0]
			}
		}
		fmt.Fprintf(c.stderr, "raterd report: %s\nRun 'raterd %s --help' for the flags.\n", fe.msg, sub)
	}
	return err
}

// reportSubcommands are the names `raterd report` takes besides cookbook query names.
var reportSubcommands = map[string]bool{"trend": true, "compare": true, "list": true}

func (c reportCmd) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, reportHelp(""))
		return errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(c.stdout, reportHelp(""))
		return nil
	case "list":
		return c.list(args[1:])
	case "trend":
		return c.trend(ctx, args[1:])
	case "compare":
		return c.compare(ctx, args[1:])
	}
	if strings.HasPrefix(args[0], "-") {
		return flagErrorf("%s: the first argument is a subcommand (trend, compare, list) or a cookbook query name, not a flag", args[0])
	}
	q, ok := clickhouse.CookbookQueryNamed(args[0])
	if !ok {
		return flagErrorf("unknown report %q: want trend, compare, list or a cookbook query (%s)", args[0], strings.Join(cookbookNames(), ", "))
	}
	return c.query(ctx, q, args[1:])
}

func cookbookNames() []string {
	var names []string
	for _, q := range clickhouse.Cookbook() {
		names = append(names, q.Name)
	}
	return names
}

// ---------------------------------------------------------------------------------------
// Flags

// clickHouseFlags are the connection flags that report shares with migrate.
type clickHouseFlags struct {
	config, addr, database string
}

func (f *clickHouseFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "path of the YAML config `file` (its clickhouse section and env overrides are used)")
	fs.StringVar(&f.addr, "clickhouse", "", "ClickHouse native `host:port` address(es), comma-separated; overrides the config and RATERD_CLICKHOUSE_ADDR")
	fs.StringVar(&f.database, "database", "", "`database` holding the scores table (default from the config, else raterd)")
}

// resolve returns the validated ClickHouse config these flags select, as `raterd migrate`
// does: the config file's clickhouse section (with its env overrides) when --config is
// given, else RATERD_CLICKHOUSE_ADDR (and RATERD_CLICKHOUSE_USER / _PASSWORD); then
// --clickhouse and --database on top.
func (f *clickHouseFlags) resolve(getenv func(string) string) (clickhouse.Config, error) {
	var cfg clickhouse.Config
	if f.config != "" {
		full, err := LoadConfig(f.config, getenv)
		if err != nil {
			return cfg, fmt.Errorf("--config: %w", err)
		}
		if full.ClickHouse != nil {
			cfg = *full.ClickHouse
		}
	} else {
		if v := getenv("RATERD_CLICKHOUSE_ADDR"); v != "" {
			cfg.Addrs = splitList(v)
		}
		if v := getenv("RATERD_CLICKHOUSE_USER"); v != "" {
			cfg.Username = v
		}
		if v := getenv("RATERD_CLICKHOUSE_PASSWORD"); v != "" {
			cfg.Password = v
		}
	}
	if f.addr != "" {
		cfg.Addrs = splitList(f.addr)
		if len(cfg.Addrs) == 0 {
			return cfg, flagErrorf("--clickhouse: %q holds no address", f.addr)
		}
		for _, a := range cfg.Addrs {
			if i := strings.LastIndexByte(a, ':'); i <= 0 || i == len(a)-1 {
				return cfg, flagErrorf("--clickhouse: %q is not host:port", a)
			}
		}
	}
	if f.database != "" {
		if !identifierRE.MatchString(f.database) {
			return cfg, flagErrorf("--database: %q is not a plain identifier", f.database)
		}
		cfg.Database = f.database
	}
	if len(cfg.Addrs) == 0 {
		return cfg, flagErrorf("no ClickHouse address: pass --clickhouse, --config or set RATERD_CLICKHOUSE_ADDR")
	}
	if err := cfg.Validate("clickhouse"); err != nil {
		return cfg, err
	}
	return cfg, nil
}

var identifierRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// outputFormat is the value of --format.
type outputFormat string

const (
	formatTable outputFormat = "table"
	formatCSV   outputFormat = "csv"
	formatJSON  outputFormat = "json"
)

func (f *outputFormat) String() string { return string(*f) }

func (f *outputFormat) Set(v string) error {
	switch outputFormat(v) {
	case formatTable, formatCSV, formatJSON:
		*f = outputFormat(v)
		return nil
	}
	return fmt.Errorf("%q is not table, csv or json", v)
}

// paramFlag collects repeated --param name=value.
type paramFlag map[string]string

func (p paramFlag) String() string { return "" }

func (p paramFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q is not name=value", v)
	}
	if _, dup := p[name]; dup {
		return fmt.Errorf("parameter %s is given twice", name)
	}
	p[name] = value
	return nil
}

// reportFlags holds the values of every report flag; each subcommand registers its subset.
type reportFlags struct {
	ch      clickHouseFlags
	format  outputFormat
	timeout time.Duration

	evaluator, model, app, from, to string
	modelA, modelB                  string
	windowA, windowB                string
	params                          paramFlag
}

// registerCommon registers the connection and output flags every querying subcommand has.
func (f *reportFlags) registerCommon(fs *flag.FlagSet) {
	f.ch.register(fs)
	f.registerFormat(fs)
	fs.DurationVar(&f.timeout, "timeout", time.Minute, "bound on connecting and running the query")
}

func (f *reportFlags) registerFormat(fs *flag.FlagSet) {
	f.format = formatTable
	fs.Var(&f.format, "format", "output `format`: table, csv or json")
}

func (f *reportFlags) registerTrend(fs *flag.FlagSet) {
	fs.StringVar(&f.evaluator, "evaluator", "", "`name` of the evaluator whose scores to report (required)")
	fs.StringVar(&f.model, "model", "", "only the model of this `name` (default: every model)")
	fs.StringVar(&f.app, "app", "", "only the app of this `name` (default: every app)")
	fs.StringVar(&f.from, "from", "", "start `time` of the range, inclusive (required); see Times")
	fs.StringVar(&f.to, "to", "now", "end `time` of the range, exclusive; see Times")
}

func (f *reportFlags) registerCompare(fs *flag.FlagSet) {
	fs.StringVar(&f.evaluator, "evaluator", "", "`name` of the evaluator whose scores to compare (required)")
	fs.StringVar(&f.modelA, "model-a", "", "`name` of model A, the baseline, when comparing two models")
	fs.StringVar(&f.modelB, "model-b", "", "`name` of model B, compared with A (difference = B − A)")
	fs.StringVar(&f.from, "from", "", "start `time` of the range of a two-model comparison, inclusive (required there); see Times")
	fs.StringVar(&f.to, "to", "now", "end `time` of the range of a two-model comparison, exclusive; see Times")
	fs.StringVar(&f.model, "model", "", "`name` of the one model whose time windows --window-a and --window-b compare")
	fs.StringVar(&f.windowA, "window-a", "", "time window A, the baseline, as `FROM,TO` (TO empty: now)")
	fs.StringVar(&f.windowB, "window-b", "", "time window B as `FROM,TO`, compared with A (difference = B − A)")
}

func (f *reportFlags) registerQuery(fs *flag.FlagSet) {
	f.params = paramFlag{}
	fs.Var(f.params, "param", "a query parameter as `name=value`; repeat for each (see raterd report list)")
}

// parseReportFlags parses args into a fresh flag set built by register. --help prints the
// subcommand's help to stdout and returns flag.ErrHelp; a mistake returns a *flagError.
func (c reportCmd) parseReportFlags(sub string, args []string, register func(*flag.FlagSet)) error {
	fs := flag.NewFlagSet("report "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(c.stdout, reportHelp(sub))
			return err
		}
		msg := strings.Replace(err.Error(), "flag -", "flag --", 1)
		return &flagError{msg: strings.Replace(msg, "defined: -", "defined: --", 1)}
	}
	if fs.NArg() > 0 {
		return flagErrorf("unexpected argument %q (flags take the form --name value)", fs.Arg(0))
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// Times

var relativeDays = regexp.MustCompile(`^-([0-9]{1,6})([dw])$`)

// maxRelativeDays keeps -Nd and -Nw within time.Duration; any more reaches before 1970.
const maxRelativeDays = 100000

// parseReportTime reads a time flag: "now"; a time before now, as a Go duration ("-24h",
// "-90m", "-1h30m") or in days or weeks ("-7d", "-2w"); or an absolute time in one of the
// forms clickhouse.ParseCookbookTime accepts (RFC 3339, "2006-01-02 15:04:05" or
// "2006-01-02T15:04:05" in UTC, "2006-01-02"). Relative times drop fractional seconds. The
// result is in UTC and in the DateTime range.
func parseReportTime(v string, now time.Time) (time.Time, error) {
	var t time.Time
	switch {
	case v == "now":
		t = now
	case strings.HasPrefix(v, "-"):
		var d time.Duration
		if m := relativeDays.FindStringSubmatch(v); m != nil {
			days, _ := strconv.Atoi(m[1])
			if m[2] == "w" {
				days *= 7
			}
			if days > maxRelativeDays {
				return time.Time{}, fmt.Errorf("%q is before 1970, outside the DateTime range", v)
			}
			d = time.Duration(days) * 24 * time.Hour
		} else {
			pd, err := time.ParseDuration(v[1:])
			if err != nil || strings.HasPrefix(v[1:], "-") || strings.HasPrefix(v[1:], "+") {
				return time.Time{}, fmt.Errorf("%q is not a relative time (want e.g. -24h, -90m, -1h30m, -7d, -2w)", v)
			}
			d = pd
		}
		t = now.Add(-d)
	default:
		pt, err := clickhouse.ParseCookbookTime(v)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w; or now, or relative: -24h, -7d", err)
		}
		return pt, nil
	}
	t = t.UTC().Truncate(time.Second)
	// The same range check as Render's, on the canonical form.
	if _, err := clickhouse.ParseCookbookTime(t.Format(time.RFC3339)); err != nil {
		return time.Time{}, fmt.Errorf("%q: %w", v, err)
	}
	return t, nil
}

// timeRange reads --from and --to (names for the messages) and checks from < to.
func timeRange(fromFlag, from, toFlag, to string, now time.Time) (time.Time, time.Time, error) {
	if from == "" {
		return time.Time{}, time.Time{}, flagErrorf("%s is required", fromFlag)
	}
	f, err := parseReportTime(from, now)
	if err != nil {
		return time.Time{}, time.Time{}, flagErrorf("%s: %v", fromFlag, err)
	}
	if to == "" {
		to = "now"
	}
	t, err := parseReportTime(to, now)
	if err != nil {
		return time.Time{}, time.Time{}, flagErrorf("%s: %v", toFlag, err)
	}
	if !f.Before(t) {
		return time.Time{}, time.Time{}, flagErrorf("%s %s is not before %s %s", fromFlag, f.Format(time.RFC3339), toFlag, t.Format(time.RFC3339))
	}
	return f, t, nil
}

// parseWindow reads a --window-a/--window-b value "FROM,TO" (TO empty: now).
func parseWindow(name, v string, now time.Time) (time.Time, time.Time, error) {
	if v == "" {
		return time.Time{}, time.Time{}, flagErrorf("%s is required", name)
	}
	from, to, ok := strings.Cut(v, ",")
	if !ok {
		return time.Time{}, time.Time{}, flagErrorf("%s: %q is not FROM,TO", name, v)
	}
	return timeRange(name+" FROM", strings.TrimSpace(from), name+" TO", strings.TrimSpace(to), now)
}

// requireText checks a required string flag.
func requireText(name, v string) error {
	if v == "" {
		return flagErrorf("%s is required", name)
	}
	return checkText(name, v)
}

// checkText rejects what Render would: a value that is not UTF-8.
func checkText(name, v string) error {
	if !utf8.ValidString(v) {
		return flagErrorf("%s: %q is not valid UTF-8", name, v)
	}
	return nil
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

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

// scanTable runs sql and reads every row generically: the column names and Go types come
// from the driver's column types.
func scanTable(ctx context.Context, conn driver.Conn, sql string) (*resultTable, error) {
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	t := &resultTable{Columns: make([]string, len(types))}
	for i, ct := range types {
		t.Columns[i] = ct.Name()
	}
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		row := make([]any, len(dest))
		for i, d := range dest {
			row[i] = normalizeValue(reflect.ValueOf(d).Elem())
		}
		t.Rows = append(t.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// normalizeValue turns a scanned value into a cell (see resultTable).
func normalizeValue(v reflect.Value) any {
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

// ---------------------------------------------------------------------------------------
// report list

func (c reportCmd) list(args []string) error {
	var f reportFlags
	if err := c.parseReportFlags("list", args, f.registerFormat); err != nil {
		return err
	}
	if f.format != formatTable {
		t := &resultTable{Columns: []string{"name", "title", "params"}}
		for _, q := range clickhouse.Cookbook() {
			t.Rows = append(t.Rows, []any{q.Name, q.Title, strings.Join(paramSignature(q), ", ")})
		}
		return writeResult(c.stdout, f.format, t)
	}
	_, err := io.WriteString(c.stdout, "Cookbook queries (docs/sql.md); run one with raterd report <name> --param name=value ...\n\n"+cookbookListing())
	return err
}

// paramSignature lists q's parameters as "name Type", then its optional filters as
// "[name Type]".
func paramSignature(q clickhouse.CookbookQuery) []string {
	out := make([]string, 0, len(q.Params)+len(q.Filters))
	for _, p := range q.Params {
		out = append(out, p+" "+q.ParamType(p))
	}
	for _, p := range q.ActiveFilters() {
		out = append(out, "["+p+" "+q.ParamType(p)+"]")
	}
	return out
}

// wrapText fills each paragraph of s (separated by blank lines) to width columns.
func wrapText(s string, width int) string {
	var out []string
	for _, para := range strings.Split(s, "\n\n") {
		var lines []string
		line := ""
		for _, word := range strings.Fields(para) {
			if line != "" && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > width {
				lines = append(lines, line)
				line = ""
			}
			if line != "" {
				line += " "
			}
			line += word
		}
		if line != "" {
			lines = append(lines, line)
		}
		out = append(out, strings.Join(lines, "\n"))
	}
	return strings.Join(out, "\n\n")
}

// cookbookListing is the text of `raterd report list` and of the help's query section.
func cookbookListing() string {
	var b strings.Builder
	for _, q := range clickhouse.Cookbook() {
		fmt.Fprintf(&b, "  %-24s %s\n", q.Name, q.Title)
		fmt.Fprintf(&b, "  %-24s params: %s\n", "", strings.Join(paramSignature(q), ", "))
	}
	return b.String()
}

// ---------------------------------------------------------------------------------------
// report <query>

func (c reportCmd) query(ctx context.Context, q clickhouse.CookbookQuery, args []string) error {
	var f reportFlags
	if err := c.parseReportFlags(q.Name, args, func(fs *flag.FlagSet) {
		f.registerQuery(fs)
		f.registerCommon(fs)
	}); err != nil {
		return err
	}
	params, err := queryParams(q, f.params, c.now())
	if err != nil {
		return err
	}
	if _, err := q.Render("db", params); err != nil { // catch bad values before connecting
		return flagErrorf("--param: %v", err)
	}
	t, err := c.runQuery(ctx, &f, q, params)
	if err != nil {
		return err
	}
	if f.format == formatTable {
		fmt.Fprintf(c.stdout, "%s (%s)\n\n", q.Title, q.Name)
	}
	return writeResult(c.stdout, f.format, t)
}

// queryParams checks the --param values against q: every parameter given once, none
// unknown, optional filters taken when given; DateTime values also read relative times and
// "now" (see parseReportTime), and a DateTime parameter named "to" defaults to now.
func queryParams(q clickhouse.CookbookQuery, given map[string]string, now time.Time) (map[string]string, error) {
	for name := range given {
		if q.ParamType(name) == "" {
			return nil, flagErrorf("--param %s: %s takes no such parameter (it takes %s)", name, q.Name, strings.Join(paramSignature(q), ", "))
		}
	}
	params := make(map[string]string, len(q.Params))
	var missing []string
	for _, name := range q.Params {
		v, ok := given[name]
		typ := q.ParamType(name)
		if !ok && typ == clickhouse.ParamDateTime && name == "to" {
			v, ok = "now", true
		}
		if !ok {
			missing = append(missing, name+"="+typ)
			continue
		}
		if typ == clickhouse.ParamDateTime {
			t, err := parseReportTime(v, now)
			if err != nil {
				return nil, flagErrorf("--param %s: %v", name, err)
			}
			v = rfc3339(t)
		}
		params[name] = v
	}
	for _, name := range q.ActiveFilters() {
		v, ok := given[name]
		if !ok {
			continue
		}
		if q.ParamType(name) == clickhouse.ParamDateTime {
			t, err := parseReportTime(v, now)
			if err != nil {
				return nil, flagErrorf("--param %s: %v", name, err)
			}
			v = rfc3339(t)
		}
		params[name] = v
	}
	if len(missing) > 0 {
		return nil, flagErrorf("--param: %s needs %s", q.Name, strings.Join(missing, ", "))
	}
	return params, nil
}

// ---------------------------------------------------------------------------------------
// report trend

// trendQuery returns the cookbook's score_trend taking its model and app filters as
// asked: a filter that is not asked for is left out of the query, and its parameter is
// refused. model and app are sorting-key columns that every replayed copy of a row shares,
// so the filtered query stays exact under replays.
func trendQuery(model, app bool) (clickhouse.CookbookQuery, error) {
	q, ok := clickhouse.CookbookQueryNamed("score_trend")
	if !ok {
		return q, errors.New("the cookbook has no score_trend query")
	}
	var filters []string
	if model {
		filters = append(filters, "model")
	}
	if app {
		filters = append(filters, "app")
	}
	return q.WithFilters(filters...)
}

func (c reportCmd) trend(ctx context.Context, args []string) error {
	var f reportFlags
	if err := c.parseReportFlags("trend", args, func(fs *flag.FlagSet) {
		f.registerTrend(fs)
		f.registerCommon(fs)
	}); err != nil {
		return err
	}
	if err := requireText("--evaluator", f.evaluator); err != nil {
		return err
	}
	if err := checkText("--model", f.model); err != nil {
		return err
	}
	if err := checkText("--app", f.app); err != nil {
		return err
	}
	from, to, err := timeRange("--from", f.from, "--to", f.to, c.now())
	if err != nil {
		return err
	}
	q, err := trendQuery(f.model != "", f.app != "")
	if err != nil {
		return err
	}
	params := map[string]string{"evaluator": f.evaluator, "from": rfc3339(from), "to": rfc3339(to)}
	if f.model != "" {
		params["model"] = f.model
	}
	if f.app != "" {
		params["app"] = f.app
	}
	t, err := c.runQuery(ctx, &f, q, params)
	if err != nil {
		return err
	}
	if f.format != formatTable {
		return writeResult(c.stdout, f.format, t)
	}
	points, err := trendPoints(t)
	if err != nil {
		return err
	}
	return renderTrend(c.stdout, trendSpec{Evaluator: f.evaluator, Model: f.model, App: f.app, From: from, To: to}, points)
}

// trendPoint is one row of score_trend: one model in one hour.
type trendPoint struct {
	Hour           time.Time
	Model          string
	Scored, Failed uint64
	Mean           float64 // over the scored rows; nan when none
}

// trendPoints reads score_trend's answer.
func trendPoints(t *resultTable) ([]trendPoint, error) {
	idx := map[string]int{}
	for _, name := range []string{"hour", "model", "scored", "failed", "mean_score"} {
		i := t.col(name)
		if i < 0 {
			return nil, fmt.Errorf("score_trend: no %s column in %v", name, t.Columns)
		}
		idx[name] = i
	}
	points := make([]trendPoint, 0, len(t.Rows))
	for _, row := range t.Rows {
		var p trendPoint
		var ok1, ok2, ok3, ok4, ok5 bool
		p.Hour, ok1 = row[idx["hour"]].(time.Time)
		p.Model, ok2 = row[idx["model"]].(string)
		p.Scored, ok3 = cellUint(row[idx["scored"]])
		p.Failed, ok4 = cellUint(row[idx["failed"]])
		p.Mean, ok5 = cellFloat(row[idx["mean_score"]])
		if !(ok1 && ok2 && ok3 && ok4 && ok5) {
			return nil, fmt.Errorf("score_trend: unexpected row %v", row)
		}
		points = append(points, p)
	}
	return points, nil
}

func cellUint(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint64:
		return x, true
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

func cellFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case nil:
		return math.NaN(), true
	}
	return 0, false
}

// trendSpec says what a trend covers, for its heading.
type trendSpec struct {
	Evaluator, Model, App string
	From, To              time.Time
}

// sparkLevels are the marks of a sparkline, lowest first.
var sparkLevels = []rune("▁▂▃▄▅▆▇█")

// maxSparkMarks bounds the sparkline width; longer ranges get one mark per several hours.
const maxSparkMarks = 72

// sparkBucket returns the hours per mark for a range of n hours: 1, 2, 3, 4, 6, 8, 12, or
// whole days, the smallest that keeps the line within maxSparkMarks.
func sparkBucket(hours int) int {
	for _, b := range []int{1, 2, 3, 4, 6, 8, 12, 24} {
		if (hours+b-1)/b <= maxSparkMarks {
			return b
		}
	}
	days := (hours + 24*maxSparkMarks - 1) / (24 * maxSparkMarks)
	return 24 * days
}

// sparkline renders values on the scale [lo, hi]; nan is a gap (a blank).
func sparkline(values []float64, lo, hi float64) string {
	var b strings.Builder
	for _, v := range values {
		switch {
		case math.IsNaN(v):
			b.WriteRune(' ')
		case !(hi > lo):
			b.WriteRune(sparkLevels[len(sparkLevels)/2-1])
		default:
			i := int(math.Floor((v - lo) / (hi - lo) * float64(len(sparkLevels))))
			b.WriteRune(sparkLevels[min(max(i, 0), len(sparkLevels)-1)])
		}
	}
	return b.String()
}

// renderTrend prints the trend table: per model the scored and failed rows, the mean score
// and a sparkline of the mean per hour (or per bucket of hours, weighted by scored rows),
// all models on one scale.
func renderTrend(w io.Writer, spec trendSpec, points []trendPoint) error {
	start := spec.From.UTC().Truncate(time.Hour)
	hours := max(int((spec.To.Sub(start)+time.Hour-1)/time.Hour), 1)
	bucket := sparkBucket(hours)
	marks := (hours + bucket - 1) / bucket

	type series struct {
		scored, failed uint64
		sum            float64 // Σ mean × scored over the hours
		bSum           []float64
		bN             []uint64
	}
	byModel := map[string]*series{}
	for _, p := range points {
		s := byModel[p.Model]
		if s == nil {
			s = &series{bSum: make([]float64, marks), bN: make([]uint64, marks)}
			byModel[p.Model] = s
		}
		s.scored += p.Scored
		s.failed += p.Failed
		if p.Scored == 0 || math.IsNaN(p.Mean) {
			continue
		}
		s.sum += p.Mean * float64(p.Scored)
		i := int(p.Hour.Sub(start) / time.Hour / time.Duration(bucket))
		if i >= 0 && i < marks {
			s.bSum[i] += p.Mean * float64(p.Scored)
			s.bN[i] += p.Scored
		}
	}
	models := make([]string, 0, len(byModel))
	for m := range byModel {
		models = append(models, m)
	}
	sort.Strings(models)

	lo, hi := math.Inf(1), math.Inf(-1)
	means := map[string][]float64{}
	for _, m := range models {
		s := byModel[m]
		vals := make([]float64, marks)
		for i := range vals {
			vals[i] = math.NaN()
			if s.bN[i] > 0 {
				vals[i] = s.bSum[i] / float64(s.bN[i])
				lo, hi = min(lo, vals[i]), max(hi, vals[i])
			}
		}
		means[m] = vals
	}

	var filters []string
	if spec.Model != "" {
		filters = append(filters, "model "+spec.Model)
	}
	if spec.App != "" {
		filters = append(filters, "app "+spec.App)
	}
	heading := fmt.Sprintf("score trend of %s, %s to %s UTC", spec.Evaluator,
		spec.From.UTC().Format(time.DateTime), spec.To.UTC().Format(time.DateTime))
	if len(filters) > 0 {
		heading += " (" + strings.Join(filters, ", ") + ")"
	}
	fmt.Fprintln(w, heading)
	if len(models) == 0 {
		_, err := fmt.Fprintln(w, "(no rows)")
		return err
	}
	per := "hour"
	if bucket > 1 {
		per = strconv.Itoa(bucket) + " hours"
	}
	scale := "no scored rows"
	if hi >= lo {
		scale = fmt.Sprintf("%c %s … %c %s", sparkLevels[0], formatFloat(lo), sparkLevels[len(sparkLevels)-1], formatFloat(hi))
	}
	fmt.Fprintf(w, "trend: mean score per %s from %s UTC, blank without scored rows; scale %s\n\n",
		per, start.Format("2006-01-02 15:04"), scale)

	cells := [][]string{{"model", "scored", "failed", "mean", "trend"}}
	for _, m := range models {
		s := byModel[m]
		mean := math.NaN()
		if s.scored > 0 {
			mean = s.sum / float64(s.scored)
		}
		cells = append(cells, []string{m, strconv.FormatUint(s.scored, 10), strconv.FormatUint(s.failed, 10),
			formatFloat(mean), sparkline(means[m], lo, hi)})
	}
	writeAligned(w, cells, []bool{false, true, true, true, false})
	return nil
}

// ---------------------------------------------------------------------------------------
// report compare

// welchResult is the comparison of two samples, as compare_models computes it.
type welchResult struct {
	NA, NB                       uint64
	MeanA, MeanB, Diff           float64
	StdErr, DF, TCrit, Low, High float64
}

// welch finishes a comparison from the counts, means and sample variances of A and B with
// compare_models' formulas: diff = mean_b − mean_a, the Welch standard error and degrees
// of freedom, and t_crit from the same Cornish–Fisher expansion and small-df table. With
// fewer than 2 rows on a side the interval is nan.
func welch(sa, sb sampleStats) welchResult {
	nA, nB, varA, varB := sa.N, sb.N, sa.Variance, sb.Variance
	if nA < 2 {
		varA = math.NaN()
	}
	if nB < 2 {
		varB = math.NaN()
	}
	a, b := varA/float64(nA), varB/float64(nB)
	r := welchResult{NA: nA, NB: nB, MeanA: sa.Mean, MeanB: sb.Mean, Diff: sb.Mean - sa.Mean}
	r.StdErr = math.Sqrt(a + b)
	r.DF = (a + b) * (a + b) / (a*a/(float64(nA)-1) + b*b/(float64(nB)-1))
	switch df := r.DF; {
	case df < 1:
		r.TCrit = math.NaN()
	case df < 2:
		r.TCrit = 12.7062
	case df < 3:
		r.TCrit = 4.3027
	default:
		r.TCrit = 1.959964 + 2.372271/df + 2.822499/(df*df) + 2.555850/(df*df*df) + 1.589534/(df*df*df*df)
	}
	r.Low = r.Diff - r.TCrit*r.StdErr
	r.High = r.Diff + r.TCrit*r.StdErr
	return r
}

// verdict says what the 95% interval of B − A means.
func verdict(low, high float64) (short, long string) {
	switch {
	case math.IsNaN(low) || math.IsNaN(high) || math.IsInf(low, 0) || math.IsInf(high, 0):
		return "undefined", "no verdict: the interval is undefined (each side needs at least 2 scored rows, and the scores some spread)"
	case low > 0:
		return "significant", "significant at 5% (the 95% CI excludes 0): B scores higher than A"
	case high < 0:
		return "significant", "significant at 5% (the 95% CI excludes 0): B scores lower than A"
	}
	return "not significant", "not significant at 5% (the 95% CI includes 0)"
}

func (c reportCmd) compare(ctx context.Context, args []string) error {
	var f reportFlags
	if err := c.parseReportFlags("compare", args, func(fs *flag.FlagSet) {
		f.registerCompare(fs)
		f.registerCommon(fs)
	}); err != nil {
		return err
	}
	if err := requireText("--evaluator", f.evaluator); err != nil {
		return err
	}
	if f.windowA != "" || f.windowB != "" {
		return c.compareWindows(ctx, &f)
	}
	if f.model != "" {
		return flagErrorf("--model compares one model over two time windows: add --window-a and --window-b (two models: --model-a, --model-b)")
	}
	if err := requireText("--model-a", f.modelA); err != nil {
		return err
	}
	if err := requireText("--model-b", f.modelB); err != nil {
		return err
	}
	if f.modelA == f.modelB {
		return flagErrorf("--model-b: %q is also --model-a; to compare one model over two time ranges use --model with --window-a and --window-b", f.modelB)
	}
	from, to, err := timeRange("--from", f.from, "--to", f.to, c.now())
	if err != nil {
		return err
	}
	q, ok := clickhouse.CookbookQueryNamed("compare_models")
	if !ok {
		return errors.New("the cookbook has no compare_models query")
	}
	t, err := c.runQuery(ctx, &f, q, map[string]string{
		"evaluator": f.evaluator, "model_a": f.modelA, "model_b": f.modelB, "from": rfc3339(from), "to": rfc3339(to),
	})
	if err != nil {
		return err
	}
	if len(t.Rows) != 1 {
		return fmt.Errorf("compare_models: %d rows, want 1", len(t.Rows))
	}
	r, err := welchFromRow(t)
	if err != nil {
		return err
	}
	short, long := verdict(r.Low, r.High)
	if f.format != formatTable {
		t.Columns = append(t.Columns, "verdict")
		t.Rows[0] = append(t.Rows[0], short)
		return writeResult(c.stdout, f.format, t)
	}
	fmt.Fprintf(c.stdout, "compare models on %s, %s to %s UTC\n\n", f.evaluator, from.Format(time.DateTime), to.Format(time.DateTime))
	side := &resultTable{Columns: []string{"", "model", "n", "mean"}, Rows: [][]any{
		{"A", f.modelA, r.NA, r.MeanA},
		{"B", f.modelB, r.NB, r.MeanB},
	}}
	return printComparison(c.stdout, side, r, long)
}

// welchFromRow reads compare_models' answer.
func welchFromRow(t *resultTable) (welchResult, error) {
	var r welchResult
	row := t.Rows[0]
	get := func(name string) (float64, error) {
		i := t.col(name)
		if i < 0 {
			return 0, fmt.Errorf("compare_models: no %s column in %v", name, t.Columns)
		}
		v, ok := cellFloat(row[i])
		if !ok {
			return 0, fmt.Errorf("compare_models: %s is %T, not a number", name, row[i])
		}
		return v, nil
	}
	fields := []struct {
		name string
		dst  *float64
	}{
		{"mean_a", &r.MeanA}, {"mean_b", &r.MeanB}, {"diff", &r.Diff}, {"std_err", &r.StdErr},
		{"welch_df", &r.DF}, {"t_crit", &r.TCrit}, {"ci95_low", &r.Low}, {"ci95_high", &r.High},
	}
	for _, fl := range fields {
		v, err := get(fl.name)
		if err != nil {
			return r, err
		}
		*fl.dst = v
	}
	na, err := get("n_a")
	if err != nil {
		return r, err
	}
	nb, err := get("n_b")
	if err != nil {
		return r, err
	}
	r.NA, r.NB = uint64(na), uint64(nb)
	return r, nil
}

// printComparison prints the sides, the difference with its interval, and the verdict.
func printComparison(w io.Writer, side *resultTable, r welchResult, long string) error {
	if err := writeTable(w, side); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ndifference B − A: %s (std. error %s, Welch df %s, t %s)\n",
		signed(r.Diff), formatFloat(r.StdErr), formatFloat(r.DF), formatFloat(r.TCrit))
	fmt.Fprintf(w, "95%% CI: [%s, %s]\n", formatFloat(r.Low), formatFloat(r.High))
	_, err := fmt.Fprintf(w, "verdict: %s\n", long)
	return err
}

// signed formats f like formatFloat with an explicit + on positive numbers.
func signed(f float64) string {
	s := formatFloat(f)
	if f > 0 && s != "0.000" && s != "inf" {
		return "+" + s
	}
	return s
}

func (c reportCmd) compareWindows(ctx context.Context, f *reportFlags) error {
	switch {
	case f.modelA != "" || f.modelB != "":
		return flagErrorf("--window-a/--window-b compare one model (--model) over two time ranges; they do not combine with --model-a/--model-b")
	case f.from != "":
		return flagErrorf("--from: with --window-a/--window-b each window gives its own time range")
	case f.to != "now":
		return flagErrorf("--to: with --window-a/--window-b each window gives its own time range")
	}
	if err := requireText("--model", f.model); err != nil {
		return err
	}
	now := c.now()
	fromA, toA, err := parseWindow("--window-a", f.windowA, now)
	if err != nil {
		return err
	}
	fromB, toB, err := parseWindow("--window-b", f.windowB, now)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	conn, cfg, err := c.connect(ctx, f)
	if err != nil {
		return err
	}
	defer conn.Close()
	var st [2]sampleStats
	for i, w := range [2][2]time.Time{{fromA, toA}, {fromB, toB}} {
		if st[i], err = windowStats(ctx, conn, cfg.Database, f.evaluator, f.model, w[0], w[1]); err != nil {
			return err
		}
	}
	r := welch(st[0], st[1])
	short, long := verdict(r.Low, r.High)
	if f.format != formatTable {
		return writeResult(c.stdout, f.format, windowTable(f.model, [4]time.Time{fromA, toA, fromB, toB}, r, short))
	}
	fmt.Fprintf(c.stdout, "compare time windows of %s on %s (UTC)\n\n", f.model, f.evaluator)
	side := &resultTable{Columns: []string{"", "from", "to", "n", "mean"}, Rows: [][]any{
		{"A", fromA, toA, r.NA, r.MeanA},
		{"B", fromB, toB, r.NB, r.MeanB},
	}}
	return printComparison(c.stdout, side, r, long)
}

// sampleStats are the scored rows of one side of a comparison: their number, mean score
// and sample variance.
type sampleStats struct {
	N        uint64
	Mean     float64
	Variance float64
}

// windowStats serves `compare --window-a --window-b`: compare_models compares two models
// over one time range and cannot compare one model over two, so the command runs the
// cookbook's score_stats, filtered to the model, once per window and finishes the interval
// in Go (welch) with compare_models' formulas.
func windowStats(ctx context.Context, conn driver.Conn, db, evaluator, model string, from, to time.Time) (sampleStats, error) {
	q, ok := clickhouse.CookbookQueryNamed("score_stats")
	if !ok {
		return sampleStats{}, errors.New("the cookbook has no score_stats query")
	}
	t, err := runCookbook(ctx, conn, db, q, map[string]string{
		"evaluator": evaluator, "model": model, "from": rfc3339(from), "to": rfc3339(to),
	})
	if err != nil {
		return sampleStats{}, err
	}
	if len(t.Rows) != 1 || len(t.Rows[0]) != 3 {
		return sampleStats{}, fmt.Errorf("%s: unexpected answer %v", q.Name, t.Rows)
	}
	n, ok1 := cellUint(t.Rows[0][0])
	mean, ok2 := cellFloat(t.Rows[0][1])
	v, ok3 := cellFloat(t.Rows[0][2])
	if !(ok1 && ok2 && ok3) {
		return sampleStats{}, fmt.Errorf("%s: unexpected answer %v", q.Name, t.Rows[0])
	}
	return sampleStats{N: n, Mean: mean, Variance: v}, nil
}

// windowTable is the csv/json answer of a window comparison: compare_models' columns with
// the windows in place of the second model.
func windowTable(model string, w [4]time.Time, r welchResult, verdict string) *resultTable {
	return &resultTable{
		Columns: []string{"model", "from_a", "to_a", "from_b", "to_b", "n_a", "n_b", "mean_a", "mean_b", "diff",
			"std_err", "welch_df", "t_crit", "ci95_low", "ci95_high", "verdict"},
		Rows: [][]any{{model, w[0], w[1], w[2], w[3], r.NA, r.NB, r.MeanA, r.MeanB, r.Diff,
			r.StdErr, r.DF, r.TCrit, r.Low, r.High, verdict}},
	}
}

// ---------------------------------------------------------------------------------------
// Help

const reportHelpIntro = `Usage:
  raterd report trend   --evaluator E --from T [--to T] [--model M] [--app A] [flags]
  raterd report compare --evaluator E --model-a A --model-b B --from T [--to T] [flags]
  raterd report compare --evaluator E --model M --window-a FROM,TO --window-b FROM,TO [flags]
  raterd report <query> --param name=value ... [flags]
  raterd report list [--format table|csv|json]

Reports on the score rows in ClickHouse with the SQL cookbook (docs/sql.md). Every query
is a cookbook statement whose parameters are validated and quoted by the cookbook's rules,
and every answer is exact while rows are being replayed.

  trend    the score trend per model per hour (cookbook score_trend, with --model and
           --app added to its WHERE clause): per model the scored and failed rows, the
           mean score, and a sparkline ▁▂▃▄▅▆▇█ of the mean per hour, all models on one
           scale (blank: an hour without scored rows; ranges over 72 hours get one mark
           per 2, 3, 4, 6, 8, 12 or 24n hours, weighted by scored rows).
           --format csv|json prints the hourly rows instead.
  compare  two models over one time range (cookbook compare_models), or one model over
           two time windows (the same statistics, per window): scored rows and mean per
           side, the difference B − A with its standard error and 95% confidence interval
           (Welch), and a verdict: "significant at 5%" when the interval excludes 0.
           --format csv|json prints one row with a verdict column.
  <query>  any cookbook query by name (see Queries), its parameters as --param name=value.
  list     the cookbook queries, their titles and parameters.
`

const reportHelpTail = `Times (--from, --to, --window-a, --window-b and DateTime parameters):
  2026-11-24T12:00:00Z   RFC 3339, any offset, whole seconds
  2026-11-24 12:00:00    UTC (also 2026-11-24T12:00:00)
  2026-11-24             midnight UTC
  now                    the current time: the default of --to, of a window's empty TO,
                         and of a query's "to" parameter
  -24h, -90m, -1h30m     that long before now (Go durations: h, m, s)
  -7d, -2w               that many days or weeks before now
  Ranges are half-open, [from, to), on the event time; tables print times in UTC.

Connection (as raterd migrate): --clickhouse wins; else the clickhouse section of --config
(with its env overrides); else RATERD_CLICKHOUSE_ADDR, with RATERD_CLICKHOUSE_USER and
RATERD_CLICKHOUSE_PASSWORD. The database is --database, else the config's, else raterd.

Output (--format): table (default; numbers to 3 decimals), csv (a header row; numbers
exact, times RFC 3339) or json (an array of objects, keys in column order). NaN and
infinities print as nan, inf and -inf in every format (JSON strings).

Exit status: 0 on success, 1 when connecting or a query fails, 2 on a command-line mistake.
`

// reportHelp is the help of `raterd report` (sub == "") or of one subcommand or query.
func reportHelp(sub string) string {
	var b strings.Builder
	var f reportFlags
	section := func(title string, register func(*flag.FlagSet)) {
		fs := flag.NewFlagSet(title, flag.ContinueOnError)
		register(fs)
		fmt.Fprintf(&b, "\n%s:\n", title)
		writeFlagDefaults(&b, fs)
	}
	switch sub {
	case "trend", "compare", "list":
		b.WriteString(strings.SplitN(reportHelpIntro, "\n\n", 2)[0] + "\n")
	case "":
		b.WriteString(reportHelpIntro)
	default:
		q, _ := clickhouse.CookbookQueryNamed(sub)
		fmt.Fprintf(&b, "Usage:\n  raterd report %s %s [flags]\n\n%s (cookbook query %s, docs/sql.md).\n\n%s\n",
			q.Name, cookbookParamsUsage(q), q.Title, q.Name, wrapText(q.Explanation, 88))
	}
	if sub == "" || sub == "trend" {
		section("Flags of trend", f.registerTrend)
	}
	if sub == "" || sub == "compare" {
		section("Flags of compare (two models: --model-a, --model-b, --from, --to; one model: --model, --window-a, --window-b)", f.registerCompare)
	}
	if sub != "" && sub != "trend" && sub != "compare" && sub != "list" || sub == "" {
		section("Flags of <query>", f.registerQuery)
	}
	if sub == "list" {
		section("Flags of list", f.registerFormat)
	} else {
		section("Connection and output flags (every subcommand but list; list takes --format)", f.registerCommon)
		b.WriteString("\n" + reportHelpTail)
	}
	if sub == "" || sub == "list" {
		b.WriteString("\nQueries (raterd report <query> --param name=value ...; docs/sql.md explains each):\n")
		b.WriteString(cookbookListing())
	}
	return b.String()
}

func cookbookParamsUsage(q clickhouse.CookbookQuery) string {
	parts := make([]string, 0, len(q.Params)+len(q.Filters))
	for _, p := range q.Params {
		parts = append(parts, "--param "+p+"="+q.ParamType(p))
	}
	for _, p := range q.ActiveFilters() {
		parts = append(parts, "[--param "+p+"="+q.ParamType(p)+"]")
	}
	return strings.Join(parts, " ")
}

// writeFlagDefaults prints a flag set's flags as --name VALUE with their usage and default.
func writeFlagDefaults(b *strings.Builder, fs *flag.FlagSet) {
	fs.VisitAll(func(fl *flag.Flag) {
		name, usage := flag.UnquoteUsage(fl)
		fmt.Fprintf(b, "  --%s %s\n", fl.Name, name)
		if fl.DefValue != "" && fl.DefValue != "[]" {
			usage += fmt.Sprintf(" (default %s)", fl.DefValue)
		}
		fmt.Fprintf(b, "        %s\n", usage)
	})
}
