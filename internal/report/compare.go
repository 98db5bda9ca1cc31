package report

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/internal/cli"
	wstats "raterd/internal/report/welch"
	"raterd/sinks/clickhouse"
)

// ---------------------------------------------------------------------------------------
// report compare

// welchResult is the comparison of two samples, as compare_models computes it, plus
// the t statistic (package welch, shared with the HTML report).
type welchResult = wstats.Result

// welch finishes a comparison from the counts, means and sample variances of A and B with
// compare_models' formulas (wstats.Compare).
func welch(sa, sb sampleStats) welchResult {
	return wstats.Compare(wstats.Stats(sa), wstats.Stats(sb))
}

// verdict says what the 95% interval of B − A means (wstats.Verdict).
func verdict(low, high float64) (short, long string) { return wstats.Verdict(low, high) }

func (c reportCmd) compare(ctx context.Context, args []string) error {
	var f reportFlags
	if err := c.parseReportFlags("compare", args, func(fs *flag.FlagSet) {
		f.registerCompare(fs)
		f.registerCommon(fs)
	}); err != nil {
		return err
	}
	if err := requireText("--evaluator", f.evaluator); err != nil {
		return err
	}
	if f.windowA != "" || f.windowB != "" {
		return c.compareWindows(ctx, &f)
	}
	if f.model != "" {
		return cli.FlagErrorf("--model compares one model over two time windows: add --window-a and --window-b (two models: --model-a, --model-b)")
	}
	if err := requireText("--model-a", f.modelA); err != nil {
		return err
	}
	if err := requireText("--model-b", f.modelB); err != nil {
		return err
	}
	if f.modelA == f.modelB {
		return cli.FlagErrorf("--model-b: %q is also --model-a; to compare one model over two time ranges use --model with --window-a and --window-b", f.modelB)
	}
	from, to, err := timeRange("--from", f.from, "--to", f.to, c.now())
	if err != nil {
		return err
	}
	q, ok := clickhouse.CookbookQueryNamed("compare_models")
	if !ok {
		return errors.New("the cookbook has no compare_models query")
	}
	t, err := c.runQuery(ctx, &f, q, map[string]string{
		"evaluator": f.evaluator, "model_a": f.modelA, "model_b": f.modelB, "from": rfc3339(from), "to": rfc3339(to),
	})
	if err != nil {
		return err
	}
	if len(t.Rows) != 1 {
		return fmt.Errorf("compare_models: %d rows, want 1", len(t.Rows))
	}
	r, err := welchFromRow(t)
	if err != nil {
		return err
	}
	short, long := verdict(r.Low, r.High)
	if f.format != formatTable {
		return writeResult(c.stdout, f.format, withTStatAndVerdict(t, r, short))
	}
	fmt.Fprintf(c.stdout, "compare models on %s, %s to %s UTC\n\n", f.evaluator, from.Format(time.DateTime), to.Format(time.DateTime))
	side := &resultTable{Columns: []string{"", "model", "n", "mean"}, Rows: [][]any{
		{"A", f.modelA, r.NA, r.MeanA},
		{"B", f.modelB, r.NB, r.MeanB},
	}}
	return printComparison(c.stdout, side, r, long)
}

// withTStatAndVerdict is the csv/json answer of a model comparison: compare_models'
// columns (t_crit among them, the critical value) followed by t_stat, the t statistic
// diff / std_err, and the verdict.
func withTStatAndVerdict(t *resultTable, r welchResult, verdict string) *resultTable {
	t.Columns = append(t.Columns, "t_stat", "verdict")
	t.Rows[0] = append(t.Rows[0], r.T, verdict)
	return t
}

// welchFromRow reads compare_models' answer and computes the t statistic from it.
func welchFromRow(t *resultTable) (welchResult, error) {
	var r welchResult
	row := t.Rows[0]
	get := func(name string) (float64, error) {
		i := t.col(name)
		if i < 0 {
			return 0, fmt.Errorf("compare_models: no %s column in %v", name, t.Columns)
		}
		v, ok := cellFloat(row[i])
		if !ok {
			return 0, fmt.Errorf("compare_models: %s is %T, not a number", name, row[i])
		}
		return v, nil
	}
	fields := []struct {
		name string
		dst  *float64
	}{
		{"mean_a", &r.MeanA}, {"mean_b", &r.MeanB}, {"diff", &r.Diff}, {"std_err", &r.StdErr},
		{"welch_df", &r.DF}, {"t_crit", &r.TCrit}, {"ci95_low", &r.Low}, {"ci95_high", &r.High},
	}
	for _, fl := range fields {
		v, err := get(fl.name)
		if err != nil {
			return r, err
		}
		*fl.dst = v
	}
	na, err := get("n_a")
	if err != nil {
		return r, err
	}
	nb, err := get("n_b")
	if err != nil {
		return r, err
	}
	r.NA, r.NB = uint64(na), uint64(nb)
	r.T = r.Diff / r.StdErr
	return r, nil
}

// printComparison prints the sides, the difference with its t statistic and interval
// (with the critical value it uses), and the verdict.
func printComparison(w io.Writer, side *resultTable, r welchResult, long string) error {
	if err := writeTable(w, side); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ndifference B − A: %s (std. error %s, Welch df %s, t %s)\n",
		signed(r.Diff), formatFloat(r.StdErr), formatFloat(r.DF), signed(r.T))
	fmt.Fprintf(w, "95%% CI: [%s, %s] (difference ± t crit %s × std. error)\n", formatFloat(r.Low), formatFloat(r.High), formatFloat(r.TCrit))
	_, err := fmt.Fprintf(w, "verdict: %s\n", long)
	return err
}

// signed formats f like formatFloat with an explicit + on positive numbers.
func signed(f float64) string {
	s := formatFloat(f)
	if f > 0 && s != "0.000" && s != "inf" {
		return "+" + s
	}
	return s
}

func (c reportCmd) compareWindows(ctx context.Context, f *reportFlags) error {
	switch {
	case f.modelA != "" || f.modelB != "":
		return cli.FlagErrorf("--window-a/--window-b compare one model (--model) over two time ranges; they do not combine with --model-a/--model-b")
	case f.from != "":
		return cli.FlagErrorf("--from: with --window-a/--window-b each window gives its own time range")
	case f.to != "now":
		return cli.FlagErrorf("--to: with --window-a/--window-b each window gives its own time range")
	}
	if err := requireText("--model", f.model); err != nil {
		return err
	}
	now := c.now()
	fromA, toA, err := parseWindow("--window-a", f.windowA, now)
	if err != nil {
		return err
	}
	fromB, toB, err := parseWindow("--window-b", f.windowB, now)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	conn, cfg, err := c.connect(ctx, f)
	if err != nil {
		return err
	}
	defer conn.Close()
	var st [2]sampleStats
	for i, w := range [2][2]time.Time{{fromA, toA}, {fromB, toB}} {
		if st[i], err = windowStats(ctx, conn, cfg.Database, f.evaluator, f.model, w[0], w[1]); err != nil {
			return err
		}
	}
	r := welch(st[0], st[1])
	short, long := verdict(r.Low, r.High)
	if f.format != formatTable {
		return writeResult(c.stdout, f.format, windowTable(f.model, [4]time.Time{fromA, toA, fromB, toB}, r, short))
	}
	fmt.Fprintf(c.stdout, "compare time windows of %s on %s (UTC)\n\n", f.model, f.evaluator)
	side := &resultTable{Columns: []string{"", "from", "to", "n", "mean"}, Rows: [][]any{
		{"A", fromA, toA, r.NA, r.MeanA},
		{"B", fromB, toB, r.NB, r.MeanB},
	}}
	return printComparison(c.stdout, side, r, long)
}

// sampleStats are the scored rows of one side of a comparison: their number, mean score
// and sample variance.
type sampleStats struct {
	N        uint64
	Mean     float64
	Variance float64
}

// windowStats serves `compare --window-a --window-b`: compare_models compares two models
// over one time range and cannot compare one model over two, so the command runs the
// cookbook's score_stats, filtered to the model, once per window and finishes the interval
// in Go (welch) with compare_models' formulas.
func windowStats(ctx context.Context, conn driver.Conn, db, evaluator, model string, from, to time.Time) (sampleStats, error) {
	q, ok := clickhouse.CookbookQueryNamed("score_stats")
	if !ok {
		return sampleStats{}, errors.New("the cookbook has no score_stats query")
	}
	t, err := runCookbook(ctx, conn, db, q, map[string]string{
		"evaluator": evaluator, "model": model, "from": rfc3339(from), "to": rfc3339(to),
	})
	if err != nil {
		return sampleStats{}, err
	}
	if len(t.Rows) != 1 || len(t.Rows[0]) != 3 {
		return sampleStats{}, fmt.Errorf("%s: unexpected answer %v", q.Name, t.Rows)
	}
	n, ok1 := cellUint(t.Rows[0][0])
	mean, ok2 := cellFloat(t.Rows[0][1])
	v, ok3 := cellFloat(t.Rows[0][2])
	if !(ok1 && ok2 && ok3) {
		return sampleStats{}, fmt.Errorf("%s: unexpected answer %v", q.Name, t.Rows[0])
	}
	return sampleStats{N: n, Mean: mean, Variance: v}, nil
}

// windowTable is the csv/json answer of a window comparison: compare_models' columns with
// the windows in place of the second model, then t_stat and the verdict as for two
// models.
func windowTable(model string, w [4]time.Time, r welchResult, verdict string) *resultTable {
	return &resultTable{
		Columns: []string{"model", "from_a", "to_a", "from_b", "to_b", "n_a", "n_b", "mean_a", "mean_b", "diff",
			"std_err", "welch_df", "t_crit", "ci95_low", "ci95_high", "t_stat", "verdict"},
		Rows: [][]any{{model, w[0], w[1], w[2], w[3], r.NA, r.NB, r.MeanA, r.MeanB, r.Diff,
			r.StdErr, r.DF, r.TCrit, r.Low, r.High, r.T, verdict}},
	}
}
