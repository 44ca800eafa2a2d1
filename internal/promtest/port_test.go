package promtest

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Two test runs on one machine picked the same port; the second took the
// first one's Prometheus for its own (TestMonitoringActiveRealPrometheus
// failed). A server on our port that is not ours is never ready.
func TestStartRefusesAnotherServersPort(t *testing.T) {
	a := Start(t, Config{Rules: "groups: []\n", Interval: time.Second})
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := writeConfig(dir, Config{Rules: "groups: []\n", Interval: time.Second}); err != nil {
		t.Fatal(err)
	}
	addr := a.URL[len("http://"):]
	if s, err := startOn(bin, dir, addr); err == nil {
		s.proc.Stop()
		t.Fatalf("started on %s, which another Prometheus serves", addr)
	}
}

func TestReserveAddrSkipsLockedPorts(t *testing.T) {
	var held []func()
	defer func() {
		for _, r := range held {
			r()
		}
	}()
	seen := map[string]bool{}
	for range 20 {
		addr, release, err := reserveAddr()
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, release)
		if seen[addr] {
			t.Fatalf("%s reserved twice", addr)
		}
		seen[addr] = true
		_, port, _ := net.SplitHostPort(addr)
		lock := filepath.Join(os.TempDir(), "deploykit-promtest-ports", port+".lock")
		if _, err := lockFile(lock); err != errLocked {
			t.Errorf("port %s: lock taken again: %v", port, err)
		}
		if _, err := strconv.Atoi(port); err != nil {
			t.Fatal(err)
		}
	}
}
