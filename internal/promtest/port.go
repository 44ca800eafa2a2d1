package promtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// reserveAddr picks a free loopback port and reserves it for this process
// until release is called: the kernel's choice of a free port is taken
// from under us as soon as we close the probing listener, so two test
// runs on one machine (two engineers, or go test running packages in
// parallel) could both pick it. A lock file per port, held with an
// exclusive advisory lock, makes every promtest user skip a port another
// one holds; Start also checks that the server answering on the port is
// its own (see Server.ready) and retries on another port otherwise.
func reserveAddr() (addr string, release func(), err error) {
	dir := filepath.Join(os.TempDir(), "deploykit-promtest-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return "", nil, err
	}
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		addr := l.Addr().String()
		port := l.Addr().(*net.TCPAddr).Port
		unlock, err := lockFile(filepath.Join(dir, strconv.Itoa(port)+".lock"))
		l.Close()
		if errors.Is(err, errLocked) {
			continue // another run holds this port: pick another
		}
		if err != nil {
			return "", nil, err
		}
		return addr, unlock, nil
	}
	return "", nil, fmt.Errorf("no loopback port could be reserved in %s", dir)
}

// errLocked: another process holds the lock.
var errLocked = errors.New("locked by another process")
