package clickhouse

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"raterd/record"
)

// TestClickHouseSharedRecordIDsCounted: issue 17 found two different records that share
// a producer id collapsing into one in scores FINAL, silently. Collapsing by id is the
// contract (a producer's retry or a replayed dead letter arrives at a new offset and must
// not count twice), but it is no longer silent: the record_sources view (migration 7)
// keeps the source offsets of every id, which the scores table loses at its merges, and
// SharedIDsQuery lists the ids carried by more than one message. A replay of the same
// offset is not listed.
func TestClickHouseSharedRecordIDsCounted(t *testing.T) {
	conn, cfg := newTestClickHouse(t)
	if _, err := Migrate(context.Background(), conn, cfg.Database, quiet); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	db := cfg.Database
	hour := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	row := func(id string, offset int64, evaluator string, minute int) record.Score {
		return record.Score{
			EventTime: hour.Add(time.Duration(minute) * time.Minute), ScoredAt: hour.Add(time.Hour),
			RecordID: id, Source: record.Source{Topic: "traffic", Partition: 1, Offset: offset},
			Model: "support-llm-v7", App: "helpdesk", Evaluator: evaluator, RubricVersion: "rv", Judge: "j",
			TaskType: "pointwise", Value: 1, Status: record.StatusOK,
		}
	}
	sink := NewScores(conn, cfg, quiet)
	write := func(rows ...record.Score) {
		t.Helper()
		if err := sink.WriteScores(context.Background(), rows); err != nil {
			t.Fatal(err)
		}
	}
	// Two different requests that their producer gave the id "req-1", at offsets 10 and 11.
	write(row("req-1", 10, "helpfulness", 1), row("req-1", 10, "safety", 1))
	write(row("req-1", 11, "helpfulness", 40), row("req-1", 11, "safety", 40))
	// A record and its replay (the same offset, after a crash).
	write(row("req-2", 12, "helpfulness", 2))
	write(row("req-2", 12, "helpfulness", 2))
	if err := conn.Exec(context.Background(), "OPTIMIZE TABLE "+db+".scores FINAL"); err != nil {
		t.Fatal(err)
	}
	// The collapse, and that scores alone no longer shows it.
	if got := countRows(t, conn, "SELECT count() FROM "+db+".scores FINAL WHERE record_id = 'req-1'"); got != 2 {
		t.Fatalf("scores FINAL holds %d rows of req-1, want 2 (one per evaluator: the two requests collapsed)", got)
	}
	if got := countRows(t, conn, "SELECT uniqExact(offset) FROM "+db+".scores WHERE record_id = 'req-1'"); got != 1 {
		t.Fatalf("after merges scores holds %d offsets of req-1, want 1 (the other is gone)", got)
	}

	q := SharedIDsQuery()
	sql, err := q.Render(db, map[string]string{"from": "2026-11-28", "to": "2026-11-29"})
	if err != nil {
		t.Fatal(err)
	}
	coords := func(c string) string {
		return "concat(" + c + ".1, '/', toString(" + c + ".2), '/', toString(" + c + ".3))"
	}
	rows, err := conn.Query(context.Background(), "SELECT toString(hour), model, app, record_id, toString(n_offsets), "+
		coords("first_offset")+", "+coords("last_offset")+" FROM ("+sql+")")
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		cols := make([]string, 7)
		if err := rows.Scan(&cols[0], &cols[1], &cols[2], &cols[3], &cols[4], &cols[5], &cols[6]); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join(cols, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"2026-11-28 12:00:00 support-llm-v7 helpdesk req-1 2 traffic/1/10 traffic/1/11"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("shared ids:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// docs/sql.md shows the statement verbatim.
	doc, err := os.ReadFile(cookbookDocPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```sql\n"+q.SQL+"\n```") {
		t.Errorf("%s does not hold SharedIDsQuery verbatim in a ```sql block", cookbookDocPath)
	}
}
