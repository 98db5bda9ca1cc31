package clickhouse

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"raterd/record"
	"raterd/sinks"
)

// TestScoreColumnsAreScoreValues: the column-by-column insert of score rows appends, for
// every row and column, the value the row-wise form (scoreValues) gives, in order across
// the chunks it is given, so the rows stored are the same; and it reports the same
// approximate size.
func TestScoreColumnsAreScoreValues(t *testing.T) {
	rows := testScores(30)
	shared := map[string]string{"region": "eu", "tier": "pro"}
	for i := range rows {
		if i%5 == 1 || i%5 == 2 {
			rows[i].Labels = shared // rows of one record share its map
		}
	}
	rows[3].Labels = map[string]string{"region": "eu", "tier": "free"} // equal keys, another value
	rows[4].Labels = map[string]string{}                               // empty, after a non-empty
	rows[5].Source.Partition, rows[5].Source.Offset = -1, -7
	rows[6].JudgeLatency, rows[6].Attempts, rows[6].Cached = 1<<62, 1<<20, true
	rows[7].JudgeLatency = -time.Second
	rows[8].Scope, rows[8].Version, rows[8].LastOffset, rows[8].Turns, rows[8].CloseReason =
		record.ScopeConversation, 3, 1200, 7, record.CloseGap
	rows[9].Scope, rows[9].Version, rows[9].LastOffset, rows[9].Turns = record.ScopeTrace, -1, -5, 1<<40

	b := &fakeBatch{conn: &fakeConn{}}
	// Chunks as a GroupCommit hands them over, one of them empty; labels shared across
	// the border of two chunks.
	chunks := [][]record.Score{rows[:2], rows[2:2], rows[2:11], rows[11:]}
	size, err := appendScoreColumns(b, chunks)
	if err != nil {
		t.Fatal(err)
	}
	if b.n != len(rows) {
		t.Fatalf("%d rows appended, want %d", b.n, len(rows))
	}
	var wantSize int64
	for i := range rows {
		want := scoreValues(&rows[i])
		if len(b.cols) != len(want) {
			t.Fatalf("%d columns appended, want %d", len(b.cols), len(want))
		}
		for c, v := range want {
			wantSize += valueSize(v)
			got := b.cols[c]
			if len(got) != len(rows) {
				t.Fatalf("column %s: %d values, want %d", scoreColumnNames[c], len(got), len(rows))
			}
			if !reflect.DeepEqual(got[i], v) {
				t.Errorf("row %d column %s: %#v, want %#v", i, scoreColumnNames[c], got[i], v)
			}
		}
	}
	if size != wantSize {
		t.Errorf("size %d, want %d (the sum of valueSize over scoreValues)", size, wantSize)
	}
}

var errAppend = errors.New("column type mismatch")

// appendFailConn is a fakeConn whose batches fail the append of column fail.
type appendFailConn struct {
	*fakeConn
	fail int
}

func (c *appendFailConn) PrepareBatch(context.Context, string, ...driver.PrepareBatchOption) (driver.Batch, error) {
	return &appendFailBatch{fakeBatch: fakeBatch{conn: c.fakeConn}, fail: c.fail}, nil
}

type appendFailBatch struct {
	fakeBatch
	fail int
}

func (b *appendFailBatch) Column(idx int) driver.BatchColumn {
	if idx == b.fail {
		return failingColumn{}
	}
	return b.fakeBatch.Column(idx)
}

type failingColumn struct{}

func (failingColumn) Append(any) error    { return errAppend }
func (failingColumn) AppendRow(any) error { return errAppend }

// TestInsertScoresAppendErrorIsPermanent: a value that the driver cannot convert to its
// column's type is a permanent data error that names the column, and nothing is sent.
func TestInsertScoresAppendErrorIsPermanent(t *testing.T) {
	for _, fail := range []int{0, 14, 15, 29} {
		conn := &fakeConn{}
		_, err := insertScores(context.Background(), &appendFailConn{fakeConn: conn, fail: fail}, "INSERT", [][]record.Score{testScores(3)})
		if sinks.PermanentClass(err) != ClassData {
			t.Fatalf("column %d fails: insertScores = %v, want a permanent %s error", fail, err, ClassData)
		}
		if !errors.Is(err, errAppend) || !strings.Contains(err.Error(), scoreColumnNames[fail]) {
			t.Errorf("column %d fails: insertScores = %v, want it to name %s and wrap the driver's error", fail, err, scoreColumnNames[fail])
		}
		if conn.rows != 0 {
			t.Errorf("column %d fails: %d rows sent", fail, conn.rows)
		}
	}
}
