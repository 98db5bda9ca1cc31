package app

import _ "embed"

// starterConfig is the file `raterd init` writes: the local dev stack's addresses, six
// built-in checks and one judge-model evaluator, with comments naming what production
// changes. A string, so that no caller can modify it.
//
//go:embed starter.yaml
var starterConfig string

// StarterConfig returns the commented starter raterd.yaml that `raterd init` writes. It
// loads with ParseConfig as written (a test keeps it so).
func StarterConfig() string { return starterConfig }
