package clickhouse

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/record"
	"raterd/sinks"
)

// insertScores sends rows as one INSERT block, as insertRowsSized does for other tables,
// but fills the block column by column (scoreColumnWriter): the row-wise append boxed
// every value of every row into an interface and converted it back, about a tenth of
// raterd's CPU on the heuristic checks. The values, and so the rows stored, are those of
// scoreValues (TestScoreColumnsAreScoreValues).
//
// The rows come in chunks (the micro-batches a GroupCommit gathered), inserted in order
// as one block, so that no one has to copy them into one slice first.
func insertScores(ctx context.Context, conn driver.Conn, query string, chunks [][]record.Score) (int64, error) {
	n := chunkRows(chunks)
	batch, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return 0, fmt.Errorf("clickhouse: prepare insert of %d score rows: %w", n, err)
	}
	defer func() { _ = batch.Abort() }()
	size, err := appendScoreColumns(batch, chunks)
	if err != nil {
		// Append converts raterd's values to the table's column types on this side: a
		// failure is the same on every attempt.
		return 0, sinks.Permanent(ClassData, err)
	}
	if err := batch.Send(); err != nil {
		return 0, fmt.Errorf("clickhouse: insert %d score rows: %w", n, err)
	}
	return size, nil
}

// scoreColumnNames are the columns of scoreColumns, in its order.
var scoreColumnNames = strings.Split(scoreColumns, ", ")

// chunkRows returns the number of rows in chunks.
func chunkRows(chunks [][]record.Score) int {
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	return n
}

// appendScoreColumns appends the rows of chunks, in order, to batch column by column, in
// scoreColumns' order, with the values scoreValues gives each row, and returns their
// approximate size: the sum of valueSize over those values.
func appendScoreColumns(batch driver.Batch, chunks [][]record.Score) (int64, error) {
	n := chunkRows(chunks)
	w := scoreColumnWriter{batch: batch, chunks: chunks, n: n, strs: make([]string, n)}
	w.times(func(r *record.Score) time.Time { return r.EventTime })
	w.times(func(r *record.Score) time.Time { return r.ScoredAt })
	w.strings(func(r *record.Score) string { return r.RecordID })
	w.strings(func(r *record.Score) string { return r.TraceID })
	w.strings(func(r *record.Score) string { return r.SpanID })
	w.strings(func(r *record.Score) string { return r.ConversationID })
	w.strings(scopeOf)
	w.uint32s(func(r *record.Score) uint32 { return clampUint32(r.Version) })
	w.strings(func(r *record.Score) string { return r.Source.Topic })
	w.uint32s(func(r *record.Score) uint32 { return uint32(max(r.Source.Partition, 0)) })
	w.uint64s(func(r *record.Score) uint64 { return uint64(max(r.Source.Offset, 0)) })
	w.uint64s(func(r *record.Score) uint64 { return uint64(max(r.LastOffset, 0)) })
	w.strings(func(r *record.Score) string { return r.Model })
	w.strings(func(r *record.Score) string { return r.App })
	w.labels()
	w.strings(func(r *record.Score) string { return r.Evaluator })
	w.strings(func(r *record.Score) string { return r.RubricVersion })
	w.strings(func(r *record.Score) string { return r.Judge })
	w.strings(func(r *record.Score) string { return r.TaskType })
	w.float64s(func(r *record.Score) float64 { return r.Value })
	w.strings(func(r *record.Score) string { return r.Label })
	w.float32s(func(r *record.Score) float32 { return float32(r.Confidence) })
	w.strings(func(r *record.Score) string { return r.Explanation })
	w.strings(func(r *record.Score) string { return r.Status })
	w.uint8s(func(r *record.Score) uint8 { return boolToUint8(r.Cached) })
	w.uint32s(func(r *record.Score) uint32 {
		return uint32(min(max(r.JudgeLatency.Milliseconds(), 0), int64(^uint32(0))))
	})
	w.uint16s(func(r *record.Score) uint16 { return uint16(min(r.Attempts, 65535)) })
	w.uint32s(func(r *record.Score) uint32 { return clampUint32(r.Turns) })
	w.strings(func(r *record.Score) string { return r.CloseReason })
	if w.err == nil && w.col != len(scoreColumnNames) {
		w.err = fmt.Errorf("clickhouse: appended %d score columns, the insert names %d", w.col, len(scoreColumnNames))
	}
	return w.size, w.err
}

// scoreColumnWriter appends score rows to a batch one column at a time: each method
// appends the next column, or does nothing once an append failed (err). The string
// columns share one scratch slice, which the driver copies from on every append.
type scoreColumnWriter struct {
	batch  driver.Batch
	chunks [][]record.Score
	n      int // rows in chunks
	strs   []string
	col    int
	size   int64
	err    error
}

// each calls f with every row, in order, and its index.
func (w *scoreColumnWriter) each(f func(i int, r *record.Score)) {
	i := 0
	for _, c := range w.chunks {
		for j := range c {
			f(i, &c[j])
			i++
		}
	}
}

// add appends v, a slice of one value per row, as the next column, and counts width
// bytes per row towards size (see valueSize).
func (w *scoreColumnWriter) add(v any, width int) {
	if w.err != nil {
		return
	}
	if err := w.batch.Column(w.col).Append(v); err != nil {
		w.err = fmt.Errorf("clickhouse: append score rows, column %s: %w", w.columnName(w.col), err)
		return
	}
	w.size += int64(width * w.n)
	w.col++
}

// columnName names column i of scoreColumns, for errors.
func (w *scoreColumnWriter) columnName(i int) string {
	if i < len(scoreColumnNames) {
		return scoreColumnNames[i]
	}
	return fmt.Sprint("#", i)
}

// strings appends a String (or LowCardinality(String)) column of f of every row, through
// the shared scratch slice, and counts the strings' bytes towards size.
func (w *scoreColumnWriter) strings(f func(*record.Score) string) {
	if w.err != nil {
		return
	}
	w.each(func(i int, r *record.Score) {
		s := f(r)
		w.strs[i] = s
		w.size += int64(len(s))
	})
	w.add(w.strs, 0)
}

// appendColumn builds a column of one value per row with f; the methods below name its types.
func appendColumn[T any](w *scoreColumnWriter, width int, f func(*record.Score) T) {
	if w.err != nil {
		return
	}
	vs := make([]T, w.n)
	w.each(func(i int, r *record.Score) { vs[i] = f(r) })
	w.add(vs, width)
}

// times, uint8s, … append a column of f of every row as DateTime, UInt8, … values, each
// counted at its column's width (see valueSize).
func (w *scoreColumnWriter) times(f func(*record.Score) time.Time)  { appendColumn(w, 4, f) } // DateTime
func (w *scoreColumnWriter) uint8s(f func(*record.Score) uint8)     { appendColumn(w, 1, f) }
func (w *scoreColumnWriter) uint16s(f func(*record.Score) uint16)   { appendColumn(w, 2, f) }
func (w *scoreColumnWriter) uint32s(f func(*record.Score) uint32)   { appendColumn(w, 4, f) }
func (w *scoreColumnWriter) uint64s(f func(*record.Score) uint64)   { appendColumn(w, 8, f) }
func (w *scoreColumnWriter) float32s(f func(*record.Score) float32) { appendColumn(w, 4, f) }
func (w *scoreColumnWriter) float64s(f func(*record.Score) float64) { appendColumn(w, 8, f) }

// labels appends the label_keys and label_values columns: each row's labels as sortedLabels
// splits them. The rows of one record share its labels, so a row whose labels equal the
// previous row's reuses its split instead of sorting the map again.
func (w *scoreColumnWriter) labels() {
	if w.err != nil {
		return
	}
	keysCol, valuesCol := w.batch.Column(w.col), w.batch.Column(w.col+1)
	var prev map[string]string
	var keys, values any
	var size int64
	w.each(func(i int, r *record.Score) {
		if w.err != nil {
			return
		}
		if i == 0 || !sameLabels(r.Labels, prev) {
			k, v := sortedLabels(r.Labels)
			keys, values, prev = k, v, r.Labels
			size = valueSize(k) + valueSize(v)
		}
		if err := keysCol.AppendRow(keys); err != nil {
			w.err = fmt.Errorf("clickhouse: append score rows, column %s: %w", w.columnName(w.col), err)
			return
		}
		if err := valuesCol.AppendRow(values); err != nil {
			w.err = fmt.Errorf("clickhouse: append score rows, column %s: %w", w.columnName(w.col+1), err)
			return
		}
		w.size += size
	})
	if w.err == nil {
		w.col += 2
	}
}

// sameLabels reports whether a and b hold the same labels: at once when they are the
// same map (the rows of one record), else by comparing them.
func sameLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	if reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer() {
		return true
	}
	return maps.Equal(a, b)
}
