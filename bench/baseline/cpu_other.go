//go:build !unix

package baseline

// processCPU reports no CPU time where getrusage is not available: Result.CPU stays zero.
func processCPU() CPUTime { return CPUTime{} }
