package decide

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/state"
)

func TestOffersFollowWhatTheReleaseWaitsFor(t *testing.T) {
	at := func(k state.WaitKind) *state.Record {
		r := waitingRecord("r")
		r.Waiting.Kind = k
		return r
	}
	deploying := waitingRecord("r")
	deploying.Waiting = nil
	deploying.Timeline = deploying.Timeline[:1]
	analysing := deploying.Clone()
	analysing.Analyses = []state.AnalysisRun{{Name: "a", Kind: state.AnalysisInline, Step: 1, Phase: state.AnalysisRunning}}
	gate := waitingRecord("r") // an approval gate's wait, noted in the timeline only
	gate.Waiting = nil
	verifying := deploying.Clone()
	verifying.Phase = state.PhaseVerify
	rolling := deploying.Clone()
	rolling.Phase = state.PhaseRollback
	abortedWait := at(state.WaitAborted)
	abortedWait.Phase = state.PhaseRollback // rolled back, kept open
	over := deploying.Clone()
	over.Status = state.RolledBack
	for name, c := range map[string]struct {
		rec  *state.Record
		want []Action
	}{
		"approval":      {at(state.WaitApproval), []Action{Approve, Abort, Rollback}},
		"pause":         {at(state.WaitPause), []Action{Promote, PromoteFull, Abort, Rollback}},
		"inconclusive":  {at(state.WaitInconclusive), []Action{Promote, PromoteFull, Abort, Rollback}},
		"aborted":       {abortedWait, []Action{Retry, Rollback}},
		"deploying":     {deploying, []Action{PromoteFull, Abort, Rollback}},
		"analysing":     {analysing, []Action{PromoteFull, Skip, Abort, Rollback}},
		"approval gate": {gate, []Action{Approve, Abort, Rollback}},
		"verifying":     {verifying, []Action{Abort, Rollback}},
		"rolling back":  {rolling, nil},
		"over":          {over, nil},
	} {
		if diff := cmp.Diff(c.want, offers(c.rec)); diff != "" {
			t.Errorf("%s: offers (-want +got):\n%s", name, diff)
		}
	}
	if w, ok := waitingFor(gate); !ok || w.Kind != state.WaitApproval || w.Step != 1 || w.StepName != "50%" {
		t.Errorf("an approval gate's wait: %+v %v", w, ok)
	}
}

func TestTheRunnersRefusalsAreAnsweredAsConflictsOrForbidden(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int
	}{
		{fmt.Errorf("%w: release r1 waits for pause", deploy.ErrNotWaiting), http.StatusConflict},
		{fmt.Errorf("%w: alice may not approve step 2", deploy.ErrNotApprover), http.StatusForbidden},
		{fmt.Errorf("deploy: %w", state.ErrNotFound), http.StatusNotFound},
	} {
		f := newFixture(t)
		f.dec.err = c.err
		w := f.apiPost("r1", "approve", `{"step":1}`, aliceToken)
		if o := outcomeOf(t, w); w.Code != c.code || o.OK || !strings.Contains(o.Message, c.err.Error()) {
			t.Errorf("decider says %v: %d %+v, want %d", c.err, w.Code, o, c.code)
		}
	}
}
