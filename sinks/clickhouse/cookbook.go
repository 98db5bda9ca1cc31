package clickhouse

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"raterd/internal/chsql"
	"raterd/internal/validate"
)

// CookbookQuery is one analysis query over <db>.scores, kept as data so that
// docs/sql.md, the integration tests and commands share the exact text.
//
// SQL holds two kinds of placeholder:
//
//   - {db}: the database, a plain identifier;
//   - {name:Type}: a parameter, where Type is String (a quoted string literal), DateTime
//     (a validated timestamp, compared in UTC), UInt64 (a validated unsigned integer) or
//     Array(String) (a non-empty list of strings, written as a parenthesised list of
//     quoted literals, for "column IN {name:Array(String)}").
//
// The placeholders look like ClickHouse query parameters, but ClickHouse 18.16 has no
// server-side parameters, so Render fills them in on the client with literals it builds
// itself from validated input.
//
// Every query is correct while rows are replayed (the same score row inserted twice and
// not merged yet): it reads <db>.scores FINAL, or collapses rows to one per row identity
// (record_id, evaluator, rubric_version, judge) with argMax(…, scored_at) first; and it
// filters in WHERE only on columns that every copy of a row shares.
type CookbookQuery struct {
	// Name is a stable identifier, e.g. "score_trend".
	Name string
	// Title is a one-line heading.
	Title string
	// Explanation says what the query answers, what its parameters and result columns
	// mean, and how it stays correct under replays (Markdown).
	Explanation string
	// SQL is the statement with {db} and {name:Type} placeholders.
	SQL string
	// Params lists the required parameter names in the order they first appear in SQL.
	Params []string
	// Filters lists the optional filter parameters in the order they first appear in SQL.
	// Each one appears only on lines of WHERE of their own, "AND <test of {name:Type}>",
	// that hold no other parameter; Render leaves such a line out when its parameter is
	// not given, so the query then covers every value of the column. Filter only on
	// columns that every copy of a row shares (see above).
	Filters []string

	// disabled holds filters that WithFilters turned off: always left out, never taken.
	disabled []string
}

// Cookbook parameter types.
const (
	ParamString   = "String"
	ParamDateTime = "DateTime"
	ParamUInt64   = "UInt64"
	// ParamStringList is a list of strings, given to Render as a JSON array of strings
	// (see ListValue) and written as ('a', 'b'): use it as "column IN {name:Array(String)}".
	ParamStringList = "Array(String)"
)

// ListValue encodes values as the value of an Array(String) parameter: a JSON array.
func ListValue(values []string) string {
	b, err := json.Marshal(values)
	if err != nil { // a []string always marshals; invalid UTF-8 becomes U+FFFD
		return "[]"
	}
	return string(b)
}

// placeholder matches {db} and {name:Type}.
var placeholder = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z0-9]+(?:\([A-Za-z0-9]+\))?))?\}`)

// Render returns the SQL with {db} replaced by db, every line of a filter that params
// does not give left out (see Filters), and every parameter replaced by a SQL literal
// built from params[name]:
//
//   - String: any valid UTF-8, as a single-quoted literal with \, ' and control
//     characters escaped;
//   - DateTime: RFC 3339 ("2026-11-24T12:00:00Z", any offset, converted to UTC),
//     "2026-11-24 12:00:00" or "2026-11-24T12:00:00" (UTC), or "2026-11-24" (midnight
//     UTC), in whole seconds from 1970-01-01 to 2105-12-31, as toDateTime('…', 'UTC');
//   - UInt64: decimal digits only;
//   - Array(String): a JSON array of one or more valid UTF-8 strings (ListValue), as
//     ('a', 'b'), each element quoted like a String. An empty list is an error: leave the
//     filter out to cover every value.
//
// It fails when db is not a plain identifier, when a required parameter is missing, when
// params names one the query does not take, or when a value does not fit its type. The
// lines of omitted filters are left out of the template before any value goes in, and the
// template is scanned once, so a value that itself looks like a placeholder is never
// expanded.
func (q CookbookQuery) Render(db string, params map[string]string) (string, error) {
	if !validate.SQLIdentifier(db) {
		return "", fmt.Errorf("cookbook %s: database %q is not a plain identifier", q.Name, db)
	}
	types, err := q.paramTypes()
	if err != nil {
		return "", err
	}
	for name := range params {
		if q.ParamType(name) == "" {
			return "", fmt.Errorf("cookbook %s: unknown parameter %q (takes %s)", q.Name, name, strings.Join(q.takes(), ", "))
		}
	}
	literals := make(map[string]string, len(types))
	for _, name := range q.Params {
		if _, ok := params[name]; !ok {
			return "", fmt.Errorf("cookbook %s: missing parameter %q (%s)", q.Name, name, types[name])
		}
	}
	for _, name := range append(slices.Clone(q.Params), q.Filters...) {
		v, ok := params[name]
		if !ok {
			continue
		}
		lit, err := paramLiteral(types[name], v)
		if err != nil {
			return "", fmt.Errorf("cookbook %s: parameter %s: %w", q.Name, name, err)
		}
		literals[name] = lit
	}
	tmpl := q.SQL
	if len(q.Filters) > 0 {
		lines := strings.Split(tmpl, "\n")
		kept := lines[:0]
		for _, line := range lines {
			if f := lineFilter(line, q.Filters); f == "" || literals[f] != "" {
				kept = append(kept, line)
			}
		}
		tmpl = strings.Join(kept, "\n")
	}
	var b strings.Builder
	last := 0
	for _, m := range placeholder.FindAllStringSubmatchIndex(tmpl, -1) {
		b.WriteString(tmpl[last:m[0]])
		name := tmpl[m[2]:m[3]]
		if m[4] < 0 { // {db}; paramTypes rejected any other untyped placeholder
			b.WriteString(db)
		} else {
			b.WriteString(literals[name])
		}
		last = m[1]
	}
	b.WriteString(tmpl[last:])
	return b.String(), nil
}

// ParamType returns the type of the named parameter, required or filter, or "" when the
// query takes none such (a filter that WithFilters turned off included).
func (q CookbookQuery) ParamType(name string) string {
	types, err := q.paramTypes()
	if err != nil || slices.Contains(q.disabled, name) {
		return ""
	}
	return types[name]
}

// ActiveFilters returns the filter parameters the query takes: Filters less those that
// WithFilters turned off.
func (q CookbookQuery) ActiveFilters() []string {
	var out []string
	for _, f := range q.Filters {
		if !slices.Contains(q.disabled, f) {
			out = append(out, f)
		}
	}
	return out
}

// WithFilters returns the query taking only the named filters of Filters: the lines of
// every other filter are always left out, and Render rejects their parameters. SQL and
// Filters stay as they are. It fails when a name is not one of Filters.
func (q CookbookQuery) WithFilters(names ...string) (CookbookQuery, error) {
	for _, n := range names {
		if !slices.Contains(q.Filters, n) {
			return q, fmt.Errorf("cookbook %s: %q is not one of its filters (%s)", q.Name, n, strings.Join(q.Filters, ", "))
		}
	}
	q.disabled = nil
	for _, f := range q.Filters {
		if !slices.Contains(names, f) {
			q.disabled = append(q.disabled, f)
		}
	}
	return q, nil
}

// takes lists the parameters the query takes: Params, then the active filters.
func (q CookbookQuery) takes() []string {
	return append(slices.Clone(q.Params), q.ActiveFilters()...)
}

// lineFilter returns the filter parameter whose placeholder is on line, or "".
func lineFilter(line string, filters []string) string {
	for _, m := range placeholder.FindAllStringSubmatch(line, -1) {
		if slices.Contains(filters, m[1]) {
			return m[1]
		}
	}
	return ""
}

// paramTypes reads the placeholders of q.SQL and checks them against q.Params and
// q.Filters: every placeholder but {db} is typed with a known type, each parameter has one
// type, Params and Filters list exactly the parameters in order of first appearance, and
// every filter stands only on "AND …" lines that hold no other parameter.
func (q CookbookQuery) paramTypes() (map[string]string, error) {
	types := map[string]string{}
	var order, filters []string
	for _, m := range placeholder.FindAllStringSubmatch(q.SQL, -1) {
		name, typ := m[1], m[2]
		if typ == "" {
			if name != "db" {
				return nil, fmt.Errorf("cookbook %s: placeholder {%s} has no type", q.Name, name)
			}
			continue
		}
		if name == "db" {
			return nil, fmt.Errorf("cookbook %s: {db} is the database, not a parameter", q.Name)
		}
		switch typ {
		case ParamString, ParamDateTime, ParamUInt64, ParamStringList:
		default:
			return nil, fmt.Errorf("cookbook %s: parameter %s has unknown type %s", q.Name, name, typ)
		}
		if prev, ok := types[name]; ok {
			if prev != typ {
				return nil, fmt.Errorf("cookbook %s: parameter %s is both %s and %s", q.Name, name, prev, typ)
			}
			continue
		}
		types[name] = typ
		if slices.Contains(q.Filters, name) {
			filters = append(filters, name)
		} else {
			order = append(order, name)
		}
	}
	if !slices.Equal(order, q.Params) {
		return nil, fmt.Errorf("cookbook %s: Params %v do not match the placeholders %v", q.Name, q.Params, order)
	}
	if !slices.Equal(filters, q.Filters) {
		return nil, fmt.Errorf("cookbook %s: Filters %v do not match the placeholders %v", q.Name, q.Filters, filters)
	}
	for _, line := range strings.Split(q.SQL, "\n") {
		f := lineFilter(line, q.Filters)
		if f == "" {
			continue
		}
		if !strings.HasPrefix(strings.TrimSpace(line), "AND ") {
			return nil, fmt.Errorf("cookbook %s: filter %s is on a line that does not start with AND: %q", q.Name, f, line)
		}
		for _, m := range placeholder.FindAllStringSubmatch(line, -1) {
			if m[1] != f {
				return nil, fmt.Errorf("cookbook %s: filter %s shares its line with {%s}: %q", q.Name, f, m[1], line)
			}
		}
	}
	return types, nil
}

// paramLiteral validates v as a value of typ and returns its SQL literal.
func paramLiteral(typ, v string) (string, error) {
	switch typ {
	case ParamString:
		if !utf8.ValidString(v) {
			return "", fmt.Errorf("%q is not valid UTF-8", v)
		}
		return chsql.QuoteString(v), nil
	case ParamUInt64:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not an unsigned integer", v)
		}
		return strconv.FormatUint(n, 10), nil
	case ParamStringList:
		if !utf8.ValidString(v) {
			return "", fmt.Errorf("%q is not valid UTF-8", v)
		}
		var list []string
		if err := json.Unmarshal([]byte(v), &list); err != nil {
			return "", fmt.Errorf("%q is not a JSON array of strings", v)
		}
		if len(list) == 0 {
			return "", fmt.Errorf("%q is an empty list (leave the filter out to cover every value)", v)
		}
		var b strings.Builder
		b.WriteByte('(')
		for i, e := range list {
			if !utf8.ValidString(e) {
				return "", fmt.Errorf("element %d of %q is not valid UTF-8", i, v)
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(chsql.QuoteString(e))
		}
		b.WriteByte(')')
		return b.String(), nil
	case ParamDateTime:
		t, err := ParseCookbookTime(v)
		if err != nil {
			return "", err
		}
		return "toDateTime('" + t.Format(time.DateTime) + "', 'UTC')", nil
	}
	return "", fmt.Errorf("unknown type %s", typ)
}

// The DateTime range both 18.16 and current releases parse from text: DateTime holds
// UInt32 seconds up to 2106-02-07, but 18.16 reads times after 2105 as 0.
var (
	minDateTime = time.Unix(0, 0).UTC()
	maxDateTime = time.Date(2105, 12, 31, 23, 59, 59, 0, time.UTC)
)

// ParseCookbookTime parses a DateTime parameter (see Render for the accepted forms) and
// returns it in UTC.
func ParseCookbookTime(v string) (time.Time, error) {
	var (
		t   time.Time
		err error
	)
	for _, layout := range []string{time.RFC3339, time.DateTime, "2006-01-02T15:04:05", time.DateOnly} {
		if t, err = time.Parse(layout, v); err == nil {
			break
		}
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a timestamp (want RFC 3339, \"2006-01-02 15:04:05\" in UTC, or \"2006-01-02\")", v)
	}
	t = t.UTC()
	if t.Nanosecond() != 0 {
		return time.Time{}, fmt.Errorf("%q has fractional seconds; DateTime holds whole seconds", v)
	}
	if t.Before(minDateTime) || t.After(maxDateTime) {
		return time.Time{}, fmt.Errorf("%q is outside the DateTime range %s … %s", v, minDateTime.Format(time.DateTime), maxDateTime.Format(time.DateTime))
	}
	return t, nil
}

// CookbookQueryNamed returns the cookbook query with the given name.
func CookbookQueryNamed(name string) (CookbookQuery, bool) {
	for _, q := range Cookbook() {
		if q.Name == name {
			return q, true
		}
	}
	return CookbookQuery{}, false
}

// Cookbook returns the SQL cookbook in the order of docs/sql.md.
func Cookbook() []CookbookQuery {
	return []CookbookQuery{
		{
			Name:  "score_trend",
			Title: "Score trend per model per hour",
			Explanation: "For one evaluator and the time range [`from`, `to`) of event time: per hour (UTC) and model, " +
				"`scored` (rows with status `ok`), `failed` (parse failures and judge errors), and the mean, median " +
				"(`p50`) and 90th percentile (`p90`) of the score over the `ok` rows. The percentiles use " +
				"`quantileIf`, which is exact up to 8192 rows per group and a uniform sample beyond.\n\n" +
				"Replays: reads `scores FINAL`, which merges the copies of a row at read time. WHERE only tests " +
				"columns of the sorting key (evaluator, event time, …), which every copy of a row shares; the status " +
				"test sits inside the `-If` aggregates, so it sees the surviving copy only.\n\n" +
				"An evaluator scored by several judges or rubric versions has one row per judge and version; add " +
				"`AND judge = '…'` or group by `judge, rubric_version` to keep them apart.\n\n" +
				"Filters: `model` and `app` are optional. Given, they keep only that model's or app's rows; " +
				"left out, their lines of WHERE are dropped and the query covers every model and app. Both are " +
				"sorting-key columns that every copy of a row shares, so the filtered query stays exact under " +
				"replays. `raterd report trend --model … --app …` runs this query with them.",
			SQL: `SELECT
    toStartOfHour(event_time, 'UTC') AS hour,
    model,
    countIf(status = 'ok') AS scored,
    countIf(status != 'ok') AS failed,
    avgIf(score, status = 'ok') AS mean_score,
    quantileIf(0.5)(score, status = 'ok') AS p50,
    quantileIf(0.9)(score, status = 'ok') AS p90
FROM {db}.scores FINAL
WHERE evaluator = {evaluator:String}
    AND event_time >= {from:DateTime}
    AND event_time < {to:DateTime}
    AND model = {model:String}
    AND app = {app:String}
GROUP BY hour, model
ORDER BY hour, model`,
			Params:  []string{"evaluator", "from", "to"},
			Filters: []string{"model", "app"},
		},
		{
			Name:  "compare_models",
			Title: "Compare two model versions on one evaluator",
			Explanation: "For one evaluator and the time range [`from`, `to`): the number of `ok` rows (`n_a`, `n_b`) " +
				"and the mean score of `model_a` and `model_b`, the difference `diff` = mean_b − mean_a, its " +
				"standard error, and a 95% confidence interval for it (Welch: unequal variances). The sample " +
				"variances and counts come from one pass over the table; the outer SELECT finishes the interval: " +
				"`std_err` = √(var_a/n_a + var_b/n_b), the Welch–Satterthwaite degrees of freedom `welch_df`, and " +
				"`t_crit`, the 0.975 quantile of Student's t with `welch_df` degrees of freedom. ClickHouse has no " +
				"t quantile function, so `t_crit` is a Cornish–Fisher expansion around z = 1.959964 (within 0.004 " +
				"of the exact value for df ≥ 3); for 1 ≤ df < 3 it uses the exact value at the next lower whole " +
				"df (12.7062, 4.3027), which widens the interval, and below 1 it is `nan`. An interval that excludes " +
				"0 is a difference at the 5% level. With fewer than 2 `ok` rows for either model the interval is `nan`.\n\n" +
				"Replays: reads `scores FINAL`; WHERE tests only sorting-key columns, and the status and model " +
				"tests sit inside the `-If` aggregates. A replayed copy would otherwise count twice in n and shrink " +
				"the interval.",
			SQL: `SELECT
    {model_a:String} AS model_a,
    {model_b:String} AS model_b,
    n_a,
    n_b,
    mean_a,
    mean_b,
    mean_b - mean_a AS diff,
    sqrt(var_a / n_a + var_b / n_b) AS std_err,
    pow(var_a / n_a + var_b / n_b, 2)
        / (pow(var_a / n_a, 2) / (n_a - 1.0) + pow(var_b / n_b, 2) / (n_b - 1.0)) AS welch_df,
    multiIf(
        welch_df < 1, nan,
        welch_df < 2, 12.7062,
        welch_df < 3, 4.3027,
        1.959964 + 2.372271 / welch_df + 2.822499 / pow(welch_df, 2)
            + 2.555850 / pow(welch_df, 3) + 1.589534 / pow(welch_df, 4)) AS t_crit,
    diff - t_crit * std_err AS ci95_low,
    diff + t_crit * std_err AS ci95_high
FROM
(
    SELECT
        countIf(status = 'ok' AND model = {model_a:String}) AS n_a,
        countIf(status = 'ok' AND model = {model_b:String}) AS n_b,
        avgIf(score, status = 'ok' AND model = {model_a:String}) AS mean_a,
        avgIf(score, status = 'ok' AND model = {model_b:String}) AS mean_b,
        varSampIf(score, status = 'ok' AND model = {model_a:String}) AS var_a,
        varSampIf(score, status = 'ok' AND model = {model_b:String}) AS var_b
    FROM {db}.scores FINAL
    WHERE evaluator = {evaluator:String}
        AND model IN ({model_a:String}, {model_b:String})
        AND event_time >= {from:DateTime}
        AND event_time < {to:DateTime}
)`,
			Params: []string{"model_a", "model_b", "evaluator", "from", "to"},
		},
		{
			Name:  "worst_apps",
			Title: "Worst apps for an evaluator",
			Explanation: "For one evaluator and the time range [`from`, `to`): the `limit` apps with the lowest " +
				"mean score over `ok` rows, among apps with at least `min_rows` `ok` rows, so that one bad " +
				"answer in a quiet app does not top the list. `failed` counts the app's parse failures and judge " +
				"errors. For \"this week\", pass `from` = Monday 00:00 UTC and `to` = the next Monday (in SQL: " +
				"`toMonday(now())`).\n\n" +
				"Replays: reads `scores FINAL`; WHERE tests only sorting-key columns and the status test sits " +
				"inside the `-If` aggregates, so a replayed copy neither counts towards `min_rows` nor weighs twice " +
				"in the mean.",
			SQL: `SELECT
    app,
    countIf(status = 'ok') AS scored,
    avgIf(score, status = 'ok') AS mean_score,
    countIf(status != 'ok') AS failed
FROM {db}.scores FINAL
WHERE evaluator = {evaluator:String}
    AND event_time >= {from:DateTime}
    AND event_time < {to:DateTime}
GROUP BY app
HAVING scored >= {min_rows:UInt64}
ORDER BY mean_score ASC, app ASC
LIMIT {limit:UInt64}`,
			Params: []string{"evaluator", "from", "to", "min_rows", "limit"},
		},
		{
			Name:  "pass_rate_after_deploy",
			Title: "Pass-rate drop after a deploy",
			Explanation: "For a classification or check evaluator (score 1 = pass, 0 = fail) and one model: the " +
				"pass rate, the share of `ok` rows with score = 1, before and after `deploy_time`, over the time " +
				"range [`from`, `deploy_time`) and [`deploy_time`, `to`). `pass_rate_drop` = before − after " +
				"(positive: the deploy made things worse); `z_score` is the two-proportion z statistic with the " +
				"pooled rate, so a drop with `z_score` above 1.96 is significant at the 5% level (one-sided: " +
				"above 1.645). Parse failures and judge errors are left out of both rates.\n\n" +
				"Replays: reads `scores FINAL`; WHERE tests only sorting-key columns, and the status, score and " +
				"before/after tests sit inside `countIf`.",
			SQL: `SELECT
    before_ok,
    before_pass,
    before_pass / before_ok AS before_pass_rate,
    after_ok,
    after_pass,
    after_pass / after_ok AS after_pass_rate,
    before_pass_rate - after_pass_rate AS pass_rate_drop,
    (before_pass + after_pass) / (before_ok + after_ok) AS pooled_pass_rate,
    pass_rate_drop / sqrt(pooled_pass_rate * (1 - pooled_pass_rate) * (1 / before_ok + 1 / after_ok)) AS z_score
FROM
(
    SELECT
        countIf(status = 'ok' AND event_time < {deploy_time:DateTime}) AS before_ok,
        countIf(status = 'ok' AND event_time < {deploy_time:DateTime} AND score = 1) AS before_pass,
        countIf(status = 'ok' AND event_time >= {deploy_time:DateTime}) AS after_ok,
        countIf(status = 'ok' AND event_time >= {deploy_time:DateTime} AND score = 1) AS after_pass
    FROM {db}.scores FINAL
    WHERE evaluator = {evaluator:String}
        AND model = {model:String}
        AND event_time >= {from:DateTime}
        AND event_time < {to:DateTime}
)`,
			Params: []string{"deploy_time", "evaluator", "model", "from", "to"},
		},
		{
			Name:  "judge_agreement",
			Title: "Agreement between two judges",
			Explanation: "For one evaluator and the time range [`from`, `to`): the records that both `judge_a` " +
				"and `judge_b` scored `ok` under the same rubric version, paired on (record_id, rubric_version). " +
				"`pairs` counts them; `label_agreement` is the share of pairs with equal labels (over pairs where " +
				"both judges gave a label; `nan` for score-only evaluators); `score_agreement` the share with " +
				"equal scores; `mean_abs_diff` the mean absolute score difference; `score_corr` the Pearson " +
				"correlation of the scores (`nan` when either judge's scores are constant). Pairing on the rubric " +
				"version too keeps a record judged under an old and a new rubric from pairing twice.\n\n" +
				"Replays: each side first collapses its rows to one per row identity with `argMax(…, scored_at)` " +
				"grouped by (record_id, rubric_version), with evaluator and judge fixed by WHERE; a replayed copy " +
				"would otherwise multiply the pairs in the join. The status test is a HAVING on the collapsed row, " +
				"so it looks at the latest copy only. `ALL INNER JOIN … USING` has the same meaning on 18.16 and " +
				"current releases, and the keys are unique on both sides.",
			SQL: `SELECT
    count() AS pairs,
    avgIf(label_a = label_b, label_a != '' AND label_b != '') AS label_agreement,
    avg(score_a = score_b) AS score_agreement,
    avg(abs(score_a - score_b)) AS mean_abs_diff,
    corr(score_a, score_b) AS score_corr
FROM
(
    SELECT
        record_id,
        rubric_version,
        argMax(score, scored_at) AS score_a,
        argMax(label, scored_at) AS label_a,
        argMax(status, scored_at) AS status_a
    FROM {db}.scores
    WHERE evaluator = {evaluator:String}
        AND judge = {judge_a:String}
        AND event_time >= {from:DateTime}
        AND event_time < {to:DateTime}
    GROUP BY record_id, rubric_version
    HAVING status_a = 'ok'
) AS a
ALL INNER JOIN
(
    SELECT
        record_id,
        rubric_version,
        argMax(score, scored_at) AS score_b,
        argMax(label, scored_at) AS label_b,
        argMax(status, scored_at) AS status_b
    FROM {db}.scores
    WHERE evaluator = {evaluator:String}
        AND judge = {judge_b:String}
        AND event_time >= {from:DateTime}
        AND event_time < {to:DateTime}
    GROUP BY record_id, rubric_version
    HAVING status_b = 'ok'
) AS b USING (record_id, rubric_version)`,
			Params: []string{"evaluator", "judge_a", "from", "to", "judge_b"},
		},
		{
			Name:  "cache_savings",
			Title: "Cache savings per evaluator and judge",
			Explanation: "For the time range [`from`, `to`), per evaluator and judge: `scored_rows`, " +
				"`judge_calls_avoided` (rows served from the cache), `cached_share` (their share of the rows), " +
				"`judge_calls_made` (attempts of the rows that were judged, retries included), the mean judge " +
				"latency of those rows, and `judge_seconds_saved`, the avoided calls priced at that mean latency " +
				"(`nan` when the group has no judged row to price them with).\n\n" +
				"Replays: reads `scores FINAL`; WHERE tests only event time, and the cached test sits inside the " +
				"`-If` aggregates. A replay that is served from the cache replaces the judged copy (its scored_at " +
				"is later), so the figures describe the surviving row of each identity.",
			SQL: `SELECT
    evaluator,
    judge,
    count() AS scored_rows,
    countIf(cached = 1) AS judge_calls_avoided,
    judge_calls_avoided / scored_rows AS cached_share,
    sumIf(attempts, cached = 0) AS judge_calls_made,
    avgIf(judge_latency_ms, cached = 0) AS mean_judge_latency_ms,
    judge_calls_avoided * mean_judge_latency_ms / 1000 AS judge_seconds_saved
FROM {db}.scores FINAL
WHERE event_time >= {from:DateTime}
    AND event_time < {to:DateTime}
GROUP BY evaluator, judge
ORDER BY judge_calls_avoided DESC, evaluator, judge`,
			Params: []string{"from", "to"},
		},
		{
			Name:  "parse_failures",
			Title: "Parse-failure rate per judge",
			Explanation: "For the time range [`from`, `to`), per judge: `judged` (rows the judge was actually " +
				"called for, i.e. not served from the cache, which only holds parsed answers), `parse_failures` " +
				"(answers that did not follow the output grammar) and `parse_failure_rate`, and likewise " +
				"`judge_errors` (calls that failed after bounded retries) and `judge_error_rate`. Highest " +
				"parse-failure rate first.\n\n" +
				"Replays: the inner query collapses rows to one per row identity (record_id, evaluator, " +
				"rubric_version, judge) with `argMax(…, scored_at)`, which keeps the latest copy like the merges " +
				"will; the cached test is a HAVING on the collapsed row. This is the same answer as FINAL without " +
				"relying on it, and shows the pattern for engines or views that have no FINAL.",
			SQL: `SELECT
    judge,
    count() AS judged,
    countIf(last_status = 'parse_failure') AS parse_failures,
    parse_failures / judged AS parse_failure_rate,
    countIf(last_status = 'judge_error') AS judge_errors,
    judge_errors / judged AS judge_error_rate
FROM
(
    SELECT
        judge,
        argMax(status, scored_at) AS last_status,
        argMax(cached, scored_at) AS last_cached
    FROM {db}.scores
    WHERE event_time >= {from:DateTime}
        AND event_time < {to:DateTime}
    GROUP BY record_id, evaluator, rubric_version, judge
    HAVING last_cached = 0
)
GROUP BY judge
ORDER BY parse_failure_rate DESC, judge`,
			Params: []string{"from", "to"},
		},
		{
			Name:  "score_stats",
			Title: "Score count, mean and variance over one time range",
			Explanation: "For one evaluator and the time range [`from`, `to`): `n_ok` (rows with status `ok`), and " +
				"the mean (`mean_score`) and sample variance (`var_score`) of their score; `nan` when there are " +
				"too few rows (none for the mean, fewer than 2 for the variance). These are the inputs of " +
				"compare_models' Welch interval, so two runs of this query, say one model over two time windows " +
				"(`raterd report compare --model … --window-a … --window-b …`), can be compared with its " +
				"formulas.\n\n" +
				"Filters: `model` and `app` are optional. Given, they keep only that model's or app's rows; " +
				"left out, their lines of WHERE are dropped and the query covers every model and app.\n\n" +
				"Replays: reads `scores FINAL`; WHERE tests only sorting-key columns (the filters included), and " +
				"the status test sits inside the `-If` aggregates, so a replayed copy neither counts twice nor " +
				"weighs twice in the mean and variance.",
			SQL: `SELECT
    countIf(status = 'ok') AS n_ok,
    avgIf(score, status = 'ok') AS mean_score,
    varSampIf(score, status = 'ok') AS var_score
FROM {db}.scores FINAL
WHERE evaluator = {evaluator:String}
    AND event_time >= {from:DateTime}
    AND event_time < {to:DateTime}
    AND model = {model:String}
    AND app = {app:String}`,
			Params:  []string{"evaluator", "from", "to"},
			Filters: []string{"model", "app"},
		},
		{
			Name:  "worst_conversations",
			Title: "Worst conversations per model for a conversation evaluator",
			Explanation: "For one conversation evaluator and the time range [`from`, `to`) of event time (a conversation " +
				"row's event time is its first turn's): per model, the `limit` conversation segments with the lowest " +
				"score among `ok` rows, lowest first, with the segment's `conversation_id`, `version` (1 for the first " +
				"segment judged of a conversation, 2 for turns that came after it was judged, …), `turn_count`, the " +
				"judge's `score`, `label` and `explanation`, `close_reason` (timeout, end_marker, gap, max_turns, " +
				"max_bytes, max_duration, evicted) and the Kafka offsets of its first and last turn (`first_offset`, " +
				"`last_offset`, on the row's partition), which lead back to the turns. An evaluator judged by several " +
				"judges or rubric versions lists each of their rows.\n\n" +
				"Filters: `model` is optional; given, it keeps that model's conversations only.\n\n" +
				"Replays: reads `scores FINAL` and then collapses each segment's row (record_id, the segment id, " +
				"with judge and rubric version) with `argMax(…, scored_at)`, so the status test is a HAVING on the " +
				"latest copy. WHERE tests sorting-key columns and `scope`, which every copy of a row shares (an " +
				"evaluator judges one scope). A replayed segment that the consumer closed at another turn keeps its " +
				"segment id (its first offset), so the latest copy's turn count and close reason are shown.",
			SQL: `SELECT
    model,
    conv AS conversation_id,
    seg_version AS version,
    turns AS turn_count,
    seg_score AS score,
    seg_label AS label,
    seg_explanation AS explanation,
    reason AS close_reason,
    seg_first_offset AS first_offset,
    seg_last_offset AS last_offset
FROM
(
    SELECT
        model,
        argMax(conversation_id, scored_at) AS conv,
        argMax(conversation_version, scored_at) AS seg_version,
        argMax(turn_count, scored_at) AS turns,
        argMax(score, scored_at) AS seg_score,
        argMax(label, scored_at) AS seg_label,
        argMax(explanation, scored_at) AS seg_explanation,
        argMax(close_reason, scored_at) AS reason,
        argMax(offset, scored_at) AS seg_first_offset,
        argMax(last_offset, scored_at) AS seg_last_offset,
        argMax(status, scored_at) AS seg_status
    FROM {db}.scores FINAL
    WHERE evaluator = {evaluator:String}
        AND scope = 'conversation'
        AND event_time >= {from:DateTime}
        AND event_time < {to:DateTime}
        AND model = {model:String}
    GROUP BY model, record_id, judge, rubric_version
    HAVING seg_status = 'ok'
)
ORDER BY model, score, conversation_id, version
LIMIT {limit:UInt64} BY model`,
			Params:  []string{"evaluator", "from", "to", "limit"},
			Filters: []string{"model"},
		},
		{
			Name:  "resolution_rate",
			Title: "Conversation resolution rate per model per day",
			Explanation: "For a conversation evaluator that passes or fails a conversation (score 1 = resolved, 0 = not; " +
				"a classification evaluator such as a resolution check) and the time range [`from`, `to`): per day " +
				"(UTC, by the conversation's first turn) and model, `conversations` (segments judged `ok`), `resolved` " +
				"(those with score 1), `resolution_rate` = resolved / conversations, and `failed` (parse failures and " +
				"judge errors, left out of the rate). A conversation that came back after it was judged has a " +
				"segment per version, each counted.\n\n" +
				"Filters: `model` is optional; given, it keeps that model's conversations only.\n\n" +
				"Replays: reads `scores FINAL`; WHERE tests sorting-key columns and `scope`, which every copy of a " +
				"row shares, and the status and score tests sit inside `countIf`, so they see the surviving copy.",
			SQL: `SELECT
    toStartOfDay(event_time, 'UTC') AS day,
    model,
    countIf(status = 'ok') AS conversations,
    countIf(status = 'ok' AND score = 1) AS resolved,
    resolved / conversations AS resolution_rate,
    countIf(status != 'ok') AS failed
FROM {db}.scores FINAL
WHERE evaluator = {evaluator:String}
    AND scope = 'conversation'
    AND event_time >= {from:DateTime}
    AND event_time < {to:DateTime}
    AND model = {model:String}
GROUP BY day, model
ORDER BY day, model`,
			Params:  []string{"evaluator", "from", "to"},
			Filters: []string{"model"},
		},
		{
			Name:  "conversation_close_reasons",
			Title: "Why conversation (or agent-run) segments closed, per model",
			Explanation: "For one scope (`conversation` or `trace`) and the time range [`from`, `to`): per model and " +
				"close reason, `segments` (distinct segments judged by any evaluator of that scope), and their mean " +
				"and largest `turn_count`. `timeout`, `end_marker` and `gap` are natural ends; `max_turns`, " +
				"`max_bytes` and `max_duration` mean the bounds cut conversations short and judged them early, and " +
				"`evicted` that too many were open at once: a large share of those calls for looser bounds " +
				"on the consumer's conversation assembly.\n\n" +
				"Replays: reads `scores FINAL`, then collapses the rows of each segment (its evaluators' rows and " +
				"their copies) to one with `argMax(…, scored_at)` grouped by (model, record_id), so a segment " +
				"counts once whatever the number of its evaluators. WHERE tests event time and `scope`, which every " +
				"copy of a row shares.",
			SQL: `SELECT
    model,
    reason AS close_reason,
    count() AS segments,
    avg(turns) AS mean_turns,
    max(turns) AS max_turns
FROM
(
    SELECT
        model,
        argMax(close_reason, scored_at) AS reason,
        argMax(turn_count, scored_at) AS turns
    FROM {db}.scores FINAL
    WHERE scope = {scope:String}
        AND event_time >= {from:DateTime}
        AND event_time < {to:DateTime}
    GROUP BY model, record_id
)
GROUP BY model, close_reason
ORDER BY model, segments DESC, close_reason`,
			Params: []string{"scope", "from", "to"},
		},
		{
			Name:  "report_cells",
			Title: "Report: scored rows, failures and score sums per evaluator, model and time bucket",
			Explanation: "The trend cells of `raterd report html`. For the time range [`from`, `to`) of event time, per " +
				"evaluator, model, task type and time bucket of `bucket_seconds` seconds (`bucket`, its start in UTC; " +
				"buckets are aligned to multiples of `bucket_seconds` since 1970-01-01 00:00 UTC, so 3600 gives hours " +
				"and 86400 days; it must be at least 1): `scored` (rows with status `ok` and a finite score within " +
				"±1e12), `parse_failures`, `judge_errors` (status `judge_error` and any other status that is neither " +
				"`ok` nor `parse_failure`), `sum_score` and `sum_squares`, the sum of the scored rows' scores and of " +
				"their squares, and `skipped`, the `ok` rows left out of those because their score is nan, infinite " +
				"or beyond ±1e12 (one such score would make the sums nan or overflow them). Means and " +
				"variances follow from the sums (mean = sum_score / scored), and cells add up: several buckets or " +
				"models roll up into one by adding every column.\n\n" +
				"Filters: `evaluator`, `model` and `app` are optional lists (Array(String), given as a JSON array: " +
				"`[\"helpfulness\",\"safety\"]`); given, they keep only the rows whose column is one of the values; " +
				"left out, their lines of WHERE are dropped and the query covers every value.\n\n" +
				"Replays: reads `scores FINAL`; WHERE tests only sorting-key columns (the filters included), and the " +
				"status tests sit inside the `-If` aggregates, so each row counts once, as its surviving copy.",
			SQL: `SELECT
    evaluator,
    model,
    task_type,
    toDateTime(intDiv(toUInt32(event_time), {bucket_seconds:UInt64}) * {bucket_seconds:UInt64}, 'UTC') AS bucket,
    countIf(status = 'ok' AND isFinite(score) AND abs(score) <= 1e12) AS scored,
    countIf(status = 'parse_failure') AS parse_failures,
    countIf(status != 'ok' AND status != 'parse_failure') AS judge_errors,
    sumIf(score, status = 'ok' AND isFinite(score) AND abs(score) <= 1e12) AS sum_score,
    sumIf(score * score, status = 'ok' AND isFinite(score) AND abs(score) <= 1e12) AS sum_squares,
    countIf(status = 'ok' AND NOT (isFinite(score) AND abs(score) <= 1e12)) AS skipped
FROM {db}.scores FINAL
WHERE event_time >= {from:DateTime}
    AND event_time < {to:DateTime}
    AND evaluator IN {evaluator:Array(String)}
    AND model IN {model:Array(String)}
    AND app IN {app:Array(String)}
GROUP BY evaluator, model, task_type, bucket
ORDER BY evaluator, model, task_type, bucket`,
			Params:  []string{"bucket_seconds", "from", "to"},
			Filters: []string{"evaluator", "model", "app"},
		},
		{
			Name:  "report_judge_cells",
			Title: "Report: outcomes per judge and time bucket",
			Explanation: "The judge-health chart of `raterd report html`. For the time range [`from`, `to`), per judge and " +
				"time bucket of `bucket_seconds` seconds (aligned as in report_cells): `ok` rows, `parse_failures` and " +
				"`judge_errors` (status `judge_error` and any other status that is neither `ok` nor " +
				"`parse_failure`). Every row counts, cached ones too (a cached row is always `ok`); parse_failures " +
				"gives the rates over judge calls only.\n\n" +
				"Filters: `evaluator`, `model` and `app` are optional lists, as in report_cells.\n\n" +
				"Replays: reads `scores FINAL`; WHERE tests only sorting-key columns, and the status tests sit " +
				"inside `countIf`.",
			SQL: `SELECT
    judge,
    toDateTime(intDiv(toUInt32(event_time), {bucket_seconds:UInt64}) * {bucket_seconds:UInt64}, 'UTC') AS bucket,
    countIf(status = 'ok') AS ok,
    countIf(status = 'parse_failure') AS parse_failures,
    countIf(status != 'ok' AND status != 'parse_failure') AS judge_errors
FROM {db}.scores FINAL
WHERE event_time >= {from:DateTime}
    AND event_time < {to:DateTime}
    AND evaluator IN {evaluator:Array(String)}
    AND model IN {model:Array(String)}
    AND app IN {app:Array(String)}
GROUP BY judge, bucket
ORDER BY judge, bucket`,
			Params:  []string{"bucket_seconds", "from", "to"},
			Filters: []string{"evaluator", "model", "app"},
		},
		{
			Name:  "report_worst",
			Title: "Report: the lowest-scored rows per evaluator",
			Explanation: "The worst-records table of `raterd report html`. For the time range [`from`, `to`), per evaluator, " +
				"the `limit` rows with status `ok` and the lowest score (a finite one: nan and infinities are left out), lowest first (ties by event time, record id, " +
				"then model), with `event_time`, `model`, `app`, `record_id` (to look the record up), `judge`, and the " +
				"judge's `label` and `explanation` as stored (redacted when the scorer's redaction was on; the report " +
				"can redact again as it shows them). A record scored by several judges or rubric versions can appear " +
				"once for each.\n\n" +
				"Filters: `evaluator`, `model` and `app` are optional lists, as in report_cells.\n\n" +
				"Replays: the queries collapse rows to one per row identity (its sorting-key columns) with " +
				"`argMax(…, scored_at)`, so the status test is a HAVING on the latest copy; WHERE tests only " +
				"sorting-key columns. `LIMIT … BY evaluator` bounds the answer to `limit` rows per evaluator.\n\n" +
				"Memory: it runs in two phases. The innermost query picks the `limit` worst row identities per " +
				"evaluator from the latest score and status alone; only those rows' labels and explanations are then " +
				"read (the `IN` on the identity tuple), so no aggregation state holds the explanations of the whole " +
				"range.",
			SQL: `SELECT
    event_time,
    evaluator,
    model,
    app,
    record_id,
    judge,
    last_label AS label,
    last_explanation AS explanation,
    last_score AS score
FROM
(
    SELECT
        event_time,
        evaluator,
        model,
        app,
        record_id,
        judge,
        argMax(label, scored_at) AS last_label,
        argMax(explanation, scored_at) AS last_explanation,
        argMax(score, scored_at) AS last_score
    FROM {db}.scores
    WHERE event_time >= {from:DateTime}
        AND event_time < {to:DateTime}
        AND evaluator IN {evaluator:Array(String)}
        AND model IN {model:Array(String)}
        AND app IN {app:Array(String)}
        AND (event_time, evaluator, model, app, record_id, judge, rubric_version) IN
        (
            SELECT event_time, evaluator, model, app, record_id, judge, rubric_version
            FROM
            (
                SELECT
                    event_time,
                    evaluator,
                    model,
                    app,
                    record_id,
                    judge,
                    rubric_version,
                    argMax(score, scored_at) AS worst_score,
                    argMax(status, scored_at) AS worst_status
                FROM {db}.scores
                WHERE event_time >= {from:DateTime}
                    AND event_time < {to:DateTime}
                    AND evaluator IN {evaluator:Array(String)}
                    AND model IN {model:Array(String)}
                    AND app IN {app:Array(String)}
                GROUP BY event_time, evaluator, model, app, record_id, judge, rubric_version
                HAVING worst_status = 'ok' AND isFinite(worst_score)
                ORDER BY evaluator, worst_score, event_time, record_id, model
                LIMIT {limit:UInt64} BY evaluator
            )
        )
    GROUP BY event_time, evaluator, model, app, record_id, judge, rubric_version
)
ORDER BY evaluator, score, event_time, record_id, model
LIMIT {limit:UInt64} BY evaluator`,
			Params:  []string{"from", "to", "limit"},
			Filters: []string{"evaluator", "model", "app"},
		},
		{
			Name:  "report_pairwise",
			Title: "Report: pairwise verdicts per evaluator, model and label",
			Explanation: "The pairwise section of `raterd report html`. For the time range [`from`, `to`) and the " +
				"evaluators of task type `pairwise`: per evaluator, model and label, `verdicts`, the rows with status " +
				"`ok`. The labels are `first`, `second`, `tie` and `inconsistent` (the judge preferred the answer in " +
				"the same position in both orders: a position bias, not a preference), or the rubric's own labels. " +
				"The share of `inconsistent` is its verdicts over the sum of an evaluator and model's verdicts.\n\n" +
				"Filters: `evaluator`, `model` and `app` are optional lists, as in report_cells.\n\n" +
				"Replays: reads `scores FINAL`, which collapses the copies of a row before GROUP BY, so the label and " +
				"status are the surviving copy's; WHERE tests sorting-key columns and `task_type`, which every copy " +
				"of a row shares (an evaluator has one task type); the status test sits inside `countIf`.",
			SQL: `SELECT
    evaluator,
    model,
    label,
    countIf(status = 'ok') AS verdicts
FROM {db}.scores FINAL
WHERE task_type = 'pairwise'
    AND event_time >= {from:DateTime}
    AND event_time < {to:DateTime}
    AND evaluator IN {evaluator:Array(String)}
    AND model IN {model:Array(String)}
    AND app IN {app:Array(String)}
GROUP BY evaluator, model, label
HAVING verdicts > 0
ORDER BY evaluator, model, label`,
			Params:  []string{"from", "to"},
			Filters: []string{"evaluator", "model", "app"},
		},
		{
			Name:  "alerts_in_range",
			Title: "Alerts active at some time in a range",
			Explanation: "The alert timeline of `raterd report html`. Every alert of `{db}.alerts` whose active span " +
				"overlaps [`from`, `to`): it began (`since`) before `to`, and it is not resolved or was resolved " +
				"(its last `updated_at`) at or after `from`. One row per alert, in its latest state: `alert_id`, " +
				"`rule`, `evaluator`, `model`, `app`, `judge`, `state` (pending, firing, resolved), `severity`, " +
				"`observed` against `expected`, the interval `interval_low` … `interval_high` around the observed " +
				"value, `sample_size`, `since`, `updated_at` and `message`; the newest first (latest `since`), at " +
				"most `limit` of them (the report asks for one more than it shows, to know that some were left " +
				"out).\n\n" +
				"Filters: `evaluator`, `model` and `app` are optional lists, as in report_cells. An alert of a rule " +
				"over every evaluator, model or app (an empty `evaluator`, `model` or `app`, such as a judge's " +
				"parse-failure alert) concerns every value, so every filter keeps it.\n\n" +
				"Replays: every state change of an alert inserts its whole row again with a later `updated_at` " +
				"(ReplacingMergeTree(updated_at)). The inner query collapses the copies to one per alert with " +
				"`argMax(…, updated_at)` grouped by the sorting key, which every copy shares, and the range test is " +
				"a HAVING on the latest state; WHERE tests only sorting-key columns.",
			SQL: `SELECT
    alert_id,
    rule,
    evaluator,
    model,
    app,
    judge,
    toString(last_state) AS state,
    last_severity AS severity,
    last_observed AS observed,
    last_expected AS expected,
    last_low AS interval_low,
    last_high AS interval_high,
    last_sample_size AS sample_size,
    last_since AS since,
    last_updated_at AS updated_at,
    last_message AS message
FROM
(
    SELECT
        alert_id,
        rule,
        evaluator,
        model,
        app,
        judge,
        argMax(state, updated_at) AS last_state,
        argMax(severity, updated_at) AS last_severity,
        argMax(observed, updated_at) AS last_observed,
        argMax(expected, updated_at) AS last_expected,
        argMax(interval_low, updated_at) AS last_low,
        argMax(interval_high, updated_at) AS last_high,
        argMax(sample_size, updated_at) AS last_sample_size,
        argMax(since, updated_at) AS last_since,
        max(updated_at) AS last_updated_at,
        argMax(message, updated_at) AS last_message
    FROM {db}.alerts
    WHERE 1
        AND (evaluator = '' OR evaluator IN {evaluator:Array(String)})
        AND (model = '' OR model IN {model:Array(String)})
        AND (app = '' OR app IN {app:Array(String)})
    GROUP BY rule, evaluator, model, app, judge, alert_id
    HAVING last_since < {to:DateTime}
        AND (last_state != 'resolved' OR last_updated_at >= {from:DateTime})
)
ORDER BY since DESC, alert_id
LIMIT {limit:UInt64}`,
			Params:  []string{"to", "from", "limit"},
			Filters: []string{"evaluator", "model", "app"},
		},
	}
}

// Markers around the generated part of docs/sql.md; `go generate ./sinks/clickhouse`
// rewrites it.
//
//go:generate go test -count=1 -run ^TestCookbookDoc$ -update-cookbook-doc
const (
	CookbookDocBegin = "<!-- cookbook:begin (generated from clickhouse.Cookbook(); edit sinks/clickhouse/cookbook.go, then run: go test ./sinks/clickhouse -run TestCookbookDoc -update-cookbook-doc) -->"
	CookbookDocEnd   = "<!-- cookbook:end -->"
)

// CookbookMarkdown returns the generated part of docs/sql.md: one section per query with
// its title, name, parameters and filters, explanation and SQL.
func CookbookMarkdown() string {
	var b strings.Builder
	for i, q := range Cookbook() {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "### %d. %s\n\n", i+1, q.Title)
		fmt.Fprintf(&b, "Name: `%s`. Parameters:", q.Name)
		for j, p := range q.Params {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " `%s` (%s)", p, q.ParamType(p))
		}
		if len(q.Filters) > 0 {
			b.WriteString(". Optional filters:")
			for j, p := range q.Filters {
				if j > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, " `%s` (%s)", p, q.ParamType(p))
			}
		}
		b.WriteString(".\n\n")
		b.WriteString(q.Explanation)
		b.WriteString("\n\n```sql\n")
		b.WriteString(q.SQL)
		b.WriteString("\n```\n")
	}
	return b.String()
}
