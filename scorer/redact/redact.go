// Package redact masks personal data in text before it reaches a judge model or a stored
// explanation: e-mail addresses, phone numbers, payment card numbers (Luhn-checked),
// IBANs (ISO 13616 mod-97 checked), US social security numbers, IP addresses, and
// operator-supplied regular expressions. Each value found is replaced by the mask of its
// type, "[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[US_SSN]", "[IP]" or "[NAME]" for a
// pattern called name.
//
// The detectors are the one implementation of each kind of personal data in raterd: the
// pii check (scorer/checks) counts what they find. A Redactor is built once per config
// with New and is safe for concurrent use; the package has no mutable state.
package redact

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Built-in types of personal data.
const (
	// TypeEmail is an e-mail address. Addresses at reserved example domains (RFC
	// 2606/6761), retina image names ("icon@2x.png") and scp-style Git remotes
	// ("git@github.com:o/r") are not personal data and are left alone.
	TypeEmail = "email"
	// TypePhone is a phone number: international (+ and 9–15 digits) or national shapes
	// of 10–11 digits in groups; see the package's number rules.
	TypePhone = "phone"
	// TypeCard is a payment card number: 13–19 digits with a valid Luhn checksum.
	TypeCard = "card"
	// TypeIBAN is an international bank account number with the length of its country
	// and a valid ISO 13616 mod-97 checksum, compact or in groups of four.
	TypeIBAN = "iban"
	// TypeSSN is a US social security number, AAA-GG-SSSS (dashes or spaces), or nine
	// digits after "SSN" or "social security"; areas 000, 666 and 900–999, group 00
	// and serial 0000 are never issued and are not matched.
	TypeSSN = "us_ssn"
	// TypeIP is an IPv4 or IPv6 address (validated by net/netip). Loopback and
	// unspecified addresses, netmasks (255.…) and the documentation ranges (192.0.2.0/24,
	// 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) identify no one and are left alone,
	// as are dotted quads after "version" or "v".
	TypeIP = "ip"
)

// Types returns the built-in types in the order their masks are documented.
func Types() []string {
	return []string{TypeEmail, TypePhone, TypeCard, TypeIBAN, TypeSSN, TypeIP}
}

// TypeAll in a type list stands for every built-in type.
const TypeAll = "all"

// Pattern is an operator-supplied kind of personal data: an RE2 regular expression
// whose matches are masked as "[NAME]" (the name in upper case).
type Pattern struct {
	// Name names the kind: 1–32 lower-case letters, digits and '_', starting with a
	// letter, not a built-in type. Its mask is "[" + upper-case name + "]".
	Name string `yaml:"name"`
	// Pattern is an RE2 regular expression (Go regexp syntax). It must not match the
	// empty string nor its own mask.
	Pattern string `yaml:"pattern"`
}

// Config chooses what a Redactor masks.
type Config struct {
	// Types are the built-in types to mask (email, phone, card, iban, us_ssn, ip), or
	// "all" for every one.
	Types []string `yaml:"types"`
	// Patterns are operator-supplied kinds of personal data.
	Patterns []Pattern `yaml:"patterns"`
}

// Span is one value found in a text: the bytes s[Start:End] are of type Type.
type Span struct {
	Start, End int
	Type       string
}

// Redactor finds and masks personal data. Build it with New; it is safe for concurrent
// use.
type Redactor struct {
	types  map[string]bool
	custom []custom
	canon  string
}

type custom struct {
	name, mask string
	re         *regexp.Regexp
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// New validates cfg and compiles its patterns; key is the config key of cfg (e.g.
// "scoring.redact") so that errors name the bad entry.
func New(key string, cfg Config) (*Redactor, error) {
	r := &Redactor{types: map[string]bool{}}
	for i, t := range cfg.Types {
		switch {
		case t == TypeAll:
			for _, b := range Types() {
				r.types[b] = true
			}
		case slices.Contains(Types(), t):
			r.types[t] = true
		default:
			return nil, fmt.Errorf("%s.types[%d]: unknown type %q (one of %s, or all)", key, i, t, strings.Join(Types(), ", "))
		}
	}
	for i, p := range cfg.Patterns {
		pk := fmt.Sprintf("%s.patterns[%d]", key, i)
		if !validName.MatchString(p.Name) {
			return nil, fmt.Errorf("%s.name: %q must be 1–32 lower-case letters, digits or '_', starting with a letter", pk, p.Name)
		}
		if slices.Contains(Types(), p.Name) || p.Name == TypeAll {
			return nil, fmt.Errorf("%s.name: %q is a built-in type; list it under types", pk, p.Name)
		}
		if slices.ContainsFunc(r.custom, func(c custom) bool { return c.name == p.Name }) {
			return nil, fmt.Errorf("%s.name: %q repeats", pk, p.Name)
		}
		re, err := regexp.Compile(p.Pattern)
		if err != nil {
			return nil, fmt.Errorf("%s.pattern: %w", pk, err)
		}
		mask := Mask(p.Name)
		if re.MatchString("") {
			return nil, fmt.Errorf("%s.pattern: %q matches the empty string", pk, p.Pattern)
		}
		if re.MatchString(mask) {
			return nil, fmt.Errorf("%s.pattern: %q matches its own mask %s, so redaction would not settle", pk, p.Pattern, mask)
		}
		r.custom = append(r.custom, custom{name: p.Name, mask: mask, re: re})
	}
	if len(r.types) == 0 && len(r.custom) == 0 {
		return nil, fmt.Errorf("%s: lists no types and no patterns (write off to redact nothing)", key)
	}
	// The canonical form: built-in types in their documented order, then the patterns
	// in the config's order (an earlier pattern wins an overlap).
	var b strings.Builder
	b.WriteString("redact-v1")
	for _, t := range Types() {
		if r.types[t] {
			fmt.Fprintf(&b, "\x00%s", t)
		}
	}
	for _, c := range r.custom {
		fmt.Fprintf(&b, "\x00%s=%s", c.name, c.re.String())
	}
	r.canon = b.String()
	return r, nil
}

// All returns a Redactor of every built-in type.
func All() *Redactor {
	r, err := New("redact", Config{Types: []string{TypeAll}})
	if err != nil {
		panic(err) // unreachable: the config is constant
	}
	return r
}

// Mask returns the mask of a type: "[" + upper-case type + "]".
func Mask(typ string) string { return "[" + strings.ToUpper(typ) + "]" }

// Fingerprint is a canonical description of what r masks, for the rubric version of an
// evaluator: two Redactors with the same fingerprint redact every text alike.
func (r *Redactor) Fingerprint() string { return r.canon }

// Has reports whether r masks the built-in type t.
func (r *Redactor) Has(t string) bool { return r.types[t] }

// Find returns the values of personal data in s, sorted by offset and not overlapping
// (of two overlapping values the one starting first wins, then the longer, then the
// built-in type before the patterns). It returns nil when there are none.
func (r *Redactor) Find(s string) []Span {
	var spans []Span
	emit := func(sp Span) {
		if r.types[sp.Type] {
			spans = append(spans, sp)
		}
	}
	if r.types[TypeEmail] {
		findEmails(s, emit)
	}
	if r.types[TypePhone] || r.types[TypeCard] || r.types[TypeSSN] {
		findNumbers(s, emit)
	}
	if r.types[TypeIBAN] {
		findIBANs(s, emit)
	}
	if r.types[TypeIP] {
		findIPs(s, emit)
	}
	for _, c := range r.custom {
		for _, m := range c.re.FindAllStringIndex(s, -1) {
			if m[1] > m[0] {
				spans = append(spans, Span{Start: m[0], End: m[1], Type: c.name})
			}
		}
	}
	if len(spans) < 2 {
		return spans
	}
	slices.SortStableFunc(spans, func(a, b Span) int {
		if a.Start != b.Start {
			return a.Start - b.Start
		}
		return b.End - a.End
	})
	out := spans[:1]
	for _, sp := range spans[1:] {
		if sp.Start >= out[len(out)-1].End {
			out = append(out, sp)
		}
	}
	return out
}

// Redact returns s with every value Find finds replaced by the mask of its type, again
// on the result until nothing more is found (a mask can end a digit run that was part
// of a longer one: "DE89 3704… 001000 0000"), so that redacting twice equals redacting
// once. It returns s itself when there is nothing to mask.
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	for range maxPasses {
		t := r.redactOnce(s)
		if t == s {
			break
		}
		s = t
	}
	return s
}

// maxPasses bounds Redact's passes; two settle every text of the built-in types (the
// second finds what the first's masks cut off), the rest guard against patterns that
// match each other's masks.
const maxPasses = 4

func (r *Redactor) redactOnce(s string) string {
	spans := r.Find(s)
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	for _, sp := range spans {
		b.WriteString(s[last:sp.Start])
		b.WriteString(r.mask(sp.Type))
		last = sp.End
	}
	b.WriteString(s[last:])
	return b.String()
}

func (r *Redactor) mask(t string) string {
	for _, c := range r.custom {
		if c.name == t {
			return c.mask
		}
	}
	switch t {
	case TypeEmail:
		return "[EMAIL]"
	case TypePhone:
		return "[PHONE]"
	case TypeCard:
		return "[CARD]"
	case TypeIBAN:
		return "[IBAN]"
	case TypeSSN:
		return "[US_SSN]"
	case TypeIP:
		return "[IP]"
	}
	return Mask(t)
}

// Count returns how many values of each type s holds, by type; nil when none.
func (r *Redactor) Count(s string) map[string]int {
	var n map[string]int
	for _, sp := range r.Find(s) {
		if n == nil {
			n = map[string]int{}
		}
		n[sp.Type]++
	}
	return n
}
