//go:build rcore_merged

package htmlreport

// The parts of the ClickHouse source that set fields rcore adds to Options and Row. Until
// rcore's work is merged, contract_stub.go stands in for them; at the merge, delete
// contract_stub.go and the build constraint above.

import "time"

// apply sets the comparison, clock and redaction of s on o.
func (s Settings) apply(o Options) Options {
	o.ModelA, o.ModelB, o.Now, o.Redact = s.ModelA, s.ModelB, s.Now, s.Redact
	return o
}

// worstRow builds a worst-rows entry.
func worstRow(w worst) Row {
	return Row{EventTime: w.eventTime, Evaluator: w.evaluator, Model: w.model, App: w.app, RecordID: w.recordID,
		Judge: w.judge, Label: w.label, Explanation: w.explanation, Score: w.score}
}

// withCellWidth tells the aggregator the width the cells were queried with, the finest
// bucket the page may draw.
func withCellWidth(o Options, width time.Duration) Options {
	o.MinBucket = width
	return o
}

// optionsNow returns the options' clock, zero when unset.
func optionsNow(o Options) time.Time { return o.Now }
