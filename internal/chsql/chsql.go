// Package chsql holds what raterd's ClickHouse SQL writers share: the default database
// name and the quoting of string literals and identifiers. It imports nothing of raterd,
// so the score sinks, alerting (whose notify package must not import the sinks), the
// report command and the benchmark can all use it.
package chsql

import (
	"fmt"
	"strings"
)

// DefaultDatabase is the ClickHouse database that holds raterd's tables when the
// clickhouse.database setting (or an alerting section's database) is left out.
const DefaultDatabase = "raterd"

// QuoteString returns s as a ClickHouse string literal: in single quotes, with
// backslash, single quote and every control character (below 0x20, and 0x7F) escaped,
// the latter as \xNN, so the literal is one token whatever s holds. Other bytes,
// invalid UTF-8 included, are copied as they are.
func QuoteString(s string) string {
	return quote(s, '\'')
}

// QuoteIdent returns s as a back-quoted ClickHouse identifier, escaped as QuoteString
// escapes a literal (with the back quote in place of the single quote).
func QuoteIdent(s string) string {
	return quote(s, '`')
}

func quote(s string, q byte) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte(q)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' || c == q:
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02X`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// InsertSettings are the query settings every insert into raterd's tables carries (the
// score and dead-letter writers' and the alerts channel's): on a cluster (clickhouse.cluster
// set) a synchronous Distributed insert, which returns only once every shard's rows are on
// one of its replicas, so that offsets are committed only for stored rows, and the insert
// quorum (clickhouse.insert_quorum); none on one server. A map of setting name to value
// (clickhouse-go's Settings).
func InsertSettings(cluster bool, quorum int) map[string]any {
	if !cluster {
		return nil
	}
	return map[string]any{"insert_distributed_sync": 1, "insert_quorum": quorum}
}
