//go:build raterd_no_replay_dedup

package kafka

// replayDedupOff switches off, on purpose, a replay's deduplication of dead letters by
// source message (replayDedup.apply): every dead letter of a source message is replayed.
// Only the negative control of the deduplication tests builds with the
// raterd_no_replay_dedup tag, to show that they catch the duplicates:
//
//	go test -tags raterd_no_replay_dedup -run 'Dedup|Duplicate' ./sinks/kafka ./cmd/raterd
//
// must fail.
const replayDedupOff = true
