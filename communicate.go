package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/deploykit/deploy/state"
)

func (r *Runner) toCommunicate(rec *state.Record, now time.Time, outcome Status, reason string) {
	rec.Outcome = outcome
	if reason != "" && rec.Error == "" && outcome != Blocked && outcome != Aborted {
		rec.Error = reason
	}
	rec.Phase = PhaseCommunicate
	rec.Applying = false
	rec.Waiting = nil // a release being reported waits for nobody
	r.note(rec, now, state.EntryPhase, state.OutcomeStarted, string(PhaseCommunicate), string(outcome))
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
		// Stakeholders are told as the events go out: the items that say
		// they were notified are ticked when the outbox is delivered (see
		// tickDelivered), not here.
		names := make([]string, len(r.cfg.notifiers))
		for i, n := range r.cfg.notifiers {
			names[i] = nameOf(n)
		}
		r.tick(rec, now, ItemStakeholders, "notifiers: "+strings.Join(names, ", "))
	}
	r.tick(rec, now, ItemDeploymentNotes, "summary report generated")
	rec.Status = rec.Outcome
	rec.Finished = now
	lp.finalized = true
	if rec.Status == Succeeded {
		r.tick(rec, now, ItemWorkflowComplete, "workflow state: complete")
		rec.Phase = PhaseComplete
	}
	r.note(rec, now, state.EntryPhase, state.OutcomeDone, "finished", string(rec.Status))
	if len(r.cfg.notifiers) > 0 {
		// The report the notifiers get is being delivered with them: it
		// does not count its own events, or those queued just before
		// them, as not delivered.
		c := *rec
		c.Outbox = nil
		rep := r.report(&c)
		r.emit(rec, Event{Kind: EventFinished, Message: rep.Headline(), Report: rep.Markdown(), Urgent: rec.Status == RollbackFailed,
			FollowUps: rep.FollowUps, Duration: rep.Duration()})
	}
}

// listening reports whether an event would reach anyone: a notifier, or
// the logger at Info. Events are cheap, but not free at every step of a
// 1,000-step plan.
func (r *Runner) listening() bool {
	return len(r.cfg.notifiers) > 0 || r.cfg.logger.Enabled(context.Background(), slog.LevelInfo)
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
	ev.Phase = rec.Phase
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
	next := rec.Delivered + len(rec.Outbox) + len(rec.Undelivered) + 1
	ev.Seq = (next-1)/len(r.cfg.notifiers) + 1
	b, err := marshalEvent(ev)
	if err != nil {
		// Not silently: the timeline says which event was not sent.
		r.cfg.logger.Error("deploy: encoding event", "err", err)
		r.note(rec, ev.At, state.EntryNote, state.OutcomeFailed, "notify", fmt.Sprintf("event %q not sent to any notifier: encoding it failed: %v", ev.Message, err))
		return
	}
	for i := range r.cfg.notifiers {
		rec.Outbox = append(rec.Outbox, state.Message{ID: next + i, Notifier: i, Event: b, Queued: ev.At})
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
	attrs := []slog.Attr{slog.String("release", rec.ID), slog.String("event", string(ev.Kind)), slog.String("phase", string(rec.Phase))}
	if ev.Step != "" {
		attrs = append(attrs, slog.String("step", ev.Step))
	}
	attrs = append(attrs, slog.Float64("exposure", rec.Exposure))
	r.cfg.logger.LogAttrs(context.Background(), level, "deploy: "+ev.Message, attrs...)
}
