package prometheus_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/monitor/prometheus"
)

// The error rate and p95 latency of the new version, with the stable
// version over the same window as control. The error rate is no data until
// the window holds at least 200 requests.
func Example() {
	c, err := api.NewClient(api.Config{Address: "http://prometheus.internal:9090"})
	if err != nil {
		log.Fatal(err)
	}
	src, err := prometheus.New(v1.NewAPI(c), []prometheus.Query{
		{
			Metric: monitor.ErrorRate,
			Query: `sum(rate(http_requests_total{service="{{.Service}}",version="{{.Version}}",code=~"5.."}[{{.Window}}]))
			      / sum(rate(http_requests_total{service="{{.Service}}",version="{{.Version}}"}[{{.Window}}]))`,
			Count:      `sum(increase(http_requests_total{service="{{.Service}}",version="{{.Version}}"}[{{.Window}}]))`,
			MinSamples: 200,
			Control:    true,
		},
		{
			Metric:  monitor.LatencyP95,
			Query:   `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{service="{{.Service}}",version="{{.Version}}"}[{{.Window}}])))`,
			Control: true,
		},
	}, prometheus.WithTimeout(5*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	// src is a monitor.Source, and so a deploy.Monitor: pass it to
	// deploy.WithMonitors. The gate package wraps CheckMonitoring.
	ctx := context.Background()
	switch err := src.CheckMonitoring(ctx, "checkout"); {
	case errors.Is(err, prometheus.ErrMonitoringInactive):
		fmt.Println("not monitored:", err)
	case err != nil:
		fmt.Println("could not check:", err)
	}
}
