package report

// raterd report: the SQL cookbook (clickhouse.Cookbook) as a command. Every statement sent to
// ClickHouse is a clickhouse.CookbookQuery rendered by its Render method, so parameters are
// validated and quoted by the cookbook's rules and nothing typed on the command line is
// concatenated into SQL unchecked.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"raterd/internal/app"
	"raterd/internal/cli"
	"raterd/internal/secret"
	"raterd/internal/validate"
	"raterd/sinks/clickhouse"
)

// reportCmd runs `raterd report`. Its fields are the process's surroundings, injected so
// that tests can fix the clock and the environment.
type reportCmd struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
}

// Main runs `raterd report` with its arguments (after "report").
func Main(args []string, stdout, stderr io.Writer) error {
	ctx, stop := cli.SignalContext(stderr)
	defer stop()
	return reportCmd{stdout: stdout, stderr: stderr, getenv: os.Getenv, now: time.Now}.run(ctx, args)
}

// run executes one report command. A command-line mistake is printed to stderr with a hint
// and returned as a *cli.FlagError; other errors are returned for the caller to print.
func (c reportCmd) run(ctx context.Context, args []string) error {
	err := c.dispatch(ctx, args)
	var fe *cli.FlagError
	if errors.As(err, &fe) {
		sub := "report"
		if len(args) > 0 {
			if _, isQuery := clickhouse.CookbookQueryNamed(args[0]); isQuery || reportSubcommands[args[0]] {
				sub += " " + args[0]
			}
		}
		fmt.Fprintf(c.stderr, "raterd report: %s\nRun 'raterd %s --help' for the flags.\n", fe.Msg, sub)
	}
	return err
}

// reportSubcommands are the names `raterd report` takes besides cookbook query names.
var reportSubcommands = map[string]bool{"trend": true, "compare": true, "conversations": true, "html": true, "list": true}

func (c reportCmd) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, reportHelp(""))
		return cli.ErrUsage
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
	case "conversations":
		return c.conversations(ctx, args[1:])
	case "html":
		return c.html(ctx, args[1:])
	}
	if strings.HasPrefix(args[0], "-") {
		return cli.FlagErrorf("%s: the first argument is a subcommand (trend, compare, conversations, html, list) or a cookbook query name, not a flag", args[0])
	}
	q, ok := clickhouse.CookbookQueryNamed(args[0])
	if !ok {
		return cli.FlagErrorf("unknown report %q: want trend, compare, conversations, html, list or a cookbook query (%s)", args[0], strings.Join(cookbookNames(), ", "))
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
		full, err := app.LoadConfig(f.config, getenv)
		if err != nil {
			return cfg, fmt.Errorf("--config: %w", err)
		}
		if full.ClickHouse != nil {
			cfg = *full.ClickHouse
		}
	} else {
		if v := getenv("RATERD_CLICKHOUSE_ADDR"); v != "" {
			cfg.Addrs = app.SplitList(v)
		}
		if v := getenv("RATERD_CLICKHOUSE_USER"); v != "" {
			cfg.Username = v
		}
		if v := getenv("RATERD_CLICKHOUSE_PASSWORD"); v != "" {
			cfg.Password = secret.Secret(v)
		}
	}
	if f.addr != "" {
		cfg.Addrs = app.SplitList(f.addr)
		if len(cfg.Addrs) == 0 {
			return cfg, cli.FlagErrorf("--clickhouse: %q holds no address", f.addr)
		}
		for _, a := range cfg.Addrs {
			if !validate.HostPort(a) {
				return cfg, cli.FlagErrorf("--clickhouse: %q is not host:port", a)
			}
		}
	}
	if f.database != "" {
		if !validate.SQLIdentifier(f.database) {
			return cfg, cli.FlagErrorf("--database: %q is not a plain identifier", f.database)
		}
		cfg.Database = f.database
	}
	if len(cfg.Addrs) == 0 {
		return cfg, cli.FlagErrorf("no ClickHouse address: pass --clickhouse, --config or set RATERD_CLICKHOUSE_ADDR")
	}
	if err := cfg.Validate("clickhouse"); err != nil {
		return cfg, err
	}
	return cfg, nil
}

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

	// report conversations
	resolution, only string
	limit            uint64
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
// subcommand's help to stdout and returns flag.ErrHelp; a mistake returns a *cli.FlagError.
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
		return &cli.FlagError{Msg: strings.Replace(msg, "defined: -", "defined: --", 1)}
	}
	if fs.NArg() > 0 {
		return cli.FlagErrorf("unexpected argument %q (flags take the form --name value)", fs.Arg(0))
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// Times

// parseReportTime reads a time flag: "now"; a time before now, as a Go duration ("-24h",
// "-90m", "-1h30m") or in days or weeks ("-7d", "-2w"); or an absolute time in one of the
// forms clickhouse.ParseCookbookTime accepts (RFC 3339, "2006-01-02 15:04:05" or
// "2006-01-02T15:04:05" in UTC, "2006-01-02"). Relative times drop fractional seconds. The
// result is in UTC and in the DateTime range.
func parseReportTime(v string, now time.Time) (time.Time, error) {
	var t time.Time
	before, relative, err := cli.BeforeNow(v, now)
	switch {
	case v == "now":
		t = now
	case err != nil:
		return time.Time{}, err
	case relative:
		t = before
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
		return time.Time{}, time.Time{}, cli.FlagErrorf("%s is required", fromFlag)
	}
	f, err := parseReportTime(from, now)
	if err != nil {
		return time.Time{}, time.Time{}, cli.FlagErrorf("%s: %v", fromFlag, err)
	}
	if to == "" {
		to = "now"
	}
	t, err := parseReportTime(to, now)
	if err != nil {
		return time.Time{}, time.Time{}, cli.FlagErrorf("%s: %v", toFlag, err)
	}
	if !f.Before(t) {
		return time.Time{}, time.Time{}, cli.FlagErrorf("%s %s is not before %s %s", fromFlag, f.Format(time.RFC3339), toFlag, t.Format(time.RFC3339))
	}
	return f, t, nil
}

// parseWindow reads a --window-a/--window-b value "FROM,TO" (TO empty: now).
func parseWindow(name, v string, now time.Time) (time.Time, time.Time, error) {
	if v == "" {
		return time.Time{}, time.Time{}, cli.FlagErrorf("%s is required", name)
	}
	from, to, ok := strings.Cut(v, ",")
	if !ok {
		return time.Time{}, time.Time{}, cli.FlagErrorf("%s: %q is not FROM,TO", name, v)
	}
	return timeRange(name+" FROM", strings.TrimSpace(from), name+" TO", strings.TrimSpace(to), now)
}

// requireText checks a required string flag.
func requireText(name, v string) error {
	if v == "" {
		return cli.FlagErrorf("%s is required", name)
	}
	return checkText(name, v)
}

// checkText rejects what Render would: a value that is not UTF-8.
func checkText(name, v string) error {
	if !utf8.ValidString(v) {
		return cli.FlagErrorf("%s: %q is not valid UTF-8", name, v)
	}
	return nil
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
