package report

import (
	"flag"
	"fmt"

	"raterd/internal/cli"
	"raterd/internal/report/htmlreport"
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
	d, err := htmlreport.FromNDJSONFile(f.scores, opts)
	if err != nil {
		return fmt.Errorf("--scores: %w", err)
	}
	if f.out == "-" {
		return htmlreport.Render(c.stdout, d)
	}
	if err := htmlreport.WriteFile(f.out, d); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	fmt.Fprintf(c.stderr, "raterd report html: wrote %s (%d score rows in the range)\n", f.out, d.Rows)
	return nil
}
