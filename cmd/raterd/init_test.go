package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"raterd/internal/app"
)

func TestInitWritesTheStarterAndKeepsAnEditedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raterd.yaml")
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := runMain(append([]string{"init"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, out, errOut := run("-o", path); code != 0 || !strings.Contains(out, "wrote "+path) {
		t.Fatalf("first init: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != app.StarterConfig() {
		t.Fatalf("written file differs from the starter (err %v)", err)
	}
	if _, err := app.LoadConfig(path, func(string) string { return "" }); err != nil {
		t.Fatalf("the written starter does not load: %v", err)
	}
	// Running it again (a script run twice) succeeds without writing.
	if code, out, _ := run("-o", path); code != 0 || !strings.Contains(out, "nothing written") {
		t.Fatalf("second init: exit %d, stdout %q", code, out)
	}
	// An edited file is kept, and the error says how to overwrite it.
	edited := app.StarterConfig() + "# my change\n"
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run("-o", path); code == 0 || !strings.Contains(errOut, "--force") {
		t.Fatalf("init over an edited file: exit %d, stderr %q; want a failure naming --force", code, errOut)
	}
	if got, _ := os.ReadFile(path); string(got) != edited {
		t.Fatal("init changed an edited file without --force")
	}
	if code, _, errOut := run("-o", path, "--force"); code != 0 {
		t.Fatalf("init --force: exit %d, stderr %q", code, errOut)
	}
	if got, _ := os.ReadFile(path); string(got) != app.StarterConfig() {
		t.Fatal("init --force did not write the starter")
	}
	if code, out, _ := run("-o", "-"); code != 0 || out != app.StarterConfig() {
		t.Fatalf("init -o -: exit %d, printed %d bytes, want the starter", code, len(out))
	}
}
