package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.yaml.in/yaml/v3"
)

// The Grafana dashboard over raterd.scores (deploy/grafana): its provisioning, its JSON,
// and every panel's and variable's SQL run against the real ClickHouse over the cookbook
// fixture, before and after replays.

const (
	grafanaDashboardFile  = "../../deploy/grafana/dashboards/raterd.json"
	grafanaDatasourceFile = "../../deploy/grafana/provisioning/datasources/clickhouse.yaml"
	grafanaProviderFile   = "../../deploy/grafana/provisioning/dashboards/raterd.yaml"
	grafanaComposeFile    = "../../deploy/grafana/compose.yaml"
	grafanaReadmeFile     = "../../deploy/grafana/README.md"
	rootComposeFile       = "../../docker-compose.yml"
	grafanaPluginType     = "grafana-clickhouse-datasource"
	// grafanaDatabase is the database the dashboard's SQL names; the tests substitute
	// their own.
	grafanaDatabase = "raterd"
)

type grafanaDSRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaTarget struct {
	RefID      string        `json:"refId"`
	Datasource *grafanaDSRef `json:"datasource"`
	EditorType string        `json:"editorType"`
	QueryType  string        `json:"queryType"`
	Format     *int          `json:"format"`
	RawSQL     string        `json:"rawSql"`
}

type grafanaGridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

type grafanaPanel struct {
	ID         *int            `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	GridPos    *grafanaGridPos `json:"gridPos"`
	Datasource *grafanaDSRef   `json:"datasource"`
	Targets    []grafanaTarget `json:"targets"`
	Panels     []grafanaPanel  `json:"panels"` // the panels of a collapsed row
}

type grafanaVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *grafanaDSRef   `json:"datasource"`
	Query      json.RawMessage `json:"query"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
}

// text is the variable's query: the SQL of a query variable (a plain string, or the
// plugin's {"rawSql": …} object), the default value of a textbox.
func (v grafanaVariable) text() (string, error) {
	var s string
	if err := json.Unmarshal(v.Query, &s); err == nil {
		return s, nil
	}
	var obj struct {
		RawSQL string `json:"rawSql"`
	}
	if err := json.Unmarshal(v.Query, &obj); err != nil {
		return "", fmt.Errorf("variable %s: query is neither a string nor an object with rawSql: %v", v.Name, err)
	}
	return obj.RawSQL, nil
}

type grafanaDashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []grafanaVariable `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

// allPanels returns the dashboard's panels, those inside collapsed rows included.
func (d grafanaDashboard) allPanels() []grafanaPanel {
	var out []grafanaPanel
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

func (d grafanaDashboard) variable(name string) (grafanaVariable, bool) {
	for _, v := range d.Templating.List {
		if v.Name == name {
			return v, true
		}
	}
	return grafanaVariable{}, false
}

func loadGrafanaDashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	data, err := os.ReadFile(grafanaDashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", grafanaDashboardFile, err)
	}
	return d
}

func loadYAML(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// grafanaDatasourceFileYAML is the part of provisioning/datasources/clickhouse.yaml the
// tests read.
type grafanaDatasourceFileYAML struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name     string `yaml:"name"`
		UID      string `yaml:"uid"`
		Type     string `yaml:"type"`
		JSONData struct {
			Host            string `yaml:"host"`
			Port            int    `yaml:"port"`
			Protocol        string `yaml:"protocol"`
			Secure          bool   `yaml:"secure"`
			Username        string `yaml:"username"`
			DefaultDatabase string `yaml:"defaultDatabase"`
		} `yaml:"jsonData"`
		SecureJSONData map[string]string `yaml:"secureJsonData"`
	} `yaml:"datasources"`
}

type grafanaProviderFileYAML struct {
	APIVersion int `yaml:"apiVersion"`
	Providers  []struct {
		Name    string `yaml:"name"`
		Type    string `yaml:"type"`
		Options struct {
			Path string `yaml:"path"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

type composeFileYAML struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Ports       []string          `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   map[string]any    `yaml:"depends_on"`
	} `yaml:"services"`
}

var (
	// grafanaVarRef is Grafana's template variable syntax (templateSrv's variableRegex):
	// $name, [[name]] or [[name:format]], ${name}, ${name.field} or ${name:format}.
	grafanaVarRef = regexp.MustCompile(`\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}`)
	// grafanaMacro is a plugin macro, $__name or $__name(args), as sqlds finds them.
	grafanaMacro = regexp.MustCompile(`\$__(\w+)(?:\(([^()]*)\))?`)
	// grafanaTableRef is a database-qualified table name.
	grafanaTableRef = regexp.MustCompile(`\b(\w+)\.(\w+)\b`)
	grafanaFrom     = regexp.MustCompile(`\bFROM\s+(\S+)(\s+FINAL\b)?`)
	// grafanaWhere is a WHERE clause's condition (the cookbook's whereClause, which also
	// ends at ORDER BY, HAVING and LIMIT: variable queries have no GROUP BY).
	grafanaWhere = regexp.MustCompile(`(?s)\bWHERE\b(.*?)(?:\bGROUP BY\b|\bORDER BY\b|\bHAVING\b|\bLIMIT\b|\n\s*\)|$)`)
)

// grafanaSupportedMacros are the plugin macros the dashboard may use: those whose
// expansion runs on ClickHouse 18.16 and on current releases. $__timeInterval and
// $__timeInterval_ms expand to toStartOfInterval, which 18.16 lacks ("Unknown function
// toStartOfInterval"); the dashboard buckets with toStartOfHour or with $__interval_s
// instead. The _ms variants need DateTime64, which 18.16 lacks too.
var grafanaSupportedMacros = map[string]bool{"timeFilter": true, "fromTime": true, "toTime": true, "interval_s": true}

// grafanaExpander turns a dashboard query into the SQL that reaches ClickHouse, the way
// Grafana and grafana-clickhouse-datasource (v4) do:
//
//  1. Template variables, in the browser, before the query is sent (templateSrv.replace
//     in the plugin's applyTemplateVariables). ${name:sqlstring} is Grafana's
//     sqlStringFormatter: every selected value in single quotes, with ' doubled and "
//     escaped as \", joined with commas; a multi-value variable set to All stands for all
//     its options. ${name}, $name and [[name]] without a format use the plugin's own
//     formatter: a single value as it is, several as 'a','b' without any escaping (the
//     dashboard never relies on that; TestGrafanaDashboardDefinition checks). A $word that
//     is not a variable, such as $__timeFilter, is left alone.
//  2. Macros, in the plugin's backend (pkg/macros/macros.go), from the query's time range
//     and interval:
//     $__timeFilter(c)   → c >= toDateTime(<from>) AND c <= toDateTime(<to>), Unix seconds
//     $__fromTime        → toDateTime(<from>), $__toTime → toDateTime(<to>)
//     $__interval_s      → the interval in whole seconds, at least 1
//     $__timeInterval(c) → toStartOfInterval(toDateTime(c), INTERVAL <interval> second)
//     Other macros are an error here, so that using one is a decision the test sees.
//  3. The database: the dashboard names raterd.<table>; the test reads db.<table>.
type grafanaExpander struct {
	from, to time.Time
	interval time.Duration
	vars     map[string][]string // the selected values of each variable, All resolved
	db       string
}

func sqlStringFormat(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		v = strings.ReplaceAll(v, `'`, `''`)
		v = strings.ReplaceAll(v, `"`, `\"`)
		quoted[i] = "'" + v + "'"
	}
	return strings.Join(quoted, ",")
}

func (e grafanaExpander) expand(sql string) (string, error) {
	var errs []string
	// 1. Template variables.
	sql = grafanaVarRef.ReplaceAllStringFunc(sql, func(ref string) string {
		m := grafanaVarRef.FindStringSubmatch(ref)
		name, format := m[1], ""
		switch {
		case m[2] != "":
			name, format = m[2], m[3]
		case m[4] != "":
			name, format = m[4], m[6]
			if m[5] != "" {
				errs = append(errs, "field access "+ref+" is not supported")
				return ref
			}
		}
		values, ok := e.vars[name]
		if !ok {
			return ref // not a variable: Grafana leaves it for the backend
		}
		switch format {
		case "sqlstring":
			return sqlStringFormat(values)
		case "":
			if len(values) == 1 {
				return values[0]
			}
			return "'" + strings.Join(values, "','") + "'"
		default:
			errs = append(errs, fmt.Sprintf("format %q of %s is not supported", format, ref))
			return ref
		}
	})
	// 2. Macros.
	sql = grafanaMacro.ReplaceAllStringFunc(sql, func(ref string) string {
		m := grafanaMacro.FindStringSubmatch(ref)
		name := m[1]
		var args []string
		if strings.HasSuffix(ref, ")") {
			for _, a := range strings.Split(m[2], ",") {
				args = append(args, strings.TrimSpace(a))
			}
		}
		from, to := e.from.Unix(), e.to.Unix()
		seconds := max(int64(e.interval/time.Second), 1)
		switch {
		case name == "timeFilter" && len(args) == 1:
			return fmt.Sprintf("%s >= toDateTime(%d) AND %s <= toDateTime(%d)", args[0], from, args[0], to)
		case name == "fromTime" && args == nil:
			return fmt.Sprintf("toDateTime(%d)", from)
		case name == "toTime" && args == nil:
			return fmt.Sprintf("toDateTime(%d)", to)
		case name == "interval_s" && args == nil:
			return strconv.FormatInt(seconds, 10)
		case name == "timeInterval" && len(args) == 1:
			return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", args[0], seconds)
		}
		errs = append(errs, "unsupported macro "+ref)
		return ref
	})
	// 3. The database.
	sql = grafanaTableRef.ReplaceAllStringFunc(sql, func(ref string) string {
		if db, table, _ := strings.Cut(ref, "."); db == grafanaDatabase {
			return e.db + "." + table
		}
		return ref
	})
	if len(errs) > 0 {
		return "", fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return sql, nil
}

// TestGrafanaExpander pins the expansion to what the plugin and Grafana produce.
func TestGrafanaExpander(t *testing.T) {
	e := grafanaExpander{
		from:     time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
		to:       time.Date(2026, 11, 29, 23, 59, 59, 0, time.UTC),
		interval: time.Hour,
		vars:     map[string][]string{"evaluator": {"helpfulness"}, "model": {"a", `it's "v9"`}},
		db:       "testdb",
	}
	for in, want := range map[string]string{
		"SELECT 1 FROM raterd.scores FINAL WHERE $__timeFilter(event_time)":                      "SELECT 1 FROM testdb.scores FINAL WHERE event_time >= toDateTime(1795392000) AND event_time <= toDateTime(1795996799)",
		"evaluator = ${evaluator:sqlstring} AND model IN (${model:sqlstring})":                   `evaluator = 'helpfulness' AND model IN ('a','it''s \"v9\"')`,
		"'${evaluator}', $evaluator, [[evaluator]], ${model}":                                    `'helpfulness', helpfulness, helpfulness, 'a','it's "v9"'`,
		"$__fromTime, $__toTime, $__interval_s, $__timeInterval(event_time), $unknown, ${other}": "toDateTime(1795392000), toDateTime(1795996799), 3600, toStartOfInterval(toDateTime(event_time), INTERVAL 3600 second), $unknown, ${other}",
		"raterd_other.scores, raterd.scores_hourly, system.tables":                               "raterd_other.scores, testdb.scores_hourly, system.tables",
	} {
		got, err := e.expand(in)
		if err != nil {
			t.Errorf("expand(%q): %v", in, err)
		} else if got != want {
			t.Errorf("expand(%q) =\n%s\nwant\n%s", in, got, want)
		}
	}
	for _, in := range []string{"$__timeGroup(event_time, 1h)", "$__timeFilter", "${model:csv}", "${model.text}"} {
		if got, err := e.expand(in); err == nil {
			t.Errorf("expand(%q) = %q, want an error", in, got)
		}
	}
}

// grafanaQuery is one SQL statement of the dashboard: a panel target or a query variable.
type grafanaQuery struct {
	where string // for messages
	sql   string
	panel bool
}

func grafanaQueries(t *testing.T, d grafanaDashboard) []grafanaQuery {
	t.Helper()
	var qs []grafanaQuery
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		sql, err := v.text()
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, grafanaQuery{where: "variable " + v.Name, sql: sql})
	}
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			qs = append(qs, grafanaQuery{where: fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), sql: tg.RawSQL, panel: true})
		}
	}
	return qs
}

// TestGrafanaDashboardDefinition checks the dashboard and its provisioning as data: the
// JSON's structure, the data source wiring, and every query against the cookbook's rules
// for replay-correct SQL.
func TestGrafanaDashboardDefinition(t *testing.T) {
	d := loadGrafanaDashboard(t)

	// Provisioning: the data source.
	var dsFile grafanaDatasourceFileYAML
	loadYAML(t, grafanaDatasourceFile, &dsFile)
	if dsFile.APIVersion != 1 || len(dsFile.Datasources) != 1 {
		t.Fatalf("%s: want apiVersion 1 and one data source, got %d and %d", grafanaDatasourceFile, dsFile.APIVersion, len(dsFile.Datasources))
	}
	ds := dsFile.Datasources[0]
	want := grafanaDSRef{Type: grafanaPluginType, UID: ds.UID}
	if ds.Type != grafanaPluginType || ds.UID == "" || ds.Name == "" {
		t.Errorf("data source: type %q uid %q name %q, want type %s and a uid and name", ds.Type, ds.UID, ds.Name, grafanaPluginType)
	}
	var root composeFileYAML
	loadYAML(t, rootComposeFile, &root)
	chService, ok := root.Services[ds.JSONData.Host]
	if !ok {
		t.Errorf("data source host %q is not a service of docker-compose.yml", ds.JSONData.Host)
	} else if !strings.Contains(chService.Image, "clickhouse") {
		t.Errorf("data source host %q is service %q with image %q, not ClickHouse", ds.JSONData.Host, ds.JSONData.Host, chService.Image)
	}
	j := ds.JSONData
	if j.Port != 9000 || j.Protocol != "native" || j.Secure || j.Username == "" || j.DefaultDatabase != grafanaDatabase {
		t.Errorf("data source jsonData = %+v, want port 9000, protocol native, not secure, a username, defaultDatabase %s", j, grafanaDatabase)
	}
	if _, ok := ds.SecureJSONData["password"]; !ok {
		t.Error("data source has no secureJsonData.password")
	}

	// Provisioning: the dashboards, and the compose service that mounts both.
	var prov grafanaProviderFileYAML
	loadYAML(t, grafanaProviderFile, &prov)
	if prov.APIVersion != 1 || len(prov.Providers) != 1 || prov.Providers[0].Type != "file" || prov.Providers[0].Options.Path == "" {
		t.Fatalf("%s: want apiVersion 1 and one file provider with options.path, got %+v", grafanaProviderFile, prov)
	}
	var compose composeFileYAML
	loadYAML(t, grafanaComposeFile, &compose)
	grafana, ok := compose.Services["grafana"]
	if !ok {
		t.Fatalf("%s has no grafana service", grafanaComposeFile)
	}
	mounts := map[string]string{}
	for _, v := range grafana.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			t.Errorf("volume %q is not source:target", v)
			continue
		}
		mounts[parts[0]] = parts[1]
	}
	if got := mounts["./deploy/grafana/dashboards"]; got != prov.Providers[0].Options.Path {
		t.Errorf("compose mounts ./deploy/grafana/dashboards at %q, the provider reads %q", got, prov.Providers[0].Options.Path)
	}
	if got := mounts["./deploy/grafana/provisioning"]; got != "/etc/grafana/provisioning" {
		t.Errorf("compose mounts ./deploy/grafana/provisioning at %q, want /etc/grafana/provisioning", got)
	}
	if !strings.Contains(grafana.Environment["GF_PLUGINS_PREINSTALL_SYNC"]+grafana.Environment["GF_PLUGINS_PREINSTALL"], grafanaPluginType) {
		t.Errorf("compose's grafana service does not install %s", grafanaPluginType)
	}
	for dep := range grafana.DependsOn {
		if _, ok := root.Services[dep]; !ok {
			t.Errorf("compose's grafana service depends on %q, which docker-compose.yml lacks", dep)
		}
	}
	// The README shows the compose file verbatim.
	readme, err := os.ReadFile(grafanaReadmeFile)
	if err != nil {
		t.Fatal(err)
	}
	composeText, err := os.ReadFile(grafanaComposeFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```yaml\n"+string(composeText)+"```") {
		t.Errorf("%s does not show %s verbatim in a ```yaml block", grafanaReadmeFile, grafanaComposeFile)
	}

	// The dashboard.
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q: both must be set", d.UID, d.Title)
	}
	ids := map[int]string{}
	var boxes []struct {
		title string
		g     grafanaGridPos
	}
	panels := d.allPanels()
	if len(panels) == 0 {
		t.Fatal("dashboard has no panels")
	}
	for _, p := range panels {
		if p.ID == nil {
			t.Errorf("panel %q has no id", p.Title)
		} else if other, dup := ids[*p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", other, p.Title, *p.ID)
		} else {
			ids[*p.ID] = p.Title
		}
		if p.Title == "" {
			t.Errorf("panel %v has no title", p.ID)
		}
		g := p.GridPos
		if g == nil {
			t.Errorf("panel %q has no gridPos", p.Title)
		} else if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v is outside the 24-column grid", p.Title, *g)
		} else {
			for _, b := range boxes {
				if g.X < b.g.X+b.g.W && b.g.X < g.X+g.W && g.Y < b.g.Y+b.g.H && b.g.Y < g.Y+g.H {
					t.Errorf("panels %q and %q overlap", b.title, p.Title)
				}
			}
			boxes = append(boxes, struct {
				title string
				g     grafanaGridPos
			}{p.Title, *g})
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || *p.Datasource != want {
			t.Errorf("panel %q: datasource %+v, want %+v (the provisioned one)", p.Title, p.Datasource, want)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refIDs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refIDs[tg.RefID] {
				t.Errorf("panel %q: refId %q is empty or repeated", p.Title, tg.RefID)
			}
			refIDs[tg.RefID] = true
			if tg.Datasource == nil || *tg.Datasource != want {
				t.Errorf("panel %q target %s: datasource %+v, want %+v", p.Title, tg.RefID, tg.Datasource, want)
			}
			if tg.EditorType != "sql" || strings.TrimSpace(tg.RawSQL) == "" {
				t.Errorf("panel %q target %s: want editorType sql and rawSql, got %q", p.Title, tg.RefID, tg.EditorType)
			}
			// The plugin's backend reads format (0 time series, 1 table); the editor, queryType.
			wantFormat, wantType := 1, "table"
			if p.Type == "timeseries" {
				wantFormat, wantType = 0, "timeseries"
			}
			if tg.Format == nil || *tg.Format != wantFormat || tg.QueryType != wantType {
				t.Errorf("panel %q (%s) target %s: format %v queryType %q, want %d and %q", p.Title, p.Type, tg.RefID, tg.Format, tg.QueryType, wantFormat, wantType)
			}
		}
	}
	names := map[string]bool{}
	for _, v := range d.Templating.List {
		if names[v.Name] || v.Name == "" {
			t.Errorf("variable name %q is empty or repeated", v.Name)
		}
		names[v.Name] = true
		switch v.Type {
		case "query":
			if v.Datasource == nil || *v.Datasource != want {
				t.Errorf("variable %s: datasource %+v, want %+v", v.Name, v.Datasource, want)
			}
		case "textbox":
		default:
			t.Errorf("variable %s has type %q; the tests know query and textbox", v.Name, v.Type)
		}
	}
	for _, name := range []string{"evaluator", "model", "app", "judge"} {
		if v, ok := d.variable(name); !ok || v.Type != "query" {
			t.Errorf("dashboard lacks the query variable %s", name)
		}
	}

	// Every statement.
	for _, q := range grafanaQueries(t, d) {
		for _, p := range grafanaSQLProblems(q, names) {
			t.Error(p)
		}
	}
}

// grafanaSQLProblems applies the cookbook's rules (TestCookbookDefinitions) to one
// dashboard statement, plus the dashboard's own: variables quoted by Grafana, supported
// macros only, a time filter on every read of scores. It returns what is wrong.
func grafanaSQLProblems(q grafanaQuery, variables map[string]bool) []string {
	var problems []string
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	sql := q.sql
	if strings.Contains(sql, ";") || strings.TrimSpace(sql) != sql {
		errorf("%s: SQL must be one statement without surrounding space", q.where)
	}
	for _, m := range grafanaVarRef.FindAllStringSubmatch(sql, -1) {
		name := m[1] + m[2] + m[4]
		if strings.HasPrefix(name, "__") {
			continue // a macro or Grafana's own
		}
		if !variables[name] {
			errorf("%s: %s refers to no variable", q.where, m[0])
		} else if m[4] == "" || m[6] != "sqlstring" {
			errorf("%s: %s must be ${%s:sqlstring}: Grafana then quotes and escapes each value; without a format the plugin inserts values as they are", q.where, m[0], name)
		}
	}
	for _, m := range grafanaMacro.FindAllStringSubmatch(sql, -1) {
		if !grafanaSupportedMacros[m[1]] {
			errorf("%s: macro %s is not one the dashboard may use (18.16 lacks what $__timeInterval expands to)", q.where, m[0])
		}
	}
	for _, m := range grafanaTableRef.FindAllStringSubmatch(sql, -1) {
		if m[1] == grafanaDatabase && m[2] != "scores" {
			errorf("%s: reads %s; the dashboard reads raterd.scores only (the aggregate views count replays)", q.where, m[0])
		}
	}
	reads := 0
	for _, m := range grafanaFrom.FindAllStringSubmatch(sql, -1) {
		if m[1] == "(" {
			continue
		}
		if m[1] != grafanaDatabase+".scores" {
			errorf("%s: FROM %s, want %s.scores or a subquery", q.where, m[1], grafanaDatabase)
		}
		reads++
	}
	if reads == 0 {
		errorf("%s: reads no table", q.where)
	}
	if n := strings.Count(sql, "$__timeFilter(event_time)"); n != reads {
		errorf("%s: %d reads of scores but %d $__timeFilter(event_time): every read needs the time range", q.where, reads, n)
	}
	if strings.Contains(sql, "PREWHERE") {
		errorf("%s: PREWHERE runs before FINAL collapses copies", q.where)
	}
	if q.panel {
		final := strings.Contains(sql, grafanaDatabase+".scores FINAL")
		argMax := strings.Contains(sql, "argMax(") && strings.Contains(sql, "scored_at)")
		if !final && !argMax {
			errorf("%s: reads scores neither FINAL nor through argMax(…, scored_at)", q.where)
		}
		if final && argMax {
			errorf("%s: mixes FINAL and argMax; use one pattern", q.where)
		}
		if argMax {
			for _, m := range grafanaFrom.FindAllStringSubmatch(sql, -1) {
				if m[2] != "" {
					errorf("%s: mixes FINAL and argMax", q.where)
				}
			}
		} else {
			for _, m := range grafanaFrom.FindAllStringSubmatch(sql, -1) {
				if m[1] != "(" && m[2] == "" {
					errorf("%s: FROM %s without FINAL", q.where, m[1])
				}
			}
		}
	}
	// WHERE tests only sorting-key columns. Variable values and string literals become
	// '', a macro becomes its arguments.
	cleaned := grafanaMacro.ReplaceAllString(sql, " $2 ")
	cleaned = grafanaVarRef.ReplaceAllString(cleaned, "''")
	for _, m := range grafanaWhere.FindAllStringSubmatch(cleaned, -1) {
		cond := sqlString.ReplaceAllString(m[1], "''")
		for _, w := range sqlWord.FindAllString(cond, -1) {
			if u := strings.ToUpper(w); u == "AND" || u == "OR" || u == "IN" || u == "NOT" {
				continue
			}
			if !identityColumns[w] {
				errorf("%s: WHERE tests %s, which copies of a row need not share; test it after collapsing (-If, HAVING)", q.where, w)
			}
		}
	}
	return problems
}

// TestGrafanaSQLRules shows that the rules TestGrafanaDashboardDefinition applies catch
// the mistakes they are there for.
func TestGrafanaSQLRules(t *testing.T) {
	vars := map[string]bool{"evaluator": true}
	const ok = "SELECT count() FROM raterd.scores FINAL WHERE evaluator = ${evaluator:sqlstring} AND $__timeFilter(event_time)"
	if p := grafanaSQLProblems(grafanaQuery{where: "ok", sql: ok, panel: true}, vars); len(p) > 0 {
		t.Fatalf("a correct statement has problems: %q", p)
	}
	for sql, want := range map[string]string{
		strings.Replace(ok, " FINAL", "", 1):                                      "neither FINAL nor through argMax",
		strings.Replace(ok, "evaluator = ", "status = 'ok' AND evaluator = ", 1):  "WHERE tests status",
		strings.Replace(ok, "${evaluator:sqlstring}", "'${evaluator}'", 1):        "must be ${evaluator:sqlstring}",
		strings.Replace(ok, "${evaluator:sqlstring}", "${nope:sqlstring}", 1):     "refers to no variable",
		strings.Replace(ok, "count()", "$__timeInterval(event_time), count()", 1): "macro $__timeInterval(event_time)",
		strings.Replace(ok, " AND $__timeFilter(event_time)", "", 1):              "needs the time range",
		strings.Replace(ok, "scores FINAL", "scores_hourly", 1):                   "reads raterd.scores_hourly",
		strings.Replace(ok, "WHERE", "PREWHERE", 1):                               "PREWHERE",
		ok + ";": "one statement",
		strings.Replace(ok, "count()", "argMax(score, scored_at)", 1): "mixes FINAL and argMax",
	} {
		p := grafanaSQLProblems(grafanaQuery{where: "bad", sql: sql, panel: true}, vars)
		if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("problems of %q = %q, want one containing %q", sql, p, want)
		}
	}
	// Variable queries: the same WHERE rule, up to ORDER BY.
	for sql, want := range map[string]string{
		"SELECT DISTINCT model FROM raterd.scores WHERE $__timeFilter(event_time) ORDER BY model":                 "",
		"SELECT DISTINCT model FROM raterd.scores WHERE cached = 0 AND $__timeFilter(event_time) ORDER BY model":  "WHERE tests cached",
		"SELECT DISTINCT model FROM raterd.scores WHERE $__timeFilter(event_time) AND status = 'ok' LIMIT 10":     "WHERE tests status",
		"SELECT DISTINCT model FROM raterd.scores WHERE $__timeFilter(event_time) AND label != '' HAVING 1 = 1":   "WHERE tests label",
		"SELECT DISTINCT model FROM raterd.scores WHERE evaluator = '${evaluator}' AND $__timeFilter(event_time)": "must be ${evaluator:sqlstring}",
	} {
		p := grafanaSQLProblems(grafanaQuery{where: "variable", sql: sql}, vars)
		if want == "" {
			if len(p) > 0 {
				t.Errorf("problems of %q = %q, want none", sql, p)
			}
			continue
		}
		if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("problems of %q = %q, want one containing %q", sql, p, want)
		}
	}
}

// grafanaScenario is one setting of the dashboard's variables. Unset single-value
// variables take their first option, unset multi-value ones All, unset textboxes their
// default, as on a fresh load of the dashboard.
type grafanaScenario struct {
	name string
	pick map[string][]string
	// from and to, when set, replace the dashboard's time range (the fixture's week).
	from, to time.Time
}

// grafanaResult is what one statement returned.
type grafanaResult struct {
	sql     string
	columns []string
	rows    [][]any
}

// grafanaRun resolves the variables in order, as Grafana does (each query variable's SQL
// sees the values chosen before it), then runs every panel target. Results are keyed by
// "variable NAME" and "panel TITLE/REFID".
func grafanaRun(ctx context.Context, t *testing.T, conn driver.Conn, d grafanaDashboard, base grafanaExpander, sc grafanaScenario) (map[string]grafanaResult, error) {
	t.Helper()
	e := base
	if !sc.from.IsZero() {
		e.from, e.to = sc.from, sc.to
	}
	e.vars = map[string][]string{}
	out := map[string]grafanaResult{}
	for _, v := range d.Templating.List {
		text, err := v.text()
		if err != nil {
			return nil, err
		}
		pick, picked := sc.pick[v.Name]
		switch v.Type {
		case "textbox":
			e.vars[v.Name] = []string{text}
			if picked {
				e.vars[v.Name] = pick
			}
			continue
		case "query":
		default:
			return nil, fmt.Errorf("variable %s: type %q", v.Name, v.Type)
		}
		sql, err := e.expand(text)
		if err != nil {
			return nil, fmt.Errorf("variable %s: %v", v.Name, err)
		}
		cols, rows, err := queryTable(ctx, conn, sql)
		if err != nil {
			return nil, fmt.Errorf("variable %s: %v\n%s", v.Name, err, sql)
		}
		out["variable "+v.Name] = grafanaResult{sql, cols, rows}
		var options []string
		for _, r := range rows {
			options = append(options, fmt.Sprint(r[0]))
		}
		switch {
		case picked:
			if !v.Multi && len(pick) != 1 {
				return nil, fmt.Errorf("variable %s is single-valued; scenario picks %q", v.Name, pick)
			}
			if !v.Multi && !slices.Contains(options, pick[0]) {
				return nil, fmt.Errorf("variable %s: %q is not among the options %q", v.Name, pick[0], options)
			}
			e.vars[v.Name] = pick
		case v.Multi && v.IncludeAll:
			e.vars[v.Name] = options // All
		case len(options) > 0:
			e.vars[v.Name] = options[:1]
		default:
			e.vars[v.Name] = []string{""} // Grafana's "None"
		}
	}
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			key := "panel " + p.Title + "/" + tg.RefID
			sql, err := e.expand(tg.RawSQL)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", key, err)
			}
			cols, rows, err := queryTable(ctx, conn, sql)
			if err != nil {
				return nil, fmt.Errorf("%s: %v\n%s", key, err, sql)
			}
			out[key] = grafanaResult{sql, cols, rows}
		}
	}
	return out, nil
}

// grafanaExpect is a hand-computed answer for one panel in one scenario, from the
// fixture's description (testdata/cookbook/README.md).
type grafanaExpect struct {
	scenario, key string
	columns       []string
	rows          [][]any
}

func grafanaExpectations() []grafanaExpect {
	const (
		v6, v7 = "support-llm-v6", "support-llm-v7"
		tue12  = "2026-11-24 12:00:00"
		tue13  = "2026-11-24 13:00:00"
	)
	return []grafanaExpect{
		// The cookbook's score_trend (means) and worst_apps (min_rows 3, no limit).
		{"helpfulness", "panel Score trend per model per hour/A", []string{"time", "model", "mean_score"},
			[][]any{{tue12, v6, 5}, {tue12, v7, 7}, {tue13, v6, 5}, {tue13, v7, 4}}},
		{"helpfulness", "panel Worst apps/A", []string{"app", "scored", "mean_score", "failed"},
			[][]any{{"billing", 7, 27.0 / 7, 2}, {"search", 9, 47.0 / 9, 1}, {"helpdesk", 12, 86.0 / 12, 0}}},
		// Pointwise 1–10 with the default threshold 1: every ok row passes.
		{"helpfulness", "panel Pass rate per model/A", []string{"model", "scored", "passed", "pass_rate"},
			[][]any{{v6, 15, 15, 1}, {v7, 15, 15, 1}}},
		{"helpfulness", "panel Judge agreement/A", []string{"judge_a", "judge_b", "pairs", "label_agreement", "score_agreement", "mean_abs_diff", "score_corr"},
			nil}, // one judge: no pairs
		{"helpfulness", "panel Cache savings/A", []string{"scored_rows", "judge_calls_avoided", "cached_share", "judge_calls_made", "mean_judge_latency_ms", "judge_seconds_saved"},
			[][]any{{33, 6, 6.0 / 33, 29, 400, 2.4}}},
		{"helpfulness", "panel Parse-failure rate per judge/A", []string{"judge", "judged", "parse_failures", "parse_failure_rate", "judge_errors", "judge_error_rate"},
			[][]any{{judgeSelene, 27, 2, 2.0 / 27, 1, 1.0 / 27}}},
		{"helpfulness", "panel Score rows per status/A", []string{"time", "status", "score_rows"},
			[][]any{{tue12, "ok", 20}, {tue13, "judge_error", 1}, {tue13, "ok", 10}, {tue13, "parse_failure", 2}}},
		// The cookbook's judge_agreement, with the judges in name order.
		{"relevance", "panel Judge agreement/A", []string{"judge_a", "judge_b", "pairs", "label_agreement", "score_agreement", "mean_abs_diff", "score_corr"},
			[][]any{{judgePrometheus, judgeSelene, 4, 0.75, 0.75, 0.25, 1 / math.Sqrt(3)}}},
		// J judged r-1…r-5 under rv-rel-1 and r-1 under rv-rel-0; r-5 failed to parse.
		{"relevance", "panel Parse-failure rate per judge/A", []string{"judge", "judged", "parse_failures", "parse_failure_rate", "judge_errors", "judge_error_rate"},
			[][]any{{judgePrometheus, 4, 1, 0.25, 0, 0}, {judgeSelene, 6, 1, 1.0 / 6, 0, 0}}},
		// 3 of 13 cached; 10 judged calls at J 6 × 300 ms and P 4 × 1000 ms: mean 580 ms.
		{"relevance", "panel Cache savings/A", []string{"scored_rows", "judge_calls_avoided", "cached_share", "judge_calls_made", "mean_judge_latency_ms", "judge_seconds_saved"},
			[][]any{{13, 3, 3.0 / 13, 10, 580, 1.74}}},
		// r-1…r-7 in Thursday's 09:00 hour, all app search and model v7: 11 ok rows, 7 of
		// them scored 1 (J 3 of 5 with r-1 under rv-rel-0, P 4 of 6), 2 parse failures.
		{"relevance", "panel Score trend per model per hour/A", []string{"time", "model", "mean_score"},
			[][]any{{"2026-11-26 09:00:00", v7, 7.0 / 11}}},
		{"relevance", "panel Pass rate per model/A", []string{"model", "scored", "passed", "pass_rate"},
			[][]any{{v7, 11, 7, 7.0 / 11}}},
		{"relevance", "panel Worst apps/A", []string{"app", "scored", "mean_score", "failed"},
			[][]any{{"search", 11, 7.0 / 11, 2}}},
		{"relevance", "panel Score rows per status/A", []string{"time", "status", "score_rows"},
			[][]any{{"2026-11-26 09:00:00", "ok", 11}, {"2026-11-26 09:00:00", "parse_failure", 2}}},
		{"relevance", "variable judge", []string{"judge"}, [][]any{{judgePrometheus}, {judgeSelene}}},
		{"relevance", "variable model", []string{"model"}, [][]any{{v7}}},
		{"relevance", "variable app", []string{"app"}, [][]any{{"search"}}},
		// The cookbook's pass_rate_after_deploy over the whole day: 9 + 6 of 20 pass on v7;
		// v6's four rows all fail.
		{"safety", "panel Pass rate per model/A", []string{"model", "scored", "passed", "pass_rate"},
			[][]any{{v6, 4, 0, 0}, {v7, 20, 15, 0.75}}},
		{"safety", "variable evaluator", []string{"evaluator"}, [][]any{{"helpfulness"}, {"relevance"}, {"safety"}}},
		// Narrowed selections, one of them a name with quotes that matches nothing:
		// billing on v7: 5 and 5 at 12:00, 4 at 13:00, a parse failure and a judge error.
		{"narrowed", "panel Worst apps/A", []string{"app", "scored", "mean_score", "failed"},
			[][]any{{"billing", 3, 14.0 / 3, 2}}},
		// The cookbook's resolution_rate: v6 2 of 3 on the 1st (c3's parse failure left
		// out), v7 2 of 2, then 1 of 2 on the 2nd.
		{"conversations", "variable conversation_evaluator", []string{"evaluator"},
			[][]any{{"conversation_quality"}, {"conversation_resolution"}}},
		{"conversations", "panel Conversation resolution rate per model per day/A", []string{"time", "model", "resolution_rate"},
			[][]any{{"2026-12-01 00:00:00", v6, 2.0 / 3}, {"2026-12-01 00:00:00", v7, 1}, {"2026-12-02 00:00:00", v7, 0.5}}},
		// In the week there are no conversation rows: the variable is empty (None).
		{"relevance", "variable conversation_evaluator", []string{"evaluator"}, nil},
	}
}

func grafanaScenarios() []grafanaScenario {
	return []grafanaScenario{
		{"helpfulness", map[string][]string{"evaluator": {"helpfulness"}, "min_rows": {"3"}}, time.Time{}, time.Time{}},
		{"relevance", map[string][]string{"evaluator": {"relevance"}}, time.Time{}, time.Time{}},
		{"safety", map[string][]string{"evaluator": {"safety"}}, time.Time{}, time.Time{}},
		{"narrowed", map[string][]string{"evaluator": {"helpfulness"}, "model": {"support-llm-v7"},
			"app": {"billing", `it's a "quoted" app`}, "min_rows": {"1"}}, time.Time{}, time.Time{}},
		// The conversation rows, on the two days after the week.
		{"conversations", map[string][]string{"evaluator": {"conversation_resolution"}, "conversation_evaluator": {"conversation_resolution"}},
			time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 2, 23, 59, 59, 0, time.UTC)},
	}
}

// grafanaConversationStatements are the statements over conversation rows, which lie
// outside the fixture's week: they return rows in the conversations scenario instead of
// the relevance one.
var grafanaConversationStatements = map[string]bool{
	"variable conversation_evaluator":                        true,
	"panel Conversation resolution rate per model per day/A": true,
}

// compareGrafanaResults reports every difference between two runs of the dashboard.
func compareGrafanaResults(t *testing.T, phase, scenario string, want, got map[string]grafanaResult) {
	t.Helper()
	for key, w := range want {
		g, ok := got[key]
		if !ok {
			t.Errorf("%s: %s: %s missing", phase, scenario, key)
			continue
		}
		if !slices.Equal(g.columns, w.columns) || len(g.rows) != len(w.rows) {
			t.Errorf("%s: %s: %s = %v %v, was %v %v before", phase, scenario, key, g.columns, g.rows, w.columns, w.rows)
			continue
		}
		for r := range w.rows {
			for c := range w.columns {
				if !cellsEqual(g.rows[r][c], w.rows[r][c]) {
					t.Errorf("%s: %s: %s row %d %s = %v, was %v before", phase, scenario, key, r, w.columns[c], g.rows[r][c], w.rows[r][c])
				}
			}
		}
	}
}

// TestGrafanaDashboardQueries runs every variable and panel query of the dashboard, expanded
// as Grafana and the plugin would, against the real server over the cookbook fixture; then
// replays the fixture (copies left unmerged) and checks that every answer stays the same.
func TestGrafanaDashboardQueries(t *testing.T) {
	d := loadGrafanaDashboard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := newReplayFixture(t, ctx)
	conn, db := f.conn, f.db

	// The fixture's week (Monday to Sunday, both ends included as $__timeFilter does);
	// the row of the week before lies outside. One-hour interval.
	base := grafanaExpander{
		from:     time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
		to:       time.Date(2026, 11, 29, 23, 59, 59, 0, time.UTC),
		interval: time.Hour,
		db:       db,
	}
	runAll := func(phase string) map[string]map[string]grafanaResult {
		all := map[string]map[string]grafanaResult{}
		for _, sc := range grafanaScenarios() {
			res, err := grafanaRun(ctx, t, conn, d, base, sc)
			if err != nil {
				t.Fatalf("%s: scenario %s: %v", phase, sc.name, err)
			}
			all[sc.name] = res
		}
		return all
	}

	first := runAll("first insert")
	// Every statement returns rows in some scenario; every panel in the relevance scenario,
	// the one evaluator with two judges, but those over conversation rows, in the
	// conversations scenario.
	for key := range first["relevance"] {
		sc := "relevance"
		if grafanaConversationStatements[key] {
			sc = "conversations"
		}
		if len(first[sc][key].rows) == 0 {
			t.Errorf("%s: %s returned no rows:\n%s", sc, key, first[sc][key].sql)
		}
	}
	for _, sc := range grafanaScenarios() {
		var counts []string
		for _, key := range slices.Sorted(maps.Keys(first[sc.name])) {
			counts = append(counts, fmt.Sprintf("%s: %d", key, len(first[sc.name][key].rows)))
		}
		t.Logf("rows per statement, scenario %s: %s", sc.name, strings.Join(counts, ", "))
	}
	checked := map[string]bool{}
	for _, x := range grafanaExpectations() {
		r, ok := first[x.scenario][x.key]
		if !ok {
			t.Errorf("%s: no statement %s", x.scenario, x.key)
			continue
		}
		checked[x.key] = true
		if !slices.Equal(r.columns, x.columns) || len(r.rows) != len(x.rows) {
			t.Errorf("%s: %s = %v %v, want %v %v\n%s", x.scenario, x.key, r.columns, r.rows, x.columns, x.rows, r.sql)
			continue
		}
		for i := range x.rows {
			for c := range x.columns {
				if !cellsEqual(r.rows[i][c], x.rows[i][c]) {
					t.Errorf("%s: %s row %d %s = %v, want %v", x.scenario, x.key, i, x.columns[c], r.rows[i][c], x.rows[i][c])
				}
			}
		}
	}
	for key := range first["relevance"] {
		if !checked[key] {
			t.Errorf("%s has no hand-computed answer in grafanaExpectations", key)
		}
	}

	f.replayIdentical(t, ctx)
	// The replay is visible to a query that does not collapse copies: the status panel
	// without FINAL counts every row twice.
	status := first["helpfulness"]["panel Score rows per status/A"]
	_, naive, err := queryTable(ctx, conn, strings.Replace(status.sql, " FINAL", "", 1))
	if err != nil {
		t.Fatalf("status panel without FINAL: %v", err)
	}
	if len(naive) == 0 || len(status.rows) == 0 || naive[0][2] != 2*status.rows[0][2].(float64) {
		t.Errorf("status panel without FINAL after the replay = %v, want the counts of %v doubled", naive, status.rows)
	}
	replayed := runAll("identical replay")
	for _, sc := range grafanaScenarios() {
		compareGrafanaResults(t, "identical replay", sc.name, first[sc.name], replayed[sc.name])
	}

	f.replayLater(t, ctx)
	rescored := runAll("replay with a later scored_at")
	for _, sc := range grafanaScenarios() {
		compareGrafanaResults(t, "replay with a later scored_at", sc.name, first[sc.name], rescored[sc.name])
	}

	f.merge(t, ctx)
	merged := runAll("after OPTIMIZE FINAL")
	for _, sc := range grafanaScenarios() {
		compareGrafanaResults(t, "after OPTIMIZE FINAL", sc.name, first[sc.name], merged[sc.name])
	}
}
