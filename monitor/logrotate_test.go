package monitor_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/deploykit/deploy/monitor"
)

// copytruncate rotation followed by growth past the old offset before the
// next observation hid the new errors (issue 12).
func TestLogScanCopytruncateThenGrowth(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	s := &monitor.LogScan{Path: path}
	defer s.Close()
	if err := os.WriteFile(path, []byte("INFO start\nERROR known 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	observeLog(t, s, "baseline")

	// logrotate copytruncate: copy, then truncate in place; the service
	// keeps writing to the same inode and writes more than before.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("ERROR hidden after copytruncate\n"+strings.Repeat("INFO padding past the old offset\n", 3)), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c, n := observeLog(t, s, "bake")
	if n != 1 || !strings.Contains(c.Detail, "ERROR hidden after copytruncate") {
		t.Errorf("after copytruncate and growth: %v new, detail %q", n, c.Detail)
	}
}

// A LogScan closed at the end of a release holds no file, and opens it
// again where it left off if observed again.
func TestLogScanCloseReleasesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(path, []byte("ERROR known 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &monitor.LogScan{Path: path}
	observeLog(t, s, "baseline")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("ERROR new one\n")
	f.Close()
	if _, n := observeLog(t, s, "bake"); n != 1 {
		t.Errorf("after Close and append: %v new, want 1", n)
	}
	s.Close()
}

// userinfo finds URL credentials as the redactor reads URLs: a URL cannot
// hold a raw backtick (RFC 3986), so one ends it, and an empty user part
// ("scheme://@host") holds no credential.
var userinfo = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s"'<>@` + "`" + `]+@`)

// FuzzLogLines feeds any log text to a LogScan in every phase: time stamps
// and signatures never panic, and the check's detail is printable.
func FuzzLogLines(f *testing.F) {
	for _, s := range []string{
		"2026-03-02T11:05:00Z ERROR boom id=42\n",
		`{"level":"error","ts":1.7e9,"msg":"x"}` + "\n",
		`{"level":"error","time":"2026-03-02 11:05:00,123+99:99"}` + "\n",
		"[2026/03/02 11:05:00.123456] panic: nil map\n",
		"time=\"9999-99-99T99:99:99.9999999999Z\" level=error\n",
		`{"level":"error","@timestamp":1e308}` + "\n",
		"ERROR GET https://u:pw@h/x?token=t\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var buf bytes.Buffer
		s := &monitor.LogScan{Reader: &buf}
		ctx := context.Background()
		if _, err := s.Observe(ctx, phase("baseline")); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"bake", "rollback"} {
			buf.Write(data)
			o, err := s.Observe(ctx, phase(p))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range o.Checks {
				if userinfo.MatchString(c.Detail) {
					t.Fatalf("detail shows credentials: %q", c.Detail)
				}
			}
		}
		_ = monitor.Signature(string(data))
	})
}
