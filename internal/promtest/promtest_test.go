package promtest

import (
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartStop(t *testing.T) {
	var pid int
	t.Run("running", func(t *testing.T) {
		s := Start(t, Config{Rules: "groups: []\n", Interval: 500 * time.Millisecond})
		pid = s.proc.Pid()
		resp, err := http.Get(s.URL + "/api/v1/status/config")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status/config: %s", resp.Status)
		}
		if err := s.Reload(t.Context()); err != nil {
			t.Errorf("Reload: %v", err)
		}
	})
	// The subtest's cleanup stopped the server and reaped it.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("prometheus pid %d still exists after cleanup (kill -0: %v)", pid, err)
	}
}

func TestMissingBinary(t *testing.T) {
	t.Setenv("PROMETHEUS_BIN", "/nonexistent/prometheus")
	_, err := Binary()
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y --no-install-recommends prometheus") {
		t.Errorf("Binary() = %v, want an error telling how to install prometheus", err)
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	err := writeConfig(dir, Config{Jobs: []Job{{Name: "a", Targets: []string{"127.0.0.1:1", "127.0.0.1:2"}, Labels: map[string]string{"z": "1", "service": "a"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := dur(1500*time.Millisecond), "1500ms"; got != want {
		t.Errorf("dur = %q, want %q", got, want)
	}
}
