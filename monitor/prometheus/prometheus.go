// Package prometheus measures a release with PromQL queries against a
// Prometheus server, and checks that the service's monitoring is active.
//
// # Queries
//
// A [Source] runs named [Query] values and maps each result to a named
// metric of a [monitor.Observation]: an error rate, a p95 latency, a business
// metric. Each query is a text/template executed with [Vars], built from the
// [monitor.Target]:
//
//	sum(rate(http_requests_total{service="{{.Service}}",version="{{.Version}}",code=~"5.."}[{{.Window}}]))
//	  / sum(rate(http_requests_total{service="{{.Service}}",version="{{.Version}}"}[{{.Window}}]))
//
// # Release fields are escaped
//
// Everything a template prints is escaped as the content of a PromQL string
// literal: backslashes, both quotes and control characters are escaped, so
// a version such as `v2",version=~".*` stays one label value and cannot add
// a matcher. Put fields inside quotes, as above; a field outside quotes is
// not protected (release fields are checked by state.Release.Validate, but
// labels are free text). A value with a backtick is refused, since a PromQL
// raw string cannot escape it. For a regular-expression matcher, quote the
// field with regex so that its dots and pluses match themselves:
//
//	http_requests_total{version=~"{{regex .Version}}|{{regex .PreviousVersion}}"}
//
// {{.Version}} is the version users are on in the phase judged: the new one
// while steps bake and during verification, the previous one before the
// deploy (the baseline) and after a rollback (see [Vars]); {{.NewVersion}}
// is always the new one.
//
// {{.Window}} is the time since Target.Since (the step was applied, the
// baseline window began, the rollback finished) in whole seconds, rounded
// up, such as "300s". PromQL's rate and increase over it also see the last
// scrape before Since, so keep the scrape interval well below the bake and
// the runner's interval (deploy.WithInterval), or the first observations of
// a step still hold data from before it.
//
// An instant query (Step 0) is evaluated at the time of the observation and
// must give one value: a scalar or a vector of at most one series (aggregate
// with sum, avg, max or histogram_quantile). A range query (Step > 0) is
// evaluated over the window at that step and must give at most one series;
// its points become Metric.Raw for the statistical judge and their mean is
// Metric.Value.
//
// # Control
//
// With Query.Control set, the same template runs again over the same window
// with .Version set to Target.PreviousVersion and .Control true, and fills
// Metric.Control: the stable version measured alongside the new one (canary
// versus control), which the rollback policy prefers to the preflight
// baseline. It is measured while steps bake and during verification, not
// in the baseline and rollback phases, where only one version serves.
//
// A control is for strategies where both versions serve at once: a canary
// or a progressive rollout. With Direct or BlueGreen, the stable version
// has no traffic after the switch; give it MinSamples (or a Count), so that
// a control of a few stale samples is no control and the policy compares
// with the baseline.
//
// # No data
//
// An empty result, NaN (a ratio with no traffic), ±Inf, or fewer samples than
// Query.MinSamples is no data ([monitor.NoData]), never 0. Samples counts
// the points of a range query; for an instant query it is 1, or the value of
// Query.Count, a second query that counts what the value rests on (the
// requests in the window, say), so that an error rate over three requests is
// no data rather than a verdict. Such a metric is counted
// (monitor.Metric.Counted), which rollback.Sequential, the default policy's
// error-rate test, needs: write the Query and the Count over {{.Window}},
// so that the counts are cumulative since the step began, and each look of
// the sequential test adds what the last one did not count.
//
// # Failing traces
//
// With Query.Exemplars, a PromQL selector of the series whose exemplars are
// failing or slow requests (the 5xx buckets of a latency histogram, say,
// recorded with ObserveWithExemplar and exposed in OpenMetrics), the
// metric carries up to [MaxTraces] trace IDs of the window, most recent
// first (monitor.Metric.Traces), and a failed verdict on it cites them. A
// server that stores no exemplars (Prometheus without
// --enable-feature=exemplar-storage answers every exemplar query with
// nothing) is said so in monitor.Metric.TracesNote, which the verdict
// quotes, never taken for "no failing requests".
//
// # Errors
//
// An error from Observe means the source could not measure: Prometheus is
// unreachable, a query is malformed, times out or gives several series.
// Every such error names the query's metric and its PromQL.
//
// # Monitoring checks
//
// [Monitoring.Check] (and [Source.CheckMonitoring]) verifies the checklist's
// "monitoring and alerting active": the service has scrape targets and all
// are up, and at least one alerting rule that mentions the service is
// loaded and healthy. A failure wraps [ErrMonitoringInactive] and says what
// is missing; other errors mean the check could not be made. The gate
// package wraps it as a pre-deployment gate.
//
// # Concurrency
//
// A Source and a Monitoring are safe for concurrent use. Observe runs its
// queries concurrently, each with its own timeout.
//
// # Module
//
// This package imports monitor and the official Prometheus client
// (github.com/prometheus/client_golang/api). It is a module of its own,
// github.com/deploykit/deploy/monitor/prometheus, so that importing monitor
// or deploy puts neither the client nor protobuf in a program's module
// graph (see MODULES.md):
//
//	go get github.com/deploykit/deploy/monitor/prometheus
//
// Its tests, which start a real Prometheus (internal/promtest), run from its
// directory: cd monitor/prometheus && go test ./...
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"text/template"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/deploykit/deploy/internal/redact"
	"github.com/deploykit/deploy/internal/tmplesc"
	"github.com/deploykit/deploy/monitor"
)

// Defaults.
const (
	// DefaultTimeout bounds each query when neither the Query nor WithTimeout
	// sets one.
	DefaultTimeout = 10 * time.Second
	// DefaultWindow is the window judged when Target.Since is zero or in the
	// future.
	DefaultWindow = 5 * time.Minute
	// DefaultTargetLabel is the label that ties scrape targets to a service.
	DefaultTargetLabel = "job"
)

// Vars are what a query template can use.
type Vars struct {
	DeploymentID string
	Service      string
	// Version is the version measured: the one users are on in the phase
	// being judged. While steps bake and during verification that is the
	// new version, or the stable one when Control is true. Before the
	// deploy (Phase "baseline") and after a rollback (Phase "rollback")
	// it is PreviousVersion, when the release names it: a baseline of a
	// version nobody uses yet would be empty, and a rollback verified on
	// the version just taken away would judge its last stragglers. No
	// control is measured in those phases.
	Version string
	// NewVersion is always the release's new version (Target.Version), for
	// queries that must name it in every phase, such as metrics labelled
	// by the binary while a feature flag decides the code path.
	NewVersion      string
	PreviousVersion string
	Environment     string
	Stage           string
	Step            string
	Phase           string
	// Window is the time since Target.Since as a PromQL duration in whole
	// seconds, at least "1s".
	Window string
	// Control is true when the query measures the stable version.
	Control bool
	// Labels are the release's labels.
	Labels map[string]string
}

// Query is one named PromQL query.
type Query struct {
	// Metric names the result in the observation, such as monitor.ErrorRate.
	Metric string
	// Query is the PromQL, a text/template executed with [Vars].
	Query string
	// Step, when positive, makes this a range query over the window at this
	// resolution; 0 makes it an instant query.
	Step time.Duration
	// Control also measures the stable version over the same window (see the
	// package documentation).
	Control bool
	// Count, for an instant query, is a PromQL template whose value is the
	// number of samples behind Query's value (for instance the requests in
	// the window). Empty means 1.
	Count string
	// MinSamples is the fewest samples that make data; 0 means 1. With fewer,
	// the metric is no data.
	MinSamples int
	// Timeout bounds each evaluation; 0 means the Source's timeout.
	Timeout time.Duration
	// Exemplars, when set, is a PromQL selector template (with [Vars], as
	// Query) of series whose exemplars are failing or slow requests of the
	// new version — such as the 5xx buckets of a latency histogram:
	// the metric then carries up to five of their trace IDs from the window
	// (monitor.Metric.Traces), for a verdict to cite. See exemplars.go.
	Exemplars string
	// ExemplarsAbove keeps only exemplars whose value is above it (slow
	// requests of a latency histogram, in seconds); 0 keeps all.
	ExemplarsAbove float64
}

// String returns the metric name and the query template, as errors show them.
func (q Query) String() string { return fmt.Sprintf("%s (%s)", q.Metric, q.Query) }

// Option configures a [Source].
type Option func(*Source)

// WithTimeout sets the timeout of queries that do not set their own.
// Non-positive values are ignored.
func WithTimeout(d time.Duration) Option {
	return func(s *Source) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithDefaultWindow sets the window judged when Target.Since is zero.
// Non-positive values are ignored.
func WithDefaultWindow(d time.Duration) Option {
	return func(s *Source) {
		if d > 0 {
			s.window = d
		}
	}
}

// WithTargetLabel sets the label that ties scrape targets to a service in
// CheckMonitoring; the default is DefaultTargetLabel. Empty is ignored.
func WithTargetLabel(label string) Option {
	return func(s *Source) {
		if label != "" {
			s.label = label
		}
	}
}

// Source is a [monitor.Source] that runs PromQL queries.
type Source struct {
	api     v1.API
	queries []compiled
	timeout time.Duration
	window  time.Duration
	label   string
	store   exemplarStore // whether the server stores exemplars, asked once
}

type compiled struct {
	Query
	query, count, exemplars *template.Template
}

var _ monitor.Source = (*Source)(nil)

// New returns a Source that runs queries through api, a client made with
// v1.NewAPI. It reports the first query with a bad field, naming the field
// and the value. Nil options are ignored.
func New(api v1.API, queries []Query, opts ...Option) (*Source, error) {
	if api == nil {
		return nil, errors.New("prometheus: New: api is nil")
	}
	s := &Source{api: api, timeout: DefaultTimeout, window: DefaultWindow, label: DefaultTargetLabel}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	seen := make(map[string]bool)
	for i, q := range queries {
		c, err := compile(i, q)
		if err != nil {
			return nil, err
		}
		if seen[q.Metric] {
			return nil, fmt.Errorf("prometheus: queries[%d].Metric %q is used twice", i, q.Metric)
		}
		seen[q.Metric] = true
		s.queries = append(s.queries, c)
	}
	return s, nil
}

var sample = Vars{Service: "svc", Version: "v2", NewVersion: "v2", PreviousVersion: "v1", Window: "60s", Labels: map[string]string{}}

func compile(i int, q Query) (compiled, error) {
	c := compiled{Query: q}
	switch {
	case q.Metric == "":
		return c, fmt.Errorf("prometheus: queries[%d].Metric %q is empty", i, q.Metric)
	case strings.TrimSpace(q.Query) == "":
		return c, fmt.Errorf("prometheus: queries[%d] (%s).Query %q is empty", i, q.Metric, q.Query)
	case q.Step < 0:
		return c, fmt.Errorf("prometheus: queries[%d] (%s).Step %v is negative", i, q.Metric, q.Step)
	case q.MinSamples < 0:
		return c, fmt.Errorf("prometheus: queries[%d] (%s).MinSamples %d is negative", i, q.Metric, q.MinSamples)
	case q.Timeout < 0:
		return c, fmt.Errorf("prometheus: queries[%d] (%s).Timeout %v is negative", i, q.Metric, q.Timeout)
	case q.Count != "" && q.Step > 0:
		return c, fmt.Errorf("prometheus: queries[%d] (%s).Count %q is for instant queries, but Step is %v", i, q.Metric, q.Count, q.Step)
	}
	parse := func(field, text string) (*template.Template, error) {
		t, err := template.New(q.Metric).Funcs(funcs).Option("missingkey=zero").Parse(text)
		if err == nil {
			tmplesc.Pipe(t, escapeFunc)
			err = t.Execute(discard{}, sample)
		}
		if err != nil {
			return nil, fmt.Errorf("prometheus: queries[%d] (%s).%s %q: %w", i, q.Metric, field, text, err)
		}
		return t, nil
	}
	var err error
	if c.query, err = parse("Query", q.Query); err != nil {
		return c, err
	}
	if q.Count != "" {
		if c.count, err = parse("Count", q.Count); err != nil {
			return c, err
		}
	}
	if q.Exemplars != "" {
		if c.exemplars, err = parse("Exemplars", q.Exemplars); err != nil {
			return c, err
		}
	}
	return c, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Queries returns the source's queries.
func (s *Source) Queries() []Query {
	out := make([]Query, len(s.queries))
	for i, c := range s.queries {
		out[i] = c.Query
	}
	return out
}

// VarsFor returns the template variables for t at time now.
func (s *Source) VarsFor(t monitor.Target, now time.Time) Vars {
	version := t.Version
	if servesPrevious(t) {
		version = t.PreviousVersion
	}
	return Vars{
		DeploymentID:    t.DeploymentID,
		Service:         t.Service,
		Version:         version,
		NewVersion:      t.Version,
		PreviousVersion: t.PreviousVersion,
		Environment:     t.Environment,
		Stage:           t.Stage,
		Step:            t.Step,
		Phase:           t.Phase,
		Window:          Duration(s.windowOf(t, now)),
		Labels:          t.Labels,
	}
}

// servesPrevious reports whether users are on the previous version in t's
// phase: before the deploy and after a rollback.
func servesPrevious(t monitor.Target) bool {
	return (t.Phase == "baseline" || t.Phase == "rollback") && t.PreviousVersion != ""
}

func (s *Source) windowOf(t monitor.Target, now time.Time) time.Duration {
	if t.Since.IsZero() || !t.Since.Before(now) {
		return s.window
	}
	return max(now.Sub(t.Since), time.Second)
}

// Duration formats d as a PromQL duration in whole seconds, rounded up, at
// least "1s".
func Duration(d time.Duration) string {
	secs := max((d+time.Second-1)/time.Second, 1)
	return fmt.Sprintf("%ds", secs)
}

// Observe runs every query for t, concurrently, and returns their metrics.
// If any query fails, Observe returns no observation and the errors of all
// the failed queries, joined.
func (s *Source) Observe(ctx context.Context, t monitor.Target) (monitor.Observation, error) {
	now := time.Now()
	vars := s.VarsFor(t, now)
	window := s.windowOf(t, now)
	metrics := make([]monitor.Metric, len(s.queries))
	errs := make([]error, len(s.queries))
	var wg sync.WaitGroup
	for i, q := range s.queries {
		wg.Go(func() { metrics[i], errs[i] = s.measure(ctx, q, vars, t, now, window) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return monitor.Observation{}, err
	}
	o := monitor.Observation{At: now}
	for i, q := range s.queries {
		o.Set(q.Metric, metrics[i])
	}
	return o, nil
}

func (s *Source) measure(ctx context.Context, q compiled, vars Vars, t monitor.Target, now time.Time, window time.Duration) (monitor.Metric, error) {
	m := monitor.NoData()
	v, n, raw, err := s.eval(ctx, q, vars, now, window)
	if err != nil {
		return m, err
	}
	if n >= max(q.MinSamples, 1) {
		m.Value, m.Samples, m.Raw = v, n, raw
		m.Counted = q.Step == 0 && q.Count != "" // Samples counts what the value rests on
	}
	if q.exemplars != nil && m.HasData() {
		m.Traces, m.TracesNote = s.traces(ctx, q, vars, now, window)
	}
	if !q.Control || t.PreviousVersion == "" || servesPrevious(t) {
		return m, nil
	}
	vars.Version, vars.Control = t.PreviousVersion, true
	v, n, raw, err = s.eval(ctx, q, vars, now, window)
	if err != nil {
		return monitor.NoData(), err
	}
	if n >= max(q.MinSamples, 1) {
		m.Control, m.ControlSamples, m.ControlRaw = v, n, raw
	}
	return m, nil
}

// eval runs one query (and its count) for vars. n is 0 when there is no data.
func (s *Source) eval(ctx context.Context, q compiled, vars Vars, now time.Time, window time.Duration) (v float64, n int, raw []float64, err error) {
	promql, err := execute(q.query, vars)
	if err != nil {
		return 0, 0, nil, s.errorf(q, "", "%w", err)
	}
	timeout := q.Timeout
	if timeout == 0 {
		timeout = s.timeout
	}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if q.Step > 0 {
		val, _, _, err := s.api.QueryRange(qctx, promql, v1.Range{Start: now.Add(-window), End: now, Step: q.Step}, v1.WithTimeout(timeout))
		if err != nil {
			return 0, 0, nil, s.errorf(q, promql, "%w", err)
		}
		raw, err := points(val)
		if err != nil {
			return 0, 0, nil, s.errorf(q, promql, "%w", err)
		}
		if len(raw) == 0 {
			return math.NaN(), 0, nil, nil
		}
		var sum float64
		for _, x := range raw {
			sum += x
		}
		return sum / float64(len(raw)), len(raw), raw, nil
	}
	v, ok, err := s.instant(qctx, promql, now, timeout)
	if err != nil {
		return 0, 0, nil, s.errorf(q, promql, "%w", err)
	}
	if !ok {
		return math.NaN(), 0, nil, nil
	}
	if q.count == nil {
		return v, 1, nil, nil
	}
	countQL, err := execute(q.count, vars)
	if err != nil {
		return 0, 0, nil, s.errorf(q, "", "Count: %w", err)
	}
	c, ok, err := s.instant(qctx, countQL, now, timeout)
	if err != nil {
		return 0, 0, nil, s.errorf(q, countQL, "Count: %w", err)
	}
	if !ok || c < 1 {
		return math.NaN(), 0, nil, nil
	}
	return v, int(min(c, math.MaxInt32)), nil, nil
}

func (s *Source) errorf(q compiled, promql, format string, args ...any) error {
	if promql == "" {
		promql = q.Query.Query
	}
	// The client's errors name the server's URL, which may carry
	// credentials: redact it.
	return redact.Error(fmt.Errorf("prometheus: query %s (%s): %w", q.Metric, promql, fmt.Errorf(format, args...)))
}

func execute(t *template.Template, vars Vars) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, vars); err != nil {
		return "", err
	}
	return b.String(), nil
}

// instant evaluates promql at now; ok is false when there is no data.
func (s *Source) instant(ctx context.Context, promql string, now time.Time, timeout time.Duration) (v float64, ok bool, err error) {
	val, _, _, err := s.api.Query(ctx, promql, now, v1.WithTimeout(timeout))
	if err != nil {
		return 0, false, err
	}
	switch val := val.(type) {
	case nil:
		return 0, false, errNoResult
	case *model.Scalar:
		if val == nil {
			return 0, false, errNoResult
		}
		return usable(float64(val.Value))
	case model.Vector:
		switch len(val) {
		case 0:
			return 0, false, nil
		case 1:
			if val[0] == nil {
				return 0, false, errors.New("gave a null sample")
			}
			if val[0].Histogram != nil {
				return 0, false, errors.New("gave a native histogram, want a number")
			}
			return usable(float64(val[0].Value))
		default:
			return 0, false, fmt.Errorf("gave %d series (%s, …), want one: aggregate with sum, avg or max", len(val), val[0].Metric)
		}
	default:
		return 0, false, fmt.Errorf("gave a %s, want a scalar or a vector", val.Type())
	}
}

// errNoResult is an answer with no result at all, such as a bare
// {"status":"success"} or null: the server is not a Prometheus that
// answered the query, which is not the same as no data.
var errNoResult = errors.New("gave no result (not a Prometheus query answer)")

func usable(v float64) (float64, bool, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false, nil
	}
	return v, true, nil
}

// points returns the finite values of a range query's single series.
func points(val model.Value) ([]float64, error) {
	if val == nil {
		return nil, errNoResult
	}
	mat, ok := val.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("gave a %s, want a matrix", val.Type())
	}
	if len(mat) == 1 && mat[0] == nil {
		return nil, errors.New("gave a null series")
	}
	switch len(mat) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("gave %d series (%s, …), want one: aggregate with sum, avg or max", len(mat), mat[0].Metric)
	}
	var raw []float64
	for _, p := range mat[0].Values {
		if v := float64(p.Value); !math.IsNaN(v) && !math.IsInf(v, 0) {
			raw = append(raw, v)
		}
	}
	return raw, nil
}

// ErrMonitoringInactive is wrapped by the errors of [Monitoring.Check] and
// [Source.CheckMonitoring] when a service's monitoring or alerting is not
// active. Their other errors mean the check could not be made.
var ErrMonitoringInactive = errors.New("monitoring is not active")
