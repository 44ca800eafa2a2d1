//go:build !linux

package proctest

import "syscall"

// SysProcAttr runs a process as cred (nil: the current user). Only on Linux
// does the process also die with the test process.
func SysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}
