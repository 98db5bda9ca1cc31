package redact

import (
	"net/netip"
	"strings"
)

// Ranges that identify no one: the documentation ranges of RFC 5737 and RFC 3849.
var docPrefixes = []netip.Prefix{
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// findIPs emits the IPv4 and IPv6 addresses of s (see TypeIP).
func findIPs(s string, emit func(Span)) {
	// IPv4: four dotted groups of 1–3 digits, not part of a longer dotted or glued token.
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			continue
		}
		j, dots, digits := i, 0, 0
		for j < len(s) {
			if isDigit(s[j]) {
				digits++
				if digits > 3 {
					break
				}
				j++
				continue
			}
			if s[j] == '.' && digits > 0 && dots < 3 && j+1 < len(s) && isDigit(s[j+1]) {
				dots++
				digits = 0
				j++
				continue
			}
			break
		}
		start := i
		i = j
		for i < len(s) && (isDigit(s[i]) || s[i] == '.' && i+1 < len(s) && isDigit(s[i+1])) {
			i++ // skip the rest of a longer token (1.2.3.4.5, 10.0.19041.1)
		}
		if dots != 3 || i != j || glueBefore(s, start) || glueAfter(s, j) {
			continue
		}
		if start > 0 && (s[start-1] == '.' || s[start-1] == '_' || s[start-1] == '-') {
			continue // part of a longer token
		}
		if start > 1 && s[start-1] == ':' && isIPv6Byte(s[start-2]) {
			continue // the tail of an IPv6 address (found below)
		}
		if versionCue(s, start) {
			continue
		}
		if a, err := netip.ParseAddr(s[start:j]); err == nil && personal(a) {
			emit(Span{Start: start, End: j, Type: TypeIP})
		}
	}
	// IPv6: a run of hex digits, colons and dots around a colon.
	for i := 0; i < len(s); i++ {
		if s[i] != ':' {
			continue
		}
		a := i
		for a > 0 && isIPv6Byte(s[a-1]) {
			a--
		}
		b := i
		for b < len(s) && isIPv6Byte(s[b]) {
			b++
		}
		i = b
		for b > a && s[b-1] == '.' {
			b--
		}
		if b > a && s[b-1] == ':' && !strings.HasSuffix(s[a:b], "::") {
			b--
		}
		if glueBefore(s, a) || glueAfter(s, b) || a > 0 && s[a-1] == '_' {
			continue
		}
		t := s[a:b]
		if strings.Count(t, ":") < 2 || !strings.ContainsAny(t, "0123456789") {
			continue // "Abc::Def", "dead::beef": names in code, not addresses
		}
		if addr, err := netip.ParseAddr(t); err == nil && addr.Is6() && personal(addr) {
			emit(Span{Start: a, End: b, Type: TypeIP})
		}
	}
}

// personal reports whether an address may identify someone.
func personal(a netip.Addr) bool {
	if a.IsLoopback() || a.IsUnspecified() {
		return false
	}
	if a.Is4() && a.As4()[0] == 255 {
		return false // netmasks and the broadcast address
	}
	for _, p := range docPrefixes {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

func isIPv6Byte(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.'
}

// versionCue reports whether a version word ends just before offset i: "version 1.2.3.4",
// "v 1.2.3.4", "Version: 10.0.0.1".
func versionCue(s string, i int) bool {
	w := strings.ToLower(strings.TrimRight(s[max(0, i-16):i], " :"))
	for _, cue := range []string{"version", "versión", "ver", "v", "release", "build", "firmware"} {
		if strings.HasSuffix(w, cue) && !glueBefore(w, len(w)-len(cue)) {
			return true
		}
	}
	return false
}
