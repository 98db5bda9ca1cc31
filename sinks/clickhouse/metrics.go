package clickhouse

import (
	"context"
	"raterd/internal/telemetry"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// insertMetrics are a writer's OTel instruments, every measurement carrying the table
// it writes (scores, dead_letters):
//
//   - raterd.clickhouse.insert.rows: rows in inserts ClickHouse acknowledged;
//   - raterd.clickhouse.inserts: inserts ClickHouse acknowledged;
//   - raterd.clickhouse.insert.bytes: approximate uncompressed size of those rows (strings
//     and arrays of strings at their length, numbers and times at their column width);
//   - raterd.clickhouse.insert.errors: failed insert attempts, with final=true when the
//     error went back to the caller (the attempts were spent or its context ended);
//   - raterd.clickhouse.insert.duration: time of one insert attempt, by result (ok, error).
type insertMetrics struct {
	rows, inserts, bytes, errors metric.Int64Counter
	duration                     metric.Float64Histogram

	table, ok, failed, retried, final metric.MeasurementOption
}

func newInsertMetrics(mp metric.MeterProvider, table string) *insertMetrics {
	m := &insertMetrics{}
	attrs := func(kv ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(append(kv, attribute.String("table", table))...))
	}
	m.table = attrs()
	m.ok, m.failed = attrs(attribute.String("result", "ok")), attrs(attribute.String("result", "error"))
	m.retried, m.final = attrs(attribute.Bool("final", false)), attrs(attribute.Bool("final", true))

	in := telemetry.NewInstruments(mp, "raterd/sinks/clickhouse")
	m.rows = in.Counter("raterd.clickhouse.insert.rows", "{row}", "rows in inserts ClickHouse acknowledged, by table")
	m.inserts = in.Counter("raterd.clickhouse.inserts", "{insert}", "inserts ClickHouse acknowledged, by table")
	m.bytes = in.Counter("raterd.clickhouse.insert.bytes", "By", "approximate uncompressed size of the acknowledged rows, by table")
	m.errors = in.Counter("raterd.clickhouse.insert.errors", "{attempt}",
		"failed insert attempts, by table and final (true: the error went back to the pipeline)")
	m.duration = in.Histogram("raterd.clickhouse.insert.duration", "s",
		"time of one insert attempt, by table and result (ok, error)", telemetry.IOSeconds()...)
	if err := in.Err(); err != nil {
		otel.Handle(err)
	}
	return m
}

// attempt records one insert attempt of n rows of about size bytes that took d; final
// says whether a failure goes back to the caller.
func (m *insertMetrics) attempt(ctx context.Context, n int, size int64, d time.Duration, err error, final bool) {
	if err != nil {
		m.duration.Record(ctx, d.Seconds(), m.failed)
		if final {
			m.errors.Add(ctx, 1, m.final)
		} else {
			m.errors.Add(ctx, 1, m.retried)
		}
		return
	}
	m.duration.Record(ctx, d.Seconds(), m.ok)
	m.inserts.Add(ctx, 1, m.table)
	m.rows.Add(ctx, int64(n), m.table)
	m.bytes.Add(ctx, size, m.table)
}

// valueSize is the approximate uncompressed size of one inserted value.
func valueSize(v any) int64 {
	switch x := v.(type) {
	case string:
		return int64(len(x))
	case []byte:
		return int64(len(x))
	case []string:
		var n int64
		for _, s := range x {
			n += int64(len(s))
		}
		return n
	case uint8:
		return 1
	case uint16:
		return 2
	case uint32, float32:
		return 4
	case uint64, int64, float64:
		return 8
	case time.Time:
		return 4 // DateTime
	}
	return 0
}
