package report

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"raterd/internal/cli"
	"raterd/sinks/clickhouse"
)

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
		return cli.FlagErrorf("--param: %v", err)
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
			return nil, cli.FlagErrorf("--param %s: %s takes no such parameter (it takes %s)", name, q.Name, strings.Join(paramSignature(q), ", "))
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
				return nil, cli.FlagErrorf("--param %s: %v", name, err)
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
				return nil, cli.FlagErrorf("--param %s: %v", name, err)
			}
			v = rfc3339(t)
		}
		params[name] = v
	}
	if len(missing) > 0 {
		return nil, cli.FlagErrorf("--param: %s needs %s", q.Name, strings.Join(missing, ", "))
	}
	return params, nil
}
