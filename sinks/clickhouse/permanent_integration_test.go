package clickhouse

import (
	"context"
	"log/slog"
	"raterd/internal/testkit"
	"strings"
	"testing"

	"raterd/internal/telemetry"
	"raterd/record"
	"raterd/sinks"
)

// TestClickHousePermanentInsertErrors: issue 17 found a permanent ClickHouse error
// retried like a passing one. An insert the server refuses for what it is (a database or
// column that is not there, a column of another type) is a sinks.PermanentError of its
// class after one attempt, not insert_attempts of them; the consumer then holds the batch
// visibly (consumer.TestPipelinePermanentSinkErrorBlocksVisibly).
func TestClickHousePermanentInsertErrors(t *testing.T) {
	tests := []struct {
		name, class string
		alter       string // run after Migrate; "" skips Migrate (no database)
		letters     bool   // write dead letters rather than scores
	}{
		{name: "unknown database", class: "clickhouse_schema"},
		{name: "dropped column", class: "clickhouse_schema", alter: "ALTER TABLE {db}.scores DROP COLUMN span_id"},
		{name: "dead letters dropped column", class: "clickhouse_schema", alter: "ALTER TABLE {db}.dead_letters DROP COLUMN attempts", letters: true},
		{name: "column of another type", class: "clickhouse_data", alter: "ALTER TABLE {db}.scores MODIFY COLUMN attempts Date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, cfg := newTestClickHouse(t)
			if tt.alter != "" {
				if _, err := Migrate(context.Background(), conn, cfg.Database, quiet); err != nil {
					t.Fatalf("Migrate: %v", err)
				}
				if err := conn.Exec(context.Background(), strings.ReplaceAll(tt.alter, "{db}", cfg.Database)); err != nil {
					t.Fatalf("%s: %v", tt.alter, err)
				}
			}
			cfg.InsertAttempts = 3
			var logs testkit.LogBuffer
			tel := telemetry.Settings{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			var err error
			if tt.letters {
				err = NewDeadLetters(conn, cfg, tel).WriteDeadLetters(context.Background(),
					[]record.DeadLetter{{Source: record.Source{Topic: "t", Offset: 1}, Reason: "invalid_json", Value: []byte("x")}})
			} else {
				err = NewScores(conn, cfg, tel).WriteScores(context.Background(), testScores(2))
			}
			if err == nil {
				t.Fatal("insert = nil, want an error")
			}
			if got := sinks.PermanentClass(err); got != tt.class {
				t.Errorf("insert error %v: permanent class %q, want %q", err, got, tt.class)
			}
			if n := strings.Count(logs.String(), "sending it again"); n != 0 {
				t.Errorf("a permanent error was sent again %d times:\n%s", n, logs.String())
			}
		})
	}
}
