package clickhouse

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/record"
	"raterd/sinks"
)

var updateCookbookDoc = flag.Bool("update-cookbook-doc", false, "rewrite the generated part of docs/sql.md from Cookbook()")

const cookbookDocPath = "../../docs/sql.md"

// loadCookbookFixture reads testdata/cookbook/scores.ndjson: score rows in the NDJSON
// sink's shape (see testdata/cookbook/README.md for what they hold and the answers).
func loadCookbookFixture(t *testing.T) []record.Score {
	t.Helper()
	data, err := os.ReadFile("testdata/cookbook/scores.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	var rows []record.Score
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		row, err := sinks.DecodeNDJSONScore(sc.Bytes())
		if err != nil {
			t.Fatalf("scores.ndjson:%d: %v", line, err)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 98 {
		t.Fatalf("fixture has %d rows, want 98 (the expected answers below are computed for those)", len(rows))
	}
	return rows
}

// cookbookCase is one query run over the fixture with its hand-computed answer.
type cookbookCase struct {
	query   string
	params  map[string]string
	columns []string
	rows    [][]any // float64-convertible numbers or strings
}

const (
	judgeSelene     = "selene-mini/v1"
	judgePrometheus = "prometheus-2-7b/v1"
	weekFrom        = "2026-11-23" // Monday
	weekTo          = "2026-11-30T00:00:00Z"
)

// cookbookCases holds the expected answers, worked out by hand from the fixture (see
// testdata/cookbook/README.md). Every query in Cookbook() has at least one case.
func cookbookCases() []cookbookCase {
	t975df18 := 2.100922 // Student t, 0.975 quantile, 18 degrees of freedom (tables)
	se := 2.0 / 3        // √(var_a/n_a + var_b/n_b) = √(20/9/10 · 2)
	nan := math.NaN()
	return []cookbookCase{
		{
			query:   "score_trend",
			params:  map[string]string{"evaluator": "helpfulness", "from": "2026-11-24 00:00:00", "to": "2026-11-25"},
			columns: []string{"hour", "model", "scored", "failed", "mean_score", "p50", "p90"},
			rows: [][]any{
				{"2026-11-24 12:00:00", "support-llm-v6", 10, 0, 5, 5, 7},
				{"2026-11-24 12:00:00", "support-llm-v7", 10, 0, 7, 7, 9},
				{"2026-11-24 13:00:00", "support-llm-v6", 5, 0, 5, 5, 6.6},
				{"2026-11-24 13:00:00", "support-llm-v7", 5, 3, 4, 4, 5.6},
			},
		},
		{
			// Hour 12 only: {3..7}×2 against {5..9}×2, equal variances 20/9, so df = 18.
			query: "compare_models",
			params: map[string]string{"evaluator": "helpfulness", "model_a": "support-llm-v6", "model_b": "support-llm-v7",
				"from": "2026-11-24T12:00:00Z", "to": "2026-11-24T14:00:00+01:00"},
			columns: []string{"model_a", "model_b", "n_a", "n_b", "mean_a", "mean_b", "diff", "std_err", "welch_df", "t_crit", "ci95_low", "ci95_high"},
			rows:    [][]any{{"support-llm-v6", "support-llm-v7", 10, 10, 5, 7, 2, se, 18, t975df18, 2 - t975df18*se, 2 + t975df18*se}},
		},
		{
			query: "compare_models",
			params: map[string]string{"evaluator": "helpfulness", "model_a": "support-llm-v7", "model_b": "support-llm-v6",
				"from": "2026-11-24 12:00:00", "to": "2026-11-24 13:00:00"},
			columns: []string{"model_a", "model_b", "n_a", "n_b", "mean_a", "mean_b", "diff", "std_err", "welch_df", "t_crit", "ci95_low", "ci95_high"},
			rows:    [][]any{{"support-llm-v7", "support-llm-v6", 10, 10, 7, 5, -2, se, 18, t975df18, -2 - t975df18*se, -2 + t975df18*se}},
		},
		{
			// A model with no rows (and a quote in its name): counts 0, everything else nan.
			query: "compare_models",
			params: map[string]string{"evaluator": "helpfulness", "model_a": "support-llm-v6", "model_b": "it's-v9",
				"from": "2026-11-24 12:00:00", "to": "2026-11-24 13:00:00"},
			columns: []string{"model_a", "model_b", "n_a", "n_b", "mean_a", "mean_b", "diff", "std_err", "welch_df", "t_crit", "ci95_low", "ci95_high"},
			rows:    [][]any{{"support-llm-v6", "it's-v9", 10, 0, 5, nan, nan, nan, nan, nan, nan, nan}},
		},
		{
			// legacy (mean 2.5) has only 2 ok rows; last week's billing row is out of range.
			query:   "worst_apps",
			params:  map[string]string{"evaluator": "helpfulness", "from": weekFrom, "to": weekTo, "min_rows": "3", "limit": "2"},
			columns: []string{"app", "scored", "mean_score", "failed"},
			rows: [][]any{
				{"billing", 7, 27.0 / 7, 2},
				{"search", 9, 47.0 / 9, 1},
			},
		},
		{
			query:   "worst_apps",
			params:  map[string]string{"evaluator": "helpfulness", "from": weekFrom, "to": weekTo, "min_rows": "2", "limit": "10"},
			columns: []string{"app", "scored", "mean_score", "failed"},
			rows: [][]any{
				{"legacy", 2, 2.5, 0},
				{"billing", 7, 27.0 / 7, 2},
				{"search", 9, 47.0 / 9, 1},
				{"helpdesk", 12, 86.0 / 12, 0},
			},
		},
		{
			// 9/10 before, 6/10 after; pooled 15/20, z = 0.3 / √(0.75·0.25·0.2).
			query: "pass_rate_after_deploy",
			params: map[string]string{"evaluator": "safety", "model": "support-llm-v7", "deploy_time": "2026-11-25T12:00:00Z",
				"from": "2026-11-25", "to": "2026-11-26"},
			columns: []string{"before_ok", "before_pass", "before_pass_rate", "after_ok", "after_pass", "after_pass_rate", "pass_rate_drop", "pooled_pass_rate", "z_score"},
			rows:    [][]any{{10, 9, 0.9, 10, 6, 0.6, 0.3, 0.75, 0.3 / math.Sqrt(0.75*0.25*0.2)}},
		},
		{
			// Pairs r-1…r-4: labels agree on 3 of 4; scores (1,1,0,1) vs (1,0,0,1).
			query: "judge_agreement",
			params: map[string]string{"evaluator": "relevance", "judge_a": judgeSelene, "judge_b": judgePrometheus,
				"from": weekFrom, "to": weekTo},
			columns: []string{"pairs", "label_agreement", "score_agreement", "mean_abs_diff", "score_corr"},
			rows:    [][]any{{4, 0.75, 0.75, 0.25, 1 / math.Sqrt(3)}},
		},
		{
			query:   "cache_savings",
			params:  map[string]string{"from": weekFrom, "to": weekTo},
			columns: []string{"evaluator", "judge", "scored_rows", "judge_calls_avoided", "cached_share", "judge_calls_made", "mean_judge_latency_ms", "judge_seconds_saved"},
			rows: [][]any{
				{"helpfulness", judgeSelene, 33, 6, 6.0 / 33, 29, 400, 2.4},
				{"safety", judgeSelene, 25, 5, 0.2, 20, 200, 1.0},
				{"relevance", judgePrometheus, 7, 3, 3.0 / 7, 4, 1000, 3.0},
				{"relevance", judgeSelene, 6, 0, 0, 6, 300, 0},
			},
		},
		{
			query:   "parse_failures",
			params:  map[string]string{"from": weekFrom, "to": weekTo},
			columns: []string{"judge", "judged", "parse_failures", "parse_failure_rate", "judge_errors", "judge_error_rate"},
			rows: [][]any{
				{judgePrometheus, 4, 1, 0.25, 0, 0},
				{judgeSelene, 53, 4, 4.0 / 53, 1, 1.0 / 53},
			},
		},
		{
			// score_trend's optional filters: support-llm-v7 in billing only (scores 5, 5 at
			// 12:00; 4 and two failures at 13:00).
			query: "score_trend",
			params: map[string]string{"evaluator": "helpfulness", "from": "2026-11-24", "to": "2026-11-25",
				"model": "support-llm-v7", "app": "billing"},
			columns: []string{"hour", "model", "scored", "failed", "mean_score", "p50", "p90"},
			rows: [][]any{
				{"2026-11-24 12:00:00", "support-llm-v7", 2, 0, 5, 5, 5},
				{"2026-11-24 13:00:00", "support-llm-v7", 1, 2, 4, 4, 4},
			},
		},
		{
			// The app filter alone: legacy has two rows (2 and 3) at 13:00.
			query:   "score_trend",
			params:  map[string]string{"evaluator": "helpfulness", "from": "2026-11-24", "to": "2026-11-25", "app": "legacy"},
			columns: []string{"hour", "model", "scored", "failed", "mean_score", "p50", "p90"},
			rows:    [][]any{{"2026-11-24 13:00:00", "support-llm-v7", 2, 0, 2.5, 2.5, 2.9}},
		},
		{
			// Hour 12 of support-llm-v6: {3..7}×2, as in compare_models above.
			query:   "score_stats",
			params:  map[string]string{"evaluator": "helpfulness", "from": "2026-11-24 12:00:00", "to": "2026-11-24 13:00:00", "model": "support-llm-v6"},
			columns: []string{"n_ok", "mean_score", "var_score"},
			rows:    [][]any{{10, 5, 20.0 / 9}},
		},
		{
			// No filter: the 30 ok rows of helpfulness on the 24th (sum 165, sum of squares 1005,
			// so the sample variance is (1005 - 165²/30)/29 = 195/58).
			query:   "score_stats",
			params:  map[string]string{"evaluator": "helpfulness", "from": "2026-11-24", "to": "2026-11-25"},
			columns: []string{"n_ok", "mean_score", "var_score"},
			rows:    [][]any{{30, 5.5, 195.0 / 58}},
		},
		{
			// Both filters: support-llm-v7 in helpdesk, scores 8, 9, 7, 8, 9, 6.
			query: "score_stats",
			params: map[string]string{"evaluator": "helpfulness", "from": "2026-11-24", "to": "2026-11-25",
				"model": "support-llm-v7", "app": "helpdesk"},
			columns: []string{"n_ok", "mean_score", "var_score"},
			rows:    [][]any{{6, 47.0 / 6, 41.0 / 30}},
		},
		{
			// A model without rows: no ok rows, so the mean and variance are nan.
			query:   "score_stats",
			params:  map[string]string{"evaluator": "helpfulness", "from": "2026-11-24", "to": "2026-11-25", "model": "it's-v9"},
			columns: []string{"n_ok", "mean_score", "var_score"},
			rows:    [][]any{{0, nan, nan}},
		},
		{
			// Conversation rows, Tue and Wed of the next week: the two lowest-quality segments per
			// model. c2's second segment (6) and c1 (8) lose to c2 v1 (3) and c3 (5).
			query:   "worst_conversations",
			params:  map[string]string{"evaluator": "conversation_quality", "from": "2026-12-01", "to": "2026-12-03", "limit": "2"},
			columns: worstConversationColumns,
			rows: [][]any{
				{"support-llm-v6", "c2", 1, 12, 3, "", "quality of c2 v1", "max_turns", 2001, 2040},
				{"support-llm-v6", "c3", 1, 3, 5, "", "quality of c3 v1", "evicted", 2002, 2020},
				{"support-llm-v7", "c6", 1, 20, 2, "", "quality of c6 v1", "max_turns", 2005, 2090},
				{"support-llm-v7", "c7", 1, 2, 4, "", "quality of c7 v1", "timeout", 2006, 2007},
			},
		},
		{
			// The model filter and a range that ends before c6 and c7.
			query: "worst_conversations",
			params: map[string]string{"evaluator": "conversation_quality", "from": "2026-12-01", "to": "2026-12-02",
				"limit": "1", "model": "support-llm-v7"},
			columns: worstConversationColumns,
			rows:    [][]any{{"support-llm-v7", "c5", 1, 6, 7, "", "quality of c5 v1", "timeout", 2004, 2035}},
		},
		{
			// Resolution: c3's parse failure is no conversation to rank.
			query: "worst_conversations",
			params: map[string]string{"evaluator": "conversation_resolution", "from": "2026-12-01", "to": "2026-12-03",
				"limit": "1", "model": "support-llm-v6"},
			columns: worstConversationColumns,
			rows:    [][]any{{"support-llm-v6", "c2", 1, 12, 0, "unresolved", "resolution of c2 v1", "max_turns", 2001, 2040}},
		},
		{
			// v6 on the 1st: c1, c2 v2 resolved, c2 v1 not, c3 a parse failure; v7: c4, c5
			// resolved; on the 2nd c6 not, c7 resolved.
			query:   "resolution_rate",
			params:  map[string]string{"evaluator": "conversation_resolution", "from": "2026-12-01", "to": "2026-12-03"},
			columns: []string{"day", "model", "conversations", "resolved", "resolution_rate", "failed"},
			rows: [][]any{
				{"2026-12-01 00:00:00", "support-llm-v6", 3, 2, 2.0 / 3, 1},
				{"2026-12-01 00:00:00", "support-llm-v7", 2, 2, 1, 0},
				{"2026-12-02 00:00:00", "support-llm-v7", 2, 1, 0.5, 0},
			},
		},
		{
			query:   "resolution_rate",
			params:  map[string]string{"evaluator": "conversation_resolution", "from": "2026-12-01", "to": "2026-12-03", "model": "support-llm-v6"},
			columns: []string{"day", "model", "conversations", "resolved", "resolution_rate", "failed"},
			rows:    [][]any{{"2026-12-01 00:00:00", "support-llm-v6", 3, 2, 2.0 / 3, 1}},
		},
		{
			// Each segment once, though two evaluators judged it; the trace row is another scope.
			query:   "conversation_close_reasons",
			params:  map[string]string{"scope": "conversation", "from": "2026-12-01", "to": "2026-12-03"},
			columns: []string{"model", "close_reason", "segments", "mean_turns", "max_turns"},
			rows: [][]any{
				{"support-llm-v6", "end_marker", 1, 4, 4},
				{"support-llm-v6", "evicted", 1, 3, 3},
				{"support-llm-v6", "max_turns", 1, 12, 12},
				{"support-llm-v6", "timeout", 1, 2, 2},
				{"support-llm-v7", "timeout", 2, 4, 6},
				{"support-llm-v7", "end_marker", 1, 5, 5},
				{"support-llm-v7", "max_turns", 1, 20, 20},
			},
		},
		{
			query:   "conversation_close_reasons",
			params:  map[string]string{"scope": "trace", "from": "2026-12-01", "to": "2026-12-03"},
			columns: []string{"model", "close_reason", "segments", "mean_turns", "max_turns"},
			rows:    [][]any{{"support-llm-v7", "timeout", 1, 3, 3}},
		},
		{
			// helpfulness, v7, hourly: 12:00 scores 5…9 twice (sum 70, squares 2·255); 13:00
			// scores 2…6 (sum 20, squares 90), two parse failures and a judge error.
			query: "report_cells",
			params: map[string]string{"bucket_seconds": "3600", "from": "2026-11-24", "to": "2026-11-25",
				"evaluator": `["helpfulness"]`, "model": `["support-llm-v7"]`},
			columns: reportCellColumns,
			rows: [][]any{
				{"helpfulness", "support-llm-v7", "pointwise", "2026-11-24 12:00:00", 10, 0, 0, 70, 510, 0},
				{"helpfulness", "support-llm-v7", "pointwise", "2026-11-24 13:00:00", 5, 2, 1, 20, 90, 0},
			},
		},
		{
			// Thursday of the next week, one day's bucket, no filter: the pairwise rows only.
			query:   "report_cells",
			params:  map[string]string{"bucket_seconds": "86400", "from": "2026-12-03", "to": "2026-12-04"},
			columns: reportCellColumns,
			rows: [][]any{
				{"preference", "support-llm-v6", "pairwise", "2026-12-03 00:00:00", 3, 0, 0, 1, 0.5, 0},
				{"preference", "support-llm-v7", "pairwise", "2026-12-03 00:00:00", 5, 1, 0, 3, 2.5, 0},
			},
		},
		{
			// Two apps of Tuesday: billing 7 ok, a parse failure and a judge error; legacy 2 ok.
			query: "report_judge_cells",
			params: map[string]string{"bucket_seconds": "86400", "from": "2026-11-24", "to": "2026-11-25",
				"app": `["legacy","billing"]`},
			columns: []string{"judge", "bucket", "ok", "parse_failures", "judge_errors"},
			rows:    [][]any{{judgeSelene, "2026-11-24 00:00:00", 9, 1, 0 + 1}},
		},
		{
			query:   "report_judge_cells",
			params:  map[string]string{"bucket_seconds": "3600", "from": "2026-12-03", "to": "2026-12-04"},
			columns: []string{"judge", "bucket", "ok", "parse_failures", "judge_errors"},
			rows:    [][]any{{judgeSelene, "2026-12-03 10:00:00", 8, 1, 0}},
		},
		{
			// Lowest first; the three 3s tie and go by event time.
			query: "report_worst",
			params: map[string]string{"from": "2026-11-24", "to": "2026-11-25", "limit": "3",
				"evaluator": `["helpfulness","preference"]`},
			columns: reportWorstColumns,
			rows: [][]any{
				{"2026-11-24 13:00:00", "helpfulness", "support-llm-v7", "legacy", "h13-v7-00", judgeSelene, "", "", 2},
				{"2026-11-24 12:00:00", "helpfulness", "support-llm-v6", "billing", "h12-v6-00", judgeSelene, "", "", 3},
				{"2026-11-24 12:25:00", "helpfulness", "support-llm-v6", "billing", "h12-v6-05", judgeSelene, "", "", 3},
			},
		},
		{
			// One per evaluator: the two 0s tie, v6's is earlier; p-9's parse failure is no verdict.
			query:   "report_worst",
			params:  map[string]string{"from": "2026-12-03", "to": "2026-12-04", "limit": "1"},
			columns: reportWorstColumns,
			rows: [][]any{
				{"2026-12-03 10:00:00", "preference", "support-llm-v6", "helpdesk", "p-1", judgeSelene, "second", "preference of p-1", 0},
			},
		},
		{
			query:   "report_pairwise",
			params:  map[string]string{"from": "2026-12-03", "to": "2026-12-04"},
			columns: []string{"evaluator", "model", "label", "verdicts"},
			rows: [][]any{
				{"preference", "support-llm-v6", "inconsistent", 2},
				{"preference", "support-llm-v6", "second", 1},
				{"preference", "support-llm-v7", "first", 2},
				{"preference", "support-llm-v7", "inconsistent", 1},
				{"preference", "support-llm-v7", "second", 1},
				{"preference", "support-llm-v7", "tie", 1},
			},
		},
		{
			query:   "report_pairwise",
			params:  map[string]string{"from": "2026-12-03", "to": "2026-12-04", "model": `["support-llm-v6"]`, "app": `["search"]`},
			columns: []string{"evaluator", "model", "label", "verdicts"},
			rows:    nil,
		},
		{
			// a1 resolved at 15:00, after from; a2 still firing; a3 resolved last week.
			query:   "alerts_in_range",
			params:  map[string]string{"from": "2026-11-24T14:00:00Z", "to": "2026-11-26", "limit": "1001"},
			columns: alertColumns,
			rows: [][]any{
				{"a2", "parse_failure_rate", "", "", "", judgeSelene, "firing", "critical", 0.2, 0.02, 0.1, 0.3, 10, "2026-11-25 12:00:00", "2026-11-25 12:30:00", "selene parses badly"},
				{"a1", "score_drop", "helpfulness", "support-llm-v7", "", "", "resolved", "warning", 5.4, 5.5, 5.1, 5.7, 15, "2026-11-24 13:00:00", "2026-11-24 15:00:00", "helpfulness on support-llm-v7 recovered"},
			},
		},
		{
			// Before a1 began only a3 was open; after a1 resolved and before a2 nothing.
			query:   "alerts_in_range",
			params:  map[string]string{"from": "2026-11-24T16:00:00Z", "to": "2026-11-25T12:00:00Z", "limit": "1001"},
			columns: alertColumns,
			rows:    nil,
		},
		{
			query:   "alerts_in_range",
			params:  map[string]string{"from": "2026-11-20", "to": "2026-11-30", "limit": "1001", "evaluator": `["helpfulness"]`, "model": `["support-llm-v6","support-llm-v7"]`},
			columns: alertColumns,
			rows: [][]any{
				{"a2", "parse_failure_rate", "", "", "", judgeSelene, "firing", "critical", 0.2, 0.02, 0.1, 0.3, 10, "2026-11-25 12:00:00", "2026-11-25 12:30:00", "selene parses badly"},
				{"a1", "score_drop", "helpfulness", "support-llm-v7", "", "", "resolved", "warning", 5.4, 5.5, 5.1, 5.7, 15, "2026-11-24 13:00:00", "2026-11-24 15:00:00", "helpfulness on support-llm-v7 recovered"},
				{"a3", "canary", "helpfulness", "support-llm-v6", "", "", "resolved", "warning", -1, 0, -1.5, -0.5, 40, "2026-11-20 10:00:00", "2026-11-20 11:00:00", "canary it's <b>worse</b>"},
			},
		},
		{
			// a2 has no model: a model filter keeps it; a1 is v7's.
			query:   "alerts_in_range",
			params:  map[string]string{"from": "2026-11-20", "to": "2026-11-30", "limit": "1001", "model": `["support-llm-v6"]`},
			columns: alertColumns,
			rows: [][]any{
				{"a2", "parse_failure_rate", "", "", "", judgeSelene, "firing", "critical", 0.2, 0.02, 0.1, 0.3, 10, "2026-11-25 12:00:00", "2026-11-25 12:30:00", "selene parses badly"},
				{"a3", "canary", "helpfulness", "support-llm-v6", "", "", "resolved", "warning", -1, 0, -1.5, -0.5, 40, "2026-11-20 10:00:00", "2026-11-20 11:00:00", "canary it's <b>worse</b>"},
			},
		},
		{
			// The newest first: a limit keeps the latest alerts (the ones a notification links to).
			query:   "alerts_in_range",
			params:  map[string]string{"from": "2026-11-20", "to": "2026-11-30", "limit": "2"},
			columns: alertColumns,
			rows: [][]any{
				{"a2", "parse_failure_rate", "", "", "", judgeSelene, "firing", "critical", 0.2, 0.02, 0.1, 0.3, 10, "2026-11-25 12:00:00", "2026-11-25 12:30:00", "selene parses badly"},
				{"a1", "score_drop", "helpfulness", "support-llm-v7", "", "", "resolved", "warning", 5.4, 5.5, 5.1, 5.7, 15, "2026-11-24 13:00:00", "2026-11-24 15:00:00", "helpfulness on support-llm-v7 recovered"},
			},
		},
	}
}

// Columns of the report queries.
var (
	reportCellColumns = []string{"evaluator", "model", "task_type", "bucket", "scored", "parse_failures", "judge_errors",
		"sum_score", "sum_squares", "skipped"}
	reportWorstColumns = []string{"event_time", "evaluator", "model", "app", "record_id", "judge", "label", "explanation", "score"}
	alertColumns       = []string{"alert_id", "rule", "evaluator", "model", "app", "judge", "state", "severity", "observed",
		"expected", "interval_low", "interval_high", "sample_size", "since", "updated_at", "message"}
)

// cookbookAlertInserts are the alert fixture's state changes, each an insert of the whole
// row as the alert sink writes it (testdata/cookbook/README.md): a1 pending, firing, then
// resolved; a2 firing; a3 resolved the week before. Times are UTC.
func cookbookAlertInserts(db string) []string {
	row := func(id, rule, evaluator, model, judge, state, severity string, observed, expected, low, high float64, n int, since, updated, message string) string {
		return fmt.Sprintf("INSERT INTO %s.alerts (alert_id, rule, evaluator, model, app, judge, state, severity, observed, expected, "+
			"interval_low, interval_high, sample_size, since, updated_at, example_record_ids, message, drilldown_sql) "+
			"SELECT '%s', '%s', '%s', '%s', '', '%s', '%s', '%s', %g, %g, %g, %g, %d, toDateTime('%s', 'UTC'), toDateTime('%s', 'UTC'), "+
			"['h13-v7-00'], '%s', ''", db, id, rule, evaluator, model, judge, state, severity, observed, expected, low, high, n, since, updated,
			strings.ReplaceAll(message, "'", `\'`))
	}
	return []string{
		row("a3", "canary", "helpfulness", "support-llm-v6", "", "resolved", "warning", -1, 0, -1.5, -0.5, 40, "2026-11-20 10:00:00", "2026-11-20 11:00:00", "canary it's <b>worse</b>"),
		row("a1", "score_drop", "helpfulness", "support-llm-v7", "", "pending", "warning", 4, 5.5, 3.5, 4.5, 8, "2026-11-24 13:00:00", "2026-11-24 13:00:00", "helpfulness on support-llm-v7 dropped"),
		row("a1", "score_drop", "helpfulness", "support-llm-v7", "", "firing", "warning", 4, 5.5, 3.6, 4.4, 10, "2026-11-24 13:00:00", "2026-11-24 13:30:00", "helpfulness on support-llm-v7 dropped"),
		row("a2", "parse_failure_rate", "", "", judgeSelene, "firing", "critical", 0.2, 0.02, 0.1, 0.3, 10, "2026-11-25 12:00:00", "2026-11-25 12:30:00", "selene parses badly"),
		row("a1", "score_drop", "helpfulness", "support-llm-v7", "", "resolved", "warning", 5.4, 5.5, 5.1, 5.7, 15, "2026-11-24 13:00:00", "2026-11-24 15:00:00", "helpfulness on support-llm-v7 recovered"),
	}
}

// worstConversationColumns are the columns of worst_conversations.
var worstConversationColumns = []string{"model", "conversation_id", "version", "turn_count", "score", "label",
	"explanation", "close_reason", "first_offset", "last_offset"}

// queryTable runs q and returns its column names and rows, numbers as float64, times as
// "2006-01-02 15:04:05" in UTC.
func queryTable(ctx context.Context, conn driver.Conn, q string) ([]string, [][]any, error) {
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	cols := make([]string, len(types))
	for i, ct := range types {
		cols[i] = ct.Name()
	}
	var out [][]any
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, err
		}
		row := make([]any, len(dest))
		for i, d := range dest {
			row[i] = normalizeCell(reflect.ValueOf(d).Elem().Interface())
		}
		out = append(out, row)
	}
	return cols, out, rows.Err()
}

func normalizeCell(v any) any {
	if t, ok := v.(time.Time); ok {
		return t.UTC().Format(time.DateTime)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	}
	return v
}

func cellsEqual(got, want any) bool {
	if ws, ok := want.(string); ok {
		gs, ok := got.(string)
		return ok && gs == ws
	}
	w, ok := normalizeCell(want).(float64)
	if !ok {
		return false
	}
	g, ok := got.(float64)
	if !ok {
		return false
	}
	if math.IsNaN(w) || math.IsNaN(g) {
		return math.IsNaN(w) && math.IsNaN(g)
	}
	return math.Abs(g-w) <= 1e-4*math.Max(1, math.Abs(w))
}

// checkCookbook runs every case and reports each difference from the expected answer,
// naming the phase (first insert, replay, …).
func checkCookbook(t *testing.T, conn driver.Conn, db, phase string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	checkCookbookWith(t, func(q string) ([]string, [][]any, error) { return queryTable(ctx, conn, q) }, db, phase)
}

// checkCookbookWith is checkCookbook over any way of running a query that returns its
// column names and rows normalized as queryTable does.
func checkCookbookWith(t *testing.T, query func(sql string) ([]string, [][]any, error), db, phase string) {
	t.Helper()
	covered := map[string]bool{}
	for i, c := range cookbookCases() {
		q, ok := CookbookQueryNamed(c.query)
		if !ok {
			t.Fatalf("case %d: no cookbook query %q", i, c.query)
		}
		covered[c.query] = true
		sql, err := q.Render(db, c.params)
		if err != nil {
			t.Fatalf("%s: case %d (%s): Render: %v", phase, i, c.query, err)
		}
		cols, rows, err := query(sql)
		if err != nil {
			t.Errorf("%s: case %d (%s): %v\n%s", phase, i, c.query, err, sql)
			continue
		}
		if !reflect.DeepEqual(cols, c.columns) {
			t.Errorf("%s: case %d (%s): columns %v, want %v", phase, i, c.query, cols, c.columns)
			continue
		}
		if len(rows) != len(c.rows) {
			t.Errorf("%s: case %d (%s): %d rows, want %d:\n got %v\nwant %v", phase, i, c.query, len(rows), len(c.rows), rows, c.rows)
			continue
		}
		for r := range rows {
			for k := range cols {
				if !cellsEqual(rows[r][k], c.rows[r][k]) {
					t.Errorf("%s: case %d (%s): row %d %s = %v, want %v", phase, i, c.query, r, cols[k], rows[r][k], c.rows[r][k])
				}
			}
		}
	}
	for _, q := range Cookbook() {
		if !covered[q.Name] {
			t.Errorf("cookbook query %s has no test case", q.Name)
		}
	}
}

// TestCookbookQueries runs every cookbook query on the real server over the fixture, then
// replays the fixture (duplicates that are not merged yet) and checks that every answer
// stays the same.
func TestCookbookQueries(t *testing.T) {
	ctx := context.Background()
	f := newReplayFixture(t, ctx)
	conn, db := f.conn, f.db
	checkCookbook(t, conn, db, "first insert")

	f.replayIdentical(t, ctx)
	// The materialized view sees every inserted block, replays included (docs/sql.md).
	if got := countRows(t, conn, "SELECT countMerge(rows) FROM "+db+".scores_hourly"); got != 2*f.n() {
		t.Errorf("scores_hourly countMerge(rows) after the replay = %d, want %d", got, 2*f.n())
	}
	if got := countRows(t, conn, "SELECT count() FROM "+db+".scores FINAL"); got != f.n() {
		t.Fatalf("count() FINAL after the replay = %d, want %d", got, f.n())
	}
	// The same query without FINAL double-counts: the replay is visible to a naive query.
	trend, _ := CookbookQueryNamed("score_trend")
	naive := trend
	naive.SQL = strings.Replace(trend.SQL, " FINAL", "", 1)
	sql, err := naive.Render(db, cookbookCases()[0].params)
	if err != nil {
		t.Fatal(err)
	}
	_, naiveRows, err := queryTable(ctx, conn, sql)
	if err != nil {
		t.Fatalf("trend without FINAL: %v", err)
	}
	if len(naiveRows) == 0 || naiveRows[0][2] != float64(20) {
		t.Errorf("trend without FINAL after the replay = %v, want the first hour's scored doubled to 20", naiveRows)
	}
	checkCookbook(t, conn, db, "identical replay")

	f.replayLater(t, ctx)
	checkCookbook(t, conn, db, "replay with a later scored_at")

	f.merge(t, ctx)
	checkCookbook(t, conn, db, "after OPTIMIZE FINAL")
}

// nonFiniteRows are ok rows of an evaluator of their own on 2030-01-01 whose scores the
// report cannot sum: two plain scores (2 and 4) and scores beyond ±1e12 (and, withNaN, a
// nan and an infinity, which JSON cannot carry). base gives the other fields.
func nonFiniteRows(base record.Score, withNaN bool) []record.Score {
	values := []float64{2, 4, 1e300, -2e12}
	if withNaN {
		values = append(values, math.NaN(), math.Inf(1))
	}
	var rows []record.Score
	for i, v := range values {
		r := base
		r.Evaluator, r.Model, r.Value, r.Status = "overflow-check", "support-llm-v7", v, record.StatusOK
		r.TaskType, r.Label, r.Explanation = "pointwise", "", ""
		r.RecordID = fmt.Sprintf("overflow-%d", i)
		r.EventTime = time.Date(2030, 1, 1, 10, i, 0, 0, time.UTC)
		r.ScoredAt = r.EventTime.Add(time.Minute)
		r.Source.Offset = int64(900000 + i)
		rows = append(rows, r)
	}
	return rows
}

// checkNonFiniteCells runs report_cells over nonFiniteRows' day: the sums hold the finite
// scores only, and the others are counted as skipped instead of turning the sums into nan.
func checkNonFiniteCells(t *testing.T, query func(sql string) ([]string, [][]any, error), db string, skipped int) {
	t.Helper()
	q, _ := CookbookQueryNamed("report_cells")
	sql, err := q.Render(db, map[string]string{"bucket_seconds": "86400", "from": "2030-01-01", "to": "2030-01-02",
		"evaluator": `["overflow-check"]`})
	if err != nil {
		t.Fatal(err)
	}
	cols, rows, err := query(sql)
	if err != nil {
		t.Fatalf("report_cells: %v", err)
	}
	want := []any{"overflow-check", "support-llm-v7", "pointwise", "2030-01-01 00:00:00", 2, 0, 0, 6, 20, skipped}
	if !reflect.DeepEqual(cols, reportCellColumns) || len(rows) != 1 {
		t.Fatalf("report_cells over non-finite scores: %v %v, want one row %v", cols, rows, want)
	}
	for k := range cols {
		if !cellsEqual(rows[0][k], want[k]) {
			t.Errorf("report_cells over non-finite scores: %s = %v, want %v", cols[k], rows[0][k], want[k])
		}
	}
}

// TestCookbookReportCellsNonFinite: a nan, infinite or huge score leaves report_cells'
// sums finite and is counted in skipped.
func TestCookbookReportCellsNonFinite(t *testing.T) {
	ctx := context.Background()
	f := newReplayFixture(t, ctx)
	if err := f.sink.WriteScores(ctx, nonFiniteRows(f.rows[0], true)); err != nil {
		t.Fatalf("WriteScores: %v", err)
	}
	checkNonFiniteCells(t, func(q string) ([]string, [][]any, error) { return queryTable(ctx, f.conn, q) }, f.db, 4)
}

// replayFixture is a fresh migrated database holding the cookbook fixture, with merges
// held on scores so that replayed copies stay side by side in separate parts, as they do
// between an insert and the next background merge. Tests that promise the same answers
// under replays (the cookbook, the Grafana dashboard) walk it through the same steps.
type replayFixture struct {
	conn driver.Conn
	db   string
	rows []record.Score
	sink *Scores
}

func newReplayFixture(t *testing.T, ctx context.Context) *replayFixture {
	t.Helper()
	conn, cfg := newTestClickHouse(t)
	f := &replayFixture{conn: conn, db: cfg.Database, rows: loadCookbookFixture(t), sink: NewScores(conn, cfg, quiet)}
	if _, err := Migrate(ctx, conn, f.db, quiet); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if err := conn.Exec(ctx, "SYSTEM STOP MERGES "+f.db+".scores"); err != nil {
		t.Fatalf("stop merges: %v", err)
	}
	t.Cleanup(func() { _ = conn.Exec(context.Background(), "SYSTEM START MERGES "+f.db+".scores") })
	if err := f.sink.WriteScores(ctx, f.rows); err != nil {
		t.Fatalf("WriteScores: %v", err)
	}
	for _, stmt := range cookbookAlertInserts(f.db) {
		if err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("insert the alert fixture: %v\n%s", err, stmt)
		}
	}
	return f
}

func (f *replayFixture) n() uint64 { return uint64(len(f.rows)) }

// replayIdentical writes the same rows again, byte for byte (a crash before the offset
// commit), and checks that the copies are there, unmerged.
func (f *replayFixture) replayIdentical(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := f.sink.WriteScores(ctx, f.rows); err != nil {
		t.Fatalf("replayed WriteScores: %v", err)
	}
	if got := countRows(t, f.conn, "SELECT count() FROM "+f.db+".scores"); got != 2*f.n() {
		t.Fatalf("count() after the replay = %d, want %d: the copies must be unmerged for this test to mean anything", got, 2*f.n())
	}
}

// replayLater writes the same verdicts again an hour later (re-judged after a restart):
// a third copy with a newer version, which FINAL and argMax both pick.
func (f *replayFixture) replayLater(t *testing.T, ctx context.Context) {
	t.Helper()
	later := make([]record.Score, len(f.rows))
	for i, r := range f.rows {
		r.ScoredAt = r.ScoredAt.Add(time.Hour)
		later[i] = r
	}
	if err := f.sink.WriteScores(ctx, later); err != nil {
		t.Fatalf("re-scored WriteScores: %v", err)
	}
	if got := countRows(t, f.conn, "SELECT count() FROM "+f.db+".scores"); got != 3*f.n() {
		t.Fatalf("count() after the second replay = %d, want %d", got, 3*f.n())
	}
}

// merge lets the copies collapse and checks one row per identity is left.
func (f *replayFixture) merge(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := f.conn.Exec(ctx, "SYSTEM START MERGES "+f.db+".scores"); err != nil {
		t.Fatalf("start merges: %v", err)
	}
	if err := f.conn.Exec(ctx, "OPTIMIZE TABLE "+f.db+".scores FINAL"); err != nil {
		t.Fatalf("OPTIMIZE: %v", err)
	}
	if got := countRows(t, f.conn, "SELECT count() FROM "+f.db+".scores"); got != f.n() {
		t.Fatalf("count() after OPTIMIZE FINAL = %d, want %d", got, f.n())
	}
}

// TestCookbookWelchTCrit evaluates compare_models' t_crit expression on the server for
// given degrees of freedom and checks it against Student's t table (0.975 quantile), as
// docs/sql.md promises: within 0.004 for df ≥ 3, the value at the next lower whole df
// below 3, nan below 1.
func TestCookbookWelchTCrit(t *testing.T) {
	conn, _ := newTestClickHouse(t)
	q, _ := CookbookQueryNamed("compare_models")
	start, end := strings.Index(q.SQL, "multiIf("), strings.Index(q.SQL, " AS t_crit")
	if start < 0 || end < start {
		t.Fatal("compare_models has no multiIf(…) AS t_crit")
	}
	expr := q.SQL[start:end]
	for _, c := range []struct{ df, t, tol float64 }{
		{0.5, math.NaN(), 0}, {1, 12.7062, 1e-9}, {1.5, 12.7062, 1e-9}, {2, 4.3027, 1e-9}, {2.9, 4.3027, 1e-9},
		{3, 3.182446, 0.004}, {4, 2.776445, 0.004}, {5, 2.570582, 0.004}, {6, 2.446912, 0.004},
		{8, 2.306004, 0.004}, {10, 2.228139, 0.004}, {18, 2.100922, 0.004}, {30, 2.042272, 0.004},
		{100, 1.983972, 0.004}, {1000, 1.962339, 0.004}, {1e9, 1.959964, 0.004},
	} {
		sql := "SELECT " + strings.ReplaceAll(expr, "welch_df", fmt.Sprintf("toFloat64(%g)", c.df))
		var got float64
		if err := conn.QueryRow(context.Background(), sql).Scan(&got); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if math.IsNaN(c.t) != math.IsNaN(got) || math.Abs(got-c.t) > c.tol {
			t.Errorf("t_crit(df=%g) = %v, want %v ± %v", c.df, got, c.t, c.tol)
		}
	}
}

// TestCookbookRenderOnServer sends rendered literals to the real server and reads them
// back: whatever a string parameter holds, it arrives as one string value.
func TestCookbookRenderOnServer(t *testing.T) {
	conn, cfg := newTestClickHouse(t)
	ctx := context.Background()
	q := CookbookQuery{Name: "echo", SQL: "SELECT {s:String} AS s, {t:DateTime} AS t, toUInt64({n:UInt64}) AS n, '{db}' AS db", Params: []string{"s", "t", "n"}}
	strs := []string{"", "plain", "it's", `back\slash`, `\'`, `\`, "'", "''", "line\nbreak\ttab\rcr", "nul\x00byte", "\x1b[31mred",
		"del\x7f", "ünïcödé ✓ 日本語 🙂", "{db}", "{to:DateTime}", "'; DROP DATABASE " + cfg.Database + "; --", `\x41`, "?", "$1", "\\\\'\\"}
	times := map[string]int64{
		"2026-11-24T12:00:00Z":      time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).Unix(),
		"2026-11-24T14:00:00+02:00": time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).Unix(),
		"2026-11-24 12:00:00":       time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).Unix(),
		"2026-11-24":                time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC).Unix(),
		"1970-01-01T00:00:00Z":      0,
		"2105-12-31T23:59:59Z":      time.Date(2105, 12, 31, 23, 59, 59, 0, time.UTC).Unix(),
	}
	for _, s := range strs {
		for tv, unix := range times {
			for _, n := range []string{"0", "7", "18446744073709551615"} {
				sql, err := q.Render(cfg.Database, map[string]string{"s": s, "t": tv, "n": n})
				if err != nil {
					t.Fatalf("Render(%q, %q, %q): %v", s, tv, n, err)
				}
				var (
					gotS, gotDB string
					gotT        time.Time
					gotN        uint64
				)
				if err := conn.QueryRow(ctx, sql).Scan(&gotS, &gotT, &gotN, &gotDB); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
				if gotS != s || gotT.Unix() != unix || fmt.Sprint(gotN) != n || gotDB != cfg.Database {
					t.Errorf("%s\nread back %q, %d, %d, %q; want %q, %d, %s, %q", sql, gotS, gotT.Unix(), gotN, gotDB, s, unix, n, cfg.Database)
				}
			}
		}
	}
}

func TestCookbookRender(t *testing.T) {
	q := CookbookQuery{Name: "t", SQL: "SELECT * FROM {db}.scores WHERE model = {model:String} AND event_time >= {from:DateTime} " +
		"AND model != {model:String} LIMIT {limit:UInt64}", Params: []string{"model", "from", "limit"}}
	ok := map[string]string{"model": "v7", "from": "2026-11-24T12:00:00Z", "limit": "10"}
	got, err := q.Render("raterd", ok)
	if err != nil {
		t.Fatal(err)
	}
	want := "SELECT * FROM raterd.scores WHERE model = 'v7' AND event_time >= toDateTime('2026-11-24 12:00:00', 'UTC') " +
		"AND model != 'v7' LIMIT 10"
	if got != want {
		t.Fatalf("Render =\n%s\nwant\n%s", got, want)
	}
	with := func(k, v string) map[string]string {
		m := maps.Clone(ok)
		m[k] = v
		return m
	}
	without := func(k string) map[string]string {
		m := maps.Clone(ok)
		delete(m, k)
		return m
	}
	// Values are literals: a placeholder or a quote inside a value changes nothing else.
	for v, lit := range map[string]string{
		"{db}":                   `'{db}'`,
		"{from:DateTime}":        `'{from:DateTime}'`,
		"it's":                   `'it\'s'`,
		`a\'b`:                   `'a\\\'b'`,
		"x\ny\x00z\x7f":          `'x\x0Ay\x00z\x7F'`,
		"日本語 🙂":                  `'日本語 🙂'`,
		"' OR 1 = 1 --":          `'\' OR 1 = 1 --'`,
		"":                       `''`,
		"v7' UNION SELECT 1 --'": `'v7\' UNION SELECT 1 --\''`,
	} {
		got, err := q.Render("raterd", with("model", v))
		if err != nil {
			t.Fatalf("Render(model=%q): %v", v, err)
		}
		if want := strings.ReplaceAll(want, "'v7'", lit); got != want {
			t.Errorf("Render(model=%q) =\n%s\nwant\n%s", v, got, want)
		}
	}
	for from, lit := range map[string]string{
		"2026-11-24T14:30:00+02:00": "2026-11-24 12:30:00",
		"2026-11-24 12:30:00":       "2026-11-24 12:30:00",
		"2026-11-24T12:30:00":       "2026-11-24 12:30:00",
		"2026-11-24":                "2026-11-24 00:00:00",
	} {
		got, err := q.Render("raterd", with("from", from))
		if err != nil {
			t.Fatalf("Render(from=%q): %v", from, err)
		}
		if !strings.Contains(got, "toDateTime('"+lit+"', 'UTC')") {
			t.Errorf("Render(from=%q) = %s, want toDateTime('%s', 'UTC')", from, got, lit)
		}
	}

	bad := []struct {
		db     string
		params map[string]string
		errHas string
	}{
		{"raterd; DROP TABLE x", ok, "not a plain identifier"},
		{"raterd.scores", ok, "not a plain identifier"},
		{"", ok, "not a plain identifier"},
		{"raterd", without("model"), `missing parameter "model"`},
		{"raterd", without("limit"), `missing parameter "limit"`},
		{"raterd", with("to", "2026-11-25"), `unknown parameter "to"`},
		{"raterd", with("db", "x"), `unknown parameter "db"`},
		{"raterd", with("model", "\xff\xfe"), "not valid UTF-8"},
		{"raterd", with("from", "yesterday"), "not a timestamp"},
		{"raterd", with("from", "2026-11-24 12:00"), "not a timestamp"},
		{"raterd", with("from", "2026-11-24T12:00:00.5Z"), "fractional seconds"},
		{"raterd", with("from", "1969-12-31T23:59:59Z"), "outside the DateTime range"},
		{"raterd", with("from", "2106-01-01T00:00:00Z"), "outside the DateTime range"},
		{"raterd", with("from", "2026-11-24'); DROP TABLE x; --"), "not a timestamp"},
		{"raterd", with("limit", "-1"), "not an unsigned integer"},
		{"raterd", with("limit", "1e3"), "not an unsigned integer"},
		{"raterd", with("limit", " 1"), "not an unsigned integer"},
		{"raterd", with("limit", "0x10"), "not an unsigned integer"},
		{"raterd", with("limit", "10 OR 1=1"), "not an unsigned integer"},
		{"raterd", with("limit", "18446744073709551616"), "not an unsigned integer"},
		{"raterd", with("limit", ""), "not an unsigned integer"},
	}
	for _, c := range bad {
		_, err := q.Render(c.db, c.params)
		if err == nil || !strings.Contains(err.Error(), c.errHas) {
			t.Errorf("Render(%q, %q) error = %v, want one containing %q", c.db, c.params, err, c.errHas)
		}
	}

	// Malformed templates are rejected, whatever the parameters.
	for _, tq := range []CookbookQuery{
		{Name: "untyped", SQL: "SELECT {x}", Params: []string{"x"}},
		{Name: "badtype", SQL: "SELECT {x:Int8}", Params: []string{"x"}},
		{Name: "twotypes", SQL: "SELECT {x:String}, {x:UInt64}", Params: []string{"x"}},
		{Name: "unlisted", SQL: "SELECT {x:String}, {y:String}", Params: []string{"x"}},
		{Name: "order", SQL: "SELECT {x:String}, {y:String}", Params: []string{"y", "x"}},
		{Name: "typeddb", SQL: "SELECT {db:String}", Params: []string{"db"}},
	} {
		if _, err := tq.Render("raterd", map[string]string{"x": "1", "y": "1", "db": "1"}); err == nil {
			t.Errorf("template %s (%s) rendered without an error", tq.Name, tq.SQL)
		}
	}
}

// identityColumns are the columns every copy of a score row shares: the sorting key of
// raterd.scores (event_time through toStartOfHour, and the same event in every copy).
var identityColumns = map[string]bool{
	"evaluator": true, "model": true, "event_time": true, "app": true,
	"record_id": true, "rubric_version": true, "judge": true,
	// Not in the key, but functions of the evaluator: an evaluator judges one scope and
	// has one task type.
	"scope": true, "task_type": true,
}

var (
	whereClause = regexp.MustCompile(`(?s)\bWHERE\b(.*?)(?:\bGROUP BY\b|\n\)|$)`)
	sqlWord     = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
	whereWord   = regexp.MustCompile(`\bWHERE\b`)
	subquery    = regexp.MustCompile(`\(\s*SELECT\b`)
	sqlString   = regexp.MustCompile(`'(?:[^'\\]|\\.)*'`)
)

// whereConditions returns the condition of every WHERE in sql, subqueries' included: each
// up to its GROUP BY, closing parenthesis or the end, and up to a subquery it tests against
// (an IN (SELECT …), whose own WHERE is another condition).
func whereConditions(sql string) []string {
	var out []string
	for _, loc := range whereWord.FindAllStringIndex(sql, -1) {
		m := whereClause.FindStringSubmatch(sql[loc[0]:])
		cond := m[1]
		if i := subquery.FindStringIndex(cond); i != nil {
			cond = cond[:i[0]]
		}
		out = append(out, cond)
	}
	return out
}

// TestCookbookDefinitions checks the queries as data: unique names, complete text, valid
// placeholders, a stated replay strategy, and WHERE clauses that test only columns every
// copy of a row shares (a test on status or cached there could see a stale copy).
func TestCookbookDefinitions(t *testing.T) {
	names := map[string]bool{}
	for _, q := range Cookbook() {
		if q.Name == "" || q.Title == "" || q.Explanation == "" || q.SQL == "" {
			t.Errorf("query %q has an empty field", q.Name)
		}
		if names[q.Name] {
			t.Errorf("query name %s is used twice", q.Name)
		}
		names[q.Name] = true
		if got, ok := CookbookQueryNamed(q.Name); !ok || got.SQL != q.SQL {
			t.Errorf("CookbookQueryNamed(%s) does not return it", q.Name)
		}
		if _, err := q.paramTypes(); err != nil {
			t.Error(err)
		}
		if strings.Contains(q.SQL, ";") || strings.TrimSpace(q.SQL) != q.SQL {
			t.Errorf("%s: SQL must be one statement without surrounding space", q.Name)
		}
		final := strings.Contains(q.SQL, "{db}.scores FINAL")
		argMax := strings.Contains(q.SQL, "argMax(") && strings.Contains(q.SQL, "scored_at)")
		if strings.Contains(q.SQL, "{db}.alerts") {
			// alerts is a ReplacingMergeTree(updated_at): one row per alert after collapsing
			// its state changes with argMax(…, updated_at).
			if strings.Contains(q.SQL, "{db}.scores") || !strings.Contains(q.SQL, "argMax(") || !strings.Contains(q.SQL, "updated_at)") {
				t.Errorf("%s: reads alerts without collapsing its copies through argMax(…, updated_at)", q.Name)
			}
		} else if !final && !argMax {
			t.Errorf("%s: reads scores neither FINAL nor through argMax(…, scored_at)", q.Name)
		}
		if !strings.Contains(q.Explanation, "Replays:") {
			t.Errorf("%s: the explanation does not say how it handles replays", q.Name)
		}
		if strings.Contains(q.SQL, "PREWHERE") {
			t.Errorf("%s: PREWHERE runs before FINAL collapses copies", q.Name)
		}
		for _, where := range whereConditions(q.SQL) {
			cond := placeholder.ReplaceAllString(sqlString.ReplaceAllString(where, "''"), "''")
			for _, w := range sqlWord.FindAllString(cond, -1) {
				if u := strings.ToUpper(w); u == "AND" || u == "OR" || u == "IN" || u == "NOT" {
					continue
				}
				if !identityColumns[w] {
					t.Errorf("%s: WHERE tests %s, which copies of a row need not share; test it after collapsing (-If, HAVING)", q.Name, w)
				}
			}
		}
	}
}

// TestCookbookDoc checks that docs/sql.md holds the generated cookbook section verbatim
// (every query's SQL among it); -update-cookbook-doc rewrites that section.
func TestCookbookDoc(t *testing.T) {
	data, err := os.ReadFile(cookbookDocPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	begin := strings.Index(doc, CookbookDocBegin)
	end := strings.Index(doc, CookbookDocEnd)
	if begin < 0 || end < begin {
		t.Fatalf("%s lacks the markers %q … %q", cookbookDocPath, CookbookDocBegin, CookbookDocEnd)
	}
	got := doc[begin+len(CookbookDocBegin) : end]
	want := "\n\n" + CookbookMarkdown() + "\n"
	if got != want {
		if *updateCookbookDoc {
			doc = doc[:begin+len(CookbookDocBegin)] + want + doc[end:]
			if err := os.WriteFile(cookbookDocPath, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("rewrote the generated section of %s", cookbookDocPath)
		} else {
			t.Errorf("%s is out of date with Cookbook(); run: go test ./sinks/clickhouse -run TestCookbookDoc -update-cookbook-doc\n%s",
				cookbookDocPath, lineDiff(got, want))
		}
	}
	// Independently of the generated section's layout: every statement verbatim in a sql block.
	for _, q := range Cookbook() {
		if !strings.Contains(doc, "```sql\n"+q.SQL+"\n```") && !*updateCookbookDoc {
			t.Errorf("%s does not hold the SQL of %s verbatim in a ```sql block", cookbookDocPath, q.Name)
		}
	}
}

// lineDiff is a minimal diff for test output: the lines that differ, with line numbers
// relative to the generated section (- doc, + generated).
func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(g), len(w)) && shown < 40; i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl || (i >= len(g)) != (i >= len(w)) {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, gl, wl)
			shown++
		}
	}
	if shown == 40 {
		b.WriteString("… (more lines differ)\n")
	}
	return b.String()
}
