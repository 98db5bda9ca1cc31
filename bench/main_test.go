package bench

import (
	"context"
	"os"
	"testing"

	"raterd/internal/judgesim"
)

// TestMain lets the test binary stand in for `raterd judgesim`: the benchmark starts its
// simulator by re-executing its own binary (--judgesim-bin defaults to it), which under
// `go test` is this one.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "judgesim" {
		os.Exit(judgesim.Command(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
