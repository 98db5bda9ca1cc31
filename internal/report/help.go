package report

import (
	"flag"
	"fmt"
	"strings"

	"raterd/sinks/clickhouse"
)

// ---------------------------------------------------------------------------------------
// Help

const reportHelpIntro = `Usage:
  raterd report trend   --evaluator E --from T [--to T] [--model M] [--app A] [flags]
  raterd report compare --evaluator E --model-a A --model-b B --from T [--to T] [flags]
  raterd report compare --evaluator E --model M --window-a FROM,TO --window-b FROM,TO [flags]
  raterd report conversations --evaluator E [--resolution R] --from T [--to T] [--model M]
                [--limit N] [--only resolution|worst|close_reasons] [flags]
  raterd report html [-o FILE] [--evaluator E ...] [--model M ...] [--app A ...]
                [--from T] [--to T] [--model-a A --model-b B] [--scores FILE.ndjson] [flags]
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
           side, the difference B − A with its standard error, t statistic (difference /
           std. error) and 95% confidence interval (Welch; difference ± t crit × std.
           error, t crit the 0.975 quantile of Student's t), and a verdict:
           "significant at 5%" when the interval excludes 0, that is when |t| > t crit.
           --format csv|json prints one row: t_crit (the critical value), t_stat (the
           t statistic) and a verdict column.
` + conversationsHelp + htmlHelp + `  <query>  any cookbook query by name (see Queries), its parameters as --param name=value.
  list     the cookbook queries, their titles and parameters.
`

// conversationsHelp describes `raterd report conversations`, in the overview and in its
// own help.
const conversationsHelp = `  conversations
           conversation judging (scope conversation): the resolution rate per model per
           day of the pass/fail evaluator --resolution (cookbook resolution_rate), the
           --limit lowest-scored conversations per model by --evaluator with their turns,
           close reason and Kafka offsets (worst_conversations), and how often segments
           closed for each reason (conversation_close_reasons: max_turns, max_bytes,
           max_duration and evicted mean the bounds cut conversations short). Conversation
           evaluators have names of their own, so trend and compare on a record evaluator
           never mix conversation rows in. --format json prints one object with an array
           per section; --format csv needs --only.
`

// htmlHelp describes `raterd report html`, in the overview and in its own help.
const htmlHelp = `  html     one self-contained HTML page (inline CSS and SVG charts, no scripts, nothing
           fetched over the network; opens from disk): per evaluator the mean score per
           model over time with the scored and failed rows beneath, the comparisons of
           the models (B − A with a 95% interval, as compare computes it; --model-a and
           --model-b pick two, else each model against the busiest), the pairwise
           verdicts with the share of inconsistent (position-biased) ones, and the
           lowest-scored rows with record id, label and explanation (redacted with
           --config's scoring.redact); the alerts of the range on a timeline; and the
           parse failures and judge errors per judge. A chart has at most 120 points in
           time (buckets of 1m, 5m, 15m, 1h, 3h, 6h, 12h, 24h, 7d, then multiples of
           7d) and 8 models.
           It reads ClickHouse (connection flags as trend; cookbook report_cells,
           report_judge_cells, report_worst, report_pairwise and alerts_in_range) over
           --from … --to, by default the last 24 hours; or, with --scores, the NDJSON
           score output (e.g. raterd demo's raterd-demo-scores.ndjson), whose range
           defaults to the rows' own. --evaluator, --model and --app repeat.
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
	case "trend", "compare", "conversations", "html", "list":
		b.WriteString(strings.SplitN(reportHelpIntro, "\n\n", 2)[0] + "\n")
		if sub == "conversations" {
			b.WriteString("\n" + conversationsHelp)
		}
		if sub == "html" {
			b.WriteString("\n" + htmlHelp)
		}
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
	if sub == "" || sub == "conversations" {
		section("Flags of conversations", f.registerConversations)
	}
	if sub == "" || sub == "html" {
		var hf htmlFlags
		section("Flags of html (with the connection flags and --timeout; no --format)", hf.register)
	}
	if sub != "" && !reportSubcommands[sub] || sub == "" {
		section("Flags of <query>", f.registerQuery)
	}
	switch sub {
	case "list":
		section("Flags of list", f.registerFormat)
	case "html":
		tail := strings.SplitN(reportHelpTail, "\n\n", 3) // Times and Connection, not Output
		b.WriteString("\n" + tail[0] + "\n\n" + tail[1] + "\n")
	default:
		section("Connection and output flags (every subcommand but list and html; list takes --format, html the connection flags)", f.registerCommon)
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
		dashes := "--"
		if len(fl.Name) == 1 {
			dashes = "-" // -o, as the usage lines spell it
		}
		fmt.Fprintf(b, "  %s%s %s\n", dashes, fl.Name, name)
		if fl.DefValue != "" && fl.DefValue != "[]" {
			usage += fmt.Sprintf(" (default %s)", fl.DefValue)
		}
		fmt.Fprintf(b, "        %s\n", usage)
	})
}
