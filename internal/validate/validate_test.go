package validate

import (
	"strings"
	"testing"
)

func TestHostPort(t *testing.T) {
	for in, want := range map[string]bool{
		"localhost:9000":    true,
		"127.0.0.1:1":       true,
		"[::1]:9092":        true,
		"kafka:http":        true,
		"localhost":         false,
		":9000":             false,
		"host:":             false,
		"":                  false,
		"a:b:c":             false,
		"[::1]":             false,
		"[::1]:":            false,
		"http://x:1":        false,
		"host:9000 ":        true, // the port is not parsed
		"a:9000,b:9000":     false,
		"localhost:9000:1":  false,
		"[fe80::1%eth0]:80": true,
	} {
		if got := HostPort(in); got != want {
			t.Errorf("HostPort(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestSQLIdentifier(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"raterd", true},
		{"_x", true},
		{"Raterd_test_2", true},
		{"a1", true},
		{"", false},
		{"1a", false},
		{"x; DROP", false},
		{"a.b", false},
		{"a-b", false},
		{"a b", false},
		{"`a`", false},
		{"a'", false},
		{"é", false},
	}
	for _, tt := range tests {
		if got := SQLIdentifier(tt.in); got != tt.want {
			t.Errorf("SQLIdentifier(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestKafkaTopic(t *testing.T) {
	for in, want := range map[string]bool{
		"raterd.alerts":                      true,
		"a":                                  true,
		"A-b_c.9":                            true,
		"...":                                true,
		strings.Repeat("t", MaxKafkaTopic):   true,
		strings.Repeat("t", MaxKafkaTopic+1): false,
		"":                                   false,
		".":                                  false,
		"..":                                 false,
		"a b":                                false,
		"a/b":                                false,
		"tópico":                             false,
		"x\n":                                false,
	} {
		if got := KafkaTopic(in); got != want {
			t.Errorf("KafkaTopic(%q) = %v, want %v", in, got, want)
		}
	}
}
