//go:build !unix

package strategy

import (
	"os"
	"os/exec"
)

// ownGroup does nothing where there are no process groups: only the
// command's own process is killed, not what it started.
func ownGroup(cmd *exec.Cmd) {}

// killGroup kills the process itself where there are no process groups.
func killGroup(p *os.Process, hard bool) { _ = p.Kill() }

func signalOf(err error) string { return "" }
