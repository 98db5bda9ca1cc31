package report

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"raterd/internal/telemetry"
	"raterd/internal/testkit"
	"raterd/internal/testkit/chtest"
	"raterd/record"
	"raterd/sinks/clickhouse"
)

// reportFixture is the score rows of the report integration test (evaluator helpfulness
// unless said otherwise). On 2026-01-05, hours 10–13 UTC:
//
//	m-a: 10:xx 0.2, 0.4 and a parse failure (app chat); 11:xx 0.65 (app search);
//	     13:xx 0.8, 1.0 (chat) — 5 scored, mean 0.61, hourly means 0.3, 0.65, –, 0.9
//	m-b: 10:xx 0.9, 0.7; 12:xx 0.5 (chat) — 3 scored, mean 0.7, hourly 0.8, –, 0.5, –
//
// plus rows the reports must leave out: another evaluator, one at 2026-01-06 00:00 (the
// exclusive end of a day range), and m-c on 2026-01-03 (0.1, 0.2, 0.1, 0.2) and 2026-01-04
// (0.8, 0.9, 0.8, 0.9) for the window comparison.
func reportFixture() []record.Score {
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	row := func(id, model, app, eventTime string, score float64) record.Score {
		t := at(eventTime)
		return record.Score{
			EventTime: t, ScoredAt: t.Add(time.Minute), RecordID: id, Model: model, App: app,
			Evaluator: "helpfulness", RubricVersion: "r1", Judge: "judge-x", TaskType: "pointwise",
			Value: score, Status: record.StatusOK, JudgeLatency: 120 * time.Millisecond, Attempts: 1,
		}
	}
	failed := row("a3", "m-a", "chat", "2026-01-05T10:40:00Z", 0)
	failed.Status = record.StatusParseFailure
	other := row("o1", "m-a", "chat", "2026-01-05T10:00:00Z", 0)
	other.Evaluator = "other"
	return []record.Score{
		row("a1", "m-a", "chat", "2026-01-05T10:05:00Z", 0.2),
		row("a2", "m-a", "chat", "2026-01-05T10:20:00Z", 0.4),
		failed,
		row("a4", "m-a", "search", "2026-01-05T11:10:00Z", 0.65),
		row("a5", "m-a", "chat", "2026-01-05T13:00:00Z", 0.8),
		row("a6", "m-a", "chat", "2026-01-05T13:59:59Z", 1.0),
		row("b1", "m-b", "chat", "2026-01-05T10:00:00Z", 0.9),
		row("b2", "m-b", "chat", "2026-01-05T10:30:00Z", 0.7),
		row("b3", "m-b", "chat", "2026-01-05T12:15:00Z", 0.5),
		other,
		row("x1", "m-a", "chat", "2026-01-06T00:00:00Z", 0),
		row("c1", "m-c", "batch", "2026-01-03T09:00:00Z", 0.1),
		row("c2", "m-c", "batch", "2026-01-03T10:00:00Z", 0.2),
		row("c3", "m-c", "batch", "2026-01-03T11:00:00Z", 0.1),
		row("c4", "m-c", "batch", "2026-01-03T12:00:00Z", 0.2),
		row("c5", "m-c", "batch", "2026-01-04T09:00:00Z", 0.8),
		row("c6", "m-c", "batch", "2026-01-04T10:00:00Z", 0.9),
		row("c7", "m-c", "batch", "2026-01-04T11:00:00Z", 0.8),
		row("c8", "m-c", "batch", "2026-01-04T12:00:00Z", 0.9),
	}
}

// conversationFixture is the conversation rows of the report integration test, on
// 2026-01-04: three segments, each judged by conversation_resolution (1 = resolved) and
// conversation_quality, and one trace row that the conversation report leaves out.
//
//	k1@500 v1  m-a 08:00  3 turns end_marker  resolved   quality 0.9
//	k2@501 v1  m-a 08:30 10 turns max_turns   unresolved quality 0.2
//	k3@502 v1  m-b 09:00  4 turns evicted     resolved   quality 0.6
func conversationFixture() []record.Score {
	seg := func(conv string, first, last int64, model, eventTime string, turns int, reason string) record.Score {
		t, err := time.Parse(time.RFC3339, eventTime)
		if err != nil {
			panic(err)
		}
		return record.Score{
			EventTime: t, ScoredAt: t.Add(time.Hour), RecordID: fmt.Sprintf("%s@%d", conv, first), ConversationID: conv,
			Source: record.Source{Topic: "llm", Offset: first}, Model: model, App: "chat", RubricVersion: "r1",
			Judge: "judge-x", Status: record.StatusOK, Attempts: 1,
			Scope: record.ScopeConversation, Version: 1, LastOffset: last, Turns: turns, CloseReason: reason,
		}
	}
	judged := func(s record.Score, evaluator string, score float64, label string) record.Score {
		s.Evaluator, s.Value, s.Label, s.Explanation = evaluator, score, label, evaluator+" of "+s.ConversationID
		s.TaskType = "classification"
		if evaluator == "conversation_quality" {
			s.TaskType = "pointwise"
		}
		return s
	}
	k1 := seg("k1", 500, 510, "m-a", "2026-01-04T08:00:00Z", 3, record.CloseEndMarker)
	k2 := seg("k2", 501, 520, "m-a", "2026-01-04T08:30:00Z", 10, record.CloseMaxTurns)
	k3 := seg("k3", 502, 530, "m-b", "2026-01-04T09:00:00Z", 4, record.CloseEvicted)
	trace := seg("t1", 600, 603, "m-a", "2026-01-04T10:00:00Z", 2, record.CloseTimeout)
	trace.Scope, trace.ConversationID, trace.TraceID = record.ScopeTrace, "", "t1"
	return []record.Score{
		judged(k1, "conversation_resolution", 1, "resolved"), judged(k1, "conversation_quality", 0.9, ""),
		judged(k2, "conversation_resolution", 0, "unresolved"), judged(k2, "conversation_quality", 0.2, ""),
		judged(k3, "conversation_resolution", 1, "resolved"), judged(k3, "conversation_quality", 0.6, ""),
		judged(trace, "agent_task_success", 0, "failed"),
	}
}

func TestIntegrationReport(t *testing.T) {
	s := testkit.RequireServices(t)
	db := "raterd_itreport_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	conn := chtest.Migrated(t, s.ClickHouse, db)
	cfg := clickhouse.Config{Addrs: []string{s.ClickHouse}, Database: db}
	if err := cfg.Validate("clickhouse"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sink := clickhouse.NewScores(conn, cfg, telemetry.Settings{Logger: slog.New(slog.DiscardHandler)})
	rows := reportFixture()
	if err := sink.WriteScores(ctx, rows); err != nil {
		t.Fatal(err)
	}
	convs := conversationFixture()
	if err := sink.WriteScores(ctx, convs); err != nil {
		t.Fatal(err)
	}
	// A replay of conversation rows, closed later with more turns: the latest copy counts.
	convReplay := []record.Score{convs[0], convs[1]}
	for i := range convReplay {
		convReplay[i].ScoredAt = convReplay[i].ScoredAt.Add(time.Hour)
		convReplay[i].Turns, convReplay[i].LastOffset = 4, 511
	}
	if err := sink.WriteScores(ctx, convReplay); err != nil {
		t.Fatal(err)
	}
	// A replay of two rows, in a part of its own: FINAL must count each once.
	replay := []record.Score{rows[0], rows[6]}
	for i := range replay {
		replay[i].ScoredAt = replay[i].ScoredAt.Add(time.Hour)
	}
	if err := sink.WriteScores(ctx, replay); err != nil {
		t.Fatal(err)
	}

	now := time.Date(2026, 1, 5, 14, 0, 0, 0, time.UTC)
	report := func(t *testing.T, args ...string) string {
		t.Helper()
		var out, errb strings.Builder
		cmd := reportCmd{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }, now: func() time.Time { return now }}
		args = append(args, "--clickhouse", s.ClickHouse, "--database", db)
		if err := cmd.run(ctx, args); err != nil {
			t.Fatalf("report %q: %v\nstderr: %s", args, err, errb.String())
		}
		return out.String()
	}

	t.Run("trend", func(t *testing.T) {
		got := report(t, "trend", "--evaluator", "helpfulness", "--from", "-4h")
		want := `score trend of helpfulness, 2026-01-05 10:00:00 to 2026-01-05 14:00:00 UTC
trend: mean score per hour from 2026-01-05 10:00 UTC, blank without scored rows; scale ▁ 0.300 … █ 0.900

model  scored  failed   mean  trend
m-a         5       1  0.610  ▁▅ █
m-b         3       0  0.700  ▇ ▃
`
		if got != want {
			t.Errorf("trend:\n%s\nwant:\n%s", got, want)
		}
		got = report(t, "trend", "--evaluator", "helpfulness", "--app", "search", "--from", "2026-01-05", "--to", "2026-01-05T14:00:00Z")
		want = `score trend of helpfulness, 2026-01-05 00:00:00 to 2026-01-05 14:00:00 UTC (app search)
trend: mean score per hour from 2026-01-05 00:00 UTC, blank without scored rows; scale ▁ 0.650 … █ 0.650

model  scored  failed   mean  trend
m-a         1       0  0.650             ▄
`
		if got != want {
			t.Errorf("trend --app search:\n%s\nwant:\n%s", got, want)
		}
		got = report(t, "trend", "--evaluator", "helpfulness", "--model", "m-b", "--from", "2026-01-05 10:00:00", "--to", "now", "--format", "csv")
		recs, err := csv.NewReader(strings.NewReader(got)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 3 || strings.Join(recs[0][:5], ",") != "hour,model,scored,failed,mean_score" ||
			strings.Join(recs[1][:4], ",") != "2026-01-05T10:00:00Z,m-b,2,0" ||
			strings.Join(recs[2][:4], ",") != "2026-01-05T12:00:00Z,m-b,1,0" {
			t.Fatalf("trend --model m-b --format csv:\n%s", got)
		}
		for i, want := range map[int]float64{1: 0.8, 2: 0.5} {
			if v, err := strconv.ParseFloat(recs[i][4], 64); err != nil || math.Abs(v-want) > 1e-9 {
				t.Errorf("csv hour %d mean_score %q, want %g", i, recs[i][4], want)
			}
		}
		got = report(t, "trend", "--evaluator", "nobody", "--from", "-4h", "--format", "json")
		if got != "[]\n" {
			t.Errorf("trend of an unknown evaluator as json: %q", got)
		}
	})

	t.Run("compare models", func(t *testing.T) {
		got := report(t, "compare", "--evaluator", "helpfulness", "--model-a", "m-a", "--model-b", "m-b", "--from", "2026-01-05", "--to", "2026-01-06")
		// By hand (Welch): var_a = 0.1005, var_b = 0.04, std_err = 0.18285,
		// df = 5.8865, t = 0.09 / 0.18285 = 0.4922, t crit = 2.4583, CI = 0.09 ± 0.4495.
		want := `compare models on helpfulness, 2026-01-05 00:00:00 to 2026-01-06 00:00:00 UTC

   model  n   mean
A  m-a    5  0.610
B  m-b    3  0.700

difference B − A: +0.090 (std. error 0.183, Welch df 5.886, t +0.492)
95% CI: [-0.359, 0.539] (difference ± t crit 2.458 × std. error)
verdict: not significant at 5% (the 95% CI includes 0)
`
		if got != want {
			t.Errorf("compare:\n%s\nwant:\n%s", got, want)
		}
		got = report(t, "compare", "--evaluator", "helpfulness", "--model-a", "m-a", "--model-b", "m-b", "--from", "2026-01-05", "--to", "2026-01-06", "--format", "json")
		var objs []map[string]any
		if err := json.Unmarshal([]byte(got), &objs); err != nil || len(objs) != 1 {
			t.Fatalf("compare --format json %q: %v", got, err)
		}
		o := objs[0]
		if ts, ok := o["t_stat"].(float64); !ok || math.Abs(ts-0.4922125) > 1e-6 {
			t.Errorf("compare --format json: t_stat %v, want 0.4922", o["t_stat"])
		}
		if o["model_a"] != "m-a" || o["n_a"] != 5.0 || o["n_b"] != 3.0 || o["verdict"] != "not significant" ||
			math.Abs(o["ci95_low"].(float64)+0.35949) > 1e-4 || math.Abs(o["ci95_high"].(float64)-0.53949) > 1e-4 {
			t.Errorf("compare --format json: %v", o)
		}

		// The window comparison finishes the interval in Go: it must agree with
		// compare_models when both sides cover the same range.
		from, to := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC)
		sa, err := windowStats(ctx, conn, db, "helpfulness", "m-a", from, to)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := windowStats(ctx, conn, db, "helpfulness", "m-b", from, to)
		if err != nil {
			t.Fatal(err)
		}
		r := welch(sa, sb)
		for name, v := range map[string]float64{"diff": r.Diff, "std_err": r.StdErr, "welch_df": r.DF, "t_crit": r.TCrit, "ci95_low": r.Low, "ci95_high": r.High} {
			if sql := o[name].(float64); math.Abs(sql-v) > 1e-9 {
				t.Errorf("%s: Go %v, compare_models %v", name, v, sql)
			}
		}
	})

	t.Run("compare windows", func(t *testing.T) {
		// Window B's empty TO is now (2026-01-05 14:00).
		got := report(t, "compare", "--evaluator", "helpfulness", "--model", "m-c", "--window-a", "2026-01-03,2026-01-04", "--window-b", "2026-01-04,")
		// By hand: means 0.15 and 0.85, variances 1/300 each, std_err = 0.04082, df = 6,
		// t = 0.7 / 0.04082 = 17.146, t crit = 2.4468, CI = 0.7 ± 0.0999.
		want := `compare time windows of m-c on helpfulness (UTC)

   from                 to                   n   mean
A  2026-01-03 00:00:00  2026-01-04 00:00:00  4  0.150
B  2026-01-04 00:00:00  2026-01-05 14:00:00  4  0.850

difference B − A: +0.700 (std. error 0.041, Welch df 6.000, t +17.146)
95% CI: [0.600, 0.800] (difference ± t crit 2.447 × std. error)
verdict: significant at 5% (the 95% CI excludes 0): B scores higher than A
`
		if got != want {
			t.Errorf("compare windows:\n%s\nwant:\n%s", got, want)
		}
		got = report(t, "compare", "--evaluator", "helpfulness", "--model", "m-c", "--window-a", "2026-01-03,2026-01-04", "--window-b", "2026-01-04,2026-01-05", "--format", "csv")
		want = "model,from_a,to_a,from_b,to_b,n_a,n_b,mean_a,mean_b,diff,std_err,welch_df,t_crit,ci95_low,ci95_high,t_stat,verdict\n" +
			"m-c,2026-01-03T00:00:00Z,2026-01-04T00:00:00Z,2026-01-04T00:00:00Z,2026-01-05T00:00:00Z,4,4,"
		if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, ",significant\n") {
			t.Errorf("compare windows --format csv:\n%s", got)
		}
	})

	t.Run("cookbook query", func(t *testing.T) {
		got := report(t, "worst_apps", "--param", "evaluator=helpfulness", "--param", "from=2026-01-05",
			"--param", "to=2026-01-06", "--param", "min_rows=1", "--param", "limit=10")
		// chat: 0.2, 0.4, 0.8, 1.0, 0.9, 0.7, 0.5 and the parse failure; search: 0.65.
		want := `Worst apps for an evaluator (worst_apps)

app     scored  mean_score  failed
chat         7       0.643       1
search       1       0.650       0
`
		if got != want {
			t.Errorf("worst_apps:\n%s\nwant:\n%s", got, want)
		}
		// to defaults to now (14:00): a6 at 13:59:59 is in, x1 on the next day out.
		got = report(t, "worst_apps", "--param", "evaluator=helpfulness", "--param", "from=2026-01-05",
			"--param", "min_rows=2", "--param", "limit=10", "--format", "json")
		var objs []map[string]any
		if err := json.Unmarshal([]byte(got), &objs); err != nil {
			t.Fatalf("worst_apps --format json %q: %v", got, err)
		}
		if len(objs) != 1 || objs[0]["app"] != "chat" || objs[0]["scored"] != 7.0 || objs[0]["failed"] != 1.0 ||
			math.Abs(objs[0]["mean_score"].(float64)-4.5/7) > 1e-9 {
			t.Errorf("worst_apps --format json: %s", got)
		}
		got = report(t, "compare_models", "--param", "evaluator=helpfulness", "--param", "model_a=m-a", "--param", "model_b=m-b",
			"--param", "from=2026-01-05", "--param", "to=2026-01-06", "--format", "csv")
		if !strings.HasPrefix(got, "model_a,model_b,n_a,n_b,mean_a,mean_b,diff,") || !strings.Contains(got, "\nm-a,m-b,5,3,0.61") {
			t.Errorf("compare_models --format csv:\n%s", got)
		}
	})

	t.Run("conversations", func(t *testing.T) {
		got := report(t, "conversations", "--evaluator", "conversation_quality", "--resolution", "conversation_resolution",
			"--from", "2026-01-04", "--to", "2026-01-05", "--limit", "1")
		want := `conversations of every model, first turns 2026-01-04 00:00:00 to 2026-01-05 00:00:00 UTC

resolution rate of conversation_resolution per day (score 1 = resolved; failed rows left out of the rate)
day                  model  conversations  resolved  resolution_rate  failed
2026-01-04 00:00:00  m-a                2         1            0.500       0
2026-01-04 00:00:00  m-b                1         1            1.000       0

worst conversations by conversation_quality (lowest 1 per model)
model  conversation_id  version  turn_count  score  label  explanation                 close_reason  first_offset  last_offset
m-a    k2                     1          10  0.200         conversation_quality of k2  max_turns              501          520
m-b    k3                     1           4  0.600         conversation_quality of k3  evicted                502          530

why segments closed (max_turns, max_bytes, max_duration, evicted: cut short by the bounds)
model  close_reason  segments  mean_turns  max_turns
m-a    end_marker           1       4.000          4
m-a    max_turns            1      10.000         10
m-b    evicted              1       4.000          4
`
		if got != want {
			t.Errorf("conversations:\n%s\nwant:\n%s", got, want)
		}
		// One model, one section, as json: k1's replayed copy (4 turns, offset 511) is the one shown.
		got = report(t, "conversations", "--evaluator", "conversation_quality", "--model", "m-a", "--from", "2026-01-04",
			"--to", "2026-01-05", "--limit", "5", "--only", "worst", "--format", "json")
		var objs []map[string]any
		if err := json.Unmarshal([]byte(got), &objs); err != nil {
			t.Fatalf("conversations --only worst --format json %q: %v", got, err)
		}
		if len(objs) != 2 || objs[0]["conversation_id"] != "k2" || objs[1]["conversation_id"] != "k1" ||
			objs[1]["turn_count"] != 4.0 || objs[1]["last_offset"] != 511.0 || objs[1]["close_reason"] != "end_marker" {
			t.Errorf("conversations --model m-a --only worst --format json: %s", got)
		}
		// The model filter applies to every section; csv prints the one asked for.
		got = report(t, "conversations", "--evaluator", "conversation_quality", "--model", "m-b", "--from", "2026-01-04",
			"--to", "2026-01-05", "--only", "close_reasons", "--format", "csv")
		if want := "model,close_reason,segments,mean_turns,max_turns\nm-b,evicted,1,4,4\n"; got != want {
			t.Errorf("conversations --model m-b --only close_reasons --format csv:\n%s\nwant:\n%s", got, want)
		}
		// A record evaluator's trend never sees conversation rows: they have evaluators of their own.
		got = report(t, "trend", "--evaluator", "helpfulness", "--from", "2026-01-04", "--to", "2026-01-05", "--format", "csv")
		if !strings.HasPrefix(got, "hour,model,") || strings.Contains(got, "m-a") || strings.Contains(got, "m-b") {
			t.Errorf("helpfulness trend on the day of the conversations:\n%s", got)
		}
	})

	t.Run("through runMain", func(t *testing.T) {
		var out, errb strings.Builder
		code := runMain([]string{"report", "cache_savings", "--param", "from=2026-01-05", "--param", "to=2026-01-06",
			"--clickhouse", s.ClickHouse, "--database", db, "--format", "csv"}, &out, &errb)
		// Every fixture row on 2026-01-05 was judged (not cached), at 120 ms.
		if want := "evaluator,judge,scored_rows,judge_calls_avoided,cached_share,judge_calls_made,mean_judge_latency_ms,judge_seconds_saved\n" +
			"helpfulness,judge-x,9,0,0,9,120,0\nother,judge-x,1,0,0,1,120,0\n"; code != 0 || out.String() != want {
			t.Errorf("report cache_savings: exit %d, stderr %q, out:\n%s\nwant:\n%s", code, errb.String(), out.String(), want)
		}
		out.Reset()
		errb.Reset()
		code = runMain([]string{"report", "trend", "--evaluator", "helpfulness", "--from", "-1h", "--clickhouse", "127.0.0.1:1", "--timeout", "10s"}, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), "raterd report: clickhouse [127.0.0.1:1]") {
			t.Errorf("unreachable ClickHouse: exit %d, stderr %q", code, errb.String())
		}
		errb.Reset()
		code = runMain([]string{"report", "trend", "--evaluator", "helpfulness", "--from", "-1h", "--clickhouse", s.ClickHouse, "--database", "raterd_no_such_db_report"}, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), "query score_trend") {
			t.Errorf("missing database: exit %d, stderr %q", code, errb.String())
		}
	})
}
