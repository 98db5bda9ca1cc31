//go:build raterd_no_collapse

package clickhouse

// scoresEngine drops, on purpose, the collapse of replayed score rows: the scores table
// is a plain MergeTree, so a record scored again after a crash keeps both rows even in
// scores FINAL. Only the fault-injection suite's duplicate negative control builds with
// the raterd_no_collapse tag (faults/), to show that the suite catches such a bug.
const scoresEngine = "MergeTree"
