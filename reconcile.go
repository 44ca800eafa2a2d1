package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
)

// reconcile loads the record, does what is due now, saves and says when the
// next action is due.
func (r *Runner) reconcile(ctx context.Context, id string, lp *loop) (time.Time, *state.Record, error) {
	store := r.cfg.store
	rec, err := store.Load(ctx, id)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("deploy: %w", err)
	}
	if rec.Status.Final() {
		return time.Time{}, rec, finalError(rec)
	}
	now := time.Now()
	if rec.Holder != r.holder {
		if now.Before(rec.LeaseUntil) {
			return time.Time{}, rec, &LockedError{ID: id, Holder: rec.Holder, Until: rec.LeaseUntil}
		}
		if lp.token != 0 {
			// This loop held the release and lost it: it does not take it
			// back behind the runner that took it over.
			return time.Time{}, rec, fmt.Errorf("%w: release %s was taken over by %s", ErrLocked, id, rec.Holder)
		}
		// Take the release over, and say so in the store before acting:
		// the runner that lost it is fenced off from here on.
		rec.Holder, rec.Token = r.holder, rec.Token+1
		if err := r.hold(ctx, rec, now, 0, true); err != nil {
			return time.Time{}, rec, err
		}
	}
	if lp.token == 0 {
		lp.token = rec.Token
	} else if rec.Token != lp.token {
		return time.Time{}, rec, fmt.Errorf("%w: release %s was taken over (token %d, ours %d)", ErrLocked, id, rec.Token, lp.token)
	}
	r.takeRequest(rec, now)
	lp.start(rec)
	var next time.Time
	switch Phase(rec.Phase) {
	case PhasePreflight:
		next, err = r.preflight(ctx, rec, lp, now)
	case PhaseDeploy:
		next, err = r.deployStep(ctx, rec, lp, now)
	case PhaseVerify:
		next, err = r.verify(ctx, rec, lp, now)
	case PhaseRollback:
		next, err = r.rollback(ctx, rec, lp, now)
	case PhaseCommunicate:
		r.communicate(rec, lp, now)
	default:
		return time.Time{}, nil, fmt.Errorf("deploy: release %s has unknown phase %q", id, rec.Phase)
	}
	if err != nil {
		return time.Time{}, rec, err
	}
	if next.IsZero() {
		next = now
	}
	rec.LeaseUntil = next.Add(r.actionBound(rec) + r.cfg.leaseGrace)
	if lp.oneShot {
		// Reconcile: the caller comes back at next, perhaps as another
		// process (a cron job); the release is free for it from then.
		rec.LeaseUntil = next
	}
	lp.disp.apply(rec)
	if err := r.save(ctx, rec); err != nil {
		return time.Time{}, rec, err
	}
	lp.kick(rec)
	if rec.Status.Final() {
		return next, rec, finalError(rec)
	}
	return next, rec, nil
}

func (r *Runner) save(ctx context.Context, rec *state.Record) error {
	rec.Updated = time.Now()
	err := r.cfg.store.Update(context.WithoutCancel(ctx), rec)
	if errors.Is(err, state.ErrConflict) {
		// A person may have asked for a rollback while this runner was busy
		// (Runner.Rollback writes the request without taking the lease):
		// keep the request and save again.
		cur, lerr := r.cfg.store.Load(context.WithoutCancel(ctx), rec.ID)
		if lerr == nil && cur.Token == rec.Token && cur.Holder == rec.Holder && cur.RollbackRequest != nil && rec.RollbackRequest == nil {
			rec.RollbackRequest, rec.Rev = cur.RollbackRequest, cur.Rev
			err = r.cfg.store.Update(context.WithoutCancel(ctx), rec)
		}
	}
	if errors.Is(err, state.ErrFenced) || errors.Is(err, state.ErrConflict) {
		r.cfg.logger.Warn("deploy: lost the release to another runner; stopping", "release", rec.ID, "err", err)
		return fmt.Errorf("%w: %v", ErrLocked, err)
	}
	if err != nil {
		return fmt.Errorf("deploy: saving %s: %w", rec.ID, err)
	}
	return nil
}

// finalError is the error Run returns for a finished release.
func finalError(rec *state.Record) error {
	phase, stage, step := PhaseDeploy, "", ""
	reason := rec.Error
	if rec.Trigger != nil {
		stage, step = rec.Trigger.Stage, rec.Trigger.Step
		if reason == "" {
			reason = rec.Trigger.Reason
		}
	}
	var err error
	switch rec.Status {
	case Succeeded:
		return nil
	case Blocked:
		return &PhaseError{Phase: PhasePreflight, Err: fmt.Errorf("%w: %s", ErrBlocked, reason)}
	case Aborted:
		err = fmt.Errorf("%w: %s", ErrAborted, reason)
	case RolledBack:
		if rec.Trigger != nil && rec.Trigger.Kind == "verification" {
			phase = PhaseVerify
		}
		if rec.Trigger != nil && (rec.Trigger.Kind == "manual" || rec.Trigger.Kind == "error") {
			err = fmt.Errorf("%w: %s", ErrAborted, reason)
		} else {
			err = fmt.Errorf("%w: %s", ErrUnhealthy, reason)
		}
	case RollbackFailed:
		cause := "release failed"
		if rec.Trigger != nil {
			cause = rec.Trigger.Reason
		}
		return errors.Join(
			&PhaseError{Phase: PhaseDeploy, Stage: stage, Step: step, Err: fmt.Errorf("%w: %s", ErrUnhealthy, cause)},
			&PhaseError{Phase: PhaseRollback, Err: fmt.Errorf("%w: %s", ErrRollbackFailed, rec.Error)},
		)
	default:
		err = fmt.Errorf("deploy: release failed: %s", reason)
	}
	return &PhaseError{Phase: phase, Stage: stage, Step: step, Err: err}
}

func (r *Runner) deployment(rec *state.Record) *Deployment {
	d := &Deployment{ID: rec.ID, Release: rec.Release, Step: rec.Step, Exposure: rec.Exposure, Started: rec.Created, Token: rec.Token}
	stages := r.stages(rec.Release)
	if rec.Stage < len(stages) {
		d.Stage = stages[rec.Stage]
	} else if len(stages) > 0 {
		d.Stage = stages[len(stages)-1]
	}
	if len(rec.Baseline) > 0 {
		d.Baseline.Metrics = make(map[string]monitor.Metric, len(rec.Baseline))
		for k, m := range rec.Baseline {
			d.Baseline.Metrics[k] = monitor.Value(m.Value, m.Samples)
		}
	}
	return d
}

func (r *Runner) note(rec *state.Record, now time.Time, kind, name, detail string) {
	rec.Timeline = append(rec.Timeline, state.Entry{At: now, Phase: rec.Phase, Kind: kind, Name: name, Stage: r.stageName(rec), Exposure: rec.Exposure, Detail: detail})
}

func (r *Runner) stageName(rec *state.Record) string {
	stages := r.stages(rec.Release)
	if rec.Stage < len(stages) {
		return stages[rec.Stage].Name
	}
	return ""
}

func (r *Runner) tick(rec *state.Record, now time.Time, item Item, evidence string) {
	if rec.Checklist == nil {
		rec.Checklist = make(map[string]state.Tick)
	}
	if t, ok := rec.Checklist[string(item)]; ok && t.Done {
		return
	}
	rec.Checklist[string(item)] = state.Tick{Done: true, Evidence: evidence, At: now}
}

func (r *Runner) tickFrom(rec *state.Record, now time.Time, x any, evidence string) {
	if c, ok := x.(Checklister); ok {
		for _, it := range c.ChecklistItems() {
			r.tick(rec, now, it, evidence)
		}
	}
}

// ---- preflight ----

func (r *Runner) preflight(ctx context.Context, rec *state.Record, lp *loop, now time.Time) (time.Time, error) {
	d := r.deployment(rec)
	gates := r.gates(rec)
	var wait time.Time
	var waitReason string
	rec.Gates = rec.Gates[:0]
	for _, g := range gates {
		name := nameOf(g)
		gctx, span := lp.tracer().Start(lp.phaseCtx, "deploy.gate", trace.WithAttributes(attribute.String("deploy.gate", name)))
		sink := &evidenceSink{}
		err := g.Check(context.WithValue(gctx, evidenceKey{}, sink), d)
		gr := state.Gate{Name: name, Passed: err == nil, At: now}
		if err != nil {
			gr.Reason = err.Error()
			span.SetAttributes(attribute.String("deploy.gate.reason", err.Error()))
		}
		if at, ok := IsRetry(err); ok {
			gr.RetryAt = at
			span.SetAttributes(attribute.String("deploy.gate.retry_at", at.Format(time.RFC3339)))
			if wait.IsZero() || at.Before(wait) {
				wait, waitReason = at, name+": "+err.Error()
			}
			span.End()
			rec.Gates = append(rec.Gates, gr)
			continue
		}
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			span.End()
			rec.Gates = append(rec.Gates, gr)
			reason := fmt.Sprintf("gate %s: %v", name, err)
			r.note(rec, now, "gate", name, "blocked: "+err.Error())
			rec.Trigger = &state.Trigger{Kind: "blocked", Reason: reason, At: now}
			r.emit(rec, Event{Kind: EventGate, Gate: "blocked", Message: "blocked by " + reason})
			r.toCommunicate(rec, now, Blocked, reason)
			return now, nil
		}
		evidence := "gate " + name + " passed"
		if gr.Evidence = sink.String(); gr.Evidence != "" {
			evidence = "gate " + name + ": " + gr.Evidence
			span.SetAttributes(attribute.String("deploy.gate.evidence", gr.Evidence))
		}
		span.End()
		rec.Gates = append(rec.Gates, gr)
		r.tickFrom(rec, now, g, evidence)
	}
	if !wait.IsZero() {
		if wait.After(rec.Deadline) {
			reason := fmt.Sprintf("gate %s; it would wait past the gate deadline %s", waitReason, rec.Deadline.Format(time.RFC3339))
			rec.Trigger = &state.Trigger{Kind: "blocked", Reason: reason, At: now}
			r.note(rec, now, "gate", "", "blocked: "+reason)
			r.emit(rec, Event{Kind: EventGate, Gate: "blocked", Message: "blocked: " + reason})
			r.toCommunicate(rec, now, Blocked, reason)
			return now, nil
		}
		if len(rec.Timeline) == 0 || rec.Timeline[len(rec.Timeline)-1].Detail != "waiting: "+waitReason {
			r.note(rec, now, "gate", "", "waiting: "+waitReason)
			r.emit(rec, Event{Kind: EventGate, Gate: "waiting", Message: "waiting: " + waitReason})
		}
		return wait, nil
	}
	for _, g := range rec.Gates {
		detail := "passed"
		if g.Evidence != "" {
			detail += ": " + g.Evidence
		}
		r.note(rec, now, "gate", g.Name, detail)
	}
	r.tickRollbackPlan(rec, now)
	// Baseline.
	if len(r.cfg.monitors) > 0 {
		obs, err := r.observe(lp.phaseCtx, rec, lp, "baseline", now.Add(-r.cfg.baselineWindow))
		if err != nil {
			r.note(rec, now, "observation", "baseline", "baseline not measured: "+err.Error())
		}
		r.saveMonitors(rec, now)
		rec.Baseline = make(map[string]state.Measurement, len(obs.Metrics))
		for k, m := range obs.Metrics {
			if m.HasData() && !math.IsInf(m.Value, 0) {
				rec.Baseline[k] = state.Measurement{Value: m.Value, Samples: m.Samples}
			}
		}
		r.note(rec, now, "observation", "baseline", summarize(obs))
		var empty []string
		for _, k := range slices.Sorted(maps.Keys(obs.Metrics)) {
			if !obs.Metrics[k].HasData() {
				empty = append(empty, k)
			}
		}
		if len(empty) > 0 {
			msg := "baseline has no data for " + strings.Join(empty, ", ") + ": triggers on them can compare only with a control, else they are inconclusive"
			r.note(rec, now, "note", "baseline", msg)
			r.emit(rec, Event{Kind: EventPhase, Message: msg})
			r.cfg.logger.Warn("deploy: "+msg, "release", rec.ID)
		}
	}
	r.emit(rec, Event{Kind: EventPhase, Message: fmt.Sprintf("preflight passed (%s)", plural(len(rec.Gates), "gate"))})
	rec.Phase = string(PhaseDeploy)
	r.note(rec, now, "phase", string(PhaseDeploy), "")
	return now, nil
}

func (r *Runner) tickRollbackPlan(rec *state.Record, now time.Time) {
	if hasRollbackPath(r.strategy) {
		r.tick(rec, now, ItemRollbackPlan, "strategy "+rec.Strategy+" rolls back; conditions: "+strings.Join(r.conditions, "; "))
	}
}

// gates returns the configured gates plus the built-in deploy window when
// production has no window gate and Friday deploys are not waived.
func (r *Runner) gates(rec *state.Record) []Gate {
	gates := r.cfg.gates
	if !isProduction(rec.Release.Environment) {
		return gates
	}
	if _, waived := r.cfg.waivers[FridayDeploy]; waived {
		return gates
	}
	for _, g := range gates {
		if w, ok := g.(interface{ DeployWindow() bool }); ok && w.DeployWindow() {
			return gates
		}
	}
	return append(append([]Gate(nil), gates...), defaultWindow{loc: r.cfg.location})
}

// defaultWindow refuses Friday-afternoon and weekend deploys in the
// service's time zone, asking to be retried on Monday at 09:00 (the runner
// waits up to its gate deadline, then blocks). Use gate.Window for deploy
// hours, holidays and freeze calendars.
type defaultWindow struct{ loc *time.Location }

func (defaultWindow) Name() string       { return "deploy-window" }
func (defaultWindow) DeployWindow() bool { return true }

func (w defaultWindow) Check(ctx context.Context, d *Deployment) error {
	loc := w.loc
	if loc == nil {
		loc = time.Local
	}
	t := time.Now().In(loc)
	days := 0
	var why string
	switch {
	case t.Weekday() == time.Friday && t.Hour() >= 12:
		days, why = 3, "no Friday-afternoon deploys: it is Friday "+t.Format("15:04 MST")
	case t.Weekday() == time.Saturday:
		days, why = 2, "no weekend deploys: it is Saturday "+t.Format("15:04 MST")
	case t.Weekday() == time.Sunday:
		days, why = 1, "no weekend deploys: it is Sunday "+t.Format("15:04 MST")
	default:
		return nil
	}
	y, m, dd := t.Date()
	monday := time.Date(y, m, dd+days, 9, 0, 0, 0, loc)
	return RetryAt(monday, why+"; window opens Monday 09:00")
}

// ---- deploy ----

func (r *Runner) deployStep(ctx context.Context, rec *state.Record, lp *loop, now time.Time) (time.Time, error) {
	d := r.deployment(rec)
	plans, err := lp.plans(d)
	if err != nil {
		r.fail(rec, now, err)
		return now, nil
	}
	if rec.Stage >= len(plans) {
		rec.Phase = string(PhaseVerify)
		r.note(rec, now, "phase", string(PhaseVerify), "")
		return now, nil
	}
	steps := plans[rec.Stage]
	if rec.Step >= len(steps) {
		return r.stageDone(rec, now, len(plans))
	}
	step := steps[rec.Step]
	stageName := r.stageName(rec)
	sctx := lp.stepSpan(rec, step)
	d.Stage, d.Step = r.stages(rec.Release)[rec.Stage], rec.Step

	if !rec.Applied {
		if step.Approval {
			actx, span := lp.tracer().Start(sctx, "deploy.gate", trace.WithAttributes(attribute.String("deploy.gate", "approval")))
			err := r.cfg.approval.Check(actx, d)
			span.End()
			if at, ok := IsRetry(err); ok {
				rec.Applying = false // waiting, not applying (after a crash inside an Apply, say)
				r.noteOnce(rec, now, "gate", "approval", "waiting: "+err.Error())
				return r.watchWhileWaiting(sctx, rec, lp, now, at, steps, stageName, step.Name)
			}
			if err != nil {
				return now, r.breach(rec, lp, now, &state.Trigger{Kind: "manual", Reason: "approval refused for step " + step.Name + ": " + err.Error()})
			}
			r.note(rec, now, "gate", "approval", "approved step "+step.Name)
		}
		if rec.StepStart.IsZero() {
			rec.StepStart = now
		}
		// Say in the store that the step is being applied, before applying
		// it: a manual rollback then waits for the Apply instead of rolling
		// back alongside it, and counts the step as possibly deployed.
		rec.Applying = true
		if err := r.hold(ctx, rec, now, r.cfg.policy.Deadline(), true); err != nil {
			return now, err
		}
		if rec.RollbackRequest != nil {
			// Asked to roll back while saving: do that instead of applying.
			rec.Applying = false
			r.takeRequest(rec, now)
			return now, nil
		}
		actx, cancel := context.WithTimeout(sctx, r.cfg.policy.Deadline())
		err := step.Apply(actx, d)
		cancel()
		rec.Applying = false
		now = time.Now() // Apply may take a while: time what follows from its end
		if err != nil {
			lp.stepError(err)
			reason := fmt.Sprintf("step %s/%s failed to apply: %v", stageName, step.Name, err)
			if errors.Is(err, context.DeadlineExceeded) {
				reason = fmt.Sprintf("step %s/%s did not complete within the progress deadline %v", stageName, step.Name, r.cfg.policy.Deadline())
			}
			return now, r.breach(rec, lp, now, &state.Trigger{Kind: "error", Reason: reason})
		}
		rec.Applied = true
		rec.Exposure = step.Exposure
		rec.BakeStart = now
		r.note(rec, now, "step", step.Name, fmt.Sprintf("applied, exposure %s", percent(step.Exposure)))
		r.emit(rec, Event{Kind: EventStep, Step: step.Name, Message: fmt.Sprintf("step %s applied: exposure %s, bake %v", step.Name, percent(step.Exposure), step.Bake)})
		if step.Bake == 0 {
			return r.promote(rec, lp, now, step, steps, len(plans))
		}
		return now.Add(min(r.cfg.interval, step.Bake)), nil
	}

	// Baking: observe and judge.
	dec, obs := r.judge(sctx, rec, lp, "bake", rec.BakeStart)
	bakeDone := !now.Before(rec.BakeStart.Add(step.Bake))
	if dec.Verdict != rollback.Continue || bakeDone {
		r.announce(rec, lp, dec, step.Name)
	}
	r.tick(rec, now, ItemMonitorDeploy, fmt.Sprintf("%d monitor(s) observed every %v while each step baked", len(r.cfg.monitors), r.cfg.interval))
	switch dec.Verdict {
	case rollback.Rollback:
		return now, r.breach(rec, lp, now, triggerFrom(dec, "breach"))
	case rollback.Continue:
		if bakeDone {
			r.note(rec, now, "verdict", step.Name, "healthy: "+summarize(obs))
			return r.promote(rec, lp, now, step, steps, len(plans))
		}
	case rollback.Wait:
		r.noteOnce(rec, now, "verdict", step.Name, "paused: "+dec.Reason)
		if over := rec.BakeStart.Add(step.Bake).Add(r.cfg.policy.Deadline()); now.After(over) {
			return now, r.breach(rec, lp, now, &state.Trigger{Kind: "deadline", Reason: fmt.Sprintf("step %s/%s made no progress within the progress deadline %v after its bake: %s", stageName, step.Name, r.cfg.policy.Deadline(), dec.Reason)})
		}
	}
	next := now.Add(r.cfg.interval)
	if end := rec.BakeStart.Add(step.Bake); dec.Verdict == rollback.Continue && end.After(now) && end.Before(next) {
		next = end
	}
	return next, nil
}

// watchWhileWaiting keeps watching the users already on the new version
// while step waits for approval until at, as during a bake: a breach rolls
// back, naming the step that exposed them; the wait has no deadline of its
// own. It returns when to look again.
func (r *Runner) watchWhileWaiting(ctx context.Context, rec *state.Record, lp *loop, now, at time.Time, steps []Step, stageName, step string) (time.Time, error) {
	if rec.Exposure == 0 || len(r.cfg.monitors) == 0 {
		return at, nil
	}
	if rec.BakeStart.IsZero() {
		rec.BakeStart = now // the window of the wait
	}
	dec, _ := r.judge(ctx, rec, lp, "bake", rec.BakeStart)
	if dec.Verdict == rollback.Rollback {
		prev := ""
		if rec.Step > 0 {
			prev = steps[rec.Step-1].Name
		}
		r.announce(rec, lp, dec, prev)
		t := triggerFrom(dec, "breach")
		t.Reason = fmt.Sprintf("while step %s/%s waited for approval: %s", stageName, step, dec.Reason)
		t.Stage, t.Step = stageName, prev
		return now, r.breach(rec, lp, now, t)
	}
	if next := now.Add(r.cfg.interval); next.Before(at) {
		return next, nil
	}
	return at, nil
}

func (r *Runner) noteOnce(rec *state.Record, now time.Time, kind, name, detail string) {
	if n := len(rec.Timeline); n > 0 && rec.Timeline[n-1].Detail == detail {
		return
	}
	r.note(rec, now, kind, name, detail)
}

func (r *Runner) promote(rec *state.Record, lp *loop, now time.Time, step Step, steps []Step, nstages int) (time.Time, error) {
	lp.endStep(nil)
	r.note(rec, now, "step", step.Name, fmt.Sprintf("promoted at exposure %s", percent(step.Exposure)))
	rec.Step++
	rec.Applied = false
	rec.StepStart, rec.BakeStart = time.Time{}, time.Time{}
	if rec.Step >= len(steps) {
		return r.stageDone(rec, now, nstages)
	}
	return now, nil
}

func (r *Runner) stageDone(rec *state.Record, now time.Time, nstages int) (time.Time, error) {
	name := r.stageName(rec)
	last := rec.Stage == nstages-1
	if !last {
		r.tick(rec, now, ItemStagingFirst, "stage "+name+" deployed first")
		r.tick(rec, now, ItemStagingVerified, "stage "+name+" healthy through every step's bake")
	} else if isProduction(rec.Release.Environment) {
		r.tick(rec, now, ItemProduction, fmt.Sprintf("deployed to %s at exposure %s", name, percent(rec.Exposure)))
	}
	r.note(rec, now, "stage", name, "stage complete")
	r.emit(rec, Event{Kind: EventPhase, Message: "stage " + name + " complete"})
	rec.Stage++
	rec.Step = 0
	if rec.Stage < nstages {
		// Exposure is the share of the stage's own users: the next stage
		// starts with none on the new version.
		rec.Exposure = 0
		rec.BakeStart = time.Time{}
	}
	if rec.Stage >= nstages {
		rec.Stage = nstages - 1
		rec.Step = -1 // all steps done; Step is only an index while deploying
		rec.Phase = string(PhaseVerify)
		r.note(rec, now, "phase", string(PhaseVerify), "")
	}
	return now, nil
}

func percent(f float64) string {
	return strconv.FormatFloat(math.Round(f*10000)/100, 'f', -1, 64) + " %"
}

// actionBound is how long the next action on rec may take when it is a
// step's Apply (up to the progress deadline); 0 otherwise. The lease saved
// with rec covers it, so that no other runner takes the release over while
// it runs, at no extra save per step; a runner that crashes before an Apply
// then holds the release that much longer, which only pauses the rollout.
// A pending rollback is not covered this way, so that another runner can
// finish it soon after a crash; hold saves its lease before it runs.
func (r *Runner) actionBound(rec *state.Record) time.Duration {
	if rec.Phase == string(PhaseDeploy) && !rec.Applied {
		return r.cfg.policy.Deadline()
	}
	return 0
}

// hold makes sure the saved lease covers an action that may last up to d
// (a step's Apply, the strategy's rollback) plus the grace, saving the
// record first when it does not, so that no other runner takes the release
// over while the action runs.
func (r *Runner) hold(ctx context.Context, rec *state.Record, now time.Time, d time.Duration, force bool) error {
	until := now.Add(d + r.cfg.leaseGrace)
	if !force && !rec.LeaseUntil.Before(until.Add(-r.cfg.leaseGrace/2)) {
		return nil // the lease saved last time already covers it
	}
	rec.LeaseUntil = until
	return r.save(ctx, rec)
}

// ---- verify ----

func (r *Runner) verify(ctx context.Context, rec *state.Record, lp *loop, now time.Time) (time.Time, error) {
	pctx := lp.phaseCtx
	if len(rec.Windows) == 0 && !rec.Applied {
		// Post-deployment checks.
		// The checks judge the last interval: the release is fully exposed.
		dec, obs := r.judge(pctx, rec, lp, "verify", now.Add(-r.cfg.interval))
		r.announce(rec, lp, dec, "post-deployment checks")
		switch dec.Verdict {
		case rollback.Rollback:
			return now, r.breach(rec, lp, now, triggerFrom(dec, "verification"))
		case rollback.Wait:
			r.noteOnce(rec, now, "verdict", "post-deployment checks", "paused: "+dec.Reason)
			return now.Add(r.cfg.interval), nil
		}
		rec.Applied = true // the checks passed; Windows hold the watch from here
		r.tickVerified(rec, now, obs, dec)
		r.note(rec, now, "verdict", "post-deployment checks", "passed: "+summarize(obs))
		r.emit(rec, Event{Kind: EventPhase, Message: "post-deployment checks passed"})
		return r.nextWindow(rec, now)
	}
	if len(rec.Windows) == 0 {
		return r.nextWindow(rec, now)
	}
	w := &rec.Windows[len(rec.Windows)-1]
	spec := r.cfg.schedule.Windows[len(rec.Windows)-1]
	dec, _ := r.judge(pctx, rec, lp, "verify", w.Start)
	w.Observations++
	windowDone := !now.Before(w.Start.Add(spec.Duration))
	if dec.Verdict != rollback.Continue || w.Observations == 1 || windowDone {
		r.announce(rec, lp, dec, w.Name+" watch")
	}
	if dec.Verdict == rollback.Rollback {
		w.End = now
		tr := triggerFrom(dec, "verification")
		tr.Reason = fmt.Sprintf("%s (during the %s watch, %v after full exposure)", tr.Reason, w.Name, now.Sub(rec.Windows[0].Start).Round(time.Second))
		return now, r.breach(rec, lp, now, tr)
	}
	if windowDone {
		w.End = now
		r.note(rec, now, "window", w.Name, fmt.Sprintf("%s watch complete: %d observations every %v", w.Name, w.Observations, w.Interval))
		r.emit(rec, Event{Kind: EventPhase, Message: fmt.Sprintf("%s watch complete (%v, %d observations)", w.Name, spec.Duration, w.Observations)})
		return r.nextWindow(rec, now)
	}
	return now.Add(spec.Interval), nil
}

func (r *Runner) nextWindow(rec *state.Record, now time.Time) (time.Time, error) {
	k := len(rec.Windows)
	if k >= len(r.cfg.schedule.Windows) {
		r.note(rec, now, "window", "stable", "stable")
		r.toCommunicate(rec, now, Succeeded, "")
		return now, nil
	}
	spec := r.cfg.schedule.Windows[k]
	rec.Windows = append(rec.Windows, state.Window{Name: spec.Name, Interval: spec.Interval, Start: now})
	r.note(rec, now, "window", spec.Name, fmt.Sprintf("%s watch: every %v for %v", spec.Name, spec.Interval, spec.Duration))
	return now.Add(spec.Interval), nil
}

func (r *Runner) tickVerified(rec *state.Record, now time.Time, obs monitor.Observation, dec rollback.Decision) {
	for _, m := range r.cfg.monitors {
		r.tickFrom(rec, now, m, "monitor "+nameOf(m)+" healthy after full exposure")
	}
	var perf []string
	for _, res := range dec.Results {
		if res.Outcome == rollback.Pass && res.Metric != "checks" {
			perf = append(perf, res.Reason)
		}
	}
	if len(perf) > 0 {
		r.tick(rec, now, ItemPerformance, strings.Join(perf, "; "))
	}
	var checks, logs []string
	for _, c := range obs.Checks {
		switch {
		case !c.OK:
		case c.Kind == monitor.KindLogs:
			logs = append(logs, c.Name+": "+c.Detail)
		default:
			checks = append(checks, c.Name)
		}
	}
	if len(checks) > 0 {
		r.tick(rec, now, ItemFeatureWorks, "checks passed: "+strings.Join(checks, ", "))
	}
	if len(logs) > 0 {
		r.tick(rec, now, ItemNoNewErrors, strings.Join(logs, "; "))
	}
}

// ---- observing and judging ----

// observe observes every monitor concurrently and merges the observations.
// The error joins the monitors' errors; obs holds what was measured.
func (r *Runner) observe(ctx context.Context, rec *state.Record, lp *loop, phase string, since time.Time) (monitor.Observation, error) {
	t := monitor.Target{
		DeploymentID: rec.ID, Service: rec.Release.Service, Version: rec.Release.Version,
		PreviousVersion: rec.Release.PreviousVersion, Environment: rec.Release.Environment,
		Exposure: rec.Exposure, Phase: phase, Since: since, Labels: rec.Release.Labels,
	}
	stages := r.stages(rec.Release)
	if rec.Stage < len(stages) {
		t.Stage, t.Environment = stages[rec.Stage].Name, stages[rec.Stage].Environment
	}
	if phase != "baseline" && !lp.restored {
		r.restoreMonitors(rec)
		lp.restored = true
	}
	octx, span := lp.tracer().Start(ctx, "deploy.observe", trace.WithAttributes(
		attribute.String("deploy.observation.phase", phase), attribute.Float64("deploy.exposure", rec.Exposure)))
	defer span.End()
	type res struct {
		obs monitor.Observation
		err error
	}
	results := make([]res, len(r.cfg.monitors))
	if len(r.cfg.monitors) == 1 {
		o, err := r.cfg.monitors[0].Observe(octx, t)
		results[0] = res{o, err}
	} else {
		var wg sync.WaitGroup
		for i, m := range r.cfg.monitors {
			wg.Go(func() {
				o, err := m.Observe(octx, t)
				results[i] = res{o, err}
			})
		}
		wg.Wait()
	}
	obs := monitor.Observation{At: time.Now()}
	var errs []error
	for i, x := range results {
		if x.err != nil {
			errs = append(errs, fmt.Errorf("monitor %s: %w", nameOf(r.cfg.monitors[i]), x.err))
			continue
		}
		obs.Merge(x.obs)
	}
	rec.Observed++
	err := errors.Join(errs...)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return obs, err
}

// judge observes and asks the policy for a verdict, recording both.
func (r *Runner) judge(ctx context.Context, rec *state.Record, lp *loop, phase string, since time.Time) (rollback.Decision, monitor.Observation) {
	if len(r.cfg.monitors) == 0 {
		return rollback.Decision{Verdict: rollback.Continue, Reason: "not observed: no monitors"}, monitor.Observation{}
	}
	obs, err := r.observe(ctx, rec, lp, phase, since)
	switch {
	case err != nil && len(obs.Metrics) > 0:
		// Some monitors measured: judge what was measured and report the rest.
		r.cfg.logger.Warn("deploy: a monitor failed", "release", rec.ID, "err", err)
		err = nil
	case err != nil:
		r.cfg.logger.Warn("deploy: no monitor could measure", "release", rec.ID, "err", err)
	}
	base := r.deployment(rec).Baseline
	c := rollback.Counters(rec.Counters)
	_, span := lp.tracer().Start(ctx, "deploy.verdict")
	before := c
	dec := r.cfg.policy.Judge(&c, obs, base, err)
	if rec.Exposure == 0 && phase == "bake" && dec.Cause != nil && dec.Cause.Outcome == rollback.Inconclusive && err == nil {
		// Deployed dark: no user reaches the new version, so having no data
		// for it is expected, not a reason to pause or roll back.
		c = before
		dec = rollback.Decision{Verdict: rollback.Continue, Reason: "no data for the new version at 0 % exposure (deployed dark): " + dec.Cause.Reason, Results: dec.Results}
	}
	rec.Counters = state.Counters(c)
	span.SetAttributes(attribute.String("deploy.verdict", string(dec.Verdict)), attribute.String("deploy.verdict.reason", dec.Reason))
	if dec.Verdict == rollback.Rollback {
		span.SetStatus(codes.Error, dec.Reason)
	}
	span.End()
	if rec.Last == nil {
		rec.Last = make(map[string]state.Measurement, len(obs.Metrics))
	}
	for k, m := range obs.Metrics {
		if m.HasData() && !math.IsInf(m.Value, 0) {
			rec.Last[k] = state.Measurement{Value: m.Value, Samples: m.Samples}
		}
	}
	return dec, obs
}

// announce sends an observation event (see notify.Console's documentation,
// which repeats this rule for users). The runner announces the observations
// that matter to people — a verdict other than continue, the one that
// completes a bake, the first and last of a watch window, the post-deployment
// checks — not every healthy minute of a day-long watch.
func (r *Runner) announce(rec *state.Record, lp *loop, dec rollback.Decision, step string) {
	if len(r.cfg.notifiers) == 0 {
		return
	}
	ev := Event{Kind: EventObservation, Verdict: string(dec.Verdict), Message: dec.Reason, Step: step}
	for _, res := range dec.Results {
		if res.Outcome == rollback.Pass && res.Samples == 0 {
			continue // nothing was judged (no checks reported)
		}
		ev.Readings = append(ev.Readings, Reading{Trigger: res.Trigger, Metric: res.Metric, Outcome: res.Outcome.String(), Reason: res.Reason})
	}
	r.emit(rec, ev)
}

func (r *Runner) currentStepName(rec *state.Record, lp *loop) string {
	if rec.Step < 0 {
		return ""
	}
	var plans [][]Step
	var err error
	if lp != nil {
		plans, err = lp.plans(r.deployment(rec))
	} else {
		plans, err = r.plans(context.Background(), r.deployment(rec))
	}
	if err != nil || rec.Stage >= len(plans) || rec.Step >= len(plans[rec.Stage]) {
		return ""
	}
	return plans[rec.Stage][rec.Step].Name
}

func triggerFrom(dec rollback.Decision, kind string) *state.Trigger {
	t := &state.Trigger{Kind: kind, Reason: dec.Reason}
	if c := dec.Cause; c != nil {
		t.Metric = c.Metric
		t.Samples = c.Samples
		t.Reference = c.Reference
		t.Observed, t.Baseline, t.Threshold = num(c.Observed), num(c.Baseline), num(c.Threshold)
	}
	return t
}

func num(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

func summarize(obs monitor.Observation) string {
	var parts []string
	for _, n := range obs.Names() {
		m := obs.Metrics[n]
		if !m.HasData() {
			parts = append(parts, n+"=no data")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%.4g", n, m.Value))
	}
	for _, c := range obs.Checks {
		s := "ok"
		if !c.OK {
			s = "FAILED"
		}
		parts = append(parts, c.Name+" "+s)
	}
	if len(parts) == 0 {
		return "no metrics"
	}
	return strings.Join(parts, ", ")
}

// ---- rollback ----

// breach starts a rollback for trigger t.
func (r *Runner) breach(rec *state.Record, lp *loop, now time.Time, t *state.Trigger) error {
	lp.endStep(errors.New(t.Reason))
	r.startRollback(rec, now, t, "")
	return nil
}

// startRollback moves rec to the rollback phase; outcome overrides the final
// status (Aborted for a cancelled run).
func (r *Runner) startRollback(rec *state.Record, now time.Time, t *state.Trigger, outcome Status) {
	if t.At.IsZero() {
		t.At = now
	}
	switch {
	case rec.Phase == string(PhaseDeploy) && rec.Step >= 0 && t.Step == "":
		t.Stage, t.Step = r.stageName(rec), r.currentStepName(rec, nil)
	case rec.Phase == string(PhaseVerify) && t.Stage == "":
		t.Stage = r.stageName(rec)
	}
	if outcome == "" {
		outcome = RolledBack
		if !hasRollbackPath(r.strategy) {
			outcome = Failed
		}
	}
	rec.Trigger = t
	rec.RollbackReason = t.Reason
	rec.Outcome = outcome
	rec.Applying = false
	rec.Phase = string(PhaseRollback)
	rec.RollbackStart = time.Time{}
	r.note(rec, now, "rollback", t.Kind, "rolling back: "+t.Reason)
	r.emit(rec, Event{Kind: EventRollback, Step: t.Step, Message: "rolling back: " + t.Reason})
}

func (r *Runner) rollback(ctx context.Context, rec *state.Record, lp *loop, now time.Time) (time.Time, error) {
	if rec.RollbackStart.IsZero() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(lp.phaseCtx), r.cfg.rollbackTimeout)
		defer cancel()
		rctx, span := lp.tracer().Start(rctx, "deploy.rollback", trace.WithAttributes(
			attribute.String("deploy.trigger", rec.Trigger.Kind), attribute.String("deploy.rollback.reason", rec.RollbackReason)))
		d := r.deployment(rec)
		if !hasRollbackPath(r.strategy) {
			// Waived: there is no way back. Say so and leave it to people.
			span.SetStatus(codes.Error, "no rollback path")
			span.End()
			msg := "no rollback path (pitfall " + string(NoRollbackPlan) + " waived): " + rec.Release.Version + " stays deployed"
			rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: now, Phase: rec.Phase, Kind: "rollback", Name: rec.Strategy, Detail: "failed: " + msg})
			r.note(rec, now, "rollback", rec.Strategy, msg)
			rec.Error = msg
			r.toCommunicate(rec, now, Failed, "")
			return now, nil
		}
		if err := r.hold(ctx, rec, now, r.cfg.rollbackTimeout, true); err != nil {
			span.End()
			return now, err
		}
		err := r.strategy.Rollback(rctx, d)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			span.End()
			rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: now, Phase: rec.Phase, Kind: "rollback", Name: rec.Strategy, Detail: "failed: " + err.Error()})
			r.rollbackFailed(rec, now, fmt.Sprintf("strategy %s rollback: %v", rec.Strategy, err))
			return now, nil
		}
		done := time.Now() // a rollback may take a while: time what follows from its end
		rec.Exposure = 0
		rec.Applied = false
		rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: done, Phase: rec.Phase, Kind: "rollback", Name: rec.Strategy, Detail: "rolled back: exposure 0 %"})
		if err := r.extraRollbackSteps(rctx, rec); err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			span.End()
			r.rollbackFailed(rec, time.Now(), err.Error())
			return now, nil
		}
		span.End()
		// From now on the previous version serves: the rollback's
		// verification judges the window from here, not what happened while
		// the rollback ran, and waits the settle time from here too.
		rec.RollbackStart = time.Now()
		r.note(rec, rec.RollbackStart, "rollback", rec.Strategy, "strategy rolled back, exposure 0 %; verifying")
		if len(r.cfg.monitors) == 0 {
			r.toCommunicate(rec, rec.RollbackStart, rec.Outcome, "")
			return rec.RollbackStart, nil
		}
		return rec.RollbackStart.Add(r.cfg.rollbackSettle), nil
	}
	// Verify the rollback, once metrics had time to catch up: the triggers
	// must not fire against the baseline.
	if due := rec.RollbackStart.Add(r.cfg.rollbackSettle); now.Before(due) {
		return due, nil
	}
	obs, err := r.observe(lp.phaseCtx, rec, lp, "rollback", rec.RollbackStart)
	if err != nil && len(obs.Metrics) == 0 && len(obs.Checks) == 0 {
		rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: now, Phase: rec.Phase, Kind: "verify", Detail: "could not measure after rollback: " + err.Error()})
		r.note(rec, now, "rollback", "verify", "rollback not verified: could not measure: "+err.Error())
		r.toCommunicate(rec, now, rec.Outcome, "")
		return now, nil
	}
	var c rollback.Counters
	p := r.cfg.policy
	p.InconclusiveLimit = math.MaxInt // no data after a rollback is not a failure of it
	p.FailureLimit = 0                // but any failure is: no second chances for the way back
	dec := p.Judge(&c, obs, r.deployment(rec).Baseline, nil)
	if dec.Verdict == rollback.Rollback {
		rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: now, Phase: rec.Phase, Kind: "verify", Detail: "still unhealthy: " + dec.Reason})
		r.rollbackFailed(rec, now, "rollback did not restore health: "+dec.Reason)
		return now, nil
	}
	passed := false
	for _, res := range dec.Results {
		// A check trigger with no check to judge passes vacuously.
		passed = passed || res.Outcome == rollback.Pass && (res.Metric != "checks" || res.Samples > 0)
	}
	if !passed {
		// Nothing could be judged (no data for the previous version): the
		// strategy says it rolled back, but nothing shows it helped.
		rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: now, Phase: rec.Phase, Kind: "verify", Detail: "not verified: " + dec.Reason})
		r.note(rec, now, "rollback", "verify", "rollback not verified: "+dec.Reason)
		r.toCommunicate(rec, now, rec.Outcome, "")
		return now, nil
	}
	rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: now, Phase: rec.Phase, Kind: "verify", Detail: "healthy: " + summarize(obs)})
	r.note(rec, now, "rollback", "verify", "rollback verified: "+summarize(obs))
	r.toCommunicate(rec, now, rec.Outcome, "")
	return now, nil
}

// extraRollbackSteps runs the WithRollbackSteps steps not yet done.
func (r *Runner) extraRollbackSteps(ctx context.Context, rec *state.Record) error {
	done := map[string]bool{}
	for _, e := range rec.RollbackSteps {
		if e.Kind == "step" && e.Detail == "done" {
			done[e.Name] = true
		}
	}
	for _, st := range r.cfg.rollbackSteps {
		if st.Run == nil || done[st.Name] {
			continue
		}
		err := st.Run(ctx)
		e := state.Entry{At: time.Now(), Phase: rec.Phase, Kind: "step", Name: st.Name, Detail: "done"}
		if err != nil {
			e.Detail = "failed: " + err.Error()
		}
		rec.RollbackSteps = append(rec.RollbackSteps, e)
		if err != nil {
			return fmt.Errorf("rollback step %q: %w", st.Name, err)
		}
	}
	return nil
}

func (r *Runner) rollbackFailed(rec *state.Record, now time.Time, msg string) {
	rec.Error = msg
	r.note(rec, now, "rollback", "failed", msg+" — a person must act")
	r.emit(rec, Event{Kind: EventRollback, Urgent: true, Message: "ROLLBACK FAILED: " + msg + " — a person must act now"})
	r.toCommunicate(rec, now, RollbackFailed, "")
}

// fail ends a release that cannot go on (for example, the plan errors
// after a restart).
func (r *Runner) fail(rec *state.Record, now time.Time, err error) {
	if deployed(rec) {
		r.startRollback(rec, now, &state.Trigger{Kind: "error", Reason: err.Error()}, "")
		return
	}
	rec.Error = err.Error()
	r.toCommunicate(rec, now, Failed, err.Error())
}

// ---- communicate ----

func (r *Runner) toCommunicate(rec *state.Record, now time.Time, outcome Status, reason string) {
	rec.Outcome = outcome
	if reason != "" && rec.Error == "" && outcome != Blocked && outcome != Aborted {
		rec.Error = reason
	}
	rec.Phase = string(PhaseCommunicate)
	r.note(rec, now, "phase", string(PhaseCommunicate), string(outcome))
}

func (r *Runner) communicate(rec *state.Record, lp *loop, now time.Time) {
	if rec.Outcome == Succeeded {
		r.tick(rec, now, ItemDeploySuccessful, fmt.Sprintf("all stages deployed, exposure %s, watch complete", percent(rec.Exposure)))
		if t, ok := rec.Checklist[string(ItemFeatureWorks)]; ok && t.Done {
			r.tick(rec, now, ItemFeatureVerified, t.Evidence)
		}
		if t, ok := rec.Checklist[string(ItemNoNewErrors)]; ok && t.Done {
			r.tick(rec, now, ItemNoErrorsObserved, t.Evidence)
		}
		if t, ok := rec.Checklist[string(ItemPerformance)]; ok && t.Done {
			r.tick(rec, now, ItemPerformanceOK, t.Evidence)
		}
	}
	if len(r.cfg.notifiers) > 0 {
		names := make([]string, len(r.cfg.notifiers))
		for i, n := range r.cfg.notifiers {
			names[i] = nameOf(n)
			r.tickFrom(rec, now, n, "notifier "+names[i])
		}
		r.tick(rec, now, ItemStakeholders, "notifiers: "+strings.Join(names, ", "))
		r.tick(rec, now, ItemStakeholdersTold, "notifiers: "+strings.Join(names, ", "))
	}
	r.tick(rec, now, ItemDeploymentNotes, "summary report generated")
	rec.Status = rec.Outcome
	rec.Finished = now
	if rec.Status == Succeeded {
		r.tick(rec, now, ItemWorkflowComplete, "workflow state: complete")
		rec.Phase = string(PhaseComplete)
	}
	r.note(rec, now, "phase", "finished", string(rec.Status))
	if len(r.cfg.notifiers) > 0 {
		rep := r.report(rec)
		r.emit(rec, Event{Kind: EventFinished, Message: rep.Headline(), Report: rep.Markdown(), Urgent: rec.Status == RollbackFailed,
			FollowUps: rep.FollowUps, Duration: rep.Duration()})
	}
}

// emit puts an event in the outbox for every notifier.
func (r *Runner) emit(rec *state.Record, ev Event) {
	r.logEvent(rec, ev)
	if len(r.cfg.notifiers) == 0 {
		return
	}
	ev.At = time.Now()
	ev.DeploymentID = rec.ID
	ev.Release = rec.Release
	ev.Phase = Phase(rec.Phase)
	if ev.Stage == "" {
		ev.Stage = r.stageName(rec)
	}
	ev.Exposure = rec.Exposure
	ev.Status = rec.Status
	if ev.Links == nil {
		ev.Links = rec.Release.Links
	}
	if ev.Trigger == nil && (ev.Kind == EventRollback || ev.Kind == EventFinished) {
		ev.Trigger = rec.Trigger
	}
	// Message ids count every message ever queued (delivered ones leave the
	// outbox and are counted in Delivered), so they never repeat.
	next := rec.Delivered + len(rec.Outbox) + 1
	ev.Seq = (next-1)/len(r.cfg.notifiers) + 1
	b, err := marshalEvent(ev)
	if err != nil {
		r.cfg.logger.Error("deploy: encoding event", "err", err)
		return
	}
	for i := range r.cfg.notifiers {
		rec.Outbox = append(rec.Outbox, state.Message{ID: next + i, Notifier: i, Event: b})
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// monitorKey names a monitor's saved state: its position and name, so that
// a reordered configuration does not hand one monitor another's state.
func (r *Runner) monitorKey(i int) string {
	return strconv.Itoa(i) + ":" + nameOf(r.cfg.monitors[i])
}

// saveMonitors keeps the state of stateful monitors after the baseline.
func (r *Runner) saveMonitors(rec *state.Record, now time.Time) {
	for i, m := range r.cfg.monitors {
		sm, ok := m.(monitor.Stateful)
		if !ok {
			continue
		}
		b, err := sm.State()
		if err != nil {
			r.note(rec, now, "note", nameOf(m), "baseline state not saved: "+err.Error())
			continue
		}
		if rec.MonitorState == nil {
			rec.MonitorState = map[string][]byte{}
		}
		rec.MonitorState[r.monitorKey(i)] = b
	}
}

// restoreMonitors gives stateful monitors back what they saved, once per
// loop: in a process that resumes a release they have not seen the baseline.
func (r *Runner) restoreMonitors(rec *state.Record) {
	for i, m := range r.cfg.monitors {
		sm, ok := m.(monitor.Stateful)
		if !ok {
			continue
		}
		if b, ok := rec.MonitorState[r.monitorKey(i)]; ok {
			if err := sm.Restore(b); err != nil {
				r.cfg.logger.Warn("deploy: restoring a monitor's state", "release", rec.ID, "monitor", nameOf(m), "err", err)
			}
		}
	}
}

// logEvent writes an event to the runner's logger: urgent ones at Error,
// rollbacks and blocks at Warn, observations at Debug, the rest at Info.
func (r *Runner) logEvent(rec *state.Record, ev Event) {
	level := slog.LevelInfo
	switch {
	case ev.Urgent:
		level = slog.LevelError
	case ev.Kind == EventRollback, ev.Kind == EventGate && ev.Gate == "blocked":
		level = slog.LevelWarn
	case ev.Kind == EventObservation:
		level = slog.LevelDebug
	}
	if !r.cfg.logger.Enabled(context.Background(), level) {
		return
	}
	attrs := []slog.Attr{slog.String("release", rec.ID), slog.String("event", string(ev.Kind)), slog.String("phase", rec.Phase)}
	if ev.Step != "" {
		attrs = append(attrs, slog.String("step", ev.Step))
	}
	attrs = append(attrs, slog.Float64("exposure", rec.Exposure))
	r.cfg.logger.LogAttrs(context.Background(), level, "deploy: "+ev.Message, attrs...)
}

// takeRequest carries out a manual rollback that Runner.Rollback asked for
// while this runner was busy: it rolls back what may be deployed, or ends
// the release as aborted when nothing is. A request that comes once the
// release is already rolling back or finishing is dropped.
func (r *Runner) takeRequest(rec *state.Record, now time.Time) {
	req := rec.RollbackRequest
	if req == nil {
		return
	}
	rec.RollbackRequest = nil
	switch Phase(rec.Phase) {
	case PhasePreflight, PhaseDeploy, PhaseVerify:
	default:
		return
	}
	t := &state.Trigger{Kind: "manual", Reason: req.Reason}
	if deployed(rec) {
		r.startRollback(rec, now, t, "")
		return
	}
	t.At = now
	rec.Trigger = t
	r.toCommunicate(rec, now, Aborted, req.Reason)
}
