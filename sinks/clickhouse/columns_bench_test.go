package clickhouse

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	chproto "github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"raterd/record"
)

// blockBatch is a driver.Batch over a client-side block of the scores table's columns
// (with LowCardinality where migration 3 puts it): what PrepareBatch gives, without a
// server.
type blockBatch struct {
	driver.Batch
	block *chproto.Block
}

func newBlockBatch(tb testing.TB) *blockBatch {
	tb.Helper()
	types := map[string]column.Type{
		"event_time": "DateTime", "scored_at": "DateTime", "partition": "UInt32", "offset": "UInt64",
		"label_keys": "Array(String)", "label_values": "Array(String)", "score": "Float64",
		"confidence": "Float32", "cached": "UInt8", "judge_latency_ms": "UInt32", "attempts": "UInt16",
		"task_type": "LowCardinality(String)", "status": "LowCardinality(String)",
		"label": "LowCardinality(String)", "topic": "LowCardinality(String)",
	}
	block := chproto.NewBlock()
	for _, name := range scoreColumnNames {
		typ, ok := types[name]
		if !ok {
			typ = "String"
		}
		if err := block.AddColumn(name, typ); err != nil {
			tb.Fatalf("column %s %s: %v", name, typ, err)
		}
	}
	return &blockBatch{block: block}
}

func (b *blockBatch) Append(v ...any) error           { return b.block.Append(v...) }
func (b *blockBatch) Column(i int) driver.BatchColumn { return blockColumn{b.block.Columns[i]} }
func (b *blockBatch) encode(buf *proto.Buffer) error  { return b.block.Encode(buf, 54460) }
func (c blockColumn) Append(v any) error              { _, err := c.col.Append(v); return err }
func (c blockColumn) AppendRow(v any) error           { return c.col.AppendRow(v) }

type blockColumn struct{ col column.Interface }

// benchScoreRows returns the score rows of records: six per record (the built-in
// checks), sharing the record's fields and labels, with explanations of about 80 bytes.
func benchScoreRows(records int) []record.Score {
	checks := []string{"empty", "json", "pii", "refusal", "repetition", "truncated"}
	base := time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)
	rows := make([]record.Score, 0, records*len(checks))
	for i := range records {
		labels := map[string]string{"region": "eu-west-1", "user_tier": "pro", "prompt_template": fmt.Sprintf("tmpl-%d", i%40)}
		for _, c := range checks {
			rows = append(rows, record.Score{
				EventTime: base.Add(time.Duration(i) * time.Millisecond), ScoredAt: base.Add(time.Minute),
				RecordID: fmt.Sprintf("bench-%06d", i), TraceID: fmt.Sprintf("%032x", i), Source: record.Source{Topic: "llm-traffic", Partition: i % 4, Offset: int64(i)},
				Model: "support-llm-v7", App: "helpdesk", Labels: labels, Evaluator: c, RubricVersion: "v1", Judge: "heuristic/v1",
				TaskType: "pointwise", Value: 1, Label: "ok", Confidence: 1, Status: record.StatusOK, Attempts: 1,
				Explanation: "The opening of the response contains no refusal; " + strings.Repeat("x", i%40), JudgeLatency: time.Microsecond,
			})
		}
	}
	return rows
}

// BenchmarkScoreAppend fills and encodes the block of one insert of 12,000 score rows
// (2,000 records × 6 checks): rows, as raterd did (scoreValues and Append per row), and
// columns (appendScoreColumns). ns/row is the cost per score row.
func BenchmarkScoreAppend(b *testing.B) {
	rows := benchScoreRows(2000)
	for _, mode := range []string{"rows", "columns"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			var buf proto.Buffer
			for b.Loop() {
				batch := newBlockBatch(b)
				if mode == "rows" {
					for i := range rows {
						if err := batch.Append(scoreValues(&rows[i])...); err != nil {
							b.Fatal(err)
						}
					}
				} else if _, err := appendScoreColumns(batch, [][]record.Score{rows}); err != nil {
					b.Fatal(err)
				}
				buf.Reset()
				if err := batch.encode(&buf); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
		})
	}
}
