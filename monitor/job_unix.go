//go:build unix

package monitor

import (
	"os/exec"
	"syscall"
)

// killGroup makes cmd the leader of its own process group and kills the
// whole group when its context ends, so that the children of a shell script
// die with it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
