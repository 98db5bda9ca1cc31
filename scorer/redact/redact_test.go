package redact

import (
	"strings"
	"testing"
)

func TestRedactExamples(t *testing.T) {
	r := All()
	for _, c := range []struct{ in, want string }{
		{"Mail jane.doe+work@acme-corp.co.uk now", "Mail [EMAIL] now"},
		{"Call (555) 123-4567 after 5pm.", "Call [PHONE] after 5pm."},
		{"Phone: +44 20 7946 0958", "Phone: [PHONE]"},
		{"The card 4242 4242 4242 4242 was declined.", "The card [CARD] was declined."},
		{"Reference 4242 4242 4242 4241 is not a card.", "Reference 4242 4242 4242 4241 is not a card."},
		{"IBAN DE89 3704 0044 0532 0130 00 please", "IBAN [IBAN] please"},
		{"IBAN DE89370400440532013000.", "IBAN [IBAN]."},
		{"IBAN DE89 3704 0044 0532 0130 01 wrong", "IBAN DE89 3704 0044 0532 0130 01 wrong"},
		{"GB82WEST12345698765432", "[IBAN]"},
		{"SSN 123-45-6789", "SSN [US_SSN]"},
		{"ssn: 123456789", "ssn: [US_SSN]"},
		{"id 666-12-3456 and 000-12-3456 and 912-12-3456", "id 666-12-3456 and 000-12-3456 and 912-12-3456"},
		{"Server 81.2.69.160:8080 down", "Server [IP]:8080 down"},
		{"host:10.1.2.3", "host:[IP]"},
		{"version 10.2.0.1 and 127.0.0.1 and 192.0.2.4 and 255.255.255.0", "version 10.2.0.1 and 127.0.0.1 and 192.0.2.4 and 255.255.255.0"},
		{"v1.2.3.4 and 1.2.3.4.5 and 300.1.2.3", "v1.2.3.4 and 1.2.3.4.5 and 300.1.2.3"},
		{"addr 2a00:1450:4001:81c::200e.", "addr [IP]."},
		{"[fe80::1ff:fe23:4567:890a]:443", "[[IP]]:443"},
		{"std::vector and 12:30:45 and 00:1A:2B:3C:4D:5E and ::1 and 2001:db8::1", "std::vector and 12:30:45 and 00:1A:2B:3C:4D:5E and ::1 and 2001:db8::1"},
		{"user@example.com icon@2x.png git@github.com:golang/go.git", "user@example.com icon@2x.png git@github.com:golang/go.git"},
		{"released 2024-01-15", "released 2024-01-15"},
	} {
		if got := r.Redact(c.in); got != c.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "k: lists no types"},
		{Config{Types: []string{"mail"}}, `k.types[0]: unknown type "mail"`},
		{Config{Patterns: []Pattern{{Name: "Emp", Pattern: "x"}}}, `k.patterns[0].name: "Emp"`},
		{Config{Patterns: []Pattern{{Name: "email", Pattern: "x"}}}, "built-in type"},
		{Config{Patterns: []Pattern{{Name: "a", Pattern: "x"}, {Name: "a", Pattern: "y"}}}, `k.patterns[1].name: "a" repeats`},
		{Config{Patterns: []Pattern{{Name: "a", Pattern: "("}}}, "k.patterns[0].pattern: error parsing"},
		{Config{Patterns: []Pattern{{Name: "a", Pattern: "x*"}}}, "matches the empty string"},
		{Config{Patterns: []Pattern{{Name: "a", Pattern: `\[A\]`}}}, "matches its own mask"},
	} {
		_, err := New("k", c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %q", c.cfg, err, c.want)
		}
	}
}

func TestCustomPatterns(t *testing.T) {
	r, err := New("k", Config{Types: []string{TypeEmail}, Patterns: []Pattern{{Name: "employee_id", Pattern: `\bEMP-[0-9]{6}\b`}}})
	if err != nil {
		t.Fatal(err)
	}
	got := r.Redact("EMP-123456 wrote to bob@corp.io; call 555-123-4567")
	if want := "[EMPLOYEE_ID] wrote to [EMAIL]; call 555-123-4567"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if r.Has(TypePhone) || !r.Has(TypeEmail) {
		t.Error("Has")
	}
	r2, _ := New("k", Config{Types: []string{TypeEmail}, Patterns: []Pattern{{Name: "employee_id", Pattern: `\bEMP-[0-9]{6}\b`}}})
	r3, _ := New("k", Config{Types: []string{TypeEmail}, Patterns: []Pattern{{Name: "employee_id", Pattern: `\bEMP-[0-9]{7}\b`}}})
	if r.Fingerprint() != r2.Fingerprint() || r.Fingerprint() == r3.Fingerprint() {
		t.Error("fingerprint does not follow the config")
	}
}
