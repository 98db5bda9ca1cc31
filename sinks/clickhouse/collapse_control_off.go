//go:build !raterd_no_collapse

package clickhouse

// scoresSortingKey is the scores table's sorting key in every real build: it ends with
// exactly the row's identity, so a replay collapses. See collapse_control_on.go.
const scoresSortingKey = "(evaluator, model, toStartOfHour(event_time), app, record_id, rubric_version, judge)"
