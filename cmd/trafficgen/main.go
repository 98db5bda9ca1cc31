// Command trafficgen writes deterministic, realistic LLM traffic as JSON lines: one Kafka
// message value (a raterd input record, see DESIGN.md) per line, with a share of deliberately
// invalid lines for dead-lettering.
//
// Usage:
//
//	go run ./cmd/trafficgen [flags]
//
// For example, to regenerate testdata/traffic.jsonl:
//
//	go run ./cmd/trafficgen -n 3000 -seed 1 -o testdata/traffic.jsonl
//
// Equal flags give byte-identical output.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"raterd/cmd/trafficgen/traffic"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "trafficgen:", err)
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	d := traffic.DefaultOptions()
	fs := flag.NewFlagSet("trafficgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts  traffic.Options
		start string
		out   string
	)
	fs.IntVar(&opts.Count, "n", d.Count, "number of lines (message values) to write, invalid ones included")
	fs.Int64Var(&opts.Seed, "seed", d.Seed, "seed of the PCG generator; equal flags give byte-identical output")
	fs.IntVar(&opts.DistinctPrompts, "distinct", d.DistinctPrompts, "number of distinct prompts the requests draw from")
	fs.Float64Var(&opts.ZipfS, "zipf", d.ZipfS, "Zipf exponent s (> 1) of prompt popularity; higher concentrates traffic on fewer prompts")
	fs.Float64Var(&opts.InvalidShare, "invalid", d.InvalidShare, "share in [0,1] of deliberately invalid lines (not JSON, missing model or response, invalid UTF-8)")
	fs.StringVar(&start, "start", d.Start.Format(time.RFC3339), "timestamp of the first record, RFC 3339")
	fs.DurationVar(&opts.Interval, "interval", d.Interval, "time between the timestamps of consecutive records")
	fs.StringVar(&out, "o", "-", "output file; - writes to stdout")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: trafficgen [flags]

Writes deterministic, realistic LLM traffic as JSON lines: one raterd input record
(a Kafka message value, see DESIGN.md "Input record") per line. Several models and
apps; support, billing, coding, SQL, summarisation, JSON-extraction, e-mail and config
prompts, some as chat transcripts; Zipf-distributed repeated prompts; mostly good
answers with a few percent each of refusals, PII leaks, broken JSON, truncated and
looping answers, empty and long answers; and a share of invalid lines.

Regenerate the committed sample with:
  go run ./cmd/trafficgen -n 3000 -seed 1 -o testdata/traffic.jsonl

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	t, err := time.Parse(time.RFC3339, start)
	if err != nil {
		return fmt.Errorf("-start: %w", err)
	}
	opts.Start = t
	if err := opts.Validate(); err != nil {
		return err
	}
	if out == "-" {
		return traffic.Write(stdout, opts)
	}
	return writeFile(out, opts)
}

// writeFile writes the traffic to a temporary file next to path and renames it into place,
// so a failed run never leaves a half-written file behind.
func writeFile(path string, opts traffic.Options) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly after the rename
	if err := traffic.Write(f, opts); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
