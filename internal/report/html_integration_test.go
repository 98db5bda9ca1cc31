package report

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"raterd/internal/report/htmlreport"
	"raterd/internal/telemetry"
	"raterd/internal/testkit"
	"raterd/internal/testkit/chtest"
	"raterd/record"
	"raterd/sinks/clickhouse"
)

// htmlFixture is the score rows of the HTML report's integration test, on 2026-01-05
// between 08:00 and 12:00 UTC:
//
//	helpfulness (pointwise, judge-x): m-a 0.2 (w1), 0.4, 0.9 and a parse failure;
//	    m-b 0.7, 0.8, 0.1 (w2, label "<b>bad</b>") and a judge error (judge-y)
//	preference (pairwise, judge-x): m-a first, first, inconsistent, inconsistent, second;
//	    m-b tie and a parse failure
//
// plus a helpfulness row at 13:00, after the range.
func htmlFixture() []record.Score {
	base := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	n := 0
	row := func(evaluator, task, model, judge string, minutes int, score float64, label, status string) record.Score {
		n++
		t := base.Add(time.Duration(minutes) * time.Minute)
		return record.Score{EventTime: t, ScoredAt: t.Add(time.Minute), RecordID: fmt.Sprintf("%s-%d", evaluator[:4], n),
			Model: model, App: "chat", Evaluator: evaluator, RubricVersion: "r1", Judge: judge, TaskType: task,
			Value: score, Label: label, Explanation: "why " + label, Status: status, Attempts: 1,
			Source: record.Source{Topic: "llm", Offset: int64(n)}}
	}
	ok := record.StatusOK
	rows := []record.Score{
		row("helpfulness", "pointwise", "m-a", "judge-x", 5, 0.2, "", ok),
		row("helpfulness", "pointwise", "m-a", "judge-x", 65, 0.4, "", ok),
		row("helpfulness", "pointwise", "m-a", "judge-x", 125, 0.9, "", ok),
		row("helpfulness", "pointwise", "m-a", "judge-x", 130, 0, "", record.StatusParseFailure),
		row("helpfulness", "pointwise", "m-b", "judge-x", 10, 0.7, "", ok),
		row("helpfulness", "pointwise", "m-b", "judge-x", 70, 0.8, "", ok),
		row("helpfulness", "pointwise", "m-b", "judge-x", 190, 0.1, "<b>bad</b>", ok),
		row("helpfulness", "pointwise", "m-b", "judge-y", 200, 0, "", record.StatusJudgeError),
		row("preference", "pairwise", "m-a", "judge-x", 20, 1, "first", ok),
		row("preference", "pairwise", "m-a", "judge-x", 30, 1, "first", ok),
		row("preference", "pairwise", "m-a", "judge-x", 40, 0.5, "inconsistent", ok),
		row("preference", "pairwise", "m-a", "judge-x", 50, 0.5, "inconsistent", ok),
		row("preference", "pairwise", "m-a", "judge-x", 60, 0, "second", ok),
		row("preference", "pairwise", "m-b", "judge-x", 80, 0.5, "tie", ok),
		row("preference", "pairwise", "m-b", "judge-x", 90, 0, "", record.StatusParseFailure),
		row("helpfulness", "pointwise", "m-a", "judge-x", 300, 0.05, "", ok), // 13:00: after the range
	}
	rows[0].RecordID, rows[6].RecordID = "w1", "w2"
	return rows
}

// htmlSummary projects the parts of a Data that the ClickHouse and NDJSON sources must
// agree on: the rows, each evaluator's series (totals and points), worst rows and the
// judges' outcomes.
func htmlSummary(d htmlreport.Data) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rows %d skipped %d bucket %s range %s … %s\n", d.Rows, d.Skipped, d.Bucket, d.From.UTC(), d.To.UTC())
	for _, e := range d.Evaluators {
		fmt.Fprintf(&b, "evaluator %s\n", e.Name)
		for _, s := range e.Series {
			fmt.Fprintf(&b, "  series %s scored %v failed %v mean %.9g\n", s.Model, s.Scored, s.Failed, s.Mean)
			for _, p := range s.Points {
				fmt.Fprintf(&b, "    %s scored %v failed %v mean %.9g\n", p.Start.UTC().Format(time.RFC3339), p.Scored, p.Failed, p.Mean)
			}
		}
		for _, w := range e.Worst {
			fmt.Fprintf(&b, "  worst %s %s %s %q %q %g\n", w.EventTime.UTC().Format(time.RFC3339), w.Model, w.RecordID, w.Label, w.Explanation, w.Score)
		}
	}
	for _, j := range d.Judges {
		fmt.Fprintf(&b, "judge %s ok %v parse %v errors %v\n", j.Judge, j.Scored, j.ParseFailures, j.JudgeErrors)
	}
	return b.String()
}

func TestIntegrationReportHTML(t *testing.T) {
	s := testkit.RequireServices(t)
	db := "raterd_ithtml_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	conn := chtest.Migrated(t, s.ClickHouse, db)
	cfg := clickhouse.Config{Addrs: []string{s.ClickHouse}, Database: db}
	if err := cfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rows := htmlFixture()
	sink := clickhouse.NewScores(conn, cfg, telemetry.Settings{Logger: slog.New(slog.DiscardHandler)})
	if err := sink.WriteScores(ctx, rows); err != nil {
		t.Fatal(err)
	}
	// A replay of two rows with a later scored_at: the queries count each once.
	replay := []record.Score{rows[0], rows[10]}
	for i := range replay {
		replay[i].ScoredAt = replay[i].ScoredAt.Add(time.Hour)
	}
	if err := sink.WriteScores(ctx, replay); err != nil {
		t.Fatal(err)
	}
	// An alert that fired in the range, in two states (pending, then firing).
	for _, state := range []string{"pending", "firing"} {
		stmt := "INSERT INTO " + db + ".alerts (alert_id, rule, evaluator, model, app, judge, state, severity, observed, expected, " +
			"interval_low, interval_high, sample_size, since, updated_at, example_record_ids, message, drilldown_sql) " +
			"SELECT 'al-1', 'score_drop_rule', 'helpfulness', 'm-b', '', '', '" + state + "', 'warning', 0.1, 0.75, 0.05, 0.2, 3, " +
			"toDateTime('2026-01-05 11:00:00', 'UTC'), toDateTime('2026-01-05 11:" + map[string]string{"pending": "05", "firing": "10"}[state] +
			":00', 'UTC'), ['w2'], 'helpfulness on m-b <dropped>', ''"
		if err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("insert alert: %v", err)
		}
	}

	now := time.Date(2026, 1, 5, 14, 0, 0, 0, time.UTC)
	out := filepath.Join(t.TempDir(), "report.html")
	var stdout, stderr strings.Builder
	cmd := reportCmd{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }, now: func() time.Time { return now }}
	args := []string{"html", "--clickhouse", s.ClickHouse, "--database", db, "--from", "2026-01-05T08:00:00Z", "--to", "2026-01-05T12:00:00Z", "-o", out}
	if err := cmd.run(ctx, args); err != nil {
		t.Fatalf("report html: %v\nstderr: %s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "wrote "+out) || !strings.Contains(stderr.String(), "ClickHouse database "+db) {
		t.Errorf("stderr: %q", stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if strings.Contains(page, "<script") || strings.Contains(page, "<b>bad</b>") || strings.Contains(page, "<dropped>") {
		t.Errorf("the page holds unescaped input or a script")
	}

	// The same rows through the NDJSON path, and through FromClickHouse directly.
	opts := htmlreport.Options{From: time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC), To: time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC), Now: now}
	fromFile, err := htmlreport.FromNDJSONFile(writeScores(t, rows), opts)
	if err != nil {
		t.Fatal(err)
	}
	fromCH, err := htmlreport.FromClickHouse(ctx, htmlreport.ConnQuerier{Conn: conn, Database: db}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := htmlSummary(fromCH), htmlSummary(fromFile); got != want {
		t.Errorf("ClickHouse and NDJSON disagree:\nClickHouse:\n%s\nNDJSON:\n%s", got, want)
	}
	if fromCH.Rows != 15 {
		t.Errorf("rows in the range %d, want 15 (the replay counted once, 13:00 left out)", fromCH.Rows)
	}
	if len(fromCH.Alerts) != 1 || fromCH.Alerts[0].State != "firing" || fromCH.Alerts[0].Rule != "score_drop_rule" {
		t.Errorf("alerts %+v, want al-1 once, in its latest state firing", fromCH.Alerts)
	}
	pairwise := 0
	for _, e := range fromCH.Evaluators {
		if e.Name != "preference" {
			continue
		}
		for _, p := range e.Pairwise {
			pairwise++
			if p.Model == "m-a" && (p.Total != 5 || p.Counts[3] != 2 || p.Counts[0] != 2) {
				t.Errorf("m-a's verdicts %+v, want 2 first and 2 inconsistent of 5", p)
			}
			if p.Model == "m-b" && (p.Total != 1 || p.Counts[2] != 1) {
				t.Errorf("m-b's verdicts %+v, want 1 tie", p)
			}
		}
	}
	if pairwise != 2 {
		t.Errorf("preference has %d pairwise models, want 2", pairwise)
	}
	// m-a's preference: 2 of 5 verdicts inconsistent.
	if !strings.Contains(page, "40.0%") && !strings.Contains(page, "40%") {
		t.Errorf("the page does not give m-a's inconsistent share, 40%%")
	}
	for _, want := range []string{"w1", "w2", "score_drop_rule", "firing", "helpfulness on m-b &lt;dropped&gt;", "&lt;b&gt;bad&lt;/b&gt;",
		"inconsistent", "judge-y", "preference"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
