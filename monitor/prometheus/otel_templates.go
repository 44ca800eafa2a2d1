package prometheus

import (
	"cmp"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/deploykit/deploy/monitor"
)

// Metric names of the OTelHTTP queries, besides monitor.ErrorRate and
// monitor.LatencyP95.
const (
	// RequestSuccessRate is the share of requests answered without a server
	// error (status below 500), a ratio in [0, 1]: Flagger's built-in
	// request-success-rate, which Flagger gives in percent.
	RequestSuccessRate = "request_success_rate"
	// LatencyP99 is the 99th percentile of request duration, in seconds:
	// Flagger's built-in request-duration, which Flagger gives in
	// milliseconds.
	LatencyP99 = "latency_p99_seconds"
)

// DefaultOTelHTTPMetric is the name under which OpenTelemetry's HTTP server
// duration histogram, http.server.request.duration (unit s), reaches
// Prometheus through the OpenTelemetry Prometheus exporter or the
// Collector's Prometheus exporters with their default translation: dots to
// underscores and the unit as a suffix, with _bucket, _sum and _count
// series. The status code is the label http_response_status_code.
const DefaultOTelHTTPMetric = "http_server_request_duration_seconds"

// OTelHTTP makes ready-made queries for a service instrumented with
// OpenTelemetry's HTTP semantic conventions — otelhttp in Go, and the
// HTTP server instrumentations of every other OpenTelemetry SDK — as
// Flagger ships request-success-rate and request-duration:
//
//	ErrorRate()     monitor.ErrorRate: share of 5xx answers, with the requests as Count
//	SuccessRate()   RequestSuccessRate: share of answers below 500
//	Latency(0.95)   monitor.LatencyP95, from the histogram's buckets
//	Latency(0.99)   LatencyP99
//
// Each query selects the service by ServiceLabel (the scrape job, "job", by
// default) and the version by VersionLabel ("service_version" by default),
// so the version must reach the series as a label. With the OpenTelemetry
// Go Prometheus exporter, turn the resource's service.version into one:
//
//	otelprom.New(otelprom.WithResourceAsConstantLabels(attribute.NewAllowKeysFilter(semconv.ServiceVersionKey)))
//
// (the Collector: resource_to_telemetry_conversion; Prometheus' OTLP
// receiver: promote_resource_attributes), or relabel a pod label such as
// "version" at scrape time and set VersionLabel to it. Rates are taken over
// the judged window ({{.Window}}, see the package documentation). Queries
// measure the stable version over the same window too (Control), unless
// NoControl is set.
type OTelHTTP struct {
	// Metric is the histogram's base name; empty means
	// DefaultOTelHTTPMetric.
	Metric string
	// ServiceLabel is the label whose value is the service; empty means
	// "job".
	ServiceLabel string
	// VersionLabel is the label whose value is the version; empty means
	// "service_version".
	VersionLabel string
	// Matchers are more label matchers, PromQL as it is (not a template),
	// such as `http_route!="/healthz"`.
	Matchers string
	// MinRequests is the fewest requests in the window that make the rates
	// and percentiles data; 0 means 1.
	MinRequests int
	// NoControl leaves the stable version unmeasured (for a strategy where
	// it serves nobody after the switch).
	NoControl bool
}

// labelName is a Prometheus label name.
var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Validate reports a bad metric or label name, a matcher with a template
// action or a negative MinRequests.
func (o OTelHTTP) Validate() error {
	for field, v := range map[string]string{"Metric": o.Metric, "ServiceLabel": o.ServiceLabel, "VersionLabel": o.VersionLabel} {
		if v != "" && !labelName.MatchString(v) {
			return fmt.Errorf("prometheus: OTelHTTP.%s %q is not a Prometheus name", field, v)
		}
	}
	if strings.Contains(o.Matchers, "{{") || strings.ContainsAny(o.Matchers, "{}") {
		return fmt.Errorf("prometheus: OTelHTTP.Matchers %q must be plain label matchers, without braces or template actions", o.Matchers)
	}
	if o.MinRequests < 0 {
		return fmt.Errorf("prometheus: OTelHTTP.MinRequests %d is negative", o.MinRequests)
	}
	return nil
}

// selector is the series selector of suffix ("_count", "_bucket"), with
// more matchers.
func (o OTelHTTP) selector(suffix string, more ...string) string {
	m := []string{
		cmp.Or(o.ServiceLabel, "job") + `="{{.Service}}"`,
		cmp.Or(o.VersionLabel, "service_version") + `="{{.Version}}"`,
	}
	if s := strings.TrimSpace(o.Matchers); s != "" {
		m = append(m, s)
	}
	m = append(m, more...)
	return cmp.Or(o.Metric, DefaultOTelHTTPMetric) + suffix + "{" + strings.Join(m, ",") + "}"
}

// requests is the Count of every query: the requests in the window.
func (o OTelHTTP) requests() string {
	return "sum(increase(" + o.selector("_count") + "[{{.Window}}]))"
}

func (o OTelHTTP) query(metric, promql string) Query {
	return Query{Metric: metric, Query: promql, Count: o.requests(), MinSamples: o.MinRequests, Control: !o.NoControl}
}

// serverErrors is the rate of 5xx answers, 0 when there was none (so that
// a version without errors has an error rate of 0, not no data).
func (o OTelHTTP) serverErrors() string {
	return "(sum(rate(" + o.selector("_count", `http_response_status_code=~"5.."`) + "[{{.Window}}])) or vector(0))"
}

func (o OTelHTTP) all() string {
	return "sum(rate(" + o.selector("_count") + "[{{.Window}}]))"
}

// ErrorRate is the share of requests answered with a 5xx status, as
// monitor.ErrorRate, backed by the number of requests.
func (o OTelHTTP) ErrorRate() Query {
	return o.query(monitor.ErrorRate, o.serverErrors()+"\n  / "+o.all())
}

// SuccessRate is the share of requests answered below 500, as
// RequestSuccessRate: Flagger's request-success-rate, as a ratio.
func (o OTelHTTP) SuccessRate() Query {
	return o.query(RequestSuccessRate, "1 - "+o.serverErrors()+"\n  / "+o.all())
}

// Latency is the q-quantile of the request duration in seconds, from the
// histogram's buckets (histogram_quantile interpolates within a bucket):
// monitor.LatencyP95 for 0.95, LatencyP99 for 0.99, and
// "latency_pNN_seconds" for others. q must be in (0, 1).
func (o OTelHTTP) Latency(q float64) Query {
	name := "latency_p" + strings.TrimPrefix(strconv.FormatFloat(q*100, 'f', -1, 64), "0") + "_seconds"
	switch q {
	case 0.95:
		name = monitor.LatencyP95
	case 0.99:
		name = LatencyP99
	}
	return o.query(name, "histogram_quantile("+strconv.FormatFloat(q, 'f', -1, 64)+
		", sum by (le) (rate("+o.selector("_bucket")+"[{{.Window}}])))")
}

// Queries returns the error rate, p95 and p99, the defaults' metrics
// (rollback.RelativeIncrease on monitor.ErrorRate, rollback.LatencyIncrease
// on monitor.LatencyP95) and Flagger's request-duration.
func (o OTelHTTP) Queries() []Query {
	return []Query{o.ErrorRate(), o.Latency(0.95), o.Latency(0.99)}
}
