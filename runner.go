package deploy

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// Runner carries releases through preflight, deploy, verify and communicate,
// rolling back on its own when a release hurts users. A Runner is safe for
// concurrent use; each release it runs is guarded by a lease in its store.
type Runner struct {
	strategy Strategy
	cfg      config
	holder   string

	storeOnce sync.Once
	storeErr  error

	// conditions are the policy's trigger conditions, for reports.
	conditions []string
	// judgesChecks is set when the policy has a CriticalChecks trigger.
	judgesChecks bool
	meterOnce  sync.Once
	releases   metric.Int64Counter
}

// NewRunner returns a runner for strategy s. It validates the options: a nil
// strategy, a bad policy or schedule, a waiver with no reason, or a negative
// duration are refused with an error wrapping ErrInvalid; so is a strategy,
// gate, monitor or notifier whose Validate() error method reports a problem.
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
	for name, d := range map[string]time.Duration{
		"WithInterval": c.interval, "WithGateDeadline": c.gateDeadline, "WithRollbackTimeout": c.rollbackTimeout,
		"WithBaselineWindow": c.baselineWindow, "WithNotifyTimeout": c.notifyTimeout, "WithLeaseGrace": c.leaseGrace,
	} {
		if d <= 0 {
			return nil, fmt.Errorf("%w: %s duration %v must be positive", ErrInvalid, name, d)
		}
	}
	if err := checkConfig(&c); err != nil {
		return nil, err
	}
	validate := func(kind string, i int, x any) error {
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

func (r *Runner) store() (state.Store, error) {
	r.storeOnce.Do(func() {
		if r.cfg.store == nil {
			r.cfg.store, r.storeErr = state.NewFile(r.cfg.storeDir)
		}
	})
	return r.cfg.store, r.storeErr
}

// normalize fills defaults and validates a release.
func normalize(rel Release) (Release, error) {
	rel.Service = strings.TrimSpace(rel.Service)
	rel.Version = strings.TrimSpace(rel.Version)
	if rel.Service == "" {
		return rel, fmt.Errorf("%w: Release.Service is empty", ErrInvalid)
	}
	if rel.Version == "" {
		return rel, fmt.Errorf("%w: Release.Version is empty", ErrInvalid)
	}
	if strings.ContainsAny(rel.Service, "/\\ \t\n") {
		return rel, fmt.Errorf("%w: Release.Service %q has a slash or white space", ErrInvalid, rel.Service)
	}
	if rel.Environment == "" {
		rel.Environment = "production"
	}
	return rel, nil
}

func isProduction(env string) bool {
	e := strings.ToLower(env)
	return e == "production" || e == "prod" || strings.HasPrefix(e, "prod-") || strings.HasPrefix(e, "production-")
}

func (r *Runner) stages(rel Release) []Stage {
	if len(r.cfg.stages) == 0 {
		return []Stage{{Name: rel.Environment, Environment: rel.Environment}}
	}
	out := make([]Stage, len(r.cfg.stages))
	for i, s := range r.cfg.stages {
		if s.Environment == "" {
			s.Environment = rel.Environment
		}
		out[i] = s
	}
	return out
}

// plans returns the strategy's validated plan for every stage. Each stage is
// planned with its own exposure: d's for d's stage, 1 for the stages
// completed before it, 0 for those after it (and for all of them when d
// names no stage), so that a strategy that plans from the exposure
// (BlueGreen's side) plans a later stage as not yet deployed.
func (r *Runner) plans(ctx context.Context, d *Deployment) ([][]Step, error) {
	stages := r.stages(d.Release)
	out := make([][]Step, len(stages))
	if d.Memo == nil {
		d.Memo = map[string]string{}
	}
	orig := *d
	defer func() { d.Stage, d.Exposure, d.Step = orig.Stage, orig.Exposure, orig.Step }()
	cur, exposure, step := d.Stage.Name, d.Exposure, d.Step
	before := cur != "" && slices.ContainsFunc(stages, func(s Stage) bool { return s.Name == cur })
	for i, st := range stages {
		d.Stage = st
		switch {
		case st.Name == cur:
			d.Exposure, d.Step = exposure, step
			before = false
		case before:
			d.Exposure, d.Step = 1, 0
		default:
			d.Exposure, d.Step = 0, 0
		}
		dc := *d
		steps, err := bounded(ctx, "strategy "+nameOf(r.strategy)+": Plan", r.cfg.timeouts.Plan, func(ctx context.Context) ([]Step, error) {
			return r.strategy.Plan(ctx, &dc)
		})
		if err != nil {
			return nil, fmt.Errorf("%w: plan for stage %q: %v", ErrInvalid, st.Name, err)
		}
		if err := validateSteps(st.Name, steps); err != nil {
			return nil, err
		}
		if r.cfg.approval == nil {
			for j, s := range steps {
				if s.Approval {
					return nil, fmt.Errorf("%w: stage %q step %d (%q) needs Approval but no WithApproval gate is set", ErrInvalid, st.Name, j, s.Name)
				}
			}
		}
		out[i] = steps
	}
	return out, nil
}

func validateSteps(stage string, steps []Step) error {
	if len(steps) == 0 {
		return fmt.Errorf("%w: stage %q: the plan has no steps", ErrInvalid, stage)
	}
	names := make(map[string]bool, len(steps))
	for i, s := range steps {
		where := func() string { return fmt.Sprintf("stage %q step %d (%q)", stage, i, s.Name) }
		switch {
		case s.Name == "":
			return fmt.Errorf("%w: stage %q step %d: Name is empty", ErrInvalid, stage, i)
		case names[s.Name]:
			return fmt.Errorf("%w: %s: Name is repeated", ErrInvalid, where())
		case math.IsNaN(s.Exposure) || s.Exposure < 0 || s.Exposure > 1:
			return fmt.Errorf("%w: %s: Exposure %v is outside [0, 1]", ErrInvalid, where(), s.Exposure)
		case s.Bake < 0:
			return fmt.Errorf("%w: %s: Bake %v is negative", ErrInvalid, where(), s.Bake)
		case s.Bake > maxDuration:
			return fmt.Errorf("%w: %s: Bake %v is longer than %v", ErrInvalid, where(), s.Bake, maxDuration)
		case s.Apply == nil:
			return fmt.Errorf("%w: %s: Apply is nil", ErrInvalid, where())
		}
		names[s.Name] = true
	}
	last := steps[len(steps)-1]
	if last.Exposure < 1 && !last.Partial {
		return fmt.Errorf("%w: stage %q: the plan ends at exposure %v, not 1: a release that is meant to stop short says so with Partial on its last step (%q)", ErrInvalid, stage, last.Exposure, last.Name)
	}
	return nil
}

// guard checks the pitfall guards for a release; waived pitfalls are
// returned, and one error for each pitfall that is neither avoided nor
// waived.
func (r *Runner) guard(rel Release) ([]state.Waiver, []error) {
	var (
		waivers []state.Waiver
		errs    []error
	)
	check := func(p Pitfall, bad bool, what string) {
		if !bad {
			return
		}
		if reason, ok := r.cfg.waivers[p]; ok {
			waivers = append(waivers, state.Waiver{Pitfall: string(p), Reason: reason})
			return
		}
		errs = append(errs, fmt.Errorf("%w: pitfall %s: production release of %s with %s; fix it or waive it with WithWaiver(deploy.%s, reason)",
			ErrBlocked, p, rel.Service, what, pitfallConst(p)))
	}
	prod := isProduction(rel.Environment)
	check(NoRollbackPlan, prod && !hasRollbackPath(r.strategy), "no rollback path")
	check(NoMonitoring, prod && len(r.cfg.monitors) == 0, "no monitor")
	check(SilentDeploy, prod && len(r.cfg.notifiers) == 0, "no notifier")
	if len(errs) > 0 {
		return nil, errs
	}
	// A Friday deploy is judged by the window gate at preflight; a waiver
	// turns the built-in window off.
	if reason, ok := r.cfg.waivers[FridayDeploy]; ok && prod {
		waivers = append(waivers, state.Waiver{Pitfall: string(FridayDeploy), Reason: reason})
	}
	return waivers, nil
}

func pitfallConst(p Pitfall) string {
	switch p {
	case FridayDeploy:
		return "FridayDeploy"
	case NoMonitoring:
		return "NoMonitoring"
	case NoRollbackPlan:
		return "NoRollbackPlan"
	}
	return "SilentDeploy"
}

func hasRollbackPath(s Strategy) bool {
	if rp, ok := s.(interface{ RollbackPath() bool }); ok {
		return rp.RollbackPath()
	}
	return true
}

func nameOf(x any) string {
	if n, ok := x.(interface{ Name() string }); ok {
		if s := n.Name(); s != "" {
			return s
		}
	}
	t := fmt.Sprintf("%T", x)
	return strings.TrimPrefix(t, "*")
}

// Run carries rel through a whole release and returns its report. It
// validates the release and the plan, and checks the pitfall guards, before
// any side effect. It returns when the release has succeeded, rolled back,
// been blocked or aborted; the report is returned with the error. Errors
// that come before the release exists have no report: ErrInvalid, a pitfall
// guard's ErrBlocked, and ErrLocked when another release of the service and
// environment is active (the error then also matches state.ErrActive).
//
// Cancelling ctx during the deploy or verify phase rolls the release back
// (under a context that outlives ctx) and ends with ErrAborted.
func (r *Runner) Run(ctx context.Context, rel Release) (*Report, error) {
	rec, err := r.create(ctx, rel)
	if err != nil {
		return nil, err
	}
	return r.loop(ctx, rec.ID)
}

// Start validates rel and creates its record without running it, returning
// the record's id for Reconcile or Resume.
func (r *Runner) Start(ctx context.Context, rel Release) (string, error) {
	rec, err := r.create(ctx, rel)
	if err != nil {
		return "", err
	}
	return rec.ID, nil
}

func (r *Runner) create(ctx context.Context, rel Release) (*state.Record, error) {
	rel, err := normalize(rel)
	if err != nil {
		return nil, err
	}
	waivers, errs := r.guard(rel)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	now := time.Now()
	d := &Deployment{Release: rel, Started: now}
	if _, err := r.plans(ctx, d); err != nil {
		return nil, err
	}
	store, err := r.store()
	if err != nil {
		return nil, err
	}
	rec := &state.Record{
		ID:       fmt.Sprintf("%s-%s-%s-%s", rel.Service, rel.Environment, now.UTC().Format("20060102T150405"), randomHex(6)),
		Release:  rel,
		Strategy: nameOf(r.strategy),
		Phase:    PhasePreflight,
		Status:   Running,
		Waivers:  waivers,
		Holder:   r.holder,
		Token:    1,
		Created:  now,
		Updated:  now,
		Deadline: now.Add(r.cfg.gateDeadline),
	}
	if len(d.Memo) > 0 {
		rec.Memo = d.Memo
	}
	rec.ID = strings.Map(func(c rune) rune {
		if c == '/' || c == '\\' || c == ' ' {
			return '_'
		}
		return c
	}, rec.ID)
	for _, w := range waivers {
		rec.Timeline = append(rec.Timeline, state.Entry{At: now, Phase: PhasePreflight, Kind: state.EntryWaiver, Name: w.Pitfall, Detail: w.Reason})
	}
	r.emit(rec, Event{Kind: EventStarted, Message: fmt.Sprintf("release of %s %s to %s started (%s)", rel.Service, rel.Version, rel.Environment, rec.Strategy)})
	if err := store.Create(ctx, rec); err != nil {
		if errors.Is(err, state.ErrActive) {
			return nil, fmt.Errorf("%w: %w", ErrLocked, err)
		}
		return nil, fmt.Errorf("deploy: creating the release record: %w", err)
	}
	return rec, nil
}

// Resume continues the release id after a stop or a crash: from the last
// completed step (steps are idempotent), or it finishes a rollback that was
// under way. On a release that is already over it delivers any undelivered
// notifications and returns the report.
//
// A runner that crashed still holds the release until its lease runs out
// (its next due action plus WithLeaseGrace, 2 minutes by default, plus the
// progress deadline before a step's Apply): until then Resume returns a
// *LockedError naming the holder and the time. Retry after it, or call
// Rollback, which takes over at once unless the record says an Apply or a
// rollback was under way, which it waits out first.
func (r *Runner) Resume(ctx context.Context, id string) (*Report, error) {
	return r.loop(ctx, id)
}

// Reconcile does whatever is due now for the release id (a gate re-check, an
// observation, the next step, a rollback, a notification), saves, and
// returns when the next action is due. A short-lived process — a CI job, a
// cron entry — can drive a day-long release by calling Reconcile when next
// comes: the lease Reconcile takes ends at next, so the next process, with
// another holder name, takes the release over then. rep is the report; once
// rep.Status is final and rep.Pending is 0 there is nothing left to do
// (with notifications pending, next is when the next delivery is due).
// Notifications are delivered before Reconcile returns, one attempt each.
func (r *Runner) Reconcile(ctx context.Context, id string) (next time.Time, rep *Report, err error) {
	if _, err := r.store(); err != nil {
		return time.Time{}, nil, err
	}
	lp := r.newLoop(ctx, nil)
	lp.oneShot = true
	defer lp.end()
	next, rec, err := r.reconcile(lp.ctx, id, lp)
	if rec == nil {
		return next, nil, err
	}
	r.countFinished(context.WithoutCancel(ctx), lp, rec)
	if r.flushSync(lp, id) {
		if fresh, lerr := r.cfg.store.Load(context.WithoutCancel(ctx), id); lerr == nil {
			rec = fresh
		}
	}
	if rec.Status.Final() && len(rec.Outbox) > 0 {
		// Each notifier takes its messages in order: the next delivery due
		// is the earliest of each notifier's first pending message.
		next = time.Time{}
		seen := map[int]bool{}
		for _, m := range rec.Outbox {
			if seen[m.Notifier] {
				continue
			}
			seen[m.Notifier] = true
			if next.IsZero() || m.NextAt.Before(next) {
				next = m.NextAt
			}
		}
		if now := time.Now(); next.Before(now) {
			next = now
		}
	}
	return next, r.report(rec), err
}

// loop reconciles until the release is over, sleeping until each next action.
func (r *Runner) loop(ctx context.Context, id string) (*Report, error) {
	if _, err := r.store(); err != nil {
		return nil, err
	}
	lp := r.newLoop(ctx, newDispatcher(r))
	defer lp.end()
	run := lp.ctx
	var sleep *time.Timer // one timer for every wait of the loop
	for {
		next, rec, err := r.reconcile(run, id, lp)
		final := rec != nil && rec.Status.Final()
		if err != nil && !final {
			lp.fail(err)
			if rec == nil {
				return nil, err
			}
			return r.report(rec), err
		}
		if final {
			lp.kick(rec) // deliver what an earlier run left in the outbox
			rep := r.finish(lp, id, r.report(rec))
			lp.fail(err)
			return rep, err
		}
		if wait := time.Until(next); wait > 0 {
			if sleep == nil {
				sleep = time.NewTimer(wait)
			} else {
				sleep.Reset(wait)
			}
			select {
			case <-sleep.C:
			case <-run.Done():
				sleep.Stop()
			}
		}
		if run.Err() != nil && !lp.aborted {
			lp.aborted = true
			cause := context.Cause(run)
			run = context.WithoutCancel(run)
			lp.rec = nil // abort loads and saves the record itself
			if err := r.abort(run, id, cause); err != nil {
				lp.fail(err)
				return nil, err
			}
		}
	}
}

// abort turns a cancelled run into a rollback (or, before anything was
// deployed, a plain abort).
func (r *Runner) abort(ctx context.Context, id string, cause error) error {
	rec, err := r.cfg.store.Load(ctx, id)
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	if rec.Status.Final() || rec.Phase == PhaseRollback || rec.Phase == PhaseCommunicate {
		return nil
	}
	if rec.Holder != r.holder {
		return nil // another runner has it now: not ours to abort
	}
	now := time.Now()
	tr := &state.Trigger{Kind: state.TriggerCancelled, Reason: "run cancelled: " + cause.Error()}
	if deployed(rec) {
		r.startRollback(rec, now, tr, Aborted)
	} else {
		tr.At = now
		rec.Trigger = tr
		r.toCommunicate(rec, now, Aborted, tr.Reason)
	}
	return r.save(ctx, nil, rec)
}

// deployed reports whether anything may have reached users: a step was
// applied or started (its Apply may have gone through), or the release is
// past its steps.
func deployed(rec *state.Record) bool {
	return rec.Stage > 0 || rec.Step > 0 || rec.Applied || rec.Applying || !rec.StepStart.IsZero() ||
		rec.Exposure > 0 || rec.Phase == PhaseVerify
}

// inFlight reports whether the saved record says its holder is running an
// action that may take a while: a step's Apply, or the strategy's rollback.
func inFlight(rec *state.Record) bool {
	switch rec.Phase {
	case PhaseDeploy:
		return rec.Applying
	case PhaseRollback:
		return rec.RollbackStart.IsZero()
	}
	return false
}
