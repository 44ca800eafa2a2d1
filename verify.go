package deploy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
)

func (r *Runner) verify(ctx context.Context, rec *state.Record, lp *loop, now time.Time) (time.Time, error) {
	pctx := lp.phaseCtx
	if len(rec.Windows) == 0 && !rec.Applied {
		// Post-deployment checks.
		// The checks judge the last interval: the release is fully exposed.
		dec, obs := r.judge(pctx, rec, lp, "verify", "", now.Add(-r.cfg.interval), false)
		r.announce(rec, lp, dec, "post-deployment checks")
		switch dec.Verdict {
		case rollback.Rollback:
			return now, r.breach(rec, lp, now, triggerFrom(dec, state.TriggerVerification))
		case rollback.Wait:
			r.noteOnce(rec, now, state.EntryVerdict, state.OutcomePaused, "post-deployment checks", dec.Reason)
			return now.Add(r.cfg.interval), nil
		}
		rec.Applied = true // the checks passed; Windows hold the watch from here
		r.tickVerified(rec, now, obs, dec)
		r.noteObs(rec, now, state.EntryVerdict, state.OutcomePassed, "post-deployment checks", obs)
		r.emit(rec, Event{Kind: EventPhase, Message: "post-deployment checks passed"})
		return r.nextWindow(rec, now)
	}
	if len(rec.Windows) == 0 {
		return r.nextWindow(rec, now)
	}
	w := &rec.Windows[len(rec.Windows)-1]
	if len(rec.Windows) > len(r.cfg.schedule.Windows) {
		// The schedule was shortened since this watch began (a resumed
		// release under a new configuration): the watch ends here.
		w.End = now
		r.note(rec, now, state.EntryWindow, state.OutcomeDone, w.Name, fmt.Sprintf("the schedule no longer has this watch: it ends after %d observations", w.Observations))
		return r.nextWindow(rec, now)
	}
	spec := r.cfg.schedule.Windows[len(rec.Windows)-1]
	windowDone := !now.Before(w.Start.Add(spec.Duration))
	// Only the first and last looks of a window are announced when healthy.
	dec, obs := r.judge(pctx, rec, lp, "verify", "", w.Start, w.Observations > 0 && !windowDone)
	w.Observations++
	if dec.Verdict == rollback.Continue {
		r.point(rec, lp, now, w.Name, spec.Duration, obs)
	}
	if dec.Verdict != rollback.Continue || w.Observations == 1 || windowDone {
		r.announce(rec, lp, dec, w.Name+" watch")
	}
	if dec.Verdict == rollback.Rollback {
		w.End = now
		tr := triggerFrom(dec, state.TriggerVerification)
		tr.Reason = fmt.Sprintf("%s (during the %s watch, %v after full exposure)", tr.Reason, w.Name, now.Sub(rec.Windows[0].Start).Round(time.Second))
		return now, r.breach(rec, lp, now, tr)
	}
	if windowDone {
		w.End = now
		r.note(rec, now, state.EntryWindow, state.OutcomeComplete, w.Name, fmt.Sprintf("%d observations every %v", w.Observations, w.Interval))
		r.emit(rec, Event{Kind: EventPhase, Message: fmt.Sprintf("%s watch complete (%v, %d observations)", w.Name, spec.Duration, w.Observations)})
		return r.nextWindow(rec, now)
	}
	return now.Add(spec.Interval), nil
}

func (r *Runner) nextWindow(rec *state.Record, now time.Time) (time.Time, error) {
	k := len(rec.Windows)
	if k >= len(r.cfg.schedule.Windows) {
		r.note(rec, now, state.EntryWindow, state.OutcomeComplete, "stable", "")
		r.toCommunicate(rec, now, Succeeded, "")
		return now, nil
	}
	spec := r.cfg.schedule.Windows[k]
	rec.Windows = append(rec.Windows, state.Window{Name: spec.Name, Interval: spec.Interval, Start: now})
	r.note(rec, now, state.EntryWindow, state.OutcomeStarted, spec.Name, fmt.Sprintf("every %v for %v", spec.Interval, spec.Duration))
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
