package redact

// ibanLengths is the IBAN length of each country of the SWIFT IBAN registry that a
// redactor knows; an IBAN of another country is not matched.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
	"CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
	"FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21,
	"HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21,
	"LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30,
	"NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
	"SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

// findIBANs emits the IBANs of s: a country code (either case), two check digits and the
// rest of the country's length in letters and digits, either unbroken or in groups of
// four separated by single spaces, not glued to letters or digits, with a valid mod-97
// checksum.
func findIBANs(s string, emit func(Span)) {
	for i := 0; i+4 <= len(s); i++ {
		if !isDigit(s[i+2]) || !isDigit(s[i+3]) || !isLetter(s[i]) || !isLetter(s[i+1]) || glueBefore(s, i) {
			continue
		}
		n, ok := ibanLengths[string([]byte{upper(s[i]), upper(s[i+1])})]
		if !ok {
			continue
		}
		var buf [34]byte
		k, j := 0, i
		grouped := false
		for j < len(s) && k < n {
			c := s[j]
			if isAlnum(c) {
				buf[k] = upper(c)
				k++
				j++
				continue
			}
			// A single space after every fourth character, when a character follows.
			if c == ' ' && k%4 == 0 && (k == 4 || grouped) && j+1 < len(s) && isAlnum(s[j+1]) {
				grouped = true
				j++
				continue
			}
			break
		}
		if k != n || glueAfter(s, j) || !mod97(buf[:n]) {
			continue
		}
		emit(Span{Start: i, End: j, Type: TypeIBAN})
		i = j - 1
	}
}

// mod97 is the ISO 13616 check: the country code and check digits moved to the end,
// letters read as 10–35, the number modulo 97 is 1.
func mod97(iban []byte) bool {
	rem := 0
	for k := range iban {
		c := iban[(k+4)%len(iban)]
		switch {
		case isDigit(c):
			rem = (rem*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			rem = (rem*100 + int(c-'A'+10)) % 97
		default:
			return false
		}
	}
	return rem == 1
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}
