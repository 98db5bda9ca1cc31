package clickhouse

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// Fuzz targets for what migrations read back from ClickHouse: the server version
// (parseServerVersion, featuresFor) and a table's TTL in its CREATE query (parseTTL).
// Seed corpora: testdata/fuzz/FuzzParseServerVersion and testdata/fuzz/FuzzParseTTL.

// FuzzParseServerVersion: any version string is either refused (and then no gated
// feature is used) or read as a non-negative major.minor that reads back the same from
// its canonical form; featuresFor agrees with the parsed version, and a later release
// never loses a feature other than the skip-index gap of 21.9–21.12.
func FuzzParseServerVersion(f *testing.F) {
	for _, s := range []string{"18.16.1", "24.8.4.13", "23.8.16.42.altinitystable", "21.9", " 22.2.1\n", "1", "", "a.b", "+1.2", "99999999999999999999.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := parseServerVersion(s)
		if !ok {
			if v != (serverVersion{}) || featuresFor(s) != (Features{}) {
				t.Fatalf("refused %q but got %+v, features {%s}", s, v, featuresFor(s))
			}
			return
		}
		if v.major < 0 || v.minor < 0 {
			t.Fatalf("%q read as %+v", s, v)
		}
		canon := fmt.Sprintf("%d.%d", v.major, v.minor)
		if back, ok := parseServerVersion(canon); !ok || back != v {
			t.Fatalf("%q → %+v → %q → %+v", s, v, canon, back)
		}
		if featuresFor(s) != v.features() || !v.atLeast(v.major, v.minor) {
			t.Fatalf("featuresFor(%q) = {%s}, want {%s}", s, featuresFor(s), v.features())
		}
		if v.minor < 1<<30 {
			next := serverVersion{v.major, v.minor + 1}.features()
			cur := v.features()
			if cur.TTL && !next.TTL || cur.LowCardinality && !next.LowCardinality || cur.Codecs && !next.Codecs || cur.InsertDedup && !next.InsertDedup {
				t.Fatalf("%d.%d has {%s}, %d.%d only {%s}", v.major, v.minor, cur, v.major, v.minor+1, next)
			}
		}
	})
}

var fzSettingsWord = regexp.MustCompile(`\sSETTINGS\s`)

// FuzzParseTTL: any CREATE query gives a trimmed TTL that never runs into the SETTINGS
// clause; and a TTL expression written into a CREATE query as system.tables prints it,
// with and without SETTINGS, reads back as written (trimmed).
func FuzzParseTTL(f *testing.F) {
	f.Add("CREATE TABLE raterd.scores (`event_time` DateTime, `ttl` UInt8 TTL event_time + toIntervalDay(1)) ENGINE = ReplacingMergeTree ORDER BY event_time TTL event_time + toIntervalDay(30) SETTINGS index_granularity = 8192", "event_time + toIntervalDay(30)")
	f.Add("CREATE TABLE raterd.scores (`event_time` DateTime) ENGINE = MergeTree ORDER BY event_time SETTINGS index_granularity = 8192", "seen_at + toIntervalDay(7)")
	f.Add("", "")
	f.Add(") ENGINE TTL", " \n x\t")
	f.Fuzz(func(t *testing.T, create, expr string) {
		got := parseTTL(create)
		if got != strings.TrimSpace(got) || fzSettingsWord.MatchString(got) {
			t.Fatalf("parseTTL(%q) = %q", create, got)
		}
		if got != "" && !strings.Contains(create[strings.LastIndex(create, ") ENGINE"):], got) {
			t.Fatalf("parseTTL(%q) = %q, not from after the column list", create, got)
		}
		if strings.TrimSpace(expr) == "" || strings.Contains(expr, "SETTINGS") || strings.Contains(expr, ") ENGINE") {
			return // a TTL clause has an expression, which is not a SETTINGS clause
		}
		head := "CREATE TABLE db.t (`a` Date TTL a + toIntervalDay(1)) ENGINE = MergeTree ORDER BY a TTL "
		for _, q := range []string{head + expr, head + expr + " SETTINGS index_granularity = 8192"} {
			if got := parseTTL(q); got != strings.TrimSpace(expr) {
				t.Fatalf("parseTTL(%q) = %q, want %q", q, got, strings.TrimSpace(expr))
			}
		}
	})
}
