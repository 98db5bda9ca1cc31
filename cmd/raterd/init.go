package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"raterd/internal/app"
	"raterd/internal/cli"
)

// cmdInit writes the starter raterd.yaml. It never overwrites a file that differs from the
// starter unless --force is given; writing the same content again succeeds, so a script
// that runs init twice does not fail.
func cmdInit(args []string, stdout, stderr io.Writer) error {
	flags := cli.NewFlagSet("init", "init [-o raterd.yaml] [--force]", stderr)
	out := flags.String("o", "raterd.yaml", "path of the file to write; - writes to stdout")
	force := flags.Bool("force", false, "overwrite an existing file that differs from the starter")
	if err := cli.ParseFlags(flags, args); err != nil {
		return err
	}
	starter := []byte(app.StarterConfig())
	if *out == "-" {
		_, err := stdout.Write(starter)
		return err
	}
	existing, err := os.ReadFile(*out)
	switch {
	case err == nil && bytes.Equal(existing, starter):
		fmt.Fprintf(stdout, "%s is already the starter config; nothing written\n", *out)
		return nil
	case err == nil && !*force:
		return fmt.Errorf("init: %s exists and differs from the starter config; keeping it (pass --force to overwrite, or -o another path)", *out)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("init: %w", err)
	}
	if err := os.WriteFile(*out, starter, 0o644); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s: the local dev stack (scripts/services.sh up) and judgesim on 127.0.0.1:8000; the keys to change for production are marked PRODUCTION\n", *out)
	return nil
}
