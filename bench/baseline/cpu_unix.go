//go:build unix

package baseline

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time the whole process has used so far (getrusage
// RUSAGE_SELF); zero if the call fails, which it does not for RUSAGE_SELF.
func processCPU() CPUTime {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return CPUTime{}
	}
	return CPUTime{
		User:   time.Duration(ru.Utime.Nano()),
		System: time.Duration(ru.Stime.Nano()),
	}
}
