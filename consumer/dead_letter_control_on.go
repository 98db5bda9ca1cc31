//go:build raterd_drop_dead_letters

package consumer

// dropDeadLetters breaks raterd's promise that bad input is dead-lettered, on purpose:
// a batch's dead letters are discarded and their offsets marked done as if they had been
// written. Only the fault-injection suite's dead-letter negative control builds with the
// raterd_drop_dead_letters tag (faults/), to show that the suite catches such a bug.
const dropDeadLetters = true
