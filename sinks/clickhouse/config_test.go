package clickhouse

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSortedLabels(t *testing.T) {
	tests := []struct {
		name       string
		in         map[string]string
		keys, vals []string
	}{
		{"nil", nil, []string{}, []string{}},
		{"empty", map[string]string{}, []string{}, []string{}},
		{"one", map[string]string{"region": "eu"}, []string{"region"}, []string{"eu"}},
		{
			"sorted by key, values parallel",
			map[string]string{"zone": "z1", "app": "helpdesk", "Tier": "gold", "b": "", "ä": "umlaut"},
			[]string{"Tier", "app", "b", "zone", "ä"},
			[]string{"gold", "helpdesk", "", "z1", "umlaut"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, vals := sortedLabels(tt.in)
			if keys == nil || vals == nil {
				t.Fatalf("sortedLabels returned nil slices (%v, %v); ClickHouse arrays need non-nil", keys, vals)
			}
			if !reflect.DeepEqual(keys, tt.keys) || !reflect.DeepEqual(vals, tt.vals) {
				t.Fatalf("sortedLabels(%v) = %q, %q; want %q, %q", tt.in, keys, vals, tt.keys, tt.vals)
			}
			for i, k := range keys {
				if tt.in[k] != vals[i] {
					t.Errorf("values[%d] = %q, want %q (value of %q)", i, vals[i], tt.in[k], k)
				}
			}
		})
	}
}

func TestConfigValidateDefaults(t *testing.T) {
	c := Config{Addrs: []string{"127.0.0.1:9000"}}
	if err := c.Validate("clickhouse"); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := Config{
		Addrs: []string{"127.0.0.1:9000"}, Database: "raterd", Username: "default",
		DialTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second,
		InsertMaxRows: 50_000, InsertInterval: time.Second, InsertAttempts: 3,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults = %+v, want %+v", c, want)
	}

	// Explicit values are kept.
	c = Config{Addrs: []string{"a:1", "b:2"}, Database: "metrics_2", Username: "rater",
		Password: "pw", TLS: true, DialTimeout: time.Second, WriteTimeout: 2 * time.Second,
		InsertMaxRows: 1000, InsertAttempts: 5, InsertInterval: 100 * time.Millisecond, RetentionDays: 30}
	want = c
	want.Addrs = []string{"a:1", "b:2"}
	if err := c.Validate("clickhouse"); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("explicit values changed: %+v, want %+v", c, want)
	}
}

func TestConfigValidateErrors(t *testing.T) {
	ok := func(c Config) Config { return c }
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error
	}{
		{"no addrs", ok(Config{}), []string{"sinks.clickhouse.addrs", "required"}},
		{"empty addrs", ok(Config{Addrs: []string{}}), []string{"sinks.clickhouse.addrs"}},
		{"addr without port", ok(Config{Addrs: []string{"a:9000", "localhost"}}), []string{"sinks.clickhouse.addrs[1]", `"localhost"`, "host:port"}},
		{"injection in database", ok(Config{Addrs: []string{"a:9000"}, Database: "x; DROP"}), []string{"sinks.clickhouse.database", `"x; DROP"`}},
		{"database with dot", ok(Config{Addrs: []string{"a:9000"}, Database: "a.b"}), []string{"sinks.clickhouse.database"}},
		{"database starting with digit", ok(Config{Addrs: []string{"a:9000"}, Database: "1db"}), []string{"sinks.clickhouse.database"}},
		{"negative dial timeout", ok(Config{Addrs: []string{"a:9000"}, DialTimeout: -time.Second}), []string{"sinks.clickhouse.dial_timeout", "negative"}},
		{"negative write timeout", ok(Config{Addrs: []string{"a:9000"}, WriteTimeout: -time.Millisecond}), []string{"sinks.clickhouse.write_timeout", "negative"}},
		{"negative insert rows", ok(Config{Addrs: []string{"a:9000"}, InsertMaxRows: -1}), []string{"sinks.clickhouse.insert_max_rows"}},
		{"insert interval too long", ok(Config{Addrs: []string{"a:9000"}, InsertInterval: time.Hour}), []string{"sinks.clickhouse.insert_interval"}},
		{"negative retention", ok(Config{Addrs: []string{"a:9000"}, RetentionDays: -1}), []string{"sinks.clickhouse.retention_days"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate("sinks.clickhouse")
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want error containing %q", tt.cfg, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestMigrations(t *testing.T) {
	ms := Migrations()
	if len(ms) == 0 {
		t.Fatal("no migrations")
	}
	for i, m := range ms {
		if m.Version != i+1 {
			t.Errorf("migration %d has version %d; versions must be 1, 2, 3, … without gaps", i, m.Version)
		}
		if m.Name == "" {
			t.Errorf("migration %d has no name", m.Version)
		}
		if len(m.Statements) == 0 && len(m.Gated) == 0 && len(m.AddColumns) == 0 {
			t.Errorf("migration %d has no statements, columns or gated steps", m.Version)
		}
		for j, s := range m.Statements {
			if !strings.Contains(s, "{db}") {
				t.Errorf("migration %d statement %d does not use {db}: %.60q", m.Version, j+1, s)
			}
		}
	}
	if got := LatestMigration(); got != ms[len(ms)-1].Version {
		t.Errorf("LatestMigration() = %d, want %d", got, ms[len(ms)-1].Version)
	}
	if !strings.Contains(migrationsTable, "{db}") {
		t.Error("migrationsTable does not use {db}")
	}
}

// TestMigrationsRunOnClickHouse1816 guards the base schema: every statement must run on
// ClickHouse 18.16, which lacks these features. A migration that needs one must be applied
// only when the server supports it, outside Migrations().
func TestMigrationsRunOnClickHouse1816(t *testing.T) {
	forbidden := []string{"Map(", "LowCardinality", "DateTime64", "CODEC", " TTL ", "\tTTL ", "\nTTL "}
	stmts := []string{migrationsTable}
	for _, m := range Migrations() {
		stmts = append(stmts, m.Statements...)
	}
	for i, s := range stmts {
		for _, f := range forbidden {
			if strings.Contains(s, f) {
				t.Errorf("statement %d uses %q, which ClickHouse 18.16 lacks:\n%s", i, strings.TrimSpace(f), s)
			}
		}
	}
	// The guard itself must bite.
	for _, f := range []string{"labels Map(String, String)", "model LowCardinality(String)", "t DateTime64(3)", "x String CODEC(ZSTD)", "ORDER BY x TTL t + INTERVAL 1 DAY"} {
		hit := false
		for _, g := range forbidden {
			hit = hit || strings.Contains(f, g)
		}
		if !hit {
			t.Errorf("guard misses %q", f)
		}
	}
}

func TestRender(t *testing.T) {
	if got := render("CREATE TABLE {db}.a AS {db}.b", "x1"); got != "CREATE TABLE x1.a AS x1.b" {
		t.Fatalf("render = %q", got)
	}
}
