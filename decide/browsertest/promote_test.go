package browsertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

const chromium = "/usr/bin/chromium"

// browser starts a headless chromium for the test and returns its context.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("this test drives Debian's chromium, and %s is missing: apt-get install -y chromium (.ci/run installs it)", chromium)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// Start the browser under a context without a time limit (a limit
	// would stop the browser), then bound what the test does.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

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

// waitFor waits, in real time, until cond holds of release id's record.
func waitFor(t *testing.T, ctx context.Context, store state.Store, id string, what string, cond func(*state.Record) bool) *state.Record {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		rec, err := store.Load(ctx, id)
		if err == nil && cond(rec) {
			return rec
		}
		select {
		case <-ctx.Done():
			t.Fatalf("release %s never %s: %v (last error %v)", id, what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// A person logs in, finds the release waiting for the approval of its
// second step in the list, opens it, clicks Approve, and the release moves
// on: the store says who approved, and the page shows the new step.
func TestAPersonApprovesAWaitingReleaseInTheBrowser(t *testing.T) {
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

	// Not logged in, the list answers with a link to the login form.
	must(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/deploys/"),
		chromedp.WaitVisible(css(`a[href="/deploys/login"]`)),
		chromedp.Click(css(`a[href="/deploys/login"]`)),
		chromedp.WaitVisible(css(`#token`)),
		chromedp.SendKeys(css(`#token`), "alice-token-0123456789"),
		chromedp.Click(css(`#login`)),
		chromedp.WaitVisible(css(`#releases`)),
	))
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

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("in the browser: %v", err)
	}
}

// text returns the visible text of the element sel selects.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
	if err != nil {
		t.Fatalf("in the browser, reading %s: %v", sel, err)
	}
	return s
}

// screenshot saves the page as name in $DECIDE_SCREENSHOTS, when set, for
// a person to look at.
func screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("DECIDE_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name), png, 0o644)
	}
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
	}
}
