//go:build !raterd_no_replay_dedup

package kafka

// replayDedupOff is false in every real build; see dlqdedup_control_on.go.
const replayDedupOff = false
