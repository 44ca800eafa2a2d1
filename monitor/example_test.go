package monitor_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/deploykit/deploy/monitor"
)

// A smoke probe against the release's own health endpoint: the URL follows
// the release, the body must report the new version, and the answer must
// come within 500ms. Three attempts ride out a restart.
func ExampleProbe() {
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"service":%q,"version":"v2"}`, r.URL.Path[1:len(r.URL.Path)-len("/health")])
	}))
	defer svc.Close()

	p := &monitor.Probe{
		Name:       "checkout health",
		URL:        svc.URL + "/{{.Service}}/health",
		Match:      `"version":"v2"`,
		MaxLatency: 500 * time.Millisecond,
		Attempts:   3,
		Critical:   true,
	}
	o, err := p.Observe(context.Background(), monitor.Target{Service: "checkout", Version: "v2"})
	if err != nil {
		fmt.Println("could not probe:", err)
		return
	}
	c := o.Checks[0]
	fmt.Println(c.Name, "ok:", c.OK, "critical:", c.Critical)
	fmt.Println(monitor.ProbeSuccess, o.Metric(monitor.ProbeSuccess).Value)
	// Output:
	// checkout health ok: true critical: true
	// probe_success 1
}

// A log scan: errors seen before the deploy are known; one that appears only
// after it fails the check.
func ExampleLogScan() {
	var log bytes.Buffer // stands for the service's log file (set Path to tail one)
	scan := &monitor.LogScan{Reader: &log}
	defer scan.Close()
	ctx := context.Background()

	io.WriteString(&log, "2026-03-02T10:00:01Z ERROR cache timeout after 120ms\n")
	scan.Observe(ctx, monitor.Target{Phase: "baseline"})

	io.WriteString(&log, "2026-03-02T11:00:01Z ERROR cache timeout after 95ms\n")
	io.WriteString(&log, "2026-03-02T11:00:02Z ERROR nil pointer in /orders/42\n")
	o, _ := scan.Observe(ctx, monitor.Target{Phase: "bake"})
	fmt.Println(o.Checks[0].Name, "ok:", o.Checks[0].OK)
	fmt.Println(monitor.LogNewSignatures, o.Metric(monitor.LogNewSignatures).Value)
	fmt.Println(o.Checks[0].Detail)
	// Output:
	// no new errors in logs ok: false
	// log_new_signatures 1
	// 1 new error signature since the baseline:
	// - <ts> ERROR nil pointer in /orders/<n> (1×, e.g. "2026-03-02T11:00:02Z ERROR nil pointer in /orders/42")
}

func ExampleSignature() {
	fmt.Println(monitor.Signature(`2026-03-02T11:00:02Z level=error msg="charge 42 failed" order=3f2a9c1e-7b4d-4e1a-9c3b-2d5e6f7a8b9c peer=10.0.0.7:443 file="/tmp/x"`))
	// Output:
	// <ts> level=error msg="charge <n> failed" order=<uuid> peer=<ip> file="*"
}
