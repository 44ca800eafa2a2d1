// Regression tests from the third code review of 2026-11-26.

package monitor_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/deploykit/deploy/monitor"
)

func rbObserve(t *testing.T, line string, since time.Time, pat ...string) float64 {
	var log bytes.Buffer
	s := &monitor.LogScan{Reader: &log}
	if len(pat) > 0 {
		s.Pattern = pat[0]
	}
	observeLog(t, s, "baseline")
	log.WriteString(line + "\n")
	rb := phase("rollback")
	rb.Since = since
	o, err := s.Observe(context.Background(), rb)
	if err != nil {
		t.Fatal(err)
	}
	return o.Metric(monitor.LogNewSignatures).Value
}

// pino / many JS loggers: "time" is epoch milliseconds.
func TestReview3PinoMillis(t *testing.T) {
	since := time.Date(2026, 3, 2, 11, 5, 30, 0, time.UTC)
	before := since.Add(-30 * time.Second)
	line := fmt.Sprintf(`{"level":50,"time":%d,"msg":"error: disk full"}`, before.UnixMilli())
	if v := rbObserve(t, line, since, `"level":(50|60)`); v != 0 {
		t.Errorf("pino line 30 s before Since counts as new after it (ms read as s)")
	}
}

// A service logging zone-less UTC stamps, verified by a runner whose local
// zone is east of UTC: an error 5 minutes AFTER the rollback is dated before it.
func TestReview3LocalDefaultHidesNewErrors(t *testing.T) {
	since := time.Date(2026, 3, 2, 11, 5, 30, 0, time.UTC)
	line := "2026-03-02 11:10:30,000 ERROR [main] new failure after rollback"
	if v := rbObserve(t, line, since); v == 0 {
		t.Errorf("error written 5 min after the rollback (UTC stamp) not counted with Location=nil (time.Local=%v)", time.Local)
	}
}
