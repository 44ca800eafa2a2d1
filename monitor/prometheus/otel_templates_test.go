package prometheus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	client "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/deploykit/deploy/internal/promtest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/monitor/prometheus"
)

func TestOTelHTTPQueries(t *testing.T) {
	o := prometheus.OTelHTTP{Matchers: `http_route!="/healthz"`, MinRequests: 50}
	q := o.ErrorRate()
	want := `(sum(rate(http_server_request_duration_seconds_count{job="{{.Service}}",service_version="{{.Version}}",http_route!="/healthz",http_response_status_code=~"5.."}[{{.Window}}])) or vector(0))
  / sum(rate(http_server_request_duration_seconds_count{job="{{.Service}}",service_version="{{.Version}}",http_route!="/healthz"}[{{.Window}}]))`
	if q.Metric != monitor.ErrorRate || q.Query != want || !q.Control || q.MinSamples != 50 ||
		q.Count != `sum(increase(http_server_request_duration_seconds_count{job="{{.Service}}",service_version="{{.Version}}",http_route!="/healthz"}[{{.Window}}]))` {
		t.Errorf("error rate %+v", q)
	}
	names := []string{}
	for _, q := range o.Queries() {
		names = append(names, q.Metric)
	}
	if strings.Join(names, " ") != "error_rate latency_p95_seconds latency_p99_seconds" {
		t.Errorf("queries %v", names)
	}
	if n := o.Latency(0.5).Metric; n != "latency_p50_seconds" {
		t.Errorf("p50 named %q", n)
	}
	if q := (prometheus.OTelHTTP{VersionLabel: "version", NoControl: true}).Latency(0.99); q.Control ||
		q.Query != `histogram_quantile(0.99, sum by (le) (rate(http_server_request_duration_seconds_bucket{job="{{.Service}}",version="{{.Version}}"}[{{.Window}}])))` {
		t.Errorf("p99 %+v", q)
	}
	for _, bad := range []prometheus.OTelHTTP{{VersionLabel: "service.version"}, {Matchers: `} or vector(1) or {`}, {MinRequests: -1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// otelApp is one version of a service instrumented as OpenTelemetry users
// instrument Go services: otelhttp's handler recording
// http.server.request.duration through the SDK, exported by the
// OpenTelemetry Prometheus exporter with service.version as a label.
// It serves /metrics beside the instrumented routes.
func otelApp(t *testing.T, version string, handler http.HandlerFunc) string {
	t.Helper()
	reg := client.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg),
		otelprom.WithResourceAsConstantLabels(attribute.NewAllowKeysFilter(semconv.ServiceVersionKey)))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(resource.NewSchemaless(
		semconv.ServiceName("checkout"), semconv.ServiceVersion(version))))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", otelhttp.NewHandler(handler, "checkout", otelhttp.WithMeterProvider(mp), otelhttp.WithTracerProvider(noop.NewTracerProvider())))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestOTelHTTPAgainstRealPrometheus runs the templates against a real
// Prometheus scraping two versions of a service instrumented with the real
// OpenTelemetry SDK and exporter: v2 fails 20 % of its requests and answers
// one in ten in 150 ms; v1 fails 2 % and answers at once.
func TestOTelHTTPAgainstRealPrometheus(t *testing.T) {
	var n1, n2 atomic.Int64
	v1URL := otelApp(t, "v1", func(w http.ResponseWriter, r *http.Request) {
		if n1.Add(1)%50 == 0 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	})
	v2URL := otelApp(t, "v2", func(w http.ResponseWriter, r *http.Request) {
		n := n2.Add(1)
		if n%10 == 5 {
			time.Sleep(150 * time.Millisecond) // a slow answer, as users see it
		}
		if n%5 == 0 {
			http.Error(w, "boom", http.StatusBadGateway)
			return
		}
		io.WriteString(w, "ok")
	})
	srv := promtest.Start(t, promtest.Config{Jobs: []promtest.Job{{Name: "checkout",
		Targets: []string{strings.TrimPrefix(v1URL, "http://"), strings.TrimPrefix(v2URL, "http://")}}}})
	started := time.Now()

	// Traffic, until the test ends: 20 requests of each version per round.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			for range 20 {
				for _, u := range []string{v1URL, v2URL} {
					if resp, err := http.Get(u + "/cart"); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()

	c, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	o := prometheus.OTelHTTP{MinRequests: 40}
	src, err := prometheus.New(v1.NewAPI(c), append(o.Queries(), o.SuccessRate()), prometheus.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	tg := monitor.Target{Service: "checkout", Version: "v2", PreviousVersion: "v1", Environment: "test", Phase: "bake", Since: started}
	var obs monitor.Observation
	eventually(t, "the OTel HTTP metrics", func() error {
		obs, err = src.Observe(t.Context(), tg)
		if err != nil {
			return err
		}
		er, ok, p95, p99 := obs.Metric(monitor.ErrorRate), obs.Metric(prometheus.RequestSuccessRate), obs.Metric(monitor.LatencyP95), obs.Metric(prometheus.LatencyP99)
		switch {
		case !er.HasData() || !er.HasControl() || !near(er.Value, 0.20, 0.03) || !near(er.Control, 0.02, 0.015):
			return errors.New("error rate not there yet: " + describe(er))
		case !near(ok.Value, 1-er.Value, 1e-9) || !near(ok.Control, 1-er.Control, 1e-9):
			return fmt.Errorf("success rate %s is not 1 - error rate %s", describe(ok), describe(er))
		case !p95.HasData() || p95.Value <= 0.1 || p95.Value > 0.25 || !p95.HasControl() || p95.Control >= 0.025:
			return errors.New("p95 not there yet: " + describe(p95))
		case !p99.HasData() || p99.Value < p95.Value || p99.Value > 0.25:
			return errors.New("p99 not there yet: " + describe(p99))
		}
		return nil
	})
	er := obs.Metric(monitor.ErrorRate)
	t.Logf("error rate %.4f (%d requests), control %.4f (%d requests); p95 %.4f s (control %.4f s); p99 %.4f s",
		er.Value, er.Samples, er.Control, er.ControlSamples, obs.Metric(monitor.LatencyP95).Value, obs.Metric(monitor.LatencyP95).Control, obs.Metric(prometheus.LatencyP99).Value)
	if er.Samples < 40 || !er.Counted {
		t.Errorf("error rate backed by %d samples (counted %v), want the requests", er.Samples, er.Counted)
	}

	// A version nobody calls is no data, not an error rate of 0.
	tg.Version = "v3"
	obs, err = src.Observe(t.Context(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if m := obs.Metric(monitor.ErrorRate); m.HasData() {
		t.Errorf("v3 without traffic: %s, want no data", describe(m))
	}
}
