//go:build raterd_no_collapse

package clickhouse

// scoresSortingKey breaks, on purpose, the collapse of replayed score rows: the sorting
// key ends with scored_at instead of the row's identity, so a record scored again after
// a crash (seconds later) is a row of its own that ReplacingMergeTree keeps beside the
// first, even in scores FINAL. Only the fault-injection suite's duplicate negative
// control builds with the raterd_no_collapse tag (faults/), to show that the suite
// catches such a bug.
const scoresSortingKey = "(evaluator, model, toStartOfHour(event_time), app, record_id, rubric_version, judge, scored_at)"
