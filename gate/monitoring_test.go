package gate_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
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

func TestMonitoringActiveUnit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked []string
		missing := errors.New("no alerting rule mentions it")
		m := &gate.MonitoringActive{Checker: gate.MonitoringFunc(func(ctx context.Context, service string) error {
			asked = append(asked, service)
			if service == "checkout" {
				return nil
			}
			return missing
		})}
		if err := m.Check(t.Context(), dep); err != nil {
			t.Errorf("checkout: %v", err)
		}
		m.Service = "payments"
		err := m.Check(t.Context(), dep)
		wantBlock(t, err, "monitoring of payments not confirmed: no alerting rule mentions it")
		if !errors.Is(err, missing) {
			t.Errorf("err = %v does not wrap the checker's error", err)
		}
		m.Retry = 30 * time.Second
		wantRetry(t, m.Check(t.Context(), dep), time.Now().Add(30*time.Second), "monitoring of payments not confirmed: no alerting rule mentions it")
		if got := strings.Join(asked, ","); got != "checkout,payments,payments" {
			t.Errorf("asked for %s", got)
		}
		if m.Name() != "monitoring-active" || len(m.ChecklistItems()) != 1 || m.ChecklistItems()[0] != deploy.ItemMonitoringActive {
			t.Errorf("Name() = %q, items %v", m.Name(), m.ChecklistItems())
		}
		for _, c := range []struct {
			m    gate.MonitoringActive
			want string
		}{
			{gate.MonitoringActive{}, "gate.MonitoringActive: Checker is nil"},
			{gate.MonitoringActive{Checker: m.Checker, Retry: -time.Second}, "Retry -1s is negative"},
		} {
			if err := c.m.Validate(); !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Validate() = %v, want ErrInvalid naming %q", err, c.want)
			}
			wantBlock(t, c.m.Check(t.Context(), dep), c.want)
		}
	})
}

// TestMonitoringActiveRealPrometheus runs the gate against a real Prometheus
// that scrapes a test "checkout" service and has an alerting rule about it.
func TestMonitoringActiveRealPrometheus(t *testing.T) {
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
		err = g.Check(ctx, dep)
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
	rep, err := r.Run(ctx, dep.Release)
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
	wantBlock(t, err, "monitoring of payments not confirmed", `no scrape target has job="payments"`, `no alerting rule mentions "payments"`)
	if !errors.Is(err, prometheus.ErrMonitoringInactive) {
		t.Errorf("err = %v, want it to wrap prometheus.ErrMonitoringInactive", err)
	}
}
