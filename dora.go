package deploy

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/deploykit/deploy/state"
)

// The DORA metrics, recorded through the runner's meter provider
// (WithMeterProvider, else the global one) when a release ends. Deployment
// frequency and change failure rate come from one counter; time to restore
// and lead time for changes are histograms in seconds. OpenTelemetry's
// semantic conventions define no deployment metrics yet (the cicd ones are
// about pipeline runs), so the names are this library's own, under deploy.;
// the attributes are the conventions' where one exists: service.name,
// deployment.environment.name and deployment.status (succeeded or failed).
// deploy.status, the release's own final status, and deploy.trigger, what
// made it roll back, are this library's.
//
// The PromQL below assumes the OpenTelemetry Prometheus exporter's or the
// Collector's default translation (dots to underscores, units as suffixes,
// _total on counters).
const (
	// MetricDeployments counts releases that ended, blocked ones excepted
	// (nothing was deployed), by service.name,
	// deployment.environment.name, deployment.status ("succeeded" for a
	// release that reached everyone, "failed" for one that rolled back, was
	// aborted, failed or whose rollback failed) and deploy.status. Unit
	// {deployment}.
	//
	// Deployment frequency, per day and service, in production:
	//
	//	sum by (service_name) (increase(deploy_dora_deployments_total{deployment_environment_name="production"}[1d]))
	//
	// Change failure rate over 30 days:
	//
	//	sum by (service_name) (increase(deploy_dora_deployments_total{deployment_environment_name="production", deployment_status="failed"}[30d]))
	//	  / sum by (service_name) (increase(deploy_dora_deployments_total{deployment_environment_name="production"}[30d]))
	MetricDeployments = "deploy.dora.deployments"
	// MetricTimeToRestore is the time from the trigger that started a
	// rollback (the first breach, failed check or error) to the end of the
	// verification that showed the previous version healthy, by
	// service.name, deployment.environment.name and deploy.trigger. A
	// rollback that failed, or that no monitor could verify, records
	// nothing: the service was not shown restored. Unit s.
	//
	// Median time to restore over 30 days:
	//
	//	histogram_quantile(0.5, sum by (le) (increase(deploy_dora_time_to_restore_seconds_bucket{deployment_environment_name="production"}[30d])))
	MetricTimeToRestore = "deploy.dora.time_to_restore"
	// MetricLeadTime is the time from the commit (Release.CommitTime) to the
	// moment the release reached everyone (exposure 1 in its last stage), for
	// releases that succeeded and give a commit time, by service.name and
	// deployment.environment.name. Unit s.
	//
	// Median lead time for changes over 30 days:
	//
	//	histogram_quantile(0.5, sum by (le) (increase(deploy_dora_lead_time_seconds_bucket{deployment_environment_name="production"}[30d])))
	MetricLeadTime = "deploy.dora.lead_time"
)

// Bucket boundaries, in seconds: time to restore from a minute to a week,
// lead time from five minutes to a month.
var (
	restoreBuckets = []float64{60, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400, 604800}
	leadBuckets    = []float64{300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 172800, 604800, 1209600, 2592000}
)

// recordDORA records the DORA metrics of a release that ended, from its
// final record. It does nothing for a record that is not final or was
// blocked. Call it once per release, when the release ends (the engine
// calls it from finish); the instruments are looked up at each call, which
// the OpenTelemetry SDK answers from its cache.
func (r *Runner) recordDORA(ctx context.Context, rec *state.Record) {
	if rec == nil || !rec.Status.Final() || rec.Status == Blocked {
		return
	}
	m := r.meterProvider().Meter(ScopeName)
	where := []attribute.KeyValue{
		semconv.ServiceName(rec.Release.Service),
		semconv.DeploymentEnvironmentNameKey.String(rec.Release.Environment),
	}
	outcome := semconv.DeploymentStatusFailed
	if rec.Status == Succeeded {
		outcome = semconv.DeploymentStatusSucceeded
	}
	if c, err := m.Int64Counter(MetricDeployments, metric.WithUnit("{deployment}"),
		metric.WithDescription("Releases that ended, by outcome: deployment frequency and change failure rate.")); err == nil {
		c.Add(ctx, 1, metric.WithAttributes(append(where, outcome, attribute.String("deploy.status", string(rec.Status)))...))
	}
	if d, ok := timeToRestore(rec); ok {
		if h, err := m.Float64Histogram(MetricTimeToRestore, metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(restoreBuckets...),
			metric.WithDescription("Time from the trigger of a rollback to its verification.")); err == nil {
			h.Record(ctx, d.Seconds(), metric.WithAttributes(append(where, attribute.String("deploy.trigger", string(rec.Trigger.Kind)))...))
		}
	}
	if d, ok := leadTime(rec); ok {
		if h, err := m.Float64Histogram(MetricLeadTime, metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(leadBuckets...),
			metric.WithDescription("Time from the commit to the release reaching everyone.")); err == nil {
			h.Record(ctx, d.Seconds(), metric.WithAttributes(where...))
		}
	}
}

// timeToRestore is the time from the rollback's trigger to the verification
// that showed the previous version healthy, if there was one.
func timeToRestore(rec *state.Record) (time.Duration, bool) {
	if rec.Trigger == nil || rec.Trigger.At.IsZero() || rec.Status == RollbackFailed {
		return 0, false
	}
	for _, e := range rec.RollbackSteps {
		if e.Kind == state.EntryVerify && e.Outcome == state.OutcomeVerified {
			return e.At.Sub(rec.Trigger.At), true
		}
	}
	return 0, false
}

// leadTime is the time from the commit to the first moment the release's
// last stage had everyone on the new version, for a release that succeeded.
func leadTime(rec *state.Record) (time.Duration, bool) {
	if rec.Status != Succeeded || rec.Release.CommitTime.IsZero() {
		return 0, false
	}
	last := ""
	for _, e := range rec.Timeline {
		if e.Kind == state.EntryStep && e.Stage != "" {
			last = e.Stage
		}
	}
	for _, e := range rec.Timeline {
		if e.Kind == state.EntryStep && e.Outcome == state.OutcomeApplied && e.Stage == last && e.Exposure >= 1 {
			return e.At.Sub(rec.Release.CommitTime), true
		}
	}
	return 0, false
}
