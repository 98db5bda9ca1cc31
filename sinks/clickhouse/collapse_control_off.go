//go:build !raterd_no_collapse

package clickhouse

// scoresEngine is the scores table's engine in every real build: a replay collapses,
// keeping the latest scored_at. See collapse_control_on.go.
const scoresEngine = "ReplacingMergeTree(scored_at)"
