package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// pausedRelease starts a 20 % → 40 % → 100 % release whose 40 % step
// pauses until promoted, runs it in the background with r, and waits for
// the pause.
func pausedRelease(t *testing.T, s *deploytest.Strategy, store state.Store, extra ...deploy.Option) (*deploy.Runner, string, chan result) {
	t.Helper()
	r := decisionRunner(t, s, store, append([]deploy.Option{deploy.WithHolder("process-a"),
		deploy.WithStepRules(deploy.StepRule{Step: "40%", Pause: &deploy.Pause{}})}, extra...)...)
	id, err := r.Start(t.Context(), rel)
	if err != nil {
		t.Fatal(err)
	}
	done := runInBackground(r, t.Context(), id)
	waitFor(t, store, id, time.Hour, waiting(state.WaitPause))
	return r, id, done
}

// Argo Rollouts, "Aborting a Rollout" and "Retrying"
// (https://argo-rollouts.readthedocs.io/en/stable/features/canary/ and
// kubectl argo rollouts abort / retry): abort scales the canary back to 0
// and marks the rollout aborted; retry starts the update again from the
// first step. Here: abort while paused at 40 %, the rollback runs and is
// verified, the release waits; Retry applies 20 % again, then 40 %, pauses
// again, and a Promote finishes it.
func TestRetryAfterAbortRestartsFromTheFirstStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 0.4, 1)}
		store := state.NewMemory()
		r, id, done := pausedRelease(t, s, store)
		if err := r.Abort(t.Context(), id, deploy.Decision{By: "alice", Reason: "latency spike in another service"}); err != nil {
			t.Fatal(err)
		}
		rec := waitFor(t, store, id, time.Hour, waiting(state.WaitAborted))
		if s.Exposure() != 0 || rec.Phase != deploy.PhaseRollback {
			t.Fatalf("aborted: exposure %v, phase %s", s.Exposure(), rec.Phase)
		}
		// A Promote does not apply to an aborted release.
		if err := r.Promote(t.Context(), id, false, deploy.Decision{By: "bob"}); !errors.Is(err, deploy.ErrNotWaiting) {
			t.Errorf("Promote of an aborted release: %v, want ErrNotWaiting", err)
		}
		if err := r.Retry(t.Context(), id, deploy.Decision{By: "alice", Reason: "the other service is fixed"}); err != nil {
			t.Fatal(err)
		}
		rec = waitFor(t, store, id, time.Hour, waiting(state.WaitPause))
		if rec.Attempt != 1 || rec.Trigger != nil {
			t.Errorf("after Retry: attempt %d, trigger %+v; want attempt 1, no trigger", rec.Attempt, rec.Trigger)
		}
		if err := r.Promote(t.Context(), id, false, deploy.Decision{By: "alice"}); err != nil {
			t.Fatal(err)
		}
		res := <-done
		if res.err != nil || res.rep.Status != deploy.Succeeded {
			t.Fatalf("status %s, err %v\n%s", res.rep.Status, res.err, res.rep.Markdown())
		}
		want := []string{"production/20%", "production/40%", "production/20%", "production/40%", "production/100%"}
		if diff := cmp.Diff(want, s.Applied()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
		if s.Rollbacks() != 1 {
			t.Errorf("rollbacks = %d, want 1", s.Rollbacks())
		}
		var kinds []string
		for _, d := range res.rep.Decisions {
			kinds = append(kinds, string(d.Kind)+" by "+d.By)
		}
		if diff := cmp.Diff([]string{"abort by alice", "retry by alice", "promote by alice"}, kinds); diff != "" {
			t.Errorf("decisions (-want +got):\n%s", diff)
		}
		md := res.rep.Markdown()
		if !strings.Contains(md, "### Decisions") || !strings.Contains(md, "latency spike in another service") {
			t.Errorf("the report does not show the decisions:\n%s", md)
		}
	})
}

// A decision taken in another process (a second Runner on the same store,
// another holder) is written into the record and carried out by the
// holder at its next round: within one interval (1 minute).
func TestDecisionFromAnotherProcessIsObeyed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 0.4, 1)}
		store := state.NewMemory()
		_, id, done := pausedRelease(t, s, store)
		other := decisionRunner(t, s, store, deploy.WithHolder("process-b"))
		promoted := time.Now()
		if err := other.Promote(t.Context(), id, false, deploy.Decision{By: "dave", Reason: "from the page"}); err != nil {
			t.Fatal(err)
		}
		res := <-done
		if res.err != nil {
			t.Fatalf("Resume: %v", res.err)
		}
		var applied time.Time
		for _, e := range res.rep.Timeline {
			if e.Kind == state.EntryStep && e.Name == "100%" && e.Outcome == state.OutcomeApplied {
				applied = e.At
			}
		}
		if d := applied.Sub(promoted); d < 0 || d > time.Minute {
			t.Errorf("100%% applied %v after the other process's Promote, want within a minute", d)
		}
		if d := res.rep.Decisions; len(d) != 1 || d[0].By != "dave" || d[0].Pending() {
			t.Errorf("decisions = %+v", d)
		}
	})
}

// A second identical decision is a no-op: the page's double click, a
// retried request. A decision that does not apply says why.
func TestDecisionsAreIdempotentAndChecked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 0.4, 1)}
		store := state.NewMemory()
		_, id, done := pausedRelease(t, s, store)
		other := decisionRunner(t, s, store, deploy.WithHolder("process-b"))
		d := deploy.Decision{By: "erin", Reason: "ship it"}
		if err := other.Promote(t.Context(), id, false, d); err != nil {
			t.Fatal(err)
		}
		if err := other.Promote(t.Context(), id, false, d); err != nil {
			t.Errorf("the same Promote again, pending: %v, want nil", err)
		}
		if err := other.Promote(t.Context(), id, false, deploy.Decision{}); !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), "Decision.By") {
			t.Errorf("a decision by nobody: %v, want ErrInvalid naming Decision.By", err)
		}
		if err := other.Approve(t.Context(), id, 1, d); !errors.Is(err, deploy.ErrNotWaiting) || !strings.Contains(err.Error(), "waits for pause at step 1") {
			t.Errorf("Approve of a pause: %v, want ErrNotWaiting saying it waits for a pause", err)
		}
		if err := other.Skip(t.Context(), id, 0, d); !errors.Is(err, deploy.ErrNotWaiting) {
			t.Errorf("Skip of a step done: %v, want ErrNotWaiting", err)
		}
		res := <-done
		if res.err != nil {
			t.Fatal(res.err)
		}
		if n := len(res.rep.Decisions); n != 1 {
			t.Errorf("%d decisions recorded, want 1: %+v", n, res.rep.Decisions)
		}
		// Carried out, and the release moved on and ended: the same again
		// is still a no-op, a new one is refused.
		if err := other.Promote(t.Context(), id, false, d); err != nil {
			t.Errorf("the same Promote after it was carried out: %v, want nil", err)
		}
		if err := other.Abort(t.Context(), id, d); !errors.Is(err, deploy.ErrNotWaiting) {
			t.Errorf("Abort of a finished release: %v, want ErrNotWaiting", err)
		}
	})
}

// Approvals through Runner.Approve are used once, for that step of that
// release: the next step that needs one waits again (the issue's
// gate.Manual "holds for every step until Reset"). A step's approvers are
// the only ones who may approve it.
func TestApprovalIsForOneStepAndItsApprovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 0.4, 1)}
		store := state.NewMemory()
		r := decisionRunner(t, s, store, deploy.WithStepRules(
			deploy.StepRule{Step: "40%", Approval: true, Approvers: []string{"sre-oncall"}},
			deploy.StepRule{Step: "100%", Approval: true}))
		id, err := r.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		done := runInBackground(r, t.Context(), id)
		rec := waitFor(t, store, id, time.Hour, waiting(state.WaitApproval))
		if rec.Waiting.Step != 1 || rec.Waiting.StepName != "40%" {
			t.Fatalf("waits for %+v, want the approval of step 1 (40%%)", rec.Waiting)
		}
		if err := r.Approve(t.Context(), id, 1, deploy.Decision{By: "mallory"}); !errors.Is(err, deploy.ErrNotApprover) || !strings.Contains(err.Error(), "sre-oncall") {
			t.Errorf("Approve by mallory: %v, want ErrNotApprover naming the approvers", err)
		}
		if err := r.Approve(t.Context(), id, 2, deploy.Decision{By: "sre-oncall"}); !errors.Is(err, deploy.ErrNotWaiting) {
			t.Errorf("Approve of step 2 while step 1 waits: %v, want ErrNotWaiting", err)
		}
		if err := r.Approve(t.Context(), id, 1, deploy.Decision{By: "sre-oncall", Reason: "dashboards green"}); err != nil {
			t.Fatal(err)
		}
		rec = waitFor(t, store, id, time.Hour, func(rec *state.Record) bool { return rec.Waiting != nil && rec.Waiting.Step == 2 })
		if diff := cmp.Diff([]string{"production/20%", "production/40%"}, s.Applied()); diff != "" {
			t.Errorf("applied before the second approval (-want +got):\n%s", diff)
		}
		if err := r.Approve(t.Context(), id, 2, deploy.Decision{By: "anyone"}); err != nil {
			t.Fatal(err)
		}
		if res := <-done; res.err != nil {
			t.Fatal(res.err)
		}
	})
}

// "Wait forever" is said explicitly: WithGateDeadline(0) is refused with a
// message pointing to NoDeadline, which NewRunner accepts.
func TestGateDeadlineNoDeadline(t *testing.T) {
	s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 1)}
	_, err := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), deploy.WithGateDeadline(0))
	if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), "NoDeadline") {
		t.Errorf("WithGateDeadline(0): %v, want ErrInvalid pointing to NoDeadline", err)
	}
	if _, err := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), deploy.WithGateDeadline(deploy.NoDeadline)); err != nil {
		t.Errorf("WithGateDeadline(NoDeadline): %v", err)
	}
}

// A release driven by Reconcile from a cron job holds no lease between
// rounds: a decision written meanwhile is carried out by the next round.
func TestDecisionBetweenReconcileRounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 1)}
		store := state.NewMemory()
		rule := deploy.WithStepRules(deploy.StepRule{Step: "20%", Pause: &deploy.Pause{}})
		id, err := decisionRunner(t, s, store, rule).Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		round := func() (time.Time, *deploy.Report) {
			next, rep, err := decisionRunner(t, s, store, rule, deploy.WithHolder("cron")).Reconcile(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			return next, rep
		}
		for {
			next, rep := round()
			if rep.Waiting != nil {
				break
			}
			time.Sleep(time.Until(next))
		}
		if err := decisionRunner(t, s, store, deploy.WithHolder("page")).Promote(t.Context(), id, false, deploy.Decision{By: "ivan"}); err != nil {
			t.Fatal(err)
		}
		for range 100 {
			next, rep := round()
			if rep.Status.Final() {
				if rep.Status != deploy.Succeeded || len(s.Applied()) != 2 {
					t.Fatalf("status %s, applied %v", rep.Status, s.Applied())
				}
				return
			}
			time.Sleep(time.Until(next))
		}
		t.Fatal("the release did not end")
	})
}

// A decision written between a runner's load of the record and the save
// that takes its lease is no takeover: the runner takes the release with
// the decision, instead of stopping with ErrLocked.
func TestDecisionRacingTheLeaseIsKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 1)}
		store := state.NewMemory()
		rule := deploy.WithStepRules(deploy.StepRule{Step: "20%", Pause: &deploy.Pause{}})
		id, err := decisionRunner(t, s, store, rule).Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		for {
			next, rep, err := decisionRunner(t, s, store, rule, deploy.WithHolder("cron")).Reconcile(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Waiting != nil {
				break
			}
			time.Sleep(time.Until(next))
		}
		time.Sleep(2 * time.Minute) // the cron round's lease is over
		page := decisionRunner(t, s, store, deploy.WithHolder("page"))
		fs := deploytest.NewFaultStore(store)
		fs.OnWrite = func(_ *state.Record, n int) deploytest.Fault {
			if n == 0 {
				if err := page.Promote(context.Background(), id, false, deploy.Decision{By: "judy"}); err != nil {
					t.Error(err)
				}
			}
			return deploytest.Fault{}
		}
		rep, err := decisionRunner(t, s, fs, rule, deploy.WithHolder("resumer")).Resume(t.Context(), id)
		if err != nil || rep.Status != deploy.Succeeded {
			t.Fatalf("Resume: %v, status %s", err, rep.Status)
		}
	})
}

// Abort before the preflight passed is refused: nothing is deployed, and a
// Retry would skip the gates; Rollback ends such a release.
func TestAbortInPreflightIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 1)}
		store := state.NewMemory()
		wait := deploy.GateFunc(func(ctx context.Context, d *deploy.Deployment) error {
			return deploy.RetryAt(time.Now().Add(30*time.Minute), "window opens soon")
		})
		r := decisionRunner(t, s, store, deploy.WithGates(wait))
		id, err := r.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.Reconcile(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if err := r.Abort(t.Context(), id, deploy.Decision{By: "kim"}); !errors.Is(err, deploy.ErrNotWaiting) || !strings.Contains(err.Error(), "Rollback ends the release") {
			t.Errorf("Abort in preflight: %v, want ErrNotWaiting pointing to Rollback", err)
		}
	})
}

// Abort applies after full exposure too, during the watch: the release
// rolls back and waits; Retry deploys the stage again and watches anew.
func TestAbortDuringTheWatchThenRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.5, 1)}
		store := state.NewMemory()
		r := decisionRunner(t, s, store, deploy.WithSchedule(monitor.Schedule{Windows: []monitor.Window{{Name: "intensive", Duration: time.Hour, Interval: time.Minute}}}))
		id, err := r.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		done := runInBackground(r, t.Context(), id)
		waitFor(t, store, id, time.Hour, func(rec *state.Record) bool { return rec.Phase == deploy.PhaseVerify && len(rec.Windows) > 0 })
		if err := r.Abort(t.Context(), id, deploy.Decision{By: "lee", Reason: "customer report"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, store, id, time.Hour, waiting(state.WaitAborted))
		if err := r.Retry(t.Context(), id, deploy.Decision{By: "lee"}); err != nil {
			t.Fatal(err)
		}
		res := <-done
		if res.err != nil || res.rep.Status != deploy.Succeeded || len(res.rep.Windows) != 1 || res.rep.Windows[0].Observations != 60 {
			t.Fatalf("status %s, err %v, windows %+v", res.rep.Status, res.err, res.rep.Windows)
		}
		if diff := cmp.Diff([]string{"production/50%", "production/100%", "production/50%", "production/100%"}, s.Applied()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
	})
}

// A decision is durable: written into the record, it survives the crash of
// the runner that was carrying it out — whether the save that records it
// carried out landed (After) or not — and the runner that resumes the
// release carries it out exactly once. The same decision sent again
// afterwards (a retried request) is a no-op.
func TestDecisionSurvivesACrashOfTheRunnerCarryingItOut(t *testing.T) {
	for _, after := range []bool{false, true} {
		t.Run(fmt.Sprintf("after=%v", after), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 0.4, 1), Fenced: true}
				store := state.NewMemory()
				fs := deploytest.NewFaultStore(store)
				fs.OnWrite = deploytest.WhenTimeline(func(e state.Entry) bool { return e.Kind == state.EntryDecision }, deploytest.Fault{Crash: true, After: after})
				_, id, done := pausedRelease(t, s, fs)
				page := decisionRunner(t, s, store, deploy.WithHolder("page"))
				d := deploy.Decision{By: "erin", Reason: "dashboards green"}
				if err := page.Promote(t.Context(), id, false, d); err != nil {
					t.Fatal(err)
				}
				if res := <-done; !errors.Is(res.err, deploytest.ErrCrashed) {
					t.Fatalf("the first runner: %v, want it crashed while carrying the decision out", res.err)
				}
				rec, err := store.Load(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				if len(rec.Decisions) != 1 || rec.Decisions[0].Pending() == after {
					t.Fatalf("decisions after the crash = %+v, want the promote, pending unless its save landed", rec.Decisions)
				}
				time.Sleep(time.Until(rec.LeaseUntil) + time.Second)
				rep, err := decisionRunner(t, s, store, deploy.WithHolder("process-b")).Resume(t.Context(), id)
				if err != nil || rep.Status != deploy.Succeeded {
					t.Fatalf("Resume: %v, status %s", err, rep.Status)
				}
				if diff := cmp.Diff([]string{"production/20%", "production/40%", "production/100%"}, s.Applied()); diff != "" {
					t.Errorf("applied (-want +got):\n%s", diff)
				}
				n := 0
				for _, e := range rep.Timeline {
					if e.Kind == state.EntryDecision {
						n++
					}
				}
				if n != 1 || len(rep.Decisions) != 1 || rep.Decisions[0].Pending() {
					t.Errorf("%d decision entries, decisions %+v; want the promote carried out once", n, rep.Decisions)
				}
				if err := page.Promote(t.Context(), id, false, d); err != nil {
					t.Errorf("the same Promote again: %v, want a no-op", err)
				}
			})
		})
	}
}

// A decision's By and Reason come from people and programs (a chat bot, a
// script): they are bounded, refused naming the field before anything is
// written, as the decision page bounds its forms.
func TestAnOversizedDecisionIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 0.4, 1)}
		store := state.NewMemory()
		r, id, done := pausedRelease(t, s, store)
		for _, tc := range []struct {
			d    deploy.Decision
			want string
		}{
			{deploy.Decision{By: strings.Repeat("a", 300)}, "Decision.By is 300 bytes"},
			{deploy.Decision{By: "jo", Reason: strings.Repeat("r", 5000)}, "Decision.Reason is 5000 bytes"},
		} {
			if err := r.Promote(t.Context(), id, false, tc.d); !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Promote: %v, want ErrInvalid with %q", err, tc.want)
			}
		}
		rec, err := store.Load(t.Context(), id)
		if err != nil || len(rec.Decisions) != 0 {
			t.Fatalf("decisions written: %+v, %v", rec.Decisions, err)
		}
		if err := r.Promote(t.Context(), id, false, deploy.Decision{By: "jo", Reason: strings.Repeat("r", 4096)}); err != nil {
			t.Fatal(err)
		}
		if res := <-done; res.err != nil {
			t.Fatal(res.err)
		}
	})
}

// An Abort survives a crash in the middle of the rollback it started: the
// runner that resumes finishes the rollback (once: the fenced target saw
// one), the release waits for a Retry, and the Retry deploys again.
func TestAbortSurvivesACrashDuringItsRollback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 0.4, 1), Fenced: true}
		store := state.NewMemory()
		fs := deploytest.NewFaultStore(store)
		fs.OnWrite = deploytest.WhenTimeline(func(e state.Entry) bool { return e.Kind == state.EntryDecision }, deploytest.Fault{Crash: true, After: true})
		_, id, done := pausedRelease(t, s, fs)
		page := decisionRunner(t, s, store, deploy.WithHolder("page"))
		if err := page.Abort(t.Context(), id, deploy.Decision{By: "kim", Reason: "error budget"}); err != nil {
			t.Fatal(err)
		}
		if res := <-done; !errors.Is(res.err, deploytest.ErrCrashed) {
			t.Fatalf("the first runner: %v, want it crashed", res.err)
		}
		rec, err := store.Load(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(rec.LeaseUntil) + time.Second)
		b := decisionRunner(t, s, store, deploy.WithHolder("process-b"), deploy.WithStepRules(deploy.StepRule{Step: "40%", Pause: &deploy.Pause{}}))
		resumed := runInBackground(b, t.Context(), id)
		rec = waitFor(t, store, id, time.Hour, waiting(state.WaitAborted))
		if s.Exposure() != 0 || s.Rollbacks() != 1 {
			t.Fatalf("after the resumed abort: exposure %v, %d rollbacks; want 0 and 1", s.Exposure(), s.Rollbacks())
		}
		if err := page.Abort(t.Context(), id, deploy.Decision{By: "kim", Reason: "error budget"}); err != nil {
			t.Errorf("the same Abort again: %v, want a no-op", err)
		}
		if err := page.Retry(t.Context(), id, deploy.Decision{By: "kim"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, store, id, time.Hour, waiting(state.WaitPause))
		if err := page.Promote(t.Context(), id, false, deploy.Decision{By: "kim"}); err != nil {
			t.Fatal(err)
		}
		res := <-resumed
		if res.err != nil || res.rep.Status != deploy.Succeeded {
			t.Fatalf("status %s, err %v", res.rep.Status, res.err)
		}
		var kinds []string
		for _, d := range res.rep.Decisions {
			kinds = append(kinds, string(d.Kind))
		}
		if diff := cmp.Diff([]string{"abort", "retry", "promote"}, kinds); diff != "" {
			t.Errorf("decisions (-want +got):\n%s", diff)
		}
	})
}
