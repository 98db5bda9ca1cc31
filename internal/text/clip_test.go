package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"short", 5, "short"},
		{"abcdef", 3, "abc"},
		{"ab日本", 4, "ab"}, // 日 is 3 bytes: cutting at 4 would split it
		{"ab日本", 5, "ab日"},
		{"日本", 2, ""},
		{"abc", 0, ""},
		{"abc", -1, ""},
		{"", -1, ""},
	} {
		if got := Clip(tc.in, tc.n); got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestClipMarked(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 5, "short"},
		{"abcdefgh", 7, "abcd…"},
		{"ab日本語", 7, "ab…"},  // 4 bytes of text fit, 日 does not
		{"ab日本語", 8, "ab日…"}, // 5 bytes of text fit
		{"abcdef", 2, "ab"},  // no room for the marker
		{"abcdef", 3, "…"},
	} {
		if got := ClipMarked(tc.in, tc.n, Ellipsis); got != tc.want {
			t.Errorf("ClipMarked(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestClipMarkedAfter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 5, "short"},
		{"abcdef", 3, "abc…"},
		{"ab日本", 4, "ab…"},
		{"ab日本", 5, "ab日…"},
		{"abc", 0, "…"},
	} {
		if got := ClipMarkedAfter(tc.in, tc.n, Ellipsis); got != tc.want {
			t.Errorf("ClipMarkedAfter(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"":                    "",
		"  short \n body ":    "short body",
		"a\x80\x81b\t\u00a0c": "a\uFFFDb c",
		"\xff":                "\uFFFD",
		"x\u2028y\r\n\r\nz  ": "x y z",
	} {
		if got := OneLine(in); got != want {
			t.Errorf("OneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzClip checks the contracts of Clip, ClipMarked and ClipMarkedAfter on any input:
// the text kept is a prefix of s, within the byte bound, cut at a rune boundary (so valid
// UTF-8 whenever s is), as long as possible, and s is returned whole when it fits. It
// also checks that OneLine does not depend on the order of its two steps.
func FuzzClip(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string, n int) {
		n %= 2 * (len(s) + 4) // keep the bound near the length, where the cuts are
		got := Clip(s, n)
		checkCut(t, "Clip", s, n, got)

		m := ClipMarked(s, n, Ellipsis)
		switch {
		case len(s) <= n:
			if m != s {
				t.Fatalf("ClipMarked(%q, %d) = %q, want s whole", s, n, m)
			}
		case n < len(Ellipsis):
			if m != Clip(s, n) {
				t.Fatalf("ClipMarked(%q, %d) = %q, want Clip with no marker", s, n, m)
			}
		default:
			if len(m) > n || !strings.HasSuffix(m, Ellipsis) {
				t.Fatalf("ClipMarked(%q, %d) = %q: over the bound or unmarked", s, n, m)
			}
			checkCut(t, "ClipMarked", s, n-len(Ellipsis), strings.TrimSuffix(m, Ellipsis))
		}

		a := ClipMarkedAfter(s, n, Ellipsis)
		if len(s) <= n {
			if a != s {
				t.Fatalf("ClipMarkedAfter(%q, %d) = %q, want s whole", s, n, a)
			}
		} else {
			if !strings.HasSuffix(a, Ellipsis) {
				t.Fatalf("ClipMarkedAfter(%q, %d) = %q: unmarked", s, n, a)
			}
			checkCut(t, "ClipMarkedAfter", s, n, strings.TrimSuffix(a, Ellipsis))
		}

		o := OneLine(s)
		if !utf8.ValidString(o) || strings.ContainsAny(o, "\n\r\t") || o != strings.ToValidUTF8(strings.Join(strings.Fields(s), " "), "\uFFFD") {
			t.Fatalf("OneLine(%q) = %q", s, o)
		}
	})
}

// checkCut checks that got is the longest prefix of s within n bytes that ends on a rune
// boundary, or s itself when it fits.
func checkCut(t *testing.T, name, s string, n int, got string) {
	t.Helper()
	if len(s) <= n {
		if got != s {
			t.Fatalf("%s(%q, %d) = %q, want s whole", name, s, n, got)
		}
		return
	}
	if !strings.HasPrefix(s, got) || len(got) > max(n, 0) {
		t.Fatalf("%s(%q, %d) = %q: not a prefix within the bound", name, s, n, got)
	}
	if utf8.ValidString(s) && !utf8.ValidString(got) {
		t.Fatalf("%s(%q, %d) = %q: invalid UTF-8 from valid input", name, s, n, got)
	}
	if len(got) < len(s) && !utf8.RuneStart(s[len(got)]) && len(got) > 0 {
		t.Fatalf("%s(%q, %d) = %q: cut inside a rune", name, s, n, got)
	}
	for i := len(got) + 1; i <= n; i++ {
		if utf8.RuneStart(s[i]) {
			t.Fatalf("%s(%q, %d) = %q: a longer cut at %d was possible", name, s, n, got, i)
		}
	}
}
