package main

import (
	"bytes"
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"

	"raterd/internal/judgesim"
)

// TestHelpDocumentsRunTimeFaults: every fault flag has a field of the same name (with _
// for -) that /admin/faults accepts, and -h documents the JSON body with each field.
func TestHelpDocumentsRunTimeFaults(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run -h: %v", err)
	}
	help := out.String()
	for _, fl := range []string{"error-rate", "slow-rate", "slow-factor", "hang-rate", "malformed-rate", "hang", "position-bias"} {
		field := strings.ReplaceAll(fl, "-", "_")
		if !slices.Contains(judgesim.FaultFields(), field) {
			t.Errorf("flag -%s: /admin/faults accepts no field %s (it accepts %q)", fl, field, judgesim.FaultFields())
		}
		if !strings.Contains(help, "\n  -"+fl+" ") && !strings.Contains(help, "\n  -"+fl+"\n") {
			t.Errorf("-h lists no flag -%s", fl)
		}
	}
	_, body, ok := strings.Cut(help, "/admin/faults, as a JSON object")
	if !ok {
		t.Fatalf("-h does not document the /admin/faults body:\n%s", help)
	}
	for _, field := range judgesim.FaultFields() {
		if !strings.Contains(body, field) {
			t.Errorf("-h does not document the /admin/faults field %s", field)
		}
	}
	for _, want := range []string{"GET /admin/faults", "POST /admin/faults", "changes only those given", "400", "curl -X POST"} {
		if !strings.Contains(body, want) {
			t.Errorf("-h lacks %q", want)
		}
	}
}

func TestFlagErrors(t *testing.T) {
	for args, want := range map[string]string{
		"-position-bias 2": "position-bias",
		"-max-seqs 0":      "max-seqs",
		"extra":            "unexpected arguments",
	} {
		var out bytes.Buffer
		err := run(strings.Fields(args), &out)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s", args, err, want)
		}
	}
}
