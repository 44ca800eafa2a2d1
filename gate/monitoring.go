package gate

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/internal/redact"
)

// MonitoringChecker checks that a service is monitored and alerted on.
// prometheus.Monitoring (package monitor/prometheus) implements it. Check
// returns nil when the service is monitored; an error says what is missing or
// why the check could not be made.
type MonitoringChecker interface {
	Check(ctx context.Context, service string) error
}

// MonitoringConfirmer is a [MonitoringChecker] that also says what it found
// when the service is monitored, such as prometheus.Monitoring's Confirm:
// "2 scrape targets up (job="checkout"); 1 alerting rule mentioning checkout:
// CheckoutErrors". [MonitoringActive] records it as the gate's evidence.
type MonitoringConfirmer interface {
	Confirm(ctx context.Context, service string) (evidence string, err error)
}

// MonitoringFunc adapts a function to a [MonitoringChecker], such as the
// method value (*prometheus.Source).CheckMonitoring.
type MonitoringFunc func(ctx context.Context, service string) error

// Check calls f(ctx, service).
func (f MonitoringFunc) Check(ctx context.Context, service string) error { return f(ctx, service) }

// MonitoringActive is "Confirm monitoring/alerting active" as a gate: it
// passes when its Checker finds the service's scrape targets up and alerting
// rules about it loaded, and then ticks deploy.ItemMonitoringActive. With
// Prometheus:
//
//	gate.MonitoringActive{Checker: prometheus.Monitoring{API: v1.NewAPI(client)}}
//
// A failed check blocks the release with the checker's error, which wraps
// prometheus.ErrMonitoringInactive when monitoring is missing, unless Retry
// is set: then the runner checks again after Retry, up to its gate deadline
// (for targets that are still coming up).
//
// The package does not import monitor/prometheus, so that importing gate does
// not pull in the Prometheus client.
type MonitoringActive struct {
	// Checker makes the check. Required.
	Checker MonitoringChecker
	// Service is the service to check; empty means the release's service.
	Service string
	// Retry, when positive, asks the runner to check again after Retry when
	// the check fails, instead of blocking at once.
	Retry time.Duration
}

var (
	_ deploy.Gate        = (*MonitoringActive)(nil)
	_ deploy.Checklister = (*MonitoringActive)(nil)
)

// Name returns "monitoring-active".
func (m *MonitoringActive) Name() string { return "monitoring-active" }

// ChecklistItems returns deploy.ItemMonitoringActive.
func (m *MonitoringActive) ChecklistItems() []deploy.Item {
	return []deploy.Item{deploy.ItemMonitoringActive}
}

// Validate reports a nil Checker and a negative Retry.
func (m *MonitoringActive) Validate() error {
	var p problems
	if m.Checker == nil {
		p.add("Checker is nil; use prometheus.Monitoring{API: …}")
	}
	if m.Retry < 0 {
		p.add("Retry %v is negative", m.Retry)
	}
	return p.err("MonitoringActive")
}

// Check runs the checker for the service.
func (m *MonitoringActive) Check(ctx context.Context, d *deploy.Deployment) error {
	if err := m.Validate(); err != nil {
		return err
	}
	service := cmp.Or(m.Service, d.Release.Service)
	var err error
	if c, ok := m.Checker.(MonitoringConfirmer); ok {
		var evidence string
		if evidence, err = c.Confirm(ctx, service); err == nil {
			deploy.Evidence(ctx, "%s", redact.Text(evidence))
			return nil
		}
	} else if err = m.Checker.Check(ctx, service); err == nil {
		return nil
	}
	if m.Retry > 0 && ctx.Err() == nil {
		return deploy.RetryAt(time.Now().Add(m.Retry), redact.Text(fmt.Sprintf("monitoring of %s not confirmed: %v", service, err)))
	}
	return redact.Error(fmt.Errorf("monitoring of %s not confirmed: %w", service, err))
}
