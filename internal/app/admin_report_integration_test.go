package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"raterd/internal/telemetry"
	"raterd/internal/testkit"
	"raterd/internal/testkit/chtest"
	"raterd/record"
	"raterd/scorer"
	"raterd/sinks/clickhouse"
)

// TestIntegrationAdminReport: GET /report renders the page from the dev ClickHouse, with
// the configured redaction, through the endpoint newReportEndpoint builds from a config.
func TestIntegrationAdminReport(t *testing.T) {
	s := testkit.RequireServices(t)
	db := "raterd_itadmrep_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	conn := chtest.Migrated(t, s.ClickHouse, db)
	chCfg := clickhouse.Config{Addrs: []string{s.ClickHouse}, Database: db}
	if err := chCfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	var rows []record.Score
	for i, v := range []float64{0.9, 0.1, 0.5, 0.7} {
		rows = append(rows, record.Score{EventTime: at.Add(time.Duration(i) * 10 * time.Minute), ScoredAt: at.Add(time.Hour),
			RecordID: "adm-" + strconv.Itoa(i), Model: "m-a", App: "chat", Evaluator: "helpfulness", RubricVersion: "r1",
			Judge: "judge-x", TaskType: "pointwise", Value: v, Status: record.StatusOK, Attempts: 1,
			Explanation: "ask jane.doe@acmecorp.io", Source: record.Source{Topic: "llm", Offset: int64(i)}})
	}
	sink := clickhouse.NewScores(conn, chCfg, telemetry.Settings{Logger: slog.New(slog.DiscardHandler)})
	if err := sink.WriteScores(context.Background(), rows); err != nil {
		t.Fatal(err)
	}

	cfg := &Config{ClickHouse: &chCfg, Scoring: ScoringConfig{Redact: &scorer.Redaction{Types: []string{"email"}}}}
	e, err := newReportEndpoint(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.now = func() time.Time { return at.Add(4 * time.Hour) }
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/report?evaluator=helpfulness&from=2026-01-05T09:00:00Z&to=2026-01-05T12:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<html") {
		t.Fatalf("GET /report = %d %.300q", resp.StatusCode, page)
	}
	if strings.Contains(page, "jane.doe@acmecorp.io") {
		t.Error("the page shows an e-mail address that scoring.redact masks")
	}
	if !strings.Contains(page, "adm-1") || !strings.Contains(page, "[EMAIL]") {
		t.Error("the page lacks the worst record adm-1 or the redacted explanation")
	}

	// Another database, unknown to the server: the report fails as a bad gateway.
	bad := chCfg
	bad.Database = db + "_missing"
	e2, err := newReportEndpoint(&Config{ClickHouse: &bad}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	e2.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/report", nil))
	if rec.Code != http.StatusBadGateway {
		t.Errorf("a missing database: %d %q, want 502", rec.Code, rec.Body.String())
	}
}
