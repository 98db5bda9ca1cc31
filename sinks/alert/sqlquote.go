package alert

import (
	"fmt"
	"strings"
)

// This file holds alerting's private ClickHouse quoting, used by the drill-down SQL only.
// It is a copy of a concern other packages have too (the score sinks, migrations, the
// report command); a later change should unify such helpers in one shared package and
// delete this file.

// quoteString returns s as a ClickHouse string literal: backslash, quote and control
// characters escaped, so the literal is one token whatever s holds.
func quoteString(s string) string {
	return "'" + escape(s, '\'') + "'"
}

// quoteIdent returns s as a back-quoted ClickHouse identifier.
func quoteIdent(s string) string {
	return "`" + escape(s, '`') + "`"
}

func escape(s string, q byte) string {
	var b strings.Builder
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
	return b.String()
}
