//go:build raterd_negative_control

package consumer

// commitBeforeWrite breaks raterd's no-loss guarantee on purpose: offsets are marked
// done when a record is fetched, before its scores are written, so a crash loses the
// records in flight. Only the fault-injection suite's negative control builds with the
// raterd_negative_control tag (faults/), to show that the suite catches such a bug.
const commitBeforeWrite = true
