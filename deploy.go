package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/deploykit/deploy/internal/redact"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// ScopeName is the instrumentation scope of the spans and metrics the runner
// records.
const ScopeName = "github.com/deploykit/deploy"

// Release describes what is being released: service, version, environment,
// commit, description, links and labels. Service and Version are required;
// Environment defaults to "production".
type Release = state.Release

// Status is the state of a release: running, or one of the final statuses.
type Status = state.Status

// Statuses of a release.
const (
	Running        = state.Running
	Succeeded      = state.Succeeded
	RolledBack     = state.RolledBack
	Failed         = state.Failed
	Blocked        = state.Blocked
	Aborted        = state.Aborted
	RollbackFailed = state.RollbackFailed
	// RollbackUnverified: rolled back, but nothing showed that health came back.
	RollbackUnverified = state.RollbackUnverified
)

// Phase is one of the four activities of a deployment, or the rollback; it
// is state.Phase.
type Phase = state.Phase

// Phases, in order. PhaseRollback interrupts deploy or verify when the
// release hurts users; PhaseComplete is the workflow state once done.
const (
	PhasePreflight   = state.PhasePreflight
	PhaseDeploy      = state.PhaseDeploy
	PhaseVerify      = state.PhaseVerify
	PhaseCommunicate = state.PhaseCommunicate
	PhaseRollback    = state.PhaseRollback
	PhaseComplete    = state.PhaseComplete
)

// Deployment is the read-only view of a release in progress that the runner
// hands to gates and strategies. It is valid for the duration of the call
// only: do not keep it, and do not modify its maps.
type Deployment struct {
	// ID identifies the release; it is the key of its state record.
	ID      string
	Release Release
	// Stage is the stage being deployed ("staging", "production").
	Stage Stage
	// Step is the index of the step being applied within the stage's plan.
	Step int
	// Phase is where the release is: PhasePreflight for gates,
	// PhaseDeploy for steps and their approvals, PhaseRollback for the
	// rollback.
	Phase Phase
	// Exposure is the share of users on the new version now, in [0, 1].
	Exposure float64
	// Baseline is the preflight observation of every monitor.
	Baseline monitor.Observation
	// Started is when the release was created.
	Started time.Time
	// Token is the fencing token of the lease under which the runner makes
	// this call. It grows every time another runner takes the release over,
	// and from one release to the next: a release starts at its creation
	// time in microseconds (see FencingToken).
	// A strategy whose target can refuse stale writers (a database row, a
	// Kubernetes annotation, a config file kept beside the change) should
	// store the token with each change and refuse a change that carries a
	// lower token than the one stored: then a runner that was paused past
	// its lease (a long GC, SIGSTOP, a frozen VM) and wakes up after another
	// runner rolled the release back cannot apply its step after all.
	Token int64
	// Memo is the strategy's memory of this release. Plan may set keys in
	// it when the runner first plans the release (at Run or Start), such as
	// which side a blue-green release targets; the runner saves it with
	// the record before anything is applied, and every later call — after
	// a crash, in another process — sees the same values. Later changes are
	// not saved. It is nil for Runner.Plan's dry run until Plan sets it.
	Memo map[string]string
}

// Stage is one environment the release passes through in order, such as
// staging before production. Each stage runs the strategy's plan for that stage.
type Stage struct {
	// Name is shown in progress and in the report.
	Name string
	// Environment is passed to monitors; empty means the release's environment.
	Environment string
}

// Gate is a pre-deployment check. Check returns nil to pass, an error to
// block (its message is the reason), or an error made by [RetryAt] to ask to
// be checked again later. Gates are called one at a time, in order.
//
// A gate may implement Name() string to name itself in reports and spans, and
// [Checklister] to tick checklist items when it passes.
type Gate interface {
	Check(ctx context.Context, d *Deployment) error
}

// GateFunc adapts a function to a [Gate].
type GateFunc func(ctx context.Context, d *Deployment) error

// Check calls f(ctx, d).
func (f GateFunc) Check(ctx context.Context, d *Deployment) error { return f(ctx, d) }

// Monitor measures the health of a release; it is [monitor.Source]. An error
// means "could not measure", never "unhealthy". Monitors are observed
// concurrently with each other (one goroutine each per interval, all joined
// before the verdict), never concurrently with themselves.
//
// A monitor may implement Name() string and [Checklister].
type Monitor = monitor.Source

// MonitorFunc adapts a function to a [Monitor]; it is [monitor.Func].
type MonitorFunc = monitor.Func

// Strategy is how a release reaches users: a plan of steps and a way back.
//
// Plan must be deterministic for the same deployment and stage: Resume
// continues by step index, so the steps after a restart must be the same
// steps. Step names are unique within a plan. Rollback returns every user to
// the previous version; it is called under a context that outlives the
// cancellation of Run, and must be idempotent. With several stages
// (WithStages), Plan is called for each stage (d.Stage), and Rollback once,
// for the stage being deployed when the release failed; stages already
// completed, such as staging, keep the new version.
//
// A strategy may implement Name() string, RollbackPath() bool,
// DescribeRollback() string and Validate() error. A strategy whose
// RollbackPath reports false has no way back, which the runner refuses for
// production unless waived ([NoRollbackPlan]). DescribeRollback says what
// Rollback does, for the rollback procedure of the plan and the report
// ("switch traffic back to the old side"); the default is "return every
// user to the previous version". [NewRunner] calls Validate, so that a bad
// configuration is refused, naming the field and its value, before any
// release starts. Test a strategy with deploytest.TestStrategy.
type Strategy interface {
	Plan(ctx context.Context, d *Deployment) ([]Step, error)
	Rollback(ctx context.Context, d *Deployment) error
}

// Step is one move of a strategy: apply, then bake while monitors watch.
type Step struct {
	// Name is unique within the plan ("deploy", "5%", "switch").
	Name string
	// Exposure is the share of users or traffic on the new version once the
	// step is applied, in [0, 1].
	Exposure float64
	// Bake is how long monitors watch before the next step. 0 promotes as
	// soon as the step is applied, without observing.
	Bake time.Duration
	// Approval makes the runner wait, before applying the step, for a
	// person's approval (Runner.Approve, once for this step of this
	// release) or for the approval gate (WithApproval), whichever comes
	// first. Like a paused Argo Rollout, the wait has no deadline; unlike
	// one, the users already exposed by the steps before stay watched
	// every interval, and a breach rolls back.
	Approval bool
	// Approvers, with Approval, say who may approve the step through
	// Runner.Approve; anyone may when empty. Others are refused with
	// ErrNotApprover.
	Approvers []string
	// Analysis, when set, runs inline once the step is applied: the step
	// waits for its result as well as its bake (see Analysis).
	Analysis *Analysis
	// Pause, when set, makes the step wait after its bake and analysis,
	// for a duration or until promoted (see Pause).
	Pause *Pause
	// Partial, on the last step of a plan, says the release is meant to end
	// below full exposure (a dark launch, a standing 10 % canary). Without
	// it, a plan whose last step has Exposure below 1 is refused: a release
	// that never reaches everyone would otherwise "succeed".
	Partial bool
	// Apply makes the step happen. It must be idempotent: after a crash the
	// runner may apply a step again that was applied but not yet recorded.
	Apply func(ctx context.Context, d *Deployment) error
}

// Notifier tells people what happens. Notify is called from the runner's
// outbox, bounded by Timeouts.Notify and with retries and backoff (1 s
// doubling to 5 minutes, each wait up to 20 % shorter for jitter, never
// given up: an event stays pending until the notifier takes it, unless
// ExpireAfter gives it a maximum age); an error means "not delivered, try
// again". An error that implements Temporary()
// bool and returns false (an HTTP 401 or 404) is retried at the longest
// backoff only, until the notifier is fixed; one that implements
// RetryAfter() time.Duration makes the next attempt wait at least that long,
// up to 15 minutes (an HTTP 429 with Retry-After; see notify.HTTPError).
// Notifications never block or fail a release. One notifier receives its
// events one at a time, in order; Event.Seq, the same on every retry of an
// event, lets a receiver de-duplicate.
type Notifier interface {
	Notify(ctx context.Context, e Event) error
}

// NotifierFunc adapts a function to a [Notifier].
type NotifierFunc func(ctx context.Context, e Event) error

// Notify calls f(ctx, e).
func (f NotifierFunc) Notify(ctx context.Context, e Event) error { return f(ctx, e) }

// Checklister is implemented by gates and monitors that provide evidence for
// items of the deployment checklist. The runner ticks the items when the gate
// passes or the monitor's observation is healthy.
type Checklister interface {
	ChecklistItems() []Item
}

// Sentinel errors. Errors returned by Run, Resume, Rollback and Reconcile
// wrap one of them, usually inside a *PhaseError. The package
// documentation has the table of final statuses and the errors that come
// with them.
var (
	// ErrBlocked: a gate or a pitfall guard refused the release, or a gate
	// asked to wait past the gate deadline. Nothing was deployed.
	ErrBlocked = errors.New("deploy: blocked")
	// ErrUnhealthy: the release hurt users — a rollback trigger fired on
	// what the monitors measured, while a step baked or after full
	// exposure — and was rolled back.
	ErrUnhealthy = errors.New("deploy: unhealthy")
	// ErrInconclusive: the monitors had too little data to judge the
	// release more often than the policy's InconclusiveLimit allows; it
	// was rolled back without evidence that it hurt users.
	ErrInconclusive = errors.New("deploy: inconclusive")
	// ErrSourceFailed: the metric sources failed to measure (errors,
	// timeouts, panics) ConsecutiveErrorLimit times in a row; the release
	// was rolled back because its health could not be watched (fail safe).
	ErrSourceFailed = errors.New("deploy: metric source failed")
	// ErrProgressDeadline: a step made no progress within the policy's
	// progress deadline after its bake; it was rolled back.
	ErrProgressDeadline = errors.New("deploy: progress deadline exceeded")
	// ErrStepFailed: a step could not be applied (its Apply returned an
	// error, panicked or did not return within the progress deadline), or
	// the plan could not be made; what may be deployed was rolled back.
	ErrStepFailed = errors.New("deploy: step failed")
	// ErrAborted: a person asked for the rollback (Runner.Rollback, an
	// approval refused) or the run's context was cancelled; the release was
	// rolled back, or ended before anything was deployed.
	ErrAborted = errors.New("deploy: aborted")
	// ErrLocked: another runner holds the release (a *LockedError says who
	// and until when), or another release of the same service and
	// environment is active (the error also matches state.ErrActive and
	// names it).
	ErrLocked = errors.New("deploy: locked")
	// ErrRollbackFailed: the rollback failed or did not restore health. A
	// person must act; an urgent event was sent. It comes joined with the
	// error of what made the release roll back.
	ErrRollbackFailed = errors.New("deploy: rollback failed")
	// ErrNotVerified: the rollback ran, but nothing could show it restored
	// health (status RollbackUnverified); check by hand. It comes joined
	// with the error of what made the release roll back.
	ErrNotVerified = errors.New("deploy: rollback not verified")
	// ErrInvalid: bad input (a release, a plan, an option), refused before
	// any side effect.
	ErrInvalid = errors.New("deploy: invalid")
	// ErrCorrupt: a release record breaks one of the engine's invariants (a
	// negative step, a rollback without a trigger, a release being reported
	// without an outcome); a *CorruptError names the field. The runner does
	// not act on it. It also matches state.ErrCorrupt.
	ErrCorrupt = errors.New("deploy: record is corrupt")
	// ErrInvariant: the runner was about to save a record, or make an
	// effect, that breaks one of its invariants — a bug in deploykit, never
	// in your code. Nothing was written or applied; please report it.
	ErrInvariant = errors.New("deploy: invariant violated")
)

// PhaseError is an error in a phase, and step if any.
type PhaseError struct {
	Phase Phase
	Stage string
	Step  string
	Err   error
}

// Error says where the release failed and why.
func (e *PhaseError) Error() string {
	where := string(e.Phase)
	if e.Step != "" {
		where += " step " + e.Stage + "/" + e.Step
	}
	return where + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *PhaseError) Unwrap() error { return e.Err }

// evidenceKey is the context key of the gate's evidence sink.
type evidenceKey struct{}

// evidenceSink collects what a gate said it saw.
type evidenceSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *evidenceSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return redact.Text(strings.Join(s.lines, "; "))
}

// Evidence records what a passing gate saw, such as "CI success on 3f2a1c9:
// build, test, lint" or "approved by alice", so that the checklist items the
// gate ticks and the report show it instead of a bare "gate passed". Call it
// from Gate.Check with the context the runner passed; several calls are
// joined with "; ". Evidence of a gate that then blocks or asks to retry is
// dropped. Outside a gate's Check it does nothing, so a gate stays usable on
// its own.
func Evidence(ctx context.Context, format string, args ...any) {
	s, ok := ctx.Value(evidenceKey{}).(*evidenceSink)
	if !ok || s == nil {
		return
	}
	line := format
	if len(args) > 0 {
		line = fmt.Sprintf(format, args...)
	}
	s.mu.Lock()
	s.lines = append(s.lines, line)
	s.mu.Unlock()
}

// LockedError is the ErrLocked of a release whose lease another runner
// holds: it names the holder (see WithHolder) and when the lease runs out,
// after which Resume takes the release over (see WithLeaseGrace).
type LockedError struct {
	ID     string
	Holder string
	Until  time.Time
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%v: release %s is held by %s until %s", ErrLocked, e.ID, e.Holder, e.Until.Format(time.RFC3339))
}

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// retryError asks for a gate to be checked again at a time.
type retryError struct {
	at     time.Time
	reason string
}

func (e *retryError) Error() string { return e.reason }

// RetryAt returns an error for Gate.Check that asks the runner to check the
// gate again at t, for a reason such as "window closed until Monday 09:00" or
// "approval pending". The runner waits up to its gate deadline, then blocks.
func RetryAt(t time.Time, reason string) error { return &retryError{at: t, reason: reason} }

// IsRetry reports whether err asks to be retried, and when.
func IsRetry(err error) (time.Time, bool) {
	var r *retryError
	if errors.As(err, &r) {
		return r.at, true
	}
	return time.Time{}, false
}

// Pitfall names one of the four common deployment pitfalls the runner guards
// against. See [WithWaiver].
type Pitfall string

// The pitfalls of the deployment checklist.
const (
	FridayDeploy   Pitfall = "friday-deploy"    // deploying before weekends or holidays
	NoMonitoring   Pitfall = "no-monitoring"    // deploying without watching for issues
	NoRollbackPlan Pitfall = "no-rollback-plan" // unable to revert quickly
	SilentDeploy   Pitfall = "silent-deploy"    // not telling stakeholders
)

// EventKind says what an Event reports.
type EventKind string

// Event kinds.
const (
	EventStarted     EventKind = "started"
	EventGate        EventKind = "gate"
	EventPhase       EventKind = "phase"
	EventStep        EventKind = "step"
	EventObservation EventKind = "observation"
	EventRollback    EventKind = "rollback"
	EventFinished    EventKind = "finished"
	// EventWaiting: the release waits for a person (Event.Wait says for
	// what): an approval, a pause, an inconclusive analysis, a Retry.
	EventWaiting EventKind = "waiting"
	// EventDecision: a person's decision was carried out (Event.Decision).
	EventDecision EventKind = "decision"
	// EventAnalysis: an analysis run ended (Event.Analysis).
	EventAnalysis EventKind = "analysis"
)

// Reading is one trigger's judgement in an observation event.
type Reading struct {
	Trigger string `json:"trigger"`
	Metric  string `json:"metric"`
	Outcome string `json:"outcome"` // pass, inconclusive, fail
	Reason  string `json:"reason"`
}

// Event is something notifiers hear about. It travels as a struct so that
// fields can be added without breaking notifiers.
type Event struct {
	Kind         EventKind `json:"kind"`
	At           time.Time `json:"at"`
	DeploymentID string    `json:"deploymentId"`
	Release      Release   `json:"release"`
	Phase        Phase     `json:"phase"`
	Stage        string    `json:"stage,omitempty"`
	Step         string    `json:"step,omitempty"`
	Exposure     float64   `json:"exposure"`
	// Status is the release's status; final on EventFinished.
	Status Status `json:"status"`
	// Verdict is the rollback policy's verdict on an observation.
	Verdict string `json:"verdict,omitempty"`
	// Readings are the triggers' judgements behind Verdict.
	Readings []Reading `json:"readings,omitempty"`
	// Message is a one-line summary for people.
	Message string `json:"message"`
	// Urgent events need a person now (a failed rollback).
	Urgent bool `json:"urgent,omitempty"`
	// Report is the Markdown summary report, on EventFinished.
	Report string `json:"report,omitempty"`
	// Seq numbers the release's events from 1, in order; a notifier retried
	// after a failure sees the same Seq again, so receivers can de-duplicate.
	Seq int `json:"seq"`
	// Gate is "passed", "waiting" or "blocked" on EventGate.
	Gate string `json:"gate,omitempty"`
	// Trigger is what made the release roll back or stop, on EventRollback
	// and EventFinished.
	Trigger *state.Trigger `json:"trigger,omitempty"`
	// FollowUps are the report's follow-up items, on EventFinished.
	FollowUps []string `json:"followUps,omitempty"`
	// Duration is how long the release took, on EventFinished.
	Duration time.Duration `json:"duration,omitempty"`
	// Links are the release's links plus any the runner adds.
	Links map[string]string `json:"links,omitempty"`
	// Wait is what the release waits for, on EventWaiting.
	Wait *state.Wait `json:"wait,omitempty"`
	// Decision is the decision carried out, on EventDecision.
	Decision *state.Decision `json:"decision,omitempty"`
	// Analysis is the analysis run that ended, on EventAnalysis (its
	// measurements left out).
	Analysis *state.AnalysisRun `json:"analysis,omitempty"`
}
