package clickhouse

import (
	"strings"
	"testing"
	"time"
)

// FuzzCookbookParams feeds arbitrary parameter values through the renderer: it never
// panics, a string parameter always becomes exactly one quoted literal (nothing of the
// value escapes into the SQL), and a timestamp it accepts lies in the DateTime range.
func FuzzCookbookParams(f *testing.F) {
	for _, s := range []string{"support-llm-v7", "'; DROP TABLE scores; --", `\'`, "{db}", "a\x00b", "2026-11-28T12:00:00Z", "2026-11-28", "9999-01-01", "é🙂", `["a","b"]`, `["it's"]`, `[]`, `["\u0000'"]`} {
		f.Add(s)
	}
	q, ok := CookbookQueryNamed("score_trend")
	if !ok {
		f.Fatal("no score_trend query")
	}
	f.Fuzz(func(t *testing.T, v string) {
		lit, err := paramLiteral(ParamString, v)
		if err == nil {
			if len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
				t.Fatalf("literal %q is not quoted", lit)
			}
			inner := lit[1 : len(lit)-1]
			// Every quote inside is escaped: the literal cannot end early.
			for i := 0; i < len(inner); i++ {
				switch inner[i] {
				case '\\':
					i++ // an escape and the escaped byte
				case '\'':
					t.Fatalf("unescaped quote in %q", lit)
				}
			}
		}
		if lit, err := paramLiteral(ParamStringList, v); err == nil {
			// A list is "(" quoted literals joined by ", " ")": nothing of a value escapes.
			if len(lit) < 4 || lit[0] != '(' || lit[len(lit)-1] != ')' {
				t.Fatalf("list literal %q is not parenthesised", lit)
			}
			inner, quoted, n := lit[1:len(lit)-1], false, 0
			for i := 0; i < len(inner); i++ {
				switch c := inner[i]; {
				case quoted && c == '\\':
					i++
				case c == '\'':
					quoted = !quoted
					if !quoted {
						n++
					}
				case !quoted && c != ',' && c != ' ':
					t.Fatalf("list literal %q has %q outside its quotes", lit, c)
				}
			}
			if quoted || n == 0 {
				t.Fatalf("list literal %q: unbalanced quotes or no element", lit)
			}
		}
		if ts, err := ParseCookbookTime(v); err == nil {
			if ts.Before(minDateTime) || ts.After(maxDateTime) || ts.Location() != time.UTC {
				t.Fatalf("accepted %q as %s", v, ts)
			}
		}
		params := map[string]string{}
		for _, p := range q.Params {
			params[p] = v
		}
		if sql, err := q.Render("raterd", params); err == nil && strings.Contains(sql, "{") && !strings.Contains(v, "{") {
			t.Fatalf("placeholder left in %q", sql)
		}
	})
}
