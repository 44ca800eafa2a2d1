package monitor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy/monitor"
)

func phase(p string) monitor.Target {
	t := target
	t.Phase = p
	return t
}

func observeLog(t *testing.T, s *monitor.LogScan, p string) (monitor.Check, float64) {
	t.Helper()
	o, err := s.Observe(context.Background(), phase(p))
	if err != nil {
		t.Fatalf("Observe(%s): %v", p, err)
	}
	return check(t, o), o.Metric(monitor.LogNewSignatures).Value
}

func TestLogScanNewSignatures(t *testing.T) {
	var log bytes.Buffer
	s := &monitor.LogScan{Reader: &log, Critical: true}
	defer s.Close()

	log.WriteString(`2026-03-02T10:00:01Z ERROR payment failed for order 1234: card declined
2026-03-02T10:00:02Z INFO request served in 12ms
time=2026-03-02T10:00:03Z level=error msg="cache miss storm" key="user:42"
`)
	c, n := observeLog(t, s, "baseline")
	if !c.OK || n != 0 || c.Detail != "baseline: 2 known error signatures" {
		t.Errorf("baseline: check %+v, %s = %v", c, monitor.LogNewSignatures, n)
	}

	// The same errors with other numbers and values are not new.
	log.WriteString(`2026-03-02T11:00:01Z ERROR payment failed for order 98765: card declined
time=2026-03-02T11:00:03Z level=error msg="cache miss storm" key="user:7"
2026-03-02T11:00:04Z WARN slow query
`)
	c, n = observeLog(t, s, "bake")
	if !c.OK || n != 0 || c.Name != "no new errors in logs" {
		t.Errorf("bake, known errors only: check %+v, %s = %v, want OK and 0", c, monitor.LogNewSignatures, n)
	}

	// A new error after the deploy fails the check.
	log.WriteString(`2026-03-02T11:05:00Z ERROR nil map write in handler /api/orders/17 (request 3f2a9c1e-7b4d-4e1a-9c3b-2d5e6f7a8b9c)
2026-03-02T11:05:01Z ERROR nil map write in handler /api/orders/18 (request 4f2a9c1e-7b4d-4e1a-9c3b-2d5e6f7a8b9c)
panic: runtime error: index out of range [5] with length 3
`)
	c, n = observeLog(t, s, "bake")
	if c.OK || !c.Critical || n != 2 {
		t.Fatalf("bake, new errors: check %+v, %s = %v, want failed, critical, 2", c, monitor.LogNewSignatures, n)
	}
	want := `2 new error signatures since the baseline:
- <ts> ERROR nil map write in handler /api/orders/<n> (request <uuid>) (2×, e.g. "2026-03-02T11:05:00Z ERROR nil map write in handler /api/orders/17 (request 3f2a9c1e-7b4d-4e1a-9c3b-2d5e6f7a8b9c)")
- panic: runtime error: index out of range [<n>] with length <n> (1×, e.g. "panic: runtime error: index out of range [5] with length 3")`
	if c.Detail != want {
		t.Errorf("detail:\n%s\nwant:\n%s", c.Detail, want)
	}

	// New signatures stay new in later observations.
	c, n = observeLog(t, s, "verify")
	if c.OK || n != 2 {
		t.Errorf("verify: check %+v, %s = %v, want still failing with 2", c, monitor.LogNewSignatures, n)
	}
}

func TestLogScanNeedsBaseline(t *testing.T) {
	s := &monitor.LogScan{Reader: strings.NewReader("ERROR boom\n")}
	_, err := s.Observe(context.Background(), phase("bake"))
	if err == nil || !strings.Contains(err.Error(), `no baseline yet`) {
		t.Fatalf("Observe before baseline = %v, want a no-baseline error", err)
	}

	// Known seeds the baseline, as after a restart.
	first := &monitor.LogScan{Reader: strings.NewReader("ERROR boom 1\n")}
	observeLog(t, first, "baseline")
	restarted := &monitor.LogScan{Reader: strings.NewReader("ERROR boom 2\nERROR bang\n"), Known: first.Baseline(), MaxDetail: 1}
	c, n := observeLog(t, restarted, "bake")
	if n != 1 || !strings.Contains(c.Detail, "- ERROR bang (1×") {
		t.Errorf("after restart: check %+v, %v new, want only ERROR bang", c, n)
	}
}

func TestLogScanPattern(t *testing.T) {
	var log bytes.Buffer
	s := &monitor.LogScan{Reader: &log, Pattern: `^E\d{4}`}
	observeLog(t, s, "baseline")
	log.WriteString("E0412 11:05:00.123 handler.go:42] db timeout\nERROR not matched by this pattern\n")
	c, n := observeLog(t, s, "bake")
	if n != 1 || !strings.Contains(c.Detail, "- E<n> <ts> handler.go:<n>] db timeout") {
		t.Errorf("check %+v, %v new", c, n)
	}
}

func TestLogScanValidate(t *testing.T) {
	tests := []struct {
		s    *monitor.LogScan
		want string
	}{
		{&monitor.LogScan{}, `monitor: LogScan.Path "" is empty and LogScan.Reader is nil: set one`},
		{&monitor.LogScan{Path: "a.log", Reader: strings.NewReader("")}, `monitor: LogScan.Path "a.log" and LogScan.Reader are both set: set one`},
		{&monitor.LogScan{Path: "a.log", Pattern: "(["}, `monitor: LogScan.Pattern "(["`},
		{&monitor.LogScan{Path: "a.log", MaxDetail: -1}, `monitor: LogScan.MaxDetail -1 is negative`},
	}
	for _, tt := range tests {
		if err := tt.s.Validate(); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Validate() = %v, want %q", err, tt.want)
		}
	}
	if err := (&monitor.LogScan{Path: "a.log"}).Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
}

func TestSignature(t *testing.T) {
	tests := []struct{ line, want string }{
		{"ERROR payment failed for order 1234", "ERROR payment failed for order <n>"},
		{"2026-03-02T10:00:01.123456Z ERROR x", "<ts> ERROR x"},
		{"2026-03-02 10:00:01,123 ERROR x", "<ts> ERROR x"},
		{"2026/03/02 10:00:01 ERROR x", "<ts> ERROR x"},
		{"Mar  2 10:00:01 host app[311]: ERROR x", "<ts> host app[<n>]: ERROR x"},
		{"ERROR user 3f2a9c1e-7b4d-4e1a-9c3b-2d5e6f7a8b9c not found", "ERROR user <uuid> not found"},
		{"ERROR dial tcp 10.0.12.7:5432: connection refused", "ERROR dial tcp <ip>: connection refused"},
		{"ERROR dial tcp [2001:db8::1]:443: timeout", "ERROR dial tcp <ip>: timeout"},
		{"ERROR object deadbeef42 at 0x7ffd5e8c missing", "ERROR object <hex> at <hex> missing"},
		{"ERROR commit a1b2c3d4e5f6 is not a facade", "ERROR commit <hex> is not a facade"},
		{`ERROR open "/tmp/upload-991.tmp": no such file`, `ERROR open "*": no such file`},
		{`ERROR user 'alice' denied`, `ERROR user "*" denied`},
		{"ERROR   took 1.5s\tafter   3 retries  ", "ERROR took <n>s after <n> retries"},
		{`level=error msg="payment 77 failed" user="bob" took=3ms`, `level=error msg="payment <n> failed" user="*" took=<n>ms`},
		{`{"level":"error","ts":"2026-03-02T10:00:01Z","msg":"timeout after 30s","trace_id":"abc123def456789"}`,
			`{"level":"error","ts":"*","msg":"timeout after <n>s","trace_id":"*"}`},
		{`{"severity": "ERROR", "error.message": "connect 10.1.1.1:80 refused"}`, `{"severity": "ERROR", "error.message": "connect <ip> refused"}`},
		{"panic: runtime error: index out of range [5] with length 3", "panic: runtime error: index out of range [<n>] with length <n>"},
	}
	for _, tt := range tests {
		if got := monitor.Signature(tt.line); got != tt.want {
			t.Errorf("Signature(%q)\n got %q\nwant %q", tt.line, got, tt.want)
		}
	}
}

func TestDefaultErrorPattern(t *testing.T) {
	s := &monitor.LogScan{Reader: strings.NewReader(strings.Join([]string{
		"2026-03-02 ERROR a",
		"FATAL b",
		"panic: c",
		"level=error msg=d",
		"lvl=fatal msg=e",
		`{"level":"error","msg":"f"}`,
		`{"severity":"CRITICAL","msg":"g"}`,
		"INFO 0 errors",
		"level=info msg=\"recovered from error\"",
		"DEBUG errorHandler installed",
	}, "\n"))}
	observeLog(t, s, "baseline")
	if got := len(s.Baseline()); got != 7 {
		t.Errorf("default pattern picked %d lines, want 7: %q", got, s.Baseline())
	}
}

func TestLogScanTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	write := func(flag int, text string) {
		t.Helper()
		f, err := os.OpenFile(path, flag|os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(text); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s := &monitor.LogScan{Path: path}
	defer s.Close()

	write(os.O_TRUNC, "ERROR old one 1\nINFO fine\n")
	observeLog(t, s, "baseline")
	if got := s.Baseline(); len(got) != 1 || got[0] != "ERROR old one <n>" {
		t.Fatalf("baseline = %q", got)
	}

	// Append: only the new lines are read; a line without its newline waits.
	write(os.O_APPEND, "ERROR old one 2\nERROR new 1\nERROR half")
	if c, n := observeLog(t, s, "bake"); n != 1 || !strings.Contains(c.Detail, "- ERROR new <n> (1×") {
		t.Errorf("after append: %v new, detail %q", n, c.Detail)
	}
	write(os.O_APPEND, " written 7\n")
	if c, n := observeLog(t, s, "bake"); n != 2 || !strings.Contains(c.Detail, "- ERROR half written <n> (1×") {
		t.Errorf("after the rest of a line: %v new, detail %q", n, c.Detail)
	}

	// Truncation: reading starts again at the top.
	write(os.O_TRUNC, "ERROR after truncate\n")
	if c, n := observeLog(t, s, "bake"); n != 3 || !strings.Contains(c.Detail, "- ERROR after truncate (1×") {
		t.Errorf("after truncation: %v new, detail %q", n, c.Detail)
	}

	// Rotation: the tail of the old file is read, then the new file.
	write(os.O_APPEND, "ERROR last words\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(os.O_APPEND, "ERROR first of the new file\n")
	c, n := observeLog(t, s, "bake")
	if n != 5 || !strings.Contains(c.Detail, "- ERROR last words (1×") || !strings.Contains(c.Detail, "- ERROR first of the new file (1×") {
		t.Errorf("after rotation: %v new, detail %q", n, c.Detail)
	}
	write(os.O_APPEND, "ERROR new 3\n")
	if c, n := observeLog(t, s, "bake"); n != 5 || !strings.Contains(c.Detail, "- ERROR new <n> (2×") {
		t.Errorf("after append to the new file: %v new, detail %q", n, c.Detail)
	}
}

func TestLogScanMissingFile(t *testing.T) {
	s := &monitor.LogScan{Path: filepath.Join(t.TempDir(), "nope.log")}
	if _, err := s.Observe(context.Background(), phase("baseline")); err == nil || !strings.Contains(err.Error(), "nope.log") {
		t.Errorf("Observe = %v, want an error naming the file", err)
	}
}

var sink string

func BenchmarkSignature(b *testing.B) {
	lines := []string{
		`2026-03-02T11:05:00Z ERROR nil map write in handler /api/orders/17 (request 3f2a9c1e-7b4d-4e1a-9c3b-2d5e6f7a8b9c)`,
		`time=2026-03-02T10:00:03Z level=error msg="payment 77 failed" user="bob" addr=10.0.12.7:5432 took=3ms`,
		`{"level":"error","ts":"2026-03-02T10:00:01Z","msg":"timeout after 30s","trace_id":"abc123def456789"}`,
	}
	var n int
	for _, l := range lines {
		n += len(l)
	}
	b.SetBytes(int64(n / len(lines)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sink = monitor.Signature(lines[i%len(lines)])
	}
}

// BenchmarkLogScan scans a log of 10,000 lines, 1 % of them errors, per op.
func BenchmarkLogScan(b *testing.B) {
	var log bytes.Buffer
	for i := range 10000 {
		if i%100 == 0 {
			fmt.Fprintf(&log, "2026-03-02T10:00:%02dZ ERROR payment %d failed for user %d: card declined\n", i%60, i, i*7)
		} else {
			fmt.Fprintf(&log, "2026-03-02T10:00:%02dZ INFO request %d served in %dms path=/api/orders/%d\n", i%60, i, i%300, i)
		}
	}
	data := log.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		s := &monitor.LogScan{Reader: bytes.NewReader(data)}
		if _, err := s.Observe(ctx, phase("baseline")); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLogScanAfterRollback: in the rollback phase the check asks whether new
// errors are still appearing since the rollback (Target.Since), not whether
// the release ever logged one: lines stamped before Since are the release's
// own and do not fail the rollback's verification; a new signature written
// after it, or a line without a time stamp, does.
func TestLogScanAfterRollback(t *testing.T) {
	var log bytes.Buffer
	s := &monitor.LogScan{Reader: &log}
	defer s.Close()
	log.WriteString("2026-03-02T10:00:01Z ERROR payment failed for order 1234: card declined\n")
	observeLog(t, s, "baseline")
	log.WriteString("2026-03-02T11:05:00Z ERROR nil map write in handler /api/orders/17\n")
	if c, _ := observeLog(t, s, "bake"); c.OK {
		t.Fatalf("bake: check %+v, want failed", c)
	}

	rolledBack := time.Date(2026, 3, 2, 11, 5, 30, 0, time.UTC)
	rb := phase("rollback")
	rb.Since = rolledBack
	observe := func() (monitor.Check, float64) {
		t.Helper()
		o, err := s.Observe(context.Background(), rb)
		if err != nil {
			t.Fatal(err)
		}
		return check(t, o), o.Metric(monitor.LogNewSignatures).Value
	}
	// Written while the rollback ran (before Since, in several time formats),
	// plus a known error after it: the rollback is healthy.
	log.WriteString(`2026-03-02T11:05:10Z ERROR nil map write in handler /api/orders/18
2026-03-02 12:05:20.123+01:00 ERROR nil map write in handler /api/orders/19
time=2026-03-02T11:05:25.5Z level=ERROR msg="nil map write" path=/api/orders/20
2026-03-02T11:05:40Z ERROR payment failed for order 99: card declined
`)
	c, n := observe()
	want := monitor.Check{Name: "no new errors in logs", OK: true, Kind: monitor.KindLogs,
		Detail: "no new error signature since 2026-03-02T11:05:30Z (3 lines of new signatures before it, 1 known error line after it)"}
	if diff := cmp.Diff(want, c); diff != "" || n != 0 {
		t.Errorf("after rollback, old lines only (-want +got):\n%s%s = %v", diff, monitor.LogNewSignatures, n)
	}
	// A new signature still appearing after the rollback fails it; so does a
	// line whose time cannot be read.
	log.WriteString(`2026-03-02T11:05:45Z ERROR nil map write in handler /api/orders/21
ERROR disk full on /var/lib/app
`)
	c, n = observe()
	if c.OK || n != 2 || !strings.HasPrefix(c.Detail, "2 new error signatures since 2026-03-02T11:05:30Z:\n- ") {
		t.Errorf("after rollback, new lines: check %+v, %s = %v; want failed with 2", c, monitor.LogNewSignatures, n)
	}
}

// TestRateIsCounted: Rate marks its samples as the events of a rate, which
// survives JSON; Value does not.
func TestRateIsCounted(t *testing.T) {
	r := monitor.Rate(0.05, 20)
	if !r.Counted || r.Value != 0.05 || r.Samples != 20 || monitor.Value(0.05, 20).Counted || monitor.Rate(0.5, 0).Counted {
		t.Errorf("Rate(0.05, 20) = %+v; Value counted %v; no events counted %v", r, monitor.Value(0.05, 20).Counted, monitor.Rate(0.5, 0).Counted)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back monitor.Metric
	if err := json.Unmarshal(b, &back); err != nil || !back.Counted {
		t.Errorf("round trip of %s: %+v, %v", b, back, err)
	}
}

// TestLogScanRollbackTimeStamps: in the rollback phase only a time stamp at
// the start of a line dates it (not a date quoted in the message); a stamp
// without a zone is read in Location, or, with none, does not date the line.
func TestLogScanRollbackTimeStamps(t *testing.T) {
	since := time.Date(2026, 3, 2, 11, 5, 30, 0, time.UTC)
	berlin := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		name string
		loc  *time.Location
		line string
		new  bool // counts as new since the rollback
	}{
		{"stamp after", nil, "2026-03-02T11:06:00Z ERROR disk full", true},
		{"stamp before", nil, "2026-03-02T11:05:00Z ERROR disk full", false},
		{"logfmt before", nil, `time=2026-03-02T11:05:00.5Z level=ERROR msg="disk full"`, false},
		{"json before", nil, `{"time":"2026-03-02T11:05:00Z","level":"ERROR","msg":"disk full"}`, false},
		{"date in the message", nil, "ERROR booking for 2026-03-01T00:00:00Z failed", true},
		{"syslog-style prefix, date in the message", nil, "app[42]: ERROR booking for 2026-03-01T00:00:00Z failed", true},
		{"no zone, UTC, before", time.UTC, "2026-03-02 11:05:00 ERROR disk full", false},
		{"no zone, UTC, after", time.UTC, "2026-03-02 11:06:00 ERROR disk full", true},
		// Without a Location the later of the UTC and local readings wins:
		// a stamp after Since in UTC is after it, wherever the runner is.
		{"no zone, no Location, after in UTC", nil, "2026-03-02 11:06:00 ERROR disk full", true},
		{"JSON, epoch milliseconds (pino), before", nil, `{"level":50,"time":1772449500500,"msg":"ERROR disk full"}`, false},
		{"JSON, time not first, after", nil, `{"level":"error","msg":"disk full","time":"2026-03-02T11:06:00Z"}`, true},
		{"JSON, epoch seconds, before", nil, `{"level":"error","ts":1772449500.5,"msg":"disk full"}`, false},
		{"no zone, Berlin: 12:05 there is 11:05 UTC, before", berlin, "2026-03-02 12:05:00 ERROR disk full", false},
		{"no zone, Berlin: 12:10 there is 11:10 UTC, after", berlin, "2026-03-02 12:10:00 ERROR disk full", true},
	} {
		var log bytes.Buffer
		s := &monitor.LogScan{Reader: &log, Location: tc.loc}
		observeLog(t, s, "baseline")
		log.WriteString(tc.line + "\n")
		rb := phase("rollback")
		rb.Since = since
		o, err := s.Observe(context.Background(), rb)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.Metric(monitor.LogNewSignatures).Value == 1; got != tc.new {
			t.Errorf("%s: new since the rollback = %v, want %v (%+v)", tc.name, got, tc.new, check(t, o))
		}
		s.Close()
	}
}

// TestLogScanRestore: a LogScan in a process that resumes a release gets the
// baseline back (merged with Known), and in the rollback phase its first
// read of the file, which is history, does not count lines it cannot date.
func TestLogScanRestore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	os.WriteFile(path, []byte("ERROR payment declined for order 1\n"), 0o600)
	first := &monitor.LogScan{Path: path}
	observeLog(t, first, "baseline")
	saved, err := first.State()
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	// During the bake, before the crash: a new error without a time stamp.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("panic: runtime error: index out of range\n")
	f.Close()

	second := &monitor.LogScan{Path: path, Known: []string{"ERROR cache cold"}}
	defer second.Close()
	if err := second.Restore(saved); err != nil {
		t.Fatal(err)
	}
	rb := phase("rollback")
	rb.Since = time.Now()
	c, n := func() (monitor.Check, float64) {
		o, err := second.Observe(context.Background(), rb)
		if err != nil {
			t.Fatal(err)
		}
		return check(t, o), o.Metric(monitor.LogNewSignatures).Value
	}()
	if !c.OK || n != 0 {
		t.Errorf("first rollback read after a restore: %+v, %v; want the old panic not counted", c, n)
	}
	if got := second.Baseline(); !slices.Contains(got, "ERROR payment declined for order <n>") || !slices.Contains(got, "ERROR cache cold") {
		t.Errorf("baseline %v, want the restored and the Known signatures", got)
	}
	// A new undated error after that read counts.
	f, _ = os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("panic: runtime error: nil map\n")
	f.Close()
	o, err := second.Observe(context.Background(), rb)
	if err != nil {
		t.Fatal(err)
	}
	if n := o.Metric(monitor.LogNewSignatures).Value; n != 1 {
		t.Errorf("a new panic after the rollback: %v new signatures, want 1", n)
	}
}
