package redact

// The generator of testdata/corpus.tsv: go test ./scorer/redact -run TestCorpus -update.
// Every planted value is synthetic: random digits with their checksums computed (Luhn,
// mod-97), SSNs from the issued ranges, names and domains from small made-up lists.

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// mark writes a planted value as the corpus marks it: ⟦type|value⟧.
func mark(typ, v string) string { return "⟦" + typ + "|" + v + "⟧" }

func digits(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + r.IntN(10))
	}
	return string(b)
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// group writes s in groups of n separated by sep.
func group(s string, n int, sep string) string {
	var parts []string
	for len(s) > n {
		parts = append(parts, s[:n])
		s = s[n:]
	}
	return strings.Join(append(parts, s), sep)
}

func genEmail(r *rand.Rand) string {
	first := pick(r, []string{"anna", "jonas", "marie", "lukas", "sofia", "hiro", "yuki", "carlos", "lucia", "pierre", "emma", "noah", "wei", "ines", "mateo", "chloe"})
	last := pick(r, []string{"mueller", "dubois", "garcia", "tanaka", "smith", "rossi", "kowalski", "novak", "moreau", "lopez", "sato", "becker"})
	local := pick(r, []string{first + "." + last, first + "_" + last, first + last[:1], first[:1] + last, first + "." + last + "+news", last + fmt.Sprint(r.IntN(90)+10), "jürgen." + last, "josé." + last})
	domain := pick(r, []string{"mailbox.de", "post-fach.net", "correo-web.es", "courriel.fr", "inbox.co.uk", "webmail.jp", "firma-gmbh.de", "acme-corp.io", "uni-nord.de", "mail.co.jp", "kanzlei-weber.at", "tienda.com.mx"})
	if r.IntN(6) == 0 {
		return strings.ToUpper(local[:1]) + local[1:] + "@" + strings.ToUpper(domain[:1]) + domain[1:]
	}
	return local + "@" + domain
}

func genPhone(r *rand.Rand, lang string) string {
	area := fmt.Sprint(r.IntN(8)+2) + digits(r, 2)
	ex, line := fmt.Sprint(r.IntN(8)+2)+digits(r, 2), digits(r, 4)
	switch lang {
	case "de":
		return pick(r, []string{"+49 30 " + digits(r, 8), "030 " + digits(r, 8), "+49 151 " + digits(r, 8), "0151 " + digits(r, 4) + " " + digits(r, 4), "+49 (0)89 " + digits(r, 7)})
	case "fr":
		d := func() string { return digits(r, 2) }
		return pick(r, []string{"01 " + d() + " " + d() + " " + d() + " " + d(), "06." + d() + "." + d() + "." + d() + "." + d(), "+33 6 " + d() + " " + d() + " " + d() + " " + d(), "+33 1 " + d() + " " + d() + " " + d() + " " + d()})
	case "es":
		return pick(r, []string{"+34 6" + digits(r, 2) + " " + digits(r, 3) + " " + digits(r, 3), "+34 91 " + digits(r, 3) + " " + digits(r, 2) + " " + digits(r, 2), "6" + digits(r, 2) + " " + digits(r, 3) + " " + digits(r, 3)})
	case "ja":
		return pick(r, []string{"03-" + digits(r, 4) + "-" + digits(r, 4), "090-" + digits(r, 4) + "-" + digits(r, 4), "+81 3-" + digits(r, 4) + "-" + digits(r, 4), "080" + digits(r, 8)})
	}
	return pick(r, []string{"(" + area + ") " + ex + "-" + line, area + "-" + ex + "-" + line, area + "." + ex + "." + line, "+1 " + area + " " + ex + " " + line, "+1-" + area + "-" + ex + "-" + line, "1-800-" + ex + "-" + line, "+44 20 " + digits(r, 4) + " " + digits(r, 4), "+44 7700 " + digits(r, 6)})
}

// luhnDigit returns the check digit that makes body+digit Luhn-valid.
func luhnDigit(body string) byte {
	sum := 0
	for i := 0; i < len(body); i++ {
		v := int(body[len(body)-1-i] - '0')
		if i%2 == 0 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return byte('0' + (10-sum%10)%10)
}

// genCard returns a Luhn-valid card number, formatted; bad makes the checksum wrong.
func genCard(r *rand.Rand, bad bool) string {
	var body string
	amex := false
	switch r.IntN(4) {
	case 0:
		body = "4" + digits(r, 14)
	case 1:
		body = "5" + fmt.Sprint(1+r.IntN(5)) + digits(r, 13)
	case 2:
		body = pick(r, []string{"34", "37"}) + digits(r, 12)
		amex = true
	default:
		body = "6011" + digits(r, 11)
	}
	c := luhnDigit(body)
	if bad {
		c = '0' + (c-'0'+1+byte(r.IntN(9)))%10
	}
	n := body + string(c)
	switch {
	case amex && r.IntN(2) == 0:
		return n[:4] + " " + n[4:10] + " " + n[10:]
	case r.IntN(3) == 0:
		return n
	case r.IntN(2) == 0:
		return group(n, 4, " ")
	}
	return group(n, 4, "-")
}

// genIBAN returns an IBAN with a computed checksum, compact or grouped; bad alters one
// digit of the account after the checksum is computed.
func genIBAN(r *rand.Rand, bad bool) string {
	cc := pick(r, []string{"DE", "FR", "ES", "GB", "IT", "NL", "CH", "AT", "BE"})
	var bban string
	switch cc {
	case "GB":
		bban = pick(r, []string{"WEST", "NWBK", "BARC"}) + digits(r, 14)
	case "NL":
		bban = pick(r, []string{"ABNA", "INGB", "RABO"}) + digits(r, 10)
	case "IT":
		bban = "X" + digits(r, 22)
	default:
		bban = digits(r, ibanLengths[cc]-4)
	}
	// Check digits: 98 - (bban + cc + "00") mod 97.
	rem := 0
	for _, c := range []byte(bban + cc + "00") {
		if isDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A'+10)) % 97
		}
	}
	iban := fmt.Sprintf("%s%02d%s", cc, 98-rem, bban)
	if bad {
		b := []byte(iban)
		k := len(b) - 1 - r.IntN(6)
		b[k] = '0' + (b[k]-'0'+1+byte(r.IntN(9)))%10
		iban = string(b)
	}
	if r.IntN(2) == 0 {
		return group(iban, 4, " ")
	}
	return iban
}

// genSSN returns an SSN from the issued ranges; bad gives one from a never-issued range.
func genSSN(r *rand.Rand, bad bool) (string, bool) {
	area := 1 + r.IntN(899)
	for area == 666 {
		area = 1 + r.IntN(899)
	}
	group, serial := 1+r.IntN(99), 1+r.IntN(9999)
	if bad {
		switch r.IntN(5) {
		case 0:
			area = 0
		case 1:
			area = 666
		case 2:
			area = 900 + r.IntN(100)
		case 3:
			group = 0
		default:
			serial = 0
		}
	}
	a, g, s := fmt.Sprintf("%03d", area), fmt.Sprintf("%02d", group), fmt.Sprintf("%04d", serial)
	switch r.IntN(4) {
	case 0:
		return a + " " + g + " " + s, false
	case 1:
		return a + g + s, true // needs the SSN cue
	}
	return a + "-" + g + "-" + s, false
}

func genIP(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		h := func() string { return fmt.Sprintf("%x", 1+r.IntN(0xfffe)) }
		return pick(r, []string{
			"2a02:" + h() + ":" + h() + ":" + h() + "::" + h(),
			"2a00:1450:" + h() + ":" + h() + "::" + h(),
			"fe80::" + h() + ":" + h() + ":" + h() + ":" + h(),
			"2600:" + h() + ":" + h() + ":" + h() + ":" + h() + ":" + h() + ":" + h() + ":" + h(),
		})
	}
	o := func() int { return 1 + r.IntN(254) }
	return pick(r, []string{
		fmt.Sprintf("%d.%d.%d.%d", pick(r, []int{23, 45, 62, 81, 91, 109, 151, 176, 185, 212}), r.IntN(256), r.IntN(256), o()),
		fmt.Sprintf("192.168.%d.%d", r.IntN(256), o()),
		fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), o()),
		fmt.Sprintf("172.%d.%d.%d", 16+r.IntN(16), r.IntN(256), o()),
	})
}

// phrase is a sentence fragment of one language with one slot.
type phrases map[string][]string

// planted phrases by language and type; %s is the value.
var plantedPhrases = map[string]phrases{
	"en": {
		TypeEmail: {"you can write to %s", "my e-mail is %s", "cc <%s> on the ticket", "send the invoice to mailto:%s"},
		TypePhone: {"call me at %s", "my phone number is %s", "reach the office on %s", "text me (mobile %s)"},
		TypeCard:  {"my card number is %s", "charge %s for the order", "the Visa ending in the number %s was declined"},
		TypeIBAN:  {"please wire the money to %s", "our IBAN is %s", "refund to account %s"},
		TypeSSN:   {"my SSN is %s", "SSN: %s", "the form lists social security number %s"},
		TypeIP:    {"the server at %s is down", "my home IP is %s", "ssh admin@%s failed", "connect to http://%s:8080/admin"},
	},
	"de": {
		TypeEmail: {"schreiben Sie an %s", "meine E-Mail-Adresse lautet %s", "Kontakt: %s"},
		TypePhone: {"rufen Sie mich unter %s an", "meine Telefonnummer ist %s", "Tel. %s"},
		TypeCard:  {"meine Kreditkartennummer ist %s", "bitte belasten Sie %s"},
		TypeIBAN:  {"bitte überweisen Sie auf %s", "IBAN: %s", "das Konto %s gehört mir"},
		TypeSSN:   {"meine US-SSN lautet %s", "SSN %s"},
		TypeIP:    {"der Server %s antwortet nicht", "die IP-Adresse %s ist gesperrt"},
	},
	"fr": {
		TypeEmail: {"écrivez-moi à %s", "mon adresse e-mail est %s", "contact : %s"},
		TypePhone: {"appelez-moi au %s", "mon numéro de téléphone est le %s", "tél. %s"},
		TypeCard:  {"mon numéro de carte est %s", "débitez la carte %s"},
		TypeIBAN:  {"virez le montant sur %s", "mon IBAN est %s"},
		TypeSSN:   {"mon SSN américain est %s", "SSN : %s"},
		TypeIP:    {"le serveur %s ne répond plus", "l'adresse IP %s est bloquée"},
	},
	"es": {
		TypeEmail: {"escríbeme a %s", "mi correo es %s", "contacto: %s"},
		TypePhone: {"llámame al %s", "mi teléfono es %s", "teléfono de la oficina: %s"},
		TypeCard:  {"el número de mi tarjeta es %s", "cargue %s por favor"},
		TypeIBAN:  {"transfiera a %s", "mi IBAN es %s"},
		TypeSSN:   {"mi SSN de EE. UU. es %s", "SSN: %s"},
		TypeIP:    {"el servidor %s no responde", "mi IP es %s"},
	},
	"ja": {
		TypeEmail: {"メールは%sまでお願いします", "連絡先：%s"},
		TypePhone: {"電話番号は%sです", "携帯%sに電話してください"},
		TypeCard:  {"カード番号は%sです", "%sで支払います"},
		TypeIBAN:  {"振込先は%sです", "IBAN：%s"},
		TypeSSN:   {"米国のSSNは%sです", "SSN：%s"},
		TypeIP:    {"サーバー%sが応答しません", "IPアドレスは%sです"},
	},
}

// nearMiss returns a fragment that holds something like personal data but none.
func nearMiss(r *rand.Rand, lang string) string {
	card := genCard(r, true)
	iban := genIBAN(r, true)
	ssn, _ := genSSN(r, true)
	if strings.Count(ssn, " ") == 0 && strings.Count(ssn, "-") == 0 {
		ssn = ssn[:3] + "-" + ssn[3:5] + "-" + ssn[5:]
	}
	year := 2000 + r.IntN(30)
	m, d := 1+r.IntN(12), 1+r.IntN(28)
	items := []string{
		"card " + card + " (a test number that fails Luhn)",
		"reference " + iban,
		"ticket " + ssn,
		fmt.Sprintf("released on %d-%02d-%02d", year, m, d),
		fmt.Sprintf("on %02d.%02d.%d at 10:30", d, m, year),
		fmt.Sprintf("due %02d/%02d/%d", m, d, year),
		fmt.Sprintf("version %d.%d.%d.%d", 1+r.IntN(20), r.IntN(10), r.IntN(30), r.IntN(9000)),
		fmt.Sprintf("upgrade to v%d.%d.%d.%d", 1+r.IntN(9), r.IntN(10), r.IntN(10), r.IntN(10)),
		fmt.Sprintf("OID 1.3.6.1.4.1.%d", r.IntN(60000)),
		fmt.Sprintf("%d.%d.%d.%d is out of range", 256+r.IntN(700), r.IntN(256), r.IntN(256), r.IntN(256)),
		"localhost is 127.0.0.1 and ::1",
		"netmask 255.255.255.0",
		"see the docs at 192.0.2.15 and 2001:db8::7",
		fmt.Sprintf("at %02d:%02d:%02d", r.IntN(24), r.IntN(60), r.IntN(60)),
		fmt.Sprintf("MAC 00:1a:%02x:%02x:%02x:%02x", r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(256)),
		"use std::vector and Foo::Bar",
		"write to user@example.com",
		"add icon@2x.png",
		"clone git@github.com:acme/tools.git",
		"ping @maria_lopez on chat",
		"order #" + digits(r, 10),
		"order " + digits(r, 10),
		"ISBN 978-3-16-148410-0",
		fmt.Sprintf("population %d %03d %03d %03d", 1+r.IntN(90), r.IntN(1000), r.IntN(1000), r.IntN(1000)),
		fmt.Sprintf("%d.%03d.%03d,%02d €", 1+r.IntN(9), r.IntN(1000), r.IntN(1000), r.IntN(100)),
		fmt.Sprintf("postcode %05d", r.IntN(100000)),
		"id 550e8400-e29b-41d4-a716-" + digits(r, 12),
		"SKU AB" + digits(r, 10) + "X",
		"XX" + digits(r, 20),
		"pi is 3.14159265358979",
	}
	return items[r.IntN(len(items))]
}

var prose = map[string][]string{
	"en": {"Thanks for your help yesterday", "The meeting moved to Tuesday", "Summarise the report below", "Here is the answer you asked for", "Let me check that for you"},
	"de": {"Danke für Ihre Hilfe", "Das Treffen ist am Dienstag", "Fassen Sie den Bericht zusammen", "Hier ist die Antwort"},
	"fr": {"Merci pour votre aide", "La réunion est mardi", "Résumez le rapport ci-dessous", "Voici la réponse"},
	"es": {"Gracias por tu ayuda", "La reunión es el martes", "Resume el informe", "Aquí está la respuesta"},
	"ja": {"ご協力ありがとうございます", "会議は火曜日です", "以下の報告書を要約してください", "回答は次のとおりです"},
}

var joiners = map[string][]string{
	"en": {"; ", ", and ", ". Also, "}, "de": {"; ", ", und ", ". Außerdem: "}, "fr": {" ; ", ", et ", ". Aussi, "},
	"es": {"; ", ", y ", ". Además, "}, "ja": {"。", "、", "。また、"},
}

// genCorpus returns the corpus lines: lang, kind (planted, near_miss, mixed, clean) and
// the text with its planted values marked.
func genCorpus(n int) []string {
	r := rand.New(rand.NewPCG(15, 4))
	langs := []string{"en", "de", "fr", "es", "ja"}
	var out []string
	for i := 0; i < n; i++ {
		lang := langs[i%len(langs)]
		var frags []string
		planted, missed := 0, 0
		for k := 0; k < 1+r.IntN(3); k++ {
			if r.IntN(10) < 7 {
				typ := Types()[(i+k*5)%len(Types())]
				if r.IntN(3) == 0 {
					typ = pick(r, Types())
				}
				var v string
				switch typ {
				case TypeEmail:
					v = genEmail(r)
				case TypePhone:
					v = genPhone(r, lang)
				case TypeCard:
					v = genCard(r, false)
				case TypeIBAN:
					v = genIBAN(r, false)
				case TypeSSN:
					var cue bool
					v, cue = genSSN(r, false)
					if cue {
						frags = append(frags, fmt.Sprintf("SSN: %s", mark(typ, v)))
						planted++
						continue
					}
				case TypeIP:
					v = genIP(r)
				}
				hard := false
				if r.IntN(15) == 0 {
					v, hard = hardVariant(r, typ, v), true // formats the detectors are known to miss
				}
				ph := pick(r, plantedPhrases[lang][typ])
				if typ == TypeIP && strings.Contains(v, ":") {
					ph = strings.ReplaceAll(ph, "//%s:", "//[%s]:") // a URL brackets an IPv6 host
				}
				if hard {
					typ += "!" // marked as a known-hard format
				}
				frags = append(frags, fmt.Sprintf(ph, mark(typ, v)))
				planted++
			} else {
				frags = append(frags, nearMiss(r, lang))
				missed++
			}
		}
		if r.IntN(3) == 0 {
			frags = append([]string{pick(r, prose[lang])}, frags...)
		}
		kind := "mixed"
		switch {
		case missed == 0:
			kind = "planted"
		case planted == 0:
			kind = "near_miss"
		}
		text := frags[0]
		for _, f := range frags[1:] {
			text += pick(r, joiners[lang]) + f
		}
		end := "."
		if lang == "ja" {
			end = "。"
		}
		if r.IntN(4) == 0 {
			text = "User: " + text + end + " Assistant: " + pick(r, prose[lang]) + end
		} else {
			text += end
		}
		out = append(out, lang+"\t"+kind+"\t"+text)
	}
	for i := 0; i < 20; i++ {
		lang := langs[i%len(langs)]
		out = append(out, lang+"\tclean\t"+pick(r, prose[lang])+".")
	}
	return out
}

// hardVariant rewrites a planted value in a format the detectors do not handle, so that
// the corpus measures their limits too: an e-mail address written "name [at] domain", a
// national phone number without separators or cue, a card with mixed separators, an
// IBAN grouped by dashes, an SSN with dots, an IPv4 address with leading zeros.
func hardVariant(r *rand.Rand, typ, v string) string {
	switch typ {
	case TypeEmail:
		return strings.Replace(v, "@", " [at] ", 1)
	case TypePhone:
		return "0" + digits(r, 10)
	case TypeCard:
		d := strings.NewReplacer(" ", "", "-", "").Replace(v)
		return d[:4] + " " + d[4:8] + "-" + d[8:12] + " " + d[12:]
	case TypeIBAN:
		return group(strings.ReplaceAll(v, " ", ""), 4, "-")
	case TypeSSN:
		d := strings.NewReplacer(" ", "", "-", "").Replace(v)
		return d[:3] + "." + d[3:5] + "." + d[5:]
	case TypeIP:
		if strings.Contains(v, ":") {
			v = fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), 1+r.IntN(254))
		}
		var b []string
		for _, o := range strings.Split(v, ".") {
			b = append(b, fmt.Sprintf("%03s", o))
		}
		return strings.Join(b, ".")
	}
	return v
}
