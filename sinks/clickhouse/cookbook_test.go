package clickhouse

import (
	"strings"
	"testing"
)

// TestCookbookFilters: an optional filter's line is kept when its parameter is given and
// left out otherwise; WithFilters turns the others off; malformed filters are rejected.
func TestCookbookFilters(t *testing.T) {
	q := CookbookQuery{Name: "f", SQL: "SELECT 1\nFROM {db}.scores\nWHERE evaluator = {evaluator:String}\n" +
		"    AND model = {model:String}\n    AND app = {app:String}\nGROUP BY model",
		Params: []string{"evaluator"}, Filters: []string{"model", "app"}}
	render := func(q CookbookQuery, params map[string]string) string {
		t.Helper()
		sql, err := q.Render("raterd", params)
		if err != nil {
			t.Fatal(err)
		}
		return sql
	}
	if got, want := render(q, map[string]string{"evaluator": "e"}), "SELECT 1\nFROM raterd.scores\nWHERE evaluator = 'e'\nGROUP BY model"; got != want {
		t.Errorf("no filters:\n%s\nwant\n%s", got, want)
	}
	if got := render(q, map[string]string{"evaluator": "e", "app": ""}); !strings.Contains(got, "    AND app = ''\nGROUP BY") || strings.Contains(got, "model =") {
		t.Errorf("app filter:\n%s", got)
	}
	// A value that looks like a filter placeholder stays a literal.
	if got := render(q, map[string]string{"evaluator": "{model:String}"}); strings.Contains(got, "AND model") {
		t.Errorf("a value brought a filter line back:\n%s", got)
	}
	if q.ParamType("model") != ParamString || len(q.ActiveFilters()) != 2 {
		t.Errorf("ParamType(model) = %q, ActiveFilters = %v", q.ParamType("model"), q.ActiveFilters())
	}

	only, err := q.WithFilters("app")
	if err != nil {
		t.Fatal(err)
	}
	if only.SQL != q.SQL || only.ParamType("model") != "" || strings.Join(only.ActiveFilters(), ",") != "app" {
		t.Errorf("WithFilters(app): SQL changed, or model still taken (%q), or filters %v", only.ParamType("model"), only.ActiveFilters())
	}
	if _, err := only.Render("raterd", map[string]string{"evaluator": "e", "model": "m"}); err == nil || !strings.Contains(err.Error(), `unknown parameter "model"`) {
		t.Errorf("WithFilters(app) took model: %v", err)
	}
	if _, err := q.WithFilters("judge"); err == nil {
		t.Error("WithFilters(judge) on a query without that filter = nil error")
	}
	if _, err := q.Render("raterd", map[string]string{"model": "m"}); err == nil || !strings.Contains(err.Error(), `missing parameter "evaluator"`) {
		t.Errorf("a filter stood in for a required parameter: %v", err)
	}

	for _, bad := range []CookbookQuery{
		{Name: "first", SQL: "SELECT 1 WHERE model = {model:String}", Filters: []string{"model"}},
		{Name: "shared", SQL: "SELECT 1 WHERE 1\n    AND model IN ({model:String}, {app:String})", Params: []string{"app"}, Filters: []string{"model"}},
		{Name: "unlisted", SQL: "SELECT 1 WHERE 1\n    AND model = {model:String}"},
		{Name: "order", SQL: "SELECT 1 WHERE 1\n    AND model = {model:String}\n    AND app = {app:String}", Filters: []string{"app", "model"}},
	} {
		if _, err := bad.Render("raterd", nil); err == nil {
			t.Errorf("query %s (%q) rendered without an error", bad.Name, bad.SQL)
		}
	}
}

// TestCookbookListParam: an Array(String) parameter is a JSON array written as a
// parenthesised list of quoted literals; anything else is refused.
func TestCookbookListParam(t *testing.T) {
	q := CookbookQuery{Name: "l", SQL: "SELECT 1\nFROM {db}.scores\nWHERE 1\n    AND model IN {model:Array(String)}",
		Filters: []string{"model"}}
	for v, want := range map[string]string{
		`["v7"]`:                      "('v7')",
		ListValue([]string{"a", "b"}): "('a', 'b')",
		ListValue([]string{"it's", `\`, "x\ny", "{db}"}): `('it\'s', '\\', 'x\x0Ay', '{db}')`,
		` [ "a" , "b" ] `: "('a', 'b')",
	} {
		sql, err := q.Render("raterd", map[string]string{"model": v})
		if err != nil {
			t.Fatalf("Render(model=%s): %v", v, err)
		}
		if !strings.HasSuffix(sql, "AND model IN "+want) {
			t.Errorf("Render(model=%s) =\n%s\nwant it to end with %s", v, sql, want)
		}
	}
	for v, errHas := range map[string]string{
		`[]`:           "empty list",
		`"v7"`:         "not a JSON array of strings",
		`v7`:           "not a JSON array of strings",
		`[1, 2]`:       "not a JSON array of strings",
		`["a"] OR 1=1`: "not a JSON array of strings",
		"[\"\xff\"]":   "not valid UTF-8",
		`null`:         "empty list",
	} {
		if _, err := q.Render("raterd", map[string]string{"model": v}); err == nil || !strings.Contains(err.Error(), errHas) {
			t.Errorf("Render(model=%s) error = %v, want one containing %q", v, err, errHas)
		}
	}
	if q.ParamType("model") != ParamStringList {
		t.Errorf("ParamType(model) = %q, want %q", q.ParamType("model"), ParamStringList)
	}
}
