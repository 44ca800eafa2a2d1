package prometheus_test

import (
	"context"
	"fmt"
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
	"github.com/deploykit/deploy/rollback"
)

// tracedApp serves requests of v2 and records each one's latency with its
// trace ID as an exemplar (ObserveWithExemplar), exposed in OpenMetrics:
// one request in four fails, with a trace ID "bad-…"; the others succeed
// with "ok-…".
type tracedApp struct {
	mu     sync.Mutex
	hist   *client.HistogramVec
	failed map[string]bool
	n      int
}

func startTracedApp(t *testing.T) (*tracedApp, string) {
	a := &tracedApp{failed: map[string]bool{}, hist: client.NewHistogramVec(client.HistogramOpts{
		Name:    "http_request_duration_seconds",
		Help:    "Request latency.",
		Buckets: []float64{0.05, 0.1, 0.2, 0.5, 1, 2},
	}, []string{"service", "version", "code"})}
	reg := client.NewRegistry()
	reg.MustRegister(a.hist)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				a.serve()
			}
		}
	}()
	return a, strings.TrimPrefix(srv.URL, "http://")
}

// serve records one request; the failing ones take 0.05 to 1.5 s, so that
// they land in several buckets and several exemplars survive each scrape.
func (a *tracedApp) serve() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n++
	code, id, lat := "200", fmt.Sprintf("ok-%06d", a.n), 0.03
	if a.n%4 == 0 {
		code, id, lat = "500", fmt.Sprintf("bad-%06d", a.n), []float64{0.07, 0.15, 0.3, 0.7, 1.5}[(a.n/4)%5]
		a.failed[id] = true
	}
	a.hist.WithLabelValues("checkout", "v2", code).(client.ExemplarObserver).ObserveWithExemplar(lat, client.Labels{"trace_id": id})
}

func (a *tracedApp) isFailed(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failed[id]
}

var tracedQuery = prometheus.Query{
	Metric:    monitor.ErrorRate,
	Query:     `sum(increase(http_request_duration_seconds_count{service="checkout",version="{{.Version}}",code="500"}[{{.Window}}])) / sum(increase(http_request_duration_seconds_count{service="checkout",version="{{.Version}}"}[{{.Window}}]))`,
	Count:     `sum(increase(http_request_duration_seconds_count{service="checkout",version="{{.Version}}"}[{{.Window}}]))`,
	Exemplars: `http_request_duration_seconds_bucket{service="checkout",version="{{.Version}}",code="500"}`,
}

// observeTraced waits until the server has scraped enough, then observes
// the last 30 s of v2.
func observeTraced(t *testing.T, url string, want func(monitor.Metric) bool) monitor.Metric {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		t.Fatal(err)
	}
	src, err := prometheus.New(v1.NewAPI(c), []prometheus.Query{tracedQuery})
	if err != nil {
		t.Fatal(err)
	}
	var m monitor.Metric
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		obs, err := src.Observe(t.Context(), monitor.Target{Service: "checkout", Version: "v2", Phase: "bake", Exposure: 1, Since: time.Now().Add(-30 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		m = obs.Metric(monitor.ErrorRate)
		if want(m) {
			return m
		}
		time.Sleep(500 * time.Millisecond) // a real server scraping every second
	}
	t.Fatalf("no observation as wanted within 30 s: %+v", m)
	return m
}

// TestVerdictCitesFailingTraces: a real Prometheus with exemplar storage
// scrapes an app that records each request's trace ID as an exemplar; the
// error rate's observation carries up to five trace IDs of failing
// requests of the window, and a verdict on it cites them.
func TestVerdictCitesFailingTraces(t *testing.T) {
	app, target := startTracedApp(t)
	srv := promtest.Start(t, promtest.Config{
		Jobs:  []promtest.Job{{Name: "checkout", Targets: []string{target}}},
		Flags: []string{"--enable-feature=exemplar-storage"},
	})
	m := observeTraced(t, srv.URL, func(m monitor.Metric) bool { return m.HasData() && len(m.Traces) >= 3 })
	if len(m.Traces) > prometheus.MaxTraces {
		t.Errorf("%d traces, want at most %d", len(m.Traces), prometheus.MaxTraces)
	}
	for _, id := range m.Traces {
		if !app.isFailed(id) {
			t.Errorf("trace %q is not a failing request's", id)
		}
	}
	var obs monitor.Observation
	obs.Set(monitor.ErrorRate, m)
	p := rollback.Policy{Triggers: []rollback.Trigger{rollback.Above(monitor.ErrorRate, 0.1)}}
	d := p.Judge(&rollback.Counters{}, obs, monitor.Observation{}, nil)
	if d.Verdict != rollback.Rollback || d.Cause == nil || len(d.Cause.Traces) != len(m.Traces) {
		t.Fatalf("%s: %s", d.Verdict, d.Reason)
	}
	if !strings.Contains(d.Reason, "failing traces: "+strings.Join(m.Traces, ", ")) {
		t.Errorf("reason %q does not cite %v", d.Reason, m.Traces)
	}
	t.Logf("verdict: %s", d.Reason)
}

// TestVerdictSaysTheServerStoresNoExemplars: without
// --enable-feature=exemplar-storage, Prometheus answers exemplar queries
// with nothing; the observation and the verdict say that it stores none,
// rather than citing no trace in silence.
func TestVerdictSaysTheServerStoresNoExemplars(t *testing.T) {
	_, target := startTracedApp(t)
	srv := promtest.Start(t, promtest.Config{Jobs: []promtest.Job{{Name: "checkout", Targets: []string{target}}}})
	m := observeTraced(t, srv.URL, func(m monitor.Metric) bool { return m.HasData() })
	if len(m.Traces) != 0 || !strings.Contains(m.TracesNote, "stores no exemplars (start it with --enable-feature=exemplar-storage)") {
		t.Fatalf("traces %v, note %q", m.Traces, m.TracesNote)
	}
	var obs monitor.Observation
	obs.Set(monitor.ErrorRate, m)
	p := rollback.Policy{Triggers: []rollback.Trigger{rollback.Above(monitor.ErrorRate, 0.1)}}
	if d := p.Judge(&rollback.Counters{}, obs, monitor.Observation{}, nil); !strings.Contains(d.Reason, "stores no exemplars") {
		t.Errorf("reason %q", d.Reason)
	}
}
