package prometheus_test

import (
	"fmt"

	"github.com/deploykit/deploy/monitor/prometheus"
)

// ExampleOTelHTTP shows the queries made for a service instrumented with
// OpenTelemetry's HTTP server metrics, the version a label of its series;
// pass them to prometheus.New.
func ExampleOTelHTTP() {
	o := prometheus.OTelHTTP{Matchers: `http_route!="/healthz"`, MinRequests: 100}
	for _, q := range o.Queries() {
		fmt.Println(q.Metric, "control:", q.Control)
	}
	fmt.Println(o.Latency(0.95).Query)
	// Output:
	// error_rate control: true
	// latency_p95_seconds control: true
	// latency_p99_seconds control: true
	// histogram_quantile(0.95, sum by (le) (rate(http_server_request_duration_seconds_bucket{job="{{.Service}}",service_version="{{.Version}}",http_route!="/healthz"}[{{.Window}}])))
}
