package proctest

import "syscall"

// SysProcAttr runs a process as cred (nil: the current user) and makes the
// kernel kill it when the test process dies, so that a crashed or killed
// test leaves no server behind.
func SysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
}
