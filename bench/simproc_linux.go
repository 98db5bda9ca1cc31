package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent asks the kernel to kill the simulator when the thread that started it
// exits: a benchmark killed with SIGKILL leaves no simulator behind (Go seldom ends a
// thread, so in practice this is the benchmark's death; stop() is the normal end).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
