package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"raterd/internal/telemetry"
	"raterd/record"
)

// fakeConn is a driver.Conn whose inserts succeed or fail with sendErr; every other method
// is unimplemented (the embedded nil interface panics).
type fakeConn struct {
	driver.Conn
	sendErr error
	rows    int
	batches []*fakeBatch // every batch prepared, in order
}

func (c *fakeConn) ServerVersion() (*driver.ServerVersion, error) {
	return nil, errors.New("no server")
}

func (c *fakeConn) PrepareBatch(context.Context, string, ...driver.PrepareBatchOption) (driver.Batch, error) {
	b := &fakeBatch{conn: c}
	c.batches = append(c.batches, b)
	return b, nil
}

// fakeBatch counts the rows appended row by row (Append) or column by column (Column,
// rows counted on the first column), and keeps every value appended column by column.
type fakeBatch struct {
	driver.Batch
	conn *fakeConn
	n    int
	cols map[int][]any
}

func (b *fakeBatch) Append(...any) error { b.n++; return nil }
func (b *fakeBatch) Column(idx int) driver.BatchColumn {
	if b.cols == nil {
		b.cols = map[int][]any{}
	}
	return &fakeColumn{b: b, idx: idx}
}

// fakeColumn appends to its fakeBatch's values of column idx.
type fakeColumn struct {
	b   *fakeBatch
	idx int
}

func (c *fakeColumn) Append(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		return fmt.Errorf("column %d: Append(%T), want a slice", c.idx, v)
	}
	for i := range rv.Len() {
		if err := c.AppendRow(rv.Index(i).Interface()); err != nil {
			return err
		}
	}
	return nil
}

func (c *fakeColumn) AppendRow(v any) error {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice {
		// A copy, as the driver copies: the writer may reuse the slice for the next row.
		v = reflect.AppendSlice(reflect.MakeSlice(rv.Type(), 0, rv.Len()), rv).Interface()
	}
	c.b.cols[c.idx] = append(c.b.cols[c.idx], v)
	if c.idx == 0 {
		c.b.n++
	}
	return nil
}

func (b *fakeBatch) Abort() error { return nil }
func (b *fakeBatch) Send() error {
	if b.conn.sendErr != nil {
		return b.conn.sendErr
	}
	b.conn.rows += b.n
	return nil
}

// sums collects every counter of the reader as name → attributes → value.
func sums(t *testing.T, reader *sdkmetric.ManualReader) map[string]map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	enc := attribute.DefaultEncoder()
	out := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if out[m.Name] == nil {
						out[m.Name] = map[string]int64{}
					}
					out[m.Name][p.Attributes.Encoded(enc)] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if out[m.Name] == nil {
						out[m.Name] = map[string]int64{}
					}
					out[m.Name][p.Attributes.Encoded(enc)] += int64(p.Count)
				}
			}
		}
	}
	return out
}

func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// TestWriterMetrics: acknowledged inserts count their rows, inserts and bytes; every
// failed attempt counts as an error, the last one as final.
func TestWriterMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	conn := &fakeConn{}
	cfg := Config{Database: "raterd", WriteTimeout: time.Second, InsertAttempts: 2}
	scores := NewScores(conn, cfg, telemetry.Settings{Logger: quiet.Logger, MeterProvider: mp})
	dead := NewDeadLetters(conn, cfg, telemetry.Settings{MeterProvider: mp})
	ctx := context.Background()

	if err := scores.WriteScores(ctx, testScores(5)); err != nil {
		t.Fatal(err)
	}
	if err := dead.WriteDeadLetters(ctx, []record.DeadLetter{{Reason: "invalid_json", Value: []byte("{")}}); err != nil {
		t.Fatal(err)
	}
	got := sums(t, reader)
	if v := got["raterd.clickhouse.insert.rows"]["table=scores"]; v != 5 {
		t.Errorf("insert.rows{table=scores} = %d, want 5 (%v)", v, got)
	}
	if v := got["raterd.clickhouse.insert.rows"]["table=dead_letters"]; v != 1 {
		t.Errorf("insert.rows{table=dead_letters} = %d, want 1", v)
	}
	if v := total(got["raterd.clickhouse.inserts"]); v != 2 {
		t.Errorf("inserts = %d, want 2", v)
	}
	if v := got["raterd.clickhouse.insert.bytes"]["table=scores"]; v <= 0 {
		t.Errorf("insert.bytes{table=scores} = %d, want > 0", v)
	}
	if v := total(got["raterd.clickhouse.insert.errors"]); v != 0 {
		t.Errorf("insert.errors = %d before any failure", v)
	}

	conn.sendErr = errors.New("connection reset")
	if err := scores.WriteScores(ctx, testScores(3)); err == nil {
		t.Fatal("WriteScores with a failing server = nil")
	}
	got = sums(t, reader)
	errs := got["raterd.clickhouse.insert.errors"]
	if errs["final=false,table=scores"] != 1 || errs["final=true,table=scores"] != 1 {
		t.Errorf("insert.errors = %v, want one retried and one final attempt of scores", errs)
	}
	if v := got["raterd.clickhouse.insert.rows"]["table=scores"]; v != 5 {
		t.Errorf("insert.rows{table=scores} = %d after a failed insert, want still 5", v)
	}
	if v := total(got["raterd.clickhouse.insert.duration"]); v != 4 {
		t.Errorf("insert.duration has %d attempts, want 4", v)
	}
	if conn.rows != 6 {
		t.Errorf("fake server took %d rows, want 6", conn.rows)
	}
}
