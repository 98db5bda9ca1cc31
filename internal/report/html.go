package report

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"raterd/internal/cli"
	"raterd/internal/report/htmlreport"
	"raterd/sinks"
)

// ---------------------------------------------------------------------------------------
// report html

// listFlag collects a repeatable flag's values.
type listFlag []string

func (l *listFlag) String() string { return "" }

func (l *listFlag) Set(v string) error {
	if err := checkText("value", v); err != nil {
		return err
	}
	*l = append(*l, v)
	return nil
}

// htmlFlags are the flags of `raterd report html`.
type htmlFlags struct {
	scores, out              string
	evaluators, models, apps listFlag
	from, to                 string
}

func (f *htmlFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.scores, "scores", "", "NDJSON score `file` (the ndjson sink's output, e.g. raterd demo's raterd-demo-scores.ndjson; required)")
	fs.StringVar(&f.out, "o", "raterd-report.html", "HTML `file` to write; - writes to stdout")
	fs.Var(&f.evaluators, "evaluator", "only the evaluator of this `name`; repeat for several (default: every evaluator)")
	fs.Var(&f.models, "model", "only the model of this `name`; repeat for several (default: every model)")
	fs.Var(&f.apps, "app", "only the app of this `name`; repeat for several (default: every app)")
	fs.StringVar(&f.from, "from", "", "start `time` of the range, inclusive (default: the first row's); see Times")
	fs.StringVar(&f.to, "to", "", "end `time` of the range, exclusive (default: after the last row); see Times")
}

func (c reportCmd) html(args []string) error {
	var f htmlFlags
	if err := c.parseReportFlags("html", args, f.register); err != nil {
		return err
	}
	if f.scores == "" {
		return cli.FlagErrorf("--scores is required (reading ClickHouse is not implemented yet)")
	}
	if f.out == "" {
		return cli.FlagErrorf("-o: empty file name")
	}
	opts := htmlreport.Options{Evaluators: f.evaluators, Models: f.models, Apps: f.apps}
	now := c.now()
	var err error
	if f.from != "" {
		if opts.From, err = parseReportTime(f.from, now); err != nil {
			return cli.FlagErrorf("--from: %v", err)
		}
	}
	if f.to != "" {
		if opts.To, err = parseReportTime(f.to, now); err != nil {
			return cli.FlagErrorf("--to: %v", err)
		}
	}
	if !opts.From.IsZero() && !opts.To.IsZero() && !opts.From.Before(opts.To) {
		return cli.FlagErrorf("--from %s is not before --to %s", rfc3339(opts.From), rfc3339(opts.To))
	}
	in, err := os.Open(f.scores)
	if err != nil {
		return fmt.Errorf("--scores: %w", err)
	}
	defer in.Close()
	agg := htmlreport.NewAggregator(opts)
	if err := readNDJSONScores(in, agg); err != nil {
		return fmt.Errorf("%s: %w", f.scores, err)
	}
	d := agg.Data()
	if f.out == "-" {
		return htmlreport.Render(c.stdout, d)
	}
	if err := writeFileAtomic(f.out, func(w io.Writer) error { return htmlreport.Render(w, d) }); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "raterd report html: wrote %s (%d score rows in the range)\n", f.out, d.Rows)
	return nil
}

// readNDJSONScores folds every line of r into agg; blank lines are skipped, and a line
// that is not a score row is an error naming its line number. Lines have no length limit
// (explanations can be long).
func readNDJSONScores(r io.Reader, agg *htmlreport.Aggregator) error {
	br := bufio.NewReaderSize(r, 256<<10)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			row, derr := sinks.DecodeNDJSONScore(line)
			if derr != nil {
				return fmt.Errorf("line %d: %w", n, derr)
			}
			agg.Add(&row)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// writeFileAtomic writes path through a temporary file in its directory, renamed over
// path once complete: a failed report never leaves a truncated page behind.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	w := bufio.NewWriter(tmp)
	if err := write(w); err != nil {
		tmp.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("-o: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("-o: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	return nil
}
