//go:build !raterd_drop_dead_letters

package consumer

// dropDeadLetters is false in every real build; see dead_letter_control_on.go.
const dropDeadLetters = false
