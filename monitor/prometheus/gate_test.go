package prometheus_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	client "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/gate"
	"github.com/deploykit/deploy/internal/promtest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/monitor/prometheus"
	"github.com/deploykit/deploy/state"
)

var _ gate.MonitoringChecker = prometheus.Monitoring{}

// gateDep is the deployment the gate is checked with.
var gateDep = &deploy.Deployment{
	ID:      "checkout-v2-1",
	Release: deploy.Release{Service: "checkout", Version: "v2", PreviousVersion: "v1", Environment: "production"},
	Stage:   deploy.Stage{Name: "production"},
}

// TestMonitoringActiveGateRealPrometheus runs gate.MonitoringActive with Monitoring against a real Prometheus
// that scrapes a test "checkout" service and has an alerting rule about it.
func TestMonitoringActiveGateRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	reg := client.NewRegistry()
	reg.MustRegister(client.NewCounter(client.CounterOpts{Name: "http_requests_total", Help: "Requests."}))
	app := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer app.Close()
	srv := promtest.Start(t, promtest.Config{
		Jobs: []promtest.Job{{Name: "checkout", Targets: []string{strings.TrimPrefix(app.URL, "http://")}}},
		Rules: `groups:
  - name: checkout
    rules:
      - alert: CheckoutDown
        expr: up{job="checkout"} == 0
        labels:
          severity: page
`,
	})
	c, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	g := &gate.MonitoringActive{Checker: prometheus.Monitoring{API: v1.NewAPI(c)}}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// The first scrape and rule evaluation take up to a couple of seconds.
	for {
		err = g.Check(ctx, gateDep)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("checkout not confirmed monitored within 30s: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Through the runner, what prometheus.Monitoring found is the evidence
	// that ticks "Confirm monitoring/alerting active".
	r, err := deploy.NewRunner(&deploytest.Strategy{Steps: deploytest.Ramp(0, 1)},
		deploy.WithStore(state.NewMemory()), deploy.WithMonitors(deploytest.Healthy()),
		deploy.WithNotifiers(&deploytest.Recorder{}), deploy.WithGates(g),
		deploy.WithWaiver(deploy.FridayDeploy, "test: any day"),
		deploy.WithSchedule(monitor.Schedule{}))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(ctx, gateDep.Release)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := `gate monitoring-active: 1 scrape target up (job="checkout"); 1 alerting rule mentioning checkout: CheckoutDown`
	for _, l := range rep.Checklist {
		if l.Item == deploy.ItemMonitoringActive && (!l.Done || l.Evidence != want) {
			t.Errorf("%q: done %v, evidence %q; want ticked with %q", l.Item, l.Done, l.Evidence, want)
		}
	}
	other := &deploy.Deployment{Release: deploy.Release{Service: "payments", Version: "v7"}}
	err = g.Check(ctx, other)
	for _, want := range []string{"monitoring of payments not confirmed", `no scrape target has job="payments"`, `no alerting rule mentions "payments"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want a block containing %q", err, want)
		}
	}
	if !errors.Is(err, prometheus.ErrMonitoringInactive) {
		t.Errorf("err = %v, want it to wrap prometheus.ErrMonitoringInactive", err)
	}
}
