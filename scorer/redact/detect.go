package redact

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// findEmails emits the e-mail addresses of s, scanning out from each '@' instead of
// running a regexp over the whole text. Addresses at reserved example domains (RFC 2606/6761),
// retina image names ("icon@2x.png") and scp-style Git remotes ("git@github.com:o/r")
// are left alone.
func findEmails(s string, emit func(Span)) {
	for from := 0; ; {
		k := strings.IndexByte(s[from:], '@')
		if k < 0 {
			return
		}
		at := from + k
		from = at + 1
		ls := at
		for ls > 0 && at-ls < 64 {
			if isLocalByte(s[ls-1]) {
				ls--
				continue
			}
			// An internationalized local part (RFC 6531): "jürgen.weber@…". CJK text
			// does not glue, so "連絡先：anna@…" starts at "anna".
			r, n := utf8.DecodeLastRuneInString(s[:ls])
			if r < utf8.RuneSelf || !isGlueRune(r) {
				break
			}
			ls -= n
		}
		for ls < at && s[ls] == '.' {
			ls++
		}
		if ls == at {
			continue
		}
		// Domain: dot-separated labels of letters, digits and hyphens.
		de, lastDot := at+1, -1
		for de < len(s) && de-at <= 253 {
			c := s[de]
			if isAlnum(c) || c == '-' {
				de++
				continue
			}
			if c == '.' && de+1 < len(s) && isAlnum(s[de+1]) && s[de-1] != '.' && de > at+1 {
				lastDot = de
				de++
				continue
			}
			break
		}
		if lastDot < 0 {
			continue
		}
		domain := strings.ToLower(s[at+1 : de])
		tld := domain[lastDot-at:]
		if len(tld) < 2 || len(tld) > 24 || !isAllLetters(tld) {
			continue
		}
		from = de
		if de+1 < len(s) && s[de] == ':' && !isSpaceByte(s[de+1]) {
			continue // git@github.com:owner/repo.git
		}
		switch tld {
		case "example", "test", "invalid", "localhost", "local", "png", "jpg", "jpeg", "gif", "svg", "webp":
			continue
		}
		if domain == "example.com" || domain == "example.org" || domain == "example.net" ||
			strings.HasSuffix(domain, ".example.com") || strings.HasSuffix(domain, ".example.org") || strings.HasSuffix(domain, ".example.net") {
			continue
		}
		emit(Span{Start: ls, End: de, Type: TypeEmail})
	}
}

// numShape describes one run of digit groups found in text.
type numShape struct {
	plus   bool     // starts with '+'
	paren  bool     // has a parenthesised group, e.g. (555)
	seps   byte     // bit set of separators: 1 space, 2 dash, 4 dot
	groups [12]int8 // digits per group (the first 12 groups)
	ng     int
	digits int
	first  byte // first digit
	start  int  // byte offset of the run
	stop   int  // byte offset after the run's last digit (or closing parenthesis)
}

// findNumbers emits the digit runs of s that are phone numbers, payment card numbers or
// US social security numbers.
//
// Cards: 13–19 digits, either unbroken or in groups of four (Amex 4-6-5 and Diners 4-6-4
// too) separated by one kind of space, dash or dot, with a first digit 2–6 (the issuer ranges
// of Visa, Mastercard, Amex, Discover, JCB, UnionPay…) and a valid Luhn checksum.
//
// Phones: "+" and 9–15 digits (E.164, separators optional); or 10–11 digits (12 after a
// national trunk prefix 0, as German mobiles: 0151 2345 6789) in at least
// two groups of 2–8 digits separated by spaces, dashes or parentheses ((555) 123-4567,
// 020 7946 0958, 01 23 45 67 89, 1-800-555-0199), dots only in the 3-3-4 and 2-2-2-2-2
// shapes; or 9–11 unbroken digits right after a word such as "phone", "call" or "tel".
// Runs glued to letters or other digits (order ids, UUIDs, paths), dates (2024-01-15),
// IP addresses, version numbers, thousands grouping (12 345 678 901) and unbroken ids
// without such a cue are not counted.
//
// SSNs: AAA-GG-SSSS with dashes or spaces, or nine unbroken digits after "SSN" or
// "social security", with a valid area (not 000, 666, 900–999), group (not 00) and
// serial (not 0000). They are tried before phones.
func findNumbers(s string, emit func(Span)) {
	for i := 0; i < len(s); {
		c := s[i]
		startsRun := isDigit(c) ||
			(c == '+' && i+1 < len(s) && isDigit(s[i+1])) ||
			(c == '(' && i+1 < len(s) && isDigit(s[i+1]))
		if !startsRun {
			i++
			continue
		}
		sh, end, glued := scanNumber(s, i)
		i = end
		if glued || sh.digits < 9 {
			continue
		}
		sp := Span{Start: sh.start, End: sh.stop}
		switch {
		case isCard(s, &sh):
			sp.Type = TypeCard
		case isSSN(s, &sh):
			sp.Type = TypeSSN
		case isPhone(s, &sh):
			sp.Type = TypePhone
		default:
			continue
		}
		emit(sp)
	}
}

// scanNumber reads a run of digit groups starting at i and returns its shape, the offset
// after it, and whether it is glued to surrounding letters or digits (and so part of some
// larger token such as an id).
func scanNumber(s string, i int) (sh numShape, end int, glued bool) {
	sh.start = i
	if i > 0 {
		p := s[i-1]
		if glueBefore(s, i) || p == '_' || p == '@' || p == '#' || p == '$' {
			glued = true
		}
		if (p == '.' || p == '-' || p == '/' || p == ',' || p == '+') && glueBefore(s, i-1) {
			glued = true
		}
	}
	j := i
	if s[j] == '+' {
		sh.plus = true
		j++
	}
	depth := 0
	cur := 0
	for j < len(s) {
		c := s[j]
		switch {
		case isDigit(c):
			if sh.digits == 0 {
				sh.first = c
			}
			cur++
			sh.digits++
			j++
			continue
		case c == '(' && depth == 0 && j+1 < len(s) && isDigit(s[j+1]) && (cur == 0):
			depth++
			sh.paren = true
			j++
			continue
		}
		if cur == 0 {
			break
		}
		// A separator: at most one of ' ', '-', '.', optionally with a ')' before it or
		// a '(' after it, and a digit must follow.
		k := j
		if s[k] == ')' && depth == 1 {
			k++
		}
		var sep byte
		if k < len(s) {
			switch s[k] {
			case ' ':
				sep = 1
			case '-':
				sep = 2
			case '.':
				sep = 4
			}
		}
		if sep != 0 {
			k++
		}
		closed := k > j && s[j] == ')'
		opened := false
		if k < len(s) && s[k] == '(' && depth == 0 && !closed {
			opened = true
			k++
		}
		if k == j || k >= len(s) || !isDigit(s[k]) {
			if closed && k == j+1 { // "(555)" at the very end of the run
				depth--
				sh.addGroup(cur)
				cur = 0
				j = k
			}
			break
		}
		if closed {
			depth--
		}
		if opened {
			depth++
			sh.paren = true
		}
		sh.seps |= sep
		sh.addGroup(cur)
		cur = 0
		j = k
	}
	if cur > 0 {
		sh.addGroup(cur)
	}
	sh.stop = j
	// Swallow the rest of a glued token so that its tail is not read as a fresh run.
	end = j
	if end < len(s) {
		n := s[end]
		if glueAfter(s, end) || n == '_' || n == '@' || ((n == '.' || n == '-' || n == '/' || n == ',' || n == ':') && glueAfter(s, end+1)) {
			glued = true
			for end < len(s) && (isAlnum(s[end]) || s[end] == '_' || s[end] == '.' || s[end] == '-' || s[end] == '/') {
				end++
			}
		}
	}
	if depth != 0 {
		glued = true // unbalanced parentheses: not a phone shape
	}
	if end == i {
		end = i + 1
	}
	return sh, end, glued
}

func (sh *numShape) addGroup(n int) {
	if sh.ng < len(sh.groups) {
		sh.groups[sh.ng] = int8(min(n, 127))
	}
	sh.ng++
}

// isCard applies the card rules (see countNumbers) to a run of digits.
func isCard(s string, sh *numShape) bool {
	if sh.plus || sh.paren || sh.digits < 13 || sh.digits > 19 || sh.first < '2' || sh.first > '6' {
		return false
	}
	if sh.ng > 1 {
		if sh.seps != 1 && sh.seps != 2 && sh.seps != 4 {
			return false
		}
		g := sh.groups[:min(sh.ng, len(sh.groups))]
		fours := true
		for k, n := range g {
			if n != 4 && !(k == len(g)-1 && n >= 1 && n <= 4) {
				fours = false
			}
		}
		amex := len(g) == 3 && g[0] == 4 && g[1] == 6 && (g[2] == 5 || g[2] == 4)
		if !fours && !amex {
			return false
		}
	}
	return luhnValid(s[sh.start:], sh.digits)
}

// luhnValid runs the Luhn checksum over the first n digits of s, skipping separators.
func luhnValid(s string, n int) bool {
	var d [19]byte
	k := 0
	for i := 0; i < len(s) && k < n; i++ {
		if isDigit(s[i]) {
			d[k] = s[i] - '0'
			k++
		}
	}
	sum := 0
	for i := 0; i < n; i++ {
		v := int(d[n-1-i])
		if i%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// isPhone applies the phone rules (see countNumbers) to a run of digits.
func isPhone(s string, sh *numShape) bool {
	if sh.plus {
		return sh.digits >= 9 && sh.digits <= 15
	}
	if sh.ng == 1 && !sh.paren {
		return sh.digits >= 9 && sh.digits <= 11 && phoneCue(s, sh.start)
	}
	if sh.digits < 9 || sh.digits > 12 || sh.digits == 12 && sh.first != '0' || sh.ng > len(sh.groups) {
		return false
	}
	if sh.digits == 9 && !phoneCue(s, sh.start) {
		return false
	}
	g := sh.groups[:sh.ng]
	if g[0] == 4 && (sh.first == '1' || sh.first == '2') && len(g) >= 3 && g[1] == 2 && g[2] == 2 {
		return false // a date: 2024-01-15 …
	}
	if g[0] == 1 {
		// Only the NANP trunk prefix: 1-800-555-0199, 1 (555) 123 4567.
		if sh.first != '1' || len(g) != 4 || g[1] != 3 || g[2] != 3 || g[3] != 4 {
			return false
		}
	}
	for _, n := range g[1:] {
		if n < 2 || n > 8 {
			return false
		}
	}
	if sh.seps == 4 { // dots only: 555.123.4567 or 01.23.45.67.89
		three := len(g) == 3 && g[0] == 3 && g[1] == 3 && g[2] == 4
		twos := len(g) == 5 && g[0] == 2 && g[1] == 2 && g[2] == 2 && g[3] == 2 && g[4] == 2
		return three || twos
	}
	if sh.seps&4 != 0 && !sh.paren {
		return false // dots mixed with other separators: versions, IPs, decimals
	}
	if len(g) >= 4 && (sh.seps == 1 || sh.seps == 4) {
		thousands := true
		for _, n := range g[1:] {
			if n != 3 {
				thousands = false
			}
		}
		if thousands {
			return false // 12 345 678 901
		}
	}
	return true
}

// phoneCue reports whether one of the words that introduce a phone number appears just
// before offset i; it licenses digit runs that would otherwise look like ids.
func phoneCue(s string, i int) bool {
	var buf [28]byte
	lo := max(0, i-len(buf))
	n := copy(buf[:], s[lo:i])
	for k := 0; k < n; k++ {
		if buf[k] >= 'A' && buf[k] <= 'Z' {
			buf[k] += 'a' - 'A'
		}
	}
	// A mask already written is no cue: "[PHONE] 123456789" must stay as it is, or
	// redacting twice would differ from redacting once.
	w := strings.ReplaceAll(string(buf[:n]), "phone]", "")
	for _, cue := range []string{"phone", "tel:", "tel.", "tel ", "call", "mobile", "llam", "llám", "appel", "rufen", "anruf", "cell", "fax", "whatsapp", "sms", "text me", "téléphone", "telefon", "teléfono", "电话", "手机", "電話", "携帯"} {
		if strings.Contains(w, cue) {
			return true
		}
	}
	return false
}

// isGlueRune reports letters and digits that make a digit run part of a larger token.
// Chinese, Japanese and Korean characters (and the kana length mark "ー") do not: those
// scripts write numbers right next to words ("电话13812345678", "サーバー10.0.0.1が").
func isGlueRune(r rune) bool {
	if r < utf8.RuneSelf {
		return isAlnum(byte(r))
	}
	if r >= 0x2E80 && r < 0xA000 || r >= 0xAC00 && r < 0xD7B0 {
		return false // CJK radicals, symbols, kana, Han, Hangul syllables
	}
	return (unicode.IsLetter(r) || unicode.IsDigit(r)) && !unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

// glueBefore reports whether the rune ending at offset i glues onto what follows.
func glueBefore(s string, i int) bool {
	if i <= 0 {
		return false
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return isGlueRune(r)
}

// glueAfter reports whether the rune starting at offset i glues onto what precedes.
func glueAfter(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return isGlueRune(r)
}
func isLocalByte(c byte) bool {
	return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z') || strings.IndexByte("._%+-", c) >= 0
}
func isAllLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// isSSN applies the SSN rules (see findNumbers) to a run of digits.
func isSSN(s string, sh *numShape) bool {
	if sh.plus || sh.paren || sh.digits != 9 {
		return false
	}
	switch {
	case sh.ng == 3 && sh.groups[0] == 3 && sh.groups[1] == 2 && sh.groups[2] == 4 && (sh.seps == 1 || sh.seps == 2):
	case sh.ng == 1 && ssnCue(s, sh.start):
	default:
		return false
	}
	var d [9]int
	k := 0
	for i := sh.start; i < len(s) && k < 9; i++ {
		if isDigit(s[i]) {
			d[k] = int(s[i] - '0')
			k++
		}
	}
	area := d[0]*100 + d[1]*10 + d[2]
	group := d[3]*10 + d[4]
	serial := d[5]*1000 + d[6]*100 + d[7]*10 + d[8]
	return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

// ssnCue reports whether "SSN" or "social security" appears just before offset i.
func ssnCue(s string, i int) bool {
	w := strings.ReplaceAll(strings.ToLower(s[max(0, i-24):i]), "ssn]", "") // not a mask
	return strings.Contains(w, "ssn") || strings.Contains(w, "social security") || strings.Contains(w, "ss#")
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool {
	return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z')
}
func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
