//go:build !raterd_negative_control

package consumer

// commitBeforeWrite is false in every real build; see negative_control_on.go.
const commitBeforeWrite = false
