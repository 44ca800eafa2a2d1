package prometheus_test

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	client "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deploykit/deploy/internal/promtest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/monitor/prometheus"
)

// app is the service under test: it exposes request counters and a latency
// histogram per version, with traffic the test controls.
type app struct {
	mu       sync.Mutex
	requests map[[2]string]float64 // {version, code} -> count
	latency  *client.HistogramVec
}

var reqDesc = client.NewDesc("http_requests_total", "Requests served.", []string{"service", "version", "code"}, nil)

func (a *app) Describe(ch chan<- *client.Desc) { ch <- reqDesc }

// Collect reports all counters under one lock, so a scrape never sees the
// errors of a tick without its requests.
func (a *app) Collect(ch chan<- client.Metric) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, v := range a.requests {
		ch <- client.MustNewConstMetric(reqDesc, client.CounterValue, v, "checkout", k[0], k[1])
	}
}

// serve records n requests of version, errs of them failed, each taking d.
func (a *app) serve(version string, n, errs int, d time.Duration) {
	a.mu.Lock()
	a.requests[[2]string{version, "200"}] += float64(n - errs)
	a.requests[[2]string{version, "500"}] += float64(errs)
	a.mu.Unlock()
	h := a.latency.WithLabelValues("checkout", version)
	for range n {
		h.Observe(d.Seconds())
	}
}

func startApp(t *testing.T) (*app, string) {
	a := &app{
		requests: map[[2]string]float64{
			{"idle", "200"}: 0, {"idle", "500"}: 0, // series that exist without traffic
		},
		latency: client.NewHistogramVec(client.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Request latency.",
			Buckets: []float64{0.05, 0.1, 0.2, 0.3, 0.5, 1},
		}, []string{"service", "version"}),
	}
	reg := client.NewRegistry()
	reg.MustRegister(a, a.latency)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)

	// Traffic: v2 (new) fails 10 % and takes 250 ms; v1 (stable) fails 1 %
	// and takes 70 ms.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			a.serve("v2", 20, 2, 250*time.Millisecond)
			a.serve("v1", 100, 1, 70*time.Millisecond)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return a, strings.TrimPrefix(srv.URL, "http://")
}

func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

const rules = `groups:
  - name: checkout
    rules:
      - alert: CheckoutHighErrorRate
        expr: sum(rate(http_requests_total{service="checkout",code="500"}[1m])) / sum(rate(http_requests_total{service="checkout"}[1m])) > 0.5
        for: 5m
        labels:
          severity: page
      - record: checkout:requests:rate1m
        expr: sum(rate(http_requests_total{service="checkout"}[1m]))
`

const (
	errorRate = `sum(rate(http_requests_total{service="{{.Service}}",version="{{.Version}}",code="500"}[{{.Window}}]))
  / sum(rate(http_requests_total{service="{{.Service}}",version="{{.Version}}"}[{{.Window}}]))`
	p95      = `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{service="{{.Service}}",version="{{.Version}}"}[{{.Window}}])))`
	requests = `sum(increase(http_requests_total{service="{{.Service}}",version="{{.Version}}"}[{{.Window}}]))`
)

// eventually calls f every 250ms until it returns nil or 20s pass.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 20s: %v", what, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

// TestRealPrometheus runs the source and the monitoring check against a real
// Prometheus scraping a test service every second.
func TestRealPrometheus(t *testing.T) {
	_, addr := startApp(t)
	srv := promtest.Start(t, promtest.Config{
		Jobs: []promtest.Job{
			{Name: "checkout", Targets: []string{addr}, Labels: map[string]string{"service": "checkout"}},
			{Name: "ghost", Targets: []string{closedAddr(t)}},
		},
		Rules: rules,
	})
	c, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	papi := v1.NewAPI(c)
	ctx := t.Context()

	rel := monitor.Target{Service: "checkout", Version: "v2", PreviousVersion: "v1", Environment: "test", Phase: "bake"}
	window := func(tg monitor.Target) monitor.Target {
		tg.Since = time.Now().Add(-10 * time.Second)
		return tg
	}

	t.Run("error rate and p95 with control", func(t *testing.T) {
		src, err := prometheus.New(papi, []prometheus.Query{
			{Metric: monitor.ErrorRate, Query: errorRate, Control: true, Count: requests, MinSamples: 50},
			{Metric: monitor.LatencyP95, Query: p95, Control: true},
		}, prometheus.WithTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var o monitor.Observation
		eventually(t, "error rate and p95", func() error {
			o, err = src.Observe(ctx, window(rel))
			if err != nil {
				return err
			}
			er, lat := o.Metric(monitor.ErrorRate), o.Metric(monitor.LatencyP95)
			switch {
			case !er.HasData() || !er.HasControl() || !near(er.Value, 0.10, 0.01) || !near(er.Control, 0.01, 0.002):
				return errors.New("error rate not there yet: " + describe(er))
			case !lat.HasData() || !lat.HasControl() || !near(lat.Value, 0.295, 0.005) || !near(lat.Control, 0.0975, 0.005):
				return errors.New("p95 not there yet: " + describe(lat))
			}
			return nil
		})
		er := o.Metric(monitor.ErrorRate)
		t.Logf("error rate %.4f (%d samples), control %.4f (%d samples); p95 %.4f s, control %.4f s",
			er.Value, er.Samples, er.Control, er.ControlSamples, o.Metric(monitor.LatencyP95).Value, o.Metric(monitor.LatencyP95).Control)
		if er.Samples < 50 || er.ControlSamples < er.Samples {
			t.Errorf("samples %d, control samples %d: want the request counts (v1 has 5× the traffic)", er.Samples, er.ControlSamples)
		}
	})

	t.Run("range query", func(t *testing.T) {
		q := prometheus.Query{Metric: "error_rate_series", Step: time.Second, MinSamples: 3,
			Query: strings.ReplaceAll(errorRate, "{{.Window}}", "5s")}
		src, err := prometheus.New(papi, []prometheus.Query{q})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "range query", func() error {
			o, err := src.Observe(ctx, window(rel))
			if err != nil {
				return err
			}
			m := o.Metric(q.Metric)
			if !m.HasData() || len(m.Raw) != m.Samples || !near(m.Value, 0.10, 0.02) {
				return errors.New("not there yet: " + describe(m))
			}
			return nil
		})
		q.MinSamples = 1000
		src, _ = prometheus.New(papi, []prometheus.Query{q})
		o, err := src.Observe(ctx, window(rel))
		if err != nil {
			t.Fatal(err)
		}
		if m := o.Metric(q.Metric); m.HasData() || m.Samples != 0 || !math.IsNaN(m.Value) {
			t.Errorf("with MinSamples 1000: %s, want no data", describe(m))
		}
	})

	t.Run("no traffic is no data", func(t *testing.T) {
		src, err := prometheus.New(papi, []prometheus.Query{
			{Metric: "idle_error_rate", Query: strings.ReplaceAll(errorRate, "{{.Version}}", "idle")}, // 0/0 = NaN
			{Metric: "absent_error_rate", Query: strings.ReplaceAll(errorRate, "{{.Version}}", "v9")}, // empty
			{Metric: "idle_requests", Query: strings.ReplaceAll(requests, "{{.Version}}", "idle")},    // 0, a real value
		})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "idle series scraped", func() error {
			o, err := src.Observe(ctx, window(rel))
			if err != nil {
				return err
			}
			if m := o.Metric("idle_requests"); !m.HasData() || m.Value != 0 {
				return errors.New("idle_requests not there yet: " + describe(m))
			}
			for _, name := range []string{"idle_error_rate", "absent_error_rate"} {
				if m := o.Metric(name); m.HasData() || m.Samples != 0 || !math.IsNaN(m.Value) {
					t.Fatalf("%s = %s, want no data", name, describe(m))
				}
			}
			return nil
		})
	})

	t.Run("bad query names the query", func(t *testing.T) {
		src, err := prometheus.New(papi, []prometheus.Query{
			{Metric: monitor.ErrorRate, Query: errorRate},
			{Metric: "broken", Query: `sum(rate(http_requests_total{service="{{.Service}}"}[{{.Window}}])`},
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.Observe(ctx, window(rel))
		if err == nil || !strings.Contains(err.Error(), `prometheus: query broken (sum(rate(http_requests_total{service="checkout"}[1`) {
			t.Errorf("Observe error = %v, want one naming the broken query", err)
		}
		var perr *v1.Error
		if !errors.As(err, &perr) || perr.Type != v1.ErrBadData {
			t.Errorf("Observe error = %#v, want it to wrap the API's bad_data error", err)
		}
	})

	t.Run("monitoring active", func(t *testing.T) {
		src, err := prometheus.New(papi, nil)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "checkout monitored", func() error { return src.CheckMonitoring(ctx, "checkout") })
		byService := prometheus.Monitoring{API: papi, TargetLabel: "service"}
		if err := byService.Check(ctx, "checkout"); err != nil {
			t.Errorf("Check by the service label: %v", err)
		}
		// Confirm says what it found: the evidence of the checklist item.
		ev, err := prometheus.Monitoring{API: papi}.Confirm(ctx, "checkout")
		if want := `1 scrape target up (job="checkout"); 1 alerting rule mentioning checkout: CheckoutHighErrorRate`; err != nil || ev != want {
			t.Errorf("Confirm = %q, %v; want %q", ev, err, want)
		}
	})

	t.Run("monitoring inactive", func(t *testing.T) {
		m := prometheus.Monitoring{API: papi}
		eventually(t, "ghost scraped", func() error {
			err := m.Check(ctx, "ghost")
			if !errors.Is(err, prometheus.ErrMonitoringInactive) {
				t.Fatalf("Check(ghost) = %v, want ErrMonitoringInactive", err)
			}
			for _, want := range []string{`monitoring is not active for "ghost"`, "/metrics is down: ", `no alerting rule mentions "ghost" (1 alerting rules loaded)`} {
				if !strings.Contains(err.Error(), want) {
					return errors.New(err.Error() + " lacks " + want)
				}
			}
			return nil
		})
		err := m.Check(ctx, "payments")
		if !errors.Is(err, prometheus.ErrMonitoringInactive) ||
			!strings.Contains(err.Error(), `no scrape target has job="payments" (2 active targets)`) ||
			!strings.Contains(err.Error(), `no alerting rule mentions "payments"`) {
			t.Errorf("Check(payments) = %v, want no target and no rule", err)
		}
		// Without the rule check, a scraped service passes on its targets alone.
		if err := (prometheus.Monitoring{API: papi, NoRules: true}).Check(ctx, "checkout"); err != nil {
			t.Errorf("Check(checkout) without rules: %v", err)
		}
	})

	t.Run("rules reloaded", func(t *testing.T) {
		if err := srv.WriteRules(rules + `  - name: ghost
    rules:
      - alert: GhostDown
        expr: up{job="ghost"} == 0
        labels:
          severity: ticket
      - alert: Broken
        expr: vector(1) * on() group_left() up
        labels:
          service: ghost
`); err != nil {
			t.Fatal(err)
		}
		if err := srv.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		m := prometheus.Monitoring{API: papi}
		eventually(t, "rules reloaded", func() error {
			err := m.Check(ctx, "ghost")
			if err == nil {
				t.Fatal("Check(ghost) passed with its target down")
			}
			if strings.Contains(err.Error(), "no alerting rule mentions") || !strings.Contains(err.Error(), "alerting rule Broken (group ghost) fails: ") {
				return err
			}
			return nil
		})
	})
}

func describe(m monitor.Metric) string {
	b, _ := m.MarshalJSON()
	return string(b)
}
