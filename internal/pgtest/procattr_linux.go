package pgtest

import "syscall"

// sysProcAttr runs the server as cred (nil: the current user) and makes the
// kernel kill it when the test process dies, so that a crashed or killed
// test leaves no server behind; its backends exit on their own once the
// postmaster is gone.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
}
