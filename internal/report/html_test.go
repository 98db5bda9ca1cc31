package report

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"raterd/internal/cli"
	"raterd/record"
	"raterd/sinks"
)

// writeScores writes rows with the NDJSON sink, as raterd demo does.
func writeScores(t *testing.T, rows []record.Score) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scores.ndjson")
	s, err := sinks.NewNDJSONFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteScores(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReportHTML(t *testing.T) {
	at := reportNow.Add(-3 * time.Hour)
	var rows []record.Score
	for i, model := range []string{"m1", "m2", "m1", "m2"} {
		rows = append(rows, record.Score{EventTime: at.Add(time.Duration(i) * time.Hour), Model: model,
			Evaluator: "helpfulness", Judge: "j", Value: 0.5, Status: record.StatusOK, Explanation: "<script>x</script>"})
	}
	rows = append(rows, record.Score{EventTime: at, Model: "m1", Evaluator: "pii", Judge: "j", Status: record.StatusJudgeError})
	scores := writeScores(t, rows)
	out := filepath.Join(t.TempDir(), "r.html")

	c, _, stderr := testReportCmd()
	if err := c.run(context.Background(), []string{"html", "--scores", scores, "-o", out, "--evaluator", "helpfulness", "--from", "-3h"}); err != nil {
		t.Fatalf("report html: %v (%s)", err, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if !strings.Contains(page, "Evaluator helpfulness") || strings.Contains(page, "Evaluator pii") ||
		strings.Count(page, "<svg") != 3 || strings.Contains(page, "<script>") {
		t.Errorf("page: %d <svg>, helpfulness %v, pii %v", strings.Count(page, "<svg"),
			strings.Contains(page, "Evaluator helpfulness"), strings.Contains(page, "Evaluator pii"))
	}
	if !strings.Contains(stderr.String(), "4 score rows") {
		t.Errorf("stderr: %q", stderr)
	}

	// stdout, and an empty range
	c, stdout, _ := testReportCmd()
	if err := c.run(context.Background(), []string{"html", "--scores", scores, "-o", "-", "--from", "2020-01-01", "--to", "2020-01-02"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "No score rows in the range") {
		t.Errorf("empty range: the page does not say so")
	}
}

func TestReportHTMLErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.ndjson")
	if err := os.WriteFile(bad, []byte("\n{\"nope\": 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		flag bool
		want string
	}{
		{[]string{"html"}, true, "no ClickHouse address"},
		{[]string{"html", "--clickhouse", "not-an-address"}, true, "--clickhouse"},
		{[]string{"html", "--clickhouse", "h:1", "--from", "2026-01-02", "--to", "2026-01-01"}, true, "is not before"},
		{[]string{"html", "--clickhouse", "h:1", "--from", "+1h"}, true, "--from"},
		{[]string{"html", "--clickhouse", "h:1", "--model-a", "m1"}, true, "--model-a and --model-b go together"},
		{[]string{"html", "--clickhouse", "h:1", "--model-a", "m1", "--model-b", "m1"}, true, "--model-b \"m1\" is --model-a"},
		{[]string{"html", "--clickhouse", "h:1", "--model-a", "m\xff", "--model-b", "m1"}, true, "--model-a"},
		{[]string{"html", "--clickhouse", "h:1", "--timeout", "0s"}, true, "--timeout"},
		{[]string{"html", "--clickhouse", "h:1", "-o", ""}, true, "-o"},
		{[]string{"html", "--scores", bad, "--database", "x"}, true, "--database: not used with --scores"},
		{[]string{"html", "--scores", bad, "--config", filepath.Join(t.TempDir(), "missing.yaml")}, false, "--config"},
		{[]string{"html", "--scores", bad, "--from", "x"}, true, "--from"},
		{[]string{"html", "--scores", bad, "--from", "-1h", "--to", "-2h"}, true, "is not before"},
		{[]string{"html", "--scores", bad, "--clickhouse", "h:1"}, true, "--clickhouse: not used with --scores"},
		{[]string{"html", "--scores", bad, "--format", "csv"}, true, "not defined: --format"},
		{[]string{"html", "--scores", bad, "-o", "-"}, false, "line 2"},
		{[]string{"html", "--scores", filepath.Join(t.TempDir(), "missing")}, false, "--scores"},
	} {
		c, _, _ := testReportCmd()
		err := c.run(context.Background(), tc.args)
		var fe *cli.FlagError
		if err == nil || errors.As(err, &fe) != tc.flag || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v (flag error %v), want %q", tc.args, err, errors.As(err, &fe), tc.want)
		}
	}
}

// TestReportHTMLRedaction: with --config, the labels and explanations shown go through its
// scoring.redact.
func TestReportHTMLRedaction(t *testing.T) {
	at := reportNow.Add(-time.Hour)
	scores := writeScores(t, []record.Score{{EventTime: at, Model: "m1", Evaluator: "helpfulness", Judge: "j", RecordID: "r-1",
		Value: 0.1, Status: record.StatusOK, Label: "bad", Explanation: "mail jane.doe@acmecorp.io about it"}})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "raterd.yaml")
	starter, err := os.ReadFile("../app/starter.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(starter, []byte("\nscoring:\n  redact:\n    types: [email]\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	c, stdout, stderr := testReportCmd()
	if err := c.run(context.Background(), []string{"html", "--scores", scores, "--config", cfg, "-o", "-"}); err != nil {
		t.Fatalf("report html --config: %v (%s)", err, stderr)
	}
	page := stdout.String()
	if strings.Contains(page, "jane.doe@acmecorp.io") || !strings.Contains(page, "[EMAIL]") || !strings.Contains(page, "r-1") {
		t.Errorf("the page shows the address unredacted, or lacks [EMAIL] or the record id")
	}
}
