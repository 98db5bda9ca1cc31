// Command trafficgen writes deterministic, realistic LLM traffic as JSON lines: one Kafka
// message value (a raterd input record, see docs/architecture.md) per line, with a share of deliberately
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
// For cache benchmarks, -zipf-s switches to exact-repeat traffic, where prompts and
// prompt+response pairs repeat byte for byte, for example 50,000 records over 10,000
// distinct prompts with one answer each:
//
//	go run ./cmd/trafficgen -zipf-s 1.1 -distinct 10000 -n 50000 -seed 1 -o /tmp/zipf.jsonl
//
// Equal flags give byte-identical output.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"raterd/internal/cli"
	"raterd/internal/trafficgen"
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
	d := trafficgen.DefaultOptions()
	fs := flag.NewFlagSet("trafficgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts     trafficgen.Options
		start    string
		out      string
		repeatS  float64
		variants int
	)
	fs.IntVar(&opts.Count, "n", d.Count, "number of lines (message values) to write, invalid ones included")
	fs.Int64Var(&opts.Seed, "seed", d.Seed, "seed of the PCG generator; equal flags give byte-identical output")
	fs.IntVar(&opts.DistinctPrompts, "distinct", d.DistinctPrompts, "number of distinct prompts the requests draw from, in both kinds of traffic")
	fs.Float64Var(&opts.ZipfS, "zipf", d.ZipfS, "Zipf exponent s (> 1) of prompt popularity in the mixed traffic; higher concentrates traffic on fewer prompts")
	fs.Float64Var(&repeatS, "zipf-s", 0, "exact-repeat traffic for cache benchmarks with Zipf exponent `s` (> 1) of prompt popularity: each prompt and its answers\n"+
		"are fixed, so prompts and prompt+response pairs repeat byte for byte; prompts are 200-4,000 characters, answers 200-2,000;\n"+
		"no invalid lines unless -invalid is given. 0 = off: the mixed traffic, whose popularity -zipf sets")
	fs.IntVar(&variants, "answer-variants", 1, "with -zipf-s: distinct answers per prompt; 1 gives each prompt one fixed answer, n > 1 picks answer v (from 0)\n"+
		"with probability proportional to (1+v)^-s")
	fs.Float64Var(&opts.InvalidShare, "invalid", d.InvalidShare, "share in [0,1] of deliberately invalid lines (not JSON, missing model or response, invalid UTF-8)")
	fs.StringVar(&start, "start", d.Start.Format(time.RFC3339), "timestamp of the first record: RFC 3339, or relative to now (-2h, -90m, -7d) for traffic that recent-time\n"+
		"reports and queries see; the fixed default keeps the output byte-identical between runs")
	fs.DurationVar(&opts.Interval, "interval", d.Interval, "time between the timestamps of consecutive records")
	fs.StringVar(&out, "o", "-", "output file; - writes to stdout")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: trafficgen [flags]

Writes deterministic, realistic LLM traffic as JSON lines: one raterd input record
(a Kafka message value, see docs/architecture.md "Input record") per line. Several models and
apps; support, billing, coding, SQL, summarisation, JSON-extraction, e-mail and config
prompts, some as chat transcripts; Zipf-distributed repeated prompts; mostly good
answers with a few percent each of refusals, PII leaks, broken JSON, truncated and
looping answers, empty and long answers; and a share of invalid lines.

With -zipf-s, exact-repeat traffic for cache benchmarks instead: each of -distinct
prompts has -answer-variants fixed answers, so prompts and prompt+response pairs
repeat byte for byte with Zipf popularity; model, app, metadata, id and timestamp
still vary per request.

Regenerate the committed sample with:
  go run ./cmd/trafficgen -n 3000 -seed 1 -o testdata/traffic.jsonl
50,000 records over 10,000 distinct prompts for a cache benchmark:
  go run ./cmd/trafficgen -zipf-s 1.1 -distinct 10000 -n 50000 -o zipf.jsonl

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
	t, relative, err := cli.BeforeNow(start, time.Now())
	if !relative && err == nil {
		t, err = time.Parse(time.RFC3339, start)
	}
	if err != nil {
		return fmt.Errorf("-start: %w", err)
	}
	opts.Start = t.UTC().Truncate(time.Second)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case repeatS != 0:
		if !(repeatS > 1 && !math.IsInf(repeatS, 1)) {
			return fmt.Errorf("-zipf-s: must be a finite number > 1, or 0 for off, got %g", repeatS)
		}
		if variants < 1 {
			return fmt.Errorf("-answer-variants: must be >= 1, got %d", variants)
		}
		if set["zipf"] {
			return errors.New("-zipf and -zipf-s: give one; -zipf-s sets the exponent of exact-repeat traffic, -zipf that of the mixed traffic")
		}
		opts.ExactRepeats, opts.ZipfS, opts.AnswerVariants = true, repeatS, variants
		if !set["invalid"] {
			opts.InvalidShare = 0
		}
	case set["answer-variants"]:
		return errors.New("-answer-variants: applies only with -zipf-s")
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	if out == "-" {
		return trafficgen.Write(stdout, opts)
	}
	return writeFile(out, opts)
}

// writeFile writes the traffic to a temporary file next to path and renames it into place,
// so a failed run never leaves a half-written file behind.
func writeFile(path string, opts trafficgen.Options) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly after the rename
	if err := trafficgen.Write(f, opts); err != nil {
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
