//go:build !unix

package monitor

import "os/exec"

// killGroup kills the process alone where there are no process groups.
func killGroup(cmd *exec.Cmd) {}
