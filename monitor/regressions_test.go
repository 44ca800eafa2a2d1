// Regression tests from the code review of 2026-11-26.

package monitor_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/deploykit/deploy/monitor"
)

// Lines the release itself wrote before the rollback finished (Since), in
// common formats, are counted as new since the rollback.
func TestReviewCommonFormatsBeforeSinceCount(t *testing.T) {
	since := time.Date(2026, 3, 2, 11, 5, 30, 0, time.UTC)
	for _, line := range []string{
		"2026/03/02 11:05:00 ERROR disk full",                                 // Go log.LstdFlags (no zone)
		"2026-03-02 11:05:00,123 ERROR [main] disk full",                      // Python logging / log4j default
		`time="2026-03-02T11:05:00Z" level=error msg="disk full"`,             // logrus text
		`{"level":"error","msg":"disk full","time":"2026-03-02T11:05:00Z"}`,   // logrus JSON (sorted keys)
		`{"level":"error","ts":"2026-03-02T11:05:00.000Z","msg":"disk full"}`, // zap with ISO8601 time
	} {
		var log bytes.Buffer
		s := &monitor.LogScan{Reader: &log, Location: time.UTC} // the service logs UTC, as in a container
		observeLog(t, s, "baseline")
		log.WriteString(line + "\n")
		rb := phase("rollback")
		rb.Since = since
		o, err := s.Observe(context.Background(), rb)
		if err != nil {
			t.Fatal(err)
		}
		if o.Metric(monitor.LogNewSignatures).Value != 0 {
			t.Errorf("%q, written 30 s before the rollback finished, counts as new after it", line)
		}
	}
}
