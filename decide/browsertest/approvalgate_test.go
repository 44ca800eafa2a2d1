package browsertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/decide"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/gate"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// gateDecider is a *deploy.Runner whose approvals go to the approval gate
// the release waits on (Step.Approval with WithApproval and a gate.Manual),
// named for that release and step.
type gateDecider struct {
	*deploy.Runner
	manual *gate.Manual
}

func (g gateDecider) Approve(ctx context.Context, id string, step int, d deploy.Decision) error {
	return g.manual.Approve(gate.For{ID: id, Step: step + 1}, d.By)
}

// A person logs in, finds the release waiting at an approval gate
// (Step.Approval with WithApproval and a gate.Manual) for its second step in
// the list, opens it, clicks Approve, and the release moves on: the runner
// applies the step, and the page shows it.
func TestAPersonApprovesAtAnApprovalGateInTheBrowser(t *testing.T) {
	ctx := browser(t)

	store, err := state.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	manual := &gate.Manual{}
	strat := &deploytest.Strategy{Steps: []deploytest.StepSpec{
		{Name: "10%", Exposure: 0.1},
		{Name: "50%", Exposure: 0.5, Approval: true},
		{Name: "100%", Exposure: 1},
	}}
	runner, err := deploy.NewRunner(strat,
		deploy.WithStore(store),
		deploy.WithApproval(&gate.Approval{Approver: manual, Poll: 20 * time.Millisecond}),
		deploy.WithMonitors(deploytest.Healthy()),
		deploy.WithNotifiers(&deploytest.Recorder{}),
		deploy.WithInterval(50*time.Millisecond),
		deploy.WithBaselineWindow(50*time.Millisecond),
		deploy.WithSchedule(monitor.Schedule{Windows: []monitor.Window{{Name: "watch", Duration: 200 * time.Millisecond, Interval: 50 * time.Millisecond}}}),
		deploy.WithWaiver(deploy.FridayDeploy, "a test, at any hour"),
	)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	id, err := runner.Start(runCtx, deploy.Release{Service: "shop", Version: "v2", PreviousVersion: "v1", Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { _, err := runner.Resume(runCtx, id); ran <- err }()
	waitFor(t, ctx, store, id, "waited for the approval of step 2", func(r *state.Record) bool {
		return r.Step == 1 && len(r.Timeline) > 0 && r.Timeline[len(r.Timeline)-1].Outcome == state.OutcomeWaiting
	})

	auth, err := decide.Tokens(map[string]string{"alice-token-0123456789": "alice"})
	if err != nil {
		t.Fatal(err)
	}
	page, err := decide.New(gateDecider{runner, manual}, store, auth)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/deploys/", http.StripPrefix("/deploys", page))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	login(t, ctx, srv.URL+"/deploys", "alice-token-0123456789")
	who := text(t, ctx, `#who`)
	must(t, chromedp.Do(ctx,
		chromedp.Click(css(`a.release`)),
		chromedp.WaitVisible(css(`#approve`)),
	))
	waiting := text(t, ctx, `#waiting`)
	screenshot(t, ctx, "waiting.png")
	must(t, chromedp.Do(ctx,
		chromedp.Click(css(`#approve`)),
		chromedp.WaitVisible(css(`#outcome`)),
	))
	outcome := text(t, ctx, `#outcome`)
	screenshot(t, ctx, "approved.png")
	if who != "alice" || !strings.Contains(waiting, "approval at step 2 (50%)") {
		t.Errorf("before the click: logged in as %q, waiting %q", who, waiting)
	}
	if !strings.Contains(outcome, "alice approved step 2 (50%) of release "+id) {
		t.Errorf("after the click the page says %q", outcome)
	}

	// The release moves on: the runner applies the second step.
	rec := waitFor(t, ctx, store, id, "applied step 2 after the approval", func(r *state.Record) bool { return r.Step >= 2 || r.Status.Final() })
	approved := false
	for _, e := range rec.Timeline {
		if e.Kind == state.EntryGate && e.Outcome == state.OutcomeApproved && strings.Contains(e.Detail, "50%") {
			approved = true
		}
	}
	if !approved || rec.Exposure < 0.5 {
		t.Errorf("after the approval the record has exposure %v and no approval of step 50%% in its timeline: %+v", rec.Exposure, rec.Timeline)
	}

	must(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/deploys/releases/"+id),
		chromedp.WaitVisible(css(`#exposure`)),
	))
	exposure, status := text(t, ctx, `#exposure`), text(t, ctx, `#status`)
	if exposure == "10 %" {
		t.Errorf("the page still shows exposure %q (status %q)", exposure, status)
	}
	rec = waitFor(t, ctx, store, id, "ended", func(r *state.Record) bool { return r.Status.Final() })
	if err := <-ran; err != nil || rec.Status != state.Succeeded {
		t.Errorf("the release ended %s: %v", rec.Status, err)
	}
}
