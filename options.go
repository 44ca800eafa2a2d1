package deploy

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
)

// Option configures a Runner. Nil options, and options given nil values,
// are ignored.
type Option func(*config)

type config struct {
	gates           []Gate
	monitors        []Monitor
	notifiers       []Notifier
	policy          rollback.Policy
	stages          []Stage
	schedule        monitor.Schedule
	scheduleSet     bool
	store           state.Store
	tp              trace.TracerProvider
	mp              metric.MeterProvider
	logger          *slog.Logger
	waivers         map[Pitfall]string
	interval        time.Duration
	gateDeadline    time.Duration
	approval        Gate
	rollbackTimeout time.Duration
	leaseGrace      time.Duration
	rollbackSettle  time.Duration
	holder          string
	baselineWindow  time.Duration
	notifyTimeout   time.Duration
	location        *time.Location
	rollbackSteps   []rollback.PlanStep
	storeDir        string
	timeouts        Timeouts
	traffic         *rollback.Traffic // WithTraffic, for the power check

	stepRules  []StepRule
	background *Analysis
	startingAt int
	prePromo   *Analysis
	postPromo  *Analysis
}

// Timeouts bound the calls the runner makes into code it does not control.
// A call that does not return in time is given up: the runner goes on as
// for an error of that call (a gate blocks, a monitor fails to measure, a
// delivery is retried), and the call's context is cancelled. A zero field
// keeps its default. A step's Apply is bounded by the policy's progress
// deadline, Strategy.Rollback and each rollback step by WithRollbackTimeout.
type Timeouts struct {
	// Plan bounds Strategy.Plan. Default 30 s.
	Plan time.Duration
	// Check bounds Gate.Check, the approval gate's included. Default 30 s.
	Check time.Duration
	// Observe bounds Monitor.Observe. Default 30 s.
	Observe time.Duration
	// Notify bounds one Notifier.Notify attempt. Default 10 s.
	Notify time.Duration
}

// DefaultTimeouts are the bounds used where WithTimeouts leaves a field zero.
var defaultTimeouts = Timeouts{Plan: 30 * time.Second, Check: 30 * time.Second, Observe: 30 * time.Second, Notify: 10 * time.Second}

// WithTimeouts bounds the calls into gates, monitors, notifiers and the
// strategy's Plan; see Timeouts for the defaults.
func WithTimeouts(t Timeouts) Option {
	return func(c *config) { c.timeouts = t }
}

// WithGates adds pre-deployment gates, checked in order.
func WithGates(g ...Gate) Option {
	return func(c *config) {
		for _, x := range g {
			if x != nil {
				c.gates = append(c.gates, x)
			}
		}
	}
}

// WithMonitors adds monitors, observed at the baseline, during each step's
// bake, in verification and after a rollback.
func WithMonitors(m ...Monitor) Option {
	return func(c *config) {
		for _, x := range m {
			if x != nil {
				c.monitors = append(c.monitors, x)
			}
		}
	}
}

// WithNotifiers adds notifiers. Each receives every event, in order.
func WithNotifiers(n ...Notifier) Option {
	return func(c *config) {
		for _, x := range n {
			if x != nil {
				c.notifiers = append(c.notifiers, x)
			}
		}
	}
}

// WithRollbackPolicy sets the triggers and limits that judge observations.
// The default policy, DefaultPolicy, rolls back on a critical check
// failing, on a significant rise of the error rate (a sequential test) and
// on p95 latency up by more than 200 ms.
func WithRollbackPolicy(p rollback.Policy) Option {
	return func(c *config) { c.policy = p }
}

// DefaultPolicy returns the policy used when WithRollbackPolicy is not given,
// and a good start for your own:
//
//   - CriticalChecks: a failed critical check rolls back at once;
//   - Sequential on the error rate: a rise over the control (or, without
//     one, the baseline) significant by a sequential test at 5 % whose
//     p-value stays valid however often it looks, powered for +50 %,
//     tolerating none, with no floor; its evidence accumulates over the
//     steps and the watch (see rollback.Sequential);
//   - LatencyIncrease of the p95: more than +200 ms, judged once it rests
//     on at least DefaultLatencySamples requests;
//   - limits: FailureLimit 0 (the first failed observation rolls back),
//     InconclusiveLimit 3 (three observations with no data or too few
//     samples pause the step; the fourth rolls back), ConsecutiveErrorLimit 0 (the 4th
//     metric-source error in a row rolls back), ProgressDeadline 0 (10
//     minutes for a step to make progress), MinSamples 0 (1).
//
// Simulated over 2,000 releases per case (see BENCHMARKS.md), it rolls back
// 1.9 % of healthy releases at 200 requests per second and 0.3 % at 5 over
// the whole ramp and 24 h watch, catches +50 % on a 0.3 % error rate before
// full exposure in 99.9 % of releases at 200 requests per second, and +200 %
// during the 1 % or 5 % step in all of them.
//
// A rollback.Policy built from scratch has InconclusiveLimit 0: the first
// observation without data rolls back, which a small canary's first minute
// may well be. Start from DefaultPolicy and change what you need.
func DefaultPolicy() rollback.Policy {
	return rollback.Policy{
		Triggers: []rollback.Trigger{
			rollback.CriticalChecks{},
			rollback.Sequential{Metric: monitor.ErrorRate, Catch: 0.5},
			rollback.LatencyIncrease{Metric: monitor.LatencyP95, MaxIncrease: 200 * time.Millisecond, MinSamples: DefaultLatencySamples},
		},
		InconclusiveLimit: 3,
	}
}

// DefaultLatencySamples is the fewest requests DefaultPolicy's p95 latency
// must rest on to be judged: with fewer, the sample's p95 is one of its
// few largest values and says little about the 95th percentile.
const DefaultLatencySamples = 200

// WithStages runs the strategy's plan once per stage, in order, such as
// staging before production. The default is one stage named after the
// release's environment.
func WithStages(s ...Stage) Option {
	return func(c *config) {
		if len(s) > 0 {
			c.stages = append([]Stage(nil), s...)
		}
	}
}

// WithSchedule sets the post-deployment watch. The default is
// monitor.DefaultSchedule: every 30 s for the first hour, every 5 min until
// 24 h. An empty schedule skips the watch after the post-deployment checks.
func WithSchedule(s monitor.Schedule) Option {
	return func(c *config) { c.schedule, c.scheduleSet = s, true }
}

// WithStore sets where release records are kept. The default is a
// state.File store in ".deploy", created at the first Run.
func WithStore(s state.Store) Option {
	return func(c *config) {
		if s != nil {
			c.store = s
		}
	}
}

// WithTracerProvider sets the tracer provider. The default is the global
// provider, looked up when the runner runs.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp != nil {
			c.tp = tp
		}
	}
}

// WithMeterProvider sets the meter provider. The default is the global
// provider, looked up when the runner runs.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp != nil {
			c.mp = mp
		}
	}
}

// WithLogger sets the logger for the runner's own diagnostics: every event
// it sends the notifiers (urgent ones at Error, rollbacks and blocks at
// Warn, observations at Debug, the rest at Info), failed notification
// deliveries, a lost lease, a monitor that failed to measure and a
// baseline without data (Warn). The default discards. For progress for
// people, use notify.Log or notify.Console.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithWaiver waives a pitfall guard with a written reason, which appears in
// the report. An empty reason is refused by NewRunner.
func WithWaiver(p Pitfall, reason string) Option {
	return func(c *config) {
		if c.waivers == nil {
			c.waivers = make(map[Pitfall]string)
		}
		c.waivers[p] = reason
	}
}

// WithInterval sets how often monitors are observed while a step bakes.
// The default is one minute.
func WithInterval(d time.Duration) Option {
	return func(c *config) { c.interval = d }
}

// NoDeadline, given to WithGateDeadline, lets gates that ask to be retried
// wait for as long as they ask: "wait forever" said explicitly.
const NoDeadline time.Duration = -1

// WithGateDeadline sets how long the runner waits for gates that ask to be
// retried (RetryAt) before it blocks the release. The default is one hour;
// NoDeadline waits as long as the gates ask (0 is refused: say NoDeadline).
func WithGateDeadline(d time.Duration) Option {
	return func(c *config) { c.gateDeadline = d }
}

// WithApproval sets the gate consulted before a step with Approval set, such
// as a gate.Approval; without one, such a step waits for Runner.Approve. While it asks to wait (RetryAt), the runner re-checks
// it at the time it gives or at the next observation interval, whichever is
// sooner, observing the monitors meanwhile: a breach rolls back. A refusal
// rolls back too.
func WithApproval(g Gate) Option {
	return func(c *config) {
		if g != nil {
			c.approval = g
		}
	}
}

// WithStepRules adds pauses, inline analyses and approvals to the steps
// the strategy plans, by step name (see StepRule).
func WithStepRules(rules ...StepRule) Option {
	return func(c *config) { c.stepRules = append(c.stepRules, rules...) }
}

// WithBackgroundAnalysis runs a in the background of each stage from its
// step startingStep (an index in the stage's plan, from 0; Argo's
// startingStep) until the stage's last step was applied and baked: the
// analysis measures nothing before. A Failed or Error run rolls back; an
// Inconclusive one pauses or rolls back (Analysis.OnInconclusive), even when
// it comes at the promotion. When the last step is reached, metrics still
// running end as successful, as in Argo Rollouts. A startingStep past the
// last step of a stage's plan is refused with ErrInvalid when the release
// is planned: the analysis would never run.
func WithBackgroundAnalysis(a Analysis, startingStep int) Option {
	return func(c *config) { c.background, c.startingAt = &a, startingStep }
}

// WithPrePromotionAnalysis runs a before the promotion — the step that
// takes the last stage to full exposure — is applied, as Argo Rollouts'
// blue-green prePromotionAnalysis: the step waits for a successful run; a
// Failed one rolls back (the new version never served everyone).
func WithPrePromotionAnalysis(a Analysis) Option {
	return func(c *config) { c.prePromo = &a }
}

// WithPostPromotionAnalysis runs a once the promotion step was applied, as
// Argo Rollouts' blue-green postPromotionAnalysis: a Failed run rolls back
// to the previous version; the release goes on to verification once it
// succeeds.
func WithPostPromotionAnalysis(a Analysis) Option {
	return func(c *config) { c.postPromo = &a }
}

// WithRollbackTimeout bounds Strategy.Rollback. The default is 5 minutes.
func WithRollbackTimeout(d time.Duration) Option {
	return func(c *config) { c.rollbackTimeout = d }
}

// WithRollbackSettle sets how long after the strategy's rollback the runner
// observes the monitors to verify it. The default is the observation
// interval (WithInterval). Give metrics time to show the previous version:
// a few scrape intervals for Prometheus.
func WithRollbackSettle(d time.Duration) Option {
	return func(c *config) { c.rollbackSettle = d }
}

// WithLeaseGrace sets how long past its next due action a runner keeps its
// lease on a release. The default is 2 minutes. While an action that
// changes what users get runs (a step's Apply, the strategy's rollback, a
// rollback step), the runner renews its lease every third of the grace, so
// that no other runner takes over a live one. A runner that crashes holds
// the release until the lease ends: Resume from another process returns a
// *LockedError (ErrLocked) naming the holder and the time (Until), and
// succeeds once it has passed. Runner.Rollback takes over at once, unless
// the record says an Apply or a rollback is under way, which it waits out
// first.
func WithLeaseGrace(d time.Duration) Option {
	return func(c *config) { c.leaseGrace = d }
}

// WithHolder names this runner in the leases it takes, so that a locked
// release says which machine or job holds it. The default is the host name,
// the process id and a random suffix ("deploy-7.example-4711-3fa9c2").
// The name is the lease's identity: two runners with the same name share
// it, and neither keeps the other out. Give every process its own (a cron
// job needs no shared name: Reconcile's lease ends at the next due time).
func WithHolder(name string) Option {
	return func(c *config) {
		if strings.TrimSpace(name) != "" {
			c.holder = name
		}
	}
}

// WithBaselineWindow sets how far back the preflight baseline observation
// looks (Target.Since). The default is 10 minutes.
func WithBaselineWindow(d time.Duration) Option {
	return func(c *config) { c.baselineWindow = d }
}

// WithNotifyTimeout bounds how long Run waits, once the release is over,
// for the outbox to be delivered. Undelivered events stay in the state and
// are retried by Resume. The default is 30 seconds.
func WithNotifyTimeout(d time.Duration) Option {
	return func(c *config) { c.notifyTimeout = d }
}

// WithLocation sets the service's time zone for the built-in deploy window
// (used when no gate declares itself a window). The default is time.Local.
func WithLocation(l *time.Location) Option {
	return func(c *config) {
		if l != nil {
			c.location = l
		}
	}
}

// WithRollbackSteps adds steps to the rollback procedure, run in order after
// Strategy.Rollback succeeds (revert the PR, scale the old version up, tell
// the database team). Each is recorded as it runs; a step whose Run is nil is
// documented only and shown in the procedure. A failing step ends the release
// with ErrRollbackFailed. Each step's progress is recorded: Resume skips the
// steps already done. A step gets the fencing token of the lease it runs
// under in its context (FencingToken), to store with its change.
func WithRollbackSteps(steps ...rollback.PlanStep) Option {
	return func(c *config) {
		for _, s := range steps {
			if s.Name != "" {
				c.rollbackSteps = append(c.rollbackSteps, rollback.PlanStep{Name: s.Name, Run: s.Run})
			}
		}
	}
}

// NewRunner returns a runner for strategy s. It validates the options: a nil
// strategy, a bad policy or schedule, a waiver with no reason, or a negative
// duration are refused with an error wrapping ErrInvalid; so is a strategy,
// gate, monitor or notifier whose Validate() error method reports a problem,
// or whose own timeout (CallBounder: a webhook's, a Job's) is longer than the
// runner's bound for that call (WithTimeouts), which would cut it short.
func NewRunner(s Strategy, opts ...Option) (*Runner, error) {
	if s == nil || (reflect.ValueOf(s).Kind() == reflect.Pointer && reflect.ValueOf(s).IsNil()) {
		return nil, fmt.Errorf("%w: strategy is nil", ErrInvalid)
	}
	c := config{
		policy:          DefaultPolicy(),
		schedule:        monitor.DefaultSchedule(),
		interval:        time.Minute,
		gateDeadline:    time.Hour,
		rollbackTimeout: 5 * time.Minute,
		leaseGrace:      2 * time.Minute,
		baselineWindow:  10 * time.Minute,
		notifyTimeout:   30 * time.Second,
		storeDir:        ".deploy",
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	for p, reason := range c.waivers {
		switch p {
		case FridayDeploy, NoMonitoring, NoRollbackPlan, SilentDeploy:
		default:
			return nil, fmt.Errorf("%w: WithWaiver pitfall %q is unknown", ErrInvalid, p)
		}
		if strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%w: WithWaiver(%s) needs a written reason", ErrInvalid, p)
		}
	}
	for _, t := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"Timeouts.Plan", &c.timeouts.Plan, defaultTimeouts.Plan},
		{"Timeouts.Check", &c.timeouts.Check, defaultTimeouts.Check},
		{"Timeouts.Observe", &c.timeouts.Observe, defaultTimeouts.Observe},
		{"Timeouts.Notify", &c.timeouts.Notify, defaultTimeouts.Notify},
	} {
		if *t.v < 0 {
			return nil, fmt.Errorf("%w: WithTimeouts %s %v must not be negative", ErrInvalid, t.name, *t.v)
		}
		if *t.v == 0 {
			*t.v = t.def
		}
	}
	if c.rollbackSettle < 0 {
		return nil, fmt.Errorf("%w: WithRollbackSettle duration %v must not be negative", ErrInvalid, c.rollbackSettle)
	}
	if c.rollbackSettle == 0 {
		c.rollbackSettle = c.interval // the default: one observation interval
	}
	if err := checkConfig(&c); err != nil {
		return nil, err
	}
	validate := func(kind string, i int, x any) error {
		limit, option := c.timeouts.Check, "Check"
		switch kind {
		case "monitor":
			limit, option = c.timeouts.Observe, "Observe"
		case "notifier":
			limit, option = c.timeouts.Notify, "Notify"
		}
		if kind != "strategy" {
			where := fmt.Sprintf("%s %d (%s)", kind, i, nameOf(x))
			if err := checkCallTimeout(where, x, limit, option); err != nil {
				return err
			}
		}
		if v, ok := x.(interface{ Validate() error }); ok {
			if err := safely(kind+" Validate", v.Validate); err != nil {
				where := fmt.Sprintf("%s %d (%s)", kind, i, nameOf(x))
				if i < 0 {
					where = fmt.Sprintf("%s %s", kind, nameOf(x))
				}
				if errors.Is(err, ErrInvalid) {
					return fmt.Errorf("%s: %w", where, err)
				}
				return fmt.Errorf("%w: %s: %v", ErrInvalid, where, err)
			}
		}
		return nil
	}
	if err := validate("strategy", -1, s); err != nil {
		return nil, err
	}
	for i, g := range c.gates {
		if err := validate("gate", i, g); err != nil {
			return nil, err
		}
	}
	for i, m := range c.monitors {
		if err := validate("monitor", i, m); err != nil {
			return nil, err
		}
	}
	for i, n := range c.notifiers {
		if err := validate("notifier", i, n); err != nil {
			return nil, err
		}
	}
	if c.approval != nil {
		if err := validate("approval gate", 0, c.approval); err != nil {
			return nil, err
		}
	}
	if err := c.policy.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := c.schedule.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	seen := map[string]bool{}
	for i, st := range c.stages {
		if st.Name == "" {
			return nil, fmt.Errorf("%w: WithStages stage %d has an empty Name", ErrInvalid, i)
		}
		if seen[st.Name] {
			return nil, fmt.Errorf("%w: WithStages stage name %q is repeated", ErrInvalid, st.Name)
		}
		seen[st.Name] = true
	}
	holder := c.holder
	if holder == "" {
		host, _ := os.Hostname()
		holder = fmt.Sprintf("%s-%d-%s", cmp.Or(host, "runner"), os.Getpid(), randomHex(3))
	}
	return &Runner{strategy: s, cfg: c, holder: holder, conditions: c.policy.Conditions(), judgesChecks: judgesChecks(c.policy)}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
