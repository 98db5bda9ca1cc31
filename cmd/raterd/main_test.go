package main

import (
	"strings"
	"testing"
)

func TestMainHelpAndVersion(t *testing.T) {
	var out, errb strings.Builder
	if code := runMain([]string{"--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "Usage:") {
		t.Fatalf("--help: code %d, out %q", code, out.String())
	}
	out.Reset()
	if code := runMain([]string{"--version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "raterd ") {
		t.Fatalf("--version: code %d, out %q", code, out.String())
	}
	errb.Reset()
	if code := runMain([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("unknown command: code %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := runMain([]string{"run", "--config", "/nonexistent.yaml"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "nonexistent") {
		t.Fatalf("missing config: code %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := runMain([]string{"run", "--help"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "-config") {
		t.Fatalf("run --help: code %d, stderr %q", code, errb.String())
	}
	out.Reset()
	runMain([]string{"--help"}, &out, &errb)
	if !strings.Contains(out.String(), "bench ") {
		t.Error("raterd --help does not list bench")
	}
	for _, cmd := range []string{"report", "dlq"} {
		if !strings.Contains(usage, cmd+" ") {
			t.Errorf("raterd --help does not list %s", cmd)
		}
	}
}

// TestJudgesimSubcommand: raterd judgesim is judgesim's command (so raterd bench can
// start the simulator by running its own binary), listed in the help.
func TestJudgesimSubcommand(t *testing.T) {
	if !strings.Contains(usage, "\n  judgesim ") {
		t.Error("raterd --help does not list judgesim")
	}
	var out, errb strings.Builder
	if code := runMain([]string{"judgesim", "-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "-endpoints") {
		t.Fatalf("judgesim -h: code %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := runMain([]string{"judgesim", "-profile", "nope"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "unknown") {
		t.Fatalf("judgesim -profile nope: code %d, stderr %q", code, errb.String())
	}
}
