package chsql

import "testing"

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, str, ident string }{
		{"", `''`, "``"},
		{"raterd", `'raterd'`, "`raterd`"},
		{`o'r\x`, `'o\'r\\x'`, "`o'r\\\\x`"},
		{"a`b", "'a`b'", "`a\\`b`"},
		{"l1\nl2\t\x00\x7f", `'l1\x0Al2\x09\x00\x7F'`, "`l1\\x0Al2\\x09\\x00\\x7F`"},
		{"日本\xff", "'日本\xff'", "`日本\xff`"},
	} {
		if got := QuoteString(tc.in); got != tc.str {
			t.Errorf("QuoteString(%q) = %s, want %s", tc.in, got, tc.str)
		}
		if got := QuoteIdent(tc.in); got != tc.ident {
			t.Errorf("QuoteIdent(%q) = %s, want %s", tc.in, got, tc.ident)
		}
	}
}
