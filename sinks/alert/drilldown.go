package alert

import (
	"fmt"
	"strings"
	"time"

	"raterd/internal/chsql"
	"raterd/sinks/alert/detect"
	"raterd/sinks/alert/notify"
)

// DrilldownSQL returns a query over scores FINAL showing the series' rows around the
// detector's decision d (event time), worst first: from d.Since (or d.At) minus the
// rule's window (1h for non-windowed rules) to d.At, or the hour before now when the
// series has no data. Every identifier and string is quoted, whatever it holds.
func DrilldownSQL(db string, r *RuleConfig, s notify.Series, d detect.Decision, now time.Time) string {
	lookback := time.Hour
	if r.Threshold != nil && r.Threshold.Window > 0 {
		lookback = r.Threshold.Window
	}
	to := d.At
	if to.IsZero() {
		to = now
	}
	from := to
	if !d.Since.IsZero() && d.Since.Before(from) && d.State == detect.StateAlert {
		from = d.Since
	}
	from = from.Add(-lookback).UTC().Truncate(time.Second)
	to = to.UTC().Truncate(time.Second).Add(time.Second)
	model := "model = " + chsql.QuoteString(s.Model)
	if r.Canary != nil {
		model = fmt.Sprintf("(model = %s OR match(model, %s))", chsql.QuoteString(s.Model), chsql.QuoteString(globRegexp(r.Canary.Baseline)))
	}
	order := "score ASC"
	if r.direction() == detect.Above {
		order = "score DESC"
	}
	return fmt.Sprintf(`SELECT event_time, model, record_id, score, label, explanation, rubric_version
FROM %s.scores FINAL
WHERE evaluator = %s AND %s AND app = %s AND judge = %s AND status = 'ok'
  AND event_time >= toDateTime(%s, 'UTC') AND event_time < toDateTime(%s, 'UTC')
ORDER BY %s, event_time DESC
LIMIT 100`, chsql.QuoteIdent(db), chsql.QuoteString(s.Evaluator), model, chsql.QuoteString(s.App), chsql.QuoteString(s.Judge),
		chsql.QuoteString(from.Format(time.DateTime)), chsql.QuoteString(to.Format(time.DateTime)), order)
}

// globRegexp translates a path.Match glob into an anchored RE2 expression.
func globRegexp(g string) string {
	var b strings.Builder
	b.WriteByte('^')
	for i := 0; i < len(g); i++ {
		switch c := g[i]; c {
		case '*':
			b.WriteString("[^/]*")
		case '?':
			b.WriteString("[^/]")
		case '\\':
			if i+1 < len(g) {
				i++
				if strings.IndexByte(`.+*?()|[]{}^$\`, g[i]) >= 0 {
					b.WriteByte('\\')
				}
				b.WriteByte(g[i])
			}
		case '[':
			j := strings.IndexByte(g[i+1:], ']')
			if j < 0 {
				b.WriteString(`\[`)
				continue
			}
			class := g[i+1 : i+1+j]
			b.WriteByte('[')
			if strings.HasPrefix(class, "^") {
				b.WriteByte('^')
				class = class[1:]
			}
			b.WriteString(strings.NewReplacer(`\`, `\\`, `[`, `\[`).Replace(class))
			b.WriteByte(']')
			i += j + 1
		default:
			if strings.IndexByte(`.+*?()|[]{}^$\`, c) >= 0 {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
	}
	b.WriteByte('$')
	return b.String()
}
