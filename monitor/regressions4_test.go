// Regression tests from the fourth code review of 2026-11-26.

package monitor_test

import (
	"bytes"
	"context"
	"github.com/deploykit/deploy/monitor"
	"log"
	"testing"
	"time"
)

// A Go service using the standard log package (local time, no zone) on a
// host west of UTC; the LogScan runs on the same host (Path is a local
// file). An error written a minute AFTER the rollback is read as UTC, i.e.
// five hours before Since, and discounted as the release's own past.
func TestReview4GoLogWestOfUTC(t *testing.T) {
	saved := time.Local
	time.Local = time.FixedZone("EST", -5*3600)
	defer func() { time.Local = saved }()
	var b bytes.Buffer
	log.New(&b, "", log.LstdFlags).Print("ERROR payment gateway: connection refused")
	line := b.String()[:b.Len()-1]
	since := time.Now().Add(-time.Minute)
	if v := rbObserve(t, line, since); v == 0 {
		t.Errorf("%q, written after the rollback (Since %v), not counted", line, since.UTC())
	}
}

// Same with a host east of UTC, in a process that resumed the release
// (cron Reconcile: the first read after Restore is history): the stamp,
// read as UTC, lies in the future, so the line is undated, so it is history.
func TestReview4GoLogEastOfUTCResumed(t *testing.T) {
	saved := time.Local
	time.Local = time.FixedZone("CET", 3600)
	defer func() { time.Local = saved }()
	since := time.Now().Add(-10 * time.Minute) // rollback finished 10 min ago
	var b bytes.Buffer
	log.New(&b, "", log.LstdFlags).Print("ERROR payment gateway: connection refused") // written now, after it
	s := &monitor.LogScan{Reader: &b}
	if err := s.Restore([]byte(`[]`)); err != nil { // cron Reconcile: a new process each time
		t.Fatal(err)
	}
	rb := phase("rollback")
	rb.Since = since
	o, err := s.Observe(context.Background(), rb)
	if err != nil {
		t.Fatal(err)
	}
	if v := o.Metric(monitor.LogNewSignatures).Value; v == 0 {
		t.Errorf("error written after the rollback not counted by a resumed scan (UTC+1 host, Go log stamps)")
	}
}
