package clickhouse

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"raterd/record"
)

func tokenRows() []record.Score {
	row := func(p, off int64, id, eval string) record.Score {
		return record.Score{Source: record.Source{Topic: "traffic", Partition: int(p), Offset: off},
			RecordID: id, Evaluator: eval, RubricVersion: "v1", Judge: "selene-mini/v1", Value: float64(off)}
	}
	return []record.Score{
		row(0, 10, "r-10", "helpfulness"), row(0, 10, "r-10", "safety"),
		row(0, 11, "r-11", "helpfulness"), row(1, 4, "r-4", "helpfulness"),
	}
}

func TestScoreInsertToken(t *testing.T) {
	rows := tokenRows()
	tok := scoreInsertToken(rows)
	if !strings.HasPrefix(tok, "raterd-v1-scores-4-") || len(tok) != len("raterd-v1-scores-4-")+32 {
		t.Fatalf("token %q: want raterd-v1-scores-4-<32 hex>", tok)
	}
	// Every attempt of the same rows gets the same token, in any order, whatever the
	// scores or times (a retry rebuilds nothing, but a regrouped replay may reorder).
	shuffled := slices.Clone(rows)
	slices.Reverse(shuffled)
	shuffled[0].Value, shuffled[0].Explanation = 99, "other"
	if got := scoreInsertToken(shuffled); got != tok {
		t.Errorf("reordered rows: token %q, want %q", got, tok)
	}
	// Any change to which rows the insert carries changes the token.
	for name, mutate := range map[string]func(r []record.Score) []record.Score{
		"other offset":        func(r []record.Score) []record.Score { r[2].Source.Offset = 12; return r },
		"other partition":     func(r []record.Score) []record.Score { r[3].Source.Partition = 2; return r },
		"other topic":         func(r []record.Score) []record.Score { r[0].Source.Topic = "traffic2"; return r },
		"new rubric version":  func(r []record.Score) []record.Score { r[1].RubricVersion = "v2"; return r },
		"other judge":         func(r []record.Score) []record.Score { r[1].Judge = "prometheus-2/v1"; return r },
		"other evaluator":     func(r []record.Score) []record.Score { r[1].Evaluator = "relevance"; return r },
		"other record id":     func(r []record.Score) []record.Score { r[0].RecordID = "r-x"; return r },
		"a row fewer":         func(r []record.Score) []record.Score { return r[:3] },
		"a row repeated":      func(r []record.Score) []record.Score { return append(r, r[0]) },
		"fields run together": func(r []record.Score) []record.Score { r[0].RecordID, r[0].Evaluator = "r-10h", "elpfulness"; return r },
	} {
		if got := scoreInsertToken(mutate(tokenRows())); got == tok {
			t.Errorf("%s: token unchanged", name)
		}
	}
}

func TestDeadLetterInsertToken(t *testing.T) {
	letters := []record.DeadLetter{
		{Source: record.Source{Topic: "traffic", Partition: 0, Offset: 7}, Reason: "invalid_json"},
		{Source: record.Source{Topic: "traffic", Partition: 1, Offset: 3}, Reason: "missing_field"},
	}
	tok := deadLetterInsertToken(letters)
	if !strings.HasPrefix(tok, "raterd-v1-dead_letters-2-") {
		t.Fatalf("token %q", tok)
	}
	swapped := []record.DeadLetter{letters[1], letters[0]}
	swapped[0].Error = "changed text"
	if got := deadLetterInsertToken(swapped); got != tok {
		t.Errorf("reordered: %q, want %q", got, tok)
	}
	letters[1].Source.Offset = 4
	if got := deadLetterInsertToken(letters); got == tok {
		t.Error("other offset: token unchanged")
	}
}

func TestRenderStepInnerTables(t *testing.T) {
	var queries []string
	lookup := func(_ context.Context, q string) (string, error) {
		queries = append(queries, q)
		if strings.Contains(q, "'scores_hourly'") {
			return ".inner_id.0b7d", nil
		}
		return "", errors.New("no rows")
	}
	got, err := renderStep(context.Background(), "ALTER TABLE {db}.{inner:scores_hourly} MODIFY SETTING x = 1", "rdb", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if want := "ALTER TABLE rdb.`.inner_id.0b7d` MODIFY SETTING x = 1"; got != want {
		t.Errorf("rendered %q, want %q", got, want)
	}
	if len(queries) != 1 || !strings.Contains(queries[0], "database = 'rdb'") || !strings.Contains(queries[0], "'.inner.scores_hourly'") {
		t.Errorf("lookup queries %q", queries)
	}
	_, err = renderStep(context.Background(), "ALTER TABLE {db}.{inner:gone} MODIFY SETTING x = 1", "rdb", lookup)
	if err == nil || !strings.Contains(err.Error(), "materialized view rdb.gone") {
		t.Errorf("missing view: err %v", err)
	}
	// Statements without the placeholder look nothing up.
	queries = nil
	if got, err := renderStep(context.Background(), "ALTER TABLE {db}.scores ADD INDEX i", "rdb", lookup); err != nil || got != "ALTER TABLE rdb.scores ADD INDEX i" || queries != nil {
		t.Errorf("plain statement: %q, %v, lookups %q", got, err, queries)
	}
}
