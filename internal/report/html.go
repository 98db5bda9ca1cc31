package report

import (
	"context"
	"flag"
	"fmt"
	"time"

	"raterd/internal/app"
	"raterd/internal/cli"
	"raterd/internal/report/htmlreport"
	"raterd/sinks/clickhouse"
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
	modelA, modelB           string
	ch                       clickHouseFlags
	timeout                  time.Duration
}

func (f *htmlFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.scores, "scores", "", "NDJSON score `file` to read instead of ClickHouse (the ndjson sink's output, e.g. raterd demo's raterd-demo-scores.ndjson)")
	fs.StringVar(&f.out, "o", "raterd-report.html", "HTML `file` to write; - writes to stdout")
	fs.Var(&f.evaluators, "evaluator", "only the evaluator of this `name`; repeat for several (default: every evaluator)")
	fs.Var(&f.models, "model", "only the model of this `name`; repeat for several (default: every model)")
	fs.Var(&f.apps, "app", "only the app of this `name`; repeat for several (default: every app)")
	fs.StringVar(&f.from, "from", "", "start `time` of the range, inclusive (default: ClickHouse 24 hours before --to, --scores the first row's); see Times")
	fs.StringVar(&f.to, "to", "", "end `time` of the range, exclusive (default: ClickHouse now, --scores after the last row); see Times")
	fs.StringVar(&f.modelA, "model-a", "", "`name` of the baseline model of the comparisons (default: each evaluator's busiest model)")
	fs.StringVar(&f.modelB, "model-b", "", "`name` of the model compared with --model-a (default: every other model)")
	f.ch.register(fs)
	fs.DurationVar(&f.timeout, "timeout", time.Minute, "bound on connecting to ClickHouse and running the report's queries")
}

func (c reportCmd) html(ctx context.Context, args []string) error {
	var f htmlFlags
	if err := c.parseReportFlags("html", args, f.register); err != nil {
		return err
	}
	if f.out == "" {
		return cli.FlagErrorf("-o: empty file name")
	}
	if f.timeout <= 0 {
		return cli.FlagErrorf("--timeout: %s is not a positive duration", f.timeout)
	}
	for name, v := range map[string]string{"--model-a": f.modelA, "--model-b": f.modelB} {
		if err := checkText(name, v); err != nil {
			return err
		}
	}
	if (f.modelA == "") != (f.modelB == "") {
		return cli.FlagErrorf("--model-a and --model-b go together: name both models, or neither to compare each model with the busiest")
	}
	if f.modelA != "" && f.modelA == f.modelB {
		return cli.FlagErrorf("--model-b %q is --model-a: compare two different models", f.modelB)
	}
	if f.scores != "" {
		if f.ch.addr != "" {
			return cli.FlagErrorf("--clickhouse: not used with --scores, which reads the file instead")
		}
		if f.ch.database != "" {
			return cli.FlagErrorf("--database: not used with --scores, which reads the file instead")
		}
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
	opts.ModelA, opts.ModelB, opts.Now = f.modelA, f.modelB, now
	if f.ch.config != "" {
		full, err := app.LoadConfig(f.ch.config, c.getenv)
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		r, err := full.Scoring.Redact.Redactor("scoring.redact")
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		if r != nil {
			opts.Redact = r.Redact
		}
	}

	var d htmlreport.Data
	source := ""
	if f.scores != "" {
		if d, err = htmlreport.FromNDJSONFile(f.scores, opts); err != nil {
			return fmt.Errorf("--scores: %w", err)
		}
		source = f.scores
	} else {
		if opts.From, opts.To, err = htmlreport.ClickHouseRange(opts, now); err != nil {
			return cli.FlagErrorf("--from, --to: %v", err)
		}
		cfg, err := f.ch.resolve(c.getenv)
		if err != nil {
			return err
		}
		if d, err = clickHouseReport(ctx, cfg, f.timeout, opts); err != nil {
			return err
		}
		source = "ClickHouse database " + cfg.Database
	}
	if f.out == "-" {
		return htmlreport.Render(c.stdout, d)
	}
	if err := htmlreport.WriteFile(f.out, d); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	fmt.Fprintf(c.stderr, "raterd report html: wrote %s (%d score rows in the range, from %s)\n", f.out, d.Rows, source)
	return nil
}

// clickHouseReport connects to cfg and builds the report from its cookbook queries, all
// within timeout.
func clickHouseReport(ctx context.Context, cfg clickhouse.Config, timeout time.Duration, opts htmlreport.Options) (htmlreport.Data, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		return htmlreport.Data{}, err
	}
	defer conn.Close()
	d, err := htmlreport.FromClickHouse(ctx, htmlreport.ConnQuerier{Conn: conn, Database: cfg.Database}, opts)
	if err != nil {
		return d, fmt.Errorf("report html: %w", err)
	}
	return d, nil
}
