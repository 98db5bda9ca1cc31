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
	"raterd/record"
	"raterd/sinks/clickhouse"
)

// ---------------------------------------------------------------------------------------
// report conversations

// Sections of `raterd report conversations` (--only), in the order it prints them.
const (
	sectionResolution   = "resolution"
	sectionWorst        = "worst"
	sectionCloseReasons = "close_reasons"
)

// conversationSections are the sections in print order, with the cookbook query each runs
// and its key in --format json.
var conversationSections = []struct{ name, query, jsonKey string }{
	{sectionResolution, "resolution_rate", "resolution_rate"},
	{sectionWorst, "worst_conversations", "worst_conversations"},
	{sectionCloseReasons, "conversation_close_reasons", "close_reasons"},
}

// maxExplanationRunes bounds the explanation column of the worst-conversations table
// (csv and json carry it whole).
const maxExplanationRunes = 60

func (f *reportFlags) registerConversations(fs *flag.FlagSet) {
	fs.StringVar(&f.evaluator, "evaluator", "", "`name` of the conversation evaluator whose lowest-scored conversations to list (required)")
	fs.StringVar(&f.resolution, "resolution", "", "`name` of the pass/fail conversation evaluator (score 1 = resolved) for the resolution rate (default: --evaluator)")
	fs.StringVar(&f.model, "model", "", "only the model of this `name` (default: every model)")
	fs.StringVar(&f.from, "from", "", "start `time` of the range of first turns, inclusive (required); see Times")
	fs.StringVar(&f.to, "to", "now", "end `time` of the range, exclusive; see Times")
	fs.Uint64Var(&f.limit, "limit", 5, "list the `N` lowest-scored conversations per model")
	fs.StringVar(&f.only, "only", "", "print one `section`: resolution, worst or close_reasons (default: all; --format csv needs one)")
}

// conversationsPlan is what `raterd report conversations` runs: per section, the query
// (with its filters set) and its parameters.
type conversationsPlan struct {
	sections []string
	queries  map[string]clickhouse.CookbookQuery
	params   map[string]map[string]string
}

// planConversations checks the flags of `report conversations` and builds its queries.
func planConversations(f *reportFlags, now time.Time) (conversationsPlan, time.Time, time.Time, error) {
	var p conversationsPlan
	var zero time.Time
	if err := requireText("--evaluator", f.evaluator); err != nil {
		return p, zero, zero, err
	}
	if f.resolution == "" {
		f.resolution = f.evaluator
	}
	if err := checkText("--resolution", f.resolution); err != nil {
		return p, zero, zero, err
	}
	if err := checkText("--model", f.model); err != nil {
		return p, zero, zero, err
	}
	from, to, err := timeRange("--from", f.from, "--to", f.to, now)
	if err != nil {
		return p, zero, zero, err
	}
	if f.limit == 0 {
		return p, zero, zero, cli.FlagErrorf("--limit: 0 lists no conversation (want 1 or more)")
	}
	for _, s := range conversationSections {
		if f.only == "" || f.only == s.name {
			p.sections = append(p.sections, s.name)
		}
	}
	if len(p.sections) == 0 {
		return p, zero, zero, cli.FlagErrorf("--only: %q is not resolution, worst or close_reasons", f.only)
	}
	if f.format == formatCSV && len(p.sections) > 1 {
		return p, zero, zero, cli.FlagErrorf("--format csv prints one table: pass --only resolution, worst or close_reasons")
	}
	withSpan := func(extra map[string]string) map[string]string {
		extra["from"], extra["to"] = rfc3339(from), rfc3339(to)
		return extra
	}
	var filters []string
	model := map[string]string{}
	if f.model != "" {
		filters = append(filters, "model")
		model["model"] = f.model
	}
	p.queries = map[string]clickhouse.CookbookQuery{}
	p.params = map[string]map[string]string{}
	for _, s := range conversationSections {
		q, ok := clickhouse.CookbookQueryNamed(s.query)
		if !ok {
			return p, zero, zero, fmt.Errorf("the cookbook has no %s query", s.query)
		}
		switch s.name {
		case sectionResolution:
			p.params[s.name] = withSpan(map[string]string{"evaluator": f.resolution})
		case sectionWorst:
			p.params[s.name] = withSpan(map[string]string{"evaluator": f.evaluator, "limit": fmt.Sprint(f.limit)})
		case sectionCloseReasons:
			// No model filter in the query: the rows of other models are dropped here.
			p.params[s.name] = withSpan(map[string]string{"scope": record.ScopeConversation})
			p.queries[s.name] = q
			continue
		}
		if q, err = q.WithFilters(filters...); err != nil {
			return p, zero, zero, err
		}
		for k, v := range model {
			p.params[s.name][k] = v
		}
		p.queries[s.name] = q
	}
	return p, from, to, nil
}

func (c reportCmd) conversations(ctx context.Context, args []string) error {
	var f reportFlags
	if err := c.parseReportFlags("conversations", args, func(fs *flag.FlagSet) {
		f.registerConversations(fs)
		f.registerCommon(fs)
	}); err != nil {
		return err
	}
	plan, from, to, err := planConversations(&f, c.now())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	conn, cfg, err := c.connect(ctx, &f)
	if err != nil {
		return err
	}
	defer conn.Close()
	results := map[string]*resultTable{}
	for _, s := range plan.sections {
		t, err := runCookbook(ctx, conn, cfg.Database, plan.queries[s], plan.params[s])
		if err != nil {
			return err
		}
		if s == sectionCloseReasons && f.model != "" {
			t = keepModel(t, f.model)
		}
		results[s] = t
	}
	return renderConversations(c.stdout, f, from, to, plan.sections, results)
}

// keepModel returns t's rows whose model column is model.
func keepModel(t *resultTable, model string) *resultTable {
	i := t.col("model")
	out := &resultTable{Columns: t.Columns}
	for _, row := range t.Rows {
		if i >= 0 && row[i] == model {
			out.Rows = append(out.Rows, row)
		}
	}
	return out
}

// renderConversations prints the sections of `report conversations` in f's format: in a
// table each under a heading; in json one object with an array per section (or the one
// array of --only); in csv the one section --only names.
func renderConversations(w io.Writer, f reportFlags, from, to time.Time, sections []string, results map[string]*resultTable) error {
	switch f.format {
	case formatCSV:
		return writeCSV(w, results[sections[0]])
	case formatJSON:
		if len(sections) == 1 {
			return writeJSON(w, results[sections[0]])
		}
		var b strings.Builder
		b.WriteString("{\n")
		for i, s := range conversationSections {
			var arr strings.Builder
			if err := writeJSON(&arr, results[s.name]); err != nil {
				return err
			}
			writeJSONString(&b, s.jsonKey)
			b.WriteString(": ")
			b.WriteString(strings.TrimSuffix(arr.String(), "\n"))
			if i < len(conversationSections)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString("}\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	scope := "every model"
	if f.model != "" {
		scope = "model " + f.model
	}
	fmt.Fprintf(w, "conversations of %s, first turns %s to %s UTC\n", scope, from.UTC().Format(time.DateTime), to.UTC().Format(time.DateTime))
	for _, s := range sections {
		t := results[s]
		switch s {
		case sectionResolution:
			fmt.Fprintf(w, "\nresolution rate of %s per day (score 1 = resolved; failed rows left out of the rate)\n", f.resolution)
		case sectionWorst:
			fmt.Fprintf(w, "\nworst conversations by %s (lowest %d per model)\n", f.evaluator, f.limit)
			t = truncateColumn(t, "explanation", maxExplanationRunes)
		case sectionCloseReasons:
			fmt.Fprintln(w, "\nwhy segments closed (max_turns, max_bytes, max_duration, evicted: cut short by the bounds)")
		}
		if err := writeTable(w, t); err != nil {
			return err
		}
	}
	return nil
}

// truncateColumn returns t with the named string column cut to n runes, "…" marking a cut.
func truncateColumn(t *resultTable, name string, n int) *resultTable {
	i := t.col(name)
	if i < 0 {
		return t
	}
	out := &resultTable{Columns: t.Columns, Rows: make([][]any, len(t.Rows))}
	for r, row := range t.Rows {
		row = append([]any(nil), row...)
		if s, ok := row[i].(string); ok && utf8.RuneCountInString(s) > n {
			row[i] = string([]rune(s)[:n-1]) + "…"
		}
		out.Rows[r] = row
	}
	return out
}
