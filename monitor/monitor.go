// Package monitor defines what a health observation is and where it comes from.
//
// An [Observation] carries, per named metric, the value measured for the new
// version and, when the source can measure it, the value for the stable version
// over the same window (canary versus control, as Kayenta and LaunchDarkly
// compare). A metric with no data is NaN with a sample count of 0, never 0.
//
// A [Source] produces observations for a [Target]: the release being watched
// and the window being judged. deploy.Monitor is this interface, so every
// source here plugs straight into a deploy.Runner. [Func] adapts a plain
// function.
//
// # Sources
//
//   - [Probe]: an HTTP smoke check of the release (status, body, latency,
//     attempts), reported as a [Check] plus probe_success and
//     probe_latency_seconds.
//   - [LogScan]: error-log signatures new since the baseline, reported as
//     the check "no new errors in logs" plus log_new_signatures.
//   - [Web]: a value from any HTTP endpoint that answers JSON, selected with
//     a JSONPath-like path ("{$.data.ok}"), like Argo Rollouts' web provider.
//   - [Job]: a command whose exit status passes or fails a check, with a
//     timeout that kills its process group and its output in the detail,
//     like Argo Rollouts' job provider.
//   - [Func]: any function.
//   - Package monitor/prometheus: PromQL queries (error rate, latency, any
//     metric) with the stable version as control, and a check that the
//     service's monitoring and alerting are active, and ready-made queries
//     for services instrumented with OpenTelemetry's HTTP conventions
//     (OTelHTTP).
//
// # Concurrency
//
// The runner observes different sources concurrently (one goroutine each per
// interval, all joined before the verdict) but never calls the same source
// concurrently with itself.
//
// # State across restarts
//
// A source that learns something at the baseline which its later verdicts
// depend on, such as the error signatures a LogScan knows, implements
// Stateful: the runner keeps that state in the release's record and gives it
// back in a process that resumes the release.
//
// # Errors
//
// An error from Observe means "could not measure", never "unhealthy". The
// rollback policy counts consecutive errors and fails closed past its limit.
//
// # Untrusted fields and secrets
//
// A Probe's URL template escapes each release field as one URL component
// and refuses a result that leaves the template's scheme, host or port
// ([RenderURL]). Check names, details and errors never show a URL's
// credentials or query values, a probe's credential headers, or log lines'
// URL credentials.
//
// # Closing
//
// A source that holds resources between observations, such as a LogScan's
// open file, is an io.Closer; a deploy.Runner closes such monitors when
// the release ends.
//
// This package imports nothing else of the project but two internal
// helpers (redaction and template escaping) that import only the standard
// library.
package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"
)

// Well-known metric names. Sources may report any name; these are the ones
// the default rollback triggers look for.
const (
	// ErrorRate is the share of failed requests, a ratio in [0, 1].
	ErrorRate = "error_rate"
	// LatencyP95 is the 95th percentile of request latency, in seconds.
	LatencyP95 = "latency_p95_seconds"
	// CPU is CPU utilisation, a ratio of the allotted cores.
	CPU = "cpu_utilization"
	// Memory is resident memory in bytes.
	Memory = "memory_bytes"
	// RequestRate is requests per second.
	RequestRate = "request_rate"
	// SlowRate is the share of requests slower than a latency bound (an
	// SLO's, or the stable version's p95), a ratio in [0, 1] counted over
	// the requests (Rate): a latency judged as a counted rate, whose
	// variance is known, by rollback.Sequential.
	SlowRate = "slow_request_rate"
)

// Target says what is being observed: the release and the window being judged.
// It is a read-only value built by the runner for each observation.
type Target struct {
	DeploymentID    string
	Service         string
	Version         string // the new version
	PreviousVersion string // the stable version, when known
	Environment     string
	Stage           string  // the stage being deployed (e.g. "staging", "production")
	Step            string  // the step being baked; empty during preflight
	Exposure        float64 // share of users on the new version, in [0, 1]
	// Phase is "baseline", "bake", "verify" or "rollback".
	Phase string
	// Since is the start of the window being judged: when the step was applied,
	// for the baseline the start of the baseline window, and for the rollback
	// when the strategy's rollback finished.
	Since time.Time
	// Labels are the release's labels.
	Labels map[string]string
}

// Metric is one named measurement in an [Observation].
type Metric struct {
	// Value is the measurement for the new version; NaN when there is no data.
	Value float64 `json:"value"`
	// Samples is how many samples back Value; 0 means no data.
	Samples int `json:"samples"`
	// Control is the stable version's value over the same window, NaN when the
	// source cannot measure it. When present, the policy compares against it
	// rather than the preflight baseline.
	Control float64 `json:"control"`
	// ControlSamples is how many samples back Control.
	ControlSamples int `json:"controlSamples,omitempty"`
	// Counted says that Samples counts the events a rate is made of — the
	// requests behind an error rate — rather than data points or nothing in
	// particular. Only then may rollback.RelativeIncrease's significance test
	// (Confidence) use it. Rate sets it.
	Counted bool `json:"counted,omitempty"`
	// Raw and ControlRaw are optional raw samples for the statistical judge.
	// They are not persisted.
	Raw        []float64 `json:"-"`
	ControlRaw []float64 `json:"-"`
	// Traces are the trace IDs of failing or slow requests of the new
	// version in the window (from exemplars), most recent first, for a
	// verdict to cite; TracesNote says why there are none when the source
	// was asked for them and could not give them (a server that stores no
	// exemplars, say). Neither is persisted.
	Traces     []string `json:"-"`
	TracesNote string   `json:"-"`
}

// Value returns a metric with a single value backed by n samples and no control.
// A NaN v or n == 0 gives a metric with no data. For a rate over events
// (an error rate over requests) use Rate, which lets
// rollback.RelativeIncrease's significance test use the count.
func Value(v float64, n int) Metric {
	if math.IsNaN(v) || n <= 0 {
		return NoData()
	}
	return Metric{Value: v, Samples: n, Control: math.NaN()}
}

// Rate returns a rate (a share of events, such as an error rate) over the
// given number of events, such as requests, and no control: Value(v,
// events) with Counted set. A NaN v or no events gives no data.
func Rate(v float64, events int) Metric {
	m := Value(v, events)
	m.Counted = m.HasData()
	return m
}

// NoData returns a metric with no data: NaN, zero samples, no control.
func NoData() Metric { return Metric{Value: math.NaN(), Control: math.NaN()} }

// HasData reports whether the metric has a value for the new version.
func (m Metric) HasData() bool { return m.Samples > 0 && !math.IsNaN(m.Value) }

// HasControl reports whether the metric has a value for the stable version.
func (m Metric) HasControl() bool { return m.ControlSamples > 0 && !math.IsNaN(m.Control) }

// Check is the outcome of a pass/fail check such as a smoke probe.
type Check struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Critical checks trigger a rollback at once when they fail.
	Critical bool `json:"critical,omitempty"`
	// Kind says which checklist item a passing check is evidence for:
	// KindSmoke (the default when empty) or KindLogs.
	Kind   string `json:"kind,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Kinds of [Check]. The runner ticks "Verify feature works in production"
// with passing smoke checks and "Check error logs for new errors" with
// passing log checks.
const (
	// KindSmoke is a functional check of the service, such as a [Probe].
	KindSmoke = "smoke"
	// KindLogs is a check of the service's logs, such as a [LogScan].
	KindLogs = "logs"
)

// Observation is what one or more sources measured at one time.
type Observation struct {
	At time.Time `json:"at"`
	// Since is the start of the window the metrics cover (Target.Since),
	// set by the runner before it judges; zero when unknown. Sequential
	// tests use it to tell a new window's counts from the last one's.
	Since   time.Time         `json:"since,omitzero"`
	Metrics map[string]Metric `json:"metrics,omitempty"`
	Checks  []Check           `json:"checks,omitempty"`
}

// Set records metric m under name, allocating the map if needed.
func (o *Observation) Set(name string, m Metric) {
	if o.Metrics == nil {
		o.Metrics = make(map[string]Metric)
	}
	o.Metrics[name] = m
}

// Metric returns the named metric, or a no-data metric when absent.
func (o Observation) Metric(name string) Metric {
	if m, ok := o.Metrics[name]; ok {
		return m
	}
	return NoData()
}

// Names returns the metric names in sorted order.
func (o Observation) Names() []string {
	names := make([]string, 0, len(o.Metrics))
	for n := range o.Metrics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Merge adds the metrics and checks of other to o. A metric present in both
// keeps the value from other. The later At wins.
func (o *Observation) Merge(other Observation) {
	for n, m := range other.Metrics {
		o.Set(n, m)
	}
	o.Checks = append(o.Checks, other.Checks...)
	if other.At.After(o.At) {
		o.At = other.At
	}
}

// Source measures the health of a release. deploy.Monitor is this interface.
//
// Observe is never called concurrently with itself on the same Source. An
// error means the source could not measure; it is never a health verdict.
type Source interface {
	Observe(ctx context.Context, t Target) (Observation, error)
}

// Stateful is a Source that learns something before the deploy that its
// later verdicts depend on, such as the error signatures a [LogScan] knows
// from the baseline. The runner saves State after the baseline observation
// in the release's record, and gives it back with Restore before observing
// in a process that resumes the release (Runner.Resume, Reconcile from a
// cron job), so that a restart does not lose it. Restore may be called on
// a source that already has the state; it must then change nothing.
type Stateful interface {
	Source
	State() ([]byte, error)
	Restore(state []byte) error
}

// Func adapts a function to a [Source].
type Func func(ctx context.Context, t Target) (Observation, error)

// Observe calls f(ctx, t).
func (f Func) Observe(ctx context.Context, t Target) (Observation, error) { return f(ctx, t) }

// Window is one period of the post-deployment watch.
type Window struct {
	// Name is shown in progress and in the report ("intensive", "regular").
	Name string `json:"name"`
	// Duration is how long the window lasts.
	Duration time.Duration `json:"duration"`
	// Interval is how often sources are observed during the window.
	Interval time.Duration `json:"interval"`
}

// Schedule is the post-deployment watch: its windows run one after the other
// once the release is fully exposed; after the last one the release is stable.
// A breach in any window rolls back.
type Schedule struct {
	Windows []Window `json:"windows"`
}

// DefaultSchedule is the watch of the deployment checklist: intensive
// observation every 30 seconds for the first hour, then regular checks every
// 5 minutes until 24 hours have passed, then normal monitoring.
func DefaultSchedule() Schedule {
	return Schedule{Windows: []Window{
		{Name: "intensive", Duration: time.Hour, Interval: 30 * time.Second},
		{Name: "regular", Duration: 23 * time.Hour, Interval: 5 * time.Minute},
	}}
}

// Total returns the sum of the windows' durations.
func (s Schedule) Total() time.Duration {
	var d time.Duration
	for _, w := range s.Windows {
		d += w.Duration
	}
	return d
}

// Validate reports the first window with a bad duration or interval.
func (s Schedule) Validate() error {
	for i, w := range s.Windows {
		switch {
		case w.Name == "":
			return fmt.Errorf("monitor: schedule.Windows[%d].Name is empty", i)
		case w.Duration <= 0:
			return fmt.Errorf("monitor: schedule.Windows[%d] (%s).Duration %v must be positive", i, w.Name, w.Duration)
		case w.Interval <= 0:
			return fmt.Errorf("monitor: schedule.Windows[%d] (%s).Interval %v must be positive", i, w.Name, w.Interval)
		case w.Interval > w.Duration:
			return fmt.Errorf("monitor: schedule.Windows[%d] (%s).Interval %v is longer than its Duration %v", i, w.Name, w.Interval, w.Duration)
		}
	}
	return nil
}

// Observations returns how many observations window w makes: one at the end
// of every interval.
func (w Window) Observations() int { return int(w.Duration / w.Interval) }

// jsonMetric is Metric's wire form: NaN, which JSON cannot carry, is null.
type jsonMetric struct {
	Value          *float64 `json:"value"`
	Samples        int      `json:"samples"`
	Control        *float64 `json:"control,omitempty"`
	ControlSamples int      `json:"controlSamples,omitempty"`
	Counted        bool     `json:"counted,omitempty"`
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func orNaN(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// MarshalJSON writes NaN values as null.
func (m Metric) MarshalJSON() ([]byte, error) {
	return json.Marshal(jsonMetric{Value: finite(m.Value), Samples: m.Samples, Control: finite(m.Control), ControlSamples: m.ControlSamples, Counted: m.Counted})
}

// UnmarshalJSON reads null values as NaN.
func (m *Metric) UnmarshalJSON(b []byte) error {
	var j jsonMetric
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*m = Metric{Value: orNaN(j.Value), Samples: j.Samples, Control: orNaN(j.Control), ControlSamples: j.ControlSamples, Counted: j.Counted}
	return nil
}
